"""承办单位管理: the administrator's operations on handling units, called alike by the pages,
the JSON API and the import (``hotline import units``).

Each checks its rules, changes the unit, audits old → new (``hotline.audit.audit_change``),
raises the units' reference counter (``reference.bump``) and flushes; the caller commits.

- A unit's code is its key (imports, routing files, the API) and never changes; its name,
  kind, areas served, 24×7 flag and duty phones may. A new 24×7 flag applies to clocks
  started after the change: running clocks keep the deadlines they were given, as with an
  SLA-policy edit.
- Duty phones (值班电话) are where SMS notifications to the unit go (``hotline.notify``).
- Areas served are districts and streets; a street office serves streets and a district
  government districts (the copy of a street's ticket to its district government and the
  territorial fallback of routing read them).
- There is one hotline centre: it cannot be deactivated or change kind, and no second one
  can be made (the callback timers notify it).

**Open tickets.** A unit's part in a ticket is open while it holds an active assignment
(lead 主办, assisting 协办 or copied 抄送) on a ticket still in handling
(``dispatch.states.IN_HANDLING``: 已派单 to 终止待审, 重办). A finished ticket waiting for its
callback is the unit's finished work: it stays with the unit and is scored for it.

**Deactivating** (停用) is refused while the unit has open tickets, unless ``move_to`` names
another active unit: each open ticket is then handed over by ``operations.reassign`` (one
event per ticket; the lead's part is a re-dispatch with a new clock), all in the caller's
transaction, so a ticket that cannot move leaves nothing moved. The result lists the rules
of the routing catalogue still naming the unit (routing already passes over inactive units,
but the catalogue should be fixed) and the unit's active users.
"""

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from dispatch import operations, timers, whistle
from dispatch.states import IN_HANDLING
from hotline import notify, reference, tabular
from hotline.audit import audit_change, values_of
from hotline.cache import reference_rows
from hotline.db import utcnow
from hotline.enums import AlertLevel, AreaLevel, AssignmentRole, Role, TicketStatus, UnitKind
from hotline.errors import Conflict, Forbidden, NotFound, ValidationFailed
from hotline.models import Area, Assignment, RoutingRule, Ticket, Unit, User
from hotline.schemas import Fields

EDIT_ROLES = frozenset({Role.admin})
#: A finished ticket waiting for review (办结审核) or for (or settled by) its callback: the
#: unit's finished work.
AFTER_HANDLING = (TicketStatus.reviewing, TicketStatus.finished, TicketStatus.called_back)
NAME_MAX = 100
#: Duty phones per unit.
PHONES_MAX = 10
#: Areas a unit may serve (the catalogue and the copy rule read districts and streets).
SERVED_LEVELS = (AreaLevel.district, AreaLevel.street)
#: The level of area each kind of unit serves, where the kind fixes it.
KIND_LEVEL = {
    UnitKind.street_office: AreaLevel.street,
    UnitKind.district_government: AreaLevel.district,
}
#: Ticket numbers kept in the audit row of a deactivation (the events name every ticket).
AUDITED_NUMBERS = 200

STATUS_LABELS = {True: "启用", False: "停用"}


def require_admin(actor):
    if actor.role not in EDIT_ROLES:
        raise Forbidden(
            "只有系统管理员可以管理承办单位",
            code="ROLE_NOT_ALLOWED",
            details={"role": actor.role.value},
        )


def audited(unit):
    """The values an audit row keeps of a unit (areas as codes)."""
    return values_of(
        unit,
        {
            "code": "code",
            "name": "name",
            "kind": "kind",
            "always_on": "always_on",
            "active": "active",
            "phones": lambda u: list(u.phones or []),
            "areas": lambda u: sorted(a.code for a in u.areas),
        },
    )


def _changed(session):
    """Reference data changed: other processes follow the counter; this one's cached unit
    rows (and the timers' unit table) are dropped once the change is committed."""
    reference.bump(session, reference.UNITS)
    sa.event.listen(session, "after_commit", _forget_cached_units, once=True)


def _forget_cached_units(_session):
    reference_rows.clear()
    timers.reference.clear()


# -- reading -----------------------------------------------------------------------------------


def get_unit(session, code):
    unit = session.scalars(
        sa.select(Unit).where(Unit.code == code).options(selectinload(Unit.areas))
    ).first()
    if unit is None:
        raise NotFound(f"承办单位不存在：{code}", code="UNIT_NOT_FOUND")
    return unit


def find_unit(session, code):
    return session.scalars(sa.select(Unit).where(Unit.code == code)).first()


def search(session, *, text=None, kind=None, active=None):
    """Units whose name or code contains ``text``, of ``kind``, active or not; by kind, code."""
    query = sa.select(Unit).options(selectinload(Unit.areas)).order_by(Unit.kind, Unit.code)
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            sa.or_(Unit.name.ilike(pattern, escape="\\"), Unit.code.ilike(pattern, escape="\\"))
        )
    if kind is not None:
        query = query.where(Unit.kind == kind)
    if active is not None:
        query = query.where(Unit.active.is_(active))
    return session.scalars(query).all()


def _open_condition():
    return sa.and_(Assignment.active, Ticket.status.in_(IN_HANDLING))


def open_ticket_counts(session, unit_ids=None):
    """{unit id: open tickets} (units with none are left out)."""
    query = (
        sa.select(Assignment.unit_id, sa.func.count(sa.distinct(Assignment.ticket_id)))
        .join(Ticket, Ticket.id == Assignment.ticket_id)
        .where(_open_condition())
        .group_by(Assignment.unit_id)
    )
    if unit_ids is not None:
        query = query.where(Assignment.unit_id.in_(list(unit_ids)))
    return dict(session.execute(query).all())


def open_by_role(session, unit):
    """{AssignmentRole: open tickets} of ``unit``, every role present (0 when none)."""
    rows = session.execute(
        sa.select(Assignment.role, sa.func.count())
        .join(Ticket, Ticket.id == Assignment.ticket_id)
        .where(_open_condition(), Assignment.unit_id == unit.id)
        .group_by(Assignment.role)
    ).all()
    counts = dict.fromkeys(AssignmentRole, 0)
    counts.update(dict(rows))
    return counts


def describe_open(counts):
    """主办 3 件、抄送 1 件 (roles without tickets left out)."""
    return "、".join(f"{role.label} {n} 件" for role, n in counts.items() if n)


def open_tickets(session, unit):
    """The tickets ``unit`` holds open, oldest first, with their assignments loaded."""
    return session.scalars(
        sa.select(Ticket)
        .join(Assignment, Assignment.ticket_id == Ticket.id)
        .where(_open_condition(), Assignment.unit_id == unit.id)
        .options(selectinload(Ticket.assignments).selectinload(Assignment.unit))
        .order_by(Ticket.id)
    ).all()


def _today():
    timezone = operations.timer_settings().timezone
    return dt.datetime.now(ZoneInfo(timezone)).date()


def routing_rules_naming(session, unit):
    """Rules of the catalogue that name ``unit`` and have not expired (local date)."""
    today = _today()
    return session.scalars(
        sa.select(RoutingRule)
        .where(
            RoutingRule.unit_id == unit.id,
            sa.or_(RoutingRule.valid_to.is_(None), RoutingRule.valid_to >= today),
        )
        .options(selectinload(RoutingRule.category), selectinload(RoutingRule.area))
        .order_by(RoutingRule.category_id, RoutingRule.area_id, RoutingRule.id)
    ).all()


def rule_to_dict(rule):
    return {
        "id": rule.id,
        "category": {"code": rule.category.code, "name": rule.category.name},
        "area": {"code": rule.area.code, "name": rule.area.name} if rule.area else None,
        "valid_from": rule.valid_from.isoformat() if rule.valid_from else None,
        "valid_to": rule.valid_to.isoformat() if rule.valid_to else None,
    }


def awaiting_callback(session, unit):
    """Tickets ``unit`` led to the end that wait for their callback (they stay its own)."""
    return session.scalar(
        sa.select(sa.func.count())
        .select_from(Ticket)
        .where(Ticket.lead_unit_id == unit.id, Ticket.status.in_(AFTER_HANDLING))
    )


def without_phones(session):
    """Active units with no duty phone (SMS cannot reach them), by code."""
    rows = session.scalars(sa.select(Unit).where(Unit.active).order_by(Unit.code)).all()
    return [u for u in rows if not u.phones]


def active_users(session, unit):
    return session.scalar(
        sa.select(sa.func.count()).select_from(User).where(User.unit_id == unit.id, User.active)
    )


def move_targets(session, unit=None):
    """Active units open tickets may move to (not ``unit``, not the hotline centre), by kind."""
    query = sa.select(Unit).where(Unit.active, Unit.kind != UnitKind.hotline_centre)
    if unit is not None:
        query = query.where(Unit.id != unit.id)
    return session.scalars(query.order_by(Unit.kind, Unit.code)).all()


def unit_to_dict(unit, open_tickets=None):
    data = {
        "code": unit.code,
        "name": unit.name,
        "kind": {"value": unit.kind.value, "label": unit.kind.label},
        "always_on": unit.always_on,
        "active": unit.active,
        "phones": list(unit.phones or []),
        "areas": [
            {"code": a.code, "name": a.name, "level": a.level.value}
            for a in sorted(unit.areas, key=lambda a: a.code)
        ],
    }
    if open_tickets is not None:
        data["open_tickets"] = open_tickets
    return data


# -- parsing -----------------------------------------------------------------------------------


def phone_number(text, label="值班电话"):
    """(digits, None) for a valid phone number, (None, message) otherwise (the rule of every
    phone field: ``hotline.schemas.Fields.phone``)."""
    fields = Fields({"phone": text})
    digits = fields.phone("phone", label)
    return digits, fields.errors.get("phone")


def parse_phones(values):
    """(phones, error): each value checked and normalised, duplicates dropped, in order."""
    phones = []
    for value in values:
        digits, problem = phone_number(value)
        if problem:
            return None, f"{problem}：{value}"
        if digits and digits not in phones:
            phones.append(digits)
    if len(phones) > PHONES_MAX:
        return None, f"值班电话最多 {PHONES_MAX} 个"
    return phones, None


def find_areas(session, codes):
    """(areas, error) for the area codes served (districts and streets)."""
    codes = list(dict.fromkeys(codes))
    if not codes:
        return [], None
    found = {a.code: a for a in session.scalars(sa.select(Area).where(Area.code.in_(codes))).all()}
    missing = [c for c in codes if c not in found]
    if missing:
        return None, f"区域不存在：{'、'.join(missing)}"
    wrong = [found[c] for c in codes if found[c].level not in SERVED_LEVELS]
    if wrong:
        names = "、".join(f"{a.name}（{a.level.label}）" for a in wrong)
        return None, f"服务区域只能是区县或街道乡镇：{names}"
    return [found[c] for c in codes], None


def unit_values(session, data, *, unit=None):
    """The fields given in ``data`` (a JSON body, or a page form as JSON) as attributes of a
    new unit, or of ``unit`` edited (then only those present). ``areas``: area codes;
    ``phones``: a list of numbers, or one text with a number per line."""
    creating = unit is None
    fields = Fields(data)
    values = {}
    if creating:
        values["code"] = fields.code("code", "单位", required=True)
    elif "code" in data and fields.raw("code") != unit.code:
        fields.fail("code", "单位编码创建后不能修改")
    if creating or "name" in data:
        values["name"] = fields.text("name", "单位名称", required=True, max_len=NAME_MAX)
    if creating or "kind" in data:
        values["kind"] = fields.choice("kind", "单位类型", UnitKind, required=True)
    if creating or "always_on" in data:
        values["always_on"] = fields.boolean(
            "always_on", "是否全天候（24×7）", required=not creating, default=False
        )
    if creating or "areas" in data:
        codes = fields.raw("areas")
        if codes is None:
            codes = []
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            fields.fail("areas", "服务区域须为区域编码列表")
        else:
            areas, problem = find_areas(session, [c.strip() for c in codes if c.strip()])
            if problem:
                fields.fail("areas", problem)
            values["areas"] = areas or []
    if creating or "phones" in data:
        raw = fields.raw("phones")
        if raw is None:
            raw = []
        if isinstance(raw, str):
            raw = raw.splitlines()
        if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
            fields.fail("phones", "值班电话须为电话号码列表")
        else:
            phones, problem = parse_phones([p.strip() for p in raw if p.strip()])
            if problem:
                fields.fail("phones", problem)
            values["phones"] = phones or []
    if "active" in data:
        fields.raw("active")
        fields.fail("active", "请使用“停用”或“启用”操作改变单位状态")
    fields.check()
    return values


# -- changes -----------------------------------------------------------------------------------


def _check(session, unit, *, kind_before=None):
    """The rules every saved unit keeps: areas fit its kind; one hotline centre."""
    level = KIND_LEVEL.get(unit.kind)
    if level is not None:
        wrong = [a for a in unit.areas if a.level != level]
        if wrong:
            names = "、".join(a.name for a in wrong)
            raise ValidationFailed(
                f"{unit.kind.label}的服务区域只能是{level.label}：{names}不是",
                details={"areas": f"{unit.kind.label}只能服务{level.label}"},
            )
    if kind_before == UnitKind.hotline_centre and unit.kind != UnitKind.hotline_centre:
        raise ValidationFailed("热线中心的类型不能更改", details={"kind": "热线中心的类型不能更改"})
    if unit.kind == UnitKind.hotline_centre and kind_before != UnitKind.hotline_centre:
        with session.no_autoflush:
            other = session.scalars(
                sa.select(Unit.name).where(
                    Unit.kind == UnitKind.hotline_centre,
                    Unit.id != unit.id if unit.id is not None else sa.true(),
                )
            ).first()
        if other is not None:
            raise ValidationFailed(
                f"热线中心只能有一个（已有“{other}”）",
                details={"kind": "热线中心只能有一个"},
            )


def create_unit(session, actor, values):
    """新增承办单位 with ``values`` (``unit_values(creating=True)``)."""
    require_admin(actor)
    code = values["code"]
    with session.no_autoflush:
        exists = session.scalar(sa.select(Unit.id).where(Unit.code == code))
    if exists is not None:
        raise Conflict(
            f"单位编码已存在：{code}", code="UNIT_CODE_TAKEN", details={"code": "单位编码已存在"}
        )
    unit = Unit(active=True, **values)
    _check(session, unit)
    session.add(unit)
    session.flush()
    audit_change(session, actor, "unit.create", target=unit.code, before=None, after=audited(unit))
    _changed(session)
    return unit


def update_unit(session, actor, unit, values):
    """修改承办单位: name, kind, 24×7, areas served, duty phones (those in ``values``).
    Returns the changes ({field: [old, new]}; empty: nothing changed)."""
    require_admin(actor)
    before = audited(unit)
    kind_before = unit.kind
    for name, value in values.items():
        setattr(unit, name, value)
    _check(session, unit, kind_before=kind_before)
    session.flush()
    diff = audit_change(
        session, actor, "unit.update", target=unit.code, before=before, after=audited(unit)
    )
    if diff:
        _changed(session)
    return diff


@dataclass
class Deactivation:
    """What deactivating a unit did."""

    unit: Unit
    moved_to: Unit | None = None
    #: Numbers of the tickets handed over.
    moved: list = field(default_factory=list)
    #: Open tickets per role before the move.
    by_role: dict = field(default_factory=dict)
    #: Rules of the catalogue still naming the unit (to fix in the catalogue).
    routing_rules: list = field(default_factory=list)
    #: Active users of the unit (their accounts are the users' section's to change).
    active_users: int = 0
    #: Its open summonses (吹哨报到) ended with it.
    summonses_ended: list = field(default_factory=list)

    def as_dict(self):
        return {
            "unit": unit_to_dict(self.unit),
            "moved_to": (
                {"code": self.moved_to.code, "name": self.moved_to.name} if self.moved_to else None
            ),
            "moved_tickets": len(self.moved),
            "summonses_ended": len(self.summonses_ended),
            "tickets": self.moved,
            "open_by_role": {role.value: n for role, n in self.by_role.items()},
            "routing_rules": {
                "count": len(self.routing_rules),
                "rules": [rule_to_dict(r) for r in self.routing_rules],
            },
            "active_users": self.active_users,
        }


def deactivate_unit(session, actor, unit, *, move_to=None, reason=None, now=None):
    """停用承办单位. Refused while the unit holds open tickets, unless ``move_to`` (an active
    unit, not this one, not the hotline centre) takes them over, ``reason`` saying why; each
    is handed over by ``operations.reassign`` in this transaction. The receiving unit's inbox
    (and duty phones) get one message. Returns a ``Deactivation``."""
    require_admin(actor)
    now = now or utcnow()
    if not unit.active:
        raise Conflict(f"承办单位“{unit.name}”已是停用状态", code="UNIT_ALREADY_INACTIVE")
    if unit.kind == UnitKind.hotline_centre:
        raise Conflict("热线中心不能停用", code="UNIT_IS_HOTLINE_CENTRE")
    if move_to is not None:
        problem = None
        if move_to.id == unit.id:
            problem = "接收单位不能是被停用的单位本身"
        elif not move_to.active:
            problem = f"接收单位“{move_to.name}”已停用"
        elif move_to.kind == UnitKind.hotline_centre:
            problem = "不能转给热线中心本身"
        if problem:
            raise ValidationFailed(
                problem, code="UNIT_MOVE_TARGET_INVALID", details={"move_to": problem}
            )
    counts = open_by_role(session, unit)
    total = open_ticket_counts(session, [unit.id]).get(unit.id, 0)
    if total and move_to is None:
        raise Conflict(
            f"“{unit.name}”尚有 {total} 件在办工单（{describe_open(counts)}），"
            "请选择接收单位将工单一并转移后再停用",
            code="UNIT_HAS_OPEN_TICKETS",
            details={"open_tickets": total, "by_role": {r.value: n for r, n in counts.items()}},
        )
    if total and not (reason or "").strip():
        raise ValidationFailed("请填写转移原因", details={"reason": "请填写转移原因"})
    reason = (reason or "").strip() or None
    before = audited(unit)
    unit.active = False
    session.flush()
    result = Deactivation(unit=unit, moved_to=move_to if total else None, by_role=counts)
    for ticket in open_tickets(session, unit) if total else []:
        operations.reassign(session, actor, ticket, unit=unit, to=move_to, reason=reason, now=now)
        result.moved.append(ticket.number)
    extra = {}
    if result.moved:
        extra = {
            "moved_to": move_to.code,
            "moved_tickets": len(result.moved),
            "tickets": result.moved[:AUDITED_NUMBERS],
            "reason": reason,
        }
        _tell_receiving_unit(session, unit, move_to, result.moved, reason, now)
    result.summonses_ended = whistle.end_for_unit(session, actor, unit, now=now)
    if result.summonses_ended:
        extra["summonses_ended"] = len(result.summonses_ended)
    audit_change(
        session,
        actor,
        "unit.deactivate",
        target=unit.code,
        before=before,
        after=audited(unit),
        extra=extra,
    )
    _changed(session)
    result.routing_rules = routing_rules_naming(session, unit)
    result.active_users = active_users(session, unit)
    return result


def _tell_receiving_unit(session, unit, to, numbers, reason, now):
    shown = "、".join(numbers[:10]) + ("等" if len(numbers) > 10 else "")
    notify.deliver(
        session,
        [
            notify.Message(
                unit_id=to.id,
                unit_code=to.code,
                kind="unit_reassign",
                level=AlertLevel.yellow.value,
                title=f"【改派】{unit.name}停用，{len(numbers)} 件工单转由本单位办理",
                body=f"工单 {shown} 已改派本单位，请及时签收办理。原因：{reason[:300]}",
            )
        ],
        now,
    )


def reactivate_unit(session, actor, unit):
    """重新启用承办单位 (it gets new tickets again; moved tickets stay where they went)."""
    require_admin(actor)
    if unit.active:
        raise Conflict(f"承办单位“{unit.name}”已是启用状态", code="UNIT_ALREADY_ACTIVE")
    before = audited(unit)
    unit.active = True
    session.flush()
    audit_change(
        session, actor, "unit.reactivate", target=unit.code, before=before, after=audited(unit)
    )
    _changed(session)
    return unit


# -- import and export (hotline import units / export units) -----------------------------------

COLUMNS = (
    tabular.Column("code", "单位编码", required=True),
    tabular.Column("name", "单位名称", required=True),
    tabular.Column("kind", "类型", required=True, aliases=("单位类型",)),
    tabular.Column("areas", "服务区域"),
    tabular.Column("always_on", "全天候", aliases=("24小时", "7×24")),
    tabular.Column("phones", "值班电话", aliases=("联系电话",)),
    tabular.Column("status", "状态"),
)
_HEADER = {c.key: c.header for c in COLUMNS}
_KINDS = {**{k.label: k for k in UnitKind}, **{k.value: k for k in UnitKind}}
_STATUS = {"启用": True, "停用": False}


def _valid_code(code):
    fields = Fields({"code": code})
    fields.code("code", "单位")
    return not fields.errors


def _import_row(session, problems, file, number, row, areas_by_code):
    """The row's values as unit attributes ("active": None when the status is blank), or
    None with its problems recorded."""

    def bad(key, message):
        problems.add(file, number, _HEADER[key], message)

    values = {}
    code = row["code"]
    if not code:
        bad("code", "请填写单位编码")
    elif not _valid_code(code):
        bad("code", "单位编码只能由字母、数字、- 和 _ 组成（最长 32 位）")
    values["code"] = code
    name = row["name"]
    if not name:
        bad("name", "请填写单位名称")
    elif len(name) > NAME_MAX:
        bad("name", f"单位名称不能超过 {NAME_MAX} 字")
    values["name"] = name
    kind = _KINDS.get(row["kind"])
    if kind is None:
        bad("kind", f"类型应为 {'、'.join(k.label for k in UnitKind)} 之一（现为“{row['kind']}”）")
    values["kind"] = kind
    areas = []
    for area_code in tabular.split_list(row.get("areas", "")):
        area = areas_by_code.get(area_code)
        if area is None:
            bad("areas", f"区域不存在：{area_code}")
        elif area.level not in SERVED_LEVELS:
            bad("areas", f"服务区域只能是区县或街道乡镇：{area.name}（{area.level.label}）")
        elif kind in KIND_LEVEL and area.level != KIND_LEVEL[kind]:
            bad("areas", f"{kind.label}只能服务{KIND_LEVEL[kind].label}：{area.name}不是")
        elif area not in areas:
            areas.append(area)
    values["areas"] = areas
    values["always_on"] = tabular.yes_no(
        problems, file, number, _HEADER["always_on"], row.get("always_on", "")
    )
    phones, problem = parse_phones(tabular.split_list(row.get("phones", "")))
    if problem:
        bad("phones", problem)
    values["phones"] = phones or []
    status = row.get("status", "")
    if status and status not in _STATUS:
        bad("status", f"应填“启用”或“停用”（现为“{status}”）")
    values["active"] = _STATUS.get(status)
    return values


def load_units(session, actor, sources, options):
    """Upsert units by code from every table in ``sources``; units not listed stay as they
    are. Every row is checked first (nothing is saved while any row is wrong). A unit
    marked 停用 that still holds open tickets is a row error: moving its tickets is done on
    the units page, where the receiving unit is chosen. ``actor`` None: the command line
    (``hotline import units``), run by whoever runs the server."""
    if actor is not None:
        require_admin(actor)
    problems = tabular.Problems()
    areas_by_code = {a.code: a for a in session.scalars(sa.select(Area)).all()}
    existing = {
        u.code: u for u in session.scalars(sa.select(Unit).options(selectinload(Unit.areas)))
    }
    open_counts = open_ticket_counts(session)
    centres = {u.code for u in existing.values() if u.kind == UnitKind.hotline_centre}
    rows, seen = [], {}
    for file, data in sources:
        table = tabular.read(data, file, COLUMNS)
        for number, row in table.rows:
            values = _import_row(session, problems, file, number, row, areas_by_code)
            code = values["code"]
            if code in seen:
                problems.add(file, number, _HEADER["code"], f"单位编码重复（与{seen[code]}相同）")
                continue
            seen[code] = f"{file} 第 {number} 行"
            unit = existing.get(code)
            kind = values["kind"]
            if (
                unit is not None
                and unit.kind == UnitKind.hotline_centre
                and kind
                not in (
                    None,
                    UnitKind.hotline_centre,
                )
            ):
                problems.add(file, number, _HEADER["kind"], "热线中心的类型不能更改")
            if kind == UnitKind.hotline_centre and code not in centres:
                if centres:
                    problems.add(file, number, _HEADER["kind"], "热线中心只能有一个")
                centres.add(code)
            if values["active"] is False and (unit is None or unit.active):
                if unit is not None and unit.kind == UnitKind.hotline_centre:
                    problems.add(file, number, _HEADER["status"], "热线中心不能停用")
                held = open_counts.get(unit.id, 0) if unit is not None else 0
                if held:
                    problems.add(
                        file,
                        number,
                        _HEADER["status"],
                        f"该单位尚有 {held} 件在办工单，不能通过导入停用；"
                        "请在“承办单位”页面停用并选择接收单位转移工单",
                    )
            rows.append(values)
    problems.check()

    result = tabular.ImportResult(kind="units")
    changed = False
    for values in rows:
        unit = existing.get(values["code"])
        active = values.pop("active")
        if unit is None:
            unit = Unit(**values, active=active is not False)
            session.add(unit)
            session.flush()
            audit_change(
                session, actor, "unit.create", target=unit.code, before=None, after=audited(unit)
            )
            result.created += 1
            result.note(f"新增 承办单位 {unit.code} {unit.name}")
            changed = True
            continue
        before = audited(unit)
        for name, value in values.items():
            setattr(unit, name, value)
        if active is not None:
            unit.active = active
        session.flush()
        diff = audit_change(
            session,
            actor,
            "unit.import",
            target=unit.code,
            before=before,
            after=audited(unit),
        )
        if not diff:
            result.unchanged += 1
            continue
        changed = True
        if "active" in diff and not unit.active:
            result.deactivated += 1
            rules = len(routing_rules_naming(session, unit))
            result.note(
                f"停用 承办单位 {unit.code} {unit.name}"
                + (f"（派单目录中仍有 {rules} 条规则指向该单位）" if rules else "")
            )
        else:
            result.updated += 1
            what = "、".join(_FIELD_LABELS.get(name, name) for name in diff)
            result.note(f"更新 承办单位 {unit.code} {unit.name}：{what}")
    if changed:
        _changed(session)
    return result


_FIELD_LABELS = {
    "name": "名称",
    "kind": "类型",
    "areas": "服务区域",
    "always_on": "全天候",
    "phones": "值班电话",
    "active": "状态",
}


def export_rows(session):
    units = session.scalars(
        sa.select(Unit).options(selectinload(Unit.areas)).order_by(Unit.code)
    ).all()
    return [
        {
            "code": u.code,
            "name": u.name,
            "kind": u.kind.label,
            "areas": sorted(a.code for a in u.areas),
            "always_on": u.always_on,
            "phones": list(u.phones or []),
            "status": STATUS_LABELS[u.active],
        }
        for u in units
    ]


def export_units(session):
    return tabular.write_xlsx(COLUMNS, export_rows(session), title="承办单位")


IMPORTER = tabular.Importer(
    kind="units",
    label="承办单位",
    load=load_units,
    export=export_units,
    columns=COLUMNS,
)
