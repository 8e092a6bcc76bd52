"""Grid workers' operations (DOMAIN.md §6): accept (接单), on-site check-in (现场核查),
contact and finish by the accepting worker, escalate (上报), and their API endpoints."""

from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from classifier import geo
from dispatch import operations as ops
from hotline.enums import (
    AssignmentRole,
    CallbackOutcome,
    Satisfaction,
    Solved,
    TicketStatus,
)
from hotline.errors import Conflict, Forbidden, ValidationFailed
from hotline.models import Area, Notification, TicketEvent, Unit
from tests.dispatch.common import DONGGUAN, MY_GRID, OTHER_GRID, PHOTOS, photo

S = TicketStatus


@pytest.fixture
def u(user):
    names = ["operator", "dispatcher", "dongguan", "grid", "callback", "supervisor", "cgj"]
    return SimpleNamespace(**{name: user(name) for name in names})


def unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


def area(db, code):
    return db.scalars(sa.select(Area).where(Area.code == code)).one()


def events(db, ticket, action=None):
    query = sa.select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
    if action:
        query = query.where(TicketEvent.action == action)
    return db.scalars(query.order_by(TicketEvent.id)).all()


# -- accept ---------------------------------------------------------------------------------------


def test_accept_signs_for_the_unit_when_it_has_not_signed(db, u, dispatched):
    ticket = dispatched()
    before = len(events(db, ticket))
    event = ops.accept(db, u.grid, ticket)
    db.flush()
    assert ticket.status == S.signed
    assert ticket.grid_worker_id == u.grid.id
    assert ticket.signed_at == event.created_at
    lead = ticket.lead_assignment
    assert (lead.signed_at, lead.signed_by_id) == (event.created_at, u.grid.id)
    assert len(events(db, ticket)) == before + 1  # one event, no separate "sign"
    assert (event.action, event.from_status, event.to_status) == ("accept", "dispatched", "signed")
    assert (event.actor_id, event.actor_role) == (u.grid.id, "grid_worker")
    assert event.unit_id == unit(db, DONGGUAN).id
    assert event.payload == {"signed": True, "late": False}


def test_accept_after_the_unit_signed_keeps_its_signature(db, u, dispatched):
    ticket = dispatched()
    ops.sign(db, u.dongguan, ticket)
    signed_at = ticket.signed_at
    event = ops.accept(db, u.grid, ticket)
    assert ticket.status == S.signed
    assert ticket.signed_at == signed_at
    assert ticket.lead_assignment.signed_by_id == u.dongguan.id
    assert (event.from_status, event.to_status) == ("signed", "signed")
    assert event.payload["signed"] is False
    assert ticket.grid_worker_id == u.grid.id


def test_accept_by_a_second_worker_is_refused_naming_the_first(
    db, u, accepted, assert_unchanged, second_worker, snapshot
):
    ticket = accepted()
    other = second_worker()
    before = snapshot(ticket)
    with pytest.raises(Conflict) as caught:
        ops.accept(db, other, ticket)
    assert caught.value.code == "ACCEPTED_BY_ANOTHER"
    assert caught.value.message == f"该工单已由网格员“{u.grid.name}”接单"
    assert_unchanged(ticket, before)


def test_accept_twice_is_refused(db, u, accepted):
    ticket = accepted()
    with pytest.raises(Conflict) as caught:
        ops.accept(db, u.grid, ticket)
    assert caught.value.code == "ALREADY_ACCEPTED"


@pytest.mark.parametrize("code", [OTHER_GRID, "370705001001", "370705001"])
def test_accept_outside_my_grids_is_refused(db, u, code, assert_unchanged, dispatched, snapshot):
    ticket = dispatched(grid=code)
    before = snapshot(ticket)
    with pytest.raises(Forbidden) as caught:
        ops.accept(db, u.grid, ticket)
    assert caught.value.code == "TICKET_NOT_IN_YOUR_GRIDS"
    assert caught.value.message == "该工单不在您负责的网格内"
    assert_unchanged(ticket, before)


def test_accept_when_my_unit_only_assists_is_refused(db, u, assert_unchanged, dispatched, snapshot):
    ticket = dispatched(lead="U-CGJ", assists=[DONGGUAN])
    assert ticket.active_assignment(unit(db, DONGGUAN).id).role == AssignmentRole.assist
    before = snapshot(ticket)
    with pytest.raises(Forbidden) as caught:
        ops.accept(db, u.grid, ticket)
    assert caught.value.code == "TICKET_NOT_ASSIGNED_TO_UNIT"
    assert caught.value.message == "只有主办单位可以执行此操作"
    assert_unchanged(ticket, before)


def test_accept_of_a_ticket_dispatched_elsewhere_is_refused(db, u, dispatched):
    ticket = dispatched(lead="U-CGJ")
    with pytest.raises(Forbidden) as caught:
        ops.accept(db, u.grid, ticket)
    assert caught.value.message == "该工单未派给您所在单位"


@pytest.mark.parametrize("status", [S.received, S.finished])
def test_accept_in_a_wrong_state_is_refused(
    db, u, status, assert_unchanged, checked_in, make_ticket, second_worker, snapshot
):
    if status == S.received:
        ticket = make_ticket(u.operator, category="010103", area=MY_GRID)
    else:
        ticket = checked_in(requester_phone=None)
        ops.finish(db, u.grid, ticket, result="已修复")
        ticket.grid_worker_id = None  # even with nobody on it, a finished ticket is done
    before = snapshot(ticket)
    with pytest.raises(Conflict) as caught:
        ops.accept(db, second_worker(), ticket)
    assert caught.value.code == "TICKET_STATE_CONFLICT"
    assert_unchanged(ticket, before)


def test_a_new_dispatch_round_clears_the_worker(db, u, accepted):
    ticket = accepted()
    ops.designate(db, u.dispatcher, ticket, lead=unit(db, DONGGUAN), note="指定东关街道")
    assert ticket.status == S.dispatched
    assert ticket.grid_worker_id is None
    ops.accept(db, u.grid, ticket)  # and may accept again (signing the new assignment)
    assert ticket.status == S.signed


# -- check-in -------------------------------------------------------------------------------------


def test_check_in_inside_the_grid_records_position_and_zero_distance(db, u, accepted, centre):
    ticket = accepted()
    lng, lat = centre()
    version = ticket.version
    event = ops.check_in(
        db,
        u.grid,
        ticket,
        lng=lng,
        lat=lat,
        photos=[photo("a.png", b"a"), photo("b.png", b"b")],
        note=" 路灯确实不亮 ",
    )
    db.flush()
    assert ticket.status == S.signed
    assert (event.action, event.from_status, event.to_status) == ("check_in", "signed", "signed")
    assert event.reason == "路灯确实不亮"
    assert event.payload == {
        "lng": lng,
        "lat": lat,
        "distance_m": 0.0,
        "grid": MY_GRID,
        "photos": 2,
    }
    assert ticket.version == version + 1


def test_check_in_far_from_the_grid_records_the_distance(db, u, accepted, centre):
    ticket = accepted()
    lng, lat = centre()
    # The seeded grid is a square 0.0015° wide around its centre; 0.01° further north is
    # 0.01 - 0.00075 degrees of latitude from its edge: about 1 030 m.
    event = ops.check_in(db, u.grid, ticket, lng=lng, lat=lat + 0.01, photos=PHOTOS)
    assert 1000 < event.payload["distance_m"] < 1060
    east = ops.check_in(db, u.grid, ticket, lng=lng + 0.01, lat=lat, photos=PHOTOS)
    # A degree of longitude is shorter at 36.7° N: about 830 m.
    assert 800 < east.payload["distance_m"] < 860


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"photos": []}, "photos"),
        ({"lng": None}, "position"),
        ({"lng": None, "lat": None}, "position"),
        ({"lng": 2.35, "lat": 48.85}, "position"),  # Paris
    ],
)
def test_check_in_without_photo_or_position_is_refused(
    db, u, kwargs, field, accepted, assert_unchanged, centre, snapshot
):
    ticket = accepted()
    lng, lat = centre()
    before = snapshot(ticket)
    with pytest.raises(ValidationFailed) as caught:
        ops.check_in(db, u.grid, ticket, **{"lng": lng, "lat": lat, "photos": PHOTOS, **kwargs})
    assert list(caught.value.details) == [field]
    assert_unchanged(ticket, before)


def test_check_in_by_a_worker_who_did_not_accept_is_refused(
    db, u, accepted, assert_unchanged, centre, second_worker, snapshot
):
    ticket = accepted()
    lng, lat = centre()
    before = snapshot(ticket)
    with pytest.raises(Forbidden) as caught:
        ops.check_in(db, second_worker(), ticket, lng=lng, lat=lat, photos=PHOTOS)
    assert caught.value.code == "NOT_ACCEPTED_BY_YOU"
    assert_unchanged(ticket, before)


def test_check_in_before_accepting_is_refused_by_state(db, u, centre, dispatched):
    ticket = dispatched()
    lng, lat = centre()
    with pytest.raises(Conflict) as caught:
        ops.check_in(db, u.grid, ticket, lng=lng, lat=lat, photos=PHOTOS)
    assert caught.value.code == "TICKET_STATE_CONFLICT"


def test_distance_without_polygon_is_unknown(db, u):
    street = area(db, "370705001")
    assert street.polygon is None
    assert geo.distance_m(street.polygon, 119.1, 36.7) is None
    assert geo.distance_m(None, 119.1, 36.7) is None


# -- contact, finish ------------------------------------------------------------------------------


def test_finish_before_check_in_is_refused(db, u, accepted, assert_unchanged, snapshot):
    ticket = accepted(requester_phone=None)
    before = snapshot(ticket)
    with pytest.raises(Conflict) as caught:
        ops.finish(db, u.grid, ticket, result="已修复")
    assert caught.value.code == "CHECK_IN_REQUIRED"
    assert caught.value.message == "请先到现场核查（上传现场照片和定位）后再办结"
    assert_unchanged(ticket, before)


def test_contact_and_finish_after_check_in(db, u, checked_in):
    ticket = checked_in()
    with pytest.raises(Conflict) as caught:  # the requester left a phone: call first
        ops.finish(db, u.grid, ticket, result="已修复")
    assert caught.value.code == "CONTACT_REQUIRED"
    contact = ops.contact(db, u.grid, ticket, note="已电话告知诉求人")
    assert (contact.actor_id, ticket.status) == (u.grid.id, S.contacted)
    event = ops.finish(db, u.grid, ticket, result="已更换灯泡，路灯恢复")
    db.flush()
    assert ticket.status == S.finished
    assert ticket.result == "已更换灯泡，路灯恢复"
    assert ticket.lead_assignment.finished_at == event.created_at
    assert (event.action, event.actor_id, event.unit_id) == (
        "finish",
        u.grid.id,
        unit(db, DONGGUAN).id,
    )
    assert ticket.callback_due is not None
    assert ticket.grid_worker_id == u.grid.id  # kept: it shows in 最近办结


@pytest.mark.parametrize("name", ["contact", "finish"])
def test_only_the_accepting_worker_may_contact_or_finish(
    db, u, name, assert_unchanged, checked_in, second_worker, snapshot
):
    ticket = checked_in()
    kwargs = {"note": "已联系"} if name == "contact" else {"result": "已办结"}
    before = snapshot(ticket)
    with pytest.raises(Forbidden) as caught:
        getattr(ops, name)(db, second_worker(), ticket, **kwargs)
    assert caught.value.code == "NOT_ACCEPTED_BY_YOU"
    assert_unchanged(ticket, before)


def test_unit_handler_may_still_finish_without_check_in(db, u, accepted):
    ticket = accepted(requester_phone=None)
    ops.finish(db, u.dongguan, ticket, result="单位直接办结")
    assert ticket.status == S.finished


def test_a_check_in_of_an_earlier_round_does_not_count(db, u, checked_in):
    ticket = checked_in()
    ops.contact(db, u.grid, ticket, note="已联系")
    ops.finish(db, u.grid, ticket, result="已修复")
    ops.record_callback(
        db,
        u.callback,
        ticket,
        outcome=CallbackOutcome.answered,
        solved=Solved.unsolved,
        satisfaction=Satisfaction.dissatisfied,
    )
    ops.reopen(db, u.supervisor, ticket, reason="仍未修好")
    assert (ticket.status, ticket.grid_worker_id) == (S.reopened, None)
    ops.accept(db, u.grid, ticket)
    assert ticket.status == S.signed
    with pytest.raises(Conflict) as caught:
        ops.finish(db, u.grid, ticket, result="再次修复")
    assert caught.value.code == "CHECK_IN_REQUIRED"


# -- escalate -------------------------------------------------------------------------------------


def test_escalate_hands_the_ticket_back_and_notifies_the_unit(db, u, accepted, second_worker):
    ticket = accepted()
    status, lead = ticket.status, ticket.lead_unit_id
    event = ops.escalate(db, u.grid, ticket, reason=" 需供电公司处理 ")
    db.flush()
    assert ticket.grid_worker_id is None
    assert (ticket.status, ticket.lead_unit_id) == (status, lead)
    assert (event.action, event.from_status, event.to_status) == ("escalate", "signed", "signed")
    assert event.reason == "需供电公司处理"
    assert len(events(db, ticket, "escalate")) == 1
    (note,) = db.scalars(sa.select(Notification).where(Notification.ticket_id == ticket.id)).all()
    assert note.unit_id == unit(db, DONGGUAN).id
    assert note.kind == "grid_escalation"
    assert ticket.number in note.title and "需供电公司处理" in note.body
    # Handed back, so another worker may accept it now.
    ops.accept(db, second_worker(), ticket)


def test_escalate_needs_a_reason_and_the_accepting_worker(
    db, u, accepted, assert_unchanged, second_worker, snapshot
):
    ticket = accepted()
    before = snapshot(ticket)
    with pytest.raises(ValidationFailed) as caught:
        ops.escalate(db, u.grid, ticket, reason="  ")
    assert caught.value.details == {"reason": "请填写上报原因"}
    with pytest.raises(Forbidden):
        ops.escalate(db, second_worker(), ticket, reason="交回")
    assert_unchanged(ticket, before)


def test_escalate_before_accepting_is_refused(db, u, dispatched):
    ticket = dispatched()
    with pytest.raises(Conflict) as caught:
        ops.escalate(db, u.grid, ticket, reason="交回")
    assert caught.value.code == "TICKET_STATE_CONFLICT"


# -- the JSON API -------------------------------------------------------------------------------


def test_api_accept_and_escalate(db, u, api, dispatched):
    ticket = dispatched()
    number = ticket.number
    response = api("grid").post(f"/tickets/{number}/accept", json={"version": ticket.version})
    assert response.status_code == 200, response.json
    data = response.json["data"]
    assert data["status"]["value"] == "signed"
    assert data["event"]["action"] == "accept"
    assert data["event"]["payload"] == {"signed": True, "late": False}
    db.expire_all()
    assert ticket.grid_worker_id == u.grid.id

    # A retry with the old version is a conflict, not a second acceptance.
    stale = api("grid").post(f"/tickets/{number}/accept", json={"version": 1})
    assert stale.status_code == 409
    assert stale.json["error"]["code"] == "TICKET_VERSION_CONFLICT"

    missing = api("grid").post(f"/tickets/{number}/escalate", json={})
    assert missing.status_code == 422
    assert missing.json["error"]["details"] == {"reason": "请填写上报原因"}

    done = api("grid").post(f"/tickets/{number}/escalate", json={"reason": "需职能部门"})
    assert done.status_code == 200, done.json
    assert done.json["data"]["event"]["action"] == "escalate"
    db.expire_all()
    assert ticket.grid_worker_id is None


def test_api_accept_by_second_worker_and_outside_grids(
    db, u, api, accepted, dispatched, second_worker
):
    second_worker()
    ticket = accepted()
    refused = api("grid2").post(f"/tickets/{ticket.number}/accept", json={})
    assert refused.status_code == 409
    assert refused.json["error"]["code"] == "ACCEPTED_BY_ANOTHER"

    elsewhere = dispatched(grid=OTHER_GRID)
    hidden = api("grid").post(f"/tickets/{elsewhere.number}/accept", json={})
    assert hidden.status_code == 403
    assert hidden.json["error"]["code"] == "TICKET_FORBIDDEN"


def test_api_unit_handler_may_not_accept(db, u, api, dispatched):
    ticket = dispatched()
    refused = api("dongguan").post(f"/tickets/{ticket.number}/accept", json={})
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "ROLE_NOT_ALLOWED"
