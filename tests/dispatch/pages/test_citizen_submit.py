"""The 市民端's public pages: home, 我要反映 with its code and suggestion calls, the receipt."""

import io
import re
import uuid

import pytest
import sqlalchemy as sa

from hotline.enums import Channel
from hotline.models import OutboxMessage, Ticket
from tests.helpers import FORM_TOKEN, texted_code

PHONE = "13912345678"
CONTENT = "胜利东街100号门口的路灯一周都不亮了，晚上出行很不方便，请尽快维修。"
FIRE = "家里着火了，冒出很多浓烟，快来人"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


def page_form(client, path="/citizen/submit", **kwargs):
    """(csrf token, idempotency key) of the submission form, as a browser gets them."""
    html = client.get(path, **kwargs).get_data(as_text=True)
    return FORM_TOKEN.search(html).group(1), KEY.search(html).group(1)


def ask_code(client, token, phone=PHONE):
    return client.post("/citizen/codes", json={"phone": phone}, headers={"X-CSRFToken": token})


def form(token, key, **fields):
    data = {
        "csrf_token": token,
        "idempotency_key": key,
        "request_type": "complaint",
        "content": CONTENT,
        "address": "奎文区胜利东街100号",
        "contact": "anonymous",
    }
    data.update(fields)
    return data


def texts(db, kind):
    return db.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == kind)).all()


def test_home_is_public_and_shows_the_way_in_and_the_emergency_lines(client):
    page = client.get("/citizen/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "12345 市民服务" in html and 'href="/citizen/submit"' in html
    assert 'href="/citizen/mine"' in html
    for line in ("110", "119", "120", "122"):
        assert f'href="tel:{line}"' in html
    assert "退出" not in html  # no staff header
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_the_form_is_public_with_a_token_a_key_and_the_demo_note(client):
    page = client.get("/citizen/submit")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert FORM_TOKEN.search(html) and KEY.search(html)
    for label in ("咨询", "求助", "投诉", "举报", "建议", "表扬"):
        assert f">{label}</label>" in html
    assert "匿名反映无法回访，也无法在线查询办理进度" in html
    assert "验证码显示在运行 make demo 的终端窗口中" in html
    assert "<script>" not in html and "style=" not in html


def test_the_demo_note_is_not_shown_with_a_real_gateway(make_app):
    app = make_app(NOTIFY_SMS_URL="https://sms.example.gov.cn/send")
    html = app.test_client().get("/citizen/submit").get_data(as_text=True)
    assert "make demo" not in html


def test_a_form_without_its_token_is_refused(client, ticket_count):
    before = ticket_count()
    response = client.post("/citizen/submit", data=form("", "k-1"))
    assert response.status_code == 400
    assert "页面已过期" in response.get_data(as_text=True)
    assert ticket_count() == before


def test_phone_code_submit_receipt(client, db, ticket_count):
    token, key = page_form(client)
    answer = ask_code(client, token)
    assert answer.status_code == 200 and answer.get_json()["data"] == {"resend_after": 60}
    before = ticket_count()
    response = client.post(
        "/citizen/submit",
        data=form(
            token,
            key,
            contact="phone",
            phone=PHONE,
            code=texted_code(db, PHONE),
            name="李女士",
            lng="119.1",
            lat="36.7",
            position_source="device",
            photos=(io.BytesIO(PNG), "现场.png"),
        ),
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    number = response.headers["Location"].rsplit("/", 1)[1]
    ticket = db.scalars(sa.select(Ticket).where(Ticket.number == number)).one()
    assert ticket_count() == before + 1
    assert ticket.channel == Channel.web and ticket.requester_phone == PHONE
    # The device's WGS-84 is stored as the map's GCJ-02.
    assert ticket.lng != 119.1 and abs(ticket.lng - 119.1) < 0.01
    receipt = client.get(response.headers["Location"]).get_data(as_text=True)
    assert number in receipt and "已向您的手机 139****5678 发送短信" in receipt
    assert "前答复" in receipt and 'href="/citizen/mine"' in receipt
    (sms,) = texts(db, "citizen_received")
    assert number in sms.body
    # A refresh of the receipt makes nothing; a repeated POST (double tap) neither.
    client.get(response.headers["Location"])
    again = client.post(
        "/citizen/submit",
        data=form(
            token,
            key,
            contact="phone",
            phone=PHONE,
            code="000000",
            name="李女士",
            lng="119.1",
            lat="36.7",
            position_source="device",
            photos=(io.BytesIO(PNG), "现场.png"),
        ),
        content_type="multipart/form-data",
    )
    assert again.status_code == 303 and again.headers["Location"] == response.headers["Location"]
    assert ticket_count() == before + 1


def test_the_receipt_is_only_for_the_browser_that_submitted(app, client, ticket_count):
    token, key = page_form(client)
    location = client.post("/citizen/submit", data=form(token, key)).headers["Location"]
    assert client.get(location).status_code == 200
    stranger = app.test_client()
    refused = stranger.get(location)
    assert refused.status_code == 404
    assert "只有提交诉求的手机浏览器可以查看回执" in refused.get_data(as_text=True)


def test_anonymous_submit_says_so_and_texts_nobody(client, db):
    token, key = page_form(client)
    # A phone typed before choosing 匿名反映 is dropped, not verified.
    response = client.post("/citizen/submit", data=form(token, key, phone=PHONE))
    assert response.status_code == 303
    receipt = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "匿名反映" in receipt and "无法在线查询办理进度" in receipt
    assert "发送短信" not in receipt
    assert texts(db, "citizen_received") == []


def test_a_refused_form_keeps_what_was_typed(client, ticket_count):
    token, key = page_form(client)
    before = ticket_count()
    response = client.post(
        "/citizen/submit",
        data=form(
            token,
            key,
            contact="phone",
            phone=PHONE,
            code="123456",
            name="李女士",
            photos=(io.BytesIO(b"not an image"), "a.txt"),
        ),
        content_type="multipart/form-data",
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "“a.txt”不是 JPEG、PNG 或 WebP 图片" in html and "照片需重新选择" in html
    assert CONTENT in html and 'value="李女士"' in html and f'value="{PHONE}"' in html
    assert f'value="{key}"' in html
    assert ticket_count() == before


def test_a_wrong_code_is_refused_on_the_form(client, db, ticket_count):
    token, key = page_form(client)
    ask_code(client, token)
    wrong = f"{(int(texted_code(db, PHONE)) + 1) % 1000000:06d}"
    before = ticket_count()
    response = client.post(
        "/citizen/submit", data=form(token, key, contact="phone", phone=PHONE, code=wrong)
    )
    assert response.status_code == 422
    assert "验证码错误或已失效" in response.get_data(as_text=True)
    assert ticket_count() == before


def test_a_phone_without_a_code_is_asked_for_one(client, ticket_count):
    token, key = page_form(client)
    response = client.post("/citizen/submit", data=form(token, key, contact="phone", phone=PHONE))
    assert response.status_code == 422
    assert "请填写短信验证码" in response.get_data(as_text=True)


def test_the_code_button_works_without_script(client, db):
    token, key = page_form(client)
    response = client.post(
        "/citizen/submit", data=form(token, key, contact="phone", phone=PHONE, action="code")
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "验证码已发送" in html
    assert CONTENT in html and f'value="{key}"' in html
    code = texted_code(db, PHONE)
    assert code not in html  # never the code itself


@pytest.mark.parametrize(
    "headers,path,channel",
    [
        ({"User-Agent": "Mozilla/5.0 (iPhone) MicroMessenger/8.0.50"}, "/citizen/submit", "wechat"),
        ({}, "/citizen/submit?channel=app", "app"),
        ({}, "/citizen/submit", "web"),
    ],
)
def test_the_channel_follows_the_client(client, db, headers, path, channel):
    token, key = page_form(client, path, headers=headers)
    data = form(token, key)
    if "channel=app" in path:
        data["channel"] = "app"
    response = client.post("/citizen/submit", data=data, headers=headers)
    number = response.headers["Location"].rsplit("/", 1)[1]
    ticket = db.scalars(sa.select(Ticket).where(Ticket.number == number)).one()
    assert ticket.channel.value == channel


def test_the_code_answer_is_the_same_for_any_phone(client, make_ticket, user):
    make_ticket(user("operator"), requester_phone="13805360001")
    token, _ = page_form(client)
    known = ask_code(client, token, "13805360001")
    unknown = ask_code(client, token, "13700000000")
    assert known.status_code == unknown.status_code == 200
    assert known.get_json() == unknown.get_json()


def test_a_bad_phone_and_a_resend_too_soon_are_told_in_chinese(client):
    token, _ = page_form(client)
    bad = ask_code(client, token, "12345")
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "PHONE_INVALID"
    ask_code(client, token)
    soon = ask_code(client, token)
    assert soon.status_code == 429
    assert soon.get_json()["error"]["message"].startswith("验证码已发送，请 ")
    assert soon.headers["Retry-After"]


def test_the_suggestion_tells_only_the_category_name_and_the_line(client):
    token, _ = page_form(client)
    answer = client.post("/citizen/suggest", json={"content": FIRE}, headers={"X-CSRFToken": token})
    data = answer.get_json()["data"]
    assert set(data) == {"category", "emergency"}
    assert data["emergency"] == "119"
    plain = client.post(
        "/citizen/suggest", json={"content": CONTENT}, headers={"X-CSRFToken": token}
    ).get_json()["data"]
    assert plain["emergency"] is None
    assert plain["category"] is None or isinstance(plain["category"], str)


def test_the_script_calls_need_the_token(client):
    assert client.post("/citizen/suggest", json={"content": FIRE}).status_code == 400
    assert client.post("/citizen/codes", json={"phone": PHONE}).status_code == 400


def _limited(make_app, **rules):
    return make_app(
        LIMITS_ENABLED=True, RATELIMIT_KEY_PREFIX=f"hotline-limits:test:{uuid.uuid4().hex}", **rules
    ).test_client()


def test_suggestions_are_rate_limited(make_app):
    client = _limited(make_app, LIMIT_CITIZEN_SUGGEST="2 per minute")
    token, _ = page_form(client)
    for _ in range(2):
        ok = client.post("/citizen/suggest", json={"content": "短"}, headers={"X-CSRFToken": token})
        assert ok.status_code == 200
    refused = client.post(
        "/citizen/suggest", json={"content": "短"}, headers={"X-CSRFToken": token}
    )
    assert refused.status_code == 429
    assert refused.get_json()["error"]["message"].startswith("操作过于频繁")


def test_codes_are_rate_limited(make_app):
    client = _limited(make_app, LIMIT_CITIZEN_CODES="2 per minute")
    token, _ = page_form(client)
    for _ in range(2):  # bad numbers: counted, nothing written
        assert ask_code(client, token, "123").status_code == 422
    refused = ask_code(client, token, "123")
    assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "RATE_LIMITED"


def test_submissions_are_rate_limited_on_the_form(make_app):
    client = _limited(make_app, LIMIT_CITIZEN_SUBMIT="2 per minute")
    token, key = page_form(client)
    for _ in range(2):  # no content: counted, refused, nothing written
        response = client.post("/citizen/submit", data=form(token, key, content=""))
        assert response.status_code == 422
    refused = client.post("/citizen/submit", data=form(token, key, content="还是这件事"))
    html = refused.get_data(as_text=True)
    assert refused.status_code == 429 and "操作过于频繁" in html and "还是这件事" in html
    assert refused.headers["Retry-After"]
