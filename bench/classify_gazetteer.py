"""Gazetteer benchmark on the real 潍坊 division tables (13 districts, 122 streets, 7,060 villages).

Builds :class:`classifier.gazetteer.Gazetteer` from ``<data>/admin_divisions`` (read in place,
never copied), generates a few thousand noisy addresses from the real names with a seeded RNG
and measures how often the street and the community come out right.

The truth of an address is judged with this file's own idea of how people name places (full
name, 居委会 → 社区 / 村委会 → 村, suffix dropped; district and street full or short), not with
the gazetteer's forms: an address is *unambiguous* when exactly one community (street) of the
table fits every name it contains, and *ambiguous* when several do (a village name that exists
in several towns, given without its town). On ambiguous addresses the gazetteer must not
guess: they should come back with ``candidates`` and no community.

    python bench/classify_gazetteer.py            # table
    python bench/classify_gazetteer.py --json out.json
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import time
from collections import defaultdict
from pathlib import Path

from classifier.gazetteer import Gazetteer
from classifier.normalize import normalize
from hotline.config import DEFAULTS

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_DATA = ROOT.parent / "shared" / "data"
CITY_CODE = "3707"
SEED = 12345
N_ADDRESSES = 3000
N_AMBIGUOUS = 600
N_STREET_ONLY = 300

ROADS = [
    "人民路", "胜利街", "东风街", "健康街", "北海路", "新华路", "文化路", "和平路", "青年路",
    "幸福街", "民主街", "向阳路", "长安路", "卧龙街", "福寿街", "宝通街", "四平路", "潍州路",
    "鸢飞路", "虞河路", "府前街", "中心街", "兴业路", "工业路", "建设路",
]  # fmt: skip
PLACES = [
    "幸福小区", "阳光花园", "中心小学", "卫生院", "加油站", "农贸市场", "菜市场", "超市",
    "公交站", "幼儿园", "健身广场", "文化广场", "人民医院", "派出所", "信用社", "烧烤店",
    "桥头", "十字路口", "小卖部", "卫生室", "物流园", "学校",
]  # fmt: skip
NEAR = ["附近", "对面", "门口", "旁边", "东侧", "西边", "往北一百米", "路口", "一带", ""]
PROBLEMS = [
    "垃圾堆放好几天没人清理", "污水外溢味道很大", "路灯不亮晚上很危险", "夜里噪音扰民",
    "有人占道经营", "道路坑洼不平", "暖气不热", "已经停水三天了", "下水道堵塞",
    "油烟太大熏得没法开窗", "树枝折断挡路", "井盖丢失",
]  # fmt: skip
TEMPLATES = [
    "{addr}",
    "{addr}{house}",
    "{addr}{road}{house}{near}",
    "我家住在{addr}{house}，楼下{place}{problem}，希望尽快处理。",
    "来电人反映：{addr}{place}{near}{problem}。",
    "市民反映{addr}{road}{near}{problem}，请相关部门处理",
    "{addr}{place}{near}，{problem}",
    "您好，我是{addr}的居民，{road}{house}{problem}，多次反映没人管。",
    "在{addr}{near}{problem}",
]
#: How an address names the city before the district (bench/onboard.py passes Beijing's).
CITY_PREFIXES = ("潍坊市", "潍坊", "山东省潍坊市")
FULLWIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")

_COMMUNITY_SUFFIX = re.compile(
    r"(社区居民委员会|社区村民委员会|社区居民委会|社区居委会|社区村委会|居民委员会|村民委员会|"
    r"居委会|村委会|委员会|村会)$"
)


# --------------------------------------------------------------------------- data


def load_weifang(data_dir):
    """Rows of the three 潍坊 tables: (districts, streets, villages) as lists of dicts."""
    folder = Path(data_dir) / "admin_divisions"
    files = [folder / name for name in ("areas.csv", "streets_weifang_3707.csv")]
    files.append(folder / "villages_weifang_3707.csv")
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            "the real division tables are not there: "
            + ", ".join(missing)
            + " (expected the shared data folder with admin_divisions/, see SOURCES.md §3)"
        )

    def rows(path):
        with open(path, encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))

    districts = [row for row in rows(files[0]) if row["cityCode"] == CITY_CODE]
    streets = rows(files[1])
    villages = rows(files[2])
    return districts, streets, villages


def gazetteer_areas(districts, streets, villages):
    areas = [
        {"code": d["code"], "name": d["name"], "level": "district", "parent": None}
        for d in districts
    ]
    areas += [
        {"code": s["code"], "name": s["name"], "level": "street", "parent": s["areaCode"]}
        for s in streets
    ]
    areas += [
        {"code": v["code"], "name": v["name"], "level": "community", "parent": v["streetCode"]}
        for v in villages
    ]
    return areas


# --------------------------------------------------------------------------- how people say it


def district_forms(name):
    """{kind: form}: full and short (奎文区 → 奎文, 潍坊滨海经济技术开发区 → 滨海区 …)."""
    if name.endswith("开发区"):
        stem = name.removeprefix("潍坊")[: -len("经济技术开发区")] or name
        return {"full": name, "short": stem + "区", "zone": stem + "开发区"}
    forms = {"full": name}
    if name[-1] in "区县市" and len(name) >= 3:
        forms["short"] = name[:-1]
    return forms


def street_forms(name, district_name):
    """{kind: form}: full, without a district prefix, short (东关街道 → 东关, 五井镇 → 五井)."""
    forms = {"full": name}
    base = name
    for prefix in (district_name, district_forms(district_name).get("short")):
        if prefix and name.startswith(prefix) and len(name) > len(prefix) + 2:
            base = name[len(prefix) :]
            forms["unprefixed"] = base
            break
    for suffix in ("管理委员会", "管委会"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            forms["unprefixed"] = base
    short = None
    if base.endswith("街道"):
        short = base[:-2]
        forms["office"] = base + "办事处"
    elif base.endswith("镇"):
        short = base[:-1]
    if short and len(short) >= 2 and short != district_forms(district_name).get("short"):
        forms["short"] = short
    return forms


def community_forms(name):
    """{kind: form}: official, normal (X社区 / X村) and bare (X)."""
    match = _COMMUNITY_SUFFIX.search(name)
    stem, suffix = (name[: match.start()], match.group()) if match else (name, "")
    residents = "居" in suffix or suffix.startswith("社区") or stem.endswith("社区")
    if residents:
        stem = stem.removesuffix("社区")
        normal = stem + "社区"
    else:
        normal = stem if stem.endswith("村") else stem + "村"
        stem = normal[:-1]
    forms = {"full": name, "normal": normal}
    # Not dropped: 东南岭二村 (nobody says 东南岭二) and road-like stems (北宫东街 alone names
    # the road, which is not the community).
    if len(stem) >= 2 and not re.search(r"([0-9一二三四五六七八九十]|路|街|道|巷)$", stem):
        forms["bare"] = stem
    return forms


def suffix_variants(normal):
    """The official suffixes are used interchangeably: 肖家庄村委会 and 肖家庄村民委员会 are one
    name, so a text with either fits both."""
    if normal.endswith("社区"):
        stem = normal[:-2]
        return [stem + s for s in ("居委会", "社区居委会", "居民委员会", "社区居民委员会")]
    return [normal + "委会", normal + "民委员会"]


class Truth:
    """Which table entries fit a set of mentions (the bench's own judgement)."""

    def __init__(self, districts, streets, villages):
        self.district_name = {d["code"]: d["name"] for d in districts}
        self.street = {s["code"]: s for s in streets}
        self.by_form = defaultdict(set)  # community form → community codes
        self.street_by_form = defaultdict(set)
        self.district_by_form = defaultdict(set)
        self.other_forms = set()  # forms of streets and districts
        for d in districts:
            for form in district_forms(d["name"]).values():
                self.district_by_form[form].add(d["code"])
                self.other_forms.add(form)
        for s in streets:
            for form in street_forms(s["name"], self.district_name[s["areaCode"]]).values():
                self.street_by_form[form].add(s["code"])
                self.other_forms.add(form)
        self.village = {v["code"]: v for v in villages}
        for v in villages:
            forms = community_forms(v["name"])
            for form in (*forms.values(), *suffix_variants(forms["normal"])):
                self.by_form[form].add(v["code"])

    def communities(self, community, street=None, district=None):
        found = self.by_form.get(community, set())
        if street is not None:
            streets = self.street_by_form.get(street, set())
            found = {c for c in found if self.village[c]["streetCode"] in streets}
        if district is not None:
            districts = self.district_by_form.get(district, set())
            found = {c for c in found if self.village[c]["areaCode"] in districts}
        return found

    def streets(self, street, district=None):
        found = self.street_by_form.get(street, set())
        if district is not None:
            districts = self.district_by_form.get(district, set())
            found = {s for s in found if self.street[s]["areaCode"] in districts}
        return found


# --------------------------------------------------------------------------- generation


def _pick_form(rng, forms, weights):
    kinds = [kind for kind in weights if kind in forms]
    return forms[rng.choices(kinds, [weights[k] for k in kinds])[0]]


def _house(rng):
    n = rng.randint(1, 399)
    return rng.choice(
        [
            f"{n}号",
            f"{rng.randint(1, 30)}栋{rng.randint(1, 6)}单元",
            f"{n}号{rng.randint(1, 20)}号楼{rng.randint(1, 4)}单元{rng.randint(101, 1802)}室",
            f"{rng.randint(1, 12)}号楼",
            f"{n}号院",
            "",
        ]
    )


def _with_spacing_typos(rng, parts):
    """Join address parts, sometimes with spaces between or inside them."""
    out = []
    for part in parts:
        if len(part) >= 3 and rng.random() < 0.1:
            cut = rng.randint(1, len(part) - 1)
            part = part[:cut] + " " + part[cut:]
        out.append(part)
    sep = " " if rng.random() < 0.15 else ""
    return sep.join(out)


def _render(rng, parts, city_prefixes=CITY_PREFIXES):
    addr = _with_spacing_typos(rng, parts)
    if rng.random() < 0.2:
        addr = rng.choice(city_prefixes) + addr
    text = rng.choice(TEMPLATES).format(
        addr=addr,
        house=_house(rng),
        road=rng.choice(ROADS),
        place=rng.choice(PLACES),
        near=rng.choice(NEAR),
        problem=rng.choice(PROBLEMS),
    )
    if rng.random() < 0.15:
        text = text.translate(FULLWIDTH_DIGITS)
    return text


def generate(districts, streets, villages, truth, seed=SEED, city_prefixes=CITY_PREFIXES):
    """Test addresses: dicts with text, street, community (codes), and the truth sets.
    ``city_prefixes``: how the texts name the city (another city's tables, another name)."""
    rng = random.Random(seed)
    district_by_code = {d["code"]: d for d in districts}
    street_by_code = {s["code"]: s for s in streets}
    addresses = []

    def community_address(village, allow_street=True, allow_district=True):
        street = street_by_code[village["streetCode"]]
        district = district_by_code[village["areaCode"]]
        c_forms = community_forms(village["name"])
        c_form = _pick_form(rng, c_forms, {"full": 25, "normal": 50, "bare": 25})
        if c_form in truth.other_forms:
            return None  # the village's name is also a street or district name
        s_form = d_form = None
        if allow_street and rng.random() < 0.75:
            s_forms = street_forms(street["name"], district["name"])
            s_form = _pick_form(
                rng, s_forms, {"full": 45, "unprefixed": 45, "office": 5, "short": 25}
            )
        if allow_district and rng.random() < 0.6:
            d_form = _pick_form(rng, district_forms(district["name"]), {"full": 2, "short": 1})
        parts = [p for p in (d_form, s_form, c_form) if p]
        return {
            "text": _render(rng, parts, city_prefixes),
            "street": street["code"],
            "community": village["code"],
            "community_fits": truth.communities(c_form, s_form, d_form),
            "mentions": parts,
        }

    while len(addresses) < N_ADDRESSES:
        item = community_address(rng.choice(villages))
        if item is not None:
            addresses.append(item)

    # Street only (no community named).
    for _ in range(N_STREET_ONLY):
        street = rng.choice(streets)
        district = district_by_code[street["areaCode"]]
        s_form = _pick_form(
            rng,
            street_forms(street["name"], district["name"]),
            {"full": 40, "unprefixed": 40, "short": 30},
        )
        if s_form in truth.by_form:
            continue  # 林家村 (镇) is also a village's name
        d_form = None
        if rng.random() < 0.5:
            d_form = _pick_form(rng, district_forms(district["name"]), {"full": 2, "short": 1})
        parts = [p for p in (d_form, s_form) if p]
        addresses.append(
            {
                "text": _render(rng, parts, city_prefixes),
                "street": street["code"],
                "community": None,
                "community_fits": set(),
                "street_fits": truth.streets(s_form, d_form),
                "mentions": parts,
            }
        )

    # Ambiguous on purpose: a village name that exists in several towns, no town given.
    def streets_named(village):
        namesakes = truth.by_form[community_forms(village["name"])["normal"]]
        return {truth.village[c]["streetCode"] for c in namesakes}

    shared = [v for v in villages if len(streets_named(v)) > 1]
    made = 0
    while made < N_AMBIGUOUS:
        village = rng.choice(shared)
        item = community_address(village, allow_street=False, allow_district=rng.random() < 0.3)
        if item is None or len(item["community_fits"]) < 2:
            continue
        addresses.append(item)
        made += 1

    for item in addresses:
        if "street_fits" not in item:
            item["street_fits"] = {truth.village[c]["streetCode"] for c in item["community_fits"]}
    return addresses


# --------------------------------------------------------------------------- run


def _long_text(rng, text):
    """Pad a text to about 200 characters with complaint filler around it."""
    filler = "".join(rng.choice(PROBLEMS) + "，" for _ in range(12))
    return (filler[:90] + text + filler)[:200]


def score(addresses, results):
    """Counts of right answers per kind of address (judged by the truth sets), and the first
    misses."""
    street_n = street_ok = community_n = community_ok = 0
    amb_n = amb_flagged = amb_wrong = amb_right_guess = amb_in_candidates = amb_unresolved = 0
    errors = []
    for item, result in zip(addresses, results, strict=True):
        if len(item["street_fits"]) == 1:
            street_n += 1
            if result.street == item["street"]:
                street_ok += 1
            elif len(errors) < 40:
                errors.append(("street", item["text"], item["mentions"], result))
        if item["community"] is None:
            continue
        if len(item["community_fits"]) == 1:
            community_n += 1
            if result.community == item["community"]:
                community_ok += 1
            elif len(errors) < 40:
                errors.append(("community", item["text"], item["mentions"], result))
        elif len(item["community_fits"]) > 1:
            amb_n += 1
            options = {c.community for c in result.candidates}
            if result.community is None and result.candidates:
                amb_flagged += 1
                amb_in_candidates += item["community"] in options
            elif result.community is None:
                amb_unresolved += 1
            elif result.community == item["community"]:
                amb_right_guess += 1
            else:
                amb_wrong += 1
    return {
        "street_n": street_n,
        "street_ok": street_ok,
        "community_n": community_n,
        "community_ok": community_ok,
        "amb_n": amb_n,
        "amb_flagged": amb_flagged,
        "amb_wrong": amb_wrong,
        "amb_right_guess": amb_right_guess,
        "amb_in_candidates": amb_in_candidates,
        "amb_unresolved": amb_unresolved,
        "errors": errors,
    }


def run(data_dir=DEFAULT_DATA, seed=SEED) -> dict:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(
            f"data folder {data_dir} is absent: the real division tables "
            "(admin_divisions/areas.csv, streets_/villages_weifang_3707.csv) are needed"
        )
    districts, streets, villages = load_weifang(data_dir)
    t0 = time.perf_counter()
    gazetteer = Gazetteer(gazetteer_areas(districts, streets, villages))
    build_s = time.perf_counter() - t0
    truth = Truth(districts, streets, villages)
    addresses = generate(districts, streets, villages, truth, seed)

    t0 = time.perf_counter()
    results = [gazetteer.resolve(item["text"]) for item in addresses]
    ms_per_resolve = (time.perf_counter() - t0) * 1000 / len(addresses)

    rng = random.Random(seed + 1)
    long_texts = [_long_text(rng, item["text"]) for item in addresses[:1000]]
    t0 = time.perf_counter()
    for text in long_texts:
        gazetteer.resolve(text)
    ms_per_resolve_200 = (time.perf_counter() - t0) * 1000 / len(long_texts)

    counted = score(addresses, results)
    street_n, street_ok = counted["street_n"], counted["street_ok"]
    community_n, community_ok = counted["community_n"], counted["community_ok"]
    amb_n, amb_flagged, amb_wrong = counted["amb_n"], counted["amb_flagged"], counted["amb_wrong"]
    amb_right_guess, amb_in_candidates = counted["amb_right_guess"], counted["amb_in_candidates"]
    amb_unresolved, errors = counted["amb_unresolved"], counted["errors"]

    foreign = _foreign_matches(gazetteer, data_dir)
    fill = _fill_precision(addresses, results, foreign.pop("_resolutions", []))
    return {
        "fill": fill,
        "street_acc": round(street_ok / street_n, 4),
        "community_acc": round(community_ok / community_n, 4),
        "ambiguous_flagged": round(amb_flagged / amb_n, 4),
        "ambiguous_wrong_guess": round(amb_wrong / amb_n, 4),
        "addresses": len(addresses),
        "ms_per_resolve": round(ms_per_resolve, 4),
        "details": {
            "street_n": street_n,
            "community_n": community_n,
            "ambiguous_n": amb_n,
            "ambiguous_truth_in_candidates": round(amb_in_candidates / max(amb_flagged, 1), 4),
            "ambiguous_unmatched": round(amb_unresolved / amb_n, 4),
            "ambiguous_right_guess": round(amb_right_guess / amb_n, 4),
            "ms_per_resolve_200_chars": round(ms_per_resolve_200, 4),
            "build_s": round(build_s, 3),
            "indexed_forms": len(gazetteer.names(include_weak=True)),
            **foreign,
            "errors": [
                {
                    "kind": kind,
                    "text": text,
                    "mentions": mentions,
                    "got": result.codes(),
                    "matched": result.matched,
                    "candidates": len(result.candidates),
                }
                for kind, text, mentions, result in errors
            ],
        },
    }


#: Confidences at which a blank ticket area is filled from the place (AREA_FILL_MIN_CONFIDENCE
#: in hotline/config.py is chosen from these rows).
FILL_THRESHOLDS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.9)


def _fills(result, threshold):
    """Whether intake would fill a blank area with ``result`` (dispatch/placing.py's rule)."""
    return bool(result.code) and not result.candidates and result.confidence >= threshold


def _fill_precision(addresses, results, foreign):
    """Per threshold: of the 潍坊 addresses filled, the share whose area is right (the true
    community or street, or one of its ancestors); how many were filled; and how many texts
    about another city (all wrong) would be filled too."""
    rows = []
    for threshold in FILL_THRESHOLDS:
        filled = right = 0
        for item, result in zip(addresses, results, strict=True):
            if not _fills(result, threshold):
                continue
            filled += 1
            right += (item["community"] or item["street"]).startswith(result.code)
        wrong_foreign = sum(_fills(r, threshold) for r in foreign)
        rows.append(
            {
                "threshold": threshold,
                "filled": filled,
                "right": right,
                "precision": round(right / filled, 4) if filled else None,
                "coverage": round(filled / len(addresses), 4),
                "foreign_filled": wrong_foreign,
                "precision_with_foreign": round(right / (filled + wrong_foreign), 4)
                if filled
                else None,
            }
        )
    return rows


def _foreign_matches(gazetteer, data_dir):
    """Share of Teddy Cup messages (another, anonymised city) that resolve to a community or
    street with confidence ≥ 0.5: false positives, since none of them is about 潍坊."""
    path = Path(data_dir) / "teddycup2020c" / "附件3.csv"
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8", newline="") as f:
        texts = [
            (row["留言主题"] + " " + row["留言详情"]).strip()[:400] for row in csv.DictReader(f)
        ]
    hits = 0
    resolutions = []
    for text in texts:
        result = gazetteer.resolve(normalize(text))
        resolutions.append(result)
        if (result.street or result.community) and result.confidence >= 0.5:
            hits += 1
    return {
        "foreign_texts": len(texts),
        "foreign_match_rate": round(hits / len(texts), 4),
        "_resolutions": resolutions,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--json", type=Path, help="write the result here")
    parser.add_argument("--errors", action="store_true", help="print the first misses")
    args = parser.parse_args(argv)
    result = run(args.data, args.seed)
    details = result["details"]
    rows = [
        ("addresses", result["addresses"], ""),
        ("street accuracy", result["street_acc"], f"target ≥ 0.97, n={details['street_n']}"),
        (
            "community accuracy",
            result["community_acc"],
            f"target ≥ 0.93, n={details['community_n']}",
        ),
        (
            "ambiguous: flagged",
            result["ambiguous_flagged"],
            f"≈ 1.0, n={details['ambiguous_n']}",
        ),
        ("ambiguous: wrong guess", result["ambiguous_wrong_guess"], "≈ 0"),
        ("ambiguous: right guess", details["ambiguous_right_guess"], "a guess all the same"),
        ("ambiguous: unmatched", details["ambiguous_unmatched"], ""),
        ("ambiguous: truth in candidates", details["ambiguous_truth_in_candidates"], ""),
        ("ms per resolve", result["ms_per_resolve"], "addresses as generated"),
        ("ms per resolve (200 chars)", details["ms_per_resolve_200_chars"], ""),
        ("build s", details["build_s"], f"{details['indexed_forms']} forms"),
    ]
    if "foreign_match_rate" in details:
        rows.append(
            (
                "foreign texts matched",
                details["foreign_match_rate"],
                f"Teddy Cup 附件3, n={details['foreign_texts']}",
            )
        )
    for fill in result["fill"]:
        rows.append(
            (
                f"fill ≥ {fill['threshold']:.2f}: precision",
                fill["precision"],
                f"filled {fill['filled']} ({fill['coverage']:.0%}); other city filled "
                f"{fill['foreign_filled']}, precision with them {fill['precision_with_foreign']}",
            )
        )
    width = max(len(label) for label, _, _ in rows)
    print(f"{'metric':<{width}}  {'value':>9}  note")
    for label, value, note in rows:
        print(f"{label:<{width}}  {value:>9}  {note}")
    threshold = DEFAULTS["AREA_FILL_MIN_CONFIDENCE"]
    print(f"(intake fills a blank area at ≥ {threshold}: hotline/config.py)")
    if args.errors:
        for error in details["errors"]:
            print(json.dumps(error, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
