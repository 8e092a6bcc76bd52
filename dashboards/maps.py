"""Outlines of a city's districts and streets for the boards' maps, from the area boundaries
stored in the database (``areas.polygon``), so an onboarded city gets its own map.

An area with a polygon of its own is drawn with it. A district or street without one is
drawn as the union of the grids inside it. When the grids only sample the city (they cover
less than ``SPARSE_COVERAGE`` of the land they span, as the demo's generated 150 m squares
do), that union would be a scatter of dots; the outline is then the land nearest to the
area's grids (a Voronoi partition around the grids' centres, inside the hull of all grids),
and the map says it is approximate (``approximate``).

Computing outlines takes a few dozen milliseconds; they are cached per database and
recomputed when the areas change (their count, largest id, number of polygons or reference
version) or after ``CACHE_SECONDS``.
"""

import threading
import time

import shapely
import sqlalchemy as sa
from shapely.geometry import MultiPoint, mapping, shape

from hotline import reference
from hotline.enums import AreaLevel
from hotline.models import Area

#: Grids covering less than this share of the hull around them only sample the city.
SPARSE_COVERAGE = 0.5
#: Outlines are simplified to this share of the map's extent (invisible on a screen).
SIMPLIFY = 0.001
#: Cached outlines are recomputed at least this often.
CACHE_SECONDS = 600


def outlines(session, district=None):
    """The map of the city (its districts) or of one district (its streets), as a GeoJSON
    FeatureCollection; each feature's ``id`` and ``properties.code`` are the area's code,
    ``properties.name`` its name. ``approximate`` tells whether the outlines were inferred
    from sparse grids. ``district`` unknown: None."""
    city = _cached(session)
    if district is None:
        features = [f for f in city["features"] if len(f["id"]) == 6]
    else:
        if district not in city["names"]:
            return None
        features = [f for f in city["features"] if len(f["id"]) == 9 and f["id"][:6] == district]
    return {
        "type": "FeatureCollection",
        "level": "district" if district is None else "street",
        "approximate": city["approximate"],
        "features": features,
    }


_cache = {}
_cache_lock = threading.Lock()


def _fingerprint(session):
    # The areas' reference version too: a boundary replaced by an import changes no count.
    return (
        *session.execute(
            sa.select(
                sa.func.count(Area.id),
                sa.func.max(Area.id),
                sa.func.count(Area.polygon),
            )
        ).one(),
        *reference.stamp(session, reference.AREAS),
    )


def _cached(session):
    key = str(session.get_bind().engine.url)
    fingerprint = _fingerprint(session)
    with _cache_lock:
        entry = _cache.get(key)
        if entry and entry[0] == fingerprint and time.monotonic() - entry[1] < CACHE_SECONDS:
            return entry[2]
    value = build(session)
    with _cache_lock:
        _cache[key] = (fingerprint, time.monotonic(), value)
    return value


def clear_cache():
    with _cache_lock:
        _cache.clear()


def build(session):
    """Every district's and street's outline: {"features", "names", "approximate"}."""
    rows = session.execute(
        sa.select(Area.code, Area.name, Area.level, Area.polygon).where(
            sa.or_(
                Area.level.in_([AreaLevel.district, AreaLevel.street]),
                Area.polygon.is_not(None),
            )
        )
    ).all()
    names = {}
    own = {}
    grids = []
    for code, name, level, polygon in rows:
        geometry = _geometry(polygon)
        if level in (AreaLevel.district, AreaLevel.street):
            names[code] = name
            if geometry is not None:
                own[code] = geometry
        elif geometry is not None and len(code) > 9:
            grids.append((code, geometry))

    inferred, approximate = _from_grids(grids)
    shapes = {}
    for code in names:
        if code in own:
            shapes[code] = own[code]
        elif len(code) == 9 and code in inferred:
            shapes[code] = inferred[code]
    for code in names:  # districts without a polygon: the union of their streets
        if len(code) == 6 and code not in shapes:
            parts = [g for c, g in shapes.items() if len(c) == 9 and c[:6] == code]
            if parts:
                shapes[code] = shapely.union_all(parts)

    extent = shapely.union_all(list(shapes.values())) if shapes else None
    tolerance = 0.0
    if extent is not None and not extent.is_empty:
        minx, miny, maxx, maxy = extent.bounds
        tolerance = max(maxx - minx, maxy - miny) * SIMPLIFY
    simplified = {}
    for length in (6, 9):
        codes = sorted(c for c in shapes if len(c) == length)
        simplified.update(zip(codes, _simplify([shapes[c] for c in codes], tolerance), strict=True))
    features = []
    for code in sorted(simplified):
        geometry = simplified[code]
        if geometry.is_empty:
            continue
        features.append(
            {
                "type": "Feature",
                "id": code,
                "properties": {"code": code, "name": names[code]},
                "geometry": _rounded(mapping(geometry)),
            }
        )
    return {"features": features, "names": names, "approximate": approximate}


def _simplify(geometries, tolerance):
    """Fewer points for the browser. Areas that tile (a coverage) are simplified together,
    so neighbours keep one shared border; others one by one."""
    if not geometries or not tolerance:
        return geometries
    if shapely.coverage_is_valid(geometries):
        return list(shapely.coverage_simplify(geometries, tolerance))
    return [g.simplify(tolerance, preserve_topology=True) for g in geometries]


def _geometry(polygon):
    if not polygon:
        return None
    try:
        geometry = shape(polygon)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    if geometry.is_empty or geometry.geom_type not in ("Polygon", "MultiPolygon"):
        return None
    return geometry if geometry.is_valid else geometry.buffer(0)


def _from_grids(grids):
    """Street outlines from the grids: their union, or when the grids are sparse the land
    nearest to them."""
    if not grids:
        return {}, False
    union = shapely.union_all([g for _, g in grids])
    hull = union.convex_hull
    sparse = hull.area > 0 and union.area / hull.area < SPARSE_COVERAGE
    groups = {}
    if not sparse:
        for code, geometry in grids:
            groups.setdefault(code[:9], []).append(geometry)
        return {k: shapely.union_all(v) for k, v in groups.items()}, False
    minx, miny, maxx, maxy = hull.bounds
    land = hull.buffer(max(maxx - minx, maxy - miny) * 0.03)
    owners = {}
    for code, geometry in grids:
        point = geometry.centroid
        owners.setdefault((round(point.x, 7), round(point.y, 7)), code[:9])
    points = list(owners)
    cells = shapely.voronoi_polygons(MultiPoint(points), extend_to=land, ordered=True)
    for point, cell in zip(points, cells.geoms, strict=True):
        groups.setdefault(owners[point], []).append(cell)
    return {k: shapely.union_all(v).intersection(land) for k, v in groups.items()}, True


def _rounded(value, digits=5):
    """Coordinates rounded to about a metre: a smaller document for the browser."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, list | tuple):
        return [_rounded(v, digits) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    return value
