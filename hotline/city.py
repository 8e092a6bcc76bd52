"""The city this deployment serves (城市设置): its name, the prefix of its ticket numbers and the
centre of its maps, as audited settings (``hotline.settings``, group 城市) so that onboarding
another city changes data, not code.

Who reads them: address matching (the gazetteer knows the city's names, ``names``), ticket
numbering (``ticket_prefix``), the pages (``template_values``: position placeholders, the
onboarding page).

The ticket prefix used to be the configuration key ``TICKET_NUMBER_PREFIX``. The key stays as
the setting's stand-in: until an administrator sets the prefix, a deployment's configured
prefix is used (so an instance file with ``TICKET_NUMBER_PREFIX = "QD"`` keeps numbering QD…).
"""

import re

from hotline import settings
from hotline.config import DEFAULTS
from hotline.errors import ValidationFailed

NAME = "city.name"
TICKET_PREFIX = "city.ticket_prefix"
MAP_CENTER = "city.map_center"
KEYS = (NAME, TICKET_PREFIX, MAP_CENTER)

#: Ticket numbers are found by this shape (``dispatch/filters.py``): 1–8 capital letters.
PREFIX_PATTERN = re.compile(r"^[A-Z]{1,8}$")
#: Endings dropped to get the short name people say (北京市 → 北京, 大兴安岭地区 → 大兴安岭).
_SHORT_SUFFIXES = ("特别行政区", "自治州", "地区", "市", "盟")

#: Province-level cities (直辖市): their districts sit under a "市辖区" city code (1101 …), so
#: the whole province is the city.
MUNICIPALITIES = {"11": "北京市", "12": "天津市", "31": "上海市", "50": "重庆市"}


def name(session):
    return settings.get(session, NAME)


def short_name(full):
    """北京市 → 北京; a name without a known ending is its own short form."""
    for suffix in _SHORT_SUFFIXES:
        if full.endswith(suffix) and len(full) - len(suffix) >= 2:
            return full[: -len(suffix)]
    return full


def names(session):
    """The city's names for address matching: full and short (北京市, 北京)."""
    full = name(session)
    short = short_name(full)
    return (full, short) if short != full else (full,)


def ticket_prefix(session, config=DEFAULTS):
    """The prefix of new ticket numbers: the setting once an administrator set it, else the
    deployment's ``TICKET_NUMBER_PREFIX``."""
    value = settings.get(session, TICKET_PREFIX)
    configured = config.get("TICKET_NUMBER_PREFIX")
    if value == settings.DEFINITIONS[TICKET_PREFIX].default and configured:
        return configured
    return value


def map_center(session):
    """[lng, lat] of the city's centre."""
    return list(settings.get(session, MAP_CENTER))


def template_values(session, config=DEFAULTS):
    return {
        "name": name(session),
        "ticket_prefix": ticket_prefix(session, config),
        "map_center": map_center(session),
    }


def _check(values):
    prefix = values.get(TICKET_PREFIX)
    if prefix is not None and not PREFIX_PATTERN.match(prefix):
        raise ValidationFailed(
            "设置未保存：工单编号前缀须为 1–8 个大写英文字母（如 WF、BJ）",
            code="SETTINGS_INVALID",
            details={TICKET_PREFIX: "须为 1–8 个大写英文字母"},
        )


def update(session, actor, raw_values):
    """Change the city's settings (only those keys); audited old → new, the caller commits.
    A prefix typed in lower case is taken in capitals."""
    unknown = sorted(set(raw_values) - set(KEYS))
    if unknown:
        raise ValidationFailed(
            "设置未保存：没有这个城市设置项",
            code="SETTINGS_INVALID",
            details={k: "未知" for k in unknown},
        )
    values = dict(raw_values)
    if isinstance(values.get(TICKET_PREFIX), str):
        values[TICKET_PREFIX] = values[TICKET_PREFIX].strip().upper()
    return settings.update(session, actor, values, check=_check)
