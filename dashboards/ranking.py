"""The mayor's monthly ranking (DOMAIN.md §5): counts, rates, composite score and places.

Everything is computed from counts, and every count is kept, so any weighting can be
replayed and every rate explained down to the ticket. This module is the one place the
definitions live; the report page prints ``DEFINITIONS`` and ``bench/rank.py`` checks the
SQL against an independent pandas implementation of the same text.

**Which tickets.** A month is a local calendar month (``TIMEZONE``). A ticket belongs to the
month it was received in (``received_at``), and counts for the unit that leads it now
(``lead_unit_id``): a ticket returned and re-dispatched counts for the unit that finally
handled it, and for the returning unit only in its return rate. Tickets never dispatched
(answered at intake, transferred, merged into another) are in no unit's counts. A reviewer's
exemption (``scoring_exempt``) takes a ticket out of every count but ``exempt``.

**Counts per unit** (over its non-exempt tickets of the month, ``as_of`` = the moment of
computation):

- ``dispatched`` — tickets it leads.
- ``responded`` — signed by the sign deadline, and the requester contacted by the contact
  deadline (no phone: nothing to contact).
- ``response_pending`` — still being handled, not responded, and neither deadline passed
  yet (a deadline passes the moment after it; acting at the deadline is on time): too early
  to judge, so left out of the response denominator.
- ``rated`` — the requester answered the callback; ``solved`` / ``partly`` / ``unsolved`` and
  ``satisfied`` / ``basically`` / ``dissatisfied`` split it. Unreachable requesters are not
  rated. After a reopen the new callback replaces the old one.
- ``overdue`` — finished after the finish deadline (extensions included), or not finished
  when the deadline passed (still open, or terminated only after it).
- ``reopened`` — sent back at least once after callback (重办).
- ``repeat`` — at least one later report of the same matter was merged into it (并单).
- ``return_base`` / ``returned`` — tickets it led at some point / of those, the ones it
  asked to return (退单), whether or not the return was upheld.
- ``review_returned`` — tickets it leads whose reply the hotline's reviewer sent back at
  least once while it led them (审核退回: a ``return_reply`` event whose ``unit_id`` is the
  unit), up to ``as_of``.

**Summonses** (吹哨报到, ``hotline.models.Summons``) are counted by the month they were
issued in (local month of ``summoned_at``), for the summoned department, whatever month
their ticket was received in (an exempt ticket's summonses are not counted):

- ``summoned`` — summonses whose outcome is known as of ``as_of``: on time, or late. A
  deadline missed is one passed (the moment after it) without the act while the summons
  was still open (``reported_at`` / ``opinion_at`` empty and the deadline before
  ``cancelled_at``, or before ``as_of`` if not cancelled), or an act after its deadline. A
  summons still open with no deadline missed, or withdrawn (``cancelled_at``) before any
  deadline was missed, is not counted.
- ``summons_on_time`` — of those, reported by ``report_due`` and the opinion given by
  ``opinion_due``.

The deadlines are those of the ticket's current clock (a reopen starts a new one).

**Rates** (None when the denominator is 0):

- 响应率 = responded ÷ (dispatched − response_pending)
- 解决率 = (solved + partly × 部分解决折算) ÷ rated
- 满意率 = (satisfied + basically × 基本满意折算) ÷ rated
- 综合得分 = 100 × weighted mean of the three, rounded to 2 decimals (half up)
- 退单率 = returned ÷ return_base; 重办率, 超期率, 重复来电率, 审核退回率 = reopened,
  overdue, repeat, review_returned ÷ dispatched
- 报到及时率 = summons_on_time ÷ summoned

审核退回率 and 报到及时率 are reported beside the others; they are not in the composite.

**Classes.** Streets/towns, city departments and utilities are ranked on their own tickets.
A district is ranked on its government's tickets plus those of its streets and towns: its
counts are the sums of theirs, so a ticket passed from one of its streets to another is in
the district's return base twice, once per unit that was given it. The mayor's office
(``MAYORS_OFFICE_UNIT``) is not ranked; a unit no longer active is listed only when it has
counts in the month.

**Places.** A unit is ranked when it has at least ``min_sample`` dispatched tickets,
one rated ticket and one judged response. Places follow the rounded score, highest first;
equal scores share a place and the next place is skipped (1, 2, 2, 4). The red list is the
top k, the black list the bottom k of the others, k = min(``list_size``, ranked ÷ 2
rounded down); a tie at the edge of a list joins it whole.
"""

import datetime as dt
from dataclasses import dataclass, field, fields
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm

from dispatch.states import IN_HANDLING
from hotline import settings as hotline_settings
from hotline.audit import audit
from hotline.config import DEFAULTS
from hotline.enums import (
    AssignmentRole,
    ListMark,
    RankingClass,
    Satisfaction,
    Solved,
    UnitKind,
)
from hotline.errors import Conflict, ValidationFailed
from hotline.models import (
    Area,
    Assignment,
    RankingRow,
    RankingSnapshot,
    Summons,
    Ticket,
    TicketEvent,
    Unit,
    User,
    unit_areas,
)
from hotline.schemas import DAY_YEARS, month_days, month_of_text

#: The counts, in report order. Each is stored with every ranking.
COUNTS = (
    "dispatched",
    "exempt",
    "response_pending",
    "responded",
    "rated",
    "solved",
    "partly",
    "unsolved",
    "satisfied",
    "basically",
    "dissatisfied",
    "overdue",
    "reopened",
    "repeat",
    "return_base",
    "returned",
    "review_returned",
    "summoned",
    "summons_on_time",
)
#: The rates and the score, in report order.
RATES = (
    "response_rate",
    "resolution_rate",
    "satisfaction_rate",
    "composite",
    "return_rate",
    "reopen_rate",
    "overdue_rate",
    "repeat_rate",
    "review_return_rate",
    "summons_on_time_rate",
)
LABELS = {
    "dispatched": "派单量",
    "exempt": "豁免量",
    "response_pending": "响应未到期",
    "responded": "按时响应",
    "rated": "有效回访",
    "solved": "解决",
    "partly": "部分解决",
    "unsolved": "未解决",
    "satisfied": "满意",
    "basically": "基本满意",
    "dissatisfied": "不满意",
    "overdue": "超期",
    "reopened": "重办",
    "repeat": "重复来电",
    "return_base": "曾承办",
    "returned": "退单",
    "review_returned": "审核退回",
    "summoned": "吹哨被召",
    "summons_on_time": "报到及时",
    "response_rate": "响应率",
    "resolution_rate": "解决率",
    "satisfaction_rate": "满意率",
    "composite": "综合得分",
    "return_rate": "退单率",
    "reopen_rate": "重办率",
    "overdue_rate": "超期率",
    "repeat_rate": "重复来电率",
    "review_return_rate": "审核退回率",
    "summons_on_time_rate": "报到及时率",
}

#: The definitions as the report page prints them (Chinese, for the people who read it).
DEFINITIONS = [
    ("统计范围", "当月受理、已派单的工单，计入当前主办单位；考核豁免工单不计入任何比率。"),
    ("响应率", "签收与联系诉求人均在时限内的工单 ÷ （派单量 − 响应未到期工单）。"),
    ("解决率", "（解决 + 部分解决 × 折算系数）÷ 有效回访量；未接通、拒访不计入。"),
    ("满意率", "（满意 + 基本满意 × 折算系数）÷ 有效回访量。"),
    ("综合得分", "三率按权重加权平均 × 100，保留两位小数（四舍五入）。"),
    ("退单率", "本单位申请退单的工单 ÷ 本单位曾主办的工单（不论退单是否获准）。"),
    ("重办率", "回访后被退回重办过的工单 ÷ 派单量。"),
    (
        "超期率",
        "超过办结时限（含批准延期）才办结、或办结时限已过仍未办结（含过期后终止）的工单 ÷ 派单量。",
    ),
    ("重复来电率", "有后续来电被并入的工单 ÷ 派单量。"),
    (
        "审核退回率",
        "本单位主办期间答复被热线办结审核退回过（至少一次）的工单 ÷ 派单量。不计入综合得分。",
    ),
    (
        "报到及时率",
        "当月（按吹哨时间）被吹哨召集、结果已定的次数中，按时报到且按时反馈意见的次数 ÷ "
        "结果已定的次数；仍在时限内的、未逾时即撤回的不计。豁免工单上的吹哨不计。"
        "不计入综合得分。",
    ),
    (
        "区县",
        "区政府及其所辖街道乡镇各项计数之和（在区内单位间转派的工单，在退单率分母中按单位各计一次）。",
    ),
    (
        "排名",
        "样本量达标者按综合得分排名，同分同名次；红榜为前 k 名，黑榜为其余单位中的后 k 名，"
        "k = min(榜单人数, 参与排名单位数 ÷ 2)，榜单边界同分者一并列入。",
    ),
]

#: The keys of the ranking's settings in ``hotline.settings``.
SETTINGS_PREFIX = "ranking."


def _default(name):
    return hotline_settings.DEFINITIONS[SETTINGS_PREFIX + name].default


@dataclass(frozen=True)
class Settings:
    """Weights and thresholds of a ranking (stored with every frozen snapshot). An
    administrator sets them (``hotline.settings``, keys ``ranking.*``, the 考核设置 page); a
    change applies from the next computation, and a frozen month keeps the values it was
    frozen with."""

    weight_response: int = _default("weight_response")
    weight_resolution: int = _default("weight_resolution")
    weight_satisfaction: int = _default("weight_satisfaction")
    partly_solved_percent: int = _default("partly_solved_percent")
    basically_satisfied_percent: int = _default("basically_satisfied_percent")
    min_sample: int = _default("min_sample")
    list_size: int = _default("list_size")

    @classmethod
    def from_settings(cls, session):
        """The values in force now (the administrators' settings table, else code
        defaults)."""
        values = hotline_settings.group(session, SETTINGS_PREFIX)
        return cls(**{f.name: values[f.name] for f in fields(cls)})

    def as_dict(self):
        return dict(self.__dict__)


@dataclass
class Row:
    """One unit's line: its counts, the rates computed from them and its place."""

    ranking_class: RankingClass
    unit_id: int
    unit_code: str
    unit_name: str
    counts: dict
    rates: dict = field(default_factory=dict)
    rank: int | None = None
    unranked_reason: str | None = None
    list_mark: ListMark | None = None
    prev_rank: int | None = None
    prev_composite: float | None = None

    @property
    def rank_change(self):
        """Places gained since last month (negative: lost)."""
        if self.rank is None or self.prev_rank is None:
            return None
        return self.prev_rank - self.rank

    @property
    def composite_change(self):
        composite = self.rates.get("composite")
        if composite is None or self.prev_composite is None:
            return None
        return round(composite - self.prev_composite, 2)


@dataclass
class Ranking:
    month: str
    period_start: dt.datetime
    period_end: dt.datetime
    as_of: dt.datetime
    settings: Settings
    rows: dict  # RankingClass → [Row], in place order
    totals: dict
    exemptions: list
    #: When the ranking was frozen (None: computed live from today's data).
    frozen_at: dt.datetime | None = None

    def ranked(self, ranking_class):
        return [r for r in self.rows[ranking_class] if r.rank is not None]


# -- periods ----------------------------------------------------------------------------------


def parse_month(text):
    """``YYYY-MM`` → (year, month), or a ValidationFailed naming the parameter
    (``hotline.schemas.month_of_text``: years 2000–2100)."""
    month = month_of_text(text)
    if month is None:
        raise ValidationFailed(
            f"月份格式应为 YYYY-MM，例如 2026-10（{DAY_YEARS[0]}–{DAY_YEARS[1]} 年）",
            details={"month": "格式应为 YYYY-MM"},
        )
    return month


def month_bounds(month, timezone=DEFAULTS["TIMEZONE"]):
    """The local month as a UTC interval [start, end)."""
    first, following = month_days(parse_month(month))
    zone = ZoneInfo(timezone)
    start = dt.datetime.combine(first, dt.time(), tzinfo=zone)
    end = dt.datetime.combine(following, dt.time(), tzinfo=zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def previous_month(month):
    year, number = parse_month(month)
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"


def month_of(moment, timezone=DEFAULTS["TIMEZONE"]):
    """The local month (``YYYY-MM``) a UTC moment falls in."""
    local = moment.astimezone(ZoneInfo(timezone))
    return f"{local.year}-{local.month:02d}"


def month_label(month):
    """``2026-11`` → ``2026年11月``."""
    year, number = parse_month(month)
    return f"{year}年{number}月"


def has_data(session, month, timezone=DEFAULTS["TIMEZONE"]):
    """Whether the month has anything to rank: a frozen ranking, or a ticket received."""
    if _snapshot(session, month) is not None:
        return True
    start, end = month_bounds(month, timezone)
    return session.scalar(sa.select(sa.exists().where(_in_period(start, end)))) or False


def default_month(session, now, timezone=DEFAULTS["TIMEZONE"]):
    """The month a ranking opens on: last month, the one a report is usually read for, when
    it has data; else this month, live so far (a new deployment, a quiet month).
    Returns (month, last month, whether last month had data)."""
    current = month_of(now, timezone)
    last = previous_month(current)
    if has_data(session, last, timezone):
        return last, last, True
    return current, last, False


def months_until(session, now, timezone=DEFAULTS["TIMEZONE"], limit=36):
    """The months a picker offers, newest first: this month back to the first month with a
    ticket (at least the last twelve, at most ``limit``)."""
    current = month_of(now, timezone)
    first = session.scalar(sa.select(sa.func.min(Ticket.received_at)))
    oldest = month_of(first, timezone) if first is not None else current
    months = [current]
    while len(months) < limit and (months[-1] > oldest or len(months) < 12):
        months.append(previous_month(months[-1]))
    return months


# -- counting ---------------------------------------------------------------------------------


def _conditions(as_of):
    """The per-ticket facts behind the counts, as SQL boolean expressions (never NULL)."""
    t = Ticket
    sign_ok = sa.and_(t.signed_at.is_not(None), t.signed_at <= t.sign_due)
    contact_needed = t.requester_phone.is_not(None)
    contact_ok = sa.or_(
        ~contact_needed, sa.and_(t.contacted_at.is_not(None), t.contacted_at <= t.contact_due)
    )
    sign_missed = sa.or_(
        sa.and_(t.signed_at.is_not(None), t.signed_at > t.sign_due),
        sa.and_(t.signed_at.is_(None), t.sign_due < as_of),
    )
    contact_missed = sa.and_(
        contact_needed,
        sa.or_(
            sa.and_(t.contacted_at.is_not(None), t.contacted_at > t.contact_due),
            sa.and_(t.contacted_at.is_(None), t.contact_due < as_of),
        ),
    )
    responded = sa.and_(sign_ok, contact_ok)
    return {
        "responded": responded,
        "response_pending": sa.and_(
            t.status.in_(IN_HANDLING), ~responded, ~sign_missed, ~contact_missed
        ),
        "rated": t.callback_solved.is_not(None),
        "solved": t.callback_solved == Solved.solved,
        "partly": t.callback_solved == Solved.partly,
        "unsolved": t.callback_solved == Solved.unsolved,
        "satisfied": t.callback_satisfaction == Satisfaction.satisfied,
        "basically": t.callback_satisfaction == Satisfaction.basically,
        "dissatisfied": t.callback_satisfaction == Satisfaction.dissatisfied,
        "overdue": sa.or_(
            sa.and_(t.finished_at.is_not(None), t.finished_at > t.finish_due),
            sa.and_(t.finished_at.is_(None), t.finish_due < sa.func.coalesce(t.closed_at, as_of)),
        ),
        "reopened": t.reopen_count > 0,
    }


def _in_period(start, end):
    return sa.and_(Ticket.received_at >= start, Ticket.received_at < end)


#: Intake outcomes that reach no unit, counted for the month's totals.
INTAKE_TOTALS = ("resolved_at_intake", "transferred", "merged")


def count_tickets(session, start, end, as_of, by, unit_ids=None, where=()):
    """Counts per group for tickets received in [start, end): ``by`` is ``"unit"`` (the
    lead unit's id), ``"area"`` (the ticket's own area id) or ``"category"`` (its category
    id). Groups with no dispatched ticket are absent. ``unit_ids`` (with ``by="unit"``)
    counts only those units; ``where`` adds conditions on the ticket (a district's tickets,
    for the 民情分析 reports)."""
    return _count(session, start, end, as_of, by, unit_ids, where)[0]


def _count(session, start, end, as_of, by, unit_ids=None, where=()):
    """``count_tickets``, plus the period's intake totals (received, and the outcomes that
    reach no unit) from the same pass. Two aggregate queries: tickets, and the lead
    assignments of the tickets that changed hands, for the return rate."""
    if session.get_bind().dialect.name == "postgresql":
        # Compiling these plans costs more than it saves (measured in bench/rank.py).
        session.execute(sa.text("SET LOCAL jit = off"))
    key = {"unit": Ticket.lead_unit_id, "area": Ticket.area_id, "category": Ticket.category_id}[by]
    dispatched = Ticket.lead_unit_id.is_not(None)
    scored = sa.and_(dispatched, ~Ticket.scoring_exempt)
    merged = sa.orm.aliased(Ticket)
    repeats = (
        sa.select(merged.merged_into_id.label("id"))
        .where(merged.merged_into_id.is_not(None))
        .distinct()
        .subquery("repeats")
    )
    # A call split into several matters (拆单) is received once per matter: its children
    # count, the parent (the ticket that has children) does not.
    child = sa.orm.aliased(Ticket)
    split_calls = sa.exists().where(child.parent_id == Ticket.id)
    # The (ticket, unit) pairs whose reply a reviewer returned (审核退回): the few events
    # since the month began, read through the events' time index.
    e = TicketEvent
    review_returns = (
        sa.select(e.ticket_id.label("ticket_id"), e.unit_id.label("unit_id"))
        .where(e.action == "return_reply", e.created_at >= start, e.created_at <= as_of)
        .distinct()
        .subquery("review_returns")
    )
    facts = _conditions(as_of)
    facts["repeat"] = repeats.c.id.is_not(None)
    facts["review_returned"] = review_returns.c.ticket_id.is_not(None)
    columns = [
        sa.func.count().filter(scored).label("dispatched"),
        sa.func.count().filter(sa.and_(dispatched, Ticket.scoring_exempt)).label("exempt"),
        *(sa.func.count().filter(sa.and_(scored, f)).label(name) for name, f in facts.items()),
        sa.func.count().filter(~split_calls).label("received"),
        *(
            sa.func.count().filter(Ticket.status == status).label(status)
            for status in INTAKE_TOTALS
        ),
    ]
    query = (
        sa.select(key.label("key"), *columns)
        .select_from(Ticket)
        .outerjoin(repeats, repeats.c.id == Ticket.id)
        .outerjoin(
            review_returns,
            sa.and_(
                review_returns.c.ticket_id == Ticket.id,
                review_returns.c.unit_id == Ticket.lead_unit_id,
            ),
        )
        .where(_in_period(start, end), *_only(Ticket.lead_unit_id, unit_ids), *where)
        .group_by(key)
    )
    result = {}
    intake = dict.fromkeys(("received", *INTAKE_TOTALS), 0)
    for row in session.execute(query).mappings():
        for name in intake:
            intake[name] += row[name]
        if row["dispatched"] or row["exempt"]:
            result[row["key"]] = {name: row.get(name, 0) for name in COUNTS}

    # Return rate. Every dispatched ticket has a lead assignment of its current lead, so a
    # unit's return base is its dispatched tickets plus those it led earlier. Those, and
    # every return request, are on the few tickets flagged ``lead_history``: only their
    # assignments are read. A ticket can come back to a unit (reopen, re-dispatch), hence
    # DISTINCT. By area (or category) a ticket is in one group whoever led it: nothing to
    # add.
    for counts in result.values():
        counts["return_base"] = counts["dispatched"]
    a = Assignment
    changed = sa.and_(
        _in_period(start, end),
        scored,
        Ticket.lead_history,
        a.role == AssignmentRole.lead,
        *_only(a.unit_id, unit_ids),
        *where,
    )
    return_key = {"unit": a.unit_id, "area": Ticket.area_id, "category": Ticket.category_id}[by]
    earlier = sa.func.count(sa.distinct(a.ticket_id)).filter(a.unit_id != Ticket.lead_unit_id)
    returns = (
        sa.select(
            return_key.label("key"),
            (earlier if by == "unit" else sa.literal(0)).label("earlier"),
            sa.func.count(sa.distinct(a.ticket_id))
            .filter(a.return_requested_at.is_not(None))
            .label("returned"),
        )
        .select_from(Ticket)
        .join(a, a.ticket_id == Ticket.id)
        .where(changed)
        .group_by(return_key)
    )
    for row in session.execute(returns).mappings():
        counts = result.setdefault(row["key"], dict.fromkeys(COUNTS, 0))
        counts["return_base"] += row["earlier"]
        counts["returned"] = row["returned"]

    for key, summoned, on_time in _count_summonses(session, start, end, as_of, by, unit_ids, where):
        counts = result.setdefault(key, dict.fromkeys(COUNTS, 0))
        counts["summoned"] = summoned
        counts["summons_on_time"] = on_time
    return result, intake


def _count_summonses(session, start, end, as_of, by, unit_ids=None, where=()):
    """(key, summoned, on time) for the summonses issued in [start, end) whose outcome is
    known as of ``as_of`` (see the module docstring), grouped by the summoned department
    (``by="unit"``) or by its ticket's area or category."""
    s = Summons
    known, on_time = _summons_outcomes(as_of)
    key = {"unit": s.unit_id, "area": Ticket.area_id, "category": Ticket.category_id}[by]
    query = (
        sa.select(
            key.label("key"),
            sa.func.count().filter(known).label("summoned"),
            sa.func.count().filter(on_time).label("on_time"),
        )
        .select_from(s)
        .join(Ticket, Ticket.id == s.ticket_id)
        .where(
            s.summoned_at >= start,
            s.summoned_at < end,
            s.summoned_at <= as_of,
            ~Ticket.scoring_exempt,
            *_only(s.unit_id, unit_ids),
            *where,
        )
        .group_by(key)
    )
    return [tuple(row) for row in session.execute(query) if row.summoned]


def _summons_outcomes(as_of):
    """(known, on time): a summons' outcome is known as of ``as_of`` / it was on time (see
    the module docstring); for the counts and the drill-down alike."""
    s = Summons
    open_until = sa.func.coalesce(s.cancelled_at, as_of)
    report_missed = sa.or_(
        s.reported_at > s.report_due,
        sa.and_(s.reported_at.is_(None), s.report_due < open_until),
    )
    opinion_missed = sa.or_(
        s.opinion_at > s.opinion_due,
        sa.and_(s.opinion_at.is_(None), s.opinion_due < open_until),
    )
    known = sa.or_(s.opinion_at.is_not(None), report_missed, opinion_missed)
    on_time = sa.and_(
        s.reported_at.is_not(None),
        s.reported_at <= s.report_due,
        s.opinion_at.is_not(None),
        s.opinion_at <= s.opinion_due,
    )
    return known, on_time


def _only(column, ids):
    return [] if ids is None else [column.in_(list(ids))]


def add_counts(rows):
    total = dict.fromkeys(COUNTS, 0)
    for counts in rows:
        for name in COUNTS:
            total[name] += counts[name]
    return total


# -- rates and places ---------------------------------------------------------------------------


def _ratio(numerator, denominator):
    return Fraction(numerator, denominator) if denominator else None


def _as_float(value):
    return float(value) if value is not None else None


def compute_rates(counts, settings):
    """The rates (floats in [0, 1]) and the composite (0–100, 2 decimals) from the counts.
    Exact fractions until the end, so equal counts always give equal scores."""
    c = counts
    partly = Fraction(settings.partly_solved_percent, 100)
    basically = Fraction(settings.basically_satisfied_percent, 100)
    response = _ratio(c["responded"], c["dispatched"] - c["response_pending"])
    resolution = _ratio(c["solved"] + c["partly"] * partly, c["rated"]) if c["rated"] else None
    satisfaction = (
        _ratio(c["satisfied"] + c["basically"] * basically, c["rated"]) if c["rated"] else None
    )
    composite = None
    weights = (settings.weight_response, settings.weight_resolution, settings.weight_satisfaction)
    if None not in (response, resolution, satisfaction) and sum(weights):
        exact = (
            100
            * (weights[0] * response + weights[1] * resolution + weights[2] * satisfaction)
            / sum(weights)
        )
        composite = float(
            (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(
                Decimal("0.01"), rounding=ROUND_HALF_UP
            )
        )
    return {
        "response_rate": _as_float(response),
        "resolution_rate": _as_float(resolution),
        "satisfaction_rate": _as_float(satisfaction),
        "composite": composite,
        "return_rate": _as_float(_ratio(c["returned"], c["return_base"])),
        "reopen_rate": _as_float(_ratio(c["reopened"], c["dispatched"])),
        "overdue_rate": _as_float(_ratio(c["overdue"], c["dispatched"])),
        "repeat_rate": _as_float(_ratio(c["repeat"], c["dispatched"])),
        "review_return_rate": _as_float(_ratio(c["review_returned"], c["dispatched"])),
        "summons_on_time_rate": _as_float(_ratio(c["summons_on_time"], c["summoned"])),
    }


def _unranked_reason(row, settings):
    c = row.counts
    if c["dispatched"] < settings.min_sample:
        return f"样本量不足（派单 {c['dispatched']} 件，少于 {settings.min_sample} 件）"
    if not c["rated"]:
        return "无有效回访"
    if row.rates["response_rate"] is None:
        return "响应均未到期"
    return None


def place(rows, settings):
    """Rank one class in place and return it ordered: ranked units by score (ties share a
    place), then the unranked by code. Marks the red and black lists."""
    for row in rows:
        row.unranked_reason = _unranked_reason(row, settings)
        row.rank = row.list_mark = None
    ranked = sorted(
        (r for r in rows if r.unranked_reason is None),
        key=lambda r: (-r.rates["composite"], r.unit_code),
    )
    for i, row in enumerate(ranked):
        if i and row.rates["composite"] == ranked[i - 1].rates["composite"]:
            row.rank = ranked[i - 1].rank
        else:
            row.rank = i + 1
    k = min(settings.list_size, len(ranked) // 2)
    if k:
        for row in ranked:
            if row.rank <= k:
                row.list_mark = ListMark.red
        # Places counted from the bottom, ties sharing one, as above.
        bottom_rank = {}
        for i, row in enumerate(reversed(ranked)):
            previous = ranked[len(ranked) - i] if i else None
            if previous is not None and previous.rates["composite"] == row.rates["composite"]:
                bottom_rank[row.unit_id] = bottom_rank[previous.unit_id]
            else:
                bottom_rank[row.unit_id] = i + 1
        for row in ranked:
            if row.list_mark is None and bottom_rank[row.unit_id] <= k:
                row.list_mark = ListMark.black
    unranked = sorted((r for r in rows if r.unranked_reason is not None), key=lambda r: r.unit_code)
    return ranked + unranked


# -- the ranking --------------------------------------------------------------------------------


def unit_districts(session):
    """Unit id → the code of the district its area lies in (units with an area only)."""
    rows = session.execute(
        sa.select(unit_areas.c.unit_id, Area.code)
        .join(Area, Area.id == unit_areas.c.area_id)
        .order_by(unit_areas.c.unit_id, Area.code)
    ).all()
    districts = {}
    for unit_id, code in rows:
        districts.setdefault(unit_id, code[:6])
    return districts


def ranked_units(session, mayors_office_code):
    """Each class's units, and for a district the units whose tickets it answers for."""
    units = session.scalars(sa.select(Unit).order_by(Unit.code)).all()
    district_of_area = unit_districts(session)
    street_district = {}
    governments = {}
    for unit in units:
        if unit.kind == UnitKind.district_government and unit.id in district_of_area:
            governments[district_of_area[unit.id]] = unit
    for unit in units:
        if unit.kind == UnitKind.street_office and unit.id in district_of_area:
            government = governments.get(district_of_area[unit.id])
            if government is not None:
                street_district[unit.id] = government.id
    members = {}  # (class, unit id) → ids whose counts it sums
    kinds = {
        UnitKind.street_office: RankingClass.street,
        UnitKind.city_department: RankingClass.department,
        UnitKind.utility: RankingClass.utility,
        UnitKind.district_government: RankingClass.district,
    }
    classes = {c: [] for c in RankingClass}
    for unit in units:
        ranking_class = kinds.get(unit.kind)
        if ranking_class is None or unit.code == mayors_office_code:
            continue
        classes[ranking_class].append(unit)
        members[(ranking_class, unit.id)] = [unit.id]
    for street_id, government_id in street_district.items():
        members[(RankingClass.district, government_id)].append(street_id)
    return classes, members


def compute(session, month, *, as_of, settings, timezone, mayors_office_code, previous=None):
    """The live ranking of ``month`` as of ``as_of``. ``previous`` is last month's ranking
    (frozen or live) for the month-over-month change; None leaves the change empty."""
    start, end = month_bounds(month, timezone)
    counts, intake = _count(session, start, end, as_of, by="unit")
    classes, members = ranked_units(session, mayors_office_code)
    empty = dict.fromkeys(COUNTS, 0)
    rows = {}
    for ranking_class, units in classes.items():
        class_rows = []
        for unit in units:
            if not unit.active and not any(
                counts.get(i) for i in members[(ranking_class, unit.id)]
            ):
                continue
            total = add_counts(counts.get(i, empty) for i in members[(ranking_class, unit.id)])
            row = Row(ranking_class, unit.id, unit.code, unit.name, total)
            row.rates = compute_rates(total, settings)
            class_rows.append(row)
        rows[ranking_class] = place(class_rows, settings)
    if previous is not None:
        attach_previous(rows, previous)
    return Ranking(
        month=month,
        period_start=start,
        period_end=end,
        as_of=as_of,
        settings=settings,
        rows=rows,
        totals=city_totals(counts, intake),
        exemptions=exemptions(session, start, end),
    )


def attach_previous(rows, previous):
    for ranking_class, class_rows in rows.items():
        before = {r.unit_id: r for r in previous.rows.get(ranking_class, [])}
        for row in class_rows:
            old = before.get(row.unit_id)
            if old is not None:
                row.prev_rank = old.rank
                row.prev_composite = old.rates.get("composite")


def city_totals(counts, intake):
    """The month's counts over every unit, with the intake outcomes that reach no unit."""
    return {**add_counts(counts.values()), **intake}


def exemptions(session, start, end):
    """Exempted tickets of the period: who exempted them, when, and why."""
    query = (
        sa.select(
            Ticket.number,
            Ticket.exempt_kind,
            Ticket.exempt_reason,
            Ticket.exempted_at,
            Unit.code,
            Unit.name,
            User.name,
        )
        .select_from(Ticket)
        .outerjoin(User, User.id == Ticket.exempted_by_id)
        .outerjoin(Unit, Unit.id == Ticket.lead_unit_id)
        .where(_in_period(start, end), Ticket.scoring_exempt)
        .order_by(Ticket.number)
    )
    result = []
    for number, kind, reason, at, unit_code, unit_name, actor_name in session.execute(query):
        result.append(
            {
                "ticket": number,
                "unit_code": unit_code,
                "unit_name": unit_name,
                "kind": kind.value if kind else None,
                "kind_label": kind.label if kind else None,
                "reason": reason,
                "by": actor_name,
                "at": at.isoformat() if at is not None else None,
            }
        )
    return result


# -- live or frozen -----------------------------------------------------------------------------


def _snapshot(session, month):
    return session.scalars(
        sa.select(RankingSnapshot)
        .where(RankingSnapshot.month == month)
        .options(sa.orm.selectinload(RankingSnapshot.rows))
    ).first()


def load(session, month, *, now, config, with_previous=True):
    """The month's published ranking if it was frozen, else computed live as of ``now``
    (with last month's places, frozen or live, for the change)."""
    parse_month(month)
    snapshot = _snapshot(session, month)
    if snapshot is not None:
        return from_snapshot(snapshot)
    previous = None
    if with_previous:
        previous = load(session, previous_month(month), now=now, config=config, with_previous=False)
    return compute(
        session,
        month,
        as_of=now,
        settings=Settings.from_settings(session),
        timezone=config["TIMEZONE"],
        mayors_office_code=config["MAYORS_OFFICE_UNIT"],
        previous=previous,
    )


def freeze(session, actor, month, *, now, config):
    """Publish the month: compute it now and store every row, so late callbacks and
    exemptions no longer move it. Once per month; only after the month has ended."""
    parse_month(month)
    if _snapshot(session, month) is not None:
        raise Conflict(f"{month} 的排名已冻结发布，不能重复冻结", code="RANKING_ALREADY_FROZEN")
    start, end = month_bounds(month, config["TIMEZONE"])
    if now < end:
        raise Conflict(f"{month} 尚未结束，不能冻结排名", code="RANKING_MONTH_NOT_OVER")
    ranking = load(session, month, now=now, config=config)
    snapshot = RankingSnapshot(
        month=month,
        period_start=start,
        period_end=end,
        frozen_at=now,
        frozen_by_id=actor.id if actor else None,
        settings=ranking.settings.as_dict(),
        totals=ranking.totals,
        exemptions=ranking.exemptions,
    )
    for class_rows in ranking.rows.values():
        for row in class_rows:
            snapshot.rows.append(
                RankingRow(
                    ranking_class=row.ranking_class,
                    unit_id=row.unit_id,
                    unit_code=row.unit_code,
                    unit_name=row.unit_name,
                    **row.counts,
                    **row.rates,
                    rank=row.rank,
                    unranked_reason=row.unranked_reason,
                    list_mark=row.list_mark,
                    prev_rank=row.prev_rank,
                    prev_composite=row.prev_composite,
                )
            )
    session.add(snapshot)
    session.flush()
    audit(
        session,
        actor,
        "ranking.freeze",
        target=month,
        payload={"snapshot": snapshot.id, "rows": len(snapshot.rows), **snapshot.settings},
    )
    ranking.frozen_at = now
    return ranking


def from_snapshot(snapshot):
    """The Ranking a frozen snapshot holds (no recomputation)."""
    rows = {c: [] for c in RankingClass}
    for stored in snapshot.rows:
        row = Row(
            ranking_class=stored.ranking_class,
            unit_id=stored.unit_id,
            unit_code=stored.unit_code,
            unit_name=stored.unit_name,
            counts={name: getattr(stored, name) for name in COUNTS},
            rates={name: getattr(stored, name) for name in RATES},
            rank=stored.rank,
            unranked_reason=stored.unranked_reason,
            list_mark=stored.list_mark,
            prev_rank=stored.prev_rank,
            prev_composite=stored.prev_composite,
        )
        rows[stored.ranking_class].append(row)
    return Ranking(
        month=snapshot.month,
        period_start=snapshot.period_start,
        period_end=snapshot.period_end,
        as_of=snapshot.frozen_at,
        settings=Settings(**snapshot.settings),
        rows=rows,
        totals=snapshot.totals,
        exemptions=snapshot.exemptions,
        frozen_at=snapshot.frozen_at,
    )


# -- explanation: the tickets behind a count, and rates for any period ---------------------------

#: Facts a drill-down can filter on (each is one of the counts).
FACTS = (
    "responded",
    "response_pending",
    "rated",
    "overdue",
    "reopened",
    "repeat",
    "returned",
    "review_returned",
    "summoned",
    "summons_on_time",
)
#: Facts that count for the unit whoever leads the ticket now (``_counted_for``).
_ANY_LEAD = ("returned", "summoned", "summons_on_time")


def ticket_facts(session, start, end, as_of, unit_ids, *, fact=None, limit=200, offset=0):
    """The tickets behind one unit's (or district's) counts: every ticket of the period it
    leads or once led, and every ticket it was summoned to (吹哨报到) in the period with a
    known outcome (summonses count by the month issued, whenever the ticket came in), with
    each fact the counts are made of. ``fact`` keeps only the tickets with that fact;
    returns (total, rows)."""
    unit_ids = list(unit_ids)
    facts = _conditions(as_of)
    merged = sa.orm.aliased(Ticket)
    facts["repeat"] = sa.exists().where(merged.merged_into_id == Ticket.id)
    led = sa.exists().where(
        Assignment.ticket_id == Ticket.id,
        Assignment.unit_id.in_(unit_ids),
        Assignment.role == AssignmentRole.lead,
    )
    facts["returned"] = sa.exists().where(
        Assignment.ticket_id == Ticket.id,
        Assignment.unit_id.in_(unit_ids),
        Assignment.role == AssignmentRole.lead,
        Assignment.return_requested_at.is_not(None),
    )
    e = TicketEvent
    facts["review_returned"] = sa.exists().where(
        e.ticket_id == Ticket.id,
        e.action == "return_reply",
        e.unit_id == Ticket.lead_unit_id,
        e.created_at >= start,
        e.created_at <= as_of,
    )
    known, on_time = _summons_outcomes(as_of)

    def summonses(*conditions):
        return sa.exists().where(
            Summons.ticket_id == Ticket.id,
            Summons.unit_id.in_(unit_ids),
            Summons.summoned_at >= start,
            Summons.summoned_at < end,
            Summons.summoned_at <= as_of,
            known,
            *conditions,
        )

    facts["summoned"] = summonses()
    facts["summons_on_time"] = summonses(on_time)
    condition = sa.or_(
        sa.and_(_in_period(start, end), sa.or_(Ticket.lead_unit_id.in_(unit_ids), led)),
        facts["summoned"],
    )
    if fact is not None:
        condition = sa.and_(
            condition, facts[fact], ~Ticket.scoring_exempt, *_counted_for(fact, unit_ids)
        )
    total = session.scalar(sa.select(sa.func.count()).select_from(Ticket).where(condition))
    columns = [sa.case((f, True), else_=False).label(name) for name, f in facts.items()]
    query = (
        sa.select(Ticket, Unit.code, Unit.name, *columns)
        .select_from(Ticket)
        .join(Unit, Unit.id == Ticket.lead_unit_id)
        .where(condition)
        .order_by(Ticket.received_at, Ticket.id)
        .limit(limit)
        .offset(offset)
    )
    rows = []
    for ticket, lead_code, lead_name, *values in session.execute(query):
        row = dict(zip(facts, (bool(v) for v in values), strict=True))
        row.update(
            ticket=ticket,
            lead_unit_code=lead_code,
            lead_unit_name=lead_name,
            counted=ticket.lead_unit_id in unit_ids and not ticket.scoring_exempt,
        )
        rows.append(row)
    return total, rows


def _counted_for(fact, unit_ids):
    """A fact counts for the unit only on tickets it leads now, except returns and
    summonses (``_ANY_LEAD``)."""
    return [] if fact in _ANY_LEAD else [Ticket.lead_unit_id.in_(unit_ids)]


def period_rates(session, start, end, as_of, settings, by):
    """Counts and rates for any period, per ``by``: ``"unit"``, ``"district"`` or
    ``"street"`` (the area the ticket is in). Returns [(code, name, counts, rates)]."""
    if by == "unit":
        counts = count_tickets(session, start, end, as_of, by="unit")
        units = session.execute(
            sa.select(Unit.id, Unit.code, Unit.name).where(Unit.id.in_(counts))
        ).all()
        groups = [(code, name, counts[uid]) for uid, code, name in units]
    else:
        length = {"district": 6, "street": 9}[by]
        counts = count_tickets(session, start, end, as_of, by="area")
        codes = dict(
            session.execute(
                sa.select(Area.id, Area.code).where(Area.id.in_([k for k in counts if k]))
            ).all()
        )
        summed = {}
        for area_id, area_counts in counts.items():
            code = codes.get(area_id, "")
            key = code[:length] if len(code) >= length else None
            summed.setdefault(key, []).append(area_counts)
        names = dict(
            session.execute(
                sa.select(Area.code, Area.name).where(Area.code.in_([k for k in summed if k]))
            ).all()
        )
        groups = [
            (key, names.get(key, "未定位到该级区域") if key else "未定位到该级区域", add_counts(c))
            for key, c in summed.items()
        ]
    groups.sort(key=lambda g: g[0] or "~")
    return [(code, name, c, compute_rates(c, settings)) for code, name, c in groups]
