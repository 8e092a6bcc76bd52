"""Reading ``seed_data/``: the category tree, the place names and the corpus (no scikit-learn)."""

import json
from pathlib import Path

SEED_DIR = Path(__file__).resolve().parent.parent / "seed_data"


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def category_tree(seed_dir=SEED_DIR):
    """{code: (name, parent code)} of every category in ``categories.json``."""
    tree = {}

    def walk(nodes, parent):
        for node in nodes:
            tree[node["code"]] = (node["name"], parent)
            walk(node.get("children", []), node["code"])

    walk(read_json(Path(seed_dir) / "categories.json"), None)
    return tree


def user_words(seed_dir=SEED_DIR):
    """Place names, roads, landmarks and category terms for jieba's user dictionary."""
    seed_dir = Path(seed_dir)
    words = set()
    for district in read_json(seed_dir / "areas.json")["districts"]:
        words.update([district["name"], *district.get("aliases", [])])
        for street in district["streets"]:
            words.update([street["name"], *street.get("aliases", [])])
            for community in street["communities"]:
                words.update([community["name"], *community.get("aliases", [])])
    calls = read_json(seed_dir / "calls.json")
    for names in list(calls["roads"].values()) + list(calls["landmarks"].values()):
        words.update(names)
    words.update(name for name, _ in category_tree(seed_dir).values())
    return sorted(words)


# -- the emergency test list ------------------------------------------------------------------

#: Halves of the urgency data: models learn and thresholds are tuned on "dev" only; "eval" is
#: for measuring (``bench/urgency.py``). See ``seed_data/corpus/README.md``.
SPLITS = ("dev", "eval")


def urgency_cases(split, seed_dir=SEED_DIR):
    """Labelled urgency cases of one half, as dicts ``{text, emergency, transfer_to, source}``.

    ``source`` says which set a case belongs to: ``"cases"`` (the written emergency test list:
    emergencies and their look-alikes) or ``"ordinary"`` (everyday calls, none an emergency).

    - ``corpus/urgency_cases.jsonl``: the ``split`` field of each line;
    - ``corpus/urgency_training.jsonl``: development half only (calls written later, to train
      on; the evaluation half stays as it was);
    - ``corpus/emergency_cases.jsonl``: even lines (0, 2, 4 …) dev, odd lines eval;
    - ordinary calls: ``corpus/messages.jsonl`` and the call templates of ``calls.json`` (with a
      road for ``{place}``), even lines dev, odd lines eval, leaving out the few marked as an
      emergency (they have no transfer line and are no "ordinary" call).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    seed_dir = Path(seed_dir)
    want = SPLITS.index(split)
    rows = []
    for row in read_jsonl(seed_dir / "corpus" / "urgency_cases.jsonl"):
        if row["split"] == split:
            rows.append(_case(row["text"], row["emergency"], row.get("transfer_to"), "cases"))
    if split == "dev":
        for row in read_jsonl(seed_dir / "corpus" / "urgency_training.jsonl"):
            rows.append(_case(row["text"], row["emergency"], row.get("transfer_to"), "cases"))
    for i, row in enumerate(read_jsonl(seed_dir / "corpus" / "emergency_cases.jsonl")):
        if i % 2 == want:
            rows.append(_case(row["text"], row["emergency"], row.get("transfer_to"), "cases"))
    for i, text in enumerate(ordinary_calls(seed_dir)):
        if i % 2 == want:
            rows.append(_case(text, False, None, "ordinary"))
    return rows


def ordinary_calls(seed_dir=SEED_DIR):
    """Everyday calls of the seed corpus, in a fixed order: the messages, then the templates."""
    seed_dir = Path(seed_dir)
    texts = [
        m["text"]
        for m in read_jsonl(seed_dir / "corpus" / "messages.jsonl")
        if m["urgency"] != "emergency"
    ]
    calls = read_json(seed_dir / "calls.json")
    roads = sorted({road for names in calls["roads"].values() for road in names})
    texts += [
        t["content"].replace("{place}", roads[i % len(roads)])
        for i, t in enumerate(calls["templates"])
        if t["urgency"] != "emergency"
    ]
    return texts


# -- the request-type test list ---------------------------------------------------------------


def request_type_cases(split, seed_dir=SEED_DIR):
    """Labelled phone-style calls of one half of ``corpus/request_type_cases.jsonl``, as dicts
    ``{text, request_type, hard}`` in file order: the request-type model learns from the "dev"
    half (with the seed messages); the "eval" half is for measuring only
    (``bench/request_type.py``). Each line's ``split`` field was fixed when the list was
    written (see ``seed_data/corpus/README.md``)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    return [
        {"text": row["text"], "request_type": row["request_type"], "hard": row["hard"]}
        for row in read_jsonl(Path(seed_dir) / "corpus" / "request_type_cases.jsonl")
        if row["split"] == split
    ]


def _case(text, emergency, transfer_to, source):
    return {
        "text": text,
        "emergency": bool(emergency),
        "transfer_to": transfer_to if emergency else None,
        "source": source,
    }
