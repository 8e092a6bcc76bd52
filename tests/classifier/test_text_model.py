"""The category model on a small hand-written dataset: predictions, top-k, abstention,
descriptions, the fast TF-IDF path, pickling, and the segmenter underneath."""

import copy

import joblib
import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from classifier.normalize import normalize
from classifier.segment import Segmenter
from classifier.text_model import CategoryModel, tfidf

STREETLIGHT = [
    "小区门口的路灯坏了一个星期，晚上黑漆漆的没法走路",
    "胜利东街的路灯晚上不亮，希望尽快维修",
    "我们村口的路灯一直闪，时亮时不亮",
    "人行道上的井盖丢了，很危险，请相关部门修补",
    "东风街路面坑洼不平，下雨积水，电动车容易摔",
    "路灯白天也亮着，浪费电，请管理部门调整",
    "桥下的路灯杆被撞歪了，灯也不亮了",
    "马路上的窨井盖破损，车一压就响",
    "新修的道路没有路灯，晚上回家很害怕",
    "人行道砖松动翘起，老人走路容易绊倒",
    "路灯线路老化，一整排路灯都不亮",
    "道路中间有个大坑，已经好几天没人修",
    "小巷子里的路灯坏了很久，没人来修",
    "公园旁边的路灯灯罩掉了，灯泡也坏了",
    "井盖塌陷，路面出现一个深坑",
]
NOISE = [
    "楼上邻居每天半夜装修，电钻声吵得睡不着",
    "附近工地晚上十一点还在施工，噪音太大",
    "广场舞音响声音太大，每天晚上吵到十点",
    "楼下饭店的排风扇噪声很大，日夜不停",
    "夜间施工的搅拌机轰隆隆响，严重扰民",
    "小区里的歌厅唱歌到凌晨，吵得孩子睡不着",
    "商铺门口用大喇叭循环叫卖，噪音扰民",
    "凌晨还有工地在施工作业，噪音影响休息",
    "隔壁工厂机器噪声大，晚上也不停工",
    "酒吧音乐声太吵，每天到两点多",
    "早上五点就有人在楼下用音响放音乐",
    "建筑工地打桩机的声音太吵了，整栋楼都在震",
    "空调外机噪声特别大，嗡嗡响睡不好觉",
    "夜里施工噪音不断，反映多次没人管",
    "门口烧烤店晚上喧哗吵闹，噪音很大",
]
BUS = [
    "3路公交车司机开车太猛，乘客都站不稳",
    "公交车到站不停，等了半个小时也没上车",
    "希望增加一条到高新区的公交线路",
    "12路公交车班次太少，早上等车要四十分钟",
    "公交站牌上的时刻表已经过时了",
    "公交车司机态度恶劣，骂乘客",
    "末班公交车提前发车，很多人没赶上",
    "公交卡刷不了，司机让乘客下车",
    "公交车空调不开，车厢里太热了",
    "老年人乘坐公交车免费的政策怎么办理",
    "公交车站的候车亭被拆了，下雨没地方躲",
    "公交车经常晚点，上班总是迟到",
    "公交线路改道后没有通知，乘客找不到站点",
    "公交车上的投币箱坏了，司机不让上车",
    "公交车司机边开车边打电话，很危险",
]
PENSION = [
    "单位没有给我缴纳养老保险，要怎么维权",
    "医保报销比例是多少，门诊能不能报",
    "退休后养老金什么时候能领到",
    "社保卡丢了怎么补办",
    "灵活就业人员怎么交社会保险",
    "公司拖欠社保费用半年了",
    "异地就医的医保怎么备案",
    "失业保险金怎么申领",
    "养老保险转移接续需要什么材料",
    "社保缴费基数调整了为什么没通知",
    "生育保险待遇怎么申请",
    "医保卡里的钱被扣了不知道什么原因",
    "工伤保险认定要多长时间",
    "养老金今年调整了多少",
    "社保断缴了三个月有什么影响",
]
DATA = {"市政": STREETLIGHT, "噪声": NOISE, "公交": BUS, "社保": PENSION}
TEXTS = [text for texts in DATA.values() for text in texts]
LABELS = [label for label, texts in DATA.items() for _ in texts]

#: Sentences the model never saw, one per class.
HELD_OUT = [
    ("我家楼下的路灯坏了好几天，晚上出门看不见路", "市政"),
    ("对面工地半夜还在施工，吵得根本睡不着觉", "噪声"),
    ("5路公交车等了一个小时都不来", "公交"),
    ("我想问一下养老保险断缴以后怎么补交", "社保"),
]


@pytest.fixture(scope="module")
def segmenter():
    return Segmenter(["窨井盖", "打桩机", "候车亭", "养老保险"])


@pytest.fixture(scope="module")
def model(segmenter):
    return CategoryModel(segmenter).fit(TEXTS, LABELS)


# -- predictions ------------------------------------------------------------------------------


def test_classes_are_the_labels(model):
    assert model.classes_ == sorted(DATA)


@pytest.mark.parametrize(("text", "label"), HELD_OUT)
def test_predicts_held_out_sentences(model, text, label):
    (prediction,) = model.predict([text])
    assert prediction.top[0][0] == label, prediction.top
    assert prediction.abstain is False
    assert prediction.label == label


def test_top_k_is_ordered_and_probabilities_are_a_distribution(model):
    texts = [text for text, _ in HELD_OUT]
    for prediction in model.predict(texts, k=3):
        assert len(prediction.top) == 3
        assert len({label for label, _ in prediction.top}) == 3
        probabilities = [p for _, p in prediction.top]
        assert probabilities == sorted(probabilities, reverse=True)
        assert all(0.0 <= p <= 1.0 for p in probabilities)
        assert sum(probabilities) <= 1.0 + 1e-6
        assert all(isinstance(label, str) for label, _ in prediction.top)
    everything = model.predict(texts, k=10)
    for prediction in everything:
        assert len(prediction.top) == len(DATA)
        assert sum(p for _, p in prediction.top) == pytest.approx(1.0, abs=1e-6)
    rows = model.probabilities(texts)
    assert rows.shape == (len(texts), len(DATA))
    assert np.allclose(rows.sum(axis=1), 1.0, rtol=0, atol=1e-6)
    # predict's probabilities are the rows of probabilities(), in the order of classes_
    first = dict(everything[0].top)
    assert [first[c] for c in model.classes_] == pytest.approx(list(rows[0]))


def _with_threshold(model, threshold):
    """The same fitted model with another abstain threshold."""
    other = copy.copy(model)
    other.threshold = threshold
    return other


def test_abstains_below_threshold(model):
    text = HELD_OUT[0][0]
    best = model.predict([text])[0].top[0][1]
    assert best < 0.999
    (prediction,) = _with_threshold(model, 0.999).predict([text])
    assert prediction.abstain is True
    assert prediction.label is None
    # abstaining still shows the ranking to the person who has to choose
    assert prediction.top == model.predict([text])[0].top
    # exactly at the threshold is not under it
    assert _with_threshold(model, best).predict([text])[0].abstain is False


def test_trains_with_a_high_threshold_and_abstains(segmenter):
    strict = CategoryModel(segmenter, threshold=0.99).fit(TEXTS, LABELS)
    predictions = strict.predict([text for text, _ in HELD_OUT])
    assert [p.abstain for p in predictions] == [True] * len(HELD_OUT)
    assert [p.label for p in predictions] == [None] * len(HELD_OUT)
    assert [p.top[0][0] for p in predictions] == [label for _, label in HELD_OUT]


# -- descriptions ---------------------------------------------------------------------------

PETS = ["小区里有人遛狗不牵绳", "流浪狗在小区里咬人"]
PET_DESCRIPTIONS = [
    ("养犬管理", "宠物"),
    ("犬只登记", "宠物"),
    ("犬只伤人", "宠物"),
    ("不文明养犬", "宠物"),
    ("犬只登记年检", "宠物"),
]
PET_QUESTION = "邻居养的大型犬只没有登记，经常在楼道里乱跑"


def test_descriptions_help_a_class_with_few_examples(segmenter):
    texts, labels = TEXTS + PETS, LABELS + ["宠物"] * len(PETS)
    without = CategoryModel(segmenter).fit(texts, labels)
    with_descriptions = CategoryModel(segmenter).fit(texts, labels, descriptions=PET_DESCRIPTIONS)
    p_without = dict(without.predict([PET_QUESTION], k=5)[0].top)["宠物"]
    (prediction,) = with_descriptions.predict([PET_QUESTION], k=5)
    assert prediction.top[0][0] == "宠物", prediction.top
    assert prediction.top[0][1] > p_without + 0.1, (prediction.top, p_without)
    # the other classes are still recognised
    assert [p.top[0][0] for p in with_descriptions.predict([t for t, _ in HELD_OUT])] == [
        label for _, label in HELD_OUT
    ]


# -- the fast TF-IDF path ---------------------------------------------------------------------

TFIDF_TEXTS = [
    "",
    "路灯不亮",
    "路灯路灯路灯不亮，不亮！",
    "公交车司机  态度   恶劣",
    "ＡＢＣ全角字母和 mixed Case 文字",
    "完全陌生的词语组合：量子纠缠",
    "社保卡丢了怎么补办，社保卡",
]


def _vectorizers(segmenter):
    """sklearn vectorizers configured as the category model configures them."""
    return {
        "word": TfidfVectorizer(
            tokenizer=segmenter.cut,
            lowercase=False,
            token_pattern=None,
            sublinear_tf=True,
            min_df=2,
        ),
        "char": TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2),
        # lowercasing words, single-character n-grams only: other settings of the same kind
        "word-lowercase": TfidfVectorizer(
            tokenizer=str.split, token_pattern=None, sublinear_tf=True
        ),
        "char-1": TfidfVectorizer(analyzer="char", ngram_range=(1, 1), sublinear_tf=True),
    }


@pytest.mark.parametrize("which", ["word", "char", "word-lowercase", "char-1"])
def test_tfidf_equals_sklearn_transform(segmenter, which):
    corpus = [normalize(t) for t in TEXTS]
    vectorizer = _vectorizers(segmenter)[which].fit(corpus + ["Mixed Case Words", "mixed case"])
    texts = [normalize(t) for t in TFIDF_TEXTS] + ["  two  spaces ", "UPPER lower Mixed"] + corpus
    fast = tfidf(vectorizer, texts)
    reference = vectorizer.transform(texts)
    assert fast.shape == reference.shape == (len(texts), len(vectorizer.vocabulary_))
    assert np.allclose(fast.toarray(), reference.toarray(), rtol=0, atol=1e-6)
    # the same non-zero entries, not just small differences
    assert np.array_equal(fast.toarray() != 0, reference.toarray() != 0)
    assert fast[0].nnz == 0  # the empty text is an empty row, not NaN
    assert not np.isnan(fast.toarray()).any()
    # some rows really carry weights (the comparison is not between two zero matrices)
    assert fast.nnz >= 20
    row = fast[len(TFIDF_TEXTS) + 2].toarray()
    assert np.sqrt((row**2).sum()) == pytest.approx(1.0, abs=1e-6)


def test_tfidf_of_no_texts(segmenter):
    for vectorizer in _vectorizers(segmenter).values():
        vectorizer.fit([normalize(t) for t in TEXTS])
        fast = tfidf(vectorizer, [])
        assert fast.shape == (0, len(vectorizer.vocabulary_))


def test_tfidf_refuses_other_weightings():
    plain = TfidfVectorizer(analyzer="char").fit(["路灯不亮", "路灯坏了"])
    with pytest.raises(ValueError):
        tfidf(plain, ["路灯"])


def test_model_features_equal_sklearn_on_the_training_corpus(model, segmenter):
    """The model's stacked word and character features are sklearn's, fitted the same way."""
    corpus = [normalize(t) for t in TEXTS]
    vectorizers = [_vectorizers(segmenter)[name].fit(corpus) for name in ("word", "char")]
    texts = [normalize(t) for t in TFIDF_TEXTS] + corpus[:5]
    matrix = model.transform(texts)
    reference = np.hstack([v.transform(texts).toarray() for v in vectorizers])
    assert matrix.shape == reference.shape
    assert np.allclose(matrix.toarray(), reference, rtol=0, atol=1e-6)


# -- persistence ------------------------------------------------------------------------------


def test_joblib_round_trip_gives_identical_probabilities(model, tmp_path):
    texts = [text for text, _ in HELD_OUT] + [""]
    before = model.probabilities(texts)
    joblib.dump(model, tmp_path / "model.joblib", compress=3)
    loaded = joblib.load(tmp_path / "model.joblib")
    assert loaded.segmenter._tokenizer is None  # rebuilt lazily, not pickled
    assert loaded.segmenter.user_words == model.segmenter.user_words
    assert loaded.segmenter.stop_words == model.segmenter.stop_words
    assert loaded.classes_ == model.classes_
    assert np.array_equal(loaded.probabilities(texts), before)
    assert [p.top for p in loaded.predict(texts)] == [p.top for p in model.predict(texts)]


# -- segmenter --------------------------------------------------------------------------------


def test_segmenter_keeps_user_words_whole():
    text = "中学街社区的路灯坏了，奎文区东关街道"
    plain = Segmenter().cut(text)
    assert "中学街社区" not in plain and "东关街道" not in plain
    taught = Segmenter(["中学街社区", "东关街道", "奎文区"]).cut(text)
    assert taught == ["中学街社区", "路灯", "坏", "奎文区", "东关街道"]


def test_segmenter_drops_stop_words_and_punctuation():
    segmenter = Segmenter()
    words = segmenter.cut("我们的路灯已经坏了，非常不方便！！ ...")
    assert "路灯" in words
    for word in ("我们", "的", "已经", "了", "非常", "，", "！", "...", " "):
        assert word not in words
    assert segmenter.cut("我们 的 ！！ ...") == []
    custom = Segmenter(stop_words={"路灯"})
    assert "路灯" not in custom.cut("路灯坏了")
    assert "的" in custom.cut("我的路灯")


def test_segmenter_ignores_single_characters_and_empty_user_words():
    segmenter = Segmenter(["", "街", "胜利东街", "胜利东街"])
    assert segmenter.user_words == ["胜利东街"]
