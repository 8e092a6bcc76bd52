"""吹哨报到's clocks: when a summoned department is warned, found late and chased (督办).

A summons (``hotline.models.Summons``, blown by ``dispatch.whistle.whistle``) has two
deadlines fixed when it is blown, in clock hours (``whistle.report_hours``,
``whistle.opinion_hours``; a department comes when a street calls, nights and holidays
included, as the SLA's hour limits run):

==========================  ====================================  ===========================
timer                       due                                   while
==========================  ====================================  ===========================
报到预警 report_warning      ``SLA_WARNING_PERCENT`` of the time    not reported
                            from the summons to ``report_due``
报到超时 report_overdue      ``report_due``                         not reported
反馈预警 opinion_warning     the same share up to ``opinion_due``   no opinion
反馈超时 opinion_overdue     ``opinion_due``                        no opinion
吹哨督办 level k             ``opinion_due`` + k ×                  no opinion
summons_escalation          ``whistle.escalate_hours`` (k = 1–3)
==========================  ====================================  ===========================

A summons that got its opinion or was cancelled (withdrawn by the lead, or ended with its
ticket) has no timers. The 督办 interval in force when the tick runs applies.

The design is the SLA timers' (``dispatch.timers``), whose pieces it reuses: one stored next
moment per summons (``next_due_at`` after ``timers_checked_until``), a tick that takes the
due summonses oldest first (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several schedulers
share the work), fires every timer due since the last check (catch-up after downtime, the
lateness recorded) and stores the next moment; ``summons_firings``' unique key makes each
timer fire once. A firing is a ticket event (no actor, ``unit_id`` the summoned department),
inbox items and a board message. Recipients: a warning goes to the department; an overdue
also to the unit that blew the whistle (it is waiting); a 督办 to the department and the
level supervising it (``timers.supervising_unit``: the hotline centre, the district
government or the department's leadership, the mayor's office).

When the ticket leaves the states in which a street works with the departments
(``SUMMONS_STATES``: finished, terminated, redispatched or designated away …), its open
summonses end with it (``end_with_ticket``, called by every ticket operation's event):
``cancelled_at`` and a reason are set, the deadlines and the moments stay, so whether a
department was late is never lost (``lateness``).
"""

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dispatch import timers
from dispatch.states import SUMMONS_STATES
from dispatch.timers import MICROSECOND, Timer, distinct_units, next_due, supervising_unit
from hotline import events, notify, settings
from hotline.db import bulk_insert
from hotline.enums import AlertLevel, EscalationLevel, TicketStatus, TimerKind
from hotline.errors import Conflict, ValidationFailed
from hotline.models import Summons, SummonsFiring, Ticket, TicketEvent, Unit

K = TimerKind
S = TicketStatus
KINDS = frozenset(
    {K.report_warning, K.report_overdue, K.opinion_warning, K.opinion_overdue, K.summons_escalation}
)
TOP_LEVEL = timers.TOP_LEVEL
_LEVELS = {
    K.report_warning: AlertLevel.yellow,
    K.opinion_warning: AlertLevel.yellow,
    K.report_overdue: AlertLevel.red,
    K.opinion_overdue: AlertLevel.red,
    K.summons_escalation: AlertLevel.red,
}
#: Why open summonses end with their ticket, by the state it went to.
_END_REASONS = {
    S.finished: "工单已办结，吹哨报到随之结束",
    S.terminated: "工单已终止，吹哨报到随之结束",
    S.dispatched: "工单已改由其他单位承办或重新派单，吹哨报到随之结束",
}


def escalate_hours(session):
    return settings.get(session, "whistle.escalate_hours")


# -- planning -----------------------------------------------------------------------------------


def plan(summons, sla, hours):
    """Every timer of ``summons`` (a Summons or a row with its attribute names) that still
    applies; ``sla`` is ``timers.Settings`` (warning share), ``hours`` the 督办 interval."""
    if summons.opinion_at is not None or summons.cancelled_at is not None:
        return []
    fraction = sla.warning_percent / 100
    start = summons.summoned_at
    result = []
    if summons.reported_at is None:
        due = summons.report_due
        result.append(Timer(K.report_warning, start + (due - start) * fraction, deadline=due))
        result.append(Timer(K.report_overdue, due, deadline=due))
    due = summons.opinion_due
    result.append(Timer(K.opinion_warning, start + (due - start) * fraction, deadline=due))
    result.append(Timer(K.opinion_overdue, due, deadline=due))
    for level in range(1, TOP_LEVEL + 1):
        at = due + dt.timedelta(hours=level * hours)
        result.append(Timer(K.summons_escalation, at, level=level, deadline=due))
    return result


def schedule(session, summons, now, sla):
    """Store the summons' next due moment after an operation changed it (as
    ``timers.schedule``: the check mark moves back to just before ``now``)."""
    if summons.timers_checked_until is None or summons.timers_checked_until >= now:
        summons.timers_checked_until = now - MICROSECOND
    timers_ = plan(summons, sla, escalate_hours(session))
    summons.next_due_at = next_due(timers_, summons.timers_checked_until)


def lateness(summons, now):
    """Whether the department was (or by ``now`` is) late to report and to give its
    opinion: a step never done counts against the moment the summons ended."""
    end = summons.cancelled_at or now

    def late(done, due):
        return (done or end) > due

    return {
        "report_late": late(summons.reported_at, summons.report_due),
        "opinion_late": late(summons.opinion_at, summons.opinion_due),
    }


# -- ending with the ticket ---------------------------------------------------------------------


def end_with_ticket(session, ticket, from_status, now):
    """End the ticket's open summonses if the operation took it out of ``SUMMONS_STATES``
    (called by ``operations._record`` before its event is written). Returns what ended, for
    the operation's event payload (empty: nothing did)."""
    if from_status not in SUMMONS_STATES or ticket.status in SUMMONS_STATES:
        return []
    with session.no_autoflush:
        rows = session.scalars(
            sa.select(Summons)
            .where(Summons.ticket_id == ticket.id, Summons.is_open)
            .order_by(Summons.id)
        ).all()
    reason = _END_REASONS.get(ticket.status, f"工单已{ticket.status.label}，吹哨报到随之结束")
    return end(session, ticket, rows, reason, now)


def end(session, ticket, rows, reason, now):
    """End the open summonses ``rows`` of ``ticket`` without an opinion, with ``reason``
    (``cancelled_at`` and ``cancel_reason`` set, no timer left, each department told): the
    one place summonses end because something else ended (the ticket left handling, the
    department was deactivated). Returns what ended, for the event's payload."""
    ended, messages = [], []
    for summons in rows:
        summons.cancelled_at = now
        summons.cancel_reason = reason
        summons.next_due_at = None
        unit = summons.unit
        ended.append({"summons": summons.id, "unit": unit.code, **lateness(summons, now)})
        messages.append(
            notify.Message(
                unit_id=unit.id,
                unit_code=unit.code,
                kind="summons_ended",
                level=AlertLevel.info.value,
                title=f"【吹哨报到结束】工单 {ticket.number}",
                body=reason,
                ticket_id=ticket.id,
                ticket_number=ticket.number,
            )
        )
    if messages:
        notify.deliver(session, messages, now)
    return ended


# -- firing -------------------------------------------------------------------------------------

_DUE_COLUMNS = (
    Summons.id,
    Summons.ticket_id,
    Summons.unit_id,
    Summons.summoning_unit_id,
    Summons.summoned_at,
    Summons.report_due,
    Summons.reported_at,
    Summons.opinion_due,
    Summons.opinion_at,
    Summons.cancelled_at,
    Summons.timers_checked_until,
    Summons.escalation_level,
    Ticket.number,
    Ticket.status,
    Ticket.area_id,
    Unit.code.label("unit_code"),
    Unit.name.label("unit_name"),
)


def tick(session, now, sla, batch=1000):
    """Fire every summons timer due by ``now`` on up to ``batch`` summonses; the caller
    commits. Returns a ``timers.TickResult`` (``tickets`` counts summonses)."""
    ref = timers.reference.get(session)
    hours = escalate_hours(session)
    rows = session.execute(
        sa.select(*_DUE_COLUMNS)
        .join(Ticket, Ticket.id == Summons.ticket_id)
        .join(Unit, Unit.id == Summons.unit_id)
        .where(Summons.next_due_at <= now)
        .order_by(Summons.next_due_at, Summons.id)
        .limit(batch)
        .with_for_update(skip_locked=True, of=Summons)
    ).all()
    result = timers.TickResult(tickets=len(rows))
    if not rows:
        return result
    firings, updates, due_by_summons = [], [], {}
    for row in rows:
        planned = plan(row, sla, hours)
        checked = row.timers_checked_until
        due = [t for t in planned if (checked is None or t.due > checked) and t.due <= now]
        level = max([row.escalation_level] + [t.level for t in due if t.level], default=0)
        due_by_summons[row.id] = (row, due)
        firings.extend(
            {
                "summons_id": row.id,
                "kind": t.kind,
                "due_at": t.due,
                "fired_at": now,
                "lateness_seconds": int((now - t.due).total_seconds()),
                "level": t.level,
            }
            for t in due
        )
        updates.append(
            {"b_id": row.id, "b_next": next_due(planned, now), "b_checked": now, "b_level": level}
        )
    rows_fired = bulk_insert(
        session,
        SummonsFiring.__table__,
        firings,
        returning=("summons_id", "kind", "due_at"),
        skip_conflicts=True,
    )
    fired = {(summons_id, K(kind), due_at) for summons_id, kind, due_at in rows_fired}
    session.execute(_UPDATE_SUMMONSES, updates)
    _announce(session, ref, due_by_summons, fired, now, sla)
    result.fired = len(fired)
    if firings:
        result.max_lateness = max(f["lateness_seconds"] for f in firings)
    return result


_UPDATE_SUMMONSES = (
    sa.update(Summons.__table__)
    .where(Summons.__table__.c.id == sa.bindparam("b_id"))
    .values(
        next_due_at=sa.bindparam("b_next"),
        timers_checked_until=sa.bindparam("b_checked"),
        escalation_level=sa.bindparam("b_level"),
    )
)


def _announce(session, ref, due_by_summons, fired, now, sla):
    event_rows, messages = [], []
    for row, due in due_by_summons.values():
        for t in due:
            if (row.id, t.kind, t.due) not in fired:
                continue
            lateness_seconds = int((now - t.due).total_seconds())
            payload = {
                "timer": t.kind.value,
                "summons": row.id,
                "unit": row.unit_code,
                "unit_name": row.unit_name,
                "due_at": t.due.isoformat(),
                "lateness_seconds": lateness_seconds,
            }
            if t.level:
                payload["level"] = t.level
            event_rows.append(
                {
                    "ticket_id": row.ticket_id,
                    "action": t.kind.value,
                    "actor_id": None,
                    "actor_role": None,
                    "unit_id": row.unit_id,
                    "from_status": row.status.value,
                    "to_status": row.status.value,
                    "reason": None,
                    "payload": payload,
                    "created_at": now,
                }
            )
            messages.extend(_messages(ref, row, t, sla))
            events.queue(
                session,
                {
                    "type": f"whistle.{t.kind.value}",
                    "ticket": row.number,
                    "status": row.status.value,
                    "area": ref.area_codes.get(row.area_id),
                    "unit": row.unit_code,
                    "level": _LEVELS[t.kind].value,
                    "escalation_level": t.level,
                    "due_at": t.due.isoformat(),
                    "at": now.isoformat(),
                },
            )
    if event_rows:
        bulk_insert(session, TicketEvent.__table__, event_rows)
    notify.deliver(session, messages, now)


def _recipients(ref, row, timer, sla):
    units = [row.unit_id]
    if timer.kind in (K.report_overdue, K.opinion_overdue):
        units.append(row.summoning_unit_id)
    elif timer.kind == K.summons_escalation:
        units.append(supervising_unit(ref, row.unit_id, timer.level, sla))
    return distinct_units(units)


def _messages(ref, row, timer, sla):
    deadline = timer.deadline.astimezone(ZoneInfo(sla.timezone)).strftime("%Y-%m-%d %H:%M")
    kind = timer.kind
    who = row.unit_name
    if kind == K.report_warning:
        body = f"{who}被吹哨报到，请在 {deadline} 前报到。"
    elif kind == K.report_overdue:
        body = f"{who}被吹哨后未在报到时限（{deadline}）内报到，请立即报到。"
    elif kind == K.opinion_warning:
        body = f"{who}被吹哨报到，请在 {deadline} 前反馈处理意见。"
    elif kind == K.opinion_overdue:
        body = f"{who}未在反馈时限（{deadline}）内反馈处理意见，请立即反馈。"
    else:
        level = EscalationLevel(timer.level).label
        body = f"{who}超过反馈时限（{deadline}）仍未反馈处理意见，已提级至{level}。"
    title = f"【{kind.label}】工单 {row.number}"
    return [
        notify.Message(
            unit_id=unit,
            unit_code=ref.units[unit].code if unit in ref.units else row.unit_code,
            kind=kind.value,
            level=_LEVELS[kind].value,
            title=title,
            body=body,
            ticket_id=row.ticket_id,
            ticket_number=row.number,
        )
        for unit in _recipients(ref, row, timer, sla)
    ]


# -- running ------------------------------------------------------------------------------------


def run_due(session_factory, sla, now=None, batch=1000, clock=None):
    """Tick in batches, one transaction each, until no due summons is left (the SLA timers'
    loop, ``timers.run_due``, with this tick). Returns the totals."""
    return timers.run_due(session_factory, sla, now, batch, clock, step=tick)


@dataclasses.dataclass(frozen=True)
class Limits:
    """The deadlines a summons blown now gets (clock hours from ``hotline.settings``)."""

    report_hours: int
    opinion_hours: int

    @classmethod
    def current(cls, session):
        values = settings.group(session, "whistle.")
        return cls(values["report_hours"], values["opinion_hours"])

    def problem(self):
        """Why these limits make no sense (None: they do): a department cannot be asked for
        its opinion before it has to report."""
        if self.report_hours > self.opinion_hours:
            return (
                f"报到时限（{self.report_hours} 小时）不能长于反馈时限"
                f"（{self.opinion_hours} 小时）：被吹哨部门须先报到、再反馈处理意见"
            )
        return None

    def check(self):
        """Refuse to blow the whistle with limits that make no sense (set before the rule
        existed, or written behind the settings page's back)."""
        message = self.problem()
        if message:
            raise Conflict(
                f"吹哨报到设置有误，请系统管理员修改：{message}", code="WHISTLE_LIMITS_INVALID"
            )


def check_settings(values):
    """The settings page's ``check``: refuse saving a report limit longer than the opinion
    limit (``values``: every setting as it would be after saving, by full key)."""
    message = Limits(values["whistle.report_hours"], values["whistle.opinion_hours"]).problem()
    if message:
        raise ValidationFailed(
            message, code="SETTINGS_INVALID", details={"whistle.report_hours": message}
        )
