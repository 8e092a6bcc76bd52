"""The request-type test list (its size, balance and fixed halves), its loader, the training
data of the request-type model (never the evaluation half) and the model on explicit cases."""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from classifier import training
from classifier.intent import REQUEST_TYPES, RequestTypeModel, request_cues
from classifier.normalize import normalize
from classifier.seeds import SPLITS, read_jsonl, request_type_cases

CORPUS = Path(__file__).resolve().parents[2] / "seed_data" / "corpus"
LINES = read_jsonl(CORPUS / "request_type_cases.jsonl")


# -- the list ---------------------------------------------------------------------------------


def test_the_list_is_what_the_readme_describes():
    assert len(LINES) == 384
    assert all(set(row) == {"text", "request_type", "hard", "split"} for row in LINES)
    assert Counter(row["request_type"] for row in LINES) == dict.fromkeys(REQUEST_TYPES, 64)
    assert sum(row["hard"] for row in LINES) == 69
    assert {row["split"] for row in LINES} == set(SPLITS)


def test_each_type_is_split_in_equal_halves_and_so_are_its_hard_cases():
    for name in REQUEST_TYPES:
        rows = [row for row in LINES if row["request_type"] == name]
        halves = Counter(row["split"] for row in rows)
        assert halves["dev"] == halves["eval"] == 32
        hard = Counter(row["split"] for row in rows if row["hard"])
        assert abs(hard["dev"] - hard["eval"]) <= 1
        assert hard["dev"] + hard["eval"] >= 10


def test_the_calls_are_distinct_and_not_in_the_seed_messages():
    texts = [row["text"] for row in LINES]
    assert len({t[:20] for t in texts}) == len(texts)
    seed = {normalize(m["text"]) for m in read_jsonl(CORPUS / "messages.jsonl")}
    assert not seed & {normalize(t) for t in texts}


def test_the_calls_are_varied():
    lengths = [len(row["text"]) for row in LINES]
    assert min(lengths) < 15 and max(lengths) > 150
    # operator transcripts and callers' own words alike
    transcripts = sum(row["text"].startswith(("市民来电", "来电人")) for row in LINES)
    assert 0.25 < transcripts / len(LINES) < 0.6


# -- the loader -------------------------------------------------------------------------------


def test_the_loader_reads_each_half_in_file_order():
    for split in SPLITS:
        rows = request_type_cases(split)
        assert rows == [
            {"text": r["text"], "request_type": r["request_type"], "hard": r["hard"]}
            for r in LINES
            if r["split"] == split
        ]
    dev, held_out = request_type_cases("dev"), request_type_cases("eval")
    assert len(dev) == len(held_out) == 192
    assert not {r["text"] for r in dev} & {r["text"] for r in held_out}


def test_the_loader_refuses_an_unknown_half():
    with pytest.raises(ValueError, match="split"):
        request_type_cases("test")


# -- training never sees the evaluation half --------------------------------------------------


def test_the_training_corpus_is_the_seed_messages_and_the_development_half():
    texts, labels, weights = training.request_type_corpus()
    messages = read_jsonl(CORPUS / "messages.jsonl")
    dev = request_type_cases("dev")
    assert len(texts) == len(labels) == len(weights) == len(messages) + len(dev)
    assert not {r["text"] for r in request_type_cases("eval")} & set(texts)
    assert texts[len(messages) :] == [r["text"] for r in dev]
    assert weights[len(messages) :] == [training.CALL_WEIGHT] * len(dev)
    assert set(weights[: len(messages)]) == {1.0}


@pytest.fixture(scope="module")
def trained():
    return training.train_request_type()


def test_the_default_model_records_what_it_learned_from(trained):
    model, meta = trained
    texts, labels, _ = training.request_type_corpus()
    assert meta["training_rows"] == len(texts)
    assert meta["training_sha256"] == training.digest(texts, labels)
    assert meta["call_weight"] == training.CALL_WEIGHT
    # had an evaluation call been trained on, the digest would differ
    held_out = request_type_cases("eval")[0]
    assert training.digest(texts, labels) != training.digest(
        [*texts, held_out["text"]], [*labels, held_out["request_type"]]
    )


def test_the_default_bundle_uses_the_request_type_training(monkeypatch):
    calls = []

    def fake(seed_dir):
        calls.append(seed_dir)
        return RequestTypeModel(), {"training_rows": 0}

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(training, "train_request_type", fake)
    monkeypatch.setattr(training, "train_urgency", stop)
    with pytest.raises(Stop):
        training.train_default()
    assert calls == [training.SEED_DIR]


def test_further_examples_and_their_weights_are_added(trained):
    _, base = trained
    model, meta = training.train_request_type(
        texts=["表扬东关街道网格员", "某饭店无证经营"], labels=["praise", "report"], weights=[2, 2]
    )
    assert meta["training_rows"] == base["training_rows"] + 2
    assert meta["training_sha256"] != base["training_sha256"]


# -- the model --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我想问一下，新生儿医保在哪里办，要带什么材料？", "consult"),
        ("我上周投诉的那个噪音的事，现在处理到哪一步了？", "consult"),
        ("我们小区的路灯坏了半个月了，到底有没有人管？", "complaint"),
        ("我不是要投诉谁，就是家里老人摔了起不来，能不能找个人帮帮忙", "help"),
        ("我发现有个小作坊偷偷往河里排污水，晚上排", "report"),
        ("要是公交车能晚上多开一个小时就好了", "suggestion"),
        ("谢谢你们，路修好了，社区的同志辛苦了", "praise"),
        (
            "奎文区东关街道中学街社区的路灯坏了一个星期，晚上出门黑漆漆的，希望尽快维修。",
            "complaint",
        ),
        ("小区门口路灯坏了三天，晚上看不见路 请尽快", "complaint"),
    ],
)
def test_the_default_model_on_clear_calls(trained, text, expected):
    model, _ = trained
    assert model.predict([text]) == [expected]


def test_one_call_and_a_batch_get_the_same_types(trained):
    model, _ = trained
    texts = [r["text"] for r in request_type_cases("dev")[:40]]
    assert model.predict(texts) == [model.predict([t])[0] for t in texts]
    normalised = [normalize(t) for t in texts]
    batch = model._scores(normalised)
    single = np.vstack([model._scores([t]) for t in normalised])
    assert np.allclose(batch, single, atol=1e-4)


def test_sample_weights_change_what_the_model_learns():
    rows = request_type_cases("dev")
    texts, labels = [r["text"] for r in rows], [r["request_type"] for r in rows]
    praise = [normalize(t) for t, label in zip(texts, labels, strict=True) if label == "praise"]

    def margin(weights):
        model = RequestTypeModel().fit(texts, labels, sample_weight=weights)
        scores = model._scores(praise)
        column = model.linear.classes.index("praise")
        return float(np.mean(scores[:, column] - np.delete(scores, column, axis=1).max(axis=1)))

    heavy = [5.0 if label == "praise" else 1.0 for label in labels]
    assert margin(heavy) > margin(None) + 0.05


def test_a_question_about_an_earlier_calls_progress_is_a_consultation():
    model = RequestTypeModel().fit(
        ["投诉噪音", "投诉油烟", "请问怎么办", "请问去哪办"],
        ["complaint", "complaint", "consult", "consult"],
    )
    assert model.predict(["我前天举报的那个黑作坊，处理到哪一步了？", "投诉噪音太大"]) == [
        "consult",
        "complaint",
    ]


def test_the_cues_are_read_from_normalised_text():
    raw = "我想问一下，要是能多开一班车就好了？"
    cues = request_cues(normalize(raw))
    assert len(cues) == len(request_cues("")) and sum(request_cues("")) == 0
    assert cues[-1] == 1.0  # the question mark, half-width after normalising
    assert sum(cues) >= 3


def test_a_model_saved_before_the_cues_still_predicts():
    model = RequestTypeModel(cue_weight=None).fit(
        ["请问怎么办理", "投诉噪音太大", "请问在哪办", "投诉油烟扰民"],
        ["consult", "complaint", "consult", "complaint"],
    )
    state = dict(model.__dict__)
    del state["cue_weight"]  # as pickled by the old class
    old = RequestTypeModel.__new__(RequestTypeModel)
    old.__setstate__(state)
    assert old.predict(["请问怎么办", "我要举报"]) == ["consult", "report"]


def test_the_list_file_is_utf8_json_lines():
    raw = (CORPUS / "request_type_cases.jsonl").read_text(encoding="utf-8")
    assert all(json.loads(line) for line in raw.splitlines())
    assert "\\u" not in raw  # written with ensure_ascii=False
