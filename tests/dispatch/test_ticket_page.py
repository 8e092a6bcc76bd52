"""The ticket page: scope (403 for another unit, 404 unknown), what it shows to whom, and the
unit handler's actions through its forms, including the finish with photos."""

import io

import pytest
import sqlalchemy as sa

from dispatch import operations as ops
from hotline.enums import DecisionStatus, ReturnReason, TicketStatus
from hotline.models import Attachment, Extension, Ticket, TicketEvent
from tests.conftest import form_token, make_ticket, web_login
from tests.dispatch.test_desk import CGJ, dispatched

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64


def page(client, ticket):
    return client.get(f"/tickets/{ticket.number}")


def post(client, ticket, slug, data=None, **kwargs):
    # Every page a logged-in user gets (even a 403) carries the logout form's token.
    token = form_token(client, "/inbox")
    body = {"csrf_token": token, "version": ticket.version, **(data or {})}
    return client.post(f"/tickets/{ticket.number}/{slug}", data=body, **kwargs)


def events(db, ticket):
    return db.scalars(
        sa.select(TicketEvent.action)
        .where(TicketEvent.ticket_id == ticket.id)
        .order_by(TicketEvent.id)
    ).all()


@pytest.fixture
def signed(db, user):
    ticket = dispatched(db, user, area="370705001")
    ops.sign(db, user("dongguan"), ticket)
    db.flush()
    return ticket


@pytest.fixture
def contacted(db, user, signed):
    ops.contact(db, user("dongguan"), signed, note="已电话联系")
    db.flush()
    return signed


# -- scope --------------------------------------------------------------------------------------


def test_page_needs_login_and_404_for_unknown(client, db, user):
    ticket = dispatched(db, user)
    assert page(client, ticket).status_code == 302
    web_login(client, "dispatcher")
    assert page(client, ticket).status_code == 200
    response = client.get("/tickets/WF0000000099999999")
    assert response.status_code == 404 and "页面或工单不存在" in response.get_data(as_text=True)


def test_other_units_handler_gets_403_on_page_and_actions(client, db, user):
    ticket = dispatched(db, user)
    web_login(client, "cgj")
    response = page(client, ticket)
    assert response.status_code == 403
    assert ticket.title not in response.get_data(as_text=True)
    assert post(client, ticket, "sign").status_code == 403
    assert post(client, ticket, "finish", {"result": "越权办结"}).status_code == 403
    db.expire_all()
    assert ticket.status == TicketStatus.dispatched
    assert events(db, ticket) == ["receive", "dispatch"]


def test_page_shows_history_assignments_and_deadlines(client, db, user, signed):
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


def test_actions_follow_role_and_state(client, db, user):
    ticket = dispatched(db, user)
    web_login(client, "kuiwen")  # the district government holds a copy: nothing to do
    html = page(client, ticket).get_data(as_text=True)
    assert page(client, ticket).status_code == 200 and 'id="actions"' not in html
    web_login(client, "dongguan")
    html = page(client, ticket).get_data(as_text=True)
    assert "/sign" in html and "/finish" not in html


def test_phone_masked_for_leader_full_for_handler(client, db, user):
    ticket = dispatched(db, user, area="370705001", requester_phone="13805361234")
    web_login(client, "kuiwen-leader")
    html = page(client, ticket).get_data(as_text=True)
    assert "138****1234" in html and "13805361234" not in html
    assert 'id="actions"' not in html
    web_login(client, "dongguan")
    assert "13805361234" in page(client, ticket).get_data(as_text=True)


def test_ticket_text_is_escaped(client, db, user):
    payload = '<img src=x onerror="alert(1)">'
    ticket = dispatched(db, user, title=payload, content=payload + "内容", requester_name=payload)
    web_login(client, "dongguan")
    html = page(client, ticket).get_data(as_text=True)
    assert payload not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html


# -- unit handler actions -----------------------------------------------------------------------


def test_sign_contact_through_forms(client, db, user):
    ticket = dispatched(db, user)
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


def test_contact_without_note_keeps_form_and_changes_nothing(client, db, user, signed):
    web_login(client, "dongguan")
    response = post(client, signed, "contact", {"note": "   "})
    assert response.status_code == 422
    assert "请填写联系情况" in response.get_data(as_text=True)
    db.expire_all()
    assert signed.status == TicketStatus.signed


def test_sign_twice_from_a_stale_page_is_a_conflict(client, db, user):
    ticket = dispatched(db, user)
    web_login(client, "dongguan")
    version = ticket.version
    assert post(client, ticket, "sign").status_code == 302
    response = post(client, ticket, "sign", {"version": version})
    assert response.status_code == 409
    assert "工单已被他人更新" in response.get_data(as_text=True)
    assert events(db, ticket).count("sign") == 1


def test_request_extension_through_form(client, db, user, signed):
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


def test_request_return_through_form(client, db, user, signed):
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


def finish(client, ticket, result, files):
    token = form_token(client, "/inbox")
    data = {"csrf_token": token, "version": ticket.version, "result": result}
    data["photos"] = [(io.BytesIO(content), name) for name, content in files]
    return client.post(
        f"/tickets/{ticket.number}/finish", data=data, content_type="multipart/form-data"
    )


def test_finish_with_photo_stores_it_and_scopes_download(client, db, user, contacted, app):
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


def test_a_photo_keeps_its_own_stricter_policy(client, db, contacted):
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


def test_finish_with_a_large_real_photo_passes_the_form_limit(client, db, user, contacted):
    """A photo larger than the JSON body limit (256 KB) but within the photo limit."""
    web_login(client, "dongguan")
    big = PNG + b"\x00" * (600 * 1024)
    response = finish(client, contacted, "已处理", [("大图.png", big)])
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    assert db.scalars(
        sa.select(Attachment.size).where(Attachment.ticket_id == contacted.id)
    ).one() == len(big)


def test_finish_with_text_disguised_as_png_is_refused(client, db, user, contacted):
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


def test_finish_with_too_large_photo_is_refused(client, db, user, contacted, app, monkeypatch):
    monkeypatch.setitem(app.config, "ATTACHMENT_MAX_BYTES", 64)
    web_login(client, "dongguan")
    response = finish(client, contacted, "路灯已更换", [("大.png", PNG + b"\x00" * 64)])
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "照片“大.png”超过" in html and "路灯已更换</textarea>" in html
    db.expire_all()
    assert contacted.status == TicketStatus.contacted
    assert db.scalar(sa.select(sa.func.count()).select_from(Attachment)) == 0


def test_finish_needs_contact_first(client, db, user, signed):
    web_login(client, "dongguan")
    assert "/finish" not in page(client, signed).get_data(as_text=True)
    response = finish(client, signed, "已处理", [])
    assert response.status_code == 409
    assert "请先联系诉求人" in response.get_data(as_text=True)
    assert db.get(Ticket, signed.id).status == TicketStatus.signed


def test_missing_csrf_token_is_refused(client, db, user):
    ticket = dispatched(db, user)
    web_login(client, "dongguan")
    response = client.post(f"/tickets/{ticket.number}/sign", data={"version": ticket.version})
    assert response.status_code == 400
    db.expire_all()
    assert ticket.status == TicketStatus.dispatched


def test_unknown_action_is_404(client, db, user):
    ticket = dispatched(db, user)
    web_login(client, "dongguan")
    token = form_token(client, "/inbox")
    response = client.post(f"/tickets/{ticket.number}/close", data={"csrf_token": token})
    assert response.status_code == 404


def test_wrong_role_action_is_refused_with_message(client, db, user):
    ticket = make_ticket(db, user("operator"))
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
