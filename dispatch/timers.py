"""SLA timers (DOMAIN.md §4): when each clock warns, runs out, is chased and escalated.

Every ticket in handling has one clock, started at dispatch and restarted by a redispatch,
designation or reopen (``operations._start_clock``). Its timers:

============================  ================================  ==============================
timer                         due                               while
============================  ================================  ==============================
sign / contact / finish       80 % of the clock's time used     the lead unit has not signed /
warning (预警, yellow)        (working time for working-day     contacted the requester /
                              limits, clock time otherwise)     finished
… overdue (超时, red)         the deadline                      same
reminder (催办)               9:00 on the next working day      not finished
                              after the finish deadline
escalation (督办) level k     k × N working days after the      not finished
                              finish deadline (k = 1, 2, 3)
callback task (回访任务)      the finish deadline; or the       unfinished; finished
                              moment the ticket is finished
callback overdue (回访超时)   ``callback_due``                   finished, not called back
review overdue (审核超时)     ``review.limit_days`` working     the reply waits in 待审核
                              days after ``finished_at``        (to the hotline centre)
============================  ================================  ==============================

No state pauses a clock: a pending return or termination request leaves the unit answerable
for its deadlines, an approved extension moves the finish deadline (and the timers after it),
finishing stops the handling timers and starts the callback ones, and final states have none.
A reply waiting for review (待审核, ``dispatch.reply_review``) has only the hotline's own
timer, 审核超时 to the hotline centre: the unit's clocks stopped at its ``finished_at``, and
the callback ones start at approval (the 回访任务 is due at ``finished_at``, so it fires at
the first tick after approval, its lateness counting the review's wait). A reply sent back
(审核退回) is in handling again, and **the timers due while the hotline held the reply never
fire** (``skip_until`` at the return moment): the wait was the reviewer's, not the unit's, so
a long review must not bring every warning, the 催办 and each 督办 level at once. The unit
learns its deadline state from the return's inbox message instead; ``escalation_level``
stays as it was, and the timers due after the return fire as usual.
Units working 24×7 count working days as calendar days.

The design is one stored moment per ticket, not one scheduled job per timer:
``tickets.next_due_at`` is the earliest timer of its clock after ``timers_checked_until``,
and a single scheduler job (``tick``) takes the tickets whose moment has come, oldest first,
``FOR UPDATE SKIP LOCKED`` on PostgreSQL so that several scheduler processes share the work
without taking the same ticket. For each it fires every timer due since the last check (so a
scheduler that was down catches up, with each firing's lateness recorded), then stores the
next moment. ``timer_firings`` has one row per timer with a unique key, so a timer fires once
even if two ticks ever see it.

A firing is an event on the ticket (no actor), an item in the inbox of each unit concerned
(``hotline.notify``) and a real-time message for the boards. The scheduler writes tickets
with plain UPDATEs that leave the version counter alone, so it never makes a user's
change fail.
"""

import dataclasses
import datetime as dt
import logging
import threading
import time
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dispatch import calendar
from dispatch.states import IN_HANDLING
from hotline import events, notify
from hotline import settings as stored_settings
from hotline.config import DEFAULTS
from hotline.db import bulk_insert
from hotline.enums import (
    AlertLevel,
    EscalationLevel,
    LimitUnit,
    TicketStatus,
    TimerKind,
    UnitKind,
)
from hotline.models import Area, SlaPolicy, Ticket, TicketEvent, TimerFiring, Unit, unit_areas

log = logging.getLogger(__name__)

K = TimerKind
MICROSECOND = dt.timedelta(microseconds=1)
#: Highest 督办 level: 1 hotline centre, 2 district or department leader, 3 mayor's office.
TOP_LEVEL = max(EscalationLevel)
#: States whose tickets have timers.
WATCHED = frozenset(IN_HANDLING | {TicketStatus.finished, TicketStatus.reviewing})

_CLOCK_KINDS = {
    "sign": (K.sign_warning, K.sign_overdue, "签收"),
    "contact": (K.contact_warning, K.contact_overdue, "响应"),
    "finish": (K.finish_warning, K.finish_overdue, "办结"),
}
_LEVELS = {
    K.sign_warning: AlertLevel.yellow,
    K.contact_warning: AlertLevel.yellow,
    K.finish_warning: AlertLevel.yellow,
    K.sign_overdue: AlertLevel.red,
    K.contact_overdue: AlertLevel.red,
    K.finish_overdue: AlertLevel.red,
    K.reminder: AlertLevel.red,
    K.escalation: AlertLevel.red,
    K.callback_task: AlertLevel.info,
    K.callback_overdue: AlertLevel.red,
    K.review_overdue: AlertLevel.yellow,
}


@dataclasses.dataclass(frozen=True)
class Settings:
    timezone: str = DEFAULTS["TIMEZONE"]
    warning_percent: int = 80
    reminder_hour: int = 9
    escalate_every: int = 5
    mayors_office_unit: str = "U-SZFB"
    #: 审核时限: working days a reply may wait in 待审核 (the setting ``review.limit_days``,
    #: read by ``with_stored`` at each tick and schedule).
    review_days: int = 1

    @classmethod
    def from_config(cls, config):
        return cls(
            timezone=config["TIMEZONE"],
            warning_percent=config["SLA_WARNING_PERCENT"],
            reminder_hour=config["REMINDER_HOUR"],
            escalate_every=config["ESCALATE_EVERY_WORKING_DAYS"],
            mayors_office_unit=config["MAYORS_OFFICE_UNIT"],
        )

    def with_stored(self, session):
        """These settings with the ones an administrator sets (``hotline.settings``)."""
        days = stored_settings.get(session, "review.limit_days")
        return self if days == self.review_days else dataclasses.replace(self, review_days=days)


@dataclasses.dataclass(frozen=True)
class Timer:
    kind: TimerKind
    due: dt.datetime
    level: int | None = None
    #: The deadline the timer is about (for messages).
    deadline: dt.datetime | None = None


# -- planning: which timers a ticket's clock has ------------------------------------------------


def plan(ticket, policy, always_on, work_calendar, settings, now=None):
    """Every timer of the ticket's current clock that still applies, in no particular order.

    ``ticket`` is a Ticket or a row with the same attribute names. Given ``now``, timers that
    can neither be due by then nor be the next one are left out (they cost calendar work).
    """
    timers = []
    if ticket.status in IN_HANDLING and ticket.clock_started_at is not None:
        start = ticket.clock_started_at
        done = {
            "sign": ticket.signed_at,
            "contact": ticket.contacted_at,
            "finish": ticket.finished_at,
        }
        for clock, (warning, overdue, _) in _CLOCK_KINDS.items():
            due = getattr(ticket, f"{clock}_due")
            if due is None or done[clock] is not None:
                continue
            on_working_days = (
                policy is not None
                and getattr(policy, f"{clock}_unit") == LimitUnit.working_days
                and not always_on
            )
            fraction = settings.warning_percent / 100
            if on_working_days:
                warn_at = work_calendar.working_point(start, due, fraction)
            else:
                warn_at = start + (due - start) * fraction
            timers.append(Timer(warning, warn_at, deadline=due))
            timers.append(Timer(overdue, due, deadline=due))
        due = ticket.finish_due
        if due is not None and ticket.finished_at is None:
            timers.append(Timer(K.callback_task, due, deadline=due))
            if now is not None and due > now:
                # The 催办 and 督办 come after the deadline, which has not passed: none of them
                # can be due or come next (the overdue timer at the deadline comes first).
                return timers
            if always_on:
                local = due.astimezone(work_calendar.tz)
                reminder = dt.datetime.combine(
                    local.date() + calendar.DAY, dt.time(settings.reminder_hour), local.tzinfo
                ).astimezone(dt.UTC)
            else:
                reminder = work_calendar.next_working_day_at(due, settings.reminder_hour)
            timers.append(Timer(K.reminder, reminder, deadline=due))
            for level in range(1, TOP_LEVEL + 1):
                days = level * settings.escalate_every
                if always_on:
                    at = due + dt.timedelta(days=days)
                else:
                    at, _ = work_calendar.add_working_days(due, days)
                timers.append(Timer(K.escalation, at, level=level, deadline=due))
    elif ticket.status == TicketStatus.reviewing:
        if ticket.finished_at is not None:
            due = review_due(work_calendar, ticket.finished_at, settings.review_days)
            timers.append(Timer(K.review_overdue, due, deadline=due))
    elif ticket.status == TicketStatus.finished:
        if ticket.finished_at is not None:
            timers.append(Timer(K.callback_task, ticket.finished_at))
        if ticket.callback_due is not None:
            timers.append(
                Timer(K.callback_overdue, ticket.callback_due, deadline=ticket.callback_due)
            )
    return timers


def review_due(work_calendar, finished_at, days):
    """When a reply finished at ``finished_at`` has waited its 审核时限 (``days`` working days
    of the city's calendar: the hotline centre works them, whatever the unit does)."""
    due, _ = work_calendar.add_working_days(finished_at, days)
    return due


def next_due(timers, after):
    """The earliest timer moment later than ``after`` (None: nothing left)."""
    moments = [t.due for t in timers if t.due > after]
    return min(moments) if moments else None


def skip_until(ticket, moment):
    """The timers of ``ticket`` due before ``moment`` never fire: the check mark moves up to
    just before it (never back). ``operations.return_reply`` calls it at the return, before
    ``schedule``: the timers due while the hotline held the reply were not the unit's."""
    mark = moment - MICROSECOND
    if ticket.timers_checked_until is None or ticket.timers_checked_until < mark:
        ticket.timers_checked_until = mark


def schedule(session, ticket, now, settings):
    """Store the ticket's next due moment after an operation changed it.

    The check mark moves back to just before ``now`` if it is not already earlier, so a
    timer the operation makes due at once (a callback task at finishing) fires on the next
    tick even if a scheduler on a clock slightly ahead has already checked past ``now``.
    Timers between the two moments that already fired are kept from firing again by the
    firing table's unique key.
    """
    if ticket.status not in WATCHED and ticket.next_due_at is None:
        return  # received, or final and already cleared: nothing to watch, nothing to write
    if ticket.timers_checked_until is None or ticket.timers_checked_until >= now:
        ticket.timers_checked_until = now - MICROSECOND
    settings = settings.with_stored(session)
    policy = session.get(SlaPolicy, ticket.sla_policy_id) if ticket.sla_policy_id else None
    always_on = ticket.lead_unit is not None and ticket.lead_unit.always_on
    timers = plan(
        ticket, policy, always_on, calendar.load(session, settings.timezone), settings, now
    )
    ticket.next_due_at = next_due(timers, ticket.timers_checked_until)


# -- firing -------------------------------------------------------------------------------------

_DUE_COLUMNS = (
    Ticket.id,
    Ticket.number,
    Ticket.status,
    Ticket.channel,
    Ticket.request_type,
    Ticket.area_id,
    Ticket.lead_unit_id,
    Ticket.sla_policy_id,
    Ticket.clock_started_at,
    Ticket.sign_due,
    Ticket.contact_due,
    Ticket.finish_due,
    Ticket.callback_due,
    Ticket.signed_at,
    Ticket.contacted_at,
    Ticket.finished_at,
    Ticket.timers_checked_until,
    Ticket.escalation_level,
)


@dataclasses.dataclass
class TickResult:
    tickets: int = 0
    fired: int = 0
    #: Largest lateness of this tick's firings, in seconds.
    max_lateness: float = 0.0


class _Reference:
    """Units, policies and area codes the engine needs, reloaded at most once a minute."""

    TTL = 60

    def __init__(self):
        self._lock = threading.Lock()
        self._loaded_at = None

    def get(self, session):
        if self._loaded_at is None or time.monotonic() - self._loaded_at > self.TTL:
            with self._lock:
                self._load(session)
                self._loaded_at = time.monotonic()
        return self

    def clear(self):
        self._loaded_at = None

    def _load(self, session):
        units = session.execute(sa.select(Unit.id, Unit.code, Unit.kind, Unit.always_on)).all()
        self.units = {u.id: u for u in units}
        self.unit_ids = {u.code: u.id for u in units}
        self.hotline_centre = next((u.id for u in units if u.kind == UnitKind.hotline_centre), None)
        # The district government over each street office (level-2 督办 of street matters).
        district_of_area = {
            row.code: row.unit_id
            for row in session.execute(
                sa.select(Area.code, unit_areas.c.unit_id)
                .join(unit_areas, unit_areas.c.area_id == Area.id)
                .join(Unit, Unit.id == unit_areas.c.unit_id)
                .where(Unit.kind == UnitKind.district_government)
            )
        }
        self.district_government = {}
        for row in session.execute(
            sa.select(unit_areas.c.unit_id, Area.code)
            .join(Area, unit_areas.c.area_id == Area.id)
            .join(Unit, Unit.id == unit_areas.c.unit_id)
            .where(Unit.kind == UnitKind.street_office)
        ):
            government = district_of_area.get(row.code[:6])
            if government is not None:
                self.district_government[row.unit_id] = government
        self.policies = {p.id: p for p in session.scalars(sa.select(SlaPolicy))}
        for policy in self.policies.values():
            session.expunge(policy)
        self.area_codes = dict(session.execute(sa.select(Area.id, Area.code)).all())


reference = _Reference()


def tick(session, now, settings, batch=1000):
    """Fire every timer due by ``now`` on up to ``batch`` tickets; the caller commits."""
    ref = reference.get(session)
    settings = settings.with_stored(session)
    work_calendar = calendar.load(session, settings.timezone)
    if session.get_bind().dialect.name == "postgresql":
        # A crash may lose the last moment's ticks, whole (timers, events, inbox together):
        # they fire again on restart. Not waiting for the WAL flush halves a tick's time.
        session.execute(sa.text("SET LOCAL synchronous_commit = off"))
    rows = session.execute(
        sa.select(*_DUE_COLUMNS)
        .where(Ticket.next_due_at <= now)
        .order_by(Ticket.next_due_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
    ).all()
    result = TickResult(tickets=len(rows))
    if not rows:
        return result
    firings, updates, due_by_ticket = [], [], {}
    for row in rows:
        lead = ref.units.get(row.lead_unit_id)
        timers = plan(
            row,
            ref.policies.get(row.sla_policy_id),
            lead is not None and lead.always_on,
            work_calendar,
            settings,
            now,
        )
        checked = row.timers_checked_until
        due = [t for t in timers if (checked is None or t.due > checked) and t.due <= now]
        level = max([row.escalation_level] + [t.level for t in due if t.level], default=0)
        due_by_ticket[row.id] = (row, due)
        for t in due:
            firings.append(
                {
                    "ticket_id": row.id,
                    "kind": t.kind,
                    "due_at": t.due,
                    "fired_at": now,
                    "lateness_seconds": int((now - t.due).total_seconds()),
                    "level": t.level,
                }
            )
        updates.append(
            {
                "b_id": row.id,
                "b_next": next_due(timers, now),
                "b_checked": now,
                "b_level": level,
            }
        )
    fired = _record_firings(session, firings)
    _update_tickets(session, updates, now)
    _announce(session, ref, due_by_ticket, fired, now, settings)
    result.fired = len(fired)
    if firings:
        result.max_lateness = max(f["lateness_seconds"] for f in firings)
    return result


def _record_firings(session, firings):
    """Insert the firings; returns the (ticket_id, kind, due_at) keys that were new."""
    rows = bulk_insert(
        session,
        TimerFiring.__table__,
        firings,
        returning=("ticket_id", "kind", "due_at"),
        skip_conflicts=True,
    )
    return {(ticket_id, TimerKind(kind), due_at) for ticket_id, kind, due_at in rows}


_UPDATE_TICKETS = (
    sa.update(Ticket.__table__)
    .where(Ticket.__table__.c.id == sa.bindparam("b_id"))
    .values(
        next_due_at=sa.bindparam("b_next"),
        timers_checked_until=sa.bindparam("b_checked"),
        escalation_level=sa.bindparam("b_level"),
    )
)
_UPDATE_TICKETS_PG = """
    UPDATE tickets AS t
    SET next_due_at = v.next_due_at, timers_checked_until = %b, escalation_level = v.level
    FROM unnest(%b::int[], %b::timestamptz[], %b::int[]) AS v(id, next_due_at, level)
    WHERE t.id = v.id
"""


def _update_tickets(session, updates, now):
    # Plain UPDATEs on the table: the ORM's version counter is deliberately not bumped.
    if session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql(
            _UPDATE_TICKETS_PG,
            (
                now,
                [u["b_id"] for u in updates],
                [u["b_next"] for u in updates],
                [u["b_level"] for u in updates],
            ),
        )
    else:
        session.execute(_UPDATE_TICKETS, updates)


def _announce(session, ref, due_by_ticket, fired, now, settings):
    """Ticket events, inbox items and board messages for the firings that were new."""
    event_rows, messages = [], []
    for row, due in due_by_ticket.values():
        for t in due:
            if (row.id, t.kind, t.due) not in fired:
                continue
            payload = {
                "timer": t.kind.value,
                "due_at": t.due.isoformat(),
                "lateness_seconds": int((now - t.due).total_seconds()),
            }
            if t.level:
                payload["level"] = t.level
            event_rows.append(
                {
                    "ticket_id": row.id,
                    "action": t.kind.value,
                    "actor_id": None,
                    "actor_role": None,
                    "unit_id": row.lead_unit_id,
                    "from_status": row.status.value,
                    "to_status": row.status.value,
                    "reason": None,
                    "payload": payload,
                    "created_at": now,
                }
            )
            messages.extend(_messages(ref, row, t, settings))
            lead = ref.units.get(row.lead_unit_id)
            events.queue(
                session,
                {
                    "type": f"sla.{t.kind.value}",
                    "ticket": row.number,
                    "status": row.status.value,
                    "channel": row.channel.value,
                    "request_type": row.request_type.value,
                    "area": ref.area_codes.get(row.area_id),
                    "unit": lead.code if lead else None,
                    "level": _LEVELS[t.kind].value,
                    "escalation_level": t.level,
                    "due_at": t.due.isoformat(),
                    "at": now.isoformat(),
                },
            )
    if event_rows:
        bulk_insert(session, TicketEvent.__table__, event_rows)
    notify.deliver(session, messages, now)


def _recipients(ref, row, timer, settings):
    """Units whose inbox gets the firing: the lead unit; for 督办 also the supervising level;
    callback timers go to the hotline centre's callback team, 审核超时 to its reviewers."""
    if timer.kind in (K.callback_task, K.callback_overdue, K.review_overdue):
        return [ref.hotline_centre]
    units = [row.lead_unit_id]
    if timer.kind == K.escalation:
        units.append(supervising_unit(ref, row.lead_unit_id, timer.level, settings))
    return distinct_units(units)


def supervising_unit(ref, unit_id, level, settings):
    """Who supervises ``unit_id`` at 督办 level ``level`` (the SLA's and 吹哨报到's alike):
    1 the hotline centre; 2 a street's district government, a department's or district's own
    leadership; 3 the mayor's office."""
    if level == 1:
        return ref.hotline_centre
    if level == 2:
        return ref.district_government.get(unit_id, unit_id)
    return ref.unit_ids.get(settings.mayors_office_unit, ref.hotline_centre)


def distinct_units(units):
    """``units`` without None and repeats, in order (one inbox item per unit)."""
    seen = []
    for unit in units:
        if unit is not None and unit not in seen:
            seen.append(unit)
    return seen


def _messages(ref, row, timer, settings):
    local = (timer.deadline or timer.due).astimezone(ZoneInfo(settings.timezone))
    deadline = local.strftime("%Y-%m-%d %H:%M")
    kind = timer.kind
    if kind in (K.sign_warning, K.contact_warning, K.finish_warning):
        clock = _clock_label(kind)
        title = f"【{kind.label}】工单 {row.number}"
        body = f"{clock}时限已用去 {settings.warning_percent}%，请在 {deadline} 前完成{clock}。"
    elif kind in (K.sign_overdue, K.contact_overdue, K.finish_overdue):
        clock = _clock_label(kind)
        title = f"【{kind.label}】工单 {row.number}"
        body = f"已超过{clock}时限（{deadline}），请立即办理。"
    elif kind == K.reminder:
        title = f"【催办】工单 {row.number}"
        body = f"办结时限 {deadline} 已过，热线中心催办，请尽快办结并反馈。"
    elif kind == K.escalation:
        days = timer.level * settings.escalate_every
        level = EscalationLevel(timer.level)
        title = f"【{level.label}】工单 {row.number}"
        body = f"超过办结时限（{deadline}）已满 {days} 个工作日，已提级至{level.label}。"
    elif kind == K.review_overdue:
        title = f"【审核超时】工单 {row.number}"
        body = (
            f"承办单位的办理结果待审核已超过 {settings.review_days} 个工作日（{deadline}），"
            "请尽快审核通过或退回。"
        )
    elif kind == K.callback_task and row.status == TicketStatus.finished:
        title = f"【回访任务】工单 {row.number}"
        body = "承办单位已办结，请在回访时限内回访诉求人。"
    elif kind == K.callback_task:
        title = f"【回访任务】工单 {row.number}"
        body = f"办结时限 {deadline} 已过仍未办结，请回访诉求人说明办理进度。"
    else:
        title = f"【回访超时】工单 {row.number}"
        body = f"回访时限 {deadline} 已过，请尽快回访。"
    return [
        notify.Message(
            unit_id=unit,
            unit_code=ref.units[unit].code,
            kind=kind.value,
            level=_LEVELS[kind].value,
            title=title,
            body=body,
            ticket_id=row.id,
            ticket_number=row.number,
        )
        for unit in _recipients(ref, row, timer, settings)
    ]


def _clock_label(kind):
    for warning, overdue, label in _CLOCK_KINDS.values():
        if kind in (warning, overdue):
            return label
    raise ValueError(kind)


# -- running ------------------------------------------------------------------------------------


def run_due(session_factory, settings, now=None, batch=1000, clock=None, *, step=None):
    """Tick in batches, one transaction each, until no due ticket is left.

    ``clock`` (default: the real time) gives each batch's ``now`` unless ``now`` is fixed;
    ``step`` is the tick (default: the tickets'; 吹哨报到 runs its own the same way).
    Returns the totals.
    """
    clock = clock or (lambda: dt.datetime.now(dt.UTC))
    step = step or tick
    total = TickResult()
    while True:
        with session_factory() as session:
            with session.begin():
                result = step(session, now or clock(), settings, batch=batch)
        total.tickets += result.tickets
        total.fired += result.fired
        total.max_lateness = max(total.max_lateness, result.max_lateness)
        if result.tickets < batch:
            return total
