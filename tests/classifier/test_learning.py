"""The learning loop (``classifier.learning``) with injected tickets and clocks.

Most tests drive ``retrain`` with stub models (``train_candidate`` replaced), so they check the
loop's decisions in milliseconds; a few train for real on the seed corpus, once per module."""

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from classifier import learning
from classifier.bundle import ModelBundle
from classifier.learning import Example, Policy
from classifier.router import Suggestion
from classifier.seeds import SEED_DIR, category_tree, read_jsonl

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def ticket(days_ago, category="0101", **values):
    return Example(
        text=values.pop("text", f"工单 {days_ago}"),
        received_at=NOW - timedelta(days=days_ago),
        category=category,
        **values,
    )


# -- stubs -----------------------------------------------------------------------------------


class StubCategory:
    """Predicts fixed probabilities over ``classes_`` (the same row for every text, or one row
    per text given as ``rows``)."""

    def __init__(self, classes, rows):
        self.classes_ = list(classes)
        self.rows = rows

    def probabilities(self, texts):
        rows = self.rows if callable(self.rows) else (lambda text: self.rows)
        return np.array([rows(t) for t in texts], dtype=float)


class StubRequestType:
    def __init__(self, answer):
        self.answer = answer

    def predict(self, texts):
        return [self.answer for _ in texts]


class StubRouter:
    def __init__(self, units):
        self.units = units

    def suggest(self, record, k=3):
        return [Suggestion(u, 0.5, "") for u in self.units[:k]]


def stub_bundle(classes=("0101", "0201"), row=(0.9, 0.1), request_type="complaint", units=()):
    return ModelBundle(
        StubCategory(classes, list(row)),
        StubRequestType(request_type),
        router=StubRouter(list(units)) if units else None,
    )


@pytest.fixture
def stub_training(monkeypatch):
    """``train_candidate`` replaced: records what each call trained on, returns stub bundles
    (a good model by default)."""
    calls = Calls()

    def fake(examples, *, base=None, unlabelled=(), policy, seed_dir=None):
        calls.append(list(examples))
        calls.vocabulary.append(list(unlabelled))
        return stub_bundle(), {"source": "retrain", "tickets": len(examples)}

    monkeypatch.setattr(learning, "train_candidate", fake)
    return calls


class Calls(list):
    """The examples of each ``train_candidate`` call, and (``vocabulary``) its unlabelled
    texts."""

    def __init__(self):
        super().__init__()
        self.vocabulary = []


# -- split -------------------------------------------------------------------------------------


def test_split_holds_out_the_last_days_by_time():
    examples = [ticket(d) for d in (30, 20, 14, 13.9, 5, 0, -1)]
    train, holdout = learning.split(examples, NOW, Policy(holdout_days=14))
    assert [e.received_at for e in train] == [NOW - timedelta(days=d) for d in (30, 20, 14)]
    assert [e.received_at for e in holdout] == [NOW - timedelta(days=d) for d in (13.9, 5, 0)]


def test_split_ignores_the_order_given():
    examples = [ticket(d, text=f"t{d}") for d in range(40)]
    shuffled = examples[:]
    random.Random(3).shuffle(shuffled)
    assert learning.split(shuffled, NOW, Policy()) == learning.split(examples, NOW, Policy())


# -- retrain's decisions (stub models) ----------------------------------------------------------


def test_too_few_training_tickets_skip_with_the_reason(stub_training):
    examples = [ticket(20 + i % 30) for i in range(199)] + [ticket(i % 10) for i in range(60)]
    outcome = learning.retrain(examples, stub_bundle(), now=NOW, policy=Policy())
    assert outcome.status == "skipped"
    assert outcome.bundle is None
    assert "训练样本不足" in outcome.reason and "199" in outcome.reason and "200" in outcome.reason
    assert stub_training == []  # nothing trained
    assert outcome.figures["training"]["tickets"] == 199
    assert outcome.figures["holdout"]["tickets"] == 60


def test_too_few_holdout_tickets_skip_with_the_reason(stub_training):
    examples = [ticket(20 + i % 30) for i in range(300)] + [ticket(i % 10) for i in range(49)]
    outcome = learning.retrain(examples, stub_bundle(), now=NOW, policy=Policy())
    assert outcome.status == "skipped"
    assert "评估样本不足" in outcome.reason and "49" in outcome.reason and "50" in outcome.reason


def test_unconfirmed_tickets_do_not_count(stub_training):
    confirmed = [ticket(20 + i % 30) for i in range(150)] + [ticket(i % 10) for i in range(60)]
    unconfirmed = [ticket(20 + i % 30, category=None) for i in range(100)]
    outcome = learning.retrain(confirmed + unconfirmed, None, now=NOW, policy=Policy())
    assert outcome.status == "skipped" and "150" in outcome.reason


def test_the_probe_learns_before_the_holdout_and_the_candidate_from_everything(stub_training):
    old = [ticket(20 + i % 30, text=f"旧{i}") for i in range(250)]
    recent = [ticket(i % 10, text=f"新{i}") for i in range(60)]
    future = [ticket(-2, text="明天的")]
    outcome = learning.retrain(old + recent + future, None, now=NOW, policy=Policy())
    probe, refit = stub_training
    assert {e.text for e in probe} == {e.text for e in old}
    assert {e.text for e in refit} == {e.text for e in old + recent}
    assert outcome.status == "promoted"  # no active model
    assert outcome.bundle is not None
    assert outcome.meta["source"] == "retrain"
    assert outcome.meta["tickets"] == 310
    assert outcome.meta["probe_figures"] == outcome.figures["candidate"]
    assert outcome.meta["training"]["seed_weight"] == Policy().seed_weight
    assert outcome.meta["training"]["label_level"] == 2
    assert outcome.figures["holdout"] == {
        "from": (NOW - timedelta(days=14)).isoformat(),
        "to": NOW.isoformat(),
        "tickets": 60,
    }
    assert outcome.figures["candidate"]["n_category"] == 60
    assert outcome.figures["active"] is None


def test_a_worse_candidate_is_kept_with_the_reason(stub_training):
    examples = [ticket(20 + i % 30, text=f"旧{i}") for i in range(250)] + [
        ticket(i % 10, category="0201" if i % 2 else "0101", text=f"新{i}") for i in range(60)
    ]
    truth = {e.text: e.category for e in examples}
    # The active model knows the two classes apart; the stub candidate says 0101 every time.
    active = stub_bundle()
    active.category = StubCategory(
        ["0101", "0201"], lambda text: [1.0, 0.0] if truth[text] == "0101" else [0.0, 1.0]
    )
    outcome = learning.retrain(examples, active, now=NOW, policy=Policy())
    assert outcome.status == "kept"
    assert outcome.reason.startswith("未启用：分类宏平均F1 下降")
    assert "分类准确率 下降 0.500，超过允许的 0.02" in outcome.reason
    assert outcome.bundle is not None  # still registered, as a candidate
    assert outcome.figures["active"]["category_accuracy"] == 1.0
    assert outcome.figures["candidate"]["category_accuracy"] == 0.5


# -- gate ----------------------------------------------------------------------------------------


def figs(**values):
    base = {
        "category_macro_f1": 0.80,
        "category_accuracy": 0.85,
        "request_type_accuracy": 0.70,
        "unit_top3": 0.90,
        "emergency_recall": None,
        "n_category": 100,
        "n_request_type": 100,
        "n_unit": 100,
        "n_emergency": 0,
    }
    return {**base, **values}


def test_no_active_model_promotes():
    decision = learning.gate(figs(), None, 0.02)
    assert decision.promote and "没有启用的模型" in decision.reason


def test_a_drop_beyond_the_tolerance_refuses_naming_the_figure():
    decision = learning.gate(figs(category_macro_f1=0.769), figs(), 0.02)
    assert not decision.promote
    assert decision.reason == "未启用：分类宏平均F1 下降 0.031，超过允许的 0.02"
    failed = [c for c in decision.checks if not c["passed"]]
    assert [c["figure"] for c in failed] == ["category_macro_f1"]


def test_a_drop_within_the_tolerance_promotes():
    decision = learning.gate(figs(category_macro_f1=0.78, unit_top3=0.95), figs(), 0.02)
    assert decision.promote
    assert "承办单位前三命中率 0.900 → 0.950" in decision.reason
    assert not learning.gate(figs(category_macro_f1=0.7790), figs(), 0.02).promote


def test_every_headline_figure_gates():
    for key, name in [
        ("category_accuracy", "分类准确率"),
        ("request_type_accuracy", "诉求类型准确率"),
        ("unit_top3", "承办单位前三命中率"),
    ]:
        decision = learning.gate(figs(**{key: figs()[key] - 0.05}), figs(), 0.02)
        assert not decision.promote and f"{name} 下降 0.050" in decision.reason
    decision = learning.gate(
        figs(emergency_recall=0.9, n_emergency=30), figs(emergency_recall=1.0, n_emergency=30), 0.02
    )
    assert not decision.promote and "紧急识别召回率 下降 0.100" in decision.reason


def test_a_figure_on_few_cases_is_reported_but_does_not_gate():
    candidate = figs(unit_top3=0.5, n_unit=19)
    decision = learning.gate(candidate, figs(n_unit=19), 0.02)
    assert decision.promote
    check = next(c for c in decision.checks if c["figure"] == "unit_top3")
    assert check["gating"] is False and check["passed"] and "19" in check["note"]
    assert check["candidate"] == 0.5


def test_a_rise_in_false_alarms_beyond_the_tolerance_refuses():
    decision = learning.gate(
        figs(emergency_false_alarm_rate=0.30, n_not_emergency=40),
        figs(emergency_false_alarm_rate=0.05, n_not_emergency=40),
        0.02,
    )
    assert not decision.promote and "紧急误报率 上升 0.250" in decision.reason
    fewer = learning.gate(
        figs(emergency_false_alarm_rate=0.01, n_not_emergency=40),
        figs(emergency_false_alarm_rate=0.05, n_not_emergency=40),
        0.02,
    )
    assert fewer.promote and "紧急误报率 0.050 → 0.010" in fewer.reason


def test_nothing_measured_on_enough_cases_keeps_the_candidate():
    few = {"n_category": 5, "n_request_type": 5, "n_unit": 5}
    decision = learning.gate(figs(**few), figs(**few), 0.02)
    assert not decision.promote and "不足以比较" in decision.reason


def test_the_holdout_starts_after_what_the_active_model_learned(stub_training):
    # Retrained weekly with two weeks held out: the active model learned up to 7 days ago.
    old = [ticket(20 + i % 30, text=f"旧{i}") for i in range(250)]
    seen = [ticket(8 + i % 5, text=f"学过{i}") for i in range(40)]
    unseen = [ticket(i % 6, text=f"新{i}") for i in range(60)]
    later_text = Example(text="评估期的未确认工单", received_at=NOW - timedelta(days=1))
    outcome = learning.retrain(
        old + seen + unseen,
        stub_bundle(),
        now=NOW,
        policy=Policy(),
        unlabelled=["外来文本", later_text],
        active_until=NOW - timedelta(days=7),
    )
    probe, refit = stub_training
    assert {e.text for e in seen} <= {e.text for e in probe}  # the active model knew them
    assert not {e.text for e in unseen} & {e.text for e in probe}
    assert outcome.figures["holdout"]["tickets"] == 60
    assert outcome.figures["holdout"]["from"] == (NOW - timedelta(days=7)).isoformat()
    probe_words, refit_words = stub_training.vocabulary
    assert probe_words == ["外来文本"] and refit_words == ["外来文本", "评估期的未确认工单"]


def test_too_few_tickets_the_active_model_has_not_seen_skip(stub_training):
    old = [ticket(20 + i % 30) for i in range(250)]
    recent = [ticket(3 + i % 10) for i in range(80)]  # most of them before the active's end
    outcome = learning.retrain(
        old + recent, stub_bundle(), now=NOW, policy=Policy(), active_until=NOW - timedelta(days=2)
    )
    assert outcome.status == "skipped" and "在用模型未学过" in outcome.reason


def test_a_figure_missing_on_one_side_does_not_gate():
    decision = learning.gate(figs(), figs(unit_top3=None), 0.02)
    assert decision.promote
    check = next(c for c in decision.checks if c["figure"] == "unit_top3")
    assert check["gating"] is False


# -- figures -------------------------------------------------------------------------------------


def test_categories_compare_at_the_level_of_the_final_code():
    bundle = stub_bundle(classes=("0101", "0102", "0201", "03"), row=(0.5, 0.3, 0.15, 0.05))
    examples = [
        ticket(1, category="01"),  # predicted 0101 → 01: right
        ticket(1, category="010101"),  # compared as 0101: right
        ticket(1, category="0102"),  # wrong, in the top 3
        ticket(1, category="03"),  # wrong; top 3 as level 1 is 01, 02, 03: in it
        ticket(1, category="0301"),  # predicted 0101, 0102, 0201 (03 is too short): not in
    ]
    result = learning.figures(bundle, examples)
    assert result["n_category"] == 5
    assert result["category_accuracy"] == 0.4
    assert result["category_top3"] == 0.8
    # Over the final codes present: 01 (F1 2/3), 0101 (1/2), 0102, 03, 0301 (0).
    assert result["category_macro_f1"] == pytest.approx(np.mean([2 / 3, 0.5, 0, 0, 0]), abs=1e-4)


def test_a_level_1_confirmation_trains_the_base_models_class_under_it():
    base = stub_bundle(classes=("0101", "0102", "0201", "03"))
    base.category.rows = lambda text: {"a": [0.1, 0.2, 0.6, 0.1], "b": [0.5, 0.1, 0.2, 0.2]}[text]
    labelled = [
        ticket(1, category="01", text="a"),  # 0102 is likelier than 0101 under 01
        ticket(1, category="02", text="b"),  # 0201, however unlikely
        ticket(1, category="03", text="a"),  # nothing under 03: stays 03
        ticket(1, category="020103", text="b"),  # deeper: truncated
    ]
    assert learning.class_labels(labelled, base) == ["0102", "0201", "03", "0201"]
    assert learning.class_labels(labelled, None) == ["01", "02", "03", "0201"]


def test_request_type_units_and_emergencies():
    bundle = stub_bundle(request_type="complaint", units=("U1", "U2", "U3", "U4"))
    examples = [
        ticket(1, request_type="complaint", unit="U3"),
        ticket(1, request_type="consult", unit="U4"),
        ticket(1, category=None, emergency=True, text="厨房里煤气泄漏了，味道很大，快来人"),
        ticket(1, category=None, emergency=False, text="咨询一下公积金怎么提取"),
    ]
    result = learning.figures(bundle, examples)
    assert (result["n_request_type"], result["request_type_accuracy"]) == (2, 0.5)
    assert (result["n_unit"], result["unit_top3"]) == (2, 0.5)
    assert (result["n_emergency"], result["emergency_recall"]) == (1, 1.0)
    assert (result["n_not_emergency"], result["emergency_false_alarm_rate"]) == (1, 0.0)
    assert result["n_category"] == 2


def test_nothing_labelled_gives_none():
    result = learning.figures(stub_bundle(), [ticket(1, category=None, request_type="help")])
    assert result["category_macro_f1"] is None and result["n_category"] == 0
    assert result["unit_top3"] is None and result["emergency_recall"] is None


# -- real training (the seed corpus, once per module) ------------------------------------------


@pytest.fixture(scope="module")
def seed():
    return read_jsonl(SEED_DIR / "corpus" / "messages.jsonl")


@pytest.fixture(scope="module")
def active():
    """A seed-only model (what the default model is), trained once. Its emergency model is a
    stand-in (no test here measures emergencies; training the real one takes long)."""
    stand_in = ModelBundle(None, urgency=object())
    return learning.train_candidate([], base=stand_in, policy=Policy())[0]


def tickets_from_seed(seed, n, *, level=3, start_days=60, offset=1):
    """``n`` tickets from the seed corpus, confirmed at ``level``, spread over the days."""
    out = []
    for i, m in enumerate(seed[offset::7][:n]):
        out.append(
            Example(
                text=f"市民反映：{m['title']}。{m['text']}",
                received_at=NOW - timedelta(days=start_days * (n - i) / n),
                category=m["category"][: 2 * level],
                request_type=m["request_type"],
                area="370702001001",
                unit=f"U{m['category'][:2]}",
                channel=m["channel"],
            )
        )
    return out


def test_label_levels(active, seed):
    examples = tickets_from_seed(seed, 40, level=3) + tickets_from_seed(seed, 40, level=1, offset=2)
    # Without a base category model a level-1 code stays a level-1 class.
    base = replace(active, category=None)
    bundle, meta = learning.train_candidate(examples, base=base, policy=Policy())
    classes = set(bundle.category.classes_)
    assert all(len(c) in (2, 4) for c in classes)
    assert {e.category for e in examples if len(e.category) == 2} <= classes
    assert {e.category[:4] for e in examples if len(e.category) == 6} <= classes
    tree = category_tree()
    assert bundle.label_names == {c: tree[c][0] for c in classes}
    assert meta["label_level"] == 2 and meta["category_tickets"] == 80
    assert bundle.urgency is base.urgency  # no emergency answers: the active one kept
    assert set(bundle.router.classes_) == {e.unit for e in examples}


def test_router_kept_without_units(seed):
    base = ModelBundle(None, router=StubRouter(["U1"]))
    examples = [replace(e, unit=None) for e in tickets_from_seed(seed, 20)]
    router, meta = learning.train_router(examples, base)
    assert router is base.router and meta == {"tickets": 0, "kept": True}
    router, meta = learning.train_router(tickets_from_seed(seed, 20), base)
    assert router is not base.router and meta["tickets"] == 20


def test_emergency_answers_train_the_urgency_model(seed, monkeypatch):
    seen, model = {}, object()

    def fake_train_urgency(seed_dir, extra=()):
        seen["extra"] = list(extra)
        return model, {}

    monkeypatch.setattr(learning.training, "train_urgency", fake_train_urgency)
    base = ModelBundle(None, urgency=object())
    examples = tickets_from_seed(seed, 10) + [
        ticket(3, category=None, emergency=True, text="楼道里着火了"),
        ticket(2, category=None, emergency=False, text="楼下烧烤冒烟"),
    ]
    urgency, meta = learning.train_urgency(examples, base)
    assert urgency is model
    assert seen["extra"] == [
        {"text": "楼道里着火了", "emergency": True, "transfer_to": None},
        {"text": "楼下烧烤冒烟", "emergency": False, "transfer_to": None},
    ]
    assert meta["answers"] == 2 and meta["answers_kept"] == 1
    # No answers: the active model's is kept, nothing is trained.
    seen.clear()
    assert learning.train_urgency(tickets_from_seed(seed, 10), base)[0] is base.urgency
    assert seen == {}


@pytest.fixture(scope="module")
def loop_inputs(seed):
    return tickets_from_seed(seed, 200, start_days=60), Policy(min_training=20, min_holdout=20)


@pytest.fixture(scope="module")
def outcome(active, loop_inputs):
    examples, policy = loop_inputs
    return learning.retrain(examples, active, now=NOW, policy=policy)


def test_retrain_end_to_end(outcome, loop_inputs):
    examples, policy = loop_inputs
    assert outcome.status in ("promoted", "kept")
    holdout = outcome.figures["holdout"]["tickets"]
    assert 0 < holdout < len(examples)
    assert outcome.figures["candidate"]["n_category"] == holdout
    assert outcome.figures["active"]["n_category"] == holdout
    assert outcome.meta["category_tickets"] == len(examples)  # refitted on everything
    assert outcome.meta["probe_figures"]["category_accuracy"] > 0.5
    assert outcome.bundle.router is not None
    assert [c["figure"] for c in outcome.figures["checks"]] == [k for k, *_ in learning.HEADLINE]


def test_training_is_deterministic(outcome, active, loop_inputs):
    """The candidate ``retrain`` returned, trained again from the same tickets in another
    order, is the same model."""
    examples, policy = loop_inputs
    shuffled = examples[:]
    random.Random(5).shuffle(shuffled)
    again, meta = learning.train_candidate(shuffled, base=active, policy=policy)
    assert meta["training_sha256"] == outcome.meta["training_sha256"]
    texts = [e.text for e in examples[:20]]
    assert np.array_equal(
        again.category.probabilities(texts), outcome.bundle.category.probabilities(texts)
    )
    assert again.request_type.predict(texts) == outcome.bundle.request_type.predict(texts)
    record = learning.router_record(examples[0])
    assert again.router.suggest(record) == outcome.bundle.router.suggest(record)
