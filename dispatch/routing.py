"""The dispatch catalogue (派单目录): which unit handles a category in an area.

Rules on a category cover its descendants; a rule without an area covers the whole city. The
most specific category wins, then the most specific area. Only rules in force on the day asked
(by default the city's local today) count, and only those of active units; between two rules of
one category and area in force on the same day (a conflict the catalogue flags), the later
start decides (``hotline.models.rules.precedence``). ``dispatch.catalogue`` administers the
rules and explains a decision (``candidate_rules`` is the chain it shows).

``dispatch_unit`` is the one rule for *whom to dispatch to* when a program chooses (the
simulator's dispatcher, the demo's history, the dispatch suggestion of the API): the
classifier's unit, else the catalogue's, else the place's own street office or district
government (属地), and never the hotline centre, which takes calls but handles none
(``operations.dispatch`` refuses it).
"""

import sqlalchemy as sa
from flask import current_app

from hotline.config import DEFAULTS
from hotline.db import local_today
from hotline.enums import UnitKind
from hotline.models import Area, Category, RoutingRule, Unit, unit_areas
from hotline.models.rules import precedence


def today():
    """The city's local date: the day the catalogue is read for."""
    config = current_app.config if current_app else DEFAULTS
    return local_today(config["TIMEZONE"])


def candidate_rules(session, category, area, day=None):
    """The rules that could decide ``category`` at ``area`` on ``day`` (default: today),
    the deciding one first: rules on the category or an ancestor, on the area, an ancestor or
    the whole city, in force that day, of active units; most specific category first, then
    most specific area, then ``precedence``."""
    if category is None:
        return []
    day = day or today()
    category_codes = category.ancestor_codes()
    area_codes = area.ancestor_codes() if area is not None else []
    area_filter = RoutingRule.area_id.is_(None)
    if area_codes:
        area_filter = sa.or_(area_filter, Area.code.in_(area_codes))
    rows = session.execute(
        sa.select(RoutingRule, Category.code, Area.code)
        .join(Category, RoutingRule.category_id == Category.id)
        .outerjoin(Area, RoutingRule.area_id == Area.id)
        .join(Unit, RoutingRule.unit_id == Unit.id)
        .where(
            Category.code.in_(category_codes),
            area_filter,
            Unit.active,
            RoutingRule.in_force_on(day),
        )
    ).all()
    rows.sort(
        key=lambda r: (len(r[1]), len(r[2] or ""), precedence(r[0].valid_from, r[0].id)),
        reverse=True,
    )
    return [rule for rule, _, _ in rows]


def catalogue_unit(session, category, area, day=None):
    """The unit the catalogue names for ``category`` at ``area`` (either may be None) on
    ``day`` (default: the city's local today), or None."""
    rules = candidate_rules(session, category, area, day)
    return rules[0].unit if rules else None


def dispatch_unit(session, category, area, suggestion=None, day=None):
    """The unit a ticket of ``category`` at ``area`` is dispatched to, or None when nothing
    fits (no category, or no rule and no place).

    In order: the first unit the classifier's ``suggestion`` names, if the suggestion's top
    category is ``category`` (its units were routed for that category); the catalogue's unit;
    the territorial unit of ``area`` (its street office, else its district government). A
    unit that is inactive or is the hotline centre is passed over at every step: the catalogue
    may name the centre for matters about the hotline itself, which still need a real unit.
    ``day``: the local date whose catalogue counts (default today; the demo's history passes
    the day it is dispatching on).
    """
    if category is None:
        return None
    for code in _suggested_codes(suggestion, category):
        unit = session.scalars(sa.select(Unit).where(Unit.code == code)).first()
        if _dispatchable(unit):
            return unit
    unit = catalogue_unit(session, category, area, day)
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
