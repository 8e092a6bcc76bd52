"""Coordinates: China's bounding box, WGS-84 → GCJ-02, distances, and coordinates → grid code
(point in polygon over an STRtree).

Plain data in (``(code, GeoJSON geometry)`` pairs), plain results out. A point that lies
within ``tolerance`` of a boundary it shares with another grid, inside two overlapping grids,
or outside every grid gets no code: such a ticket goes to a person, never to a guess.

Coordinates are ``(lng, lat)`` in whatever system the polygons use (GCJ-02 for DataV data);
``tolerance`` is in the same units (degrees: the default 3e-5 is about 3 m).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import shapely
from shapely.geometry import shape
from shapely.strtree import STRtree

#: Default boundary tolerance in degrees (about 3 m of latitude, 2.7 m of longitude at 36° N).
DEFAULT_TOLERANCE = 3e-5

#: China's bounding box (lng, lat): every position the system accepts lies inside it.
CHINA_LNG = (73.0, 136.0)
CHINA_LAT = (3.0, 54.0)
OUTSIDE_CHINA = (
    f"定位不在中国境内（经度须在 {CHINA_LNG[0]:g}–{CHINA_LNG[1]:g}，"
    f"纬度须在 {CHINA_LAT[0]:g}–{CHINA_LAT[1]:g} 之间）"
)
#: Metres per degree of latitude; a degree of longitude is this × cos(latitude).
METRES_PER_DEGREE = 111_320.0


def in_china(lng: float, lat: float) -> bool:
    return CHINA_LNG[0] <= lng <= CHINA_LNG[1] and CHINA_LAT[0] <= lat <= CHINA_LAT[1]


# Browsers report WGS-84; the grids' polygons (and Chinese map apps) use GCJ-02.
_A = 6378245.0
_EE = 0.00669342162296594323


def _shift_lat(x, y):
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _shift_lng(x, y):
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lng: float, lat: float) -> tuple[float, float]:
    """The published GCJ-02 offset formula (a few hundred metres in Weifang)."""
    g_lng, g_lat = _unrounded_gcj02(lng, lat)
    return round(g_lng, 6), round(g_lat, 6)


def gcj02_to_wgs84(lng: float, lat: float) -> tuple[float, float]:
    """The inverse of ``wgs84_to_gcj02`` (what Open311 clients expect back), by fixed-point
    iteration: the offset changes slowly, so a few rounds land within a few centimetres."""
    w_lng, w_lat = lng, lat
    for _ in range(6):
        g_lng, g_lat = _unrounded_gcj02(w_lng, w_lat)
        w_lng, w_lat = w_lng - (g_lng - lng), w_lat - (g_lat - lat)
    return round(w_lng, 6), round(w_lat, 6)


def _unrounded_gcj02(lng, lat):
    d_lat = _shift_lat(lng - 105.0, lat - 35.0)
    d_lng = _shift_lng(lng - 105.0, lat - 35.0)
    rad = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad) ** 2
    d_lat = (d_lat * 180.0) / ((_A * (1 - _EE)) / (magic * math.sqrt(magic)) * math.pi)
    d_lng = (d_lng * 180.0) / (_A / math.sqrt(magic) * math.cos(rad) * math.pi)
    return lng + d_lng, lat + d_lat


def distance_m(geometry: dict | None, lng: float, lat: float) -> float | None:
    """Metres from (lng, lat) to a GeoJSON ``geometry``, 0 inside (None: no geometry).

    Both in the same lng/lat system. The degrees are scaled to metres on a plane tangent at
    the point (equirectangular): a few metres off over the distances that matter here (is the
    worker at the place or kilometres away?), with no projection library needed.
    """
    if not geometry:
        return None
    geom = shape(geometry)
    if geom.is_empty:
        return None
    x_scale = METRES_PER_DEGREE * math.cos(math.radians(lat))

    def to_metres(coords):
        return (coords - (lng, lat)) * (x_scale, METRES_PER_DEGREE)

    local = shapely.transform(geom, to_metres)
    return round(float(local.distance(shapely.Point(0.0, 0.0))), 1)


@dataclass(frozen=True, slots=True)
class GridHit:
    """The outcome of a lookup.

    ``code`` is the grid, or None; ``near_boundary`` is True when the point is within the
    tolerance of a grid boundary (with a code: an outer edge no other grid shares; without:
    a shared edge or an overlap); ``candidates`` are the grids within the tolerance,
    containing grids first.
    """

    code: str | None
    near_boundary: bool = False
    candidates: tuple[str, ...] = ()

    @property
    def inside(self) -> bool:
        return self.code is not None


class GridLocator:
    """Point-in-polygon lookup over grids; see the module docstring."""

    def __init__(
        self,
        grids: Iterable[tuple[str, dict]],
        tolerance: float = DEFAULT_TOLERANCE,
    ):
        codes, geometries = [], []
        for code, geometry in grids:
            geom = shape(geometry)
            if geom.is_empty:
                continue
            if not geom.is_valid:
                geom = shapely.make_valid(geom)
            codes.append(str(code))
            geometries.append(geom)
        self.tolerance = float(tolerance)
        self.codes = codes
        self._geoms = geometries
        self._boundaries = [g.boundary for g in geometries]
        shapely.prepare(geometries)
        shapely.prepare(self._boundaries)
        self._tree = STRtree(geometries)

    def __len__(self) -> int:
        return len(self.codes)

    def lookup(self, lng: float, lat: float) -> GridHit:
        """The grid containing the point, with the boundary flag and nearby grids."""
        tol = self.tolerance
        point = shapely.Point(lng, lat)
        # Bounding boxes that reach within ``tol`` of the point: a cheap first cut.
        near = self._tree.query(shapely.box(lng - tol, lat - tol, lng + tol, lat + tol))
        if len(near) == 0:
            return GridHit(None)
        containing, close = [], []
        for i in near:
            if shapely.contains_xy(self._geoms[i], lng, lat):
                containing.append(i)
            elif shapely.dwithin(self._geoms[i], point, tol):
                close.append(i)
        if len(containing) == 1 and not close:
            i = containing[0]
            edge = shapely.dwithin(self._boundaries[i], point, tol)
            return GridHit(self.codes[i], bool(edge), (self.codes[i],))
        candidates = tuple(self.codes[i] for i in containing + close)
        if not containing:
            # Outside every grid; near a boundary if it is close to any grid.
            return GridHit(None, bool(close), candidates)
        # On a boundary shared with a neighbour (close to another grid), or in an overlap.
        return GridHit(None, True, candidates)

    def locate(self, lng: float, lat: float) -> str | None:
        """The grid code, or None when the point is outside every grid or on a shared edge."""
        return self.lookup(lng, lat).code

    def near_boundary(self, lng: float, lat: float) -> bool:
        """True when the point is within the tolerance of a grid boundary it cannot settle."""
        return self.lookup(lng, lat).near_boundary
