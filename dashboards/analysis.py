"""民情分析 reports: what the citizens told the city in a day, a week, a month or a quarter
(issue 16 §5; the quarterly one is read at the mayor's meeting, 每季度对群众诉求事项进行分析研究).

This module docstring is the specification; ``compute`` builds the report as one JSON-ready
dict, which the page, the JSON API and the XLSX file all read (and a published report
stores as it was).

**Periods.** Local periods of the city's timezone (``TIMEZONE``): a day; a week Monday to
Sunday, keyed by its ISO week (``2026-W49``); a calendar month (``2026-12``); a quarter
(``2026-Q4``). A ticket belongs to the period it was received in (``received_at``), as in
the monthly ranking. Each figure is compared with the previous period of the same kind.

**Scope.** The city, or one district: the tickets whose place (``area_id``) lies in the
district, whoever handles them (tickets with no place are in the city's report only).

**Contents.**

- *Volume and trend*: tickets received, the previous period's, the change; a series per
  local hour (daily report) or per local day (the others) for this and the previous period;
  counts by channel, request type, category (level 1 and level 2), and district (a
  district's report: street), each with the previous period's count and the change.
- *Fastest rising*: level-2 categories and places (streets and communities) with at least
  ``RISING_MIN_COUNT[kind]`` tickets this period and more than before, by growth
  ``(now − before) ÷ max(before, 1)``, then by the increase; the minimum keeps one or two
  tickets from topping the list.
- *Hot issues*: hot issues (``hot_issues``, not merged into another) with tickets received in
  the period and scope, by heat; with how many of their tickets fall in the period.
- *Repeat callers*: phone numbers with at least two tickets in the period (numbers masked,
  ``hotline.privacy.mask_phone``; the report never holds a full number). *Repeat
  complaints*: tickets merged into another (并单) and tickets reopened after callback (重办).
- *Satisfaction and resolution* by category and by lead unit: the monthly ranking's counts
  and rates (``dashboards.ranking.count_tickets`` and ``compute_rates``, with the ranking's
  settings in force), so the figures are the ranking's for the same tickets.
- *Keywords*: words of the titles and contents (``CONTENT_CHARS`` first characters) cut by
  jieba with the classifier's stop words (``hotline.knowledge.terms``, words of two
  characters or more, not numbers); a word counts once per ticket. Over ``KEYWORD_SAMPLE``
  tickets a period is sampled evenly by ticket id (every k-th) and the counts are scaled up
  (and marked estimated). Top ``KEYWORDS`` of this period with the previous period's count.
  Reading the texts is the slowest part: the keywords of a period and scope are kept for
  ``KEYWORD_CACHE_SECONDS`` and reused while its tickets' count, highest id and versions
  (and the place names) are the same, so a page and its XLSX file read them once.
- *Summary*: a paragraph in Chinese stating the main figures, generated from them.

**Publishing.** ``publish`` freezes the city's report of a period that has ended (once per
period: ``analysis_reports`` is unique on period and key), with the summary as the publisher
edited it; the city's report of that period is then read from the stored figures. Who may
read: ``dashboards.access``; whether a user may publish a period now: ``publish_refusal``
(the page offers its form by it, ``publish`` raises its answer).
"""

import calendar
import copy
import datetime as dt
import math
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.exc
import sqlalchemy.orm

from classifier.normalize import ID_TOKEN, PHONE_TOKEN, normalize
from dashboards import access, ranking
from hotline import knowledge
from hotline.audit import audit
from hotline.config import DEFAULTS
from hotline.enums import AreaLevel, Channel, HotIssueState, ReportPeriod, RequestType
from hotline.errors import Conflict, Forbidden, NotFound, ValidationFailed
from hotline.models import AnalysisReport, Area, Category, HotIssue, HotIssueTicket, Ticket, Unit
from hotline.privacy import mask_phone, scrub_personal
from hotline.schemas import Fields

#: Tickets a level-2 category or a place needs this period to be listed as rising.
RISING_MIN_COUNT = {
    ReportPeriod.daily: 3,
    ReportPeriod.weekly: 5,
    ReportPeriod.monthly: 10,
    ReportPeriod.quarterly: 20,
}
#: Lines in each top list (rising, hot issues, repeat callers, repeat complaints).
TOP = 10
#: Keywords listed.
KEYWORDS = 20
#: Most tickets whose text is read for the keywords, per period.
KEYWORD_SAMPLE = 2000
#: Characters of a ticket's content read for the keywords (the title is read whole).
CONTENT_CHARS = 200
#: Seconds of one time bucket of the series (every real UTC offset is a multiple of it).
_BUCKET = 900
#: A stored report's layout version.
VERSION = 1

_KEYS = {
    ReportPeriod.daily: re.compile(r"^(\d{4})-(\d{2})-(\d{2})$"),
    ReportPeriod.weekly: re.compile(r"^(\d{4})-W(\d{2})$"),
    ReportPeriod.monthly: re.compile(r"^(\d{4})-(\d{2})$"),
    ReportPeriod.quarterly: re.compile(r"^(\d{4})-Q([1-4])$"),
}
#: Years a period key may name (the pages step to the next period: far from date's limits).
YEARS = (2000, 2100)
_KEY_FORMATS = {
    ReportPeriod.daily: "YYYY-MM-DD，例如 2026-12-04",
    ReportPeriod.weekly: "YYYY-Www，例如 2026-W49",
    ReportPeriod.monthly: "YYYY-MM，例如 2026-12",
    ReportPeriod.quarterly: "YYYY-Qn，例如 2026-Q4",
}
_QUARTER_NAMES = "一二三四"
_WEEKDAYS = "一二三四五六日"
_PREVIOUS_NAMES = {
    ReportPeriod.daily: "前一日",
    ReportPeriod.weekly: "上周",
    ReportPeriod.monthly: "上月",
    ReportPeriod.quarterly: "上季度",
}
UNLOCATED = "未定位"
CITY = "全市"
UNCATEGORISED = "未分类"


# -- periods ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """One report period: its local days [first, end) and the same as UTC moments."""

    kind: ReportPeriod
    key: str
    first: dt.date
    end: dt.date
    timezone: str

    @property
    def start_at(self):
        return _local_midnight(self.first, self.timezone)

    @property
    def end_at(self):
        return _local_midnight(self.end, self.timezone)

    @property
    def last(self):
        return self.end - dt.timedelta(days=1)

    @property
    def days(self):
        return (self.end - self.first).days

    @property
    def label(self):
        first = self.first
        if self.kind == ReportPeriod.daily:
            return f"{first.year}年{first.month}月{first.day}日（星期{_WEEKDAYS[first.weekday()]}）"
        if self.kind == ReportPeriod.weekly:
            year, week, _ = first.isocalendar()
            last = self.last
            return f"{year}年第{week}周（{first.month}月{first.day}日—{last.month}月{last.day}日）"
        if self.kind == ReportPeriod.monthly:
            return f"{first.year}年{first.month}月"
        return f"{first.year}年第{_QUARTER_NAMES[(first.month - 1) // 3]}季度"

    @property
    def previous_name(self):
        return _PREVIOUS_NAMES[self.kind]

    def previous(self):
        return period_of(self.kind, self.first - dt.timedelta(days=1), self.timezone)

    def following(self):
        return period_of(self.kind, self.end, self.timezone)


def _local_midnight(day, timezone):
    return dt.datetime.combine(day, dt.time(), ZoneInfo(timezone)).astimezone(dt.UTC)


def parse_kind(text):
    kind = ReportPeriod.parse(text or "")
    if kind is None:
        raise ValidationFailed(
            "报告类型应为 daily、weekly、monthly 或 quarterly（日报、周报、月报、季报）",
            code="ANALYSIS_KIND_INVALID",
            details={"kind": "取值无效"},
        )
    return kind


def parse_period(kind, key, timezone):
    """The period of ``kind`` (a ReportPeriod or its value) named ``key``, or a
    ValidationFailed naming the expected form."""
    kind = parse_kind(kind) if not isinstance(kind, ReportPeriod) else kind
    match = _KEYS[kind].match(str(key or "").strip())
    refused = ValidationFailed(
        f"{kind.label}的期次格式应为 {_KEY_FORMATS[kind]}（{YEARS[0]}—{YEARS[1]}年）",
        code="ANALYSIS_PERIOD_INVALID",
        details={"key": "格式无效"},
    )
    if not match or not YEARS[0] <= int(match.group(1)) <= YEARS[1]:
        raise refused
    year, number = int(match.group(1)), int(match.group(2))
    try:
        if kind == ReportPeriod.daily:
            first = dt.date(year, number, int(match.group(3)))
        elif kind == ReportPeriod.weekly:
            first = dt.date.fromisocalendar(year, number, 1)
        elif kind == ReportPeriod.monthly:
            first = dt.date(year, number, 1)
        else:
            first = dt.date(year, 3 * number - 2, 1)
        return period_of(kind, first, timezone)
    except (ValueError, OverflowError):
        raise refused from None


def period_of(kind, day, timezone):
    """The period of ``kind`` holding the local date ``day``."""
    if kind == ReportPeriod.daily:
        return Period(kind, day.isoformat(), day, day + dt.timedelta(days=1), timezone)
    if kind == ReportPeriod.weekly:
        first = day - dt.timedelta(days=day.weekday())
        year, week, _ = first.isocalendar()
        return Period(kind, f"{year}-W{week:02d}", first, first + dt.timedelta(days=7), timezone)
    if kind == ReportPeriod.monthly:
        first = day.replace(day=1)
        end = first + dt.timedelta(days=calendar.monthrange(day.year, day.month)[1])
        return Period(kind, f"{day.year}-{day.month:02d}", first, end, timezone)
    quarter = (day.month - 1) // 3
    first = dt.date(day.year, 3 * quarter + 1, 1)
    end = dt.date(day.year + 1, 1, 1) if quarter == 3 else dt.date(day.year, 3 * quarter + 4, 1)
    return Period(kind, f"{day.year}-Q{quarter + 1}", first, end, timezone)


def local_today(now, timezone):
    return now.astimezone(ZoneInfo(timezone)).date()


#: Periods a picker offers per kind, newest first.
PICKER_LENGTH = {
    ReportPeriod.daily: 62,
    ReportPeriod.weekly: 27,
    ReportPeriod.monthly: 24,
    ReportPeriod.quarterly: 12,
}


def picker(kind, now, timezone):
    """The periods of ``kind`` a page offers, newest (the current one, so far) first."""
    current = period_of(kind, local_today(now, timezone), timezone)
    periods = [current]
    while len(periods) < PICKER_LENGTH[kind]:
        periods.append(periods[-1].previous())
    return periods


def default_period(kind, now, timezone):
    """The period a report opens on: the last one that has ended."""
    return period_of(kind, local_today(now, timezone), timezone).previous()


# -- scope --------------------------------------------------------------------------------------


def _district(session, code):
    area = session.scalars(
        sa.select(Area).where(Area.code == code, Area.level == AreaLevel.district)
    ).first()
    if area is None:
        raise NotFound(f"没有编码为 {code} 的区县", code="DISTRICT_NOT_FOUND")
    return area


def _scope_conditions(code):
    """Conditions on Ticket for a district's report (none for the city's)."""
    if code is None:
        return []
    inside = sa.select(Area.id).where(Area.code.like(f"{code}%"))
    return [Ticket.area_id.in_(inside)]


# -- counting -----------------------------------------------------------------------------------


def _in(start, end):
    return sa.and_(Ticket.received_at >= start, Ticket.received_at < end)


def _bucket(session):
    """The ticket's received moment as a number of ``_BUCKET`` seconds since 1970 (UTC)."""
    if session.get_bind().dialect.name == "postgresql":
        # date_part is double precision (EXTRACT's numeric is slower to divide).
        epoch = sa.func.date_part("epoch", Ticket.received_at)
        return sa.cast(sa.func.floor(epoch / _BUCKET), sa.BigInteger)
    # SQLite stores UTC text; strftime('%s') reads it as seconds since 1970. ``//``: integer
    # division (``/`` would divide as floats and group by the second).
    return sa.cast(sa.func.strftime("%s", Ticket.received_at), sa.Integer) // _BUCKET


def _change(now, before):
    change = now - before
    return {
        "change": change,
        "change_rate": round(change / before, 4) if before else None,
    }


def _line(code, name, now, before, total):
    return {
        "code": code,
        "name": name,
        "count": now,
        "previous": before,
        **_change(now, before),
        "share": round(now / total, 4) if total else None,
    }


class _Counter:
    """Grouped counts of this and the previous period (one query per dimension)."""

    def __init__(self, session, period, scope):
        self.session = session
        self.period = period
        self.before = period.previous()
        self.scope = _scope_conditions(scope)
        self.current = Ticket.received_at >= period.start_at

    def grouped(self, column):
        """{value: (this period, previous period)} of ``column``."""
        query = (
            sa.select(
                column.label("key"),
                sa.func.count().filter(self.current).label("now"),
                sa.func.count().filter(~self.current).label("before"),
            )
            .where(_in(self.before.start_at, self.period.end_at), *self.scope)
            .group_by(column)
        )
        return {row.key: (row.now, row.before) for row in self.session.execute(query)}

    def series(self):
        """Counts per local hour (daily) or day, for this and the previous period."""
        bucket = _bucket(self.session)
        query = (
            sa.select(bucket.label("bucket"), sa.func.count().label("n"))
            .where(_in(self.before.start_at, self.period.end_at), *self.scope)
            .group_by(bucket)
        )
        zone = ZoneInfo(self.period.timezone)
        hourly = self.period.kind == ReportPeriod.daily
        slots = {}
        for row in self.session.execute(query):
            moment = dt.datetime.fromtimestamp(int(row.bucket) * _BUCKET, zone)
            slot = (moment.date(), moment.hour if hourly else 0)
            slots[slot] = slots.get(slot, 0) + row.n

        def values(period):
            if hourly:
                return [slots.get((period.first, h), 0) for h in range(24)]
            return [
                slots.get((period.first + dt.timedelta(days=i), 0), 0) for i in range(period.days)
            ]

        if hourly:
            labels = [f"{h:02d}时" for h in range(24)]
        else:
            days = [self.period.first + dt.timedelta(days=i) for i in range(self.period.days)]
            labels = [f"{d.month}月{d.day}日" for d in days]
        return {
            "unit": "hour" if hourly else "day",
            "labels": labels,
            "current": values(self.period),
            "previous": values(self.before),
        }


def _lines(counts, names, total, *, order=None):
    rows = [
        _line(code, names.get(code, code), now, before, total)
        for code, (now, before) in counts.items()
        if now or before
    ]
    rows.sort(key=order or (lambda r: (-r["count"], -r["previous"], str(r["code"]))))
    return rows


def _rollup(counts, key_of):
    """Sum {key: (now, before)} into {key_of(key): (now, before)}."""
    result = {}
    for key, (now, before) in counts.items():
        target = key_of(key)
        old = result.get(target, (0, 0))
        result[target] = (old[0] + now, old[1] + before)
    return result


def _rising(lines, minimum):
    found = [r for r in lines if r["code"] and r["count"] >= minimum and r["count"] > r["previous"]]
    for r in found:
        r["growth"] = round((r["count"] - r["previous"]) / max(r["previous"], 1), 4)
    found.sort(key=lambda r: (-r["growth"], -r["change"], str(r["code"])))
    return found[:TOP]


class _Names:
    """Categories and areas by id (small tables, read once per report)."""

    def __init__(self, session):
        self.categories = {
            row.id: (row.code, row.name)
            for row in session.execute(sa.select(Category.id, Category.code, Category.name))
        }
        self.category_names = {code: name for code, name in self.categories.values()}
        self.areas = {
            row.id: (row.code, row.name)
            for row in session.execute(sa.select(Area.id, Area.code, Area.name))
        }
        self.area_names = {code: name for code, name in self.areas.values()}

    def category_code(self, category_id, length):
        if category_id is None or category_id not in self.categories:
            return None
        code = self.categories[category_id][0]
        return code[:length] if len(code) >= length else code[:2] + "·"

    def name_of(self, category_id):
        """The category's own name (any level)."""
        found = self.categories.get(category_id)
        return found[1] if found else UNCATEGORISED

    def category_label(self, code):
        if code is None:
            return UNCATEGORISED
        if code.endswith("·"):
            return f"{self.category_names.get(code[:2], code[:2])}（未细分）"
        return self.category_names.get(code, code)

    def area_code(self, area_id, length):
        if area_id is None or area_id not in self.areas:
            return None
        code = self.areas[area_id][0]
        return code[:length] if len(code) >= length else None

    def area_label(self, code):
        if code is None:
            return UNLOCATED
        name = self.area_names.get(code, code)
        if len(code) > 6 and code[:6] in self.area_names:
            return f"{self.area_names[code[:6]]}·{name}"
        return name


def _volume(session, period, scope, names):
    counter = _Counter(session, period, scope)
    channel = counter.grouped(Ticket.channel)
    total_now = sum(now for now, _ in channel.values())
    total_before = sum(before for _, before in channel.values())
    channel_names = {c: c.label for c in Channel}
    channels = _lines(channel, channel_names, total_now)
    for row in channels:
        row["code"] = row["code"].value
    types = _lines(
        counter.grouped(Ticket.request_type), {t: t.label for t in RequestType}, total_now
    )
    for row in types:
        row["code"] = row["code"].value
    by_category = counter.grouped(Ticket.category_id)
    by_area = counter.grouped(Ticket.area_id)

    def categories(length):
        counts = _rollup(by_category, lambda i: names.category_code(i, length))
        labels = {code: names.category_label(code) for code in counts}
        return _lines(counts, labels, total_now)

    def areas(length):
        counts = _rollup(by_area, lambda i: names.area_code(i, length))
        labels = {code: names.area_label(code) for code in counts}
        return _lines(counts, labels, total_now)

    level2 = categories(4)
    area_length = 9 if scope else 6
    places = areas(9) + areas(12)
    minimum = RISING_MIN_COUNT[period.kind]
    return {
        "totals": {
            "received": total_now,
            "previous": total_before,
            **_change(total_now, total_before),
        },
        "series": counter.series(),
        "breakdowns": {
            "channel": channels,
            "request_type": types,
            "category1": categories(2),
            "category2": level2,
            "area": areas(area_length),
        },
        "rising": {
            "min_count": minimum,
            "categories": _rising([dict(r) for r in level2], minimum),
            "places": _rising([dict(r) for r in places if r["code"]], minimum),
        },
    }


def _hot_issues(session, period, scope):
    in_period = sa.func.count(HotIssueTicket.ticket_id)
    query = (
        sa.select(HotIssue, in_period.label("in_period"))
        .join(HotIssueTicket, HotIssueTicket.hot_issue_id == HotIssue.id)
        .join(Ticket, Ticket.id == HotIssueTicket.ticket_id)
        .where(
            _in(period.start_at, period.end_at),
            HotIssue.state != HotIssueState.merged,
            *_scope_conditions(scope),
        )
        .group_by(HotIssue.id)
        .order_by(HotIssue.heat.desc(), HotIssue.id)
        .limit(TOP)
        .options(sa.orm.selectinload(HotIssue.category), sa.orm.selectinload(HotIssue.district))
    )
    total = session.scalar(
        sa.select(sa.func.count(sa.distinct(HotIssueTicket.hot_issue_id)))
        .join(HotIssue, HotIssue.id == HotIssueTicket.hot_issue_id)
        .join(Ticket, Ticket.id == HotIssueTicket.ticket_id)
        .where(
            _in(period.start_at, period.end_at),
            HotIssue.state != HotIssueState.merged,
            *_scope_conditions(scope),
        )
    )
    rows = []
    for issue, count in session.execute(query):
        rows.append(
            {
                "id": issue.id,
                "title": issue.title,
                "place": issue.place,
                "state": issue.state.value,
                "state_label": issue.state.label,
                "heat": round(issue.heat, 2),
                "size": issue.size,
                "callers": issue.callers,
                "in_period": count,
                "category": issue.category.name if issue.category else None,
                "district": issue.district.name if issue.district else None,
                "first_at": issue.first_at.isoformat(),
                "last_at": issue.last_at.isoformat(),
            }
        )
    return {"total": total or 0, "top": rows}


def _repeat_callers(session, period, scope, names):
    where = [
        _in(period.start_at, period.end_at),
        Ticket.requester_phone.is_not(None),
        Ticket.requester_phone != "",
        *_scope_conditions(scope),
    ]
    grouped = (
        sa.select(
            Ticket.requester_phone.label("phone"),
            sa.func.count().label("n"),
            sa.func.min(Ticket.received_at).label("first"),
            sa.func.max(Ticket.received_at).label("last"),
        )
        .where(*where)
        .group_by(Ticket.requester_phone)
        .having(sa.func.count() >= 2)
    )
    # One pass: the top callers, and over every group how many callers and tickets.
    groups = grouped.subquery()
    top = session.execute(
        sa.select(
            groups,
            sa.func.count().over().label("callers"),
            sa.func.sum(groups.c.n).over().label("tickets"),
        )
        .order_by(groups.c.n.desc(), groups.c.phone)
        .limit(TOP)
    ).all()
    callers = top[0].callers if top else 0
    tickets = top[0].tickets if top else 0
    categories = {}
    if top:
        rows = session.execute(
            sa.select(Ticket.requester_phone, Ticket.category_id, sa.func.count())
            .where(*where, Ticket.requester_phone.in_([r.phone for r in top]))
            .group_by(Ticket.requester_phone, Ticket.category_id)
        ).all()
        for phone, category_id, n in rows:
            categories.setdefault(phone, Counter())[names.name_of(category_id)] += n
    return {
        "callers": callers,
        "tickets": int(tickets),
        "top": [
            {
                "phone": mask_phone(r.phone),
                "count": r.n,
                "first_at": _aware(r.first).isoformat(),
                "last_at": _aware(r.last).isoformat(),
                "categories": [
                    {"name": name, "count": n}
                    for name, n in categories.get(r.phone, Counter()).most_common(3)
                ],
            }
            for r in top
        ],
    }


def _aware(moment):
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _repeats(session, period, scope):
    where = [_in(period.start_at, period.end_at), *_scope_conditions(scope)]
    merged_count, reopened_count = session.execute(
        sa.select(
            sa.func.count().filter(Ticket.merged_into_id.is_not(None)),
            sa.func.count().filter(Ticket.reopen_count > 0),
        ).where(*where)
    ).one()
    target = sa.orm.aliased(Ticket)
    merged = session.execute(
        sa.select(target.number, target.title, sa.func.count().label("n"))
        .select_from(Ticket)
        .join(target, target.id == Ticket.merged_into_id)
        .where(*where, Ticket.merged_into_id.is_not(None))
        .group_by(target.id, target.number, target.title)
        .order_by(sa.func.count().desc(), target.number)
        .limit(TOP)
    ).all()
    reopened = session.execute(
        sa.select(Ticket.number, Ticket.title, Ticket.reopen_count, Unit.name)
        .outerjoin(Unit, Unit.id == Ticket.lead_unit_id)
        .where(*where, Ticket.reopen_count > 0)
        .order_by(Ticket.reopen_count.desc(), Ticket.received_at, Ticket.id)
        .limit(TOP)
    ).all()
    return {
        "merged": merged_count,
        "reopened": reopened_count,
        "merged_into": [
            {"number": n, "title": scrub_personal(t), "merged": count} for n, t, count in merged
        ],
        "reopened_tickets": [
            {"number": n, "title": scrub_personal(t), "reopen_count": c, "unit": u}
            for n, t, c, u in reopened
        ],
    }


_QUALITY_COUNTS = ("dispatched", "rated", "solved", "partly", "satisfied", "basically")
_QUALITY_RATES = ("resolution_rate", "satisfaction_rate", "response_rate")


def _quality_line(code, name, counts, settings):
    rates = ranking.compute_rates(counts, settings)
    return {
        "code": code,
        "name": name,
        "counts": {k: counts[k] for k in _QUALITY_COUNTS},
        "rates": {k: rates[k] for k in _QUALITY_RATES},
    }


def _quality(session, period, scope, as_of, names):
    """Resolution and satisfaction by category and unit: the ranking's counts and rates."""
    settings = ranking.Settings.from_settings(session)
    where = _scope_conditions(scope)
    start, end = period.start_at, period.end_at
    by_unit = ranking.count_tickets(session, start, end, as_of, by="unit", where=where)
    by_category = ranking.count_tickets(session, start, end, as_of, by="category", where=where)
    units = dict(
        session.execute(sa.select(Unit.id, Unit.name).where(Unit.id.in_(list(by_unit)))).all()
    )
    unit_codes = dict(
        session.execute(sa.select(Unit.id, Unit.code).where(Unit.id.in_(list(by_unit)))).all()
    )

    def category_lines(length):
        grouped = {}
        for category_id, counts in by_category.items():
            grouped.setdefault(names.category_code(category_id, length), []).append(counts)
        lines = [
            _quality_line(code, names.category_label(code), ranking.add_counts(c), settings)
            for code, c in grouped.items()
        ]
        lines.sort(key=lambda r: (-r["counts"]["dispatched"], str(r["code"])))
        return lines

    # A unit that only returned its tickets has none to rate.
    unit_lines = [
        _quality_line(unit_codes[i], units[i], counts, settings)
        for i, counts in by_unit.items()
        if counts["dispatched"]
    ]
    unit_lines.sort(key=lambda r: (-r["counts"]["dispatched"], r["code"]))
    total = _quality_line(None, "合计", ranking.add_counts(by_unit.values()), settings)
    return {
        "settings": settings.as_dict(),
        "total": total,
        "by_category1": category_lines(2),
        "by_category2": category_lines(4),
        "by_unit": unit_lines,
    }


# -- keywords -----------------------------------------------------------------------------------

_DIGITS = re.compile(r"^[\d.%-]+$")
#: Words nearly every ticket has, beyond the classifier's stop words: parts of an address and
#: how a request is phrased (the most frequent words of the demo history that say nothing
#: about the matter). Place names are left out too (``_place_words``): places have their
#: own tables.
REPORT_STOP_WORDS = frozenset(
    """
    街道 社区 小区 村 镇 乡 区 市 县 路 街 号 号楼 单元 楼 东街 西街 南街 北街 大街 中街 东路
    西路 南路 北路 附近 周边 门口 这里 那里 位置 地址 现场 部门 有关 相关 有关部门 相关部门
    单位 工作人员 尽快 处理 解决 安排 协调 落实 请求 恳请 麻烦 帮忙 帮助 一下 了解 咨询 询问
    想问 不知 知道 告知 回复 答复 回电 联系 情况 事情 目前 现在 已经 一直 多次 好几天 几天
    很多 非常 比较 特别 严重 影响 一家 我们 他们 自己 大家 没有 不能 无法 可以 需要 应该 是否
    怎么 如何 为什么 时候 时间 今天 昨天 最近 晚上 白天 每天 每次 之前 之后 以后 以前 反映
    表示 称 人称 说 要求 希望 市民 来电 来电人 诉求人 诉求 问题 领导 尊敬 担心 经常 督促
    """.split()
)
_PLACE_SUFFIXES = (
    "街道办事处",
    "街道",
    "社区",
    "居委会",
    "村委会",
    "区",
    "县",
    "市",
    "镇",
    "乡",
    "村",
)


def words(text, stop=REPORT_STOP_WORDS):
    """The distinct meaningful words of one ticket's text (jieba, stop words dropped)."""
    text = normalize(text or "").replace(PHONE_TOKEN, " ").replace(ID_TOKEN, " ")
    return {
        w for w in knowledge.terms(text) if len(w) >= 2 and w not in stop and not _DIGITS.match(w)
    }


def _place_words(names):
    """The area names, their short forms (奎文区 and 奎文), and the words of district and
    street names (潍坊滨海经济技术开发区: 潍坊, 滨海, 经济 …)."""
    found = set()
    for code, name in names.area_names.items():
        found.add(name)
        for suffix in _PLACE_SUFFIXES:
            if name.endswith(suffix) and len(name) - len(suffix) >= 2:
                found.add(name[: -len(suffix)])
                break
        if len(code) <= 9:
            found.update(knowledge.terms(name))
    return frozenset(found)


def _keyword_counts(session, period, scope, stop):
    """(Counter of tickets per word, tickets in the period, tickets read)."""
    where = [_in(period.start_at, period.end_at), *_scope_conditions(scope)]
    total = session.scalar(sa.select(sa.func.count()).select_from(Ticket).where(*where))
    stride = max(1, math.ceil(total / KEYWORD_SAMPLE))
    query = sa.select(Ticket.title, sa.func.substr(Ticket.content, 1, CONTENT_CHARS)).where(*where)
    if stride > 1:
        query = query.where(Ticket.id % stride == 0)
    counts = Counter()
    read = 0
    for title, content in session.execute(query):
        read += 1
        counts.update(words(f"{title} {content or ''}", stop))
    return counts, total, read


#: Seconds the keywords of a period are reused while its tickets stay as they were.
KEYWORD_CACHE_SECONDS = 60
#: Most periods whose keywords are kept.
KEYWORD_CACHE_SIZE = 64
_keyword_cache = {}
_keyword_lock = threading.Lock()
_clock = time.monotonic


def _ticket_fingerprint(session, period, scope):
    """What the keywords of ``period`` and the previous one are read from, in one number set:
    the tickets' count, highest id and sum of versions (every change of a ticket goes
    through the ORM and bumps its version; tickets are never deleted)."""
    row = session.execute(
        sa.select(sa.func.count(), sa.func.max(Ticket.id), sa.func.sum(Ticket.version)).where(
            _in(period.previous().start_at, period.end_at), *_scope_conditions(scope)
        )
    ).one()
    return tuple(int(v or 0) for v in row)


def clear_keyword_cache():
    with _keyword_lock:
        _keyword_cache.clear()


def _keywords(session, period, scope, names):
    """The keywords, reused for ``KEYWORD_CACHE_SECONDS`` while the period's tickets (and the
    place names left out) are unchanged: reading the texts is the report's slowest part
    (about 3 s for 2 × 2,000 tickets), and the page and its XLSX file ask for it in turn."""
    stop = REPORT_STOP_WORDS | _place_words(names)
    engine = session.get_bind().engine
    key = (str(engine.url), id(engine), period, scope, stop, KEYWORD_SAMPLE, CONTENT_CHARS)
    fingerprint = _ticket_fingerprint(session, period, scope)
    moment = _clock()
    with _keyword_lock:
        kept = _keyword_cache.get(key)
    if kept is not None and kept[1] == fingerprint and moment - kept[0] < KEYWORD_CACHE_SECONDS:
        return copy.deepcopy(kept[2])
    result = _read_keywords(session, period, scope, stop)
    with _keyword_lock:
        for old in [k for k, v in _keyword_cache.items() if moment - v[0] >= KEYWORD_CACHE_SECONDS]:
            del _keyword_cache[old]
        if len(_keyword_cache) >= KEYWORD_CACHE_SIZE:
            _keyword_cache.pop(next(iter(_keyword_cache)))
        _keyword_cache[key] = (moment, fingerprint, copy.deepcopy(result))
    return result


def _read_keywords(session, period, scope, stop):
    now, now_total, now_read = _keyword_counts(session, period, scope, stop)
    before, before_total, before_read = _keyword_counts(session, period.previous(), scope, stop)

    def scaled(counter, word, total, read):
        return round(counter.get(word, 0) * total / read) if read else 0

    rows = []
    for word, _ in sorted(now.items(), key=lambda kv: (-kv[1], kv[0]))[:KEYWORDS]:
        count = scaled(now, word, now_total, now_read)
        previous = scaled(before, word, before_total, before_read)
        rows.append(
            {"word": word, "count": count, "previous": previous, **_change(count, previous)}
        )
    return {
        "sample": KEYWORD_SAMPLE,
        "content_chars": CONTENT_CHARS,
        "current": {"tickets": now_total, "read": now_read},
        "previous": {"tickets": before_total, "read": before_read},
        "estimated": now_read < now_total or before_read < before_total,
        "rows": rows,
    }


# -- the report ---------------------------------------------------------------------------------


def compute(session, period, *, scope=None, as_of):
    """The live report of ``period`` (a Period) for the city (``scope`` None) or one district
    (its 6-digit code), as of ``as_of``: a JSON-ready dict."""
    scope_name = CITY if scope is None else _district(session, scope).name
    names = _Names(session)
    before = period.previous()
    volume = _volume(session, period, scope, names)
    report = {
        "version": VERSION,
        "kind": period.kind.value,
        "kind_label": period.kind.label,
        "key": period.key,
        "label": period.label,
        "title": f"{scope_name}12345热线民情分析{period.kind.label}（{period.label}）",
        "scope": {"code": scope, "name": scope_name},
        "period": _period_dict(period),
        "previous": {**_period_dict(before), "name": period.previous_name},
        "as_of": as_of.isoformat(),
        **volume,
        "hot_issues": _hot_issues(session, period, scope),
        "repeat_callers": _repeat_callers(session, period, scope, names),
        "repeats": _repeats(session, period, scope),
        "quality": _quality(session, period, scope, as_of, names),
        "keywords": _keywords(session, period, scope, names),
        "published": None,
    }
    report["summary"] = summarise(report)
    return report


def _period_dict(period):
    return {
        "key": period.key,
        "label": period.label,
        "start": period.start_at.isoformat(),
        "end": period.end_at.isoformat(),
        "first_day": period.first.isoformat(),
        "last_day": period.last.isoformat(),
    }


def _pct(rate):
    return f"{rate * 100:.1f}%"


def _changed(change, rate, previous_name):
    if change == 0:
        return f"与{previous_name}持平"
    word = "增加" if change > 0 else "减少"
    text = f"较{previous_name}{word}{abs(change)}件"
    if rate is not None:
        text += f"（{'+' if change > 0 else '−'}{_pct(abs(rate))}）"
    return text


def summarise(report):
    """The summary paragraph (Chinese) from the report's figures."""
    previous_name = report["previous"]["name"]
    totals = report["totals"]
    parts = [
        f"{report['label']}，{report['scope']['name']}12345热线共受理群众诉求{totals['received']}件，"
        f"{_changed(totals['change'], totals['change_rate'], previous_name)}。"
    ]
    breakdowns = report["breakdowns"]
    types = [r for r in breakdowns["request_type"] if r["count"]][:3]
    if types:
        parts.append(
            "按诉求类型，"
            + "、".join(f"{r['name']}{r['count']}件（占{_pct(r['share'])}）" for r in types)
            + "。"
        )
    top = [r for r in breakdowns["category2"] if r["count"] and r["code"]][:3]
    if top:
        parts.append(
            "诉求量居前的事项是" + "、".join(f"{r['name']}（{r['count']}件）" for r in top) + "。"
        )
    rising = report["rising"]["categories"][:3]
    if rising:
        parts.append(
            f"与{previous_name}相比上升最快的是"
            + "、".join(f"{r['name']}（由{r['previous']}件增至{r['count']}件）" for r in rising)
            + "。"
        )
    places = report["rising"]["places"][:2]
    if places:
        parts.append(
            "诉求增长较快的地区有"
            + "、".join(f"{r['name']}（{r['previous']}件→{r['count']}件）" for r in places)
            + "。"
        )
    hot = report["hot_issues"]
    if hot["top"]:
        parts.append(
            f"本期涉及热点问题{hot['total']}个，主要有"
            + "、".join(f"“{h['title']}”（本期{h['in_period']}件）" for h in hot["top"][:3])
            + "。"
        )
    quality = report["quality"]["total"]
    counts, rates = quality["counts"], quality["rates"]
    if counts["rated"]:
        parts.append(
            f"派单办理{counts['dispatched']}件，有效回访{counts['rated']}件，"
            f"解决率{_pct(rates['resolution_rate'])}，满意率{_pct(rates['satisfaction_rate'])}。"
        )
    elif counts["dispatched"]:
        parts.append(f"派单办理{counts['dispatched']}件，暂无有效回访。")
    callers, repeats = report["repeat_callers"], report["repeats"]
    if callers["callers"] or repeats["merged"] or repeats["reopened"]:
        parts.append(
            f"重复来电{callers['callers']}人（共{callers['tickets']}件），"
            f"并单{repeats['merged']}件，重办{repeats['reopened']}件。"
        )
    return "".join(parts)


# -- live or published --------------------------------------------------------------------------


def published(session, period):
    return session.scalars(
        sa.select(AnalysisReport).where(
            AnalysisReport.period == period.kind, AnalysisReport.period_key == period.key
        )
    ).first()


def from_published(stored):
    """The report a published row holds (its figures as computed then, its summary as
    published)."""
    report = dict(stored.data)
    report["summary"] = stored.summary
    report["published"] = {
        "at": stored.published_at.isoformat(),
        "by": stored.published_by.name if stored.published_by else None,
    }
    return report


def load(session, period, *, scope=None, now):
    """The city's published report of the period if there is one, else computed live as of
    ``now`` (a district's report is always live)."""
    if scope is None:
        stored = published(session, period)
        if stored is not None:
            return from_published(stored)
    return compute(session, period, scope=scope, as_of=now)


#: Longest summary a publisher may write.
SUMMARY_MAX = 4000


def publish_refusal(session, user, period, *, scope=None, now):
    """Why ``user`` may not publish the report of ``period`` for ``scope`` now (the error
    ``publish`` raises), or None when they may: the rule the page's publish form and
    ``publish`` both follow. Only the city's report (``scope`` None) is published, by
    ``access.may_publish_analysis``, once, after the period ended."""
    if not access.may_publish_analysis(user) or scope is not None:
        return Forbidden(
            "只有督办审核员和市级领导可以发布民情分析报告", code="ANALYSIS_PUBLISH_FORBIDDEN"
        )
    name = f"{period.label}{period.kind.label}"
    if published(session, period) is not None:
        return Conflict(f"{name}已发布，不能重复发布", code="ANALYSIS_ALREADY_PUBLISHED")
    if now < period.end_at:
        return Conflict(f"{name}的统计期尚未结束，不能发布", code="ANALYSIS_PERIOD_NOT_OVER")
    return None


def may_publish(session, user, period, *, scope=None, now):
    return publish_refusal(session, user, period, scope=scope, now=now) is None


def publish(session, actor, period, key=None, summary=None, *, now, timezone=DEFAULTS["TIMEZONE"]):
    """Publish (发布) the city's report of ``period`` (a Period, or a kind with its ``key``:
    ``publish(s, actor, "quarterly", "2026-Q4", …)``): compute it now and store every figure,
    so later tickets and callbacks no longer move it. Once per period, only after it ended;
    ``summary`` is the publisher's edited paragraph (None: the generated one). Audited; the
    caller commits. Returns the published report."""
    if key is not None:
        period = parse_period(period, key, timezone)
    refused = publish_refusal(session, actor, period, now=now)
    if refused is not None:
        raise refused
    name = f"{period.label}{period.kind.label}"
    if summary is not None:
        if isinstance(summary, str) and not summary.strip():
            raise ValidationFailed("摘要不能为空", details={"summary": "请填写摘要"})
        fields = Fields({"summary": summary})
        summary = fields.text("summary", "摘要", max_len=SUMMARY_MAX, multiline=True)
        fields.check()
    report = compute(session, period, as_of=now)
    generated = report["summary"]
    row = AnalysisReport(
        period=period.kind,
        period_key=period.key,
        period_start=period.start_at,
        period_end=period.end_at,
        data={k: v for k, v in report.items() if k not in ("summary", "published")},
        summary=summary if summary is not None else generated,
        published_at=now,
        published_by_id=actor.id,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except sa.exc.IntegrityError:
        raise Conflict(f"{name}已发布，不能重复发布", code="ANALYSIS_ALREADY_PUBLISHED") from None
    audit(
        session,
        actor,
        "analysis.publish",
        target=f"{period.kind.value}:{period.key}",
        payload={
            "report": row.id,
            "received": report["totals"]["received"],
            "summary_edited": row.summary != generated,
        },
    )
    return from_published(row)
