"""Hot issues (热点问题): group messages about one matter, title the groups, score their heat.

Method
------
A hot issue is one matter: the same place or object *and* the same problem. Each message
becomes three things, computed from its title and the first ``TEXT_CHARS`` characters of its
text (the matter is stated there; capping also bounds the work per message):

* **places** — named estates, sites, schools, companies, roads … found by suffix patterns
  (小区, 花园, 新城, 苑, 学校, 公司, 搅拌站, 路, 街道, 社区 …). From each suffix the name
  is read leftwards up to a boundary (punctuation, function words, an area marker such as
  市/区/县), then common dictionary words at its head are dropped (jieba's word frequencies
  tell "商品房" from "伊景"). A compound such as 伊景园滨河苑 is split into its parts, and
  each part's *core* (the name without generic suffixes: 丽发新城小区 → 丽发) is a blocking
  key, so "丽发小区" and "丽发新城" meet. Administrative areas known to the system
  (``Message.places``) are places too, but only as broad context.
* **problem words** — jieba tokens minus stop words, complaint boilerplate and the place
  names themselves; title words count twice. Interned to integer ids, stored as two small
  arrays per message.
* **blocking keys** — the place cores, plus the message's two rarest title words (so a matter
  without a place, such as 人才购房补贴, still meets its own kind).

``Index.add`` looks at the groups registered under the message's keys (the ``block_k`` most
recent per key, so a huge block costs no more than a small one), scores each by the TF-IDF
cosine between the message's problem words and the group's centroid (document frequencies
are those of the messages held), and joins the best group when

* they share a place key and the cosine is at least ``place_threshold``, or
* one side has no place and the cosine is at least ``object_threshold`` (stricter);

two messages naming different places are never grouped, and neither are two messages at one
place with different problems. Otherwise the message starts a group. ``batch`` is adding the
messages one by one in time order, so a rebuild and the incremental path decide alike.

Titles are the group's most named place plus its top problem words in the order a member's
title uses them ("丽发新城搅拌站噪音扰民"). Heat (``heat``) is a sum of explained parts.

Measured (``python bench/hotspots.py``, 2-core machine): see the figures at the end of this
docstring, kept in step with the benchmark.
"""

import heapq
import math
import re
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from classifier.normalize import normalize
from classifier.segment import Segmenter

#: Characters of the message text read after its title.
TEXT_CHARS = 300

#: Suffixes that end the name of a place or object, longest first.
PLACE_SUFFIXES = tuple(
    sorted(
        """
        搅拌站 幼儿园 卫生院 派出所 农贸市场 菜市场 产业园 工业园 开发区 商业街 步行街 片区
        小学 中学 大学 学院 学校 医院 公司 集团 工地 项目 市场 商场 广场 大厦 公寓 花园
        新城 小区 家园 公馆 山庄 名苑 名城 华府 雅苑 新村 街道 社区 大道 公园 酒店 宾馆
        工厂 楼盘 车站 码头 高速 隧道 大桥 医馆 诊所 超市 银行 物业 驾校 网吧 酒吧 KTV
        苑 府 园 城 湾 庭 邸 村 镇 乡 路 街 桥 巷 厂 湖
        """.split(),
        key=len,
        reverse=True,
    )
)
_SUFFIX_RE = re.compile("|".join(map(re.escape, PLACE_SUFFIXES)))
#: A character that cannot be part of a name (the name is read leftwards up to it).
_BOUNDARY_CHARS = frozenset(
    "的在了和与及到从对向给把被于是有为将往至或等个这那该我你他她们市区县省里旁边近内外前后"
    "和跟同并且也都就还又很最更已曾请求问要想让使由因所以但而如若即则便仍却再每各某其此买卖租"
)
#: A one-character suffix followed by these is an ordinary word (城市, 园区), not a name's end.
_NOT_AN_END = frozenset("城市 城管 城乡 城区 园区 府办 村委 镇政 路费 街头 桥梁".split())
#: Words that open a message and are not part of a name ("投诉丽发新城…").
_LEAD_WORDS = tuple(
    sorted(
        "投诉 反映 举报 咨询 关于 请问 建议 要求 希望 解决 位于 处于 地处 附近 旁边 门口 "
        "对面 周边 周围 隔壁 整个 多个 各个 其他 一个 所在 居住 住在 业主 居民 市民 购买 "
        "原来 现在 目前 今年 去年 本 该 这 那 我 我们 我家 你们 他们".split(),
        key=len,
        reverse=True,
    )
)
#: Names made only of these are not places ("我们小区", "周边道路").
_GENERIC_NAMES = frozenset(
    "我们 我家 本 该 这个 这 那个 所在 周边 附近 旁边 周围 整个 多个 各个 其他 一个 两个 "
    "几个 哪个 什么 同一 城市 农村 乡村 马路 道路 公路 一路 沿路 小区 社区 街道 学校 公司 "
    "医院 市场 项目 工地 新城 老城 县城 进城 全城 物业 银行 超市 高速 车站 住宅 安置 商品 "
    "老旧 居民 政府 人民政府 手机银行 网上银行".split()
)
#: Letters-and-digits area codes of anonymised data ("A市", "A7县") are areas, not names.
_AREA_CODE = re.compile(r"^[A-Za-z]\d{0,3}[省市区县]$")
#: jieba word frequency above which a word at the head of a name is ordinary language.
_COMMON_FREQ = 200
MAX_NAME_CHARS = 6
#: Complaint boilerplate that says nothing about the matter.
_NOISE_WORDS = frozenset(
    """
    投诉 反映 举报 咨询 请问 建议 要求 希望 解决 处理 部门 政府 相关 有关 领导 市民 居民 业主
    群众 百姓 老百姓 问题 情况 事情 现象 严重 一直 已经 至今 今年 去年 目前 现在 时间 年 月 日
    号 栋 单元 多次 多年 很多 许多 非常 没有 不能 无法 可以 进行 存在 出现 造成 导致 影响 给予
    尽快 及时 何时 什么 为何 为什么 怎么 如何 能否 是否 恳请 恳求 请求 呼吁 强烈 谢谢 感谢
    您好 你好 尊敬 市长 书记 局长 主任 网友 本人 我们 大家 他们 这个 那个 这些 那些 一下 一些
    工作 方面 有关部门 相关部门 职能部门 附近 旁边 周边 周围 地方 地区 位置 区域 加快 力度 推进
    落实 行动 地处 常年 小区 社区 街道 请问 咨询 回复 答复 市里 省里 区里 县里 建议 意见 办法
    """.split()
)
_DIGITS = re.compile(r"^[\dA-Za-z.%]+$")


def _is_area(name):
    return bool(_AREA_CODE.match(name))


class _Words:
    """The tokenizer shared by ``places``, ``keywords`` and every index (loaded once)."""

    _segmenter = None

    @classmethod
    def segmenter(cls):
        if cls._segmenter is None:
            cls._segmenter = Segmenter()
        return cls._segmenter

    @classmethod
    def freq(cls, word):
        return cls.segmenter().tokenizer.FREQ.get(word) or 0


def warm():
    """Load jieba's dictionary now (half a second) rather than at the first message."""
    _Words.segmenter().tokenizer.initialize()


def _trim_head(run):
    """Drop leading function words and common dictionary words from a name read leftwards."""
    changed = True
    while changed and run:
        changed = False
        for word in _LEAD_WORDS:
            position = run.rfind(word)
            if position >= 0 and len(run) - position - len(word) >= 1:
                run = run[position + len(word) :]
                changed = True
                break
    if len(run) <= 4:
        return run
    tokens = _Words.segmenter().tokenizer.lcut(run, HMM=False)
    while (
        len(tokens) > 1
        and sum(map(len, tokens)) > 4
        and (
            (len(tokens[0]) > 1 and _Words.freq(tokens[0]) >= _COMMON_FREQ)
            or _DIGITS.match(tokens[0])
        )
    ):
        tokens.pop(0)
    return "".join(tokens)


def _components(name):
    """Split a compound name at its inner suffixes: 伊景园滨河苑 → 伊景园, 滨河苑."""
    parts, start = [], 0
    for match in _SUFFIX_RE.finditer(name):
        end = match.end()
        if match.start() - start >= 2 and end < len(name):
            parts.append(name[start:end])
            start = end
    tail = name[start:]
    if parts and len(tail) <= 2:
        parts[-1] += tail
    else:
        parts.append(tail)
    return parts


def core(name):
    """A name without its generic suffixes (丽发新城小区 → 丽发): the blocking key."""
    while True:
        for suffix in PLACE_SUFFIXES:
            if name.endswith(suffix) and len(name) - len(suffix) >= 2:
                name = name[: -len(suffix)]
                break
        else:
            return name


def _scan(text):
    """Place names in one normalised text, in order of appearance. A name read leftwards
    stops where the previous one ended; right after it, the two are one compound name
    (伊景园 + 滨河苑), unless the second is only a generic word (丽发新城 + 小区)."""
    found = []  # [name, start, end]
    for match in _SUFFIX_RE.finditer(text):
        start, end = match.start(), match.end()
        if len(match.group()) == 1 and text[start : end + 1] in _NOT_AN_END:
            continue
        floor = found[-1][2] if found else 0
        if start < floor:
            continue
        left = start
        while left > floor and start - left < MAX_NAME_CHARS:
            char = text[left - 1]
            if char in _BOUNDARY_CHARS or not char.isalnum():
                break
            left -= 1
        if found and left == floor:
            previous = found[-1]
            head = text[floor:start]
            if not head and match.group() in _GENERIC_NAMES:
                previous[2] = end  # 丽发新城小区 is 丽发新城
                continue
            if len(head) != 1 and len(previous[0]) + len(head) + len(match.group()) <= 12:
                previous[0] += head + match.group()
                previous[2] = end
                continue
        head = _trim_head(text[left:start])
        if len(head) < 2 or head in _GENERIC_NAMES or _DIGITS.match(head):
            continue
        if head in _Words.segmenter().stop_words or head in _NOISE_WORDS:
            continue
        name = head + match.group()
        if name in _GENERIC_NAMES or _is_area(name) or name.endswith("政府"):
            continue
        found.append([name, end - len(name), end])
    return [name for name, _, _ in found]


def places(title, text, known=()):
    """Place or object names the message is about, most specific first: named estates,
    sites, companies, schools, roads found in the title then the text, then the known area
    names. Fast (a few hundred microseconds)."""
    title, text = normalize(title or ""), normalize((text or "")[: TEXT_CHARS * 2])[:TEXT_CHARS]
    counts = Counter()
    order = {}
    for weight, part in ((3, title), (1, text)):
        for name in _scan(part):
            counts[name] += weight
            order.setdefault(name, len(order))
    names = sorted(counts, key=lambda n: (-counts[n], order[n]))
    result = list(dict.fromkeys(names))
    for area in known:
        if area and area not in result:
            result.append(area)
    return tuple(result)


def _place_keys(names):
    keys = []
    for name in names:
        for part in _components(name):
            key = core(part)
            if part in PLACE_SUFFIXES:
                continue
            if len(key) >= 2 and key not in _GENERIC_NAMES and not _is_area(part):
                keys.append(key)
    return list(dict.fromkeys(keys))


def _problem_tokens(text, place_names):
    chars = set("".join(place_names))
    tokens = []
    for token in _Words.segmenter().cut(text):
        if len(token) < 2 or token in _NOISE_WORDS or _DIGITS.match(token) or _is_area(token):
            continue
        if any(token in name for name in place_names) or (
            len(token) <= 2 and all(c in chars for c in token)
        ):
            continue
        tokens.append(token)
    return tokens


def keywords(title, text, k=8):
    """The words saying what the problem is (no place names, no stop words), most telling
    first (title words count more; rare words in jieba's dictionary outweigh common ones)."""
    names = places(title, text)
    title_n = normalize(title or "")
    text_n = normalize((text or "")[: TEXT_CHARS * 2])[:TEXT_CHARS]
    counts = Counter()
    for weight, part in ((2, title_n), (1, text_n)):
        for token in _problem_tokens(part, names):
            counts[token] += weight
    total = _Words.segmenter().tokenizer.total

    def score(word):
        return counts[word] * math.log(total / (1 + _Words.freq(word)))

    return sorted(counts, key=lambda w: (-score(w), w))[:k]


# ------------------------------------------------------------------------------------ index


@dataclass(frozen=True)
class Message:
    id: object
    at: datetime
    title: str
    text: str
    caller: str | None = None
    places: tuple[str, ...] = ()
    likes: int = 0
    dislikes: int = 0


@dataclass(frozen=True)
class Assigned:
    group: object
    similarity: float
    new_group: bool


@dataclass(frozen=True)
class Group:
    key: object
    ids: list
    place: str | None
    keywords: list
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True)
class Features:
    """What the index keeps of a message's text (see ``Index.features``)."""

    places: tuple
    keys: tuple
    title_tokens: tuple
    tokens: tuple
    title: str


@dataclass(eq=False)
class _Group:
    key: object
    ids: list = field(default_factory=list)
    centroid: dict = field(default_factory=dict)  # term id -> summed count
    keys: Counter = field(default_factory=Counter)  # place key -> members naming it
    word_keys: set = field(default_factory=set)  # title-word blocks it is registered in
    names: Counter = field(default_factory=Counter)  # place name -> weight
    titles: list = field(default_factory=list)  # a few member titles, for the generated title
    first: float = math.inf
    last: float = -math.inf
    first_at: datetime | None = None
    last_at: datetime | None = None
    alive: bool = True


@dataclass(eq=False, slots=True)
class _Held:
    group: _Group
    ts: float
    at: datetime
    terms: array
    counts: array
    keys: tuple
    names: tuple


def _timestamp(at):
    if at.tzinfo is None:
        return at.replace(tzinfo=UTC).timestamp()
    return at.timestamp()


class Index:
    """Incremental grouping over a time window (see the module's docstring)."""

    def __init__(
        self,
        *,
        window_days=90,
        place_threshold=0.22,
        object_threshold=0.45,
        block_k=24,
        centroid_terms=64,
        title_keys=2,
    ):
        self.window_days = window_days
        self.place_threshold = place_threshold
        self.object_threshold = object_threshold
        self.block_k = block_k
        self.centroid_terms = centroid_terms
        self.title_keys = title_keys
        self._term_ids = {}
        self._terms = []
        self._df = []  # term id -> messages held containing it
        self._held = {}  # message id -> _Held
        self._groups = {}  # key -> _Group
        self._blocks = {}  # blocking key -> list of _Group, oldest first
        self._heap = []  # (timestamp, sequence, message id)
        self._sequence = 0
        self._new = 0

    # ----------------------------------------------------------------- features

    def features(self, message):
        """The message's places, blocking keys and problem words (the text work of ``add``)."""
        names = places(message.title, message.text, message.places)
        specific = [n for n in names if n not in message.places]
        title = normalize(message.title or "")
        text = normalize((message.text or "")[: TEXT_CHARS * 2])[:TEXT_CHARS]
        return Features(
            places=names,
            keys=tuple(_place_keys(specific)),
            title_tokens=tuple(_problem_tokens(title, names)),
            tokens=tuple(_problem_tokens(text, names)),
            title=title,
        )

    def _intern(self, token):
        term = self._term_ids.get(token)
        if term is None:
            term = self._term_ids[token] = len(self._terms)
            self._terms.append(token)
            self._df.append(0)
        return term

    def _idf(self, term):
        return math.log((len(self._held) + 1) / (self._df[term] + 1)) + 1.0

    # ----------------------------------------------------------------- assignment

    def add(self, message, *, group=None, features=None):
        """Assign one message (see ``HOTSPOT_INTERFACE``); ``features`` skips the text work
        when the caller already has them (the benchmark's synthetic index)."""
        if message.id in self._held:
            self._remove(message.id)
        f = features or self.features(message)
        counts = Counter()
        for token in f.title_tokens:
            counts[self._intern(token)] += 2
        for token in f.tokens:
            counts[self._intern(token)] += 1
        terms = array("I", sorted(counts))
        weights = array("H", (min(counts[t], 65535) for t in terms))
        title_keys = sorted(
            {t for t in (self._term_ids[w] for w in f.title_tokens)},
            key=lambda t: (self._df[t], t),
        )[: self.title_keys]
        keys = tuple(("p", k) for k in f.keys) + tuple(("t", t) for t in title_keys)

        similarity, target, new_group = 1.0, None, False
        if group is not None:
            target = self._groups.get(group)
            if target is None:
                target = self._new_group(group)
                new_group = True
        else:
            similarity, target = self._best(terms, weights, f.keys, keys)
            if target is None:
                self._new += 1
                while ("new", self._new) in self._groups:
                    self._new += 1
                target = self._new_group(("new", self._new))
                similarity, new_group = 0.0, True
        ts = _timestamp(message.at)
        held = _Held(target, ts, message.at, terms, weights, keys, tuple(f.places[:3]))
        self._held[message.id] = held
        for term in terms:
            self._df[term] += 1
        self._sequence += 1
        heapq.heappush(self._heap, (ts, self._sequence, message.id))
        self._join(target, message.id, held, f.title)
        return Assigned(group=target.key, similarity=round(similarity, 4), new_group=new_group)

    def _new_group(self, key):
        state = _Group(key)
        self._groups[key] = state
        return state

    def _candidates(self, keys):
        seen = {}
        for key in keys:
            block = self._blocks.get(key)
            if not block:
                continue
            taken = 0
            for state in reversed(block):
                if taken >= self.block_k:
                    break
                if state.alive:
                    taken += 1
                    seen.setdefault(id(state), state)
        return seen.values()

    def _best(self, terms, weights, place_keys, keys):
        vector = {t: w * self._idf(t) for t, w in zip(terms, weights, strict=True)}
        norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
        best, best_score, best_similarity = None, 0.0, 0.0
        for state in self._candidates(keys):
            shared = any(k in state.keys for k in place_keys)
            if shared:
                threshold = self.place_threshold
            elif place_keys and state.keys:
                continue  # two different places: never one matter
            else:
                threshold = self.object_threshold
            dot, cnorm = 0.0, 0.0
            for term, total in state.centroid.items():
                w = total * self._idf(term)
                cnorm += w * w
                v = vector.get(term)
                if v is not None:
                    dot += v * w
            if not dot:
                continue
            similarity = dot / (norm * math.sqrt(cnorm))
            if similarity < threshold:
                continue
            score = similarity + (0.1 if shared else 0.0)
            if score > best_score:
                best, best_score, best_similarity = state, score, similarity
        return best_similarity, best

    def _join(self, state, message_id, held, title):
        state.ids.append(message_id)
        held.group = state
        for term, count in zip(held.terms, held.counts, strict=True):
            state.centroid[term] = state.centroid.get(term, 0) + count
        if len(state.centroid) > 2 * self.centroid_terms:
            kept = sorted(state.centroid.items(), key=lambda item: (-item[1], item[0]))
            state.centroid = dict(kept[: self.centroid_terms])
        for key in held.keys:
            if key[0] == "p":
                if not state.keys[key[1]]:
                    self._blocks.setdefault(key, []).append(state)
                state.keys[key[1]] += 1
            elif key not in state.word_keys:
                state.word_keys.add(key)
                self._blocks.setdefault(key, []).append(state)
        for rank, name in enumerate(held.names):
            state.names[name] += 3 - rank
        if len(state.titles) < 8:
            state.titles.append(title)
        if held.ts < state.first:
            state.first, state.first_at = held.ts, held.at
        if held.ts > state.last:
            state.last, state.last_at = held.ts, held.at

    def _remove(self, message_id):
        held = self._held.pop(message_id)
        state = held.group
        state.ids.remove(message_id)
        for term, count in zip(held.terms, held.counts, strict=True):
            self._df[term] -= 1
            left = state.centroid.get(term, 0) - count
            if left > 0:
                state.centroid[term] = left
            else:
                state.centroid.pop(term, None)
        for key in held.keys:
            if key[0] == "p":
                state.keys[key[1]] -= 1
                if state.keys[key[1]] <= 0:
                    del state.keys[key[1]]
        for rank, name in enumerate(held.names):
            state.names[name] -= 3 - rank
            if state.names[name] <= 0:
                del state.names[name]
        if not state.ids:
            state.alive = False
            self._groups.pop(state.key, None)
        else:
            times = [self._held[i] for i in state.ids]
            first = min(times, key=lambda h: h.ts)
            last = max(times, key=lambda h: h.ts)
            state.first, state.first_at = first.ts, first.at
            state.last, state.last_at = last.ts, last.at
        return held

    # ----------------------------------------------------------------- people's decisions

    def move(self, message_id, group):
        """Put a message into ``group`` (created if new): a person's split or merge."""
        held = self._remove(message_id)
        target = self._groups.get(group) or self._new_group(group)
        self._held[message_id] = held
        for term in held.terms:
            self._df[term] += 1
        self._join(target, message_id, held, None)

    def rekey(self, old, new):
        """Rename a group (the store names it by its hot issue id)."""
        if old == new:
            return
        if new in self._groups:
            raise ValueError(f"group {new!r} exists already")
        state = self._groups.pop(old)
        state.key = new
        self._groups[new] = state

    def expire(self, now):
        """Drop the messages older than the window; returns their ids."""
        cutoff = _timestamp(now) - self.window_days * 86400
        gone = []
        while self._heap and self._heap[0][0] < cutoff:
            ts, _, message_id = heapq.heappop(self._heap)
            held = self._held.get(message_id)
            if held is not None and held.ts == ts:
                self._remove(message_id)
                gone.append(message_id)
        if gone:
            for key, block in list(self._blocks.items()):
                alive = [s for s in block if s.alive]
                if alive:
                    self._blocks[key] = alive
                else:
                    del self._blocks[key]
        return gone

    # ----------------------------------------------------------------- reading

    def _keywords(self, state, k=6):
        scored = sorted(
            state.centroid.items(), key=lambda item: (-item[1] * self._idf(item[0]), item[0])
        )
        return [self._terms[t] for t, _ in scored[:k]]

    def _place(self, state):
        if not state.names:
            return None
        return min(state.names, key=lambda n: (-state.names[n], n))

    def group(self, key):
        state = self._groups[key]
        return Group(
            key=state.key,
            ids=list(state.ids),
            place=self._place(state),
            keywords=self._keywords(state),
            first_at=state.first_at,
            last_at=state.last_at,
        )

    def groups(self, min_size=1):
        return [self.group(k) for k, s in self._groups.items() if len(s.ids) >= min_size]

    def group_of(self, message_id):
        held = self._held.get(message_id)
        return held.group.key if held else None

    def title(self, key):
        """Place + problem, e.g. "丽发新城搅拌站噪音扰民"."""
        state = self._groups[key]
        place = self._place(state)
        if place is not None and state.names[place] < 3 * max(1, 0.3 * len(state.ids)):
            place = None  # named by few of its messages: not what the group is about
        words = [w for w in self._keywords(state, 8) if not place or w not in place]
        chosen = []
        for word in words:
            if any(word in c or c in word for c in chosen):
                continue
            if sum(map(len, chosen)) + len(word) > 8:
                continue
            chosen.append(word)
            if len(chosen) == 3:
                break
        titles = [t for t in state.titles if t]
        best = max(
            titles, key=lambda t: (sum(w in t for w in chosen), -titles.index(t)), default=""
        )
        rank = {w: i for i, w in enumerate(chosen)}
        chosen.sort(key=lambda w: (best.find(w) < 0, best.find(w), rank[w]))
        return (place or "") + "".join(chosen)

    def __len__(self):
        return len(self._held)


def batch(messages, *, window_days=90, **tuning):
    """Batch grouping: the same decisions as adding ``messages`` one by one in time order."""
    index = Index(window_days=window_days, **tuning)
    ordered = sorted(enumerate(messages), key=lambda item: (_timestamp(item[1].at), item[0]))
    for _, message in ordered:
        index.add(message)
    return index


# ------------------------------------------------------------------------------------ heat


@dataclass(frozen=True)
class HeatInput:
    size: int
    callers: int
    recent: int
    previous: int
    repeat_calls: int
    reopened: int = 0
    unhappy: int = 0
    likes: int = 0
    dislikes: int = 0


#: (part, Chinese label, points) — how each part of ``HeatInput`` turns into heat.
HEAT_PARTS = (
    ("size", "诉求件数", lambda h: 10.0 * h.size),
    ("callers", "诉求人数", lambda h: 5.0 * h.callers),
    ("growth", "近7日增长", lambda h: 8.0 * max(0, h.recent - h.previous) + 2.0 * h.recent),
    ("repeat_calls", "重复来电", lambda h: 3.0 * h.repeat_calls),
    ("reopened", "重办件", lambda h: 8.0 * h.reopened),
    ("unhappy", "不满意", lambda h: 6.0 * h.unhappy),
    ("likes", "点赞", lambda h: 12.0 * math.log1p(max(0, h.likes))),
    ("dislikes", "反对", lambda h: -4.0 * math.log1p(max(0, h.dislikes))),
)
#: Dislikes lower the heat by at most this share of the other parts.
MAX_DISLIKE_SHARE = 0.5


def heat(h):
    """The heat score and its explanation: parts {name: {"label", "value", "points"}} whose
    points sum to the score. Tickets and callers count linearly, growth counts the last 7 days
    and their excess over the 7 before, likes count logarithmically (one message with 2,000
    likes should not outweigh forty callers), dislikes lower it a little."""
    parts = {}
    for name, label, points in HEAT_PARTS:
        value = h.recent if name == "growth" else getattr(h, name)
        parts[name] = {"label": label, "value": value, "points": round(points(h), 1)}
    parts["growth"]["previous"] = h.previous
    others = sum(p["points"] for name, p in parts.items() if name != "dislikes")
    floor = -round(MAX_DISLIKE_SHARE * others, 1)
    parts["dislikes"]["points"] = max(parts["dislikes"]["points"], floor)
    score = round(sum(p["points"] for p in parts.values()), 1)
    return score, parts
