"""What a citizen sees and does after submitting (市民端 · 我的诉求): their own tickets, each
ticket's public timeline and reply (统一回复), the online rating (一事一评) and the renewed
request when unhappy (不满意再次反映). Operations and read models; no Flask.

**Whose tickets.** A citizen proves a phone (``hotline.citizens``); they see the tickets whose
``requester_phone`` is that phone and nothing else. A ticket asked for by number that is not
theirs answers exactly as one that does not exist (``NOT_FOUND``), so numbers and phones
cannot be probed.

**The public timeline** (``timeline``) is written from the ticket's events through a
whitelist (``_PUBLIC``): each allowed event becomes a step in plain words — 已受理, 已派至
〈单位〉 (协办 named too), 办理中, 延期, 已办结 with the reply, 已评价 / 已回访, 再次反映,
重新办理, 已归档. Everything else (returns and the units that returned it, internal notes and
reasons, staff names and phones, supervision timers and 督办, exemptions, reclassification)
is left out by not being listed. A dispatch to a unit that later gave the ticket up (an
approved return, a 指定承办 or a deactivation that replaced it) is not shown at all: only
the last dispatch, to the unit that leads the ticket now.

**Rating online** is ``operations.record_callback`` with ``channel=online`` by the portal
account of the ticket's channel (portal-web for tickets that came by phone and others): it
closes the ticket or sends it to the supervisor's review exactly as a phone callback, counts
the same in the ranking, and — the ticket leaving 已办结 — drops it from the call queue.
**再次反映** is ``operations.rerequest`` (its rules are there).
"""

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa

from dispatch import cohandling, operations, reply_review
from hotline import settings
from hotline.config import DEFAULTS
from hotline.db import local_datetime
from hotline.enums import (
    CallbackChannel,
    CallbackOutcome,
    Channel,
    Satisfaction,
    Solved,
    TicketStatus,
    TransferTarget,
)
from hotline.errors import Conflict, NotFound
from hotline.models import CallbackAttempt, Ticket, TicketEvent, Unit
from hotline.users import PORTAL_ACCOUNTS, portal_account

S = TicketStatus

NOT_FOUND = "未找到该工单，请核对工单号和手机号"

#: A status in the citizen's words (internal steps such as a pending return read as the
#: step before them).
STATUS_WORDS = {
    S.received: "已受理",
    S.resolved_at_intake: "已答复",
    S.transferred: "已转交",
    S.merged: "已合并办理",
    S.dispatched: "已派单",
    S.return_requested: "已派单",
    S.signed: "办理中",
    S.contacted: "办理中",
    S.termination_requested: "办理中",
    # The unit has reported; the hotline reviews the reply before the citizen reads it.
    S.reviewing: "办理结果审核中",
    S.reopened: "重新办理中",
    S.terminated: "已终止办理",
    S.finished: "已办结，待评价",
    S.called_back: "复核中",
    S.closed: "已办结",
    S.split: "已分项办理",
}
#: States whose reply (``ticket.result``) the citizen may read (its home: ``reply_review``).
REPLIED = reply_review.REPLIED
#: Dispatch-like events: they name the unit that now leads the ticket.
_LEADS = {"dispatch", "designate", "apply_meeting_decision", "decide_return", "reassign"}


# -- the citizen's tickets ------------------------------------------------------------------


def tickets_of(session, phone, page):
    """(total, tickets of ``page``) filed with ``phone``, newest first."""
    query = sa.select(Ticket).where(Ticket.requester_phone == phone)
    return page.of(session, query, Ticket.received_at.desc(), Ticket.id.desc())


def find_own(session, phone, number):
    """The ticket ``number`` if it was filed with ``phone``; otherwise (no such ticket, or
    another phone's) the same ``NOT_FOUND``."""
    ticket = None
    if phone and isinstance(number, str) and 0 < len(number) <= 40:
        ticket = session.scalars(
            sa.select(Ticket).where(Ticket.number == number.strip().upper())
        ).first()
    if ticket is None or ticket.requester_phone != phone:
        raise NotFound(NOT_FOUND, code="TICKET_NOT_FOUND")
    return ticket


# -- the public timeline --------------------------------------------------------------------


@dataclass
class Step:
    """One step of the public timeline."""

    at: dt.datetime
    title: str
    detail: str = ""


@dataclass
class _Context:
    names: dict
    timezone: str
    #: Units that gave the ticket up (their dispatch is not shown).
    replaced: set = field(default_factory=set)
    signed: bool = False
    #: The reply waiting for review (shown when approved).
    reply: str | None = None


def _events(session, ticket):
    return session.scalars(
        sa.select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id)
        .order_by(TicketEvent.created_at, TicketEvent.id)
    ).all()


def _dispatches_kept(events, current_lead):
    """The ids of the dispatch-like events to show: the last one, naming the unit that leads
    the ticket now (with its assisting units). Earlier ones named units that were replaced
    (a return, a 指定承办, a deactivation) or that the last one repeats."""
    leading = [e for e in events if e.action in _LEADS and (e.payload or {}).get("lead_unit")]
    if leading and leading[-1].payload["lead_unit"] == current_lead:
        return {leading[-1].id}
    return set()


def timeline(session, ticket, timezone=DEFAULTS["TIMEZONE"]):
    """The ticket's steps in plain words, oldest first (``Step``s): only what ``_PUBLIC``
    lets through."""
    events = _events(session, ticket)
    codes = set()
    for e in events:
        p = e.payload or {}
        if e.action in _LEADS:
            codes.update(filter(None, [p.get("lead_unit"), *(p.get("assist_units") or [])]))
    names = dict(session.execute(sa.select(Unit.code, Unit.name).where(Unit.code.in_(codes))).all())
    current_lead = ticket.lead_unit.code if ticket.lead_unit else None
    kept = _dispatches_kept(events, current_lead)
    context = _Context(names=names, timezone=timezone)
    for e in events:
        p = e.payload or {}
        if e.action == "decide_return" and p.get("approved") and p.get("returning_unit"):
            context.replaced.add(p["returning_unit"])
    steps = []
    for e in events:
        teller = _PUBLIC.get(e.action)
        if teller is None:
            continue
        if e.action in _LEADS and e.id not in kept:
            continue
        step = teller(e, e.payload or {}, context)
        if step is not None:
            steps.append(Step(e.created_at, *step))
    return steps


def _receive(e, p, c):
    return ("已受理", "您的诉求已登记受理")


def _lead(e, p, c):
    if e.action == "decide_return" and not p.get("approved"):
        return None
    lead = p.get("lead_unit")
    if not lead:
        return None
    name = c.names.get(lead, "承办单位")
    assists = [
        c.names[u] for u in p.get("assist_units") or [] if u in c.names and u not in c.replaced
    ]
    detail = f"协办：{'、'.join(assists)}" if assists else ""
    c.signed = False
    return (f"已派至{name}", detail)


def _sign(e, p, c):
    lead_sign = (
        e.action == "accept"
        and p.get("signed")
        or (e.action == "sign" and p.get("role") != "assist")
    )
    if not lead_sign or c.signed:
        return None
    c.signed = True
    return ("办理中", "承办单位已签收，正在办理")


def _contact(e, p, c):
    return ("办理中", "承办单位已与您联系")


def _extension(e, p, c):
    if not p.get("approved") or not p.get("new_finish_due"):
        return None
    due = local_datetime(dt.datetime.fromisoformat(p["new_finish_due"]), c.timezone)
    return ("延期", f"经批准延期办理，办结期限调整为 {due:%Y-%m-%d %H:%M}")


def _finish(e, p, c):
    if p.get("review"):
        # 待审核: the reply is not the citizen's to read until a reviewer approves it.
        c.reply = e.reason or ""
        return ("办理结果审核中", "承办单位已报送办理结果，热线正在审核")
    return ("已办结", e.reason or "")


def _approve_reply(e, p, c):
    return ("已办结", c.reply or "")


def _return_reply(e, p, c):
    c.reply = None
    return ("办理中", "承办单位正在进一步办理")


def _resolve_at_intake(e, p, c):
    return ("已答复", e.reason or "")


def _transfer(e, p, c):
    target = TransferTarget.parse(p.get("target") or "")
    where = target.label if target is not None else "相关部门"
    return ("已转交", f"您反映的情况已转{where}处理")


def _merge(e, p, c):
    return ("已合并办理", "与相同诉求合并办理，办理结果将一并答复")


def _callback(e, p, c):
    if p.get("outcome") != CallbackOutcome.answered.value:
        return None
    solved = Solved.parse(p.get("solved") or "")
    satisfaction = Satisfaction.parse(p.get("satisfaction") or "")
    words = "，".join(x.label for x in (solved, satisfaction) if x is not None)
    online = p.get("channel") == CallbackChannel.online.value
    return ("已评价" if online else "已回访", words)


def _rerequest(e, p, c):
    return ("再次反映", e.reason or "")


def _reopen(e, p, c):
    c.signed = False
    return ("重新办理", "已交承办单位重新办理")


def _close(e, p, c):
    if p.get("closed") == "accepted_unhappy":
        return ("已归档", "经审核，维持办理结果")
    return None


def _review_termination(e, p, c):
    return ("已终止办理", "") if p.get("approved") else None


def _split(e, p, c):
    return ("分项办理", f"您反映的 {len(p.get('children') or [])} 件事项已分别登记，逐项办理")


def _close_split(e, p, c):
    return ("已办结", "各分项均已办理完毕")


#: The events a citizen may see, each told in plain words (anything else is not shown).
_PUBLIC = {
    "receive": _receive,
    "resolve_at_intake": _resolve_at_intake,
    "transfer": _transfer,
    "merge": _merge,
    "dispatch": _lead,
    "designate": _lead,
    "apply_meeting_decision": _lead,
    "decide_return": _lead,
    "reassign": _lead,
    "sign": _sign,
    "accept": _sign,
    "contact": _contact,
    "decide_extension": _extension,
    "finish": _finish,
    "approve_reply": _approve_reply,
    "return_reply": _return_reply,
    "record_callback": _callback,
    "rerequest": _rerequest,
    "reopen": _reopen,
    "close": _close,
    "review_termination": _review_termination,
    "split": _split,
    "close_split": _close_split,
}


# -- what the citizen may do ----------------------------------------------------------------


@dataclass
class Actions:
    can_rate: bool
    can_rerequest: bool
    #: Until when a renewed request is accepted (None: not finished).
    rerequest_until: dt.datetime | None
    #: Why a renewed request is not offered (shown instead of the form), or None.
    rerequest_note: str | None


def actions(session, ticket, now):
    """What the citizen may do with ``ticket`` now (the operations decide again on posting)."""
    days = settings.get(session, "citizen.reopen_days")
    replied = reply_review.replied_at(session, ticket)
    until = replied + dt.timedelta(days=days) if replied else None
    note = None
    can = ticket.status in (S.finished, S.closed) and until is not None
    if can and now > until:
        can, note = False, f"答复已超过 {days} 天，如问题仍未解决，请拨打 12345 热线重新反映"
    if can and _rerequested(session, ticket):
        can, note = False, "您已对本次办理结果再次反映过"
    if ticket.status == S.called_back:
        note = "您的意见已转督办审核，请等待处理"
    return Actions(ticket.status == S.finished, can, until if can else None, note)


def _rerequested(session, ticket):
    """Has the citizen re-raised the reply that reached them (``reply_review.replied_at``)?"""
    return bool(
        session.scalar(
            sa.select(sa.func.count()).where(
                TicketEvent.ticket_id == ticket.id,
                TicketEvent.action == "rerequest",
                TicketEvent.created_at >= reply_review.replied_at(session, ticket),
            )
        )
    )


def _actor(session, ticket):
    """The portal account that speaks for the citizen on ``ticket``."""
    channel = ticket.channel if ticket.channel in PORTAL_ACCOUNTS else Channel.web
    return portal_account(session, channel)


def rate_online(session, ticket, phone, *, solved, satisfaction, comment=None, now=None):
    """一事一评: the citizen who filed ``ticket`` with ``phone`` rates its result."""
    if ticket.requester_phone != phone:
        raise NotFound(NOT_FOUND, code="TICKET_NOT_FOUND")
    if ticket.status != S.finished:
        if ticket.callback_solved is not None or ticket.status in (S.called_back, S.closed):
            raise Conflict("该工单已评价或已归档，不能再评价", code="ALREADY_RATED")
        raise Conflict("工单办结后才能评价", code="NOT_FINISHED")
    return operations.record_callback(
        session,
        _actor(session, ticket),
        ticket,
        outcome=CallbackOutcome.answered,
        solved=solved,
        satisfaction=satisfaction,
        comment=comment,
        channel=CallbackChannel.online,
        now=now,
    )


def rerequest(session, ticket, phone, *, reason, now=None):
    """不满意再次反映 by the citizen who filed ``ticket`` with ``phone``."""
    if ticket.requester_phone != phone:
        raise NotFound(NOT_FOUND, code="TICKET_NOT_FOUND")
    if ticket.status == S.called_back:
        raise Conflict("您的意见已转督办审核，请等待处理", code="ALREADY_IN_REVIEW")
    if ticket.status not in (S.finished, S.closed):
        raise Conflict("工单办结后才能对结果再次反映", code="NOT_FINISHED")
    return operations.rerequest(session, _actor(session, ticket), ticket, reason=reason, now=now)


def last_rating(session, ticket):
    """The answered callback or online rating on the current result (None before one)."""
    if ticket.callback_solved is None:
        return None
    channel = session.scalar(
        sa.select(CallbackAttempt.channel)
        .where(
            CallbackAttempt.ticket_id == ticket.id,
            CallbackAttempt.outcome == CallbackOutcome.answered,
        )
        .order_by(CallbackAttempt.attempted_at.desc(), CallbackAttempt.id.desc())
        .limit(1)
    )
    return {
        "solved": ticket.callback_solved,
        "satisfaction": ticket.callback_satisfaction,
        "comment": ticket.callback_comment,
        "at": ticket.callback_at,
        "channel": channel,
    }


@dataclass
class TicketView:
    """One ticket as the citizen sees it (pages and the API render it)."""

    ticket: Ticket
    status: str
    reply: str | None
    steps: list
    actions: Actions
    rating: dict | None
    #: 拆单: the call this ticket is one matter of (its number), and the matters of a split
    #: call (``Part``), each with its own state and reply.
    parent: str | None = None
    parts: list = field(default_factory=list)


@dataclass
class Part:
    """One matter of a split call as the citizen sees it."""

    number: str
    title: str
    status: str
    reply: str | None


def view(session, ticket, now, timezone=DEFAULTS["TIMEZONE"]):
    return TicketView(
        ticket=ticket,
        status=STATUS_WORDS[ticket.status],
        reply=ticket.result if ticket.status in REPLIED else None,
        steps=timeline(session, ticket, timezone),
        actions=actions(session, ticket, now),
        rating=last_rating(session, ticket),
        parent=ticket.parent.number if ticket.parent else None,
        parts=[
            Part(
                t.number, t.title, STATUS_WORDS[t.status], t.result if t.status in REPLIED else None
            )
            for t in cohandling.children_of(session, ticket)
        ],
    )
