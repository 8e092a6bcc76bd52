"""The pages of 协同办理 (dispatch/pages/cohandling.py and the ticket page's partials): an
assisting unit finds the ticket in its inbox and files its part with a photo, the lead sees
each assist's state and gives its reason when finishing without them, the operator and the
dispatcher split a call with the form (blank rows ignored, a bad row refusing all), the
parent and children link each other, and the citizen sees the matters together."""

import io

import pytest
import sqlalchemy as sa

from dispatch import cohandling
from dispatch import operations as ops
from hotline.enums import TicketStatus
from hotline.models import Attachment, Ticket
from tests.dispatch.common import DONGGUAN, PHONE, STREETLIGHT
from tests.dispatch.pages.test_citizen_track import _login as citizen_login
from tests.dispatch.pages.test_desk import PNG

S = TicketStatus
CGJ, WATER = "U-CGJ", "U-WATER"


@pytest.fixture
def assisted(dispatched):
    return lambda: dispatched(assists=(CGJ, WATER))


def _post(client, form_token, ticket, slug, data, **kwargs):
    token = form_token(client, f"/tickets/{ticket.number}")
    return client.post(
        f"/tickets/{ticket.number}/{slug}",
        data={"csrf_token": token, "version": ticket.version, **data},
        **kwargs,
    )


def test_an_assist_finds_the_ticket_and_reports_with_a_photo(
    client, db, user, assisted, form_token, web_login
):
    ticket = assisted()
    web_login(client, "cgj")
    assert ticket.number in client.get("/inbox").get_data(as_text=True)
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert 'id="assist-report"' not in page  # signs first
    assert "未签收" in page
    assert _post(client, form_token, ticket, "sign", {}).status_code == 302
    db.expire_all()
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert 'id="assist-report"' in page
    response = _post(
        client,
        form_token,
        ticket,
        "assist-report",
        {"report": "已清运<b>垃圾</b>", "photos": [(io.BytesIO(PNG), "清运.png")]},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    db.expire_all()
    part = next(a for a in ticket.assignments if a.active and a.unit.code == CGJ)
    assert part.report == "已清运<b>垃圾</b>"
    photo = db.scalars(sa.select(Attachment).where(Attachment.purpose == "assist")).one()
    assert photo.ticket_id == ticket.id
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "已清运&lt;b&gt;垃圾&lt;/b&gt;" in page
    assert 'id="assist-report"' not in page


def test_a_refused_report_keeps_what_was_typed(client, db, user, assisted, form_token, web_login):
    ticket = assisted()
    web_login(client, "water")
    ops.sign(db, user("cgj"), ticket)  # another unit signed, not this one
    db.flush()
    response = _post(client, form_token, ticket, "assist-report", {"report": "我方已处理"})
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "请先签收工单，再提交协办反馈" in html


def test_the_lead_sees_the_assists_and_gives_its_reason(
    client, db, user, assisted, form_token, web_login
):
    ticket = assisted()
    for name in ("dongguan", "cgj"):
        ops.sign(db, user(name), ticket)
    ops.contact(db, user("dongguan"), ticket, note="已联系")
    cohandling.report_assist(db, user("cgj"), ticket, report="已清运")
    db.flush()
    web_login(client, "dongguan")
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    section = page[page.index('id="assist-reports"') :]
    assert "已反馈" in section and "已清运" in section and "未签收" in section
    assert 'name="assists_note"' in page
    refused = _post(client, form_token, ticket, "finish", {"result": "已修复"})
    assert refused.status_code == 409
    assert "协办单位尚未提交协办反馈：" in refused.get_data(as_text=True)
    done = _post(
        client, form_token, ticket, "finish", {"result": "已修复", "assists_note": "水务无需到场"}
    )
    assert done.status_code == 302
    db.expire_all()
    assert db.get(Ticket, ticket.id).status == S.finished


def test_the_page_reads_the_co_handling_once(client, db, user, assisted, web_login, count_queries):
    ticket = assisted()
    for name in ("dongguan", "cgj"):
        ops.sign(db, user(name), ticket)
    ops.contact(db, user("dongguan"), ticket, note="已联系")
    cohandling.report_assist(db, user("cgj"), ticket, report="已清运")
    db.flush()
    web_login(client, "dongguan")
    with count_queries() as counted:
        page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert 'id="assist-reports"' in page and 'name="assists_note"' in page
    # The finish form and the co-handling section share one ``cohandling_view``.
    children = [s for s in counted.statements if "tickets.parent_id =" in s]
    assert len(children) == 1, children


def _rows(*units, area=("370705", "370705001")):
    texts = ["小区门口路灯不亮", "路边井盖缺失", "河道有异味"]
    data = {}
    for i, code in enumerate(units):
        data.update({f"content-{i}": texts[i], f"category-{i}": STREETLIGHT, f"unit-{i}": code})
    data["area-0"] = list(area)
    # A blank row (as the form posts its unused rows) is no child.
    data.update({"content-5": "", "category-5": "", "unit-5": "", "area-5": ["", ""]})
    return data


@pytest.mark.parametrize("who,state", [("dispatcher", S.dispatched), ("operator", S.received)])
def test_a_call_is_split_with_the_form(
    client, db, user, make_ticket, form_token, web_login, who, state
):
    parent = make_ticket(user("operator"))
    web_login(client, who)
    page = client.get(f"/tickets/{parent.number}").get_data(as_text=True)
    assert 'id="split-form"' in page and 'name="unit-7"' in page
    response = _post(client, form_token, parent, "split", _rows(DONGGUAN, CGJ))
    assert response.status_code == 302, response.get_data(as_text=True)
    db.expire_all()
    children = cohandling.children_of(db, parent)
    assert [c.status for c in children] == [state, state]
    assert children[0].area.code == "370705001"
    page = client.get(f"/tickets/{parent.number}").get_data(as_text=True)
    assert 'id="split-children"' in page
    for child in children:
        assert f'href="/tickets/{child.number}"' in page
    child_page = client.get(f"/tickets/{children[0].number}").get_data(as_text=True)
    assert f'href="/tickets/{parent.number}"' in child_page
    assert "（第 1 项）" in child_page


def test_a_bad_row_refuses_the_whole_split(
    client, db, user, make_ticket, form_token, web_login, ticket_count
):
    parent = make_ticket(user("operator"))
    web_login(client, "dispatcher")
    count = ticket_count()
    data = _rows(DONGGUAN, CGJ)
    data["unit-1"] = "U-HOTLINE"
    response = _post(client, form_token, parent, "split", data)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "第 2 项：不能派给热线中心本身" in html
    assert "路边井盖缺失</textarea>" in html  # what was typed stays
    db.expire_all()
    assert ticket_count() == count
    assert db.get(Ticket, parent.id).status == S.received


def test_the_split_form_is_only_for_operators_and_dispatchers(
    client, db, user, make_ticket, form_token, web_login
):
    parent = make_ticket(user("operator"))
    web_login(client, "supervisor")
    assert 'id="split-form"' not in client.get(f"/tickets/{parent.number}").get_data(as_text=True)
    token = form_token(client, f"/tickets/{parent.number}")
    response = client.post(
        f"/tickets/{parent.number}/split",
        data={"csrf_token": token, "version": parent.version, **_rows(DONGGUAN, CGJ)},
    )
    assert response.status_code == 403


def test_the_citizen_sees_the_matters_of_a_split_call(client, db, user, make_ticket):
    parent = make_ticket(user("operator"))
    cohandling.split(
        db,
        user("dispatcher"),
        parent,
        children=[
            cohandling.Child("路灯不亮", _category(db), None, _unit(db, DONGGUAN)),
            cohandling.Child("井盖缺失", _category(db), None, _unit(db, CGJ)),
        ],
    )
    db.flush()
    citizen_login(client, db, PHONE)
    page = client.get(f"/citizen/mine/{parent.number}").get_data(as_text=True)
    assert "已分项办理" in page and 'id="split-parts"' in page
    for child in cohandling.children_of(db, parent):
        assert child.number in page
    child = cohandling.children_of(db, parent)[0]
    page = client.get(f"/citizen/mine/{child.number}").get_data(as_text=True)
    assert 'id="split-parent"' in page and parent.number in page


def _category(db):
    from hotline.models import Category

    return db.scalars(sa.select(Category).where(Category.code == STREETLIGHT)).one()


def _unit(db, code):
    from hotline.models import Unit

    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()
