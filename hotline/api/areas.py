"""The area tree in the administration's JSON API (``hotline.areas`` holds the rules).

- ``GET /admin/areas?parent=CODE`` the areas under ``parent`` (the districts without it),
  ``?q=TEXT`` those whose name, alias or code matches;
- ``GET /admin/areas/<code>`` one area with its path, children and boundary (GeoJSON);
- ``PATCH /admin/areas/<code>`` ``{"name", "aliases"}``;
- ``PUT /admin/areas/<code>/polygon`` a GeoJSON document as the body (a Feature, a
  FeatureCollection of one feature, a Polygon/MultiPolygon; or a FeatureCollection whose
  features carry ``properties.code``, replacing each of those areas' boundaries at once);
- ``POST /admin/areas`` ``{"parent", "name", "aliases", "code"}`` adds a community under a
  street or a grid under a community.

Administrators only. The reference list every client reads stays ``GET /api/v1/areas``.
"""

from flask import Blueprint, g, request

from hotline import areas, openapi
from hotline.api import commit, ok
from hotline.api.auth import require_role
from hotline.db import get_session
from hotline.schemas import Fields, json_body


def create_blueprint():
    bp = Blueprint("admin_areas", __name__, url_prefix="/admin/areas")
    bp.add_url_rule("", view_func=list_areas)
    bp.add_url_rule("", view_func=add_area, methods=["POST"])
    bp.add_url_rule("/<code>", view_func=get_area)
    bp.add_url_rule("/<code>", view_func=update_area, methods=["PATCH"])
    bp.add_url_rule("/<code>/polygon", view_func=replace_polygon, methods=["PUT"])
    return bp


def _require_admin():
    require_role(areas.EDIT_ROLES, "“{role}”角色无权管理区划与网格", code="AREA_EDIT_FORBIDDEN")


def _described(db, rows):
    counts = areas.child_counts(db, rows)
    return [areas.describe(a, child_count=counts.get(a.id, 0)) for a in rows]


def list_areas():
    _require_admin()
    db = get_session()
    text = request.args.get("q", "").strip()
    if text:
        found, more = areas.search(db, text, limit=200)
        return ok({"items": _described(db, found), "more": more})
    code = request.args.get("parent", "").strip()
    parent = areas.by_code(db, code) if code else None
    return ok({"items": _described(db, areas.children(db, parent)), "more": False})


def _detail(db, area):
    data = areas.describe(area, child_count=None)
    data["path"] = [{"code": a.code, "name": a.name} for a in areas.ancestors(db, area)]
    data["children"] = _described(db, areas.children(db, area))
    data["child_count"] = len(data["children"])
    data["geometry"] = area.polygon
    return data


def get_area(code):
    _require_admin()
    db = get_session()
    return ok(_detail(db, areas.by_code(db, code)))


@openapi.body(lambda data: areas.edit_values(Fields(data)), partial=True)
def update_area(code):
    _require_admin()
    db = get_session()
    area = areas.by_code(db, code)
    values = areas.edit_values(Fields(json_body()))
    changes = areas.update(db, g.user, area, **values)
    commit()
    return ok({**_detail(db, area), "changes": changes})


@openapi.body(lambda data: areas.new_values(Fields(data)))
def add_area():
    _require_admin()
    db = get_session()
    values = areas.new_values(Fields(json_body()))
    parent = areas.by_code(db, values.pop("parent"))
    area = areas.add(db, g.user, parent, **values)
    commit()
    return ok(_detail(db, area), 201, {"Location": f"/api/v1/admin/areas/{area.code}"})


def replace_polygon(code):
    """The body is the GeoJSON itself (up to ``areas.GEOJSON_MAX_BYTES``, far above the
    API's usual limit: a district's boundary is large)."""
    _require_admin()
    request.max_content_length = areas.GEOJSON_MAX_BYTES
    db = get_session()
    area = areas.by_code(db, code)
    replaced = areas.replace_polygon(db, g.user, area, request.get_data(cache=False))
    commit()
    return ok(
        {
            "replaced": [
                {
                    **areas.describe(r.area),
                    "changes": r.changes,
                    "overlaps": [code for code, _ in r.overlaps],
                }
                for r in replaced
            ]
        }
    )
