"""The category model: complaint text → top categories with calibrated probabilities.

Features are TF-IDF over jieba words (with the city's user dictionary) and over character
1–3-grams, whose vocabularies and IDF may also be fitted on unlabelled text. Category
descriptions (the names in the category tree) join the training data as short labelled
documents, which gives rare subjects a vocabulary before the first ticket about them. A
class-balanced linear SVM is calibrated with sigmoid scaling (cross-validated), so the
probabilities can drive the abstain threshold.

Measured choices (``bench/classify.py``, Teddy Cup history split): character n-grams next to
words +0.04 macro-F1, balanced class weights +0.02, category descriptions +0.03; self-training
on the unlabelled messages and LSA features did not help and are left out.

Later choices were made by cross-validation on the 457 training rows alone
(``bench/category_selection.py``; the evaluation set is read only after): a city's model also
learns from the seed corpus relabelled to its categories, each message weighing
``training.SEED_WEIGHT`` (0.2) of a ticket (``training.train_category``): 5-fold macro-F1 0.857
→ 0.866 (分类结果, read once afterwards: 0.794 → 0.796, still short of 0.85). Measured
the same way, with the vocabulary fitted once on all texts to be quick, and left out:
self-training on 附件3/附件4 with the predictions above 0.5 or 0.7 probability at weight 0.3
(−0.03), character 1–2 or 2–4-grams instead of 1–3, word bigrams, C 0.1 or 1
instead of 0.3, weight 0.5 or 2 for the descriptions (all within ±0.006 of the chosen
setting, noise for 457 rows).
"""

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from classifier.normalize import normalize


@dataclass
class CategoryPrediction:
    #: [(label, probability), …] best first.
    top: list
    #: True when the best probability is under the threshold: a person should choose.
    abstain: bool

    @property
    def label(self):
        return None if self.abstain else self.top[0][0]


class TfidfFeatures:
    """A fitted sublinear, L2-normalised TF-IDF (words or character n-grams) as plain data.

    Made from an sklearn ``TfidfVectorizer`` after fitting; serving needs neither sklearn nor
    its per-call validation (one text: 0.2 ms instead of 0.7 ms), and the model file and the
    server's memory hold only the vocabulary and the IDF weights."""

    def __init__(self, vocabulary, idf, *, tokenizer=None, ngram_range=(1, 1), lowercase=True):
        self.vocabulary = vocabulary
        self.idf = np.asarray(idf, dtype=np.float32)
        #: Word features use this callable; character features when it is None.
        self.tokenizer = tokenizer
        self.ngram_range = tuple(ngram_range)
        self.lowercase = lowercase

    @classmethod
    def from_vectorizer(cls, vectorizer):
        if not (vectorizer.sublinear_tf and vectorizer.norm == "l2" and vectorizer.use_idf):
            raise ValueError("only sublinear, L2-normalised TF-IDF is supported")
        char = vectorizer.analyzer == "char"
        return cls(
            {term: int(index) for term, index in vectorizer.vocabulary_.items()},
            vectorizer.idf_,
            tokenizer=None if char else vectorizer.tokenizer,
            ngram_range=vectorizer.ngram_range,
            lowercase=vectorizer.lowercase,
        )

    def row(self, text):
        """(columns, weights) of one text's TF-IDF vector, without building a matrix."""
        _, columns, weights = self.rows([text])
        return columns, weights

    def transform(self, texts):
        indptr, columns, weights = self.rows(texts)
        return sp.csr_matrix((weights, columns, indptr), shape=(len(texts), len(self.idf)))

    def rows(self, texts):
        """(indptr, columns, weights) of the texts' TF-IDF vectors, as in a CSR matrix.

        Within a row the columns come in the order their terms first occur in the text (words
        in order; character 1-grams, then 2-grams, then 3-grams, as sklearn makes them), and
        each row's norm is its own dot product, so every number is the one a per-text loop over
        a ``Counter`` gives, bit for bit (a matrix product adds a row's terms in this order).
        Character n-grams of a batch are counted with numpy; of one text (intake), by that
        ``Counter``, which the next model reading the same text finds cached."""
        if self.tokenizer is None and self.ngram_range[1] <= _CHAR_GRAM_MAX and len(texts) > 1:
            owners, columns, counts = self._char_counts(texts)
        else:
            owners, columns, counts = self._term_counts(texts)
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(np.bincount(owners, minlength=len(texts)), out=indptr[1:])
        weights = 1.0 + np.log(counts.astype(np.float32))
        weights *= self.idf[columns]
        bounds = indptr.tolist()
        norms = np.ones(len(texts), dtype=np.float32)
        for i in range(len(texts)):
            row = weights[bounds[i] : bounds[i + 1]]
            norm = np.sqrt(row @ row)
            if norm > 0:
                norms[i] = norm
        weights /= np.repeat(norms, np.diff(indptr))
        return indptr, columns, weights

    def _term_counts(self, texts):
        """(text index, column, count) of each vocabulary term of each text, in order."""
        vocabulary = self.vocabulary
        owners, columns, counts = [], [], []
        for i, text in enumerate(texts):
            if self.tokenizer is None:
                terms = _char_gram_counts(text, self.ngram_range, self.lowercase)
            else:
                terms = Counter(self.tokenizer(text.lower() if self.lowercase else text))
            row = {}
            for term, n in terms.items():
                index = vocabulary.get(term)
                if index is not None:
                    row[index] = n
            owners += [i] * len(row)
            columns += row
            counts += row.values()
        return (
            np.array(owners, dtype=np.int64),
            np.array(columns, dtype=np.int32),
            np.array(counts, dtype=np.int64),
        )

    def _char_counts(self, texts):
        """``_term_counts`` of character n-grams, a block of texts at a time."""
        if getattr(self, "_index", None) is None:  # made on first use, not saved
            self._index = _GramIndex(self.vocabulary)
        blocks = [
            self._char_block(texts[start : start + _BLOCK], start)
            for start in range(0, len(texts), _BLOCK)
        ]
        if not blocks:
            return np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64)
        return tuple(np.concatenate(parts) for parts in zip(*blocks, strict=True))

    def _char_block(self, texts, offset):
        """(text index + ``offset``, column, count) for a few texts at once: each n-gram is an
        integer (its code points side by side), looked up in a hash table of the vocabulary."""
        owners, grams = _char_gram_keys(texts, self.ngram_range, self.lowercase)
        columns = self._index.columns(grams)
        known = columns >= 0
        owners, columns = owners[known], columns[known]
        # One entry per (text, column), counted, in the order of first occurrence in the text:
        # sorted by (text, column, position), each pair's occurrences come together, first first.
        size = len(owners)
        pairs, positions = np.divmod(
            np.sort((owners * len(self.idf) + columns) * size + np.arange(size)), size
        )
        starts = np.flatnonzero(np.diff(pairs, prepend=-1))
        counts = np.diff(starts, append=size)
        first = positions[starts]
        order = np.argsort(owners[first] * size + first)
        first, counts = first[order], counts[order]
        return owners[first] + offset, columns[first], counts

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_index", None)
        return state


def tfidf(vectorizer, texts):
    """``vectorizer.transform(texts)`` the fast way (see ``TfidfFeatures``)."""
    return TfidfFeatures.from_vectorizer(vectorizer).transform(texts)


@lru_cache(maxsize=8)
def _char_gram_counts(text, ngram_range, lowercase):
    """Counts of the character n-grams sklearn's char analyzer makes, in its order (cached: at
    intake the category, request-type and urgency models look at the same text). Read-only."""
    text = _WHITESPACE.sub(" ", text.lower() if lowercase else text)
    low, high = ngram_range
    return Counter(text[i : i + n] for n in range(low, high + 1) for i in range(len(text) - n + 1))


_WHITESPACE = re.compile(r"\s\s+")

#: Texts whose character n-grams are counted together (keys stay far from int64's limit).
_BLOCK = 256
#: An n-gram key holds up to this many characters of 21 bits (a code point + 1; 0: none).
_CHAR_GRAM_MAX = 3
_BITS = 21


class _GramIndex:
    """Character n-gram keys → vocabulary columns, for a whole array of keys at once: an
    open-addressing hash table (Fibonacci hashing, linear probing) in two numpy arrays."""

    def __init__(self, vocabulary):
        terms = list(vocabulary)
        columns = np.fromiter(vocabulary.values(), np.int32, len(terms))
        keys = _term_keys(terms)
        self.bits = max(4, (2 * len(terms)).bit_length())  # at most a quarter full
        self.keys = np.zeros(1 << self.bits, dtype=np.int64)  # 0: an empty slot
        self.values = np.zeros(1 << self.bits, dtype=np.int32)
        slots = self._slots(keys)
        waiting = np.arange(len(keys))
        while len(waiting):
            # Each free slot takes the first key that wants it; the others try the next slot.
            free = waiting[self.keys[slots[waiting]] == 0]
            _, first = np.unique(slots[free], return_index=True)
            placed = free[first]
            self.keys[slots[placed]] = keys[placed]
            self.values[slots[placed]] = columns[placed]
            waiting = waiting[self.keys[slots[waiting]] != keys[waiting]]
            slots[waiting] = (slots[waiting] + 1) & ((1 << self.bits) - 1)

    def columns(self, keys):
        """The column of each key, -1 where it is not in the vocabulary."""
        slots = self._slots(keys)
        found = self.keys[slots]
        hit = found == keys
        columns = np.where(hit, self.values[slots], np.int32(-1))
        todo = np.flatnonzero((found != 0) & ~hit)  # the slot holds another key: probe on
        slots = slots[todo]
        while len(todo):
            slots = (slots + 1) & ((1 << self.bits) - 1)
            found = self.keys[slots]
            hit = found == keys[todo]
            columns[todo[hit]] = self.values[slots[hit]]
            on = (found != 0) & ~hit
            todo, slots = todo[on], slots[on]
        return columns

    def _slots(self, keys):
        mixed = keys.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        return (mixed >> np.uint64(64 - self.bits)).astype(np.int64)


def _term_keys(terms):
    """The key of each vocabulary term (one to ``_CHAR_GRAM_MAX`` characters)."""
    lengths = np.fromiter(map(len, terms), np.int64, len(terms))
    padded = "".join(term.ljust(_CHAR_GRAM_MAX, "\0") for term in terms)
    codes = np.frombuffer(padded.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    codes = codes.astype(np.int64).reshape(len(terms), _CHAR_GRAM_MAX) + 1
    codes[np.arange(_CHAR_GRAM_MAX) >= lengths[:, None]] = 0
    keys = np.zeros(len(terms), dtype=np.int64)
    for j in range(_CHAR_GRAM_MAX):
        keys |= codes[:, j] << (_BITS * j)
    return keys


def _char_gram_keys(texts, ngram_range, lowercase):
    """(text index, key) of every character n-gram of the texts (``_char_grams``), in the order
    of n, then of position: within one text, sklearn's order."""
    texts = [_WHITESPACE.sub(" ", t.lower() if lowercase else t) for t in texts]
    lengths = np.fromiter(map(len, texts), np.int64, len(texts))
    text = "".join(texts).encode("utf-32-le", "surrogatepass")
    codes = np.frombuffer(text, dtype=np.uint32).astype(np.int64) + 1
    total = len(codes)
    owners = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
    # Characters from each position to the end of its text: an n-gram must fit in its text.
    left = np.repeat(np.cumsum(lengths), lengths) - np.arange(total, dtype=np.int64)
    low, high = ngram_range
    codes = np.concatenate([codes, np.zeros(high, dtype=np.int64)])
    all_owners, all_keys = [], []
    key = np.zeros(total, dtype=np.int64)
    for n in range(1, high + 1):
        key |= codes[n - 1 : n - 1 + total] << (_BITS * (n - 1))
        if n >= low:
            fits = left >= n
            all_owners.append(owners[fits])
            all_keys.append(key[fits])
    return np.concatenate(all_owners), np.concatenate(all_keys)


class LinearScores:
    """A fitted linear SVM (optionally sigmoid-calibrated per class) as plain arrays: one
    sparse-dense product per batch instead of sklearn's call per class (95 classes: 7 ms)."""

    def __init__(self, estimator):
        from sklearn.calibration import CalibratedClassifierCV

        if isinstance(estimator, CalibratedClassifierCV):
            (calibrated,) = estimator.calibrated_classifiers_
            svm = calibrated.estimator
            self.sigmoid = (
                np.array([c.a_ for c in calibrated.calibrators], dtype=np.float32),
                np.array([c.b_ for c in calibrated.calibrators], dtype=np.float32),
            )
        else:
            svm, self.sigmoid = estimator, None
        self.classes = [str(c) for c in svm.classes_]
        coef = svm.coef_
        if coef.shape[0] == 1:  # two classes: sklearn keeps one row for the second class
            coef = np.vstack([-coef, coef])
            intercept = np.array([-svm.intercept_[0], svm.intercept_[0]])
        else:
            intercept = svm.intercept_
        self.weights = np.ascontiguousarray(coef.T, dtype=np.float32)
        self.intercept = np.asarray(intercept, dtype=np.float32)

    def scores(self, matrix):
        return np.asarray(matrix @ self.weights) + self.intercept

    def probabilities(self, matrix):
        scores = self.scores(matrix)
        if self.sigmoid is not None:
            a, b = self.sigmoid
            p = expit(-(scores * a + b))
        else:
            p = np.exp(scores - scores.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)


class CategoryModel:
    def __init__(self, segmenter, *, C=0.3, threshold=0.35, description_weight=1.0):
        self.segmenter = segmenter
        self.C = C
        self.threshold = threshold
        self.description_weight = description_weight
        self.features = None
        self.linear = None

    @property
    def classes_(self):
        return list(self.linear.classes)

    def transform(self, normalised_texts):
        """Word and character TF-IDF side by side."""
        return sp.hstack([f.transform(normalised_texts) for f in self.features], format="csr")

    def fit(self, texts, labels, *, unlabelled=(), descriptions=(), sample_weight=None):
        """Train on ``texts``/``labels``; ``unlabelled`` texts shape the vocabulary only;
        ``descriptions`` are (text, label) pairs such as category names; ``sample_weight``
        (one per text, default 1) weighs texts against each other (the seed corpus against a
        city's own tickets)."""
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.svm import LinearSVC

        texts = [normalize(t) for t in texts]
        extra = [normalize(t) for t, _ in descriptions]
        corpus = texts + extra + [normalize(t) for t in unlabelled]
        vectorizers = [
            TfidfVectorizer(
                tokenizer=self.segmenter.cut,
                lowercase=False,
                token_pattern=None,
                sublinear_tf=True,
                min_df=2,
            ),
            TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2),
        ]
        self.features = [TfidfFeatures.from_vectorizer(v.fit(corpus)) for v in vectorizers]
        matrix = self.transform(texts + extra)
        y = np.array(list(labels) + [label for _, label in descriptions])
        own = np.ones(len(texts)) if sample_weight is None else np.asarray(sample_weight, float)
        if len(own) != len(texts):
            raise ValueError("sample_weight needs one weight per text")
        weights = np.concatenate([own, np.full(len(extra), self.description_weight)])
        folds = int(min(3, np.bincount(np.unique(y, return_inverse=True)[1]).min()))
        svm = LinearSVC(C=self.C, class_weight="balanced", random_state=0)
        if folds >= 2:
            estimator = CalibratedClassifierCV(svm, method="sigmoid", cv=folds, ensemble=False)
        else:  # too few examples of some class to calibrate: plain scores, softmaxed
            estimator = svm
        self.linear = LinearScores(estimator.fit(matrix, y, sample_weight=weights))
        return self

    def probabilities(self, texts):
        return self.linear.probabilities(self.transform([normalize(t) for t in texts]))

    def predict(self, texts, k=3):
        classes = self.linear.classes
        results = []
        for row in self.probabilities(texts):
            order = np.argsort(-row)[:k]
            top = [(classes[i], float(row[i])) for i in order]
            results.append(CategoryPrediction(top=top, abstain=top[0][1] < self.threshold))
        return results
