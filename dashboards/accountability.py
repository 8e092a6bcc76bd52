"""四位一体督办 · 监察问责: the month's cases of 推诿扯皮 (shirking) and 弄虚作假 (falsified
reports) per unit, each with its evidence, and the supervisor's referral of a case to
discipline inspection (移送纪检监察).

It lives in ``dashboards`` beside the ranking because it is the same kind of thing: a monthly
report over units, read from tickets, assignments, events and callbacks, using the ranking's
local month (``ranking.month_bounds``), shown on a report page and written into the ranking's
export; nothing in ``dispatch`` needs it. The referral is its one change (supervision data,
not a ticket's state, so it is not in the transition table), audited.

**The rules** (thresholds are settings ``accountability.*``, 系统管理 › 监察问责设置; a month
is a local calendar month; a rule is met when the unit's count in the month reaches its
threshold, and the case lists every ticket behind the count):

推诿扯皮 (``ReferralKind.shirking``)
- ``bounced`` 来回推诿 — a ticket returned in the month by the unit (退单申请) that was
  returned by ``bounce_units`` or more different units, or by one unit twice (passed back
  and forth), counting every return on the ticket up to the month's end; one such ticket
  meets the rule, for every unit that returned it in the month.
- ``rejected_returns`` 退单被驳回 — the unit's return requests of the month that the hotline
  decided against it (驳回, or 指定 the same unit: the dispatch was upheld against the unit's
  claim), at least ``rejected_returns``.
- ``quick_returns`` 秒退 — returns requested within ``quick_return_minutes`` of the unit
  being given the ticket, at least ``quick_return_count`` in the month.

弄虚作假 (``ReferralKind.falsification``)
- ``unsolved_claims`` 报称解决、回访未解决 — callbacks of the month answered 未解决 whose
  preceding 办结 reply by the unit says the matter is solved (``SOLVED_CLAIM``), at least
  ``unsolved_claims``.
- ``onsite_without_check_in`` 称到现场、无现场核查 — 办结 replies of the month claiming
  that the unit's people went on site (``claims_onsite``: the unit as the subject, not advice
  to the citizen) on a ticket whose area is among the grids of the unit's active grid
  workers (someone of it could have checked in there; a department has no grid workers, so
  its claims cannot be checked) with no
  现场核查 (``check_in``) event on the ticket since the unit was given it, at least
  ``onsite_without_check_in``.
- ``contact_without_phone`` 无电话却报已联系 — 联系诉求人 events of the month by the unit on
  tickets whose requester left no phone, whose note does not say how else the requester was
  reached (``OTHER_CONTACT``: in person, on site, by message …), at least
  ``contact_without_phone``. The phone system records only the calls it puts through to the
  hotline's agents (``IncomingCall``), not a unit's own calls, so the one contact that can be
  shown impossible from the data is a phone contact with no number to call.
"""

import datetime as dt
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from dashboards import access, ranking
from dispatch.units import find_unit
from hotline import settings as hotline_settings
from hotline.audit import audit
from hotline.config import DEFAULTS
from hotline.db import utcnow
from hotline.enums import (
    AssignmentRole,
    CallbackOutcome,
    ReferralKind,
    ReturnReason,
    Role,
    Solved,
)
from hotline.errors import Conflict, Forbidden, NotFound, ValidationFailed
from hotline.models import (
    Assignment,
    CallbackAttempt,
    Referral,
    Ticket,
    TicketEvent,
    Unit,
    User,
    user_grids,
)
from hotline.schemas import Fields

SETTINGS_PREFIX = "accountability."
#: Who refers a case; leaders (and the supervisors) read.
REFER_ROLES = frozenset({Role.supervisor})
VIEW_ROLES = (Role.supervisor, Role.leader)
REASON_MAX = 2000

#: A reply saying the matter is solved (办结 text). "未解决" and the like are not claims.
SOLVED_CLAIM = re.compile(
    r"(?<![未没不无])(?:已经?|均已|全部|彻底)(?:妥善|全部|彻底)?"
    r"(?:解决|处理完毕|处理完成|处理好|修复|修好|维修完毕|整改完毕|整改到位|清理完毕|清运完毕|"
    r"疏通|恢复|办结|完成)|处理完毕|办理完毕|问题已?解决"
)
NEGATED = re.compile(r"[未没不无尚](?:能|有|予)?(?:解决|处理|修复|完成)")
#: Words of going to the place; a reply needs one to be read at all (the query's filter).
ONSITE_WORDS = ("现场", "实地", "到场", "上门", "赶赴", "前往", "到达", "深入", "来到")
#: A reply claiming the unit went to the place: its people (or "派员") as the subject, then,
#: within the same clause, one of ``ONSITE_WORDS``; or the replying unit as the implied
#: subject of "已到现场", "经现场核实", "经实地查看". "建议您前往区政务服务中心办理" or "请您赴
#: 市场监管局反映" advise the citizen to go somewhere: no subject of the unit, and a clause
#: addressing 您 is never read as a claim (``claims_onsite``).
ONSITE_CLAIM = re.compile(
    r"(?:工作人员|执法人员|网格员|维修人员|社区干部|队员|我单位|本单位|我局|我街道|我镇|我办|"
    r"我中心|我所|我队|我们|派员|派人|安排人员|组织人员)[^，。；！？,.;!?\n]{0,12}?(?:"
    + "|".join(ONSITE_WORDS)
    + r")|(?:已|经|并|均已)(?:派员|派人)?(?:到|赶赴|前往|深入|到达)?(?:现场|实地)|已上门"
)
#: Where a reply's clauses end (a claim is read within one clause).
_CLAUSE = re.compile(r"[，。；！？,.;!?\n]")
#: A contact note naming a way to reach the requester other than a phone call.
OTHER_CONTACT = re.compile(r"上门|当面|面谈|走访|现场|到场|短信|微信|邮件|信函|留言|网上|线上")

RULES = {
    "bounced": (ReferralKind.shirking, "来回推诿"),
    "rejected_returns": (ReferralKind.shirking, "退单被驳回"),
    "quick_returns": (ReferralKind.shirking, "派单后短时间内退单"),
    "unsolved_claims": (ReferralKind.falsification, "报称已解决、回访未解决"),
    "onsite_without_check_in": (ReferralKind.falsification, "称到现场、无现场核查记录"),
    "contact_without_phone": (ReferralKind.falsification, "无联系电话却报已联系"),
}


def _default(name):
    return hotline_settings.DEFINITIONS[SETTINGS_PREFIX + name].default


@dataclass(frozen=True)
class Settings:
    """The rules' thresholds (``hotline.settings`` keys ``accountability.*``)."""

    bounce_units: int = _default("bounce_units")
    rejected_returns: int = _default("rejected_returns")
    quick_return_minutes: int = _default("quick_return_minutes")
    quick_return_count: int = _default("quick_return_count")
    unsolved_claims: int = _default("unsolved_claims")
    onsite_without_check_in: int = _default("onsite_without_check_in")
    contact_without_phone: int = _default("contact_without_phone")

    @classmethod
    def from_settings(cls, session):
        values = hotline_settings.group(session, SETTINGS_PREFIX)
        return cls(**{name: values[name] for name in cls.__dataclass_fields__})


@dataclass
class Case:
    """One unit's case of one kind in a month: the rules it met, with their evidence."""

    unit_id: int
    unit_code: str
    unit_name: str
    kind: ReferralKind
    findings: list = field(default_factory=list)
    referral: Referral | None = None

    @property
    def ticket_ids(self):
        return sorted({item["ticket_id"] for f in self.findings for item in f["items"]})


# -- evidence -----------------------------------------------------------------------------------


class _Evidence:
    """Findings per (unit, rule): the tickets and, for each, the facts with their times."""

    def __init__(self, timezone):
        self.zone = ZoneInfo(timezone)
        self.items = {}  # (unit id, rule) → {ticket id: item}

    def local(self, moment):
        return moment.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")

    def add(self, unit_id, rule, ticket, facts):
        per_rule = self.items.setdefault((unit_id, rule), {})
        item = per_rule.setdefault(
            ticket.id, {"ticket": ticket.number, "ticket_id": ticket.id, "facts": []}
        )
        for at, text in facts:
            fact = {"at": at.isoformat(), "time": self.local(at), "text": text}
            if fact not in item["facts"]:
                item["facts"].append(fact)
        item["facts"].sort(key=lambda f: f["at"])

    def count(self, unit_id, rule):
        return len(self.items.get((unit_id, rule), {}))


def _excerpt(text, limit=120):
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def claims_onsite(reply):
    """Whether a 办结 reply says the unit's people went to the place (``ONSITE_CLAIM``), in a
    clause that does not address the citizen (您: advice to go somewhere is no claim)."""
    return any(
        ONSITE_CLAIM.search(clause) and "您" not in clause for clause in _CLAUSE.split(reply or "")
    )


def claims_solved(reply):
    """Whether a 办结 reply says the matter is solved (and does not say it is not)."""
    reply = reply or ""
    return bool(SOLVED_CLAIM.search(reply)) and not NEGATED.search(reply)


# -- 推诿扯皮 ------------------------------------------------------------------------------


def _returns(session, evidence, start, end, s):
    """Every return request (``request_return`` events) on the tickets with one in the month,
    each with how it was settled (the next ``decide_return``, or a 指定 / 停用改派 naming a
    unit) and when its unit had been given the ticket."""
    e = TicketEvent
    in_month = (
        sa.select(e.ticket_id)
        .where(e.action == "request_return", e.created_at >= start, e.created_at < end)
        .distinct()
    )
    events = session.scalars(
        sa.select(e)
        .where(
            e.ticket_id.in_(in_month),
            e.action.in_(
                [
                    "request_return",
                    "decide_return",
                    "designate",
                    "apply_meeting_decision",
                    "reassign",
                ]
            ),
            e.created_at < end,
        )
        .order_by(e.ticket_id, e.created_at, e.id)
    ).all()
    if not events:
        return
    ticket_ids = {event.ticket_id for event in events}
    tickets = {t.id: t for t in session.scalars(sa.select(Ticket).where(Ticket.id.in_(ticket_ids)))}
    given = {}  # (ticket id, unit id) → moments the unit was made lead
    for ticket_id, unit_id, at in session.execute(
        sa.select(Assignment.ticket_id, Assignment.unit_id, Assignment.dispatched_at).where(
            Assignment.ticket_id.in_(ticket_ids), Assignment.role == AssignmentRole.lead
        )
    ):
        given.setdefault((ticket_id, unit_id), []).append(at)
    units = session.execute(sa.select(Unit.id, Unit.code, Unit.name)).all()
    names = {uid: name for uid, _, name in units}
    ids = {code: uid for uid, code, _ in units}

    requests = {}  # ticket id → [request dicts]
    for event in events:
        chain = requests.setdefault(event.ticket_id, [])
        if event.action == "request_return":
            chain.append({"event": event, "unit_id": event.unit_id, "decision": None})
            continue
        pending = next((r for r in reversed(chain) if r["decision"] is None), None)
        if pending is None:
            continue
        payload = event.payload or {}
        if event.action == "decide_return":
            pending["decision"] = "approved" if payload.get("approved") else "rejected"
        else:  # designating (or reassigning) settles it: upheld unless the same unit keeps it
            same = ids.get(payload.get("lead_unit") or payload.get("to_unit")) == pending["unit_id"]
            pending["decision"] = "rejected" if same else "approved"
        pending["decided_at"] = event.created_at

    quick = dt.timedelta(minutes=s.quick_return_minutes)
    for ticket_id, chain in requests.items():
        ticket = tickets[ticket_id]

        def fact(r):
            event = r["event"]
            why = ReturnReason.parse((event.payload or {}).get("return_reason"))
            status = {"approved": "已同意", "rejected": "已驳回"}.get(r["decision"], "待审核")
            return (
                event.created_at,
                f"{names.get(r['unit_id'], '')}申请退单（{why.label if why else ''}，{status}）："
                f"{_excerpt(event.reason, 60)}",
            )

        units = [r["unit_id"] for r in chain]
        bounced = len(set(units)) >= s.bounce_units or len(units) > len(set(units))
        for r in chain:
            at = r["event"].created_at
            if not start <= at < end or r["unit_id"] is None:
                continue
            if bounced:
                evidence.add(r["unit_id"], "bounced", ticket, [fact(x) for x in chain])
            if r["decision"] == "rejected":
                evidence.add(r["unit_id"], "rejected_returns", ticket, [fact(r)])
            since = max(
                (d for d in given.get((ticket_id, r["unit_id"]), []) if d <= at), default=None
            )
            if since is not None and at - since <= quick:
                minutes = int((at - since).total_seconds() // 60)
                why = ReturnReason.parse((r["event"].payload or {}).get("return_reason"))
                evidence.add(
                    r["unit_id"],
                    "quick_returns",
                    ticket,
                    [
                        (since, f"派给{names.get(r['unit_id'], '')}"),
                        (
                            at,
                            f"{minutes} 分钟后{names.get(r['unit_id'], '')}申请退单"
                            f"（{why.label if why else ''}）",
                        ),
                    ],
                )


# -- 弄虚作假 ------------------------------------------------------------------------------


def _unsolved_claims(session, evidence, start, end):
    attempts = session.execute(
        sa.select(CallbackAttempt, Ticket)
        .join(Ticket, Ticket.id == CallbackAttempt.ticket_id)
        .where(
            CallbackAttempt.outcome == CallbackOutcome.answered,
            CallbackAttempt.solved == Solved.unsolved,
            CallbackAttempt.attempted_at >= start,
            CallbackAttempt.attempted_at < end,
        )
        .order_by(CallbackAttempt.attempted_at)
    ).all()
    finishes = {}  # ticket id → its finish events up to the month's end, oldest first
    if attempts:
        for event in session.scalars(
            sa.select(TicketEvent)
            .where(
                TicketEvent.ticket_id.in_({ticket.id for _, ticket in attempts}),
                TicketEvent.action == "finish",
                TicketEvent.created_at < end,
            )
            .order_by(TicketEvent.created_at, TicketEvent.id)
        ):
            finishes.setdefault(event.ticket_id, []).append(event)
    for attempt, ticket in attempts:
        # The latest finish before the callback (the reply the citizen was asked about).
        finish = next(
            (
                f
                for f in reversed(finishes.get(ticket.id, []))
                if f.created_at <= attempt.attempted_at
            ),
            None,
        )
        if finish is None or finish.unit_id is None or not claims_solved(finish.reason):
            continue
        comment = f"：{_excerpt(attempt.comment, 60)}" if attempt.comment else ""
        evidence.add(
            finish.unit_id,
            "unsolved_claims",
            ticket,
            [
                (finish.created_at, f"办结答复：{_excerpt(finish.reason)}"),
                (attempt.attempted_at, f"回访：诉求人称未解决{comment}"),
            ],
        )


def _onsite_without_check_in(session, evidence, start, end):
    """Claims of going on site (``claims_onsite``) on a ticket whose area is a grid one of the
    unit's active grid workers covers, with no 现场核查 on it since the unit was last given it.
    Four queries whatever the month holds: the finishes, the units' grids, the lead
    dispatches and the check-ins, each keyed by ticket (or unit) id."""
    finishes = [
        (finish, ticket)
        for finish, ticket in session.execute(
            sa.select(TicketEvent, Ticket)
            .join(Ticket, Ticket.id == TicketEvent.ticket_id)
            .where(
                TicketEvent.action == "finish",
                TicketEvent.unit_id.is_not(None),
                Ticket.area_id.is_not(None),
                TicketEvent.created_at >= start,
                TicketEvent.created_at < end,
                sa.or_(*(TicketEvent.reason.contains(word) for word in ONSITE_WORDS)),
            )
            .order_by(TicketEvent.created_at)
        ).all()
        if claims_onsite(finish.reason)
    ]
    covered = _grid_areas(session, {finish.unit_id for finish, _ in finishes})
    finishes = [
        (finish, ticket)
        for finish, ticket in finishes
        if ticket.area_id in covered.get(finish.unit_id, ())
    ]
    if not finishes:
        return
    ticket_ids = {ticket.id for _, ticket in finishes}
    given = {}  # (ticket id, unit id) → moments the unit was made lead
    for ticket_id, unit_id, at in session.execute(
        sa.select(Assignment.ticket_id, Assignment.unit_id, Assignment.dispatched_at).where(
            Assignment.ticket_id.in_(ticket_ids), Assignment.role == AssignmentRole.lead
        )
    ):
        given.setdefault((ticket_id, unit_id), []).append(at)
    check_ins = {}  # ticket id → moments of 现场核查
    for ticket_id, at in session.execute(
        sa.select(TicketEvent.ticket_id, TicketEvent.created_at).where(
            TicketEvent.ticket_id.in_(ticket_ids),
            TicketEvent.action == "check_in",
            TicketEvent.created_at < end,
        )
    ):
        check_ins.setdefault(ticket_id, []).append(at)
    for finish, ticket in finishes:
        at = finish.created_at
        since = max(
            (d for d in given.get((ticket.id, finish.unit_id), []) if d <= at), default=None
        )
        if any(c <= at and (since is None or c >= since) for c in check_ins.get(ticket.id, [])):
            continue
        evidence.add(
            finish.unit_id,
            "onsite_without_check_in",
            ticket,
            [
                (
                    at,
                    "办结答复称到现场（在本单位网格员负责的网格内，无现场核查记录）："
                    f"{_excerpt(finish.reason)}",
                )
            ],
        )


def _grid_areas(session, unit_ids):
    """Unit id → the areas its active grid workers cover (a unit with none is left out: no
    one of it could check in)."""
    if not unit_ids:
        return {}
    covered = {}
    for unit_id, area_id in session.execute(
        sa.select(User.unit_id, user_grids.c.area_id)
        .join(user_grids, user_grids.c.user_id == User.id)
        .where(User.unit_id.in_(unit_ids), User.role == Role.grid_worker, User.active)
    ):
        covered.setdefault(unit_id, set()).add(area_id)
    return covered


def _contact_without_phone(session, evidence, start, end):
    contacts = session.execute(
        sa.select(TicketEvent, Ticket)
        .join(Ticket, Ticket.id == TicketEvent.ticket_id)
        .where(
            TicketEvent.action == "contact",
            TicketEvent.unit_id.is_not(None),
            TicketEvent.created_at >= start,
            TicketEvent.created_at < end,
            Ticket.requester_phone.is_(None),
        )
        .order_by(TicketEvent.created_at)
    ).all()
    for contact, ticket in contacts:
        if OTHER_CONTACT.search(contact.reason or ""):
            continue
        evidence.add(
            contact.unit_id,
            "contact_without_phone",
            ticket,
            [(contact.created_at, f"诉求人未留电话，报称已联系：{_excerpt(contact.reason)}")],
        )


# -- the month's cases ------------------------------------------------------------------------


def _thresholds(s):
    return {
        "bounced": 1,
        "rejected_returns": s.rejected_returns,
        "quick_returns": s.quick_return_count,
        "unsolved_claims": s.unsolved_claims,
        "onsite_without_check_in": s.onsite_without_check_in,
        "contact_without_phone": s.contact_without_phone,
    }


def _summary(rule, count, s):
    return {
        "bounced": f"{count} 件工单在单位间来回退单（{s.bounce_units} 个及以上单位退单，"
        "或同一单位退单两次）",
        "rejected_returns": f"退单被驳回 {count} 件（阈值 {s.rejected_returns} 件）",
        "quick_returns": f"派单后 {s.quick_return_minutes} 分钟内退单 {count} 件"
        f"（阈值 {s.quick_return_count} 件）",
        "unsolved_claims": f"答复称已解决、回访诉求人称未解决 {count} 件"
        f"（阈值 {s.unsolved_claims} 件）",
        "onsite_without_check_in": f"答复称到现场、却无现场核查记录 {count} 件"
        f"（阈值 {s.onsite_without_check_in} 件）",
        "contact_without_phone": f"诉求人未留电话、却报已电话联系 {count} 件"
        f"（阈值 {s.contact_without_phone} 件）",
    }[rule]


def detect(session, month, *, settings=None, timezone=DEFAULTS["TIMEZONE"]):
    """The month's cases, by unit code then kind (推诿扯皮 first), each with the month's
    referral if there is one."""
    start, end = ranking.month_bounds(month, timezone)
    s = settings or Settings.from_settings(session)
    evidence = _Evidence(timezone)
    _returns(session, evidence, start, end, s)
    _unsolved_claims(session, evidence, start, end)
    _onsite_without_check_in(session, evidence, start, end)
    _contact_without_phone(session, evidence, start, end)
    thresholds = _thresholds(s)
    cases = {}
    for (unit_id, rule), items in evidence.items.items():
        count = len(items)
        if count < thresholds[rule]:
            continue
        kind, label = RULES[rule]
        case = cases.setdefault((unit_id, kind), Case(unit_id, "", "", kind))
        case.findings.append(
            {
                "rule": rule,
                "label": label,
                "count": count,
                "threshold": thresholds[rule],
                "summary": _summary(rule, count, s),
                "items": sorted(items.values(), key=lambda i: i["ticket"] or ""),
            }
        )
    units = {
        u.id: u for u in session.scalars(sa.select(Unit).where(Unit.id.in_({k[0] for k in cases})))
    }
    referrals = {
        (r.unit_id, r.kind): r
        for r in session.scalars(sa.select(Referral).where(Referral.month == month))
    }
    order = list(RULES)
    for (unit_id, kind), case in cases.items():
        case.unit_code, case.unit_name = units[unit_id].code, units[unit_id].name
        case.findings.sort(key=lambda f: order.index(f["rule"]))
        case.referral = referrals.get((unit_id, kind))
    kinds = list(ReferralKind)
    return sorted(cases.values(), key=lambda c: (c.unit_code, kinds.index(c.kind)))


# -- referral -----------------------------------------------------------------------------------


def refer(session, actor, *, month, unit, kind, reason, now=None, timezone=DEFAULTS["TIMEZONE"]):
    """移送纪检监察: a supervisor refers ``unit``'s ``kind`` case of ``month`` with a reason.
    The evidence the detector lists now is frozen into the referral. Once per month, unit and
    kind: a retry (same supervisor, same reason) returns the first referral, anything else
    is refused. Audited; the caller commits. Returns (referral, created)."""
    now = now or utcnow()
    if actor is None or actor.role not in REFER_ROLES:
        raise Forbidden(
            "只有督办审核员可以移送纪检监察",
            code="ROLE_NOT_ALLOWED",
            details={"role": actor.role.value if actor else None},
        )
    ranking.parse_month(month)
    # The kind and the reason as any form or body is checked (``hotline.schemas.Fields``).
    fields = Fields(
        {"kind": kind.value if isinstance(kind, ReferralKind) else kind, "reason": reason}
    )
    kind = fields.choice("kind", "问题类型", ReferralKind, required=True)
    reason = fields.text("reason", "移送理由", required=True, max_len=REASON_MAX, multiline=True)
    fields.check()
    start, _end = ranking.month_bounds(month, timezone)
    if start > now:
        raise ValidationFailed(f"{ranking.month_label(month)}尚未开始", details={"month": "未开始"})
    existing = _existing(session, month, unit, kind)
    if existing is not None:
        return _again(existing, actor, reason), False
    case = next(
        (
            c
            for c in detect(session, month, timezone=timezone)
            if c.unit_id == unit.id and c.kind == kind
        ),
        None,
    )
    if case is None:
        raise Conflict(
            f"{unit.name}在{ranking.month_label(month)}没有{kind.label}线索，无可移送",
            code="NO_CASE",
        )
    referral = Referral(
        month=month,
        unit_id=unit.id,
        kind=kind,
        evidence=case.findings,
        ticket_ids=case.ticket_ids,
        reason=reason,
        referred_by_id=actor.id,
        referred_at=now,
    )
    try:
        with session.begin_nested():
            session.add(referral)
            session.flush()
    except IntegrityError:
        # Another supervisor referred the same case a moment ago.
        existing = _existing(session, month, unit, kind)
        return _again(existing, actor, reason), False
    audit(
        session,
        actor,
        "referral.create",
        target=f"{month}/{unit.code}/{kind.value}",
        payload={
            "referral": referral.id,
            "month": month,
            "unit": unit.code,
            "kind": kind.value,
            "reason": reason,
            "tickets": len(referral.ticket_ids),
            "rules": [f["rule"] for f in case.findings],
        },
    )
    return referral, True


def _existing(session, month, unit, kind):
    return session.scalars(
        sa.select(Referral).where(
            Referral.month == month, Referral.unit_id == unit.id, Referral.kind == kind
        )
    ).first()


def _again(existing, actor, reason):
    if existing.referred_by_id == actor.id and existing.reason == reason:
        return existing
    raise Conflict(
        f"{existing.unit.name}{ranking.month_label(existing.month)}的{existing.kind.label}问题"
        f"已于 {existing.referred_at.astimezone(ZoneInfo(DEFAULTS['TIMEZONE'])):%Y-%m-%d %H:%M} "
        f"由{existing.referred_by.name}移送纪检监察，不能重复移送",
        code="REFERRAL_EXISTS",
        details={"referral": existing.id},
    )


def unit_by_code(session, code):
    """The unit a form or body names by code; anything that is not a code (a number, NUL,
    5,000 characters: ``Fields.code``) is a unit that does not exist."""
    code = Fields({"unit": code}).code("unit", "单位")
    unit = find_unit(session, code) if code is not None else None
    if unit is None:
        raise NotFound("没有这个单位", code="UNIT_NOT_FOUND")
    return unit


def visible_to(session, user, unit_ids):
    """The unit ids ``user`` may read: a district leader those of their district
    (``access.may_see_units``), everyone else all."""
    districts = ranking.unit_districts(session)
    return {i for i in unit_ids if access.may_see_units(user, districts, [i])}


def cases_for(session, user, month, timezone=DEFAULTS["TIMEZONE"]):
    """The month's cases ``user`` may read."""
    cases = detect(session, month, timezone=timezone)
    visible = visible_to(session, user, {c.unit_id for c in cases})
    return [c for c in cases if c.unit_id in visible]


def referrals_for(session, user, month, timezone=DEFAULTS["TIMEZONE"], *, until=None):
    """The month's referrals ``user`` may read (made up to ``until`` when given), or None
    when ``user`` may read none at all (an administrator downloading the ranking: the
    referral pages are for ``VIEW_ROLES`` only)."""
    if user is None or user.role not in VIEW_ROLES:
        return None
    rows = referrals(session, month, timezone, until=until)
    if not rows:
        return rows
    ids = units_by_code(session, {r["unit_code"] for r in rows})
    visible = visible_to(session, user, set(ids.values()))
    return [r for r in rows if ids[r["unit_code"]] in visible]


def case_dict(case):
    """A case as JSON (the API)."""
    referral = case.referral
    return {
        "unit_code": case.unit_code,
        "unit_name": case.unit_name,
        "kind": case.kind.value,
        "kind_label": case.kind.label,
        "findings": case.findings,
        "ticket_ids": case.ticket_ids,
        "referral": None
        if referral is None
        else {
            "id": referral.id,
            "reason": referral.reason,
            "referred_at": referral.referred_at.isoformat(),
        },
    }


def units_by_code(session, codes):
    """Unit code → id."""
    return dict(session.execute(sa.select(Unit.code, Unit.id).where(Unit.code.in_(codes))).all())


def referrals(session, month, timezone=DEFAULTS["TIMEZONE"], *, until=None):
    """The month's referrals as rows, every unit's (the server's ``hotline rank``; people
    read ``referrals_for``). ``until``: only those made up to that moment (a frozen
    ranking's export lists the referrals as they stood when it was frozen)."""
    ranking.parse_month(month)
    zone = ZoneInfo(timezone)
    rows = session.execute(
        sa.select(Referral, Unit, User)
        .join(Unit, Unit.id == Referral.unit_id)
        .join(User, User.id == Referral.referred_by_id)
        .where(
            Referral.month == month,
            *([Referral.referred_at <= until] if until is not None else []),
        )
        .order_by(Referral.referred_at, Referral.id)
    ).all()
    numbers = {}
    ids = {i for referral, _, _ in rows for i in referral.ticket_ids}
    if ids:
        numbers = dict(
            session.execute(sa.select(Ticket.id, Ticket.number).where(Ticket.id.in_(ids))).all()
        )
    return [
        {
            "id": referral.id,
            "month": referral.month,
            "unit_code": unit.code,
            "unit_name": unit.name,
            "kind": referral.kind.value,
            "kind_label": referral.kind.label,
            "rules": [f["label"] for f in referral.evidence],
            "summaries": [f["summary"] for f in referral.evidence],
            "tickets": [numbers.get(i) for i in referral.ticket_ids],
            "reason": referral.reason,
            "by": user.name,
            "at": referral.referred_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            "evidence": referral.evidence,
        }
        for referral, unit, user in rows
    ]
