"""Reference data for clients: areas, units, categories."""

import sqlalchemy as sa
from flask import request

from hotline.api import bp, ok
from hotline.db import get_session
from hotline.errors import NotFound
from hotline.models import Area, Category, Unit


def area_to_dict(area):
    return {"code": area.code, "name": area.name, "level": area.level.value}


@bp.get("/areas")
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


@bp.get("/units")
def list_units():
    db = get_session()
    units = db.scalars(sa.select(Unit).where(Unit.active).order_by(Unit.kind, Unit.code))
    return ok(
        [
            {"code": u.code, "name": u.name, "kind": u.kind.value, "always_on": u.always_on}
            for u in units
        ]
    )


@bp.get("/categories")
def list_categories():
    db = get_session()
    rows = db.scalars(sa.select(Category).where(Category.active).order_by(Category.code))
    return ok(
        [{"code": c.code, "name": c.name, "level": c.level, "utility": c.utility} for c in rows]
    )


def by_code(db, model, code, label):
    """The row of ``model`` with ``code``, or a 404 naming what was not found."""
    row = db.scalars(sa.select(model).where(model.code == code)).first()
    if row is None:
        raise NotFound(f"{label}不存在：{code}", code="REFERENCE_NOT_FOUND")
    return row
