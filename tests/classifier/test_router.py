"""Routing: catalogue semantics, the learned router and their combination (classifier.router)."""

import importlib.util
import pickle
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from classifier.router import (
    CATALOGUE_REASON,
    CatalogueRouter,
    LearnedRouter,
    Router,
    Suggestion,
    recency_weights,
    record_from_codes,
)

DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data"
BENCH = Path(__file__).resolve().parents[2] / "bench" / "classify_routing.py"

# ---- catalogue --------------------------------------------------------------------------------

RULES = [
    {"category": "01", "area": None, "unit": "city-admin"},
    {"category": "01", "area": "370705", "unit": "district-admin"},
    {"category": "0101", "area": None, "unit": "sanitation"},
    {"category": "0101", "area": "370705001", "unit": "street-office-1"},
    {"category": "010101", "area": None, "unit": "noise-team"},
    {"category": "02", "area": "370705002001", "unit": "community-2-1"},
]


@pytest.fixture
def catalogue():
    return CatalogueRouter(RULES)


@pytest.mark.parametrize(
    ("category", "area", "unit"),
    [
        # A rule on a category covers its descendants; without an area, the whole city.
        ("0102", "370702001001", "city-admin"),
        ("01", None, "city-admin"),
        # The area rule applies inside its area.
        ("0102", "370705003001", "district-admin"),
        ("0102", "370705", "district-admin"),
        # The most specific category wins, even over a more specific area…
        ("010102", "370705002001", "sanitation"),
        ("010101", "370705001001", "noise-team"),
        # …then the most specific area.
        ("010102", "370705001001", "street-office-1"),
        ("0101", "370705001", "street-office-1"),
        # An area rule does not cover a different or a coarser area.
        ("02", "370705002002", None),
        ("02", "370705002", None),
        ("0201", "370705002001123", "community-2-1"),
        # Nothing for an unknown category, or without a category.
        ("03", "370705001001", None),
        (None, "370705001001", None),
        ("", None, None),
    ],
)
def test_catalogue_lookup(catalogue, category, area, unit):
    assert catalogue.lookup(category, area) == unit


def test_catalogue_refuses_conflicting_rules_and_skips_inactive():
    with pytest.raises(ValueError, match="two catalogue rules"):
        CatalogueRouter(RULES + [{"category": "0101", "area": None, "unit": "other"}])
    router = CatalogueRouter(
        RULES + [{"category": "010102", "area": None, "unit": "gone", "active": False}]
    )
    assert router.lookup("010102", None) == "sanitation"
    assert len(router) == len(RULES)


# ---- learned router ---------------------------------------------------------------------------


def rec(category, street=None, community=None, **extra):
    record = {"category": category, "category_2": category[:4], "category_1": category[:2]}
    if street:
        record["street"] = street
        record["district"] = street[:6]
    if community:
        record["area"] = community
    record.update(extra)
    return record


def history():
    """Hand-made history: noise goes to the environment bureau; road damage goes to the
    municipal centre of its street; one odd ticket here and there."""
    records, units = [], []

    def add(n, record, unit):
        records.extend([dict(record)] * n)
        units.extend([unit] * n)

    add(40, rec("010101", "370705001", "370705001001", channel="app"), "env-bureau")
    add(20, rec("010101", "370705002", "370705002001", channel="phone"), "env-bureau")
    add(3, rec("010101", "370705002", "370705002001", channel="phone"), "police")
    add(8, rec("010102", "370705001", "370705001001"), "env-bureau")
    add(2, rec("010102", "370705001", "370705001001"), "street-1-law")
    add(15, rec("020101", "370705001", "370705001002"), "municipal-1")
    add(15, rec("020101", "370705002", "370705002001"), "municipal-2")
    add(6, rec("020102", "370705003", "370705003001"), "municipal-3")
    add(12, rec("030101", "370705001", "370705001001", request_type="consult"), "hr-bureau")
    return records, units


@pytest.fixture(scope="module")
def learned():
    records, units = history()
    return LearnedRouter().fit(records, units)


def test_well_supported_context_gives_its_majority(learned):
    top = learned.suggest(rec("010101", "370705001", "370705001001", channel="app"))[0]
    assert top.unit == "env-bureau"
    assert top.confidence > 0.8
    assert top.reason == "根据 40 件相似历史工单，其中 40 件由该单位办理"


def test_backs_off_to_the_category_in_an_unseen_street(learned):
    suggestions = learned.suggest(rec("010101", "370705009", "370705009001"))
    assert suggestions[0].unit == "env-bureau"
    # The most specific evidence is now the category over all streets: 63 tickets.
    assert suggestions[0].reason.startswith("根据 63 件相似历史工单")


def test_backs_off_to_the_parent_category_for_an_unseen_leaf(learned):
    suggestions = learned.suggest(rec("010199", "370705001", "370705001001"))
    assert suggestions[0].unit == "env-bureau"
    assert suggestions[0].reason.startswith("根据 73 件相似历史工单")  # all of 0101


def test_street_units_carry_over_to_an_unseen_street(learned):
    """Road damage went to each street's own municipal centre; in street 3 (where only 020102
    was seen) 020101 should go to street 3's centre, not to street 1's or 2's."""
    top = learned.suggest(rec("020101", "370705003", "370705003001"))[0]
    assert top.unit == "municipal-3"


def test_unseen_everything_falls_back_to_overall_frequencies(learned):
    suggestions = learned.suggest({"category": "990101", "street": "999999999"}, k=3)
    assert suggestions[0].unit == "env-bureau"  # the most frequent unit overall
    assert suggestions[0].reason == f"根据 {learned.n_records_} 件历史工单的总体分布（无相似工单）"
    # Missing and empty values are ignored, as are features the router does not know.
    assert learned.suggest({"category": None, "street": "", "colour": "red"}, k=1)[0].unit == (
        "env-bureau"
    )


def test_confidences_are_ordered_and_sum_to_at_most_one(learned):
    for record in history()[0][::7] + [rec("020101", "370705003"), {}]:
        suggestions = learned.suggest(record, k=5)
        confidences = [s.confidence for s in suggestions]
        assert confidences == sorted(confidences, reverse=True)
        assert all(0.0 <= c <= 1.0 for c in confidences)
        assert sum(confidences) <= 1.0 + 1e-9
        assert len({s.unit for s in suggestions}) == len(suggestions)
    full = learned.predict_proba(rec("010101", "370705001"))
    assert abs(full.sum() - 1.0) < 1e-9


def test_k(learned):
    record = rec("010101", "370705002", "370705002001", channel="phone")
    assert learned.suggest(record, k=0) == []
    assert len(learned.suggest(record, k=1)) == 1
    assert len(learned.suggest(record)) == 3
    every = learned.suggest(record, k=100)
    assert len(every) == len(learned.classes_)
    assert [s.unit for s in every[:2]] == ["env-bureau", "police"]
    assert all(isinstance(s, Suggestion) for s in every)


def test_pickle_round_trip(learned, tmp_path):
    copies = [pickle.loads(pickle.dumps(learned))]
    joblib = pytest.importorskip("joblib")
    joblib.dump(learned, tmp_path / "router.joblib")
    copies.append(joblib.load(tmp_path / "router.joblib"))
    for copy in copies:
        for record in [rec("010101", "370705002"), rec("020101", "370705003"), {}]:
            assert copy.suggest(record, k=3) == learned.suggest(record, k=3)


def test_backoff_only_and_sample_weights():
    records, units = history()
    backoff = LearnedRouter(blend=1.0).fit(records, units)
    assert backoff._coef is None
    top = backoff.suggest(rec("010101", "370705002", "370705002001"))[0]
    assert (top.unit, top.reason) == (
        "env-bureau",
        "根据 23 件相似历史工单，其中 20 件由该单位办理",
    )
    # Weighting the police tickets up flips the street-2 noise context; supports stay counts.
    weights = [10.0 if u == "police" else 1.0 for u in units]
    weighted = LearnedRouter(blend=1.0).fit(records, units, sample_weight=weights)
    top = weighted.suggest(rec("010101", "370705002", "370705002001"))[0]
    assert (top.unit, top.reason) == ("police", "根据 23 件相似历史工单，其中 3 件由该单位办理")


def test_fit_validates_its_input():
    with pytest.raises(ValueError):
        LearnedRouter().fit([{"category": "01"}], ["a", "b"])
    with pytest.raises(ValueError):
        LearnedRouter().fit([], [])
    with pytest.raises(ValueError):
        LearnedRouter().fit([{"category": "01"}], ["a"], sample_weight=[-1.0])
    with pytest.raises(RuntimeError):
        LearnedRouter().suggest({"category": "01"})
    # A single unit is fine (no regression to fit).
    only = LearnedRouter().fit([{"category": "01"}] * 3, ["a"] * 3)
    assert [s.unit for s in only.suggest({"category": "01"})] == ["a"]


def test_recency_weights_halve_per_half_life():
    assert list(recency_weights([0.0, 10.0, 20.0], 10.0)) == [0.25, 0.5, 1.0]


def test_record_from_codes():
    assert record_from_codes("010203", "370705001002", {"channel": "app", "area": None}) == {
        "category": "010203",
        "category_1": "01",
        "category_2": "0102",
        "area": "370705001002",
        "district": "370705",
        "street": "370705001",
        "channel": "app",
    }
    assert record_from_codes(None, None) == {}


# ---- combined router --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def code_history():
    """History in hotline codes; category 0101 (noise) at street 370705001."""
    records, units = [], []
    for _ in range(50):
        records.append(record_from_codes("010101", "370705001001"))
        units.append("env-bureau")
    for _ in range(3):
        records.append(record_from_codes("010101", "370705001001"))
        units.append("police")
    for _ in range(40):
        records.append(record_from_codes("020101", "370705001001"))
        units.append("municipal-1")
    for _ in range(10):
        records.append(record_from_codes("030101", "370705001001"))
        units.append("sanitation")
    return records, units


def test_router_puts_the_catalogue_first_then_learned_units(code_history):
    learned = LearnedRouter().fit(*code_history)
    router = Router([{"category": "01", "area": None, "unit": "police"}], learned)
    suggestions = router.suggest("010101", "370705001001", k=3)
    assert suggestions[0].unit == "police"
    assert suggestions[0].reason == CATALOGUE_REASON
    assert suggestions[0].confidence >= 0.8
    assert suggestions[1].unit == "env-bureau"
    assert suggestions[1].reason.startswith("根据 53 件相似历史工单")
    assert len({s.unit for s in suggestions}) == 3  # the catalogue unit is not repeated
    assert sum(s.confidence for s in suggestions) <= 1.0 + 1e-9
    assert [s.unit for s in router.suggest("010101", "370705001001", k=1)] == ["police"]
    assert router.suggest("010101", "370705001001", k=0) == []


def test_router_when_catalogue_and_history_agree(code_history):
    learned = LearnedRouter().fit(*code_history)
    router = Router([{"category": "01", "area": None, "unit": "env-bureau"}], learned)
    suggestions = router.suggest("010101", "370705001001", {"channel": "app"})
    assert [s.unit for s in suggestions][:2] == ["env-bureau", "police"]
    assert suggestions[0].confidence > 0.95


def test_router_without_catalogue_hit_or_without_learned_router(code_history):
    learned = LearnedRouter().fit(*code_history)
    router = Router([{"category": "09", "area": None, "unit": "x"}], learned)
    assert router.suggest("020101", "370705001002") == learned.suggest(
        record_from_codes("020101", "370705001002")
    )
    catalogue_only = Router(RULES)
    assert catalogue_only.suggest("010101", "370705001001") == [
        Suggestion("noise-team", 0.8, CATALOGUE_REASON)
    ]
    assert catalogue_only.suggest("09", "370705001001") == []
    assert Router([]).suggest("01", None) == []


def test_router_gives_way_when_history_strongly_disagrees(code_history):
    """A stale rule: 40 of 40 similar tickets went to municipal-1, none to the rule's unit."""
    learned = LearnedRouter().fit(*code_history)
    stale = Router([{"category": "02", "area": None, "unit": "sanitation"}], learned)
    suggestions = stale.suggest("020101", "370705001001")
    assert suggestions[0].unit == "municipal-1"
    assert suggestions[1].unit == "sanitation"
    assert suggestions[1].reason == f"{CATALOGUE_REASON}（与历史办理不符）"
    assert sum(s.confidence for s in suggestions) <= 1.0 + 1e-9
    # A unit history has never seen is new to the catalogue: the rule stands.
    new_unit = Router([{"category": "02", "area": None, "unit": "new-unit"}], learned)
    assert new_unit.suggest("020101", "370705001001")[0].unit == "new-unit"
    # Thin history does not override: only 10 tickets for 0301.
    thin = Router([{"category": "03", "area": None, "unit": "env-bureau"}], learned)
    assert thin.suggest("030101", "370705001001")[0].unit == "env-bureau"


def test_learned_router_is_fast(code_history):
    learned = LearnedRouter().fit(*code_history)
    record = record_from_codes("010101", "370705001001", {"channel": "app"})
    started = time.perf_counter()
    for _ in range(200):
        learned.suggest(record)
    assert (time.perf_counter() - started) / 200 < 0.001


# ---- real data --------------------------------------------------------------------------------


def load_bench():
    spec = importlib.util.spec_from_file_location("classify_routing", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pingshan_routing_keeps_its_level():
    """A regression guard on real data. The targets (top-1 ≥ 0.60, top-3 ≥ 0.85) are reported by
    ``bench/classify.py``; measured 0.695 / 0.846 when this was written, so top-3 is just short
    and the floors here sit a little under what the router reaches."""
    if not (DATA_DIR / "shenzhen_pingshan_events" / "pingshan_minsheng_events.csv").is_file():
        pytest.skip(f"shared data not found at {DATA_DIR} (Pingshan events, SOURCES.md §2)")
    result = load_bench().run(DATA_DIR, compare_name_labels=False)
    figures = {key: round(result[key], 4) for key in ("top1", "top3", "baseline_top1")}
    assert result["train"] == 7992 and result["test"] == 1998
    assert result["top1"] >= 0.66, figures
    assert result["top3"] >= 0.83, figures
    assert result["top1"] > result["baseline_top1"], figures


def test_bench_features_do_not_leak_the_answer():
    bench = load_bench()
    row = {
        "SUB_TYPE_ID": "1160",
        "MAIN_TYPE_ID": "1159",
        "EVENT_TYPE_ID": "5",
        "DISTRICT_ID": "1",
        "STREET_ID": "101",
        "COMMUNITY_ID": "10018",
        "EVENT_PROPERTY_NAME": "投诉",
        "EVENT_SRC_NAME": "12345",
    }
    answer = {"DISPOSE_UNIT_ID": "8508", "DISPOSE_UNIT_NAME": "龙田街道综合执法队"}
    counts = {f"{name}_NUM": "1" for name in ("REPORT", "OPERATE", "INTIME_ARCHIVE")}
    assert bench.record(row) == bench.record({**row, **answer, **counts})
    assert not set(bench.record(row).values()) & set(answer.values())


def test_bench_reports_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="pingshan_minsheng_events.csv"):
        load_bench().run(tmp_path)


def _synthetic_events(n):
    """``n`` events in time order, an hour apart; the ``REC_ID`` is the position."""
    start = datetime(2018, 9, 1)
    return [
        {
            "REC_ID": str(i),
            "CREATE_TIME": (start + timedelta(hours=i)).isoformat(sep=" "),
            "SUB_TYPE_ID": str(i % 3),
            "MAIN_TYPE_ID": "m",
            "EVENT_TYPE_ID": "e",
            "DISTRICT_ID": "1",
            "STREET_ID": str(i % 2),
            "COMMUNITY_ID": str(i % 4),
            "EVENT_PROPERTY_NAME": "投诉",
            "EVENT_SRC_NAME": "12345",
            "DISPOSE_UNIT_ID": f"u{i % 3}",
            "DISPOSE_UNIT_NAME": f"unit {i % 3}",
        }
        for i in range(n)
    ]


def test_validation_folds_lie_inside_the_training_period():
    bench = load_bench()
    rows = _synthetic_events(100)
    folds = bench.validation_folds(rows)
    assert [(len(t), len(v)) for t, v in folds] == [(48, 16), (64, 16)]
    for train, validate in folds:
        # Each fold trains on a prefix and validates on what follows, before the test 20 %.
        assert train == rows[: len(train)]
        assert validate == rows[len(train) : len(train) + len(validate)]
        assert max(int(r["REC_ID"]) for r in validate) < 80


def test_model_selection_never_sees_the_test_events(monkeypatch):
    """``--select`` and ``--select-combinations`` fit and score on the training 80 % only: every
    event they turn into features comes before the cut."""
    bench = load_bench()
    rows = _synthetic_events(200)
    cut = int(len(rows) * bench.TRAIN_SHARE)
    monkeypatch.setattr(bench, "load_events", lambda data_dir: rows)
    seen = []
    record = bench.record

    def recording(row):
        seen.append(int(row["REC_ID"]))
        return record(row)

    monkeypatch.setattr(bench, "record", recording)
    monkeypatch.setattr(bench, "CANDIDATES", {"chosen": bench.CANDIDATES["blend (chosen)"]})
    assert set(bench.select("unused")) == {"chosen"}
    assert set(bench.select_combinations("unused")) >= {"linear blend (chosen)"}
    assert seen and max(seen) < cut
    # The same hook does see the test events when the benchmark itself runs.
    seen.clear()
    bench.run("unused", compare_name_labels=False)
    assert max(seen) == len(rows) - 1
