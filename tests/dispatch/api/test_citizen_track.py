"""The 市民端's app API (/citizen/api/v1): a citizen token from a code, one's own requests
only, rating and reopening, the envelope and its error codes, no CSRF, rate limits."""

import uuid

from hotline.enums import TicketStatus
from tests.dispatch.common import PHONE
from tests.helpers import assert_error, texted_code

API = "/citizen/api/v1"
OTHER_PHONE = "13905360002"


def _session(client, db, phone=PHONE):
    sent = client.post(f"{API}/sessions/code", json={"phone": phone})
    assert sent.status_code == 202, sent.get_json()
    assert sent.get_json()["data"] == {"resend_after": 60, "expires_in": 300}
    opened = client.post(f"{API}/sessions", json={"phone": phone, "code": texted_code(db, phone)})
    assert opened.status_code == 201, opened.get_json()
    data = opened.get_json()["data"]
    assert data["phone"] == f"{phone[:3]}****{phone[-4:]}"
    return {"Authorization": f"Bearer {data['token']}"}


def test_a_citizen_follows_rates_and_reopens_their_request(client, db, citizen_ticket):
    ticket = citizen_ticket(result="路灯已修复。")
    citizen_ticket(phone=OTHER_PHONE)
    auth = _session(client, db)

    listing = client.get(f"{API}/requests", headers=auth)
    assert listing.status_code == 200
    body = listing.get_json()
    assert body["success"] is True
    numbers = [item["number"] for item in body["data"]["items"]]
    assert ticket.number in numbers
    assert body["data"]["total"] == len(numbers)
    item = body["data"]["items"][numbers.index(ticket.number)]
    assert item["status"] == {"value": "finished", "label": "已办结，待评价"}

    detail = client.get(f"{API}/requests/{ticket.number}", headers=auth).get_json()["data"]
    assert detail["reply"] == "路灯已修复。"
    assert detail["phone"] == "138****0001"
    assert detail["can_rate"] is True and detail["can_reopen"] is True
    assert [s["title"] for s in detail["timeline"]] == [
        "已受理",
        "已派至东关街道办事处",
        "办理中",
        "办理中",
        "已办结",
    ]

    refused = client.post(
        f"{API}/requests/{ticket.number}/rating", headers=auth, json={"solved": "solved"}
    )
    error = assert_error(refused, 422, "VALIDATION_FAILED")
    assert "satisfaction" in error["details"]

    rated = client.post(
        f"{API}/requests/{ticket.number}/rating",
        headers=auth,
        json={"solved": "solved", "satisfaction": "basically", "comment": "还可以"},
    )
    assert rated.status_code == 200, rated.get_json()
    data = rated.get_json()["data"]
    assert data["status"]["value"] == "closed"
    assert data["rating"]["channel"] == {"value": "online", "label": "网上评价"}
    assert data["rating"]["satisfaction"]["value"] == "basically"
    assert_error(
        client.post(
            f"{API}/requests/{ticket.number}/rating",
            headers=auth,
            json={"solved": "solved", "satisfaction": "satisfied"},
        ),
        409,
        "ALREADY_RATED",
    )

    reopened = client.post(
        f"{API}/requests/{ticket.number}/reopen", headers=auth, json={"reason": "又坏了"}
    )
    assert reopened.status_code == 200, reopened.get_json()
    assert reopened.get_json()["data"]["status"]["value"] == "called_back"
    db.refresh(ticket)
    assert ticket.status == TicketStatus.called_back

    assert client.delete(f"{API}/sessions/current", headers=auth).status_code == 200
    assert_error(client.get(f"{API}/requests", headers=auth), 401, "AUTH_INVALID")


def test_another_phones_request_answers_as_a_missing_one(client, db, citizen_ticket):
    theirs = citizen_ticket(phone=OTHER_PHONE)
    auth = _session(client, db)
    answers = [
        client.get(f"{API}/requests/{number}", headers=auth)
        for number in (theirs.number, "WF20990101999999")
    ]
    errors = [assert_error(a, 404, "TICKET_NOT_FOUND") for a in answers]
    assert errors[0] == errors[1]
    assert_error(
        client.post(
            f"{API}/requests/{theirs.number}/reopen", headers=auth, json={"reason": "不满意"}
        ),
        404,
        "TICKET_NOT_FOUND",
    )
    db.refresh(theirs)
    assert theirs.status == TicketStatus.finished


def test_calls_without_a_citizen_token_are_refused(client, db):
    assert_error(client.get(f"{API}/requests"), 401, "AUTH_REQUIRED")
    assert_error(
        client.get(f"{API}/requests", headers={"Authorization": "Bearer nope"}), 401, "AUTH_INVALID"
    )
    # A staff API token is no citizen token.
    assert_error(
        client.get(f"{API}/requests", headers={"Authorization": "Basic abc"}), 401, "AUTH_REQUIRED"
    )


def test_codes_and_sessions_check_their_input(client, db):
    assert_error(
        client.post(f"{API}/sessions/code", json={"phone": "123"}), 422, "VALIDATION_FAILED"
    )
    client.post(f"{API}/sessions/code", json={"phone": PHONE})
    wrong = "000000" if texted_code(db, PHONE) != "000000" else "111111"
    assert_error(
        client.post(f"{API}/sessions", json={"phone": PHONE, "code": wrong}), 422, "CODE_INVALID"
    )
    assert_error(
        client.post(f"{API}/sessions/code", json={"phone": PHONE}), 429, "CODE_RESEND_TOO_SOON"
    )
    assert_error(
        client.post(f"{API}/sessions", data="phone=1", content_type="text/plain"),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    assert_error(
        client.post(f"{API}/sessions", json={"phone": PHONE, "code": "1", "extra": 1}),
        422,
        "VALIDATION_FAILED",
    )
    assert_error(client.get(f"{API}/nowhere"), 404, "NOT_FOUND")


def test_the_api_is_rate_limited(make_app):
    app = make_app(
        LIMITS_ENABLED=True,
        RATELIMIT_KEY_PREFIX=f"hotline-limits:test:{uuid.uuid4().hex}",
        LIMIT_CITIZEN_LOOKUP="2 per minute",
    )
    client = app.test_client()
    for _ in range(2):
        assert client.post(f"{API}/sessions", json={}).status_code == 422
    error = assert_error(client.post(f"{API}/sessions", json={}), 429, "RATE_LIMITED")
    assert error["message"].startswith("操作过于频繁")
