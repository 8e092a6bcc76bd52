"""The callback workbench's queues in the JSON API (``dispatch.queues``).

- ``GET /callbacks``: finished tickets waiting for a call, the next to call first
  (``?due=1``: those callable now);
- ``GET /callbacks/reviews``: unhappy callbacks waiting for a supervisor.

A call is recorded, and a review decided, through the ticket transitions
(``POST /tickets/<number>/callback``, ``…/reopen``, ``…/close``).
"""

from flask import Blueprint, current_app, g, request

from dispatch import queues, schemas
from hotline.api import ok
from hotline.api.auth import require_role
from hotline.db import get_session, utcnow
from hotline.schemas import Page, check_query


def create_blueprint():
    bp = Blueprint("callbacks", __name__)
    bp.add_url_rule("/callbacks", view_func=callback_queue)
    bp.add_url_rule("/callbacks/reviews", view_func=review_queue)
    return bp


def _page(errors):
    config = current_app.config
    return Page.from_args(
        request.args,
        size=config["DEFAULT_PAGE_SIZE"],
        size_arg="per_page",
        max_size=config["MAX_PAGE_SIZE"],
        errors=errors,
    )


def callback_queue():
    """回访工作台: finished tickets waiting for a call, the next to call first."""
    require_role(queues.QUEUE_ROLES, "“{role}”角色无权查看回访工作台")
    db = get_session()
    errors = {}
    now = utcnow()
    due = request.args.get("due")
    if due not in (None, "0", "1"):
        errors["due"] = "取值应为 1 或 0"
    page = _page(errors)
    check_query(errors)
    total, rows = queues.calls(db, g.user, page, now, due_only=due == "1")
    attempts = queues.attempts_of(db, rows)
    items = [schemas.callback_queue_item(t, attempts[t.id], now, g.user) for t in rows]
    return ok({"items": items, **page.to_dict(total)})


def review_queue():
    """回访审核: unhappy callbacks (已回访) waiting for a supervisor, oldest callback first."""
    require_role(queues.REVIEW_ROLES, "“{role}”角色无权查看回访审核队列")
    db = get_session()
    errors = {}
    page = _page(errors)
    check_query(errors)
    total, rows = queues.reviews(db, g.user, page)
    attempts = queues.attempts_of(db, rows)
    items = [schemas.callback_review_item(t, attempts[t.id], g.user) for t in rows]
    return ok({"items": items, **page.to_dict(total)})
