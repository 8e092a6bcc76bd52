"""Coordinates → grid code (point in polygon over an STRtree).

Plain data in (``(code, GeoJSON geometry)`` pairs), plain results out. A point that lies
within ``tolerance`` of a boundary it shares with another grid, inside two overlapping grids,
or outside every grid gets no code: such a ticket goes to a person, never to a guess.

Coordinates are ``(lng, lat)`` in whatever system the polygons use (GCJ-02 for DataV data);
``tolerance`` is in the same units (degrees: the default 3e-5 is about 3 m).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import shapely
from shapely.geometry import shape
from shapely.strtree import STRtree

#: Default boundary tolerance in degrees (about 3 m of latitude, 2.7 m of longitude at 36° N).
DEFAULT_TOLERANCE = 3e-5


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
