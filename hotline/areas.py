"""Areas and grids (区划与网格): what an administrator changes in the area tree.

The tree 区县 → 街道乡镇 → 社区村 → 网格 carries official codes (``hotline.models.areas``:
6 + 3 + 3 digits, grids 3 more). An administrator

- renames an area and edits its aliases (别名: the other names people use, 奎文 for 奎文区),
  which the gazetteer indexes (``update``);
- adds a community under a street (its official 12-digit code when given, else the street's
  code + the next free 3-digit sequence) or a grid under a community (15 digits: the
  community's code + the next free sequence) (``add``);
- replaces an area's boundary with an uploaded GeoJSON (``replace_polygon``): a Feature, a
  FeatureCollection of one feature, or a bare Polygon/MultiPolygon. A FeatureCollection whose
  features carry a ``code`` property replaces the boundaries of those areas (the area itself
  or areas under it, typically a community's grids), all of them or none. Each boundary is
  checked with shapely: [经度, 纬度] pairs in GCJ-02 (what Chinese web maps use), rings closed,
  a valid polygon, inside China, touching the parent's boundary when it has one. The centre
  moves to the new boundary.

Every change is audited old → new (a boundary as its area and vertex count, not its
coordinates) and raises the areas' reference version in the same transaction
(``hotline.reference``), so the gazetteer and grid locator of the intake suggester, the
pickers, the cached rows and the boards' maps follow within seconds in every process, without
a restart. Refusals are ``ValidationFailed``/``Forbidden``/``NotFound`` with a Chinese message
and a stable code; nothing is written before every check has passed. Nothing here commits.
"""

import json
import math
import re
from dataclasses import dataclass

import shapely
import shapely.errors
import sqlalchemy as sa
from shapely.geometry import shape

from classifier import geo
from hotline import reference
from hotline.audit import audit_change, values_of
from hotline.enums import AreaLevel, Role
from hotline.errors import Forbidden, NotFound, ValidationFailed
from hotline.models import Area
from hotline.models.areas import CODE_LENGTH

#: Who edits the area tree.
EDIT_ROLES = frozenset({Role.admin})
#: Longest name (the column's width) and alias; most aliases per area.
NAME_MAX = 100
ALIAS_MAX = 50
ALIASES_MAX = 20
#: Most vertices of one uploaded boundary (a detailed district boundary has a few thousand).
VERTICES_MAX = 200_000
#: Largest GeoJSON accepted, in bytes.
GEOJSON_MAX_BYTES = 20 * 1024 * 1024
#: How far (metres) a boundary may lie outside its parent's and still be taken as touching it
#: (two drawings of one border rarely coincide).
PARENT_SLACK_M = 500
#: Boundaries of one parent's areas sharing more than this share of the smaller one overlap.
OVERLAP_SHARE = 0.01
#: The level a child of each level has (what ``add`` may create under it).
CHILD_LEVEL = {
    AreaLevel.district: AreaLevel.street,
    AreaLevel.street: AreaLevel.community,
    AreaLevel.community: AreaLevel.grid,
}
#: Levels ``add`` creates.
ADDABLE = (AreaLevel.community, AreaLevel.grid)

_SEPARATORS = re.compile(r"[、,，;；\s]+")


def require_editor(user):
    if user is None or user.role not in EDIT_ROLES:
        role = user.role.label if user is not None else "未登录用户"
        raise Forbidden(f"“{role}”角色无权修改区划与网格", code="AREA_EDIT_FORBIDDEN")


# -- reading ----------------------------------------------------------------------------------


def by_code(session, code):
    area = session.scalars(sa.select(Area).where(Area.code == code)).first()
    if area is None:
        raise NotFound(f"区域不存在：{code}", code="AREA_NOT_FOUND")
    return area


def children(session, parent):
    """The areas directly under ``parent`` (the districts when None), by code."""
    query = sa.select(Area).order_by(Area.code)
    if parent is None:
        query = query.where(Area.parent_id.is_(None))
    else:
        query = query.where(Area.parent_id == parent.id)
    return list(session.scalars(query))


def child_counts(session, areas):
    """``{area id: number of areas directly under it}``."""
    ids = [a.id for a in areas]
    if not ids:
        return {}
    rows = session.execute(
        sa.select(Area.parent_id, sa.func.count())
        .where(Area.parent_id.in_(ids))
        .group_by(Area.parent_id)
    ).all()
    return dict(rows)


def ancestors(session, area):
    """The areas above ``area``, the district first."""
    codes = [c for c in area.ancestor_codes() if c != area.code]
    if not codes:
        return []
    rows = session.scalars(sa.select(Area).where(Area.code.in_(codes))).all()
    return sorted(rows, key=lambda a: len(a.code))


def search(session, text, *, limit=50):
    """Areas whose name, code or one of whose aliases contains ``text`` (case-insensitive for
    Latin letters), most general first, at most ``limit`` (and whether there were more)."""
    text = text.strip().lower()
    if not text:
        return [], False
    rows = session.execute(
        sa.select(Area.id, Area.code, Area.name, Area.aliases).order_by(
            sa.func.length(Area.code), Area.code
        )
    ).all()
    found = [
        area_id
        for area_id, code, name, aliases in rows
        if text in name.lower()
        or code.startswith(text)
        or any(text in str(alias).lower() for alias in aliases or ())
    ]
    more = len(found) > limit
    found = found[:limit]
    by_id = {a.id: a for a in session.scalars(sa.select(Area).where(Area.id.in_(found)))}
    return [by_id[i] for i in found], more


# -- names and aliases ------------------------------------------------------------------------


def split_aliases(text):
    """Aliases typed in one box, separated by 、 , ， ; ； or spaces or new lines."""
    return [part for part in _SEPARATORS.split(text or "") if part]


def _checked_name(value, label="名称"):
    if value is None:
        raise _invalid("name", f"请填写{label}", "AREA_NAME_REQUIRED")
    if not isinstance(value, str):
        raise _invalid("name", f"{label}须为文本", "AREA_NAME_INVALID")
    value = value.strip()
    if not value:
        raise _invalid("name", f"请填写{label}", "AREA_NAME_REQUIRED")
    if len(value) > NAME_MAX:
        raise _invalid(
            "name", f"{label}不能超过 {NAME_MAX} 字（现为 {len(value)} 字）", "AREA_NAME_INVALID"
        )
    if any(not ch.isprintable() for ch in value):
        raise _invalid("name", f"{label}不能包含换行或控制字符", "AREA_NAME_INVALID")
    return value


def _checked_aliases(values, name):
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise _invalid("aliases", "别名须为文本列表", "AREA_ALIAS_INVALID")
    aliases = []
    for raw in values:
        alias = raw.strip()
        if not alias:
            continue
        if _SEPARATORS.search(alias):
            raise _invalid(
                "aliases", f"别名“{alias}”不能包含空格或分隔符（、，；）", "AREA_ALIAS_INVALID"
            )
        if len(alias) > ALIAS_MAX:
            raise _invalid(
                "aliases", f"别名“{alias[:10]}…”不能超过 {ALIAS_MAX} 字", "AREA_ALIAS_INVALID"
            )
        if any(not ch.isprintable() for ch in alias):
            raise _invalid("aliases", "别名不能包含控制字符", "AREA_ALIAS_INVALID")
        if alias == name:
            raise _invalid("aliases", f"别名“{alias}”与名称相同，无需填写", "AREA_ALIAS_IS_NAME")
        if alias in aliases:
            raise _invalid("aliases", f"别名“{alias}”重复", "AREA_ALIAS_DUPLICATE")
        aliases.append(alias)
    if len(aliases) > ALIASES_MAX:
        raise _invalid("aliases", f"别名最多 {ALIASES_MAX} 个", "AREA_ALIAS_INVALID")
    return aliases


def _invalid(field, message, code):
    return ValidationFailed(message, code=code, details={field: message})


def _sibling_named(session, parent_id, name, *, other_than=None):
    query = sa.select(Area).where(Area.name == name)
    query = query.where(
        Area.parent_id.is_(None) if parent_id is None else Area.parent_id == parent_id
    )
    if other_than is not None:
        query = query.where(Area.id != other_than.id)
    return session.scalars(query).first()


def _refuse_sibling_name(session, parent_id, name, *, other_than=None):
    twin = _sibling_named(session, parent_id, name, other_than=other_than)
    if twin is not None:
        raise _invalid(
            "name", f"同一上级下已有名为“{name}”的区域（{twin.code}）", "AREA_NAME_TAKEN"
        )


AUDITED = {"name": "name", "aliases": lambda a: list(a.aliases or [])}


def update(session, actor, area, *, name=None, aliases=None):
    """Rename ``area`` and/or replace its aliases (None: leave as is). Returns the changes
    ``{field: [old, new]}`` (empty: nothing changed, nothing audited)."""
    require_editor(actor)
    new_name = area.name if name is None else _checked_name(name)
    new_aliases = list(area.aliases or []) if aliases is None else aliases
    new_aliases = _checked_aliases(new_aliases, new_name)
    if new_name != area.name:
        _refuse_sibling_name(session, area.parent_id, new_name, other_than=area)
    before = values_of(area, AUDITED)
    area.name = new_name
    area.aliases = new_aliases
    diff = audit_change(
        session,
        actor,
        "area.update",
        target=area.code,
        before=before,
        after=values_of(area, AUDITED),
    )
    if diff:
        reference.bump(session, reference.AREAS)
    session.flush()
    return diff


# -- adding a community or a grid -------------------------------------------------------------


def next_code(session, parent):
    """The code of the next child of ``parent``: its code + the 3-digit sequence after the
    highest in use (the lowest free one once 999 is taken)."""
    width = CODE_LENGTH[CHILD_LEVEL[parent.level]] - len(parent.code)
    used = set(
        session.scalars(
            sa.select(Area.code).where(
                Area.code.startswith(parent.code, autoescape=True),
                sa.func.length(Area.code) == len(parent.code) + width,
            )
        )
    )
    sequences = {int(c[len(parent.code) :]) for c in used if c[len(parent.code) :].isdigit()}
    top = 10**width - 1
    following = max(sequences, default=0) + 1
    if following > top:
        following = next((n for n in range(1, top + 1) if n not in sequences), None)
    if following is None:
        raise ValidationFailed(
            f"“{parent.name}”下的编码已用完（{top} 个）", code="AREA_CODES_EXHAUSTED"
        )
    return f"{parent.code}{following:0{width}d}"


def add(session, actor, parent, *, name=None, aliases=None, code=None):
    """Add a community under the street ``parent`` or a grid under the community ``parent``.
    ``code``: a community's official 12-digit code (else the next free one); a grid's code is
    always the next free one. A grid without a name is called ``<社区>第N网格``. The new area
    starts at its parent's centre, until its boundary is uploaded."""
    require_editor(actor)
    level = CHILD_LEVEL.get(parent.level)
    if level not in ADDABLE:
        raise ValidationFailed(
            f"只能在街道乡镇下添加社区村、在社区村下添加网格（“{parent.name}”是{parent.level.label}）",
            code="AREA_PARENT_LEVEL",
            details={"parent": "上级须为街道乡镇或社区村"},
        )
    if code is not None and level == AreaLevel.grid:
        raise _invalid("code", "网格编码由系统按顺序生成，不能指定", "AREA_CODE_GENERATED")
    if code is not None:
        code = _checked_child_code(session, parent, level, code)
    else:
        code = next_code(session, parent)
    if name is None and level == AreaLevel.grid:
        name = f"{parent.name}第{int(code[-3:])}网格"
    name = _checked_name(name)
    # Not list(): a number sent as ``aliases`` is refused, not a TypeError.
    aliases = _checked_aliases([] if aliases is None else aliases, name)
    _refuse_sibling_name(session, parent.id, name)
    area = Area(
        code=code,
        name=name,
        level=level,
        parent=parent,
        aliases=aliases,
        center_lng=parent.center_lng,
        center_lat=parent.center_lat,
    )
    session.add(area)
    session.flush()
    audit_change(
        session,
        actor,
        "area.create",
        target=code,
        before=None,
        after={
            "name": name,
            "aliases": aliases,
            "level": level.value,
            "parent": parent.code,
        },
    )
    reference.bump(session, reference.AREAS)
    return area


def _checked_child_code(session, parent, level, code):
    length = CODE_LENGTH[level]
    if (
        not isinstance(code, str)
        or not code.isascii()
        or not code.isdigit()
        or len(code) != length
        or not code.startswith(parent.code)
        or code == parent.code + "0" * (length - len(parent.code))
    ):
        raise _invalid(
            "code",
            f"{level.label}编码须为 {length} 位数字，以上级编码 {parent.code} 开头",
            "AREA_CODE_INVALID",
        )
    taken = session.scalars(sa.select(Area).where(Area.code == code)).first()
    if taken is not None:
        raise _invalid("code", f"编码 {code} 已被“{taken.name}”使用", "AREA_CODE_TAKEN")
    return code


# -- boundaries -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Boundary:
    """A checked boundary: the GeoJSON geometry to store, and what the audit records."""

    geometry: dict
    shape: object
    vertices: int
    area_m2: int

    @property
    def centre(self):
        """A point inside the boundary: its centroid, or a point surely inside when the
        centroid falls outside (a crescent-shaped area)."""
        point = self.shape.centroid
        if not self.shape.contains(point):
            point = self.shape.representative_point()
        return round(point.x, 6), round(point.y, 6)


def read_geojson(data):
    """The GeoJSON document in ``data`` (bytes or text of a file, or an already parsed
    object)."""
    if isinstance(data, dict):
        return json.loads(json.dumps(data))  # plain lists, as a file would give
    if isinstance(data, bytes):
        if len(data) > GEOJSON_MAX_BYTES:
            raise _geojson_error(
                f"文件过大（不能超过 {GEOJSON_MAX_BYTES // 1024 // 1024} MB）", "GEOJSON_TOO_LARGE"
            )
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise _geojson_error("文件不是 UTF-8 编码的文本", "GEOJSON_INVALID_JSON") from None
    if not isinstance(data, str) or not data.strip():
        raise _geojson_error("请上传 GeoJSON 文件或粘贴其内容", "GEOJSON_REQUIRED")
    try:
        document = json.loads(data)
    except json.JSONDecodeError as exc:
        raise _geojson_error(
            f"文件不是有效的 JSON：第 {exc.lineno} 行第 {exc.colno} 列", "GEOJSON_INVALID_JSON"
        ) from None
    except (ValueError, RecursionError):
        raise _geojson_error(
            "文件不是有效的 JSON：数字过长或嵌套过深", "GEOJSON_INVALID_JSON"
        ) from None
    if not isinstance(document, dict):
        raise _geojson_error("GeoJSON 须为一个对象（{…}）", "GEOJSON_UNSUPPORTED")
    return document


def _geojson_error(message, code, details=None):
    return ValidationFailed(message, code=code, details=details or {"polygon": message})


class _Refused(Exception):
    """One boundary's problem: a Chinese message and a stable code."""

    def __init__(self, message, code):
        super().__init__(message)
        self.message, self.code = message, code


def _features(document):
    """``(own geometry, [(index, code, geometry)])`` of a GeoJSON document: a lone geometry
    (no code) is the area's own; features with a ``code`` property are matched to areas."""
    kind = document.get("type")
    if kind == "FeatureCollection":
        features = document.get("features")
        if not isinstance(features, list) or not features:
            raise _geojson_error("FeatureCollection 中没有要素（features 为空）", "GEOJSON_EMPTY")
        coded = []
        for index, feature in enumerate(features, 1):
            if not isinstance(feature, dict) or feature.get("type") != "Feature":
                raise _geojson_error(f"第 {index} 个要素不是 Feature", "GEOJSON_UNSUPPORTED")
            coded.append((index, _feature_code(feature), feature.get("geometry")))
        if len(coded) == 1 and coded[0][1] is None:
            return coded[0][2], []
        missing = [index for index, code, _ in coded if code is None]
        if missing:
            listed = "、".join(str(i) for i in missing[:10])
            raise _geojson_error(
                f"多个要素须各自在 properties.code 中写明区域编码（第 {listed} 个要素没有）",
                "GEOJSON_FEATURE_CODE_MISSING",
            )
        return None, coded
    if kind == "Feature":
        return document.get("geometry"), []
    if kind in ("Polygon", "MultiPolygon"):
        return document, []
    shown = kind if isinstance(kind, str) else "未注明"
    raise _geojson_error(
        f"GeoJSON 须为 Feature、FeatureCollection 或 Polygon/MultiPolygon 几何（现为 {shown}）",
        "GEOJSON_UNSUPPORTED",
    )


def _feature_code(feature):
    properties = feature.get("properties")
    if not isinstance(properties, dict):
        return None
    code = properties.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        code = str(code)
    return code.strip() if isinstance(code, str) and code.strip() else None


def check_boundary(geometry, parent=None):
    """A GeoJSON Polygon or MultiPolygon checked for storing as an area's boundary (inside
    ``parent``'s boundary, give or take ``PARENT_SLACK_M``, when it has one). Raises
    ``_Refused``."""
    if not isinstance(geometry, dict):
        raise _Refused("要素没有几何（geometry 为空）", "GEOJSON_NO_GEOMETRY")
    kind = geometry.get("type")
    if kind not in ("Polygon", "MultiPolygon"):
        shown = kind if isinstance(kind, str) else "未注明"
        raise _Refused(
            f"几何类型须为 Polygon 或 MultiPolygon（现为 {shown}）", "GEOJSON_NOT_POLYGON"
        )
    coordinates = geometry.get("coordinates")
    polygons = [coordinates] if kind == "Polygon" else coordinates
    if not isinstance(polygons, list) or not polygons:
        raise _Refused("坐标（coordinates）为空或格式不正确", "GEOJSON_BAD_COORDINATES")
    points = []
    for polygon in polygons:
        if not isinstance(polygon, list) or not polygon:
            raise _Refused("坐标（coordinates）为空或格式不正确", "GEOJSON_BAD_COORDINATES")
        for ring in polygon:
            points.extend(_checked_ring(ring))
    if len(points) > VERTICES_MAX:
        raise _Refused(
            f"顶点过多（{len(points)} 个，最多 {VERTICES_MAX} 个），请先简化边界",
            "GEOJSON_TOO_LARGE",
        )
    _check_in_china(points)
    plain = {"type": kind, "coordinates": _two_d(coordinates, depth=3 if kind == "Polygon" else 4)}
    try:
        boundary = shape(plain)
    except (ValueError, TypeError, shapely.errors.ShapelyError):
        raise _Refused("坐标无法组成多边形", "GEOJSON_BAD_COORDINATES") from None
    if boundary.is_empty:
        raise _Refused("多边形为空", "GEOJSON_BAD_COORDINATES")
    if not boundary.is_valid:
        raise _Refused(f"多边形无效：{_why_invalid(boundary)}", "GEOJSON_INVALID_POLYGON")
    if boundary.area <= 0:
        raise _Refused("多边形面积为零", "GEOJSON_INVALID_POLYGON")
    if parent is not None and parent.polygon:
        _check_inside_parent(boundary, parent)
    return Boundary(plain, boundary, len(points), _area_m2(boundary))


def _checked_ring(ring):
    if not isinstance(ring, list):
        raise _Refused("坐标（coordinates）格式不正确", "GEOJSON_BAD_COORDINATES")
    for point in ring:
        if (
            not isinstance(point, list)
            or len(point) not in (2, 3)
            or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in point
            )
        ):
            raise _Refused(
                "坐标格式不正确：每个点须为 [经度, 纬度] 两个数字", "GEOJSON_BAD_COORDINATES"
            )
    if len(ring) < 4:
        raise _Refused(
            f"每个环至少需要 4 个点（首尾为同一点），现有一个环只有 {len(ring)} 个点",
            "GEOJSON_RING_TOO_SHORT",
        )
    if ring[0][:2] != ring[-1][:2]:
        raise _Refused("环未闭合：每个环的首尾两点须相同", "GEOJSON_RING_NOT_CLOSED")
    return ring[:-1]


def _check_in_china(points):
    lngs = [p[0] for p in points]
    lats = [p[1] for p in points]
    if all(geo.in_china(lng, lat) for lng, lat in zip(lngs, lats, strict=True)):
        return
    if all(geo.in_china(lat, lng) for lng, lat in zip(lngs, lats, strict=True)):
        raise _Refused(
            "坐标顺序有误：GeoJSON 的每个点须为 [经度, 纬度]（GCJ-02），所给坐标似为 [纬度, 经度]",
            "GEOJSON_LAT_LNG_SWAPPED",
        )
    lng_range, lat_range = geo.CHINA_LNG, geo.CHINA_LAT
    raise _Refused(
        f"边界不在中国境内（经度须在 {lng_range[0]:g}–{lng_range[1]:g}、纬度须在 "
        f"{lat_range[0]:g}–{lat_range[1]:g} 之间；坐标须为 GCJ-02 经纬度，不能是投影坐标）",
        "GEOJSON_OUTSIDE_CHINA",
    )


def _two_d(value, depth):
    """Coordinates as plain lists of [lng, lat] (a third number, the altitude, dropped)."""
    if depth == 1:
        return [float(value[0]), float(value[1])]
    return [_two_d(v, depth - 1) for v in value]


#: shapely's reasons for an invalid polygon, in Chinese.
_REASONS = {
    "Self-intersection": "边界自相交",
    "Ring Self-intersection": "环自相交",
    "Too few points": "顶点太少",
    "Hole lies outside shell": "内环（洞）在外环之外",
    "Nested holes": "内环相互嵌套",
    "Nested shells": "多边形相互嵌套",
    "Interior is disconnected": "内部不连通",
    "Duplicate Rings": "存在重复的环",
    "Invalid Coordinate": "坐标无效",
}


def _why_invalid(boundary):
    reason = shapely.is_valid_reason(boundary)
    match = re.match(r"([A-Za-z -]+?)\s*\[([-\d.eE]+) ([-\d.eE]+)\]", reason)
    if not match:
        return _REASONS.get(reason, reason)
    what = _REASONS.get(match.group(1), match.group(1))
    lng, lat = float(match.group(2)), float(match.group(3))
    return f"{what}（位置约 经度 {lng:.6f}，纬度 {lat:.6f}）"


def _check_inside_parent(boundary, parent):
    outline = shape(parent.polygon)
    if not outline.is_valid:
        outline = shapely.make_valid(outline)
    slack = PARENT_SLACK_M / geo.METRES_PER_DEGREE
    if not outline.buffer(slack).intersects(boundary):
        raise _Refused(
            f"边界与上级“{parent.name}”的边界不相交：请确认文件对应本区域、坐标为 GCJ-02 经纬度",
            "GEOJSON_OUTSIDE_PARENT",
        )


def _area_m2(boundary):
    """The area in square metres (degrees scaled on a plane at the boundary's latitude: a
    fraction of a percent off for a city's areas)."""
    lat = boundary.centroid.y
    scale = geo.METRES_PER_DEGREE**2 * math.cos(math.radians(lat))
    return round(boundary.area * scale)


def polygon_summary(polygon):
    """What the audit records of a stored boundary: ``{"area_m2", "vertices"}`` (None: no
    boundary)."""
    if not polygon:
        return None
    try:
        boundary = shape(polygon)
    except (ValueError, TypeError, KeyError, AttributeError, shapely.errors.ShapelyError):
        return {"area_m2": None, "vertices": None}
    vertices = sum(
        len(ring.coords) - 1
        for part in getattr(boundary, "geoms", [boundary])
        for ring in [part.exterior, *part.interiors]
    )
    return {"area_m2": _area_m2(boundary), "vertices": vertices}


@dataclass(frozen=True)
class Replaced:
    """One area whose boundary was replaced, with the audited changes and the areas of the
    same parent its new boundary overlaps (``[(code, name)]``: a point in an overlap cannot
    be given a grid, so the administrator is told; it is not refused, as an upload may fix
    the neighbours next)."""

    area: Area
    changes: dict
    overlaps: tuple = ()


def replace_polygon(session, actor, area, document):
    """Replace the boundary of ``area`` — or, for a FeatureCollection whose features carry
    ``code``, of each area named (``area`` itself or areas under it) — from a GeoJSON
    ``document`` (bytes, text or parsed). Every boundary is checked before anything is
    written; one bad feature refuses them all (``details`` names each). Returns
    ``[Replaced]``."""
    require_editor(actor)
    own, coded = _features(read_geojson(document))
    if not coded:
        try:
            boundary = check_boundary(own, _parent_of(session, area))
        except _Refused as refused:
            raise _geojson_error(refused.message, refused.code) from None
        replaced = [_store(session, actor, area, boundary)]
    else:
        replaced = [
            _store(session, actor, a, b) for a, b in _checked_features(session, area, coded)
        ]
    reference.bump(session, reference.AREAS)
    session.flush()
    return _with_overlaps(session, replaced)


def _with_overlaps(session, replaced):
    parent_ids = {r.area.parent_id for r in replaced}
    query = sa.select(Area.code, Area.name, Area.parent_id, Area.polygon).where(
        Area.polygon.is_not(None)
    )
    if None in parent_ids:
        query = query.where(Area.parent_id.is_(None))
    else:
        query = query.where(Area.parent_id.in_(parent_ids))
    neighbours = []
    for code, name, parent_id, polygon in session.execute(query):
        try:
            geometry = shape(polygon)
        except (ValueError, TypeError, KeyError, AttributeError, shapely.errors.ShapelyError):
            continue
        if not geometry.is_empty and geometry.is_valid:
            neighbours.append((code, name, parent_id, geometry))
    result = []
    for r in replaced:
        mine = shape(r.area.polygon)
        overlaps = tuple(
            (code, name)
            for code, name, parent_id, other in neighbours
            if parent_id == r.area.parent_id
            and code != r.area.code
            and mine.intersects(other)
            and mine.intersection(other).area > OVERLAP_SHARE * min(mine.area, other.area)
        )
        result.append(Replaced(r.area, r.changes, overlaps))
    return result


def _parent_of(session, area):
    return session.get(Area, area.parent_id) if area.parent_id else None


def _checked_features(session, area, coded):
    codes = [code for _, code, _ in coded]
    targets = {a.code: a for a in session.scalars(sa.select(Area).where(Area.code.in_(set(codes))))}
    parent_ids = {a.parent_id for a in targets.values() if a.parent_id}
    parents = {a.id: a for a in session.scalars(sa.select(Area).where(Area.id.in_(parent_ids)))}
    problems, checked, seen = {}, [], set()
    for index, code, geometry in coded:
        where = f"第 {index} 个要素（编码 {code}）"
        target = targets.get(code)
        try:
            if code in seen:
                raise _Refused("编码重复出现", "GEOJSON_FEATURE_CODE_DUPLICATE")
            seen.add(code)
            if target is None:
                raise _Refused("没有这个编码的区域", "GEOJSON_FEATURE_CODE_UNKNOWN")
            if not code.startswith(area.code):
                raise _Refused(
                    f"不在“{area.name}”（{area.code}）之下", "GEOJSON_FEATURE_OUTSIDE_AREA"
                )
            checked.append((target, check_boundary(geometry, parents.get(target.parent_id))))
        except _Refused as refused:
            problems[f"features[{index}]"] = f"{where}：{refused.message}"
    if problems:
        first = next(iter(problems.values()))
        message = (
            f"GeoJSON 有 {len(problems)} 个要素不合格，未做任何修改。{first}"
            if len(problems) > 1
            else f"GeoJSON 要素不合格，未做任何修改。{first}"
        )
        raise ValidationFailed(message, code="GEOJSON_FEATURES_INVALID", details=problems)
    return checked


def _store(session, actor, area, boundary):
    before = {
        "polygon": polygon_summary(area.polygon),
        "center": _centre_of(area),
    }
    area.polygon = boundary.geometry
    area.center_lng, area.center_lat = boundary.centre
    after = {
        "polygon": {"area_m2": boundary.area_m2, "vertices": boundary.vertices},
        "center": _centre_of(area),
    }
    changes = audit_change(
        session, actor, "area.polygon", target=area.code, before=before, after=after
    )
    return Replaced(area, changes)


def _centre_of(area):
    if area.center_lng is None or area.center_lat is None:
        return None
    return [area.center_lng, area.center_lat]


# -- parsing and describing (the API and the pages alike) -------------------------------------


def _describe_name_and_aliases(fields):
    # Checked by the rules themselves (``_checked_name``, ``_checked_aliases``), which give
    # their own codes; stated here for the API's description.
    fields.describe("name", "名称", type="string", maxLength=NAME_MAX)
    fields.describe(
        "aliases",
        "别名",
        type=["array", "string"],
        items={"type": "string"},
        description="文本列表，或用 、，；或空格分隔的一段文本",
    )


def edit_values(fields):
    """``{"name", "aliases"}`` of an edit from a JSON body or a form read by ``fields``
    (``hotline.schemas.Fields``); absent: left as is. Aliases come as a list, or as one text
    separated by 、 , ， ; ； or spaces."""
    _describe_name_and_aliases(fields)
    name = fields.raw("name")
    aliases = fields.raw("aliases")
    fields.check()
    if isinstance(aliases, str):
        aliases = split_aliases(aliases)
    return {"name": name, "aliases": aliases}


def new_values(fields):
    """``{"parent", "name", "aliases", "code"}`` of a new community or grid."""
    parent = fields.code("parent", "上级区域", required=True)
    _describe_name_and_aliases(fields)
    fields.describe("code", "社区村编码", type="string", description="12 位数字；不填则按顺序生成")
    name = fields.raw("name")
    if isinstance(name, str) and not name.strip():
        name = None
    aliases = fields.raw("aliases")
    code = fields.raw("code")
    if isinstance(code, str):
        code = code.strip() or None
    fields.check()
    if isinstance(aliases, str):
        aliases = split_aliases(aliases)
    return {"parent": parent, "name": name, "aliases": aliases, "code": code}


def describe(area, *, child_count=None):
    """An area for JSON: code, names, level, parent, centre, and its boundary's summary."""
    data = {
        "code": area.code,
        "name": area.name,
        "level": area.level.value,
        "level_label": area.level.label,
        "parent": area.code[: _parent_length(area)] if area.parent_id else None,
        "aliases": list(area.aliases or []),
        "is_town": area.is_town,
        "center": _centre_of(area),
        "polygon": polygon_summary(area.polygon),
    }
    if child_count is not None:
        data["child_count"] = child_count
    return data


def _parent_length(area):
    lengths = sorted(n for n in CODE_LENGTH.values() if n < len(area.code))
    return lengths[-1] if lengths else len(area.code)


def feature_collection(session, area):
    """The boundaries of ``area`` and of the areas directly under it as a GeoJSON
    FeatureCollection whose features carry ``code`` and ``name``: what ``replace_polygon``
    reads back after an edit in a GIS tool."""
    features = []
    for row in [area, *children(session, area)]:
        if row.polygon:
            features.append(
                {
                    "type": "Feature",
                    "properties": {"code": row.code, "name": row.name},
                    "geometry": row.polygon,
                }
            )
    return {"type": "FeatureCollection", "features": features}
