"""The dashboards' pages: the live boards (实时大屏, city and district), the mayor's office
monthly report with its downloads, drill-down and the rates of any period, hot issues, early
warnings and the 民情分析 reports.

``district_choices`` is the district list every one of these pages offers its reader."""

import sqlalchemy as sa

from hotline.db import get_session
from hotline.enums import AreaLevel, Role
from hotline.models import Area


def district_choices(user):
    """(code, name) of the districts ``user`` may pick, by code; none for a district leader,
    who sees only their own."""
    if user.role == Role.leader and user.district_id is not None:
        return []
    return (
        get_session()
        .execute(
            sa.select(Area.code, Area.name)
            .where(Area.level == AreaLevel.district)
            .order_by(Area.code)
        )
        .all()
    )
