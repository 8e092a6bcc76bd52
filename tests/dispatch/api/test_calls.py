"""The phone system's hook (来电弹屏: ``POST /api/v1/calls``, ``GET /api/v1/calls/pending``),
a caller's history (``GET /api/v1/intake/caller``) and tickets made from an announced call."""

import datetime as dt

import sqlalchemy as sa

from hotline.db import utcnow
from hotline.models import AuditLog, IncomingCall, Ticket
from tests.helpers import assert_error

CALL = {
    "call_id": "SW-0001",
    "caller": "139-0536-1234",
    "agent": "operator",
    "recording": "rec/0001.wav",
}


def announce(api, **overrides):
    return api("operator2").post("/calls", json={**CALL, **overrides})


def new_ticket(call_id, **overrides):
    return {
        "channel": "phone",
        "request_type": "complaint",
        "content": "小区门口路灯坏了一个星期，晚上很黑。",
        "requester_phone": "13905361234",
        "call_id": call_id,
        **overrides,
    }


def test_the_switch_announces_a_call_once(api, db):
    response = announce(api)
    assert response.status_code == 201
    data = response.get_json()["data"]
    assert data["call_id"] == "SW-0001"
    assert data["caller_phone"] == "13905361234"
    assert data["agent_found"] is True
    assert data["ticket"] is None
    # The switch retries: the first record stands, nothing is added.
    again = announce(api)
    assert again.status_code == 200
    assert again.get_json()["data"]["id"] == data["id"]
    assert db.scalar(sa.select(sa.func.count()).select_from(IncomingCall)) == 1
    assert db.scalars(sa.select(AuditLog).where(AuditLog.action == "call.announce")).all()


def test_a_reused_call_id_with_another_caller_is_refused(api):
    announce(api)
    assert_error(announce(api, caller="13900000000"), 409, "CALL_ID_REUSED")


def test_an_unknown_agent_is_kept_but_rings_nowhere(api):
    data = announce(api, agent="nobody").get_json()["data"]
    assert data["agent_found"] is False
    assert api("operator").get("/calls/pending").get_json()["data"] is None


def test_bad_announcements_name_the_field(api):
    error = assert_error(announce(api, caller="12"), 422, "VALIDATION_FAILED")
    assert "来电号码" in error["details"]["caller"]
    error = assert_error(
        api("operator2").post("/calls", json={"caller": "13905361234"}), 422, "VALIDATION_FAILED"
    )
    assert set(error["details"]) == {"call_id", "agent"}


def test_only_operator_accounts_announce_or_poll(api):
    assert_error(api("dispatcher").post("/calls", json=CALL), 403, "ROLE_NOT_ALLOWED")
    assert_error(api("leader").get("/calls/pending"), 403, "ROLE_NOT_ALLOWED")


def test_the_agents_console_gets_the_call_with_the_callers_history(api, user, make_ticket):
    earlier = make_ticket(user("operator2"), requester_phone="13905361234", title="上次的路灯")
    announce(api)
    data = api("operator").get("/calls/pending").get_json()["data"]
    assert data["call_id"] == "SW-0001"
    assert data["history"]["total"] == 1
    assert data["history"]["tickets"][0]["number"] == earlier.number
    # Another operator's seat is not ringing; a console that showed the call asks past it.
    assert api("operator2").get("/calls/pending").get_json()["data"] is None
    after = api("operator").get(f"/calls/pending?after={data['id']}").get_json()["data"]
    assert after is None
    assert_error(api("operator").get("/calls/pending?after=x"), 422, "VALIDATION_FAILED")


def test_a_call_no_longer_rings_after_a_while(api, db):
    announce(api)
    db.execute(sa.update(IncomingCall).values(received_at=utcnow() - dt.timedelta(minutes=16)))
    assert api("operator").get("/calls/pending").get_json()["data"] is None


def test_a_ticket_keeps_its_call_and_recording(api, db):
    announce(api)
    response = api("operator").post("/tickets", json=new_ticket("SW-0001"))
    assert response.status_code == 201, response.get_json()
    ticket = db.scalars(sa.select(Ticket).where(Ticket.call_id == "SW-0001")).one()
    assert ticket.recording_ref == "rec/0001.wav"
    call = db.scalars(sa.select(IncomingCall)).one()
    assert call.ticket_id == ticket.id
    # Taken: the seat stops ringing.
    assert api("operator").get("/calls/pending").get_json()["data"] is None


def test_a_ticket_cannot_claim_another_seats_call(api, db):
    announce(api)
    response = api("operator2").post("/tickets", json=new_ticket("SW-0001"))
    assert_error(response, 409, "CALL_NOT_YOURS")
    error = assert_error(
        api("operator").post("/tickets", json=new_ticket("SW-NONE")), 422, "VALIDATION_FAILED"
    )
    assert error["details"]["call_id"] == "来电记录不存在：SW-NONE"
    assert (
        db.scalar(sa.select(sa.func.count()).select_from(Ticket).where(Ticket.call_id.isnot(None)))
        == 0
    )


def test_caller_history_lists_every_ticket_newest_first(api, user, make_ticket):
    operator = user("operator2")
    old = make_ticket(
        operator, requester_phone="13905361234", now=utcnow() - dt.timedelta(days=700)
    )
    new = make_ticket(operator, requester_phone="13905361234")
    make_ticket(operator, requester_phone="13900000000")
    data = api("operator").get("/intake/caller?phone=139 0536 1234").get_json()["data"]
    assert data["phone"] == "13905361234"
    assert data["total"] == 2
    assert [t["number"] for t in data["tickets"]] == [new.number, old.number]
    first = data["tickets"][0]
    assert first["status"] == {"value": "received", "label": "已受理"}
    assert set(first) >= {"received_at", "title", "category", "lead_unit", "result", "satisfaction"}


def test_caller_history_validates_and_is_for_intake_roles(api):
    error = assert_error(api("operator").get("/intake/caller?phone=12"), 422, "VALIDATION_FAILED")
    assert "联系电话" in error["details"]["phone"]
    assert_error(api("operator").get("/intake/caller"), 422, "VALIDATION_FAILED")
    assert_error(api("callback").get("/intake/caller?phone=13905361234"), 403, "ROLE_NOT_ALLOWED")
