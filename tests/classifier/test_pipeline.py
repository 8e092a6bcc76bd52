"""The intake pipeline on the seeded city: the default model, the gazetteer and grids built from
the Area table, and the dispatch catalogue, put together by ``hotline.suggestions``."""

import copy

import pytest
import sqlalchemy as sa
from shapely.geometry import shape

from classifier import artefact
from classifier.pipeline import Suggester
from hotline.enums import AreaLevel
from hotline.models import Area, Category
from hotline.suggestions import build_suggester

STREETLIGHT = "奎文区东关街道中学街社区的路灯坏了一个星期，晚上出门黑漆漆的，希望尽快维修。"
GRID = "370705001001001"


@pytest.fixture(scope="module")
def bundle(models_dir):
    """The default model (a copy of its own: tests may patch it)."""
    bundle, _ = artefact.load(models_dir, artefact.active_version(models_dir))
    return bundle


@pytest.fixture
def suggester(db, bundle):
    return build_suggester(db, bundle)


def _grid_polygon(db, code):
    return db.scalars(sa.select(Area.polygon).where(Area.code == code)).one()


def test_builds_from_the_seeded_tables(db, suggester):
    assert isinstance(suggester, Suggester)
    grids = db.scalar(
        sa.select(sa.func.count()).select_from(Area).where(Area.level == AreaLevel.grid)
    )
    assert len(suggester.grids) == grids > 0
    assert len(suggester.router.catalogue) > 0
    categories = db.scalar(sa.select(sa.func.count()).select_from(Category))
    assert len(suggester.categories) == categories
    assert suggester.categories["0101"].name == "市政设施"
    assert suggester.categories["0104"].utility is True
    assert suggester.categories["0101"].utility is False


def test_streetlight_complaint(suggester, bundle):
    result = suggester.suggest(STREETLIGHT)
    assert set(result) == {"category", "request_type", "urgency", "area", "units"}

    top = result["category"]["top"]
    assert len(top) == 3
    assert [set(item) for item in top] == [{"code", "name", "probability"}] * 3
    codes = [item["code"] for item in top]
    assert any(code.startswith("01") for code in codes), top
    assert all(code in bundle.category.classes_ for code in codes)
    assert top == sorted(top, key=lambda item: -item["probability"])
    assert sum(item["probability"] for item in top) <= 1.0 + 1e-3
    first = top[0]
    assert first["name"] == suggester.categories[first["code"]].name
    assert result["category"]["abstain"] is False

    area = result["area"]
    assert area["source"] == "content"
    assert area["level"] in {"community", "grid"}
    assert area["code"].startswith("370705001001")
    assert area["district"] == "370705"
    assert area["street"] == "370705001"
    assert area["community"] == "370705001001"
    assert area["matched"] in STREETLIGHT
    assert 0 < area["confidence"] <= 1

    assert result["urgency"] == {"tier": "normal", "transfer_to": None, "evidence": None}
    assert result["request_type"] == "complaint"


def test_units_come_from_the_catalogue(suggester):
    result = suggester.suggest(STREETLIGHT)
    best = result["category"]["top"][0]["code"]
    # the seeded catalogue has a city-wide rule for every second-level code of 01
    unit = suggester.router.catalogue.lookup(best, result["area"]["code"])
    assert unit is not None
    assert result["units"][0] == {"code": unit, "confidence": 0.8, "reason": "派单目录规则"}
    assert len(result["units"]) == 1  # the default model has no learned router


def test_street_specific_catalogue_rule(suggester):
    result = suggester.suggest("东关街道中学街社区门口的垃圾堆了好几天没人清运，臭气熏天")
    best = result["category"]["top"][0]["code"]
    assert best == "0205", result["category"]
    assert result["area"]["street"] == "370705001"
    # 0205 市容环境卫生 is dispatched to the street office where it happens
    assert result["units"] == [
        {"code": "U-S-370705001", "confidence": 0.8, "reason": "派单目录规则"}
    ]


def test_emergency_text(suggester):
    result = suggester.suggest("我家厨房燃气泄漏了，满屋子都是味，快来人")
    assert result["urgency"]["tier"] == "emergency"
    assert result["urgency"]["transfer_to"] == "utility"
    assert result["urgency"]["evidence"] == "燃气泄漏了"

    fire = suggester.suggest("楼下饭店着火了，冒黑烟")
    assert fire["urgency"]["tier"] == "emergency"
    assert fire["urgency"]["transfer_to"] == "119"


def test_the_default_model_confirms_emergencies_with_its_urgency_model(suggester, bundle):
    assert bundle.urgency is not None
    # one word ("摔倒") no longer makes a street-light complaint an emergency (issue 13)
    light = suggester.suggest("小区门口的路灯坏了，昨晚有个老人差点摔倒，赶紧修修吧")
    assert light["urgency"]["tier"] != "emergency"
    # …and a wording no rule knows is one
    roof = suggester.suggest("有个男的骑在十八楼的阳台栏杆上，一条腿悬在外面")
    assert roof["urgency"]["tier"] == "emergency"
    assert roof["urgency"]["transfer_to"] in {"110", "119", "120", "122", "utility"}


def test_a_bundle_without_an_urgency_model_uses_the_rules(db, bundle):
    rules_only = copy.copy(bundle)
    rules_only.urgency = None
    suggester = build_suggester(db, rules_only)
    fire = suggester.suggest("楼下饭店着火了，冒黑烟")
    assert fire["urgency"] == {"tier": "emergency", "transfer_to": "119", "evidence": "着火"}
    assert suggester.suggest(STREETLIGHT)["urgency"]["tier"] == "normal"


def test_utility_category_makes_a_complaint_urgent(suggester):
    result = suggester.suggest("自来水公司抄表员把水表读数抄错了，水费多收了两百元")
    best = result["category"]["top"][0]["code"]
    assert best == "0102", result["category"]
    assert result["urgency"]["tier"] == "urgent"


def test_coordinates_inside_a_grid(db, suggester):
    polygon = _grid_polygon(db, GRID)
    centre = shape(polygon).centroid
    result = suggester.suggest("路灯坏了，晚上看不见", lng=centre.x, lat=centre.y)
    assert result["area"] == {
        "code": GRID,
        "level": "grid",
        "district": GRID[:6],
        "street": GRID[:9],
        "community": GRID[:12],
        "grid": GRID,
        "confidence": 1.0,
        "matched": None,
        "source": "coordinates",
        "candidates": [],
    }
    # coordinates win over an address elsewhere
    elsewhere = suggester.suggest(
        "路灯坏了", address="奎文区东关街道工福街社区", lng=centre.x, lat=centre.y
    )
    assert elsewhere["area"]["code"] == GRID
    assert elsewhere["area"]["source"] == "coordinates"


def test_point_on_a_shared_grid_edge_falls_back_to_the_address(db, suggester):
    square = shape(_grid_polygon(db, GRID))
    neighbour = shape(_grid_polygon(db, GRID[:-3] + "002"))
    assert square.touches(neighbour)
    min_x, min_y, max_x, max_y = square.bounds
    edge_x = max_x  # the east edge is the neighbour's west edge
    assert neighbour.bounds[0] == pytest.approx(edge_x)
    result = suggester.suggest(
        "路灯坏了", address="奎文区东关街道中学街社区", lng=edge_x, lat=(min_y + max_y) / 2
    )
    assert result["area"]["source"] == "address"
    assert result["area"]["code"] == "370705001001"


def test_point_outside_every_grid_falls_back_to_the_text(suggester):
    result = suggester.suggest(STREETLIGHT, lng=120.5, lat=37.5)
    assert result["area"]["source"] == "content"
    assert result["area"]["community"] == "370705001001"


def test_address_is_preferred_to_the_text(suggester):
    result = suggester.suggest(STREETLIGHT, address="奎文区东关街道工福街社区")
    assert result["area"]["source"] == "address"
    assert result["area"]["community"] == "370705001004"


def test_no_place_at_all(suggester):
    result = suggester.suggest("路灯坏了好几天了")
    assert result["area"] is None


def test_abstaining_model_suggests_no_unit(db, bundle, monkeypatch):
    monkeypatch.setattr(bundle.category, "threshold", 1.01)
    suggester = build_suggester(db, bundle)
    result = suggester.suggest(STREETLIGHT)
    assert result["category"]["abstain"] is True
    assert len(result["category"]["top"]) == 3
    assert result["units"] == []
    assert result["area"]["community"] == "370705001001"  # the place is still resolved


def test_scrubbed_text_reaches_the_model(suggester, monkeypatch):
    seen = []
    original = suggester.bundle.category.predict

    def spy(texts, k=3):
        seen.extend(texts)
        return original(texts, k=k)

    monkeypatch.setattr(suggester.bundle.category, "predict", spy)
    suggester.suggest("路灯坏了，我的电话１３８０５３６０００１")
    assert seen == ["路灯坏了,我的电话<电话>"]
