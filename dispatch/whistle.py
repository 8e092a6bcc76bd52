"""吹哨报到: the street office (or district government) leading a ticket summons departments.

The lead unit's handler blows the whistle (``whistle``) on a ticket it has signed, naming one
or more city departments or public utilities and why. Each summoned department has its own
summons (``hotline.models.Summons``) with two deadlines in clock hours from the whistle
(``whistle.report_hours``, default 1 h, and ``whistle.opinion_hours``, default 24 h): its
handler reports (``report_summons``, 报到) and then gives its opinion or action
(``give_opinion``, 反馈意见, text and photos); the lead may withdraw a summons with a reason
(``withdraw_summons``). The street stays the lead: a summoned department neither signs nor
finishes, it sees the ticket (``dispatch.access``) and finds it in its inbox under 吹哨报到.

Why a street handler and not a grid worker: the whistle calls other administrations to the
street, a decision of the street office; a grid worker who needs help 上报s to the office.

Each operation is in the transition table (``dispatch.states``) and appends one event per
summons it changes, whose ``unit_id`` is the summoned department (blowing the whistle on
three departments writes three events, one in each department's record). The clocks,
warnings and 督办 of a summons are ``dispatch.whistle_timers``; summonses still open when the
ticket leaves handling end with it there.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from dispatch import access, operations, whistle_timers
from dispatch.deadlines import deadline_state
from hotline import attachments, notify
from hotline.db import UTCDateTime, utcnow
from hotline.enums import AlertLevel, AssignmentRole, TimerKind, UnitKind
from hotline.errors import Conflict, Forbidden, ValidationFailed
from hotline.models import Summons, Ticket

#: Who may blow the whistle (the lead's kind) and who may be summoned.
WHISTLE_LEADS = frozenset({UnitKind.street_office, UnitKind.district_government})
SUMMONABLE = frozenset({UnitKind.city_department, UnitKind.utility})
#: Most departments one whistle summons.
MAX_UNITS = 10
REASON_MAX = 1000
OPINION_MAX = 5000


def _open(session, ticket, unit_id):
    """The open summons of ``unit_id`` on ``ticket`` (None: there is none)."""
    return session.scalars(
        sa.select(Summons).where(
            Summons.ticket_id == ticket.id, Summons.unit_id == unit_id, Summons.is_open
        )
    ).first()


def _lock(session, ticket):
    """Read the ticket afresh, locked until the transaction ends (``SELECT … FOR UPDATE``;
    SQLite has a single writer anyway). Two identical whistles at once (a double click, an
    API retry while the first still runs) then happen one after the other: the second sees
    the first's summonses and is refused cleanly, not by the unique index (a 500)."""
    session.refresh(ticket, with_for_update=True)


def _tell(session, summons, ticket, title, body, now, level=AlertLevel.info):
    notify.deliver(
        session,
        [
            notify.Message(
                unit_id=summons.unit.id,
                unit_code=summons.unit.code,
                kind="summons",
                level=level.value,
                title=f"【{title}】工单 {ticket.number}",
                body=body,
                ticket_id=ticket.id,
                ticket_number=ticket.number,
            )
        ],
        now,
    )


def _payload(summons, **extra):
    return {
        "summons": summons.id,
        "unit": summons.unit.code,
        "unit_name": summons.unit.name,
        **extra,
    }


def whistle(session, actor, ticket, *, units, reason, expected_version=None, now=None):
    """吹哨: the lead street office's (or district government's) handler summons ``units``
    (city departments, public utilities) to the ticket with ``reason``. One summons and one
    event per department; a department already summoned and not yet done is refused (a
    retried request creates nothing twice). Returns the new summonses."""
    now = now or utcnow()
    _lock(session, ticket)
    operations.check_allowed("whistle", ticket, actor, expected_version)
    operations._own_assignment(ticket, actor, AssignmentRole.lead)
    lead = ticket.lead_unit
    if lead.kind not in WHISTLE_LEADS:
        raise Forbidden(
            f"只有主办的街道乡镇或区政府可以吹哨，“{lead.name}”是{lead.kind.label}",
            code="WHISTLE_LEAD_KIND",
        )
    reason = operations._require_reason(reason, "吹哨事由")
    units = list(units or [])
    if not units:
        raise ValidationFailed("请选择被吹哨的部门", details={"units": "请选择被吹哨的部门"})
    if len(units) > MAX_UNITS:
        message = f"一次最多吹哨 {MAX_UNITS} 个部门"
        raise ValidationFailed(message, details={"units": message})
    seen = set()
    for unit in units:
        problem = None
        if unit.id in seen:
            problem = f"部门“{unit.name}”重复"
        elif not unit.active:
            problem = f"部门“{unit.name}”已停用"
        elif unit.kind not in SUMMONABLE:
            problem = f"“{unit.name}”是{unit.kind.label}，只能向市直部门或公共服务企业吹哨"
        if problem:
            raise ValidationFailed(problem, code="WHISTLE_UNIT_INVALID", details={"units": problem})
        seen.add(unit.id)
        if _open(session, ticket, unit.id) is not None:
            raise Conflict(
                f"已向“{unit.name}”吹哨，尚未反馈，不能重复吹哨",
                code="SUMMONS_ALREADY_OPEN",
                details={"unit": unit.code},
            )
    limits = whistle_timers.Limits.current(session)
    limits.check()
    sla = operations.timer_settings()
    created = []
    for unit in units:
        summons = Summons(
            ticket_id=ticket.id,
            unit_id=unit.id,
            unit=unit,
            summoning_unit_id=lead.id,
            summoned_by_id=actor.id,
            summoned_at=now,
            reason=reason,
            report_due=now + dt.timedelta(hours=limits.report_hours),
            opinion_due=now + dt.timedelta(hours=limits.opinion_hours),
            escalation_level=0,
        )
        whistle_timers.schedule(session, summons, now, sla)
        session.add(summons)
        session.flush()
        operations._record(
            session,
            ticket,
            actor,
            "whistle",
            ticket.status,
            reason=reason,
            unit_id=unit.id,
            payload=_payload(
                summons,
                report_due=summons.report_due.isoformat(),
                opinion_due=summons.opinion_due.isoformat(),
            ),
            now=now,
        )
        _tell(
            session,
            summons,
            ticket,
            "吹哨报到",
            f"{lead.name}吹哨：{reason}。请于 {_local(summons.report_due)} 前报到，"
            f"{_local(summons.opinion_due)} 前反馈处理意见。",
            now,
            AlertLevel.yellow,
        )
        created.append(summons)
    return created


def _local(moment):
    tz = ZoneInfo(operations.timer_settings().timezone)
    return moment.astimezone(tz).strftime("%m-%d %H:%M")


def _own_summons(session, ticket, actor):
    summons = _open(session, ticket, actor.unit_id)
    if summons is None:
        raise Forbidden("该工单没有待您所在单位报到或反馈的吹哨", code="SUMMONS_NOT_FOR_UNIT")
    return summons


def report_summons(session, actor, ticket, *, expected_version=None, now=None):
    """报到: the summoned department's handler reports for its open summons."""
    now = now or utcnow()
    operations.check_allowed("report_summons", ticket, actor, expected_version)
    summons = _own_summons(session, ticket, actor)
    if summons.reported_at is not None:
        raise Conflict("本单位已报到，请反馈处理意见", code="SUMMONS_ALREADY_REPORTED")
    summons.reported_at = now
    summons.reported_by_id = actor.id
    whistle_timers.schedule(session, summons, now, operations.timer_settings())
    operations._record(
        session,
        ticket,
        actor,
        "report_summons",
        ticket.status,
        unit_id=summons.unit_id,
        payload=_payload(summons, late=now > summons.report_due),
        now=now,
    )
    return summons


def give_opinion(session, actor, ticket, *, opinion, photos=(), expected_version=None, now=None):
    """反馈意见: the summoned department, having reported, gives its opinion or the action it
    took (with ``photos``, stored with the event); the summons is done."""
    now = now or utcnow()
    operations.check_allowed("give_opinion", ticket, actor, expected_version)
    summons = _own_summons(session, ticket, actor)
    if summons.reported_at is None:
        raise Conflict("请先报到，再反馈处理意见", code="SUMMONS_NOT_REPORTED")
    opinion = operations._require_reason(opinion, "处理意见")
    summons.opinion = opinion
    summons.opinion_at = now
    summons.opinion_by_id = actor.id
    summons.next_due_at = None
    event = operations._record(
        session,
        ticket,
        actor,
        "give_opinion",
        ticket.status,
        reason=opinion,
        unit_id=summons.unit_id,
        payload=_payload(summons, late=now > summons.opinion_due),
        now=now,
    )
    if photos:
        attachments.store(session, actor, ticket, photos, purpose="opinion", event=event)
    return summons


def withdraw_summons(session, actor, ticket, *, unit, reason, expected_version=None, now=None):
    """撤回吹哨: the lead unit's handler withdraws its open summons of ``unit`` with
    ``reason``; the summons ends without an opinion (``cancelled_at``), its deadlines kept."""
    now = now or utcnow()
    operations.check_allowed("withdraw_summons", ticket, actor, expected_version)
    operations._own_assignment(ticket, actor, AssignmentRole.lead)
    reason = operations._require_reason(reason, "撤回原因")
    summons = _open(session, ticket, unit.id)
    if summons is None:
        raise Conflict(
            f"没有向“{unit.name}”吹哨或其已反馈、已结束",
            code="SUMMONS_NOT_OPEN",
            details={"unit": unit.code},
        )
    summons.cancelled_at = now
    summons.cancel_reason = reason
    summons.next_due_at = None
    operations._record(
        session,
        ticket,
        actor,
        "withdraw_summons",
        ticket.status,
        reason=reason,
        unit_id=summons.unit_id,
        payload=_payload(summons, **whistle_timers.lateness(summons, now)),
        now=now,
    )
    _tell(session, summons, ticket, "吹哨已撤回", f"主办单位撤回吹哨：{reason}", now)
    return summons


def open_of_unit(session, unit):
    """The open summonses of ``unit`` on any ticket, oldest first, tickets loaded."""
    return session.scalars(
        sa.select(Summons)
        .where(Summons.unit_id == unit.id, Summons.is_open)
        .options(selectinload(Summons.ticket).selectinload(Ticket.lead_unit))
        .order_by(Summons.id)
    ).all()


def end_for_unit(session, actor, unit, *, now=None):
    """The summoned department ``unit`` is deactivated (``dispatch.units``): end each of its
    open summonses (nobody is left to report, and its timers would climb to 督办 and count
    it late) with a reason, one ``end_summons`` event on each ticket, and the lead unit told.
    Returns the summonses ended."""
    now = now or utcnow()
    reason = f"被吹哨部门“{unit.name}”已停用，吹哨报到随之结束"
    rows = open_of_unit(session, unit)
    for summons in rows:
        ticket = summons.ticket
        whistle_timers.end(session, ticket, [summons], reason, now)
        operations._record(
            session,
            ticket,
            actor,
            "end_summons",
            ticket.status,
            reason=reason,
            unit_id=unit.id,
            payload=_payload(summons, **whistle_timers.lateness(summons, now)),
            now=now,
        )
        lead = ticket.lead_unit
        if lead is not None:
            notify.deliver(
                session,
                [
                    notify.Message(
                        unit_id=lead.id,
                        unit_code=lead.code,
                        kind="summons_ended",
                        level=AlertLevel.yellow.value,
                        title=f"【吹哨报到结束】工单 {ticket.number}",
                        body=f"{reason}；如仍需其他部门协同，请重新吹哨。",
                        ticket_id=ticket.id,
                        ticket_number=ticket.number,
                    )
                ],
                now,
            )
    return rows


# -- reading ------------------------------------------------------------------------------------


def state_of(summons, now):
    """How a summons stands, in words: 待报到, 已报到待反馈, 已反馈, 已撤回/已结束."""
    if summons.opinion_at is not None:
        return "已反馈"
    if summons.cancelled_at is not None:
        return "已结束"
    return "已报到，待反馈" if summons.reported_at is not None else "待报到"


def of_ticket(session, ticket):
    """Every summons of the ticket, oldest first, with its units and people loaded."""
    return session.scalars(
        sa.select(Summons)
        .where(Summons.ticket_id == ticket.id)
        .options(
            selectinload(Summons.unit),
            selectinload(Summons.summoning_unit),
            selectinload(Summons.summoned_by),
        )
        .order_by(Summons.summoned_at, Summons.id)
    ).all()


def open_condition(unit_id):
    """A WHERE condition over tickets: ``unit_id`` has an open summons on it."""
    return sa.exists().where(
        Summons.ticket_id == Ticket.id, Summons.unit_id == unit_id, Summons.is_open
    )


#: The supervisors' list's filters.
LIST_FILTERS = {"open": "进行中", "late": "超时（含已结束的）", "all": "全部"}


def listing(session, actor, now, which="open", limit=500):
    """Summonses for the supervisors' list, newest first: ``open`` (no opinion, not
    ended), ``late`` (reported or answered late, or still missing past a deadline), ``all``;
    only on tickets ``actor`` may see (a district's leader: that district's)."""
    query = (
        sa.select(Summons)
        .join(Ticket, Ticket.id == Summons.ticket_id)
        .options(
            selectinload(Summons.unit),
            selectinload(Summons.summoning_unit),
            selectinload(Summons.ticket),
        )
    )
    query = access.scoped(query, actor)
    ended = sa.func.coalesce(Summons.cancelled_at, sa.literal(now, UTCDateTime))
    if which == "open":
        query = query.where(Summons.is_open)
    elif which == "late":
        query = query.where(
            sa.or_(
                sa.func.coalesce(Summons.reported_at, ended) > Summons.report_due,
                sa.func.coalesce(Summons.opinion_at, ended) > Summons.opinion_due,
            )
        )
    query = query.order_by(Summons.summoned_at.desc(), Summons.id).limit(limit)
    return session.scalars(query).all()


def open_for_unit(session, unit_id, ticket_ids):
    """Ticket id → the open summons of ``unit_id`` on it, among ``ticket_ids`` (one query)."""
    if not ticket_ids or unit_id is None:
        return {}
    rows = session.scalars(
        sa.select(Summons).where(
            Summons.ticket_id.in_(list(ticket_ids)),
            Summons.unit_id == unit_id,
            Summons.is_open,
        )
    ).all()
    return {s.ticket_id: s for s in rows}


def deadlines_of(summons, now):
    """The summons' 报到 and 反馈 deadlines as (label, due, DeadlineState), coloured by the
    same rule as a ticket's (amber when its 预警 fires)."""
    warn_at = {t.kind: t.due for t in whistle_timers.plan(summons, operations.timer_settings(), 24)}
    stopped = summons.cancelled_at is not None
    return [
        (
            "报到",
            summons.report_due,
            deadline_state(
                summons.report_due,
                warn_at=warn_at.get(TimerKind.report_warning),
                done_at=summons.reported_at,
                now=now,
                stopped=stopped,
            ),
        ),
        (
            "反馈",
            summons.opinion_due,
            deadline_state(
                summons.opinion_due,
                warn_at=warn_at.get(TimerKind.opinion_warning),
                done_at=summons.opinion_at,
                now=now,
                stopped=stopped,
            ),
        ),
    ]


def inbox_row(ticket, summons, now):
    """A row of the unit handler's inbox for a ticket its unit is summoned to."""
    return {
        "ticket": ticket,
        "assignment": None,
        "summons": summons,
        "deadlines": deadlines_of(summons, now),
        "extension_pending": False,
    }
