"""Reference data for clients: areas, units, categories."""

import sqlalchemy as sa
from flask import Blueprint, request

from hotline.api import ok
from hotline.db import get_session
from hotline.models import Area, Category, Unit
from hotline.schemas import by_code


def create_blueprint():
    bp = Blueprint("reference", __name__)
    bp.add_url_rule("/areas", view_func=list_areas)
    bp.add_url_rule("/units", view_func=list_units)
    bp.add_url_rule("/categories", view_func=list_categories)
    return bp


def area_to_dict(area):
    return {"code": area.code, "name": area.name, "level": area.level.value}


def list_areas():
    """Children of ``parent`` (a code), or the districts when no parent is given."""
    db = get_session()
    parent_code = request.args.get("parent")
    query = sa.select(Area).order_by(Area.code)
    if parent_code:
        parent = by_code(db, Area, parent_code, "区域")
        query = query.where(Area.parent_id == parent.id)
    else:
        query = query.where(Area.parent_id.is_(None))
    return ok([area_to_dict(a) for a in db.scalars(query)])


def list_units():
    db = get_session()
    units = db.scalars(sa.select(Unit).where(Unit.active).order_by(Unit.kind, Unit.code))
    return ok(
        [
            {"code": u.code, "name": u.name, "kind": u.kind.value, "always_on": u.always_on}
            for u in units
        ]
    )


def list_categories():
    db = get_session()
    rows = db.scalars(sa.select(Category).where(Category.active).order_by(Category.code))
    return ok(
        [{"code": c.code, "name": c.name, "level": c.level, "utility": c.utility} for c in rows]
    )
