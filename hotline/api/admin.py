"""Administrators' rule tables: the working-day calendar and the SLA policy table.

Calendar (工作日历): ``chinese-calendar`` knows the years the State Council has published; the
administrators' table (``calendar_days``) corrects single days and fills in later years, and
``calendar_years`` marks a year whose arrangement has been entered in full. A working-day
deadline in a year that is neither official nor declared complete is a Monday–Friday guess:
``GET /calendar/years`` says so for every such year, with the number of open tickets whose
deadlines rest on the guess, so the gap is never silent.

SLA policies (时限规则): edits apply to clocks started after the edit. Running clocks keep the
deadlines already computed and the policy they started with (tickets store ``sla_policy_id``),
so a change never moves a deadline a unit has already been given. Calendar edits likewise
apply to deadlines computed after them.

Everyone who plans or supervises dispatch may read both tables; only administrators change
them, and every change writes an audit row with the old and the new values.
"""

import datetime as dt
import re
from collections import Counter
from zoneinfo import ZoneInfo

import chinese_calendar
import sqlalchemy as sa
from flask import current_app, g, request
from sqlalchemy.orm import selectinload

from dispatch import calendar as work_calendar
from dispatch.states import FINAL
from hotline.api import bp, commit, ok
from hotline.api import iso as _iso
from hotline.api import labelled as _labelled
from hotline.api.auth import require_role
from hotline.api.parsing import Fields, json_body
from hotline.api.reference import by_code
from hotline.audit import audit
from hotline.db import get_session, utcnow
from hotline.enums import LimitUnit, RequestType, Role, Urgency
from hotline.errors import Conflict, NotFound, ValidationFailed
from hotline.models import CalendarDay, CalendarYear, Category, SlaPolicy, Ticket, User

#: Who may read the calendar and the SLA table.
READ_ROLES = {Role.admin, Role.supervisor, Role.dispatcher}
#: Years the calendar accepts entries for.
FIRST_YEAR, LAST_YEAR = 2000, 2100
DAY_NAME_MAX = 50
YEAR_NOTE_MAX = 200
POLICY_NAME_MAX = 100
#: Largest limit per unit: a week in minutes, a month in hours, three months in working days.
LIMIT_MAX = {LimitUnit.minutes: 10080, LimitUnit.hours: 720, LimitUnit.working_days: 60}
CLOCK_LABELS = {
    "sign": "签收时限",
    "contact": "响应时限",
    "finish": "办结时限",
    "callback": "回访时限",
}
SOURCE_LABELS = {
    "official": "国务院公布（chinese-calendar 内置）",
    "table": "管理员录入",
    "undefined": "尚未录入（按周一至周五推算）",
}
WEEKDAY_LABELS = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"]
#: chinese-calendar names holidays in English; people read the Chinese name.
_HOLIDAY_NAMES = {h.value: h.chinese for h in chinese_calendar.Holiday}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)
_YEAR = re.compile(r"^\d{4}$", re.ASCII)
_NUMBER = re.compile(r"\d+", re.ASCII)


def _require_reader(what):
    require_role(READ_ROLES, "“{role}”角色无权查看" + what)


def _require_admin(what):
    require_role({Role.admin}, f"只有系统管理员可以修改{what}")


def _tz():
    return ZoneInfo(current_app.config["TIMEZONE"])


# -- calendar: reading ------------------------------------------------------------------------


def _guessed_open_tickets(db):
    """year → open tickets whose deadlines include a Monday–Friday guess in that year.

    Grouped by the stored text, which few distinct values share, then split in Python: the
    column is a comma-separated list and a year must not match inside another number."""
    rows = db.execute(
        sa.select(Ticket.calendar_guessed_years, sa.func.count())
        .where(
            Ticket.status.not_in(FINAL),
            Ticket.calendar_guessed_years.is_not(None),
            Ticket.calendar_guessed_years != "",
        )
        .group_by(Ticket.calendar_guessed_years)
    ).all()
    counts = Counter()
    for text, n in rows:
        for year in {int(y) for y in _NUMBER.findall(text)}:
            counts[year] += n
    return counts


def _entries_per_year(db, first, last):
    days = db.scalars(
        sa.select(CalendarDay.day).where(
            CalendarDay.day >= dt.date(first, 1, 1), CalendarDay.day <= dt.date(last, 12, 31)
        )
    )
    return Counter(day.year for day in days)


def _year_summaries(db, first, last, guessed=None):
    defined = {
        row.year: row
        for row in db.scalars(sa.select(CalendarYear).where(CalendarYear.year.between(first, last)))
    }
    calendar = work_calendar.WorkCalendar(
        current_app.config["TIMEZONE"], defined_years=set(defined)
    )
    entries = _entries_per_year(db, first, last)
    if guessed is None:
        guessed = _guessed_open_tickets(db)
    summaries = []
    for year in range(first, last + 1):
        source = calendar.year_source(year)
        row = defined.get(year)
        summaries.append(
            {
                "year": year,
                "source": source,
                "source_label": SOURCE_LABELS[source],
                "note": row.note if row else None,
                "defined_at": _iso(row.defined_at) if row else None,
                "entries": entries[year],
                "guessed_open_tickets": guessed[year],
                "warning": _year_warning(year, source, entries[year], guessed[year]),
            }
        )
    return summaries


def _year_warning(year, source, entries, tickets):
    if source != "undefined":
        return None
    affected = f"涉及 {tickets} 张在办工单的时限"
    if entries:
        return (
            f"{year} 年节假日安排尚未确认录入完整（已录入 {entries} 天）：其余日期按周一至周五"
            f"推算，{affected}"
        )
    return f"{year} 年节假日安排尚未录入：该年的工作日按周一至周五推算，{affected}"


@bp.get("/calendar/years")
def list_calendar_years():
    """Each year from last year to the latest one an open ticket's deadline reaches."""
    _require_reader("工作日历")
    db = get_session()
    this_year = dt.datetime.now(_tz()).year
    guessed = _guessed_open_tickets(db)
    # An open ticket may have a guessed deadline outside the usual window: show its year too.
    first = min([this_year - 1, *guessed])
    last = max([this_year + 1, *guessed])
    return ok(_year_summaries(db, first, last, guessed))


def _official_days(year):
    """Holidays and weekend working days of ``year`` as chinese-calendar has them."""
    days = {}
    for day, name in chinese_calendar.holidays.items():
        if day.year == year:
            days[day] = (False, _HOLIDAY_NAMES.get(name, name))
    for day, name in chinese_calendar.workdays.items():
        if day.year == year and day.weekday() >= 5:
            days[day] = (True, f"{_HOLIDAY_NAMES.get(name, name)}调休上班")
    return days


def _official_answer(day):
    """What chinese-calendar says of ``day`` (None outside the years it knows)."""
    first, last = work_calendar.official_years()
    if not first <= day.year <= last:
        return None
    _, name = chinese_calendar.get_holiday_detail(day)
    return {
        "workday": chinese_calendar.is_workday(day),
        "name": _HOLIDAY_NAMES.get(name, name),
    }


def _day_dict(day, workday, name, source, *, updated_by=None, updated_at=None):
    return {
        "date": day.isoformat(),
        "weekday": day.isoweekday(),
        "weekday_label": WEEKDAY_LABELS[day.weekday()],
        "workday": workday,
        "name": name,
        "source": source,
        "source_label": SOURCE_LABELS[source],
        "official": _official_answer(day) if source == "table" else None,
        "updated_by": updated_by,
        "updated_at": _iso(updated_at),
    }


def _entry_dict(entry, username):
    return _day_dict(
        entry.day,
        entry.workday,
        entry.name,
        "table",
        updated_by=username,
        updated_at=entry.updated_at,
    )


@bp.get("/calendar/days")
def list_calendar_days():
    """The whole arrangement of a year: every holiday and weekend working day, whether
    chinese-calendar or an administrator says so (an administrator's entry wins)."""
    _require_reader("工作日历")
    db = get_session()
    raw = request.args.get("year")
    year = dt.datetime.now(_tz()).year if raw is None else _parse_year(raw, "year")
    days = {
        day: _day_dict(day, workday, name, "official")
        for day, (workday, name) in _official_days(year).items()
    }
    rows = db.execute(
        sa.select(CalendarDay, User.username)
        .outerjoin(User, User.id == CalendarDay.updated_by_id)
        .where(CalendarDay.day.between(dt.date(year, 1, 1), dt.date(year, 12, 31)))
    ).all()
    for entry, username in rows:
        days[entry.day] = _entry_dict(entry, username)
    (summary,) = _year_summaries(db, year, year)
    return ok({**summary, "days": [days[day] for day in sorted(days)]})


# -- calendar: writing ------------------------------------------------------------------------


def _parse_year(raw, name):
    if not (_YEAR.match(raw) and FIRST_YEAR <= int(raw) <= LAST_YEAR):
        raise ValidationFailed(
            f"年份须为 {FIRST_YEAR}–{LAST_YEAR} 之间的四位数字：{raw}",
            details={name: f"须为 {FIRST_YEAR}–{LAST_YEAR} 之间的四位数字"},
        )
    return int(raw)


def _parse_day(raw):
    try:
        day = dt.date.fromisoformat(raw) if _DATE.match(raw) else None
    except ValueError:
        day = None
    if day is None or not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ValidationFailed(
            f"日期须为 {FIRST_YEAR}–{LAST_YEAR} 年间的有效日期，格式 YYYY-MM-DD：{raw}",
            details={"day": "日期格式应为 YYYY-MM-DD"},
        )
    return day


def _day_values(entry):
    return {"workday": entry.workday, "name": entry.name} if entry else None


def _calendar_changed():
    commit()
    work_calendar.invalidate()


@bp.put("/calendar/days/<day>")
def set_calendar_day(day):
    """Make one day a holiday (``workday: false``) or a working day, whatever the other
    sources say."""
    _require_admin("工作日历")
    day = _parse_day(day)
    fields = Fields(json_body())
    workday = fields.boolean("workday", "是否工作日", required=True)
    name = fields.text("name", "名称", max_len=DAY_NAME_MAX)
    fields.check()
    db = get_session()
    entry = db.get(CalendarDay, day)
    old = _day_values(entry)
    created = entry is None
    if created:
        entry = CalendarDay(day=day)
        db.add(entry)
    entry.workday = workday
    entry.name = name
    entry.updated_by_id = g.user.id
    entry.updated_at = utcnow()
    audit(
        db,
        g.user,
        "calendar.day.set",
        target=day.isoformat(),
        payload={"old": old, "new": _day_values(entry)},
    )
    _calendar_changed()
    return ok(_entry_dict(entry, g.user.username), 201 if created else 200)


@bp.delete("/calendar/days/<day>")
def delete_calendar_day(day):
    """Remove an entry: the day follows chinese-calendar (or Monday–Friday) again."""
    _require_admin("工作日历")
    day = _parse_day(day)
    db = get_session()
    entry = db.get(CalendarDay, day)
    if entry is None:
        raise NotFound(f"工作日历中没有 {day.isoformat()} 的录入", code="CALENDAR_DAY_NOT_FOUND")
    old = _day_values(entry)
    db.delete(entry)
    audit(db, g.user, "calendar.day.delete", target=day.isoformat(), payload={"old": old})
    _calendar_changed()
    return ok({"date": day.isoformat(), "deleted": old})


def _year_values(row):
    return {"note": row.note} if row else None


@bp.put("/calendar/years/<year>")
def define_calendar_year(year):
    """Declare a year's arrangement entered in full: its other days are then Monday–Friday
    by rule, no longer by guess."""
    _require_admin("工作日历")
    year = _parse_year(year, "year")
    fields = Fields(json_body())
    note = fields.text("note", "依据说明", max_len=YEAR_NOTE_MAX)
    fields.check()
    first, last = work_calendar.official_years()
    if first <= year <= last:
        raise Conflict(
            f"{year} 年的节假日安排已由国务院公布（chinese-calendar 内置），无需确认；"
            "个别日期的更正请逐日录入",
            code="CALENDAR_YEAR_OFFICIAL",
        )
    db = get_session()
    if not _entries_per_year(db, year, year)[year]:
        raise Conflict(
            f"{year} 年尚未录入任何节假日或调休日，不能确认该年安排已录入完整",
            code="CALENDAR_YEAR_EMPTY",
        )
    row = db.get(CalendarYear, year)
    old = _year_values(row)
    if row is None:
        row = CalendarYear(year=year)
        db.add(row)
    row.note = note
    row.defined_by_id = g.user.id
    row.defined_at = utcnow()
    audit(
        db,
        g.user,
        "calendar.year.define",
        target=str(year),
        payload={"old": old, "new": _year_values(row)},
    )
    _calendar_changed()
    (summary,) = _year_summaries(db, year, year)
    return ok(summary, 200 if old else 201)


@bp.delete("/calendar/years/<year>")
def undefine_calendar_year(year):
    """Withdraw the declaration: deadlines in the year are flagged as guesses again."""
    _require_admin("工作日历")
    year = _parse_year(year, "year")
    db = get_session()
    row = db.get(CalendarYear, year)
    if row is None:
        raise NotFound(f"{year} 年尚未确认录入完整", code="CALENDAR_YEAR_NOT_FOUND")
    old = _year_values(row)
    db.delete(row)
    audit(db, g.user, "calendar.year.undefine", target=str(year), payload={"old": old})
    _calendar_changed()
    (summary,) = _year_summaries(db, year, year)
    return ok(summary)


# -- SLA policies -----------------------------------------------------------------------------


def policy_to_dict(policy):
    category = policy.category
    return {
        "id": policy.id,
        "name": policy.name,
        "category": {"code": category.code, "name": category.name} if category else None,
        "request_type": _labelled(policy.request_type),
        "urgency": _labelled(policy.urgency),
        **{
            clock: {
                "amount": getattr(policy, f"{clock}_amount"),
                "unit": getattr(policy, f"{clock}_unit").value,
                "unit_label": getattr(policy, f"{clock}_unit").label,
            }
            for clock in CLOCK_LABELS
        },
        "active": policy.active,
    }


def _all_policies(db):
    return db.scalars(
        sa.select(SlaPolicy).options(selectinload(SlaPolicy.category)).order_by(SlaPolicy.id)
    ).all()


def _load_policy(db, policy_id):
    policy = db.get(SlaPolicy, policy_id)
    if policy is None:
        raise NotFound(f"时限规则不存在：{policy_id}", code="SLA_POLICY_NOT_FOUND")
    return policy


@bp.get("/sla-policies")
def list_sla_policies():
    """Every policy, inactive ones included."""
    _require_reader("时限规则")
    return ok([policy_to_dict(p) for p in _all_policies(get_session())])


@bp.get("/sla-policies/<id:policy_id>")
def get_sla_policy(policy_id):
    _require_reader("时限规则")
    return ok(policy_to_dict(_load_policy(get_session(), policy_id)))


def _limit(fields, clock, *, required):
    """One clock's limit ``{"amount": int, "unit": …}`` as (amount, LimitUnit)."""
    label = CLOCK_LABELS[clock]
    value = fields.raw(clock)
    if value is None:
        if required:
            fields.errors.setdefault(clock, f"请填写{label}")
        return None
    example = '{"amount": 2, "unit": "hours"}'
    if not isinstance(value, dict):
        fields.errors.setdefault(clock, f"{label}须为对象，如 {example}")
        return None
    unknown = [key for key in value if key not in ("amount", "unit")]
    if unknown:
        fields.errors.setdefault(clock, f"{label}含未知字段“{unknown[0]}”")
        return None
    amount = value.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
        fields.errors.setdefault(f"{clock}.amount", f"{label}的数值须为正整数")
        amount = None
    unit = LimitUnit.parse(value["unit"]) if isinstance(value.get("unit"), str) else None
    if unit is None:
        options = "、".join(f"{m.value}（{m.label}）" for m in LimitUnit)
        fields.errors.setdefault(f"{clock}.unit", f"{label}的单位取值无效，可选：{options}")
    if amount is None or unit is None:
        return None
    if amount > LIMIT_MAX[unit]:
        fields.errors.setdefault(
            f"{clock}.amount", f"{label}不能超过 {LIMIT_MAX[unit]} {unit.label}（现为 {amount}）"
        )
        return None
    return amount, unit


def _policy_values(db, data, *, creating):
    """The fields given in ``data`` as model attributes; on PATCH only those present."""
    fields = Fields(data)
    values = {}
    if creating or "name" in data:
        values["name"] = fields.text("name", "规则名称", required=True, max_len=POLICY_NAME_MAX)
    if creating or "category" in data:
        code = fields.code("category", "事项分类")
        category = None
        if code is not None:
            try:
                category = by_code(db, Category, code, "事项分类")
            except NotFound as exc:
                fields.errors.setdefault("category", exc.message)
        values["category"] = category
        values["category_id"] = category.id if category else None
    if creating or "request_type" in data:
        values["request_type"] = fields.choice("request_type", "诉求类型", RequestType)
    if creating or "urgency" in data:
        values["urgency"] = fields.choice("urgency", "紧急程度", Urgency)
    for clock in CLOCK_LABELS:
        if creating or clock in data:
            limit = _limit(fields, clock, required=True)
            if limit:
                values[f"{clock}_amount"], values[f"{clock}_unit"] = limit
    if creating or "active" in data:
        # On PATCH a null is refused, not read as "leave as it is" or "switch on".
        values["active"] = fields.boolean(
            "active", "是否启用", required=not creating, default=True if creating else None
        )
    fields.check()
    return values


def _match_key(policy):
    return policy.category_id, policy.request_type, policy.urgency


def _default_urgencies(policies):
    """Urgencies some active catch-all policy (no category, no request type) covers: with
    such a row every ticket of that urgency finds a policy."""
    covered = set()
    for p in policies:
        if p.active and p.category_id is None and p.request_type is None:
            covered.update([p.urgency] if p.urgency else Urgency)
    return covered


def _check_policy_table(policy, others, covered_before):
    """Refuse a policy table where two active rows match the same tickets equally, or where
    an urgency lost its catch-all row."""
    if policy.active:
        for other in others:
            if other.active and _match_key(other) == _match_key(policy):
                raise Conflict(
                    f"已有启用中的时限规则“{other.name}”适用于相同的事项分类、诉求类型和紧急程度",
                    code="SLA_POLICY_DUPLICATE",
                    details={"policy": other.id},
                )
    lost = covered_before - _default_urgencies([policy, *others])
    if lost:
        labels = "、".join(u.label for u in Urgency if u in lost)
        raise Conflict(
            f"每个紧急程度都须保留一条启用中的通用时限规则（不限事项分类和诉求类型），"
            f"此次修改后“{labels}”工单将没有可用的时限规则",
            code="SLA_POLICY_LAST_DEFAULT",
            details={"urgencies": [u.value for u in Urgency if u in lost]},
        )


def _check_name(policy, others):
    for other in others:
        if other.name == policy.name:
            raise Conflict(
                f"已有同名时限规则“{policy.name}”，请换一个名称",
                code="SLA_POLICY_NAME_TAKEN",
                details={"policy": other.id},
            )


@bp.post("/sla-policies")
def create_sla_policy():
    _require_admin("时限规则")
    db = get_session()
    values = _policy_values(db, json_body(), creating=True)
    others = _all_policies(db)
    covered_before = _default_urgencies(others)
    policy = SlaPolicy(**values)
    _check_name(policy, others)
    _check_policy_table(policy, others, covered_before)
    db.add(policy)
    db.flush()
    after = policy_to_dict(policy)
    audit(
        db,
        g.user,
        "sla_policy.create",
        target=str(policy.id),
        payload={"before": None, "after": after},
    )
    commit()
    return ok(after, 201, {"Location": f"/api/v1/sla-policies/{policy.id}"})


@bp.patch("/sla-policies/<id:policy_id>")
def update_sla_policy(policy_id):
    """Change a policy; tickets whose clock is running keep the deadlines they were given."""
    _require_admin("时限规则")
    db = get_session()
    policy = _load_policy(db, policy_id)
    values = _policy_values(db, json_body(), creating=False)
    others = [p for p in _all_policies(db) if p.id != policy.id]
    covered_before = _default_urgencies([policy, *others])
    before = policy_to_dict(policy)
    for name, value in values.items():
        setattr(policy, name, value)
    _check_name(policy, others)
    _check_policy_table(policy, others, covered_before)
    db.flush()
    after = policy_to_dict(policy)
    audit(
        db,
        g.user,
        "sla_policy.update",
        target=str(policy.id),
        payload={"before": before, "after": after},
    )
    commit()
    return ok(after)
