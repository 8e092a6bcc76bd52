"""The 市民端's tracking pages (dispatch.pages.citizen_track): 我的诉求 with a code, one ticket by
number, rating from the finish text's link; uniform 未找到, CSRF on every form, escaping, the
session cookie, rate limits."""

import datetime as dt
import re
import uuid

import sqlalchemy as sa

from dispatch import citizen_notices
from hotline.enums import TicketStatus
from hotline.models import CitizenSession, OutboxMessage, VerificationCode
from tests.dispatch.common import PHONE
from tests.helpers import FORM_TOKEN, texted_code

OTHER_PHONE = "13905360002"


def _token(page):
    match = FORM_TOKEN.search(page.get_data(as_text=True))
    assert match, page.get_data(as_text=True)[:500]
    return match.group(1)


def _age_codes(db):
    """Move the codes sent two minutes back, so another may be sent at once (60 s apart)."""
    for row in db.scalars(sa.select(VerificationCode)):
        row.created_at -= dt.timedelta(minutes=2)
    db.flush()


def _login(client, db, phone=PHONE, **kwargs):
    csrf = _token(client.get("/citizen/mine"))
    sent = client.post("/citizen/mine/code", data={"csrf_token": csrf, "phone": phone}, **kwargs)
    assert sent.status_code == 200, sent.get_data(as_text=True)
    masked = f"{phone[:3]}****{phone[-4:]}"
    assert f"验证码已发送至 {masked}" in sent.get_data(as_text=True)
    return client.post(
        "/citizen/mine/login",
        data={"csrf_token": _token(sent), "phone": phone, "code": texted_code(db, phone)},
        **kwargs,
    )


def test_login_with_a_code_lists_only_ones_own_tickets(client, db, user, make_ticket):
    mine = make_ticket(user("operator"), requester_phone=PHONE, title="我家门口路灯不亮")
    other = make_ticket(user("operator"), requester_phone=OTHER_PHONE, title="别人的诉求")
    page = client.get("/citizen/mine")
    assert "获取验证码" in page.get_data(as_text=True) and mine.number not in page.get_data(
        as_text=True
    )
    response = _login(client, db)
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("citizen_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/citizen" in cookie
    assert "Secure" not in cookie
    listing = client.get("/citizen/mine").get_data(as_text=True)
    assert mine.number in listing and "我家门口路灯不亮" in listing and "已受理" in listing
    assert other.number not in listing and "别人的诉求" not in listing
    assert "138****0001" in listing and PHONE not in listing


def test_the_cookie_is_secure_over_https(client, db):
    response = _login(
        client, db, base_url="https://localhost", headers={"Referer": "https://localhost/citizen/"}
    )
    assert "Secure" in response.headers["Set-Cookie"]


def test_a_wrong_code_is_refused_in_chinese(client, db):
    csrf = _token(client.get("/citizen/mine"))
    sent = client.post("/citizen/mine/code", data={"csrf_token": csrf, "phone": PHONE})
    wrong = "000000" if texted_code(db, PHONE) != "000000" else "111111"
    refused = client.post(
        "/citizen/mine/login", data={"csrf_token": _token(sent), "phone": PHONE, "code": wrong}
    )
    assert refused.status_code == 422
    assert "验证码错误或已失效" in refused.get_data(as_text=True)
    assert "citizen_session" not in refused.headers.get("Set-Cookie", "")
    bad_phone = client.post("/citizen/mine/code", data={"csrf_token": csrf, "phone": "12345"})
    assert bad_phone.status_code == 422
    assert "请填写正确的 11 位手机号码" in bad_phone.get_data(as_text=True)


def test_every_form_needs_the_csrf_token(client, db, citizen_ticket):
    ticket = citizen_ticket()
    for path, data in [
        ("/citizen/mine/code", {"phone": PHONE}),
        ("/citizen/mine/login", {"phone": PHONE, "code": "123456"}),
        ("/citizen/lookup", {"number": ticket.number, "phone": PHONE, "code": "123456"}),
        (f"/citizen/mine/{ticket.number}/rating", {"solved": "solved"}),
        (f"/citizen/mine/{ticket.number}/reopen", {"reason": "不满意"}),
        ("/citizen/mine/logout", {}),
    ]:
        refused = client.post(path, data=data)
        assert refused.status_code == 400, path
        assert "安全校验" in refused.get_data(as_text=True)
    assert db.scalar(sa.select(sa.func.count()).select_from(CitizenSession)) == 0


def test_ticket_page_shows_the_reply_rates_and_reopens(client, db, citizen_ticket):
    ticket = citizen_ticket(result="路灯已更换，<b>恢复照明</b>。")
    _login(client, db)
    page = client.get(f"/citizen/mine/{ticket.number}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "已办结，待评价" in html and "路灯已更换，&lt;b&gt;恢复照明&lt;/b&gt;。" in html
    assert "已派至东关街道办事处" in html and "评价办理结果" in html and "不满意再次反映" in html
    for label in ("解决", "部分解决", "未解决", "满意", "基本满意", "不满意"):
        assert f">{label}</label>" in html
    # A refused rating keeps what was typed.
    refused = client.post(
        f"/citizen/mine/{ticket.number}/rating",
        data={"csrf_token": _token(page), "solved": "solved", "comment": "很好"},
    )
    assert refused.status_code == 422 and "满意度" in refused.get_data(as_text=True)
    assert "很好" in refused.get_data(as_text=True)
    rated = client.post(
        f"/citizen/mine/{ticket.number}/rating",
        data={
            "csrf_token": _token(page),
            "solved": "solved",
            "satisfaction": "satisfied",
            "comment": "<script>alert(1)</script>",
        },
    )
    assert rated.status_code == 302
    db.refresh(ticket)
    assert ticket.status == TicketStatus.closed
    after = client.get(f"/citizen/mine/{ticket.number}").get_data(as_text=True)
    assert "感谢您的评价" in after and "网上评价结果" in after
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in after and "<script>alert" not in after
    assert "评价办理结果" not in after
    reopened = client.post(
        f"/citizen/mine/{ticket.number}/reopen",
        data={"csrf_token": _token(page), "reason": "没过几天又不亮了"},
    )
    assert reopened.status_code == 302
    db.refresh(ticket)
    assert ticket.status == TicketStatus.called_back
    after = client.get(f"/citizen/mine/{ticket.number}").get_data(as_text=True)
    assert "复核中" in after and "您的意见已转督办审核" in after


def test_another_phones_ticket_reads_as_not_found(client, db, citizen_ticket):
    theirs = citizen_ticket(phone=OTHER_PHONE)
    _login(client, db)
    other = client.get(f"/citizen/mine/{theirs.number}")
    missing = client.get("/citizen/mine/WF20990101999999")
    assert other.status_code == missing.status_code == 404
    assert other.get_data(as_text=True) == missing.get_data(as_text=True)
    assert "未找到该工单" in other.get_data(as_text=True)
    page = client.get("/citizen/mine")
    rate = client.post(
        f"/citizen/mine/{theirs.number}/rating",
        data={"csrf_token": _token(page), "solved": "solved", "satisfaction": "satisfied"},
    )
    assert rate.status_code == 404
    db.refresh(theirs)
    assert theirs.status == TicketStatus.finished


def test_without_a_session_ticket_pages_lead_to_the_login(client, citizen_ticket):
    ticket = citizen_ticket()
    assert client.get(f"/citizen/mine/{ticket.number}").headers["Location"] == "/citizen/mine"


def test_logout_ends_the_session(client, db, citizen_ticket):
    ticket = citizen_ticket()
    _login(client, db)
    page = client.get("/citizen/mine")
    assert ticket.number in page.get_data(as_text=True)
    out = client.post("/citizen/mine/logout", data={"csrf_token": _token(page)})
    assert out.status_code == 302
    row = db.scalars(sa.select(CitizenSession)).one()
    assert row.revoked_at is not None
    assert ticket.number not in client.get("/citizen/mine").get_data(as_text=True)


def test_lookup_by_number_phone_and_code(client, db, citizen_ticket):
    mine, theirs = citizen_ticket(), citizen_ticket(phone=OTHER_PHONE)
    answers = []
    for number in (theirs.number, "WF20990101999999", mine.number):
        form = client.get("/citizen/lookup")
        sent = client.post(
            "/citizen/mine/code",
            data={"csrf_token": _token(form), "phone": PHONE, "number": number},
        )
        assert sent.status_code == 200 and f'value="{number}"' in sent.get_data(as_text=True)
        answer = client.post(
            "/citizen/lookup",
            data={
                "csrf_token": _token(sent),
                "number": number,
                "phone": PHONE,
                "code": texted_code(db, PHONE),
            },
        )
        answers.append(answer)
        _age_codes(db)
    other, missing, found = answers
    assert other.status_code == missing.status_code == 404
    scrub = re.compile(r'value="[^"]*"')
    assert scrub.sub("", other.get_data(as_text=True)) == scrub.sub(
        "", missing.get_data(as_text=True)
    )
    assert "未找到该工单，请核对工单号和手机号" in other.get_data(as_text=True)
    assert found.status_code == 302
    assert found.headers["Location"] == f"/citizen/mine/{mine.number}"


def test_the_rating_link_opens_the_rating_page_without_a_code(client, db, citizen_ticket):
    ticket = citizen_ticket()
    text = db.scalars(
        sa.select(OutboxMessage).where(
            OutboxMessage.ticket_id == ticket.id, OutboxMessage.kind == "citizen_finished"
        )
    ).one()
    path = text.body.split("评价：")[1]
    page = client.get(path)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "评价办理结果" in html and ticket.number in html
    assert "不满意再次反映" not in html
    rated = client.post(
        path,
        data={"csrf_token": _token(page), "solved": "partly", "satisfaction": "dissatisfied"},
    )
    assert rated.status_code == 302 and rated.headers["Location"] == path
    db.refresh(ticket)
    assert ticket.status == TicketStatus.called_back
    again = client.get(path).get_data(as_text=True)
    assert "评价办理结果" not in again and "部分解决" in again
    forged = client.get(path[:-3] + "xyz")
    assert forged.status_code == 404 and "评价链接无效" in forged.get_data(as_text=True)


def test_the_rating_path_is_the_pages_route(app):
    with app.test_request_context():
        from flask import url_for

        assert url_for("citizen_track.rate_link", token="T") == citizen_notices.RATING_PATH + "T"


def test_lookups_are_rate_limited(make_app):
    app = make_app(
        LIMITS_ENABLED=True,
        RATELIMIT_KEY_PREFIX=f"hotline-limits:test:{uuid.uuid4().hex}",
        LIMIT_CITIZEN_LOOKUP="2 per minute",
    )
    client = app.test_client()
    assert client.get("/citizen/lookup").status_code == 200
    assert client.get("/citizen/lookup").status_code == 200
    refused = client.get("/citizen/lookup")
    assert refused.status_code == 429
    assert "操作过于频繁" in refused.get_data(as_text=True)
    assert refused.headers["Retry-After"]
    assert "12345 市民服务" in refused.get_data(as_text=True)
