"""系统管理 › 办结审核设置 (``GET|POST /admin/review-settings``; administrators and
supervisors): the city's default review mode and sample share (settings ``review.*``,
``dispatch.reply_review.SECTION``) and each category's own rule, chosen with the category
picker (``POST /admin/review-settings/rules``), every change checked and audited, with the
history of both."""

import sqlalchemy as sa
from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from dispatch import reply_review, review_schemas
from hotline import web
from hotline.db import get_session
from hotline.enums import ReviewMode, Role
from hotline.models import AuditLog, User
from hotline.schemas import Fields, form_values
from hotline.web import page_for

#: Changes to the categories' rules shown on the page.
RULE_HISTORY = 50


def create_blueprint():
    bp = Blueprint("admin_review", __name__, url_prefix="/admin", template_folder="templates")
    bp.add_url_rule("/review-settings", view_func=settings_page, methods=["GET", "POST"])
    bp.add_url_rule("/review-settings/rules", view_func=rule_action, methods=["POST"])
    web.add_to_admin(
        bp,
        "settings_page",
        "办结审核设置",
        "办结答复送达市民前由热线审核：默认审核方式、抽样比例和各类事项的审核方式",
        roles=reply_review.RULE_EDITORS - {Role.admin},
    )
    return bp


def _rule_history(db):
    rows = db.execute(
        sa.select(AuditLog, User.name)
        .outerjoin(User, User.id == AuditLog.actor_id)
        .where(AuditLog.action == "review_rule.update")
        .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
        .limit(RULE_HISTORY)
    ).all()
    return [(row, name) for row, name in rows]


def _mode_label(value):
    mode = ReviewMode.parse(value) if isinstance(value, str) else None
    return mode.label if mode else "按上级分类或默认"


def _render_settings(typed=None, message=None, errors=None, status=200, rule_failure=None):
    db = get_session()
    return (
        render_template(
            "admin/review_settings.html",
            items=reply_review.SECTION.describe(db),
            history=reply_review.SECTION.history(db),
            typed=typed or {},
            message=message,
            errors=errors or {},
            modes=list(ReviewMode),
            rules=reply_review.rules(db),
            rule_history=_rule_history(db),
            rule_failure=rule_failure,
            mode_label=_mode_label,
        ),
        status,
    )


@page_for(*reply_review.RULE_EDITORS)
def settings_page():
    if request.method == "GET":
        return _render_settings()
    section = reply_review.SECTION
    typed = {name: request.form.get(name, "") for name in section.names()}

    def refused(error):
        return _render_settings(typed, error.message, error.details, error.status)

    done, changed = web.perform(lambda db: section.update(db, g.user, typed), refused=refused)
    if not done:
        return changed
    flash("办结审核设置已保存，自下一次办结起生效" if changed else "没有修改任何设置")
    return redirect(url_for("admin_review.settings_page"))


@page_for(*reply_review.RULE_EDITORS)
def rule_action():
    data = form_values(request.form, integers={"sample_percent"})

    def change(db):
        values = review_schemas.rule_values(db, Fields(data))
        reply_review.set_rule(db, g.user, **values)
        return values

    def refused(error):
        failure = {"message": error.message, "typed": dict(request.form)}
        return _render_settings(status=error.status, rule_failure=failure)

    done, values = web.perform(change, refused=refused)
    if not done:
        return values
    name = values["category"].name
    if values["mode"] is None:
        flash(f"“{name}”已改为按上级分类或默认方式审核")
    else:
        flash(f"“{name}”的审核方式已设为：{values['mode'].label}")
    return redirect(url_for("admin_review.settings_page", _anchor="rules"))
