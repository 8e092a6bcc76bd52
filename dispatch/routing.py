"""The dispatch catalogue (派单目录): which unit handles a category in an area.

Rules on a category cover its descendants; a rule without an area covers the whole city. The
most specific category wins, then the most specific area.
"""

import sqlalchemy as sa

from hotline.enums import UnitKind
from hotline.models import Area, Category, RoutingRule, Unit, unit_areas


def catalogue_unit(session, category, area):
    """The unit the catalogue names for ``category`` at ``area`` (either may be None), or None."""
    if category is None:
        return None
    category_codes = category.ancestor_codes()
    area_codes = area.ancestor_codes() if area is not None else []
    area_filter = RoutingRule.area_id.is_(None)
    if area_codes:
        area_filter = sa.or_(area_filter, Area.code.in_(area_codes))
    rows = session.execute(
        sa.select(RoutingRule.unit_id, Category.code, Area.code)
        .join(Category, RoutingRule.category_id == Category.id)
        .outerjoin(Area, RoutingRule.area_id == Area.id)
        .join(Unit, RoutingRule.unit_id == Unit.id)
        .where(Category.code.in_(category_codes), area_filter, Unit.active)
    ).all()
    if not rows:
        return None
    unit_id, _, _ = max(rows, key=lambda r: (len(r[1]), len(r[2] or "")))
    return session.get(Unit, unit_id)


def district_government_for(session, area):
    """The district government over ``area`` (for copying street dispatches, 抄送)."""
    district_code = area.code[:6]
    return session.scalars(
        sa.select(Unit)
        .join(unit_areas, unit_areas.c.unit_id == Unit.id)
        .join(Area, unit_areas.c.area_id == Area.id)
        .where(Unit.kind == UnitKind.district_government, Area.code == district_code, Unit.active)
    ).first()
