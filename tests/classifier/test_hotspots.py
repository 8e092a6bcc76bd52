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


def test_title_names_the_builder_text_the_estate_twice():
    group = PARKING
    builder = msg(
        12,
        "投诉广铁集团捆绑销售车位",
        "伊景园滨河苑购房捆绑车位销售，伊景园滨河苑的车位捆绑销售违规。",
        hours=4,
    )
    once = msg(13, "投诉金霞苑捆绑销售车位", "金霞苑购房捆绑车位销售，违规。", hours=5)
    index = batch(group + [builder, once], merge=False)
    assert index.group_of(12) == index.group_of(10)
    assert index.group_of(13) != index.group_of(10)


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


def test_heat_input_counts_callers_growth_and_likes():
    now = T0 + timedelta(days=14)
    members = [
        Message(1, now - timedelta(days=1), "t", "", caller="a", likes=5),
        Message(2, now - timedelta(days=2), "t", "", caller="a", dislikes=1),
        Message(3, now - timedelta(days=9), "t", "", caller="b"),
        Message(4, now - timedelta(days=20), "t", "", caller=None, likes=2),
        Message(5, now - timedelta(days=3), "t", "", caller=None),
    ]
    h = hotspots.heat_input(members, now, unhappy=1)
    assert h == HeatInput(
        size=5, callers=4, recent=3, previous=1, repeat_calls=1, unhappy=1, likes=7, dislikes=1
    )


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


# -- one matter at one place (the demo's gazetteer-addressed tickets) -------------------------

ELEVATOR = "{addr}一部电梯突然停在两层之间，里面困着一位老人和一个孩子，已经十多分钟了，请求救援。"


def chain(community, street="凤凰街道", district="坊子区"):
    return (f"{community}第1网格", community, street, district)


def test_places_strip_junk_heads_and_read_house_numbers():
    assert places("", "市民来电反映，我住丽发新城，电梯坏了")[0] == "丽发新城"
    assert places("", "家住凤凰嘉苑3栋，停水两天")[0] == "凤凰嘉苑"
    assert places("救救广铁集团的职工", "")[0] == "广铁集团"
    assert places("", "或者普惠性幼儿园的名额")[0] == "普惠性幼儿园"
    assert places("", "位于虞河路553号的电梯故障")[0] == "虞河路553号"
    assert places("", "晚上进出小区黑灯瞎火，业主多次找物业都推脱") == ()
    known = chain("崇文社区")
    found = places("有人被困电梯", "坊子区凤凰街道崇文社区五马路369号一部电梯停了", known)
    assert found == ("五马路369号",) + known  # the area names are not read as text places
    for name in found[:1]:
        assert not name.startswith(("住", "家住", "我住", "在", "位于", "者", "救救"))


def test_same_problem_at_two_addresses_or_communities_is_not_grouped():
    same_community = [
        msg(
            60,
            "有人被困电梯",
            ELEVATOR.format(addr="坊子区凤凰街道崇文社区五马路369号"),
            known=chain("崇文社区"),
        ),
        msg(
            61,
            "有人被困电梯",
            ELEVATOR.format(addr="坊子区凤凰街道崇文社区五马路12号"),
            hours=1,
            known=chain("崇文社区"),
        ),
    ]
    # No text place the engine reads (a landmark), only the gazetteer's community.
    other_community = msg(
        62,
        "有人被困电梯",
        ELEVATOR.format(addr="坊子区凤凰街道恒信社区潍县战役纪念馆北门"),
        hours=2,
        known=chain("恒信社区"),
    )
    repeat = msg(
        63,
        "有人被困电梯",
        ELEVATOR.format(addr="坊子区凤凰街道崇文社区五马路369号"),
        hours=3,
        known=chain("崇文社区"),
    )
    index = batch(same_community + [other_community, repeat])
    assert len({index.group_of(i) for i in (60, 61, 62)}) == 3
    assert index.group_of(63) == index.group_of(60)  # the same address is one matter
    assert index.title(index.group_of(60)).startswith("五马路369号")


def test_same_estate_in_different_gazetteer_communities_is_one_matter():
    plant = [
        msg(
            70,
            "搅拌站夜间作业噪音扰民",
            "凤凰嘉苑小区西侧的瑞丰搅拌站每天晚上十点以后还在作业。",
            known=chain("凤凰社区"),
        ),
        msg(
            71,
            "半夜搅拌站还在装车",
            "我家住凤凰嘉苑小区，旁边的搅拌站半夜一两点还在装料，噪音大。",
            hours=2,
            known=chain("崇文社区"),
        ),
        msg(
            72,
            "凌晨搅拌站噪音",
            "凤凰嘉苑小区附近的搅拌站凌晨又在作业，噪音特别大。",
            hours=5,
            known=chain("恒信社区"),
        ),
    ]
    other = msg(
        73,
        "搅拌站夜间噪音扰民",
        "金霞苑小区旁边的搅拌站晚上作业，噪音扰民。",
        hours=6,
        known=chain("凤凰社区"),
    )
    index = batch(plant + [other])
    assert len({index.group_of(m.id) for m in plant}) == 1
    assert index.group_of(73) != index.group_of(70)  # same community, another estate
    assert index.title(index.group_of(70)).startswith("凤凰嘉苑")


def test_placeless_policy_question_groups_across_communities():
    questions = [
        msg(
            80 + n,
            "居民医保缴费时间",
            "市民来电咨询，城乡居民医保什么时候开始缴费，个人交多少钱？",
            hours=n,
            known=chain(community),
        )
        for n, community in enumerate(["崇文社区", "恒信社区", "凤凰社区"])
    ]
    # A local matter somewhere is not joined to the policy question, nor to a place.
    local = msg(
        84,
        "居民医保缴费时间",
        "五马路369号楼下的社区医保缴费点什么时候开始缴费？",
        hours=4,
        known=chain("崇文社区"),
    )
    index = batch(questions + [local])
    assert len({index.group_of(m.id) for m in questions}) == 1
    assert index.group_of(84) != index.group_of(80)
    assert index.group(index.group_of(80)).place is None


def test_a_phrase_named_from_many_streets_is_no_place():
    # A template phrase read as a name or a landmark that addresses are given by (泰华城
    # here): named from three streets, it neither joins nor separates.
    texts = [
        ("崇文社区", "五马路369号"),
        ("东关社区", "崇文街278号"),
        ("北苑社区", "北海路21号"),
        ("崇文社区", "五马路369号"),
    ]
    messages = [
        msg(
            90 + n,
            "小区垃圾清运不及时",
            f"{c}{addr}附近泰华城小区门口的垃圾桶两三天没有清运，垃圾满得溢出来。",
            hours=n,
            known=chain(c, street=c[:2] + "街道"),
        )
        for n, (c, addr) in enumerate(texts)
    ]
    index = batch(messages)
    assert len({index.group_of(i) for i in (90, 91, 92)}) == 3
    assert index.group_of(93) == index.group_of(90)
