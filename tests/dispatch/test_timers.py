"""SLA timers (dispatch/timers.py) with an injected clock: every timer type, working days,
National Day 2026, weekends, 24×7 units, extension, reopen, catch-up and idempotency.

All moments are worked out by hand in Asia/Shanghai wall-clock time and written here; the
policy of a normal streetlight complaint is 一般诉求: sign 2 h, contact 24 h, finish 5 working
days, callback 1 working day; a water cut (供水) at a 24×7 utility: sign 30 min, contact 2 h,
finish 24 h.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from dispatch import calendar, timers
from dispatch import operations as ops
from hotline.enums import CallbackOutcome, Satisfaction, Solved, TicketStatus
from hotline.models import (
    CalendarDay,
    CalendarYear,
    Notification,
    TicketEvent,
    TimerFiring,
    Unit,
    User,
)

TZ = ZoneInfo("Asia/Shanghai")
SETTINGS = timers.Settings()
DONGGUAN = "U-S-370705001"
STREETLIGHT = "010103"
WATER_CUT = "010201"


def local(month, day, hour=9, minute=0, year=2026):
    return dt.datetime(year, month, day, hour, minute, tzinfo=TZ).astimezone(dt.UTC)


def show(moment):
    return moment.astimezone(TZ).strftime("%Y-%m-%d %H:%M")


@pytest.fixture
def u(db):
    names = ["operator", "dispatcher", "dongguan", "water", "callback", "supervisor"]
    users = {n: db.scalars(sa.select(User).where(User.username == n)).one() for n in names}
    return users


def unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


@pytest.fixture
def dispatched(db, u, make_ticket):
    def make(at, lead=DONGGUAN, category=STREETLIGHT):
        ticket = make_ticket(u["operator"], category=category, now=at)
        ops.dispatch(db, u["dispatcher"], ticket, lead=unit(db, lead), now=at)
        db.flush()
        return ticket

    return make


def tick(db, now):
    result = timers.tick(db, now, SETTINGS)
    db.flush()
    db.expire_all()
    return result


def fired(db, ticket):
    """(kind, due local, level) of the ticket's firings, in due order."""
    rows = db.scalars(
        sa.select(TimerFiring)
        .where(TimerFiring.ticket_id == ticket.id)
        .order_by(TimerFiring.due_at, TimerFiring.id)
    )
    return [(f.kind.value, show(f.due_at), f.level) for f in rows]


def inbox(db, ticket):
    rows = db.execute(
        sa.select(Unit.code, Notification.kind, Notification.level)
        .join(Unit, Unit.id == Notification.unit_id)
        .where(Notification.ticket_id == ticket.id)
        .order_by(Notification.id)
    ).all()
    return [(code, kind, level.value) for code, kind, level in rows]


def test_every_timer_of_an_ordinary_clock(db, u, dispatched):
    # Monday 2026-11-16 09:00; no holiday before New Year.
    ticket = dispatched(local(11, 16, 9))
    assert show(ticket.finish_due) == "2026-11-23 09:00"
    # sign 80 % of 2 h = 10:36
    assert show(ticket.next_due_at) == "2026-11-16 10:36"

    assert tick(db, local(11, 16, 10, 35)).fired == 0
    assert tick(db, local(11, 16, 10, 36)).fired == 1
    assert fired(db, ticket) == [("sign_warning", "2026-11-16 10:36", None)]
    assert show(ticket.next_due_at) == "2026-11-16 11:00"

    # Signed late, never contacted.
    tick(db, local(11, 16, 11, 30))
    ops.sign(db, u["dongguan"], ticket, now=local(11, 16, 12))
    db.flush()
    # contact 80 % of 24 h = Tue 04:12 (hour limits run on clock time).
    assert show(ticket.next_due_at) == "2026-11-17 04:12"
    tick(db, local(11, 17, 9))
    # finish warning: 80 % of the working time Mon 09:00 → next Mon 09:00 (120 h) = 96 h,
    # i.e. Mon 15 h + Tue, Wed, Thu 72 h + 9 h of Friday = Fri 09:00.
    tick(db, local(11, 20, 9))
    tick(db, local(11, 23, 9))  # deadline: overdue + a callback task (unfinished)
    tick(db, local(11, 24, 9))  # 催办 the next working day at 09:00
    tick(db, local(11, 30, 9))  # 督办 1: 5 working days after the deadline
    tick(db, local(12, 7, 9))  # 督办 2: 10 working days
    tick(db, local(12, 14, 9))  # 督办 3: 15 working days
    assert fired(db, ticket) == [
        ("sign_warning", "2026-11-16 10:36", None),
        ("sign_overdue", "2026-11-16 11:00", None),
        ("contact_warning", "2026-11-17 04:12", None),
        ("contact_overdue", "2026-11-17 09:00", None),
        ("finish_warning", "2026-11-20 09:00", None),
        ("finish_overdue", "2026-11-23 09:00", None),
        ("callback_task", "2026-11-23 09:00", None),
        ("reminder", "2026-11-24 09:00", None),
        ("escalation", "2026-11-30 09:00", 1),
        ("escalation", "2026-12-07 09:00", 2),
        ("escalation", "2026-12-14 09:00", 3),
    ]
    assert ticket.escalation_level == 3
    assert ticket.next_due_at is None  # nothing left until something changes

    hotline, government, mayor = "U-HOTLINE", "U-D-370705", "U-SZFB"
    assert inbox(db, ticket) == [
        (DONGGUAN, "sign_warning", "yellow"),
        (DONGGUAN, "sign_overdue", "red"),
        (DONGGUAN, "contact_warning", "yellow"),
        (DONGGUAN, "contact_overdue", "red"),
        (DONGGUAN, "finish_warning", "yellow"),
        (DONGGUAN, "finish_overdue", "red"),
        (hotline, "callback_task", "info"),
        (DONGGUAN, "reminder", "red"),
        (DONGGUAN, "escalation", "red"),
        (hotline, "escalation", "red"),
        (DONGGUAN, "escalation", "red"),
        (government, "escalation", "red"),
        (DONGGUAN, "escalation", "red"),
        (mayor, "escalation", "red"),
    ]

    # Each firing is an event on the ticket, by nobody, without a status change.
    events = db.scalars(
        sa.select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.actor_id.is_(None))
        .order_by(TicketEvent.id)
    ).all()
    assert [e.action for e in events] == [kind for kind, _, _ in fired(db, ticket)]
    assert all(e.from_status == e.to_status for e in events)
    assert [e.to_status for e in events[:3]] == ["dispatched", "dispatched", "signed"]
    assert events[1].payload["lateness_seconds"] == 30 * 60  # overdue 11:00, ticked 11:30
    assert events[-1].payload["level"] == 3

    # Finishing starts the callback clock: a task at once, overdue 1 working day later.
    ops.contact(db, u["dongguan"], ticket, note="已电话联系", now=local(12, 15, 9))
    ops.finish(db, u["dongguan"], ticket, result="路灯已修复", now=local(12, 15, 10))
    db.flush()
    assert show(ticket.next_due_at) == "2026-12-15 10:00"
    assert show(ticket.callback_next_at) == "2026-12-15 10:00"  # the workbench may call now
    tick(db, local(12, 15, 10, 0))
    tick(db, local(12, 16, 10, 5))
    assert fired(db, ticket)[-2:] == [
        ("callback_task", "2026-12-15 10:00", None),
        ("callback_overdue", "2026-12-16 10:00", None),
    ]
    ops.record_callback(
        db,
        u["callback"],
        ticket,
        outcome=CallbackOutcome.answered,
        solved=Solved.solved,
        satisfaction=Satisfaction.satisfied,
        now=local(12, 16, 11),
    )
    db.flush()
    # A solved and satisfied answer archives the ticket: no timer, no call left.
    assert ticket.status == TicketStatus.closed
    assert ticket.next_due_at is None
    assert ticket.callback_next_at is None


def test_timers_that_no_longer_apply_do_not_fire(db, u, dispatched):
    ticket = dispatched(local(11, 16, 9))
    ops.sign(db, u["dongguan"], ticket, now=local(11, 16, 9, 30))
    ops.contact(db, u["dongguan"], ticket, note="已联系", now=local(11, 16, 10))
    db.flush()
    tick(db, local(11, 19, 9))
    assert fired(db, ticket) == []  # signed and contacted in time; finish warning is Friday
    ops.finish(db, u["dongguan"], ticket, result="已修复", now=local(11, 19, 10))
    db.flush()
    tick(db, local(11, 30, 9))
    # No finish warning, overdue, reminder or 督办: only the callback clock.
    assert [k for k, _, _ in fired(db, ticket)] == ["callback_task", "callback_overdue"]
    assert ticket.escalation_level == 0


def test_national_day_2026(db, u, dispatched):
    # Wednesday 2026-09-30 10:00. chinese-calendar's official arrangement: 10-01..10-07 off,
    # Saturday 10-10 a swapped workday. Five working days: 10-08, 10-09, 10-10, 10-12, 10-13.
    ticket = dispatched(local(9, 30, 10))
    assert show(ticket.sign_due) == "2026-09-30 12:00"
    assert show(ticket.finish_due) == "2026-10-13 10:00"
    assert ticket.calendar_guessed_years is None
    ops.sign(db, u["dongguan"], ticket, now=local(9, 30, 10, 10))
    ops.contact(db, u["dongguan"], ticket, note="已联系", now=local(9, 30, 11))
    db.flush()
    # Working time 14 h (09-30) + 4 × 24 h + 10 h = 120 h; 80 % = 96 h → 10-12 10:00,
    # not during the holiday.
    assert show(ticket.next_due_at) == "2026-10-12 10:00"
    tick(db, local(10, 25, 12))  # a scheduler down for the whole period catches up
    assert fired(db, ticket) == [
        ("finish_warning", "2026-10-12 10:00", None),
        ("finish_overdue", "2026-10-13 10:00", None),
        ("callback_task", "2026-10-13 10:00", None),
        ("reminder", "2026-10-14 09:00", None),
        # 10-14, 15, 16, 19, 20
        ("escalation", "2026-10-20 10:00", 1),
    ]


def test_reminder_skips_the_holiday_and_a_weekend(db, u, dispatched):
    # Friday 2026-09-18 10:00 + 5 working days: 09-20 (Sunday, swapped workday), 21, 22, 23,
    # 24 → Thursday 09-24 10:00. Then Mid-autumn 25–27: the 催办 is Monday 09-28 09:00.
    ticket = dispatched(local(9, 18, 10))
    assert show(ticket.finish_due) == "2026-09-24 10:00"
    tick(db, local(9, 28, 8, 59))
    assert "reminder" not in [k for k, _, _ in fired(db, ticket)]
    tick(db, local(9, 28, 9))
    assert ("reminder", "2026-09-28 09:00", None) in fired(db, ticket)


def test_a_utility_works_around_the_clock(db, u, dispatched):
    # Saturday 2026-11-21 20:00, water cut at the water company (24×7): sign 30 min, contact
    # 2 h, finish 24 h → Sunday 20:00; 催办 Monday 09:00 would be office thinking: a 24×7
    # unit is chased the next calendar day, Monday 11-23 09:00; 督办 1 five calendar days on.
    ticket = dispatched(local(11, 21, 20), lead="U-WATER", category=WATER_CUT)
    assert show(ticket.finish_due) == "2026-11-22 20:00"
    ops.sign(db, u["water"], ticket, now=local(11, 21, 20, 5))
    ops.contact(db, u["water"], ticket, note="已联系", now=local(11, 21, 20, 30))
    db.flush()
    tick(db, local(11, 28, 0))
    assert fired(db, ticket) == [
        ("finish_warning", "2026-11-22 15:12", None),  # 80 % of 24 h on the clock
        ("finish_overdue", "2026-11-22 20:00", None),
        ("callback_task", "2026-11-22 20:00", None),
        ("reminder", "2026-11-23 09:00", None),
        ("escalation", "2026-11-27 20:00", 1),
    ]


def test_an_approved_extension_moves_the_finish_timers(db, u, dispatched):
    ticket = dispatched(local(11, 16, 9))
    ops.sign(db, u["dongguan"], ticket, now=local(11, 16, 9, 30))
    ops.contact(db, u["dongguan"], ticket, note="已联系", now=local(11, 16, 10))
    db.flush()
    tick(db, local(11, 23, 9))  # warning Friday, overdue Monday 11-23 09:00
    assert [k for k, _, _ in fired(db, ticket)] == [
        "finish_warning",
        "finish_overdue",
        "callback_task",
    ]
    ops.request_extension(db, u["dongguan"], ticket, days=3, reason="需协调", now=local(11, 23, 10))
    ops.decide_extension(
        db, u["dispatcher"], ticket, approve=True, note="同意", now=local(11, 23, 11)
    )
    db.flush()
    # 11-23 09:00 + 3 working days = Thursday 11-26 09:00; the old reminder (11-24) is gone.
    assert show(ticket.finish_due) == "2026-11-26 09:00"
    tick(db, local(11, 27, 9))
    assert fired(db, ticket)[3:] == [
        # 80 % of the working time 11-16 09:00 → 11-26 09:00 (192 h) = 153.6 h → 11-24 18:36
        # is before the extension was decided, so it fires on the next tick, late.
        ("finish_warning", "2026-11-24 18:36", None),
        ("finish_overdue", "2026-11-26 09:00", None),
        ("callback_task", "2026-11-26 09:00", None),
        ("reminder", "2026-11-27 09:00", None),
    ]


def test_a_reopen_starts_a_new_clock(db, u, dispatched):
    ticket = dispatched(local(11, 16, 9))
    ops.sign(db, u["dongguan"], ticket, now=local(11, 16, 9, 30))
    ops.contact(db, u["dongguan"], ticket, note="已联系", now=local(11, 16, 10))
    db.flush()
    tick(db, local(12, 1, 9))
    assert ticket.escalation_level == 1
    ops.finish(db, u["dongguan"], ticket, result="已处理", now=local(12, 1, 10))
    ops.record_callback(
        db,
        u["callback"],
        ticket,
        outcome=CallbackOutcome.answered,
        solved=Solved.unsolved,
        satisfaction=Satisfaction.dissatisfied,
        now=local(12, 1, 11),
    )
    ops.reopen(db, u["supervisor"], ticket, reason="诉求人反映仍未修好", now=local(12, 1, 14))
    db.flush()
    assert ticket.status == TicketStatus.reopened
    assert ticket.escalation_level == 0
    assert show(ticket.finish_due) == "2026-12-08 14:00"
    assert show(ticket.next_due_at) == "2026-12-01 15:36"  # the new sign clock's warning
    before = len(fired(db, ticket))
    tick(db, local(12, 1, 16))
    assert fired(db, ticket)[before:] == [
        ("sign_warning", "2026-12-01 15:36", None),
        ("sign_overdue", "2026-12-01 16:00", None),
    ]


def test_catch_up_after_a_three_day_outage(db, u, dispatched):
    tickets = [dispatched(local(11, 16, 9, minute)) for minute in range(5)]
    # No scheduler from Monday 09:00 to Thursday 09:00: every missed timer fires at once,
    # in batches, each with its lateness.
    now = local(11, 19, 9)
    while timers.tick(db, now, SETTINGS, batch=2).tickets == 2:
        pass
    db.flush()
    db.expire_all()
    for ticket in tickets:
        assert [k for k, _, _ in fired(db, ticket)] == [
            "sign_warning",
            "sign_overdue",
            "contact_warning",
            "contact_overdue",
        ]
    late = db.scalars(
        sa.select(TimerFiring)
        .where(TimerFiring.ticket_id == tickets[0].id)
        .order_by(TimerFiring.due_at)
    ).all()
    assert [f.lateness_seconds for f in late] == [
        int((now - local(11, 16, 10, 36)).total_seconds()),
        int((now - local(11, 16, 11)).total_seconds()),
        int((now - local(11, 17, 4, 12)).total_seconds()),
        int((now - local(11, 17, 9)).total_seconds()),
    ]
    assert all(show(t.next_due_at) == f"2026-11-20 09:0{i}" for i, t in enumerate(tickets))


def test_a_timer_fires_once(db, u, dispatched):
    ticket = dispatched(local(11, 16, 9))
    tick(db, local(11, 16, 12))
    assert len(fired(db, ticket)) == 2
    notes = len(inbox(db, ticket))
    # As if another scheduler had lost its bookkeeping: rewind the check mark.
    ticket.timers_checked_until = local(11, 16, 9)
    ticket.next_due_at = local(11, 16, 10, 36)
    db.flush()
    assert tick(db, local(11, 16, 12)).fired == 0
    assert tick(db, local(11, 16, 12)).tickets == 0
    assert len(fired(db, ticket)) == 2
    assert len(inbox(db, ticket)) == notes
    events = db.scalar(
        sa.select(sa.func.count()).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.actor_id.is_(None)
        )
    )
    assert events == 2


def test_a_scheduler_clock_ahead_does_not_swallow_the_callback_task(db, u, dispatched):
    ticket = dispatched(local(11, 16, 9))
    ops.sign(db, u["dongguan"], ticket, now=local(11, 16, 9, 30))
    ops.contact(db, u["dongguan"], ticket, note="已联系", now=local(11, 16, 10))
    db.flush()
    tick(
        db,
        local(
            11,
            18,
            10,
            0,
        ),
    )
    # The web server's clock is a second behind the scheduler's.
    ops.finish(db, u["dongguan"], ticket, result="已修复", now=local(11, 18, 9, 59))
    db.flush()
    tick(db, local(11, 18, 10, 1))
    assert fired(db, ticket) == [("callback_task", "2026-11-18 09:59", None)]


def test_a_ticket_does_not_bump_its_version_when_timers_fire(db, u, dispatched):
    ticket = dispatched(local(11, 16, 9))
    version = ticket.version
    tick(db, local(11, 16, 12))
    assert ticket.version == version
    # The handler's change made with the version read before the tick still succeeds.
    ops.sign(db, u["dongguan"], ticket, expected_version=version, now=local(11, 16, 12, 5))
    db.flush()


def test_an_unpublished_year_is_guessed_and_flagged(db, u, client, api, dispatched):
    # Monday 2026-12-28 10:00 + 5 working days runs into 2027, which chinese-calendar does not
    # know: 12-29, 12-30, 12-31, then 2027-01-01 (a Friday, guessed a workday) and 01-04.
    ticket = dispatched(local(12, 28, 10))
    assert show(ticket.finish_due) == "2027-01-04 10:00"
    assert ticket.calendar_guessed_years == "2027"
    detail = api("dispatcher").get(f"/tickets/{ticket.number}").get_json()["data"]
    assert len(detail["deadline_warnings"]) == 1
    assert "2027" in detail["deadline_warnings"][0]

    # Once an administrator enters 2027 (New Year's Day off) the next clock is exact.
    db.add(CalendarDay(day=dt.date(2027, 1, 1), workday=False, name="元旦"))
    db.add(CalendarYear(year=2027, note="测试"))
    db.flush()
    calendar.invalidate()
    second = dispatched(local(12, 28, 10))
    assert show(second.finish_due) == "2027-01-05 10:00"
    assert second.calendar_guessed_years is None


def test_supervisors_list_overdue_and_escalated_tickets(db, u, api, dispatched):
    late = dispatched(local(11, 2, 9))  # finish due 11-09 09:00: overdue now
    tick(db, local(11, 17, 9))  # 督办 1 at 11-16 09:00
    on_time = dispatched(dt.datetime.now(dt.UTC))
    supervisor = api("supervisor")
    overdue = supervisor.get("/tickets?overdue=1&per_page=200").get_json()["data"]["items"]
    numbers = {t["number"] for t in overdue}
    assert late.number in numbers and on_time.number not in numbers
    escalated = supervisor.get("/tickets?escalation_level=1&per_page=200").get_json()["data"]
    assert [t["number"] for t in escalated["items"]] == [late.number]
    assert escalated["items"][0]["escalation_level"] == 1
    detail = supervisor.get(f"/tickets/{late.number}").get_json()["data"]
    assert [t["kind"]["value"] for t in detail["timers"]][-1] == "escalation"
    assert detail["timers"][-1]["lateness_seconds"] == 24 * 3600
    for bad in ("overdue=yes", "escalation_level=4"):
        response = supervisor.get(f"/tickets?{bad}")
        assert response.status_code == 422
