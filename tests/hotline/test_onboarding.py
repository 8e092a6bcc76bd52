"""Onboarding a city (hotline/onboarding.py): the division, boundary and grid imports, the
city settings and who reads them, the 城市导入 page. Small synthetic tables of a made-up city
(样例市, code 9901); the real tables of ../shared/data where present (never copied)."""

import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from shapely.geometry import shape
from sqlalchemy.orm import aliased

from hotline import city, onboarding, reference, settings, suggestions, tabular
from hotline.admin.onboarding import IMPORTERS
from hotline.enums import AreaLevel, UnitKind
from hotline.errors import ValidationFailed
from hotline.models import Area, AuditLog, Setting, Unit

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
KINDS = {i.kind: i for i in IMPORTERS}

DISTRICTS = """code,name,cityCode,provinceCode
990101,"甲区",9901,99
990102,"乙县",9901,99
370702,"潍城区",3707,37
"""
STREETS = """code,name,areaCode,provinceCode,cityCode
990101001,东风街道,990101,99,9901
990101100,南山镇,990101,99,9901
990102001,北湖街道,990102,99,9901
"""
VILLAGES = """code,name,streetCode,provinceCode,cityCode,areaCode
990101001001,东风社区居委会,990101001,99,9901,990101
990101001002,西风社区居委会,990101001,99,9901,990101
990101100201,张家庄村委会,990101100,99,9901,990101
990102001001,湖畔社区居委会,990102001,99,9901,990102
"""
CITIES = """code,name,provinceCode
9901,"样例市",99
3707,"潍坊市",37
"""


def tables(districts=DISTRICTS, streets=STREETS, villages=VILLAGES, *extra):
    files = [
        ("areas.csv", districts.encode()),
        ("streets_sample_9901.csv", streets.encode()),
        ("villages_sample_9901.csv", villages.encode()),
    ]
    return files + list(extra)


def square(lng, lat, size=0.02):
    return {
        "type": "Polygon",
        "coordinates": [
            [
                [lng, lat],
                [lng + size, lat],
                [lng + size, lat + size],
                [lng, lat + size],
                [lng, lat],
            ]
        ],
    }


def geojson(*features):
    return json.dumps(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"adcode": code, "name": name, "center": centre},
                    "geometry": geometry,
                }
                for code, name, centre, geometry in features
            ],
        },
        ensure_ascii=False,
    ).encode()


BOUNDARIES = geojson(
    (990101, "甲区", [120.01, 30.01], square(120.0, 30.0)),
    (990102, "乙县", [120.03, 30.01], square(120.02, 30.0)),
)


@pytest.fixture(autouse=True)
def fresh_settings():
    """Settings are cached per process; a rolled-back test must not leave its values."""
    settings.clear()
    yield
    settings.clear()
    reference._watcher.forget()


@pytest.fixture
def admin(user):
    return user("admin")


def run(db, admin, kind, sources, dry_run=False, **options):
    return tabular.run(db, admin, KINDS[kind], sources, dry_run=dry_run, options=options)


def ours(db, level=None):
    query = sa.select(Area).where(Area.code.startswith("9901")).order_by(Area.code)
    if level is not None:
        query = query.where(Area.level == level)
    return db.scalars(query).all()


# -- areas ----------------------------------------------------------------------------------


def test_dry_run_shows_the_changes_and_saves_nothing(db, admin):
    result = run(db, admin, "areas", tables(), dry_run=True, city="9901")
    assert result.dry_run and (result.created, result.updated) == (9, 0)
    assert "新增区县 990101 甲区" in result.changes
    assert ours(db) == []
    assert not db.scalar(sa.select(AuditLog.id).where(AuditLog.action == "import.areas"))


def test_import_creates_the_tree_and_a_rerun_changes_nothing(db, admin):
    result = run(db, admin, "areas", tables(), city="9901")
    assert (result.created, result.updated, result.unchanged) == (9, 0, 0)
    areas = {a.code: a for a in ours(db)}
    assert [a.code for a in ours(db, AreaLevel.district)] == ["990101", "990102"]
    assert "370702" not in areas  # the national table's other cities are skipped
    assert areas["990101100"].is_town and not areas["990101001"].is_town
    assert areas["990101001001"].parent.code == "990101001"
    assert areas["990101001"].parent.code == "990101"
    assert areas["990101001001"].aliases == []  # the gazetteer derives the short forms
    audit = db.scalars(sa.select(AuditLog).where(AuditLog.action == "import.areas")).one()
    assert audit.payload["created"] == 9

    again = run(db, admin, "areas", tables(), city="9901")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 9)
    assert len(ours(db)) == 9


def test_a_renamed_area_is_updated_and_a_missing_one_kept(db, admin):
    run(db, admin, "areas", tables(), city="9901")
    renamed = STREETS.replace("南山镇", "南山乡")
    fewer = "\n".join(line for line in VILLAGES.splitlines() if "西风" not in line) + "\n"
    result = run(db, admin, "areas", tables(DISTRICTS, renamed, fewer), city="9901")
    assert (result.created, result.updated, result.unchanged) == (0, 1, 7)
    assert "更新街道乡镇 990101100 南山镇 → 南山乡" in result.changes
    assert any("990101001002 西风社区居委会：保留，未删除" in line for line in result.changes)
    assert db.scalar(sa.select(Area.name).where(Area.code == "990101001002")) == "西风社区居委会"
    assert db.scalar(sa.select(Area.name).where(Area.code == "990101100")) == "南山乡"


def test_every_bad_row_is_reported_and_nothing_is_imported(db, admin):
    streets = (
        STREETS + "99010200,短代码街道,990102,99,9901\n" + "990101001,重复街道,990101,99,9901\n"
    )
    villages = (
        VILLAGES
        + "990101009001,无主社区居委会,990101009,99,9901,990101\n"  # street missing
        + "370702001001,外市社区居委会,370702001,37,3707,370702\n"  # another city
        + "990102001002,,990102001,99,9901,990102\n"  # no name
        + "990102001003,错挂社区,990101001,99,9901,990102\n"  # not under its stated street
    )
    with pytest.raises(tabular.ImportRefused) as refused:
        run(db, admin, "areas", tables(DISTRICTS, streets, villages), city="9901")
    errors = [(e.file, e.row, e.column) for e in refused.value.errors]
    messages = [e.message for e in refused.value.errors]
    assert ("streets_sample_9901.csv", 5, "code") in errors
    assert "街道乡镇代码应为 9 位数字（现为“99010200”）" in messages
    assert ("streets_sample_9901.csv", 6, "code") in errors
    assert any(m.startswith("代码 990101001 重复") for m in messages)
    assert ("villages_sample_9901.csv", 6, "streetCode") in errors
    assert "所属街道乡镇 990101009 不存在（本次导入和系统中都没有）" in messages
    assert ("villages_sample_9901.csv", 7, "code") in errors
    assert "代码 370702001001 不属于样例市" not in messages  # no cities.csv: named by code
    assert "代码 370702001001 不属于代码 9901" in messages
    assert ("villages_sample_9901.csv", 8, "name") in errors
    assert ("villages_sample_9901.csv", 9, "streetCode") in errors
    assert len(errors) == 6
    assert str(refused.value.errors[0]).startswith("streets_sample_9901.csv，第 5 行，“code”列")
    assert ours(db) == []


def test_twelve_digit_codes_of_the_statistics_tables_are_understood(db, admin):
    streets = STREETS.replace("990101001,", "990101001000,").replace(",990101,", ",990101000000,")
    villages = VILLAGES.replace(",990101001,", ",990101001000,")
    result = run(db, admin, "areas", tables(DISTRICTS, streets, villages), city="9901")
    assert result.created == 9
    assert db.scalar(sa.select(Area.parent_id).where(Area.code == "990101001001")) == (
        db.scalar(sa.select(Area.id).where(Area.code == "990101001"))
    )


def test_the_city_by_name_needs_the_cities_table(db, admin):
    cities = ("cities.csv", CITIES.encode())
    result = run(db, admin, "areas", tables(DISTRICTS, STREETS, VILLAGES, cities), city="样例市")
    assert result.created == 9
    with pytest.raises(tabular.ImportRefused) as refused:
        run(db, admin, "areas", tables(), city="样例市")
    assert "cities.csv" in refused.value.errors[0].message
    with pytest.raises(tabular.ImportRefused) as refused:
        run(db, admin, "areas", tables(), city="")
    assert refused.value.errors[0].column == "城市"


def test_a_municipality_is_its_whole_province():
    assert onboarding.choose_city("1101") == onboarding.CityChoice("11", "北京市")
    assert onboarding.choose_city("北京市") == onboarding.CityChoice("11", "北京市")
    assert onboarding.choose_city("北京") == onboarding.CityChoice("11", "北京市")
    assert onboarding.choose_city("110000") == onboarding.CityChoice("11", "北京市")
    assert onboarding.choose_city("370700").prefix == "3707"
    with pytest.raises(tabular.ImportRefused):
        onboarding.choose_city("37070")


def test_street_units_make_offices_and_governments(db, admin):
    result = run(db, admin, "areas", tables(), city="9901", street_units="1")
    units = {
        u.code: u for u in db.scalars(sa.select(Unit).where(Unit.code.like("U-_-9901%"))).all()
    }
    assert set(units) == {"U-D-990101", "U-D-990102", "U-S-990101001", "U-S-990101100"} | {
        "U-S-990102001"
    }
    assert units["U-S-990101001"].name == "东风街道办事处"
    assert units["U-S-990101100"].name == "南山镇人民政府"
    assert units["U-S-990101001"].kind == UnitKind.street_office
    assert [a.code for a in units["U-S-990101001"].areas] == ["990101001"]
    assert units["U-D-990102"].kind == UnitKind.district_government
    assert any("街道乡镇 3 个，区县政府 2 个" in line for line in result.changes)
    again = run(db, admin, "areas", tables(), city="9901", street_units="1")
    assert not any(line.startswith("新增承办单位") for line in again.changes)


def test_the_city_name_stays_when_other_cities_are_present(db, admin):
    cities = ("cities.csv", CITIES.encode())
    result = run(db, admin, "areas", tables(DISTRICTS, STREETS, VILLAGES, cities), city="9901")
    assert any("城市名称仍为“潍坊市”" in line for line in result.changes)
    assert city.name(db) == "潍坊市"


# -- boundaries -----------------------------------------------------------------------------


def test_boundaries_set_polygons_and_centres(db, admin):
    run(db, admin, "areas", tables(), city="9901")
    result = run(db, admin, "boundaries", [("sample_full.json", BOUNDARIES)])
    assert (result.created, result.updated) == (2, 0)
    district = db.scalars(sa.select(Area).where(Area.code == "990101")).one()
    assert shape(district.polygon).area == pytest.approx(0.0004)
    assert (district.center_lng, district.center_lat) == (120.01, 30.01)
    again = run(db, admin, "boundaries", [("sample_full.json", BOUNDARIES)])
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)


def test_unknown_codes_and_bad_geometry_are_row_errors(db, admin):
    run(db, admin, "areas", tables(), city="9901")
    document = geojson(
        (990101, "甲区", [120.01, 30.01], square(120.0, 30.0)),
        (990199, "丙区", [120.01, 30.01], square(120.0, 30.0)),
        (990102, "乙县", None, {"type": "Point", "coordinates": [120.0, 30.0]}),
        (990102, "乙县", None, square(10.0, 30.0)),
    )
    with pytest.raises(tabular.ImportRefused) as refused:
        run(db, admin, "boundaries", [("bad_full.json", document)])
    errors = sorted((e.row, e.column) for e in refused.value.errors)
    assert errors == [(2, "adcode"), (3, "geometry"), (4, "geometry")]
    assert any("990199（丙区）在系统中不存在" in e.message for e in refused.value.errors)
    assert db.scalar(sa.select(Area.polygon).where(Area.code == "990101")) is None
    with pytest.raises(tabular.ImportRefused) as refused:
        run(db, admin, "boundaries", [("x.json", b"{not json")])
    assert refused.value.errors[0].row is None


# -- grids ----------------------------------------------------------------------------------


def grids_of(db, prefix="9901"):
    return db.scalars(
        sa.select(Area)
        .where(Area.level == AreaLevel.grid, Area.code.startswith(prefix))
        .order_by(Area.code)
    ).all()


def test_grids_split_a_district_boundary_among_its_communities(db, admin):
    run(db, admin, "areas", tables(), city="9901")
    run(db, admin, "boundaries", [("sample_full.json", BOUNDARIES)])
    result = run(db, admin, "grids", [], cell_m="500")
    grids = grids_of(db)
    assert result.created == len(grids) > 4
    communities = {a.code for a in ours(db, AreaLevel.community)}
    assert {g.code[:12] for g in grids} == communities  # every community has grids
    for grid in grids:
        assert re.fullmatch(r"9901\d{11}", grid.code) and grid.parent.code == grid.code[:12]
        assert grid.polygon is not None and grid.center_lng is not None
    assert grids[0].name == "东风社区第1网格" and grids[0].code == "990101001001001"
    # The district's boundary is shared out whole, without overlaps.
    district = shape(json.loads(BOUNDARIES)["features"][0]["geometry"])
    covered = sum(shape(g.polygon).area for g in grids if g.code.startswith("990101"))
    assert covered == pytest.approx(district.area, rel=1e-3)
    again = run(db, admin, "grids", [])
    assert again.created == 0 and again.unchanged >= 4
    assert len(grids_of(db)) == len(grids)


def test_grids_follow_a_community_boundary_and_without_one_make_one_each(db, admin):
    run(db, admin, "areas", tables(), city="9901")
    community = db.scalars(sa.select(Area).where(Area.code == "990102001001")).one()
    community.polygon = square(120.0, 30.0, 0.01)  # about 0.96 × 1.1 km
    db.flush()
    run(db, admin, "grids", [], cell_m="250")
    own = grids_of(db, "990102001001")
    assert 12 <= len(own) <= 25
    total = sum(shape(g.polygon).area for g in own)
    assert total == pytest.approx(0.0001, rel=1e-6)
    # No boundary above the others: one grid each, without a polygon (no centre known).
    for code in ("990101001001", "990101001002", "990101100201"):
        (grid,) = grids_of(db, code)
        assert grid.code == code + "001" and grid.polygon is None
    assert grids_of(db, "990101100201")[0].name == "张家庄村第1网格"


def test_grid_options_are_checked(db, admin):
    with pytest.raises(tabular.ImportRefused) as refused:
        run(db, admin, "grids", [], cell_m="abc")
    assert "应为 20–20000 的整数" in refused.value.errors[0].message
    with pytest.raises(tabular.ImportRefused):
        run(db, admin, "grids", [("x.csv", b"a")])


def test_community_short_names():
    assert onboarding.community_short_name("曹家巷社区居委会") == "曹家巷社区"
    assert onboarding.community_short_name("曹家巷居委会") == "曹家巷社区"
    assert onboarding.community_short_name("张家庄村委会") == "张家庄村"
    assert onboarding.community_short_name("建华村村民委员会") == "建华村"
    assert onboarding.community_short_name("某某生活区") == "某某生活区"


# -- city settings ----------------------------------------------------------------------------


def test_city_settings_drive_ticket_numbers(db, admin, app):
    from dispatch import operations

    moment = operations.utcnow()
    assert operations._number_prefix(db, moment).startswith("WF")
    city.update(db, admin, {city.TICKET_PREFIX: "bj"})
    assert settings.get(db, city.TICKET_PREFIX) == "BJ"
    assert operations._number_prefix(db, moment).startswith("BJ")


def test_the_configured_prefix_stands_in_until_set(db):
    assert city.ticket_prefix(db, {"TICKET_NUMBER_PREFIX": "QD"}) == "QD"
    assert city.ticket_prefix(db, {}) == "WF"


def test_bad_city_settings_are_refused_and_nothing_changes(db, admin):
    for values in (
        {city.TICKET_PREFIX: "B1"},
        {city.TICKET_PREFIX: "ABCDEFGHI"},
        {city.MAP_CENTER: "200,40"},
        {city.NAME: " "},
        {"ranking.min_sample": "3"},
    ):
        with pytest.raises(ValidationFailed):
            city.update(db, admin, values)
    assert db.scalar(sa.select(sa.func.count()).select_from(Setting)) == 0


def test_the_gazetteer_reads_the_city_name(db, admin):
    assert suggestions.reference_data(db)[3] == ("潍坊市", "潍坊")
    city.update(db, admin, {city.NAME: "北京市"})
    rows, _, _, names = suggestions.reference_data(db)
    assert names == ("北京市", "北京")
    gazetteer = suggestions.build_gazetteer(rows, names)
    assert gazetteer.city_names == ("北京市", "北京")
    assert city.short_name("大兴安岭地区") == "大兴安岭"


# -- pages --------------------------------------------------------------------------------------


def test_the_onboarding_page_and_city_form(client, db, web_login, form_token):
    web_login(client, "admin")
    page = client.get("/admin/onboarding/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "城市设置" in html and "行政区划" in html and "/admin/imports/areas" in html
    assert 'value="潍坊市"' in html

    token = form_token(client, "/admin/onboarding/")
    saved = client.post(
        "/admin/onboarding/city",
        data={
            "csrf_token": token,
            "name": "北京市",
            "ticket_prefix": "bj",
            "map_center": "116.4074, 39.9042",
        },
    )
    assert saved.status_code == 302
    assert city.template_values(db) == {
        "name": "北京市",
        "ticket_prefix": "BJ",
        "map_center": [116.4074, 39.9042],
    }
    audit = db.scalars(sa.select(AuditLog).where(AuditLog.action == "settings.update")).one()
    assert audit.payload["changes"]["city.name"] == ["潍坊市", "北京市"]

    refused = client.post(
        "/admin/onboarding/city",
        data={
            "csrf_token": token,
            "name": "天津市",
            "ticket_prefix": "TJ1",
            "map_center": "117.2,39.1",
        },
    )
    assert refused.status_code == 422
    assert "工单编号前缀须为 1–8 个大写英文字母" in refused.get_data(as_text=True)
    assert city.name(db) == "北京市"


@pytest.mark.parametrize(
    "username, landing", [("dispatcher", "/dispatch"), ("operator", "/console")]
)
def test_other_roles_cannot_onboard(client, db, username, landing, web_login, form_token):
    web_login(client, username)
    assert client.get("/admin/onboarding/").status_code == 403
    posted = client.post(
        "/admin/onboarding/city",
        data={
            "csrf_token": form_token(client, landing),
            "name": "北京市",
            "ticket_prefix": "BJ",
            "map_center": "116.4,39.9",
        },
    )
    assert posted.status_code == 403
    assert city.name(db) == "潍坊市"


def test_the_generic_import_page_runs_grids_without_a_file(client, db, web_login, form_token):
    web_login(client, "admin")
    page = client.get("/admin/imports/grids")
    assert page.status_code == 200 and 'name="files"' not in page.get_data(as_text=True)
    token = form_token(client, "/admin/imports/grids")
    checked = client.post(
        "/admin/imports/grids", data={"csrf_token": token, "mode": "check", "cell_m": "500"}
    )
    assert checked.status_code == 200
    assert "试运行（未保存）" in checked.get_data(as_text=True)


# -- the real tables (../shared/data) ----------------------------------------------------------

needs_data = pytest.mark.skipif(
    not (DATA / "admin_divisions" / "villages_beijing_11.csv").is_file(),
    reason="../shared/data is absent",
)


def _beijing_tables(district):
    folder = DATA / "admin_divisions"
    out = [("areas.csv", (folder / "areas.csv").read_bytes())]
    for name in ("streets_beijing_11.csv", "villages_beijing_11.csv"):
        lines = (folder / name).read_text(encoding="utf-8").splitlines(keepends=True)
        out.append((name, "".join(lines[:1] + [x for x in lines[1:] if x[:6] == district])))
    return [(n, d.encode() if isinstance(d, str) else d) for n, d in out]


@needs_data
def test_real_beijing_tables_and_boundaries(db, admin):
    sources = _beijing_tables("110101")
    result = run(db, admin, "areas", sources, city="北京市")
    streets = sum(1 for line in sources[1][1].decode().splitlines()[1:] if line)
    villages = sum(1 for line in sources[2][1].decode().splitlines()[1:] if line)
    assert result.created == 16 + streets + villages
    assert db.scalar(sa.select(Area.name).where(Area.code == "110101001")) == "东华门街道"
    geo = (DATA / "geojson" / "110000_full.json").read_bytes()
    boundaries = run(db, admin, "boundaries", [("110000_full.json", geo)])
    assert boundaries.created == 16
    grids = run(db, admin, "grids", [], cell_m="1000")
    assert grids.created >= villages  # at least one per community of 东城
    without = db.scalar(
        sa.select(sa.func.count(Area.id)).where(
            Area.code.startswith("11"),
            Area.level == AreaLevel.community,
            ~sa.exists().where(aliased(Area).parent_id == Area.id),
        )
    )
    assert without == 0


def test_the_suggester_follows_the_city_name(db, admin):
    service = suggestions.service()
    before, _ = service._suggester(db)
    assert before.gazetteer.city_names == ("潍坊市", "潍坊")
    city.update(db, admin, {city.NAME: "北京市"})
    after, _ = service._suggester(db)
    assert after is not before and after.gazetteer.city_names == ("北京市", "北京")
