"""The ranking's settings (考核设置) as administrators read and change them: the weights of the
composite score, the 折算 of 部分解决 and 基本满意, the minimum sample and the list size
(``hotline.settings``, keys ``ranking.*``, code defaults in its ``DEFINITIONS``).

A change applies from the next computation (every computation reads
``ranking.Settings.from_settings``; each process's settings cache follows the
``reference.SETTINGS`` counter); a month already frozen keeps the settings stored with its
snapshot. Every change is audited old → new by ``settings.update``; ``history`` reads those
rows back for the settings page.
"""

from dashboards import access
from dashboards.ranking import SETTINGS_PREFIX
from hotline import settings
from hotline.enums import Role
from hotline.errors import ValidationFailed

#: Who changes the settings; the ranking's readers (``access.RANKING_ROLES``) may read them.
EDIT_ROLES = frozenset({Role.admin})
READ_ROLES = frozenset(access.RANKING_ROLES)
WEIGHTS = ("weight_response", "weight_resolution", "weight_satisfaction")


def _check(values):
    """A composite score needs some weight."""
    if not any(values[SETTINGS_PREFIX + name] for name in WEIGHTS):
        labels = "、".join(settings.DEFINITIONS[SETTINGS_PREFIX + n].label for n in WEIGHTS)
        raise ValidationFailed(
            f"设置未保存：{labels}不能全部为 0，否则无法计算综合得分",
            code="RANKING_WEIGHTS_ZERO",
            details={name: "三项权重不能全部为 0" for name in WEIGHTS},
        )


#: The ranking's settings, named without ``ranking.`` on the page and in the API.
SECTION = settings.Section(
    prefixes=(SETTINGS_PREFIX,),
    what="考核设置",
    editors=EDIT_ROLES,
    strip=SETTINGS_PREFIX,
    check=_check,
)
require_editor = SECTION.require_editor
describe = SECTION.describe
names = SECTION.names
update = SECTION.update
history = SECTION.history
