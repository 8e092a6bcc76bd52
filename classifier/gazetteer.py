"""Address text → district / street / community / grid codes (gazetteer matching).

Plain Python: areas come in as dicts, results go out as :class:`Resolution`.

How it works
------------
*Index.* Every area contributes surface forms, each with a *strength* (how sure a hit on that
form is a mention of that area) and optionally an *anchor*: a depth (0 district … 2 community)
at which an ancestor must also be mentioned for the form to count. Forms are the name, the
aliases, and generated variants:

- districts: ``奎文区 → 奎文``, ``青州市 → 青州``, development zones
  ``潍坊滨海经济技术开发区 → 滨海经济技术开发区 / 滨海开发区 / 滨海经开区 / 滨海区 / 滨海``,
  ``…高新技术产业开发区 → …高新区``;
- streets and towns: ``东关街道 → 东关街道办事处 / 东关街道办 / 东关街办 / 东关办事处 / 东关``,
  ``五井镇 → 五井``, a district prefix is dropped (``高密市朝阳街道 → 朝阳街道``), ``…管委会`` is
  dropped, ``潍城经济开发区 → 潍城开发区 / 潍城经开区``;
- communities and villages: ``中学街社区居民委员会 → 中学街社区 / 中学街居委会 / 中学街``,
  ``曹家巷居委会 → 曹家巷社区``, ``张家庄村委会 → 张家庄村 / 张家庄``,
  ``建华村村委会 → 建华村 / 建华``;
- grids named after their community (``中学街社区第1网格``) also get ``第1网格 / 1号网格``,
  anchored on the community.

Bare stems are weaker than suffixed forms. Two-character stems (``前进``, ``张家``) and stems
that read like an estate or landmark (``物流园``, ``火车站``) only count right after a mentioned
district or street (at most ``ANCHOR_GAP`` characters before, no sentence break between), or in
an address context: start of the text, after a colon, the city name, ``住在/家住/位于``, or
followed by a house number, ``附近/对面/门口…`` or ``的居民``. Road-like stems (``中学街``,
``文化路``) only count after their street: alone they name the road. A generated form is
dropped when it is also a form of one of the area's ancestors (``寒亭街道`` gets no ``寒亭``).

Context also vetoes: a bare name followed by ``路/小区/广场/…`` is part of another name
(``开元东路``, ``新城小区``; for villages only roads and estates: ``张家庄小学`` is still the
village), and a two-character bare name glued to a preceding word (``丽发新城``) needs an
anchor.

*Scan.* The text is folded (full-width → half-width, whitespace removed, with a map back to the
original offsets) and scanned once: at each position the first two characters select the name
lengths that occur with that prefix, and the longest indexed substring wins. Matches contained
in a longer match are dropped (``东关`` inside ``东关街道``).

*Scoring.* Every area hit by a match is a candidate. A candidate's score is the sum, over its
own level and its ancestors, of the strongest distinct match naming that level, so a street
named together with its district outscores the same name elsewhere, and a community named
with its street outscores its namesakes in other streets. The best candidate wins; if several
unrelated candidates tie (``张家庄村`` in eight towns, nothing else said), nothing is guessed:
the levels they share are filled, the rest stay ``None`` and ``candidates`` lists the options.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

LEVELS = ("district", "street", "community", "grid")
_DEPTH = {level: depth for depth, level in enumerate(LEVELS)}

#: Candidates whose score is within this of the best one are treated as a tie: a bare stem
#: (0.75) does not beat a two-character abbreviation (0.7) or a name's variant its full form.
TIE_MARGIN = 0.1

# Strengths of the kinds of forms.
_FULL = 1.0
_ALIAS = 0.9
_VARIANT = 0.9  # official variant of the name: X社区 for X居委会, X村 for X村委会, X街道办事处
_ABBREV = 0.8  # 奎文 for 奎文区, 五井 for 五井镇, 东关 for 东关街道 (three characters or more)
_ABBREV2 = 0.7  # the same with two characters
_STEM = 0.75  # a village or community name without its suffix: 张家庄
_WEAK = 0.5  # anchored forms: two-character stems, road-like stems, grid numbers

_NO_ANCHOR = -1
#: Anchored on a district like 0, but not waived by an address context (北海路东侧 is a road).
_STRICT = 9

_FULLWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_FULLWIDTH[0x3000] = 0x20
_SPACE = re.compile(r"\s")

_ROADLIKE = re.compile(r"(路|街|大街|大道|道|巷|胡同)$")
#: Stems that read like a housing estate, park or landmark (物流园, 幸福里, 东方新城): as bare
#: words they name the estate far more often than the community.
_ESTATELIKE = re.compile(
    r"(园|城|里|苑|府|湾|地|庭|居|寓|厦|场|站|中心|花园|小区|家园|国际|公馆|学校|医院|公司|厂|矿|所)$"
)
#: Words that, right after a bare district or street name, make it part of another name
#: (开元东路, 新城小区, 朝阳烧烤城).
_BLOCK_AFTER = re.compile(
    r"([东西南北中]{1,2}(路|街|大街|大道)|互通|"
    r"路|街|道|巷|弄|桥|港|湾|苑|府|城|厦|店|厂|局|院|馆|楼|寺|庙|村|镇|乡|县|区|园|里|站|"
    r"小区|花园|广场|公园|家园|大道|酒店|宾馆|学校|小学|中学|大学|公司|集团|市场|商场|国际|"
    r"公寓|大厦|中心|新村|小镇|影城|剧院|水库)"
)
#: The same for a bare community or village name, narrower: 张家庄小学, 张家庄路口 and
#: 河埠中心街 are still in the village, 幸福街 or 阳光小区 are not the community.
_BLOCK_AFTER_COMMUNITY = re.compile(
    r"([东西南北中]{0,2}(路|街|大街|大道|巷)(?!口)|小区|花园|家园|公寓|大厦|国际|新城|广场|公园)"
)
_PLACE_AFTER = (
    "的居民", "居民", "村民", "的住户", "附近", "对面", "旁边", "一带", "门口", "东侧", "西侧",
    "南侧", "北侧", "东边", "西边", "南边", "北边",
)  # fmt: skip
#: An address field starts at the start of the text or after a colon ("地址：古疃").
_FIELD_START = frozenset(":：")
#: An anchor does not reach across a sentence break.
_BREAK = re.compile(r"[,.;!?，。；！？、]")
#: Surfaces ending like this are names with their admin suffix, never a bare word.
_ADMIN_SUFFIX = re.compile(r"(区|县|市|旗|镇|乡|街道|办事处|街办|管委会|委员会|委会|社区|村|网格)$")
_ADDRESS_BEFORE = ("住在", "家住", "位于", "地址")
#: Characters after which a word can start (在东关, 是新城的): a two-character bare name of a
#: street or community preceded by any other Chinese character is likely the tail of another
#: name (丽发新城, 金楚北苑) and then needs an anchor.
_WORD_BEFORE = frozenset("在住于到往去从是和与及的为至向跟近离属映报诉市区县镇乡道村省")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_DIGIT = re.compile(r"\d")
#: An anchored form counts only if its anchor ends at most this many characters before it
#: (addresses run from large to small: 东关街道中学街, not 中学街…东关街道).
ANCHOR_GAP = 8
_NUMBERED = re.compile(r"[0-9一二三四五六七八九十]$")

_DISTRICT_SUFFIXES = ("自治县", "区", "县", "市", "旗")
_ZONE = re.compile(
    r"^(?P<stem>.*?)(?P<kind>经济技术开发区|高新技术产业开发区|高新技术开发区|高新区|经济开发区|"
    r"经济发展区|开发区|经开区|生态经济园区|经济园区|工业园区|园区|新区)$"
)
_ZONE_VARIANTS = {
    "经济技术开发区": ("经济技术开发区", "经济开发区", "开发区", "经开区", "区"),
    "高新技术产业开发区": ("高新技术产业开发区", "高新技术开发区", "高新区"),
    "高新技术开发区": ("高新技术开发区", "高新区"),
    "高新区": ("高新区", "高新技术产业开发区"),
    "经济开发区": ("经济开发区", "开发区", "经开区"),
    "经济发展区": ("经济发展区", "发展区"),
    "开发区": ("开发区", "经济开发区"),
    "经开区": ("经开区", "经济开发区", "开发区"),
    "生态经济园区": ("生态经济园区", "经济园区", "园区"),
    "经济园区": ("经济园区", "园区"),
    "工业园区": ("工业园区", "园区"),
    "园区": ("园区",),
    "新区": ("新区",),
}
_OFFICE_SUFFIXES = ("管理委员会", "管委会", "街道办事处", "办事处", "人民政府")

# Community/village suffixes, longest first: (suffix, kind). Kind "社区" keeps 社区 in the
# stem's main form, "居" is a residents' committee, "村" a village committee.
_COMMUNITY_SUFFIXES = (
    ("社区居民委员会", "社区"),
    ("社区村民委员会", "社区"),
    ("社区居民委会", "社区"),
    ("社区居委会", "社区"),
    ("社区村委会", "社区"),
    ("居民委员会", "居"),
    ("村民委员会", "村"),
    ("居委会", "居"),
    ("村委会", "村"),
    ("委员会", "村"),
    ("村会", "村"),
    ("社区", "社区"),
)
_GRID_NUMBER = re.compile(r"第?(\d+)号?网格$")


def fold(text: str) -> str:
    """Full-width → half-width and whitespace removed: the form names are indexed under."""
    return _SPACE.sub("", text.translate(_FULLWIDTH))


@dataclass(frozen=True)
class Resolution:
    """Where a text points. Codes are ``None`` for levels that are unknown or ambiguous."""

    district: str | None = None
    street: str | None = None
    community: str | None = None
    grid: str | None = None
    confidence: float = 0.0
    span: tuple[int, int] | None = None
    matched: str = ""
    candidates: list[Resolution] = field(default_factory=list)

    @property
    def code(self) -> str | None:
        """The most specific code that is filled."""
        return self.grid or self.community or self.street or self.district

    @property
    def level(self) -> str | None:
        for level in reversed(LEVELS):
            if getattr(self, level) is not None:
                return level
        return None

    @property
    def ambiguous(self) -> bool:
        return bool(self.candidates)

    def codes(self) -> dict[str, str | None]:
        return {level: getattr(self, level) for level in LEVELS}


@dataclass(frozen=True, slots=True)
class _Entry:
    code: str | None  # None: a city name, matched only so that it hides its substrings
    depth: int
    strength: float
    anchor: int  # depth an ancestor must be mentioned at (or deeper); -1: none; 9: strict 0
    generated: bool


@dataclass(frozen=True, slots=True)
class _Mention:
    strength: float
    match: int
    anchor: int


@dataclass(slots=True)
class _Area:
    code: str
    name: str
    depth: int
    parent: str | None
    path: tuple[str, ...] = ()


class Gazetteer:
    """Name index over an area tree; :meth:`resolve` finds the area an address text names."""

    def __init__(self, areas: Iterable[dict], city_names: Iterable[str] = ("潍坊市", "潍坊")):
        self._areas: dict[str, _Area] = {}
        aliases: dict[str, list[str]] = {}
        for row in areas:
            level = row["level"]
            if level not in _DEPTH:
                raise ValueError(f"area {row.get('code')}: unknown level {level!r}")
            code = str(row["code"])
            parent = row.get("parent")
            self._areas[code] = _Area(
                code, row["name"], _DEPTH[level], None if parent is None else str(parent)
            )
            aliases[code] = list(row.get("aliases") or ())
        for area in self._areas.values():
            area.path = self._build_path(area)
        self.city_names = tuple(fold(name) for name in city_names)

        forms: dict[str, dict[str, _Entry]] = {}  # surface → code → entry

        def add(surface, code, strength, anchor=_NO_ANCHOR, generated=True):
            surface = fold(surface)
            if len(surface) < 2:
                return
            by_code = forms.setdefault(surface, {})
            old = by_code.get(code)
            new = _Entry(code, self._areas[code].depth, strength, anchor, generated)
            if old is None or (strength, anchor == _NO_ANCHOR) > (
                old.strength,
                old.anchor == _NO_ANCHOR,
            ):
                by_code[code] = new

        for area in self._areas.values():
            generate = _GENERATORS[area.depth]
            for surface, strength, anchor in generate(self, area, area.name):
                add(surface, area.code, strength, anchor, generated=surface != area.name)
            for alias in aliases[area.code]:
                add(alias, area.code, _ALIAS, generated=False)
                for surface, strength, anchor in generate(self, area, alias):
                    add(surface, area.code, min(strength, _ALIAS), anchor)
        self._drop_ancestor_clashes(forms)
        for name in self.city_names:
            forms.setdefault(name, {})[None] = _Entry(None, -1, 0.0, _NO_ANCHOR, False)

        # surface → (entries, bare): a bare surface has no admin suffix (东关, 张家庄).
        self._index: dict[str, tuple[tuple[_Entry, ...], bool]] = {
            surface: (
                tuple(sorted(by_code.values(), key=lambda e: e.code or "")),
                _ADMIN_SUFFIX.search(surface) is None,
            )
            for surface, by_code in forms.items()
            if by_code
        }
        lengths: dict[str, set[int]] = {}
        for surface in self._index:
            lengths.setdefault(surface[:2], set()).add(len(surface))
        self._lengths = {
            prefix: tuple(sorted(found, reverse=True)) for prefix, found in lengths.items()
        }

    # ------------------------------------------------------------------ tree

    def _build_path(self, area):
        path = [area.code]
        seen = {area.code}
        parent = area.parent
        while parent is not None:
            above = self._areas.get(parent)
            if above is None or parent in seen:
                break
            path.append(parent)
            seen.add(parent)
            parent = above.parent
        path.reverse()
        # Index by depth: a path whose length does not match its depth (a missing level) is
        # padded so that path[depth] is always the area itself.
        if len(path) != area.depth + 1:
            by_depth = [None] * (area.depth + 1)
            for code in path:
                by_depth[self._areas[code].depth] = code
            return tuple(by_depth)
        return tuple(path)

    def area(self, code: str) -> dict | None:
        """The area as a dict (code, name, level, parent), or None."""
        area = self._areas.get(code)
        if area is None:
            return None
        return {
            "code": area.code,
            "name": area.name,
            "level": LEVELS[area.depth],
            "parent": area.parent,
        }

    def names(self, include_weak: bool = False) -> list[str]:
        """All indexed names, aliases and generated forms (for a segmenter's user dictionary).

        Weak forms (two-character and road-like stems, grid numbers) are left out unless
        ``include_weak``: as dictionary words they would split ordinary text wrongly.
        """
        out = []
        for surface, (entries, _) in self._index.items():
            if include_weak or any(
                e.code is None or (e.anchor == _NO_ANCHOR and e.strength > _WEAK) for e in entries
            ):
                out.append(surface)
        return sorted(out)

    def add_user_words(self, tokenizer, freq: int | None = None, tag: str = "ns") -> int:
        """Add :meth:`names` to a jieba-like tokenizer (anything with ``add_word``)."""
        words = self.names()
        for word in words:
            tokenizer.add_word(word, freq, tag)
        return len(words)

    # ------------------------------------------------------------------ forms

    def _district_forms(self, area, name):
        yield name, _FULL, _NO_ANCHOR
        bases = [name]
        for city in self.city_names:
            if name.startswith(city) and len(name) - len(city) >= 2:
                bases.append(name[len(city) :])
                yield name[len(city) :], _FULL, _NO_ANCHOR
                break
        for base in bases:
            zone = _ZONE.match(base)
            if zone:
                yield from _zone_forms(zone["stem"], zone["kind"], district=True)
                continue
            for suffix in _DISTRICT_SUFFIXES:
                if base.endswith(suffix) and len(base) - len(suffix) >= 2:
                    short = base[: -len(suffix)]
                    yield short, _ABBREV, _NO_ANCHOR
                    break

    def _street_forms(self, area, name):
        yield name, _FULL, _NO_ANCHOR
        district = self._areas.get(area.path[0]) if area.path and area.path[0] else None
        bases = [name]
        if district is not None:
            for prefix in _district_prefixes(district.name, self.city_names):
                if name.startswith(prefix) and len(name) - len(prefix) >= 3:
                    bases.append(name[len(prefix) :])
                    yield name[len(prefix) :], _FULL, _NO_ANCHOR
                    break
        for base in list(bases):
            for suffix in _OFFICE_SUFFIXES:
                if base.endswith(suffix) and len(base) - len(suffix) >= 2:
                    trimmed = base[: -len(suffix)]
                    if suffix == "街道办事处":
                        trimmed += "街道"
                    bases.append(trimmed)
                    yield trimmed, _FULL, _NO_ANCHOR
                    break
        for base in bases:
            zone = _ZONE.match(base)
            if zone:
                yield from _zone_forms(zone["stem"], zone["kind"], district=False)
                continue
            stem = None
            if base.endswith("街道") and len(base) >= 4:
                stem = base[:-2]
                for extra in ("街道办事处", "街道办", "街办", "办事处"):
                    yield stem + extra, _VARIANT, _NO_ANCHOR
            elif base[-1:] in ("镇", "乡") and len(base) >= 3:
                stem = base[:-1]
                yield base + "人民政府", _VARIANT, _NO_ANCHOR
                if base[-1] == "乡":
                    yield stem + "镇", _WEAK, 0  # towns renamed from 乡 are often still called so
            if stem and len(stem) >= 2:
                if _ROADLIKE.search(stem):  # 北海路 (街道): the road, unless after its district
                    yield stem, _WEAK, _STRICT
                else:
                    yield stem, _ABBREV if len(stem) >= 3 else _ABBREV2, _NO_ANCHOR

    def _community_forms(self, area, name):
        yield name, _FULL, _NO_ANCHOR
        kind, stem = None, name
        for suffix, suffix_kind in _COMMUNITY_SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                kind, stem = suffix_kind, name[: -len(suffix)]
                break
        while stem.endswith("村村") and len(stem) > 3:  # 韩家村村村会
            stem = stem[:-1]
        if kind is None:
            if name.endswith("村") and len(name) >= 3:
                kind, stem = "村", name[:-1]
            elif name.endswith(("居委会", "委会")):
                return
            else:
                yield from _bare_stem(name)
                return
        if kind in ("社区", "居"):
            if stem.endswith("社区") and len(stem) >= 4:
                stem = stem[:-2]
            yield stem + "社区", _VARIANT, _NO_ANCHOR
            yield stem + "居委会", _VARIANT, _NO_ANCHOR
            yield stem + "社区居委会", _VARIANT, _NO_ANCHOR
            yield stem + "居民委员会", _VARIANT, _NO_ANCHOR
            yield stem + "社区居民委员会", _VARIANT, _NO_ANCHOR
            yield from _bare_stem(stem)
        else:  # village
            if stem.endswith("村"):
                village = stem
                bare = stem[:-1]
            else:
                village = stem + "村"
                bare = stem
            if len(village) >= 3:
                yield village, _VARIANT, _NO_ANCHOR
            else:  # 东村, 孔村: too short to trust alone
                yield village, _WEAK, 0
            yield village + "委会", _VARIANT, _NO_ANCHOR
            yield village + "民委员会", _VARIANT, _NO_ANCHOR
            if len(bare) >= 2 and not _NUMBERED.search(bare):
                yield from _bare_stem(bare)

    def _grid_forms(self, area, name):
        yield name, _FULL, _NO_ANCHOR
        parent = self._areas.get(area.parent) if area.parent else None
        suffix = name
        if parent is not None and name.startswith(parent.name):
            suffix = name[len(parent.name) :]
        number = _GRID_NUMBER.search(suffix)
        if number:
            n = int(number[1])
            for form in (f"第{n}网格", f"{n}号网格", f"{n:02d}网格", f"网格{n}"):
                yield form, _WEAK + 0.2, 2
        elif suffix != name:
            yield suffix, _WEAK + 0.2, 2

    def _drop_ancestor_clashes(self, forms):
        """Drop a generated form of an area when it is also a form of one of its ancestors."""
        for by_code in forms.values():
            if len(by_code) < 2:
                continue
            codes = set(by_code)
            for code in list(by_code):
                entry = by_code[code]
                if not entry.generated:
                    continue
                path = self._areas[code].path
                if any(other in codes for other in path[:-1] if other is not None):
                    del by_code[code]

    # ------------------------------------------------------------------ resolve

    def scan(self, text: str) -> list[tuple[int, int, str, list[str]]]:
        """Raw matches (start, end, surface, area codes), offsets in the original text; for
        debugging and for callers that want every place name in a text."""
        norm, offsets = self._fold_with_offsets(text)
        found = []
        for start, end, surface, entries, _ in self._scan(norm):
            o_start, o_end = _original_span(offsets, start, end)
            found.append((o_start, o_end, surface, [e.code for e in entries if e.code]))
        return found

    def _fold_with_offsets(self, text):
        folded = text.translate(_FULLWIDTH)
        if _SPACE.search(folded) is None:
            return folded, None
        keep = [i for i, ch in enumerate(folded) if not ch.isspace()]
        return "".join(folded[i] for i in keep), keep

    def _scan(self, norm):
        lengths_for = self._lengths.get
        index = self._index
        n = len(norm)
        matches = []
        reach = 0  # end of the longest match so far: matches inside it are dropped
        for i in range(n - 1):
            lengths = lengths_for(norm[i : i + 2])
            if lengths is None:
                continue
            for length in lengths:
                end = i + length
                if end > n or end <= reach:
                    continue
                surface = norm[i:end]
                found = index.get(surface)
                if found is not None:
                    matches.append((i, end, surface, found[0], found[1]))
                    reach = end
                    break
        return matches

    def resolve(self, text: str) -> Resolution:
        """The area ``text`` names; see the module docstring for the rules."""
        if not text:
            return Resolution()
        norm, offsets = self._fold_with_offsets(text)
        matches = self._scan(norm)
        if not matches:
            return Resolution()

        mentions = self._mentions(norm, matches)
        if not mentions:
            return Resolution()

        scored = []
        for code in mentions:
            chain = self._chain(code, mentions, matches, norm)
            if chain is not None:
                scored.append((chain[0], code, chain[1]))
        if not scored:
            return Resolution()
        scored.sort(key=lambda item: (-item[0], -len(self._areas[item[1]].path), item[1]))
        best_score = scored[0][0]
        floor = best_score - TIE_MARGIN - 1e-9
        contenders = [item for item in scored if item[0] >= floor]
        if len(contenders) > 1:
            contenders = [
                item
                for item in contenders
                if not any(
                    other is not item and self._is_ancestor(item[1], other[1])
                    for other in contenders
                )
            ]
        winner = contenders[0]
        runner_up = 0.0
        for score, code, _ in scored:
            if score < floor and not self._related(code, winner[1]):
                runner_up = score
                break

        if len(contenders) == 1:
            return self._resolution(
                winner[1], winner[2], matches, offsets, text, runner_up / best_score
            )

        # A tie between unrelated areas: fill the levels they share, list the options.
        options = [
            self._resolution(code, assigned, matches, offsets, text, 0.0)
            for _, code, assigned in contenders
        ]
        share = 1.0 / len(options)
        best_option = max(option.confidence for option in options)
        options = [
            replace(option, confidence=round(option.confidence * share, 4)) for option in options
        ]
        paths = [self._areas[code].path for _, code, _ in contenders]
        common = []
        for depth in range(min(len(p) for p in paths)):
            codes = {p[depth] for p in paths}
            if len(codes) != 1 or None in codes:
                break
            common.append(paths[0][depth])
        spans = [option.span for option in options if option.span]
        start = min(s for s, _ in spans)
        end = max(e for _, e in spans)
        strengths = []
        for depth in range(len(common)):
            picks = [assigned[depth] for _, _, assigned in contenders if depth < len(assigned)]
            if all(pick is not None for pick in picks):
                strengths.append(min(pick.strength for pick in picks))
        if not common:
            confidence = 0.0
        elif strengths:
            confidence = 0.5 * _combine(strengths)
        else:  # the shared levels follow from the tree, not from a mention
            confidence = 0.25 * best_option
        codes = dict.fromkeys(LEVELS)
        for depth, code in enumerate(common):
            codes[LEVELS[depth]] = code
        return Resolution(
            **codes,
            confidence=round(confidence, 4),
            span=(start, end),
            matched=text[start:end],
            candidates=options,
        )

    def _mentions(self, norm, matches):
        """Area code → mentions. Bare names followed by 路/小区/… are dropped; the anchor of
        a short form is waived in an address context (潍坊市古疃, 古疃377号, 家住古疃, 古疃附近,
        or the start of the text);
        a two-character bare name glued to a preceding word (丽发新城) needs an anchor."""
        mentions: dict[str, list[_Mention]] = {}
        starts = {m[0] for m in matches}
        for idx, (start, end, _, entries, bare) in enumerate(matches):
            after_name = end in starts
            glued = after_name or (idx > 0 and matches[idx - 1][1] == start)
            block_wide = block_narrow = loose = False
            if bare:
                if not after_name:
                    block_wide = _BLOCK_AFTER.match(norm, end) is not None
                    block_narrow = _BLOCK_AFTER_COMMUNITY.match(norm, end) is not None
                loose = (
                    end - start == 2
                    and start > 0
                    and not glued
                    and norm[start - 1] not in _WORD_BEFORE
                    and _CJK.match(norm, start - 1) is not None
                )
            context = not loose and (
                start == 0
                or norm[start - 1] in _FIELD_START
                or _DIGIT.match(norm, end) is not None
                or norm.startswith(_PLACE_AFTER, end)
                or norm.endswith(_ADDRESS_BEFORE, 0, start)
                or (
                    idx > 0 and matches[idx - 1][1] == start and matches[idx - 1][3][0].code is None
                )
            )
            for entry in entries:
                if entry.code is None:
                    continue
                anchor, waive = entry.anchor, context
                if anchor == _STRICT:
                    anchor, waive = 0, False
                if entry.depth >= 2:
                    if block_narrow:
                        continue
                elif block_wide:  # 枳沟学校 after 诸城市 is the town's school, alone it is not
                    if entry.depth == 0:
                        continue
                    anchor, waive = max(anchor, 0), False
                if waive and anchor == 0:
                    anchor = _NO_ANCHOR
                elif loose and anchor == _NO_ANCHOR and entry.depth > 0:
                    anchor = 0
                mentions.setdefault(entry.code, []).append(_Mention(entry.strength, idx, anchor))
        return mentions

    def _chain(self, code, mentions, matches, norm):
        """Score of ``code``: its own best mention plus its ancestors' distinct mentions."""
        path = self._areas[code].path
        depth = len(path) - 1
        used = set()
        assigned: list[_Mention | None] = [None] * (depth + 1)
        for d in range(depth, -1, -1):
            node = path[d]
            if node is None:
                continue
            best = None
            for mention in mentions.get(node, ()):
                if mention.match in used:
                    continue
                if best is None or mention.strength > best.strength:
                    best = mention
            if best is not None:
                assigned[d] = best
                used.add(best.match)
        if assigned[depth] is None:
            return None
        for d in range(depth + 1):
            mention = assigned[d]
            if mention is None or mention.anchor == _NO_ANCHOR:
                continue
            start, end = matches[mention.match][:2]
            if not any(
                (anchor := assigned[k]) is not None
                and 0 <= start - matches[anchor.match][1] <= ANCHOR_GAP
                and (
                    start == matches[anchor.match][1]
                    or _BREAK.search(norm, matches[anchor.match][1], start) is None
                )
                for k in range(mention.anchor, d)
            ):
                if d == depth:
                    return None
                assigned[d] = None
        return sum(m.strength for m in assigned if m is not None), assigned

    def _is_ancestor(self, code, other):
        path = self._areas[other].path
        return code != other and code in path

    def _related(self, a, b):
        return a == b or self._is_ancestor(a, b) or self._is_ancestor(b, a)

    def _resolution(self, code, assigned, matches, offsets, text, runner_up_ratio):
        path = self._areas[code].path
        codes = dict.fromkeys(LEVELS)
        for depth, node in enumerate(path):
            codes[LEVELS[depth]] = node
        used = [m for m in assigned if m is not None]
        start = min(matches[m.match][0] for m in used)
        end = max(matches[m.match][1] for m in used)
        o_start, o_end = _original_span(offsets, start, end)
        confidence = _combine([m.strength for m in used]) * (1.0 - 0.4 * runner_up_ratio)
        return Resolution(
            **codes,
            confidence=round(confidence, 4),
            span=(o_start, o_end),
            matched=text[o_start:o_end],
        )


_GENERATORS = {
    0: Gazetteer._district_forms,
    1: Gazetteer._street_forms,
    2: Gazetteer._community_forms,
    3: Gazetteer._grid_forms,
}


def _combine(strengths):
    """Independent evidence: 1 − Π(1 − 0.8·s)."""
    miss = 1.0
    for strength in strengths:
        miss *= 1.0 - 0.8 * strength
    return 1.0 - miss


def _original_span(offsets, start, end):
    if offsets is None:
        return start, end
    return offsets[start], offsets[end - 1] + 1


def _district_prefixes(name, city_names):
    """Ways a street name may start with its district: 高密市, 高密."""
    prefixes = [name]
    for suffix in _DISTRICT_SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            prefixes.append(name[: -len(suffix)])
            break
    for city in city_names:
        if name.startswith(city) and len(name) - len(city) >= 2:
            prefixes.append(name[len(city) :])
    return prefixes


def _zone_forms(stem, kind, district):
    """Forms of a development zone ``stem`` + ``kind`` (潍坊滨海 + 经济技术开发区)."""
    for variant in _ZONE_VARIANTS.get(kind, (kind,)):
        if (stem or variant.startswith("高新")) and len(stem + variant) >= 3:
            yield stem + variant, _VARIANT, _NO_ANCHOR
    if len(stem) >= 2:
        yield stem, _ABBREV if len(stem) >= 3 or district else _ABBREV2, _NO_ANCHOR


def _bare_stem(stem):
    """A community or village name without its suffix: weak, anchored when it looks like a
    road (中学街: the road, not the community) or is two characters (前进, 张家)."""
    if len(stem) < 2:
        return
    if _ROADLIKE.search(stem):
        yield stem, _WEAK, 1
    elif len(stem) == 2 or _ESTATELIKE.search(stem):
        yield stem, _WEAK, 0
    elif stem.endswith("村"):  # 鞠家村(社区): as much a village's name as 鞠家村(村委会)
        yield stem, _VARIANT, _NO_ANCHOR
    else:
        yield stem, _STEM, _NO_ANCHOR
