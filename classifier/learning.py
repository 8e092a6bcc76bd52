"""Learning from the centre's own decisions: retrain, measure on recent weeks, gate.

The category, request type, emergency answer, area and lead unit finally chosen on a ticket
are labels the centre produces for free. ``retrain`` turns them into a candidate model and
decides whether it may replace the active one:

1. ``split``: the tickets of the last ``policy.holdout_days`` before ``now`` are held out (by
   time, as the model will meet next week's tickets); too few on either side → skipped.
2. ``train_candidate`` trains a probe on the older part (the seed corpus, weighted by
   ``policy.seed_weight``, plus the confirmed values).
3. ``figures`` measures the probe and the active model on the held-out tickets.
4. ``gate``: the candidate is promoted only if no headline figure is worse than the active
   model's by more than ``policy.tolerance`` (a figure measured on fewer than
   ``MIN_CASES`` tickets is shown but does not decide).
5. The candidate returned is refitted on all the examples; its meta records the probe's
   figures.

Plain Python: no Flask, no database (``dispatch.learning`` reads the tickets and registers the
result). Given the same examples, clock and policy the result is the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from classifier import training
from classifier.bundle import ModelBundle
from classifier.intent import request_type_by_rules, urgency
from classifier.router import LearnedRouter, record_from_codes
from classifier.seeds import SEED_DIR, category_tree, read_jsonl, user_words
from classifier.segment import Segmenter

#: The category model predicts level-2 codes (0101 市政设施 …); a confirmed deeper code is
#: truncated to it, a confirmed level-1 code stays a level-1 class.
LABEL_LEVEL = 2
#: What ``retrain`` decides (``Outcome.status``; ``dispatch.learning`` stores them as they are).
PROMOTED, KEPT, SKIPPED = "promoted", "kept", "skipped"
#: A figure measured on fewer held-out tickets is reported but does not decide the gate.
MIN_CASES = 20

#: Headline figures of the gate: (key, count key, name shown).
HEADLINE = (
    ("category_macro_f1", "n_category", "分类宏平均F1"),
    ("category_accuracy", "n_category", "分类准确率"),
    ("request_type_accuracy", "n_request_type", "诉求类型准确率"),
    ("unit_top3", "n_unit", "承办单位前三命中率"),
    ("emergency_recall", "n_emergency", "紧急识别召回率"),
    ("emergency_false_alarm_rate", "n_not_emergency", "紧急误报率"),
)
#: Headline figures where lower is better (a rise beyond the tolerance refuses).
LOWER_IS_BETTER = frozenset({"emergency_false_alarm_rate"})


@dataclass
class Example:
    """One ticket as the loop sees it: its text and the values a person confirmed."""

    #: The text as intake gives it to the suggester (a ticket's content).
    text: str
    #: Aware (UTC).
    received_at: datetime
    #: Final category code a person confirmed (any level), else None.
    category: str | None = None
    #: RequestType value (consult/help/complaint/report/suggestion/praise) if confirmed.
    request_type: str | None = None
    #: The operator's answer to an emergency warning (kept True, dismissed False), else None.
    emergency: bool | None = None
    #: Final area code if a person chose it.
    area: str | None = None
    #: Final lead unit code if confirmed.
    unit: str | None = None
    channel: str | None = None

    @property
    def confirmed(self):
        """Whether a person confirmed anything the models learn from."""
        return any(
            value is not None
            for value in (self.category, self.request_type, self.emergency, self.unit)
        )


@dataclass
class Policy:
    """How retraining runs (from settings; the defaults are the product's)."""

    #: The most recent days held out by time to judge both models.
    holdout_days: int = 14
    #: Confirmed tickets needed before the holdout to train.
    min_training: int = 200
    #: Confirmed tickets needed in the holdout to judge.
    min_holdout: int = 50
    #: Absolute drop allowed on any headline figure.
    tolerance: float = 0.02
    #: Weight of a seed-corpus message against one of the centre's tickets. Measured with
    #: ``bench/learning.py --measure-seed-weight`` (category macro-F1; 0.25 / 0.5 / 1.0):
    #: another city's tickets (Teddy training rows, 3-fold CV) 0.836 / 0.833 / 0.826; demo-like
    #: calls (templates unseen in training) 0.890 / 0.917 / 0.918. 0.5 is within 0.003 of the
    #: best on both. (``training.SEED_WEIGHT``, 0.2, is the weight for a history labelled with
    #: the city's own names, where the seed is relabelled to them; measured the same way.)
    seed_weight: float = 0.5


@dataclass
class Decision:
    promote: bool
    #: In Chinese, for the model page and the retrain record.
    reason: str
    #: One dict per headline figure (see ``gate``).
    checks: list = field(default_factory=list)


@dataclass
class Outcome:
    #: "promoted", "kept" or "skipped".
    status: str
    reason: str
    #: The candidate refitted on all examples (None when skipped).
    bundle: ModelBundle | None = None
    meta: dict = field(default_factory=dict)
    #: {"candidate", "active", "tolerance", "holdout", "training", "checks"}.
    figures: dict = field(default_factory=dict)


# -- splitting --------------------------------------------------------------------------------


def split(examples, now, policy):
    """(train, holdout): the tickets received in the last ``policy.holdout_days`` before
    ``now`` are held out; tickets received after ``now`` are left out. Both in time order."""
    cutoff = now - timedelta(days=policy.holdout_days)
    ordered = _ordered(e for e in examples if e.received_at <= now)
    train = [e for e in ordered if e.received_at <= cutoff]
    holdout = [e for e in ordered if e.received_at > cutoff]
    return train, holdout


def _ordered(examples):
    """Examples in a fixed order whatever order they came in (training is order-sensitive)."""
    return sorted(
        examples,
        key=lambda e: (
            e.received_at,
            e.text,
            e.category or "",
            e.request_type or "",
            str(e.emergency),
            e.area or "",
            e.unit or "",
            e.channel or "",
        ),
    )


# -- training ---------------------------------------------------------------------------------


def label_code(code, level=LABEL_LEVEL):
    """The class a confirmed category code trains: truncated to ``level``."""
    return code[: 2 * level]


def seed_messages(seed_dir=SEED_DIR):
    return read_jsonl(Path(seed_dir) / "corpus" / "messages.jsonl")


def train_candidate(examples, *, base=None, unlabelled=(), policy, seed_dir=SEED_DIR):
    """(bundle, meta): category, request-type and urgency models and the learned router from
    ``examples`` plus the seed corpus. ``base`` (the active bundle) gives what a field with no
    confirmed values keeps (the router; the emergency model)."""
    examples = _ordered(examples)
    seed_dir = Path(seed_dir)
    messages = seed_messages(seed_dir)
    seed_texts = [f"{m.get('title', '')}。{m['text']}" for m in messages]
    category, category_meta = train_category(
        examples, base=base, unlabelled=unlabelled, policy=policy, seed_dir=seed_dir
    )
    tree = category_tree(seed_dir)
    names = {code: tree[code][0] for code in category.classes_ if code in tree}

    # Request type: the default model's training data plus the confirmed types.
    typed = [e for e in examples if e.request_type]
    request_type, request_type_meta = training.train_request_type(
        seed_dir, texts=[e.text for e in typed], labels=[e.request_type for e in typed]
    )

    urgency_model, urgency_meta = train_urgency(examples, base, seed_dir)
    router, router_meta = train_router(examples, base)

    meta = {
        "source": "retrain",
        "label_level": LABEL_LEVEL,
        "seed_weight": policy.seed_weight,
        "seed_rows": len(seed_texts),
        "tickets": len(examples),
        **category_meta,
        "request_type_tickets": len(typed),
        "request_type": request_type_meta,
        "urgency": urgency_meta,
        "router": router_meta,
    }
    if examples:
        meta["from"] = examples[0].received_at.isoformat()
        meta["to"] = examples[-1].received_at.isoformat()
    bundle = ModelBundle(category, request_type, names, router=router, urgency=urgency_model)
    return bundle, meta


def train_category(examples, *, base=None, unlabelled=(), policy, seed_dir=SEED_DIR):
    """(model, meta): the category model from the seed corpus (weighted by
    ``policy.seed_weight``, codes at ``LABEL_LEVEL``) plus the examples' confirmed categories,
    with the category tree's names as descriptions; the other examples' texts and
    ``unlabelled`` shape the vocabulary."""
    examples = _ordered(examples)
    seed_dir = Path(seed_dir)
    tree = category_tree(seed_dir)
    width = 2 * LABEL_LEVEL
    labelled = [e for e in examples if e.category]
    # The seed corpus at the model's level (010101 → 0101), relabelled by the one rule.
    seed_texts, seed_labels = training.seed_examples(
        {code for code in tree if len(code) == width}, seed_dir
    )
    texts = seed_texts + [e.text for e in labelled]
    labels = seed_labels + class_labels(labelled, base)
    descriptions = [(name, code[:width]) for code, (name, _) in tree.items() if len(code) >= width]
    vocabulary = [e.text for e in examples if not e.category] + list(unlabelled)
    model = training.train_category(
        texts[len(seed_texts) :],
        labels[len(seed_texts) :],
        seed=(seed_texts, seed_labels),
        seed_weight=policy.seed_weight,
        unlabelled=vocabulary,
        descriptions=descriptions,
        segmenter=Segmenter(user_words(seed_dir)),
    )
    meta = {
        "training_rows": len(texts),
        "category_tickets": len(labelled),
        "unlabelled_rows": len(vocabulary),
        "training_sha256": training.digest(texts, labels),
    }
    return model, meta


def class_labels(labelled, base=None):
    """The classes the confirmed categories train: a code truncated to ``LABEL_LEVEL``; a
    coarser code (a level-1 01 城乡建设) becomes the class under it that the ``base`` model
    (the active one) finds likeliest for the text, so that it stays a level-1 class only when
    there is no base model or it knows no class under it.

    Measured (``bench/learning.py --measure-seed-weight``, cross-validation on the Teddy
    training rows, confirmed at level 1): level-1 classes next to the seed corpus's level-2
    ones gave macro-F1 0.783, this 0.833. A level-1 class learns the style of the centre's
    tickets (and the seed's classes the style of the seed corpus) rather than the subject."""
    labels = [label_code(e.category) for e in labelled]
    model = getattr(base, "category", None)
    if model is None:
        return labels
    short = [i for i, label in enumerate(labels) if len(label) < 2 * LABEL_LEVEL]
    if not short:
        return labels
    classes = model.classes_
    rows = model.probabilities([labelled[i].text for i in short])
    for i, row in zip(short, rows, strict=True):
        under = [j for j, c in enumerate(classes) if c.startswith(labels[i]) and len(c) > 2]
        if under:
            labels[i] = classes[max(under, key=lambda j: row[j])]
    return labels


def train_urgency(examples, base, seed_dir=SEED_DIR):
    """The emergency model: the seed urgency model with the operators' answers to warnings as
    labelled cases when there are any; else the active model's (or a fresh seed model)."""
    examples = _ordered(examples)
    answered = [e for e in examples if e.emergency is not None]
    if not answered:
        if base is not None and base.urgency is not None:
            return base.urgency, {"from": "active model (no emergency answers to learn from)"}
        model, meta = training.train_urgency(seed_dir)
        return model, {**meta, "answers": 0}
    extra = [
        {"text": e.text, "emergency": bool(e.emergency), "transfer_to": None} for e in answered
    ]
    model, meta = training.train_urgency(seed_dir, extra=extra)
    return model, {
        **meta,
        "answers": len(answered),
        "answers_kept": sum(1 for e in answered if e.emergency),
    }


def router_record(example):
    """The learned router's features of a ticket, from its final values."""
    return record_from_codes(
        example.category,
        example.area,
        {"request_type": example.request_type, "channel": example.channel},
    )


def train_router(examples, base):
    """The learned router from the tickets whose lead unit was confirmed; else the active
    model's router."""
    examples = _ordered(examples)
    routed = [e for e in examples if e.unit]
    if not routed:
        router = base.router if base is not None else None
        return router, {"tickets": 0, "kept": router is not None}
    router = LearnedRouter().fit([router_record(e) for e in routed], [e.unit for e in routed])
    return router, {"tickets": len(routed), "units": len(router.classes_)}


# -- measuring --------------------------------------------------------------------------------


def figures(bundle, examples):
    """Headline figures of ``bundle`` on held-out ``examples``, each with its count; None
    where nothing is labelled.

    Categories compare at the level of the final code (truncated to ``LABEL_LEVEL``): a
    predicted 0101 is right for a final 01 and for a final 010103; top-3 counts the first
    three distinct such prefixes. Macro-F1 averages over the final codes present. Units: the
    learned router's top 3 given the ticket's final category, area, type and channel."""
    examples = _ordered(examples)
    result = {}
    result.update(_category_figures(bundle, [e for e in examples if e.category]))
    result.update(_request_type_figures(bundle, [e for e in examples if e.request_type]))
    result.update(_unit_figures(bundle, [e for e in examples if e.unit]))
    result.update(_emergency_figures(bundle, [e for e in examples if e.emergency is not None]))
    return result


def _category_figures(bundle, examples):
    from sklearn.metrics import f1_score

    out = {
        "n_category": len(examples),
        "category_macro_f1": None,
        "category_accuracy": None,
        "category_top3": None,
    }
    if not examples:
        return out
    model = bundle.category
    classes = model.classes_
    truths, firsts, top3 = [], [], 0
    for example, row in zip(examples, model.probabilities([e.text for e in examples]), strict=True):
        truth = label_code(example.category)
        ranked = []
        for index in np.argsort(-row, kind="stable"):
            prefix = classes[index][: len(truth)]
            if prefix not in ranked:
                ranked.append(prefix)
            if len(ranked) == 3:
                break
        truths.append(truth)
        firsts.append(ranked[0])
        top3 += truth in ranked
    present = sorted(set(truths))
    out["category_macro_f1"] = _round(
        f1_score(truths, firsts, labels=present, average="macro", zero_division=0)
    )
    right = sum(t == p for t, p in zip(truths, firsts, strict=True))
    out["category_accuracy"] = _round(right / len(examples))
    out["category_top3"] = _round(top3 / len(examples))
    return out


def _request_type_figures(bundle, examples):
    out = {"n_request_type": len(examples), "request_type_accuracy": None}
    if not examples:
        return out
    texts = [e.text for e in examples]
    if bundle.request_type is not None:
        predicted = bundle.request_type.predict(texts)
    else:
        predicted = [request_type_by_rules(t) for t in texts]
    right = sum(p == e.request_type for p, e in zip(predicted, examples, strict=True))
    out["request_type_accuracy"] = _round(right / len(examples))
    return out


def _unit_figures(bundle, examples):
    out = {"n_unit": len(examples), "unit_top3": None}
    router = getattr(bundle, "router", None)
    if not examples or router is None:
        return out
    hits = sum(e.unit in [s.unit for s in router.suggest(router_record(e), k=3)] for e in examples)
    out["unit_top3"] = _round(hits / len(examples))
    return out


def _emergency_figures(bundle, examples):
    positives = [e for e in examples if e.emergency]
    negatives = [e for e in examples if not e.emergency]
    out = {
        "n_emergency": len(positives),
        "n_not_emergency": len(negatives),
        "emergency_recall": None,
        "emergency_false_alarm_rate": None,
    }

    def raised(e):
        return urgency(e.text, model=getattr(bundle, "urgency", None)).tier == "emergency"

    if positives:
        out["emergency_recall"] = _round(sum(map(raised, positives)) / len(positives))
    if negatives:
        out["emergency_false_alarm_rate"] = _round(sum(map(raised, negatives)) / len(negatives))
    return out


def _round(value):
    return round(float(value), 4)


# -- the gate ---------------------------------------------------------------------------------


def gate(candidate, active, tolerance):
    """Promote only if no headline figure of ``candidate`` is worse than ``active``'s by more
    than ``tolerance`` (both ``figures`` dicts; ``active`` None: no active model, promote).
    A figure missing on either side, or measured on fewer than ``MIN_CASES`` tickets, is
    reported but does not decide."""
    if active is None:
        return Decision(True, "当前没有启用的模型，新模型直接启用", [])
    checks, failures, gains = [], [], []
    for key, count_key, name in HEADLINE:
        new, old = candidate.get(key), active.get(key)
        n = candidate.get(count_key) or 0
        check = {
            "figure": key,
            "name": name,
            "candidate": new,
            "active": old,
            "n": n,
            "gating": new is not None and old is not None and n >= MIN_CASES,
        }
        if new is None or old is None:
            check["passed"], check["note"] = True, "未测"
        else:
            drop = round(new - old if key in LOWER_IS_BETTER else old - new, 4)
            check["change"] = round(new - old, 4)
            check["passed"] = not check["gating"] or drop <= tolerance + 1e-9
            if n < MIN_CASES:
                check["note"] = f"留出样本仅 {n} 条，不作判定"
            if check["gating"] and drop > tolerance + 1e-9:
                worse = "上升" if key in LOWER_IS_BETTER else "下降"
                failures.append(f"{name} {worse} {drop:.3f}，超过允许的 {tolerance:g}")
            elif check["gating"] and drop < 0:
                gains.append(f"{name} {old:.3f} → {new:.3f}")
        checks.append(check)
    if failures:
        return Decision(False, "未启用：" + "；".join(failures), checks)
    if not any(c["gating"] for c in checks):
        return Decision(False, "未启用：留出样本不足以比较任何一项指标，保留为候选", checks)
    reason = f"各项指标下降均未超过允许的 {tolerance:g}"
    if gains:
        reason += "；提升：" + "，".join(gains)
    return Decision(True, reason, checks)


# -- the loop ---------------------------------------------------------------------------------


def retrain(
    examples,
    active_bundle,
    *,
    now,
    policy,
    unlabelled=(),
    active_until=None,
    seed_dir=SEED_DIR,
):
    """Split by time, train a probe, measure probe and active model on the holdout, gate,
    then refit the candidate on all the examples. See the module docstring.

    ``active_until``: the newest ticket the active model trained on (its meta's ``to``); the
    holdout starts after it, so that neither model has seen the tickets it is judged on
    (retraining weekly with two weeks held out, the active model would otherwise know the
    older week). ``unlabelled``: texts, or ``Example``s whose texts shape the vocabulary
    (the probe's only those received before the holdout)."""
    train, holdout = split(examples, now, policy)
    if active_until is not None and holdout and holdout[0].received_at <= active_until:
        cutoff = active_until
        train = train + [e for e in holdout if e.received_at <= cutoff]
        holdout = [e for e in holdout if e.received_at > cutoff]
    holdout_start = now - timedelta(days=policy.holdout_days)
    if active_until is not None:
        holdout_start = max(holdout_start, active_until)
    confirmed_train = [e for e in train if e.confirmed]
    confirmed_holdout = [e for e in holdout if e.confirmed]
    span = {
        "holdout": _span(confirmed_holdout, holdout_start, now),
        "training": {
            **_span(confirmed_train, None, holdout_start),
            "seed_weight": policy.seed_weight,
            "label_level": LABEL_LEVEL,
        },
        "tolerance": policy.tolerance,
    }
    if len(confirmed_train) < policy.min_training:
        return Outcome(
            SKIPPED,
            f"训练样本不足：留出期（最近 {policy.holdout_days} 天）之前只有 "
            f"{len(confirmed_train)} 张已确认工单，至少需要 {policy.min_training} 张",
            figures=span,
        )
    if len(confirmed_holdout) < policy.min_holdout:
        return Outcome(
            SKIPPED,
            f"评估样本不足：最近 {policy.holdout_days} 天中在用模型未学过的已确认工单只有 "
            f"{len(confirmed_holdout)} 张，至少需要 {policy.min_holdout} 张",
            figures=span,
        )
    probe, _ = train_candidate(
        train,
        base=active_bundle,
        unlabelled=_texts(unlabelled, before=holdout_start),
        policy=policy,
        seed_dir=seed_dir,
    )
    candidate_figures = figures(probe, confirmed_holdout)
    active_figures = figures(active_bundle, confirmed_holdout) if active_bundle else None
    decision = gate(candidate_figures, active_figures, policy.tolerance)
    bundle, meta = train_candidate(
        train + holdout,
        base=active_bundle,
        unlabelled=_texts(unlabelled),
        policy=policy,
        seed_dir=seed_dir,
    )
    result = {
        "candidate": candidate_figures,
        "active": active_figures,
        **span,
        "checks": decision.checks,
    }
    meta = {
        **meta,
        "source": "retrain",
        "probe_figures": candidate_figures,
        "holdout": span["holdout"],
        "training": span["training"],
    }
    status = PROMOTED if decision.promote else KEPT
    return Outcome(status, decision.reason, bundle, meta, result)


def _texts(unlabelled, before=None):
    """The texts of ``unlabelled`` (texts or ``Example``s); with ``before``, an
    ``Example`` received later is left out."""
    return [
        item.text if isinstance(item, Example) else item
        for item in unlabelled
        if before is None or not isinstance(item, Example) or item.received_at <= before
    ]


def _span(examples, start, end):
    """{"from", "to", "tickets"} of a part: ``start`` (or its first ticket) to ``end``."""
    if start is None and examples:
        start = examples[0].received_at
    return {
        "from": start.isoformat() if start else None,
        "to": end.isoformat(),
        "tickets": len(examples),
    }
