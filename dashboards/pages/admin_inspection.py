"""The 质检 settings page (系统管理 › 质检设置): how many of each operator's tickets a day
the sample takes (``inspection.daily_per_operator``) and the share that may take more
(``inspection.percent``), with a form that changes them and the history of changes.
Administrators change them (``settings.Section``: checked, audited); the sampler
(``dispatch.inspection``) reads them for the next day it samples. The page sits with the other
settings sections, whose form and history are one template here."""

from flask import Blueprint

from hotline import settings, web
from hotline.enums import Role

SECTION = settings.Section(
    prefixes=("inspection.",),
    what="质检设置",
    editors=frozenset({Role.admin}),
)


def create_blueprint():
    bp = Blueprint("admin_inspection", __name__, url_prefix="/admin", template_folder="templates")
    bp.add_url_rule("/inspection-settings", view_func=settings_page, methods=["GET", "POST"])
    web.add_to_admin(
        bp,
        "settings_page",
        "质检设置",
        "每天从每名话务员受理的工单中抽检的件数和比例",
    )
    return bp


settings_page = web.settings_view(
    SECTION,
    "admin/inspection_settings.html",
    "admin_inspection.settings_page",
    "质检设置已保存，自下一个抽检日起生效",
)
