"""Emergency detection on the held-out half of the urgency data (issue 13 item 3).

    python bench/urgency.py [--json PATH] [--show-errors]

Trains the urgency model exactly as the default bundle does (``classifier.training.
train_urgency``: the development half only, thresholds tuned there) and measures it on the
evaluation half (``classifier.seeds.urgency_cases("eval")``, see seed_data/corpus/README.md):

- recall on emergencies (target ≥ 0.99) and false alarms on non-emergencies (target ≤ 5 %),
  the latter also apart for the hard negatives (look-alikes: hazard reports, past events,
  enquiries …) and for ordinary calls (seed messages and call templates);
- the transfer line: of the emergencies detected, the share sent to the right line;
- beside it, the rules alone (this version, as they run when no model is saved) and the rules
  as they were before the model ("today", ``bench/urgency_baseline.py``).
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

from bench import urgency_baseline  # noqa: E402
from classifier import intent, training  # noqa: E402
from classifier.seeds import urgency_cases  # noqa: E402


def measure(rows, decide):
    """Figures of ``decide(text) -> (line, evidence) | None`` on labelled ``rows``."""
    said = [decide(r["text"]) for r in rows]
    positives = [(r, s) for r, s in zip(rows, said, strict=True) if r["emergency"]]
    negatives = [(r, s) for r, s in zip(rows, said, strict=True) if not r["emergency"]]
    hard = [(r, s) for r, s in negatives if r["source"] == "cases"]
    ordinary = [(r, s) for r, s in negatives if r["source"] == "ordinary"]
    detected = [(r, s) for r, s in positives if s]

    def rate(pairs):
        return round(sum(bool(s) for _, s in pairs) / len(pairs), 4) if pairs else None

    return {
        "recall": rate(positives),
        "false_alarm_rate": rate(negatives),
        "hard_negative_false_alarm_rate": rate(hard),
        "ordinary_false_alarm_rate": rate(ordinary),
        "transfer_accuracy": round(
            sum(s[0] == r["transfer_to"] for r, s in detected) / max(len(detected), 1), 4
        ),
        "missed": [r["text"] for r, s in positives if not s],
        "false_alarms": [r["text"] for r, s in negatives if s],
    }


def run():
    started = time.perf_counter()
    model, meta = training.train_urgency()
    trained_s = time.perf_counter() - started
    rows = urgency_cases("eval")

    def learned(text):
        result = intent.urgency(text, model=model)
        return (result.transfer_to, result.evidence) if result.tier == "emergency" else None

    def rules(text):
        result = intent.urgency(text)
        return (result.transfer_to, result.evidence) if result.tier == "emergency" else None

    started = time.perf_counter()
    ours = measure(rows, learned)
    per_call_ms = (time.perf_counter() - started) / len(rows) * 1000
    rules_now = measure(rows, rules)
    today = measure(rows, urgency_baseline.is_emergency)
    return {
        "recall": ours["recall"],
        "false_alarm_rate": ours["false_alarm_rate"],
        "hard_negative_false_alarm_rate": ours["hard_negative_false_alarm_rate"],
        "ordinary_false_alarm_rate": ours["ordinary_false_alarm_rate"],
        "eval_positives": sum(r["emergency"] for r in rows),
        "eval_negatives": sum(not r["emergency"] for r in rows),
        "eval_hard_negatives": sum(not r["emergency"] and r["source"] == "cases" for r in rows),
        "eval_ordinary": sum(r["source"] == "ordinary" for r in rows),
        "baseline_recall": today["recall"],
        "baseline_false_alarm_rate": today["false_alarm_rate"],
        "baseline_hard_negative_false_alarm_rate": today["hard_negative_false_alarm_rate"],
        "baseline_ordinary_false_alarm_rate": today["ordinary_false_alarm_rate"],
        "transfer_accuracy": ours["transfer_accuracy"],
        "baseline_transfer_accuracy": today["transfer_accuracy"],
        "rules_only": {k: v for k, v in rules_now.items() if k not in ("missed", "false_alarms")},
        "model": {k: v for k, v in meta.items() if k != "training_sha256"},
        "train_s": round(trained_s, 2),
        "per_call_ms": round(per_call_ms, 3),
        "missed": ours["missed"],
        "false_alarms": ours["false_alarms"],
    }


def print_table(r):
    rules = r["rules_only"]
    rows = [
        ("recall on emergencies", "recall", "baseline_recall", "recall", "≥ 0.99"),
        ("false alarms, all non-emergencies", "false_alarm_rate", "baseline_false_alarm_rate",
         "false_alarm_rate", "≤ 0.05"),
        ("false alarms, hard negatives", "hard_negative_false_alarm_rate",
         "baseline_hard_negative_false_alarm_rate", "hard_negative_false_alarm_rate", ""),
        ("false alarms, ordinary calls", "ordinary_false_alarm_rate",
         "baseline_ordinary_false_alarm_rate", "ordinary_false_alarm_rate", ""),
        ("right transfer line (of detected)", "transfer_accuracy", "baseline_transfer_accuracy",
         "transfer_accuracy", ""),
    ]  # fmt: skip
    print(
        f"evaluation half: {r['eval_positives']} emergencies, {r['eval_negatives']} others "
        f"({r['eval_hard_negatives']} hard negatives, {r['eval_ordinary']} ordinary calls)"
    )
    width = max(len(name) for name, *_ in rows)
    print(f"| {'figure'.ljust(width)} | rules + model | rules now | today's rules | target |")
    print(f"|{'-' * (width + 2)}|---------------|-----------|---------------|--------|")
    for name, ours, today, now, target in rows:
        print(
            f"| {name.ljust(width)} | {r[ours]:>13.3f} | {rules[now]:>9.3f} "
            f"| {r[today]:>13.3f} | {target:>6} |"
        )
    model = r["model"]
    print(
        f"model: {model['training_rows']} development rows, trained in {r['train_s']} s "
        f"(incl. {model.get('folds', 3)} folds for the thresholds: veto {model['veto']}, "
        f"alone {model['alone']}); "
        f"{r['per_call_ms']} ms a call"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--show-errors", action="store_true", help="print missed and false")
    args = parser.parse_args()
    result = run()
    print_table(result)
    if args.show_errors:
        for text in result["missed"]:
            print("missed:", text)
        for text in result["false_alarms"]:
            print("false alarm:", text[:100])
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        figures = {k: v for k, v in result.items() if k not in ("missed", "false_alarms")}
        Path(args.json).write_text(json.dumps(figures, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
