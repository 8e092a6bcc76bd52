"""When does the console show a knowledge-base article? Relevance measured on held-out calls.

The calls are ``seed_data/corpus/knowledge_queries.jsonl`` (hand-written: calls each answered
by one article of ``seed_data/knowledge.json``, and look-alike calls no article answers, split
once into a development and an evaluation half) and the seed corpus's ordinary calls whose
category no article covers (``messages.jsonl``, not enquiries; even lines development, odd
lines evaluation). The relevance model (``hotline.knowledge.RELEVANCE``) and its threshold
were fitted on the development half only (``--fit`` refits and prints them); the figures
below are on the evaluation half. The baseline is what the console showed before: every
article with a word score of at least ``MIN_SCORE`` (here the best three).

    python bench/knowledge.py [--json PATH] [--fit]
"""

import argparse
import json
import math
from pathlib import Path

from hotline import knowledge

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "seed_data"
#: The development half may show an article for at most this share of calls that no
#: article answers (the threshold is the lowest cut that keeps to it).
DEV_FALSE_SHOW_MAX = 0.01


def load_index():
    with open(SEED / "knowledge.json", encoding="utf-8") as f:
        articles = json.load(f)
    return knowledge.Index(
        knowledge.entry(a["code"], a["title"], a["answer"], keywords=a.get("keywords", ""))
        for a in articles
    ), {a["category"] for a in articles}


def load_calls(covered):
    """{"dev": [...], "eval": [...]} of (text, article code or None, kind)."""
    halves = {"dev": [], "eval": []}
    with open(SEED / "corpus" / "knowledge_queries.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            kind = "answered" if row["article"] else "lookalike"
            halves[row["split"]].append((row["text"], row["article"], kind))
    with open(SEED / "corpus" / "messages.jsonl", encoding="utf-8") as f:
        ordinary = [
            m["text"]
            for m in map(json.loads, f)
            if m["category"][:4] not in covered and m["request_type"] != "consult"
        ]
    halves["dev"] += [(text, None, "ordinary") for text in ordinary[0::2]]
    halves["eval"] += [(text, None, "ordinary") for text in ordinary[1::2]]
    return halves


def scored(index, calls):
    """Each call with its candidates' codes and relevance features (segmented once)."""
    out = []
    for text, article, kind in calls:
        found = index.candidates(text)
        out.append((article, kind, [e.code for e, _ in found], index.features(text, found)))
    return out


def relevance(weights, row):
    coefficients, intercept = weights
    z = intercept + sum(c * x for c, x in zip(coefficients, row, strict=True))
    return 1.0 / (1.0 + math.exp(-z))


def shown_by(weights, threshold):
    """What the console shows: candidates at least ``threshold`` relevant, best first."""

    def show(codes, rows):
        kept = [(relevance(weights, row), code) for code, row in zip(codes, rows, strict=True)]
        return [code for p, code in sorted(kept, key=lambda k: (-k[0], k[1])) if p >= threshold]

    return show


def baseline(codes, rows):
    """What the console showed before: every candidate above the word-score floor."""
    return codes


def figures(calls, show):
    """Figures of ``show(codes, rows) -> [codes shown, best first]`` over scored ``calls``."""
    shown_pairs = right = top1 = 0
    answered = 0
    false = {"lookalike": [0, 0], "ordinary": [0, 0]}
    for article, kind, codes, rows in calls:
        shown = show(codes, rows)
        shown_pairs += len(shown)
        if kind == "answered":
            answered += 1
            right += article in shown
            top1 += bool(shown) and shown[0] == article
        else:
            false[kind][0] += bool(shown)
            false[kind][1] += 1
    unanswered = false["lookalike"][1] + false["ordinary"][1]
    return {
        "queries": len(calls),
        "shown_precision": right / shown_pairs if shown_pairs else 0.0,
        "answer_recall": right / answered,
        "top1_accuracy": top1 / answered,
        "false_show_rate": (false["lookalike"][0] + false["ordinary"][0]) / unanswered,
        "lookalike_false_show_rate": false["lookalike"][0] / false["lookalike"][1],
        "ordinary_false_show_rate": false["ordinary"][0] / false["ordinary"][1],
    }


def fit(calls):
    """Logistic weights fitted on scored ``calls`` (each candidate labelled right or not),
    and the lowest threshold whose false-show rate on them is at most DEV_FALSE_SHOW_MAX."""
    from sklearn.linear_model import LogisticRegression

    rows, labels = [], []
    for article, _, codes, features in calls:
        rows += features
        labels += [int(code == article) for code in codes]
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000).fit(rows, labels)
    weights = (
        tuple(round(float(c), 4) for c in model.coef_[0]),
        round(float(model.intercept_[0]), 4),
    )
    for step in range(20, 100):
        threshold = step / 100
        if figures(calls, shown_by(weights, threshold))["false_show_rate"] <= DEV_FALSE_SHOW_MAX:
            return weights, threshold
    return weights, 0.99


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--fit", action="store_true", help="refit the weights on the dev half")
    args = parser.parse_args(argv)

    index, covered = load_index()
    halves = {name: scored(index, calls) for name, calls in load_calls(covered).items()}
    weights, threshold = knowledge.RELEVANCE, knowledge.RELEVANCE_THRESHOLD
    if args.fit:
        weights, threshold = fit(halves["dev"])
        print(f"fitted on the development half: RELEVANCE = {weights!r}")
        print(f"RELEVANCE_THRESHOLD = {threshold}")
    results = {
        "dev": figures(halves["dev"], shown_by(weights, threshold)),
        "eval": figures(halves["eval"], shown_by(weights, threshold)),
        "baseline": figures(halves["eval"], baseline),
    }
    keys = [k for k in results["eval"] if k != "queries"]
    print(
        f"knowledge relevance, threshold {threshold}  (calls: dev {results['dev']['queries']}, "
        f"eval {results['eval']['queries']})"
    )
    print(f"{'':28} {'dev':>8} {'eval':>8} {'baseline':>9}")
    for key in keys:
        print(
            f"{key:28} {results['dev'][key]:8.3f} {results['eval'][key]:8.3f} "
            f"{results['baseline'][key]:9.3f}"
        )
    if args.json:
        out = {"threshold": threshold, "eval_queries": results["eval"]["queries"]}
        out |= {key: results["eval"][key] for key in keys}
        out |= {f"baseline_{key}": results["baseline"][key] for key in keys}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    assert all(math.isfinite(v) for v in results["eval"].values())


if __name__ == "__main__":
    main()
