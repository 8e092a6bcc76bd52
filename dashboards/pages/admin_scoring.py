"""The ranking's settings page (系统管理 › 考核设置): the weights, 折算, minimum sample and
list size in force, with their Chinese labels and help, a form that changes them (applied
from the next computation; a frozen month keeps its own) and the history of changes from the
audit log. The rules are in ``dashboards.scoring``."""

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from dashboards import scoring
from hotline import web
from hotline.db import get_session
from hotline.enums import Role
from hotline.web import page_for


def create_blueprint():
    bp = Blueprint("admin_scoring", __name__, url_prefix="/admin", template_folder="templates")
    bp.add_url_rule("/scoring", view_func=scoring_page, methods=["GET", "POST"])
    web.add_to_admin(
        bp,
        "scoring_page",
        "考核设置",
        "月度排名的三率权重、折算比例、最少样本量和红黑榜人数",
    )
    return bp


def _render(typed=None, message=None, errors=None, status=200):
    db = get_session()
    return (
        render_template(
            "admin/scoring.html",
            items=scoring.describe(db),
            history=scoring.history(db),
            typed=typed or {},
            message=message,
            errors=errors or {},
        ),
        status,
    )


@page_for(Role.admin)
def scoring_page():
    if request.method == "GET":
        return _render()
    typed = {name: request.form.get(name, "") for name in scoring.names()}

    def refused(error):
        return _render(typed, error.message, error.details, error.status)

    done, changed = web.perform(lambda db: scoring.update(db, g.user, typed), refused=refused)
    if not done:
        return changed
    flash("考核设置已保存，自下一次计算起生效" if changed else "没有修改任何设置")
    return redirect(url_for("admin_scoring.scoring_page"))
