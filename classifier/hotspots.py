"""Hot issues (热点问题): group messages about one matter, title the groups, score their heat.

Method
------
A hot issue is one matter: the same place or object *and* the same problem. Each message
becomes three things, computed from its title and the first ``TEXT_CHARS`` characters of its
text (the matter is stated there; the cap also bounds the work per message):

* **places** — named estates, sites, schools, companies, roads, bus lines … found by suffix
  patterns (小区, 花园, 新城, 苑, 学校, 公司, 搅拌站, 路, 街道, 社区 …). From each suffix
  the name is read leftwards up to a boundary (punctuation, function words, an area marker
  such as 市/区/县, the end of the previous name), opening verbs (投诉, 修建 …) and junk heads
  (住, 家住, 位于, 救救; a leading 者 or 其) are cut off and, for long runs, so are common
  dictionary words at the head (jieba's word frequencies tell "商品房" from "伊景"); a head
  made only of common words or characters (晚上进出小区, 多次找物业), a time word (半夜搅拌站)
  or one ending with 门口/对面 … (乐园门口小区: an unnamed estate) is no name. A road with a
  house number (五马路369号) is one name and one key. The message's own area names (its
  district, street, community, as an address starts) are blanked out of the text first. A
  suffix after a verb or a measure word is a bare object, not a name (违建搅拌站,
  一座搅拌站, 道路). A name right after another is one compound (伊景园滨河苑) unless the
  second part is generic (丽发新城小区 is 丽发新城). Each part's
  *core* (the name without generic suffixes) is a place key, so 丽发小区 and 丽发新城 meet,
  and so do 伊景园滨河苑 and 滨河苑. A named policy or object is a key the same way
  (普惠性幼儿园); a matter with no name at all (人才购房补贴) is found by its words.
* **the main place** — what the message is about: the places of its title, else a place its
  text names at least twice. Other places in the text only help to find candidates.
* **where it is** (``spots_of``, ``compatible``) — the specific places its text names (an
  address, an estate's core; "=人民医院" when the core is a dictionary word) and, when the
  text speaks of a place at all (an area name, 村里, 楼下 …), its community from the area
  chain (``Message.places``, the third entry from the end without grids). Two sides that
  both name specific places must share one (the estate or its road: one is enough; two
  addresses must share a distinctive one); two in different communities must share a
  distinctive text place (the text wins: 凤凰嘉苑 callers put in neighbouring communities are
  one matter); policy questions (no place in either) group by words; a side with a place
  never joins one without. A text place named from ``place_streets`` streets or more is no
  one place (a template phrase, a landmark addresses are given by): it neither joins nor
  separates.
* **problem words** — jieba tokens minus stop words, complaint boilerplate and the places'
  own names, keeping the objects they name (搅拌站 stays a problem word of 丽发新城搅拌站);
  a word of three or more characters also counts its first two (搅拌站 and 搅拌厂 share
  搅拌); title words count ``TITLE_WEIGHT`` times. Interned to integer ids.

``Index.add`` looks at the groups registered under the message's place keys and its two
rarest title words (the ``block_k`` most recent groups per key, so a huge block costs no
more than a small one), scores each by the TF-IDF cosine between the message's problem words
and the group's centroid (counts summed over members, capped to its top terms; document
frequencies are those of the messages held), and joins the best group when

* they may be one place (above) — otherwise never;
* they share a main place, or a specific place, and the cosine is at least
  ``place_threshold``;
* one side has no main place and the cosine is at least ``object_threshold`` (stricter);
* or the message's title names another place but its text names the group's twice (广铁集团
  in the title, 伊景园滨河苑 it built in the text), again at ``object_threshold``;

two messages whose main places differ are never grouped, and two at one place are grouped
only if their problems are alike. Otherwise the message starts a group (``("new", n)``).
``batch`` adds the messages one by one in time order and then runs ``merge_similar`` once:
groups that started apart because of the order the messages came in, may be one place, and
now share a main place and look alike, are merged (largest first). So a rebuild equals the
incremental path followed by one merge pass; ``batch(..., merge=False)`` equals the
incremental path exactly.

Memory: a message is one flat tuple of atoms (term ids and counts as bytes, its keys, its
main place) that the garbage collector stops tracking; a group of one keeps no centroid of
its own, and a key naming one group holds that group rather than a list.

Titles are the place most members name (when at least 30 % do) plus up to three problem
words (≤ 8 characters) ordered as a member's title uses them: 丽发新城搅拌站噪音污染,
伊景园滨河苑捆绑销售车位, 人才购房补贴. Heat (``heat``) is a sum of explained parts.

On the demo's 90-day history (3,195 tickets, addresses in all five districts) the earlier
engine's top 10 were template matters (电梯被困, 垃圾清运 …) gathered across 40-64
communities; now every top group is one place (1 community) or a placeless policy question,
and the storylines lead: 凤凰嘉苑搅拌站夜间噪音 (19), 医保缴费 (10), 锦绣华庭捆绑车位 (12).

Where it differs from the prize team's reference top 5 (热点问题表_参考.csv): their 4th and
5th issues (A7县泉塘街道…, A7县楚龙街道拆迁) gather a street's messages about many matters
(拥堵, 消防, 白蚁, 拆迁 …); here those are separate small groups, because a hot issue is one
matter that one unit can act on.

Measured (``python bench/hotspots.py``; 2 cores shared with other jobs, load average 4.5-5.1
during the run, so wall-clock times include waiting for a core; CPU times are the code's own
cost):

* 附件3 (4,326 real web messages): batch 6.7 s wall (median of 3; 4.4 s in the quickest run),
  3.3 s CPU; 3,468 groups, 491 of two or more. Top 3 by heat: 丽发新城噪音灰尘搅拌站 (51),
  伊景园滨河苑捆绑销售车位 (48), 人才购房补贴 (14) — the reference's first three, at ranks
  1, 2, 3; its 4th and 5th are street-wide mixtures (see above), not in our top 10 by design.
* One add (text work included) into an index of 1,000,000 messages (real messages copied
  with renamed places, see bench/hotspots.py): CPU p50 0.9 ms, p99 1.3 ms; wall p50 0.9 ms,
  p99 3.8 ms back to back on the loaded machine. Resident memory of the index 1.7 GB (~1.7 KB
  a message, the synthetic tuple ids included); the benchmark calls ``gc.freeze()`` after
  building it so that full collections skip it.
"""

import heapq
import math
import re
import sys
from array import array
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from classifier.normalize import normalize
from classifier.segment import Segmenter

#: Characters of the message text read after its title.
TEXT_CHARS = 150

#: Suffixes that end the name of a place or object, longest first.
PLACE_SUFFIXES = tuple(
    sorted(
        """
        股份有限公司 有限责任公司 有限公司 搅拌站 搅拌厂 垃圾站 中转站 加油站 变电站 幼儿园
        卫生院 派出所 农贸市场 菜市场 产业园 工业园 开发区 商业街 步行街 片区
        小学 中学 大学 学院 学校 医院 公司 集团 工地 项目 市场 商场 广场 大厦 公寓 花园
        新城 小区 家园 公馆 山庄 名苑 名城 华府 雅苑 新村 街道 社区 大道 公园 酒店 宾馆
        工厂 楼盘 车站 码头 高速 隧道 大桥 医馆 诊所 超市 银行 物业 驾校 网吧 酒吧 KTV
        苑 府 园 城 湾 滩 庭 邸 村 镇 乡 路 街 桥 巷 厂 湖
        """.split(),
        key=len,
        reverse=True,
    )
)
_SUFFIX_RE = re.compile("|".join(map(re.escape, PLACE_SUFFIXES)))
#: A character that cannot be part of a name (the name is read leftwards up to it).
_BOUNDARY_CHARS = frozenset(
    "的在了和与及到从对向给把被于是有为将往至或等个这那该我你他她们市区县省旁"
    "和跟同并且也都就还又很最更已曾请求问要让使由因所以但而如若即则便仍却再每各某其此买卖租距"
)
#: A suffix right after one of these is a bare object, not a name's end ("违建搅拌站",
#: "一座搅拌站", "这所学校").
_BARE_BEFORE = frozenset("建修盖开办设搬拆有是在个座家所条些处")
#: Ordinary words ending like a name (道路, 跑路): a name never ends with them.
_BARE_WORDS = frozenset(
    "跑路 道路 马路 公路 铁路 线路 走路 出路 思路 一路 沿路 临路 修路 让路 带路 问路 网路 套路 "
    "字路 路路 退路 迷路 上路 绕路 来路 去路 找路 堵路 断路 封路 过路 水路 电路 小路 "
    "进城 出城 全城 满城 "
    "县城 省城 老城 古城 京城 同城 校园 田园 乐园 庄园 菜园 果园 墓园 家乡 城乡 下乡 老乡 回乡 "
    "老街 上街 沿街 满街 过桥 断桥 天桥 小村 农村 乡村 全村 本村 邻村 之路".split()
)
#: A suffix followed by these is an ordinary word (城市, 园区, 物业费), not a name's end.
_NOT_AN_END = frozenset(
    "城市 城管 城乡 城区 园区 府办 村委 镇政 路费 街头 桥梁 路面 路灯 路边 路上 路段 路况 "
    "物业费 广场舞 村民 村里 村委会".split()
)
#: Words that open a message and are not part of a name ("投诉丽发新城…").
_LEAD_WORDS = tuple(
    sorted(
        "投诉 反映 举报 咨询 关于 请问 建议 要求 希望 解决 位于 处于 地处 附近 旁边 门口 "
        "修建 新建 违建 乱建 建设 兴建 扩建 在建 开设 开办 设立 设置 拆除 拆迁 包括 数次 距离 "
        "据说 听说 回复 答复 搞成 办成 改成 建成 变成 发现 看到 经过 通过 来到 进入 作为 成为 属于 "
        "就是 还是 或者 以及 并且 而且 导致 造成 "
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
    "老旧 居民 政府 人民政府 手机银行 网上银行 配套 公办 民办 私立 私人 当地 本地 城区 市区 "
    "新建 这家 那家 一家 某 小型 大型 普通 正规 非法 所有 部分 多家 全市 全区 全县 乡镇 周边的 "
    "附近的 公共 公立 省级 市级 区级 县级 重点 示范 高档 商品 住宅区 公交 地铁 高铁 "
    "门口 北门 南门 东门 西门 大门 对面 楼下 楼上 后面 前面 "
    "自来水公司 供水公司 热力公司 供热公司 供电公司 电力公司 "
    "燃气公司 天然气公司 物业公司 开发商 售楼处 "
    "半夜 凌晨 深夜 夜里 夜间 晚上 白天 早上 上午 中午 下午 傍晚 今天 昨天 每天 天天 整夜".split()
)
#: Letters-and-digits area codes of anonymised data ("A市", "A7县") are areas, not names.
_AREA_CODE = re.compile(r"^[A-Za-z]\d{0,3}[省市区县]$")
#: jieba word frequency above which a word at the head of a name is ordinary language.
_COMMON_FREQ = 200
#: jieba frequency above which a single character is ordinary language (找, 起; not 嘉, 丽).
_COMMON_CHAR_FREQ = 10000
MAX_NAME_CHARS = 6
MAX_COMPANY_CHARS = 10
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
    问问 以东 以西 以南 以北 东侧 西侧 南侧 北侧 一带 挨着 何时能 十几年 近半年 几十年 祖祖辈辈
    事实 改为 到底 究竟 真的 实在 简直 希望能 能不能 可不可以 有没有 是不是 为啥 咋办 怎么办
    """.split()
)
_DIGITS = re.compile(r"^[\dA-Za-z.%]+$")
_BUS_LINE = re.compile(r"^[A-Za-z]?\d{1,4}$")


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


#: Verbs and pronoun fragments that open a run read leftwards but are no part of the name
#: ("我住丽发新城" → 丽发新城, "家住凤凰嘉苑", "救救广铁集团"), longest first.
_JUNK_HEADS = tuple(
    sorted(
        "家住 我住 住在 居住在 住于 位于 地处 处于 坐落于 救救 求求 帮帮 住 在".split(),
        key=len,
        reverse=True,
    )
)
#: A name never starts with these function characters ("者普惠性幼儿园" is 普惠性幼儿园).
_FUNCTION_HEADS = frozenset("者着过之乃即而则其")


def _clean_head(run):
    """Drop junk heads and function characters from the start of a run."""
    changed = True
    while changed and run:
        changed = False
        if run[0] in _FUNCTION_HEADS:
            run, changed = run[1:], True
            continue
        for word in _JUNK_HEADS:
            if run.startswith(word) and len(run) > len(word):
                run, changed = run[len(word) :], True
                break
    return run


def _trim_head(run):
    """Drop leading function words and common dictionary words from a name read leftwards."""
    run = _clean_head(run)
    changed = True
    while changed and run:
        changed = False
        for word in _LEAD_WORDS:
            position = run.rfind(word)
            if position >= 0 and len(run) - position - len(word) >= 1:
                run = run[position + len(word) :]
                changed = True
                break
    run = _clean_head(run)
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
    return _clean_head("".join(tokens))


#: A name's head ending with these says where an unnamed place is (乐园门口小区).
_RELATIONAL = tuple(
    "门口 对面 附近 旁边 北门 南门 东门 西门 大门 东侧 西侧 南侧 北侧 周边 隔壁 后面 前面 "
    "楼下".split()
)


@lru_cache(maxsize=65536)
def _ordinary_words(head):
    """Whether a name's head is two or more common dictionary words or characters (晚上进出,
    多次找, 月起), which a real name (凤凰嘉, 丽发, 欢乐海沙) is not."""
    tokens = _Words.segmenter().tokenizer.lcut(head, HMM=False)
    return len(tokens) >= 2 and all(
        _Words.freq(t) >= (_COMMON_FREQ if len(t) > 1 else _COMMON_CHAR_FREQ) for t in tokens
    )


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


_SUFFIX_SET = frozenset(PLACE_SUFFIXES)
_SUFFIX_LENGTHS = sorted({len(s) for s in PLACE_SUFFIXES}, reverse=True)


@lru_cache(maxsize=65536)
def core(name):
    """A name without its generic suffixes (丽发新城小区 → 丽发): the blocking key."""
    while True:
        for n in _SUFFIX_LENGTHS:
            if len(name) - n >= 2 and name[-n:] in _SUFFIX_SET:
                name = name[:-n]
                break
        else:
            return name


#: A road and house number: 五马路369号, 健康东街607号 (the name is read leftwards).
_ADDRESS_RE = re.compile(r"(?:大道|大街|路|街|巷|道)(\d{1,5})号")
_ADDRESS_NAME = re.compile(r"(?:大道|大街|路|街|巷|道)\d{1,5}号$")
#: Where a road's name read leftwards stops (和 may start one: 和平路).
_ADDRESS_BOUNDARY = frozenset("的在了是于到从向对给把被我你他她住近旁位处这那该其市区县省号")
MAX_ROAD_CHARS = 5


def _addresses(text):
    """[(name, start, end)] of the roads with a house number in a text."""
    found = []
    for match in _ADDRESS_RE.finditer(text):
        start = match.start()
        left = start
        while left > 0 and start - left < MAX_ROAD_CHARS:
            char = text[left - 1]
            if char in _ADDRESS_BOUNDARY or not char.isalnum() or char.isdigit():
                break
            left -= 1
        head = _clean_head(text[left:start])
        if head and not _DIGITS.match(head):
            found.append(
                (head + match.group(), match.end() - len(head + match.group()), match.end())
            )
    return found


def _scan(text):
    """Place names in one normalised text, in order of appearance. Roads with a house number
    (五马路369号) are names of their own, read first. A name read leftwards stops where the
    previous one ended; right after it, the two are one compound name (伊景园 + 滨河苑),
    unless the second is only a generic word (丽发新城 + 小区)."""
    addresses = _addresses(text)
    for _, start, end in addresses:
        text = text[:start] + "，" * (end - start) + text[end:]
    names = _scan_suffixes(text)
    if not addresses:
        return [name for name, _, _ in names]
    return [name for name, _, _ in sorted(names + addresses, key=lambda item: item[1])]


def _scan_suffixes(text):
    found = []  # [name, start, end]
    for match in _SUFFIX_RE.finditer(text):
        start, end = match.start(), match.end()
        if text[start : end + 1] in _NOT_AN_END:
            continue
        floor = found[-1][2] if found else 0
        if start < floor or (start > floor and text[start - 1] in _BARE_BEFORE):
            continue
        if start > floor and text[start - 1 : end] in _BARE_WORDS:
            continue
        left = start
        longest = MAX_COMPANY_CHARS if match.group().endswith("公司") else MAX_NAME_CHARS
        while left > floor and start - left < longest:
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
            if (
                len(head) != 1
                and len(previous[0]) + len(head) + len(match.group()) <= 12
                and not any(word in head for word in _LEAD_WORDS)
            ):
                previous[0] += head + match.group()
                previous[2] = end
                continue
        run = _clean_head(text[left:start])
        head = _trim_head(run)
        if match.group() == "路" and _BUS_LINE.match(head):
            found.append([head + "路", start - len(head), end])  # 204路 is a bus line
            continue
        if len(head) < 2 or head in _GENERIC_NAMES or _DIGITS.match(head):
            continue
        if head in _Words.segmenter().stop_words or head in _NOISE_WORDS:
            continue
        if head.endswith(_RELATIONAL):
            continue  # 水上乐园门口小区: an unnamed estate by a landmark
        if _ordinary_words(head):
            # 晚上进出小区, 多次找物业: ordinary words. A long run trimmed to common words
            # keeps its last word (北大资源理想家园 → 理想家园).
            last = _Words.segmenter().tokenizer.lcut(head, HMM=False)[-1]
            if len(run) <= 4 or len(last) < 2 or _ordinary_words(last):
                continue
            head = last
        name = head + match.group()
        if name in _GENERIC_NAMES or _is_area(name) or name.endswith("政府"):
            continue
        found.append([name, end - len(name), end])
    return [tuple(item) for item in found]


@lru_cache(maxsize=4096)
def _area_pattern(known):
    names = sorted({normalize(a) for a in known if a and len(a) >= 2}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, names))) if names else None


def _blank_areas(text, known):
    """The text with the known area names (its district, street, community as the address
    starts) replaced by punctuation: they are the gazetteer's, not the matter's place."""
    pattern = _area_pattern(tuple(known)) if known else None
    return pattern.sub("，", text) if pattern else text


def _ranked_places(title, text, known=()):
    """[(name, weight, in the title)], most named first (a title mention weighs 3); the
    known area names are not read as places of the text."""
    title, text = normalize(title or ""), normalize((text or "")[: TEXT_CHARS * 2])[:TEXT_CHARS]
    counts, order, in_title = Counter(), {}, set()
    for weight, part in ((3, _blank_areas(title, known)), (1, _blank_areas(text, known))):
        for name in _scan(part):
            counts[name] += weight
            order.setdefault(name, len(order))
            if weight == 3:
                in_title.add(name)
    names = sorted(counts, key=lambda n: (-counts[n], order[n]))
    return [(name, counts[name], name in in_title) for name in names]


def places(title, text, known=()):
    """Place or object names the message is about, most specific first: named estates,
    sites, companies, schools, roads (五马路369号 with its house number) found in the title
    then the text, then the known area names (which are not read as text places: 崇文社区五马路
    369号 gives 五马路369号, then the chain). Fast (a few hundred microseconds)."""
    result = [name for name, _, _ in _ranked_places(title, text, known)]
    for area in known:
        if area and area not in result:
            result.append(area)
    return tuple(result)


def _place_keys(names):
    keys = []
    for name in names:
        if _ADDRESS_NAME.search(name):
            keys.append(name)  # 五马路369号: the whole address, not 五马 and 369号
            continue
        for part in _components(name):
            key = core(part)
            if part in PLACE_SUFFIXES:
                continue
            if len(key) >= 2 and key not in _GENERIC_NAMES and not _is_area(part):
                keys.append(key)
    return list(dict.fromkeys(keys))


#: Suffixes that name a source of trouble: in "丽发新城搅拌站" the 搅拌站 is the problem too.
_OBJECT_SUFFIXES = frozenset(
    "搅拌站 搅拌厂 垃圾站 中转站 加油站 变电站 工地 市场 菜市场 农贸市场 学校 幼儿园 小学 "
    "中学 医院 酒吧 KTV 网吧 工厂 超市 驾校 物业 诊所 酒店 宾馆 高速 隧道 码头".split()
)


def _cores(place_names):
    cores = set()
    for name in place_names:
        cores.add(core(name))
        cores.update(core(part) for part in _components(name))
    return cores


def _problem_tokens(text, place_names, cores=None):
    """Problem words of a text: no stop words, no boilerplate, not the places' own names
    (丽发, 新城 of 丽发新城) but the objects they name (搅拌站)."""
    if cores is None:
        cores = _cores(place_names)
    tokens = []
    for token in _Words.segmenter().cut(text):
        if len(token) < 2 or token in _NOISE_WORDS or _DIGITS.match(token) or _is_area(token):
            continue
        if any(token in c for c in cores):
            continue
        if token not in _OBJECT_SUFFIXES and any(token in name for name in place_names):
            continue
        tokens.append(token)
        if len(token) >= 3 and token[:2] not in _NOISE_WORDS:
            tokens.append(token[:2])  # 搅拌站 and 搅拌厂 share 搅拌
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

    return _whole_words(sorted(counts, key=lambda w: (-score(w), w)))[:k]


def _whole_words(words):
    """Words in the same order, each two-character start (搅拌) replaced by the first longer
    word it starts (搅拌站), without repeats."""
    whole = [next((x for x in words if len(x) > len(w) and x.startswith(w)), w) for w in words]
    return list(dict.fromkeys(whole))


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
    strong: int = 0  # the first ``strong`` keys are named in the title: what it is about
    firm: int = 0  # the first ``firm`` keys also count those its text names twice
    spots: tuple = ()  # keys of the specific places its text names (estates, sites, addresses)
    community: str | None = None  # its community, when the text speaks of a place at all
    street: str | None = None  # the street (街道/镇) of its community


#: Words that say a matter is where the caller is (村里一家豆腐坊, 楼下的垃圾点).
_LOCAL_WORDS = tuple(
    "小区 村里 我村 本村 村后 村前 村口 村头 楼下 楼上 楼道 单元 家门口 门口 附近 旁边 隔壁 "
    "对面 路口 这条路 这段路 院里 院子 胡同 巷子 我家 家里".split()
)


def community_of(known):
    """The community-level entry of an area chain (most specific first, ending with the
    district): the third entry from the end once grids (…网格) are left out."""
    areas = [a for a in known if a and not a.endswith("网格")]
    return areas[-3] if len(areas) >= 3 else None


def _street_of(known):
    areas = [a for a in known if a and not a.endswith("网格")]
    return areas[-2] if len(areas) >= 3 else None


def spots_of(names, areas=()):
    """The specific places of a message's text places, as keys: a road with its house number
    (五马路369号), a name's core when it is no dictionary word (凤凰嘉 of 凤凰嘉苑, 丽发 of
    丽发新城 and 丽发小区), else the whole name marked "=" (=人民医院, =理想家园: a common root
    that several places share). Known area names are not spots."""
    spots = []
    for name in names:
        if _ADDRESS_NAME.search(name):
            spots.append(name)
            continue
        if name.endswith("物业"):
            continue  # the estate's manager, not a place (its estate is named elsewhere)
        for part in _components(name):
            key = core(part)
            if part in PLACE_SUFFIXES or len(key) < 2 or key in _GENERIC_NAMES:
                continue
            if _is_area(part) or key in areas or part in areas:
                continue
            spots.append(key if not _Words.freq(key) else "=" + part)
    return list(dict.fromkeys(spots))


def compatible(spots, communities, their_spots, their_communities):
    """Whether two messages (or a message and a group, or two groups) may be one matter by
    their places. Each side: its specific places (``spots_of``) and its communities. Sides
    that both name specific places must share one (one is enough: the estate or its road);
    sides in different communities must share a distinctive text place (the text wins over
    the gazetteer: 凤凰嘉苑 is one estate wherever the gazetteer put a caller, but 人民医院 of
    two districts are two hospitals); two sides with no place at all (policy questions) are
    decided by their words, and a side with no place never joins one with a place."""
    shared = [k for k in spots if k in their_spots]
    if communities and their_communities and not any(c in their_communities for c in communities):
        return any(k[0] != "=" for k in shared)
    if any(k[0] != "=" for k in spots) and any(k[0] != "=" for k in their_spots):
        return any(k[0] != "=" for k in shared)  # two addresses: a common root is not enough
    if spots and their_spots:
        return bool(shared)
    # A matter somewhere is not joined to one nowhere (某路段 to 健康西街300号).
    return bool(spots or communities) == bool(their_spots or their_communities)


class _Group:
    """A group's state. A group of one keeps only a pointer to its message's record
    (``solo``); its centroid and counters are built when a second message joins."""

    __slots__ = (
        "key",
        "serial",
        "ids",
        "solo",
        "centroid",
        "norm",
        "keys",
        "strong",
        "names",
        "titles",
        "spots",
        "communities",
        "word_keys",
        "first",
        "last",
        "alive",
    )

    def __init__(self, key, serial):
        self.key, self.serial = key, serial
        self.ids = []
        self.solo = None  # the only member's record while the group has one
        self.centroid = None  # (term ids, summed counts) as arrays, once the group has two
        self.norm = 1.0  # the centroid's TF-IDF norm when it last changed
        self.keys = None  # place key -> members naming it
        self.strong = None  # place key -> members naming it in their title
        self.names = None  # place name -> weight
        self.titles = []  # up to TITLES member titles, for the generated title
        self.spots = None  # specific place key -> members naming it
        self.communities = None  # community -> members there
        self.word_keys = ()  # title-word blocks it is registered in
        self.first = math.inf  # timestamps of the first and last member
        self.last = -math.inf
        self.alive = True

    def place_keys(self):
        if self.keys is not None:
            return self.keys
        return self.solo[_KEYS] if self.solo else ()

    def strong_keys(self):
        if self.strong is not None:
            return self.strong
        return self.solo[_KEYS][: self.solo[_STRONG]] if self.solo else ()

    def spot_keys(self):
        if self.spots is not None:
            return self.spots
        return self.solo[_SPOTS] if self.solo else ()

    def community_names(self):
        if self.communities is not None:
            return self.communities
        return (self.solo[_COMMUNITY],) if self.solo and self.solo[_COMMUNITY] else ()

    def name_weights(self):
        if self.names is not None:
            return self.names
        if not self.solo:
            return {}
        name = self.solo[_NAME]
        return {name: 1} if name else {}

    def vector(self):
        """(term, count) pairs of the centroid."""
        if self.centroid is not None:
            return zip(*self.centroid, strict=True)
        return zip(array("I", self.solo[_TERMS]), self.solo[_COUNTS], strict=True)


# A message's record: a flat tuple of atoms, so a million of them cost little memory and
# the garbage collector stops tracking them.
_SERIAL, _TS, _TERMS, _COUNTS, _KEYS, _NAME, _WORDS, _STRONG, _SPOTS, _COMMUNITY = range(10)
#: A generated title aims at this many characters (the problem words get at least four).
TITLE_CHARS = 16
_LEGAL_FORM = re.compile(r"(?:股份有限|有限责任|有限)公司$")
#: A title word counts as much as this many words of the text.
TITLE_WEIGHT = 3
#: Member titles a group keeps for its generated title.
TITLES = 8


def _pack(counts):
    """A centroid {term: count} as two arrays sorted by term (a tenth of a dict's memory)."""
    terms = array("I", sorted(counts))
    return terms, array("I", [counts[t] for t in terms])


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
        object_threshold=0.5,
        block_k=24,
        centroid_terms=64,
        title_keys=2,
        merge_threshold=0.3,
        place_streets=3,
    ):
        self.window_days = window_days
        self.place_threshold = place_threshold
        self.object_threshold = object_threshold
        self.block_k = block_k
        self.centroid_terms = centroid_terms
        self.title_keys = title_keys
        self.merge_threshold = merge_threshold
        self.place_streets = place_streets
        # text place -> the streets (up to place_streets) of messages naming it
        self._spot_seen = {}
        self._term_ids = {}
        self._terms = []
        self._df = []  # term id -> messages held containing it
        self._held = {}  # message id -> record (see _SERIAL …)
        self._groups = {}  # key -> _Group
        self._serials = {}  # serial -> _Group
        # place key (str) or title word (int) -> its _Group, or [_Group] oldest first
        self._blocks = {}
        self._heap = []  # (timestamp, sequence, message id)
        self._sequence = 0
        self._serial = 0
        self._new = 0
        self._aware = None  # whether the messages' times carry a time zone

    # ----------------------------------------------------------------- features

    def features(self, message):
        """The message's places, blocking keys and problem words (the text work of ``add``)."""
        known = tuple(message.places)
        ranked = _ranked_places(message.title, message.text, known)
        names = tuple(n for n, _, _ in ranked) + tuple(
            a for a in known if a and a not in {n for n, _, _ in ranked}
        )
        title = normalize(message.title or "")
        text = normalize((message.text or "")[: TEXT_CHARS * 2])[:TEXT_CHARS]
        # What the message is about: the places of its title, else a place its text names
        # more than once. Other places only help to find candidates.
        main = [n for n, _, t in ranked if t] or [n for n, w, _ in ranked[:1] if w >= 2]
        strong = _place_keys(main)
        cores = _cores(names)
        firm = list(dict.fromkeys(strong + _place_keys([n for n, w, _ in ranked if w >= 2])))
        area_names = {a for a in known if a} | {core(a) for a in known if a}
        spots = spots_of([n for n, _, _ in ranked], area_names)
        community = community_of(known)
        if community and not spots:
            # The caller's community is the matter's place only when the text speaks of a
            # place (an area name, 村里, 楼下 …): a policy question asked from home is not.
            raw = title + text
            if not any(a in raw for a in known if a and not a.endswith("网格")) and not any(
                w in raw for w in _LOCAL_WORDS
            ):
                community = None
        weak = _place_keys([n for n, _, _ in ranked])
        if community:
            weak.append("@" + community)
        return Features(
            places=names,
            keys=tuple(dict.fromkeys(firm + weak)),
            title_tokens=tuple(_problem_tokens(title, names, cores)),
            tokens=tuple(_problem_tokens(text, names, cores)),
            title=title,
            strong=len(strong),
            firm=len(firm),
            spots=tuple(spots),
            community=community,
            street=_street_of(known) if community else None,
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

    def _norm(self, pairs):
        idf = self._idf
        return math.sqrt(sum((count * idf(term)) ** 2 for term, count in pairs)) or 1.0

    # ----------------------------------------------------------------- assignment

    def add(self, message, *, group=None, features=None):
        """Assign one message (see ``HOTSPOT_INTERFACE``); ``features`` skips the text work
        when the caller already has them (the benchmark's synthetic index)."""
        if message.id in self._held:
            self._remove(message.id)
        f = features or self.features(message)
        counts = Counter()
        for token in f.title_tokens:
            counts[self._intern(token)] += TITLE_WEIGHT
        for token in f.tokens:
            counts[self._intern(token)] += 1
        terms = sorted(counts)
        title_words = {self._term_ids[w] for w in f.title_tokens}
        words = tuple(sorted(title_words, key=lambda t: (self._df[t], t))[: self.title_keys])

        similarity, target, new_group = 1.0, None, False
        if group is not None:
            self._see(f)
            target = self._groups.get(group)
            if target is None:
                target = self._new_group(group)
                new_group = True
        else:
            self._see(f)
            similarity, target = self._best(counts, f, words)
            if target is None:
                self._new += 1
                while ("new", self._new) in self._groups:
                    self._new += 1
                target = self._new_group(("new", self._new))
                similarity, new_group = 0.0, True
        # The place a title may name: its text's first place, else its community.
        name = f.places[0] if f.places and f.places[0] not in message.places else f.community
        ts = _timestamp(message.at)
        if self._aware is None:
            self._aware = message.at.tzinfo is not None
        record = (
            target.serial,
            ts,
            array("I", terms).tobytes(),
            bytes(min(counts[t], 255) for t in terms),
            tuple(sys.intern(k) for k in f.keys),
            sys.intern(name) if name else None,
            words,
            f.strong,
            tuple(sys.intern(k) for k in f.spots),
            sys.intern(f.community) if f.community else None,
        )
        self._held[message.id] = record
        for term in terms:
            self._df[term] += 1
        self._sequence += 1
        heapq.heappush(self._heap, (ts, self._sequence, message.id))
        self._join(target, message.id, record, f.title)
        return Assigned(group=target.key, similarity=round(similarity, 4), new_group=new_group)

    def _see(self, f):
        """Count the message's street for each text place it names."""
        where = f.street or f.community
        if not where:
            return
        for key in f.spots:
            seen = self._spot_seen.get(key)
            if seen is None:
                self._spot_seen[key] = {where}
            elif len(seen) < self.place_streets:
                seen.add(where)

    def _local(self, spots):
        """The spots that are one place: a text place named from ``place_streets`` or more
        streets is not (a template phrase read as a name, a landmark many addresses are given
        by), so it neither joins nor separates. An estate the gazetteer puts in neighbouring
        communities of one street stays one place."""
        limit = self.place_streets
        seen = self._spot_seen
        return [k for k in spots if k not in seen or len(seen[k]) < limit]

    def _compatible(self, spots, communities, state):
        return compatible(
            self._local(spots), communities, self._local(state.spot_keys()), state.community_names()
        )

    def _new_group(self, key):
        self._serial += 1
        state = _Group(key, self._serial)
        self._groups[key] = state
        self._serials[self._serial] = state
        return state

    def _candidates(self, keys):
        seen = {}
        for key in keys:
            block = self._blocks.get(key)
            if block is None:
                continue
            if type(block) is _Group:
                if block.alive:
                    seen.setdefault(block.serial, block)
                continue
            taken = 0
            for state in reversed(block):
                if state.alive:
                    seen.setdefault(state.serial, state)
                    taken += 1
                    if taken >= self.block_k:
                        break
        return seen.values()

    def _best(self, counts, f, words):
        place_keys, strong, firm = f.keys, f.strong, f.firm
        communities = (f.community,) if f.community else ()
        idf = self._idf
        vector = {t: c * idf(t) for t, c in counts.items()}
        norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
        # The centroid's weights are counts × idf: fold the idf into the message's side.
        query = {t: v * idf(t) for t, v in vector.items()}
        best, best_score, best_similarity = None, 0.0, 0.0
        mine = self._local(f.spots)
        for state in self._candidates(tuple(place_keys) + words):
            if not self._compatible(f.spots, communities, state):
                continue  # two different places: never one matter
            theirs = state.strong_keys()
            shared = any(k in theirs for k in place_keys[:strong])
            if shared:
                threshold = self.place_threshold
            elif strong and theirs:
                if not any(k in theirs for k in place_keys[strong:firm]):
                    continue  # two different places: never one matter
                # Its title names another place, its text this one twice: 广铁集团 and
                # the 伊景园滨河苑 it built. Alike by words only.
                threshold = self.object_threshold
            elif any(k[0] != "=" and k in state.spot_keys() for k in mine):
                # Both name one specific place (凤凰嘉苑, 五马路369号), in the text at least.
                threshold, shared = self.place_threshold, True
            else:
                threshold = self.object_threshold
            dot = sum(query.get(t, 0.0) * c for t, c in state.vector())
            if not dot:
                continue
            similarity = dot / (norm * state.norm)
            if similarity < threshold:
                continue
            score = similarity + (0.1 if shared else 0.0)
            if score > best_score:
                best, best_score, best_similarity = state, score, similarity
        return best_similarity, best

    def _join(self, state, message_id, record, title):
        state.ids.append(message_id)
        if state.solo is None and state.centroid is None:
            state.solo = record  # the first member
            state.norm = self._norm(state.vector())
        else:
            centroid = dict(state.vector())
            if state.centroid is None:  # the second member: build the counters
                solo, state.solo = state.solo, None
                state.keys = dict.fromkeys(solo[_KEYS], 1)
                state.strong = dict.fromkeys(solo[_KEYS][: solo[_STRONG]], 1)
                state.names = {solo[_NAME]: 1} if solo[_NAME] else {}
                state.spots = dict.fromkeys(solo[_SPOTS], 1)
                state.communities = {solo[_COMMUNITY]: 1} if solo[_COMMUNITY] else {}
            for term, count in zip(array("I", record[_TERMS]), record[_COUNTS], strict=True):
                centroid[term] = centroid.get(term, 0) + count
            if len(centroid) > 2 * self.centroid_terms:
                kept = sorted(centroid.items(), key=lambda item: (-item[1], item[0]))
                centroid = dict(kept[: self.centroid_terms])
            state.centroid = _pack(centroid)
            for key in record[_KEYS]:
                state.keys[key] = state.keys.get(key, 0) + 1
            for key in record[_KEYS][: record[_STRONG]]:
                state.strong[key] = state.strong.get(key, 0) + 1
            if record[_NAME]:
                state.names[record[_NAME]] = state.names.get(record[_NAME], 0) + 1
            for key in record[_SPOTS]:
                state.spots[key] = state.spots.get(key, 0) + 1
            if record[_COMMUNITY]:
                c = record[_COMMUNITY]
                state.communities[c] = state.communities.get(c, 0) + 1
            state.norm = self._norm(centroid.items())
        for key in record[_KEYS]:
            if state.keys is None or state.keys[key] == 1:
                self._register(key, state)
        for word in record[_WORDS]:
            if word not in state.word_keys:
                state.word_keys += (word,)
                self._register(word, state)
        if title is not None and len(state.titles) < TITLES:
            state.titles.append(title)
        ts = record[_TS]
        state.first = min(state.first, ts)
        state.last = max(state.last, ts)

    def _register(self, key, state):
        block = self._blocks.get(key)
        if block is None:
            self._blocks[key] = state  # most keys name one group: no list for them
        elif type(block) is _Group:
            if block is not state:
                self._blocks[key] = [block, state]
        elif block[-1] is not state:
            block.append(state)

    def _remove(self, message_id):
        record = self._held.pop(message_id)
        state = self._serials[record[_SERIAL]]
        state.ids.remove(message_id)
        for term in array("I", record[_TERMS]):
            self._df[term] -= 1
        if not state.ids:
            state.alive = False
            state.solo = None
            del self._groups[state.key]
            del self._serials[state.serial]
            return record  # its block entries go at the next expire (skipped till then)
        if state.centroid is not None:
            centroid = dict(state.vector())
            for term, count in zip(array("I", record[_TERMS]), record[_COUNTS], strict=True):
                left = centroid.get(term, 0) - count
                if left > 0:
                    centroid[term] = left
                else:
                    centroid.pop(term, None)
            state.centroid = _pack(centroid)
            for key in record[_KEYS]:
                state.keys[key] -= 1
                if state.keys[key] <= 0:
                    del state.keys[key]
            for key in record[_KEYS][: record[_STRONG]]:
                state.strong[key] -= 1
                if state.strong[key] <= 0:
                    del state.strong[key]
            if record[_NAME]:
                state.names[record[_NAME]] -= 1
                if state.names[record[_NAME]] <= 0:
                    del state.names[record[_NAME]]
            for key in record[_SPOTS]:
                state.spots[key] -= 1
                if state.spots[key] <= 0:
                    del state.spots[key]
            if record[_COMMUNITY]:
                state.communities[record[_COMMUNITY]] -= 1
                if state.communities[record[_COMMUNITY]] <= 0:
                    del state.communities[record[_COMMUNITY]]
            state.norm = self._norm(centroid.items())
        times = [self._held[i][_TS] for i in state.ids]
        state.first, state.last = min(times), max(times)
        return record

    # ----------------------------------------------------------------- people's decisions

    def move(self, message_id, group):
        """Put a message into ``group`` (created if new): a person's split or merge."""
        record = self._remove(message_id)
        target = self._groups.get(group) or self._new_group(group)
        record = (target.serial,) + record[1:]
        self._held[message_id] = record
        for term in array("I", record[_TERMS]):
            self._df[term] += 1
        self._join(target, message_id, record, None)

    def _cosine(self, a, b):
        idf = self._idf
        small, large = sorted((a, b), key=lambda s: len(s.ids))
        mine = dict(large.vector())
        dot = sum(c * mine.get(t, 0) * idf(t) ** 2 for t, c in small.vector())
        return dot / (a.norm * b.norm)

    def merge_similar(self):
        """Merge groups that became alike after both formed (order effects of one-by-one
        assignment): largest first, each absorbs the groups it meets in its blocks that it
        would have accepted as a message. ``batch`` runs it; returns {absorbed: into}."""
        merged = {}
        order = sorted(
            (s for s in self._groups.values() if len(s.ids) > 1),
            key=lambda s: (-len(s.ids), s.serial),
        )
        for state in order:
            if not state.alive:
                continue
            keys = tuple(state.keys) + state.word_keys
            for other in list(self._candidates(keys)):
                if other is state or not other.alive or len(other.ids) > len(state.ids):
                    continue
                if not self._compatible(state.spot_keys(), state.community_names(), other):
                    continue
                theirs = other.strong_keys()
                if any(k in theirs for k in state.strong):
                    threshold = self.merge_threshold
                elif state.strong and theirs:
                    continue
                else:
                    threshold = self.object_threshold
                if self._cosine(state, other) >= threshold:
                    merged[other.key] = state.key
                    for message_id in list(other.ids):
                        self.move(message_id, state.key)
        return merged

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
        gone, touched = [], set()
        while self._heap and self._heap[0][0] < cutoff:
            ts, _, message_id = heapq.heappop(self._heap)
            record = self._held.get(message_id)
            if record is not None and record[_TS] == ts:
                self._remove(message_id)
                gone.append(message_id)
                touched.update(record[_KEYS] + record[_WORDS])
        for key in touched:
            block = self._blocks.get(key)
            if type(block) is _Group:
                if not block.alive:
                    del self._blocks[key]
            elif block is not None:
                block[:] = [state for state in block if state.alive]
                if not block:
                    del self._blocks[key]
                elif len(block) == 1:
                    self._blocks[key] = block[0]
        return gone

    # ----------------------------------------------------------------- reading

    def _keywords(self, state, k=6):
        scored = sorted(state.vector(), key=lambda item: (-item[1] * self._idf(item[0]), item[0]))
        return _whole_words([self._terms[t] for t, _ in scored[: 2 * k]])[:k]

    def _place(self, state):
        """The place most of its members name (None when only a few name one)."""
        names = state.name_weights()
        if not names:
            return None
        place = min(names, key=lambda n: (-names[n], n))
        return place if names[place] >= max(1, 0.3 * len(state.ids)) else None

    def _datetime(self, ts):
        at = datetime.fromtimestamp(ts, UTC)
        return at if self._aware else at.replace(tzinfo=None)

    def group(self, key):
        state = self._groups[key]
        return Group(
            key=state.key,
            ids=list(state.ids),
            place=self._place(state),
            keywords=self._keywords(state),
            first_at=self._datetime(state.first),
            last_at=self._datetime(state.last),
        )

    def groups(self, min_size=1):
        return [self.group(k) for k, s in self._groups.items() if len(s.ids) >= min_size]

    def group_of(self, message_id):
        record = self._held.get(message_id)
        return self._serials[record[_SERIAL]].key if record else None

    def title(self, key):
        """Place + problem, e.g. "丽发新城搅拌站噪音扰民"."""
        state = self._groups[key]
        place = self._place(state)
        words = [w for w in self._keywords(state, 10) if not place or w not in place]
        if place:
            place = _LEGAL_FORM.sub("公司", place)  # 山千制药机械股份有限公司 → …公司
        budget = max(4, min(8, TITLE_CHARS - len(place or "")))
        chosen = []
        for word in words:
            if any(word in c or c in word for c in chosen):
                continue
            if sum(map(len, chosen)) + len(word) > budget:
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


def batch(messages, *, window_days=90, merge=True, **tuning):
    """Batch grouping: the same decisions as adding ``messages`` one by one in time order,
    then (``merge``) ``Index.merge_similar``, so a rebuild equals the incremental path
    followed by one merge pass."""
    index = Index(window_days=window_days, **tuning)
    ordered = sorted(enumerate(messages), key=lambda item: (_timestamp(item[1].at), item[0]))
    for _, message in ordered:
        index.add(message)
    if merge:
        index.merge_similar()
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


def heat_input(members, now, *, reopened=0, unhappy=0):
    """``HeatInput`` of a group's messages at ``now`` (messages of unknown callers count as
    distinct callers); reopened and unhappy come from the tickets' outcomes."""
    week = timedelta(days=7)
    known = [m.caller for m in members if m.caller]
    callers = len(set(known)) + sum(1 for m in members if not m.caller)
    return HeatInput(
        size=len(members),
        callers=callers,
        recent=sum(1 for m in members if now - week < m.at <= now),
        previous=sum(1 for m in members if now - 2 * week < m.at <= now - week),
        repeat_calls=len(members) - callers,
        reopened=reopened,
        unhappy=unhappy,
        likes=sum(m.likes for m in members),
        dislikes=sum(m.dislikes for m in members),
    )


def heat(h):
    """The heat score and its explanation: parts {name: {"label", "value", "points"}} whose
    points sum to the score. Tickets and callers count linearly, growth counts the last 7 days
    and their excess over the 7 before, likes count logarithmically (one message with 2,000
    likes should not outweigh forty callers), dislikes lower it a little."""
    parts = {}
    for name, label, points in HEAT_PARTS:
        value = h.recent if name == "growth" else getattr(h, name)
        parts[name] = {"label": label, "value": value, "points": round(points(h), 1) + 0.0}
    parts["growth"]["previous"] = h.previous
    others = sum(p["points"] for name, p in parts.items() if name != "dislikes")
    floor = -round(MAX_DISLIKE_SHARE * others, 1)
    parts["dislikes"]["points"] = max(parts["dislikes"]["points"], floor)
    score = round(sum(p["points"] for p in parts.values()), 1)
    return score, parts
