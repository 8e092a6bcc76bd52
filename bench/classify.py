"""Classifier benchmark on real public data (../shared/data) and on speed.

    python bench/classify.py [--json PATH] [--only history,out_of_box,routing,gazetteer,speed]

a. history     Teddy Cup 2020 C: train on 附件2_示例数据 minus every id in 分类结果 (457 rows;
               附件3/附件4 unlabelled, the 附件1 category names as descriptions and the seed
               corpus by top-level name, through training.train_category), evaluate on
               分类结果 (921). Ours next to a plain jieba + TF-IDF + LinearSVC baseline.
               Settings are chosen on the 457 rows alone: bench/category_selection.py.
b. out_of_box  the default model (seed corpus only), top-level classes mapped to the 7 labels.
c. routing     Shenzhen Pingshan events, time split 80/20 (bench/classify_routing.py).
d. gazetteer   real 潍坊 names with noise (bench/classify_gazetteer.py).
e. speed       one ticket classified + resolved + routed; a batch on one core; load; memory.
"""

import argparse
import csv
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

# One core for the batch figure, and no thread pools fighting over two.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
TEDDY = DATA / "teddycup2020c"

from classifier import artefact  # noqa: E402


def _rows(name):
    with open(TEDDY / name, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def _text(row):
    return f"{row['留言主题']}。{row['留言详情']}"


def history():
    import jieba
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.svm import LinearSVC

    from classifier import training
    from classifier.segment import Segmenter

    evaluation = _rows("分类结果.csv")
    held_out = {r["留言编号"] for r in evaluation}
    train = [r for r in _rows("附件2_示例数据.csv") if r["留言编号"] not in held_out]
    overlap = held_out & {r["留言编号"] for r in train}
    if overlap:
        raise SystemExit(f"refusing to run: {len(overlap)} ids are in training and evaluation")
    x, y = [_text(r) for r in train], [r["一级分类"] for r in train]
    x_eval, y_eval = [_text(r) for r in evaluation], [r["一级标签"] for r in evaluation]
    unlabelled = [_text(r) for r in _rows("附件3.csv") + _rows("附件4.csv")]
    labels = set(y)
    descriptions = [
        (name, row["一级分类"])
        for row in _rows("附件1.csv")
        if row["一级分类"] in labels
        for name in {row["二级分类"], row["三级分类"]} - {"其他"}
    ]

    baseline = LinearSVC().fit(
        (vectorizer := TfidfVectorizer(tokenizer=jieba.lcut, token_pattern=None)).fit_transform(x),
        y,
    )
    predicted = baseline.predict(vectorizer.transform(x_eval))
    base_f1 = f1_score(y_eval, predicted, average="macro")
    base_acc = accuracy_score(y_eval, predicted)

    model = training.train_category(
        x, y, unlabelled=unlabelled, descriptions=descriptions, segmenter=Segmenter()
    )
    metrics = training.evaluate(model, x_eval, y_eval)
    return {
        "macro_f1": round(metrics["macro_f1"], 4),
        "accuracy": round(metrics["accuracy"], 4),
        "baseline_macro_f1": round(base_f1, 4),
        "baseline_accuracy": round(base_acc, 4),
        "train_rows": len(x),
        "eval_rows": len(x_eval),
        "unlabelled_rows": len(unlabelled),
        "per_class_f1": {c: round(m["f1"], 3) for c, m in metrics["per_class"].items()},
    }


def out_of_box(bundle):
    from classifier import training

    evaluation = _rows("分类结果.csv")
    texts, labels = [_text(r) for r in evaluation], [r["一级标签"] for r in evaluation]
    view = training.TopLevelView(bundle.category, training.category_tree(), set(labels))
    metrics = training.evaluate(view, texts, labels)
    return {"macro_f1": round(metrics["macro_f1"], 4), "accuracy": round(metrics["accuracy"], 4)}


def speed(bundle, models_dir):
    """Save the model, then measure serving in a fresh process that imports only the classifier
    (as a server worker loads it: its memory is the model's and the pipeline's, not training's).
    The parent prepares the inputs: 3,000 simulated calls and the demo city's areas and grids."""
    import random
    import subprocess

    from server.simulate import CallGenerator

    version = artefact.save(bundle, models_dir, {"training_sha256": "bench"})
    generator = CallGenerator(random.Random(7))
    areas, grids = _seed_areas()
    inputs = Path(models_dir) / "inputs.json"
    inputs.write_text(
        json.dumps(
            {"calls": [generator.call() for _ in range(3000)], "areas": areas, "grids": grids},
            ensure_ascii=False,
        )
    )
    worker = subprocess.run(
        [sys.executable, __file__, "--speed-worker", str(models_dir), version, str(inputs)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(worker.stdout.strip().splitlines()[-1])


def speed_worker(models_dir, version, inputs_path):
    """Latency of one suggestion (category + type + urgency + place + units) after warm-up, a
    batch on one core, load time of the saved model, and resident memory."""
    from classifier.gazetteer import Gazetteer
    from classifier.geo import GridLocator
    from classifier.pipeline import CategoryInfo, Suggester
    from classifier.router import CatalogueRouter, Router
    from classifier.seeds import category_tree

    inputs = json.loads(Path(inputs_path).read_text())
    calls = inputs["calls"]
    started = time.perf_counter()
    loaded, _ = artefact.load(models_dir, version)
    loaded.category.predict(["加载后第一次预测"])  # jieba's dictionary loads on first use
    load_s = time.perf_counter() - started

    with open(ROOT / "seed_data" / "routing.json", encoding="utf-8") as f:
        catalogue = CatalogueRouter(json.load(f))
    tree = category_tree()
    suggester = Suggester(
        loaded,
        gazetteer=Gazetteer(inputs["areas"]),
        grids=GridLocator(inputs["grids"]),
        router=Router(catalogue),
        categories={code: CategoryInfo(name) for code, (name, _) in tree.items()},
    )
    for call in calls[:200]:
        suggester.suggest(call["content"], address=call["address"])
    timings = []
    for call in calls[200:2200]:
        began = time.perf_counter()
        suggester.suggest(call["content"], address=call["address"])
        timings.append((time.perf_counter() - began) * 1000)
    timings.sort()
    batch = calls[:2000]
    began = time.perf_counter()
    for i in range(0, len(batch), 500):
        chunk = batch[i : i + 500]
        suggester.suggest_many(
            [c["content"] for c in chunk], addresses=[c["address"] for c in chunk]
        )
    batch_per_s = len(batch) / (time.perf_counter() - began)
    rss_mb = _peak_rss_mb()
    return {
        "p50_ms": round(statistics.median(timings), 3),
        "p99_ms": round(timings[int(0.99 * (len(timings) - 1))], 3),
        "batch_per_s": round(batch_per_s, 1),
        "load_s": round(load_s, 3),
        "rss_mb": round(rss_mb, 1),
        "mean_text_chars": round(statistics.mean(len(c["content"]) for c in calls), 1),
    }


def _peak_rss_mb():
    """This process's peak resident memory. VmHWM, not getrusage: Linux carries ru_maxrss over
    exec, so a worker started by the (training) parent would report the parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _seed_areas():
    """The demo city's areas and grid squares exactly as ``hotline seed`` makes them."""
    from hotline.seed import GRID_SIZE, GRIDS_PER_COMMUNITY, _ring_point, _square

    with open(ROOT / "seed_data" / "areas.json", encoding="utf-8") as f:
        data = json.load(f)
    areas, grids = [], []
    for d in data["districts"]:
        areas.append(
            {
                "code": d["code"],
                "name": d["name"],
                "level": "district",
                "parent": None,
                "aliases": d.get("aliases", []),
            }
        )
        for s in d["streets"]:
            areas.append(
                {
                    "code": s["code"],
                    "name": s["name"],
                    "level": "street",
                    "parent": d["code"],
                    "aliases": s.get("aliases", []),
                }
            )
            for i, c in enumerate(s["communities"]):
                areas.append(
                    {
                        "code": c["code"],
                        "name": c["name"],
                        "level": "community",
                        "parent": s["code"],
                        "aliases": c.get("aliases", []),
                    }
                )
                lng, lat = _ring_point(*s["center"], i, len(s["communities"]))
                for seq in range(1, GRIDS_PER_COMMUNITY + 1):
                    code = f"{c['code']}{seq:03d}"
                    areas.append(
                        {
                            "code": code,
                            "name": f"{c['name']}第{seq}网格",
                            "level": "grid",
                            "parent": c["code"],
                            "aliases": [],
                        }
                    )
                    grids.append((code, _square(lng + (seq - 2) * GRID_SIZE, lat, GRID_SIZE)))
    return areas, grids


def print_table(results):
    rows = []
    if "history" in results:
        h = results["history"]
        rows += [
            (
                "a. history macro-F1 (ours / baseline)",
                f"{h['macro_f1']} / {h['baseline_macro_f1']}",
                "≥ 0.85",
            ),
            (
                "a. history accuracy (ours / baseline)",
                f"{h['accuracy']} / {h['baseline_accuracy']}",
                "",
            ),
        ]
    if "out_of_box" in results:
        rows.append(("b. out-of-box macro-F1", results["out_of_box"]["macro_f1"], "≥ 0.70"))
    if "routing" in results:
        r = results["routing"]
        rows += [
            ("c. routing top-1 (baseline)", f"{r['top1']} ({r['baseline_top1']})", "≥ 0.60"),
            ("c. routing top-3", r["top3"], "≥ 0.85"),
        ]
    if "gazetteer" in results:
        g = results["gazetteer"]
        rows += [
            ("d. gazetteer street accuracy", g["street_acc"], "≥ 0.97"),
            ("d. gazetteer community accuracy", g["community_acc"], "≥ 0.93"),
        ]
    if "speed" in results:
        s = results["speed"]
        rows += [
            ("e. one ticket p50 / p99 (ms)", f"{s['p50_ms']} / {s['p99_ms']}", "≤ 3 / ≤ 15"),
            ("e. batch tickets/s (one core)", s["batch_per_s"], "≥ 2000"),
            ("e. model load (s)", s["load_s"], "≤ 2"),
            ("e. resident memory (MB)", s["rss_mb"], "≤ 300"),
        ]
    width = max(len(r[0]) for r in rows)
    print(f"| {'figure'.ljust(width)} | measured | target |")
    print(f"|{'-' * (width + 2)}|----------|--------|")
    for name, value, target in rows:
        print(f"| {name.ljust(width)} | {value} | {target} |")


def main():
    if sys.argv[1:2] == ["--speed-worker"]:
        print(json.dumps(speed_worker(*sys.argv[2:5])))
        return
    parser = argparse.ArgumentParser(description="classifier benchmark")
    parser.add_argument("--json")
    parser.add_argument("--only", default="history,out_of_box,routing,gazetteer,speed")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"real data not found at {DATA}: the benchmark needs ../shared/data")
    wanted = set(args.only.split(","))
    results = {}
    if "history" in wanted:
        results["history"] = history()
    if wanted & {"out_of_box", "speed"}:
        from classifier import training

        bundle, _ = training.train_default()
        if "out_of_box" in wanted:
            results["out_of_box"] = out_of_box(bundle)
        if "speed" in wanted:
            import tempfile

            with tempfile.TemporaryDirectory() as models_dir:
                results["speed"] = speed(bundle, models_dir)
    if "routing" in wanted:
        from bench import classify_routing

        results["routing"] = classify_routing.run(DATA)
    if "gazetteer" in wanted:
        from bench import classify_gazetteer

        results["gazetteer"] = classify_gazetteer.run(DATA)
    print_table(results)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, ensure_ascii=False, indent=2, default=str))


if __name__ == "__main__":
    main()
