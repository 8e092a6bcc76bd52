"""Request type (咨询/求助/投诉/举报/建议/表扬) and urgency tier.

Urgency: a danger to life or property happening now (gas leak, fire, injury, someone trapped …)
is ``emergency`` and the operator is told where to transfer the call (110/119/120/122, or the
utility's emergency line); an outage of water, power, gas or heating is ``urgent`` (24-hour
clock); everything else ``normal``. Recall comes first (DOMAIN.md §3: emergencies are
transferred).

Two layers decide an emergency. The rules below fire on the danger words themselves and are
held back only by clear signs that the matter is not happening now (an enquiry, a past event, a
hazard report); they work alone when no model is saved. A learned model (``UrgencyModel``,
trained with the default bundle) reads the whole call: a rule hit stands unless the model is
confident it is a look-alike (a black river, piling at night, an enquiry about 120 fees), and
the model alone raises an emergency the rules have no word for (someone on a roof edge, a hand
in a machine). Both thresholds are tuned on the development half of the emergency test list
only; ``bench/urgency.py`` measures on the held-out half.

The request type is learned from labelled messages when a model is given, with keyword rules
as the fallback and as an override for explicit words (“我要举报”, “表扬”).
"""

import re
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from classifier.normalize import normalize
from classifier.text_model import LinearScores, TfidfFeatures

# -- urgency ----------------------------------------------------------------------------------

#: (transfer target, pattern) — a danger in progress. Checked in order; first hit names the line.
_EMERGENCIES = [
    (
        "utility",
        r"(燃气|煤气|天然气|液化气|沼气)[^，。！？]{0,10}(泄漏|泄露|漏气|漏了|冒气|喷气|冒泡|挖破|挖断|刮断|"
        r"打穿|脱落|关不上|味(很|特别|非常|可)?(大|重|浓|冲))|闻到[^，。！？]{0,10}(燃气|煤气|天然气|液化气)"
        r"|(燃气|煤气|天然气|液化气|气)味[^，。]{0,6}(大|重|浓|冲)|(煤气|燃气|天然气|液化气)味|漏气|"
        r"燃气报警器[^，。]{0,6}(响|叫)|嘶嘶|呲呲|滋滋|全是(气|味)|满屋[^，。]{0,4}(气|味)|臭鸡蛋|"
        r"气味[^，。]{0,4}(大|重|浓|冲)|(很|特别|非常)(大|重|浓|冲)的(气)?味|报警器[^，。]{0,6}(响|叫)",
    ),
    (
        "119",
        r"(着火|著火|起火|失火|火灾|火情|烧起来|烧着|着了|引着|明火|冒火|火苗|火势|火大|窜火|火窜|"
        r"冒(黑|浓|黄|白)?烟|浓烟|黑烟|黄烟|爆炸|炸了|放火|刺鼻|火光|冒出[^，。]{0,3}烟|烟越(冒|来)越|全是烟)",
    ),
    (
        "122",
        r"(车祸|撞车|撞人|撞了|被撞|撞到|撞飞|撞倒|相撞|对撞|撞一块|追尾|翻车|侧翻|翻了|翻到|"
        r"车底|压了|碾|交通事故|刮倒|翻[^，。]{0,2}(沟|河|渠))",
    ),
    (
        "120",
        r"(一氧化碳|煤气中毒|中毒|头(很|特别)?(疼|晕)[^，。]{0,8}(想吐|恶心)|吃错药|吞了|误服)",
    ),
    (
        "120",
        r"(受伤|伤了|砍伤|咬伤|烫伤|烧伤|流血|出血|血流|满脸是血|都是血|吐血|有血|血止不住|"
        r"昏迷|晕倒|晕过去|昏过去|不省人事|不醒人事|没(有)?反应|叫不(醒|应)|呼之不应|意识|"
        r"抽搐|抽了|口吐白沫|呼吸困难|喘不(上|过)气|没(了)?呼吸|呼吸微弱|憋紫|噎住|卡住了|"
        r"心脏病|胸(口)?(疼|痛|闷)|心慌|心肺复苏|救护车|急救|AED|不行了|快不行|"
        r"脑梗|中风|嘴角歪|说不出话|说话不清|骨折|骨头|变形|动不了|不能动|起不来|倒地|倒下|躺着不动|"
        r"躺在地上|摔(倒|伤|下来|出来)|休克|溺水|落水|沉下去|抽筋|触电|被电(到|击)|晕厥|"
        r"羊水|快生了|一直喘|喘得|过敏|蛰|肿起来|发抖|上吐下泻|歪倒|栽倒|倒在|晕在|没醒|不醒|磕(在|到|破)|"
        r"(开始|一直|直)吐|吐了好几|打滚|起疹子|电打|被电|扎穿|扎进|刺穿|溅到[^，。]{0,4}(脸|眼)|"
        r"(卷|绞|夹|轧)(进|住|伤|断|掉|扁)|(手|手指|腿|胳膊)[^，。]{0,3}断|"
        r"(喝|吃|吞)(了)?[^，。]{0,6}(农药|敌敌畏|百草枯|老鼠药|安眠药|药片|一把药|一瓶药)|"
        r"纽扣电池|磁(铁|珠)|说胡话|神志不清|认不出(人|家里人)|(嘴唇|嘴|脸)[^，。]{0,3}(发紫|发青|紫了|青了)|"
        r"不喘气|没气了|冷汗)",
    ),
    (
        "119",
        r"(被困|困在|困住|困了|出不来|出不去|卡在|拔不出|关在[^，。]{0,6}(里|电梯)|电梯[^，。]{0,8}(困|关|下坠|坠)|"
        r"反锁|打不开|掉进|掉下去|掉到|坠落|要掉|会掉|坍塌|倒塌|塌方|塌陷|塌了|要塌|会塌|快塌|"
        r"(锁|关)在[^，。]{0,4}车里|车里(锁|关)着|车里有个(婴儿|小孩|孩子)|陷进|埋(在|了)|没动静|没上来|"
        r"沉到|捞上来|水(还)?在涨|水越来越(大|深)|(孩|宝)[^，。]{0,8}(外机|窗外|窗户外|窗台|防护栏|阳台外)|"
        r"(楼|房|墙)[^，。]{0,6}(晃|裂|开裂|掉砖|掉渣)|冰[^，。]{0,4}裂|淹到|压住|压在)",
    ),
    (
        "110",
        r"(打架|斗殴|群殴|对砍|持刀|拿刀|拿着刀|刀子|砍人|捅人|打人|殴打|行凶|抢劫|抢了|绑架|非法拘禁|"
        r"关起来|不让(我)?(走|下车|出去)|偷|撬|闯进|入室|砸门|家暴|打(我|她|他|孩子|老婆|起来)|"
        r"弄死|杀了|同归于尽|跟踪|拽|救命|诈骗[^，。]{0,6}(打钱|转账)|"
        r"走丢|(孩子|小孩|宝宝|儿子|女儿|闺女|老人|老太太|老爷子|父亲|母亲|爸|妈|爷爷|奶奶|姥姥|姥爷|外婆|外公|人)[^，。]{0,4}丢了|不见了|找不到|找遍|失踪|走失|没(有)?回(来|家)|联系不上|抱走|请求警方|快报警|"
        r"围着打|还在打|正在打|往下扔|砸(到|伤|中)(了)?(人|车)|(好几天|多日|几天)没(出门|见)|敲门[^，。]{0,3}不应|"
        r"跳楼|跳下来|要跳|站在边上|没有大人|没大人|大人不在|轻生|自杀|不想活|寻死|割腕|割(了)?(手)?腕|往下跳|跳下去|往(水|河)里(走|跳)|活够了|"
        r"遗书|遗言|最后一个电话|一了百了|不拖累|撑不下去|想不开|留了纸条|解脱|不想再受罪|"
        r"(楼顶|天台|窗台|栏杆|护栏)[^，。]{0,6}(边上|外面|外边)|(站|坐|蹲)在[^，。]{0,4}(楼顶|天台|窗台)|"
        r"爬到[^，。]{0,8}(塔|楼顶|顶上)|互殴|砸头|尖叫|求饶|呼救|追(着)?(人|打|砍)|"
        r"(棍子|棒子|铁锨|钢管|酒瓶)[^，。]{0,4}(打|砸|追)|打学生|抱(他|她)?走|(拽|拉)上车|拉走)",
    ),
    (
        "utility",
        r"(水管|管道|自来水管|主管道|供水管|暖气管|暖气主管道)[^，。]{0,6}(爆|破|裂|崩|喷|漏|断)|爆管|"
        r"(家里|屋里|楼道|地下室|车库|路口)[^，。]{0,6}(进水|淹|灌水|成河)|淹了|往外(冒|涌|喷|流)|"
        r"(电线|电缆|高压线|变压器|电线杆)[^，。]{0,8}(掉|断|垂|倒|冒火|火花|打火|泡|带(着)?电)|"
        r"(冒|打)火(花)?|漏电|短路|(积水|水里|地上)[^，。]{0,6}有电",
    ),
]
_EMERGENCY_RULES = [(target, re.compile(p)) for target, p in _EMERGENCIES]

#: Signs that the danger words describe something not happening now.
_NOT_NOW = re.compile(
    r"(怎么(交|缴|办理|申请|报销|投保|赔)|如何(办理|申请|报销|缴纳)|费用|缴费|报销|赔偿|理赔|"
    r"差点|险些|昨(天|晚)|前天|"
    r"隐患|安全隐患|占用|堵塞|堆放|年检|检验|过期|演练|宣传|培训|"
    r"(上|去|前)(个)?(月|年|周|星期)|前几天|去年|以前|之前发生|曾经|已经(扑灭|处理|送医|修好)|"
    r"保险|证明|咨询[^，。]{0,6}(120|119|110))"
)
#: …unless the text also says it is happening right now.
_RIGHT_NOW = re.compile(r"(现在|正在|刚刚|刚才|马上|赶紧|快来|救命|紧急|快点|赶快)")

_UTILITY_OUTAGE = re.compile(
    r"(停水|没水|断水|水压(太)?低|不出水|停电|没电|断电|跳闸|停气|没气|燃气[^，。]{0,4}(停|断)|"
    r"暖气[^，。]{0,6}(不热|不暖|没热|冰凉|停)|供暖[^，。]{0,6}(不热|不足|停)|没有暖气)"
)


@dataclass
class Urgency:
    #: "emergency", "urgent" or "normal"
    tier: str
    #: For emergencies: "110", "119", "120", "122" or "utility" (the company's emergency line).
    transfer_to: str | None = None
    #: The words that decided it, for the operator.
    evidence: str | None = None


def urgency(text, *, utility_category=False, model=None):
    """The urgency tier of a complaint (``text`` raw or normalised); ``model`` is the learned
    ``UrgencyModel`` of the active bundle, or None for the rules alone."""
    text = normalize(text)
    emergency = _rules_and_model(text, model) if model is not None else _rule_emergency(text)
    if emergency:
        return Urgency("emergency", *emergency)
    outage = _UTILITY_OUTAGE.search(text)
    if outage:
        return Urgency("urgent", None, outage.group(0))
    if utility_category:
        return Urgency("urgent", None, None)
    return Urgency("normal")


def _rules_and_model(text, model):
    """(line, evidence) of an emergency by the rules and the model together, or None.

    Without the not-now signs (they are the model's features): a rule hit stands unless the
    model, which sees the rules' signals, reads a look-alike (a cry for help or a body in
    danger, ``cry_for_help``, always stands); where no rule fires, the model alone decides."""
    signals = np.array([rule_signals(text)], dtype=np.float32)
    on_hit, alone = model.probabilities([text], signals=signals)
    if signals[0, : len(_EMERGENCY_RULES)].any():
        if on_hit[0] >= model.veto or cry_for_help(text):
            # The rule's words are the evidence; the line is the model's, which reads the whole
            # call (out-of-fold on the development half: 0.88 right against the rules' 0.86).
            _, evidence = _rule_emergency(text, guarded=False)
            return model.line(text, signals=signals), evidence
        return None
    if alone[0] >= model.alone:
        return model.line(text, signals=signals), model.evidence(text)
    return None


def _rule_emergency(normalised_text, guarded=True):
    """(transfer line, evidence) of the first emergency rule that fires, or None. ``guarded``:
    held back by the not-now signs unless the text also says it is happening right now."""
    if guarded and _NOT_NOW.search(normalised_text) and not _RIGHT_NOW.search(normalised_text):
        return None
    for target, rule in _EMERGENCY_RULES:
        match = rule.search(normalised_text)
        if match:
            return target, match.group(0)
    return None


def rule_signals(normalised_text):
    """What the rules see, as model features: a hit of each emergency rule (before the
    not-now check), the not-now signs, the right-now words and the outage words."""
    return [1.0 if rule.search(normalised_text) else 0.0 for _, rule in _EMERGENCY_RULES] + [
        1.0 if pattern.search(normalised_text) else 0.0
        for pattern in (_NOT_NOW, _RIGHT_NOW, _UTILITY_OUTAGE)
    ]


def cry_for_help(normalised_text):
    """A caller crying for help: no model holds a rule hit back."""
    return _UNMISTAKABLE.search(normalised_text) is not None


def rules_fire(normalised_text):
    """Whether an emergency rule fires, before the not-now check."""
    return _rule_emergency(normalised_text, guarded=False) is not None


#: Words no look-alike says (``cry_for_help``): a cry for help, and a body or a live wire in
#: danger right now (none of the development half's 1,700 non-emergencies says any of these).
_UNMISTAKABLE = re.compile(
    r"(救命|快叫救护车|喘不上气|(嘴唇|嘴|脸)(都)?(发紫|发青|紫了|青了)|不喘气|没(了|有)?呼吸|没气了|"
    r"叫不醒|叫不应|呼之不应|(吞|喝|吃)(下|了)[^，。]{0,4}(大量|一瓶|一把|整瓶|半瓶)|带电的(电)?线|"
    r"冒(出)?火花)"
)

#: Where an emergency is transferred.
LINES = ("110", "119", "120", "122", "utility")

#: Clauses of a call, for the evidence of a learned decision.
_CLAUSE = re.compile(r"[^，,。！？!?；;：:\s]+")


class UrgencyModel:
    """Learned emergency scores and the transfer line, over character 1–3-grams and the rules'
    signals (``rule_signals``); stored as plain arrays, so serving needs no scikit-learn.

    Three linear models: ``on_hit``, logistic over the words and the rules' signals, trained on
    all calls (it learns what makes a look-alike of a rule hit; trained on the rule hits only,
    it saw far fewer calls and, out-of-fold on the development half, raised more false alarms
    at the same recall); ``alone``, logistic over the words only, trained on all calls (for
    wordings no rule knows); ``line``, a linear SVM over the emergencies, for the transfer
    line. ``veto`` and ``alone`` are the thresholds (``classifier.training.train_urgency``
    tunes them)."""

    def __init__(self, C=10.0, veto=0.5, alone=0.7):
        self.C = C
        #: A rule hit stands from this p(emergency | rule fired) on.
        self.veto = veto
        #: With no rule hit, the model alone says emergency from this p on.
        self.alone = alone
        self.features = None
        self.weights = None  # columns: on_hit, alone
        self.intercepts = None
        self.line_weights = None
        self.line_intercept = None

    def matrix(self, normalised_texts):
        import scipy.sparse as sp

        signals = sp.csr_matrix(np.array([rule_signals(t) for t in normalised_texts], np.float32))
        return sp.hstack([self.features.transform(normalised_texts), signals], format="csr")

    def fit(self, texts, emergency, lines):
        """``emergency``: booleans; ``lines``: the transfer line of each emergency (None where
        unknown, and for the others)."""
        import scipy.sparse as sp
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.svm import LinearSVC

        texts = [normalize(t) for t in texts]
        vectorizer = TfidfVectorizer(
            analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2
        ).fit(texts)
        self.features = TfidfFeatures.from_vectorizer(vectorizer)
        matrix = self.matrix(texts)
        y = np.array(emergency, dtype=int)
        # The model alone reads the words only: the rules were written from the same calls,
        # so their signals would make it look better here than on wordings no rule knows.
        mask = np.ones(matrix.shape[1], dtype=np.float32)
        mask[-len(rule_signals("")) :] = 0
        words_only = (matrix @ sp.diags(mask)).tocsr()
        words_only.eliminate_zeros()
        columns, intercepts = [], []
        everything = np.ones(len(texts), dtype=bool)
        for features, rows in ((matrix, everything), (words_only, everything)):
            model = LogisticRegression(
                C=self.C,
                class_weight="balanced",
                solver="liblinear",
                dual=True,
                max_iter=1000,
                random_state=0,
            )
            model.fit(features[rows], y[rows])
            columns.append(model.coef_[0])
            intercepts.append(model.intercept_[0])
        self.weights = np.ascontiguousarray(np.array(columns).T, dtype=np.float32)
        self.intercepts = np.array(intercepts, dtype=np.float32)
        rows = [i for i, (e, line) in enumerate(zip(y, lines, strict=True)) if e and line]
        svm = LinearSVC(C=self.C / 10, dual=True, random_state=0)
        svm.fit(matrix[rows], [lines[i] for i in rows])
        order = [list(svm.classes_).index(line) for line in LINES]
        self.line_weights = np.ascontiguousarray(svm.coef_[order].T, dtype=np.float32)
        self.line_intercept = np.asarray(svm.intercept_[order], dtype=np.float32)
        return self

    def probabilities(self, texts, *, signals=None):
        """(p on a rule hit, p alone) of each text (normalised or not), as two arrays;
        ``signals``: their ``rule_signals`` if already known."""
        scores = self._scores(texts, signals, self.weights) + self.intercepts
        p = expit(scores)
        return p[:, 0], p[:, 1]

    def line(self, text, *, signals=None):
        """The most likely transfer line of an emergency."""
        scores = self._scores([text], signals, self.line_weights)[0] + self.line_intercept
        return LINES[int(np.argmax(scores))]

    def _scores(self, texts, signals, weights):
        """The text columns and the signal columns times ``weights`` (one text: no sparse
        matrix at all, intake counts every tenth of a millisecond)."""
        texts = [normalize(t) for t in texts]
        if signals is None:
            signals = np.array([rule_signals(t) for t in texts], dtype=np.float32)
        n = signals.shape[1]
        if len(texts) == 1:
            columns, values = self.features.row(texts[0])
            return (values @ weights[columns])[None, :] + signals @ weights[-n:]
        return np.asarray(self.features.transform(texts) @ weights[:-n]) + signals @ weights[-n:]

    def evidence(self, text):
        """The clause that reads most like an emergency (shown to the operator)."""
        text = normalize(text)
        clauses = _CLAUSE.findall(text) or [text]
        return clauses[int(np.argmax(self.probabilities(clauses)[1]))]


# -- request type -----------------------------------------------------------------------------

REQUEST_TYPES = ("consult", "help", "complaint", "report", "suggestion", "praise")

#: Explicit words that settle the type whatever a model says, strongest first.
_EXPLICIT = [
    (
        "praise",
        re.compile(
            r"(表扬|感谢信|点赞|锦旗|致谢|特此感谢|非常感谢[^，。]{0,12}(工作人员|同志|师傅))"
        ),
    ),
    ("report", re.compile(r"(举报|检举|揭发)")),
    ("suggestion", re.compile(r"(建议|提议|希望能?(增设|开通|增加|设置|规划))")),
    (
        "consult",
        re.compile(r"(咨询|请问|想问|想了解|是否可以|能否|怎么办理|如何办理|需要什么(材料|手续))"),
    ),
    ("complaint", re.compile(r"(投诉|不作为|乱收费|扰民|强烈要求|严重影响)")),
    ("help", re.compile(r"(求助|帮帮|帮忙|救助|无助|走投无路)")),
]


def request_type_by_rules(text):
    text = normalize(text)
    for name, rule in _EXPLICIT:
        if rule.search(text):
            return name
    return "complaint"


class RequestTypeModel:
    """Character n-gram linear model over labelled messages; explicit words still win."""

    def __init__(self, C=0.5):
        self.C = C
        self.features = None
        self.linear = None

    def fit(self, texts, labels):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.svm import LinearSVC

        vectorizer = TfidfVectorizer(
            analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2
        )
        matrix = vectorizer.fit_transform([normalize(t) for t in texts])
        self.features = TfidfFeatures.from_vectorizer(vectorizer)
        svm = LinearSVC(C=self.C, class_weight="balanced", random_state=0).fit(matrix, labels)
        self.linear = LinearScores(svm)
        return self

    def predict(self, texts):
        normalised = [normalize(t) for t in texts]
        scores = self.linear.scores(self.features.transform(normalised))
        learned = [self.linear.classes[i] for i in scores.argmax(axis=1)]
        return [_explicit(text) or label for text, label in zip(normalised, learned, strict=True)]


def _explicit(normalised_text):
    for name, rule in _EXPLICIT:
        if name in _SAID_OUTRIGHT and rule.search(normalised_text):
            return name
    return None


#: Types people name outright; the others (consult, complaint, help) are better learned.
_SAID_OUTRIGHT = {"praise", "report", "suggestion"}
