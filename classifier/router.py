"""Routing: which unit (承办单位) should handle a ticket.

Three pieces, all plain data in and plain results out (no database, no Flask):

``CatalogueRouter``
    The dispatch catalogue (派单目录) as a list of rules ``{"category", "area", "unit"}``, with
    the semantics of ``dispatch.routing.catalogue_unit``: a rule on a category covers its
    descendants (code prefix), a rule without an area covers the whole city, the most specific
    category wins and then the most specific area.

``LearnedRouter``
    Learns from handled tickets which unit takes a ticket with given categorical features
    (category levels, area levels, request type, channel …). Two estimators are blended
    (``blend`` = weight of the first):

    * a hierarchical back-off of conditional unit frequencies along a chain of feature
      combinations, most specific first (category × street → category → level-2 category →
      level-1 category → everything); each level's counts are smoothed towards the next, less
      specific level with a Dirichlet prior, ``P_k = (c_k + β·P_{k+1}) / (n_k + β)``, so a
      context seen 200 times speaks for itself and one seen twice leans on its parents; values
      never seen simply drop out of the chain;
    * a multinomial logistic regression over one-hot features (every category level, community,
      street, district, request type, channel) and the category × street cross, L2-regularised,
      plus *locality* weights: units whose history sits in one street (community) are that
      street's (community's) units, and shared weights learn "this kind of ticket goes to the
      local unit", which carries over to streets where a category was never seen. It is fitted
      by a small L-BFGS written here (scikit-learn's solver took ten times longer).

    Confidences are the blended probabilities: all units' sum to 1, the top-k's to at most 1;
    on held-out data the top-1 confidence is close to its accuracy (Pingshan: ECE ≈ 0.04).
    ``fit`` takes optional ``sample_weight`` (e.g. ``recency_weights``). ``suggest`` costs a few
    dict look-ups and one small matrix sum: ~50 µs with 120 units. Choices were made on
    validation folds of real data (``bench/classify_routing.py``, which also explains why unit
    *codes*, not names, must be the labels when units get renamed). There some thirty
    alternatives — recency half-lives, other blend weights and blend rules, regularisation,
    smoothing, community and channel levels in the chain or as crosses, a unit's recent share
    at the street or community — all came out within noise of these settings or worse (the
    list with figures is in that module's docstring).

``Router``
    The catalogue first, then the learned suggestions; see ``Router`` for the rule when the
    learned router strongly disagrees with the catalogue.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

#: Back-off chain of the learned router, most specific first. A level whose features are not all
#: present in a record is skipped, and so is a combination never seen in training. (Longer
#: chains, with community and channel levels, did worse on validation: their contexts are too
#: thin and the regression covers those features better.)
DEFAULT_BACKOFF: tuple[tuple[str, ...], ...] = (
    ("category", "street"),
    ("category", "district"),
    ("category",),
    ("category_2",),
    ("category_1",),
    (),
)

#: Single features of the regression.
DEFAULT_FEATURES: tuple[str, ...] = (
    "category",
    "category_2",
    "category_1",
    "area",
    "street",
    "district",
    "request_type",
    "channel",
)

#: Feature crosses of the regression. (More crosses — category × community, × channel, level-2
#: category × street — overfitted on validation.)
DEFAULT_CROSSES: tuple[tuple[str, ...], ...] = (
    ("category", "street"),
    ("category", "district"),
)

#: Area features whose local units the regression learns to prefer (see ``LearnedRouter``).
DEFAULT_LOCALITY: tuple[str, ...] = ("street", "area")

#: Per value of which features the "goes to the local unit" weights are learned.
DEFAULT_LOCALITY_CONDITIONS: tuple[tuple[str, ...], ...] = (
    (),
    ("category_1",),
    ("category_2",),
    ("category",),
)

CATALOGUE_REASON = "派单目录规则"


class Suggestion(NamedTuple):
    """One suggested unit: its code, a confidence in [0, 1] and a reason shown to the agent."""

    unit: Any
    confidence: float
    reason: str


# --------------------------------------------------------------------------------------------
# Catalogue


class CatalogueRouter:
    """The dispatch catalogue: ``lookup(category_code, area_code)`` → unit code or None.

    ``rules`` are mappings ``{"category": code, "area": code or None, "unit": unit_code}``; a rule
    with ``"active": False`` is ignored (the database ignores rules of inactive units). The
    rules are those in force on one day, one per category and area (the application passes
    today's, ``hotline.suggestions.reference_data``); two naming different units for the same
    category and area are refused.
    """

    def __init__(self, rules: Iterable[Mapping[str, Any]]):
        self._rules: dict[tuple[str, str], Any] = {}
        category_lengths: set[int] = set()
        area_lengths: set[int] = set()
        for rule in rules:
            if not rule.get("active", True):
                continue
            category = str(rule["category"])
            area = rule.get("area")
            area = "" if area in (None, "") else str(area)
            if not category:
                raise ValueError("a catalogue rule needs a category code")
            key = (category, area)
            if key in self._rules and self._rules[key] != rule["unit"]:
                raise ValueError(
                    f"two catalogue rules for category {category!r} and area {area or None!r}"
                )
            self._rules[key] = rule["unit"]
            category_lengths.add(len(category))
            area_lengths.add(len(area))
        # Most specific first; "" (no area) comes last.
        self._category_lengths = sorted(category_lengths, reverse=True)
        self._area_lengths = sorted(area_lengths, reverse=True)

    def __len__(self):
        return len(self._rules)

    def lookup(self, category_code: str | None, area_code: str | None = None):
        """The unit for ``category_code`` at ``area_code`` (either may be None), or None."""
        if not category_code:
            return None
        area_code = area_code or ""
        rules = self._rules
        for n in self._category_lengths:
            if n > len(category_code):
                continue
            category = category_code[:n]
            for m in self._area_lengths:
                if m > len(area_code):
                    continue
                unit = rules.get((category, area_code[:m]))
                if unit is not None:
                    return unit
        return None


# --------------------------------------------------------------------------------------------
# Learned router


def record_from_codes(
    category_code: str | None, area_code: str | None, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A learned-router record from hierarchical codes (category ``01``/``0101``/``010101``,
    area 6/9/12/15 digits), plus ``extra`` features (request type, channel …).

    Values in ``extra`` win over the derived ones.
    """
    record: dict[str, Any] = {}
    if category_code:
        record["category"] = category_code
        record["category_1"] = category_code[:2]
        if len(category_code) >= 4:
            record["category_2"] = category_code[:4]
    if area_code:
        record["area"] = area_code
        if len(area_code) >= 6:
            record["district"] = area_code[:6]
        if len(area_code) >= 9:
            record["street"] = area_code[:9]
    if extra:
        record.update({key: value for key, value in extra.items() if value not in (None, "")})
    return record


def recency_weights(times: Sequence[float], half_life: float) -> np.ndarray:
    """Sample weights halving every ``half_life`` (same unit as ``times``) before the latest."""
    times = np.asarray(times, dtype=float)
    if len(times) == 0:
        return np.ones(0)
    return np.power(0.5, (times.max() - times) / half_life)


def _present(value) -> bool:
    return value is not None and value != ""


class LearnedRouter:
    """Learns from history which unit handles a ticket; see the module docstring.

    Parameters:
        backoff: back-off chain, most specific feature combination first.
        features, crosses: single features and feature crosses of the logistic regression.
        locality: area features (e.g. ``"street"``) for which each unit's *home* is inferred
            from history (a unit with ≥ ``home_share`` of its ≥ ``home_min`` tickets in one
            street is that street's unit). The regression then also learns shared weights
            "this kind of ticket goes to the local unit of its street", per value of each
            ``locality_conditions`` feature combination (``()`` = for any ticket), which carries
            over to streets where the combination was never seen.
        smoothing: Dirichlet prior strength β of the back-off (in weighted tickets).
        C: inverse L2 strength of the logistic regression.
        blend: weight of the back-off in the blend (1 = back-off only, 0 = regression only).
        max_iter: L-BFGS iterations of the logistic regression.
    """

    def __init__(
        self,
        backoff: Sequence[Sequence[str]] = DEFAULT_BACKOFF,
        features: Sequence[str] = DEFAULT_FEATURES,
        crosses: Sequence[Sequence[str]] = DEFAULT_CROSSES,
        locality: Sequence[str] = DEFAULT_LOCALITY,
        locality_conditions: Sequence[Sequence[str]] = DEFAULT_LOCALITY_CONDITIONS,
        home_share: float = 0.8,
        home_min: int = 3,
        smoothing: float = 5.0,
        C: float = 0.5,
        blend: float = 0.3,
        max_iter: int = 150,
    ):
        if not 0.0 <= blend <= 1.0:
            raise ValueError("blend must be within [0, 1]")
        self.backoff = tuple(tuple(level) for level in backoff)
        if () not in self.backoff:
            self.backoff = self.backoff + ((),)
        self.features = tuple(features)
        self.crosses = tuple(tuple(cross) for cross in crosses)
        self.locality = tuple(locality)
        self.locality_conditions = tuple(tuple(c) for c in locality_conditions)
        self.home_share = float(home_share)
        self.home_min = int(home_min)
        self.smoothing = float(smoothing)
        self.C = float(C)
        self.blend = float(blend)
        self.max_iter = int(max_iter)
        self.classes_: list = []
        self.n_records_ = 0

    # ---- fitting ---------------------------------------------------------------------------

    def fit(self, records: Sequence[Mapping[str, Any]], units: Sequence, sample_weight=None):
        """Learn from ``records`` (feature dicts) and the ``units`` that handled them.

        ``sample_weight`` (optional, one non-negative number per record) weighs the evidence,
        e.g. ``recency_weights``; supports quoted in reasons stay raw ticket counts.
        """
        records = list(records)
        units = list(units)
        if len(records) != len(units):
            raise ValueError("records and units differ in length")
        if not records:
            raise ValueError("cannot fit on no records")
        if sample_weight is None:
            weights = np.ones(len(records))
        else:
            weights = np.asarray(sample_weight, dtype=float)
            if weights.shape != (len(records),) or (weights < 0).any() or weights.sum() <= 0:
                raise ValueError("sample_weight must be one non-negative weight per record")

        classes = sorted(set(units), key=lambda u: (type(u).__name__, u))
        index = {unit: i for i, unit in enumerate(classes)}
        y = np.fromiter((index[u] for u in units), dtype=np.int64, count=len(units))
        self.classes_ = classes
        self._class_index = index
        self.n_records_ = len(records)
        self._fit_backoff(records, y, weights)
        self._fit_regression(records, y, weights)
        return self

    def _fit_backoff(self, records, y, weights):
        n_classes = len(self.classes_)
        tables = []
        for level in self.backoff:
            groups: dict[tuple, dict[int, list]] = {}
            for record, label, weight in zip(records, y.tolist(), weights.tolist(), strict=True):
                key = _key(record, level)
                if key is None:
                    continue
                cell = groups.setdefault(key, {}).setdefault(label, [0.0, 0])
                cell[0] += weight
                cell[1] += 1
            table = {}
            for key, cells in groups.items():
                labels = np.fromiter(cells, dtype=np.int64, count=len(cells))
                mass = np.array([cells[i][0] for i in cells])
                counts = [cells[i][1] for i in cells]
                table[key] = (labels, mass, float(mass.sum()), sum(counts), counts)
            tables.append(table)
        self._tables = tables
        # The root prior: weighted unit frequencies plus half a ticket each, so that no unit
        # ever seen gets a vanishing probability.
        total = np.bincount(y, weights=weights, minlength=n_classes) + 0.5
        self._prior = total / total.sum()

    def _fit_regression(self, records, y, weights):
        self._vocab: dict[tuple, int] = {}
        self._local_vocab: dict[tuple, int] = {}
        self._homes: dict[str, dict[Any, np.ndarray]] = {}
        self._coef = self._intercept = self._local_coef = None
        if self.blend >= 1.0 or len(self.classes_) < 2:
            return
        from scipy import sparse

        n, n_classes = len(records), len(self.classes_)
        rows, cols = [], []
        for i, record in enumerate(records):
            for j in self._feature_ids(record, grow=True):
                rows.append(i)
                cols.append(j)
        X = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, len(self._vocab)))

        local_blocks = []
        self._homes = {loc: self._infer_homes(records, y, loc) for loc in self.locality}
        for loc, homes in self._homes.items():
            mask = np.zeros((n, n_classes))
            rows, cols = [], []
            for i, record in enumerate(records):
                local_units = homes.get(record.get(loc))
                if local_units is None:
                    continue
                mask[i, local_units] = 1.0
                for j in self._local_ids(record, loc, grow=True):
                    rows.append(i)
                    cols.append(j)
            local_blocks.append((rows, cols, mask))
        n_local = len(self._local_vocab)
        blocks = [
            (sparse.csr_matrix((np.ones(len(r)), (r, c)), shape=(n, n_local)), m)
            for r, c, m in local_blocks
        ]
        with _single_threaded_blas():
            self._coef, self._intercept, self._local_coef = _softmax_regression(
                X, blocks, y, n_classes, weights * (n / weights.sum()), self.C, self.max_iter
            )

    def _infer_homes(self, records, y, loc):
        """For area feature ``loc``: value → indices of the units whose home it is."""
        per_unit: dict[int, dict] = {}
        for record, label in zip(records, y.tolist(), strict=True):
            value = record.get(loc)
            if _present(value):
                counts = per_unit.setdefault(label, {})
                counts[value] = counts.get(value, 0) + 1
        homes: dict[Any, list[int]] = {}
        for label, counts in per_unit.items():
            value, top = max(counts.items(), key=lambda item: item[1])
            total = sum(counts.values())
            if total >= self.home_min and top >= self.home_share * total:
                homes.setdefault(value, []).append(label)
        return {value: np.array(sorted(labels)) for value, labels in homes.items()}

    # ---- features --------------------------------------------------------------------------

    def _feature_ids(self, record, grow=False):
        vocab = self._vocab
        ids = []
        for combo in ((name,) for name in self.features):
            self._token_id(vocab, (combo, _key(record, combo)), ids, grow)
        for combo in self.crosses:
            self._token_id(vocab, (combo, _key(record, combo)), ids, grow)
        return ids

    def _local_ids(self, record, loc, grow=False):
        ids = []
        for combo in self.locality_conditions:
            self._token_id(self._local_vocab, (loc, combo, _key(record, combo)), ids, grow)
        return ids

    @staticmethod
    def _token_id(vocab, token, ids, grow):
        if token[-1] is None:
            return
        j = vocab.get(token)
        if j is None and grow:
            j = vocab[token] = len(vocab)
        if j is not None:
            ids.append(j)

    # ---- prediction ------------------------------------------------------------------------

    def _backoff(self, record):
        """Back-off distribution, support of the most specific matching level, the unit
        counts there and that level."""
        p = self._prior
        beta = self.smoothing
        support, counts_at, level_at = 0, None, None
        for level, table in zip(reversed(self.backoff), reversed(self._tables), strict=True):
            key = _key(record, level)
            if key is None:
                continue
            entry = table.get(key)
            if entry is None:
                continue
            labels, mass, total, n, counts = entry
            p = p * (beta / (total + beta))
            p[labels] += mass / (total + beta)
            support, counts_at, level_at = n, (labels, counts), level
        return p, support, counts_at, level_at

    def _regression(self, record):
        ids = self._feature_ids(record)
        z = self._intercept + self._coef[ids].sum(axis=0)
        for loc, homes in self._homes.items():
            local_units = homes.get(record.get(loc))
            if local_units is not None:
                local_ids = self._local_ids(record, loc)
                if local_ids:
                    z[local_units] += self._local_coef[local_ids].sum()
        z -= z.max()
        e = np.exp(z)
        return e / e.sum()

    def _predict(self, record):
        if not self.classes_:
            raise RuntimeError("LearnedRouter is not fitted")
        p, support, counts_at, level = self._backoff(record)
        if self._coef is not None:
            p = self.blend * p + (1.0 - self.blend) * self._regression(record)
        return p, support, counts_at, level

    def predict_proba(self, record: Mapping[str, Any]) -> np.ndarray:
        """Probabilities over ``classes_`` for one record (they sum to 1)."""
        return self._predict(record)[0]

    def suggest(self, record: Mapping[str, Any], k: int = 3) -> list[Suggestion]:
        """Up to ``k`` units, most likely first, with confidences and reasons."""
        return self._suggest(record, k)[0]

    def _suggest(self, record, k):
        """Suggestions plus the whole distribution and the support (for ``Router``)."""
        p, support, counts_at, level = self._predict(record)
        k = max(0, min(k, len(p)))
        if k == 0:
            return [], p, support
        top = np.argpartition(-p, k - 1)[:k] if k < len(p) else np.arange(len(p))
        top = top[np.argsort(-p[top], kind="stable")]
        handled = dict(zip(counts_at[0].tolist(), counts_at[1], strict=True)) if counts_at else {}
        suggestions = [
            Suggestion(self.classes_[i], float(p[i]), _reason(support, handled.get(i), level))
            for i in top.tolist()
        ]
        return suggestions, p, support


def _single_threaded_blas():
    """BLAS limited to one thread: the many small products of the fit run several times faster
    that way, far more so when other processes compete for the cores."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _key(record, combo):
    """The values of ``combo``'s features in ``record`` as a tuple, or None if one is absent."""
    values = []
    for name in combo:
        value = record.get(name)
        if not _present(value):
            return None
        values.append(value)
    return tuple(values)


def _softmax_regression(X, local_blocks, y, n_classes, weights, C, max_iter):
    """Multinomial logistic regression by L-BFGS, minimising ``C · Σ wᵢ · −log p(yᵢ|xᵢ) +
    ½‖θ‖²`` (intercepts not penalised), the objective of scikit-learn's ``LogisticRegression``
    (which is many times slower here: ~10⁶ parameters, 100+ classes).

    The score of unit u for ticket i is ``b_u + Σ_j X_ij W_ju + Σ_blocks M_iu · (A_i · v)``: each
    local block ``(A, M)`` adds the shared weights ``v`` of the ticket's active locality features
    ``A_i`` to the units marked in ``M_i`` (the units at home in the ticket's area).

    Returns ``(W, b, v)``.
    """
    n, d = X.shape
    g = local_blocks[0][0].shape[1] if local_blocks else 0
    Xt = X.T.tocsr()
    blocks = [(A, A.T.tocsr(), M) for A, M in local_blocks]
    rows = np.arange(n)
    cw = C * weights
    sizes = (d * n_classes, n_classes, g)

    def unpack(theta):
        W = theta[: sizes[0]].reshape(d, n_classes)
        b = theta[sizes[0] : sizes[0] + sizes[1]]
        v = theta[sizes[0] + sizes[1] :]
        return W, b, v

    def loss_grad(theta):
        W, b, v = unpack(theta)
        z = X @ W
        z += b
        for A, _, M in blocks:
            z += (A @ v)[:, None] * M
        z -= z.max(axis=1, keepdims=True)
        z_true = z[rows, y]
        np.exp(z, out=z)
        norm = z.sum(axis=1)
        loss = float(cw @ (np.log(norm) - z_true)) + 0.5 * (float(W.ravel() @ W.ravel()) + v @ v)
        z *= (cw / norm)[:, None]  # residual = C·w·(p − onehot)
        z[rows, y] -= cw
        grad_v = v.copy()
        for _, At, M in blocks:
            grad_v += At @ (z * M).sum(axis=1)
        grad = np.concatenate([(Xt @ z + W).ravel(), z.sum(axis=0), grad_v])
        return loss, grad

    theta = _lbfgs(loss_grad, np.zeros(sum(sizes)), max_iter)
    W, b, v = unpack(theta)
    return np.ascontiguousarray(W), b.copy(), v.copy()


def _lbfgs(loss_grad, x, max_iter, history=8, tol=1e-6):
    """Minimise a smooth convex function by L-BFGS with a backtracking (Armijo) line search.

    (SciPy's L-BFGS-B spends most of its time in bound handling on ~10⁶ parameters.)
    """
    f, g = loss_grad(x)
    pairs: list[tuple[np.ndarray, np.ndarray, float]] = []
    for _ in range(max_iter):
        q = g.copy()
        alphas = []
        for s, y, rho in reversed(pairs):
            a = rho * float(s @ q)
            q -= a * y
            alphas.append(a)
        if pairs:
            s, y, _ = pairs[-1]
            q *= float(s @ y) / float(y @ y)
        else:
            q /= max(1.0, float(np.abs(g).max()))
        for (s, y, rho), a in zip(pairs, reversed(alphas), strict=True):
            q += (a - rho * float(y @ q)) * s
        direction = -q
        slope = float(g @ direction)
        if slope >= 0:
            pairs.clear()
            direction, slope = -g, -float(g @ g)
        step = 1.0
        while True:
            x_new = x + step * direction
            f_new, g_new = loss_grad(x_new)
            if f_new <= f + 1e-4 * step * slope:
                break
            step *= 0.5
            if step < 1e-12:
                return x
        s, y = x_new - x, g_new - g
        sy = float(s @ y)
        if sy > 1e-12:
            pairs.append((s, y, 1.0 / sy))
            if len(pairs) > history:
                pairs.pop(0)
        converged = f - f_new <= tol * max(1.0, abs(f_new))
        x, f, g = x_new, f_new, g_new
        if converged:
            break
    return x


def _reason(support, handled, level):
    if not level:
        return f"根据 {support} 件历史工单的总体分布（无相似工单）"
    if handled:
        return f"根据 {support} 件相似历史工单，其中 {handled} 件由该单位办理"
    # None of them went to this unit: it comes from related categories or its locality.
    return f"根据 {support} 件相似历史工单及相近类别、属地推断"


# --------------------------------------------------------------------------------------------
# Combined router


class Router:
    """The catalogue and the learned router together: ``suggest`` → top-k ``Suggestion``.

    The catalogue is the rule the hotline has agreed with its units, so its unit comes first:
    the result is the mixture ``Q = w · [catalogue unit] + (1 − w) · P_learned`` with
    ``w = catalogue_weight`` (0.8): the catalogue unit gets ``w + (1 − w) · P(unit)`` (≥ 0.8,
    reason "派单目录规则"), the learned suggestions ``(1 − w) · P``, without the catalogue unit
    again, so confidences still sum to at most 1.

    Override — the learned router *strongly disagrees* when all of these hold:

    * its top unit is another unit, with probability ≥ ``override_confidence`` (0.9);
    * that estimate rests on ≥ ``override_support`` (30) similar tickets (the most specific
      back-off level that matched);
    * the catalogue unit is known to history (it has handled tickets; a unit new to the
      catalogue cannot be judged by history, so a fresh rule is never overridden) but got
      probability ≤ ``override_max_catalogue`` (0.02) here.

    Then practice has consistently moved elsewhere (a stale rule after a reorganisation), so the
    catalogue's weight drops to ``override_weight`` (0.1): the learned unit comes first and the
    catalogue unit stays in the list, marked "派单目录规则（与历史办理不符）", so the agent sees
    both and the catalogue can be corrected.
    """

    def __init__(
        self,
        catalogue: CatalogueRouter | Iterable[Mapping[str, Any]],
        learned: LearnedRouter | None = None,
        catalogue_weight: float = 0.8,
        override_confidence: float = 0.9,
        override_support: int = 30,
        override_max_catalogue: float = 0.02,
        override_weight: float = 0.1,
    ):
        if not isinstance(catalogue, CatalogueRouter):
            catalogue = CatalogueRouter(catalogue)
        self.catalogue = catalogue
        self.learned = learned
        self.catalogue_weight = catalogue_weight
        self.override_confidence = override_confidence
        self.override_support = override_support
        self.override_max_catalogue = override_max_catalogue
        self.override_weight = override_weight

    def suggest(
        self,
        category_code: str | None,
        area_code: str | None,
        features: Mapping[str, Any] | None = None,
        k: int = 3,
    ) -> list[Suggestion]:
        """Top-``k`` units for a ticket of ``category_code`` at ``area_code``.

        ``features`` are further learned-router features (request type, channel …); the
        category and area levels are derived from the codes (see ``record_from_codes``).
        """
        if k <= 0:
            return []
        unit = self.catalogue.lookup(category_code, area_code)
        learned = self.learned
        if learned is None or not learned.classes_:
            return [Suggestion(unit, self.catalogue_weight, CATALOGUE_REASON)] if unit else []
        record = record_from_codes(category_code, area_code, features)
        suggestions, p, support = learned._suggest(record, k + 1)
        if unit is None:
            return suggestions[:k]

        index = learned._class_index.get(unit)
        p_unit = float(p[index]) if index is not None else 0.0
        weight, reason = self.catalogue_weight, CATALOGUE_REASON
        top = suggestions[0]
        if (
            top.unit != unit
            and top.confidence >= self.override_confidence
            and support >= self.override_support
            and index is not None
            and p_unit <= self.override_max_catalogue
        ):
            weight, reason = self.override_weight, f"{CATALOGUE_REASON}（与历史办理不符）"
        scale = 1.0 - weight
        merged = [Suggestion(unit, weight + scale * p_unit, reason)]
        merged += [
            Suggestion(s.unit, scale * s.confidence, s.reason)
            for s in suggestions
            if s.unit != unit
        ]
        merged.sort(key=lambda s: -s.confidence)
        return merged[:k]
