"""Text normalisation: half-width, simplified, one space, phone and ID numbers scrubbed."""

import pytest

from classifier.normalize import ID_TOKEN, PHONE_TOKEN, normalize, scrub, to_halfwidth


def test_placeholders():
    assert PHONE_TOKEN == "<电话>"
    assert ID_TOKEN == "<证件号>"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＡＢＣ１２３", "ABC123"),
        ("ｗｅｃｈａｔ：ＡＢ－１２", "wechat:AB-12"),
        ("路灯坏了！！？", "路灯坏了!!?"),
        ("（东关街道）", "(东关街道)"),
        ("１２号楼３单元", "12号楼3单元"),
    ],
)
def test_full_width_becomes_half_width(raw, expected):
    assert normalize(raw) == expected


def test_to_halfwidth_leaves_chinese_alone():
    assert to_halfwidth("奎文区东关街道中学街社区。") == "奎文区东关街道中学街社区。"
    assert to_halfwidth("ＡＢＣ　１２３") == "ABC 123"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("這裡的路燈壞了，請儘快維修", "这里的路灯坏了,请尽快维修"),
        ("社區門口的垃圾沒人清理", "社区门口的垃圾没人清理"),
        ("噪音擾民", "噪音扰民"),
        ("简体字保持不变", "简体字保持不变"),
    ],
)
def test_traditional_becomes_simplified(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  路灯 \t 不亮\n\n晚上 看不见  ", "路灯 不亮 晚上 看不见"),
        ("第一行\r\n第二行", "第一行 第二行"),
        ("全角　空格", "全角 空格"),
        ("\n\t  ", ""),
    ],
)
def test_whitespace_collapses(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize("empty", ["", None])
def test_empty_text(empty):
    assert normalize(empty) == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("我的电话13805360001，请回电", "我的电话<电话>,请回电"),
        ("联系电话：138-0536-0001", "联系电话:<电话>"),
        ("联系电话138 0536 0001", "联系电话<电话>"),
        ("+8613805360001", "<电话>"),
        ("电话+86 138-0536-0001", "电话<电话>"),
        ("电话86-13805360001", "电话<电话>"),
        ("１３８０５３６０００１", "<电话>"),
        ("固话0536-8888888找王经理", "固话<电话>找王经理"),
        ("固话05368888888", "固话<电话>"),
        ("北京的010-12345678", "北京的<电话>"),
        ("两个号码19905361234和15905369876", "两个号码<电话>和<电话>"),
    ],
)
def test_phone_numbers_are_replaced(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("身份证号370702199001011234", "身份证号<证件号>"),
        ("身份证号37070219900101123X", "身份证号<证件号>"),
        ("身份证号37070219900101123x办理", "身份证号<证件号>办理"),
        ("证件号码：370705200012319876。", "证件号码:<证件号>。"),
        ("370702199001011234,电话13805360001", "<证件号>,电话<电话>"),
    ],
)
def test_id_numbers_are_replaced(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    "text",
    [
        "欠薪12345元",
        "补偿款共计138000元",
        "房号1201室",
        "胜利东街100号3单元502",
        "2024年3月5日",
        "20240305",
        "2024-03-05 14:30",
        "区划代码370705001001",
        "订单号1380536000123",
        "工单号WF2024030500000012",
        "10086",
        "12345热线",
        "车牌鲁G12345",
        "370702199013011234",  # month 13: not an ID number
    ],
)
def test_ordinary_numbers_are_kept(text):
    assert normalize(text) == text


def test_scrub_alone():
    assert scrub("13805360001") == PHONE_TOKEN
    assert scrub("370702199001011234") == ID_TOKEN
    assert scrub("12345") == "12345"


@pytest.mark.parametrize(
    "raw",
    [
        "ＡＢＣ　這裡的路燈壞了，電話１３８０５３６０００１，身份證370702199001011234",
        "  多个   空格\t和换行\n",
        "+86 138 0536 0001 和 0536-8888888",
        "金额12345元，日期2024年3月5日",
        "<电话> <证件号>",
        "",
    ],
)
def test_normalize_is_idempotent(raw):
    once = normalize(raw)
    assert normalize(once) == once


def test_nothing_personal_survives():
    raw = "我叫张三，手机１３８－０５３６－０００１，身份證37070219900101123X，家住東關街道"
    clean = normalize(raw)
    assert clean == "我叫张三,手机<电话>,身份证<证件号>,家住东关街道"
    assert not any(ch.isdigit() for ch in clean)
