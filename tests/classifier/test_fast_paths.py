"""The batch paths of serving give exactly what the one-text paths they replaced gave: the same
TF-IDF rows bit for bit (hence the same scores), the same urgency, the same suggestions."""

import random
import re
from collections import Counter

import numpy as np
import pytest

from classifier import artefact, intent, seeds, text_model
from classifier.normalize import normalize
from classifier.pipeline import Suggester


@pytest.fixture(scope="module")
def bundle(models_dir):
    bundle, _ = artefact.load(models_dir, artefact.active_version(models_dir))
    return bundle


@pytest.fixture(scope="module")
def texts():
    """The seed corpus, simulated calls, emergencies and a few odd texts, normalised."""
    from server.simulate import CallGenerator

    messages = seeds.read_jsonl(seeds.SEED_DIR / "corpus" / "messages.jsonl")
    emergencies = seeds.read_jsonl(seeds.SEED_DIR / "corpus" / "emergency_cases.jsonl")
    generator = CallGenerator(random.Random(11))
    raw = (
        [f"{m.get('title', '')}。{m['text']}" for m in messages[::3]]
        + [e["text"] for e in emergencies[::2]]
        + [generator.call()["content"] for _ in range(300)]
        + ["", " ", "a", "ABC  Def\t\tghi", "𠮷野家𠮷野家的牛肉饭", "ΣΑΣ ΟΔΟΣ", "我 我 我 我"]
    )
    return [normalize(t) for t in raw]


def _reference_row(features, text):
    """``TfidfFeatures.row`` as it was: a ``Counter`` of the text's terms, one text at a time."""
    text = text.lower() if features.lowercase else text
    if features.tokenizer is None:
        text = re.sub(r"\s\s+", " ", text)
        low, high = features.ngram_range
        terms = Counter(
            text[i : i + n] for n in range(low, high + 1) for i in range(len(text) - n + 1)
        )
    else:
        terms = Counter(features.tokenizer(text))
    counts = {}
    for term, n in terms.items():
        index = features.vocabulary.get(term)
        if index is not None:
            counts[index] = n
    columns = np.fromiter(counts, dtype=np.int32, count=len(counts))
    weights = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float32, count=len(counts)))
    weights *= features.idf[columns]
    norm = np.sqrt(weights @ weights)
    if norm > 0:
        weights /= norm
    return columns, weights


def _all_features(bundle):
    return {
        "category words": bundle.category.features[0],
        "category characters": bundle.category.features[1],
        "request type": bundle.request_type.features,
        "urgency": bundle.urgency.features,
    }


@pytest.mark.parametrize("batch", [1, 7, 300])
def test_tfidf_rows_equal_one_text_at_a_time_bit_for_bit(bundle, texts, batch):
    assert len(texts) > 900
    for name, features in _all_features(bundle).items():
        different = []
        for start in range(0, len(texts), batch):
            chunk = texts[start : start + batch]
            indptr, columns, weights = features.rows(chunk)
            matrix = features.transform(chunk)
            assert np.array_equal(matrix.indptr, indptr)
            for i, text in enumerate(chunk):
                expected_columns, expected_weights = _reference_row(features, text)
                row = slice(indptr[i], indptr[i + 1])
                if not (
                    np.array_equal(columns[row], expected_columns)  # same order too
                    and weights.dtype == expected_weights.dtype
                    and np.array_equal(
                        weights[row].view(np.uint32), expected_weights.view(np.uint32)
                    )
                    and np.array_equal(matrix.indices[row], expected_columns)
                    and np.array_equal(matrix.data[row], expected_weights)
                ):
                    different.append(text)
        assert different == [], name


def test_the_category_scores_are_the_same_in_any_batch(bundle, texts):
    alone = np.vstack([bundle.category.probabilities([t]) for t in texts[:200]])
    together = bundle.category.probabilities(texts[:200])
    assert np.array_equal(alone, together)


class _OneSlot(text_model._GramIndex):
    """Every key hashes to the same slot: only probing finds them."""

    def _slots(self, keys):
        return np.zeros(len(keys), dtype=np.int64)


@pytest.mark.parametrize("index_class", [text_model._GramIndex, _OneSlot])
def test_gram_index_finds_every_term_and_nothing_else(index_class):
    rng = random.Random(1)
    alphabet = "abc路灯坏了 𠮷"
    terms = sorted({"".join(rng.choices(alphabet, k=rng.randint(1, 3))) for _ in range(300)})
    vocabulary = {term: i * 7 for i, term in enumerate(terms)}
    index = index_class(vocabulary)
    queries = terms + ["d", "灯亮", "x", "路路路", "\0", "a\0"]
    found = index.columns(text_model._term_keys(queries))
    assert found.tolist() == [vocabulary.get(q, -1) for q in queries]
    assert len(set(text_model._term_keys(terms).tolist())) == len(terms)
    assert index_class({}).columns(text_model._term_keys(["a"])).tolist() == [-1]


def test_batch_urgency_equals_one_by_one(bundle, texts):
    utility = [i % 5 == 0 for i in range(len(texts))]
    batch = intent.urgencies(texts, utility_categories=utility, model=bundle.urgency)
    alone = [
        intent.urgency(t, utility_category=u, model=bundle.urgency)
        for t, u in zip(texts, utility, strict=True)
    ]
    assert batch == alone
    assert sum(u.tier == "emergency" for u in batch) >= 100
    on_hit, alone_p = bundle.urgency.probabilities(texts, one_by_one=True)
    for i, text in enumerate(texts[:300]):
        one = bundle.urgency.probabilities([text])
        assert (on_hit[i], alone_p[i]) == (one[0][0], one[1][0])
    rules_only = intent.urgencies(texts, utility_categories=utility)
    assert rules_only == [
        intent.urgency(t, utility_category=u) for t, u in zip(texts, utility, strict=True)
    ]
    assert intent.urgencies([], model=bundle.urgency) == []


def test_suggest_many_equals_suggest_one_by_one(bundle, texts):
    suggester = Suggester(bundle)
    assert suggester.suggest_many(texts[:400]) == [suggester.suggest(t) for t in texts[:400]]
