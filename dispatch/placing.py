"""Where a ticket received without an area lies: the suggested place, when it is sure.

A blank 区域 at intake is filled from the classifier's place (``suggestion["area"]``) when
that place names one area (no ``candidates``) with a confidence of at least
``AREA_FILL_MIN_CONFIDENCE`` (hotline/config.py; measured with ``bench/classify_gazetteer.py``).
The grid, which decides which grid worker sees the ticket, comes from the coordinates (the
point inside one grid of the place, not near a boundary: the rule of
``classifier.geo.GridLocator``) or from a community that has exactly one grid. Anything less
sure leaves the area empty: the ticket waits in the dispatcher's queue as 待定位 and the
dispatcher sets it; nothing is guessed.

Areas and a community's grids come from the per-process reference cache (``hotline.cache``),
so filling an area costs no query once the place has been seen; an administrator's change to
the areas (a new grid, a redrawn polygon) empties it within seconds.
"""

import sqlalchemy as sa

from classifier.geo import GridLocator
from hotline.cache import reference_rows
from hotline.enums import AreaLevel
from hotline.models import Area

#: ``tickets.area_source``: chosen by a person or a client, or filled from the suggestion.
TYPED = "typed"
SUGGESTED = "suggested"


def confident_place(place, min_confidence):
    """The area code of a suggested ``place`` sure enough to fill a blank area, else None."""
    if not place or not place.get("code") or place.get("candidates"):
        return None
    if (place.get("confidence") or 0.0) < min_confidence:
        return None
    return place["code"]


def _area(session, code):
    # The key and loader of ``hotline.schemas.lookup_code``: one cached row per area.
    return reference_rows.get(
        session,
        ("Area", code),
        lambda s: s.scalars(sa.select(Area).where(Area.code == code)).first(),
    )


def _grids(session, community):
    """(grid codes, a GridLocator over those with a polygon) of a community."""

    def load():
        rows = session.execute(
            sa.select(Area.code, Area.polygon)
            .where(Area.parent_id == community.id, Area.level == AreaLevel.grid)
            .order_by(Area.code)
        ).all()
        return [code for code, _ in rows], GridLocator((c, p) for c, p in rows if p)

    return reference_rows.value(session, ("Area.grids", community.code), load)


def suggested_area(session, place, *, lng=None, lat=None, min_confidence):
    """The Area a blank area becomes (None: 待定位): the confident place, narrowed to its grid
    when the coordinates fall inside one of the place's grids or the place is a community
    with a single grid."""
    code = confident_place(place, min_confidence)
    if code is None:
        return None
    area = _area(session, code)
    if area is None or area.level != AreaLevel.community:
        # A grid is as precise as it gets; a street or district has too many grids to pick.
        return area
    codes, located = _grids(session, area)
    if len(codes) == 1:
        return _area(session, codes[0])
    if lng is not None and lat is not None and len(located):
        hit = located.lookup(lng, lat)
        if hit.code is not None and not hit.near_boundary:
            return _area(session, hit.code)
    return area
