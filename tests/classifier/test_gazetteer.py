"""Gazetteer: names, abbreviations, consistency, ambiguity, noise, speed; seed and real data."""

import json
import time
from pathlib import Path

import pytest

from classifier.gazetteer import Gazetteer, Resolution

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data"

# A small tree with the traps of the real one: 城关街道 in two districts, 张家庄 in three towns,
# a village 东关 next to the street 东关, a two-character stem (前进), a road-named community
# (中学街), a district-prefixed street name (高密市朝阳街道), a development zone.
AREAS = [
    {"code": "370705", "name": "奎文区", "level": "district", "parent": None},
    {"code": "370705001", "name": "东关街道", "level": "street", "parent": "370705"},
    {
        "code": "370705001001",
        "name": "中学街社区居民委员会",
        "level": "community",
        "parent": "370705001",
    },
    {"code": "370705001201", "name": "张家庄村委会", "level": "community", "parent": "370705001"},
    {"code": "370705009", "name": "新城街道", "level": "street", "parent": "370705"},
    {"code": "370705009201", "name": "张家庄村委会", "level": "community", "parent": "370705009"},
    {"code": "370705009002", "name": "泰华社区居委会", "level": "community", "parent": "370705009"},
    {"code": "370702", "name": "潍城区", "level": "district", "parent": None},
    {"code": "370702001", "name": "城关街道", "level": "street", "parent": "370702"},
    {"code": "370702001001", "name": "曹家巷居委会", "level": "community", "parent": "370702001"},
    {"code": "370702001201", "name": "前进村委会", "level": "community", "parent": "370702001"},
    {"code": "370724", "name": "临朐县", "level": "district", "parent": None},
    {"code": "370724001", "name": "城关街道", "level": "street", "parent": "370724"},
    {"code": "370724001201", "name": "东关村委会", "level": "community", "parent": "370724001"},
    {"code": "370724101", "name": "五井镇", "level": "street", "parent": "370724"},
    {
        "code": "370724101201",
        "name": "张家庄村民委员会",
        "level": "community",
        "parent": "370724101",
    },
    {"code": "370785", "name": "高密市", "level": "district", "parent": None},
    {"code": "370785001", "name": "高密市朝阳街道", "level": "street", "parent": "370785"},
    {
        "code": "370785001001",
        "name": "凤凰社区居民委员会",
        "level": "community",
        "parent": "370785001",
    },
    {
        "code": "370772",
        "name": "潍坊滨海经济技术开发区",
        "level": "district",
        "parent": None,
        "aliases": ["滨海区"],
    },
    {"code": "370772005", "name": "大家洼街道", "level": "street", "parent": "370772"},
    {"code": "370772005001", "name": "海城社区居委会", "level": "community", "parent": "370772005"},
    {
        "code": "370705001001001",
        "name": "中学街社区居民委员会第1网格",
        "level": "grid",
        "parent": "370705001001",
    },
    {
        "code": "370705001001002",
        "name": "中学街社区居民委员会第2网格",
        "level": "grid",
        "parent": "370705001001",
    },
]

ZHONGXUEJIE = {
    "district": "370705",
    "street": "370705001",
    "community": "370705001001",
    "grid": None,
}


@pytest.fixture(scope="module")
def gaz():
    return Gazetteer(AREAS)


def codes(result):
    return result.codes()


# ---------------------------------------------------------------- names and abbreviations


@pytest.mark.parametrize(
    "text",
    [
        "奎文区东关街道中学街社区居民委员会",
        "奎文区东关街道中学街社区",
        "奎文东关中学街社区",
        "东关街道办事处中学街居委会",
        "潍坊市奎文区东关街道中学街社区",
        "东关街道中学街",  # road-like stem, after its street
    ],
)
def test_full_and_abbreviated_forms_resolve(gaz, text):
    assert codes(gaz.resolve(text)) == ZHONGXUEJIE


@pytest.mark.parametrize(
    ("text", "level", "code"),
    [
        ("奎文", "district", "370705"),
        ("临朐", "district", "370724"),
        ("东关", "street", "370705001"),
        ("东关街道", "street", "370705001"),
        ("五井", "street", "370724101"),
        ("五井镇人民政府", "street", "370724101"),
        ("曹家巷社区", "community", "370702001001"),
        ("曹家巷居委会", "community", "370702001001"),
        ("泰华社区", "community", "370705009002"),
        ("朝阳街道", "street", "370785001"),
        ("高密市朝阳街道", "street", "370785001"),
        ("滨海区", "district", "370772"),
        ("滨海开发区", "district", "370772"),
        ("潍坊滨海经济技术开发区", "district", "370772"),
        ("滨海经济技术开发区大家洼", "street", "370772005"),
        ("新城街道张家庄", "community", "370705009201"),
        ("五井镇张家庄村", "community", "370724101201"),
        ("潍城区城关街道前进村", "community", "370702001201"),
        ("潍城城关前进", "community", "370702001201"),  # two-character stem after its street
        ("中学街社区第2网格", "grid", "370705001001002"),
    ],
)
def test_names_aliases_and_short_forms(gaz, text, level, code):
    result = gaz.resolve(text)
    assert result.level == level, (text, result)
    assert result.code == code
    assert not result.candidates


def test_village_named_like_a_street_needs_its_street(gaz):
    # 东关 alone is the street (奎文); 东关村 in 临朐's 城关 is named in full.
    assert gaz.resolve("东关").community is None
    result = gaz.resolve("临朐县城关街道东关村")
    assert result.community == "370724001201"
    assert result.street == "370724001"


def test_road_like_and_short_stems_alone_are_not_communities(gaz):
    # 中学街 alone is a road, 前进 alone an ordinary word.
    assert gaz.resolve("中学街88号门口").community is None
    assert gaz.resolve("奎文区中学街88号").community is None
    assert gaz.resolve("车辆前进时").community is None


def test_name_inside_another_name_is_not_taken(gaz):
    # 新城 is not a short form at all here (generic), and a bare name followed by 小区/路 is
    # part of another name.
    assert gaz.resolve("恒大新城小区").street is None
    assert gaz.resolve("五井路上有坑").street is None
    assert gaz.resolve("临朐县五井镇").street == "370724101"


# ---------------------------------------------------------------- consistency and ambiguity


def test_ambiguous_village_gives_candidates_not_a_guess(gaz):
    result = gaz.resolve("张家庄村委会")
    assert result.community is None
    assert result.street is None
    assert result.ambiguous
    assert {c.community for c in result.candidates} == {
        "370705001201",
        "370705009201",
        "370724101201",
    }
    assert all(c.street and c.district for c in result.candidates)


def test_ambiguity_fills_the_certain_level(gaz):
    # Two 张家庄 in 奎文: the district is certain, the street is not.
    result = gaz.resolve("奎文区张家庄村")
    assert result.district == "370705"
    assert result.street is None and result.community is None
    assert {c.community for c in result.candidates} == {"370705001201", "370705009201"}
    # The district settles it when it has one.
    assert gaz.resolve("临朐县张家庄村").community == "370724101201"


def test_ambiguous_street_gives_candidates(gaz):
    result = gaz.resolve("城关街道门口")
    assert result.street is None and result.district is None
    assert {c.street for c in result.candidates} == {"370702001", "370724001"}


def test_street_must_be_in_the_mentioned_district(gaz):
    assert gaz.resolve("潍城区城关街道").street == "370702001"
    assert gaz.resolve("临朐县城关街道").street == "370724001"
    assert gaz.resolve("临朐城关").street == "370724001"
    # 奎文 has no 城关街道: no street is picked, in 潍城 or in 临朐.
    result = gaz.resolve("奎文区城关街道")
    assert result.street is None


def test_community_must_be_in_the_mentioned_street(gaz):
    assert gaz.resolve("东关街道张家庄村").community == "370705001201"
    assert gaz.resolve("新城街道张家庄村").community == "370705009201"
    # 曹家巷 is in 潍城's 城关; with 东关 it is a contradiction, never 东关's community.
    result = gaz.resolve("东关街道曹家巷社区")
    assert result.community in (None, "370702001001")
    assert result.street != "370705001" or result.community is None


def test_longest_most_specific_match_wins(gaz):
    result = gaz.resolve("奎文区东关街道中学街社区第1网格")
    assert result.grid == "370705001001001"
    assert result.community == "370705001001"


# ---------------------------------------------------------------- span, confidence, noise


def test_span_and_matched_text_point_into_the_input(gaz):
    text = "我家住在奎文区东关街道中学街社区3号楼2单元附近，楼下烧烤店很吵"
    result = gaz.resolve(text)
    assert codes(result) == ZHONGXUEJIE
    assert result.matched == "奎文区东关街道中学街社区"
    assert text[result.span[0] : result.span[1]] == result.matched


def test_span_with_spaces_and_full_width(gaz):
    text = "地址：奎 文 区　东关街道　中学街社区１２３号"
    result = gaz.resolve(text)
    assert codes(result) == ZHONGXUEJIE
    assert text[result.span[0] : result.span[1]] == result.matched
    assert result.matched.startswith("奎") and result.matched.endswith("社区")


def test_confidence_orders_full_above_short_above_ambiguous(gaz):
    full = gaz.resolve("奎文区东关街道中学街社区居民委员会").confidence
    short = gaz.resolve("东关中学街社区").confidence
    community_only = gaz.resolve("中学街社区").confidence
    street_abbrev = gaz.resolve("东关").confidence
    ambiguous = gaz.resolve("张家庄村").confidence
    assert 1.0 >= full > short > community_only > street_abbrev > ambiguous >= 0.0
    assert full > 0.9


@pytest.mark.parametrize(
    "text",
    [
        "奎文区东关街道中学街社区123号",
        "奎文区东关街道中学街社区3栋2单元门口",
        "东关街道中学街社区对面的烧烤店",
        "市民反映：东关中学街社区胜利东街附近污水外溢",
        "我家住在中学街社区，楼下门口堆满垃圾",
        "东关街道 中学街 社区 12号",
        "潍坊奎文东关中学街社区５号楼",
    ],
)
def test_noise_is_tolerated(gaz, text):
    assert gaz.resolve(text).community == "370705001001"


def test_nothing_found(gaz):
    for text in ("", "路灯不亮，晚上很危险", "123号"):
        result = gaz.resolve(text)
        assert result == Resolution()
        assert result.code is None and result.confidence == 0.0 and not result.candidates


# ---------------------------------------------------------------- index and API


def test_names_for_the_segmenter(gaz):
    names = gaz.names()
    for word in ("奎文区", "奎文", "东关街道", "东关", "中学街社区", "张家庄村", "潍坊"):
        assert word in names
    assert "前进" not in names  # a weak stem would split ordinary text
    assert "前进" in gaz.names(include_weak=True)

    class Tokenizer:
        def __init__(self):
            self.words = []

        def add_word(self, word, freq=None, tag=None):
            self.words.append((word, tag))

    tokenizer = Tokenizer()
    assert gaz.add_user_words(tokenizer) == len(names)
    assert ("奎文区", "ns") in tokenizer.words


def test_generated_short_form_of_an_ancestor_is_not_reused():
    gaz = Gazetteer(
        [
            {"code": "1", "name": "寒亭区", "level": "district", "parent": None},
            {"code": "11", "name": "寒亭街道", "level": "street", "parent": "1"},
        ]
    )
    assert gaz.resolve("寒亭").level == "district"
    assert gaz.resolve("寒亭街道").level == "street"


def test_unknown_level_is_rejected():
    with pytest.raises(ValueError):
        Gazetteer([{"code": "1", "name": "x", "level": "town", "parent": None}])


def test_area_lookup(gaz):
    assert gaz.area("370705001") == {
        "code": "370705001",
        "name": "东关街道",
        "level": "street",
        "parent": "370705",
    }
    assert gaz.area("nope") is None


def test_resolve_is_fast_on_200_characters(gaz):
    text = ("市民来电反映，小区门口道路坑洼不平，下雨后积水严重，电动车经过时容易摔倒，" * 3)[:150]
    text += "我家住在奎文区东关街道中学街社区3号楼，希望相关部门尽快修补，谢谢。"
    text = text[:200]
    gaz.resolve(text)
    runs = 300
    start = time.perf_counter()
    for _ in range(runs):
        gaz.resolve(text)
    per_call_ms = (time.perf_counter() - start) * 1000 / runs
    assert per_call_ms < 1.0, per_call_ms


# ---------------------------------------------------------------- seed data


def seed_areas():
    """seed_data/areas.json flattened, with grids made like hotline/seed.py makes them."""
    with open(ROOT / "seed_data" / "areas.json", encoding="utf-8") as f:
        tree = json.load(f)
    rows = []
    for district in tree["districts"]:
        rows.append(
            {
                "code": district["code"],
                "name": district["name"],
                "level": "district",
                "parent": None,
                "aliases": district.get("aliases", []),
            }
        )
        for street in district["streets"]:
            rows.append(
                {
                    "code": street["code"],
                    "name": street["name"],
                    "level": "street",
                    "parent": district["code"],
                    "aliases": street.get("aliases", []),
                }
            )
            for community in street["communities"]:
                rows.append(
                    {
                        "code": community["code"],
                        "name": community["name"],
                        "level": "community",
                        "parent": street["code"],
                        "aliases": community.get("aliases", []),
                    }
                )
                for seq in range(1, community.get("grids", 3) + 1):
                    rows.append(
                        {
                            "code": f"{community['code']}{seq:03d}",
                            "name": f"{community['name']}第{seq}网格",
                            "level": "grid",
                            "parent": community["code"],
                        }
                    )
    return tree, rows


@pytest.fixture(scope="module")
def seed():
    tree, rows = seed_areas()
    return tree, Gazetteer(rows)


def test_seed_full_address(seed):
    _, gaz = seed
    result = gaz.resolve("奎文区东关街道中学街社区胜利东街123号3栋2单元")
    assert codes(result) == {
        "district": "370705",
        "street": "370705001",
        "community": "370705001001",
        "grid": None,
    }
    assert result.confidence > 0.95
    assert result.matched == "奎文区东关街道中学街社区"


def test_seed_every_community_resolves_by_name_and_alias(seed):
    tree, gaz = seed
    for district in tree["districts"]:
        for street in district["streets"]:
            for community in street["communities"]:
                for name in [community["name"], *community.get("aliases", [])]:
                    text = f"{district['name']}{street['name']}{name}附近"
                    assert gaz.resolve(text).community == community["code"], text
                result = gaz.resolve(f"{street['name']}{community['name']}第2网格")
                assert result.grid == f"{community['code']}002"


def test_seed_roads_and_landmarks_are_not_guessed(seed):
    _, gaz = seed
    # 北海路 is a road in four districts and a community in 寒亭: alone it is a road.
    assert gaz.resolve("北海路123号路灯不亮").community is None
    assert gaz.resolve("寒亭区开元街道北海路社区").community == "370703002005"
    # 坊子火车站 is in 坊子; 火车站社区 is in 潍城 and must not be picked.
    result = gaz.resolve("坊子火车站对面")
    assert result.district == "370704"
    assert result.community is None
    # 人民商城 (a landmark) is 潍城's 人民商城社区 only in its own street.
    assert gaz.resolve("南关街道人民商城社区").community == "370702002020"


def test_seed_calls_landmarks_do_not_produce_wrong_districts(seed):
    _, gaz = seed
    with open(ROOT / "seed_data" / "calls.json", encoding="utf-8") as f:
        calls = json.load(f)
    for kind in ("landmarks", "roads"):
        for district, places in calls[kind].items():
            for place in places:
                result = gaz.resolve(f"{place}附近")
                if result.level not in (None, "district"):
                    # Whatever is found beyond a district must be in the place's own district.
                    assert result.district == district, (place, result)


# ---------------------------------------------------------------- real data


def test_real_weifang_data_meets_targets():
    if not (DATA_DIR / "admin_divisions").is_dir():
        pytest.skip(f"real division tables not found under {DATA_DIR} (shared data folder)")
    from bench.classify_gazetteer import run

    result = run(DATA_DIR)
    assert result["addresses"] >= 2000
    assert result["street_acc"] >= 0.97
    assert result["community_acc"] >= 0.93
    assert result["ambiguous_flagged"] >= 0.95
    assert result["ambiguous_wrong_guess"] <= 0.01
    assert result["ms_per_resolve"] < 1.0
    # The threshold at which intake fills a blank area keeps filled areas right.
    from hotline.config import DEFAULTS

    (fill,) = [f for f in result["fill"] if f["threshold"] == DEFAULTS["AREA_FILL_MIN_CONFIDENCE"]]
    assert fill["precision_with_foreign"] >= 0.98 and fill["coverage"] >= 0.6
