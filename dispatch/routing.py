"""The dispatch catalogue (派单目录): which unit handles a category in an area.

Rules on a category cover its descendants; a rule without an area covers the whole city. The
most specific category wins, then the most specific area.

``dispatch_unit`` is the one rule for *whom to dispatch to* when a program chooses (the
simulator's dispatcher, the demo's history, the dispatch suggestion of the API): the
classifier's unit, else the catalogue's, else the place's own street office or district
government (属地), and never the hotline centre, which takes calls but handles none
(``operations.dispatch`` refuses it).
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


def dispatch_unit(session, category, area, suggestion=None):
    """The unit a ticket of ``category`` at ``area`` is dispatched to, or None when nothing
    fits (no category, or no rule and no place).

    In order: the first unit the classifier's ``suggestion`` names, if the suggestion's top
    category is ``category`` (its units were routed for that category); the catalogue's unit;
    the territorial unit of ``area`` (its street office, else its district government). A
    unit that is inactive or is the hotline centre is passed over at every step: the catalogue
    may name the centre for matters about the hotline itself, which still need a real unit.
    """
    if category is None:
        return None
    for code in _suggested_codes(suggestion, category):
        unit = session.scalars(sa.select(Unit).where(Unit.code == code)).first()
        if _dispatchable(unit):
            return unit
    unit = catalogue_unit(session, category, area)
    if _dispatchable(unit):
        return unit
    if area is None:
        return None
    return territorial_unit(session, area)


def _suggested_codes(suggestion, category):
    if not suggestion:
        return []
    top = (suggestion.get("category") or {}).get("top") or []
    if not top or (suggestion.get("category") or {}).get("abstain"):
        return []
    if top[0].get("code") != category.code:
        return []
    return [u["code"] for u in suggestion.get("units") or [] if u.get("code")]


def _dispatchable(unit):
    return unit is not None and unit.active and unit.kind != UnitKind.hotline_centre


def territorial_unit(session, area):
    """The street office over ``area`` (a street or anything below it), else the district
    government over it; None above district level or when neither exists."""
    codes = [code for code in area.ancestor_codes() if len(code) >= 9]
    if codes:
        office = session.scalars(
            sa.select(Unit)
            .join(unit_areas, unit_areas.c.unit_id == Unit.id)
            .join(Area, unit_areas.c.area_id == Area.id)
            .where(Unit.kind == UnitKind.street_office, Area.code.in_(codes), Unit.active)
            .order_by(sa.func.length(Area.code).desc(), Unit.code)
        ).first()
        if office is not None:
            return office
    if len(area.code) < 6:
        return None
    return district_government_for(session, area)


def district_government_for(session, area):
    """The district government over ``area`` (for copying street dispatches, 抄送)."""
    district_code = area.code[:6]
    with session.no_autoflush:  # reference data: no pending change of an operation matters
        return session.scalars(
            sa.select(Unit)
            .join(unit_areas, unit_areas.c.unit_id == Unit.id)
            .join(Area, unit_areas.c.area_id == Area.id)
            .where(
                Unit.kind == UnitKind.district_government, Area.code == district_code, Unit.active
            )
        ).first()
