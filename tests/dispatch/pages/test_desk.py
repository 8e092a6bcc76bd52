"""The desk pages (dispatch/pages/desk.py): the dispatcher's queue (派单台) and the unit
handler's inbox (待办工单) — order, scope, the dispatch and arbitration forms, stale forms — and
the ticket page: scope (403 for another unit, 404 unknown), what it shows to whom, and the unit
handler's actions through its forms, including the finish with photos."""

import datetime as dt
import io
import re

import pytest
import sqlalchemy as sa

from dispatch import operations as ops
from dispatch.pages import desk
from hotline.db import utcnow
from hotline.enums import AssignmentRole, DecisionStatus, ReturnReason, TicketStatus
from hotline.models import Assignment, Attachment, Category, Extension, Ticket, TicketEvent, Unit

DONGGUAN = "U-S-370705001"
CGJ = "U-CGJ"
STREETLIGHT = "010103"


def unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


def category(db, code):
    return db.scalars(sa.select(Category).where(Category.code == code)).one()


def suggestion(confidence, unit_code=DONGGUAN):
    """A stored suggestion whose dispatch confidence is ``confidence``."""
    return {
        "category": {"top": [{"code": STREETLIGHT, "name": "路灯故障", "probability": 0.99}]},
        "area": {"code": "370705001", "confidence": 0.99},
        "units": [{"code": unit_code, "confidence": confidence, "reason": "test"}],
    }


@pytest.fixture
def dispatched(db, user, make_ticket):
    def make(lead=DONGGUAN, now=None, **overrides):
        ticket = make_ticket(user("operator"), **overrides)
        ops.dispatch(
            db,
            user("dispatcher"),
            ticket,
            lead=unit(db, lead),
            category=category(db, STREETLIGHT),
            now=now,
        )
        db.flush()
        return ticket

    return make


def numbers_in(html, numbers):
    """The given ticket numbers in the order they appear in ``html``."""
    found = sorted((html.index(n), n) for n in numbers if n in html)
    return [n for _, n in found]


# -- dispatcher queue ---------------------------------------------------------------------------


def test_queue_only_for_dispatchers(client, db, web_login):
    assert client.get("/dispatch").status_code == 302
    web_login(client, "dongguan")
    assert client.get("/dispatch").status_code == 403
    web_login(client, "operator")
    assert client.get("/dispatch").status_code == 403


def test_queue_order_lowest_confidence_first_none_first(
    client, db, user, dispatched, make_ticket, web_login
):
    operator = user("operator")
    t0 = utcnow() - dt.timedelta(hours=5)
    sure = make_ticket(operator, suggestion=suggestion(0.9), now=t0)
    unsure_new = make_ticket(operator, suggestion=suggestion(0.3), now=t0 + dt.timedelta(minutes=1))
    unsure_old = make_ticket(operator, suggestion=suggestion(0.3), now=t0)
    bare = make_ticket(operator, now=t0 + dt.timedelta(hours=2))
    done = dispatched(suggestion=suggestion(0.1))
    web_login(client, "dispatcher")
    html = client.get("/dispatch").get_data(as_text=True)
    expected = [bare.number, unsure_old.number, unsure_new.number, sure.number]
    assert numbers_in(html, expected + [done.number]) == expected
    assert "30%" in html and "90%" in html and "无建议" in html
    assert 'class="conf-low">30%' in html
    assert "东关街道办事处" in html  # the suggested unit by name


def test_queue_pages(client, db, user, monkeypatch, make_ticket, web_login):
    monkeypatch.setattr(desk, "QUEUE_PAGE_SIZE", 2)
    operator = user("operator")
    tickets = [make_ticket(operator, suggestion=suggestion(0.1 * i)) for i in range(1, 4)]
    tickets.insert(0, make_ticket(operator))
    numbers = [t.number for t in tickets]
    web_login(client, "dispatcher")
    first = client.get("/dispatch").get_data(as_text=True)
    second = client.get("/dispatch?page=2").get_data(as_text=True)
    assert numbers_in(first, numbers) == numbers[:2]
    assert numbers_in(second, numbers) == numbers[2:]
    assert "第 2 / 2 页" in second


def test_dispatch_through_the_form(client, db, user, form_token, make_ticket, web_login):
    ticket = make_ticket(user("operator"), suggestion=suggestion(0.4))
    web_login(client, "dispatcher")
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    # The form is pre-filled with the suggestion's unit and category.
    assert f'<option value="{DONGGUAN}" data-code="{DONGGUAN}" selected>' in page
    assert f'<option value="{STREETLIGHT}" selected>' in page
    token = form_token(client, f"/tickets/{ticket.number}")
    response = client.post(
        f"/tickets/{ticket.number}/dispatch",
        data={
            "csrf_token": token,
            "version": ticket.version,
            "lead_unit": DONGGUAN,
            "assist_units": [CGJ],
            "category": STREETLIGHT,
            "note": "请尽快处理",
            "back": "/dispatch",
        },
    )
    assert response.status_code == 302 and response.headers["Location"] == "/dispatch"
    db.expire_all()
    assert ticket.status == TicketStatus.dispatched
    roles = {(a.unit.code, a.role) for a in ticket.assignments if a.active}
    assert (DONGGUAN, AssignmentRole.lead) in roles and (CGJ, AssignmentRole.assist) in roles
    assert ticket.category.code == STREETLIGHT
    event = db.scalars(
        sa.select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
    ).all()[-1]
    assert event.action == "dispatch" and event.reason == "请尽快处理"
    assert "已完成" in client.get("/dispatch").get_data(as_text=True)  # the flash notice


def test_stale_dispatch_form_is_a_conflict_and_changes_nothing(
    client, db, user, form_token, make_ticket, web_login
):
    ticket = make_ticket(user("operator"))
    stale_version = ticket.version
    web_login(client, "dispatcher")
    token = form_token(client, f"/tickets/{ticket.number}")
    form = {
        "csrf_token": token,
        "version": stale_version,
        "lead_unit": DONGGUAN,
        "category": STREETLIGHT,
        "note": "第一次派单",
    }
    assert client.post(f"/tickets/{ticket.number}/dispatch", data=form).status_code == 302
    form["lead_unit"], form["note"] = CGJ, "重复提交的旧表单"
    response = client.post(f"/tickets/{ticket.number}/dispatch", data=form)
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "工单已被他人更新，请刷新后重试" in html
    db.expire_all()
    assert ticket.lead_unit.code == DONGGUAN
    assert len([a for a in ticket.assignments if a.role == AssignmentRole.lead]) == 1
    dispatches = db.scalar(
        sa.select(sa.func.count())
        .select_from(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.action == "dispatch")
    )
    assert dispatches == 1


def test_dispatch_form_refusal_keeps_what_was_typed(
    client, db, user, form_token, make_ticket, web_login
):
    ticket = make_ticket(user("operator"))
    web_login(client, "dispatcher")
    token = form_token(client, f"/tickets/{ticket.number}")
    response = client.post(
        f"/tickets/{ticket.number}/dispatch",
        data={
            "csrf_token": token,
            "version": ticket.version,
            "lead_unit": DONGGUAN,
            "category": "",
            "note": "说明<保留>",
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "派单前请先确定事项分类" in html
    assert "说明&lt;保留&gt;</textarea>" in html
    db.expire_all()
    assert ticket.status == TicketStatus.received


@pytest.fixture
def return_requested(db, user, dispatched):
    def make():
        ticket = dispatched()
        handler = user("dongguan")
        ops.sign(db, handler, ticket)
        ops.request_return(
            db, handler, ticket, return_reason=ReturnReason.not_our_duty, note="路灯归城管局"
        )
        db.flush()
        return ticket

    return make


def test_return_requests_listed_and_upheld(
    client, db, user, form_token, return_requested, web_login
):
    ticket = return_requested()
    web_login(client, "dispatcher")
    html = client.get("/dispatch").get_data(as_text=True)
    section = html[html.index('id="returns"') :]
    assert ticket.number in section and "非本单位职责" in section and "路灯归城管局" in section
    token = form_token(client, "/dispatch")
    response = client.post(
        f"/tickets/{ticket.number}/return-decision",
        data={
            "csrf_token": token,
            "version": ticket.version,
            "approve": "true",
            "lead_unit": CGJ,
            "note": "同意，改派城管局",
            "back": "/dispatch",
        },
    )
    assert response.status_code == 302
    db.expire_all()
    assert ticket.status == TicketStatus.dispatched and ticket.lead_unit.code == CGJ
    old = db.scalars(
        sa.select(Assignment).where(
            Assignment.ticket_id == ticket.id, Assignment.unit_id == unit(db, DONGGUAN).id
        )
    ).one()
    assert old.return_status == DecisionStatus.approved and not old.active


def test_return_request_rejected(client, db, user, form_token, return_requested, web_login):
    ticket = return_requested()
    web_login(client, "dispatcher")
    token = form_token(client, "/dispatch")
    response = client.post(
        f"/tickets/{ticket.number}/return-decision",
        data={
            "csrf_token": token,
            "version": ticket.version,
            "approve": "false",
            "note": "属于街道职责",
        },
    )
    assert response.status_code == 302
    db.expire_all()
    assert ticket.status == TicketStatus.signed and ticket.lead_unit.code == DONGGUAN
    assert ticket.lead_assignment.return_status == DecisionStatus.rejected


def test_uphold_without_new_lead_is_refused(
    client, db, user, form_token, return_requested, web_login
):
    ticket = return_requested()
    web_login(client, "dispatcher")
    token = form_token(client, "/dispatch")
    response = client.post(
        f"/tickets/{ticket.number}/return-decision",
        data={"csrf_token": token, "version": ticket.version, "approve": "true", "note": "同意"},
    )
    assert response.status_code == 422
    assert "新的主办单位" in response.get_data(as_text=True)
    db.expire_all()
    assert ticket.status == TicketStatus.return_requested


def test_extension_requests_decided_from_the_queue(
    client, db, user, dispatched, form_token, web_login
):
    ticket = dispatched()
    handler = user("dongguan")
    ops.sign(db, handler, ticket)
    ops.request_extension(db, handler, ticket, days=3, reason="需协调施工队")
    db.flush()
    old_due = ticket.finish_due
    web_login(client, "dispatcher")
    html = client.get("/dispatch").get_data(as_text=True)
    assert "需协调施工队" in html[html.index('id="extensions"') :]
    token = form_token(client, "/dispatch")
    response = client.post(
        f"/tickets/{ticket.number}/extension-decision",
        data={"csrf_token": token, "version": ticket.version, "approve": "true", "note": "同意"},
    )
    assert response.status_code == 302
    db.expire_all()
    extension = db.scalars(sa.select(Extension).where(Extension.ticket_id == ticket.id)).one()
    assert extension.status == DecisionStatus.approved
    assert ticket.finish_due > old_due


# -- unit handler inbox -------------------------------------------------------------------------


def test_inbox_only_for_unit_handlers(client, db, web_login):
    web_login(client, "dispatcher")
    assert client.get("/inbox").status_code == 403


def test_inbox_lists_only_my_units_tickets_grouped(client, db, user, dispatched, web_login):
    mine = dispatched(title="东关的路灯")
    signed = dispatched(title="东关已签收")
    ops.sign(db, user("dongguan"), signed)
    other = dispatched(lead=CGJ, title="城管局的工单")
    db.flush()
    web_login(client, "dongguan")
    html = client.get("/inbox").get_data(as_text=True)
    assert mine.number in html and signed.number in html
    assert other.number not in html and "城管局的工单" not in html
    to_sign = html[html.index('id="to_sign"') : html.index('id="doing"')]
    doing = html[html.index('id="doing"') : html.index('id="review"')]
    assert mine.number in to_sign and signed.number not in to_sign
    assert signed.number in doing
    assert "主办" in to_sign


def test_inbox_colours_deadlines_with_words(client, db, user, dispatched, web_login):
    now = utcnow()
    late = dispatched(now=now - dt.timedelta(hours=5), title="超时工单")
    close = dispatched(now=now - dt.timedelta(minutes=105), title="临近工单")
    fresh = dispatched(now=now, title="新工单")
    web_login(client, "dongguan")
    html = client.get("/inbox").get_data(as_text=True)

    def sign_cell(ticket):
        row = html[html.index(ticket.number) :]
        return re.search(r'<span class="dl dl-(\w+)" title="签收时限">([^<]*)</span>', row)

    assert sign_cell(late).group(1) == "overdue" and "已超时 3 小时" in sign_cell(late).group(2)
    assert sign_cell(close).group(1) == "warn" and "即将到期" in sign_cell(close).group(2)
    assert sign_cell(fresh).group(1) == "ok" and "剩余 1 小时" in sign_cell(fresh).group(2)
    # Local time (Asia/Shanghai, UTC+8) is shown, not UTC.
    local_due = (fresh.sign_due + dt.timedelta(hours=8)).strftime("%Y-%m-%d %H:%M")
    assert local_due in sign_cell(fresh).group(2)


def test_inbox_escapes_ticket_text(client, db, user, dispatched, web_login):
    ticket = dispatched(title="<script>alert(1)</script>")
    web_login(client, "dongguan")
    html = client.get("/inbox").get_data(as_text=True)
    assert ticket.number in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_assisting_unit_sees_its_own_signature(client, db, user, make_ticket, web_login):
    ticket = make_ticket(user("operator"))
    ops.dispatch(
        db,
        user("dispatcher"),
        ticket,
        lead=unit(db, DONGGUAN),
        assists=[unit(db, CGJ)],
        category=category(db, STREETLIGHT),
    )
    ops.sign(db, user("dongguan"), ticket)
    db.flush()
    web_login(client, "cgj")
    html = client.get("/inbox").get_data(as_text=True)
    to_sign = html[html.index('id="to_sign"') : html.index('id="doing"')]
    assert ticket.number in to_sign and "协办" in to_sign
    assert db.get(Ticket, ticket.id).status == TicketStatus.signed


# -- the ticket page ---------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64


def page(client, ticket):
    return client.get(f"/tickets/{ticket.number}")


@pytest.fixture
def post(form_token):
    def make(client, ticket, slug, data=None, **kwargs):
        token = form_token(client, "/inbox")
        body = {"csrf_token": token, "version": ticket.version, **(data or {})}
        return client.post(f"/tickets/{ticket.number}/{slug}", data=body, **kwargs)

    return make


def events(db, ticket):
    return db.scalars(
        sa.select(TicketEvent.action)
        .where(TicketEvent.ticket_id == ticket.id)
        .order_by(TicketEvent.id)
    ).all()


@pytest.fixture
def signed(db, user, dispatched):
    ticket = dispatched(area="370705001")
    ops.sign(db, user("dongguan"), ticket)
    db.flush()
    return ticket


@pytest.fixture
def contacted(db, user, signed):
    ops.contact(db, user("dongguan"), signed, note="已电话联系")
    db.flush()
    return signed


# -- scope --------------------------------------------------------------------------------------


def test_page_needs_login_and_404_for_unknown(client, db, user, dispatched, web_login):
    ticket = dispatched()
    assert page(client, ticket).status_code == 302
    web_login(client, "dispatcher")
    assert page(client, ticket).status_code == 200
    response = client.get("/tickets/WF0000000099999999")
    assert response.status_code == 404 and "页面或工单不存在" in response.get_data(as_text=True)


def test_other_units_handler_gets_403_on_page_and_actions(
    client, db, user, dispatched, post, web_login
):
    ticket = dispatched()
    web_login(client, "cgj")
    response = page(client, ticket)
    assert response.status_code == 403
    assert ticket.title not in response.get_data(as_text=True)
    assert post(client, ticket, "sign").status_code == 403
    assert post(client, ticket, "finish", {"result": "越权办结"}).status_code == 403
    db.expire_all()
    assert ticket.status == TicketStatus.dispatched
    assert events(db, ticket) == ["receive", "dispatch"]


def test_page_shows_history_assignments_and_deadlines(client, db, user, signed, web_login):
    web_login(client, "dongguan")
    html = page(client, signed).get_data(as_text=True)
    for text in (
        "已签收",
        "路灯故障",
        "东关街道办事处",
        "奎文区人民政府",
        "抄送",
        "派单",
        "签收",
        "已派单 → 已签收",
        "派单员",
        "承办人",
        'title="办结时限"',
        "东关街道",
    ):
        assert text in html, text
    # Actions of the unit handler in 已签收: no sign again, contact / extension / return.
    assert "/contact" in html and "/extension-request" in html and "/return-request" in html
    n = signed.number
    assert f"/tickets/{n}/sign" not in html and f"/tickets/{n}/dispatch" not in html


def test_actions_follow_role_and_state(client, db, user, dispatched, web_login):
    ticket = dispatched()
    web_login(client, "kuiwen")  # the district government holds a copy: nothing to do
    html = page(client, ticket).get_data(as_text=True)
    assert page(client, ticket).status_code == 200 and 'id="actions"' not in html
    web_login(client, "dongguan")
    html = page(client, ticket).get_data(as_text=True)
    assert "/sign" in html and "/finish" not in html


def test_phone_masked_for_leader_full_for_handler(client, db, user, dispatched, web_login):
    ticket = dispatched(area="370705001", requester_phone="13805361234")
    web_login(client, "kuiwen-leader")
    html = page(client, ticket).get_data(as_text=True)
    assert "138****1234" in html and "13805361234" not in html
    assert 'id="actions"' not in html
    web_login(client, "dongguan")
    assert "13805361234" in page(client, ticket).get_data(as_text=True)


def test_ticket_text_is_escaped(client, db, user, dispatched, web_login):
    payload = '<img src=x onerror="alert(1)">'
    ticket = dispatched(title=payload, content=payload + "内容", requester_name=payload)
    web_login(client, "dongguan")
    html = page(client, ticket).get_data(as_text=True)
    assert payload not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html


# -- unit handler actions -----------------------------------------------------------------------


def test_sign_contact_through_forms(client, db, user, dispatched, post, web_login):
    ticket = dispatched()
    web_login(client, "dongguan")
    response = post(client, ticket, "sign")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/tickets/{ticket.number}"
    db.expire_all()
    assert ticket.status == TicketStatus.signed and ticket.signed_at is not None
    assert "签收" in page(client, ticket).get_data(as_text=True)
    response = post(client, ticket, "contact", {"note": "已与王先生通话"})
    assert response.status_code == 302
    db.expire_all()
    assert ticket.status == TicketStatus.contacted
    assert events(db, ticket)[-1] == "contact"


def test_contact_without_note_keeps_form_and_changes_nothing(
    client, db, user, signed, post, web_login
):
    web_login(client, "dongguan")
    response = post(client, signed, "contact", {"note": "   "})
    assert response.status_code == 422
    assert "请填写联系情况" in response.get_data(as_text=True)
    db.expire_all()
    assert signed.status == TicketStatus.signed


def test_sign_twice_from_a_stale_page_is_a_conflict(client, db, user, dispatched, post, web_login):
    ticket = dispatched()
    web_login(client, "dongguan")
    version = ticket.version
    assert post(client, ticket, "sign").status_code == 302
    response = post(client, ticket, "sign", {"version": version})
    assert response.status_code == 409
    assert "工单已被他人更新" in response.get_data(as_text=True)
    assert events(db, ticket).count("sign") == 1


def test_request_extension_through_form(client, db, user, signed, post, web_login):
    web_login(client, "dongguan")
    bad = post(client, signed, "extension-request", {"days": "31", "reason": "工程量大"})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert "1–30" in html and "工程量大</textarea>" in html
    assert (
        post(client, signed, "extension-request", {"days": "5", "reason": "工程量大"}).status_code
        == 302
    )
    extension = db.scalars(sa.select(Extension).where(Extension.ticket_id == signed.id)).one()
    assert (extension.days, extension.status) == (5, DecisionStatus.pending)
    html = page(client, signed).get_data(as_text=True)
    assert "/extension-request" not in html  # one pending request at a time


def test_request_return_through_form(client, db, user, signed, post, web_login):
    web_login(client, "dongguan")
    response = post(
        client,
        signed,
        "return-request",
        {"return_reason": ReturnReason.wrong_territory.value, "note": "地址在潍城区"},
    )
    assert response.status_code == 302
    db.expire_all()
    assert signed.status == TicketStatus.return_requested
    assert signed.lead_assignment.return_reason == ReturnReason.wrong_territory
    inbox = client.get("/inbox").get_data(as_text=True)
    review = inbox[inbox.index('id="review"') : inbox.index('id="done"')]
    assert signed.number in review


@pytest.fixture
def finish(form_token):
    def make(client, ticket, result, files):
        token = form_token(client, "/inbox")
        data = {"csrf_token": token, "version": ticket.version, "result": result}
        data["photos"] = [(io.BytesIO(content), name) for name, content in files]
        return client.post(
            f"/tickets/{ticket.number}/finish", data=data, content_type="multipart/form-data"
        )

    return make


def test_finish_with_photo_stores_it_and_scopes_download(
    client, db, user, contacted, app, finish, web_login
):
    web_login(client, "dongguan")
    response = finish(client, contacted, "路灯已更换", [("现场.png", PNG)])
    assert response.status_code == 302
    db.expire_all()
    assert contacted.status == TicketStatus.finished and contacted.result == "路灯已更换"
    photo = db.scalars(sa.select(Attachment).where(Attachment.ticket_id == contacted.id)).one()
    assert (photo.purpose, photo.content_type, photo.size) == ("result", "image/png", len(PNG))
    event = db.scalars(
        sa.select(TicketEvent)
        .where(TicketEvent.ticket_id == contacted.id)
        .order_by(TicketEvent.id.desc())
    ).first()
    assert event.action == "finish" and photo.event_id == event.id
    html = page(client, contacted).get_data(as_text=True)
    assert f"/attachments/{photo.id}" in html
    download = client.get(f"/attachments/{photo.id}")
    assert download.status_code == 200 and download.data == PNG
    web_login(client, "cgj")
    assert client.get(f"/attachments/{photo.id}").status_code == 403


def test_a_photo_keeps_its_own_stricter_policy(client, db, contacted, finish, web_login):
    """The download sets its own Content-Security-Policy; the application's hook adds the
    other headers but does not replace it (hotline/headers.py)."""
    web_login(client, "dongguan")
    assert finish(client, contacted, "路灯已更换", [("现场.png", PNG)]).status_code == 302
    photo = db.scalars(sa.select(Attachment).where(Attachment.ticket_id == contacted.id)).one()
    download = client.get(f"/attachments/{photo.id}")
    assert download.status_code == 200 and download.mimetype == "image/png"
    assert download.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert download.headers["X-Frame-Options"] == "DENY"
    assert download.headers["X-Content-Type-Options"] == "nosniff"


def test_finish_with_a_large_real_photo_passes_the_form_limit(
    client, db, user, contacted, finish, web_login
):
    """A photo larger than the JSON body limit (256 KB) but within the photo limit."""
    web_login(client, "dongguan")
    big = PNG + b"\x00" * (600 * 1024)
    response = finish(client, contacted, "已处理", [("大图.png", big)])
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    assert db.scalars(
        sa.select(Attachment.size).where(Attachment.ticket_id == contacted.id)
    ).one() == len(big)


def test_finish_with_text_disguised_as_png_is_refused(
    client, db, user, contacted, finish, web_login
):
    web_login(client, "dongguan")
    response = finish(client, contacted, "路灯已更换<b>", [("photo.png", b"just some text")])
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "“photo.png”不是 JPEG、PNG 或 WebP 图片" in html
    assert "路灯已更换&lt;b&gt;</textarea>" in html  # the result text is kept
    db.expire_all()
    assert contacted.status == TicketStatus.contacted and contacted.result is None
    assert db.scalar(sa.select(sa.func.count()).select_from(Attachment)) == 0
    assert events(db, contacted)[-1] == "contact"


def test_finish_with_too_large_photo_is_refused(
    client, db, user, contacted, app, monkeypatch, finish, web_login
):
    monkeypatch.setitem(app.config, "ATTACHMENT_MAX_BYTES", 64)
    web_login(client, "dongguan")
    response = finish(client, contacted, "路灯已更换", [("大.png", PNG + b"\x00" * 64)])
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "照片“大.png”超过" in html and "路灯已更换</textarea>" in html
    db.expire_all()
    assert contacted.status == TicketStatus.contacted
    assert db.scalar(sa.select(sa.func.count()).select_from(Attachment)) == 0


def test_finish_needs_contact_first(client, db, user, signed, finish, web_login):
    web_login(client, "dongguan")
    assert "/finish" not in page(client, signed).get_data(as_text=True)
    response = finish(client, signed, "已处理", [])
    assert response.status_code == 409
    assert "请先联系诉求人" in response.get_data(as_text=True)
    assert db.get(Ticket, signed.id).status == TicketStatus.signed


def test_missing_csrf_token_is_refused(client, db, user, dispatched, web_login):
    ticket = dispatched()
    web_login(client, "dongguan")
    response = client.post(f"/tickets/{ticket.number}/sign", data={"version": ticket.version})
    assert response.status_code == 400
    db.expire_all()
    assert ticket.status == TicketStatus.dispatched


def test_unknown_action_is_404(client, db, user, dispatched, form_token, web_login):
    ticket = dispatched()
    web_login(client, "dongguan")
    token = form_token(client, "/inbox")
    response = client.post(f"/tickets/{ticket.number}/close", data={"csrf_token": token})
    assert response.status_code == 404


def test_wrong_role_action_is_refused_with_message(
    client, db, user, form_token, make_ticket, post, web_login
):
    ticket = make_ticket(user("operator"))
    web_login(client, "dongguan")
    # A handler cannot see a ticket not yet dispatched to its unit at all.
    assert post(client, ticket, "sign").status_code == 403
    web_login(client, "supervisor")
    token = form_token(client, f"/tickets/{ticket.number}")
    response = client.post(
        f"/tickets/{ticket.number}/dispatch",
        data={
            "csrf_token": token,
            "version": ticket.version,
            "lead_unit": CGJ,
            "category": "010103",
        },
    )
    assert response.status_code == 403
    assert "无权执行“派单”" in response.get_data(as_text=True)
    assert db.get(Ticket, ticket.id).status == TicketStatus.received


# -- no query per row -----------------------------------------------------------------------------


def test_dispatch_queue_queries_do_not_grow_with_rows(
    client, db, varied_tickets, count_queries, web_login
):
    """The queue, the return requests and the extension requests each load their rows and
    relations in a fixed number of queries."""

    def batch(n):
        return [
            *varied_tickets(n, "received"),
            *varied_tickets(n, "return_requested"),
            *varied_tickets(n, "extension_requested"),
        ]

    first = batch(1)
    web_login(client, "dispatcher")
    assert client.get("/dispatch").status_code == 200  # caches warmed
    db.expunge_all()
    with count_queries() as few:
        html = client.get("/dispatch").get_data(as_text=True)
    assert numbers_in(html, [t.number for t in first]) == [t.number for t in first]
    more = batch(3)
    db.expunge_all()
    with count_queries() as many:
        html = client.get("/dispatch").get_data(as_text=True)
    assert set(numbers_in(html, [t.number for t in first + more])) == {
        t.number for t in first + more
    }
    assert many.count == few.count, many


def test_inbox_queries_do_not_grow_with_rows(client, db, varied_tickets, count_queries, web_login):
    """The unit handler's inbox loads its tickets, their assignments, units and categories and
    the pending extensions in a fixed number of queries."""

    def batch(n):
        return [
            *varied_tickets(n, "dispatched", lead=DONGGUAN),
            *varied_tickets(n, "signed", lead=DONGGUAN),
            *varied_tickets(n, "extension_requested", lead=DONGGUAN),
        ]

    first = batch(1)
    web_login(client, "dongguan")
    assert client.get("/inbox").status_code == 200  # caches warmed
    db.expunge_all()
    with count_queries() as few:
        html = client.get("/inbox").get_data(as_text=True)
    assert set(numbers_in(html, [t.number for t in first])) == {t.number for t in first}
    more = batch(3)
    db.expunge_all()
    with count_queries() as many:
        html = client.get("/inbox").get_data(as_text=True)
    assert set(numbers_in(html, [t.number for t in first + more])) == {
        t.number for t in first + more
    }
    assert many.count == few.count, many


# -- 调整分类和紧急程度 --------------------------------------------------------------------------


def test_reclassify_form_for_dispatcher_and_supervisor_only(
    client, db, user, dispatched, web_login
):
    ticket = dispatched(urgency=desk.Urgency.emergency)
    for username in ("dispatcher", "supervisor"):
        web_login(client, username)
        html = page(client, ticket).get_data(as_text=True)
        assert 'id="reclassify"' in html, username
        assert 'data-picker="category"' in html
        # Names grouped by their parents, the current values preselected.
        assert '<optgroup label="城乡建设 › 市政设施" data-py="cxjs szss">' in html
        assert re.search(r'<option value="010103" [^>]*selected>路灯故障</option>', html)
        assert '<option value="emergency" selected>紧急</option>' in html
    web_login(client, "dongguan")
    assert 'id="reclassify"' not in page(client, ticket).get_data(as_text=True)


def test_reclassify_through_the_form(client, db, user, dispatched, post, web_login):
    ticket = dispatched(urgency=desk.Urgency.emergency)
    web_login(client, "supervisor")
    response = post(
        client,
        ticket,
        "reclassify",
        {
            "category": STREETLIGHT,
            "urgency": "normal",
            "request_type": ticket.request_type.value,
            "reason": "核实无人受伤",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    db.expire_all()
    assert ticket.urgency.value == "normal"
    assert events(db, ticket)[-1] == "reclassify"
    html = page(client, ticket).get_data(as_text=True)
    assert "紧急程度由“紧急”改为“一般”" in html


def test_reclassify_form_refusal_keeps_what_was_typed(
    client, db, user, dispatched, post, web_login
):
    ticket = dispatched(urgency=desk.Urgency.emergency)
    web_login(client, "dispatcher")
    response = post(client, ticket, "reclassify", {"urgency": "normal", "reason": " "})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "请填写调整理由" in html
    assert '<option value="normal" selected>一般</option>' in html
    db.expire_all()
    assert ticket.urgency.value == "emergency"


def test_reclassify_not_offered_once_finished(client, db, user, contacted, web_login):
    ops.finish(db, user("dongguan"), contacted, result="已修复")
    db.flush()
    web_login(client, "dispatcher")
    assert 'id="reclassify"' not in page(client, contacted).get_data(as_text=True)
