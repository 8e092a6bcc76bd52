"""Areas and grids (区划与网格) in the administration: the tree browsed level by level
(districts → a district's streets → a street's communities → a community's grids), search by
name, alias or code, and an area's page with its name and aliases, its children, a map of its
boundary and its children's, and the forms that add a community or grid and replace
boundaries from GeoJSON. ``hotline.areas`` holds every rule; these views parse and render.

The map is an SVG drawn here from the stored polygons (no tiles, no script): lng/lat scaled
on a plane at the area's latitude, north up.
"""

import json
import math

import shapely
import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from shapely.geometry import shape

from hotline import areas, pickers, web
from hotline.db import get_session
from hotline.errors import NotFound, ValidationFailed
from hotline.models import Area
from hotline.schemas import Fields
from hotline.web import page_for

ADMIN = tuple(areas.EDIT_ROLES)
#: The map's size in SVG units (it scales to the page's width).
MAP_WIDTH, MAP_HEIGHT, MAP_PADDING = 720, 480, 16
#: Most shapes drawn on one map (a district of a big city has thousands of grids).
MAP_SHAPES_MAX = 3000
#: Children are labelled by name on the map up to this many.
MAP_LABELS_MAX = 60
#: Fills of the children on the map, in turn.
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f")
#: Most search results listed.
SEARCH_LIMIT = 100


def create_blueprint():
    bp = Blueprint("areas_admin", __name__, url_prefix="/admin/areas")
    bp.add_url_rule("/", view_func=index)
    bp.add_url_rule("/go", view_func=go)
    bp.add_url_rule("/<code>", view_func=area_page, methods=["GET", "POST"])
    bp.add_url_rule("/<code>/children", view_func=add_child, methods=["POST"])
    bp.add_url_rule("/<code>/polygon", view_func=upload_polygon, methods=["POST"])
    bp.add_url_rule("/<code>/boundaries.geojson", view_func=download_polygons)
    web.add_to_admin(
        bp, "index", "区划与网格", "区县、街道、社区和网格的名称、别名、编码与边界（地图）"
    )
    return bp


def _area_or_404(db, code):
    try:
        return areas.by_code(db, code)
    except NotFound:
        abort(404)


@page_for(*ADMIN)
def index():
    db = get_session()
    text = request.args.get("q", "").strip()
    found, more = areas.search(db, text, limit=SEARCH_LIMIT) if text else ([], False)
    districts = areas.children(db, None)
    return render_template(
        "admin/areas.html",
        q=text,
        found=found,
        more=more,
        paths=_paths(db, found),
        districts=districts,
        counts=areas.child_counts(db, districts + found),
    )


@page_for(*ADMIN)
def go():
    """The area chosen in the picker (searchable by name and pinyin)."""
    try:
        code = pickers.chosen_area(request.args.getlist("area"))
    except ValidationFailed as exc:
        flash(exc.message, "error")
        return redirect(url_for(".index"))
    if not code:
        return redirect(url_for(".index"))
    return redirect(url_for(".area_page", code=code))


def _paths(db, found):
    """``{area id: "奎文区 › 东关街道"}``: where each search result lies."""
    codes = {c for a in found for c in a.ancestor_codes() if c != a.code}
    names = dict(db.execute(sa.select(Area.code, Area.name).where(Area.code.in_(codes))).all())
    return {
        a.id: pickers.PATH_SEPARATOR.join(
            names[c] for c in reversed(a.ancestor_codes()) if c != a.code and c in names
        )
        for a in found
    }


def _render_area(db, area, *, error=None, form=None, status=200, failed=None):
    rows = areas.children(db, area)
    counts = areas.child_counts(db, rows)
    child_level = areas.CHILD_LEVEL.get(area.level)
    addable = child_level in areas.ADDABLE
    next_code = areas.next_code(db, area) if addable else None
    return (
        render_template(
            "admin/area.html",
            area=area,
            path=areas.ancestors(db, area),
            children=rows,
            counts=counts,
            summaries={a.id: areas.polygon_summary(a.polygon) for a in [area, *rows]},
            child_level=child_level,
            addable=addable,
            next_code=next_code,
            map=area_map(db, area, rows),
            error=error,
            failed=failed,
            form=form or {},
        ),
        status,
    )


@page_for(*ADMIN)
def area_page(code):
    db = get_session()
    area = _area_or_404(db, code)
    if request.method == "GET":
        return _render_area(db, area)
    form = {"name": request.form.get("name", ""), "aliases": request.form.get("aliases", "")}

    def change(db):
        values = areas.edit_values(Fields(dict(form)))
        return areas.update(db, g.user, area, **values)

    def refused(error):
        db.expire_all()
        return _render_area(
            db, _area_or_404(db, code), error=error, form=form, status=422, failed="edit"
        )

    done, result = web.perform(change, refused=refused)
    if not done:
        return result
    flash(f"已保存“{area.name}”的名称和别名" if result else "没有修改")
    return redirect(url_for(".area_page", code=code))


@page_for(*ADMIN)
def add_child(code):
    db = get_session()
    parent = _area_or_404(db, code)
    form = {
        "parent": code,
        "name": request.form.get("name", ""),
        "aliases": request.form.get("aliases", ""),
        "code": request.form.get("code", ""),
    }

    def change(db):
        values = areas.new_values(Fields(dict(form)))
        values.pop("parent")
        return areas.add(db, g.user, parent, **values)

    def refused(error):
        db.expire_all()
        return _render_area(
            db, _area_or_404(db, code), error=error, form=form, status=422, failed="add"
        )

    done, result = web.perform(change, refused=refused)
    if not done:
        return result
    flash(f"已添加{result.level.label}“{result.name}”（{result.code}）")
    return redirect(url_for(".area_page", code=result.code))


@page_for(*ADMIN)
def upload_polygon(code):
    db = get_session()
    area = _area_or_404(db, code)
    upload = request.files.get("file")
    data = upload.read(areas.GEOJSON_MAX_BYTES + 1) if upload and upload.filename else None
    pasted = request.form.get("geojson", "")
    form = {"geojson": pasted if data is None else ""}

    def change(db):
        return areas.replace_polygon(db, g.user, area, data if data is not None else pasted)

    def refused(error):
        db.expire_all()
        return _render_area(
            db, _area_or_404(db, code), error=error, form=form, status=422, failed="polygon"
        )

    done, replaced = web.perform(change, refused=refused)
    if not done:
        return replaced
    if len(replaced) == 1:
        r = replaced[0]
        summary = areas.polygon_summary(r.area.polygon)
        flash(
            f"已更新“{r.area.name}”的边界（{summary['vertices']} 个顶点，"
            f"面积约 {_area_text(summary['area_m2'])}），中心点已随之更新"
        )
    else:
        flash(f"已更新 {len(replaced)} 个区域的边界，中心点已随之更新")
    overlapping = sorted(
        {tuple(sorted((r.area.name, name))) for r in replaced for _, name in r.overlaps}
    )
    if overlapping:
        pairs = "；".join(f"“{mine}”与“{other}”" for mine, other in overlapping[:5])
        more = f"等 {len(overlapping)} 处" if len(overlapping) > 5 else ""
        flash(
            f"注意：{pairs}{more}的边界重叠，重叠处的位置无法确定属于哪个网格，请调整边界",
            "error",
        )
    return redirect(url_for(".area_page", code=code))


@page_for(*ADMIN)
def download_polygons(code):
    """The area's and its children's boundaries, to edit and upload again."""
    db = get_session()
    area = _area_or_404(db, code)
    body = json.dumps(areas.feature_collection(db, area), ensure_ascii=False)
    return Response(
        body,
        mimetype="application/geo+json",
        headers={"Content-Disposition": f"attachment; filename={area.code}.geojson"},
    )


def _area_text(area_m2):
    if area_m2 is None:
        return "—"
    if area_m2 >= 1_000_000:
        return f"{area_m2 / 1_000_000:.2f} 平方公里"
    return f"{area_m2:,} 平方米"


# -- the map ----------------------------------------------------------------------------------


def area_map(db, area, rows):
    """What the area's map draws: its own boundary, its children's (a child without one is
    drawn by its own descendants' boundaries, e.g. a street's communities by their grids),
    or, for an area without children, its siblings around it; the centre point. Returns
    ``{"width", "height", "shapes", "centre", "note", "cut"}``; ``shapes`` are
    ``{"d", "code", "name", "kind", "fill", "href", "label"}`` with kind ``own``, ``child`` or
    ``context``."""
    items = []  # (kind, code, name, link code, geometry)
    if area.polygon:
        items.append(("own", area.code, area.name, area.code, area.polygon))
    names = {a.code: a.name for a in rows}
    cut = False
    if rows:
        drawn = db.execute(
            sa.select(Area.code, Area.polygon)
            .where(
                Area.code.startswith(area.code, autoescape=True),
                sa.func.length(Area.code) > len(area.code),
                Area.polygon.is_not(None),
            )
            .order_by(Area.code)
            .limit(MAP_SHAPES_MAX + 1)
        ).all()
        cut = len(drawn) > MAP_SHAPES_MAX
        own_child = {code for code, _ in drawn if code in names}
        child_length = len(rows[0].code)
        for code, polygon in drawn[:MAP_SHAPES_MAX]:
            child = code[:child_length]
            if child not in names or (code != child and child in own_child):
                continue  # a grandchild of a child drawn by its own boundary
            items.append(("child", child, names[child], child, polygon))
    elif area.parent_id is not None:
        siblings = db.execute(
            sa.select(Area.code, Area.name, Area.polygon)
            .where(
                Area.parent_id == area.parent_id,
                Area.id != area.id,
                Area.polygon.is_not(None),
            )
            .order_by(Area.code)
            .limit(MAP_SHAPES_MAX)
        ).all()
        items = [("context", c, n, c, p) for c, n, p in siblings] + items
    geometries = []
    for kind, code, name, link, polygon in items:
        try:
            geometry = shape(polygon)
        except (ValueError, TypeError, KeyError, AttributeError, shapely.errors.ShapelyError):
            continue
        if not geometry.is_empty:
            geometries.append((kind, code, name, link, geometry))
    centre = None
    if area.center_lng is not None and area.center_lat is not None:
        centre = (area.center_lng, area.center_lat)
    if not geometries:
        return {"shapes": [], "centre": None, "note": "暂无边界数据", "cut": False}
    bounds = [g.bounds for *_, g in geometries]
    minx, miny = min(b[0] for b in bounds), min(b[1] for b in bounds)
    maxx, maxy = max(b[2] for b in bounds), max(b[3] for b in bounds)
    if centre is not None:
        minx, maxx = min(minx, centre[0]), max(maxx, centre[0])
        miny, maxy = min(miny, centre[1]), max(maxy, centre[1])
    project = _projection(minx, miny, maxx, maxy)
    tolerance = max(maxx - minx, maxy - miny) / MAP_WIDTH / 2
    colours = {}
    labelled = len(names) <= MAP_LABELS_MAX
    shapes = []
    for kind, code, name, link, geometry in geometries:
        if kind == "child":
            fill = colours.setdefault(code, PALETTE[len(colours) % len(PALETTE)])
        else:
            fill = None
        simple = geometry.simplify(tolerance, preserve_topology=True) if tolerance else geometry
        point = geometry.representative_point()
        label = None
        if kind == "child" and labelled and code not in {s["code"] for s in shapes if s["label"]}:
            label = project(point.x, point.y)
        shapes.append(
            {
                "d": _path(simple, project),
                "code": code,
                "name": name,
                "kind": kind,
                "fill": fill,
                "href": link,
                "label": label,
            }
        )
    order = {"context": 0, "child": 1, "own": 2}
    shapes.sort(key=lambda s: order[s["kind"]])
    note = None
    if not area.polygon:
        note = "本区域尚无自己的边界，图中为下级区域的边界" if rows else None
    return {
        "width": MAP_WIDTH,
        "height": MAP_HEIGHT,
        "shapes": shapes,
        "centre": project(*centre) if centre else None,
        "note": note,
        "cut": cut,
    }


def _projection(minx, miny, maxx, maxy):
    """lng/lat → SVG x/y, north up, scaled on a plane at the middle latitude to fit the map."""
    squeeze = math.cos(math.radians((miny + maxy) / 2))
    span_x = max((maxx - minx) * squeeze, 1e-9)
    span_y = max(maxy - miny, 1e-9)
    scale = min((MAP_WIDTH - 2 * MAP_PADDING) / span_x, (MAP_HEIGHT - 2 * MAP_PADDING) / span_y)
    left = (MAP_WIDTH - span_x * scale) / 2
    top = (MAP_HEIGHT - span_y * scale) / 2

    def project(lng, lat):
        return (
            round(left + (lng - minx) * squeeze * scale, 1),
            round(top + (maxy - lat) * scale, 1),
        )

    return project


def _path(geometry, project):
    """An SVG path of a Polygon or MultiPolygon (holes cut by ``fill-rule: evenodd``)."""
    parts = []
    for polygon in getattr(geometry, "geoms", [geometry]):
        for ring in [polygon.exterior, *polygon.interiors]:
            points = [project(x, y) for x, y in ring.coords[:-1]]
            if points:
                parts.append("M" + " L".join(f"{x:g} {y:g}" for x, y in points) + " Z")
    return " ".join(parts)
