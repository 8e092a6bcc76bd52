"""Every legal transition of the ticket lifecycle (DOMAIN.md §3, dispatch/states.py).

Most tests drive ``dispatch.operations`` directly with the ``db`` session and the seeded users;
the last one walks a ticket from intake to archive through the HTTP API. Every transition is
checked for its new status, exactly one new event (action, from → to, actor) and that the
ticket's status is the ``to_status`` of its latest event, with an unbroken from → to chain.
Deadlines are computed by hand in Asia/Shanghai local time.
"""

import datetime as dt
import re
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
import sqlalchemy as sa

from dispatch import cohandling
from dispatch import operations as ops
from hotline.enums import (
    AssignmentRole,
    CallbackOutcome,
    Channel,
    DecisionStatus,
    ExemptionKind,
    IntakeOutcome,
    RequestType,
    ReturnReason,
    Satisfaction,
    Solved,
    TicketStatus,
    TransferTarget,
    Urgency,
)
from hotline.errors import Conflict, Forbidden, ValidationFailed
from hotline.models import (
    Area,
    Assignment,
    CallbackAttempt,
    Category,
    Extension,
    Ticket,
    TicketEvent,
    Unit,
)

S = TicketStatus
TZ = ZoneInfo("Asia/Shanghai")

USERNAMES = [
    "operator",
    "dispatcher",
    "dongguan",
    "cgj",
    "water",
    "sthj",
    "kuiwen",
    "grid",
    "callback",
    "supervisor",
    "leader",
    "admin",
]

DONGGUAN = "U-S-370705001"
KUIWEN_GOV = "U-D-370705"
STREETLIGHT = "010103"  # 城乡建设 › 市政设施 › 路灯故障
WATER_CUT = "010201"  # 城乡建设 › 供水 › 停水 (utility)


def local(year, month, day, hour=9, minute=0):
    """A moment given in Asia/Shanghai wall-clock time, as an aware UTC datetime."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=TZ).astimezone(dt.UTC)


#: Monday 2026-11-16, an ordinary working week (no holidays until New Year).
MON_0800 = local(2026, 11, 16, 8)
MON_0900 = local(2026, 11, 16, 9)


# -- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def u(user):
    return SimpleNamespace(**{name: user(name) for name in USERNAMES})


def unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


def category(db, code):
    return db.scalars(sa.select(Category).where(Category.code == code)).one()


def area(db, code):
    return db.scalars(sa.select(Area).where(Area.code == code)).one()


def events_of(db, ticket):
    return db.scalars(
        sa.select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
    ).all()


def assignments_of(db, ticket):
    """(unit code, role, active, designated) of every assignment the ticket ever had."""
    rows = db.scalars(
        sa.select(Assignment).where(Assignment.ticket_id == ticket.id).order_by(Assignment.id)
    ).all()
    return [(a.unit.code, a.role, a.active, a.designated) for a in rows]


def extensions_of(db, ticket):
    return db.scalars(
        sa.select(Extension).where(Extension.ticket_id == ticket.id).order_by(Extension.id)
    ).all()


def count(db, model, ticket):
    return db.scalar(sa.select(sa.func.count()).where(model.ticket_id == ticket.id))


def assert_derivable(db, ticket):
    """The ticket's state is the end of an unbroken chain of its events."""
    history = events_of(db, ticket)
    assert history[0].action == "receive"
    assert history[0].from_status is None
    for previous, event in zip(history, history[1:], strict=False):
        assert event.from_status == previous.to_status, (previous.action, event.action)
    assert history[-1].to_status == ticket.status.value


def step(db, operation, actor, ticket, *, to, **kwargs):
    """Run one transition and check its single event; returns the event."""
    before_status = ticket.status
    before_events = events_of(db, ticket)
    before_version = ticket.version
    event = operation(db, actor, ticket, **kwargs)
    after_events = events_of(db, ticket)
    assert len(after_events) == len(before_events) + 1
    assert after_events[-1].id == event.id
    assert event.action == operation.__name__
    assert event.from_status == before_status.value
    assert event.to_status == to.value
    assert event.actor_id == actor.id
    assert event.actor_role == actor.role.value
    assert ticket.status == to
    assert ticket.version > before_version
    assert_derivable(db, ticket)
    return event


def refused(db, ticket, error, code, operation, actor, **kwargs):
    """The operation is refused with ``error``/``code`` and leaves the ticket as it was."""
    before = (ticket.status, ticket.version, len(events_of(db, ticket)))
    with pytest.raises(error) as caught:
        operation(db, actor, ticket, **kwargs)
    assert caught.value.code == code
    db.flush()
    assert (ticket.status, ticket.version, len(events_of(db, ticket))) == before
    return caught.value


@pytest.fixture
def new_ticket(db, u, make_ticket):
    def make(*, now=MON_0800, **overrides):
        values = {"category": STREETLIGHT, "area": "370705001", "now": now}
        values.update(overrides)
        return make_ticket(u.operator, **values)

    return make


@pytest.fixture
def dispatched(db, u, new_ticket):
    def make(*, lead=DONGGUAN, now=MON_0900, **overrides):
        ticket = new_ticket(now=now - dt.timedelta(hours=1), **overrides)
        ops.dispatch(db, u.dispatcher, ticket, lead=unit(db, lead), now=now)
        return ticket

    return make


@pytest.fixture
def signed(db, u, dispatched):
    def make(*, now=MON_0900, **overrides):
        ticket = dispatched(now=now, **overrides)
        ops.sign(db, u.dongguan, ticket, now=now + dt.timedelta(minutes=30))
        return ticket

    return make


@pytest.fixture
def contacted(db, u, signed):
    def make(*, now=MON_0900, **overrides):
        ticket = signed(now=now, **overrides)
        ops.contact(
            db, u.dongguan, ticket, note="已电话联系王先生", now=now + dt.timedelta(hours=1)
        )
        return ticket

    return make


@pytest.fixture
def finished(db, u, contacted):
    def make(*, now=MON_0900, **overrides):
        ticket = contacted(now=now, **overrides)
        ops.finish(db, u.dongguan, ticket, result="路灯已修复", now=now + dt.timedelta(days=1))
        return ticket

    return make


@pytest.fixture
def called_back(db, u, finished):
    def make(solved, satisfaction, *, now=MON_0900):
        ticket = finished(now=now)
        ops.record_callback(
            db,
            u.callback,
            ticket,
            outcome=CallbackOutcome.answered,
            solved=solved,
            satisfaction=satisfaction,
            now=now + dt.timedelta(days=2),
        )
        return ticket

    return make


# -- intake -----------------------------------------------------------------------------------


def test_receive_by_operator(db, u, ticket_count):
    before = ticket_count()
    ticket, created = ops.receive(
        db,
        u.operator,
        channel=Channel.phone,
        request_type=RequestType.complaint,
        urgency=Urgency.normal,
        title="路灯不亮",
        content="小区门口路灯不亮",
        requester_phone="13805360001",
        now=MON_0800,
    )
    assert created is True
    assert ticket_count() == before + 1
    assert ticket.status == S.received
    # 工单编号: prefix + local date + an 8-digit serial.
    assert re.fullmatch(r"WF20261116\d{8}", ticket.number)
    assert ticket.received_at == MON_0800
    (event,) = events_of(db, ticket)
    assert (event.action, event.from_status, event.to_status) == ("receive", None, "received")
    assert (event.actor_id, event.actor_role) == (u.operator.id, "operator")
    assert event.payload == {"channel": "phone", "request_type": "complaint"}
    assert event.created_at == MON_0800
    assert_derivable(db, ticket)


def test_ticket_number_uses_the_local_date(db, u, new_ticket):
    # 00:30 on 11-17 in Shanghai is 16:30 UTC on 11-16: the number carries the local date.
    ticket = new_ticket(now=local(2026, 11, 17, 0, 30))
    assert ticket.received_at == dt.datetime(2026, 11, 16, 16, 30, tzinfo=dt.UTC)
    assert re.fullmatch(r"WF20261117\d{8}", ticket.number)


def test_grid_worker_reports_in_own_grid(db, u, make_ticket):
    ticket = make_ticket(
        u.grid, channel=Channel.grid, area="370705001001002", now=MON_0800, category=None
    )
    assert ticket.status == S.received
    assert ticket.created_by_id == u.grid.id
    assert ticket.area.code == "370705001001002"
    (event,) = events_of(db, ticket)
    assert (event.action, event.from_status, event.to_status) == ("receive", None, "received")
    assert (event.actor_id, event.actor_role) == (u.grid.id, "grid_worker")
    assert event.payload["channel"] == "grid"


@pytest.mark.parametrize(
    "area_code",
    [
        "370705001001003",  # the third grid of the same community: not the worker's
        "370705001004001",  # a grid of another community
        "370705001001",  # the worker's community, not a grid of theirs
        "370705001",  # the worker's street
    ],
)
def test_grid_worker_refused_outside_own_grids(db, u, area_code, make_ticket, ticket_count):
    before = ticket_count()
    with pytest.raises(ValidationFailed) as caught:
        make_ticket(u.grid, channel=Channel.grid, area=area_code)
    assert caught.value.code == "VALIDATION_FAILED"
    assert caught.value.details == {"area": "网格员只能上报本人负责网格内的问题"}
    assert ticket_count() == before


def test_grid_worker_refused_without_area(db, u, make_ticket):
    with pytest.raises(ValidationFailed) as caught:
        make_ticket(u.grid, channel=Channel.grid)
    assert list(caught.value.details) == ["area"]


@pytest.mark.parametrize("channel", [c for c in Channel if c != Channel.grid])
def test_grid_worker_must_use_grid_channel(db, u, channel, make_ticket, ticket_count):
    before = ticket_count()
    with pytest.raises(ValidationFailed) as caught:
        make_ticket(u.grid, channel=channel, area="370705001001001")
    assert caught.value.details == {"channel": "网格员上报的渠道必须为“网格主动发现”"}
    assert ticket_count() == before


def test_operator_may_not_use_grid_channel(db, u, make_ticket, ticket_count):
    before = ticket_count()
    with pytest.raises(ValidationFailed) as caught:
        make_ticket(u.operator, channel=Channel.grid, area="370705001001001")
    assert caught.value.details == {"channel": "“网格主动发现”渠道只供网格员使用"}
    assert ticket_count() == before


def test_staff_may_not_use_the_open311_channel(db, u, make_ticket, ticket_count):
    before = ticket_count()
    with pytest.raises(ValidationFailed) as caught:
        make_ticket(u.operator, channel=Channel.open311)
    assert caught.value.details == {"channel": "“开放接口”渠道只供外部系统通过接口提交"}
    assert ticket_count() == before


def test_resolve_at_intake(db, u, new_ticket):
    ticket = new_ticket()
    now = local(2026, 11, 16, 8, 5)
    event = step(
        db,
        ops.resolve_at_intake,
        u.operator,
        ticket,
        to=S.resolved_at_intake,
        outcome=IntakeOutcome.answered,
        answer="  已告知市民路灯报修电话  ",
        now=now,
    )
    assert ticket.intake_outcome == IntakeOutcome.answered
    assert ticket.result == "已告知市民路灯报修电话"
    assert ticket.finished_at == ticket.closed_at == now
    assert event.reason == "已告知市民路灯报修电话"
    assert event.payload == {"outcome": "answered"}
    assert assignments_of(db, ticket) == []


def test_resolve_at_intake_by_dispatcher_needs_an_answer(db, u, new_ticket):
    ticket = new_ticket()
    error = refused(
        db,
        ticket,
        ValidationFailed,
        "VALIDATION_FAILED",
        ops.resolve_at_intake,
        u.dispatcher,
        outcome=IntakeOutcome.no_competent_unit,
        answer="   ",
    )
    assert error.details == {"reason": "请填写答复内容"}
    step(
        db,
        ops.resolve_at_intake,
        u.dispatcher,
        ticket,
        to=S.resolved_at_intake,
        outcome=IntakeOutcome.no_competent_unit,
        answer="不属于任何单位职责，已向市民解释",
    )
    assert ticket.intake_outcome == IntakeOutcome.no_competent_unit


def test_transfer_to_119(db, u, new_ticket):
    ticket = new_ticket()
    now = local(2026, 11, 16, 8, 1)
    event = step(
        db,
        ops.transfer,
        u.operator,
        ticket,
        to=S.transferred,
        target=TransferTarget.fire_119,
        reason="楼道冒烟，已三方转接119",
        now=now,
    )
    assert ticket.transfer_target == TransferTarget.fire_119
    assert ticket.closed_at == now
    assert event.payload == {"target": "119"}
    assert event.reason == "楼道冒烟，已三方转接119"


def test_transfer_needs_a_reason(db, u, new_ticket):
    ticket = new_ticket()
    refused(
        db,
        ticket,
        ValidationFailed,
        "VALIDATION_FAILED",
        ops.transfer,
        u.dispatcher,
        target=TransferTarget.petition,
        reason="",
    )


def test_merge_into_an_open_ticket(db, u, dispatched, new_ticket):
    target = dispatched()
    duplicate = new_ticket(now=local(2026, 11, 16, 10))
    now = local(2026, 11, 16, 10, 5)
    event = step(
        db,
        ops.merge,
        u.operator,
        duplicate,
        to=S.merged,
        into=target,
        reason="同一路灯重复反映",
        now=now,
    )
    assert duplicate.merged_into_id == target.id
    assert duplicate.closed_at == now
    assert event.payload == {"into": target.number}
    # The target ticket is untouched.
    assert target.status == S.dispatched
    assert [e.action for e in events_of(db, target)] == ["receive", "dispatch"]


def test_merge_into_itself_refused(db, u, new_ticket):
    ticket = new_ticket()
    error = refused(
        db, ticket, ValidationFailed, "VALIDATION_FAILED", ops.merge, u.dispatcher, into=ticket
    )
    assert error.details == {"into": "不能与自身并单"}
    assert ticket.merged_into_id is None


def test_merge_into_a_merged_ticket_refused(db, u, new_ticket):
    first = new_ticket()
    second = new_ticket()
    ops.merge(db, u.operator, second, into=first)
    third = new_ticket()
    error = refused(
        db, third, ValidationFailed, "VALIDATION_FAILED", ops.merge, u.operator, into=second
    )
    assert error.details == {"into": "目标工单状态为“已并单”，不能并入"}
    assert third.merged_into_id is None


@pytest.mark.parametrize("how", ["transfer", "resolve_at_intake"])
def test_merge_into_a_ticket_closed_at_intake_refused(db, u, how, new_ticket):
    target = new_ticket()
    if how == "transfer":
        ops.transfer(db, u.operator, target, target=TransferTarget.police_110, reason="治安")
    else:
        ops.resolve_at_intake(
            db, u.operator, target, outcome=IntakeOutcome.answered, answer="已答复"
        )
    ticket = new_ticket()
    refused(db, ticket, ValidationFailed, "VALIDATION_FAILED", ops.merge, u.operator, into=target)


# -- dispatch and deadlines -------------------------------------------------------------------


def test_dispatch_street_lead_with_assist_copies_district_government(db, u, new_ticket):
    ticket = new_ticket()
    event = step(
        db,
        ops.dispatch,
        u.dispatcher,
        ticket,
        to=S.dispatched,
        lead=unit(db, DONGGUAN),
        assists=[unit(db, "U-CGJ")],
        note="请东关街道牵头处理",
        now=MON_0900,
    )
    assert ticket.lead_unit.code == DONGGUAN
    assert assignments_of(db, ticket) == [
        (DONGGUAN, AssignmentRole.lead, True, False),
        ("U-CGJ", AssignmentRole.assist, True, False),
        (KUIWEN_GOV, AssignmentRole.copy, True, False),
    ]
    # General request dispatched Monday 09:00: sign 2 h, contact 24 h, finish 5 working days.
    assert ticket.clock_started_at == MON_0900
    assert ticket.sign_due == local(2026, 11, 16, 11)
    assert ticket.contact_due == local(2026, 11, 17, 9)
    assert ticket.finish_due == local(2026, 11, 23, 9)
    assert ticket.callback_due is None
    assert event.reason == "请东关街道牵头处理"
    assert event.unit_id is None
    assert event.payload == {
        "lead_unit": DONGGUAN,
        "assist_units": ["U-CGJ"],
        "copied_to": [KUIWEN_GOV],
        "designated": False,
        "sign_due": "2026-11-16T03:00:00+00:00",
        "contact_due": "2026-11-17T01:00:00+00:00",
        "finish_due": "2026-11-23T01:00:00+00:00",
        "sla_policy": "一般诉求",
        "calendar_guessed_years": [],
        "category": STREETLIGHT,
    }


def test_dispatch_to_city_department_is_not_copied(db, u, new_ticket):
    ticket = new_ticket()
    event = step(db, ops.dispatch, u.dispatcher, ticket, to=S.dispatched, lead=unit(db, "U-CGJ"))
    assert assignments_of(db, ticket) == [("U-CGJ", AssignmentRole.lead, True, False)]
    assert event.payload["copied_to"] == []


def test_dispatch_sets_category_and_needs_one(db, u, new_ticket):
    ticket = new_ticket(category=None)
    error = refused(
        db,
        ticket,
        ValidationFailed,
        "VALIDATION_FAILED",
        ops.dispatch,
        u.dispatcher,
        lead=unit(db, DONGGUAN),
    )
    assert error.details == {"category": "派单前请先确定事项分类"}
    assert count(db, Assignment, ticket) == 0
    event = step(
        db,
        ops.dispatch,
        u.dispatcher,
        ticket,
        to=S.dispatched,
        lead=unit(db, DONGGUAN),
        category=category(db, "010101"),
        now=MON_0900,
    )
    assert ticket.category.code == "010101"
    assert event.payload["category"] == "010101"


def test_dispatch_refuses_the_hotline_itself_and_duplicate_units(db, u, new_ticket):
    ticket = new_ticket()
    refused(
        db,
        ticket,
        ValidationFailed,
        "VALIDATION_FAILED",
        ops.dispatch,
        u.dispatcher,
        lead=unit(db, "U-HOTLINE"),
    )
    refused(
        db,
        ticket,
        ValidationFailed,
        "VALIDATION_FAILED",
        ops.dispatch,
        u.dispatcher,
        lead=unit(db, DONGGUAN),
        assists=[unit(db, DONGGUAN)],
    )
    assert count(db, Assignment, ticket) == 0


def test_dispatch_utility_category_runs_on_24_hour_clocks(db, u, new_ticket):
    # Friday 18:00 before a weekend: a utility's clocks ignore working days.
    ticket = new_ticket(category=WATER_CUT, now=local(2026, 11, 20, 17))
    event = step(
        db,
        ops.dispatch,
        u.dispatcher,
        ticket,
        to=S.dispatched,
        lead=unit(db, "U-WATER"),
        now=local(2026, 11, 20, 18),
    )
    assert ticket.sign_due == local(2026, 11, 20, 18, 30)
    assert ticket.contact_due == local(2026, 11, 20, 20)
    assert ticket.finish_due == local(2026, 11, 21, 18)
    assert event.payload["sla_policy"] == "水电气热·供水"
    assert event.payload["copied_to"] == []


def test_dispatch_emergency_finishes_within_2_hours(db, u, new_ticket):
    ticket = new_ticket(urgency=Urgency.emergency)
    event = step(
        db,
        ops.dispatch,
        u.dispatcher,
        ticket,
        to=S.dispatched,
        lead=unit(db, "U-CGJ"),
        now=MON_0900,
    )
    assert ticket.sign_due == local(2026, 11, 16, 9, 30)
    assert ticket.contact_due == local(2026, 11, 16, 9, 30)
    assert ticket.finish_due == local(2026, 11, 16, 11)
    assert event.payload["sla_policy"] == "紧急诉求"


def test_dispatch_consultation_gets_3_working_days_over_a_weekend(db, u, new_ticket):
    ticket = new_ticket(request_type=RequestType.consult, now=local(2026, 11, 20, 15))
    step(
        db,
        ops.dispatch,
        u.dispatcher,
        ticket,
        to=S.dispatched,
        lead=unit(db, "U-CGJ"),
        now=local(2026, 11, 20, 16),
    )
    # Friday 16:00 + 3 working days → Mon 23, Tue 24, Wed 25 at 16:00.
    assert ticket.finish_due == local(2026, 11, 25, 16)


def test_finish_deadline_across_national_day_2026(db, u, dispatched):
    # The official 2026 arrangement as chinese-calendar has it: 10-01..10-07 off, 10-08 and
    # 10-09 working days, Saturday 10-10 a swapped working day (调休), Sunday 10-11 off.
    for day in range(1, 8):
        assert not chinese_calendar.is_workday(dt.date(2026, 10, day))
    assert chinese_calendar.is_workday(dt.date(2026, 10, 8))
    assert chinese_calendar.is_workday(dt.date(2026, 10, 9))
    assert dt.date(2026, 10, 10).weekday() == 5
    assert chinese_calendar.is_workday(dt.date(2026, 10, 10))
    assert not chinese_calendar.is_workday(dt.date(2026, 10, 11))

    # Dispatched Wednesday 09-30 09:00 → 10-08 (1), 10-09 (2), 10-10 (3), 10-12 (4), 10-13 (5).
    start = local(2026, 9, 30, 9)
    ticket = dispatched(now=start)
    assert ticket.finish_due == local(2026, 10, 13, 9)
    # Hour-based clocks run through the holiday.
    assert ticket.sign_due == local(2026, 9, 30, 11)
    assert ticket.contact_due == local(2026, 10, 1, 9)


# -- handling ---------------------------------------------------------------------------------


def test_lead_signs(db, u, dispatched):
    ticket = dispatched()
    now = local(2026, 11, 16, 9, 40)
    event = step(db, ops.sign, u.dongguan, ticket, to=S.signed, now=now)
    assert ticket.signed_at == now
    lead = ticket.lead_assignment
    assert (lead.signed_at, lead.signed_by_id) == (now, u.dongguan.id)
    assert event.unit_id == unit(db, DONGGUAN).id
    assert event.payload == {"role": "lead", "late": False}


def test_late_signature_is_flagged(db, u, dispatched):
    ticket = dispatched()
    event = step(db, ops.sign, u.dongguan, ticket, to=S.signed, now=local(2026, 11, 16, 11, 1))
    assert event.payload == {"role": "lead", "late": True}


def test_assist_signs_without_moving_the_ticket(db, u, new_ticket):
    ticket = new_ticket()
    ops.dispatch(
        db,
        u.dispatcher,
        ticket,
        lead=unit(db, DONGGUAN),
        assists=[unit(db, "U-CGJ")],
        now=MON_0900,
    )
    # The assist signs first: the ticket stays dispatched.
    event = step(db, ops.sign, u.cgj, ticket, to=S.dispatched, now=local(2026, 11, 16, 9, 10))
    assert event.from_status == "dispatched"
    assert event.payload == {"role": "assist", "late": False}
    assert event.unit_id == unit(db, "U-CGJ").id
    assert ticket.signed_at is None
    assist = ticket.active_assignment(unit(db, "U-CGJ").id)
    assert assist.signed_at == local(2026, 11, 16, 9, 10)
    # Then the lead signs and the ticket moves on.
    step(db, ops.sign, u.dongguan, ticket, to=S.signed, now=local(2026, 11, 16, 9, 20))
    # An assist may also sign after the lead has contacted the requester.
    ticket2 = new_ticket()
    ops.dispatch(db, u.dispatcher, ticket2, lead=unit(db, DONGGUAN), assists=[unit(db, "U-STHJ")])
    ops.sign(db, u.dongguan, ticket2)
    ops.contact(db, u.dongguan, ticket2, note="已联系")
    step(db, ops.sign, u.sthj, ticket2, to=S.contacted)


def test_copy_unit_cannot_sign(db, u, dispatched):
    ticket = dispatched()
    refused(db, ticket, Forbidden, "COPY_NEEDS_NO_SIGNATURE", ops.sign, u.kuiwen)
    copy = ticket.active_assignment(unit(db, KUIWEN_GOV).id)
    assert copy.role == AssignmentRole.copy
    assert copy.signed_at is None


def test_signing_twice_refused(db, u, dispatched, new_ticket):
    ticket = dispatched()
    ops.sign(db, u.dongguan, ticket)
    refused(db, ticket, Conflict, "ALREADY_SIGNED", ops.sign, u.dongguan)

    ticket2 = new_ticket()
    ops.dispatch(db, u.dispatcher, ticket2, lead=unit(db, DONGGUAN), assists=[unit(db, "U-CGJ")])
    ops.sign(db, u.cgj, ticket2)
    refused(db, ticket2, Conflict, "ALREADY_SIGNED", ops.sign, u.cgj)


def test_other_unit_cannot_sign(db, u, dispatched):
    ticket = dispatched()
    error = refused(db, ticket, Forbidden, "TICKET_NOT_ASSIGNED_TO_UNIT", ops.sign, u.water)
    assert error.message == "该工单未派给您所在单位"


def test_contact(db, u, signed):
    ticket = signed()
    now = local(2026, 11, 16, 14)
    event = step(
        db, ops.contact, u.dongguan, ticket, to=S.contacted, note="已电话联系王先生", now=now
    )
    assert ticket.contacted_at == now
    assert ticket.lead_assignment.contacted_at == now
    assert event.reason == "已电话联系王先生"
    assert event.payload == {"late": False}
    assert event.unit_id == unit(db, DONGGUAN).id


def test_only_lead_contacts(db, u, new_ticket):
    ticket = new_ticket()
    ops.dispatch(db, u.dispatcher, ticket, lead=unit(db, DONGGUAN), assists=[unit(db, "U-CGJ")])
    ops.sign(db, u.dongguan, ticket)
    error = refused(
        db, ticket, Forbidden, "TICKET_NOT_ASSIGNED_TO_UNIT", ops.contact, u.cgj, note="已联系"
    )
    assert error.message == "只有主办单位可以执行此操作"
    refused(db, ticket, ValidationFailed, "VALIDATION_FAILED", ops.contact, u.dongguan, note=" ")


# -- return, designation ----------------------------------------------------------------------


@pytest.mark.parametrize("sign_first", [False, True])
def test_request_return(db, u, sign_first, dispatched, signed):
    ticket = signed() if sign_first else dispatched()
    before = ticket.status
    now = local(2026, 11, 16, 10)
    event = step(
        db,
        ops.request_return,
        u.dongguan,
        ticket,
        to=S.return_requested,
        return_reason=ReturnReason.not_our_duty,
        note="路灯属城管局直管",
        now=now,
    )
    assert event.from_status == before.value
    lead = ticket.lead_assignment
    assert lead.return_reason == ReturnReason.not_our_duty
    assert lead.return_note == "路灯属城管局直管"
    assert lead.return_requested_at == now
    assert lead.return_status == DecisionStatus.pending
    assert event.payload == {"return_reason": "not_our_duty"}
    assert event.unit_id == unit(db, DONGGUAN).id


def test_request_return_needs_a_note(db, u, dispatched):
    ticket = dispatched()
    error = refused(
        db,
        ticket,
        ValidationFailed,
        "VALIDATION_FAILED",
        ops.request_return,
        u.dongguan,
        return_reason=ReturnReason.wrong_territory,
        note="  ",
    )
    assert error.details == {"reason": "请填写退单说明"}
    assert ticket.lead_assignment.return_status is None


def test_request_return_needs_a_reason_code(db, u, dispatched):
    ticket = dispatched()
    error = refused(
        db,
        ticket,
        ValidationFailed,
        "VALIDATION_FAILED",
        ops.request_return,
        u.dongguan,
        return_reason=None,
        note="不是我们的",
    )
    assert error.details == {"return_reason": "请选择退单原因"}
    assert ticket.lead_assignment.return_status is None


def test_assist_cannot_request_return(db, u, new_ticket):
    ticket = new_ticket()
    ops.dispatch(db, u.dispatcher, ticket, lead=unit(db, DONGGUAN), assists=[unit(db, "U-CGJ")])
    refused(
        db,
        ticket,
        Forbidden,
        "TICKET_NOT_ASSIGNED_TO_UNIT",
        ops.request_return,
        u.cgj,
        return_reason=ReturnReason.not_our_duty,
        note="协办不能退单",
    )


def test_approve_return_redispatches_with_a_new_clock(db, u, dispatched):
    ticket = dispatched()  # lead 东关街道 + copy 奎文区政府, clock from Monday 09:00
    ops.request_return(
        db,
        u.dongguan,
        ticket,
        return_reason=ReturnReason.not_our_duty,
        note="路灯属城管局直管",
        now=local(2026, 11, 16, 10),
    )
    old_lead = ticket.lead_assignment
    decided = local(2026, 11, 17, 14)
    event = step(
        db,
        ops.decide_return,
        u.dispatcher,
        ticket,
        to=S.dispatched,
        approve=True,
        note="同意，改派城管局",
        lead=unit(db, "U-CGJ"),
        now=decided,
    )
    assert old_lead.active is False
    assert old_lead.ended_at == decided
    assert old_lead.return_status == DecisionStatus.approved
    assert ticket.lead_unit.code == "U-CGJ"
    assert assignments_of(db, ticket) == [
        (DONGGUAN, AssignmentRole.lead, False, False),
        (KUIWEN_GOV, AssignmentRole.copy, False, False),
        ("U-CGJ", AssignmentRole.lead, True, False),
    ]
    # New clock from Tuesday 14:00.
    assert ticket.clock_started_at == decided
    assert ticket.sign_due == local(2026, 11, 17, 16)
    assert ticket.contact_due == local(2026, 11, 18, 14)
    assert ticket.finish_due == local(2026, 11, 24, 14)
    assert event.payload["approved"] is True
    assert event.payload["returning_unit"] == DONGGUAN
    assert event.payload["lead_unit"] == "U-CGJ"
    assert event.reason == "同意，改派城管局"
    # The new lead signs; the old one no longer can.
    refused(db, ticket, Forbidden, "TICKET_NOT_ASSIGNED_TO_UNIT", ops.sign, u.dongguan)
    step(db, ops.sign, u.cgj, ticket, to=S.signed)


def test_approve_return_needs_a_different_lead(db, u, dispatched):
    ticket = dispatched()
    ops.request_return(
        db, u.dongguan, ticket, return_reason=ReturnReason.not_our_duty, note="不属本单位"
    )
    refused(
        db,
        ticket,
        ValidationFailed,
        "VALIDATION_FAILED",
        ops.decide_return,
        u.dispatcher,
        approve=True,
        note="同意",
        lead=None,
    )
    refused(
        db,
        ticket,
        ValidationFailed,
        "VALIDATION_FAILED",
        ops.decide_return,
        u.dispatcher,
        approve=True,
        note="同意",
        lead=unit(db, DONGGUAN),
    )
    assert ticket.lead_assignment.return_status == DecisionStatus.pending


@pytest.mark.parametrize("sign_first", [False, True])
def test_reject_return_goes_back(db, u, sign_first, dispatched, signed):
    ticket = signed() if sign_first else dispatched()
    back_to = S.signed if sign_first else S.dispatched
    finish_due = ticket.finish_due
    ops.request_return(
        db, u.dongguan, ticket, return_reason=ReturnReason.ownership_unclear, note="权属不清"
    )
    event = step(
        db,
        ops.decide_return,
        u.dispatcher,
        ticket,
        to=back_to,
        approve=False,
        note="属地管理，驳回",
    )
    assert ticket.lead_assignment.return_status == DecisionStatus.rejected
    assert ticket.lead_assignment.active is True
    assert ticket.lead_unit.code == DONGGUAN
    assert ticket.finish_due == finish_due
    assert event.payload == {"approved": False, "returning_unit": DONGGUAN}


def test_designate_from_received(db, u, new_ticket):
    ticket = new_ticket(category=None)
    event = step(
        db,
        ops.designate,
        u.dispatcher,
        ticket,
        to=S.dispatched,
        lead=unit(db, DONGGUAN),
        note="属地责任明确",
        category=category(db, STREETLIGHT),
        now=MON_0900,
    )
    assert assignments_of(db, ticket) == [
        (DONGGUAN, AssignmentRole.lead, True, True),
        (KUIWEN_GOV, AssignmentRole.copy, True, False),
    ]
    assert ticket.finish_due == local(2026, 11, 23, 9)
    assert event.payload["designated"] is True
    # A designated unit may not return the ticket.
    error = refused(
        db,
        ticket,
        Conflict,
        "DESIGNATED_NO_RETURN",
        ops.request_return,
        u.dongguan,
        return_reason=ReturnReason.not_our_duty,
        note="不属本单位",
    )
    assert error.message == "该工单由热线指定承办，不能退单"
    ops.sign(db, u.dongguan, ticket)
    refused(
        db,
        ticket,
        Conflict,
        "DESIGNATED_NO_RETURN",
        ops.request_return,
        u.dongguan,
        return_reason=ReturnReason.not_our_duty,
        note="不属本单位",
    )


def test_designate_settles_a_pending_return(db, u, dispatched):
    ticket = dispatched()
    ops.request_return(
        db, u.dongguan, ticket, return_reason=ReturnReason.not_our_duty, note="不属本单位"
    )
    returning = ticket.lead_assignment
    now = local(2026, 11, 17, 9)
    step(
        db,
        ops.designate,
        u.dispatcher,
        ticket,
        to=S.dispatched,
        lead=unit(db, "U-CGJ"),
        note="指定城管局办理",
        now=now,
    )
    assert returning.return_status == DecisionStatus.approved
    assert returning.active is False
    assert assignments_of(db, ticket)[-1] == ("U-CGJ", AssignmentRole.lead, True, True)
    assert ticket.clock_started_at == now
    assert ticket.finish_due == local(2026, 11, 24, 9)


def test_designate_back_to_the_returning_unit_rejects_its_return(db, u, dispatched):
    ticket = dispatched()
    ops.request_return(
        db, u.dongguan, ticket, return_reason=ReturnReason.not_our_duty, note="不属本单位"
    )
    returning = ticket.lead_assignment
    step(
        db,
        ops.designate,
        u.dispatcher,
        ticket,
        to=S.dispatched,
        lead=unit(db, DONGGUAN),
        note="属地管理，指定东关街道",
    )
    assert returning.return_status == DecisionStatus.rejected
    assert ticket.lead_assignment.designated is True
    assert ticket.lead_assignment.unit.code == DONGGUAN


def test_designate_needs_a_note(db, u, dispatched):
    ticket = dispatched()
    refused(
        db,
        ticket,
        ValidationFailed,
        "VALIDATION_FAILED",
        ops.designate,
        u.dispatcher,
        lead=unit(db, "U-CGJ"),
        note="",
    )
    assert ticket.lead_unit.code == DONGGUAN


def test_meeting_decision_sets_the_finish_due(db, u, dispatched):
    """A joint meeting's deadline (``finish_due``) replaces the SLA's finish deadline; the
    earlier deadlines are kept no later than it; the event records both."""
    ticket = dispatched()
    now = local(2026, 11, 17, 9)
    due = local(2026, 11, 17, 15)
    event = step(
        db,
        ops.apply_meeting_decision,
        u.supervisor,
        ticket,
        to=S.dispatched,
        lead=unit(db, "U-CGJ"),
        note="联席会议决定由城管局办理",
        finish_due=due,
        now=now,
    )
    assert ticket.finish_due == due
    assert ticket.clock_started_at == now
    assert ticket.sign_due <= due and ticket.contact_due <= due
    assert event.action == "apply_meeting_decision"
    assert ticket.lead_assignment.designated is True
    assert event.payload["finish_due"] == due.isoformat()
    assert event.payload["sla_finish_due"] == local(2026, 11, 24, 9).isoformat()
    # The timers follow: the finish warning and overdue are planned against the new deadline.
    assert ticket.next_due_at is not None and ticket.next_due_at <= due


def test_designate_takes_no_deadline(db, u, dispatched):
    """An ordinary 指定承办 keeps the SLA's deadlines: a deadline set by hand comes only with a
    meeting's decision (and moving one otherwise is 延期审核)."""
    ticket = dispatched()
    with pytest.raises(TypeError):
        ops.designate(
            db, u.dispatcher, ticket, lead=unit(db, "U-CGJ"), note="指定", finish_due=None
        )


def test_meeting_decision_refuses_a_finish_due_in_the_past(db, u, dispatched):
    ticket = dispatched()
    now = local(2026, 11, 17, 9)
    error = refused(
        db,
        ticket,
        ValidationFailed,
        "VALIDATION_FAILED",
        ops.apply_meeting_decision,
        u.supervisor,
        lead=unit(db, "U-CGJ"),
        note="指定",
        finish_due=now - dt.timedelta(minutes=1),
        now=now,
    )
    assert error.details == {"finish_due": "办结时限须晚于当前时间"}
    assert ticket.lead_unit.code == DONGGUAN


# -- extensions -------------------------------------------------------------------------------


def test_extension_approved_moves_finish_due_by_working_days(db, u, contacted):
    ticket = contacted()
    assert ticket.finish_due == local(2026, 11, 23, 9)
    requested = local(2026, 11, 18, 10)
    event = step(
        db,
        ops.request_extension,
        u.dongguan,
        ticket,
        to=S.contacted,
        days=2,
        reason="需协调电力部门更换线路",
        now=requested,
    )
    assert event.payload == {"days": 2}
    assert event.unit_id == unit(db, DONGGUAN).id
    (extension,) = extensions_of(db, ticket)
    assert extension.status == DecisionStatus.pending
    assert extension.old_finish_due == local(2026, 11, 23, 9)
    assert extension.requested_at == requested
    # A second request while one is pending is refused.
    refused(
        db,
        ticket,
        Conflict,
        "EXTENSION_PENDING",
        ops.request_extension,
        u.dongguan,
        days=1,
        reason="再延一天",
    )
    assert len(extensions_of(db, ticket)) == 1

    decided = local(2026, 11, 18, 15)
    event = step(
        db,
        ops.decide_extension,
        u.supervisor,
        ticket,
        to=S.contacted,
        approve=True,
        note="同意",
        now=decided,
    )
    # Monday 11-23 09:00 + 2 working days → Wednesday 11-25 09:00.
    assert ticket.finish_due == local(2026, 11, 25, 9)
    assert extension.status == DecisionStatus.approved
    assert extension.old_finish_due == local(2026, 11, 23, 9)
    assert extension.new_finish_due == local(2026, 11, 25, 9)
    assert (extension.decided_by_id, extension.decided_at) == (u.supervisor.id, decided)
    assert extension.decision_note == "同意"
    assert event.payload == {
        "approved": True,
        "days": 2,
        "old_finish_due": "2026-11-23T01:00:00+00:00",
        "new_finish_due": "2026-11-25T01:00:00+00:00",
        "calendar_guessed_years": [],
    }
    # Decided: a new request may be made.
    step(
        db,
        ops.request_extension,
        u.dongguan,
        ticket,
        to=S.contacted,
        days=1,
        reason="材料未到",
    )
    assert len(extensions_of(db, ticket)) == 2


def test_extension_rejected_keeps_finish_due(db, u, signed):
    ticket = signed()
    ops.request_extension(db, u.dongguan, ticket, days=3, reason="情况复杂")
    event = step(
        db,
        ops.decide_extension,
        u.dispatcher,
        ticket,
        to=S.signed,
        approve=False,
        note="时限内可办结",
    )
    assert ticket.finish_due == local(2026, 11, 23, 9)
    (extension,) = extensions_of(db, ticket)
    assert extension.status == DecisionStatus.rejected
    assert extension.new_finish_due is None
    assert event.payload == {"approved": False, "days": 3}


def test_extension_across_mid_autumn_and_national_day(db, u, signed):
    # Dispatched Tuesday 2026-09-22 09:00: 09-23 (1), 09-24 (2), 09-25..27 Mid-autumn off,
    # 09-28 (3), 09-29 (4), 09-30 (5).
    assert not chinese_calendar.is_workday(dt.date(2026, 9, 25))
    ticket = signed(now=local(2026, 9, 22, 9))
    assert ticket.finish_due == local(2026, 9, 30, 9)
    ops.request_extension(
        db, u.dongguan, ticket, days=3, reason="节前无法施工", now=local(2026, 9, 29, 9)
    )
    ops.decide_extension(
        db, u.supervisor, ticket, approve=True, note="同意", now=local(2026, 9, 29, 10)
    )
    # 09-30 + 3 working days: 10-08 (1), 10-09 (2), Saturday 10-10 swapped working day (3).
    assert ticket.finish_due == local(2026, 10, 10, 9)


def test_extension_needs_days_in_range_and_a_pending_request(db, u, signed):
    ticket = signed()
    for days in (0, 31):
        refused(
            db,
            ticket,
            ValidationFailed,
            "VALIDATION_FAILED",
            ops.request_extension,
            u.dongguan,
            days=days,
            reason="理由",
        )
    refused(
        db,
        ticket,
        Conflict,
        "NO_PENDING_EXTENSION",
        ops.decide_extension,
        u.supervisor,
        approve=True,
        note="同意",
    )
    assert extensions_of(db, ticket) == []


# -- finish, callback, close ------------------------------------------------------------------


def test_finish_requires_contact_when_requester_left_a_phone(db, u, signed):
    ticket = signed()
    error = refused(
        db, ticket, Conflict, "CONTACT_REQUIRED", ops.finish, u.dongguan, result="已修复"
    )
    assert error.message == "请先联系诉求人（响应）后再办结"
    assert ticket.callback_due is None


def test_finish_from_signed_without_phone(db, u, signed):
    ticket = signed(requester_phone=None)
    step(db, ops.finish, u.dongguan, ticket, to=S.finished, result="已修复")


def test_finish_sets_callback_due(db, u, contacted):
    ticket = contacted()
    now = local(2026, 11, 20, 15)  # Friday
    event = step(
        db, ops.finish, u.dongguan, ticket, to=S.finished, result="  路灯已修复  ", now=now
    )
    assert ticket.result == "路灯已修复"
    assert ticket.finished_at == now
    assert ticket.lead_assignment.finished_at == now
    # 1 working day after Friday 15:00 → Monday 15:00.
    assert ticket.callback_due == local(2026, 11, 23, 15)
    # The callback workbench may call at once.
    assert ticket.callback_next_at == now
    quality = event.payload["reply_quality"]  # the automatic check (办结审核), kept
    assert set(quality) == {"poor", "score", "reasons"}
    assert {k: v for k, v in event.payload.items() if k != "reply_quality"} == {
        "late": False,
        "callback_due": "2026-11-23T07:00:00+00:00",
        "calendar_guessed_years": [],
        "review": False,
        "review_mode": "none",
        "review_rule": None,
        "review_why": None,
        "assists_missing": [],
        "assists_note": None,
    }
    assert event.reason == "路灯已修复"
    assert event.unit_id == unit(db, DONGGUAN).id


def test_late_finish_is_flagged(db, u, contacted):
    ticket = contacted()
    event = step(
        db,
        ops.finish,
        u.dongguan,
        ticket,
        to=S.finished,
        result="已修复",
        now=local(2026, 11, 23, 9, 1),
    )
    assert event.payload["late"] is True


def test_only_lead_finishes(db, u, new_ticket):
    ticket = new_ticket()
    ops.dispatch(db, u.dispatcher, ticket, lead=unit(db, DONGGUAN), assists=[unit(db, "U-CGJ")])
    ops.sign(db, u.dongguan, ticket)
    ops.contact(db, u.dongguan, ticket, note="已联系")
    ops.sign(db, u.cgj, ticket)
    refused(db, ticket, Forbidden, "TICKET_NOT_ASSIGNED_TO_UNIT", ops.finish, u.cgj, result="好")
    refused(db, ticket, ValidationFailed, "VALIDATION_FAILED", ops.finish, u.dongguan, result="")


def test_callback_answered_and_satisfied_closes_at_once(db, u, finished):
    ticket = finished()
    assert ticket.callback_next_at is not None
    now = local(2026, 11, 18, 10)
    event = step(
        db,
        ops.record_callback,
        u.callback,
        ticket,
        to=S.closed,
        outcome=CallbackOutcome.answered,
        solved=Solved.solved,
        satisfaction=Satisfaction.satisfied,
        comment="市民表示满意",
        now=now,
    )
    assert ticket.callback_solved == Solved.solved
    assert ticket.callback_satisfaction == Satisfaction.satisfied
    assert ticket.callback_comment == "市民表示满意"
    assert ticket.callback_at == now
    assert ticket.closed_at == now
    assert ticket.callback_next_at is None
    assert all(not active for _, _, active, _ in assignments_of(db, ticket))
    assert event.payload == {
        "outcome": "answered",
        "attempt": 1,
        "solved": "solved",
        "satisfaction": "satisfied",
        "closed": "rated",
    }
    assert count(db, CallbackAttempt, ticket) == 1


def test_callback_answered_unhappy_waits_for_a_supervisor(db, u, finished):
    ticket = finished()
    now = local(2026, 11, 18, 10)
    event = step(
        db,
        ops.record_callback,
        u.callback,
        ticket,
        to=S.called_back,
        outcome=CallbackOutcome.answered,
        solved=Solved.partly,
        satisfaction=Satisfaction.dissatisfied,
        comment="路灯时亮时不亮",
        now=now,
    )
    assert ticket.closed_at is None
    assert ticket.callback_next_at is None  # no longer in the calling queue
    assert event.payload == {
        "outcome": "answered",
        "attempt": 1,
        "solved": "partly",
        "satisfaction": "dissatisfied",
    }


def test_callback_answered_needs_solved_and_satisfaction(db, u, finished):
    ticket = finished()
    for kwargs, field in (
        ({"satisfaction": Satisfaction.satisfied}, "solved"),
        ({"solved": Solved.solved}, "satisfaction"),
    ):
        error = refused(
            db,
            ticket,
            ValidationFailed,
            "VALIDATION_FAILED",
            ops.record_callback,
            u.callback,
            outcome=CallbackOutcome.answered,
            **kwargs,
        )
        assert list(error.details) == [field]
    # An unanswered call cannot carry a rating.
    refused(
        db,
        ticket,
        ValidationFailed,
        "VALIDATION_FAILED",
        ops.record_callback,
        u.callback,
        outcome=CallbackOutcome.no_answer,
        solved=Solved.solved,
        satisfaction=Satisfaction.satisfied,
    )
    assert count(db, CallbackAttempt, ticket) == 0


def test_callback_no_answer_keeps_finished(db, u, finished):
    ticket = finished()
    for attempt in (1, 2):
        now = local(2026, 11, 17 + attempt, 10)  # a day apart (CALLBACK_RETRY_HOURS)
        event = step(
            db,
            ops.record_callback,
            u.callback,
            ticket,
            to=S.finished,
            outcome=CallbackOutcome.no_answer,
            now=now,
        )
        retry_at = now + dt.timedelta(hours=24)
        assert event.payload == {
            "outcome": "no_answer",
            "attempt": attempt,
            "next_attempt_at": retry_at.isoformat(),
        }
        assert ticket.callback_next_at == retry_at
    assert ticket.callback_solved is None
    assert count(db, CallbackAttempt, ticket) == 2


def test_callback_needs_a_phone(db, u, finished):
    ticket = finished()
    ticket.requester_phone = None
    db.flush()
    refused(
        db,
        ticket,
        ValidationFailed,
        "VALIDATION_FAILED",
        ops.record_callback,
        u.callback,
        outcome=CallbackOutcome.no_answer,
    )


@pytest.fixture
def legacy_happy_called_back(db, u, called_back):
    """A ticket left in 已回访 with a happy result, as answered calls left them before they
    closed the ticket themselves."""

    def make():
        ticket = called_back(Solved.unsolved, Satisfaction.dissatisfied)
        ticket.callback_solved = Solved.solved
        ticket.callback_satisfaction = Satisfaction.basically
        db.flush()
        return ticket

    return make


def test_basically_satisfied_callback_closes_at_once(db, u, called_back):
    ticket = called_back(Solved.solved, Satisfaction.basically)
    assert ticket.status == S.closed
    assert ticket.closed_at == MON_0900 + dt.timedelta(days=2)
    assert events_of(db, ticket)[-1].payload["closed"] == "rated"


def test_close_legacy_satisfied_by_callback_agent(db, u, legacy_happy_called_back):
    ticket = legacy_happy_called_back()
    now = local(2026, 11, 18, 16)
    event = step(db, ops.close, u.callback, ticket, to=S.closed, now=now)
    assert ticket.closed_at == now
    assert event.payload == {"closed": "rated"}
    assert all(not active for _, _, active, _ in assignments_of(db, ticket))


@pytest.mark.parametrize(
    "solved,satisfaction",
    [
        (Solved.unsolved, Satisfaction.basically),
        (Solved.solved, Satisfaction.dissatisfied),
    ],
)
def test_close_unhappy_needs_supervisor_with_reason(db, u, solved, satisfaction, called_back):
    ticket = called_back(solved, satisfaction)
    refused(db, ticket, Forbidden, "SUPERVISOR_DECISION_REQUIRED", ops.close, u.callback)
    refused(db, ticket, ValidationFailed, "VALIDATION_FAILED", ops.close, u.supervisor, reason=" ")
    event = step(
        db,
        ops.close,
        u.supervisor,
        ticket,
        to=S.closed,
        reason="诉求超出政策范围，已解释",
    )
    assert event.payload == {"closed": "accepted_unhappy"}
    assert event.reason == "诉求超出政策范围，已解释"
    assert ticket.closed_at is not None
    assert all(not active for _, _, active, _ in assignments_of(db, ticket))


def test_three_unanswered_attempts_over_two_days_close_as_unreachable(db, u, finished):
    ticket = finished()  # Tuesday 09:00
    error = refused(db, ticket, Conflict, "CALLBACK_REQUIRED", ops.close, u.callback)
    assert error.details == {"unreached_attempts": 0, "required": 3}
    for day in (17, 18):
        ops.record_callback(
            db, u.callback, ticket, outcome=CallbackOutcome.no_answer, now=local(2026, 11, day, 10)
        )
        error = refused(db, ticket, Conflict, "CALLBACK_REQUIRED", ops.close, u.callback)
        assert error.details == {"unreached_attempts": day - 16, "required": 3}
    now = local(2026, 11, 19, 10)
    event = step(
        db,
        ops.record_callback,
        u.callback,
        ticket,
        to=S.closed,
        outcome=CallbackOutcome.no_answer,
        now=now,
    )
    assert event.payload == {"outcome": "no_answer", "attempt": 3, "closed": "unreachable"}
    assert ticket.closed_at == now
    assert (ticket.callback_solved, ticket.callback_satisfaction) == (None, None)  # not rated
    assert ticket.callback_next_at is None
    assert all(not active for _, _, active, _ in assignments_of(db, ticket))


def test_refusal_closes_at_once(db, u, finished):
    ticket = finished()
    event = step(
        db,
        ops.record_callback,
        u.callback,
        ticket,
        to=S.closed,
        outcome=CallbackOutcome.refused,
        now=local(2026, 11, 17, 10),
    )
    assert event.payload == {"outcome": "refused", "attempt": 1, "closed": "refused"}
    assert ticket.callback_solved is None


def test_close_from_finished_without_phone(db, u, new_ticket):
    ticket = new_ticket(requester_phone=None)
    ops.dispatch(db, u.dispatcher, ticket, lead=unit(db, DONGGUAN))
    ops.sign(db, u.dongguan, ticket)
    ops.finish(db, u.dongguan, ticket, result="已修复")
    refused(
        db,
        ticket,
        ValidationFailed,
        "VALIDATION_FAILED",
        ops.record_callback,
        u.callback,
        outcome=CallbackOutcome.no_answer,
    )
    event = step(db, ops.close, u.callback, ticket, to=S.closed)
    assert event.payload == {"closed": "no_phone"}
    assert ticket.callback_next_at is None


# -- reopen -----------------------------------------------------------------------------------


def test_reopen_goes_back_to_the_same_units_with_a_new_clock(db, u, new_ticket):
    ticket = new_ticket()
    ops.dispatch(
        db,
        u.dispatcher,
        ticket,
        lead=unit(db, DONGGUAN),
        assists=[unit(db, "U-CGJ")],
        now=MON_0900,
    )
    ops.sign(db, u.dongguan, ticket, now=local(2026, 11, 16, 10))
    ops.contact(db, u.dongguan, ticket, note="已联系", now=local(2026, 11, 16, 11))
    ops.finish(
        db,
        u.dongguan,
        ticket,
        result="已修复",
        assists_note="城管局未签收，路灯由本单位修复",
        now=local(2026, 11, 17, 9),
    )
    ops.record_callback(
        db,
        u.callback,
        ticket,
        outcome=CallbackOutcome.answered,
        solved=Solved.unsolved,
        satisfaction=Satisfaction.dissatisfied,
        comment="路灯仍不亮",
        now=local(2026, 11, 18, 9),
    )
    reopened_at = local(2026, 11, 18, 10)
    event = step(
        db,
        ops.reopen,
        u.supervisor,
        ticket,
        to=S.reopened,
        reason="回访未解决",
        now=reopened_at,
    )
    assert ticket.reopen_count == 1
    assert ticket.lead_unit.code == DONGGUAN
    assert ticket.result is None
    assert (ticket.callback_solved, ticket.callback_satisfaction) == (None, None)
    assert (ticket.signed_at, ticket.contacted_at, ticket.finished_at) == (None, None, None)
    assert ticket.callback_due is None
    assert ticket.clock_started_at == reopened_at
    assert ticket.sign_due == local(2026, 11, 18, 12)
    assert ticket.contact_due == local(2026, 11, 19, 10)
    assert ticket.finish_due == local(2026, 11, 25, 10)
    assert assignments_of(db, ticket) == [
        (DONGGUAN, AssignmentRole.lead, False, False),
        ("U-CGJ", AssignmentRole.assist, False, False),
        (KUIWEN_GOV, AssignmentRole.copy, False, False),
        (DONGGUAN, AssignmentRole.lead, True, False),
        ("U-CGJ", AssignmentRole.assist, True, False),
        (KUIWEN_GOV, AssignmentRole.copy, True, False),
    ]
    assert event.payload["reopen_count"] == 1
    assert event.payload["lead_unit"] == DONGGUAN
    assert event.payload["assist_units"] == ["U-CGJ"]
    assert event.payload["finish_due"] == "2026-11-25T02:00:00+00:00"
    # Then the same units sign again.
    step(db, ops.sign, u.dongguan, ticket, to=S.signed, now=local(2026, 11, 18, 11))
    step(db, ops.sign, u.cgj, ticket, to=S.signed, now=local(2026, 11, 18, 11, 5))
    step(db, ops.contact, u.dongguan, ticket, to=S.contacted, note="再次联系")
    # The new round needs the assist's new report (协办反馈).
    step(db, cohandling.report_assist, u.cgj, ticket, to=S.contacted, report="已配合更换灯具")
    step(db, ops.finish, u.dongguan, ticket, to=S.finished, result="更换灯具")


def test_reopen_refused_when_solved_and_satisfied(db, u, called_back, legacy_happy_called_back):
    ticket = called_back(Solved.solved, Satisfaction.satisfied)
    refused(db, ticket, Conflict, "TICKET_STATE_CONFLICT", ops.reopen, u.supervisor, reason="再办")
    ticket = legacy_happy_called_back()
    refused(db, ticket, Conflict, "REOPEN_NOT_NEEDED", ops.reopen, u.supervisor, reason="再办")
    assert ticket.reopen_count == 0


def test_reopen_when_partly_solved_but_dissatisfied(db, u, called_back):
    ticket = called_back(Solved.partly, Satisfaction.dissatisfied)
    step(db, ops.reopen, u.supervisor, ticket, to=S.reopened, reason="不满意")
    assert ticket.reopen_count == 1


def test_callback_attempts_of_an_earlier_round_do_not_count_after_reopen(db, u, finished):
    ticket = finished()  # Tuesday 09:00
    for moment in (local(2026, 11, 17, 10), local(2026, 11, 18, 10)):
        ops.record_callback(db, u.callback, ticket, outcome=CallbackOutcome.no_answer, now=moment)
    ops.record_callback(
        db,
        u.callback,
        ticket,
        outcome=CallbackOutcome.answered,
        solved=Solved.unsolved,
        satisfaction=Satisfaction.dissatisfied,
        now=local(2026, 11, 18, 15),
    )
    ops.reopen(db, u.supervisor, ticket, reason="未解决", now=local(2026, 11, 18, 16))
    ops.sign(db, u.dongguan, ticket, now=local(2026, 11, 18, 16, 30))
    ops.contact(db, u.dongguan, ticket, note="再次联系", now=local(2026, 11, 18, 17))
    ops.finish(db, u.dongguan, ticket, result="已更换灯具", now=local(2026, 11, 18, 18))
    # One unanswered call on the new result is not three, and the earlier round's unanswered
    # call (Wednesday 10:00) does not hold back the first call on the new result.
    now = local(2026, 11, 19, 9)
    event = step(
        db,
        ops.record_callback,
        u.callback,
        ticket,
        to=S.finished,
        outcome=CallbackOutcome.no_answer,
        now=now,
    )
    assert event.payload == {
        "outcome": "no_answer",
        "attempt": 1,
        "next_attempt_at": (now + dt.timedelta(hours=24)).isoformat(),
    }
    error = refused(db, ticket, Conflict, "CALLBACK_REQUIRED", ops.close, u.callback)
    assert error.details == {"unreached_attempts": 1, "required": 3}


# -- termination ------------------------------------------------------------------------------


@pytest.mark.parametrize("contact_first", [False, True])
def test_termination_approved(db, u, contact_first, contacted, signed):
    ticket = contacted() if contact_first else signed()
    event = step(
        db,
        ops.request_termination,
        u.dongguan,
        ticket,
        to=S.termination_requested,
        reason="诉求人撤回诉求",
    )
    assert event.unit_id == unit(db, DONGGUAN).id
    now = local(2026, 11, 17, 10)
    event = step(
        db,
        ops.review_termination,
        u.supervisor,
        ticket,
        to=S.terminated,
        approve=True,
        note="同意终止",
        now=now,
    )
    assert ticket.closed_at == now
    assert event.payload == {"approved": True}
    assert all(not active for _, _, active, _ in assignments_of(db, ticket))


@pytest.mark.parametrize("contact_first", [False, True])
def test_termination_rejected_goes_back(db, u, contact_first, contacted, signed):
    ticket = contacted() if contact_first else signed()
    back_to = S.contacted if contact_first else S.signed
    ops.request_termination(db, u.dongguan, ticket, reason="诉求人撤回诉求")
    event = step(
        db,
        ops.review_termination,
        u.supervisor,
        ticket,
        to=back_to,
        approve=False,
        note="诉求人未书面撤回，继续办理",
    )
    assert event.payload == {"approved": False}
    assert ticket.closed_at is None
    assert ticket.lead_assignment.active is True


def test_termination_needs_reasons(db, u, signed):
    ticket = signed()
    refused(
        db,
        ticket,
        ValidationFailed,
        "VALIDATION_FAILED",
        ops.request_termination,
        u.dongguan,
        reason="",
    )
    ops.request_termination(db, u.dongguan, ticket, reason="撤回")
    refused(
        db,
        ticket,
        ValidationFailed,
        "VALIDATION_FAILED",
        ops.review_termination,
        u.supervisor,
        approve=True,
        note=None,
    )


# -- exemption --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [S.received, S.contacted, S.closed])
def test_exempt_and_back(db, u, status, called_back, contacted, new_ticket):
    if status == S.received:
        ticket = new_ticket()
    elif status == S.contacted:
        ticket = contacted()
    else:
        ticket = called_back(Solved.solved, Satisfaction.satisfied)
    event = step(
        db,
        ops.exempt,
        u.supervisor,
        ticket,
        to=status,
        kind=ExemptionKind.unreasonable,
        reason="重复无理索要",
    )
    assert ticket.scoring_exempt is True
    assert ticket.exempt_kind == ExemptionKind.unreasonable
    assert ticket.exempt_reason == "重复无理索要"
    assert event.payload == {"exempt": True, "kind": "unreasonable"}
    error = refused(
        db,
        ticket,
        Conflict,
        "EXEMPTION_UNCHANGED",
        ops.exempt,
        u.supervisor,
        kind=ExemptionKind.other,
        reason="再次",
    )
    assert error.message == "工单已是该考核状态"
    event = step(
        db, ops.exempt, u.supervisor, ticket, to=status, exempt=False, reason="复核后恢复考核"
    )
    assert ticket.scoring_exempt is False
    assert ticket.exempt_kind is None and ticket.exempt_reason is None
    assert event.payload == {"exempt": False}


def test_exempt_needs_a_reason_and_a_change(db, u, new_ticket):
    ticket = new_ticket()
    refused(db, ticket, ValidationFailed, "VALIDATION_FAILED", ops.exempt, u.supervisor, reason="")
    error = refused(
        db, ticket, ValidationFailed, "VALIDATION_FAILED", ops.exempt, u.supervisor, reason="重复"
    )
    assert error.details == {"kind": "请选择豁免类型"}
    refused(
        db,
        ticket,
        Conflict,
        "EXEMPTION_UNCHANGED",
        ops.exempt,
        u.supervisor,
        exempt=False,
        reason="恢复考核",
    )
    assert ticket.scoring_exempt is False


# -- the whole way through the HTTP API -------------------------------------------------------


def _ok(response):
    assert response.status_code in (200, 201), response.json
    assert response.json["success"] is True
    return response.json["data"]


def test_api_happy_path_from_create_to_closed(db, api):
    created = api("operator").post(
        "/tickets",
        json={
            "channel": "phone",
            "request_type": "complaint",
            "category": STREETLIGHT,
            "title": "胜利东街路灯不亮",
            "content": "胜利东街100号门口路灯连续一周不亮",
            "requester_name": "王先生",
            "requester_phone": "13805360001",
            "address": "奎文区东关街道胜利东街100号",
            "area": "370705001",
        },
    )
    assert created.status_code == 201, created.json
    data = created.json["data"]
    number = data["number"]
    assert data["status"] == {"value": "received", "label": "已受理"}
    assert created.headers["Location"] == f"/api/v1/tickets/{number}"

    def post(username, slug, body, status):
        data = _ok(api(username).post(f"/tickets/{number}/{slug}", json=body))
        assert data["status"]["value"] == status, (slug, data["status"])
        assert data["event"]["to_status"] == status
        assert data["event"]["actor"] == username
        return data

    data = post(
        "dispatcher",
        "dispatch",
        {"lead_unit": DONGGUAN, "assist_units": ["U-CGJ"], "version": data["version"]},
        "dispatched",
    )
    assert data["lead_unit"] == {"code": DONGGUAN, "name": "东关街道办事处"}
    assert data["event"]["payload"]["copied_to"] == [KUIWEN_GOV]
    data = post("cgj", "sign", {"version": data["version"]}, "dispatched")
    post("dongguan", "sign", {"version": data["version"]}, "signed")
    post("dongguan", "contact", {"note": "已电话联系王先生"}, "contacted")
    post("dongguan", "extension-request", {"days": 2, "reason": "需更换线路"}, "contacted")
    data = post("supervisor", "extension-decision", {"approve": True, "note": "同意"}, "contacted")
    assert data["event"]["payload"]["days"] == 2
    post("cgj", "assist-report", {"report": "已配合排查路灯线路"}, "contacted")
    post("dongguan", "finish", {"result": "路灯线路已更换，恢复照明"}, "finished")
    queue = _ok(api("callback").get("/callbacks"))
    assert [item["number"] for item in queue["items"]] == [number]
    post("callback", "callback", {"outcome": "no_answer"}, "finished")
    # A solved and satisfied answer archives the ticket at once.
    data = post(
        "callback",
        "callback",
        {"outcome": "answered", "solved": "solved", "satisfaction": "satisfied"},
        "closed",
    )
    assert data["closed_at"] is not None
    assert data["event"]["payload"]["closed"] == "rated"
    assert _ok(api("callback").get("/callbacks"))["total"] == 0

    detail = _ok(api("dispatcher").get(f"/tickets/{number}"))
    assert detail["status"]["value"] == "closed"
    assert detail["version"] == data["version"]
    steps = [
        (e["action"], e["actor"], e["actor_role"], e["from_status"], e["to_status"])
        for e in detail["events"]
    ]
    assert steps == [
        ("receive", "operator", "operator", None, "received"),
        ("dispatch", "dispatcher", "dispatcher", "received", "dispatched"),
        ("sign", "cgj", "unit_handler", "dispatched", "dispatched"),
        ("sign", "dongguan", "unit_handler", "dispatched", "signed"),
        ("contact", "dongguan", "unit_handler", "signed", "contacted"),
        ("request_extension", "dongguan", "unit_handler", "contacted", "contacted"),
        ("decide_extension", "supervisor", "supervisor", "contacted", "contacted"),
        ("report_assist", "cgj", "unit_handler", "contacted", "contacted"),
        ("finish", "dongguan", "unit_handler", "contacted", "finished"),
        ("record_callback", "callback", "callback_agent", "finished", "finished"),
        ("record_callback", "callback", "callback_agent", "finished", "closed"),
    ]
    ids = [e["id"] for e in detail["events"]]
    assert ids == sorted(ids)
    times = [e["created_at"] for e in detail["events"]]
    assert times == sorted(times)
    assert [e["unit"] for e in detail["events"][2:5]] == ["U-CGJ", DONGGUAN, DONGGUAN]
    assert [(x["days"], x["status"]["value"]) for x in detail["extensions"]] == [(2, "approved")]
    assert [c["outcome"]["value"] for c in detail["callback_attempts"]] == [
        "no_answer",
        "answered",
    ]
    assert all(not a["active"] for a in detail["assignments"])
    assert [(a["unit"]["code"], a["role"]["value"]) for a in detail["assignments"]] == [
        (DONGGUAN, "lead"),
        ("U-CGJ", "assist"),
        (KUIWEN_GOV, "copy"),
    ]

    # The database agrees, and the state is the last event's to_status.
    db.expire_all()
    ticket = db.scalars(sa.select(Ticket).where(Ticket.number == number)).one()
    assert ticket.status == S.closed
    assert_derivable(db, ticket)


# -- hand-overs: what a unit leaves behind when the ticket moves on ----------------------------


def test_pending_extension_lapses_when_the_ticket_changes_hands(db, u, signed):
    ticket = signed()
    ops.request_extension(db, u.dongguan, ticket, days=3, reason="需协调产权单位", now=MON_0900)
    ops.designate(db, u.dispatcher, ticket, lead=unit(db, "U-CGJ"), note="属城管职责", now=MON_0900)
    (extension,) = extensions_of(db, ticket)
    assert extension.status == DecisionStatus.rejected
    assert "自动失效" in extension.decision_note
    # The new unit starts clean: its own request is not blocked by the old one.
    ops.sign(db, u.cgj, ticket, now=MON_0900)
    ops.request_extension(db, u.cgj, ticket, days=2, reason="需要采购灯具", now=MON_0900)
    assert [x.status for x in extensions_of(db, ticket)] == [
        DecisionStatus.rejected,
        DecisionStatus.pending,
    ]


def test_pending_extension_lapses_when_the_unit_finishes(db, u, contacted):
    ticket = contacted()
    ops.request_extension(db, u.dongguan, ticket, days=3, reason="需协调", now=MON_0900)
    ops.finish(db, u.dongguan, ticket, result="已修复", now=MON_0900 + dt.timedelta(hours=3))
    (extension,) = extensions_of(db, ticket)
    assert extension.status == DecisionStatus.rejected
    refused(
        db,
        ticket,
        Conflict,
        "TICKET_STATE_CONFLICT",
        ops.decide_extension,
        u.dispatcher,
        approve=True,
        note="同意",
    )


def test_reopened_designated_ticket_still_cannot_be_returned(db, u, new_ticket):
    ticket = new_ticket()
    ops.designate(db, u.dispatcher, ticket, lead=unit(db, DONGGUAN), note="属地管理", now=MON_0900)
    ops.sign(db, u.dongguan, ticket, now=MON_0900)
    ops.contact(db, u.dongguan, ticket, note="已联系", now=MON_0900)
    ops.finish(db, u.dongguan, ticket, result="已处理", now=MON_0900)
    ops.record_callback(
        db,
        u.callback,
        ticket,
        outcome=CallbackOutcome.answered,
        solved=Solved.unsolved,
        satisfaction=Satisfaction.dissatisfied,
        now=MON_0900,
    )
    ops.reopen(db, u.supervisor, ticket, reason="路灯仍不亮", now=MON_0900)
    assert ticket.lead_assignment.designated
    ops.sign(db, u.dongguan, ticket, now=MON_0900)
    refused(
        db,
        ticket,
        Conflict,
        "DESIGNATED_NO_RETURN",
        ops.request_return,
        u.dongguan,
        return_reason=ReturnReason.not_our_duty,
        note="非本单位职责",
    )


def test_merge_into_a_closed_ticket_refused(db, u, called_back, new_ticket):
    done = called_back(Solved.solved, Satisfaction.satisfied)
    assert done.status == S.closed
    repeat = new_ticket()
    refused(db, repeat, ValidationFailed, "VALIDATION_FAILED", ops.merge, u.operator, into=done)
