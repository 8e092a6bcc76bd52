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
