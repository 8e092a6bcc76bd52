"""The boards' map outlines (dashboards/maps.py): from the stored area polygons, inferred from
sparse grids, the union of dense ones, and an area's own polygon first."""

import sqlalchemy as sa
from shapely.geometry import box, mapping, shape

from dashboards import maps
from hotline import reference
from hotline.models import Area


def test_outlines_of_the_seeded_city_are_inferred_from_its_grids(db):
    maps.clear_cache()
    city = maps.outlines(db)
    assert city["approximate"] is True and city["level"] == "district"
    shapes = {f["id"]: shape(f["geometry"]) for f in city["features"]}
    assert sorted(shapes) == ["370702", "370703", "370704", "370705", "370772"]
    # A partition: districts do not overlap, and each holds its own grids' centres.
    assert shapes["370705"].intersection(shapes["370702"]).area < 1e-9
    grids = db.scalars(sa.select(Area).where(Area.polygon.is_not(None))).all()
    for grid in grids[::25]:
        centre = shape(grid.polygon).centroid
        assert shapes[grid.code[:6]].buffer(1e-4).contains(centre), grid.code
    kuiwen = maps.outlines(db, "370705")
    assert {f["id"][:6] for f in kuiwen["features"]} == {"370705"}
    assert len(kuiwen["features"]) == 10
    assert maps.outlines(db, "379999") is None


def test_dense_grids_are_unioned_and_not_approximate():
    # Two streets, each a 2×2 block of touching grids: the outline is exactly their union.
    grids = []
    for street, x0 in (("370799001", 0.0), ("370799002", 2.0)):
        for i in range(2):
            for j in range(2):
                grids.append((f"{street}001{i}{j}1", box(x0 + i, j, x0 + i + 1, j + 1)))
    outlines, approximate = maps._from_grids(grids)
    assert approximate is False
    assert outlines["370799001"].equals(box(0, 0, 2, 2))
    assert outlines["370799002"].equals(box(2, 0, 4, 2))


def test_an_areas_own_polygon_comes_first_and_changes_reach_the_cache(db):
    maps.clear_cache()
    before = {f["id"]: f for f in maps.outlines(db, "370705")["features"]}
    assert before["370705001"]["geometry"]["type"] == "Polygon"
    street = db.scalars(sa.select(Area).where(Area.code == "370705001")).one()
    street.polygon = mapping(box(119.10, 36.70, 119.12, 36.72))
    reference.bump(db, reference.AREAS)  # as every change to the areas does
    after = {f["id"]: f for f in maps.outlines(db, "370705")["features"]}
    assert shape(after["370705001"]["geometry"]).equals(box(119.10, 36.70, 119.12, 36.72))
    # The district's outline includes its streets' (its own is not stored).
    district = shape(
        next(f for f in maps.outlines(db)["features"] if f["id"] == "370705")["geometry"]
    )
    assert district.buffer(1e-4).contains(box(119.10, 36.70, 119.12, 36.72))
