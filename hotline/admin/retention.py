"""个人信息保护 in the administration: the retention period and the daily job's switch
(``retention.*`` settings, through ``web.settings_view``), the latest runs of the job
(``hotline.retention``) and a dry run on request showing what the job would redact now."""

from flask import Blueprint, current_app, flash, g, redirect, url_for

from hotline import retention, settings, web
from hotline.db import get_session, utcnow
from hotline.enums import Role
from hotline.web import page_for

#: A dry run from the page counts at most this many batches (a request must not take
#: minutes over a backlog of a million; the command counts everything).
PAGE_DRY_RUN_BATCHES = 20

SECTION = settings.Section(
    prefixes=("retention.",),
    strip="retention.",
    what="个人信息保护设置",
    editors=frozenset({Role.admin}),
)


def create_blueprint():
    bp = Blueprint("admin_retention", __name__, url_prefix="/admin")
    bp.add_url_rule("/retention", view_func=settings_page, methods=["GET", "POST"])
    bp.add_url_rule("/retention/dry-run", view_func=dry_run, methods=["POST"])
    web.add_to_admin(
        bp,
        "settings_page",
        "个人信息保护",
        "诉求人个人信息的保存期限、每日自动脱敏的运行记录和试运行报告",
    )
    return bp


def _runs(db):
    now = utcnow()
    return {
        "runs": retention.recent_runs(db),
        "kinds": retention.KINDS,
        "cutoff": retention.current_cutoff(db, now),
        "enabled": retention.enabled(db),
    }


settings_page = web.settings_view(
    SECTION,
    "admin/retention.html",
    "admin_retention.settings_page",
    "个人信息保护设置已保存，自下一次运行起生效",
    extra=_runs,
)


@page_for(Role.admin)
def dry_run():
    """试运行: count what the job would redact now; changes nothing but its run row. The
    run has its own session: the request's ends first (on SQLite its open read would keep
    the run's commit waiting)."""
    get_session().close()
    report = retention.run(
        current_app.extensions["hotline.db"],
        actor=g.user,
        dry_run=True,
        max_batches=PAGE_DRY_RUN_BATCHES,
    )
    more = "（只统计了最早的这些，到期的还有更多；完整报告请用 hotline retention run --dry-run）"
    flash(
        f"试运行完成：{report.tickets} 张工单的诉求人个人信息将被清除（未作任何修改）"
        + (more if report.capped else "")
    )
    return redirect(url_for("admin_retention.settings_page"))
