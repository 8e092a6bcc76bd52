"""办结审核 pages (``dispatch.reply_review``).

- ``GET /reviews`` (督办审核员, menu 办结审核): replies waiting for review (待审核), oldest
  report first, filtered by category and lead unit (pickers by name); each shows the request,
  the reply, the automatic check's reasons, why it is reviewed, the unit, the deadline and a
  link to the photos, with the approve (审核通过, optional note) and return (审核退回, reason
  required) forms. ``POST /reviews/<number>/approve-reply|return-reply`` parses the form with
  the JSON API's parser (``dispatch.schemas.TRANSITION_FORMS``) and runs the operation with
  the page's ticket version; a refusal re-renders the queue with the message and what was
  typed.

The rules are set on 系统管理 › 办结审核设置 (``dispatch.pages.admin_review``).
"""

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)

from dispatch import access, reply_review, review_schemas, schemas
from dispatch.pages.desk import units_by_kind
from dispatch.pages.followup import Failure
from hotline import web
from hotline.db import get_session, utcnow
from hotline.errors import HotlineError
from hotline.schemas import Page, check_query
from hotline.web import page_for

#: The forms the queue posts (URL segment of ``schemas.TRANSITION_FORMS``).
ACTIONS = {"approve-reply": "审核通过", "return-reply": "审核退回"}
PAGE_SIZE = 20


def create_blueprint():
    bp = Blueprint("reply_review", __name__, template_folder="templates")
    bp.add_url_rule("/reviews", view_func=queue_page)
    bp.add_url_rule("/reviews/<number>/<slug>", view_func=queue_action, methods=["POST"])
    web.add_to_menu(bp, "queue_page", "办结审核", reply_review.REVIEWERS)
    return bp


# -- the reviewers' queue -----------------------------------------------------------------------


def _filters(db):
    errors = {}
    category, unit = review_schemas.queue_filters(db, request.args, errors)
    page = Page.from_args(request.args, size=PAGE_SIZE, errors=errors)
    check_query(errors)
    return category, unit, page


def _queue_page(failure=None):
    db = get_session()
    now = utcnow()
    try:
        category, unit, page = _filters(db)
    except HotlineError as exc:
        flash(exc.message, "error")
        return redirect(url_for("reply_review.queue_page"))
    total, rows = reply_review.queue(db, g.user, page, category=category, unit=unit)
    tz = current_app.config["TIMEZONE"]
    items = [
        review_schemas.queue_item(t, e, g.user, now, reply_review.review_due(db, t, tz))
        for t, e in rows
    ]
    shown = {t.number for t, _ in rows}
    html = render_template(
        "reply_review_queue.html",
        rows=list(zip([t for t, _ in rows], items, strict=True)),
        total=total,
        page=page.number,
        pages=page.count(total),
        category=category,
        unit=unit,
        units=units_by_kind(db),
        failure=failure,
        failed_elsewhere=failure is not None and failure.number not in shown,
        waited=_waited,
    )
    return html, failure.status if failure else 200


def _waited(seconds):
    if seconds is None:
        return "—"
    hours = seconds // 3600
    if hours >= 24:
        return f"{hours // 24} 天 {hours % 24} 小时"
    return f"{hours} 小时 {seconds % 3600 // 60} 分钟"


@page_for(*reply_review.REVIEWERS)
def queue_page():
    return _queue_page()


@page_for(*reply_review.REVIEWERS)
def queue_action(number, slug):
    if slug not in ACTIONS:
        abort(404)
    form = schemas.TRANSITION_FORMS[slug]

    def change(db):
        ticket = access.visible_ticket(db, g.user, number)
        values = schemas.parse_transition(db, g.user, form, request.form, page=True)
        form.operation(db, g.user, ticket, **values)

    def refused(error):
        typed = {k: v for k, v in request.form.items() if k not in ("csrf_token", "version")}
        return _queue_page(Failure(number, slug, error.message, error.status, typed))

    done, result = web.perform(change, refused=refused)
    if not done:
        return result
    if slug == "approve-reply":
        flash(f"工单 {number} 审核通过：办理结果已发送诉求人，进入回访", "notice")
    else:
        flash(f"工单 {number} 已退回承办单位修改", "notice")
    return redirect(
        url_for(
            "reply_review.queue_page",
            category=request.args.get("category") or None,
            unit=request.args.get("unit") or None,
        )
    )
