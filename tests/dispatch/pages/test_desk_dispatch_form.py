"""The dispatcher's queue and dispatch form for tickets without an area (待定位): the badge, the
filter, the area picker and dispatching with an area; the form's layout (unit names in a plain
select the picker script enhances, assisting units as checkboxes, the suggested units one
click away); unit names, not codes, on the queue and the inbox."""

import re

import sqlalchemy as sa

from dispatch import operations as ops
from hotline.models import TicketEvent, Unit

DONGGUAN = "U-S-370705001"
CGJ = "U-CGJ"
STREETLIGHT = "010103"
GRID = "370705001001001"


def unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


def suggestion(place_confidence, candidates=()):
    """A stored suggestion: a sure streetlight for 东关街道办事处 (then 城管局), and a place
    under or over the fill threshold."""
    return {
        "category": {"top": [{"code": STREETLIGHT, "name": "路灯故障", "probability": 0.95}]},
        "area": {
            "code": "370705001001",
            "level": "community",
            "confidence": place_confidence,
            "candidates": list(candidates),
        },
        "units": [
            {"code": DONGGUAN, "confidence": 0.9, "reason": "test"},
            {"code": CGJ, "confidence": 0.4, "reason": "test"},
        ],
    }


def section(html, element_id):
    start = html.index(f'id="{element_id}"')
    return html[start : html.index("</section>", start)]


def test_queue_marks_and_filters_unlocated_tickets(client, db, user, make_ticket, web_login):
    operator = user("operator")
    unsure = make_ticket(operator, suggestion=suggestion(0.4))
    placed = make_ticket(operator, suggestion=suggestion(0.9))
    typed = make_ticket(operator, area="370705001")
    assert unsure.area is None and placed.area_source == "suggested"
    web_login(client, "dispatcher")
    html = client.get("/dispatch").get_data(as_text=True)
    queue = section(html, "queue")
    row = queue[queue.index(unsure.number) :].split("</tr>")[0]
    assert '<span class="badge-unlocated">待定位</span>' in row
    placed_row = queue[queue.index(placed.number) :].split("</tr>")[0]
    assert "中学街社区" in placed_row and "建议定位" in placed_row and "待定位" not in placed_row
    assert "待定位（1）" in html
    only = section(client.get("/dispatch?show=unlocated").get_data(as_text=True), "queue")
    assert unsure.number in only
    assert placed.number not in only and typed.number not in only
    assert "待定位工单（1）" in only


def test_queue_names_units_with_codes_small(client, db, user, make_ticket, web_login):
    make_ticket(user("operator"), suggestion=suggestion(0.9))
    web_login(client, "dispatcher")
    queue = section(client.get("/dispatch").get_data(as_text=True), "queue")
    assert f'东关街道办事处 <small class="code">{DONGGUAN}</small>' in queue
    # Outside the small print, no bare code.
    assert DONGGUAN not in re.sub(r'<small class="code">[^<]*</small>', "", queue)


def test_dispatch_form_layout(client, db, user, make_ticket, web_login):
    ticket = make_ticket(user("operator"), suggestion=suggestion(0.4))
    web_login(client, "dispatcher")
    html = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    form = html[
        html.index('<form id="dispatch"') : html.index("</form>", html.index('id="dispatch"'))
    ]
    # No Ctrl-click multi-select: assisting units are checkboxes, each named.
    assert "multiple" not in form
    assert f'<input type="checkbox" name="assist_units" value="{CGJ}">' in form
    # The lead unit: a plain select of names (the picker script enhances data-picker).
    assert '<select id="dispatch-lead" name="lead_unit" data-picker="unit" required>' in form
    assert f'data-code="{DONGGUAN}" selected>东关街道办事处（建议 90%）</option>' in form
    # The suggested units one click away, by name.
    assert f'data-pick="lead_unit" data-value="{DONGGUAN}">东关街道办事处' in form
    assert f'data-pick="lead_unit" data-value="{CGJ}">' in form
    # 待定位: the area picker, with the unsure suggestion said in words, not chosen.
    assert '<span class="badge-unlocated">待定位</span>' in form
    assert '<select id="dispatch-area" name="area" data-picker="area">' in form
    assert f'<option value="{GRID}" data-code="{GRID}">东关街道 › 中学街社区 › ' in form
    assert "智能建议：中学街社区（把握 40%，未达自动定位标准）" in form
    assert re.search(r'<option value="\d+" data-code="\d+" selected>', form) is None
    # Every control on its own labelled row.
    for label in ("主办单位", "协办单位", "区域", "事项分类", "派单说明"):
        assert re.search(rf'class="form-label"[^>]*>{label}', form), label
    assert "/console/static/desk.js" in html


def test_dispatch_form_sets_the_area(client, db, user, form_token, make_ticket, web_login):
    ticket = make_ticket(user("operator"), suggestion=suggestion(0.4))
    web_login(client, "dispatcher")
    token = form_token(client, f"/tickets/{ticket.number}")
    response = client.post(
        f"/tickets/{ticket.number}/dispatch",
        data={
            "csrf_token": token,
            "version": ticket.version,
            "lead_unit": DONGGUAN,
            "assist_units": [CGJ],
            "area": GRID,
            "category": STREETLIGHT,
            "note": "",
            "back": "/dispatch",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    db.expire_all()
    assert ticket.area.code == GRID and ticket.area_source == "typed"
    event = db.scalars(
        sa.select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
    ).all()[-1]
    assert event.payload["area"] == GRID


def test_dispatch_form_with_an_unknown_area_keeps_what_was_typed(
    client, db, user, form_token, make_ticket, web_login
):
    ticket = make_ticket(user("operator"), suggestion=suggestion(0.4))
    web_login(client, "dispatcher")
    token = form_token(client, f"/tickets/{ticket.number}")
    response = client.post(
        f"/tickets/{ticket.number}/dispatch",
        data={
            "csrf_token": token,
            "version": ticket.version,
            "lead_unit": DONGGUAN,
            "assist_units": [CGJ],
            "area": "370705001999",
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "区域不存在：370705001999" in html
    assert f'<input type="checkbox" name="assist_units" value="{CGJ}" checked>' in html
    db.expire_all()
    assert ticket.area is None and ticket.status.value == "received"


def test_located_ticket_shows_its_area_and_keeps_it_by_default(
    client, db, user, make_ticket, web_login
):
    ticket = make_ticket(user("operator"), suggestion=suggestion(0.9))
    web_login(client, "dispatcher")
    html = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    form = html[html.index('<form id="dispatch"') :]
    assert "当前：中学街社区" in form and "（由智能建议定位）" in form
    assert '<option value="">（保持当前区域）</option>' in form


def test_inbox_names_the_lead_unit(client, db, user, make_ticket, web_login):
    ticket = make_ticket(user("operator"), category=STREETLIGHT, area=GRID)
    ops.dispatch(db, user("dispatcher"), ticket, lead=unit(db, CGJ), assists=[unit(db, DONGGUAN)])
    db.flush()
    web_login(client, "dongguan")
    html = client.get("/inbox").get_data(as_text=True)
    row = html[html.index(ticket.number) :].split("</tr>")[0]
    assert f'潍坊市城市管理局 <small class="code">{CGJ}</small>' in row
    assert "中学街社区第1网格" in row
