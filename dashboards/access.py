"""Who may watch which live board, read the monthly ranking and the 民情分析 reports.

Boards: the city board (room ``city``) and one per district (``district:<6-digit code>``).
Dispatchers, supervisors, leaders and administrators watch boards; a leader bound to a
district watches only that district's. The ranking is for leaders, supervisors and
administrators; a district leader drills down only into their own district's units, and
freezing (publishing) a month is for the mayor's office (a leader with no district) and
administrators.
"""

import re

from hotline.enums import Role

CITY = "city"
#: Roles that may watch a board; a leader bound to a district watches only that district.
BOARD_ROLES = frozenset({Role.dispatcher, Role.supervisor, Role.leader, Role.admin})
#: Roles that may read the ranking and the rates.
RANKING_ROLES = (Role.leader, Role.supervisor, Role.admin)

_DISTRICT_CODE = re.compile(r"^\d{6}$")


def district_room(code):
    return f"district:{code}"


def room_district(room):
    return None if room == CITY else room.removeprefix("district:")


def default_room(user):
    """A district leader's board is their district's; everyone else starts on the city's."""
    if user.role == Role.leader and user.district_id is not None:
        return district_room(user.district.code)
    return CITY


def may_watch(user, room):
    """Whether ``user`` may watch ``room`` (``city`` or ``district:<6 digits>``)."""
    if user is None or not user.is_authenticated or user.role not in BOARD_ROLES:
        return False
    district = room.removeprefix("district:") if room.startswith("district:") else None
    if room != CITY and (district is None or not _DISTRICT_CODE.match(district)):
        return False
    if user.role == Role.leader and user.district_id is not None:
        return district == user.district.code
    return True


def may_freeze(user):
    return user.role == Role.admin or (user.role == Role.leader and user.district_id is None)


def may_see_units(user, unit_districts, unit_ids):
    """A district leader sees only units inside their district; others see every unit.
    ``unit_districts`` maps unit ids to their district code (``ranking.unit_districts``)."""
    if user.role != Role.leader or user.district_id is None:
        return True
    return all(unit_districts.get(i) == user.district.code for i in unit_ids)


#: Roles that may read the 民情分析 reports; a leader bound to a district reads only their
#: district's report, live (published reports are the city's).
ANALYSIS_ROLES = (Role.leader, Role.supervisor, Role.admin)
#: Roles that may publish (freeze) a report: the hotline centre's supervisors, who prepare
#: it, and the city's leaders (a leader with no district), who receive it. Administrators
#: run the system, not its content.
ANALYSIS_PUBLISH_ROLES = (Role.supervisor, Role.leader)


def analysis_scope(user, requested):
    """The district code whose report ``user`` reads when asking for ``requested`` (a code, or
    None for the city's): a district leader always reads their own district's."""
    if user.role == Role.leader and user.district_id is not None:
        return user.district.code
    return requested or None


def may_publish_analysis(user):
    if user is None or user.role not in ANALYSIS_PUBLISH_ROLES:
        return False
    return user.role != Role.leader or user.district_id is None
