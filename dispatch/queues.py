"""The callback workbench's queues (回访工作台, DOMAIN.md §5), as the JSON API and the pages
list them: what the callback agents call next, and what the supervisors must decide after an
unhappy callback.

- the call queue: finished tickets (已办结) waiting for a call, in the order the workbench
  should call them (``callback_next_at``, set at finishing and moved on by each unanswered
  attempt); ``due_only`` keeps those callable now;
- the review queue: tickets called back unsolved or dissatisfied (已回访), oldest callback
  first, waiting for a supervisor to reopen (重办) or accept them (归档).

A call is recorded, and a review decided, through the ticket transitions; every rule lives in
``dispatch.operations``.
"""

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from dispatch import access
from hotline.enums import Role, TicketStatus
from hotline.models import CallbackAttempt, Ticket

#: Who works the callback queue (agents call; supervisors and admins watch it).
QUEUE_ROLES = frozenset({Role.callback_agent, Role.supervisor, Role.admin})
#: Who reads the review queue: supervisors decide, admins watch, agents may look.
REVIEW_ROLES = frozenset({Role.supervisor, Role.admin, Role.callback_agent})
#: What a queue's rows show of each ticket's relations.
_OPTIONS = (selectinload(Ticket.category), selectinload(Ticket.lead_unit))


def calls(db, actor, page, now, *, due_only=False):
    """(total, tickets of ``page``) waiting for a call, the next to call first."""
    query = sa.select(Ticket).where(
        Ticket.status == TicketStatus.finished, Ticket.callback_next_at.is_not(None)
    )
    if due_only:
        query = query.where(Ticket.callback_next_at <= now)
    query = access.scoped(query, actor)
    return page.of(db, query, Ticket.callback_next_at, Ticket.id, options=_OPTIONS)


def reviews(db, actor, page):
    """(total, tickets of ``page``) called back unhappy, the oldest callback first."""
    query = access.scoped(sa.select(Ticket).where(Ticket.status == TicketStatus.called_back), actor)
    return page.of(db, query, Ticket.callback_at, Ticket.id, options=_OPTIONS)


def attempts_of(db, tickets):
    """Ticket id → its callback attempts on the current result, oldest first."""
    attempts = {t.id: [] for t in tickets}
    if not attempts:
        return attempts
    rows = db.execute(
        sa.select(CallbackAttempt.ticket_id, CallbackAttempt.outcome, CallbackAttempt.attempted_at)
        .join(Ticket, Ticket.id == CallbackAttempt.ticket_id)
        .where(
            CallbackAttempt.ticket_id.in_(list(attempts)),
            # A reopened ticket's earlier calls don't count (as in dispatch.operations).
            sa.or_(
                Ticket.finished_at.is_(None),
                CallbackAttempt.attempted_at >= Ticket.finished_at,
            ),
        )
        .order_by(CallbackAttempt.ticket_id, CallbackAttempt.attempted_at, CallbackAttempt.id)
    )
    for row in rows:
        attempts[row.ticket_id].append(row)
    return attempts
