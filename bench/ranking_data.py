"""The synthetic month of the ranking benchmark and its loaders.

A big city — 16 districts, 343 streets and towns, their governments and offices, 60 city
departments, 10 utilities, the hotline centre and the mayor's office (``build_city``; or the
units already in a database, ``city_from_database``) — and one month (2026-10, Asia/Shanghai)
of synthetic tickets with their assignments and events (``generate``), covering every case the
definitions in ``dashboards/ranking.py`` distinguish (signed / contacted on time, late, not
yet; no phone; finished on time, late, unfinished; terminated; every callback answer;
unreachable; reopened; returned; exempt; merged repeats; tickets never dispatched; tiny units;
units with equal scores), plus tickets just outside the month.

Loaders: ``load_postgres`` (COPY, for millions of tickets), ``load_sqlite`` (a SQLite file
migrated to head) and ``load_rows`` (SQLAlchemy Core, inside the caller's transaction, for
the tests); ``load_city`` writes the generated city's reference data.

Used by ``bench/rank.py`` and ``tests/dashboards/test_rank_bench.py``; ``MONTH``, ``AS_OF``,
``TIMEZONE`` and ``MAYORS_OFFICE`` are the parameters every ranking of this month is computed
with.
"""

import calendar
import datetime as dt
import json
import sqlite3
import time
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa

from hotline import migrate
from hotline.config import DEFAULTS
from hotline.db import make_engine
from hotline.enums import (
    AssignmentRole,
    DecisionStatus,
    ExemptionKind,
    ReturnReason,
    Satisfaction,
    Solved,
    TicketStatus,
)

MONTH = "2026-10"
TIMEZONE = DEFAULTS["TIMEZONE"]
MAYORS_OFFICE = "U-SZFB"
#: The moment of computation: Wednesday 4 November 2026, 14:37 in Shanghai. Late-October
#: tickets still have deadlines ahead; the odd microseconds keep every deadline off it.
AS_OF = dt.datetime(2026, 11, 4, 6, 37, 21, 345679, tzinfo=dt.UTC)
SEED = 20261031

#: Codes of the generator's enum columns, and the values they stand for (0: NULL where the
#: column may be empty).
STATUSES = np.array([s.value for s in TicketStatus], dtype=object)
ST = {name: code for code, name in enumerate(STATUSES)}


def _codes(enum_cls, nullable=True):
    return np.array(([None] if nullable else []) + [m.value for m in enum_cls], dtype=object)


SOLVED = _codes(Solved)
SATISFACTION = _codes(Satisfaction)
EXEMPT_KINDS = _codes(ExemptionKind)
RETURN_REASONS = _codes(ReturnReason)
DECISIONS = _codes(DecisionStatus)
#: Generator role codes 0, 1, 2.
ROLES = np.array(
    [AssignmentRole.lead.value, AssignmentRole.copy.value, AssignmentRole.assist.value],
    dtype=object,
)
TRANSFER_TARGETS = np.array(["110", "120", "litigation", "petition", "disclosure"], dtype=object)

#: Ticket kinds of the generator (what happened at intake).
DISPATCHED, INTAKE, TRANSFER, MERGED, RECEIVED = range(5)
#: Unit classes of the generator (the ranking classes, plus nothing for the centre).
STREET, DEPARTMENT, UTILITY, GOVERNMENT = range(4)

US = np.timedelta64(1, "us")
MINUTE = np.timedelta64(60_000_000, "us")
HOUR = 60 * MINUTE
DAY = 24 * HOUR
NAT = np.datetime64("NaT", "us")

DISTRICT_NAMES = (
    "历城 天桥 槐荫 市中 历下 长清 章丘 济阳 莱芜 钢城 平阴 商河 高新 南山 起步 莱阳"
).split()
DEPARTMENT_NAMES = (
    "住房城乡建设 城市管理 交通运输 生态环境 市场监管 人力资源社会保障 教育 卫生健康 公安 "
    "自然资源规划 水务 园林绿化 民政 医疗保障 应急管理 商务 农业农村 文化旅游 体育 "
    "退役军人事务 司法 税务 消防救援 公积金 大数据 行政审批 残联 妇联 信访 统计"
).split()
UTILITY_NAMES = "供电 供水 燃气 热力 公交 地铁 移动通信 联通 电信 邮政".split()


def datetime64(moment):
    """An aware datetime as numpy datetime64[us] (UTC, naive)."""
    return np.datetime64(moment.astimezone(dt.UTC).replace(tzinfo=None), "us")


def local_month(month, timezone):
    """``YYYY-MM`` in ``timezone`` as a UTC interval [start, end) of aware datetimes."""
    year, number = (int(part) for part in month.split("-"))
    zone = ZoneInfo(timezone)
    start = dt.datetime(year, number, 1, tzinfo=zone)
    last = calendar.monthrange(year, number)[1]
    end = dt.datetime(year, number, last, tzinfo=zone) + dt.timedelta(days=1)
    end = dt.datetime(end.year, end.month, end.day, tzinfo=zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


# -- the city ---------------------------------------------------------------------------------


@dataclass
class City:
    areas: list
    units: list
    unit_areas: list
    users: list
    #: Unit ids per generator class, in code order.
    pools: dict
    #: Street office id → its district government's id.
    street_government: dict
    #: Unit id → the area it answers for (streets, governments).
    area_of: dict
    #: District government id → the street ids of its district.
    district_streets: dict = field(default_factory=dict)


def build_city(districts=16, streets=343, departments=60, utilities=10, seed=SEED):
    """Areas, units (linked to their areas) and one user, with explicit ids."""
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.6, 1.4, districts)
    sizes = np.maximum(1, np.floor(weights / weights.sum() * streets)).astype(int)
    for i in np.argsort(-weights)[: streets - sizes.sum()]:
        sizes[i] += 1
    areas, units, unit_areas = [], [], []
    pools = {STREET: [], DEPARTMENT: [], UTILITY: [], GOVERNMENT: []}
    street_government, area_of, district_streets = {}, {}, {}

    def unit(code, name, kind, always_on=False):
        units.append(
            {
                "id": len(units) + 1,
                "code": code,
                "name": name,
                "kind": kind,
                "always_on": always_on,
                "active": True,
            }
        )
        return len(units)

    unit("U-HOTLINE", "市12345政务服务便民热线中心", "hotline_centre", True)
    unit(MAYORS_OFFICE, "市人民政府办公厅（市长办公室）", "city_department")
    for d in range(districts):
        code = f"3701{d + 2:02d}"
        name = DISTRICT_NAMES[d % len(DISTRICT_NAMES)] + ("区" if d < 12 else "县")
        if d >= len(DISTRICT_NAMES):
            name = f"第{d + 1}区"
        district_area = len(areas) + 1
        areas.append(
            {"id": district_area, "code": code, "name": name, "level": "district", "parent": None}
        )
        government = unit(f"U-D-{code}", f"{name}人民政府", "district_government")
        unit_areas.append((government, district_area))
        pools[GOVERNMENT].append(government)
        area_of[government] = district_area
        district_streets[government] = []
        towns = int(sizes[d] * 0.4)
        for s in range(sizes[d]):
            is_town = s >= sizes[d] - towns
            number = 100 + s if is_town else 1 + s
            street_code = f"{code}{number:03d}"
            street_name = f"{name}第{s + 1}{'镇' if is_town else '街道'}"
            street_area = len(areas) + 1
            areas.append(
                {
                    "id": street_area,
                    "code": street_code,
                    "name": street_name,
                    "level": "street",
                    "parent": district_area,
                    "is_town": is_town,
                }
            )
            office = unit(
                f"U-S-{street_code}",
                street_name + ("人民政府" if is_town else "办事处"),
                "street_office",
            )
            unit_areas.append((office, street_area))
            pools[STREET].append(office)
            street_government[office] = government
            area_of[office] = street_area
            district_streets[government].append(office)
    for i in range(departments):
        base = DEPARTMENT_NAMES[i % len(DEPARTMENT_NAMES)]
        suffix = "局" if i < len(DEPARTMENT_NAMES) else f"{i // len(DEPARTMENT_NAMES) + 1}中心"
        pools[DEPARTMENT].append(unit(f"U-C-{i + 1:03d}", f"市{base}{suffix}", "city_department"))
    for i in range(utilities):
        base = UTILITY_NAMES[i % len(UTILITY_NAMES)]
        pools[UTILITY].append(
            unit(f"U-G-{i + 1:02d}", f"市{base}公司{'' if i < 10 else i}", "utility", True)
        )
    users = [
        {
            "id": 1,
            "username": "bench_rank",
            "name": "排名压测",
            "password_hash": "!",
            "role": "dispatcher",
            "active": True,
        }
    ]
    return City(
        areas=areas,
        units=units,
        unit_areas=unit_areas,
        users=users,
        pools={k: np.array(v, dtype=np.int64) for k, v in pools.items()},
        street_government=street_government,
        area_of=area_of,
        district_streets=district_streets,
    )


def city_from_database(connection, mayors_office_code=MAYORS_OFFICE):
    """The city of an existing database (e.g. the seeded one of the tests), for ``generate``."""
    units = [
        dict(row)
        for row in connection.execute(
            sa.text("SELECT id, code, name, kind, always_on, active FROM units ORDER BY id")
        ).mappings()
    ]
    links = connection.execute(
        sa.text(
            "SELECT ua.unit_id, a.id, a.level, a.parent_id FROM unit_areas ua "
            "JOIN areas a ON a.id = ua.area_id ORDER BY ua.unit_id, a.id"
        )
    ).all()
    area_of, district_area = {}, {}
    for unit_id, area_id, level, parent_id in links:
        if unit_id not in area_of:
            area_of[unit_id] = area_id
            district_area[unit_id] = area_id if level == "district" else parent_id
    kinds = {
        "street_office": STREET,
        "city_department": DEPARTMENT,
        "utility": UTILITY,
        "district_government": GOVERNMENT,
    }
    pools = {cls: [] for cls in kinds.values()}
    for unit in units:
        cls = kinds.get(unit["kind"])
        if cls is None or unit["code"] == mayors_office_code or not unit["active"]:
            continue
        if cls in (STREET, GOVERNMENT) and unit["id"] not in area_of:
            continue
        pools[cls].append(unit["id"])
    government_of_area = {district_area[g]: g for g in pools[GOVERNMENT]}
    pools[STREET] = [s for s in pools[STREET] if district_area[s] in government_of_area]
    street_government = {s: government_of_area[district_area[s]] for s in pools[STREET]}
    district_streets = {g: [] for g in pools[GOVERNMENT]}
    for street, government in street_government.items():
        district_streets[government].append(street)
    return City(
        areas=[],
        units=units,
        unit_areas=[],
        users=[],
        pools={k: np.array(v, dtype=np.int64) for k, v in pools.items()},
        street_government=street_government,
        area_of=area_of,
        district_streets=district_streets,
    )


def load_city(connection, city, created_at=AS_OF):
    """Insert the city with SQLAlchemy Core (a few hundred rows, any backend)."""
    from hotline.models import Area, Unit, User, unit_areas

    connection.execute(
        sa.insert(Area.__table__),
        [
            {
                "id": a["id"],
                "code": a["code"],
                "name": a["name"],
                "level": a["level"],
                "parent_id": a["parent"],
                "is_town": a.get("is_town", False),
                "aliases": [],
            }
            for a in city.areas
        ],
    )
    connection.execute(sa.insert(Unit.__table__), city.units)
    connection.execute(
        sa.insert(unit_areas), [{"unit_id": u, "area_id": a} for u, a in city.unit_areas]
    )
    connection.execute(
        sa.insert(User.__table__), [dict(u, created_at=created_at) for u in city.users]
    )


# -- the tickets --------------------------------------------------------------------------------


@dataclass
class Data:
    tickets: dict
    assignments: dict
    events: dict
    stats: dict
    #: 吹哨报到 summonses (empty columns: none).
    summonses: dict = field(default_factory=dict)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _span(u, low, high):
    """``u`` in [0, 1) → a timedelta64[us] between ``low`` and ``high``."""
    return (low + (u * ((high - low) / US)).astype(np.int64) * US).astype("timedelta64[us]")


def _micros(delta):
    """Microseconds of a timedelta64 array, 0 where negative or NaT."""
    out = np.where(np.isnat(delta), 0, delta.astype(np.int64))
    return np.maximum(out, 0)


def _pick(pool, u):
    return pool[np.minimum((u * len(pool)).astype(np.int64), len(pool) - 1)]


def generate(
    city,
    n,
    *,
    seed=SEED,
    month=MONTH,
    timezone=TIMEZONE,
    as_of=AS_OF,
    min_sample=10,
    edges=3,
    first_id=1,
    user_id=1,
):
    """``n`` tickets received in ``month`` (plus about 1 % just outside it), with assignments
    and exemption events, as numpy column arrays. Deterministic for a seed. ``edges`` tickets
    each have their sign, contact or finish deadline exactly at ``as_of``. Ticket ids start at
    ``first_id``; ``user_id`` creates, dispatches and exempts."""
    rng = np.random.default_rng(seed)
    start, end = (datetime64(m) for m in local_month(month, timezone))
    now = datetime64(as_of)
    n_out = max(20, n // 100)
    total = n + n_out

    # -- received, and what happened at intake
    received = start + _span(rng.random(total), 0 * US, end - start)
    received[0], received[1] = start, end - US  # the month's first and last microsecond
    out = np.arange(n, total)
    where = rng.random(n_out)
    received[out] = np.where(
        where < 0.3,
        start - _span(rng.random(n_out), MINUTE, 3 * DAY),  # late September
        np.where(
            where < 0.7,
            end + _span(rng.random(n_out), 0 * US, 8 * HOUR),  # 1 November, early hours
            end + 8 * HOUR + _span(rng.random(n_out), 0 * US, now - end - 9 * HOUR),
        ),
    )
    received[n] = end  # the first microsecond of the next month
    in_month = np.zeros(total, bool)
    in_month[:n] = True
    kind = rng.choice(5, total, p=[0.86, 0.08, 0.015, 0.035, 0.01])
    kind[(kind == RECEIVED) & (received < now - 6 * DAY)] = DISPATCHED
    kind[:2] = DISPATCHED
    dispatched = kind == DISPATCHED

    # -- lead units: most to streets, then departments, utilities, a few district governments
    pools = city.pools
    specials = []  # (class, unit id, tickets in the month, profile)

    def special(cls, index, count, profile="tiny"):
        pool = pools[cls]
        if len(pool) >= 2 - index:  # keep at least one ordinary unit per class
            specials.append((cls, int(pool[index]), count, profile))

    special(DEPARTMENT, -1, 0)
    special(DEPARTMENT, -2, 4)
    special(DEPARTMENT, -3, min_sample)
    special(DEPARTMENT, -4, min_sample + 2, "pending")
    special(UTILITY, -1, min_sample - 1)
    special(UTILITY, -2, min_sample + 5, "unrated")
    special(STREET, -1, 2)
    special(STREET, -2, min_sample - 1)
    special_ids = {s[1] for s in specials}
    weights = {}
    for cls, pool in pools.items():
        w = rng.lognormal(0.0, 0.6, len(pool))
        w[np.isin(pool, list(special_ids))] = 0.0
        weights[cls] = w / w.sum()
    unit_class = np.full(total, -1)
    unit_class[dispatched] = rng.choice(4, dispatched.sum(), p=[0.70, 0.20, 0.08, 0.02])
    lead = np.zeros(total, np.int64)
    for cls, pool in pools.items():
        rows = np.flatnonzero(unit_class == cls)
        lead[rows] = rng.choice(pool, len(rows), p=weights[cls])
    ordinary = {
        cls: pool[~np.isin(pool, list(special_ids))] for cls, pool in pools.items() if len(pool)
    }
    # Special units get exactly their number of the month's tickets, taken from others.
    for cls, unit_id, count, _profile in specials:
        rows = np.flatnonzero(in_month & (unit_class == cls) & np.isin(lead, ordinary[cls]))
        lead[rng.choice(rows, count, replace=False)] = unit_id
    # Twins: equal numbers of tickets with identical draws, hence equal scores (a tie).
    twins = []
    for cls in (STREET, DEPARTMENT, UTILITY):
        pool = ordinary[cls]
        if len(pool) >= 3:
            a, b, spare = pool[0], pool[1], pool[-1]
            rows_a = np.flatnonzero(in_month & (lead == a))
            rows_b = np.flatnonzero(in_month & (lead == b))
            m = min(len(rows_a), len(rows_b))
            lead[rows_a[m:]] = spare
            lead[rows_b[m:]] = spare
            twins.append((rows_a[:m], rows_b[:m]))

    def draw():
        x = rng.random(total)
        for rows_a, rows_b in twins:
            x[rows_b] = x[rows_a]
        return x

    for rows_a, rows_b in twins:
        received[rows_b] = received[rows_a]
    top = max(u["id"] for u in city.units)
    quality = rng.normal(0.0, 0.8, top + 1)
    for rows_a, rows_b in twins:
        if len(rows_a):
            quality[lead[rows_b[0]]] = quality[lead[rows_a[0]]]
    q = np.where(dispatched, quality[lead], 0.0)
    profile = np.full(total, "", dtype=object)
    for _cls, unit_id, _count, name in specials:
        profile[in_month & (lead == unit_id)] = name
    # Deadlines exactly at ``as_of``: has the deadline been missed yet?
    free = in_month & dispatched & (profile == "")
    for rows_a, rows_b in twins:
        free[rows_a] = free[rows_b] = False
    for name in ("sign_edge", "contact_edge", "finish_edge"):
        candidates = np.flatnonzero(free & ((received < now - 6 * DAY) | (name != "finish_edge")))
        rows = rng.choice(candidates, min(edges, len(candidates)), replace=False)
        profile[rows] = name
        free[rows] = False
    plain = profile == ""
    pending_profile = profile == "pending"
    unrated_profile = profile == "unrated"
    sign_edge = profile == "sign_edge"
    contact_edge = profile == "contact_edge"
    finish_edge = profile == "finish_edge"
    redispatched_late = pending_profile | sign_edge | contact_edge  # a new clock in November
    unit_class[dispatched & np.isin(lead, pools[STREET])] = STREET
    is_utility = dispatched & (unit_class == UTILITY)

    # -- returns before the current lead (退单), then the current clock
    delay = _span(draw() ** 3, 3 * MINUTE, 4 * HOUR)
    first_dispatch = np.where(dispatched, received + delay, NAT)
    u = draw()
    has_prior = (dispatched & plain & (u < 0.05)) | redispatched_late
    boomerang = has_prior & plain & (u < 0.004)  # returned, then back to the first
    prior_unit = np.zeros(total, np.int64)
    u_unit, u_same = draw(), draw()
    for cls, pool in pools.items():
        rows = np.flatnonzero(has_prior & (unit_class == cls))
        choice = _pick(pool, u_unit[rows])
        clash = choice == lead[rows]
        choice[clash] = pool[(np.searchsorted(pool, choice[clash]) + 1) % len(pool)]
        prior_unit[rows] = choice
    # A street's return mostly goes to a neighbouring street of the same district (属地不符).
    for streets in city.district_streets.values():
        streets = np.array(streets)
        if len(streets) < 2:
            continue
        rows = np.flatnonzero(has_prior & np.isin(lead, streets) & (u_same < 0.6))
        position = np.searchsorted(streets, lead[rows])
        offset = 1 + (u_unit[rows] * (len(streets) - 1)).astype(np.int64)
        prior_unit[rows] = streets[(position + offset) % len(streets)]
    return_at = first_dispatch + _span(draw(), 10 * MINUTE, 20 * HOUR)
    second_dispatch = return_at + _span(draw(), 10 * MINUTE, 8 * HOUR)  # boomerang: unit B
    second_return = second_dispatch + _span(draw(), 10 * MINUTE, 20 * HOUR)
    clock = np.where(has_prior, return_at + _span(draw(), 10 * MINUTE, 8 * HOUR), first_dispatch)
    clock = np.where(boomerang, second_return + _span(draw(), 10 * MINUTE, 4 * HOUR), clock)
    clock[pending_profile] = now - _span(draw()[pending_profile], 10 * MINUTE, 50 * MINUTE)

    # -- reopens (重办): earlier rounds finished and called back, then a new clock
    u = draw()
    reopen_count = np.where(dispatched & plain & (u < 0.04), 1, 0)
    reopen_count[reopen_count.astype(bool) & (u < 0.004)] = 2
    rounds = []  # (clock started, reopened at) of each earlier round
    current = clock.copy()
    for r in range(2):
        active = reopen_count > r
        reopened_at = (
            current + _span(draw(), DAY, 6 * DAY) + _span(draw(), 2 * HOUR, 2 * DAY) + HOUR
        )
        ok = active & (reopened_at < now - 10 * MINUTE)
        reopen_count[active & ~ok] = r
        rounds.append((np.where(ok, current, NAT), np.where(ok, reopened_at, NAT)))
        current = np.where(ok, reopened_at, current)
    clock = current

    # -- deadlines of the current clock
    u, u_days = draw(), draw()
    urgent = dispatched & (u < 0.05)
    sign_limit = np.where(urgent, 30 * MINUTE, np.where(is_utility, HOUR, 2 * HOUR))
    contact_limit = np.where(urgent, 4 * HOUR, np.where(is_utility, 12 * HOUR, 24 * HOUR))
    days = np.select([u_days < 0.2, u_days < 0.6, u_days < 0.9], [3, 5, 10], 15)
    days = np.where(urgent, 1, days) + np.where(draw() < 0.05, 5, 0)  # approved extensions
    clock[sign_edge] = now - sign_limit[sign_edge]
    clock[contact_edge] = now - contact_limit[contact_edge]
    days[finish_edge] = 5
    clock[finish_edge] = now - 5 * DAY
    return_at[redispatched_late] = clock[redispatched_late] - 30 * MINUTE
    first_dispatch[redispatched_late] = np.minimum(
        received[redispatched_late] + HOUR, return_at[redispatched_late] - MINUTE
    )
    sign_due = np.where(dispatched, clock + sign_limit, NAT)
    contact_due = np.where(dispatched, clock + contact_limit, NAT)
    finish_due = np.where(dispatched, clock + days * DAY, NAT)

    # -- signed: on time, exactly at the deadline, late, not (yet)
    u, u_t = draw(), draw()
    on_time = _sigmoid(2.4 + 0.7 * q)
    late = (1 - on_time) * 0.6
    signed = np.where(
        u < 0.002,
        sign_due,
        np.where(
            u < on_time,
            clock + (u_t * (sign_limit / US)).astype(np.int64) * US,
            np.where(u < on_time + late, sign_due + _span(u_t, MINUTE, 36 * HOUR), NAT),
        ),
    )
    signed[~dispatched | pending_profile | sign_edge] = NAT
    signed[contact_edge | finish_edge] = clock[contact_edge | finish_edge] + 10 * MINUTE
    signed[signed > now] = NAT

    # -- requester contacted (a phone to call: 93 %)
    phone = (draw() >= 0.07) | contact_edge
    u, u_t = draw(), draw()
    on_time = _sigmoid(2.2 + 0.7 * q)
    late = (1 - on_time) * 0.5
    room = _micros(contact_due - signed)
    after = np.maximum(signed, contact_due)
    contacted = np.where(
        (u < 0.002) & (room > 0),
        contact_due,
        np.where(
            (u < on_time) & (room > 0),
            signed + (u_t * room).astype(np.int64) * US,
            np.where(u < on_time + late, after + _span(u_t, MINUTE, 48 * HOUR), NAT),
        ),
    )
    contacted[finish_edge] = signed[finish_edge] + HOUR
    contacted[~phone | np.isnat(signed) | contact_edge] = NAT
    contacted[contacted > now] = NAT

    # -- finished: on time, exactly at the deadline, late, still working
    ready = ~np.isnat(signed) & (~np.isnat(contacted) | ~phone)
    base = np.where(phone, contacted, signed)
    u, u_t = draw(), draw()
    on_time = 0.06 + 0.94 * _sigmoid(2.0 + 0.7 * q)
    room = _micros(finish_due - base)
    finished = np.where(
        u < 0.06,
        NAT,
        np.where(
            (u < 0.061) & (room > 0),
            finish_due,
            np.where(
                (u < on_time) & (room > 0),
                base + (u_t * room).astype(np.int64) * US,
                np.maximum(base, finish_due) + _span(u_t, HOUR, 10 * DAY),
            ),
        ),
    )
    finished[~ready | finish_edge] = NAT
    finished[finished > now] = NAT

    # -- terminated (终止), or asking to be; returns pending or turned down
    u, u_t = draw(), draw()
    terminating = ready & np.isnat(finished) & plain & (u < 0.03)
    terminated_at = signed + _span(u_t, DAY, 20 * DAY)
    terminated = terminating & (terminated_at <= now)
    termination_requested = terminating & ~terminated
    u = draw()
    own_return = dispatched & plain & ~terminating & (u < 0.016)
    return_pending = own_return & (u < 0.006) & np.isnat(finished) & np.isnat(contacted)
    own_return_at = np.where(np.isnat(signed), clock, signed) + _span(draw(), 5 * MINUTE, 10 * HOUR)
    own_return_at = np.where(own_return, np.minimum(own_return_at, now - MINUTE), NAT)

    # -- callback (回访): answered with every solved × satisfied, unreachable, not yet called
    u, u_t, u_solved, u_satisfied = draw(), draw(), draw(), draw()
    done = ~np.isnat(finished)
    called = finished + _span(u_t, 2 * HOUR, 3 * DAY)
    answered = done & phone & ~unrated_profile & (u < 0.82) & (called <= now)
    p_solved = _sigmoid(1.6 + 0.8 * q)
    solved = np.where(
        u_solved < p_solved, 1, np.where(u_solved < p_solved + 0.5 * (1 - p_solved), 2, 3)
    )
    p_satisfied = _sigmoid(1.3 + 0.8 * q)
    satisfaction = np.where(
        u_satisfied < p_satisfied,
        1,
        np.where(u_satisfied < p_satisfied + 0.6 * (1 - p_satisfied), 2, 3),
    )
    solved = np.where(answered, solved, 0)
    satisfaction = np.where(answered, satisfaction, 0)
    callback_at = np.where(answered, called, NAT)
    closed = np.where(
        answered,
        called + _span(draw(), 10 * MINUTE, DAY),
        np.where(
            phone,
            finished + _span(draw(), 2 * DAY, 4 * DAY),  # unreachable after three tries
            finished + _span(draw(), HOUR, DAY),  # no phone: nothing to call
        ),
    )
    closed[~done | (closed > now)] = NAT
    closed = np.where(terminated, terminated_at, closed)
    callback_next = np.where(done & np.isnat(closed) & ~answered & phone, called, NAT)
    callback_due = np.where(done, finished + 3 * DAY, NAT)

    # -- status of the dispatched tickets
    status = np.full(total, ST["dispatched"])
    status[reopen_count > 0] = ST["reopened"]
    status[~np.isnat(signed)] = ST["signed"]
    status[~np.isnat(contacted)] = ST["contacted"]
    status[return_pending] = ST["return_requested"]
    status[termination_requested] = ST["termination_requested"]
    status[done] = ST["finished"]
    status[answered] = ST["called_back"]
    status[~np.isnat(closed)] = ST["closed"]
    status[terminated] = ST["terminated"]

    # -- never dispatched: answered at intake, transferred, merged, waiting
    intake_done = received + _span(draw(), MINUTE, 15 * MINUTE)
    status[kind == INTAKE] = ST["resolved_at_intake"]
    status[kind == TRANSFER] = ST["transferred"]
    status[kind == MERGED] = ST["merged"]
    status[kind == RECEIVED] = ST["received"]
    for name, rows in (("finished", kind == INTAKE), ("closed", kind == INTAKE)):
        (finished if name == "finished" else closed)[rows] = intake_done[rows]
    closed[(kind == TRANSFER) | (kind == MERGED)] = intake_done[
        (kind == TRANSFER) | (kind == MERGED)
    ]

    # -- exemptions (考核豁免): reviewers' decisions, a few on tickets no unit leads
    u = draw()
    exempt = (dispatched & plain & (u < 0.012)) | (~dispatched & (u < 0.005))
    exempt_kind = np.where(exempt, 1 + (draw() * 6).astype(np.int64), 0)
    exempt_at = np.minimum(received + _span(draw(), DAY, 5 * DAY), now - MINUTE)

    area = np.zeros(total, np.int64)
    street_areas = np.array([city.area_of[s] for s in pools[STREET]])
    area[:] = _pick(street_areas, draw())
    for unit_id, area_id in city.area_of.items():
        area[dispatched & (lead == unit_id)] = area_id
    area[draw() < 0.02] = 0

    # -- in order of receipt: ids, then merges (并单) into earlier dispatched tickets
    order = np.argsort(received, kind="stable")
    columns = {
        "received": received,
        "kind": kind,
        "lead": lead,
        "area": area,
        "status": status,
        "phone": phone,
        "clock": clock,
        "sign_due": sign_due,
        "contact_due": contact_due,
        "finish_due": finish_due,
        "callback_due": callback_due,
        "signed": signed,
        "contacted": contacted,
        "finished": finished,
        "closed": closed,
        "callback_at": callback_at,
        "callback_next": callback_next,
        "solved": solved,
        "satisfaction": satisfaction,
        "reopen_count": reopen_count,
        "exempt": exempt,
        "exempt_kind": exempt_kind,
        "exempt_at": exempt_at,
        "in_month": in_month,
        "first_dispatch": first_dispatch,
        "has_prior": has_prior,
        "boomerang": boomerang,
        "prior_unit": prior_unit,
        "return_at": return_at,
        "second_dispatch": second_dispatch,
        "second_return": second_return,
        "own_return_at": own_return_at,
        "return_pending": return_pending,
        "return_reason": 1 + (draw() * 4).astype(np.int64),
        "assist": dispatched & (draw() < 0.03),
        "assist_unit": _pick(pools[DEPARTMENT], draw()),
        "round0_clock": rounds[0][0],
        "round0_end": rounds[0][1],
        "round1_clock": rounds[1][0],
        "round1_end": rounds[1][1],
        "transfer_target": (draw() * len(TRANSFER_TARGETS)).astype(np.int64),
        "u_merge": draw(),
        "profile": profile,
    }
    c = {name: values[order] for name, values in columns.items()}
    ids = np.arange(first_id, first_id + total, dtype=np.int64)
    merged_into = np.zeros(total, np.int64)
    merged_rows = np.flatnonzero(c["kind"] == MERGED)
    disp_rows = np.flatnonzero(c["kind"] == DISPATCHED)
    month_disp_rows = np.flatnonzero((c["kind"] == DISPATCHED) & c["in_month"])
    window = max(5, len(disp_rows) // 300)
    after_month = c["received"][merged_rows] >= end
    for rows, pool in (
        (merged_rows[~after_month], disp_rows),
        (merged_rows[after_month], month_disp_rows),
    ):
        k = np.searchsorted(pool, rows)
        span = np.minimum(k, window)
        target = k - 1 - (c["u_merge"][rows] * span).astype(np.int64)
        ok = k > 0
        merged_into[rows[ok]] = ids[pool[target[ok]]]
        lonely = rows[~ok]
        c["kind"][lonely] = INTAKE
        c["status"][lonely] = ST["resolved_at_intake"]
        c["finished"][lonely] = c["closed"][lonely]
    # Every tenth merge joins the previous one's ticket: tickets with several repeats.
    merged_rows = np.flatnonzero(c["kind"] == MERGED)
    again = merged_rows[1::10]
    merged_into[again] = merged_into[merged_rows[0::10][: len(again)]]

    tickets = _ticket_columns(c, ids, merged_into, user_id)
    assignments = _assignment_columns(c, ids, city, user_id)
    events = _event_columns(c, ids, user_id)
    # Drawn from their own generator, so the tickets stay what they were before these.
    extra = np.random.default_rng(seed + 1)
    events = _concat(events, _review_return_columns(c, ids, user_id, extra, now, len(events["id"])))
    summonses = _summons_columns(c, ids, city, user_id, extra, now, edges)
    stats = {
        "tickets_in_month": int(n),
        "tickets_outside_month": int(n_out),
        "dispatched_in_month": int((c["in_month"] & (c["kind"] == DISPATCHED)).sum()),
        "merged": int((c["kind"] == MERGED).sum()),
        "exempt": int(c["exempt"].sum()),
        "reopened": int((c["reopen_count"] > 0).sum()),
        "returns": int(c["has_prior"].sum() + (~np.isnat(c["own_return_at"])).sum()),
        "assignments": len(assignments["id"]),
        "twins": [(int(lead[a[0]]), int(lead[b[0]])) for a, b in twins if len(a)],
        "special_units": [(unit_id, count, name) for _c, unit_id, count, name in specials],
        "deadline_at_as_of": {
            name: int((c["profile"] == name).sum())
            for name in ("sign_edge", "contact_edge", "finish_edge")
        },
    }
    stats["review_returns"] = len(events["id"]) - int(c["exempt"].sum())
    stats["summonses"] = len(summonses["id"])
    return Data(tickets, assignments, events, stats, summonses)


def _concat(a, b):
    return {name: np.concatenate([a[name], b[name]]) for name in a}


def _review_return_columns(c, ids, user_id, rng, now, first):
    """审核退回 events on about 4 % of the dispatched tickets (a tenth of them twice): mostly
    the current lead's reply, sometimes (on tickets another unit led first) the earlier
    lead's, which no unit's count may take."""
    dispatched = np.flatnonzero(c["kind"] == DISPATCHED)
    rows = dispatched[rng.random(len(dispatched)) < 0.04]
    rows = np.concatenate([rows, rows[::10]])
    earlier = c["has_prior"][rows] & (rng.random(len(rows)) < 0.5)
    unit = np.where(earlier, c["prior_unit"][rows], c["lead"][rows])
    received = c["received"][rows]
    created = np.minimum(received + _span(rng.random(len(rows)), HOUR, now - received), now)
    size = len(rows)
    return {
        "id": np.arange(first + 1, first + size + 1, dtype=np.int64),
        "ticket_id": ids[rows],
        "action": np.full(size, "return_reply", dtype=object),
        "actor_id": np.full(size, user_id, np.int64),
        "actor_role": np.full(size, "supervisor", dtype=object),
        "unit_id": unit.astype(np.int64),
        "from_status": np.full(size, "reviewing", dtype=object),
        "to_status": np.full(size, "contacted", dtype=object),
        "reason": np.full(size, "答复未说明办理结果", dtype=object),
        "payload": np.full(size, "{}", dtype=object),
        "created_at": created,
    }


#: Summons outcomes the generator draws (offsets from the summons, due in 1 h and 24 h).
SUMMONS_OUTCOMES = (
    "on_time",  # reported and opinion in time
    "late_report",
    "late_opinion",
    "no_opinion",  # reported in time, no opinion (missed once 24 h passed)
    "never_reported",
    "withdrawn_early",  # cancelled before the report was due: not counted
    "withdrawn_late",  # cancelled after missing the report: late
)


def _summons_columns(c, ids, city, user_id, rng, now, edges):
    """One summons of a city department on about 3 % of the dispatched tickets (any month,
    so September's tickets have October summonses), at any moment after dispatch up to
    ``now``; acts after ``now`` have not happened yet. ``edges`` summonses have their report
    due exactly at ``now`` and unreported (not yet missed)."""
    departments = city.pools[DEPARTMENT]
    dispatched = np.flatnonzero(c["kind"] == DISPATCHED)
    rows = dispatched[rng.random(len(dispatched)) < 0.03]
    size = len(rows)
    if not size or not len(departments):
        return {}
    clock = c["clock"][rows]
    summoned = clock + _span(rng.random(size), 0 * US, np.maximum(now - clock, MINUTE) - US)
    report_due, opinion_due = summoned + HOUR, summoned + DAY
    outcome = rng.choice(len(SUMMONS_OUTCOMES), size, p=[0.5, 0.1, 0.1, 0.1, 0.08, 0.07, 0.05])
    u = rng.random(size)
    name = np.array(SUMMONS_OUTCOMES)[outcome]
    reported = np.where(
        np.isin(name, ["on_time", "late_opinion", "no_opinion"]),
        summoned + _span(u, 0 * US, HOUR),  # up to the deadline itself
        np.where(name == "late_report", report_due + _span(u, US, 2 * HOUR), NAT),
    )
    opinion = np.where(
        np.isin(name, ["on_time", "late_report"]),
        report_due + _span(u, 0 * US, 23 * HOUR),
        np.where(name == "late_opinion", opinion_due + _span(u, US, DAY), NAT),
    )
    cancelled = np.where(
        name == "withdrawn_early",
        summoned + _span(u, 0 * US, HOUR - US),
        np.where(name == "withdrawn_late", report_due + _span(u, US, 4 * HOUR), NAT),
    )
    # The edges: due exactly now, nothing done yet.
    edge = np.argsort(np.abs(summoned - (now - HOUR)))[:edges]
    summoned[edge] = now - HOUR
    report_due[edge], opinion_due[edge] = now, now - HOUR + DAY
    reported[edge] = opinion[edge] = cancelled[edge] = NAT
    reported[reported > now] = NAT
    opinion[opinion > now] = NAT
    cancelled[cancelled > now] = NAT
    unit = departments[(rng.random(size) * len(departments)).astype(np.int64)]
    # A department never summons itself: those go to the next one.
    same = unit == c["lead"][rows]
    unit[same] = departments[(np.searchsorted(departments, unit[same]) + 1) % len(departments)]
    return {
        "id": np.arange(1, size + 1, dtype=np.int64),
        "ticket_id": ids[rows],
        "unit_id": unit.astype(np.int64),
        "summoning_unit_id": c["lead"][rows].astype(np.int64),
        "summoned_by_id": np.full(size, user_id, np.int64),
        "summoned_at": summoned,
        "reason": np.full(size, "需要职能部门到场处置", dtype=object),
        "report_due": report_due,
        "reported_at": reported,
        "opinion_due": opinion_due,
        "opinion_at": opinion,
        "opinion": np.where(np.isnat(opinion), None, "已到场处置").astype(object),
        "cancelled_at": cancelled,
        "cancel_reason": np.where(np.isnat(cancelled), None, "已无需到场").astype(object),
        "escalation_level": np.zeros(size, np.int64),
    }


def _ticket_columns(c, ids, merged_into, user_id):
    total = len(ids)
    dispatched = c["kind"] == DISPATCHED
    local_day = np.datetime_as_string(
        (c["received"] + 8 * HOUR).astype("datetime64[D]"), unit="D"
    )  # Asia/Shanghai has no DST: the local date is UTC + 8 h
    number = np.strings.add(
        np.strings.add("RK", np.strings.replace(local_day, "-", "")),
        np.strings.zfill(ids.astype(str), 8),
    )
    phones = np.where(
        c["phone"], (13_800_000_000 + (ids * 7919) % 100_000_000).astype(str), None
    ).astype(object)
    exempt = c["exempt"]
    return {
        "id": ids,
        "number": number.astype(object),
        "channel": np.where(ids % 10 < 8, "phone", "wechat").astype(object),
        "request_type": np.where(ids % 3 == 0, "consult", "complaint").astype(object),
        "urgency": np.full(total, "normal", dtype=object),
        "title": np.full(total, "压测工单", dtype=object),
        "content": np.full(total, "排名压测：市民反映的问题", dtype=object),
        "requester_phone": phones,
        "area_id": np.where(c["area"] > 0, c["area"], 0),
        "status": STATUSES[c["status"]],
        "lead_unit_id": np.where(dispatched, c["lead"], 0),
        # Another unit led it first, or a lead asked to return it (as the operations set it).
        "lead_history": dispatched
        & (c["has_prior"] | c["boomerang"] | ~np.isnat(c["own_return_at"])),
        "received_at": c["received"],
        "clock_started_at": c["clock"],
        "sign_due": c["sign_due"],
        "contact_due": c["contact_due"],
        "finish_due": c["finish_due"],
        "callback_due": c["callback_due"],
        "signed_at": c["signed"],
        "contacted_at": c["contacted"],
        "finished_at": c["finished"],
        "closed_at": c["closed"],
        "callback_at": c["callback_at"],
        "callback_next_at": c["callback_next"],
        "intake_outcome": np.where(c["kind"] == INTAKE, "answered", None).astype(object),
        "transfer_target": np.where(
            c["kind"] == TRANSFER, TRANSFER_TARGETS[c["transfer_target"]], None
        ).astype(object),
        "merged_into_id": merged_into,
        "callback_solved": SOLVED[c["solved"]],
        "callback_satisfaction": SATISFACTION[c["satisfaction"]],
        "reopen_count": c["reopen_count"],
        "scoring_exempt": exempt,
        "exempt_kind": EXEMPT_KINDS[c["exempt_kind"]],
        "exempt_reason": np.where(exempt, "经审核属于豁免情形", None).astype(object),
        "exempted_by_id": np.where(exempt, user_id, 0),
        "exempted_at": np.where(exempt, np.maximum(c["exempt_at"], c["received"]), NAT),
        "created_by_id": np.full(total, user_id, np.int64),
        "version": np.ones(total, np.int64),
        "updated_at": c["received"],
        "escalation_level": np.zeros(total, np.int64),
    }


def _assignment_columns(c, ids, city, user_id):
    """One lead row per dispatched ticket (and its district government's copy for a street),
    earlier returned leads, earlier rounds of reopened tickets, a few assisting units."""
    government_of = np.zeros(max(u["id"] for u in city.units) + 1, np.int64)
    for street, government in city.street_government.items():
        government_of[street] = government
    dispatched = c["kind"] == DISPATCHED
    final = np.isin(c["status"], [ST["closed"], ST["terminated"]])
    blocks = []

    def block(
        rows,
        unit,
        role,
        dispatched_at,
        *,
        active=None,
        ended=None,
        returned=None,
        decision=0,
        signed=None,
    ):
        size = len(rows)
        none = np.full(size, NAT)
        returned = none if returned is None else returned
        blocks.append(
            {
                "ticket_id": ids[rows],
                "unit_id": unit,
                "role": np.full(size, role),
                "active": np.zeros(size, bool) if active is None else active,
                "dispatched_at": dispatched_at,
                "signed_at": none if signed is None else signed,
                "ended_at": none if ended is None else ended,
                "return_requested_at": returned,
                "return_reason": np.where(np.isnat(returned), 0, c["return_reason"][rows]),
                "return_status": np.where(np.isnat(returned), 0, decision),
            }
        )
        copy = government_of[unit] > 0
        if role == 0 and copy.any():
            sub = rows[copy]
            blocks.append(
                {
                    "ticket_id": ids[sub],
                    "unit_id": government_of[unit[copy]],
                    "role": np.full(len(sub), 1),
                    "active": blocks[-1]["active"][copy],
                    "dispatched_at": dispatched_at[copy],
                    "signed_at": np.full(len(sub), NAT),
                    "ended_at": blocks[-1]["ended_at"][copy],
                    "return_requested_at": np.full(len(sub), NAT),
                    "return_reason": np.zeros(len(sub), np.int64),
                    "return_status": np.zeros(len(sub), np.int64),
                }
            )

    # The current lead (and copy): active until closed or terminated.
    rows = np.flatnonzero(dispatched)
    own = c["own_return_at"][rows]
    block(
        rows,
        c["lead"][rows],
        0,
        c["clock"][rows],
        active=~final[rows],
        ended=np.where(final[rows], c["closed"][rows], NAT),
        returned=own,
        decision=np.where(c["return_pending"][rows], 1, 3),
        signed=c["signed"][rows],
    )
    # Earlier rounds of reopened tickets: the same unit led them (a second lead row).
    for key in ("round0", "round1"):
        rows = np.flatnonzero(dispatched & ~np.isnat(c[f"{key}_clock"]))
        block(rows, c["lead"][rows], 0, c[f"{key}_clock"][rows], ended=c[f"{key}_end"][rows])
    # Returned (退单) and re-dispatched: the unit that asked, upheld.
    rows = np.flatnonzero(dispatched & c["has_prior"] & ~c["boomerang"])
    block(
        rows,
        c["prior_unit"][rows],
        0,
        c["first_dispatch"][rows],
        ended=c["return_at"][rows] + 30 * MINUTE,
        returned=c["return_at"][rows],
        decision=2,
    )
    # Returned by the current lead, then by a second unit, and back to the first.
    rows = np.flatnonzero(dispatched & c["boomerang"])
    block(
        rows,
        c["lead"][rows],
        0,
        c["first_dispatch"][rows],
        ended=c["second_dispatch"][rows],
        returned=c["return_at"][rows],
        decision=2,
    )
    block(
        rows,
        c["prior_unit"][rows],
        0,
        c["second_dispatch"][rows],
        ended=c["second_return"][rows] + 30 * MINUTE,
        returned=c["second_return"][rows],
        decision=2,
    )
    # Assisting departments (协办).
    rows = np.flatnonzero(c["assist"] & (c["assist_unit"] != c["lead"]))
    block(rows, c["assist_unit"][rows], 2, c["clock"][rows], active=~final[rows])

    out = {name: np.concatenate([b[name] for b in blocks]) for name in blocks[0]}
    order = np.lexsort((out["dispatched_at"], out["ticket_id"]))
    out = {name: values[order] for name, values in out.items()}
    size = len(out["ticket_id"])
    out["id"] = np.arange(1, size + 1, dtype=np.int64)
    out["role"] = ROLES[out["role"]]
    out["return_reason"] = RETURN_REASONS[out["return_reason"]]
    out["return_status"] = DECISIONS[out["return_status"]]
    out["return_note"] = np.where(
        np.isnat(out["return_requested_at"]), None, "不属于本单位职责范围"
    ).astype(object)
    out["designated"] = np.zeros(size, bool)
    out["dispatched_by_id"] = np.full(size, user_id, np.int64)
    return out


def _event_columns(c, ids, user_id):
    """The reviewer's ``exempt`` event of each exempted ticket (the report lists them)."""
    rows = np.flatnonzero(c["exempt"])
    status = STATUSES[c["status"][rows]]
    kinds = EXEMPT_KINDS[c["exempt_kind"][rows]]
    return {
        "id": np.arange(1, len(rows) + 1, dtype=np.int64),
        "ticket_id": ids[rows],
        "action": np.full(len(rows), "exempt", dtype=object),
        "actor_id": np.full(len(rows), user_id, np.int64),
        "actor_role": np.full(len(rows), "supervisor", dtype=object),
        "unit_id": np.zeros(len(rows), np.int64),
        "from_status": status,
        "to_status": status,
        "reason": np.full(len(rows), "经审核属于豁免情形", dtype=object),
        "payload": np.array([f'{{"exempt": true, "kind": "{k}"}}' for k in kinds], dtype=object),
        "created_at": np.maximum(c["exempt_at"][rows], c["received"][rows]),
    }


# -- loading ------------------------------------------------------------------------------------

#: Nullable integer columns: 0 stands for NULL in the generated arrays.
NULL_ZERO = {"area_id", "lead_unit_id", "merged_into_id", "exempted_by_id", "unit_id"}


def _text(name, values, null):
    """One column chunk as text, ``null`` for NULL."""
    if values.dtype.kind == "M":
        text = np.strings.replace(np.datetime_as_string(values, unit="us"), "T", " ")
        return np.where(np.isnat(values), null, text).tolist()
    if values.dtype.kind == "b":
        return np.where(values, "t", "f").tolist()
    if values.dtype.kind in "iu":
        text = values.astype(str)
        return (np.where(values == 0, null, text) if name in NULL_ZERO else text).tolist()
    return [null if v is None else v for v in values.tolist()]


def _python(name, values):
    """One column chunk as Python values for sqlite3 (datetimes as SQLAlchemy stores them)."""
    if values.dtype.kind == "M":
        return _text(name, values, None)
    if values.dtype.kind == "b":
        return values.astype(np.int64).tolist()
    if values.dtype.kind in "iu":
        out = values.tolist()
        if name in NULL_ZERO:
            for i in np.flatnonzero(values == 0).tolist():
                out[i] = None
        return out
    return values.tolist()


def _tables(data):
    tables = (
        ("tickets", data.tickets),
        ("assignments", data.assignments),
        ("ticket_events", data.events),
        ("summonses", data.summonses),
    )
    return tuple((name, columns) for name, columns in tables if columns)


CHUNK = 100_000


class Phases:
    """Seconds spent in each phase of a load."""

    def __init__(self):
        self.seconds = {}
        self._last = time.perf_counter()

    def done(self, name):
        now = time.perf_counter()
        self.seconds[name] = round(self.seconds.get(name, 0.0) + now - self._last, 1)
        self._last = now


def load_postgres(url, city, data):
    """Reference data with SQLAlchemy; tickets, assignments and events with COPY, plain
    indexes dropped during the load and rebuilt after it, then VACUUM ANALYZE. Returns the
    seconds of each phase."""
    import psycopg

    phases = Phases()
    engine = make_engine(url)
    with engine.begin() as conn:
        load_city(conn, city)
    engine.dispose()
    dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    names = [t for t, _ in _tables(data)]
    with psycopg.connect(dsn, autocommit=False) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("SET maintenance_work_mem = '512MB'")
        try:  # no FK triggers for rows consistent by construction (superuser only)
            conn.execute("SET session_replication_role = replica")
        except psycopg.errors.InsufficientPrivilege:
            conn.rollback()
            conn.execute("SET TIME ZONE 'UTC'")
        indexes = conn.execute(
            """
            SELECT indexname, indexdef FROM pg_indexes i
            WHERE schemaname = 'public' AND tablename = ANY(%s)
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
            """,
            (names,),
        ).fetchall()
        for index, _ in indexes:
            conn.execute(f'DROP INDEX "{index}"')
        phases.done("reference data")
        for table, columns in _tables(data):
            names_sql = ", ".join(columns)
            size = len(columns["id"])
            with conn.cursor().copy(f"COPY {table} ({names_sql}) FROM STDIN") as copy:
                for first in range(0, size, CHUNK):
                    part = [
                        _text(name, values[first : first + CHUNK], "\\N")
                        for name, values in columns.items()
                    ]
                    copy.write("\n".join(map("\t".join, zip(*part, strict=True))) + "\n")
            phases.done(f"copy {table}")
        for _, definition in indexes:
            conn.execute(definition)
        for table, columns in _tables(data):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)",
                (max(1, len(columns["id"])),),
            )
        conn.commit()
        phases.done("indexes")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"VACUUM ANALYZE {', '.join(names)}")
        conn.execute("ANALYZE")
    phases.done("vacuum analyze")
    return phases.seconds


def load_sqlite(path, city, data):
    """A fresh SQLite file migrated to head, loaded with executemany in one transaction.
    Returns its URL and the seconds of each phase."""
    phases = Phases()
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        load_city(conn, city)
    engine.dispose()
    phases.done("migrate, reference data")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")  # 256 MB for the index builds
    names = [t for t, _ in _tables(data)]
    indexes = conn.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        f"AND tbl_name IN ({', '.join('?' * len(names))})",
        names,
    ).fetchall()
    conn.execute("BEGIN")
    for index, _ in indexes:
        conn.execute(f'DROP INDEX "{index}"')
    for table, columns in _tables(data):
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        size = len(columns["id"])
        for first in range(0, size, CHUNK):
            part = [
                _python(name, values[first : first + CHUNK]) for name, values in columns.items()
            ]
            conn.executemany(sql, zip(*part, strict=True))
        phases.done(f"insert {table}")
    for _, definition in indexes:
        conn.execute(definition)
    conn.execute("COMMIT")
    phases.done("indexes")
    conn.execute("PRAGMA analysis_limit=2000")  # sampled statistics: enough for the planner
    conn.execute("ANALYZE")
    conn.close()
    phases.done("analyze")
    return url, phases.seconds


def load_rows(connection, data):
    """Insert the tickets with SQLAlchemy Core executemany (small data sets, any backend, inside
    the caller's transaction): used by the tests."""
    from hotline.models import Assignment, Summons, Ticket, TicketEvent

    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

    def value(name, v):
        if isinstance(v, np.datetime64):
            return (
                None if np.isnat(v) else epoch + dt.timedelta(microseconds=int(v.astype(np.int64)))
            )
        if isinstance(v, np.bool_):
            return bool(v)
        if isinstance(v, np.integer):
            return None if (name in NULL_ZERO and v == 0) else int(v)
        if name == "payload" and isinstance(v, str):
            return json.loads(v)
        return v

    tables = (
        (Ticket, data.tickets),
        (Assignment, data.assignments),
        (TicketEvent, data.events),
        (Summons, data.summonses),
    )
    for model, columns in tables:
        if not columns:
            continue
        # Tickets keep their ids (merges point at them); the database numbers the rest.
        names = [n for n in columns if n != "id" or model is Ticket]
        size = len(columns["id"])
        rows = [{name: value(name, columns[name][i]) for name in names} for i in range(size)]
        if rows:
            connection.execute(sa.insert(model.__table__), rows)
