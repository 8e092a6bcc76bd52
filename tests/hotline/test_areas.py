"""Editing the area tree (hotline/areas.py): names and aliases, new communities and grids with
their codes, boundaries from GeoJSON checked with shapely, every change audited and followed by
the caches of the areas (pickers, board maps, reference rows, the grid locator)."""

import json

import pytest
import sqlalchemy as sa
from shapely.geometry import box, mapping, shape

from dashboards import maps
from dispatch import placing
from hotline import areas, pickers, reference
from hotline.cache import reference_rows
from hotline.enums import AreaLevel
from hotline.errors import Forbidden, ValidationFailed
from hotline.models import Area, AuditLog

STREET = "370705001"  # 东关街道
COMMUNITY = "370705001004"  # 工福街社区
GRID = "370705001004001"


def area(db, code):
    return db.scalars(sa.select(Area).where(Area.code == code)).one()


def audits(db, action):
    return db.scalars(
        sa.select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)
    ).all()


def square(lng, lat, size=0.002):
    return mapping(box(lng, lat, lng + size, lat + size))


def near(db, code, size=0.002):
    """A square boundary at the area's centre."""
    a = area(db, code)
    return square(a.center_lng - size / 2, a.center_lat - size / 2, size)


# -- names and aliases ------------------------------------------------------------------------


def test_rename_and_aliases_are_audited_old_to_new_and_bump_the_areas(db, user):
    grid = area(db, GRID)
    old_name = grid.name
    before = reference.versions(db)[reference.AREAS]
    changes = areas.update(db, user("admin"), grid, name="胜利东街网格", aliases=["胜东网格"])
    assert changes == {"aliases": [[], ["胜东网格"]], "name": [old_name, "胜利东街网格"]}
    assert reference.versions(db)[reference.AREAS] == before + 1
    (row,) = audits(db, "area.update")
    assert row.target == GRID and row.actor_id == user("admin").id
    assert row.payload["changes"]["name"] == [old_name, "胜利东街网格"]


def test_an_edit_that_changes_nothing_writes_nothing(db, user):
    grid = area(db, GRID)
    before = reference.versions(db)[reference.AREAS]
    assert areas.update(db, user("admin"), grid, name=grid.name, aliases=grid.aliases) == {}
    assert audits(db, "area.update") == []
    assert reference.versions(db)[reference.AREAS] == before


@pytest.mark.parametrize(
    ("name", "aliases", "code"),
    [
        ("", None, "AREA_NAME_REQUIRED"),
        ("   ", None, "AREA_NAME_REQUIRED"),
        ("甲" * 101, None, "AREA_NAME_INVALID"),
        ("东关\n街道", None, "AREA_NAME_INVALID"),
        (None, ["东关", "东关"], "AREA_ALIAS_DUPLICATE"),
        (None, ["东关街道"], "AREA_ALIAS_IS_NAME"),
        (None, ["东 关"], "AREA_ALIAS_INVALID"),
        (None, "东关", "AREA_ALIAS_INVALID"),
        (None, [f"别名{i}" for i in range(21)], "AREA_ALIAS_INVALID"),
        ("北苑街道", None, "AREA_NAME_TAKEN"),  # a sibling street of 奎文区 is called so
    ],
)
def test_bad_names_and_aliases_are_refused_and_nothing_changes(db, user, name, aliases, code):
    street = area(db, STREET)
    before = (street.name, list(street.aliases))
    if code == "AREA_NAME_TAKEN":
        sibling = db.scalars(
            sa.select(Area).where(Area.parent_id == street.parent_id, Area.id != street.id)
        ).first()
        name = sibling.name
    with pytest.raises(ValidationFailed) as refused:
        areas.update(db, user("admin"), street, name=name, aliases=aliases)
    assert refused.value.code == code
    assert (street.name, list(street.aliases)) == before
    assert audits(db, "area.update") == []


def test_only_an_administrator_edits_areas(db, user):
    for username in ("operator", "dispatcher", "supervisor", "leader", "kuiwen"):
        with pytest.raises(Forbidden) as refused:
            areas.update(db, user(username), area(db, GRID), name="改名")
        assert refused.value.code == "AREA_EDIT_FORBIDDEN"
    assert area(db, GRID).name != "改名"


def test_aliases_typed_in_one_box_are_split():
    assert areas.split_aliases("东关、东关街办, 东关办事处；老东关\n东关街") == [
        "东关",
        "东关街办",
        "东关办事处",
        "老东关",
        "东关街",
    ]
    assert areas.split_aliases("  ") == []


# -- new communities and grids ----------------------------------------------------------------


def test_a_grid_gets_the_next_free_code_and_a_default_name(db, user):
    community = area(db, COMMUNITY)
    existing = sorted(c.code for c in community.children)
    grid = areas.add(db, user("admin"), community)
    expected = f"{COMMUNITY}{int(existing[-1][-3:]) + 1:03d}"
    assert grid.code == expected and len(grid.code) == 15
    assert grid.level == AreaLevel.grid and grid.parent is community
    assert grid.name == f"{community.name}第{int(expected[-3:])}网格"
    assert (grid.center_lng, grid.center_lat) == (community.center_lng, community.center_lat)
    (row,) = audits(db, "area.create")
    assert row.target == expected
    assert row.payload["changes"]["parent"] == [None, COMMUNITY]
    assert row.payload["changes"]["level"] == [None, "grid"]
    again = areas.add(db, user("admin"), community, name="新建网格", aliases=["新网格"])
    assert int(again.code[-3:]) == int(expected[-3:]) + 1


def test_a_community_takes_its_official_code_or_the_next_free_one(db, user):
    street = area(db, STREET)
    highest = max(c.code for c in street.children)
    new = areas.add(db, user("admin"), street, name="新城社区")
    assert new.code == f"{STREET}{int(highest[-3:]) + 1:03d}"
    assert new.level == AreaLevel.community
    official = areas.add(db, user("admin"), street, name="幸福社区", code=STREET + "201")
    assert official.code == STREET + "201"


@pytest.mark.parametrize(
    ("parent", "values", "code"),
    [
        (GRID, {"name": "子网格"}, "AREA_PARENT_LEVEL"),
        ("370705", {"name": "新街道"}, "AREA_PARENT_LEVEL"),
        (STREET, {"name": "新社区", "code": "370705002201"}, "AREA_CODE_INVALID"),
        (STREET, {"name": "新社区", "code": "3707050012"}, "AREA_CODE_INVALID"),
        (STREET, {"name": "新社区", "code": STREET + "000"}, "AREA_CODE_INVALID"),
        (STREET, {"name": "新社区", "code": COMMUNITY}, "AREA_CODE_TAKEN"),
        (COMMUNITY, {"name": "网格", "code": COMMUNITY + "099"}, "AREA_CODE_GENERATED"),
        (STREET, {"name": None}, "AREA_NAME_REQUIRED"),
        (COMMUNITY, {"name": "曹家巷"}, None),  # fine: checked below for a twin
    ],
)
def test_bad_new_areas_are_refused(db, user, parent, values, code):
    if code is None:
        twin = area(db, COMMUNITY).children[0].name
        values, code = {"name": twin}, "AREA_NAME_TAKEN"
    count = db.scalar(sa.select(sa.func.count()).select_from(Area))
    with pytest.raises(ValidationFailed) as refused:
        areas.add(db, user("admin"), area(db, parent), **values)
    assert refused.value.code == code
    assert db.scalar(sa.select(sa.func.count()).select_from(Area)) == count
    assert audits(db, "area.create") == []


def test_the_lowest_free_sequence_once_999_is_taken(db, user):
    community = area(db, COMMUNITY)
    db.add(Area(code=COMMUNITY + "999", name="末号网格", level=AreaLevel.grid, parent=community))
    db.flush()
    used = {int(c.code[-3:]) for c in community.children}
    free = min(n for n in range(1, 1000) if n not in used)
    assert areas.next_code(db, community) == f"{COMMUNITY}{free:03d}"


# -- boundaries -------------------------------------------------------------------------------


def test_a_polygon_replaces_the_boundary_and_moves_the_centre(db, user):
    grid = area(db, GRID)
    polygon = near(db, GRID)
    (done,) = areas.replace_polygon(db, user("admin"), grid, json.dumps(polygon))
    assert done.area is grid
    assert shape(grid.polygon).equals(shape(polygon))
    centre = shape(polygon).centroid
    assert (grid.center_lng, grid.center_lat) == (round(centre.x, 6), round(centre.y, 6))
    (row,) = audits(db, "area.polygon")
    old, new = row.payload["changes"]["polygon"]
    assert old == {"area_m2": old["area_m2"], "vertices": 4} and old["area_m2"] > 0
    # About 200 m × 178 m at latitude 36.7.
    assert new["vertices"] == 4 and 30_000 < new["area_m2"] < 45_000
    assert "coordinates" not in json.dumps(row.payload)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda g: {"type": "Feature", "properties": {}, "geometry": g},
        lambda g: {
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": {"name": "x"}, "geometry": g}],
        },
        lambda g: {"type": "MultiPolygon", "coordinates": [g["coordinates"]]},
    ],
)
def test_a_feature_a_collection_of_one_or_a_multipolygon(db, user, wrap):
    grid = area(db, GRID)
    polygon = near(db, GRID)
    areas.replace_polygon(db, user("admin"), grid, json.dumps(wrap(polygon)).encode())
    assert shape(grid.polygon).equals(shape(polygon))


def test_a_crescent_keeps_its_centre_inside(db, user):
    grid = area(db, GRID)
    x, y = grid.center_lng, grid.center_lat
    crescent = mapping(
        box(x, y, x + 0.01, y + 0.01).difference(box(x + 0.001, y, x + 0.01, y + 0.009))
    )
    areas.replace_polygon(db, user("admin"), grid, crescent)
    assert shape(grid.polygon).contains(
        shape({"type": "Point", "coordinates": [grid.center_lng, grid.center_lat]})
    )


def polygon(*ring):
    """A Polygon's JSON text with one ring of the given points."""
    return json.dumps({"type": "Polygon", "coordinates": [list(ring)]})


BAD_GEOJSON = [
    ("{", "GEOJSON_INVALID_JSON", "不是有效的 JSON"),
    ("", "GEOJSON_REQUIRED", "请上传"),
    ("[1, 2]", "GEOJSON_UNSUPPORTED", "须为一个对象"),
    ('{"type": "Point", "coordinates": [119.1, 36.7]}', "GEOJSON_UNSUPPORTED", "现为 Point"),
    (
        json.dumps(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [[119.1, 36.7], [119.2, 36.7]]},
            }
        ),
        "GEOJSON_NOT_POLYGON",
        "现为 LineString",
    ),
    ('{"type": "FeatureCollection", "features": []}', "GEOJSON_EMPTY", "没有要素"),
    ('{"type": "Feature", "geometry": null}', "GEOJSON_NO_GEOMETRY", "没有几何"),
    (
        polygon([119.1, 36.7], [119.2, 36.7], [119.1, 36.7]),
        "GEOJSON_RING_TOO_SHORT",
        "至少需要 4 个点",
    ),
    (
        polygon([119.1, 36.7], [119.2, 36.7], [119.2, 36.8], [119.1, 36.8]),
        "GEOJSON_RING_NOT_CLOSED",
        "环未闭合",
    ),
    (
        polygon([119.1, "36.7"], [119.2, 36.7], [119.2, 36.8], [119.1, 36.7]),
        "GEOJSON_BAD_COORDINATES",
        "[经度, 纬度]",
    ),
    (
        # One level of brackets too few.
        json.dumps(
            {"type": "Polygon", "coordinates": [[119.1, 36.7], [119.2, 36.7], [119.1, 36.7]]}
        ),
        "GEOJSON_BAD_COORDINATES",
        "[经度, 纬度]",
    ),
    (
        # A bow tie: the edges cross.
        polygon([119.1, 36.7], [119.2, 36.8], [119.2, 36.7], [119.1, 36.8], [119.1, 36.7]),
        "GEOJSON_INVALID_POLYGON",
        "自相交",
    ),
    (
        polygon([36.7, 119.1], [36.7, 119.2], [36.8, 119.2], [36.8, 119.1], [36.7, 119.1]),
        "GEOJSON_LAT_LNG_SWAPPED",
        "[经度, 纬度]",
    ),
    (
        polygon([-0.1, 51.5], [0.1, 51.5], [0.1, 51.6], [-0.1, 51.6], [-0.1, 51.5]),
        "GEOJSON_OUTSIDE_CHINA",
        "不在中国境内",
    ),
    (
        # Projected metres (Web Mercator), not degrees.
        polygon([13257000, 4398000], [13258000, 4398000], [13258000, 4399000], [13257000, 4398000]),
        "GEOJSON_OUTSIDE_CHINA",
        "GCJ-02",
    ),
]


@pytest.mark.parametrize(("text", "code", "says"), BAD_GEOJSON)
def test_bad_geojson_is_refused_in_chinese_and_nothing_changes(db, user, text, code, says):
    grid = area(db, GRID)
    before = (json.dumps(grid.polygon), grid.center_lng, grid.center_lat)
    version = reference.versions(db)[reference.AREAS]
    with pytest.raises(ValidationFailed) as refused:
        areas.replace_polygon(db, user("admin"), grid, text)
    assert refused.value.code == code
    assert says in refused.value.message
    assert (json.dumps(grid.polygon), grid.center_lng, grid.center_lat) == before
    assert audits(db, "area.polygon") == []
    assert reference.versions(db)[reference.AREAS] == version


def test_a_boundary_far_from_the_parents_is_refused(db, user):
    community = area(db, COMMUNITY)
    community.polygon = near(db, COMMUNITY, size=0.02)
    db.flush()
    grid = area(db, GRID)
    far = square(community.center_lng + 0.2, community.center_lat)
    with pytest.raises(ValidationFailed) as refused:
        areas.replace_polygon(db, user("admin"), grid, far)
    assert refused.value.code == "GEOJSON_OUTSIDE_PARENT"
    areas.replace_polygon(db, user("admin"), grid, near(db, COMMUNITY, size=0.004))


def grids_collection(db, codes, size=0.001):
    features = []
    for code in codes:
        features.append(
            {
                "type": "Feature",
                "properties": {"code": code, "name": area(db, code).name},
                "geometry": near(db, code, size),
            }
        )
    return {"type": "FeatureCollection", "features": features}


def test_a_collection_of_grids_replaces_them_all(db, user):
    community = area(db, COMMUNITY)
    codes = [g.code for g in community.children]
    document = grids_collection(db, codes)
    done = areas.replace_polygon(db, user("admin"), community, json.dumps(document))
    assert sorted(r.area.code for r in done) == sorted(codes)
    for feature in document["features"]:
        stored = area(db, feature["properties"]["code"]).polygon
        assert shape(stored).equals(shape(feature["geometry"]))
    assert len(audits(db, "area.polygon")) == len(codes)


def test_one_bad_feature_refuses_the_whole_collection(db, user):
    community = area(db, COMMUNITY)
    codes = [g.code for g in community.children]
    before = {c: json.dumps(area(db, c).polygon) for c in codes}
    document = grids_collection(db, codes)
    ring = document["features"][1]["geometry"]["coordinates"][0]
    document["features"][1]["geometry"]["coordinates"] = [ring[::-1]]  # still fine
    document["features"][2]["geometry"] = {"type": "Point", "coordinates": [119.1, 36.7]}
    document["features"].append(
        {"type": "Feature", "properties": {"code": "370702001001001"}, "geometry": near(db, GRID)}
    )
    document["features"].append(
        {"type": "Feature", "properties": {"code": COMMUNITY + "777"}, "geometry": near(db, GRID)}
    )
    with pytest.raises(ValidationFailed) as refused:
        areas.replace_polygon(db, user("admin"), community, json.dumps(document))
    assert refused.value.code == "GEOJSON_FEATURES_INVALID"
    assert "3 个要素不合格" in refused.value.message
    details = refused.value.details
    assert set(details) == {"features[3]", "features[4]", "features[5]"}
    assert "Polygon 或 MultiPolygon" in details["features[3]"]
    assert "不在" in details["features[4]"]
    assert "没有这个编码" in details["features[5]"]
    assert {c: json.dumps(area(db, c).polygon) for c in codes} == before
    assert audits(db, "area.polygon") == []


def test_features_of_a_collection_need_their_codes(db, user):
    community = area(db, COMMUNITY)
    document = grids_collection(db, [g.code for g in community.children])
    del document["features"][0]["properties"]["code"]
    with pytest.raises(ValidationFailed) as refused:
        areas.replace_polygon(db, user("admin"), community, document)
    assert refused.value.code == "GEOJSON_FEATURE_CODE_MISSING"
    assert "properties.code" in refused.value.message


def test_only_an_administrator_replaces_boundaries(db, user):
    with pytest.raises(Forbidden):
        areas.replace_polygon(db, user("dispatcher"), area(db, GRID), near(db, GRID))


# -- the caches follow ------------------------------------------------------------------------


def test_the_pickers_follow_a_rename(app, db, user):
    with app.test_request_context("/"):
        before = pickers.area_levels()
    assert GRID in {c.code for g in before[AreaLevel.grid] for c in g.options}
    areas.update(db, user("admin"), area(db, GRID), name="改过名的网格")
    with app.test_request_context("/"):
        after = pickers.area_levels()
    names = {c.code: c.name for g in after[AreaLevel.grid] for c in g.options}
    assert names[GRID] == "改过名的网格"
    # A street's rename shows in the paths of everything below it.
    areas.update(db, user("admin"), area(db, STREET), name="东关新街道")
    with app.test_request_context("/"):
        labels = {g.label for g in pickers.area_levels()[AreaLevel.community]}
    assert "奎文区 › 东关新街道" in labels


def test_the_pickers_area_tree_is_not_read_again_while_nothing_changes(app, db, count_queries):
    with app.test_request_context("/"):
        pickers.area_levels()
    with app.test_request_context("/"), count_queries() as counted:
        pickers.area_levels()
    assert not any("FROM areas" in s for s in counted.statements), counted


def test_the_board_map_follows_a_rename_and_a_new_boundary(db, user):
    maps.clear_cache()
    names = {f["id"]: f["properties"]["name"] for f in maps.outlines(db, "370705")["features"]}
    assert names[STREET] == "东关街道"
    street = area(db, STREET)
    areas.update(db, user("admin"), street, name="东关新街道")
    areas.replace_polygon(db, user("admin"), street, near(db, STREET, size=0.03))
    features = {f["id"]: f for f in maps.outlines(db, "370705")["features"]}
    assert features[STREET]["properties"]["name"] == "东关新街道"
    assert shape(features[STREET]["geometry"]).equals_exact(
        shape(near(db, STREET, size=0.03)), 1e-4
    )


def test_cached_rows_follow_a_rename(db, user):
    def cached():
        return reference_rows.get(
            db,
            ("Area", GRID),
            lambda s: s.scalars(sa.select(Area).where(Area.code == GRID)).first(),
        )

    assert cached().name != "新名字网格"
    areas.update(db, user("admin"), area(db, GRID), name="新名字网格")
    db.expunge_all()  # the identity map would hand back the edited row itself
    assert cached().name == "新名字网格"


def test_the_grid_locator_of_a_community_follows_a_new_grid_boundary(db, user):
    community = area(db, COMMUNITY)
    codes, located = placing._grids(db, community)
    assert len(codes) == len(community.children)
    grid = areas.add(db, user("admin"), community, name="新网格")
    lng, lat = community.center_lng + 0.05, community.center_lat + 0.05
    areas.replace_polygon(db, user("admin"), grid, square(lng - 0.001, lat - 0.001))
    codes, located = placing._grids(db, community)
    assert grid.code in codes
    assert located.locate(lng, lat) == grid.code


def test_an_overlap_with_a_neighbour_is_reported_not_refused(db, user):
    grid = area(db, GRID)
    home = near(db, GRID, size=0.0001)
    sibling = next(g for g in area(db, COMMUNITY).children if g.code != GRID)
    bigger = mapping(shape(sibling.polygon).buffer(0.0003, join_style="mitre"))
    (done,) = areas.replace_polygon(db, user("admin"), grid, bigger)
    assert (sibling.code, sibling.name) in done.overlaps
    (done,) = areas.replace_polygon(db, user("admin"), grid, home)
    assert done.overlaps == ()
