"""Load ``seed_data/`` into the database: areas (with generated grids), units, categories, the
routing catalogue, SLA defaults, knowledge-base articles and demo users.

Loading is idempotent: rows are matched by code (users by username) and inserted when
missing, so ``hotline seed`` can run at every demo start. Existing users keep their passwords.
"""

import datetime as dt
import json
import math
from pathlib import Path

import sqlalchemy as sa

from hotline import reference, users
from hotline.audit import audit
from hotline.enums import AreaLevel, ArticleState, LimitUnit, RequestType, Role, UnitKind, Urgency
from hotline.models import (
    Area,
    Category,
    KnowledgeArticle,
    RoutingRule,
    SlaPolicy,
    Unit,
    User,
)

SEED_DIR = Path(__file__).resolve().parent.parent / "seed_data"

#: Grids generated per community, and their size in degrees (about 150 m).
GRIDS_PER_COMMUNITY = 3
GRID_SIZE = 0.0015


def _read(directory, name):
    with open(Path(directory) / name, encoding="utf-8") as f:
        return json.load(f)


def load_all(session, directory=SEED_DIR):
    """Load every seed file; returns counts of rows inserted per kind."""
    counts = {
        "areas": load_areas(session, _read(directory, "areas.json")),
        "units": load_units(session, _read(directory, "units.json")),
        "categories": load_categories(session, _read(directory, "categories.json")),
    }
    counts["routing_rules"] = load_routing(session, _read(directory, "routing.json"))
    counts["sla_policies"] = load_sla(session, _read(directory, "sla_policies.json"))
    counts["knowledge_articles"] = load_knowledge(session, _read(directory, "knowledge.json"))
    counts["users"] = load_users(session, _read(directory, "users.json"))
    for channel in users.PORTAL_ACCOUNTS:
        users.portal_account(session, channel)
    audit(session, None, "seed.load", payload=counts)
    return counts


class _Upserter:
    """Insert rows of ``model`` that are missing by code; remember all by code."""

    def __init__(self, session, model):
        self.session = session
        self.model = model
        self.by_code = {row.code: row for row in session.scalars(sa.select(model))}
        self.inserted = 0

    def get_or_add(self, code, **values):
        row = self.by_code.get(code)
        if row is None:
            row = self.model(code=code, **values)
            self.session.add(row)
            self.by_code[code] = row
            self.inserted += 1
        return row


def load_areas(session, data):
    areas = _Upserter(session, Area)
    for district in data["districts"]:
        lng, lat = district["center"]
        d = areas.get_or_add(
            district["code"],
            name=district["name"],
            level=AreaLevel.district,
            aliases=district.get("aliases", []),
            center_lng=lng,
            center_lat=lat,
        )
        for street in district["streets"]:
            s_lng, s_lat = street["center"]
            s = areas.get_or_add(
                street["code"],
                name=street["name"],
                level=AreaLevel.street,
                parent=d,
                is_town=street.get("kind") == "town",
                aliases=street.get("aliases", []),
                center_lng=s_lng,
                center_lat=s_lat,
            )
            communities = street["communities"]
            for index, community in enumerate(communities):
                c_lng, c_lat = _ring_point(s_lng, s_lat, index, len(communities))
                c = areas.get_or_add(
                    community["code"],
                    name=community["name"],
                    level=AreaLevel.community,
                    parent=s,
                    aliases=community.get("aliases", []),
                    center_lng=c_lng,
                    center_lat=c_lat,
                )
                for seq in range(1, community.get("grids", GRIDS_PER_COMMUNITY) + 1):
                    g_lng = c_lng + (seq - 2) * GRID_SIZE
                    areas.get_or_add(
                        f"{community['code']}{seq:03d}",
                        name=f"{community['name']}第{seq}网格",
                        level=AreaLevel.grid,
                        parent=c,
                        aliases=[],
                        center_lng=g_lng,
                        center_lat=c_lat,
                        polygon=_square(g_lng, c_lat, GRID_SIZE),
                    )
    session.flush()
    return areas.inserted


def _ring_point(lng, lat, index, count, radius=0.008):
    """Spread a street's communities on a ring around its centre (no real boundaries exist)."""
    angle = 2 * math.pi * index / max(count, 1)
    return round(lng + radius * math.cos(angle), 6), round(lat + radius * math.sin(angle), 6)


def _square(lng, lat, size):
    half = size / 2
    ring = [
        [round(lng - half, 6), round(lat - half, 6)],
        [round(lng + half, 6), round(lat - half, 6)],
        [round(lng + half, 6), round(lat + half, 6)],
        [round(lng - half, 6), round(lat + half, 6)],
        [round(lng - half, 6), round(lat - half, 6)],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


def load_units(session, data):
    units = _Upserter(session, Unit)
    area_by_code = {a.code: a for a in session.scalars(sa.select(Area))}
    for item in data:
        missing = [code for code in item.get("areas", []) if code not in area_by_code]
        if missing:
            raise ValueError(f"unit {item['code']}: unknown areas {missing}")
        if item["code"] in units.by_code:
            continue
        units.get_or_add(
            item["code"],
            name=item["name"],
            kind=UnitKind(item["kind"]),
            always_on=item.get("always_on", False),
            areas=[area_by_code[code] for code in item.get("areas", [])],
        )
    session.flush()
    return units.inserted


def load_categories(session, data):
    categories = _Upserter(session, Category)

    def walk(nodes, parent, level):
        for node in nodes:
            row = categories.get_or_add(
                node["code"],
                name=node["name"],
                level=level,
                parent=parent,
                utility=node.get("utility", False) or (parent is not None and parent.utility),
            )
            walk(node.get("children", []), row, level + 1)

    walk(data, None, 1)
    session.flush()
    return categories.inserted


def _codes(session, model):
    return {row.code: row for row in session.scalars(sa.select(model))}


def load_routing(session, data):
    """The catalogue's code defaults: each item ``{"category", "area" (null: the whole city),
    "unit"}``, optionally ``"valid_from"``/``"valid_to"`` (``YYYY-MM-DD``) and ``"note"``.
    An item is added only when the catalogue has no rule at all for its category and area:
    once administrators have a rule for a pair (dated, ended or replaced), the pair is
    theirs, and seeding again never brings back a rule they ended or adds one beside theirs.
    Raises the routing reference version when it adds anything."""
    categories, areas, units = (_codes(session, m) for m in (Category, Area, Unit))
    existing = {(r.category_id, r.area_id) for r in session.scalars(sa.select(RoutingRule))}
    inserted = 0
    for item in data:
        category = categories[item["category"]]
        area = areas[item["area"]] if item.get("area") else None
        key = (category.id, area.id if area else None)
        if key in existing:
            continue
        existing.add(key)
        session.add(
            RoutingRule(
                category=category,
                area=area,
                unit=units[item["unit"]],
                valid_from=_date(item.get("valid_from")),
                valid_to=_date(item.get("valid_to")),
                note=item.get("note"),
            )
        )
        inserted += 1
    session.flush()
    if inserted:
        reference.bump(session, reference.ROUTING)
    return inserted


def _date(text):
    return dt.date.fromisoformat(text) if text else None


def load_sla(session, data):
    categories = _codes(session, Category)
    existing = {p.name for p in session.scalars(sa.select(SlaPolicy))}
    inserted = 0
    for item in data:
        if item["name"] in existing:
            continue
        limits = {}
        for clock in ("sign", "contact", "finish", "callback"):
            amount, unit = item[clock]
            limits[f"{clock}_amount"] = int(amount)
            limits[f"{clock}_unit"] = LimitUnit(unit)
        session.add(
            SlaPolicy(
                name=item["name"],
                category=categories[item["category"]] if item.get("category") else None,
                request_type=RequestType(item["request_type"])
                if item.get("request_type")
                else None,
                urgency=Urgency(item["urgency"]) if item.get("urgency") else None,
                **limits,
            )
        )
        inserted += 1
    session.flush()
    return inserted


def load_knowledge(session, data):
    """知识库: articles missing by code are inserted; existing ones are left as they are."""
    categories = _codes(session, Category)
    articles = _Upserter(session, KnowledgeArticle)
    for item in data:
        category = item.get("category")
        if category and category not in categories:
            raise ValueError(f"knowledge article {item['code']}: unknown category {category}")
        articles.get_or_add(
            item["code"],
            title=item["title"],
            category=categories[category] if category else None,
            keywords=item.get("keywords", ""),
            answer=item["answer"],
            source=item.get("source"),
            state=ArticleState(item.get("state", ArticleState.published)),
        )
    session.flush()
    return articles.inserted


def load_users(session, data):
    units, areas = _codes(session, Unit), _codes(session, Area)
    existing = {u.username for u in session.scalars(sa.select(User))}
    inserted = 0
    for item in data:
        if item["username"] in existing:
            continue
        user = User(
            username=item["username"],
            name=item["name"],
            role=Role(item["role"]),
            unit=units[item["unit"]] if item.get("unit") else None,
            district=areas[item["district"]] if item.get("district") else None,
            grids=[areas[code] for code in item.get("grids", [])],
        )
        user.set_password(item["password"])
        session.add(user)
        inserted += 1
    session.flush()
    return inserted


def demo_logins(directory=SEED_DIR):
    """(role label, username, password, name, unit) of every demo user, for the start banner."""
    users = _read(directory, "users.json")
    return [
        (Role(u["role"]).label, u["username"], u["password"], u["name"], u.get("unit") or "")
        for u in users
    ]
