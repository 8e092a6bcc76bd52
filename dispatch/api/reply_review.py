"""办结审核 in the JSON API (``dispatch.reply_review``).

- ``POST /tickets/<number>/reply-check`` {"result": "…"}: the automatic check of a reply
  while the handler types it ({poor, score, reasons}); nothing is stored.
- ``GET /reviews``: replies waiting for review (待审核), oldest report first; ``category``
  (with its sub-categories) and ``unit`` (the lead unit) filter, ``page`` / ``per_page``.
- ``GET /review-rules``: the city's default and every category's own rule;
  ``POST /review-rules`` {"category", "mode" (``all`` / ``sample`` / ``flagged`` / ``none``,
  or ``default`` to remove the category's rule), "sample_percent"}: set one (audited).

The decisions are the ticket transitions ``POST /tickets/<number>/approve-reply`` {note?,
version?} and ``…/return-reply`` {reason, version?} (``dispatch.api.tickets``).
"""

from flask import Blueprint, current_app, g, request

from dispatch import access, reply_review, review_schemas
from hotline import openapi
from hotline.api import commit, ok
from hotline.api.auth import require_role
from hotline.db import get_session, utcnow
from hotline.schemas import Fields, Page, check_query, json_body


def create_blueprint():
    bp = Blueprint("reply_review", __name__)
    bp.add_url_rule("/tickets/<number>/reply-check", view_func=reply_check, methods=["POST"])
    bp.add_url_rule("/reviews", view_func=review_queue)
    bp.add_url_rule("/review-rules", view_func=list_rules)
    bp.add_url_rule("/review-rules", view_func=set_rule, methods=["POST"])
    return bp


def reply_check(number):
    """The live check of a reply being written for ticket ``number``."""
    require_role(review_schemas.CHECKERS, "“{role}”角色无需检查答复")
    db = get_session()
    data = json_body()
    ticket = access.visible_ticket(db, g.user, number)
    return ok(review_schemas.check_reply(ticket, data).as_dict())


def review_queue():
    """待审核: replies waiting for a reviewer, oldest report first."""
    require_role(reply_review.REVIEWERS, "“{role}”角色无权查看办结审核队列")
    db = get_session()
    config = current_app.config
    errors = {}
    category, unit = review_schemas.queue_filters(db, request.args, errors)
    page = Page.from_args(
        request.args,
        size=config["DEFAULT_PAGE_SIZE"],
        size_arg="per_page",
        max_size=config["MAX_PAGE_SIZE"],
        errors=errors,
    )
    check_query(errors)
    now = utcnow()
    total, rows = reply_review.queue(db, g.user, page, category=category, unit=unit)
    tz = config["TIMEZONE"]
    items = [
        review_schemas.queue_item(t, e, g.user, now, reply_review.review_due(db, t, tz))
        for t, e in rows
    ]
    return ok({"items": items, **page.to_dict(total)})


def list_rules():
    require_role(reply_review.RULE_EDITORS, "“{role}”角色无权查看办结审核设置")
    db = get_session()
    default = reply_review.default_rule(db)
    return ok(
        {
            "default": {"mode": default.mode.value, "sample_percent": default.sample_percent},
            "rules": [
                review_schemas.rule_to_dict(row, category)
                for row, category in reply_review.rules(db)
            ],
        }
    )


@openapi.body(lambda data: review_schemas.rule_values(None, Fields(data)))
def set_rule():
    require_role(reply_review.RULE_EDITORS, "“{role}”角色无权修改办结审核设置")
    db = get_session()
    values = review_schemas.rule_values(db, Fields(json_body()))
    row = reply_review.set_rule(db, g.user, **values)
    commit()
    return ok(
        {
            "category": values["category"].code,
            "rule": review_schemas.rule_to_dict(row, values["category"]) if row else None,
        }
    )
