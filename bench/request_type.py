"""Request type on phone-style calls, on the held-out half of the test list (issue 19 item 4).

    python bench/request_type.py [--json PATH] [--cv]

Trains the request-type model exactly as the default bundle does
(``classifier.training.train_request_type``: the seed messages plus the development half of
``seed_data/corpus/request_type_cases.jsonl``) and measures it on the evaluation half
(``classifier.seeds.request_type_cases("eval")``, never trained or tuned on):

- accuracy (target ≥ 0.85), also on the hard cases alone (complaints phrased as questions, help
  requests that mention 投诉, reports without the word 举报 …);
- precision and recall of each type, and the confusion (rows: the label, columns: the model);
- beside it, the model as it was before (character n-grams, C=0.5, the seed messages only;
  with today's explicit overrides, whose one addition, the progress rule, changes none of its
  answers here: 0.417 before and after it) and the keyword rules alone
  (``request_type_by_rules``, used when no model is saved);
- the cost: milliseconds per call predicted one at a time, and calls per second in batches.

``--cv`` also prints the out-of-fold accuracy on the development half of the settings compared
when they were chosen (training on the seed messages plus the other folds; no evaluation call).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from classifier import training  # noqa: E402
from classifier.intent import REQUEST_TYPES, RequestTypeModel, request_type_by_rules  # noqa: E402
from classifier.seeds import SEED_DIR, read_jsonl, request_type_cases  # noqa: E402


def measure(rows, said):
    """Accuracy, accuracy on the hard cases, per-type precision/recall and the confusion."""
    truth = [r["request_type"] for r in rows]
    right = [s == t for s, t in zip(said, truth, strict=True)]
    hard = [ok for ok, r in zip(right, rows, strict=True) if r["hard"]]
    per_type = {}
    for name in REQUEST_TYPES:
        predicted = sum(s == name for s in said)
        actual = sum(t == name for t in truth)
        hits = sum(s == t == name for s, t in zip(said, truth, strict=True))
        per_type[name] = {
            "precision": round(hits / predicted, 4) if predicted else None,
            "recall": round(hits / actual, 4) if actual else None,
            "n": actual,
        }
    pairs = list(zip(truth, said, strict=True))
    confusion = {t: {s: pairs.count((t, s)) for s in REQUEST_TYPES} for t in REQUEST_TYPES}
    return {
        "accuracy": round(float(np.mean(right)), 4),
        "hard_accuracy": round(float(np.mean(hard)), 4) if hard else None,
        "per_type": per_type,
        "confusion": confusion,
    }


def old_model(seed_dir=SEED_DIR):
    """The request-type model as the default bundle trained it before issue 19."""
    messages = read_jsonl(Path(seed_dir) / "corpus" / "messages.jsonl")
    texts = [f"{m.get('title', '')}。{m['text']}" for m in messages]
    labels = [m["request_type"] for m in messages]
    return RequestTypeModel(C=0.5, cue_weight=None).fit(texts, labels)


def cross_validate(settings, folds=5, shuffles=(0, 1, 2)):
    """Out-of-fold accuracy on the development half of each ``(C, cue_weight, call_weight)``:
    the seed messages (weight 1) plus the other folds (``call_weight``) train each fold's model."""
    from sklearn.model_selection import StratifiedKFold

    texts, labels, weights = training.request_type_corpus()
    dev = request_type_cases("dev")
    seed_n = len(texts) - len(dev)
    seed_texts, seed_labels = texts[:seed_n], labels[:seed_n]
    dev_texts = [r["text"] for r in dev]
    dev_labels = np.array([r["request_type"] for r in dev])
    results = []
    for C, cue_weight, call_weight in settings:
        accuracies = []
        for shuffle in shuffles:
            said = np.empty(len(dev), dtype=object)
            splitter = StratifiedKFold(folds, shuffle=True, random_state=shuffle)
            for fit_rows, test_rows in splitter.split(dev_texts, dev_labels):
                model = RequestTypeModel(C=C, cue_weight=cue_weight).fit(
                    seed_texts + [dev_texts[i] for i in fit_rows],
                    seed_labels + list(dev_labels[fit_rows]),
                    sample_weight=np.array([1.0] * seed_n + [call_weight] * len(fit_rows)),
                )
                said[test_rows] = model.predict([dev_texts[i] for i in test_rows])
            accuracies.append(float(np.mean(said == dev_labels)))
        results.append(
            {"C": C, "cue_weight": cue_weight, "call_weight": call_weight,
             "out_of_fold_accuracy": round(float(np.mean(accuracies)), 4)}
        )  # fmt: skip
    return results


#: The settings compared (``--cv``); the chosen ones are RequestTypeModel's defaults and
#: ``training.CALL_WEIGHT``.
CV_SETTINGS = [
    (0.5, None, 1.0),  # the old model's settings, with the development calls added
    (0.1, None, 10.0),
    (0.1, 0.3, 1.0),
    (0.1, 0.3, 5.0),
    (0.1, 0.3, 10.0),
    (0.1, 0.3, 20.0),
    (0.1, 0.5, 10.0),
    (0.2, 0.3, 10.0),
]


def run(cv=False):
    started = time.perf_counter()
    model, meta = training.train_request_type()
    trained_s = time.perf_counter() - started
    rows = request_type_cases("eval")
    texts = [r["text"] for r in rows]
    ours = measure(rows, model.predict(texts))
    before = measure(rows, old_model().predict(texts))
    rules = measure(rows, [request_type_by_rules(t) for t in texts])

    started = time.perf_counter()
    for text in texts:
        model.predict([text])
    per_call_ms = (time.perf_counter() - started) / len(texts) * 1000
    batch = (texts * (2000 // len(texts) + 1))[:2000]
    started = time.perf_counter()
    model.predict(batch)
    per_second = len(batch) / (time.perf_counter() - started)
    result = {
        "accuracy": ours["accuracy"],
        "hard_accuracy": ours["hard_accuracy"],
        "baseline_accuracy": before["accuracy"],
        "baseline_hard_accuracy": before["hard_accuracy"],
        "rules_accuracy": rules["accuracy"],
        "rules_hard_accuracy": rules["hard_accuracy"],
        "eval_calls": len(rows),
        "eval_hard": sum(r["hard"] for r in rows),
        "per_type": ours["per_type"],
        "baseline_per_type": before["per_type"],
        "confusion": ours["confusion"],
        "baseline_confusion": before["confusion"],
        "model": {k: v for k, v in meta.items() if k != "training_sha256"},
        "train_s": round(trained_s, 2),
        "per_call_ms": round(per_call_ms, 3),
        "batch_calls_per_s": round(per_second),
    }
    if cv:
        result["cross_validation"] = cross_validate(CV_SETTINGS)
    return result


def print_table(r):
    print(f"evaluation half: {r['eval_calls']} calls ({r['eval_hard']} hard cases)")
    print("| figure | model | before | rules | target |")
    print("|---|---|---|---|---|")
    print(
        f"| accuracy | {r['accuracy']:.3f} | {r['baseline_accuracy']:.3f} "
        f"| {r['rules_accuracy']:.3f} | ≥ 0.85 |"
    )
    print(
        f"| accuracy, hard cases | {r['hard_accuracy']:.3f} | {r['baseline_hard_accuracy']:.3f} "
        f"| {r['rules_hard_accuracy']:.3f} | |"
    )
    print()
    print("| type | precision | recall | before: precision | before: recall |")
    print("|---|---|---|---|---|")

    def fmt(value):
        return "–" if value is None else f"{value:.3f}"

    for name in REQUEST_TYPES:
        now, old = r["per_type"][name], r["baseline_per_type"][name]
        print(
            f"| {name} | {fmt(now['precision'])} | {fmt(now['recall'])} "
            f"| {fmt(old['precision'])} | {fmt(old['recall'])} |"
        )
    print()
    print("confusion (rows: label, columns: model)")
    print("| | " + " | ".join(REQUEST_TYPES) + " |")
    print("|---" * (len(REQUEST_TYPES) + 1) + "|")
    for name in REQUEST_TYPES:
        cells = " | ".join(str(r["confusion"][name][s]) for s in REQUEST_TYPES)
        print(f"| {name} | {cells} |")
    model = r["model"]
    print()
    print(
        f"model: {model['training_rows']} rows (call weight {model['call_weight']}, "
        f"C {model['C']}, cue weight {model['cue_weight']}), trained in {r['train_s']} s; "
        f"{r['per_call_ms']} ms a call, {r['batch_calls_per_s']:,} calls/s in batches of 2,000"
    )
    for row in r.get("cross_validation", []):
        print(
            f"cv (development half, out-of-fold): C {row['C']}, cue weight {row['cue_weight']}, "
            f"call weight {row['call_weight']}: {row['out_of_fold_accuracy']:.3f}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--cv", action="store_true", help="also cross-validate the settings")
    args = parser.parse_args()
    result = run(cv=args.cv)
    print_table(result)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
