"""The hot-issue engine: places, keywords, grouping, titles and heat."""

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from classifier import hotspots
from classifier.hotspots import HeatInput, Index, Message, batch, heat, keywords, places

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"
T0 = datetime(2024, 5, 1, 9, 0)


def msg(n, title, text="", *, hours=0, caller=None, known=()):
    return Message(
        id=n,
        at=T0 + timedelta(hours=hours),
        title=title,
        text=text,
        caller=caller or f"u{n}",
        places=known,
    )


NOISE = [
    msg(
        1, "投诉丽发新城附近搅拌站噪音扰民", "丽发新城小区旁边建了搅拌站，晚上噪音很大，严重扰民。"
    ),
    msg(
        2,
        "丽发新城搅拌站夜间施工噪音扰民",
        "丽发新城旁的搅拌站彻夜施工，噪音扰民，粉尘也大。",
        hours=5,
    ),
    msg(3, "A市丽发小区旁搅拌站噪音太大", "丽发小区附近搅拌站噪音扰民，晚上睡不着。", hours=30),
]
PARKING = [
    msg(
        10,
        "伊景园滨河苑捆绑销售车位",
        "伊景园滨河苑开发商要求购房必须同时购买车位，捆绑销售。",
        hours=1,
    ),
    msg(11, "投诉伊景园滨河苑车位捆绑销售", "滨河苑购房捆绑车位销售，违反规定。", hours=3),
]


def test_places_finds_named_sites_and_strips_areas():
    found = places("投诉A2区丽发新城附近建搅拌站噪音扰民", "")
    assert found[0] == "丽发新城"
    assert not any(p.startswith(("A2", "A市")) for p in found)
    compound = places("关于广铁集团职工定向商品房伊景园滨河苑项目的问题", "")
    assert any("伊景园滨河苑" in p for p in compound)
    assert places("咨询人才购房补贴", "请问怎么申请？") == ()
    assert places("西地省山千制药机械股份有限公司拖欠工资", "") == ("山千制药机械股份有限公司",)
    assert places("A市北大资源理想家园违规租售车位", "")[0].endswith("理想家园")
    assert places("小区停水", "", known=("秀新社区", "坑梓街道")) == ("秀新社区", "坑梓街道")


def test_keywords_say_the_problem_without_the_place():
    words = keywords("投诉丽发新城附近搅拌站噪音扰民", "搅拌站晚上噪音很大")
    assert "搅拌站" in words and "噪音" in words
    assert not any("丽发" in w for w in words)
    assert "投诉" not in words and "附近" not in words


def test_same_place_same_problem_is_one_group():
    index = batch(NOISE)
    assert len({index.group_of(m.id) for m in NOISE}) == 1
    assert len(index) == 3


def test_same_place_different_problem_is_not_grouped():
    index = batch(
        NOISE[:2]
        + [msg(4, "丽发新城小区停水三天", "丽发新城小区已经停水三天，自来水公司不管。", hours=2)]
    )
    assert index.group_of(4) != index.group_of(1)
    assert index.group_of(1) == index.group_of(2)


def test_different_place_same_problem_is_not_grouped():
    other = msg(
        5, "投诉金霞苑附近搅拌站噪音扰民", "金霞苑旁边建了搅拌站，晚上噪音很大，严重扰民。", hours=1
    )
    index = batch(NOISE[:2] + [other])
    assert index.group_of(5) != index.group_of(1)


def test_matter_without_place_groups_by_text():
    subsidy = [
        msg(20, "咨询人才购房补贴申请条件", "人才购房补贴需要什么条件，怎么申请人才购房补贴？"),
        msg(21, "人才购房补贴什么时候发放", "申请了人才购房补贴，补贴迟迟没有发放。", hours=4),
        msg(22, "公交车司机态度恶劣", "公交车司机辱骂乘客，服务态度恶劣。", hours=5),
    ]
    index = batch(subsidy)
    assert index.group_of(20) == index.group_of(21) != index.group_of(22)


def test_forced_group_move_rekey_expire():
    index = Index(window_days=2)
    first = index.add(NOISE[0])
    assert first.new_group and first.group == ("new", 1)
    forced = index.add(PARKING[0], group=77)
    assert forced.group == 77 and forced.new_group
    assert index.add(NOISE[1]).group == first.group  # joins by similarity
    assert index.add(PARKING[1], group=77) == hotspots.Assigned(77, 1.0, False)

    index.move(2, 77)
    assert index.group_of(2) == 77 and index.group(77).ids == [10, 11, 2]
    assert index.group(first.group).ids == [1]
    index.rekey(77, "hot-5")
    assert index.group_of(10) == "hot-5" and index.group("hot-5").ids == [10, 11, 2]
    with pytest.raises(KeyError):
        index.group(77)
    with pytest.raises(ValueError):
        index.rekey(first.group, "hot-5")

    gone = index.expire(T0 + timedelta(days=2, hours=6))
    assert sorted(gone) == [1, 2, 10, 11]  # 2 was moved into 77: its own time counts
    assert len(index) == 0 and index.groups() == [] and index.group_of(1) is None


def test_expire_keeps_recent_messages_and_updates_span():
    index = Index(window_days=1)
    for m in NOISE:
        index.add(m)
    key = index.group_of(3)
    assert index.expire(T0 + timedelta(hours=28)) == [1]
    group = index.group(key)
    assert group.ids == [2, 3] and group.first_at == NOISE[1].at and group.last_at == NOISE[2].at


def test_batch_equals_incremental_in_time_order():
    messages = (
        NOISE
        + PARKING
        + [
            msg(30, "丽发新城小区停水", "丽发新城停水了", hours=7),
            msg(31, "金霞苑搅拌站噪音", "金霞苑搅拌站噪音扰民", hours=8),
        ]
    )
    shuffled = list(reversed(messages))
    index = Index()
    for m in sorted(messages, key=lambda m: m.at):
        index.add(m)
    plain = batch(shuffled, merge=False)
    assert [(g.key, g.ids) for g in plain.groups()] == [(g.key, g.ids) for g in index.groups()]
    assert [plain.title(g.key) for g in plain.groups()] == [
        index.title(g.key) for g in index.groups()
    ]
    index.merge_similar()
    built = batch(shuffled)
    assert [(g.key, g.ids) for g in built.groups()] == [(g.key, g.ids) for g in index.groups()]
    again = batch(messages)
    assert [(g.key, g.ids) for g in again.groups()] == [(g.key, g.ids) for g in built.groups()]


def test_merge_pass_joins_groups_that_met_late():
    # The first two share the place but no problem word, so they start two groups; the
    # third names both problems and joins one; afterwards the groups are alike enough.
    messages = [
        msg(40, "丽发新城搅拌站噪音扰民", "丽发新城搅拌站噪音扰民"),
        msg(41, "丽发新城搅拌站粉尘污染", "丽发新城搅拌站粉尘污染严重", hours=1),
        msg(42, "丽发新城搅拌站噪音粉尘", "丽发新城搅拌站噪音扰民，粉尘污染", hours=2),
        msg(43, "丽发新城搅拌站粉尘噪音", "丽发新城搅拌站粉尘污染，噪音扰民", hours=3),
    ]
    plain = batch(messages, merge=False, place_threshold=0.6)
    merged = batch(messages, place_threshold=0.6, merge_threshold=0.3)
    assert len(plain.groups()) > len(merged.groups()) == 1


def test_text_place_named_twice_is_the_main_place():
    a = msg(50, "搅拌站噪音扰民", "金霞苑旁边的搅拌站噪音扰民，金霞苑居民睡不着。")
    b = msg(51, "搅拌站噪音扰民", "丽发新城旁边的搅拌站噪音扰民，丽发新城居民睡不着。", hours=1)
    index = batch([a, b])
    assert index.group_of(50) != index.group_of(51)
    bus = places("A7县204路公交车下班高峰期不发车", "")
    assert bus == ("204路",)


def test_title_is_place_then_problem():
    index = batch(NOISE + PARKING)
    title = index.title(index.group_of(1))
    assert title.startswith("丽发") and "搅拌站" in title and "噪音" in title
    assert "A市" not in title and len(title) <= 16
    parking = index.title(index.group_of(10))
    assert parking.startswith("伊景园滨河苑") and "车位" in parking
    group = index.group(index.group_of(1))
    assert group.place.startswith("丽发") and "搅拌站" in group.keywords


def test_heat_parts_sum_to_score_and_move_it_the_right_way():
    base = HeatInput(size=10, callers=8, recent=2, previous=2, repeat_calls=2)
    score, parts = heat(base)
    assert score == pytest.approx(sum(p["points"] for p in parts.values()))
    assert all(p["label"] for p in parts.values())
    assert parts["size"]["value"] == 10 and parts["size"]["label"] == "诉求件数"

    growing, _ = heat(HeatInput(size=10, callers=8, recent=6, previous=1, repeat_calls=2))
    liked, liked_parts = heat(
        HeatInput(size=10, callers=8, recent=2, previous=2, repeat_calls=2, likes=50)
    )
    disliked, _ = heat(
        HeatInput(size=10, callers=8, recent=2, previous=2, repeat_calls=2, likes=50, dislikes=40)
    )
    unhappy, _ = heat(
        HeatInput(size=10, callers=8, recent=2, previous=2, repeat_calls=2, unhappy=3, reopened=1)
    )
    assert growing > score and liked > score and unhappy > score
    assert score < disliked < liked
    assert liked_parts["likes"]["points"] > 0

    lone, lone_parts = heat(
        HeatInput(size=1, callers=1, recent=0, previous=0, repeat_calls=0, dislikes=1000)
    )
    assert lone > 0 and lone == pytest.approx(sum(p["points"] for p in lone_parts.values()))


def test_real_messages_find_the_reference_matters():
    if not (DATA_DIR / "teddycup2020c" / "附件3.csv").is_file():
        pytest.skip(f"shared data not found at {DATA_DIR} (附件3, SOURCES.md §1)")
    from bench.hotspots import load_messages, ranked

    messages = load_messages(DATA_DIR)
    index = batch(messages, window_days=3650)
    titles = [index.title(g.key) for _, g, _ in ranked(index, messages)[:10]]
    assert any("伊景园" in t and "车位" in t for t in titles), titles
    assert any("丽发" in t and "搅拌站" in t for t in titles), titles
    assert any("人才" in t for t in titles), titles
