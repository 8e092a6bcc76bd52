"""The 监察问责 settings page (系统管理 › 监察问责设置): the thresholds at which a unit's
month becomes a case of 推诿扯皮 or 弄虚作假 (``accountability.*``; the rules are in
``dashboards.accountability``), with a form that changes them and the history of changes.
Administrators change them (``settings.Section``: checked, audited); the 监察问责 page reads
them the next time it is opened. Referrals already made keep the evidence they froze."""

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from hotline import settings, web
from hotline.db import get_session
from hotline.enums import Role
from hotline.web import page_for

SECTION = settings.Section(
    prefixes=("accountability.",),
    what="监察问责设置",
    editors=frozenset({Role.admin}),
)


def create_blueprint():
    bp = Blueprint(
        "admin_accountability", __name__, url_prefix="/admin", template_folder="templates"
    )
    bp.add_url_rule("/accountability-settings", view_func=settings_page, methods=["GET", "POST"])
    web.add_to_admin(
        bp,
        "settings_page",
        "监察问责设置",
        "推诿扯皮、弄虚作假线索的发现阈值（退单、短时退单、报称解决与回访不符等）",
    )
    return bp


def _render(typed=None, message=None, errors=None, status=200):
    db = get_session()
    return (
        render_template(
            "admin/accountability_settings.html",
            items=SECTION.describe(db),
            history=SECTION.history(db),
            typed=typed or {},
            message=message,
            errors=errors or {},
        ),
        status,
    )


@page_for(Role.admin)
def settings_page():
    if request.method == "GET":
        return _render()
    typed = {name: request.form.get(name, "") for name in SECTION.names()}

    def refused(error):
        return _render(typed, error.message, error.details, error.status)

    done, changed = web.perform(lambda db: SECTION.update(db, g.user, typed), refused=refused)
    if not done:
        return changed
    flash("监察问责设置已保存，下次查看线索时按新阈值判断" if changed else "没有修改任何设置")
    return redirect(url_for("admin_accountability.settings_page"))
