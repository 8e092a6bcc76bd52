"""Deadlines from the SLA policy table (DOMAIN.md §4).

The most specific active policy row matching a ticket's category (or an ancestor), request
type and urgency applies. Units that work 24×7 count working days as calendar days.
"""

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa

from dispatch.states import IN_HANDLING
from hotline.enums import LimitUnit
from hotline.errors import Conflict
from hotline.models import Category, SlaPolicy, Ticket

CLOCKS = ("sign", "contact", "finish", "callback")


def overdue(now):
    """超期: a WHERE condition for tickets still with a unit after their finish deadline
    (extensions included) at ``now`` — the supervisors' list, the API filter and the boards."""
    return sa.and_(Ticket.status.in_(IN_HANDLING), Ticket.finish_due < now)


@dataclass
class Deadlines:
    policy: SlaPolicy
    due: dict = field(default_factory=dict)
    #: Years whose holidays nobody has published; their deadlines are Monday–Friday guesses.
    guessed_years: list = field(default_factory=list)


def find_policy(session, ticket):
    """The most specific active policy for the ticket, or a Conflict if none matches."""
    # Categories and policies are reference data no operation changes: reading them need not
    # flush the operation's half-made changes first.
    with session.no_autoflush:
        return _find_policy(session, ticket)


def _find_policy(session, ticket):
    category_ids = []
    if ticket.category_id is not None:
        category = ticket.category or session.get(Category, ticket.category_id)
        codes = category.ancestor_codes()
        rows = session.execute(
            sa.select(Category.id, Category.code).where(Category.code.in_(codes))
        ).all()
        depth_by_id = {row.id: len(row.code) for row in rows}
        category_ids = list(depth_by_id)
    else:
        depth_by_id = {}
    conditions = [SlaPolicy.category_id.is_(None)]
    if category_ids:
        conditions.append(SlaPolicy.category_id.in_(category_ids))
    candidates = session.scalars(
        sa.select(SlaPolicy).where(
            SlaPolicy.active,
            sa.or_(*conditions),
            sa.or_(SlaPolicy.request_type.is_(None), SlaPolicy.request_type == ticket.request_type),
            sa.or_(SlaPolicy.urgency.is_(None), SlaPolicy.urgency == ticket.urgency),
        )
    ).all()
    if not candidates:
        raise Conflict("没有适用于该工单的时限规则，请管理员配置时限表", code="SLA_POLICY_MISSING")

    def specificity(policy):
        return (
            policy.urgency is not None,
            depth_by_id.get(policy.category_id, 0),
            policy.request_type is not None,
            -policy.id,
        )

    return max(candidates, key=specificity)


def add_limit(start, amount, unit, *, always_on, calendar):
    """``start`` plus one limit; returns (moment, guessed years). Minutes and hours are
    clock time for every unit (signing is possible 24×7); working days are calendar days for
    units that work 24×7."""
    if unit == LimitUnit.minutes:
        return start + dt.timedelta(minutes=amount), []
    if unit == LimitUnit.hours:
        return start + dt.timedelta(hours=amount), []
    if always_on:
        return start + dt.timedelta(days=amount), []
    return calendar.add_working_days(start, amount)


def compute(session, ticket, start, *, always_on, calendar, clocks=CLOCKS[:3]):
    """Deadlines of the given clocks, counted from ``start``."""
    policy = find_policy(session, ticket)
    result = Deadlines(policy=policy)
    guessed = set()
    for clock in clocks:
        due, years = add_limit(
            start,
            getattr(policy, f"{clock}_amount"),
            getattr(policy, f"{clock}_unit"),
            always_on=always_on,
            calendar=calendar,
        )
        result.due[clock] = due
        guessed.update(years)
    result.guessed_years = sorted(guessed)
    return result
