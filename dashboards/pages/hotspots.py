"""The hot-issue pages (热点问题): the list for leaders, supervisors and dispatchers, with
filters by district, category (any level), period and state, hottest first; a page per hot
issue with its tickets, a timeline, the units involved and their results, and its heat
explained; supervisors' forms to merge, split, mark handled (or watch again) and rename.

A district leader sees the hot issues with a ticket in their district, and of each only
those tickets. What is shown and what is parsed is
``dashboards.hotspots``' (the JSON API's too); the decisions are its operations, run through
``web.perform`` so a refused one leaves nothing behind and shows its Chinese message.
"""

import sqlalchemy as sa
from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for

from dashboards import hotspots
from hotline import web
from hotline.db import get_session
from hotline.enums import AreaLevel, HotIssueState
from hotline.errors import HotlineError
from hotline.models import Area, Category
from hotline.schemas import Page
from hotline.web import page_for

PAGE_SIZE = 30
VIEW_ROLES = tuple(hotspots.VIEW_ROLES)


def create_blueprint():
    bp = Blueprint(
        "hotspots",
        __name__,
        template_folder="templates",
        static_folder="static",
        static_url_path="/hotspots/static",
    )
    bp.add_url_rule("/hotspots", view_func=list_page)
    bp.add_url_rule("/hotspots/<id:hot_id>", view_func=issue_page)
    bp.add_url_rule("/hotspots/<id:hot_id>/merge", view_func=merge, methods=["POST"])
    bp.add_url_rule("/hotspots/<id:hot_id>/split", view_func=split, methods=["POST"])
    bp.add_url_rule("/hotspots/<id:hot_id>/handle", view_func=handle, methods=["POST"])
    bp.add_url_rule("/hotspots/<id:hot_id>/reopen", view_func=reopen, methods=["POST"])
    bp.add_url_rule("/hotspots/<id:hot_id>/rename", view_func=rename, methods=["POST"])
    bp.register_error_handler(HotlineError, _refused)
    web.add_to_menu(bp, "list_page", "热点问题", VIEW_ROLES)
    return bp


def _timezone():
    return current_app.config["TIMEZONE"]


def _refused(exc):
    return render_template("hotspot_error.html", error=exc), exc.status


@page_for(*VIEW_ROLES)
def list_page():
    db = get_session()
    errors = {}
    filters = hotspots.parse_filters(request.args, g.user, timezone=_timezone(), errors=errors)
    page = Page.from_args(request.args, size=PAGE_SIZE, errors=errors)
    total, issues = 0, []
    if not errors:
        total, issues = hotspots.list_issues(db, g.user, filters, page)
    sizes = hotspots.period_sizes(db, issues, filters)
    rows = [hotspots.issue_to_dict(i, sizes.get(i.id)) for i in issues]
    return render_template(
        "hotspots.html",
        rows=rows,
        total=total,
        filters=filters,
        errors=errors,
        options=_options(db, g.user),
        states=hotspots.STATE_CHOICES,
        district_bound=hotspots.district_bound(g.user),
        page=page.number,
        pages=page.count(total),
        page_url=lambda n: url_for("hotspots.list_page", **filters.args(), page=n),
    ), (400 if errors else 200)


def _options(db, user):
    """The names the filters offer: districts and categories (whole paths), by code."""
    districts = db.execute(
        sa.select(Area.code, Area.name).where(Area.level == AreaLevel.district).order_by(Area.code)
    ).all()
    if hotspots.district_bound(user):
        districts = [d for d in districts if d.code == user.district.code]
    categories = db.execute(
        sa.select(Category.code, Category.name).where(Category.active).order_by(Category.code)
    ).all()
    names = {c.code: c.name for c in categories}
    paths = {}
    for code, name in names.items():
        parents = [names[code[:n]] for n in range(1, len(code)) if code[:n] in names]
        paths[code] = " › ".join([*parents, name])
    return {"district": dict(districts), "category": paths}


def _render_issue(hot_id, *, error=None, typed=None, status=200):
    db = get_session()
    found = hotspots.detail(db, g.user, hot_id, timezone=_timezone())
    issue = hotspots.get_issue(db, g.user, hot_id)
    may_decide = g.user.role in hotspots.DECIDE_ROLES
    return render_template(
        "hotspot.html",
        d=found,
        issue=found["issue"],
        may_decide=may_decide,
        targets=hotspots.merge_targets(db, g.user, issue) if may_decide else [],
        states=HotIssueState,
        error=error,
        typed=typed or {},
        chart={"days": found["timeline"]["days"], "moments": found["timeline"]["moments"]},
    ), status


@page_for(*VIEW_ROLES)
def issue_page(hot_id):
    return _render_issue(hot_id)


def _decide(hot_id, change, done):
    """Run a supervisor's decision from a form; on success go to ``done(result)``'s page
    with a message, on a refusal show this hot issue again with the reason and the text
    typed."""
    hotspots.require_decider(g.user)

    def refused(exc):
        return _render_issue(hot_id, error=exc, typed=request.form, status=exc.status)

    succeeded, result = web.perform(change, refused=refused)
    if not succeeded:
        return result
    target, message = done(result)
    flash(message, "notice")
    return redirect(url_for("hotspots.issue_page", hot_id=target))


@page_for(*VIEW_ROLES)
def merge(hot_id):
    def change(db):
        into = hotspots.id_of(request.form.get("into"), "into", "要并入的热点问题")
        return hotspots.merge(db, g.user, hot_id, into, request.form.get("reason"))

    return _decide(hot_id, change, lambda into: (into.id, f"已并入热点问题 #{into.id}"))


@page_for(*VIEW_ROLES)
def split(hot_id):
    def change(db):
        ids = hotspots.ticket_ids_of(request.form.getlist("tickets"))
        return hotspots.split(db, g.user, hot_id, ids, title=request.form.get("title"))

    return _decide(
        hot_id, change, lambda new: (new.id, f"已拆分为新的热点问题 #{new.id}（{new.size} 件）")
    )


@page_for(*VIEW_ROLES)
def handle(hot_id):
    def change(db):
        return hotspots.mark_handled(db, g.user, hot_id, request.form.get("note"))

    return _decide(hot_id, change, lambda issue: (issue.id, "已标记为已处理"))


@page_for(*VIEW_ROLES)
def reopen(hot_id):
    def change(db):
        return hotspots.reopen(db, g.user, hot_id, request.form.get("note"))

    return _decide(hot_id, change, lambda issue: (issue.id, "已恢复为关注中"))


@page_for(*VIEW_ROLES)
def rename(hot_id):
    def change(db):
        return hotspots.rename(db, g.user, hot_id, request.form.get("title"))

    return _decide(hot_id, change, lambda issue: (issue.id, "标题已修改"))
