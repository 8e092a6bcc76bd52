"""The 监察问责 settings page (系统管理 › 监察问责设置): the thresholds at which a unit's
month becomes a case of 推诿扯皮 or 弄虚作假 (``accountability.*``; the rules are in
``dashboards.accountability``), with a form that changes them and the history of changes.
Administrators change them (``settings.Section``: checked, audited); the 监察问责 page reads
them the next time it is opened. Referrals already made keep the evidence they froze."""

from flask import Blueprint

from hotline import settings, web
from hotline.enums import Role

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


settings_page = web.settings_view(
    SECTION,
    "admin/accountability_settings.html",
    "admin_accountability.settings_page",
    "监察问责设置已保存，下次查看线索时按新阈值判断",
)
