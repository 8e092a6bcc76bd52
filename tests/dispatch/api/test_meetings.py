"""疑难工单 and 联席会议 in the JSON API, and 指定承办 with no ``finish_due`` through
``POST /tickets/<number>/designate``: roles, a meeting from its call to a decision applied,
refusals with their codes, bad input."""

import datetime as dt
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from dispatch import operations as ops
from hotline.enums import ReturnReason
from hotline.models import Unit
from tests.dispatch.common import DONGGUAN, STREETLIGHT

TZ = ZoneInfo("Asia/Shanghai")
CGJ = "U-CGJ"


def local(day, hour=9):
    return dt.datetime(2026, 11, day, hour, tzinfo=TZ).astimezone(dt.UTC)


@pytest.fixture
def clock(monkeypatch):
    state = SimpleNamespace(now=local(18, 10))
    for where in ("dispatch.operations", "dispatch.meetings", "dispatch.api.meetings"):
        monkeypatch.setattr(f"{where}.utcnow", lambda: state.now)
    return state


def unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


@pytest.fixture
def disputed(db, user, make_ticket):
    def make():
        ticket = make_ticket(
            user("operator"), category=STREETLIGHT, area="370705001", now=local(16)
        )
        ops.dispatch(db, user("dispatcher"), ticket, lead=unit(db, DONGGUAN), now=local(16))
        ops.request_return(
            db,
            user("dongguan"),
            ticket,
            return_reason=ReturnReason.not_our_duty,
            note="不属本单位",
            now=local(16, 10),
        )
        ops.decide_return(
            db,
            user("dispatcher"),
            ticket,
            approve=False,
            note="属地管理",
            now=local(16, 11),
        )
        db.flush()
        return ticket

    return make


def test_designate_takes_no_deadline_and_no_supervisor(api, db, user, make_ticket, clock):
    """A deadline set by hand comes only with a meeting's decision (decide_item): 指定承办 over
    the API refuses ``finish_due`` and is the dispatcher's alone, so nobody moves an overdue
    ticket's deadline past 延期审核, 督办 and the overdue rate without a meeting on record."""
    ticket = make_ticket(user("operator"), category=STREETLIGHT, area="370705001", now=local(16))
    due = ticket.finish_due
    body = {"lead_unit": DONGGUAN, "note": "改期", "finish_due": "2099-11-20T17:00"}
    refused = api("dispatcher").post(f"/tickets/{ticket.number}/designate", json=body)
    assert refused.status_code == 422
    assert "finish_due" in refused.json["error"]["details"]
    del body["finish_due"]
    forbidden = api("supervisor").post(f"/tickets/{ticket.number}/designate", json=body)
    assert forbidden.status_code == 403
    assert forbidden.json["error"]["code"] == "ROLE_NOT_ALLOWED"
    for slug in ("apply_meeting_decision", "apply-meeting-decision"):
        response = api("supervisor").post(f"/tickets/{ticket.number}/{slug}", json=body)
        assert response.status_code in (404, 405)
    db.expire_all()
    assert ticket.finish_due == due and ticket.status.value == "received"
    response = api("dispatcher").post(f"/tickets/{ticket.number}/designate", json=body)
    assert response.status_code == 200, response.json


def test_a_meeting_through_the_api(api, db, disputed, clock):
    ticket = disputed()
    sup = api("supervisor")
    listed = sup.get("/hard-cases?rule=disputed&per_page=100").json["data"]
    mine = [c for c in listed["items"] if c["ticket"] == ticket.number]
    assert mine[0]["findings"][0]["rule"] == "disputed"
    assert mine[0]["findings"][0]["rejected_returns"] == [DONGGUAN]

    created = sup.post(
        "/meetings", json={"title": "疑难工单联席会议", "scheduled_at": "2026-11-19T14:30"}
    )
    assert created.status_code == 201, created.json
    meeting = created.json["data"]
    retried = sup.post(
        "/meetings", json={"title": "疑难工单联席会议", "scheduled_at": "2026-11-19T14:30"}
    )
    assert retried.status_code == 409, retried.json
    assert retried.json["error"]["code"] == "MEETING_EXISTS"
    assert retried.json["error"]["details"] == {"meeting_id": meeting["id"]}
    assert sup.get("/meetings").json["data"]["total"] == 1
    assert meeting["scheduled_at"] == local(19, 14).replace(minute=30).isoformat()
    path = f"/meetings/{meeting['id']}"
    item = sup.post(f"{path}/items", json={"number": ticket.number}).json["data"]
    assert [r["rule"] for r in item["reasons"]] == ["disputed"]
    early = sup.post(
        f"{path}/items/{item['id']}/decision",
        json={"unit": DONGGUAN, "finish_due": "2026-11-25T17:00", "notes": "属地"},
    )
    assert early.status_code == 409 and early.json["error"]["code"] == "MEETING_NOT_HELD"
    held = sup.post(f"{path}/hold", json={"minutes": "议定由东关街道办理"})
    assert held.status_code == 200 and held.json["data"]["state"] == "held"
    decided = sup.post(
        f"{path}/items/{item['id']}/decision",
        json={"unit": DONGGUAN, "finish_due": "2026-11-25T17:00", "notes": "属地管理"},
    )
    assert decided.status_code == 200, decided.json
    decision = decided.json["data"]["decision"]
    assert decision["unit"] == DONGGUAN
    assert decision["finish_due"] == local(25, 17).isoformat()
    assert api("leader").get(path).json["data"]["items"][0]["decision"] == decision


def test_roles_and_bad_input(api, clock):
    assert api("dispatcher").get("/hard-cases").status_code == 403
    assert api("leader").get("/hard-cases").status_code == 200
    assert api("kuiwen-leader").get("/meetings").status_code == 403
    assert api("leader").post("/meetings", json={"title": "x"}).status_code == 403
    sup = api("supervisor")
    assert sup.get("/hard-cases?rule=x").status_code == 422
    assert sup.get("/meetings/99999999999999999999").status_code == 404
    bad = sup.post("/meetings", json={"title": "会\x00议", "scheduled_at": "2026-11-19T14:30"})
    assert bad.status_code == 422
    missing = sup.post("/meetings", json={"title": "会议"})
    assert missing.json["error"]["details"] == {"scheduled_at": "请填写会议时间"}
    unknown = sup.post(
        "/meetings", json={"title": "会议", "scheduled_at": "2026-11-19T14:30", "x": 1}
    )
    assert unknown.status_code == 422
