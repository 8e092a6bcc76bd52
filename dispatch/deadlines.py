"""How a ticket's deadlines stand (签收, 响应, 办结): the one rule that colours a deadline on
every page (ok green, warn amber when the 预警 timer fires, overdue red, done grey), and the
same in words, for people who cannot tell the colours apart.
"""

import dataclasses

import sqlalchemy as sa

from dispatch import calendar, operations, timers
from dispatch.states import IN_HANDLING
from hotline.enums import AssignmentRole, TimerKind
from hotline.models import SlaPolicy


@dataclasses.dataclass(frozen=True)
class DeadlineState:
    """How a deadline stands: ``state`` is the colour's name (ok green, warn amber, overdue
    red, done grey, none: no deadline) and ``words`` says the same without colour."""

    state: str
    words: str


def deadline_state(due, *, warn_at, done_at, now, stopped=False):
    """The one rule for colouring a deadline. ``warn_at`` is when the clock's warning share
    (``SLA_WARNING_PERCENT``) is used up; ``done_at`` when the step was done; ``stopped``:
    the clock no longer runs (the ticket left handling without this step)."""
    if due is None:
        return DeadlineState("none", "无时限")
    if done_at is not None:
        if done_at > due:
            return DeadlineState("done", f"已完成（超时 {duration_words(done_at - due)}）")
        return DeadlineState("done", "已按时完成")
    if stopped:
        return DeadlineState("done", "已停止计时")
    if now > due:
        return DeadlineState("overdue", f"已超时 {duration_words(now - due)}")
    words = f"剩余 {duration_words(due - now)}"
    if warn_at is not None and now >= warn_at:
        return DeadlineState("warn", f"即将到期，{words}")
    return DeadlineState("ok", words)


def duration_words(delta):
    """A span in Chinese to the two largest units: 1 天 2 小时, 3 小时 5 分钟, 12 分钟."""
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} 天 {hours} 小时" if hours else f"{days} 天"
    if hours:
        return f"{hours} 小时 {minutes} 分钟" if minutes else f"{hours} 小时"
    return f"{minutes} 分钟" if minutes else "不足 1 分钟"


_CLOCKS = (
    ("sign", "签收", TimerKind.sign_warning),
    ("contact", "响应", TimerKind.contact_warning),
    ("finish", "办结", TimerKind.finish_warning),
)


def load_policies(session, tickets):
    """The SLA rows of ``tickets`` in one query, for a page that colours many deadlines:
    ``ticket_deadlines`` then finds each in the session (keep the returned list while it
    runs, so the session keeps the rows)."""
    ids = {t.sla_policy_id for t in tickets if t.sla_policy_id}
    if not ids:
        return []
    return session.scalars(sa.select(SlaPolicy).where(SlaPolicy.id.in_(ids))).all()


def ticket_deadlines(session, ticket, now, assignment=None):
    """The sign / contact / finish deadlines of ``ticket`` as (label, due, DeadlineState).

    The warning moments come from the SLA timers' own plan (``timers.plan``), so a deadline
    turns amber exactly when its 预警 fires (working time for working-day limits). An
    assisting unit's signature is its own (``assignment``); the rest are the lead's.
    """
    warn_at = {}
    if ticket.status in IN_HANDLING and ticket.clock_started_at is not None:
        settings = operations.timer_settings()
        policy = operations.ticket_policy(session, ticket) if ticket.sla_policy_id else None
        always_on = ticket.lead_unit is not None and ticket.lead_unit.always_on
        work_calendar = calendar.load(session, settings.timezone)
        for timer in timers.plan(ticket, policy, always_on, work_calendar, settings, now):
            warn_at[timer.kind] = timer.due
    done = {"sign": ticket.signed_at, "contact": ticket.contacted_at, "finish": ticket.finished_at}
    if assignment is not None and assignment.role != AssignmentRole.lead:
        done["sign"] = assignment.signed_at
    stopped = ticket.status not in IN_HANDLING
    result = []
    for clock, label, warning in _CLOCKS:
        due = getattr(ticket, f"{clock}_due")
        state = deadline_state(
            due, warn_at=warn_at.get(warning), done_at=done[clock], now=now, stopped=stopped
        )
        result.append((label, due, state))
    return result
