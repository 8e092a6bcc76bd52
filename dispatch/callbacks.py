"""The callback workbench (回访工作台, DOMAIN.md §5): what the callback agents call next, and
what the supervisors must decide after an unhappy callback.

- ``GET /callbacks``: finished tickets (已办结) waiting for a call, in the order the workbench
  should call them (``callback_next_at``, set at finishing and moved on by each unanswered
  attempt). ``?due=1`` keeps those callable now.
- ``GET /callbacks/reviews``: tickets called back unsolved or dissatisfied (已回访), oldest
  callback first, waiting for a supervisor to reopen (重办) or accept them (归档).

A call is recorded, and a review decided, through the ticket transitions
(``POST /tickets/<number>/callback``, ``…/reopen``, ``…/close``). Views read only; every rule
lives in ``dispatch.operations``.
"""

import sqlalchemy as sa
from flask import Blueprint, current_app, g, request
from sqlalchemy.orm import selectinload

from dispatch import access
from dispatch.api import coded, positive_int
from hotline.api import iso, labelled, ok
from hotline.api.auth import require_role
from hotline.db import get_session, utcnow
from hotline.enums import Role, TicketStatus
from hotline.errors import ValidationFailed
from hotline.models import CallbackAttempt, Ticket

bp = Blueprint("callbacks", __name__)

#: Who works the callback queue (agents call; supervisors and admins watch it).
QUEUE_ROLES = frozenset({Role.callback_agent, Role.supervisor, Role.admin})
#: Who reads the review queue: supervisors decide, admins watch, agents may look.
REVIEW_ROLES = frozenset({Role.supervisor, Role.admin, Role.callback_agent})


def _paging(args, errors):
    config = current_app.config
    page = positive_int(args, "page", 1, errors)
    per_page = positive_int(args, "per_page", config["DEFAULT_PAGE_SIZE"], errors)
    if per_page and per_page > config["MAX_PAGE_SIZE"]:
        errors["per_page"] = f"每页最多 {config['MAX_PAGE_SIZE']} 条"
    return page, per_page


def _check(errors):
    if errors:
        raise ValidationFailed(f"查询条件有误：{next(iter(errors.values()))}", details=errors)


def page_of(db, query, order, page, per_page):
    """(total, tickets of the page) of a ticket query, in ``order``."""
    condition = access.scope_condition(g.user)
    if condition is not None:
        query = query.where(condition)
    total = db.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    rows = db.scalars(
        query.options(selectinload(Ticket.category), selectinload(Ticket.lead_unit))
        .order_by(*order)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return total, rows


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


def _attempts_to_dict(rows):
    last = rows[-1] if rows else None
    return {
        "count": len(rows),
        "max": current_app.config["CALLBACK_MAX_ATTEMPTS"],
        "last_outcome": labelled(last.outcome) if last else None,
        "last_at": iso(last.attempted_at) if last else None,
    }


def _common(ticket, attempts):
    return {
        "number": ticket.number,
        "version": ticket.version,
        "status": labelled(ticket.status),
        "title": ticket.title,
        "category": coded(ticket.category),
        "lead_unit": coded(ticket.lead_unit),
        "result": ticket.result,
        "finished_at": iso(ticket.finished_at),
        "requester_name": ticket.requester_name,
        "requester_phone": access.visible_phone(g.user, ticket.requester_phone),
        "attempts": _attempts_to_dict(attempts),
    }


def queue_item(ticket, attempts, now):
    data = _common(ticket, attempts)
    data.update(
        {
            "callback_due": iso(ticket.callback_due),
            "callback_next_at": iso(ticket.callback_next_at),
            "due_now": ticket.callback_next_at is not None and ticket.callback_next_at <= now,
            "overdue": ticket.callback_due is not None and ticket.callback_due < now,
        }
    )
    return data


def review_item(ticket, attempts):
    data = _common(ticket, attempts)
    data.update(
        {
            "callback": {
                "solved": labelled(ticket.callback_solved),
                "satisfaction": labelled(ticket.callback_satisfaction),
                "comment": ticket.callback_comment,
                "at": iso(ticket.callback_at),
            },
            "reopen_count": ticket.reopen_count,
        }
    )
    return data


@bp.get("/callbacks")
def callback_queue():
    """回访工作台: finished tickets waiting for a call, the next to call first."""
    require_role(QUEUE_ROLES, "“{role}”角色无权查看回访工作台")
    db = get_session()
    args = request.args
    errors = {}
    now = utcnow()
    query = sa.select(Ticket).where(
        Ticket.status == TicketStatus.finished, Ticket.callback_next_at.is_not(None)
    )
    if args.get("due") == "1":
        query = query.where(Ticket.callback_next_at <= now)
    elif args.get("due") not in (None, "0"):
        errors["due"] = "取值应为 1 或 0"
    page, per_page = _paging(args, errors)
    _check(errors)
    total, rows = page_of(db, query, (Ticket.callback_next_at, Ticket.id), page, per_page)
    attempts = attempts_of(db, rows)
    return ok(
        {
            "items": [queue_item(t, attempts[t.id], now) for t in rows],
            "page": page,
            "per_page": per_page,
            "total": total,
        }
    )


@bp.get("/callbacks/reviews")
def review_queue():
    """回访审核: unhappy callbacks (已回访) waiting for a supervisor, oldest callback first."""
    require_role(REVIEW_ROLES, "“{role}”角色无权查看回访审核队列")
    db = get_session()
    errors = {}
    page, per_page = _paging(request.args, errors)
    _check(errors)
    query = sa.select(Ticket).where(Ticket.status == TicketStatus.called_back)
    total, rows = page_of(db, query, (Ticket.callback_at, Ticket.id), page, per_page)
    attempts = attempts_of(db, rows)
    return ok(
        {
            "items": [review_item(t, attempts[t.id]) for t in rows],
            "page": page,
            "per_page": per_page,
            "total": total,
        }
    )
