"""Knowledge-base search (首问即答): the articles an operator can read out to close a call at
intake, found by the words of the call as it is being typed.

Articles are few and change rarely, so each process keeps an index of their words in memory
and every keystroke's search is pure Python over that index. The index is rebuilt when the
knowledge base changes (every change raises ``reference.KNOWLEDGE``, which every process
notices within ``reference.CHECK_SECONDS``), when the local day changes (an article is
offered up to and including its valid-until day), and at the latest after ``INDEX_TTL``
seconds (rows changed behind the application's back); ``clear()`` drops it at once.

Only articles *in force* are offered: published, and their valid-until day not passed
(``in_force``). The scheduler's knowledge job (``hotline.knowledge_admin.run_due``) records
such an article as expired soon after; until then it is already treated as expired here, at
the console and in ``resolve_at_intake``.

A *hit* (``record_hit``) is an operator opening an article's full answer at the console (the
panel's entry unfolded), counted once per article per call form by the console's script;
searching while typing counts nothing.

An article is shown only when it is *relevant*: the best few by word score are candidates,
and a small logistic model over how the call and the article meet (how much of the article's
title and keywords the call names, how much of the call the article covers, whole keywords
found, the call's length, whether it asks a question …) gives each candidate the
probability that its answer is what the caller wants. ``RELEVANCE`` holds the model's
weights and ``RELEVANCE_THRESHOLD`` the cut, both fitted by ``bench/knowledge.py --fit`` on
the development half of ``seed_data/corpus/knowledge_queries.jsonl`` plus the ordinary calls
of the seed corpus; the benchmark measures them on the other half. A long complaint about a
street light shares a word or two with many answers; it gets no article.
"""

import datetime as dt
import math
import re
import threading
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import selectinload

from classifier.normalize import normalize
from classifier.segment import Segmenter
from hotline import reference
from hotline.config import DEFAULTS
from hotline.enums import ArticleState
from hotline.models import KnowledgeArticle

#: Longest an article index lives in a process, in seconds, if nothing says it changed.
INDEX_TTL = 600
#: Articles returned per search (the candidates scored for relevance).
LIMIT = 3
#: A query word found in an article's title or keywords counts this many times one found only
#: in its answer: callers name the matter, answers explain it in other words.
TITLE_WEIGHT = 3.0
#: Bonus for each of an article's keywords (phrases callers use) found whole in the query.
KEYWORD_BONUS = 2.0
#: Scores below this are noise (a common word shared with a long answer), not a match.
MIN_SCORE = 1.0

#: The relevance model's features, in the order of its weights.
FEATURES = (
    "score",  # the word score below
    "article_coverage",  # share of the article's title/keyword weight the call names
    "call_coverage",  # share of the call's word weight found in the article
    "keywords",  # the article's keywords found whole in the call
    "longest_keyword",  # characters of the longest of them
    "log_length",  # log(1 + characters of the call)
    "question",  # the call asks something (怎么, 哪里, 吗 …)
    "rank",  # 0 for the best candidate by word score, 1, 2
    "margin",  # word score minus the next candidate's
)
#: Logistic weights of ``FEATURES`` and the intercept (``bench/knowledge.py --fit``).
RELEVANCE = (
    (0.0553, -0.2283, -0.4808, 1.364, 1.0696, -3.5833, 1.5544, -0.4559, 0.2087),
    5.2724,
)
#: Articles below this probability of answering the call are not shown. Chosen on the
#: development half as the lowest cut showing an article for at most 1 % of calls that no
#: article answers (``bench/knowledge.py`` prints the held-out figures).
RELEVANCE_THRESHOLD = 0.85
_QUESTION = re.compile(
    r"(怎么|怎样|如何|吗|么|能不能|可不可以|哪里|哪儿|哪个|什么|多少|几点|几路|是否|要不要|"
    r"可以|咨询|请问|想问|想了解|需要|什么时候|多久|多长)"
)

_segmenter = None
_segmenter_lock = threading.Lock()


def terms(text):
    """The meaningful words of ``text`` (normalised, jieba-segmented, stop words dropped), as
    knowledge search and duplicate detection compare them."""
    global _segmenter
    if _segmenter is None:
        with _segmenter_lock:
            if _segmenter is None:
                segmenter = Segmenter()
                segmenter.tokenizer  # noqa: B018  (load jieba's dictionary once, under the lock)
                _segmenter = segmenter
    return _segmenter.cut(normalize(text or ""))


@dataclass(frozen=True)
class Entry:
    code: str
    title: str
    category: dict | None
    answer: str
    source: str | None
    keywords: tuple
    #: Words of the title and keywords together, and of the answer.
    strong: frozenset
    weak: frozenset


class Index:
    def __init__(self, entries):
        self.entries = list(entries)
        df = {}
        for entry in self.entries:
            for term in entry.strong | entry.weak:
                df[term] = df.get(term, 0) + 1
        n = len(self.entries)
        #: Rare words weigh more: "办理" occurs in half the answers, "公积金" in one.
        self.idf = {term: math.log(1 + n / count) for term, count in df.items()}

    def candidates(self, query, limit=LIMIT):
        """The best ``limit`` articles for ``query`` by word score: [(entry, score)]."""
        words = set(terms(query))
        text = normalize(query or "")
        if not words and not text:
            return []
        scored = []
        for entry in self.entries:
            score = 0.0
            for word in words:
                weight = self.idf.get(word)
                if weight is None:
                    continue
                if word in entry.strong:
                    score += TITLE_WEIGHT * weight
                elif word in entry.weak:
                    score += weight
            score += KEYWORD_BONUS * sum(1 for kw in entry.keywords if len(kw) > 1 and kw in text)
            if score >= MIN_SCORE:
                scored.append((entry, round(score, 3)))
        scored.sort(key=lambda item: (-item[1], item[0].code))
        return scored[:limit]

    def features(self, query, found):
        """The relevance model's ``FEATURES`` of each candidate in ``found``."""
        words = set(terms(query))
        text = normalize(query or "")
        idf = self.idf
        call_weight = sum(idf.get(w, 0.0) for w in words) or 1.0
        rows = []
        for rank, (entry, score) in enumerate(found):
            following = found[rank + 1][1] if rank + 1 < len(found) else 0.0
            strong = sum(idf.get(w, 0.0) for w in words if w in entry.strong)
            weak = sum(idf.get(w, 0.0) for w in words if w in entry.weak and w not in entry.strong)
            article_weight = sum(idf.get(w, 0.0) for w in entry.strong) or 1.0
            keywords = [kw for kw in entry.keywords if len(kw) > 1 and kw in text]
            rows.append(
                (
                    score,
                    strong / article_weight,
                    (strong + weak) / call_weight,
                    len(keywords),
                    max((len(kw) for kw in keywords), default=0),
                    math.log(1 + len(text)),
                    1.0 if _QUESTION.search(text) else 0.0,
                    rank,
                    score - following,
                )
            )
        return rows

    def search(self, query, limit=LIMIT, threshold=None, weights=RELEVANCE):
        """The articles relevant to ``query``: [(entry, relevance)], best first, relevance
        the probability (0–1) that the article answers the call, at least ``threshold``."""
        threshold = RELEVANCE_THRESHOLD if threshold is None else threshold
        found = self.candidates(query, limit)
        coefficients, intercept = weights
        relevant = []
        for (entry, _), row in zip(found, self.features(query, found), strict=True):
            z = intercept + sum(c * x for c, x in zip(coefficients, row, strict=True))
            relevance = 1.0 / (1.0 + math.exp(-z))
            if relevance >= threshold:
                relevant.append((entry, round(relevance, 3)))
        relevant.sort(key=lambda item: (-item[1], item[0].code))
        return relevant


def entry(code, title, answer, keywords="", source=None, category=None):
    """An index entry of one article (``keywords``: space-separated phrases)."""
    phrases = tuple(k for k in (keywords or "").split() if k)
    return Entry(
        code=code,
        title=title,
        category=category,
        answer=answer,
        source=source,
        keywords=phrases,
        strong=frozenset(terms(title + " " + " ".join(phrases))),
        weak=frozenset(terms(answer)),
    )


def local_today(now=None, timezone=None):
    """The city's local date at ``now`` (default: now); the day an article's valid-until
    date is compared with."""
    if timezone is None:
        timezone = (current_app.config if current_app else DEFAULTS)["TIMEZONE"]
    now = now or dt.datetime.now(dt.UTC)
    return now.astimezone(ZoneInfo(timezone)).date()


def in_force(today):
    """SQL condition: the article is offered at intake on the local day ``today``."""
    return sa.and_(
        KnowledgeArticle.state == ArticleState.published,
        sa.or_(KnowledgeArticle.valid_until.is_(None), KnowledgeArticle.valid_until >= today),
    )


def is_in_force(article, today):
    """The same for a loaded article."""
    return article.state == ArticleState.published and (
        article.valid_until is None or article.valid_until >= today
    )


def article_in_force(session, code, today=None):
    """The article of ``code`` if it is offered today, else None (read from the database,
    not the index: an article just withdrawn must be refused)."""
    return session.scalars(
        sa.select(KnowledgeArticle).where(
            KnowledgeArticle.code == code, in_force(today or local_today())
        )
    ).first()


def record_hit(session, code, today=None):
    """Count one hit of the article ``code`` (an operator opened its answer at the console):
    one UPDATE, no audit, no reference bump (a count is not content). Returns whether an
    article in force was counted; the caller commits."""
    updated = session.execute(
        sa.update(KnowledgeArticle)
        .where(KnowledgeArticle.code == code, in_force(today or local_today()))
        .values(hit_count=KnowledgeArticle.hit_count + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    return bool(updated)


def build_index(session, today=None):
    articles = session.scalars(
        sa.select(KnowledgeArticle)
        .where(in_force(today or local_today()))
        .options(selectinload(KnowledgeArticle.category))
        .order_by(KnowledgeArticle.code)
    )
    entries = [
        entry(
            article.code,
            article.title,
            article.answer,
            keywords=article.keywords,
            source=article.source,
            category=(
                {"code": article.category.code, "name": article.category.name}
                if article.category
                else None
            ),
        )
        for article in articles
    ]
    return Index(entries)


_cached = (None, 0.0, None)  # key (knowledge version, local day), expires at, index
_cache_lock = threading.Lock()


def index(session):
    """This process's article index: rebuilt when the knowledge base changed, on a new
    local day, or after ``INDEX_TTL`` seconds."""
    global _cached
    today = local_today()
    key = (reference.stamp(session, reference.KNOWLEDGE), today)
    built_key, expires, built = _cached
    if built is None or built_key != key or time.monotonic() > expires:
        with _cache_lock:
            built_key, expires, built = _cached
            if built is None or built_key != key or time.monotonic() > expires:
                built = build_index(session, today)
                _cached = (key, time.monotonic() + INDEX_TTL, built)
    return built


def clear():
    """Forget the index (the next search reloads the articles)."""
    global _cached
    with _cache_lock:
        _cached = (None, 0.0, None)


def search(session, query, limit=LIMIT):
    return index(session).search(query, limit)


def entry_to_dict(entry, relevance=None):
    data = {
        "code": entry.code,
        "title": entry.title,
        "category": entry.category,
        "answer": entry.answer,
        "source": entry.source,
    }
    if relevance is not None:
        data["relevance"] = relevance
    return data
