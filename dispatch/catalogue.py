"""Administering the dispatch catalogue (派单目录管理): its rules, what is wrong with them,
"who handles this?", and its import and export.

A rule is category × area → unit, in force from ``valid_from`` to ``valid_to`` (local dates,
both inclusive; empty: open-ended). How the catalogue decides is ``dispatch.routing``
(``candidate_rules``): the most specific category, then the most specific area, among the
rules in force that day whose unit is active.

Operations (``create_rule``, ``update_rule``, ``end_rule``, ``delete_rule``) are for
administrators; each checks the rule, writes an audit row with the old and the new values
(a deletion keeps the old ones), raises the ``routing`` reference version (every process's
suggester follows within seconds) and flushes; the caller commits. A rule is refused when its
unit or category is inactive, when it ends before it starts, when another rule has the same
category, area and start date (the import's natural key), and when it conflicts.

Flags (``analyse``), shown beside each rule, in words, and in the import's report. "Today"
is the city's local date; only what can still matter counts, so the remaining period of a
rule is the part of its period from today on.

- **conflict** (冲突): another rule of the same category and area names another unit and
  their periods overlap on some day from today on. Refused at create, edit and import; one
  found anyway (rows written before this check) is decided by the later start
  (``hotline.models.rules.precedence``).
- **duplicate** (重复): the same, naming the same unit: harmless but one of them is useless.
- **expired** (已过期): the rule ended before today; it decides nothing any more.
- **inactive** (不生效): its unit or its category is deactivated; dispatch passes it over.
- **shadowed** (被覆盖): the rule can never decide anything although it is in force — more
  specific rules take every case it covers, on every day of its remaining period. A case is a
  category a ticket can carry (an active category offered at intake: a leaf, or a class of
  level two or below, as ``hotline.pickers`` offers them) under the rule's category, at the
  rule's area. A rule of category ``c`` at area ``a`` is shadowed when for every such category
  ``t`` and every remaining day, some rule in force that day, of an active unit, on a category
  strictly below ``c`` and at or above ``t``, at ``a``, an ancestor of ``a`` or the whole city,
  exists: that rule is more specific by category, which the catalogue compares first, and it
  applies wherever ``a``'s rule does. (Example: 市政设施 × 全市 when 道路破损, 路灯故障 … each
  have a whole-city rule — unless 市政设施 itself is offered at intake, as a level-2 class
  is, in which case tickets classified only that far still go by it.) Rules at more specific
  areas never shadow a rule: a ticket located only to ``a`` (or not at all, for a whole-city
  rule) is still decided by it. A rule only partly covered is not flagged.
"""

import dataclasses
import datetime as dt
import re
from collections import defaultdict

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import selectinload

from dispatch import routing
from hotline import reference, suggestions, tabular
from hotline.audit import audit_change, values_of
from hotline.db import utcnow
from hotline.enums import Role
from hotline.errors import Conflict, Forbidden, NotFound, ValidationFailed
from hotline.models import Area, Category, RoutingRule, Unit
from hotline.models.rules import precedence
from hotline.schemas import ADDRESS_MAX, Fields, by_code, check_query

#: Who may read the catalogue, its flags and the preview; only administrators change it.
READ_ROLES = frozenset({Role.admin, Role.supervisor, Role.dispatcher})
EDIT_ROLES = frozenset({Role.admin})
FIRST_YEAR, LAST_YEAR = 2000, 2100
NOTE_MAX = 300
CITY = "全市"

FLAG_LABELS = {
    "conflict": "冲突",
    "duplicate": "重复",
    "expired": "已过期",
    "inactive": "不生效",
    "shadowed": "被覆盖",
}
#: The flags that mean "this rule needs an administrator's attention" (list filter 问题规则).
ISSUES = tuple(FLAG_LABELS)
STATES = {"today": "生效中", "future": "尚未生效", "expired": "已过期"}

_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$", re.ASCII)
_AUDITED = {
    "category": lambda r: r.category.code,
    "area": lambda r: r.area.code if r.area else None,
    "unit": lambda r: r.unit.code,
    "valid_from": "valid_from",
    "valid_to": "valid_to",
    "note": "note",
}


def require_editor(actor):
    if actor is not None and actor.role not in EDIT_ROLES:
        raise Forbidden("只有系统管理员可以修改派单目录", code="ROLE_NOT_ALLOWED")


# -- words ------------------------------------------------------------------------------------


def category_path(category):
    """城乡建设 › 市政设施 › 路灯故障."""
    names = []
    node = category
    while node is not None:
        names.append(node.name)
        node = node.parent
    return " › ".join(reversed(names))


def area_name(area):
    return area.name if area is not None else CITY


def period_text(valid_from, valid_to):
    """``2027-01-01 至 2027-06-30``, ``2027-01-01 起``, ``至 2026-12-31``, ``长期``."""
    if valid_from and valid_to:
        return f"{valid_from} 至 {valid_to}"
    if valid_from:
        return f"{valid_from} 起"
    if valid_to:
        return f"至 {valid_to}"
    return "长期"


def rule_text(rule):
    """One line naming a rule: #12 路灯故障 × 东关街道 → 市城管局（2027-01-01 起）."""
    return (
        f"#{rule.id} {rule.category.name} × {area_name(rule.area)} → {rule.unit.name}"
        f"（{period_text(rule.valid_from, rule.valid_to)}）"
    )


def state_of(rule, today):
    if rule.valid_to is not None and rule.valid_to < today:
        return "expired"
    if rule.valid_from is not None and rule.valid_from > today:
        return "future"
    return "today"


# -- reading ----------------------------------------------------------------------------------


def all_rules(db):
    """Every rule with its category (and the category's ancestors), area and unit."""
    return db.scalars(
        sa.select(RoutingRule)
        .options(
            selectinload(RoutingRule.category).selectinload(Category.parent),
            selectinload(RoutingRule.area),
            selectinload(RoutingRule.unit),
        )
        .order_by(RoutingRule.id)
    ).all()


def load_rule(db, rule_id):
    rule = db.get(RoutingRule, rule_id)
    if rule is None:
        raise NotFound(f"派单规则不存在：{rule_id}", code="ROUTING_RULE_NOT_FOUND")
    return rule


def describe(rule, today, flags=()):
    """A rule for JSON (the API) and the pages."""

    def coded(row):
        return {"code": row.code, "name": row.name} if row is not None else None

    return {
        "id": rule.id,
        "category": {**coded(rule.category), "path": category_path(rule.category)},
        "area": coded(rule.area),
        "unit": coded(rule.unit),
        "valid_from": rule.valid_from.isoformat() if rule.valid_from else None,
        "valid_to": rule.valid_to.isoformat() if rule.valid_to else None,
        "note": rule.note,
        "state": {"value": state_of(rule, today), "label": STATES[state_of(rule, today)]},
        "flags": [f.as_dict() for f in flags],
        "updated_at": rule.updated_at.isoformat() if rule.updated_at else None,
    }


@dataclasses.dataclass(frozen=True)
class Filters:
    category: str | None = None
    area: str | None = None  # an area code, or "city" for whole-city rules
    unit: str | None = None
    issue: str | None = None  # a FLAG kind, or "any"
    state: str | None = None  # a STATES key

    def matches(self, rule, flags, today):
        if self.category and not rule.category.code.startswith(self.category):
            return False
        if self.area == "city":
            if rule.area is not None:
                return False
        elif self.area and (rule.area is None or not rule.area.code.startswith(self.area)):
            return False
        if self.unit and rule.unit.code != self.unit:
            return False
        if self.issue == "any" and not flags:
            return False
        if self.issue and self.issue != "any" and not any(f.kind == self.issue for f in flags):
            return False
        return not (self.state and state_of(rule, today) != self.state)


def parse_filters(args):
    """List filters from query arguments; a bad one raises ValidationFailed naming it."""
    errors = {}
    values = {}
    for name in ("category", "area", "unit"):
        raw = (args.get(name) or "").strip()
        if raw and not re.fullmatch(r"[0-9A-Za-z_-]{1,32}", raw):
            errors[name] = "编码格式不正确"
        values[name] = raw or None
    issue = (args.get("issue") or "").strip() or None
    if issue and issue != "any" and issue not in FLAG_LABELS:
        errors["issue"] = "取值应为 any、" + "、".join(FLAG_LABELS)
    state = (args.get("state") or "").strip() or None
    if state and state not in STATES:
        errors["state"] = "取值应为 " + "、".join(STATES)
    if errors:
        raise ValidationFailed(f"查询条件有误：{next(iter(errors.values()))}", details=errors)
    return Filters(issue=issue, state=state, **values)


def listing(db, filters, today):
    """``[(rule, flags)]`` matching ``filters``, by category code, area, start."""
    return flagged_rules(db, today, filters)[0]


def flagged_rules(db, today, filters=None):
    """(``[(rule, flags)]`` matching ``filters``, by category code, area and start; the
    number of rules with any flag in the whole catalogue)."""
    rules = all_rules(db)
    flags = analyse(rules, offered_categories(db), today)
    filters = filters or Filters()
    chosen = [
        (r, flags.get(r.id, [])) for r in rules if filters.matches(r, flags.get(r.id, []), today)
    ]
    chosen.sort(
        key=lambda pair: (
            pair[0].category.code,
            pair[0].area.code if pair[0].area else "",
            pair[0].valid_from or dt.date.min,
            pair[0].id,
        )
    )
    return chosen, len(flags)


# -- flags ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Flag:
    kind: str
    message: str
    #: The other rules involved (conflicting, duplicated or covering ones).
    others: tuple[int, ...] = ()

    @property
    def label(self):
        return FLAG_LABELS[self.kind]

    def as_dict(self):
        return {
            "kind": self.kind,
            "label": self.label,
            "message": self.message,
            "others": list(self.others),
        }


def _overlap(a_from, a_to, b_from, b_to):
    """The common period of two periods (None ends are open), or None."""
    start = max(a_from or dt.date.min, b_from or dt.date.min)
    end = min(a_to or dt.date.max, b_to or dt.date.max)
    return (start, end) if start <= end else None


def _overlap_text(common):
    """When two periods overlap, in words: ，在 2027-01-01 至 2027-06-30 期间 / ，自 … 起 /
    ，至 … 为止 / 在任何时候."""
    start = None if common[0] == dt.date.min else common[0]
    end = None if common[1] == dt.date.max else common[1]
    if start and end:
        return f"在 {start} 至 {end} 期间"
    if start:
        return f"自 {start} 起"
    if end:
        return f"至 {end} 为止"
    return "在任何时候"


def offered_categories(db):
    """The codes of categories a ticket can carry (as the intake pickers offer them)."""
    rows = db.execute(sa.select(Category.code, Category.level).where(Category.active)).all()
    codes = {code for code, _ in rows}
    parents = {code[:-2] for code in codes if len(code) > 2}
    return {
        code
        for code, level in rows
        if not (code in parents and level < 2)
        and all(code[:n] in codes for n in range(2, len(code), 2))
    }


def analyse(rules, offered, today):
    """``{rule id: [Flag]}`` for the rules that have any (definitions: module docstring).
    ``offered``: the codes of the categories a ticket can carry."""
    flags = defaultdict(list)
    by_pair = defaultdict(list)
    for rule in rules:
        by_pair[(rule.category_id, rule.area_id)].append(rule)
        if rule.valid_to is not None and rule.valid_to < today:
            flags[rule.id].append(Flag("expired", f"已于 {rule.valid_to} 失效，不再决定任何派单"))
        if not rule.unit.active:
            flags[rule.id].append(
                Flag("inactive", f"承办单位“{rule.unit.name}”已停用：派单时跳过此规则")
            )
        if not rule.category.active:
            flags[rule.id].append(
                Flag("inactive", f"事项分类“{rule.category.name}”已停用：受理时不能再选")
            )
    for group in by_pair.values():
        for i, one in enumerate(group):
            for other in group[i + 1 :]:
                common = _overlap(one.valid_from, one.valid_to, other.valid_from, other.valid_to)
                if common is None or common[1] < today:
                    continue
                period = _overlap_text(common)
                for this, that in ((one, other), (other, one)):
                    if this.unit_id == that.unit_id:
                        flag = Flag(
                            "duplicate",
                            f"与规则 #{that.id} 重复：同一分类和区域{period}都派给"
                            f"“{this.unit.name}”",
                            (that.id,),
                        )
                    else:
                        winner = max((this, that), key=lambda r: precedence(r.valid_from, r.id))
                        flag = Flag(
                            "conflict",
                            f"与规则 #{that.id} 冲突：同一分类和区域{period}分别派给"
                            f"“{this.unit.name}”和“{that.unit.name}”"
                            f"（重叠期间按 #{winner.id} 派单）",
                            (that.id,),
                        )
                    flags[this.id].append(flag)
    # Active rules by every category strictly above theirs: the rules below a category.
    below_category = defaultdict(list)
    for r in rules:
        if r.unit.active:
            code = r.category.code
            for n in range(2, len(code), 2):
                below_category[code[:n]].append(r)
    offered_under = defaultdict(list)  # category code → the offered ones at or below it
    for code in offered:
        for n in range(2, len(code) + 1, 2):
            offered_under[code[:n]].append(code)
    for rule in rules:
        if rule.id in flags and any(f.kind in ("expired", "inactive") for f in flags[rule.id]):
            continue
        covering = _covering(rule, below_category[rule.category.code], offered_under, today)
        if covering:
            names = "、".join(sorted({r.category.name for r in covering}))
            flags[rule.id].append(
                Flag(
                    "shadowed",
                    f"被更细分类的规则完全覆盖（{names}）：在其有效期内每一种情况都由它们决定，"
                    "本规则不会决定任何派单",
                    tuple(sorted(r.id for r in covering)),
                )
            )
    return dict(flags)


def _covering(rule, rules, offered_under, today):
    """The rules (of ``rules``: the active ones on categories below ``rule``'s) that take
    every case of ``rule`` on every remaining day, or [] when some case on some day is still
    ``rule``'s (see the module docstring). ``offered_under``: category code → the codes a
    ticket can carry at or below it."""
    code = rule.category.code
    targets = offered_under.get(code, [])
    if not targets or code in targets:
        # A ticket of the rule's own category is always decided by it (or by its pair).
        return []
    area_code = rule.area.code if rule.area is not None else None
    below = [
        r
        for r in rules
        if (r.area is None or (area_code is not None and area_code.startswith(r.area.code)))
        and _overlap(r.valid_from, r.valid_to, rule.valid_from, rule.valid_to)
    ]
    if not below:
        return []
    start = max(today, rule.valid_from or today)
    end = rule.valid_to or dt.date.max
    days = {start}
    for r in below:
        for turn in (r.valid_from, r.valid_to + dt.timedelta(days=1) if r.valid_to else None):
            if turn is not None and start < turn <= end:
                days.add(turn)
    used = set()
    for day in days:
        in_force = [r for r in below if r.applies_on(day)]
        for target in targets:
            takers = [r for r in in_force if target.startswith(r.category.code)]
            if not takers:
                return []
            used.update(takers)
    return sorted(used, key=lambda r: r.id)


# -- "who handles this?" ----------------------------------------------------------------------


@dataclasses.dataclass
class Preview:
    """What the catalogue and the learned router say for one category, place and day."""

    category: Category
    area: Area | None
    day: dt.date
    #: The rule that decides, or None.
    rule: RoutingRule | None
    #: The other rules that apply, most specific first, each with why it lost.
    beaten: list
    #: The unit a program dispatches to (``routing.dispatch_unit``): the rule's unit, or the
    #: territorial unit when the catalogue has none (or names the hotline centre).
    dispatch_unit: Unit | None
    #: Why ``dispatch_unit`` (in words).
    explanation: str
    #: The learned router's top units: [(Unit or code, confidence, reason)], or None without
    #: a model.
    learned: list | None
    #: Why there is no ``learned`` (in words).
    learned_note: str | None = None
    #: The place read from an address text (None: none given).
    located: dict | None = None


def _why_beaten(winner, loser):
    if len(winner.category.code) > len(loser.category.code):
        return f"分类“{winner.category.name}”更具体"
    winner_area = winner.area.code if winner.area else ""
    loser_area = loser.area.code if loser.area else ""
    if len(winner_area) > len(loser_area):
        return f"区域“{area_name(winner.area)}”更具体"
    return f"同一分类和区域，#{winner.id} 生效更晚（冲突）"


def locate(db, address):
    """(what the suggester's gazetteer reads in ``address`` as a dict, the Area it names or
    None)."""
    resolution = suggestions.service().locate(db, address) if current_app else None
    if resolution is None:
        return {"address": address, "code": None, "candidates": [], "matched": ""}, None
    located = {
        "address": address,
        "code": resolution.code,
        "candidates": [c.code for c in resolution.candidates],
        "matched": resolution.matched,
    }
    area = None
    if resolution.code:
        area = db.scalars(sa.select(Area).where(Area.code == resolution.code)).first()
    return located, area


def learned_units(db, category, area, k=3):
    """(the learned router's top ``k`` units as ``[Suggestion]``, or None and why not)."""
    if not current_app or not current_app.config["CLASSIFIER_ENABLED"]:
        return None, "未启用智能分类，没有按历史学习的单位建议"
    service = suggestions.service()
    learned = service.learned_units(db, category.code, area.code if area is not None else None, k=k)
    if learned is not None:
        return learned, None
    if service.active.get(db)[0] is None:
        return None, "没有启用的分类模型，没有按历史学习的单位建议"
    return None, (
        "当前分类模型尚未学习派单（可用 hotline classifier train-router 从已办结工单训练），"
        "受理时只按派单目录建议单位"
    )


def preview_query(db, args):
    """(category, area or None, day, address text or None) of a preview request's query
    arguments ``category``, ``area``, ``date`` (default today) and ``address``; refuses a
    bad one (ValidationFailed naming each, or NotFound for an unknown code)."""
    errors = {}
    category = area = None
    if not args.get("category"):
        errors["category"] = "请选择事项分类"
    else:
        category = by_code(db, Category, args["category"], "事项分类")
    if args.get("area"):
        area = by_code(db, Area, args["area"], "区域")
    day = routing.today()
    if args.get("date"):
        try:
            day = parse_date(args["date"], "日期")
        except ValueError as exc:
            errors["date"] = str(exc)
    address = (args.get("address") or "").strip()
    if len(address) > ADDRESS_MAX:
        errors["address"] = f"地址不能超过 {ADDRESS_MAX} 字"
    check_query(errors)
    return category, area, day, address or None


def preview(db, category, area, day, *, address=None):
    """Who handles ``category`` at ``area`` on ``day`` (``area`` None and ``address`` given:
    the place the gazetteer reads in it)."""
    located = None
    if address and area is None:
        located, area = locate(db, address)
    learned, learned_note = learned_units(db, category, area)
    candidates = routing.candidate_rules(db, category, area, day)
    rule = candidates[0] if candidates else None
    beaten = [(r, _why_beaten(rule, r)) for r in candidates[1:]]
    unit = routing.dispatch_unit(db, category, area, None, day)
    if rule is None:
        explanation = (
            f"派单目录没有适用的规则，按属地派往“{unit.name}”"
            if unit is not None
            else "派单目录没有适用的规则，且未选区域，无法按属地派单"
        )
    elif unit is not None and unit.id == rule.unit_id:
        explanation = f"按规则 #{rule.id} 派往“{unit.name}”"
    elif unit is not None:
        explanation = f"规则 #{rule.id} 指定“{rule.unit.name}”不承办工单，按属地派往“{unit.name}”"
    else:
        explanation = f"规则 #{rule.id} 指定“{rule.unit.name}”不承办工单，且无属地单位"
    units = {}
    if learned:
        codes = [s.unit for s in learned]
        units = {u.code: u for u in db.scalars(sa.select(Unit).where(Unit.code.in_(codes)))}
    return Preview(
        category=category,
        area=area,
        day=day,
        rule=rule,
        beaten=beaten,
        dispatch_unit=unit,
        explanation=explanation,
        learned=None
        if learned is None
        else [(units.get(s.unit, s.unit), s.confidence, s.reason) for s in learned],
        learned_note=learned_note,
        located=located,
    )


def preview_to_dict(result):
    def unit(u):
        return {"code": u.code, "name": u.name} if isinstance(u, Unit) else {"code": u, "name": u}

    def rule(r):
        return {
            "id": r.id,
            "category": {"code": r.category.code, "name": r.category.name},
            "area": {"code": r.area.code, "name": r.area.name} if r.area else None,
            "unit": unit(r.unit),
            "valid_from": r.valid_from.isoformat() if r.valid_from else None,
            "valid_to": r.valid_to.isoformat() if r.valid_to else None,
            "text": rule_text(r),
        }

    return {
        "category": {"code": result.category.code, "name": result.category.name},
        "area": {"code": result.area.code, "name": result.area.name} if result.area else None,
        "date": result.day.isoformat(),
        "rule": rule(result.rule) if result.rule else None,
        "unit": unit(result.rule.unit) if result.rule else None,
        "beaten": [{**rule(r), "why": why} for r, why in result.beaten],
        "dispatch_unit": unit(result.dispatch_unit) if result.dispatch_unit else None,
        "explanation": result.explanation,
        "learned": None
        if result.learned is None
        else [
            {**unit(u), "confidence": round(c, 4), "reason": reason}
            for u, c, reason in result.learned
        ],
        "learned_note": result.learned_note,
        "located": result.located,
    }


# -- parsing (shared by the API and the pages) ------------------------------------------------


def parse_date(raw, label):
    """A local date from ``YYYY-MM-DD`` (also ``YYYY/M/D``); raises ValueError with a Chinese
    message."""
    match = _DATE.match(raw.strip()) if isinstance(raw, str) else None
    day = None
    if match:
        try:
            day = dt.date(*(int(g) for g in match.groups()))
        except ValueError:
            day = None
    if day is None or not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ValueError(f"{label}须为 {FIRST_YEAR}–{LAST_YEAR} 年间的日期，格式 YYYY-MM-DD")
    return day


def _lookup(db, fields, name, model, label, required=False):
    code = fields.code(name, label, required=required)
    if code is None:
        return None
    row = db.scalars(sa.select(model).where(model.code == code)).first()
    if row is None:
        fields.fail(name, f"{label}不存在：{code}")
    return row


def rule_values(db, data, *, creating):
    """``{attribute: value}`` of a rule from a JSON object or a form (``category``, ``area``
    (absent/null/"": the whole city), ``unit`` by code; ``valid_from``, ``valid_to``
    ``YYYY-MM-DD`` or null; ``note``). Creating: category and unit are required. Editing:
    only the members present change. Raises ValidationFailed naming every bad field."""
    fields = Fields(data)
    values = {}
    # A rule always names a category and a unit: an edit may change them, never clear them.
    if creating or "category" in data:
        if not data.get("category"):
            fields.fail("category", "请选择事项分类")
        values["category"] = _lookup(db, fields, "category", Category, "事项分类", creating)
    if creating or "area" in data:
        values["area"] = None
        if fields.raw("area") not in (None, ""):
            values["area"] = _lookup(db, fields, "area", Area, "区域")
    if creating or "unit" in data:
        if not data.get("unit"):
            fields.fail("unit", "请选择承办单位")
        values["unit"] = _lookup(db, fields, "unit", Unit, "承办单位", creating)
    for name, label in (("valid_from", "生效日期"), ("valid_to", "失效日期")):
        if creating or name in data:
            raw = fields.raw(name)
            values[name] = None
            if raw not in (None, ""):
                try:
                    values[name] = parse_date(raw, label)
                except ValueError as exc:
                    fields.fail(name, str(exc))
    if creating or "note" in data:
        values["note"] = fields.text("note", "说明", max_len=NOTE_MAX)
    if "replace" in data:
        values["replace"] = fields.boolean("replace", "结束冲突的旧规则")
    fields.check()
    return values


# -- operations -------------------------------------------------------------------------------


def _conflicts(db, rule, today):
    """Other rules of ``rule``'s category and area naming another unit whose period overlaps
    ``rule``'s from today on."""
    others = db.scalars(
        sa.select(RoutingRule).where(
            RoutingRule.category_id == rule.category.id,
            RoutingRule.area_id.is_(None)
            if rule.area is None
            else RoutingRule.area_id == rule.area.id,
            RoutingRule.id != (rule.id or -1),
        )
    ).all()
    found = []
    for other in others:
        common = _overlap(rule.valid_from, rule.valid_to, other.valid_from, other.valid_to)
        if other.valid_from == rule.valid_from:
            raise Conflict(
                f"已有同一分类、区域和生效日期的规则：{rule_text(other)}，请直接修改它",
                code="ROUTING_RULE_EXISTS",
                details={"rule": other.id},
            )
        if common is not None and common[1] >= today and other.unit_id != rule.unit.id:
            found.append(other)
    return found


def _check(db, rule, changed, today, replace=False, actor=None):
    """Refuse ``rule`` (its attributes set, not flushed) when it breaks a rule of the
    catalogue. ``changed``: the attributes being set (an old rule whose unit has since been
    deactivated may still be ended). ``replace``: end conflicting older rules the day before
    ``rule`` starts instead of refusing."""
    errors = {}
    if ("category" in changed) and not rule.category.active:
        errors["category"] = f"事项分类“{rule.category.name}”已停用"
    if ("unit" in changed) and not rule.unit.active:
        errors["unit"] = f"承办单位“{rule.unit.name}”已停用"
    if rule.valid_from and rule.valid_to and rule.valid_to < rule.valid_from:
        errors["valid_to"] = f"失效日期 {rule.valid_to} 早于生效日期 {rule.valid_from}"
    if errors:
        raise ValidationFailed(f"派单规则有误：{next(iter(errors.values()))}", details=errors)
    conflicts = _conflicts(db, rule, today)
    if conflicts and replace and rule.valid_from is not None:
        endable = [c for c in conflicts if (c.valid_from or dt.date.min) < rule.valid_from]
        if len(endable) == len(conflicts):
            for old in endable:
                before = values_of(old, _AUDITED)
                old.valid_to = rule.valid_from - dt.timedelta(days=1)
                old.updated_at = utcnow()
                audit_change(
                    db,
                    actor,
                    "routing_rule.update",
                    target=str(old.id),
                    before=before,
                    after=values_of(old, _AUDITED),
                    extra={"replaced_by_rule_starting": rule.valid_from.isoformat()},
                )
            conflicts = []
    if conflicts:
        first = conflicts[0]
        raise Conflict(
            f"与现有规则冲突：{rule_text(first)}。同一分类和区域在同一时期只能派给一个单位；"
            "请先结束或修改旧规则，或设定新规则的生效日期并选择“结束冲突的旧规则”",
            code="ROUTING_CONFLICT",
            details={"conflicts": [c.id for c in conflicts]},
        )


def create_rule(db, actor, values, today):
    """Add a rule (新增派单规则). ``values``: category, area, unit, valid_from, valid_to,
    note (and ``replace``: end conflicting older rules the day before this one starts)."""
    require_editor(actor)
    values = dict(values)
    replace = values.pop("replace", False)
    rule = RoutingRule(**values, updated_at=utcnow())
    _check(db, rule, set(values), today, replace, actor)
    db.add(rule)
    db.flush()
    audit_change(
        db,
        actor,
        "routing_rule.create",
        target=str(rule.id),
        before=None,
        after=values_of(rule, _AUDITED),
    )
    reference.bump(db, reference.ROUTING)
    return rule


def update_rule(db, actor, rule, values, today):
    """Change a rule (修改派单规则): the members of ``values`` only."""
    require_editor(actor)
    values = dict(values)
    replace = values.pop("replace", False)
    before = values_of(rule, _AUDITED)
    with db.no_autoflush:
        # Only what changes is checked: an old rule whose unit was deactivated since may
        # still be ended or annotated.
        changed = {name for name, value in values.items() if getattr(rule, name) != value}
        for name, value in values.items():
            setattr(rule, name, value)
        _check(db, rule, changed, today, replace, actor)
    after = values_of(rule, _AUDITED)
    if after != before:
        rule.updated_at = utcnow()
        db.flush()
        audit_change(
            db, actor, "routing_rule.update", target=str(rule.id), before=before, after=after
        )
        reference.bump(db, reference.ROUTING)
    return rule


def end_rule(db, actor, rule, last_day, today):
    """End a rule on ``last_day`` (its last day in force; 结束规则)."""
    return update_rule(db, actor, rule, {"valid_to": last_day}, today)


def delete_rule(db, actor, rule):
    """Delete a rule (删除派单规则); the audit row keeps its values. Tickets never refer to a
    rule, so nothing else changes."""
    require_editor(actor)
    before = values_of(rule, _AUDITED)
    rule_id = rule.id
    db.delete(rule)
    db.flush()
    audit_change(db, actor, "routing_rule.delete", target=str(rule_id), before=before, after=None)
    reference.bump(db, reference.ROUTING)
    return before


# -- import and export ------------------------------------------------------------------------

COLUMNS = (
    tabular.Column("category", "事项分类编码", aliases=("分类编码",)),
    tabular.Column("category_path", "事项分类", aliases=("分类",)),
    tabular.Column("area", "区域编码"),
    tabular.Column("unit", "承办单位编码", required=True, aliases=("单位编码",)),
    tabular.Column("valid_from", "生效日期"),
    tabular.Column("valid_to", "失效日期"),
    tabular.Column("note", "说明"),
)
_HEADER = {c.key: c.header for c in COLUMNS}
_CATEGORY_HEADERS = {
    name for c in COLUMNS if c.key.startswith("category") for name in (c.header, *c.aliases)
}
_PATH_SPLIT = re.compile(r"\s*(?:›|>|/|／|＞|-|－)\s*")


@dataclasses.dataclass
class _Row:
    file: str
    number: int
    category: Category
    area: Area | None
    unit: Unit
    valid_from: dt.date | None
    valid_to: dt.date | None
    note: str | None
    rule: RoutingRule | None = None  # the existing rule it updates

    @property
    def where(self):
        return f"{self.file} 第 {self.number} 行"


def _category_paths(categories):
    by_code = {c.code: c for c in categories}
    paths = {}
    for c in categories:
        names = [
            by_code[c.code[:n]].name for n in range(2, len(c.code) + 1, 2) if c.code[:n] in by_code
        ]
        paths[tuple(names)] = c
    return paths


def load_import(db, actor, sources, options, today=None):
    """Import routing rules (``tabular.Importer``): check every row, then create or update by
    (category, area, 生效日期). Rules not in the files stay as they are (end one by giving it
    a 失效日期)."""
    require_editor(actor)
    today = today or routing.today()
    problems = tabular.Problems()
    categories = db.scalars(sa.select(Category)).all()
    by_code = {c.code: c for c in categories}
    by_path = _category_paths(categories)
    areas = {a.code: a for a in db.scalars(sa.select(Area))}
    units = {u.code: u for u in db.scalars(sa.select(Unit))}
    rows = []
    for name, data in sources:
        table = tabular.read(data, name, COLUMNS)
        if not _CATEGORY_HEADERS & set(table.headers):
            problems.add(name, 1, _HEADER["category"], "缺少“事项分类编码”或“事项分类”列")
            continue
        for number, cells in table.rows:
            row = _read_row(problems, name, number, cells, by_code, by_path, areas, units)
            if row is not None:
                rows.append(row)
    problems.check()

    existing = all_rules(db)
    by_key = {(r.category_id, r.area_id, r.valid_from): r for r in existing}
    seen = {}
    for row in rows:
        key = (row.category.id, row.area.id if row.area else None, row.valid_from)
        if key in seen:
            problems.add(
                row.file,
                row.number,
                None,
                f"与{seen[key].where}是同一条规则（分类、区域和生效日期相同）",
            )
            continue
        seen[key] = row
        row.rule = by_key.get(key)
    problems.check()

    # The catalogue as it would be: existing rules, with the file's rows over them.
    final = {
        r.id: (r.category_id, r.area_id, r.unit_id, r.valid_from, r.valid_to) for r in existing
    }
    for row in rows:
        if row.rule is not None:
            final.pop(row.rule.id)
    pair_rows = defaultdict(list)
    for rule_id, (c, a, u, f, t) in final.items():
        pair_rows[(c, a)].append((f"现有规则 #{rule_id}", u, f, t, None))
    for row in rows:
        pair_rows[(row.category.id, row.area.id if row.area else None)].append(
            (row.where, row.unit.id, row.valid_from, row.valid_to, row)
        )
    names = {u.id: u.name for u in units.values()}
    for group in pair_rows.values():
        for i, one in enumerate(group):
            for other in group[i + 1 :]:
                if one[4] is None and other[4] is None:
                    continue
                common = _overlap(one[2], one[3], other[2], other[3])
                if common is None or common[1] < today or one[1] == other[1]:
                    continue
                for this, that in ((one, other), (other, one)):
                    if this[4] is not None:
                        problems.add(
                            this[4].file,
                            this[4].number,
                            _HEADER["unit"],
                            f"与{that[0]}冲突：同一分类和区域的有效期重叠，"
                            f"却分别派给“{names[this[1]]}”和“{names[that[1]]}”",
                        )
    problems.check()

    result = tabular.ImportResult(kind="routing")
    changed = False
    for row in rows:
        values = {
            "category": row.category,
            "area": row.area,
            "unit": row.unit,
            "valid_from": row.valid_from,
            "valid_to": row.valid_to,
            "note": row.note,
        }
        if row.rule is None:
            rule = RoutingRule(**values, updated_at=utcnow())
            db.add(rule)
            db.flush()
            audit_change(
                db,
                actor,
                "routing_rule.create",
                target=str(rule.id),
                before=None,
                after=values_of(rule, _AUDITED),
                extra={"import": True},
            )
            result.created += 1
            result.note(f"新增 {rule_text(rule)}")
            changed = True
            continue
        rule = row.rule
        before = values_of(rule, _AUDITED)
        for name, value in values.items():
            setattr(rule, name, value)
        after = values_of(rule, _AUDITED)
        if after == before:
            result.unchanged += 1
            continue
        rule.updated_at = utcnow()
        audit_change(
            db,
            actor,
            "routing_rule.update",
            target=str(rule.id),
            before=before,
            after=after,
            extra={"import": True},
        )
        result.updated += 1
        result.note(f"更新 {rule_text(rule)}")
        changed = True
    if changed:
        db.flush()
        reference.bump(db, reference.ROUTING)
    return result


def _read_row(problems, file, number, cells, by_code, by_path, areas, units):
    bad = len(problems.errors)
    category = None
    code = cells.get("category", "")
    path = cells.get("category_path", "")
    if code:
        category = by_code.get(code)
        if category is None:
            problems.add(file, number, _HEADER["category"], f"事项分类编码不存在：{code}")
    elif path:
        category = by_path.get(tuple(p for p in _PATH_SPLIT.split(path) if p))
        if category is None:
            problems.add(file, number, _HEADER["category_path"], f"找不到事项分类：{path}")
    else:
        problems.add(file, number, _HEADER["category"], "请填写事项分类编码（或事项分类）")
    if category is not None and code and path:
        named = by_path.get(tuple(p for p in _PATH_SPLIT.split(path) if p))
        if named is not None and named.code != category.code:
            problems.add(
                file,
                number,
                _HEADER["category_path"],
                f"事项分类“{path}”与编码 {code} 不是同一分类",
            )
    if category is not None and not category.active:
        problems.add(file, number, _HEADER["category"], f"事项分类“{category.name}”已停用")
    area = None
    if cells.get("area"):
        area = areas.get(cells["area"])
        if area is None:
            problems.add(file, number, _HEADER["area"], f"区域编码不存在：{cells['area']}")
    unit = None
    if not cells.get("unit"):
        problems.add(file, number, _HEADER["unit"], "请填写承办单位编码")
    else:
        unit = units.get(cells["unit"])
        if unit is None:
            problems.add(file, number, _HEADER["unit"], f"承办单位编码不存在：{cells['unit']}")
        elif not unit.active:
            problems.add(file, number, _HEADER["unit"], f"承办单位“{unit.name}”已停用")
    dates = {}
    for name in ("valid_from", "valid_to"):
        dates[name] = None
        if cells.get(name):
            try:
                dates[name] = parse_date(cells[name][:10], _HEADER[name])
            except ValueError as exc:
                problems.add(file, number, _HEADER[name], f"{exc}（现为“{cells[name]}”）")
    if dates["valid_from"] and dates["valid_to"] and dates["valid_to"] < dates["valid_from"]:
        problems.add(file, number, _HEADER["valid_to"], "失效日期早于生效日期")
    note = cells.get("note") or None
    if note and len(note) > NOTE_MAX:
        problems.add(file, number, _HEADER["note"], f"说明不能超过 {NOTE_MAX} 字")
    if len(problems.errors) > bad:
        return None
    return _Row(file, number, category, area, unit, dates["valid_from"], dates["valid_to"], note)


def export_rows(db):
    return [
        {
            "category": r.category.code,
            "category_path": category_path(r.category),
            "area": r.area.code if r.area else "",
            "unit": r.unit.code,
            "valid_from": r.valid_from.isoformat() if r.valid_from else "",
            "valid_to": r.valid_to.isoformat() if r.valid_to else "",
            "note": r.note or "",
        }
        for r in sorted(
            all_rules(db),
            key=lambda r: (
                r.category.code,
                r.area.code if r.area else "",
                r.valid_from or dt.date.min,
            ),
        )
    ]


def export(db):
    return tabular.write_xlsx(COLUMNS, export_rows(db), title="派单目录")


IMPORTER = tabular.Importer(
    kind="routing",
    label="派单目录",
    load=load_import,
    export=export,
    columns=COLUMNS,
)
