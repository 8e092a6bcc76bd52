"""Training a city's category model with the seed corpus (``classifier.training``)."""

import numpy as np
import pytest

from classifier import training
from classifier.seeds import SEED_DIR, category_tree, read_jsonl
from classifier.segment import Segmenter
from classifier.text_model import CategoryModel

MESSAGES = read_jsonl(SEED_DIR / "corpus" / "messages.jsonl")


def test_seed_examples_take_the_longest_allowed_code():
    texts, labels = training.seed_examples({"01", "0101", "02"})
    expected = [
        "0101" if m["category"].startswith("0101") else m["category"][:2]
        for m in MESSAGES
        if m["category"][:2] in {"01", "02"}
    ]
    assert labels == expected
    assert {"0101", "01", "02"} == set(labels)
    assert len(texts) == len(labels)
    first = next(m for m in MESSAGES if m["category"][:2] in {"01", "02"})
    assert texts[0] == f"{first.get('title', '')}。{first['text']}"


def test_seed_examples_by_top_level_name():
    names = {code: name for code, (name, parent) in category_tree().items() if parent is None}
    texts, labels = training.seed_examples({names["01"], names["03"], "不在种子里的类"})
    expected = [names[m["category"][:2]] for m in MESSAGES if m["category"][:2] in {"01", "03"}]
    assert labels == expected
    assert training.seed_examples({"不在种子里的类"}) == ([], [])


class _Recorder(CategoryModel):
    calls = []

    def fit(self, texts, labels, **options):
        _Recorder.calls.append((list(texts), list(labels), options))
        return self


def test_train_category_weighs_seed_messages_against_tickets(monkeypatch):
    monkeypatch.setattr(training, "CategoryModel", _Recorder)
    _Recorder.calls.clear()
    seed = (["种子一", "种子二"], ["A", "B"])
    training.train_category(
        ["票一", "票二", "票三"],
        ["A", "B", "A"],
        seed=seed,
        seed_weight=0.1,
        sample_weight=[1, 2, 3],
        unlabelled=["无标"],
        descriptions=[("名称", "A")],
        segmenter=Segmenter(stop_words=()),
        C=0.5,
    )
    ((texts, labels, options),) = _Recorder.calls
    assert texts == ["票一", "票二", "票三", "种子一", "种子二"]
    assert labels == ["A", "B", "A", "A", "B"]
    assert options["sample_weight"].tolist() == [1, 2, 3, 0.1, 0.1]
    assert options["unlabelled"] == ["无标"]
    assert options["descriptions"] == [("名称", "A")]
    _Recorder.calls.clear()
    model = training.train_category(["票一"], ["A"], seed=seed, seed_weight=0)
    assert model.C == 0.3  # the model's own default
    ((texts, labels, options),) = _Recorder.calls
    assert texts == ["票一"] and options["sample_weight"].tolist() == [1]
    with pytest.raises(ValueError, match="one weight per text"):
        training.train_category(["票一"], ["A"], seed=seed, sample_weight=[1, 2])


# A city that has barely started: two tickets a class, about one subject each.
CITY = [
    ("小区门口的路灯坏了，晚上很黑", "城乡建设"),
    ("楼道里的路灯不亮，请来修", "城乡建设"),
    ("出租车司机拒载，态度很差", "交通运输"),
    ("出租车不打表，乱收费", "交通运输"),
]
#: Subjects the city's tickets never mention; the seed corpus does.
QUESTIONS = [
    ("路面塌了好几个坑，下雨积水，电动车摔了", "城乡建设"),
    ("公交车到站不停，等了半个小时也没上车", "交通运输"),
]


def test_seed_corpus_teaches_subjects_a_city_has_not_seen_yet():
    segmenter = Segmenter(stop_words=())
    texts, labels = [t for t, _ in CITY], [label for _, label in CITY]
    questions = [t for t, _ in QUESTIONS]
    alone = training.train_category(texts, labels, seed=(), segmenter=segmenter)
    with_seed = training.train_category(texts, labels, seed_weight=1.0, segmenter=segmenter)
    assert with_seed.classes_ == alone.classes_ == ["交通运输", "城乡建设"]
    right = [with_seed.classes_.index(label) for _, label in QUESTIONS]
    p_alone = alone.probabilities(questions)[np.arange(len(right)), right]
    p_seed = with_seed.probabilities(questions)[np.arange(len(right)), right]
    assert [p.top[0][0] for p in with_seed.predict(questions)] == [y for _, y in QUESTIONS]
    assert (p_seed > p_alone).all(), (p_alone, p_seed)
