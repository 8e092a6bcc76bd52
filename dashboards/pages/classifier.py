"""分类模型: how well the classifier's suggestions serve the centre, and its versions.

Administrators and supervisors read: the acceptance of each suggested field week by week
(the last 12 weeks) and by category, the corrections operators make most, a drift warning
when a field's acceptance falls week over week (``hotline.acceptance``), the versions with
their figures and the retraining runs with the gate's decision (``dashboards.model_review``).
Administrators act: activate any version or roll back (each with a reason, through
``hotline.model_versions``, which audits) and 立即重新训练 (``dispatch.learning.request``).
Nothing about requesters is on this page.
"""

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for

from dashboards import model_review
from dispatch import learning
from hotline import acceptance, model_versions, suggestions, web
from hotline.db import get_session, utcnow
from hotline.enums import Role
from hotline.errors import HotlineError, ValidationFailed
from hotline.web import page_for

VIEW_ROLES = model_review.VIEW_ROLES


def create_blueprint():
    bp = Blueprint(
        "classifier_page",
        __name__,
        url_prefix="/reports/classifier",
        template_folder="templates",
        static_folder="static",
        static_url_path="/static",
    )
    bp.add_url_rule("", view_func=model_page)
    bp.add_url_rule("/activate", view_func=activate, methods=["POST"])
    bp.add_url_rule("/rollback", view_func=roll_back, methods=["POST"])
    bp.add_url_rule("/retrain", view_func=retrain, methods=["POST"])
    bp.register_error_handler(HotlineError, _refused)
    web.add_to_menu(bp, "model_page", "分类模型", VIEW_ROLES)
    return bp


def _refused(exc):
    return _render(error=exc, status=exc.status)


def _level():
    return 2 if request.args.get("level") == "2" else 1


def _render(*, error=None, typed=None, status=200):
    db = get_session()
    review = acceptance.review(db, utcnow(), current_app.config["TIMEZONE"], level=_level())
    runs = model_review.runs(db)
    # What this process serves: the database's active version, or before any activation
    # the models folder's (``model_versions.current``).
    active = model_versions.current(db, current_app.config["CLASSIFIER_MODELS_DIR"])
    html = render_template(
        "classifier.html",
        review=review,
        fields=acceptance.FIELDS,
        level=_level(),
        runs=runs,
        versions=model_review.versions(db, runs, active),
        switches=model_review.switches(db),
        active=active,
        may_act=g.user.role in model_review.ACT_ROLES,
        reason_max=model_versions.REASON_MAX,
        error=error,
        typed=typed or {},
    )
    return html, status


@page_for(*VIEW_ROLES)
def model_page():
    return _render()


def _reason():
    """The reason typed for a switch: required, in Chinese when missing."""
    reason = (request.form.get("reason") or "").strip()
    if not reason:
        raise ValidationFailed(
            "请填写切换原因（将记入操作日志）", details={"reason": "请填写切换原因"}
        )
    if len(reason) > model_versions.REASON_MAX:
        raise ValidationFailed(
            f"原因不能超过 {model_versions.REASON_MAX} 个字",
            details={"reason": "原因过长"},
        )
    return reason


def _switch(change, done_message):
    typed = {"version": request.form.get("version", ""), "reason": request.form.get("reason", "")}

    def refused(exc):
        return _render(error=exc, typed=typed, status=exc.status)

    done, result = web.perform(change, refused=refused)
    if not done:
        return result
    suggestions.service().active.recheck()
    flash(done_message(result))
    return redirect(url_for(".model_page"))


@page_for(Role.admin)
def activate():
    """启用 a version (any registered one), with the reason."""
    version = (request.form.get("version") or "").strip()

    def change(db):
        reason = _reason()
        return version, model_versions.activate(db, g.user, version, reason=reason)

    return _switch(change, lambda r: f"已启用模型版本 {r[0]}（此前为 {r[1] or '无'}）")


@page_for(Role.admin)
def roll_back():
    """回退 to the version active before the current one, with the reason."""

    def change(db):
        return model_versions.roll_back(db, g.user, reason=_reason())

    return _switch(change, lambda r: f"已回退到模型版本 {r[0]}（此前为 {r[1]}）")


@page_for(Role.admin)
def retrain():
    """立即重新训练: the scheduler runs it within minutes (one run at a time)."""

    def refused(exc):
        return _render(error=exc, status=exc.status)

    done, run = web.perform(lambda db: model_review.request_retrain(db, g.user), refused=refused)
    if not done:
        return run
    status = learning.STATUS_LABELS.get(run.status, run.status)
    flash(f"已提交重新训练（第 {run.id} 次，{status}），由后台任务依次执行，完成后结果显示在下方")
    return redirect(url_for(".model_page"))
