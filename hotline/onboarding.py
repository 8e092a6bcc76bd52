"""Onboarding a city (城市导入): its official division tables, its boundaries and its grids.

Three loads, each a plain function usable from the command line (``hotline import KIND``), the
administration's import pages and the benchmark (``bench/onboard.py``). Like every import
(``hotline.tabular``) each checks everything first and changes nothing when anything is
wrong, matches rows by code (running it again changes nothing) and never commits.

**Areas** (``load_areas``, kind ``areas``) — the tables of ``../shared/data/admin_divisions``
(NBS codes, the format of the china-division package): the district table (``areas.csv``:
``code, name, cityCode, provinceCode``, the whole country: only the chosen city's rows are
taken), the streets/towns table (``streets_*.csv``: 9-digit ``code, name, areaCode, …``) and
the communities/villages table (``villages_*.csv``: 12-digit ``code, name, streetCode, …``),
uploaded together; ``cities.csv`` and ``provinces.csv`` may come along to choose the city by
name. Which table a file is follows from its header. The city option is a code (3707, 1101,
or a DataV adcode 370700) or a name (潍坊市; a name other than a municipality's needs
``cities.csv``). A municipality (北京市: districts under the city code 1101 "市辖区") is its
whole province. Row errors: a code that is not 6/9/12 digits, not under the city, given
twice, or not under its stated parent; a parent that is neither in the upload nor in the
system; an empty name. Names that changed are updated; towns (镇/乡) are marked ``is_town``;
an area of the system missing from a re-import is reported and kept (never deleted: tickets
and grids point at it). Aliases are not generated: the gazetteer derives the short forms
(奎文区 → 奎文, 东关街道 → 东关, 张家庄村委会 → 张家庄村) itself. With ``street_units=1`` each
street/town gets its office (承办单位 ``U-S-<code>``, kind street office: the ranking's
street class) and each district its government (``U-D-<code>``), when missing. The city's
name (城市设置) is set from the import when it is still the default and no other city's
areas are in the system; otherwise the result says to set it by hand.

**Boundaries** (``load_boundaries``, kind ``boundaries``) — GeoJSON FeatureCollections in the
DataV ``*_full.json`` format (``properties.adcode, name, center``; GCJ-02): each feature's
polygon and centre go to the area with that code (district, street, community or grid). A
feature whose code is not in the system, or without a polygon in China, is a row error (the
row is the feature's number, from 1).

**Grids** (``generate_grids``, kind ``grids``, no file) — 15-digit grids (community code + a
3-digit sequence, DOMAIN.md §6) named 〈社区〉第N网格, for every community that has none
(communities with grids are left alone, so it can run again):

1. a community with its own boundary: a square lattice of ``cell_m`` metres clipped to it
   (pieces under a fifth of a cell join a neighbour), numbered north to south, west to east;
2. else the nearest ancestor with a boundary (street, else district), less the parts already
   covered (communities with their own boundary, grids), is split among its communities
   without one: fine cells ordered along a Hilbert curve, cut into equal-area runs in code
   order (so a street's communities lie together), each run into grids of about ``cell_m``
   squared. The shares are an approximation of where the communities lie, good enough for
   the boards' maps and a first point-in-polygon locator until the real grids are uploaded;
3. else (no boundary at all) one grid per community: a ``cell_m`` square at the community's
   centre when it has one, no polygon otherwise.

A community gets at most ``max_grids`` grids (the lattice grows to fit).
"""

import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import shapely
import sqlalchemy as sa
from shapely.geometry import mapping, shape

from hotline import city, reference, settings
from hotline.enums import AreaLevel, UnitKind
from hotline.models import Area, Unit
from hotline.models.areas import CODE_LENGTH
from hotline.tabular import Column, ImportRefused, ImportResult, Problems, RowError, read

# -- the division tables --------------------------------------------------------------------

DIVISION_COLUMNS = (
    Column("code", "code", True, ("代码", "区划代码", "编码")),
    Column("name", "name", True, ("名称", "区划名称")),
    Column("city", "cityCode", False, ("城市代码", "地市代码")),
    Column("province", "provinceCode", False, ("省份代码", "省代码")),
    Column("district", "areaCode", False, ("区县代码",)),
    Column("street", "streetCode", False, ("街道代码", "乡镇代码")),
)
LEVEL_WORD = {
    AreaLevel.district: "区县",
    AreaLevel.street: "街道乡镇",
    AreaLevel.community: "社区村",
    AreaLevel.grid: "网格",
}
#: The column naming each level's parent, and the parent's level.
PARENT = {
    AreaLevel.street: ("district", "areaCode", AreaLevel.district),
    AreaLevel.community: ("street", "streetCode", AreaLevel.street),
}
_DIGITS = re.compile(r"^\d+$")
_TOWN = re.compile(r"(镇|乡)$")

AREAS_ACCEPTS = (
    "行政区划表 CSV/XLSX，一次上传：区县表（areas.csv：code,name,cityCode,provinceCode）、"
    "街道乡镇表（streets_*.csv，9 位代码）、社区村表（villages_*.csv，12 位代码）；"
    "按名称选城市时另附 cities.csv"
)
AREAS_OPTIONS = {
    "city": "城市（代码如 1101、3707，或名称如 北京市、潍坊市）",
    "street_units": "为街道乡镇和区县生成承办单位（1 = 是）",
}


@dataclass
class CityChoice:
    """The chosen city: the code prefix of its areas and its name (None: unknown)."""

    prefix: str
    name: str | None


@dataclass
class _DivisionFile:
    file: str
    kind: str  # districts, streets, villages, cities, provinces
    rows: list


def _file_kind(headers):
    keys = set()
    for column in DIVISION_COLUMNS:
        if any(h in (column.header, *column.aliases) for h in headers):
            keys.add(column.key)
    if "street" in keys:
        return "villages"
    if "district" in keys:
        return "streets"
    if "city" in keys:
        return "districts"
    if "province" in keys:
        return "cities"
    return "provinces"


def _division_files(sources):
    files = []
    for filename, data in sources:
        if filename.lower().endswith((".json", ".geojson")):
            raise ImportRefused(
                [
                    RowError(
                        filename, None, None, "区划导入需要 CSV 或 XLSX 表格（边界请用“边界”导入）"
                    )
                ]
            )
        table = read(data, filename, DIVISION_COLUMNS)
        files.append(_DivisionFile(filename, _file_kind(table.headers), table.rows))
    return files


def choose_city(text, files=()):
    """The city named by ``text``: a code (1101, 3707, 370700) or a name (北京市, 潍坊市);
    ``files`` may hold the cities and provinces tables for names. Raises ImportRefused."""
    text = (text or "").strip()
    problem = None
    cities = {}
    provinces = dict(city.MUNICIPALITIES)
    for f in files:
        for _, row in f.rows:
            if f.kind == "cities":
                cities[row["code"]] = row["name"]
            elif f.kind == "provinces":
                provinces[row["code"]] = row["name"]
    if not text:
        problem = "请选择城市：填写城市代码（如 1101、3707）或名称（如 北京市、潍坊市）"
    elif _DIGITS.match(text):
        code = text
        if len(code) == 6 and code.endswith("00"):  # DataV adcode 370700, 110000
            code = code[:4].removesuffix("00") if code[2:4] == "00" else code[:4]
        if len(code) == 2:
            if code in provinces:
                return CityChoice(code, provinces[code])
            problem = f"城市代码 {text} 不是直辖市；请填写 4 位城市代码（如 3707）"
        elif len(code) == 4:
            if code[:2] in city.MUNICIPALITIES:
                return CityChoice(code[:2], city.MUNICIPALITIES[code[:2]])
            name = cities.get(code)
            return CityChoice(code, name if name and name != "市辖区" else None)
        else:
            problem = f"城市代码 {text} 应为 4 位（如 3707）或直辖市的 2 位（如 11）"
    else:
        for code, name in provinces.items():
            if code in city.MUNICIPALITIES and text in (name, city.short_name(name)):
                return CityChoice(code, name)
        found = [code for code, name in cities.items() if text in (name, city.short_name(name))]
        if len(found) == 1:
            return CityChoice(found[0], cities[found[0]])
        if len(found) > 1:
            problem = f"名为“{text}”的城市不止一个，请填写城市代码"
        elif not cities:
            problem = (
                f"按名称选择城市“{text}”需同时上传城市表 cities.csv，或改填城市代码（如 3707）"
            )
        else:
            problem = f"城市表中没有“{text}”"
    raise ImportRefused([RowError("（选项）", None, "城市", problem)])


def load_areas(session, actor, sources, options):
    """The ``areas`` import (see the module docstring). Returns an ImportResult."""
    if not sources:
        raise ImportRefused([RowError("（文件）", None, None, "请上传区划表")])
    files = _division_files(sources)
    choice = choose_city(options.get("city"), files)
    make_units = (options.get("street_units") or "").strip().lower() in ("1", "是", "yes", "true")
    problems = Problems()
    prefix = choice.prefix
    label = choice.name or f"代码 {prefix}"

    existing = {
        a.code: a
        for a in session.scalars(
            sa.select(Area).where(Area.code.startswith(prefix), Area.level != AreaLevel.grid)
        )
    }
    levels = {
        "districts": AreaLevel.district,
        "streets": AreaLevel.street,
        "villages": AreaLevel.community,
    }
    wanted = {}  # code → (level, name, parent code)
    seen = {}  # code → (file, row)
    present = set()  # levels the upload covers
    for level in (AreaLevel.district, AreaLevel.street, AreaLevel.community):
        for f in files:
            if levels.get(f.kind) != level:
                continue
            present.add(level)
            taken = 0
            for number, row in f.rows:
                code = row["code"]
                if level == AreaLevel.district and not code.startswith(prefix):
                    continue  # the national table: other cities' districts
                taken += 1
                _check_row(
                    problems, f.file, number, row, level, (prefix, label), seen, wanted, existing
                )
            if level == AreaLevel.district and not taken:
                problems.add(f.file, None, None, f"区县表中没有属于{label}的区县")
    if not present:
        problems.add(
            ", ".join(f.file for f in files)[:100],
            None,
            None,
            "没有区划表（应有区县表、街道乡镇表或社区村表，见表头说明）",
        )
    problems.check()

    result = ImportResult("areas")
    created = {}
    for code, (level, name, parent_code) in sorted(wanted.items(), key=lambda kv: len(kv[0])):
        is_town = level == AreaLevel.street and bool(_TOWN.search(name))
        area = existing.get(code)
        if area is None:
            parent = created.get(parent_code) or existing.get(parent_code) if parent_code else None
            area = Area(
                code=code, name=name, level=level, parent=parent, is_town=is_town, aliases=[]
            )
            session.add(area)
            created[code] = area
            result.created += 1
            result.note(f"新增{LEVEL_WORD[level]} {code} {name}")
        elif area.name != name or area.is_town != is_town:
            old = area.name
            area.name, area.is_town = name, is_town
            result.updated += 1
            result.note(f"更新{LEVEL_WORD[level]} {code} {old} → {name}")
        else:
            result.unchanged += 1
    missing = sorted(
        code for code, area in existing.items() if area.level in present and code not in wanted
    )
    for code in missing:
        area = existing[code]
        result.note(f"本次导入中没有{LEVEL_WORD[area.level]} {code} {area.name}：保留，未删除")
    if missing:
        result.note(f"系统中有 {len(missing)} 个区划不在本次导入中：均保留，未删除（请人工核对）")
    session.flush()
    if make_units:
        _street_units(session, result, prefix, {**existing, **created})
    _set_city_name(session, actor, result, choice, prefix)
    reference.bump(session, reference.AREAS)
    return result


def _check_row(problems, file, number, row, level, city_of, seen, wanted, existing):
    prefix, label = city_of
    length = CODE_LENGTH[level]
    code, name = _trimmed(row["code"], length), row["name"]
    word = LEVEL_WORD[level]
    ok = True
    if not (_DIGITS.match(code) and len(code) == length):
        problems.add(file, number, "code", f"{word}代码应为 {length} 位数字（现为“{code}”）")
        ok = False
    elif not code.startswith(prefix):
        problems.add(file, number, "code", f"代码 {code} 不属于{label}")
        ok = False
    if not name:
        problems.add(file, number, "name", "名称不能为空")
        ok = False
    if ok and code in seen:
        first_file, first_row = seen[code]
        problems.add(
            file, number, "code", f"代码 {code} 重复（已见于 {first_file} 第 {first_row} 行）"
        )
        ok = False
    parent_code = None
    if level in PARENT:
        key, header, parent_level = PARENT[level]
        stated = _trimmed(row.get(key, ""), CODE_LENGTH[parent_level])
        parent_code = code[: CODE_LENGTH[parent_level]]
        if stated and ok and stated != parent_code:
            problems.add(file, number, header, f"所属代码 {stated} 与代码 {code} 不符")
            ok = False
        elif ok and parent_code not in wanted and parent_code not in existing:
            problems.add(
                file,
                number,
                header,
                f"所属{LEVEL_WORD[parent_level]} {parent_code} 不存在（本次导入和系统中都没有）",
            )
            ok = False
    if ok:
        seen[code] = (file, number)
        wanted[code] = (level, name, parent_code)


def _trimmed(code, length):
    """A code in the 12-digit form of the statistics tables (110101001000 for the street
    110101001) as the level's own code."""
    if len(code) == 12 and length < 12 and code[length:] == "0" * (12 - length):
        return code[:length]
    return code


def _street_units(session, result, prefix, areas):
    """One office per street/town and one government per district, where missing."""
    have = set(session.scalars(sa.select(Unit.code)))
    made = {UnitKind.street_office: 0, UnitKind.district_government: 0}
    for code in sorted(areas):
        area = areas[code]
        if area.level == AreaLevel.district:
            unit_code, kind = f"U-D-{code}", UnitKind.district_government
            name = area.name + "人民政府"
        elif area.level == AreaLevel.street:
            unit_code, kind = f"U-S-{code}", UnitKind.street_office
            if area.name.endswith(("管委会", "委员会", "办事处")):
                name = area.name
            elif area.is_town:
                name = area.name + "人民政府"
            else:
                name = area.name + "办事处"
        else:
            continue
        if unit_code in have:
            continue
        session.add(Unit(code=unit_code, name=name[:100], kind=kind, areas=[area]))
        have.add(unit_code)
        made[kind] += 1
        result.note(f"新增承办单位 {unit_code} {name}")
    if any(made.values()):
        result.note(
            f"新增承办单位：街道乡镇 {made[UnitKind.street_office]} 个，"
            f"区县政府 {made[UnitKind.district_government]} 个"
        )
        session.flush()
        reference.bump(session, reference.UNITS)


def _set_city_name(session, actor, result, choice, prefix):
    current = city.name(session)
    if choice.name is None or current == choice.name:
        return
    default = settings.DEFINITIONS[city.NAME].default
    others = session.scalar(
        sa.select(sa.func.count(Area.id)).where(
            Area.level == AreaLevel.district, ~Area.code.startswith(prefix)
        )
    )
    if current == default and not others:
        city.update(session, actor, {city.NAME: choice.name})
        result.note(f"城市名称已设为“{choice.name}”（系统管理 › 城市导入 › 城市设置可修改）")
    else:
        result.note(
            f"城市名称仍为“{current}”：如本系统服务{choice.name}，请在城市设置中修改城市名称、"
            "工单编号前缀和地图中心"
        )


# -- boundaries -----------------------------------------------------------------------------

BOUNDARY_ACCEPTS = (
    "GeoJSON（DataV *_full.json 格式：properties.adcode、name、center；GCJ-02 经纬度）"
)


def load_boundaries(session, actor, sources, options):
    """The ``boundaries`` import (see the module docstring)."""
    if not sources:
        raise ImportRefused([RowError("（文件）", None, None, "请上传 GeoJSON 边界文件")])
    problems = Problems()
    features = []  # (file, row, code, name, geometry dict, centre)
    for filename, data in sources:
        features.extend(_features(problems, filename, data))
    codes = {code for _, _, code, *_ in features}
    areas = {a.code: a for a in session.scalars(sa.select(Area).where(Area.code.in_(codes)))}
    seen = {}
    for file, row, code, name, _geometry, _centre in features:
        if code in seen:
            problems.add(
                file, row, "adcode", f"区划代码 {code} 重复（已见于第 {seen[code]} 个要素）"
            )
        elif code not in areas:
            problems.add(
                file, row, "adcode", f"区划代码 {code}（{name}）在系统中不存在：请先导入区划"
            )
        seen.setdefault(code, row)
    problems.check()

    result = ImportResult("boundaries")
    for _file, _row, code, name, geometry, centre in features:
        area = areas[code]
        lng, lat = centre
        if area.polygon == geometry and (area.center_lng, area.center_lat) == (lng, lat):
            result.unchanged += 1
            continue
        had = area.polygon is not None
        area.polygon = geometry
        area.center_lng, area.center_lat = lng, lat
        if had:
            result.updated += 1
            result.note(f"更新{LEVEL_WORD[area.level]}边界 {code} {area.name}")
        else:
            result.created += 1
            result.note(f"新增{LEVEL_WORD[area.level]}边界 {code} {area.name}")
        if name and name != area.name:
            result.note(f"注意：要素名称“{name}”与系统中的“{area.name}”（{code}）不同")
    session.flush()
    if result.created or result.updated:
        reference.bump(session, reference.AREAS)
    return result


def _features(problems, filename, data):
    try:
        document = json.loads(data.decode("utf-8-sig") if isinstance(data, bytes) else data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        problems.add(filename, None, None, "不是有效的 GeoJSON（JSON 格式错误）")
        return []
    if not isinstance(document, dict) or not isinstance(document.get("features"), list):
        problems.add(filename, None, None, "不是 GeoJSON FeatureCollection（缺少 features）")
        return []
    out = []
    for index, feature in enumerate(document["features"], start=1):
        properties = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(properties, dict):
            problems.add(filename, index, None, "要素缺少 properties")
            continue
        code = str(properties.get("adcode", "")).strip()
        name = str(properties.get("name") or "").strip()
        if not (_DIGITS.match(code) and len(code) in CODE_LENGTH.values()):
            problems.add(
                filename, index, "adcode", f"区划代码应为 6/9/12/15 位数字（现为“{code}”）"
            )
            continue
        geometry = _polygon(problems, filename, index, feature.get("geometry"))
        if geometry is None:
            continue
        centre = properties.get("center")
        if (
            isinstance(centre, list | tuple)
            and len(centre) == 2
            and all(isinstance(v, int | float) for v in centre)
            and _in_china(*centre)
        ):
            centre = (float(centre[0]), float(centre[1]))
        else:
            point = shape(geometry).representative_point()
            centre = (round(point.x, 6), round(point.y, 6))
        out.append((filename, index, code, name, geometry, centre))
    return out


def _polygon(problems, filename, index, geometry):
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        problems.add(filename, index, "geometry", "边界须为 Polygon 或 MultiPolygon")
        return None
    try:
        parsed = shape(geometry)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):
        problems.add(filename, index, "geometry", "边界坐标无法读取")
        return None
    if parsed.is_empty:
        problems.add(filename, index, "geometry", "边界为空")
        return None
    minx, miny, maxx, maxy = parsed.bounds
    if not (_in_china(minx, miny) and _in_china(maxx, maxy)):
        problems.add(filename, index, "geometry", "坐标不在中国境内（应为 GCJ-02 经纬度）")
        return None
    return _plain(mapping(parsed))


def _in_china(lng, lat):
    return 73 <= lng <= 136 and 3 <= lat <= 54


def _plain(value, digits=6):
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, list | tuple):
        return [_plain(v, digits) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v, digits) for k, v in value.items()}
    return value


# -- grids ----------------------------------------------------------------------------------

#: Default cell size in metres (万米单元网格 is about 100 m; a first cut is coarser).
DEFAULT_CELL_M = 500
DEFAULT_MAX_GRIDS = 20
#: A lattice piece smaller than this share of a cell joins a neighbour.
SLIVER = 0.2
#: Fine cells per community when an ancestor's boundary is split among its communities.
FINE_PER_COMMUNITY = 6
METRES_PER_DEGREE = 111_320.0
GRID_OPTIONS = {
    "cell_m": f"网格边长（米，默认 {DEFAULT_CELL_M}）",
    "max_grids": f"每个社区最多网格数（默认 {DEFAULT_MAX_GRIDS}）",
}
_COMMITTEE = (
    ("社区居民委员会", "社区"),
    ("社区居委会", "社区"),
    ("居民委员会", "社区"),
    ("居委会", "社区"),
    ("村民委员会", "村"),
    ("村委会", "村"),
)


def community_short_name(name):
    """曹家巷社区居委会 → 曹家巷社区, 张家庄村委会 → 张家庄村 (the name a grid is called by)."""
    for suffix, replacement in _COMMITTEE:
        if name.endswith(suffix) and len(name) > len(suffix):
            stem = name[: -len(suffix)]
            return stem if stem.endswith(replacement) else stem + replacement
    return name


def _int_option(options, name, default, low, high):
    raw = str(options.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise ImportRefused(
            [
                RowError(
                    "（选项）", None, GRID_OPTIONS[name], f"应为 {low}–{high} 的整数（现为“{raw}”）"
                )
            ]
        )
    return value


def load_grids(session, actor, sources, options):
    """The ``grids`` kind: no file, options ``cell_m`` and ``max_grids``."""
    if sources:
        raise ImportRefused(
            [RowError(sources[0][0], None, None, "生成网格不需要文件（边界请用“边界”导入）")]
        )
    cell_m = _int_option(options, "cell_m", DEFAULT_CELL_M, 20, 20_000)
    max_grids = _int_option(options, "max_grids", DEFAULT_MAX_GRIDS, 1, 999)
    return generate_grids(session, cell_m=cell_m, max_grids=max_grids)


@dataclass
class _Node:
    id: int
    code: str
    name: str
    level: AreaLevel
    parent_id: int | None
    geometry: object
    centre: tuple | None


def generate_grids(session, *, cell_m=DEFAULT_CELL_M, max_grids=DEFAULT_MAX_GRIDS):
    """Grids for every community that has none (see the module docstring)."""
    result = ImportResult("grids")
    rows = session.execute(
        sa.select(
            Area.id,
            Area.code,
            Area.name,
            Area.level,
            Area.parent_id,
            Area.polygon,
            Area.center_lng,
            Area.center_lat,
        )
    ).all()
    nodes, grids_of = {}, defaultdict(list)
    for id_, code, name, level, parent_id, polygon, lng, lat in rows:
        node = _Node(
            id_,
            code,
            name,
            level,
            parent_id,
            _geometry(polygon),
            (lng, lat) if lng is not None and lat is not None else None,
        )
        if level == AreaLevel.grid:
            grids_of[parent_id].append(node)
        else:
            nodes[id_] = node
    todo = sorted(
        (n for n in nodes.values() if n.level == AreaLevel.community and n.id not in grids_of),
        key=lambda n: n.code,
    )
    made = []  # (community, [geometry or None], centre or None)
    how = defaultdict(int)
    split = defaultdict(list)  # ancestor id → communities to share its boundary
    for community in todo:
        if community.geometry is not None:
            pieces = _lattice(community.geometry, cell_m, max_grids)
            made.append((community, pieces))
            how["own"] += 1
            continue
        ancestor = _bounded_ancestor(nodes, community)
        if ancestor is None:
            made.append((community, [_square(community.centre, cell_m)]))
            how["none"] += 1
        else:
            split[ancestor.id].append(community)
    for ancestor_id, communities in sorted(split.items(), key=lambda kv: nodes[kv[0]].code):
        ancestor = nodes[ancestor_id]
        area = _uncovered(ancestor, nodes, grids_of)
        shares = _split(area, len(communities), cell_m, max_grids) if area is not None else None
        if shares is None:
            for community in communities:
                made.append((community, [_square(community.centre, cell_m)]))
                how["none"] += 1
            continue
        for community, pieces in zip(communities, shares, strict=True):
            made.append((community, pieces))
            how["split"] += 1

    values = []
    for community, pieces in made:
        base = community_short_name(community.name)
        for seq, geometry in enumerate(pieces, start=1):
            if geometry is None:
                centre, polygon = community.centre, None
            else:
                point = geometry.representative_point()
                centre = (round(point.x, 6), round(point.y, 6))
                polygon = _plain(mapping(geometry))
            values.append(
                {
                    "code": f"{community.code}{seq:03d}",
                    "name": f"{base}第{seq}网格",
                    "level": AreaLevel.grid,
                    "parent_id": community.id,
                    "is_town": False,
                    "aliases": [],
                    "center_lng": centre[0] if centre else None,
                    "center_lat": centre[1] if centre else None,
                    "polygon": polygon,
                }
            )
        result.note(f"新增 {len(pieces)} 个网格：{community.code} {community.name}")
    for first in range(0, len(values), 2000):
        session.execute(sa.insert(Area), values[first : first + 2000])
    result.created = len(values)
    result.unchanged = sum(
        1 for n in nodes.values() if n.level == AreaLevel.community and n.id in grids_of
    )
    summary = []
    if how["own"]:
        summary.append(f"{how['own']} 个社区按自身边界划分")
    if how["split"]:
        summary.append(f"{how['split']} 个社区按街道或区县边界分配（近似位置）")
    if how["none"]:
        summary.append(f"{how['none']} 个社区无边界，各一个网格")
    if summary:
        result.note("；".join(summary) + f"；网格边长 {cell_m} 米")
    if result.unchanged:
        result.note(f"{result.unchanged} 个社区已有网格，未改动")
    if values:
        session.flush()
        reference.bump(session, reference.AREAS)
    return result


def _geometry(polygon):
    if not polygon:
        return None
    try:
        geometry = shape(polygon)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):
        return None
    if geometry.is_empty or geometry.geom_type not in ("Polygon", "MultiPolygon"):
        return None
    return geometry if geometry.is_valid else shapely.make_valid(geometry)


def _bounded_ancestor(nodes, area):
    parent = nodes.get(area.parent_id)
    while parent is not None:
        if parent.geometry is not None:
            return parent
        parent = nodes.get(parent.parent_id)
    return None


def _uncovered(ancestor, nodes, grids_of):
    """The ancestor's boundary less what other areas under it already cover."""
    covered = []
    for node in nodes.values():
        if node.id == ancestor.id or not node.code.startswith(ancestor.code):
            continue
        if node.geometry is not None and node.level != AreaLevel.district:
            covered.append(node.geometry)
        covered.extend(g.geometry for g in grids_of.get(node.id, ()) if g.geometry is not None)
    area = ancestor.geometry
    if covered:
        area = area.difference(shapely.union_all(covered))
    area = _polygonal(area)
    if area is None or area.area <= 0:
        return None
    return area


def _polygonal(geometry):
    """Only the polygons of a geometry (an intersection may add lines and points)."""
    if geometry is None or geometry.is_empty:
        return None
    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry
    parts = [
        g for g in getattr(geometry, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon")
    ]
    return shapely.union_all(parts) if parts else None


def _degrees(metres, lat):
    """A cell of ``metres`` as (degrees of longitude, degrees of latitude) at ``lat``."""
    dlat = metres / METRES_PER_DEGREE
    return dlat / max(math.cos(math.radians(lat)), 0.1), dlat


def _cells(geometry, metres):
    """The lattice of ``metres`` squares over ``geometry``, clipped to it: (pieces, row, col)."""
    minx, miny, maxx, maxy = geometry.bounds
    dx, dy = _degrees(metres, (miny + maxy) / 2)
    cols = max(1, math.ceil((maxx - minx) / dx))
    rows = max(1, math.ceil((maxy - miny) / dy))
    ii, jj = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    ii, jj = ii.ravel(), jj.ravel()
    x0 = minx + jj * dx
    y0 = maxy - (ii + 1) * dy
    boxes = shapely.box(x0, y0, x0 + dx, y0 + dy)
    shapely.prepare(geometry)
    inside = shapely.contains(geometry, boxes)
    touching = ~inside & shapely.intersects(geometry, boxes)
    pieces = boxes.copy()
    pieces[touching] = shapely.intersection(boxes[touching], geometry)
    keep = inside | touching
    out = []
    for piece, i, j in zip(pieces[keep], ii[keep], jj[keep], strict=True):
        piece = _polygonal(piece)
        if piece is not None and piece.area > 0:
            out.append((piece, int(i), int(j)))
    return out, dx * dy


def _lattice(geometry, cell_m, max_grids):
    """Squares of ``cell_m`` clipped to ``geometry`` (north to south, west to east), slivers
    joined to a neighbour; at most ``max_grids`` (the squares grow to fit)."""
    metres = cell_m
    for _ in range(20):
        cells, cell_area = _cells(geometry, metres)
        big = [c for c in cells if c[0].area >= SLIVER * cell_area]
        if len(big) <= max_grids:
            break
        metres *= math.sqrt(len(big) / max_grids) * 1.05
    pieces = _merge_slivers([c[0] for c in cells], cell_area)
    return pieces or [geometry]


def _merge_slivers(pieces, cell_area):
    keep = [p for p in pieces if p.area >= SLIVER * cell_area]
    small = [p for p in pieces if p.area < SLIVER * cell_area]
    if not keep:
        return [shapely.union_all(pieces)] if pieces else []
    tree = shapely.STRtree(keep)
    for piece in small:
        best, shared = None, 0.0
        for index in tree.query(piece, predicate="intersects"):
            length = keep[index].boundary.intersection(piece.boundary).length
            if length > shared:
                best, shared = index, length
        if best is None:
            keep.append(piece)  # an island of its own: a grid of its own
            continue
        keep[best] = _polygonal(shapely.union(keep[best], piece)) or keep[best]
    return keep


def _hilbert(x, y, order):
    """Positions along a Hilbert curve of cells (x, y) in a 2**order square."""
    n = 1 << order
    x, y = x.copy(), y.copy()
    d = np.zeros(len(x), np.int64)
    s = n >> 1
    while s > 0:
        rx = (x & s) > 0
        ry = (y & s) > 0
        d += s * s * ((3 * rx.astype(np.int64)) ^ ry.astype(np.int64))
        flip = ~ry & rx
        x = np.where(flip, n - 1 - x, x)
        y = np.where(flip, n - 1 - y, y)
        x, y = np.where(~ry, y, x), np.where(~ry, x, y)
        s >>= 1
    return d


def _split(geometry, count, cell_m, max_grids):
    """``geometry`` shared among ``count`` communities: per community a list of grid
    geometries, or None when the boundary is too small to share."""
    lat = (geometry.bounds[1] + geometry.bounds[3]) / 2
    dx, dy = _degrees(cell_m, lat)
    cell_area = dx * dy
    fine_area = min(cell_area, geometry.area / (count * FINE_PER_COMMUNITY))
    fine_area = max(fine_area, geometry.area / (count * max_grids * 4))
    metres = math.sqrt(fine_area / cell_area) * cell_m
    cells = []
    for _ in range(6):
        cells, _area = _cells(geometry, metres)
        if len(cells) >= count:
            break
        metres /= 2
    if len(cells) < count:
        return None
    rows = np.array([c[1] for c in cells])
    cols = np.array([c[2] for c in cells])
    order = max(1, int(max(rows.max(), cols.max())).bit_length())
    ranking = np.argsort(_hilbert(cols, rows, order), kind="stable")
    geometries = [cells[i][0] for i in ranking]
    areas = np.array([g.area for g in geometries])
    cumulative = np.cumsum(areas) / areas.sum()
    total = len(geometries)
    bounds = np.searchsorted(cumulative, np.arange(1, count) / count, side="left") + 1
    edges = [0]
    for i, bound in enumerate(bounds.tolist(), start=1):
        low = edges[-1] + 1
        high = total - (count - i)
        edges.append(min(max(bound, low), high))
    edges.append(total)
    per_grid = max(1, round(cell_area / fine_area))
    shares = []
    for i in range(count):
        run = geometries[edges[i] : edges[i + 1]]
        size = max(per_grid, math.ceil(len(run) / max_grids))
        shares.append(
            [
                _polygonal(shapely.union_all(run[k : k + size])) or run[k]
                for k in range(0, len(run), size)
            ]
        )
    return shares


def _square(centre, cell_m):
    if centre is None:
        return None
    lng, lat = centre
    dx, dy = _degrees(cell_m, lat)
    return shapely.box(lng - dx / 2, lat - dy / 2, lng + dx / 2, lat + dy / 2)
