"""POST /api/v1/tickets/<number>/reclassify: a dispatcher or supervisor corrects category,
urgency or request type; deadlines follow; refusals use the error envelope and change nothing."""

import sqlalchemy as sa

from dispatch import operations
from hotline.enums import Urgency
from hotline.models import Ticket, TicketEvent, Unit
from tests.helpers import assert_error

DONGGUAN = "U-S-370705001"


def dispatched(db, user, make_ticket, urgency=Urgency.emergency):
    ticket = make_ticket(user("operator"), category="010103", urgency=urgency)
    lead = db.scalars(sa.select(Unit).where(Unit.code == DONGGUAN)).one()
    operations.dispatch(db, user("dispatcher"), ticket, lead=lead)
    db.flush()
    return ticket


def reclassify_events(db, ticket):
    db.expire_all()
    return db.scalars(
        sa.select(TicketEvent).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.action == "reclassify"
        )
    ).all()


def test_dispatcher_lowers_an_emergency(api, db, user, make_ticket):
    ticket = dispatched(db, user, make_ticket)
    old_finish = ticket.finish_due
    response = api("dispatcher").post(
        f"/tickets/{ticket.number}/reclassify",
        json={"urgency": "normal", "reason": "核实为路灯故障", "version": ticket.version},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()["data"]
    assert data["urgency"] == {"value": "normal", "label": "一般"}
    assert data["event"]["action"] == "reclassify"
    assert data["event"]["payload"]["changes"] == {"urgency": {"from": "emergency", "to": "normal"}}
    assert data["finish_due"] > old_finish.isoformat()
    assert data["clock_started_at"] == ticket.clock_started_at.isoformat()
    detail = api("supervisor").get(f"/tickets/{ticket.number}").get_json()["data"]
    assert detail["events"][-1]["action"] == "reclassify"


def test_supervisor_changes_the_category(api, db, user, make_ticket):
    ticket = dispatched(db, user, make_ticket, urgency=Urgency.normal)
    response = api("supervisor").post(
        f"/tickets/{ticket.number}/reclassify",
        json={"category": "010102", "request_type": "help", "reason": "分类有误"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()["data"]
    assert data["category"]["code"] == "010102"
    assert data["request_type"]["value"] == "help"


def test_stale_version_is_409_and_changes_nothing(api, db, user, make_ticket):
    ticket = dispatched(db, user, make_ticket)
    response = api("dispatcher").post(
        f"/tickets/{ticket.number}/reclassify",
        json={"urgency": "normal", "reason": "误判", "version": ticket.version - 1},
    )
    assert_error(response, 409, "TICKET_VERSION_CONFLICT")
    assert reclassify_events(db, ticket) == []


def test_identical_retry_returns_the_same_event(api, db, user, make_ticket):
    ticket = dispatched(db, user, make_ticket)
    body = {"urgency": "normal", "reason": "误判", "version": ticket.version}
    first = api("dispatcher").post(f"/tickets/{ticket.number}/reclassify", json=body)
    again = api("dispatcher").post(f"/tickets/{ticket.number}/reclassify", json=body)
    assert first.status_code == again.status_code == 200
    assert first.get_json()["data"]["event"]["id"] == again.get_json()["data"]["event"]["id"]
    assert len(reclassify_events(db, ticket)) == 1


def test_bad_fields_are_named(api, db, user, make_ticket):
    ticket = dispatched(db, user, make_ticket)
    response = api("dispatcher").post(
        f"/tickets/{ticket.number}/reclassify",
        json={"urgency": "very", "category": "999999", "version": ticket.version},
    )
    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert set(error["details"]) == {"urgency", "category", "reason"}
    assert "紧急程度取值无效" in error["details"]["urgency"]
    assert error["details"]["reason"] == "请填写调整理由"


def test_nothing_to_change_is_409(api, db, user, make_ticket):
    ticket = dispatched(db, user, make_ticket)
    response = api("dispatcher").post(
        f"/tickets/{ticket.number}/reclassify", json={"urgency": "emergency", "reason": "复核"}
    )
    assert_error(response, 409, "RECLASSIFY_UNCHANGED")


def test_operator_and_unit_handler_are_refused(api, db, user, make_ticket):
    ticket = dispatched(db, user, make_ticket)
    for username in ("operator", "dongguan"):
        response = api(username).post(
            f"/tickets/{ticket.number}/reclassify", json={"urgency": "normal", "reason": "误判"}
        )
        assert_error(response, 403, "ROLE_NOT_ALLOWED")
    db.expire_all()
    assert db.get(Ticket, ticket.id).urgency == Urgency.emergency


def test_detail_tells_events_and_rounds(api, db, user, make_ticket):
    ticket = dispatched(db, user, make_ticket)
    api("dispatcher").post(
        f"/tickets/{ticket.number}/reclassify", json={"urgency": "normal", "reason": "误判"}
    )
    detail = api("supervisor").get(f"/tickets/{ticket.number}").get_json()["data"]
    assert detail["events"][-1]["description"].startswith("紧急程度由“紧急”改为“一般”；")
    assert detail["events"][1]["description"].startswith("派单，主办：东关街道办事处")
    (only,) = detail["rounds"]
    assert only["current"] is True and only["lead_unit"]["code"] == DONGGUAN
    assert only["deadlines"]["finish"] == detail["finish_due"]
    assert {u["state"] for u in only["units"]} == {"待签收", "抄送（无需签收）"}
    assert detail["assignments"][0]["state"] == "待签收"
