"""办结审核: which finished replies the hotline reviews before the citizen sees them, and
the reviewers' queue. The operations themselves (``finish`` deciding, ``approve_reply``,
``return_reply``) are in ``dispatch.operations``; this module holds the rules they read.

**The rule of a ticket** is its category's review rule (``ReviewRule``, one row per
category, set on 系统管理 › 办结审核设置), the most specific one along the category's path
(a rule on 城乡建设 covers its sub-categories unless one of them has its own), else the
city's default (settings ``review.default_mode``, default ``flagged``, and
``review.sample_percent``, default 20). Modes (``ReviewMode``):

======== ==================================================================
all      every reply is reviewed
sample   ``sample_percent`` % of replies, chosen by lot, and every flagged one
flagged  only replies the automatic check (``classifier.reply_quality``) flags
none     no reply is reviewed
======== ==================================================================

Whatever the mode, a reply resubmitted after a 审核退回 in the same round of handling is
reviewed again: the reviewer who sent it back sees whether it was mended.

**The lot is deterministic**: the SHA-256 of ``"<ticket id>:<finish round>"`` (the round is
how many times the ticket was finished before) taken modulo 100 and compared with the
percentage, so a retried finish decides exactly as the first try, and a ticket finished again
after a return or a 重办 draws anew.

**No unit's timer runs while a reply waits** (``dispatch.timers``): the unit has reported,
so its clocks stop at ``finished_at``; the callback clock starts at approval. The hotline's
own clock is the 审核时限 (setting ``review.limit_days``, default 1 working day — the SLA
calendar counts working days, and one day lets a reply sent in the evening be reviewed the
next morning while keeping the citizen's wait short): beyond it the 审核超时 timer reminds
the hotline centre's inbox, and the queue (oldest first) shows each wait and marks the late
ones. After a 审核退回 the unit's timers due during the review do not fire
(``timers.skip_until``): the delay was the reviewer's.

**The reply reaches the citizen** in the states ``REPLIED`` only, at ``replied_at`` (the
approval of a reviewed reply, else the finish): the portal, Open311, the operator's caller
history and the citizen's window to re-raise (``citizen.reopen_days``) all read these.
"""

import hashlib
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from dispatch import access, calendar, timers
from hotline import settings
from hotline.audit import audit_change
from hotline.db import utcnow
from hotline.enums import ReviewMode, Role, TicketStatus
from hotline.errors import Forbidden, ValidationFailed
from hotline.models import Category, ReviewRule, Ticket, TicketEvent

#: States in which the unit's reply (``ticket.result``) has reached the citizen: the one home
#: of that rule. A reply in 待审核, or sent back by a reviewer (the ticket is in handling
#: again with the reply kept for the unit to mend), is the hotline's and the unit's only:
#: nobody reads it to the citizen — not the portal, Open311, nor the operator on a call.
REPLIED = frozenset(
    {
        TicketStatus.resolved_at_intake,
        TicketStatus.finished,
        TicketStatus.called_back,
        TicketStatus.closed,
    }
)
#: What is said instead of a reply that has not reached the citizen.
PENDING_WORDS = "办理结果审核中"


def citizen_reply(ticket):
    """``ticket.result`` if the citizen may read it (``REPLIED``), else None."""
    return ticket.result if ticket.status in REPLIED else None


def replied_at(session, ticket):
    """When the current reply reached the citizen: the reviewer's approval when the reply
    was reviewed, else the unit's finish (``finished_at``); None while it has not. The
    citizen's window to re-raise online (``citizen.reopen_days``) counts from here, so a
    long review does not eat it."""
    if ticket.finished_at is None or ticket.status not in REPLIED:
        return None
    approved = session.scalar(
        sa.select(TicketEvent.created_at)
        .where(
            TicketEvent.ticket_id == ticket.id,
            TicketEvent.action == "approve_reply",
            TicketEvent.created_at >= ticket.finished_at,
        )
        .order_by(TicketEvent.created_at.desc())
        .limit(1)
    )
    return approved or ticket.finished_at


#: Who reviews replies and who sets the rules.
REVIEWERS = frozenset({Role.supervisor})
RULE_EDITORS = frozenset({Role.admin, Role.supervisor})


def _check_section(values):
    mode = values["review.default_mode"]
    if ReviewMode.parse(mode) is None:
        choices = "、".join(f"{m.value}（{m.label}）" for m in ReviewMode)
        message = f"默认审核方式须为 {choices} 之一"
        raise ValidationFailed(
            message, code="SETTINGS_INVALID", details={"review.default_mode": message}
        )


#: The city's defaults (``review.*``) as a settings section: its page and audit history.
SECTION = settings.Section(
    prefixes=("review.",),
    what="办结审核设置",
    editors=RULE_EDITORS,
    strip="review.",
    check=_check_section,
)


@dataclass(frozen=True)
class Rule:
    mode: ReviewMode
    sample_percent: int
    #: The category whose rule applies (None: the city's default).
    category: Category | None = None


@dataclass(frozen=True)
class Decision:
    review: bool
    rule: Rule
    #: Why it is reviewed: "all", "flagged", "sampled", "returned_before" (None: not).
    why: str | None

    def as_dict(self):
        return {
            "review": self.review,
            "review_mode": self.rule.mode.value,
            "review_rule": self.rule.category.code if self.rule.category else None,
            "review_why": self.why,
        }


def default_rule(session):
    values = settings.group(session, "review.")
    mode = ReviewMode.parse(values["default_mode"]) or ReviewMode.flagged
    return Rule(mode, values["sample_percent"])


def rule_for(session, category):
    """The rule that applies to a ticket of ``category`` (None: the default)."""
    if category is not None:
        prefixes = [category.code[:n] for n in range(2, len(category.code) + 1, 2)]
        found = session.execute(
            sa.select(ReviewRule, Category)
            .join(Category, Category.id == ReviewRule.category_id)
            .where(Category.code.in_(prefixes))
            .order_by(sa.func.length(Category.code).desc())
            .limit(1)
        ).first()
        if found is not None:
            row, owner = found
            default = default_rule(session)
            return Rule(row.mode, row.sample_percent or default.sample_percent, owner)
    return default_rule(session)


def finish_round(session, ticket):
    """How many times ``ticket`` was finished before (the lot's round)."""
    return session.scalar(
        sa.select(sa.func.count()).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.action == "finish"
        )
    )


def sampled(ticket_id, round_number, percent):
    """The deterministic lot: is this finish of this ticket among ``percent`` %?"""
    digest = hashlib.sha256(f"{ticket_id}:{round_number}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < percent


def _returns_query(what, ticket):
    """``what`` of the 审核退回 events of the ticket's current round of handling."""
    query = sa.select(what).where(
        TicketEvent.ticket_id == ticket.id, TicketEvent.action == "return_reply"
    )
    if ticket.clock_started_at is not None:
        query = query.where(TicketEvent.created_at >= ticket.clock_started_at)
    return query


def _returned_this_round(session, ticket):
    """Was a reply of the current round of handling sent back by a reviewer?"""
    return bool(session.scalar(_returns_query(sa.func.count(), ticket)))


def returns_this_round(session, ticket):
    """The 审核退回 events of the current round, oldest first (the reviewer deciding on a
    resubmitted reply reads why the earlier ones were sent back)."""
    query = _returns_query(TicketEvent, ticket).options(selectinload(TicketEvent.actor))
    return session.scalars(query.order_by(TicketEvent.created_at, TicketEvent.id)).all()


def decide(session, ticket, assessment):
    """Whether the reply just written to ``ticket`` goes to 待审核 (``Decision``)."""
    rule = rule_for(session, ticket.category)
    with session.no_autoflush:
        if _returned_this_round(session, ticket):
            return Decision(True, rule, "returned_before")
        if rule.mode == ReviewMode.all:
            return Decision(True, rule, "all")
        if rule.mode == ReviewMode.none:
            return Decision(False, rule, None)
        if assessment.poor:
            return Decision(True, rule, "flagged")
        if rule.mode == ReviewMode.sample and sampled(
            ticket.id, finish_round(session, ticket), rule.sample_percent
        ):
            return Decision(True, rule, "sampled")
    return Decision(False, rule, None)


#: Why a reply is reviewed, in Chinese (the queue shows it).
WHY_LABELS = {
    "all": "该类事项全部审核",
    "flagged": "自动检查疑似不合格",
    "sampled": "随机抽中",
    "returned_before": "曾被审核退回，重新提交",
}


# -- the rules per category ---------------------------------------------------------------------


def require_editor(actor):
    if actor.role not in RULE_EDITORS:
        raise Forbidden(
            "只有系统管理员和督办审核员可以修改办结审核设置",
            code="ROLE_NOT_ALLOWED",
            details={"role": actor.role.value},
        )


def rules(session):
    """Every category's own rule, by category code."""
    return session.execute(
        sa.select(ReviewRule, Category)
        .join(Category, Category.id == ReviewRule.category_id)
        .options(selectinload(ReviewRule.updated_by))
        .order_by(Category.code)
    ).all()


def _rule_values(row):
    if row is None:
        return None
    return {"mode": row.mode.value, "sample_percent": row.sample_percent}


def set_rule(session, actor, category, *, mode, sample_percent=None, now=None):
    """Give ``category`` its own review rule (``mode`` None: remove it, the category follows
    its parent's rule or the default). ``sample_percent`` is needed for ``sample`` only.
    Audited old → new; the caller commits. Returns the rule row (None when removed)."""
    require_editor(actor)
    now = now or utcnow()
    if category is None:
        raise ValidationFailed("请选择事项分类", details={"category": "请选择事项分类"})
    if mode == ReviewMode.sample:
        if not isinstance(sample_percent, int) or not 1 <= sample_percent <= 100:
            message = "抽样审核须填写 1–100 的抽样比例"
            raise ValidationFailed(message, details={"sample_percent": message})
    else:
        sample_percent = None
    row = session.scalars(
        sa.select(ReviewRule).where(ReviewRule.category_id == category.id)
    ).first()
    before = _rule_values(row)
    if mode is None:
        if row is not None:
            session.delete(row)
        row = None
    else:
        if row is None:
            row = ReviewRule(category_id=category.id, mode=mode)
            session.add(row)
        row.mode = mode
        row.sample_percent = sample_percent
        row.updated_by_id = actor.id
        row.updated_at = now
    audit_change(
        session,
        actor,
        "review_rule.update",
        target=category.code,
        before=before,
        after=_rule_values(row),
        extra={"category_name": category.name},
    )
    session.flush()
    return row


# -- the reviewers' queue -----------------------------------------------------------------------


def queue_query(actor, *, category=None, unit=None):
    """待审核 tickets ``actor`` may see, filtered by ``category`` (and its sub-categories) and
    the lead ``unit``; the caller orders (oldest report first)."""
    query = sa.select(Ticket).where(Ticket.status == TicketStatus.reviewing)
    if category is not None:
        query = query.join(Category, Category.id == Ticket.category_id).where(
            Category.code.startswith(category.code)
        )
    if unit is not None:
        query = query.where(Ticket.lead_unit_id == unit.id)
    return access.scoped(query, actor)


def queue(session, actor, page, *, category=None, unit=None):
    """(total, [(ticket, finish event)]) of one page of the queue, oldest report first."""
    query = queue_query(actor, category=category, unit=unit)
    total, tickets = page.of(
        session,
        query,
        Ticket.finished_at,
        Ticket.id,
        options=(
            selectinload(Ticket.category),
            selectinload(Ticket.lead_unit),
            selectinload(Ticket.area),
        ),
    )
    latest = {}
    if tickets:
        for event in session.scalars(
            sa.select(TicketEvent)
            .where(
                TicketEvent.ticket_id.in_([t.id for t in tickets]),
                TicketEvent.action == "finish",
            )
            .order_by(TicketEvent.created_at, TicketEvent.id)
        ):
            latest[event.ticket_id] = event  # the latest wins
    return total, [(t, latest.get(t.id)) for t in tickets]


def review_due(session, ticket, timezone):
    """When the reply waiting in ``ticket`` has used its 审核时限 (``review.limit_days``), or
    None (not finished); the 审核超时 timer fires then (``timers.review_due``)."""
    if ticket.finished_at is None:
        return None
    days = settings.get(session, "review.limit_days")
    return timers.review_due(calendar.load(session, timezone), ticket.finished_at, days)


def last_finish(session, ticket):
    """The ticket's latest finish event (its payload holds the automatic check)."""
    return session.scalars(
        sa.select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.action == "finish")
        .order_by(TicketEvent.created_at.desc(), TicketEvent.id.desc())
        .limit(1)
    ).first()


def last_return(session, ticket):
    """The latest 审核退回 of the current round of handling still to be answered (the
    ticket is back with the unit), or None."""
    if ticket.status not in (TicketStatus.signed, TicketStatus.contacted):
        return None
    query = _returns_query(TicketEvent, ticket)
    return session.scalars(
        query.order_by(TicketEvent.created_at.desc(), TicketEvent.id.desc()).limit(1)
    ).first()


def ticket_context(session, ticket):
    """What the ticket page shows of 办结审核: the 审核退回 the unit must answer (event or
    None), and for a reply in 待审核 its automatic check, why it is reviewed and the reasons
    earlier replies of this round were sent back for."""
    check, why, earlier = None, None, []
    if ticket.status == TicketStatus.reviewing:
        event = last_finish(session, ticket)
        payload = (event.payload or {}) if event is not None else {}
        check = payload.get("reply_quality")
        why = WHY_LABELS.get(payload.get("review_why"))
        earlier = returns_this_round(session, ticket)
    return {
        "returned": last_return(session, ticket),
        "check": check,
        "why": why,
        "earlier_returns": earlier,
    }
