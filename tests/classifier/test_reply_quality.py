"""The automatic reply-quality check (issue 17 §1): poor replies flagged with reasons a handler can
act on, good ones pass, odd input is safe, the shipped model loads, the benchmark's keys."""

import csv
import json
import re
import time

import pytest

from classifier import reply_quality
from classifier.reply_quality import MODEL_FILE, Assessment, assess

TITLE = "投诉幸福小区楼下烧烤店油烟噪音扰民"
REQUEST = (
    "我住在幸福小区5栋，楼下的烧烤店每天晚上营业到凌晨两点，油烟直接排到楼上，"
    "客人喝酒划拳噪音很大，老人小孩都睡不好觉。我们多次向社区反映，一直没有结果，"
    "希望有关部门尽快查处，还居民一个安静的环境。"
) * 2
GOOD = (
    "网友：您好！接到您的反映后，区城管局执法人员于5月7日晚到幸福小区现场调查核实，"
    "该烧烤店确实存在占道经营、油烟直排问题。执法人员当场责令其停止占道经营，并要求其在"
    "5月15日前安装油烟净化设备；5月16日复查，设备已安装到位，营业时间调整为晚上十点前结束。"
    "感谢您的监督。2019年5月17日"
)


def _has(reasons, *words):
    return any(all(w in r for w in words) for r in reasons)


def test_only_acknowledged_is_poor():
    a = assess("网友：您好！留言已收悉", REQUEST, TITLE)
    assert a.poor
    assert _has(a.reasons, "已收悉")


def test_only_forwarded_is_poor():
    a = assess("您好！您反映的问题已转区城管局调查处理。2019年5月6日", REQUEST, TITLE)
    assert a.poor
    assert _has(a.reasons, "转交", "结果")


def test_only_a_phone_number_is_poor():
    a = assess("您好，请致电区市场监管局咨询，电话：0731-84561234。", REQUEST, TITLE)
    assert a.poor
    assert _has(a.reasons, "致电")


def test_greeting_and_date_only_is_poor():
    a = assess("网友：您好！感谢您的留言。2019年5月6日", REQUEST, TITLE)
    assert a.poor
    assert _has(a.reasons, "没有实质内容")


def test_heading_without_an_answer_is_poor():
    a = assess("网友：您好！您的留言已收悉。现将有关情况回复如下：", REQUEST, TITLE)
    assert a.poor
    assert _has(a.reasons, "回复如下", "正文")


def test_unrelated_reply_is_poor():
    a = assess(
        "您好，经核实，本市今年的高考报名时间为11月1日至11月10日，请考生按时在网上报名。",
        REQUEST,
        TITLE,
    )
    assert a.poor
    assert _has(a.reasons, "不相关")


def test_too_short_for_a_long_complaint():
    a = assess("您好，已处理。", REQUEST * 4, TITLE)
    assert a.poor
    assert _has(a.reasons, "简短")


def test_investigation_action_and_result_pass():
    a = assess(GOOD, REQUEST, TITLE)
    assert not a.poor
    assert a.reasons == ()
    assert a.score < reply_quality.load().threshold


def test_a_policy_answer_to_an_enquiry_passes():
    a = assess(
        "您好，根据《义务教育招生入学办法》规定，适龄儿童凭户口簿和房产证在学区内入学，"
        "您的情况符合条件，可在6月1日前到学校报名。",
        "孩子今年满六岁，户口在外地，我们在本市买了房，请问能不能在本地上小学？",
        "咨询小学入学政策",
    )
    assert not a.poor


def test_a_purpose_clause_is_not_an_answer():
    """“为更好地解答政策疑问” names a policy but answers nothing: reasons say what is missing."""
    a = assess(
        "你好！你咨询的问题收悉。为更好、更全面地解答你的有关政策疑问，你可以留下联系方式，"
        "便于我们直接沟通。或者你也可以直接拨打12333电话，详细咨询了解。",
        "我在外地缴纳社保十年，现在回本市工作，请问社保怎么转移，年限能不能合并计算？",
        "咨询社保转移政策",
    )
    assert a.poor
    assert _has(a.reasons, "补充信息")
    assert not _has(a.reasons, "未说明做了什么")


def test_done_on_a_date_is_an_action():
    parse = reply_quality._parse("为方便群众出行，已于3月1日增设公交站点。")
    assert parse.action == 1
    assert parse.kinds == {"thanks": 1, "content": 1}


def test_operating_threshold_lies_in_the_gap_below_the_cut():
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.1, 0.4, 0.3]
    poor = [1, 1, 1, 1, 1, 0, 0, 0]
    # Recall 0.8 of 5 poor replies needs the 4th (0.6); the next poor one scores 0.5.
    assert reply_quality.threshold_for_recall(scores, poor, 0.8) == 0.6
    assert reply_quality.operating_threshold(scores, poor, 0.8) == pytest.approx(0.55)


def test_poor_scores_above_good():
    assert (
        assess("网友：您好！留言已收悉", REQUEST, TITLE).score > assess(GOOD, REQUEST, TITLE).score
    )


@pytest.mark.parametrize("reply", ["", "   ", "\x00", " \x00\t\n ", None])
def test_empty_reply_is_poor_and_safe(reply):
    a = assess(reply, REQUEST, TITLE)
    assert a.poor
    assert _has(a.reasons, "为空")


def test_odd_input_is_safe():
    for reply, request, title in [
        ("您好\x00已处理" * 3, "\x00" * 10, "\x00"),
        (GOOD * 200, REQUEST * 200, TITLE * 50),
        ("😀" * 500, "", ""),
        ("1" * 10000, "2" * 10000, ""),
    ]:
        a = assess(reply, request, title)
        assert isinstance(a, Assessment)
        assert 0.0 <= a.score <= 1.0


def test_very_long_input_is_fast():
    started = time.perf_counter()
    assess(GOOD * 500, REQUEST * 500, TITLE)
    assert time.perf_counter() - started < 0.2


def test_typical_reply_takes_under_5_ms():
    assess(GOOD, REQUEST, TITLE)
    started = time.perf_counter()
    for _ in range(50):
        assess(GOOD, REQUEST, TITLE)
    assert (time.perf_counter() - started) / 50 < 0.005


def test_reasons_are_chinese_sentences():
    replies = [
        "网友：您好！留言已收悉",
        "已转区城管局调查处理。",
        "请致电12345咨询。",
        "您好，已处理。",
        "您好，经核实，本市今年的高考报名时间为11月1日至11月10日，请考生按时在网上报名。",
    ]
    for reply in replies:
        a = assess(reply, REQUEST * 4, TITLE)
        assert a.reasons
        for reason in a.reasons:
            assert len(re.findall(r"[\u4e00-\u9fff]", reason)) >= 10
            assert "请" in reason  # says what to add
            assert not re.search(r"\d\.\d", reason)  # never a bare model score


def test_as_dict_contract():
    a = assess("网友：您好！留言已收悉", REQUEST, TITLE)
    d = a.as_dict()
    assert set(d) == {"poor", "score", "reasons"}
    assert d["poor"] is True and isinstance(d["score"], float)
    assert isinstance(d["reasons"], list) and d["reasons"]
    json.dumps(d, ensure_ascii=False)
    with pytest.raises(AttributeError):
        a.poor = False  # frozen


def test_shipped_model_loads_and_matches_features():
    data = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    assert data["features"] == list(reply_quality.FEATURES)
    model = reply_quality.load()
    assert len(model.weights) == len(reply_quality.FEATURES)
    assert 0.0 < model.threshold < 1.0
    assert model.meta["rows"] == 2816
    # Numbers and our own phrase lists only: no text of the data in the model file.
    assert not re.search(r"[\u4e00-\u9fff]", MODEL_FILE.read_text(encoding="utf-8"))


def _synthetic_csv(path):
    poor = [
        "网友：您好！留言已收悉",
        "您反映的问题已转{}调查处理。",
        "您好，请致电{}咨询，电话：0731-84561234。",
        "您好！2019年5月6日",
    ]
    good = [
        "经调查核实，{}已于5月7日到现场处理，责令商户整改，目前已整改到位。",
        "根据有关规定，{}需要携带身份证和户口簿到政务中心办理，符合条件的当场办结。",
        "您好，{}已安排工作人员上门维修，路灯已于6月1日恢复正常，感谢监督。",
    ]
    units = ["区城管局", "市教育局", "县住建局", "街道办事处", "市场监管局", "区民政局"]
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                "留言编号",
                "留言用户",
                "留言主题",
                "留言时间",
                "留言详情",
                "答复意见",
                "答复时间",
                "可解释性",
            ]
        )
        number = 0
        for round_ in range(4):
            for unit in units:
                for template, label in [(t, 0) for t in poor] + [(t, 1) for t in good * 2]:
                    number += 1
                    writer.writerow(
                        [number, "U1", f"反映{unit}的问题{round_}", "2019/5/1 10:00:00",
                         f"关于{unit}的问题，希望尽快解决。", template.format(unit),
                         "2019/5/8 10:00:00", label]
                    )  # fmt: skip


def test_bench_json_keys_on_a_synthetic_file(tmp_path):
    from bench import reply_quality as bench

    path = tmp_path / "labelled.csv"
    _synthetic_csv(path)
    out = tmp_path / "figures.json"
    assert bench.main(["--csv", str(path), "--json", str(out)]) == 0
    figures = json.loads(out.read_text(encoding="utf-8"))
    required = {"rows", "poor", "recall", "precision", "f1", "threshold", "eval_rows"}
    assert required | {"baseline_precision_at_95"} <= set(figures)
    assert figures["rows"] == 240 and figures["poor"] == 96
    assert figures["recall"] >= 0.95  # the synthetic poor replies are plain


def test_bench_skips_without_the_data(tmp_path, capsys):
    from bench import reply_quality as bench

    assert bench.main(["--csv", str(tmp_path / "absent.csv")]) == 0
    assert "skipped" in capsys.readouterr().out


def test_fit_command_rewrites_the_model_file(tmp_path):
    """``python -m classifier.reply_quality fit PATH`` is how the shipped file is produced."""
    path = tmp_path / "labelled.csv"
    _synthetic_csv(path)
    out = tmp_path / "model.json"
    assert reply_quality.main(["fit", str(path), "--out", str(out)]) == 0
    model = reply_quality.Model.from_json(json.loads(out.read_text(encoding="utf-8")))
    assert model.meta["rows"] == 240 and model.meta["poor"] == 96
    poor = assess("网友：您好！留言已收悉", "关于区城管局的问题，希望尽快解决。", model=model)
    good = assess(
        "经调查核实，区城管局已于5月7日到现场处理，责令商户整改，目前已整改到位。",
        "关于区城管局的问题，希望尽快解决。",
        model=model,
    )
    assert poor.poor and not good.poor
