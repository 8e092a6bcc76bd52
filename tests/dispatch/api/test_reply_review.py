"""办结审核 in the JSON API: the live reply check, the reviewers' queue, the approve and return
transitions and the per-category rules (dispatch.api.reply_review, dispatch.api.tickets)."""

import pytest
import sqlalchemy as sa

from dispatch import operations as ops
from hotline.enums import TicketStatus
from hotline.models import AuditLog, ReviewRule, Unit
from tests.dispatch.common import DONGGUAN, STREETLIGHT

S = TicketStatus
POOR = "您反映的问题已收悉。"
GOOD = (
    "经现场核查，小区门口路灯因线路老化损坏，我街道已于11月17日组织维修人员更换线路和灯具，"
    "路灯已恢复照明，并已电话告知诉求人。"
)


@pytest.fixture(autouse=True)
def _shipped_default(shipped_review_default):
    """The review default the product ships (``flagged``)."""


@pytest.fixture
def contacted(db, user, make_ticket):
    def make(**overrides):
        ticket = make_ticket(user("operator"), category=STREETLIGHT, area="370705001", **overrides)
        lead = db.scalars(sa.select(Unit).where(Unit.code == DONGGUAN)).one()
        ops.dispatch(db, user("dispatcher"), ticket, lead=lead)
        ops.sign(db, user("dongguan"), ticket)
        ops.contact(db, user("dongguan"), ticket, note="已联系")
        return ticket

    return make


@pytest.fixture
def in_review(db, user, contacted):
    def make():
        ticket = contacted()
        ops.finish(db, user("dongguan"), ticket, result=POOR)
        assert ticket.status == S.reviewing
        return ticket

    return make


def test_the_handler_checks_a_reply_as_they_type(db, api, contacted):
    ticket = contacted()
    poor = api("dongguan").post(f"/tickets/{ticket.number}/reply-check", json={"result": POOR})
    assert poor.status_code == 200, poor.json
    data = poor.json["data"]
    assert set(data) == {"poor", "score", "reasons"}
    assert data["poor"] is True and data["reasons"]
    assert any("收悉" in r for r in data["reasons"])
    good = api("dongguan").post(f"/tickets/{ticket.number}/reply-check", json={"result": GOOD})
    assert good.json["data"]["poor"] is False
    assert good.json["data"]["reasons"] == []
    # Nothing is stored: the ticket is as it was.
    assert ticket.status == S.contacted and ticket.result is None


@pytest.mark.parametrize(
    "username,body,status,code",
    [
        ("cgj", {"result": POOR}, 403, "TICKET_FORBIDDEN"),  # another unit's ticket
        ("callback", {"result": POOR}, 403, "ROLE_NOT_ALLOWED"),
        ("dongguan", {"result": ""}, 422, "VALIDATION_FAILED"),
        ("dongguan", {"result": 5}, 422, "VALIDATION_FAILED"),
        ("dongguan", {"result": "路灯\x00"}, 422, "VALIDATION_FAILED"),
        ("dongguan", {"result": "好" * 5001}, 422, "VALIDATION_FAILED"),
        ("dongguan", {"result": POOR, "extra": 1}, 422, "VALIDATION_FAILED"),
    ],
)
def test_reply_check_refusals(db, api, contacted, username, body, status, code):
    ticket = contacted()
    response = api(username).post(f"/tickets/{ticket.number}/reply-check", json=body)
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code


def test_the_queue_lists_waiting_replies_for_supervisors_only(db, api, in_review, contacted):
    first, second = in_review(), in_review()
    body = api("supervisor").get("/reviews", query_string={"per_page": 100}).json["data"]
    numbers = [i["number"] for i in body["items"]]
    assert numbers.index(first.number) < numbers.index(second.number)
    item = next(i for i in body["items"] if i["number"] == first.number)
    assert item["result"] == POOR
    assert item["content"] == first.content
    assert item["lead_unit"]["code"] == DONGGUAN
    assert item["reply_quality"]["poor"] is True
    assert item["review_why"] == {"code": "flagged", "label": "自动检查疑似不合格"}
    assert item["photos_url"] == f"/tickets/{first.number}#photos"
    assert item["finish_due"] == first.finish_due.isoformat()

    filtered = api("supervisor").get("/reviews", query_string={"unit": "U-CGJ"}).json["data"]
    assert first.number not in [i["number"] for i in filtered["items"]]
    by_category = (
        api("supervisor").get("/reviews", query_string={"category": STREETLIGHT[:4]}).json["data"]
    )
    assert first.number in [i["number"] for i in by_category["items"]]

    assert api("dongguan").get("/reviews").status_code == 403
    bad = api("supervisor").get("/reviews", query_string={"unit": "U-NOPE", "page": "x"})
    assert bad.status_code == 422
    assert set(bad.json["error"]["details"]) == {"unit", "page"}


def test_approve_and_return_through_the_api(db, api, in_review):
    approved, returned = in_review(), in_review()
    response = api("supervisor").post(
        f"/tickets/{approved.number}/approve-reply", json={"version": approved.version}
    )
    assert response.status_code == 200, response.json
    assert response.json["data"]["status"]["value"] == "finished"
    assert response.json["data"]["callback_due"] is not None
    assert response.json["data"]["event"]["action"] == "approve_reply"

    refused = api("supervisor").post(f"/tickets/{returned.number}/return-reply", json={})
    assert refused.status_code == 422
    assert refused.json["error"]["details"] == {"reason": "请填写退回理由"}
    response = api("supervisor").post(
        f"/tickets/{returned.number}/return-reply", json={"reason": "请说明路灯是否修好"}
    )
    assert response.status_code == 200, response.json
    data = response.json["data"]
    assert data["status"]["value"] == "contacted"
    assert data["finished_at"] is None and data["result"] == POOR
    assert data["event"]["unit"] == DONGGUAN  # the unit whose reply was returned
    assert data["event"]["reason"] == "请说明路灯是否修好"

    again = api("supervisor").post(
        f"/tickets/{returned.number}/return-reply", json={"reason": "再退"}
    )
    assert again.status_code == 409
    assert again.json["error"]["code"] == "TICKET_STATE_CONFLICT"


def test_rules_through_the_api_are_checked_and_audited(db, api):
    body = api("supervisor").get("/review-rules").json["data"]
    assert body["default"] == {"mode": "flagged", "sample_percent": 20}
    assert body["rules"] == []

    bad = api("supervisor").post("/review-rules", json={"category": STREETLIGHT, "mode": "sample"})
    assert bad.status_code == 422
    assert set(bad.json["error"]["details"]) == {"sample_percent"}
    bad = api("supervisor").post("/review-rules", json={"category": "9999", "mode": "often"})
    assert set(bad.json["error"]["details"]) == {"category", "mode"}
    assert api("dongguan").post("/review-rules", json={"category": STREETLIGHT}).status_code == 403

    done = api("supervisor").post(
        "/review-rules", json={"category": STREETLIGHT, "mode": "sample", "sample_percent": 30}
    )
    assert done.status_code == 200, done.json
    assert done.json["data"]["rule"]["mode"] == {"value": "sample", "label": "抽样审核"}
    rules = api("admin").get("/review-rules").json["data"]["rules"]
    assert [(r["category"]["code"], r["sample_percent"]) for r in rules] == [(STREETLIGHT, 30)]
    removed = api("admin").post("/review-rules", json={"category": STREETLIGHT, "mode": "default"})
    assert removed.json["data"]["rule"] is None
    assert db.scalar(sa.select(sa.func.count()).select_from(ReviewRule)) == 0
    audits = db.scalars(sa.select(AuditLog).where(AuditLog.action == "review_rule.update")).all()
    assert len(audits) == 2
