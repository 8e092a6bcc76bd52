"""Administrators' rule tables for the clocks: the working-day calendar and the SLA policy
table. The reading and every change of them, as operations the API (and later the pages)
call: each checks the table's rules, writes an audit row with the old and the new values and
flushes; the caller commits, and the calendar cache of this process is dropped after commit.

Calendar (工作日历): ``chinese-calendar`` knows the years the State Council has published; the
administrators' table (``calendar_days``) corrects single days and fills in later years, and
``calendar_years`` marks a year whose arrangement has been entered in full. A working-day
deadline in a year that is neither official nor declared complete is a Monday–Friday guess:
``year_summaries`` says so for every such year, with the number of open tickets whose
deadlines rest on the guess, so the gap is never silent.

SLA policies (时限规则): edits apply to clocks started after the edit. Running clocks keep the
deadlines already computed and the policy they started with (tickets store ``sla_policy_id``),
so a change never moves a deadline a unit has already been given. Calendar edits likewise
apply to deadlines computed after them.
"""

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass

import chinese_calendar
import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from dispatch import calendar as work_calendar
from dispatch.states import FINAL
from hotline.audit import audit
from hotline.db import utcnow
from hotline.enums import Role, Urgency
from hotline.errors import Conflict, Forbidden, NotFound
from hotline.models import CalendarDay, CalendarYear, SlaPolicy, Ticket, User
from hotline.schemas import labelled

#: Who may read the calendar and the SLA table; only administrators change them.
READ_ROLES = frozenset({Role.admin, Role.supervisor, Role.dispatcher})
EDIT_ROLES = frozenset({Role.admin})
#: Years the calendar accepts entries for.
FIRST_YEAR, LAST_YEAR = 2000, 2100
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
#: chinese-calendar names holidays in English; people read the Chinese name.
_HOLIDAY_NAMES = {h.value: h.chinese for h in chinese_calendar.Holiday}
_NUMBER = re.compile(r"\d+", re.ASCII)


def require_editor(actor, what):
    if actor.role not in EDIT_ROLES:
        raise Forbidden(
            f"只有系统管理员可以修改{what}",
            code="ROLE_NOT_ALLOWED",
            details={"role": actor.role.value},
        )


# -- calendar: reading ------------------------------------------------------------------------


def guessed_open_tickets(db):
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


def year_summaries(db, first, last, timezone, guessed=None):
    """For each year from ``first`` to ``last``: where its arrangement comes from, how many
    days administrators entered, how many open tickets rest on a guess in it, and the
    warning to show when it is a guess."""
    defined = {
        row.year: row
        for row in db.scalars(sa.select(CalendarYear).where(CalendarYear.year.between(first, last)))
    }
    calendar = work_calendar.WorkCalendar(timezone, defined_years=set(defined))
    entries = _entries_per_year(db, first, last)
    if guessed is None:
        guessed = guessed_open_tickets(db)
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
                "defined_at": row.defined_at if row else None,
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


def years_to_show(db, this_year):
    """(first, last, guessed) of the years an administrator should see: last year to next,
    widened to every year an open ticket's deadline guesses in."""
    guessed = guessed_open_tickets(db)
    return min([this_year - 1, *guessed]), max([this_year + 1, *guessed]), guessed


#: From this day of a year (month, day) on, the next year's arrangement is due too: the State
#: Council publishes it in the autumn, and deadlines of late-year tickets reach into January.
NEXT_YEAR_DUE = (10, 1)


def years_due(db, today, timezone):
    """The summaries of this year, and of next year from ``NEXT_YEAR_DUE`` on, whose
    arrangement is neither official nor declared complete (what the administration's home
    page warns of)."""
    last = today.year + 1 if (today.month, today.day) >= NEXT_YEAR_DUE else today.year
    return [s for s in year_summaries(db, today.year, last, timezone) if s["warning"]]


def official_days(year):
    """Holidays and weekend working days of ``year`` as chinese-calendar has them:
    {date: (is a working day, name)}."""
    days = {}
    for day, name in chinese_calendar.holidays.items():
        if day.year == year:
            days[day] = (False, _HOLIDAY_NAMES.get(name, name))
    for day, name in chinese_calendar.workdays.items():
        if day.year == year and day.weekday() >= 5:
            days[day] = (True, f"{_HOLIDAY_NAMES.get(name, name)}调休上班")
    return days


def official_answer(day):
    """What chinese-calendar says of ``day`` (None outside the years it knows)."""
    first, last = work_calendar.official_years()
    if not first <= day.year <= last:
        return None
    _, name = chinese_calendar.get_holiday_detail(day)
    return {"workday": chinese_calendar.is_workday(day), "name": _HOLIDAY_NAMES.get(name, name)}


@dataclass(frozen=True)
class ArrangedDay:
    """A day of a year's arrangement that is not an ordinary weekday or weekend."""

    day: dt.date
    workday: bool
    name: str | None
    #: ``official`` (chinese-calendar) or ``table`` (an administrator's entry)
    source: str
    updated_by: str | None = None
    updated_at: dt.datetime | None = None


def arranged_days(db, year):
    """The whole arrangement of ``year`` by date: every holiday and weekend working day,
    whether chinese-calendar or an administrator says so (an administrator's entry wins)."""
    days = {
        day: ArrangedDay(day, workday, name, "official")
        for day, (workday, name) in official_days(year).items()
    }
    for entry, username in entries_of_year(db, year):
        days[entry.day] = ArrangedDay(
            entry.day, entry.workday, entry.name, "table", username, entry.updated_at
        )
    return dict(sorted(days.items()))


def entries_of_year(db, year):
    """The administrators' entries of ``year`` with who made them: [(CalendarDay, username)]."""
    return db.execute(
        sa.select(CalendarDay, User.username)
        .outerjoin(User, User.id == CalendarDay.updated_by_id)
        .where(CalendarDay.day.between(dt.date(year, 1, 1), dt.date(year, 12, 31)))
    ).all()


# -- calendar: changing -----------------------------------------------------------------------


def _day_values(entry):
    return {"workday": entry.workday, "name": entry.name} if entry else None


def _year_values(row):
    return {"note": row.note} if row else None


def set_calendar_day(db, actor, day, *, workday, name=None):
    """Make ``day`` a holiday (``workday`` False) or a working day, whatever the other
    sources say. Returns (entry, created)."""
    require_editor(actor, "工作日历")
    entry = db.get(CalendarDay, day)
    old = _day_values(entry)
    created = entry is None
    if created:
        entry = CalendarDay(day=day)
        db.add(entry)
    entry.workday = workday
    entry.name = name
    entry.updated_by_id = actor.id
    entry.updated_at = utcnow()
    audit(
        db,
        actor,
        "calendar.day.set",
        target=day.isoformat(),
        payload={"old": old, "new": _day_values(entry)},
    )
    work_calendar.changed(db)
    return entry, created


def delete_calendar_day(db, actor, day):
    """Remove an entry: the day follows chinese-calendar (or Monday–Friday) again. Returns
    what the entry said."""
    require_editor(actor, "工作日历")
    entry = db.get(CalendarDay, day)
    if entry is None:
        raise NotFound(f"工作日历中没有 {day.isoformat()} 的录入", code="CALENDAR_DAY_NOT_FOUND")
    old = _day_values(entry)
    db.delete(entry)
    audit(db, actor, "calendar.day.delete", target=day.isoformat(), payload={"old": old})
    work_calendar.changed(db)
    return old


def define_calendar_year(db, actor, year, *, note=None):
    """Declare ``year``'s arrangement entered in full: its other days are then Monday–Friday
    by rule, no longer by guess. Returns True if it was declared before (a new note)."""
    require_editor(actor, "工作日历")
    first, last = work_calendar.official_years()
    if first <= year <= last:
        raise Conflict(
            f"{year} 年的节假日安排已由国务院公布（chinese-calendar 内置），无需确认；"
            "个别日期的更正请逐日录入",
            code="CALENDAR_YEAR_OFFICIAL",
        )
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
    row.defined_by_id = actor.id
    row.defined_at = utcnow()
    audit(
        db,
        actor,
        "calendar.year.define",
        target=str(year),
        payload={"old": old, "new": _year_values(row)},
    )
    work_calendar.changed(db)
    return old is not None


def undefine_calendar_year(db, actor, year):
    """Withdraw the declaration: deadlines in the year are flagged as guesses again."""
    require_editor(actor, "工作日历")
    row = db.get(CalendarYear, year)
    if row is None:
        raise NotFound(f"{year} 年尚未确认录入完整", code="CALENDAR_YEAR_NOT_FOUND")
    old = _year_values(row)
    db.delete(row)
    audit(db, actor, "calendar.year.undefine", target=str(year), payload={"old": old})
    work_calendar.changed(db)


# -- SLA policies -----------------------------------------------------------------------------


def all_policies(db):
    return db.scalars(
        sa.select(SlaPolicy).options(selectinload(SlaPolicy.category)).order_by(SlaPolicy.id)
    ).all()


def load_policy(db, policy_id):
    policy = db.get(SlaPolicy, policy_id)
    if policy is None:
        raise NotFound(f"时限规则不存在：{policy_id}", code="SLA_POLICY_NOT_FOUND")
    return policy


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


def describe_policy(policy):
    """A policy as the API shows it and the audit log records it."""
    category = policy.category
    return {
        "id": policy.id,
        "name": policy.name,
        "category": {"code": category.code, "name": category.name} if category else None,
        "request_type": labelled(policy.request_type),
        "urgency": labelled(policy.urgency),
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


def create_sla_policy(db, actor, values):
    """Add a policy with ``values`` (model attributes)."""
    require_editor(actor, "时限规则")
    others = all_policies(db)
    covered_before = _default_urgencies(others)
    policy = SlaPolicy(**values)
    _check_name(policy, others)
    _check_policy_table(policy, others, covered_before)
    db.add(policy)
    db.flush()
    audit(
        db,
        actor,
        "sla_policy.create",
        target=str(policy.id),
        payload={"before": None, "after": describe_policy(policy)},
    )
    return policy


def update_sla_policy(db, actor, policy, values):
    """Change ``policy``; tickets whose clock is running keep the deadlines they were
    given."""
    require_editor(actor, "时限规则")
    others = [p for p in all_policies(db) if p.id != policy.id]
    covered_before = _default_urgencies([policy, *others])
    before = describe_policy(policy)
    for name, value in values.items():
        setattr(policy, name, value)
    _check_name(policy, others)
    _check_policy_table(policy, others, covered_before)
    db.flush()
    audit(
        db,
        actor,
        "sla_policy.update",
        target=str(policy.id),
        payload={"before": before, "after": describe_policy(policy)},
    )
    return policy
