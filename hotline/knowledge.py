"""Knowledge-base search (首问即答): the articles an operator can read out to close a call at
intake, found by the words of the call as it is being typed.

Articles are few and change rarely, so each process keeps an index of their words in memory
for ``INDEX_TTL`` seconds (an administrator's edit shows within that time; ``clear()`` makes
it immediate) and every keystroke's search is pure Python over that index.
"""

import math
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from classifier.normalize import normalize
from classifier.segment import Segmenter
from hotline.models import KnowledgeArticle

#: Seconds an article index lives in a process.
INDEX_TTL = 60
#: Articles returned per search.
LIMIT = 5
#: A query word found in an article's title or keywords counts this many times one found only
#: in its answer: callers name the matter, answers explain it in other words.
TITLE_WEIGHT = 3.0
#: Bonus for each of an article's keywords (phrases callers use) found whole in the query.
KEYWORD_BONUS = 2.0
#: Scores below this are noise (a common word shared with a long answer), not a match.
MIN_SCORE = 1.0

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

    def search(self, query, limit=LIMIT):
        """The best ``limit`` articles for ``query``: [(entry, score)], best first."""
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


def build_index(session):
    articles = session.scalars(
        sa.select(KnowledgeArticle)
        .where(KnowledgeArticle.active)
        .options(selectinload(KnowledgeArticle.category))
        .order_by(KnowledgeArticle.code)
    )
    entries = []
    for article in articles:
        keywords = tuple(k for k in (article.keywords or "").split() if k)
        entries.append(
            Entry(
                code=article.code,
                title=article.title,
                category=(
                    {"code": article.category.code, "name": article.category.name}
                    if article.category
                    else None
                ),
                answer=article.answer,
                source=article.source,
                keywords=keywords,
                strong=frozenset(terms(article.title + " " + " ".join(keywords))),
                weak=frozenset(terms(article.answer)),
            )
        )
    return Index(entries)


_cached = (0.0, None)  # expires at (monotonic), index
_cache_lock = threading.Lock()


def index(session):
    """This process's article index, rebuilt after ``INDEX_TTL`` seconds."""
    global _cached
    expires, built = _cached
    if built is None or time.monotonic() > expires:
        with _cache_lock:
            expires, built = _cached
            if built is None or time.monotonic() > expires:
                built = build_index(session)
                _cached = (time.monotonic() + INDEX_TTL, built)
    return built


def clear():
    """Forget the index (the next search reloads the articles)."""
    global _cached
    with _cache_lock:
        _cached = (0.0, None)


def search(session, query, limit=LIMIT):
    return index(session).search(query, limit)


def entry_to_dict(entry, score=None):
    data = {
        "code": entry.code,
        "title": entry.title,
        "category": entry.category,
        "answer": entry.answer,
        "source": entry.source,
    }
    if score is not None:
        data["score"] = score
    return data
