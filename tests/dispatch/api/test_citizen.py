"""The 市民端's app API (/citizen/api/v1): codes and requests, in the /api/v1 envelope."""

import io
import uuid

import pytest
import sqlalchemy as sa

from classifier import geo
from hotline.enums import Channel
from hotline.models import Attachment, OutboxMessage, Ticket
from tests.helpers import assert_error, texted_code

PHONE = "13912345678"
CONTENT = "胜利东街100号门口的路灯一周都不亮了，晚上出行很不方便，请尽快维修。"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


def post(client, path, body, key=None):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(f"/citizen/api/v1/{path}", json=body, headers=headers)


def test_a_code_then_a_request_from_an_app(client, db):
    answer = post(client, "codes", {"phone": PHONE, "purpose": "submit"})
    assert answer.status_code == 200
    assert answer.get_json() == {"success": True, "data": {"resend_after": 60}}
    body = {
        "request_type": "help",
        "content": CONTENT,
        "lng": 119.1,
        "lat": 36.7,
        "phone": PHONE,
        "code": texted_code(db, PHONE),
        "name": "王先生",
        "emergency_seen": False,
    }
    created = post(client, "requests", body, key="app-key-1")
    assert created.status_code == 201, created.get_json()
    data = created.get_json()["data"]
    assert set(data) == {"number", "received_at", "reply_by", "reply_by_text", "sms_sent"}
    assert data["sms_sent"] is True and "月" in data["reply_by_text"]
    ticket = db.scalars(sa.select(Ticket).where(Ticket.number == data["number"])).one()
    assert ticket.channel == Channel.app and ticket.created_by.username == "portal-app"
    assert (ticket.lng, ticket.lat) == pytest.approx(geo.wgs84_to_gcj02(119.1, 36.7))
    # A retry (the code is used up by now) answers the first ticket.
    again = post(client, "requests", body, key="app-key-1")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["data"]["number"] == data["number"]


def test_the_channel_may_be_wechat_but_not_the_phone(client, db):
    created = post(
        client,
        "requests",
        {"request_type": "consult", "content": CONTENT, "channel": "wechat"},
        key="k-wechat",
    )
    assert created.status_code == 201
    number = created.get_json()["data"]["number"]
    assert db.scalars(sa.select(Ticket).where(Ticket.number == number)).one().channel.value == (
        "wechat"
    )
    refused = post(
        client,
        "requests",
        {"request_type": "consult", "content": CONTENT, "channel": "phone"},
        key="k-phone",
    )
    assert_error(refused, 422, "VALIDATION_FAILED")


def test_photos_come_as_multipart(client, db):
    response = client.post(
        "/citizen/api/v1/requests",
        data={
            "request_type": "complaint",
            "content": CONTENT,
            "lng": "119.1",
            "lat": "36.7",
            "photos": [(io.BytesIO(PNG), "a.png"), (io.BytesIO(PNG + b"1"), "b.png")],
        },
        headers={"Idempotency-Key": "k-multipart"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    number = response.get_json()["data"]["number"]
    ticket = db.scalars(sa.select(Ticket).where(Ticket.number == number)).one()
    assert ticket.lng == pytest.approx(geo.wgs84_to_gcj02(119.1, 36.7)[0])
    assert (
        len(db.scalars(sa.select(Attachment).where(Attachment.ticket_id == ticket.id)).all()) == 2
    )


@pytest.mark.parametrize(
    "body,key,status,code",
    [
        ({"request_type": "help", "content": CONTENT}, None, 422, "IDEMPOTENCY_KEY_MISSING"),
        ({"request_type": "help"}, "k", 422, "VALIDATION_FAILED"),
        ({"request_type": "urgent", "content": CONTENT}, "k", 422, "VALIDATION_FAILED"),
        ({"request_type": "help", "content": "长" * 10_001}, "k", 422, "VALIDATION_FAILED"),
        (
            {"request_type": "help", "content": CONTENT, "name": "名" * 51},
            "k",
            422,
            "VALIDATION_FAILED",
        ),
        (
            {"request_type": "help", "content": CONTENT, "phone": PHONE},
            "k",
            422,
            "VALIDATION_FAILED",
        ),
        (
            {"request_type": "help", "content": CONTENT, "phone": PHONE, "code": "000000"},
            "k",
            422,
            "CODE_INVALID",
        ),
        (
            {"request_type": "help", "content": CONTENT, "lng": 0, "lat": 0},
            "k",
            422,
            "VALIDATION_FAILED",
        ),
        (
            {"request_type": "help", "content": CONTENT, "urgency": "emergency"},
            "k",
            422,
            "VALIDATION_FAILED",
        ),
    ],
)
def test_bad_requests_are_refused_with_nothing_written(
    client, ticket_count, body, key, status, code
):
    before = ticket_count()
    assert_error(post(client, "requests", body, key=key), status, code)
    assert ticket_count() == before


def test_a_request_must_be_json(client):
    response = client.post(
        "/citizen/api/v1/requests",
        data="x",
        headers={"Idempotency-Key": "k"},
        content_type="text/plain",
    )
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_codes_answer_alike_and_refuse_bad_input(client, make_ticket, user):
    make_ticket(user("operator"), requester_phone="13805360001")
    known = post(client, "codes", {"phone": "13805360001", "purpose": "track"})
    unknown = post(client, "codes", {"phone": "13700000000", "purpose": "track"})
    assert known.get_json() == unknown.get_json() and known.status_code == 200
    assert_error(post(client, "codes", {"phone": "123", "purpose": "track"}), 422, "PHONE_INVALID")
    assert_error(
        post(client, "codes", {"phone": PHONE, "purpose": "login"}), 422, "VALIDATION_FAILED"
    )


def test_the_api_is_rate_limited(make_app):
    client = make_app(
        LIMITS_ENABLED=True,
        RATELIMIT_KEY_PREFIX=f"hotline-limits:test:{uuid.uuid4().hex}",
        LIMIT_CITIZEN_SUBMIT="1 per minute",
        LIMIT_CITIZEN_CODES="1 per minute",
    ).test_client()
    assert post(client, "requests", {}, key="k").status_code == 422
    assert_error(post(client, "requests", {}, key="k"), 429, "RATE_LIMITED")
    assert post(client, "codes", {"phone": "1"}).status_code == 422
    refused = assert_error(post(client, "codes", {"phone": "1"}), 429, "RATE_LIMITED")
    assert refused["message"].startswith("操作过于频繁")


def test_an_unknown_path_or_method_is_answered_in_the_envelope(client):
    missing = client.get("/citizen/api/v1/nowhere")
    assert missing.status_code == 404
    assert missing.get_json()["success"] is False
    wrong = client.get("/citizen/api/v1/codes")
    assert wrong.status_code == 405
    assert wrong.get_json()["error"]["code"]


def test_a_request_through_the_wechat_gateway_is_also_answered_on_wechat(client, app, db):
    app.config["NOTIFY_WECHAT_GATEWAY_TOKEN"] = "gateway-secret"
    try:
        post(client, "codes", {"phone": PHONE, "purpose": "submit"})
        body = {
            "request_type": "help",
            "content": CONTENT,
            "address": "奎文区东关街道胜利东街100号",
            "phone": PHONE,
            "code": texted_code(db, PHONE),
            "channel": "wechat",
        }
        headers = {
            "Idempotency-Key": "wx-1",
            "X-WeChat-OpenID": "oAbc123",
            "X-WeChat-Gateway-Token": "gateway-secret",
        }
        created = client.post("/citizen/api/v1/requests", json=body, headers=headers)
        assert created.status_code == 201, created.get_json()
    finally:
        app.config["NOTIFY_WECHAT_GATEWAY_TOKEN"] = ""
    copies = db.execute(
        sa.select(OutboxMessage.channel, OutboxMessage.recipient).where(
            OutboxMessage.kind == "citizen_received"
        )
    ).all()
    assert sorted(copies) == [("sms", PHONE), ("wechat", "oAbc123")]
