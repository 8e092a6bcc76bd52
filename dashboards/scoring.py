"""The ranking's settings (考核设置) as administrators read and change them: the weights of the
composite score, the 折算 of 部分解决 and 基本满意, the minimum sample and the list size
(``hotline.settings``, keys ``ranking.*``, code defaults in its ``DEFINITIONS``).

A change applies from the next computation (every computation reads
``ranking.Settings.from_settings``; each process's settings cache follows the
``reference.SETTINGS`` counter); a month already frozen keeps the settings stored with its
snapshot. Every change is audited old → new by ``settings.update``; ``history`` reads those
rows back for the settings page.
"""

import sqlalchemy as sa

from dashboards import access
from dashboards.ranking import SETTINGS_PREFIX
from hotline import settings
from hotline.enums import Role
from hotline.errors import Forbidden, ValidationFailed
from hotline.models import AuditLog, User

#: Who changes the settings; the ranking's readers (``access.RANKING_ROLES``) may read them.
EDIT_ROLES = frozenset({Role.admin})
READ_ROLES = frozenset(access.RANKING_ROLES)
WEIGHTS = ("weight_response", "weight_resolution", "weight_satisfaction")
#: The settings' audit rows looked at for the history (newest first).
HISTORY_SCAN = 500


def require_editor(actor):
    if actor.role not in EDIT_ROLES:
        raise Forbidden(
            "只有系统管理员可以修改考核设置",
            code="ROLE_NOT_ALLOWED",
            details={"role": actor.role.value},
        )


def describe(session):
    """Every ranking setting: its name (without ``ranking.``), Chinese label, help, value in
    force, code default and bounds, in definition order."""
    return [
        {
            "name": definition.key.removeprefix(SETTINGS_PREFIX),
            "label": definition.label,
            "help": definition.help,
            "value": value,
            "default": definition.default,
            "minimum": definition.minimum,
            "maximum": definition.maximum,
        }
        for definition, value in settings.current(session)
        if definition.key.startswith(SETTINGS_PREFIX)
    ]


def names():
    return [
        key.removeprefix(SETTINGS_PREFIX)
        for key in settings.DEFINITIONS
        if key.startswith(SETTINGS_PREFIX)
    ]


def _check(values):
    """A composite score needs some weight."""
    if not any(values[SETTINGS_PREFIX + name] for name in WEIGHTS):
        labels = "、".join(settings.DEFINITIONS[SETTINGS_PREFIX + n].label for n in WEIGHTS)
        raise ValidationFailed(
            f"设置未保存：{labels}不能全部为 0，否则无法计算综合得分",
            code="RANKING_WEIGHTS_ZERO",
            details={name: "三项权重不能全部为 0" for name in WEIGHTS},
        )


def update(session, actor, raw_values):
    """Change some of the ranking's settings (``{name: value}``, names without
    ``ranking.``; text from a form or JSON values). Every value is checked before any is
    written; unknown names are refused. Audited; the caller commits. Returns ``{name: new
    value}`` of what changed."""
    require_editor(actor)
    known = set(names())
    unknown = [name for name in raw_values if name not in known]
    if unknown:
        raise ValidationFailed(
            f"没有这个考核设置项：{unknown[0]}",
            code="SETTINGS_INVALID",
            details={name: "没有这个设置项" for name in unknown},
        )
    try:
        changed = settings.update(
            session,
            actor,
            {SETTINGS_PREFIX + name: value for name, value in raw_values.items()},
            check=_check,
        )
    except ValidationFailed as exc:
        # The fields by the names the page and the API use.
        exc.details = {
            key.removeprefix(SETTINGS_PREFIX): why for key, why in (exc.details or {}).items()
        }
        raise
    return {key.removeprefix(SETTINGS_PREFIX): value for key, value in changed.items()}


def _order(key):
    """Changes are listed in the page's order of the settings."""
    keys = list(settings.DEFINITIONS)
    return (keys.index(key), key) if key in keys else (len(keys), key)


def history(session, limit=50):
    """The changes of the ranking's settings, newest first: [{at, by (name or None), by
    username, changes: [(label, old, new)]}] from the audit log."""
    rows = session.execute(
        sa.select(AuditLog, User.name, User.username)
        .outerjoin(User, User.id == AuditLog.actor_id)
        .where(AuditLog.action == "settings.update")
        .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
        .limit(HISTORY_SCAN)
    ).all()
    found = []
    for row, name, username in rows:
        changes = [
            (settings.DEFINITIONS[key].label if key in settings.DEFINITIONS else key, old, new)
            for key, (old, new) in sorted(
                (row.payload or {}).get("changes", {}).items(), key=lambda kv: _order(kv[0])
            )
            if key.startswith(SETTINGS_PREFIX)
        ]
        if changes:
            found.append(
                {"at": row.created_at, "by": name, "username": username, "changes": changes}
            )
        if len(found) >= limit:
            break
    return found
