"""How the category model's settings were chosen: cross-validation on the Teddy Cup training
rows only (附件2_示例数据 minus every id in 分类结果; 分类结果 is never read beyond its ids).

    python bench/category_selection.py [--folds 5] [--weights 0,0.05,0.1,0.2,0.5,1] [--C 0.1,0.3,1]

Each setting trains through ``classifier.training.train_category`` (the product's function)
on four fifths of the 457 rows, with 附件3/附件4 unlabelled and the 附件1 names as
descriptions as in ``bench/classify.py`` history, and is scored on the fifth left out
(stratified folds, the same for every setting; macro-F1 of the pooled out-of-fold
predictions). First the seed-corpus weight at the model's default C, then other values of C
at the best weight. Words are cut once per text (a memo around the segmenter) to keep it to minutes.
"""

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from classify import _rows, _text  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402

from classifier import training  # noqa: E402
from classifier.segment import Segmenter  # noqa: E402
from classifier.text_model import CategoryModel  # noqa: E402


class MemoSegmenter(Segmenter):
    """Cuts each text once across all folds and settings (selection only, never saved)."""

    def __init__(self):
        super().__init__()
        self.memo = {}

    def cut(self, text):
        words = self.memo.get(text)
        if words is None:
            words = self.memo[text] = super().cut(text)
        return words


def training_data():
    held_out = {r["留言编号"] for r in _rows("分类结果.csv")}
    train = [r for r in _rows("附件2_示例数据.csv") if r["留言编号"] not in held_out]
    x, y = [_text(r) for r in train], [r["一级分类"] for r in train]
    unlabelled = [_text(r) for r in _rows("附件3.csv") + _rows("附件4.csv")]
    descriptions = [
        (name, row["一级分类"])
        for row in _rows("附件1.csv")
        if row["一级分类"] in set(y)
        for name in {row["二级分类"], row["三级分类"]} - {"其他"}
    ]
    return x, y, unlabelled, descriptions


def cross_validate(x, y, unlabelled, descriptions, segmenter, *, folds, **options):
    y = np.array(y)
    predicted = np.empty(len(y), dtype=object)
    seed = training.seed_examples(set(y))
    for fit, test in StratifiedKFold(folds, shuffle=True, random_state=0).split(x, y):
        model = training.train_category(
            [x[i] for i in fit],
            list(y[fit]),
            unlabelled=unlabelled,
            descriptions=descriptions,
            seed=seed,
            segmenter=segmenter,
            **options,
        )
        predicted[test] = [p.top[0][0] for p in model.predict([x[i] for i in test])]
    return float(f1_score(y, predicted, average="macro"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--weights", default="0,0.05,0.1,0.2,0.5,1")
    parser.add_argument("--C", default="0.1,0.3,1")
    args = parser.parse_args()
    x, y, unlabelled, descriptions = training_data()
    segmenter = MemoSegmenter()
    started = time.time()

    def score(**options):
        f1 = cross_validate(x, y, unlabelled, descriptions, segmenter, folds=args.folds, **options)
        print(f"{options}  CV macro-F1 {f1:.4f}  ({time.time() - started:.0f} s)", flush=True)
        return f1

    weights = [float(w) for w in args.weights.split(",")]
    by_weight = {w: score(seed_weight=w) for w in weights}
    best_weight = max(by_weight, key=by_weight.get)
    default_c = CategoryModel(None).C
    by_c = {default_c: by_weight[best_weight]}
    for c in map(float, args.C.split(",")):
        if c not in by_c:
            by_c[c] = score(seed_weight=best_weight, C=c)
    best_c = max(by_c, key=by_c.get)
    print(f"chosen: seed_weight={best_weight} C={best_c} (CV macro-F1 {by_c[best_c]:.4f})")


if __name__ == "__main__":
    main()
