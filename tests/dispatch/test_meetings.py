"""联席会议 (dispatch/meetings.py): a meeting's life from its agenda to its decisions, each
decision applied through 指定承办 with the meeting's deadline (and the timers following it),
the refusals that leave nothing behind, the audit rows, and the XLSX export."""

import datetime as dt
import io
from types import SimpleNamespace

import openpyxl
import pytest
import sqlalchemy as sa

from dispatch import meeting_exports, meetings, timers
from dispatch import operations as ops
from dispatch.states import event_label
from hotline.enums import (
    CallbackOutcome,
    MeetingState,
    ReturnReason,
    Satisfaction,
    Solved,
    TicketStatus,
    TimerKind,
)
from hotline.errors import Conflict, Forbidden, ValidationFailed
from hotline.models import AuditLog, JointMeeting, MeetingItem, TicketEvent, TimerFiring
from tests.dispatch.common import DONGGUAN, STREETLIGHT, TZ
from tests.dispatch.conftest import unit

ZONE = "Asia/Shanghai"
CGJ = "U-CGJ"
USERS = ["operator", "dispatcher", "dongguan", "cgj", "callback", "supervisor", "leader"]


def local(month, day, hour=9):
    return dt.datetime(2026, month, day, hour, tzinfo=TZ).astimezone(dt.UTC)


MON = local(11, 16)
THU = local(11, 19)


@pytest.fixture
def u(user):
    return SimpleNamespace(**{name: user(name) for name in USERS})


@pytest.fixture
def disputed(db, u, make_ticket):
    """A ticket 东关街道 and 城管局 each asked to return (a hard case), back with 城管局."""

    def make():
        ticket = make_ticket(u.operator, category=STREETLIGHT, area="370705001", now=MON)
        ops.dispatch(db, u.dispatcher, ticket, lead=unit(db, DONGGUAN), now=MON)
        for handler, at in ((u.dongguan, MON), (u.cgj, MON + dt.timedelta(days=1))):
            ops.request_return(
                db,
                handler,
                ticket,
                return_reason=ReturnReason.not_our_duty,
                note="不属本单位职责",
                now=at + dt.timedelta(hours=1),
            )
            if handler is u.dongguan:
                ops.decide_return(
                    db,
                    u.dispatcher,
                    ticket,
                    approve=True,
                    note="改派城管",
                    lead=unit(db, CGJ),
                    now=at + dt.timedelta(hours=2),
                )
        db.flush()
        return ticket

    return make


@pytest.fixture
def meeting(db, u):
    def make(title="11月第三周疑难工单联席会议"):
        return meetings.create_meeting(
            db,
            u.supervisor,
            title=title,
            scheduled_at=local(11, 18, 14),
            place="市民热线中心三楼会议室",
            chair="郑国栋",
            attendees="东关街道办事处、潍坊市城市管理局",
            now=MON,
        )

    return make


def audits(db, action):
    return db.scalars(sa.select(AuditLog).where(AuditLog.action == action)).all()


HELD_AT = local(11, 18, 16)


def held(db, u, meeting, *tickets, at=HELD_AT):
    m = meeting()
    for t in tickets:
        meetings.add_item(db, u.supervisor, m, t, tz=ZONE, now=local(11, 17))
    meetings.hold_meeting(
        db, u.supervisor, m, minutes="会议议定：路灯由东关街道负责维修。", held_at=at, now=at
    )
    return m


def test_meeting_lifecycle_and_decision_applied_as_a_designation(db, u, disputed, meeting):
    ticket = disputed()
    m = meeting()
    assert m.state == MeetingState.planned
    item = meetings.add_item(db, u.supervisor, m, ticket, tz=ZONE, now=local(11, 17))
    assert [r["rule"] for r in item.reasons] == ["returned", "disputed"]
    assert item.reasons[0]["count"] == 2

    at = local(11, 18, 16)
    meetings.hold_meeting(db, u.supervisor, m, minutes="议定由东关街道办理。", held_at=at, now=at)
    assert (m.state, m.held_at, m.held_by_id) == (MeetingState.held, at, u.supervisor.id)

    due = local(11, 20, 17)
    event = meetings.decide_item(
        db, u.supervisor, item, unit=unit(db, DONGGUAN), due=due, notes="属地管理", now=THU
    )
    assert event.action == "apply_meeting_decision"
    assert event_label(event.action) == "会议决定指定"
    assert event.actor_id == u.supervisor.id
    assert event.reason == "联席会议“11月第三周疑难工单联席会议”决定：属地管理"
    assert event.payload["finish_due"] == due.isoformat()
    assert ticket.status == TicketStatus.dispatched
    assert ticket.lead_unit.code == DONGGUAN
    assert ticket.lead_assignment.designated is True
    assert (ticket.finish_due, ticket.clock_started_at) == (due, THU)
    assert item.event_id == event.id
    assert (item.decision_unit.code, item.decision_due, item.decision_notes) == (
        DONGGUAN,
        due,
        "属地管理",
    )
    assert [a.action for a in audits(db, "meeting.create")] == ["meeting.create"]
    assert audits(db, "meeting.add_item")[0].payload["ticket"] == ticket.number
    assert audits(db, "meeting.hold")[0].payload["items"] == 1
    decided = audits(db, "meeting.decide")[0].payload
    assert decided == {
        "ticket": ticket.number,
        "unit": DONGGUAN,
        "finish_due": due.isoformat(),
        "event_id": event.id,
    }

    # The timers follow the meeting's deadline: the finish overdue fires at it, not at the SLA's.
    db.flush()
    timers.tick(db, due, ops.timer_settings())
    fired = db.scalars(
        sa.select(TimerFiring).where(
            TimerFiring.ticket_id == ticket.id, TimerFiring.kind == TimerKind.finish_overdue
        )
    ).all()
    assert [f.due_at for f in fired] == [due]

    # A decision is applied once.
    with pytest.raises(Conflict) as caught:
        meetings.decide_item(
            db, u.supervisor, item, unit=unit(db, CGJ), due=due, notes="再议", now=THU
        )
    assert caught.value.code == "MEETING_ITEM_DECIDED"


def events_of(db, ticket):
    return db.scalar(
        sa.select(sa.func.count())
        .select_from(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id)
    )


def test_a_decision_on_a_ticket_that_left_handling_is_refused(db, u, disputed, meeting):
    ticket = disputed()
    m = held(db, u, meeting, ticket)
    item = m.items[0]
    # Meanwhile the dispatcher decided the return and the unit finished.
    ops.decide_return(db, u.dispatcher, ticket, approve=False, note="属城管职责", now=THU)
    ops.sign(db, u.cgj, ticket, now=THU)
    ops.contact(db, u.cgj, ticket, note="已联系", now=THU + dt.timedelta(hours=1))
    ops.finish(db, u.cgj, ticket, result="已修复", now=THU + dt.timedelta(hours=2))
    before = events_of(db, ticket)
    with pytest.raises(Conflict) as caught:
        meetings.decide_item(
            db,
            u.supervisor,
            item,
            unit=unit(db, DONGGUAN),
            due=local(11, 25),
            notes="属地管理",
            now=THU + dt.timedelta(hours=3),
        )
    assert caught.value.code == "TICKET_LEFT_HANDLING"
    assert "当前状态为“已办结”，已不在办理中，会议决定无法执行" in caught.value.message
    assert events_of(db, ticket) == before and item.decided_at is None


def test_a_deadline_in_the_past_is_refused(db, u, disputed, meeting):
    ticket = disputed()
    item = held(db, u, meeting, ticket).items[0]
    before = (ticket.version, events_of(db, ticket))
    with pytest.raises(ValidationFailed) as caught:
        meetings.decide_item(
            db,
            u.supervisor,
            item,
            unit=unit(db, DONGGUAN),
            due=THU - dt.timedelta(hours=1),
            notes="属地管理",
            now=THU,
        )
    assert caught.value.details == {"finish_due": "办结时限须晚于当前时间"}
    db.flush()
    assert (ticket.version, events_of(db, ticket)) == before
    assert ticket.lead_unit.code == CGJ and item.decided_at is None


def test_only_a_supervisor_manages_meetings(db, u, disputed, meeting):
    for actor in (u.dispatcher, u.leader, u.dongguan):
        with pytest.raises(Forbidden):
            meetings.create_meeting(
                db, actor, title="会议", scheduled_at=local(11, 18, 14), now=MON
            )
    ticket = disputed()
    m = meeting("12月疑难工单联席会议")
    with pytest.raises(Forbidden):
        meetings.add_item(db, u.leader, m, ticket, tz=ZONE)
    item = held(db, u, meeting, ticket).items[0]
    with pytest.raises(Forbidden):
        meetings.decide_item(
            db, u.dispatcher, item, unit=unit(db, DONGGUAN), due=local(11, 25), notes="x", now=THU
        )
    assert item.decided_at is None


def test_decisions_wait_for_the_meeting_and_agendas_close_when_held(db, u, disputed, meeting):
    ticket = disputed()
    m = meeting()
    item = meetings.add_item(db, u.supervisor, m, ticket, tz=ZONE, now=local(11, 17))
    with pytest.raises(Conflict) as caught:
        meetings.decide_item(
            db, u.supervisor, item, unit=unit(db, DONGGUAN), due=local(11, 25), notes="x", now=THU
        )
    assert caught.value.code == "MEETING_NOT_HELD"
    with pytest.raises(Conflict) as caught:
        meetings.add_item(db, u.supervisor, m, ticket, tz=ZONE)
    assert caught.value.code == "MEETING_ITEM_EXISTS"
    meetings.hold_meeting(db, u.supervisor, m, minutes="纪要", held_at=THU, now=THU)
    with pytest.raises(Conflict) as caught:
        meetings.remove_item(db, u.supervisor, item)
    assert caught.value.code == "MEETING_ALREADY_HELD"


def test_an_empty_agenda_cannot_be_held(db, u, meeting):
    with pytest.raises(Conflict) as caught:
        meetings.hold_meeting(db, u.supervisor, meeting(), minutes="纪要", now=THU)
    assert caught.value.code == "MEETING_AGENDA_EMPTY"


def test_an_ordinary_ticket_needs_a_reason_and_a_closed_one_is_refused(db, u, make_ticket, meeting):
    m = meeting()
    ticket = make_ticket(u.operator, category=STREETLIGHT, area="370705001", now=MON)
    ops.dispatch(db, u.dispatcher, ticket, lead=unit(db, DONGGUAN), now=MON)
    with pytest.raises(ValidationFailed) as caught:
        meetings.add_item(db, u.supervisor, m, ticket, tz=ZONE)
    assert caught.value.code == "REASON_REQUIRED"
    item = meetings.add_item(db, u.supervisor, m, ticket, reason="市领导批示督办", tz=ZONE)
    assert item.reasons == [{"rule": "manual", "label": "督办提请", "text": "市领导批示督办"}]
    meetings.remove_item(db, u.supervisor, item)
    db.flush()
    assert db.scalar(sa.select(sa.func.count()).select_from(MeetingItem)) == 0
    assert audits(db, "meeting.remove_item")[0].payload == {"ticket": ticket.number}

    closed = make_ticket(u.operator, category=STREETLIGHT, area="370705001", now=MON)
    ops.dispatch(db, u.dispatcher, closed, lead=unit(db, DONGGUAN), now=MON)
    ops.sign(db, u.dongguan, closed, now=MON)
    ops.contact(db, u.dongguan, closed, note="已联系", now=MON)
    ops.finish(db, u.dongguan, closed, result="已修复", now=MON)
    ops.record_callback(
        db,
        u.callback,
        closed,
        outcome=CallbackOutcome.answered,
        solved=Solved.solved,
        satisfaction=Satisfaction.satisfied,
        now=MON,
    )
    assert closed.status == TicketStatus.closed  # solved and satisfied: archived at once
    with pytest.raises(Conflict) as caught:
        meetings.add_item(db, u.supervisor, m, closed, reason="再议", tz=ZONE)
    assert caught.value.code == "TICKET_NOT_DECIDABLE"


def test_a_ticket_the_decision_cannot_apply_to_is_refused_from_the_agenda(
    db, u, make_ticket, meeting
):
    """Finished (already 已办结, waiting for its callback): a meeting could not designate it,
    so it does not go on the agenda, with the reason in the message."""
    m = meeting()
    ticket = make_ticket(u.operator, category=STREETLIGHT, area="370705001", now=MON)
    ops.dispatch(db, u.dispatcher, ticket, lead=unit(db, DONGGUAN), now=MON)
    ops.sign(db, u.dongguan, ticket, now=MON)
    ops.contact(db, u.dongguan, ticket, note="已联系", now=MON)
    ops.finish(db, u.dongguan, ticket, result="已修复", now=MON)
    with pytest.raises(Conflict) as caught:
        meetings.add_item(db, u.supervisor, m, ticket, reason="领导批示再议", tz=ZONE)
    assert caught.value.code == "TICKET_NOT_DECIDABLE"
    assert caught.value.message == (
        f"工单 {ticket.number} 当前状态为“已办结”，会议决定无法对其指定承办单位，不能列入会议议程"
    )
    assert caught.value.details == {"status": "finished"}
    assert db.scalar(sa.select(sa.func.count()).select_from(MeetingItem)) == 0


def test_bad_meeting_input_is_refused(db, u):
    with pytest.raises(ValidationFailed):
        meetings.create_meeting(db, u.supervisor, title=" ", scheduled_at=local(11, 18))
    with pytest.raises(ValidationFailed):
        meetings.create_meeting(db, u.supervisor, title="会议", scheduled_at=None)
    with pytest.raises(ValidationFailed):
        meetings.create_meeting(db, u.supervisor, title="会\x00议", scheduled_at=local(11, 18, 14))
    with pytest.raises(ValidationFailed):
        meetings.create_meeting(db, u.supervisor, title="会" * 201, scheduled_at=local(11, 18, 14))


def test_the_same_meeting_is_not_called_twice(db, u, meeting):
    """A retried or resubmitted call (same name, same time) is refused with the first
    meeting's id; the same name at another time is another meeting."""
    first = meeting()
    with pytest.raises(Conflict) as caught:
        meeting()
    assert caught.value.code == "MEETING_EXISTS"
    assert caught.value.details == {"meeting_id": first.id}
    count = sa.select(sa.func.count()).select_from(sa.select(JointMeeting.id).subquery())
    assert db.scalar(count) == 1
    other = meetings.create_meeting(
        db, u.supervisor, title=first.title, scheduled_at=local(11, 25, 14), now=MON
    )
    assert other.id != first.id


def test_the_workbook_holds_agenda_minutes_and_decisions(db, u, disputed, meeting):
    ticket = disputed()
    m = held(db, u, meeting, ticket)
    due = local(11, 20, 17)
    meetings.decide_item(
        db, u.supervisor, m.items[0], unit=unit(db, DONGGUAN), due=due, notes="=属地管理", now=THU
    )
    db.flush()
    book = openpyxl.load_workbook(io.BytesIO(meeting_exports.write_xlsx(m, tz=ZONE)))
    assert book.sheetnames == ["议程", "会议纪要"]
    agenda = book["议程"]
    assert agenda["A1"].value == "11月第三周疑难工单联席会议 · 议程"
    assert "地点：市民热线中心三楼会议室" in agenda["A2"].value
    assert [c.value for c in agenda[3]] == list(meeting_exports.AGENDA_HEADERS)
    row = [c.value for c in agenda[4]]
    assert row[:5] == [1, ticket.number, ticket.title, "已派单", "东关街道办事处"]
    assert row[5].startswith("多次退单：退单申请 2 次") and "单位间争议：" in row[5]
    minutes = book["会议纪要"]
    assert minutes["A5"].value == "会议纪要"
    assert minutes["B5"].value == "会议议定：路灯由东关街道负责维修。"
    header = next(r for r in range(1, 20) if minutes.cell(r, 1).value == "序号")
    decision = [c.value for c in minutes[header + 1]]
    assert decision[:6] == [
        1,
        ticket.number,
        ticket.title,
        "东关街道办事处",
        "2026-11-20 17:00",
        "=属地管理",
    ]
    # Text that looks like a formula stays text.
    assert minutes.cell(header + 1, 6).data_type == "s"
    assert agenda.print_title_rows == "$1:$3"
