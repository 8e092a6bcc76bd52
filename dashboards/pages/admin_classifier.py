"""The 分类模型 settings page (系统管理 › 分类模型设置): how often the classifier retrains from
the centre's confirmed tickets, how recent weeks judge the candidate and how much worse it may
be (``classifier.retrain_days``, ``holdout_days``, ``tolerance``, ``min_training``,
``min_holdout``: ``dispatch.learning``), and when the model page warns of falling acceptance
(``classifier.drift_*``), with their Chinese labels and help, a form that changes them and the
history of changes from the audit log. Administrators change them (``settings.Section``:
checked, audited); the scheduler's retraining job and the model page read them on their next
run."""

from flask import Blueprint

from hotline import settings, web
from hotline.enums import Role

SECTION = settings.Section(
    prefixes=("classifier.",),
    what="分类模型设置",
    editors=frozenset({Role.admin}),
)


def create_blueprint():
    bp = Blueprint("admin_classifier", __name__, url_prefix="/admin", template_folder="templates")
    bp.add_url_rule("/classifier-settings", view_func=settings_page, methods=["GET", "POST"])
    web.add_to_admin(
        bp,
        "settings_page",
        "分类模型设置",
        "自动重新训练的间隔、评估期和允许下降幅度，采纳率下降预警的幅度",
    )
    return bp


settings_page = web.settings_view(
    SECTION,
    "admin/classifier_settings.html",
    "admin_classifier.settings_page",
    "分类模型设置已保存，自下一次训练和页面刷新起生效",
)
