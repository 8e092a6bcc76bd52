"""Automatic reply-quality check (issue 17 §1): does a unit's reply answer the request?

``assess(reply, request="", title="")`` returns an ``Assessment(poor, score, reasons)``. A reply
is *poor* when it does not explain what was done or why: it only says the message was received
(“已收悉”, “留言已阅”), only forwards it (“已转××调查处理/办复”) with no result, only gives a
phone number or “请咨询/致电…”, holds only a greeting, thanks and a date, is unrelated to the
request's subject, or is far shorter than the request warrants.

The model is a logistic regression over a few dozen *interpretable* features: hand-written
phrase lists (acknowledgement, forwarding, referral, promise of a later answer, investigation,
action, result, reason/policy phrases), the length of what is left once the boilerplate
(greetings, thanks, dates, user ids, acknowledgement, forwarding and referral clauses) is
removed, numbers and phone numbers, and the overlap of the reply with the request's key
characters. The weights are learned; the phrase lists are ours (domain knowledge), not
vocabularies learned from data, and no text of the data is stored. Reasons shown to people
come from the features that fired (what is missing and what to add), never from the score.

The shipped file ``classifier/data/reply_quality.json`` holds the feature standardisation,
the weights and the threshold. It was produced by

    python -m classifier.reply_quality fit \
        ../shared/data/teddycup2020c/附件4_答复可解释性人工标注.csv

which fits the weights on all 2,816 labelled rows (可解释性 0 = poor) and chooses the threshold
as the highest one whose recall of the poor replies is ≥ 0.95 on the rows' own 5-fold
out-of-fold scores (the same procedure ``bench/reply_quality.py`` runs inside each training
fold). ``bench/reply_quality.py`` measures it without ever scoring a row it was tuned on.
"""

import argparse
import csv
import json
import math
import re
import sys
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

MODEL_FILE = Path(__file__).resolve().parent / "data" / "reply_quality.json"
#: Recall of the poor replies the threshold is chosen for.
TARGET_RECALL = 0.95
#: Longer texts are cut: a reply's quality shows in its first few thousand characters, and the
#: check must stay fast while the handler types.
MAX_CHARS = 4000


@dataclass(frozen=True)
class Assessment:
    #: True when the reply should not go out as it is.
    poor: bool
    #: Probability-like score of being poor (0–1), from the learned weights.
    score: float
    #: Chinese sentences saying what is missing and what to add (empty when not poor).
    reasons: tuple[str, ...]

    def as_dict(self):
        return {"poor": self.poor, "score": self.score, "reasons": list(self.reasons)}


# ---------------------------------------------------------------------------------------------
# Phrase lists (written from how official replies are phrased, not learned from data)

#: Clause separators (after NFKC, full-width punctuation is half-width).
_CLAUSES = re.compile(r"[。!?;!\n\r\t ]+|(?<=[^\d]),|(?<=[^\d]):")
_DATE = re.compile(
    r"(?:19|20)\d{2}\s*[年./-]\s*\d{1,2}\s*[月./-]\s*\d{1,2}\s*日?"
    r"|(?:19|20)\d{2}\s*年\s*\d{1,2}\s*月|\d{1,2}\s*月\s*\d{1,2}\s*[日号]"
)
_PHONE = re.compile(
    r"(?<!\d)(?:0\d{2,3}[-—–－ ]?\d{3,4}[-—–－ ]?\d{4}|1[3-9]\d{9}|0000[-—]?0{4,}|12345|12348|"
    r"12315|12358|12369|12366|12333|12319|12320|12328|12350|110|119|120)(?!\d)"
)
_USER_ID = re.compile(r"[\"“”'‘’]?\s*(?:UU|A)\d{4,}\s*[\"“”'‘’]?|[a-zA-Z]{2,}\d*(?=[你您]好)")
_GREETING = re.compile(
    r"^(?:尊敬的|亲爱的)?(?:网友|网民|市民|群众|来信人|朋友|同志|先生|女士|[\w]{0,6}网友)?"
    r"(?:朋友)?(?:您|你)?好?(?:呀|啊)?$|^(?:您|你)好$"
)
_ACK = re.compile(
    r"收悉|已阅|阅悉|已(?:经)?(?:收到|知悉|获悉|知晓)|收到(?:您|你|网友|市民|了您|了你)"
)
_THANKS = re.compile(
    r"感谢|谢谢|多谢|祝您|祝你|祝愿|欢迎|敬请|请.{0,4}(?:理解|谅解|监督|支持)|支持|关心|关注|"
    r"问政|监督|宝贵|来信|留言|来帖|帖文|鼓励|肯定"
)
_FORWARD = re.compile(
    r"(?:已|将|已经|我们已?|我办已?|我局已?|现已|予以|按程序|按照?工作程序)?"
    r"(?:转交|转至|转到|转给|转办|转发|转送|转由|转入|转请|转|交办|移交|批转|呈报|报送|报告|交由|交给|发函交办|分流|推送)"
)
_FORWARD_TAIL = re.compile(
    r"调查|核处|核查|核实|办复|办理|处理|处置|答复|回复|反馈|关注|参考|研究|跟进|落实|解决"
)
_PROMISE = re.compile(
    r"待.{0,12}(?:后|结果)|将及时|及时(?:回复|反馈|告知|答复)|敬请(?:留意|关注|等待)|耐心等待|"
    r"后续(?:回复|答复)|另行(?:回复|答复)|再(?:向|给|与)?(?:您|你)?(?:回复|答复)|"
    r"(?:会|将)(?:向|给)?(?:您|你)?(?:回复|反馈|答复)|如有(?:回复|结果|进展)|第一时间"
)
_REFER = re.compile(
    r"(?:请|建议|可|可以|您可|你可|烦请|请您|请你|建议您|建议你)(?:直接|就近|自行|再)?"
    r"(?:向|到|去|与|致电|拨打|电话|咨询|联系|来电|前往|反映|投诉|登录|查询|询问)|"
    r"联系电话|咨询电话|电话[::]|热线"
)
_INVESTIGATION = re.compile(
    r"经(?:调查|核实|核查|查|了解|现场|实地|走访|排查|检查|检测|研究|协调|审核|询问|调阅|比对)|"
    r"调查(?:发现|核实|了解|情况)|现场(?:查看|察看|勘查|检查|核实|调查|处置|踏勘)|实地|走访|"
    r"上门|约谈|核实情况|派员|派出|组织(?:人员|力量|执法)|执法人员|工作人员(?:已|立即|到)"
)
_ACTION = re.compile(
    r"已(?:责令|要求|督促|安排|组织|完成|处理|解决|整改|拆除|清理|修复|维修|更换|恢复|落实|"
    r"协调|约谈|处罚|查处|立案|下达|开展|启动|制定|纳入|列入|办理|发放|补发|退还|退回|清退|"
    r"关停|取缔|暂停|停止|封堵|疏通|铺设|安装|设置|增设|开通|调整|通知|告知|答复|联系|"
    r"批复|审批|受理|核发|整治|查封|扣押|没收|罚款|移送)|"
    r"责令|限期|整改|处罚|罚款|立案|查处|取缔|拆除|清理|修复|维修|更换|疏通|施工|完工|开工|"
    r"竣工|投入使用|计划|预计|拟|将于|争取|力争|正在|目前|现已|已经|下一步|近期|尽快"
)
_REASON = re.compile(
    r"因为|由于|因(?!此)|所以|因此|根据|依据|按照|依照|参照|规定|政策|办法|条例|法律|法规|"
    r"文件|标准|通知|意见|细则|属于|不属于|不在|职责|职能|范围|管辖|原因|是否|可以|需要|"
    r"应当|应该|必须|须|条件|材料|程序|手续|流程|符合|不符合|办理|申请|审批|资格|要求|"
    r"具体|情况|如下|一是|二是|首先|其次|第一|第二|\(1\)|1[、.]"
)
_ANSWER_HEAD = re.compile(
    r"(?:现|特|兹)?(?:回复|答复|回复意见|说明|汇报|告知)如下|情况如下|如下[::]?$"
)
#: Characters of a title or request that say nothing about its subject.
_SUBJECT_NOISE = set(
    "的了是在我们你您他她它和与及或对于关就把被给向从到为以请求问题咨询反映投诉举报建议希望"
    "呼吁要求一下有无什么怎么如何为何能否可否是否何时哪里哪些这那个些吗呢吧啊呀!?,.:;、"
    "市县区镇乡村省街道社组号楼栋单元路"
)
_CJK_OR_WORD = re.compile(r"[\u4e00-\u9fff]|[A-Za-z0-9]")


def _clean(text):
    """Half-width, no control characters, one space; cut to ``MAX_CHARS``."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", str(text)[: MAX_CHARS * 2])
    text = "".join(" " if unicodedata.category(c)[0] == "C" and c not in "\n" else c for c in text)
    return re.sub(r"[ \u3000]+", " ", text).strip()[:MAX_CHARS]


def _chars(text):
    return len(_CJK_OR_WORD.findall(text))


def _subject_bigrams(text):
    keep = [c for c in text if "\u4e00" <= c <= "\u9fff" and c not in _SUBJECT_NOISE]
    joined = "".join(keep)
    return {joined[i : i + 2] for i in range(len(joined) - 1)} | set(keep)


@dataclass
class _Parse:
    """What the phrase lists found in one reply (the evidence behind features and reasons)."""

    total_chars: int
    content: str
    content_chars: int
    content_clauses: int
    ack: bool
    forward: bool
    forward_tail: bool
    promise: bool
    refer: bool
    phone: int
    date: bool
    answer_head: bool
    investigation: int
    action: int
    reason: int
    digits: int


def _is_boilerplate(clause):
    """A clause that says nothing about the matter: greeting, thanks, acknowledgement, date."""
    rest = _DATE.sub("", clause)
    rest = _USER_ID.sub("", rest)
    if _chars(rest) == 0 or _GREETING.match(rest.strip(' "“”:')):
        return True
    if _INVESTIGATION.search(rest) or _ACTION.search(rest) or _REASON.search(rest):
        return False
    if _ACK.search(rest) or _THANKS.search(rest) or _ANSWER_HEAD.search(rest):
        return _chars(rest) <= 40
    return False


def _parse(reply):
    text = _USER_ID.sub(" ", _clean(reply))
    clauses = [c for c in _CLAUSES.split(text) if c and c.strip()]
    content = []
    forward = forward_tail = refer = promise = False
    for clause in clauses:
        if _is_boilerplate(clause):
            continue
        is_forward = bool(_FORWARD.search(clause)) and not _INVESTIGATION.search(clause)
        is_promise = bool(_PROMISE.search(clause))
        is_refer = bool(_REFER.search(clause))
        forward |= is_forward
        forward_tail |= is_forward and bool(_FORWARD_TAIL.search(clause))
        promise |= is_promise
        refer |= is_refer
        if (is_forward or is_promise or is_refer) and not (
            _ACTION.search(clause.replace("已转", "")) and _REASON.search(clause)
        ):
            # Forwarding, referral and promises are procedure, not an answer.
            continue
        content.append(clause)
    joined = "，".join(content)
    return _Parse(
        total_chars=_chars(text),
        content=joined,
        content_chars=_chars(_PHONE.sub("", _DATE.sub("", joined))),
        content_clauses=len(content),
        ack=bool(_ACK.search(text)),
        forward=forward,
        forward_tail=forward_tail,
        promise=promise,
        refer=refer,
        phone=len(_PHONE.findall(text)),
        date=bool(_DATE.search(text)),
        answer_head=bool(_ANSWER_HEAD.search(text)),
        investigation=len(_INVESTIGATION.findall(joined)),
        action=len(_ACTION.findall(joined)),
        reason=len(_REASON.findall(joined)),
        digits=len(re.findall(r"\d+", _PHONE.sub("", _DATE.sub("", joined)))),
    )


def _overlap(content, request, title):
    """Share of the title's (else the request's) subject characters/bigrams in the reply."""
    subject = _subject_bigrams(_clean(title)) or _subject_bigrams(_clean(request)[:300])
    if not subject:
        return None
    words = _subject_bigrams(content)
    return len(subject & words) / len(subject)


#: Feature names, in the order of the weights in the model file.
FEATURES = (
    "log_total_chars",
    "log_content_chars",
    "content_clauses",
    "no_content",
    "short_content",
    "ack",
    "forward",
    "forward_tail",
    "promise",
    "refer",
    "phone",
    "date",
    "answer_head",
    "investigation",
    "action",
    "reason",
    "digits",
    "forward_only",
    "refer_only",
    "ack_only",
    "subject_overlap",
    "no_subject_overlap",
    "log_request_chars",
    "short_for_request",
)


def _features(parse, request, title):
    request_chars = _chars(_clean(request))
    overlap = _overlap(parse.content, request, title)
    substance = parse.investigation + parse.action + parse.reason
    short_for_request = max(0.0, math.log1p(request_chars) - math.log1p(parse.content_chars) - 2)
    return {
        "log_total_chars": math.log1p(parse.total_chars),
        "log_content_chars": math.log1p(parse.content_chars),
        "content_clauses": min(parse.content_clauses, 10),
        "no_content": float(parse.content_chars == 0),
        "short_content": float(parse.content_chars < 20),
        "ack": float(parse.ack),
        "forward": float(parse.forward),
        "forward_tail": float(parse.forward_tail),
        "promise": float(parse.promise),
        "refer": float(parse.refer),
        "phone": float(min(parse.phone, 3)),
        "date": float(parse.date),
        "answer_head": float(parse.answer_head),
        "investigation": float(min(parse.investigation, 5)),
        "action": float(min(parse.action, 10)),
        "reason": float(min(parse.reason, 10)),
        "digits": float(min(parse.digits, 10)),
        "forward_only": float(parse.forward and substance == 0),
        "refer_only": float(parse.refer and substance <= 1 and parse.content_chars < 30),
        "ack_only": float(parse.ack and parse.content_chars == 0),
        "subject_overlap": 0.5 if overlap is None else overlap,
        "no_subject_overlap": float(overlap == 0.0 and parse.content_chars >= 15),
        "log_request_chars": math.log1p(request_chars),
        "short_for_request": short_for_request,
    }


def features(reply, request="", title=""):
    """The feature vector (a list in ``FEATURES`` order) of one reply."""
    values = _features(_parse(reply), request, title)
    return [values[name] for name in FEATURES]


# ---------------------------------------------------------------------------------------------
# Reasons: from the parse, in words a handler can act on


def _reasons(parse, values):
    reasons = []
    substance = parse.investigation + parse.action + parse.reason
    if parse.total_chars == 0:
        return ("答复为空：请写明办理情况、结果或不能办理的原因",)
    if parse.forward and substance == 0:
        reasons.append(
            "答复仅说明已转交其他单位，未写办理结果：请写明转交后的调查核实情况和处理结果，"
            "或承办单位、办理时限"
        )
    elif parse.ack and parse.content_chars == 0:
        reasons.append(
            "答复仅表示“已收悉”，未说明办理情况或结果：请写明调查核实情况、采取的措施和结果"
        )
    if parse.refer and (parse.phone or substance <= 1) and parse.content_chars < 30:
        reasons.append(
            "答复只让市民自行咨询或致电其他部门：请先就所问事项直接答复（政策依据、办理条件或结论），"
            "确需转介时说明原因"
        )
    if parse.content_chars == 0 and not reasons:
        reasons.append("答复只有问候、感谢或日期，没有实质内容：请写明办理情况、结果或依据")
    if parse.content_chars > 0 and parse.investigation == 0 and parse.action == 0:
        if parse.reason == 0:
            reasons.append(
                "答复未说明做了什么，也未说明原因或依据：请补充调查核实情况、处理措施或政策依据"
            )
    if values["no_subject_overlap"]:
        reasons.append("答复内容与诉求主题不相关：请对照诉求中的具体事项（地点、对象、问题）作答")
    if values["short_for_request"] > 0 and parse.content_chars < 40:
        reasons.append("答复相对诉求过于简短：诉求反映了多方面情况，请逐项说明核查结果和处理意见")
    if not reasons:
        reasons.append(
            "答复缺少办理过程和结果：请写明调查核实的情况、已采取的措施和结果，或不能办理的原因"
        )
    return tuple(reasons)


# ---------------------------------------------------------------------------------------------
# The model


@dataclass(frozen=True)
class Model:
    """Standardised logistic regression over ``FEATURES``, plus the decision threshold."""

    mean: tuple
    scale: tuple
    weights: tuple
    bias: float
    threshold: float
    meta: dict

    def score(self, vector):
        z = self.bias
        for x, m, s, w in zip(vector, self.mean, self.scale, self.weights, strict=True):
            z += w * (x - m) / s
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def to_json(self):
        return {
            "features": list(FEATURES),
            "mean": [round(v, 6) for v in self.mean],
            "scale": [round(v, 6) for v in self.scale],
            "weights": [round(v, 6) for v in self.weights],
            "bias": round(self.bias, 6),
            "threshold": round(self.threshold, 6),
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, data):
        if list(data["features"]) != list(FEATURES):
            raise ValueError("reply-quality model file does not match this code's features")
        return cls(
            mean=tuple(data["mean"]),
            scale=tuple(data["scale"]),
            weights=tuple(data["weights"]),
            bias=float(data["bias"]),
            threshold=float(data["threshold"]),
            meta=dict(data.get("meta", {})),
        )


@lru_cache(maxsize=4)
def load(path=MODEL_FILE):
    with open(path, encoding="utf-8") as f:
        return Model.from_json(json.load(f))


def assess(reply, request="", title="", *, model=None):
    """Judge one reply against its request (see the module docstring)."""
    model = model or load()
    parse = _parse(reply or "")
    values = _features(parse, request or "", title or "")
    score = model.score([values[name] for name in FEATURES])
    poor = parse.total_chars == 0 or score >= model.threshold
    return Assessment(
        poor=poor, score=round(score, 4), reasons=_reasons(parse, values) if poor else ()
    )


# ---------------------------------------------------------------------------------------------
# Fitting (numpy and scikit-learn are needed here only)


def read_labelled(path):
    """Rows of the labelled reply file as dicts: id, reply, request, title, poor."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        return [
            {
                "id": row["留言编号"].strip(),
                "reply": row["答复意见"] or "",
                "request": row["留言详情"] or "",
                "title": row["留言主题"] or "",
                "poor": row["可解释性"].strip() == "0",
            }
            for row in csv.DictReader(f)
        ]


def matrix(rows):
    import numpy as np

    return np.array([features(r["reply"], r["request"], r["title"]) for r in rows], dtype=float)


#: Inverse regularisation strength and class weighting of the logistic regression.
C = 1.0


def _fit_weights(x, y):
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    lr = LogisticRegression(C=C, class_weight="balanced", max_iter=5000)
    lr.fit((x - mean) / scale, y)
    return mean, scale, lr.coef_[0], float(lr.intercept_[0])


def _scores(x, mean, scale, weights, bias):
    import numpy as np

    z = ((x - mean) / scale) @ weights + bias
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def threshold_for_recall(scores, y, recall=TARGET_RECALL):
    """The highest threshold t with recall(score ≥ t) ≥ ``recall`` on these scores."""
    import numpy as np

    positives = np.sort(np.asarray(scores)[np.asarray(y, dtype=bool)])[::-1]
    if len(positives) == 0:
        return 0.5
    k = math.ceil(recall * len(positives))
    return float(positives[k - 1])


def out_of_fold(x, y, folds=5, seed=0):
    """Scores of each row from a model fitted on the other folds (stratified)."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    scores = np.zeros(len(y))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        mean, scale, w, b = _fit_weights(x[train], y[train])
        scores[test] = _scores(x[test], mean, scale, w, b)
    return scores


def fit_matrix(x, y, folds=5, seed=0, meta=None):
    """Weights on all of ``x``; threshold from their own out-of-fold scores (recall ≥ 0.95)."""
    mean, scale, w, b = _fit_weights(x, y)
    threshold = threshold_for_recall(out_of_fold(x, y, folds, seed), y)
    return Model(
        mean=tuple(float(v) for v in mean),
        scale=tuple(float(v) for v in scale),
        weights=tuple(float(v) for v in w),
        bias=b,
        threshold=threshold,
        meta=dict(meta or {}, rows=int(len(y)), poor=int(sum(y)), folds=folds, C=C),
    )


def fit(rows, folds=5, seed=0):
    """The model fitted on labelled ``rows`` (as ``read_labelled`` returns)."""
    import numpy as np

    x = matrix(rows)
    y = np.array([r["poor"] for r in rows], dtype=int)
    return fit_matrix(x, y, folds, seed, meta={"target_recall": TARGET_RECALL})


def main(argv=None):
    parser = argparse.ArgumentParser(description="Re-fit the shipped reply-quality weights.")
    sub = parser.add_subparsers(dest="command", required=True)
    fit_parser = sub.add_parser("fit", help="fit on a labelled CSV (附件4_答复可解释性人工标注)")
    fit_parser.add_argument("path")
    fit_parser.add_argument("--out", default=str(MODEL_FILE))
    args = parser.parse_args(argv)
    model = fit(read_labelled(args.path))
    Path(args.out).write_text(
        json.dumps(model.to_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    print(f"wrote {args.out}: threshold {model.threshold:.4f}, {model.meta['rows']} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
