"""疑难工单: tickets the hotline's ordinary clock has not settled, for a joint meeting
(联席会议, ``dispatch.meetings``) to decide. The rules, each with the evidence it lists:

=============  ============  ===========================================================
rule           label         a ticket a meeting can still act on (``DECIDABLE``) meets it
                             when …
=============  ============  ===========================================================
``returned``   多次退单      it had two or more 退单申请 (``request_return`` events), by any
                             units, whatever the decision: the count, who asked and when.
``disputed``   单位间争议    units disagree whose it is: (a) a return request was turned
                             down (the assignment's return status rejected: by 退单审核, or
                             by 指定 naming the same unit), or (b) the lead changed between
                             units two or more times (A → B → C, or A → B → A), or (c) two
                             or more different units asked to return it. Which of the three
                             and the units in order.
``reopened``   多次重办      it went back to its unit after callback (重办) two or more
                             times (``Ticket.reopen_count``).
``overdue``    超期三级督办  its clock reached the 3rd 督办 level (``escalation_level`` 3,
                             the mayor's office) and a unit still handles it (not finished):
                             the finish deadline and how long ago it passed.
``hot_issue``  跨单位热点    it belongs to an open hot issue (热点问题, ``HotIssue`` 关注中)
                             whose tickets a meeting can still act on are led by two or
                             more distinct units: the issue's title and those units. Only
                             those tickets count: units disputing *now*; a unit that led a
                             ticket of the issue now finished, in review or closed is not
                             holding any part of it a meeting could reassign.
=============  ============  ===========================================================

``DECIDABLE`` is the from-states of 会议决定指定 (``apply_meeting_decision``): 待派单 and the
states in which a unit handles the ticket, other than 终止申请中. A ticket in 待审核, 已办结,
已回访, 已拆单, 终止申请中 or a final state is not listed, and ``dispatch.meetings`` refuses to
put it on an agenda: the meeting's decision could not be applied to it. (A ticket may still
leave these states between the agenda and the decision; the decision is then refused.)

Speed (a million tickets): the rules read only open tickets (the status index, or one pass
over the table when most of it is open), then the events and lead assignments of the few
whose lead changed or was asked to return (``lead_history``), by ticket id through the
``ticket_id`` indexes, and the open hot issues through their state index: five queries
(two more per 10,000 lead-history tickets) whatever the size, then one page of tickets.
``bench/hard_cases.py`` on SQLite, 1,010,000 tickets of one recent month (223,668 still
open, 4,851 hard cases), on a shared two-core machine under load: the whole evaluation
1.8 s, the list's first page 2.1 s (9 queries), one ticket's findings 8 ms (median of 3).
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from dispatch.states import IN_HANDLING, TRANSITIONS
from hotline.db import local_datetime
from hotline.enums import AssignmentRole, HotIssueState, TicketStatus
from hotline.models import Assignment, HotIssue, HotIssueTicket, Ticket, TicketEvent, Unit

#: Rule name → its Chinese label, in the order the page shows them.
RULES = {
    "returned": "多次退单",
    "disputed": "单位间争议",
    "reopened": "多次重办",
    "overdue": "超期三级督办",
    "hot_issue": "跨单位热点",
}
#: The thresholds the rules name.
MIN_RETURNS = 2
MIN_LEAD_CHANGES = 2
MIN_RETURNING_UNITS = 2
MIN_REOPENS = 2
TOP_ESCALATION = 3
MIN_HOT_ISSUE_UNITS = 2

#: The events that tell who asked to return a ticket and whether they were turned down.
_RETURN_ACTIONS = ("request_return", "decide_return", "designate", "apply_meeting_decision")
#: Ticket ids per look-up of their events and assignments (below every database's limit of
#: bound parameters).
_CHUNK = 10_000
#: Statuses a joint meeting's decision can be applied in (会议决定指定's from-states): the
#: only tickets listed, and the only ones ``dispatch.meetings`` puts on an agenda.
DECIDABLE = sorted(TRANSITIONS["apply_meeting_decision"].from_states, key=lambda s: s.value)


@dataclass(frozen=True)
class Finding:
    """One rule a ticket meets: its name, a Chinese sentence of the evidence, and the
    evidence as plain values (stored with a meeting's agenda item)."""

    rule: str
    text: str
    evidence: dict

    @property
    def label(self):
        return RULES.get(self.rule, self.rule)

    def as_dict(self):
        return {"rule": self.rule, "label": self.label, "text": self.text, **self.evidence}


@dataclass
class HardCase:
    ticket_id: int
    received_at: dt.datetime
    findings: list[Finding] = field(default_factory=list)
    #: The ticket, loaded for the page being shown only.
    ticket: Ticket | None = None

    @property
    def rules(self):
        return [f.rule for f in self.findings]


def _local(moment, tz):
    """The local day of ``moment`` in the timezone named ``tz``."""
    return f"{local_datetime(moment, tz):%Y-%m-%d}" if moment else "—"


class _Names:
    """Units' names by id, read once for all the evidence."""

    def __init__(self, session, ids):
        ids = {i for i in ids if i is not None}
        rows = session.execute(sa.select(Unit.id, Unit.code, Unit.name).where(Unit.id.in_(ids)))
        self.rows = {r.id: r for r in rows} if ids else {}

    def name(self, unit_id):
        row = self.rows.get(unit_id)
        return row.name if row else "（未知单位）"

    def code(self, unit_id):
        row = self.rows.get(unit_id)
        return row.code if row else None


def evaluate(session, now, *, tz, scope=None, ticket_ids=None):
    """Every ticket a meeting can act on (``DECIDABLE``) meeting at least one rule → its
    ``HardCase`` (findings in rule order), as a dict by ticket id. ``scope`` narrows the
    tickets (``access.scope_condition`` of a district's leader); ``ticket_ids`` looks at
    those tickets only (an agenda item).

    Measured: see the module's docstring (``bench/hard_cases.py``)."""
    where = [Ticket.status.in_(DECIDABLE)]
    if scope is not None:
        where.append(scope)
    if ticket_ids is not None:
        where.append(Ticket.id.in_(list(ticket_ids)))
    # Plain rows through the connection (no ORM result processing: thousands of rows); what
    # the session has not yet written is flushed first.
    session.flush()
    run = session.connection().execute
    base = run(
        sa.select(
            Ticket.id,
            Ticket.status,
            Ticket.received_at,
            Ticket.lead_history,
            Ticket.reopen_count,
            Ticket.escalation_level,
            Ticket.finish_due,
        ).where(
            *where,
            sa.or_(
                Ticket.lead_history,
                Ticket.reopen_count >= MIN_REOPENS,
                Ticket.escalation_level >= TOP_ESCALATION,
            ),
        )
    ).all()
    # Only the few tickets whose lead changed or was asked to return have return events and
    # earlier leads: read theirs by ticket id (the ``ticket_id`` indexes), never by a join
    # the planner might start from the events' or assignments' side.
    history = [t.id for t in base if t.lead_history]
    returns, leads = [], []
    for first in range(0, len(history), _CHUNK):
        ids = history[first : first + _CHUNK]
        returns += run(
            sa.select(
                TicketEvent.ticket_id,
                TicketEvent.action,
                TicketEvent.unit_id,
                TicketEvent.from_status,
                TicketEvent.payload,
                TicketEvent.created_at,
            )
            .where(TicketEvent.ticket_id.in_(ids), TicketEvent.action.in_(_RETURN_ACTIONS))
            .order_by(TicketEvent.ticket_id, TicketEvent.id)
        ).all()
        leads += run(
            sa.select(Assignment.ticket_id, Assignment.unit_id)
            .where(Assignment.ticket_id.in_(ids), Assignment.role == AssignmentRole.lead)
            .order_by(Assignment.ticket_id, Assignment.id)
        ).all()
    hot = _hot_issue_rows(run, scope, ticket_ids)

    unit_ids = {r.unit_id for r in returns} | {r.unit_id for r in leads}
    unit_ids |= {r.lead_unit_id for r in hot}
    names = _Names(session, unit_ids)

    cases = {}

    def case(ticket_id, received_at):
        if ticket_id not in cases:
            cases[ticket_id] = HardCase(ticket_id, received_at)
        return cases[ticket_id]

    returns_of = defaultdict(list)
    for r in returns:
        returns_of[r.ticket_id].append(r)
    leads_of = defaultdict(list)
    for r in leads:
        leads_of[r.ticket_id].append(r)

    for t in base:
        requests, rejected = _returns(returns_of[t.id], names)
        findings = [
            _returned(requests, names, tz),
            _disputed(requests, rejected, leads_of[t.id], names),
            _reopened(t),
            _overdue(t, now, tz),
        ]
        findings = [f for f in findings if f is not None]
        if findings:
            case(t.id, t.received_at).findings.extend(findings)

    for ticket_id, finding, received_at in _hot_issue_findings(hot, names):
        case(ticket_id, received_at).findings.append(finding)
    order = list(RULES)
    for c in cases.values():
        c.findings.sort(key=lambda f: order.index(f.rule))
    return cases


def _returned(requests, names, tz):
    if len(requests) < MIN_RETURNS:
        return None
    parts = [f"{names.name(r.unit_id)}（{_local(r.created_at, tz)}）" for r in requests]
    return Finding(
        "returned",
        f"退单申请 {len(requests)} 次：{'、'.join(parts)}",
        {
            "count": len(requests),
            "requests": [
                {"unit": names.code(r.unit_id), "at": r.created_at.isoformat()} for r in requests
            ],
        },
    )


def _returns(events, names):
    """(the return requests, the units whose request was turned down) of one ticket's
    events: 退单审核 rejecting it, or 指定 naming the unit that asked (a unit may ask again
    after a rejection, so the assignment keeps only its last request's fate)."""
    requests, rejected, asking = [], [], None
    for e in events:
        if e.action == "request_return":
            requests.append(e)
            asking = e.unit_id
        elif e.action == "decide_return" and e.payload.get("approved") is False:
            rejected.append(asking)
        elif (
            e.action in ("designate", "apply_meeting_decision")
            and e.from_status == TicketStatus.return_requested.value
            and e.payload.get("lead_unit") == names.code(asking)
        ):
            rejected.append(asking)
    return requests, rejected


def _disputed(requests, rejected, leads, names):
    sentences, evidence = [], {}
    if rejected:
        units = [names.name(u) for u in rejected]
        sentences.append(f"退单申请被驳回 {len(rejected)} 次（{'、'.join(units)}）")
        evidence["rejected_returns"] = [names.code(u) for u in rejected]
    sequence = []
    for a in leads:
        if not sequence or sequence[-1] != a.unit_id:
            sequence.append(a.unit_id)
    changes = len(sequence) - 1
    if changes >= MIN_LEAD_CHANGES:
        path = " → ".join(names.name(u) for u in sequence)
        sentences.append(f"主办单位变更 {changes} 次：{path}")
        evidence["lead_changes"] = changes
        evidence["leads"] = [names.code(u) for u in sequence]
    returning = list(dict.fromkeys(r.unit_id for r in requests))
    if len(returning) >= MIN_RETURNING_UNITS:
        sentences.append(
            f"{len(returning)} 个单位先后申请退单：{'、'.join(names.name(u) for u in returning)}"
        )
        evidence["returning_units"] = [names.code(u) for u in returning]
    if not sentences:
        return None
    return Finding("disputed", "；".join(sentences), evidence)


def _reopened(t):
    if t.reopen_count < MIN_REOPENS:
        return None
    return Finding("reopened", f"回访后重办 {t.reopen_count} 次", {"count": t.reopen_count})


def _overdue(t, now, tz):
    if t.escalation_level < TOP_ESCALATION or t.status not in IN_HANDLING:
        return None
    text = f"已升至第 {t.escalation_level} 级督办（市政府办公厅）"
    evidence = {"level": t.escalation_level, "finish_due": None}
    if t.finish_due is not None:
        days = max(0, (now - t.finish_due).days)
        text += f"，办结时限 {_local(t.finish_due, tz)}，已超期 {days} 天"
        evidence.update(finish_due=t.finish_due.isoformat(), overdue_days=days)
    return Finding("overdue", text, evidence)


def _hot_issue_rows(run, scope, ticket_ids):
    """The tickets a meeting can act on of the open hot issues (with their lead unit and
    whether they are asked for: in ``scope`` and ``ticket_ids``); the others of the issue
    count for nothing."""
    asked = sa.true()
    if scope is not None:
        asked = sa.and_(asked, scope)
    if ticket_ids is not None:
        asked = sa.and_(asked, Ticket.id.in_(list(ticket_ids)))
    query = (
        sa.select(
            HotIssueTicket.ticket_id,
            HotIssueTicket.hot_issue_id,
            HotIssue.title,
            Ticket.lead_unit_id,
            Ticket.received_at,
            asked.label("asked"),
        )
        .join(HotIssue, HotIssue.id == HotIssueTicket.hot_issue_id)
        .join(Ticket, Ticket.id == HotIssueTicket.ticket_id)
        .where(HotIssue.state == HotIssueState.open, Ticket.status.in_(DECIDABLE))
        .order_by(HotIssueTicket.hot_issue_id, Ticket.received_at, Ticket.id)
    )
    if ticket_ids is not None:
        mine = sa.select(HotIssueTicket.hot_issue_id).where(
            HotIssueTicket.ticket_id.in_(list(ticket_ids))
        )
        query = query.where(HotIssueTicket.hot_issue_id.in_(mine))
    return run(query).all()


def _hot_issue_findings(rows, names):
    by_issue = defaultdict(list)
    for r in rows:
        by_issue[r.hot_issue_id].append(r)
    for issue_id, tickets in by_issue.items():
        units = list(dict.fromkeys(r.lead_unit_id for r in tickets if r.lead_unit_id))
        if len(units) < MIN_HOT_ISSUE_UNITS:
            continue
        title = tickets[0].title
        text = (
            f"热点问题“{title}”在办 {len(tickets)} 件，由 {len(units)} 个单位主办："
            f"{'、'.join(names.name(u) for u in units)}"
        )
        evidence = {
            "hot_issue_id": issue_id,
            "title": title,
            "tickets": len(tickets),
            "units": [names.code(u) for u in units],
        }
        for r in tickets:
            if r.asked:
                yield r.ticket_id, Finding("hot_issue", text, evidence), r.received_at


def findings_of(session, ticket, now, *, tz):
    """The rules one ticket meets now (empty: not a hard case)."""
    found = evaluate(session, now, tz=tz, ticket_ids=[ticket.id]).get(ticket.id)
    return found.findings if found else []


@dataclass
class Listing:
    """One page of the hard-case list, with how many tickets meet each rule."""

    total: int
    cases: list[HardCase]
    counts: dict


def listing(session, now, page, *, tz, rules=(), scope=None):
    """The hard cases meeting any of ``rules`` (all rules if none), most rules met first,
    then the oldest; ``page`` of them with their tickets loaded."""
    cases = evaluate(session, now, tz=tz, scope=scope)
    counts = {rule: 0 for rule in RULES}
    for c in cases.values():
        for rule in c.rules:
            counts[rule] += 1
    chosen = [c for c in cases.values() if not rules or set(rules) & set(c.rules)]
    chosen.sort(key=lambda c: (-len(c.findings), c.received_at, c.ticket_id))
    shown = chosen[page.offset : page.offset + page.size]
    tickets = session.scalars(
        sa.select(Ticket)
        .where(Ticket.id.in_([c.ticket_id for c in shown]))
        .options(selectinload(Ticket.lead_unit), selectinload(Ticket.category))
    ).all()
    by_id = {t.id: t for t in tickets}
    for c in shown:
        c.ticket = by_id[c.ticket_id]
    return Listing(len(chosen), shown, counts)


def parse_rules(values):
    """The rule names asked for (a query's ``rule`` arguments), or a ValueError naming the
    unknown one."""
    rules = []
    for value in values:
        if value not in RULES:
            raise ValueError(value)
        if value not in rules:
            rules.append(value)
    return rules
