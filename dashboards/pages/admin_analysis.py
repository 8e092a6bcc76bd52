"""The 民情分析 settings page (系统管理 › 民情分析设置): how hot issues are grouped
(``hotspot.*``: the window, the tickets a hot issue needs) and when an early warning is raised
(``warning.*``: the surge's hours, baseline weeks, minimum count, ratio and significance; the
sudden event's count and minutes; the cooldown), with their Chinese labels and help, a form
that changes them and the history of changes from the audit log. Administrators change them
(``settings.Section``: checked, audited); the grouper (``dashboards.hotspots``) and the scan
(``dashboards.warnings``) read them on their next run."""

from flask import Blueprint

from hotline import settings, web
from hotline.enums import Role

SECTION = settings.Section(
    prefixes=("hotspot.", "warning."),
    what="民情分析设置",
    editors=frozenset({Role.admin}),
)


def create_blueprint():
    bp = Blueprint("admin_analysis", __name__, url_prefix="/admin", template_folder="templates")
    bp.add_url_rule("/analysis-settings", view_func=settings_page, methods=["GET", "POST"])
    web.add_to_admin(
        bp,
        "settings_page",
        "民情分析设置",
        "热点问题的归并时间窗和最少工单数，诉求激增与突发事件预警的触发条件",
    )
    return bp


settings_page = web.settings_view(
    SECTION,
    "admin/analysis_settings.html",
    "admin_analysis.settings_page",
    "民情分析设置已保存，自下一次归并和扫描起生效",
)
