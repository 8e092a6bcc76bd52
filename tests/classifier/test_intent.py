"""Urgency (emergency / urgent / normal, where to transfer): the rules alone and with the learned
model; and the request type."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from classifier import training
from classifier.bundle import ModelBundle
from classifier.intent import (
    LINES,
    REQUEST_TYPES,
    RequestTypeModel,
    Urgency,
    UrgencyModel,
    cry_for_help,
    request_type_by_rules,
    urgency,
)
from classifier.normalize import normalize
from classifier.seeds import ordinary_calls, read_jsonl, urgency_cases

CORPUS = Path(__file__).resolve().parents[2] / "seed_data" / "corpus"
CASES_FILE = CORPUS / "emergency_cases.jsonl"


def _cases():
    with open(CASES_FILE, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


CASES = _cases()


def _rates(rows):
    """(recall, false-alarm rate, missed texts, false alarms) of the emergency tier."""
    positives = [r["text"] for r in rows if r["emergency"]]
    negatives = [r["text"] for r in rows if not r["emergency"]]
    missed = [t for t in positives if urgency(t).tier != "emergency"]
    alarms = [t for t in negatives if urgency(t).tier == "emergency"]
    return (
        1 - len(missed) / len(positives),
        len(alarms) / len(negatives),
        missed,
        alarms,
    )


# -- emergencies on the seed cases ------------------------------------------------------------


def test_the_case_file_is_what_the_readme_describes():
    assert len(CASES) == 548
    assert sum(r["emergency"] for r in CASES) == 252
    assert {r["transfer_to"] for r in CASES if r["emergency"]} == {
        "110",
        "119",
        "120",
        "122",
        "utility",
    }


@pytest.mark.parametrize(
    "rows",
    [CASES, CASES[1::2]],
    ids=["all", "held-out-even-lines"],
)
def test_emergency_recall(rows):
    recall, false_alarms, missed, alarms = _rates(rows)
    report = (
        f"recall {recall:.3f} on {sum(r['emergency'] for r in rows)} emergencies, "
        f"false alarms {false_alarms:.3f} on {sum(not r['emergency'] for r in rows)} "
        f"non-emergencies; missed: {missed[:10]}"
    )
    assert recall >= 0.99, report
    # Recall comes first; false alarms only must not take over (a loose bound).
    assert false_alarms <= 0.35, report + f"; false alarms: {alarms[:10]}"


def test_emergencies_always_name_a_transfer_line():
    for row in CASES:
        result = urgency(row["text"])
        if result.tier == "emergency":
            assert result.transfer_to in {"110", "119", "120", "122", "utility"}, row
            assert result.evidence and result.evidence in normalize(row["text"]), row
        else:
            assert result.transfer_to is None, row


# -- transfer targets -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "target", "evidence"),
    [
        ("我家厨房燃气泄漏了，满屋子都是味", "utility", "燃气泄漏"),
        ("楼下饭店着火了，火很大", "119", "着火"),
        ("我爸突然昏迷了，怎么叫都不醒", "120", "昏迷"),
        ("胜利东街路口发生车祸，两辆车堵在路中间", "122", "车祸"),
        ("小区门口有一群人在打架", "110", "打架"),
    ],
)
def test_transfer_to_for_clear_cases(text, target, evidence):
    result = urgency(text)
    assert result == Urgency("emergency", target, result.evidence)
    assert evidence in result.evidence


def test_urgency_takes_normalised_and_raw_text_alike():
    # traditional characters are simplified before the rules look
    assert urgency("樓下起火了") == Urgency("emergency", "119", "起火")
    assert urgency("廚房煤氣洩漏了") == Urgency("emergency", "utility", "煤气泄漏了")
    # full-width punctuation and spaces do not hide the words
    assert urgency("　燃气　泄漏！！").tier == "emergency"


# -- urgent and normal ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "evidence"),
    [
        ("我们小区从早上开始停水，到现在还没来水", "停水"),
        ("家里停电了一上午，冰箱里的东西都要坏了", "停电"),
        ("家里暖气不热，屋里只有十二度", "暖气不热"),
        ("楼上楼下都没水了", "没水"),
    ],
)
def test_outages_are_urgent(text, evidence):
    assert urgency(text) == Urgency("urgent", None, evidence)


def test_utility_category_makes_it_urgent():
    text = "燃气公司的营业厅工作人员态度不好"
    assert urgency(text) == Urgency("normal")
    assert urgency(text, utility_category=True) == Urgency("urgent", None, None)
    # …but never lowers an emergency
    assert urgency("燃气管道漏气了", utility_category=True).tier == "emergency"


@pytest.mark.parametrize(
    "text",
    [
        "小区门口的路灯坏了好几天了",
        "楼上装修噪音太大，影响休息",
        "小区垃圾没人清理，味道很难闻",
        "公交车司机态度恶劣",
        "单位拖欠工资三个月",
    ],
)
def test_ordinary_complaints_are_normal(text):
    assert urgency(text) == Urgency("normal")


@pytest.mark.parametrize(
    "text",
    [
        "消防通道被占用想投诉",
        "燃气费怎么交",
        "楼道里电动车充电有火灾隐患",
        "上个月家里着过火，现在想问赔偿怎么办",
        "电线杆歪了",
        "上周电梯困过人，想问怎么处理",
        "物业费涨得要人命",
    ],
)
def test_hazards_enquiries_and_past_events_are_not_emergencies(text):
    assert urgency(text).tier != "emergency"
    assert urgency(text).transfer_to is None


def test_right_now_overrides_the_not_now_signs():
    # "隐患" alone holds the rule back; "现在正在冒烟" says it is happening
    assert urgency("楼道电线有安全隐患").tier == "normal"
    assert urgency("楼道电线有安全隐患，现在正在冒烟").transfer_to == "119"


# -- the wider test list and the learned model -------------------------------------------------

URGENCY_CASES = read_jsonl(CORPUS / "urgency_cases.jsonl")


def test_the_urgency_list_is_what_the_readme_describes():
    assert len(URGENCY_CASES) == 689
    positives = [r for r in URGENCY_CASES if r["emergency"]]
    assert len(positives) == 333
    assert {r["transfer_to"] for r in positives} == set(LINES)
    assert all("transfer_to" not in r for r in URGENCY_CASES if not r["emergency"])
    assert {r["split"] for r in URGENCY_CASES} == {"dev", "eval"}
    # each kind is cut in two halves that differ by at most one call
    for kind in {r["kind"] for r in URGENCY_CASES}:
        halves = [
            sum(r["kind"] == kind and r["split"] == split for r in URGENCY_CASES)
            for split in ("dev", "eval")
        ]
        assert abs(halves[0] - halves[1]) <= 1, kind
    texts = [r["text"] for r in URGENCY_CASES]
    assert len(set(texts)) == len(texts)
    others = {r["text"] for r in CASES} | {m["text"] for m in read_jsonl(CORPUS / "messages.jsonl")}
    assert not set(texts) & others


TRAINING_CASES = read_jsonl(CORPUS / "urgency_training.jsonl")


def test_the_added_training_calls_are_what_the_readme_describes():
    assert len(TRAINING_CASES) == 357
    positives = [r for r in TRAINING_CASES if r["emergency"]]
    assert len(positives) == 218
    assert {r["transfer_to"] for r in positives} == set(LINES)
    assert all("transfer_to" not in r for r in TRAINING_CASES if not r["emergency"])
    assert all("split" not in r for r in TRAINING_CASES)  # development half only
    assert {r["kind"] for r in TRAINING_CASES} <= {r["kind"] for r in URGENCY_CASES}
    texts = [r["text"] for r in TRAINING_CASES]
    assert len(set(texts)) == len(texts)
    others = (
        {r["text"] for r in URGENCY_CASES}
        | {r["text"] for r in CASES}
        | {m["text"] for m in read_jsonl(CORPUS / "messages.jsonl")}
        | set(ordinary_calls())
    )
    assert not set(texts) & others
    dev_texts = {r["text"] for r in urgency_cases("dev")}
    assert set(texts) <= dev_texts
    assert not set(texts) & {r["text"] for r in urgency_cases("eval")}


def test_the_halves_are_disjoint_and_cover_every_source():
    dev, held_out = urgency_cases("dev"), urgency_cases("eval")
    assert not {r["text"] for r in dev} & {r["text"] for r in held_out}
    everything = len(URGENCY_CASES) + len(TRAINING_CASES) + len(CASES) + len(ordinary_calls())
    assert len(dev) + len(held_out) == everything
    for half in (dev, held_out):
        assert {r["source"] for r in half} == {"cases", "ordinary"}
        assert not any(r["emergency"] for r in half if r["source"] == "ordinary")
        assert all(r["transfer_to"] in LINES for r in half if r["emergency"])
    with pytest.raises(ValueError):
        urgency_cases("test")


@pytest.fixture(scope="module")
def urgency_model():
    model, meta = training.train_urgency()
    assert meta["training_rows"] == len(urgency_cases("dev"))  # never the held-out half
    return model


def _learned_rates(model, rows):
    said = [urgency(r["text"], model=model).tier == "emergency" for r in rows]
    positives = [s for r, s in zip(rows, said, strict=True) if r["emergency"]]
    negatives = [s for r, s in zip(rows, said, strict=True) if not r["emergency"]]
    return sum(positives) / len(positives), sum(negatives) / len(negatives)


def test_learned_model_on_the_held_out_half(urgency_model):
    """The issue's targets are recall 0.99 and false alarms 5 %; bench/urgency.py reports the
    figures (measured 0.986 / 0.032). Here: they do not slip, and the model beats the rules
    alone on false alarms by far without losing recall."""
    rows = urgency_cases("eval")
    recall, false_alarms = _learned_rates(urgency_model, rows)
    rules_recall, rules_false_alarms = _learned_rates(None, rows)
    assert recall >= 0.98, recall
    assert false_alarms <= 0.05, false_alarms
    assert recall >= rules_recall
    assert false_alarms <= rules_false_alarms / 2


@pytest.mark.parametrize(
    ("text", "line"),
    [
        # missed by the rules before the model (issue 13)
        ("有人站在楼顶上，看样子要往下跳", "110"),
        ("一个工人的手被机器卷进去了，一直在流血", "120"),
        # the clear cases still go where the rules send them
        ("我家厨房燃气泄漏了，满屋子都是味", "utility"),
        ("楼下饭店着火了，火很大", "119"),
        ("胜利东街路口发生车祸，两辆车堵在路中间", "122"),
    ],
)
def test_learned_model_finds_emergencies(urgency_model, text, line):
    result = urgency(text, model=urgency_model)
    assert (result.tier, result.transfer_to) == ("emergency", line)
    assert result.evidence and result.evidence in normalize(text)


@pytest.mark.parametrize(
    "text",
    [
        # false alarms named in issue 13
        "村边那条河的河水变黑了，还发臭",
        "工地晚上打桩，咚咚响到半夜，吵得睡不着",
        "路口的井盖丢了，一直没人补",
        "孩子报的培训学校关门了，老板卷着学费跑了",
        "小区门口的路灯坏了，昨晚有个老人差点摔倒",
        # the rules fire on these; the model reads them as look-alikes
        "去年我在工地上从架子上摔下来，腿断了，到现在老板不给工伤赔偿",
        "请问120急救车的费用能用医保报销吗",
    ],
)
def test_learned_model_holds_back_look_alikes(urgency_model, text):
    assert urgency(text, model=urgency_model).tier != "emergency"


@pytest.mark.parametrize(
    "text",
    [
        "我姥爷突然喘不上气，嘴唇发紫，以前有心脏病",
        "来电人称其父亲在浴室摔倒，现在叫不醒",
        "我室友吞下了一整瓶安眠药，以前也闹过",
    ],
)
def test_a_body_in_danger_stands_whatever_the_model_says(urgency_model, text):
    assert cry_for_help(normalize(text))
    assert urgency(text, model=urgency_model).tier == "emergency"


def test_no_development_non_emergency_says_an_unmistakable_word():
    said = [r["text"] for r in urgency_cases("dev") if cry_for_help(normalize(r["text"]))]
    assert said, "the floor fires on some development emergencies"
    dev = {r["text"]: r["emergency"] for r in urgency_cases("dev")}
    assert all(dev[text] for text in said), [t for t in said if not dev[t]]


def test_learned_model_keeps_outages_urgent(urgency_model):
    assert urgency("我们小区从早上开始停水，到现在还没来水", model=urgency_model) == Urgency(
        "urgent", None, "停水"
    )
    text = "燃气公司的营业厅工作人员态度不好"
    assert urgency(text, model=urgency_model) == Urgency("normal")
    assert urgency(text, utility_category=True, model=urgency_model).tier == "urgent"


def test_learned_emergencies_always_name_a_line_and_a_clause(urgency_model):
    for row in urgency_cases("eval"):
        result = urgency(row["text"], model=urgency_model)
        if result.tier == "emergency":
            assert result.transfer_to in LINES, row
            assert result.evidence and result.evidence in normalize(row["text"]), row
        else:
            assert result.transfer_to is None, row


def test_the_model_alone_raises_what_no_rule_knows(urgency_model):
    text = "有个男的骑在十八楼的阳台栏杆上，一条腿悬在外面"
    assert urgency(text).tier == "normal"  # no rule word
    result = urgency(text, model=urgency_model)
    assert result.tier == "emergency"
    assert result.evidence in normalize(text)


def test_rules_alone_without_a_model():
    """No saved model, or a version saved before the urgency model existed: the rules decide."""
    assert urgency("楼下饭店着火了，火很大", model=None) == Urgency("emergency", "119", "着火")
    assert ModelBundle(category=None).urgency is None
    old = ModelBundle.__new__(ModelBundle)  # as unpickled from an older version
    old.__dict__.update({"category": None, "request_type": None, "label_names": {}})
    assert getattr(old, "urgency", "missing") is None


class _Doubting(UrgencyModel):
    """The fitted model, reading every call as a look-alike."""

    def probabilities(self, texts, *, signals=None, one_by_one=False):
        return np.zeros(len(texts)), np.zeros(len(texts))


def test_a_cry_for_help_stands_whatever_the_model_says(urgency_model):
    doubting = copy.copy(urgency_model)
    doubting.__class__ = _Doubting
    assert urgency("楼下饭店着火了，火很大", model=doubting).tier == "normal"
    assert urgency("救命，楼下饭店着火了", model=doubting) == Urgency("emergency", "119", "着火")
    assert urgency("快叫救护车，我爸昏迷了", model=doubting).transfer_to == "120"


def test_urgency_model_is_plain_arrays_after_fitting(urgency_model):
    assert isinstance(urgency_model, UrgencyModel)
    assert urgency_model.weights.shape[1] == 2
    assert urgency_model.line_weights.shape[1] == len(LINES)
    assert 0 < urgency_model.veto < 1 and 0 < urgency_model.alone <= 1
    on_hit, alone = urgency_model.probabilities(["楼下着火了", "路灯坏了"])
    assert on_hit.shape == alone.shape == (2,)
    assert alone[0] > alone[1]


# -- request type -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我要举报某饭店使用地沟油", "report"),
        ("检举某单位违规发放补贴", "report"),
        ("表扬东关街道的网格员王师傅", "praise"),
        ("非常感谢供水公司的维修师傅连夜抢修", "praise"),
        ("建议在中学街路口增设红绿灯", "suggestion"),
        ("希望能增设一条公交线路", "suggestion"),
        ("请问养老保险怎么补缴", "consult"),
        ("想咨询一下居住证怎么办理", "consult"),
        ("投诉物业乱收费", "complaint"),
        ("求助，老人走失了帮忙找一下", "help"),
        ("路灯坏了", "complaint"),  # nothing explicit: the default
    ],
)
def test_request_type_by_rules(text, expected):
    assert request_type_by_rules(text) == expected
    assert expected in REQUEST_TYPES


def test_request_type_rules_order_praise_before_report():
    # the strongest explicit word wins when a text has several
    assert request_type_by_rules("表扬热心市民，他举报了违章建筑") == "praise"
    assert request_type_by_rules("我要举报，建议严查") == "report"


TYPE_DATA = {
    "consult": [
        "社保卡怎么补办需要带什么",
        "居住证办理需要哪些材料",
        "公积金提取的流程是什么",
        "孩子上学报名需要什么证件",
        "医保报销的比例是多少",
        "不动产登记去哪里办理",
        "老年证怎么办理需要带什么",
        "公积金贷款的额度是多少",
    ],
    "complaint": [
        "楼上装修噪音太大严重影响休息",
        "物业乱收费还不给发票",
        "饭店油烟太大熏得开不了窗",
        "公交车司机态度恶劣骂人",
        "小区垃圾堆了好几天没人清运",
        "工地夜间施工噪音扰民",
        "路边摊占道经营影响通行",
        "商场门口的噪音太大了",
    ],
    "help": [
        "老人走失了请帮忙寻找",
        "家里困难孩子看病没钱求帮助",
        "被困在外地没钱回家求帮忙",
        "独居老人生病没人照顾求帮助",
        "孩子走失了求大家帮忙找",
        "家里遭了火灾生活困难求帮助",
        "腿脚不便的老人需要帮忙买药",
        "残疾人生活困难请求帮助",
    ],
}


@pytest.fixture(scope="module")
def type_model():
    texts = [t for texts in TYPE_DATA.values() for t in texts]
    labels = [label for label, texts in TYPE_DATA.items() for _ in texts]
    return RequestTypeModel().fit(texts, labels)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("公积金提取需要带什么材料", "consult"),
        ("隔壁饭店油烟噪音太大影响休息", "complaint"),
        ("家里老人走失了求帮忙寻找", "help"),
    ],
)
def test_request_type_model_predicts_sensibly(type_model, text, expected):
    assert type_model.predict([text]) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # complaint-like texts, but the caller says outright what it is
        ("我要举报饭店油烟太大", "report"),
        ("表扬物业的师傅，噪音问题解决了", "praise"),
        ("建议饭店油烟安装净化器", "suggestion"),
    ],
)
def test_request_type_model_explicit_words_override(type_model, text, expected):
    assert type_model.predict([text]) == [expected]
    assert expected not in TYPE_DATA  # the model could not have said it


def test_request_type_model_keeps_learned_consult_and_complaint(type_model):
    # "咨询"/"投诉" are not overrides: a person complaining may say 咨询, the model decides
    texts = ["咨询一下楼上装修噪音太大怎么办", "投诉公积金提取的流程"]
    assert request_type_by_rules(texts[0]) == "consult"
    assert request_type_by_rules(texts[1]) == "complaint"
    # the words say the opposite of what the model learned from the rest of each text
    assert type_model.predict(texts) == ["complaint", "consult"]


def test_request_type_model_predicts_a_batch_in_order(type_model):
    texts = ["居住证办理需要什么材料", "我要举报", "物业乱收费"]
    assert type_model.predict(texts) == ["consult", "report", "complaint"]


@pytest.mark.parametrize(
    "text, tier",
    [
        ("我的社保卡丢了怎么补办", "normal"),
        ("快递丢了，急死我了", "normal"),
        ("孩子丢了！在火车站候车室", "emergency"),
        ("我妈丢了，出门买菜一直没回来", "emergency"),
    ],
)
def test_a_lost_thing_is_not_a_missing_person(text, tier):
    assert urgency(text).tier == tier
