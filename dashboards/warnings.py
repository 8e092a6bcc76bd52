"""Early warning (预警): surges of one kind of request in one area, and sudden events at one
place, found in the tickets as they arrive; a person acknowledges each.

**Surge (诉求激增).** Tickets received in the last ``warning.surge_hours`` hours are counted
per level-2 category (``0102`` 供水: the ancestor by code prefix) × area, at street level
(the first 9 digits of the ticket's area code) and at district level (6). The expectation
is the mean count in the same local hours of the previous ``warning.surge_weeks`` weeks'
days *of the same kind* — working day or rest day by the official calendar
(``dispatch.calendar``: weekends, public holidays and swapped workdays) — so a Monday
morning is compared with earlier working-day mornings and a Sunday night with rest-day
nights. Only days after the first ticket in the database count (a new system has no past);
with fewer than ``MIN_BASELINE_DAYS`` such days nothing is judged. A group alerts when

    observed ≥ warning.surge_min_count,
    observed ≥ warning.surge_ratio × expected, and
    P(X ≥ observed | X ~ Poisson(max(expected, EXPECTED_FLOOR))) < warning.surge_significance.

**Sudden event (突发事件).** ``warning.sudden_count`` tickets or more about one place
received within the last ``warning.sudden_minutes`` minutes, about one matter, alert at
once. One matter: ``warning.sudden_count`` of them in one level-2 category, or at least
``SUDDEN_SHARE`` (60 %) of them in one (a power cut some operators file under 供电 and
others under 电梯 or 安全隐患); a busy community's unrelated calls in one hour are not an
event. The place is the ticket's community (its area at community level, a grid's
community) when it has one, else the place or object names its text mentions
(``classifier.hotspots.places``: an estate, a site, a road; when that engine is not
installed, tickets without a community are not placed).

**One warning per episode.** Each warning has a subject (``surge:<category>:<area code>``,
``sudden:<community code or place name>``). While a subject's last warning is open and was
raised less than ``warning.cooldown_hours`` ago, the subject firing again adds its new
evidence tickets to that warning (its ticket ids, peak count, window end, update time)
instead of raising another; the cooldown runs from the raising, so calls that keep coming
do not keep it going. Once that warning is acknowledged (it takes no more evidence) or
the cooldown is over, the subject firing again is a new episode, and a new warning, when
as many tickets as raising takes (``warning.sudden_count``, ``warning.surge_min_count``)
are not evidence of the last one: an event that flares up again alerts again, the calls
already acknowledged do not. ``dedup_key`` = subject ``@`` the reception time of the
episode's first new ticket is unique in the table, so two scanners that both miss each
other's insert cannot both raise (the loser adds its evidence to the winner's row); the
scheduler also runs the scan under an advisory lock.

**Raising** writes the warning, a message to the message centre of the hotline centre
(supervisors), the mayor's office (``MAYORS_OFFICE_UNIT``) and the district government of
the warning's district (red for a sudden event, yellow for a surge), an event on the event
channel (``warning.raised``: the live boards show a banner) and an audit row.
``acknowledge`` is the one operation people do on a warning.

**Cost of a scan** (``run``): one indexed range query for the tickets of the longer of the
two windows (id, time, category code, area code, and the text of those without a community):
``surge_hours / 24`` of a day's tickets, 2,100 rows at a million tickets in 90 days, 9,000
at 70,000 a day. Only when some group reaches ``surge_min_count``, one query for the first
ticket's time and one grouped query for the baseline, by category and street over the
shifted windows of the same kind among the last ``surge_weeks × 7`` days (one
``received_at`` range each, through ``ix_tickets_received_at``, restricted to the candidate
categories): with the defaults 20 working days × 3 hours, 2.8 % of a 90-day database (1.1 %
on a rest day, 8 days). Then one query for the subjects' current warnings and one for the
sudden events' evidence. Measured (``bench/warnings.py``, PostgreSQL, 991,574 tickets, 2
shared cores, load 3–4): 84 ms and 8 statements a scan when nothing is new; each warning
raised adds about 9 statements (the row, its three inbox items, the units, the audit row).
"""

import datetime as dt
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from scipy.stats import poisson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.compiler import compiles

from dispatch import access, routing
from dispatch import calendar as work_calendar
from hotline import events, notify
from hotline import settings as hotline_settings
from hotline.audit import audit
from hotline.config import DEFAULTS
from hotline.db import utcnow
from hotline.enums import AlertLevel, Role, UnitKind, WarningKind, WarningState
from hotline.errors import Conflict, Forbidden, NotFound
from hotline.models import Area, Category, EarlyWarning, Ticket, Unit

try:  # the hot-issue engine's place names (branch hot-engine); areas alone without it
    from classifier.hotspots import places as text_places
except ImportError:  # pragma: no cover - depends on the engine being installed
    text_places = None

#: Fewer same-kind days than this in the baseline: too little past to judge a surge.
MIN_BASELINE_DAYS = 2
#: The expectation used in the Poisson tail is at least this (a group never seen before
#: is not "infinitely" surprising at its first few calls).
EXPECTED_FLOOR = 0.5
#: A place's calls in the sudden window are about one matter when this share of them (or
#: ``warning.sudden_count`` of them) are in one level-2 category.
SUDDEN_SHARE = 0.6
#: Evidence ticket ids kept on one warning at most (the JSON column stays bounded).
MAX_EVIDENCE = 500
#: Kinds of the message centre's items and of the event channel's messages.
NOTIFY_KIND = {WarningKind.surge: "warning.surge", WarningKind.sudden: "warning.sudden"}
RAISED, UPDATED, ACKNOWLEDGED = "warning.raised", "warning.updated", "warning.acknowledged"
#: Who may acknowledge (district leaders only their district's) and who may read (every
#: board viewer: the banner links to the warnings).
ACK_ROLES = frozenset({Role.supervisor, Role.leader})
VIEW_ROLES = frozenset({Role.supervisor, Role.leader, Role.dispatcher, Role.admin})


@dataclass(frozen=True)
class Settings:
    surge_hours: int
    surge_weeks: int
    surge_min_count: int
    surge_ratio: float
    surge_significance: float
    sudden_count: int
    sudden_minutes: int
    cooldown_hours: int

    @classmethod
    def from_settings(cls, session):
        values = hotline_settings.group(session, "warning.")
        return cls(**{name: values[name] for name in cls.__dataclass_fields__})


@dataclass
class Finding:
    """One subject over its threshold at one scan."""

    kind: WarningKind
    subject: str
    ticket_ids: list
    first_at: dt.datetime
    window_start: dt.datetime
    window_end: dt.datetime
    observed: int
    expected: float | None = None
    score: float | None = None
    category: Category | None = None
    area_code: str | None = None
    district_code: str | None = None
    place: str | None = None
    #: When each of ``ticket_ids`` was received.
    received: list = field(default_factory=list)
    #: The reception time of the episode's first new ticket (its ``dedup_key``): the first
    #: ticket's unless the subject had a warning before (``_record``).
    key_at: dt.datetime | None = None
    #: Words for the title and body (names of the category, area, district, a sample title).
    words: dict = field(default_factory=dict)


@dataclass
class ScanResult:
    raised: list = field(default_factory=list)
    updated: list = field(default_factory=list)

    def __iter__(self):
        return iter((self.raised, self.updated))


@dataclass(frozen=True)
class Scanned:
    """A warning a scan raised or updated, as the scheduler reports it."""

    id: int
    kind: WarningKind
    title: str
    observed: int

    @classmethod
    def of(cls, warning):
        return cls(warning.id, warning.kind, warning.title, warning.observed)


def _config(config):
    if config is not None:
        return config
    from flask import current_app

    return current_app.config if current_app else DEFAULTS


# -- the scan ----------------------------------------------------------------------------------


def run(session, now, *, config=None):
    """One scan at ``now``: both detectors; raise new warnings or add evidence to the open
    episode's. Returns ``ScanResult`` (warnings raised, warnings updated). The caller
    commits; running again at the same ``now`` changes nothing."""
    config = _config(config)
    settings = Settings.from_settings(session)
    zone = ZoneInfo(config["TIMEZONE"])
    span = max(
        dt.timedelta(hours=settings.surge_hours), dt.timedelta(minutes=settings.sudden_minutes)
    )
    rows = _window_rows(session, now - span, now)
    sudden = _sudden(session, rows, now, settings)
    # Calls a sudden event explains (a power cut's calls) are not also a surge of their
    # category in the street: that would be one event told twice.
    explained = _explained(session, sudden, now, settings)
    surges = _surges(
        session, [r for r in rows if r.id not in explained], now, settings, zone, config
    )
    return _record(session, surges + sudden, now, settings, config)


#: The advisory lock of the scheduler's scan (PostgreSQL): one scanner at a time.
SCAN_LOCK = 0x12345_16_04


def scan(session_factory, *, now=None, config=None):
    """The scheduler's job: one ``run`` at ``now`` (default: the present) in a transaction
    of its own, committed; returns a ``ScanResult`` of ``Scanned``. On PostgreSQL under a
    transaction-scoped advisory lock: a second scheduler finding it taken skips this round
    (returns None) instead of scanning twice; SQLite has one writer anyway."""
    config = _config(config)
    session = session_factory()
    try:
        if session.get_bind().dialect.name == "postgresql":
            if not session.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(SCAN_LOCK))):
                session.rollback()
                return None
        result = run(session, now or utcnow(), config=config)
        # What was done, readable after the session is gone.
        summary = ScanResult(
            raised=[Scanned.of(w) for w in result.raised],
            updated=[Scanned.of(w) for w in result.updated],
        )
        session.commit()
        return summary
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()


def backfill(session, start, end, step=dt.timedelta(minutes=10), *, config=None):
    """Scan the moments ``start``, ``start + step`` … up to ``end`` as the scheduler would have
    (the demo's history: warnings raised in the past). A moment with no ticket received
    since the one before is skipped (nothing can newly fire there except a surge whose
    expectation fell, a case the live scan catches). Returns the total ``ScanResult``."""
    config = _config(config)
    total = ScanResult()
    received = session.scalars(
        sa.select(Ticket.received_at)
        .where(Ticket.received_at >= start - step, Ticket.received_at < end)
        .order_by(Ticket.received_at)
    ).all()
    index = 0
    previous = start - step
    moment = start
    while moment <= end:
        fresh = False
        while index < len(received) and received[index] < moment:
            fresh = fresh or received[index] >= previous
            index += 1
        if fresh:
            result = run(session, moment, config=config)
            total.raised += result.raised
            total.updated += result.updated
        previous = moment
        moment += step
    return total


def _explained(session, sudden, now, settings):
    """Ids of the tickets of this scan's sudden events and of the sudden warnings still in
    their episode."""
    ids = {i for f in sudden for i in f.ticket_ids}
    since = now - dt.timedelta(hours=settings.cooldown_hours)
    for ticket_ids in session.scalars(
        sa.select(EarlyWarning.ticket_ids).where(
            EarlyWarning.kind == WarningKind.sudden, EarlyWarning.updated_at >= since
        )
    ):
        ids.update(ticket_ids or ())
    return ids


def _window_rows(session, start, end):
    community = sa.func.length(Area.code) >= 12
    query = (
        sa.select(
            Ticket.id,
            Ticket.received_at,
            Category.code.label("category"),
            Area.code.label("area"),
            # Text only where the place must come from it (no community).
            sa.case((community, None), else_=Ticket.title).label("title"),
            sa.case((community, None), else_=Ticket.content).label("content"),
        )
        .select_from(Ticket)
        .outerjoin(Category, Category.id == Ticket.category_id)
        .outerjoin(Area, Area.id == Ticket.area_id)
        .where(Ticket.received_at >= start, Ticket.received_at < end)
        .order_by(Ticket.received_at, Ticket.id)
    )
    return session.execute(query).all()


def _keys(area_code):
    """The area codes a ticket counts for in surges: its street's and its district's."""
    if not area_code or len(area_code) < 6:
        return ()
    if len(area_code) >= 9:
        return (area_code[:9], area_code[:6])
    return (area_code[:6],)


def _surges(session, rows, now, settings, zone, config):
    start = now - dt.timedelta(hours=settings.surge_hours)
    groups = defaultdict(list)
    for row in rows:
        if row.received_at < start or not row.category or len(row.category) < 4:
            continue
        for area in _keys(row.area):
            groups[(row.category[:4], area)].append(row)
    candidates = {k: v for k, v in groups.items() if len(v) >= settings.surge_min_count}
    if not candidates:
        return []
    calendar = work_calendar.load(session, config["TIMEZONE"])
    ranges = _baseline_ranges(session, start, now, settings, zone, calendar)
    if len(ranges) < MIN_BASELINE_DAYS:
        return []
    counts = _baseline_counts(session, ranges, {c for c, _ in candidates})
    findings = []
    for (category, area), members in sorted(candidates.items()):
        observed = len(members)
        expected = counts.get((category, area), 0) / len(ranges)
        if observed < settings.surge_ratio * expected:
            continue
        tail = float(poisson.sf(observed - 1, max(expected, EXPECTED_FLOOR)))
        if tail >= settings.surge_significance:
            continue
        findings.append(
            Finding(
                kind=WarningKind.surge,
                subject=f"surge:{category}:{area}",
                ticket_ids=[r.id for r in members],
                received=[r.received_at for r in members],
                first_at=members[0].received_at,
                window_start=start,
                window_end=now,
                observed=observed,
                expected=round(expected, 2),
                score=tail,
                area_code=area,
                district_code=area[:6],
                words={
                    "category": category,
                    "day_kind": _day_kind(now, zone, calendar),
                    "days": len(ranges),
                    "weeks": settings.surge_weeks,
                },
            )
        )
    return _named(session, _without_echoes(findings))


def _without_echoes(findings):
    """A district's surge that is mostly one street's surge (half its tickets or more are in
    street findings of the same category) is that street's warning, not a second one."""
    streets = defaultdict(set)
    for f in findings:
        if len(f.area_code) > 6:
            streets[(f.words["category"], f.area_code[:6])].update(f.ticket_ids)
    kept = []
    for f in findings:
        if len(f.area_code) == 6:
            covered = streets.get((f.words["category"], f.area_code), set())
            if len(covered & set(f.ticket_ids)) * 2 >= len(f.ticket_ids):
                continue
        kept.append(f)
    return kept


def _is_rest_day(moment, zone, calendar):
    """Whether the local day of the window ending at ``moment`` is a rest day."""
    day = (moment - dt.timedelta(microseconds=1)).astimezone(zone).date()
    return not calendar.is_workday(day)[0]


def _day_kind(moment, zone, calendar):
    return "休息日" if _is_rest_day(moment, zone, calendar) else "工作日"


def _baseline_ranges(session, start, end, settings, zone, calendar):
    """The same local hours on each earlier day of the same kind within the baseline weeks,
    after the first ticket in the database: [(start, end)]."""
    first = session.scalar(sa.select(sa.func.min(Ticket.received_at)))
    if first is None:
        return []
    rest = _is_rest_day(end, zone, calendar)
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    ranges = []
    for days in range(1, settings.surge_weeks * 7 + 1):
        # Wall-clock arithmetic on aware local times: the same local hours that day.
        shifted_start = (local_start - dt.timedelta(days=days)).astimezone(dt.UTC)
        shifted_end = (local_end - dt.timedelta(days=days)).astimezone(dt.UTC)
        if shifted_start < first:
            break
        if _is_rest_day(shifted_end, zone, calendar) == rest:
            ranges.append((shifted_start, shifted_end))
    return ranges


def _baseline_counts(session, ranges, categories):
    """{(category, street or district code): tickets} over ``ranges``, in one grouped query
    (by street; districts are summed here)."""
    category = sa.func.substr(Category.code, sa.literal_column("1"), sa.literal_column("4"))
    street = sa.func.substr(Area.code, sa.literal_column("1"), sa.literal_column("9"))
    # The candidate categories' ids first (reference data): the planner then reads the
    # time ranges once, not once per category.
    ids = session.scalars(sa.select(Category.id).where(category.in_(sorted(categories)))).all()
    query = (
        sa.select(category, street, sa.func.count())
        .select_from(Ticket)
        .join(Category, Category.id == Ticket.category_id)
        .join(Area, Area.id == Ticket.area_id)
        .where(
            sa.or_(*(sa.and_(Ticket.received_at >= a, Ticket.received_at < b) for a, b in ranges)),
            Ticket.category_id.in_(ids),
        )
        .group_by(category, street)
    )
    counts = Counter()
    for code, area, count in session.execute(query):
        for key in _keys(area):
            counts[(code, key)] += count
    return counts


def _sudden(session, rows, now, settings):
    start = now - dt.timedelta(minutes=settings.sudden_minutes)
    groups = defaultdict(list)
    for row in rows:
        if row.received_at < start:
            continue
        for place in _places_of(row):
            groups[place].append(row)
    findings = []
    for place, members in sorted(groups.items()):
        if len(members) < settings.sudden_count:
            continue
        categories = Counter(r.category[:4] for r in members if r.category and len(r.category) >= 4)
        same = categories.most_common(1)[0][1] if categories else 0
        if same < settings.sudden_count and same < SUDDEN_SHARE * len(members):
            continue  # calls about different matters that happen to share a place
        districts = Counter(r.area[:6] for r in members if r.area and len(r.area) >= 6)
        community = place if place.isdigit() else None
        findings.append(
            Finding(
                kind=WarningKind.sudden,
                subject=f"sudden:{place}",
                ticket_ids=[r.id for r in members],
                received=[r.received_at for r in members],
                first_at=members[0].received_at,
                window_start=start,
                window_end=now,
                observed=len(members),
                area_code=community,
                district_code=community[:6] if community else _most_common(districts),
                place=None if community else place,
                words={
                    "category": _most_common(categories),
                    "last_at": members[-1].received_at,
                    "minutes": max(
                        1,
                        math.ceil(
                            (members[-1].received_at - members[0].received_at).total_seconds() / 60
                        ),
                    ),
                },
            )
        )
    return _named(session, findings)


def _places_of(row):
    """A ticket's place for sudden events: its community's code, else the names of places
    its text mentions."""
    if row.area and len(row.area) >= 12:
        return (row.area[:12],)
    if text_places is None:
        return ()
    # The most specific name only: one call is about one place, counted once.
    return text_places(row.title or "", row.content or "")[:1]


def _most_common(counter):
    return counter.most_common(1)[0][0] if counter else None


def _named(session, findings):
    """Fill in the names of the categories and areas of ``findings`` (one query each)."""
    if not findings:
        return findings
    category_codes = {f.words.get("category") for f in findings} - {None}
    categories = {
        c.code: c
        for c in session.scalars(sa.select(Category).where(Category.code.in_(category_codes)))
    }
    area_codes = set()
    for f in findings:
        for code in (f.area_code, f.district_code):
            if code:
                area_codes.update(code[:n] for n in (6, 9, 12) if len(code) >= n)
    areas = {a.code: a for a in session.scalars(sa.select(Area).where(Area.code.in_(area_codes)))}
    for f in findings:
        f.category = categories.get(f.words.get("category"))
        f.words["category_name"] = f.category.name if f.category else None
        f.words["area"] = areas.get(f.area_code) if f.area_code else None
        f.words["district"] = areas.get(f.district_code) if f.district_code else None
        chain = [areas.get(f.area_code[:n]) for n in (6, 9, 12) if len(f.area_code or "") >= n]
        f.words["chain"] = "".join(a.name for a in chain if a is not None)
        if f.place is None and f.words["area"] is not None:
            f.place = f.words["area"].name
    return findings


# -- recording ---------------------------------------------------------------------------------


def _record(session, findings, now, settings, config):
    result = ScanResult()
    if not findings:
        return result
    cooldown = dt.timedelta(hours=settings.cooldown_hours)
    # A subject's last warning matters while its evidence can still be in a window.
    span = max(
        dt.timedelta(hours=settings.surge_hours), dt.timedelta(minutes=settings.sudden_minutes)
    )
    subjects = [f.subject for f in findings]
    latest = {}
    for warning in session.scalars(
        sa.select(EarlyWarning)
        .where(EarlyWarning.subject.in_(subjects), EarlyWarning.updated_at >= now - span - cooldown)
        .order_by(EarlyWarning.created_at, EarlyWarning.id)
    ):
        latest[warning.subject] = warning  # the latest of each subject
    for finding in findings:
        warning = latest.get(finding.subject)
        if warning is not None:
            if warning.state == WarningState.open and warning.created_at > now - cooldown:
                if _add_evidence(session, warning, finding, now, config):
                    result.updated.append(warning)
                continue
            # Acknowledged, or raised a cooldown ago: a new episode needs as many new
            # tickets (not evidence of the last warning) as raising one does.
            known = set(warning.ticket_ids or ())
            pairs = zip(finding.ticket_ids, finding.received, strict=True)
            fresh = [at for i, at in pairs if i not in known]
            if len(fresh) < _threshold(finding.kind, settings):
                continue
            finding.key_at = min(fresh)
        warning, raised = _raise(session, finding, now, config)
        (result.raised if raised else result.updated).append(warning)
    return result


def _threshold(kind, settings):
    """The tickets a warning of ``kind`` takes at least."""
    return settings.sudden_count if kind == WarningKind.sudden else settings.surge_min_count


def _add_evidence(session, warning, finding, now, config):
    """Add ``finding``'s tickets to ``warning`` (same subject, same episode). Returns whether
    anything was new."""
    if warning.state != WarningState.open:
        return False  # acknowledged: that episode is closed
    known = set(warning.ticket_ids or [])
    new = [i for i in finding.ticket_ids if i not in known]
    if not new:
        return False
    warning.ticket_ids = sorted(known | set(new))[:MAX_EVIDENCE]
    if finding.observed > warning.observed:
        # The peak so far: its counts, and the title and body that state them.
        warning.observed = finding.observed
        warning.expected = finding.expected
        warning.score = finding.score
        title, body = _texts(finding, config)
        warning.title, warning.body = title[:200], body[:1000]
    warning.window_end = max(warning.window_end, finding.window_end)
    warning.updated_at = now
    session.flush()
    events.queue(session, _event(UPDATED, warning))
    return True


def _raise(session, finding, now, config):
    """Insert the warning of a new episode and tell people; if another scanner inserted the
    same episode meanwhile, add to that one instead. Returns (warning, raised)."""
    title, body = _texts(finding, config)
    key_at = finding.key_at or finding.first_at
    warning = EarlyWarning(
        kind=finding.kind,
        dedup_key=f"{finding.subject}@{key_at.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ}",
        subject=finding.subject,
        title=title[:200],
        body=body[:1000],
        category_id=finding.category.id if finding.category else None,
        area_id=finding.words["area"].id if finding.words.get("area") else None,
        district_id=finding.words["district"].id if finding.words.get("district") else None,
        place=(finding.place or "")[:100] or None,
        window_start=finding.window_start,
        window_end=finding.window_end,
        observed=finding.observed,
        expected=finding.expected,
        score=finding.score,
        ticket_ids=sorted(finding.ticket_ids)[:MAX_EVIDENCE],
        state=WarningState.open,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(warning)
    except IntegrityError:
        existing = session.scalars(
            sa.select(EarlyWarning).where(EarlyWarning.dedup_key == warning.dedup_key)
        ).one()
        _add_evidence(session, existing, finding, now, config)
        return existing, False
    session.flush()
    notify.deliver(session, _messages(session, warning, finding, config), now)
    events.queue(session, _event(RAISED, warning))
    audit(
        session,
        None,
        "warning.raise",
        target=f"warning:{warning.id}",
        payload={
            "kind": warning.kind.value,
            "subject": warning.subject,
            "observed": warning.observed,
            "expected": warning.expected,
            "tickets": len(warning.ticket_ids),
        },
    )
    return warning, True


def _local(moment, config):
    return moment.astimezone(ZoneInfo(config["TIMEZONE"]))


def _texts(finding, config):
    """The title and body people read (Chinese)."""
    w = finding.words
    start, end = _local(finding.window_start, config), _local(finding.window_end, config)
    span = f"{start.month}月{start.day}日 {start:%H:%M}–{end:%H:%M}"
    category = w.get("category_name")
    if finding.kind == WarningKind.surge:
        where = w.get("chain") or finding.place or "未知区域"
        hours = round((finding.window_end - finding.window_start).total_seconds() / 3600)
        title = f"{where}{category}类诉求激增"
        ratio = (
            f"为平常的 {finding.observed / finding.expected:.1f} 倍"
            if finding.expected
            else "往常同期几乎没有此类诉求"
        )
        body = (
            f"{span}（近 {hours} 小时），{where}共收到“{category}”类诉求 {finding.observed} 件；"
            f"此前 {w['weeks']} 周的 {w['days']} 个{w['day_kind']}同一时段平均 "
            f"{finding.expected:.1f} 件，{ratio}。请关注是否存在区域性问题并协调处置。"
        )
        return title, body
    where = w.get("chain") or finding.place
    minutes = w["minutes"]
    start, end = _local(finding.first_at, config), _local(w["last_at"], config)
    span = f"{start.month}月{start.day}日 {start:%H:%M}–{end:%H:%M}"
    about = f"，主要为“{category}”" if category else ""
    title = f"{where}突发：{minutes}分钟内{finding.observed}件诉求"
    body = (
        f"{span}，{minutes} 分钟内收到关于{where}的诉求 {finding.observed} 件"
        f"{about}。可能发生突发事件（停水停电、燃气泄漏、管道破裂等），请立即核实并通知相关单位处置。"
    )
    return title, body


def _messages(session, warning, finding, config):
    """The message centre items: the hotline centre (supervisors), the mayor's office and
    the district government of the warning's district."""
    units = []
    centre = session.scalars(
        sa.select(Unit).where(Unit.kind == UnitKind.hotline_centre, Unit.active).order_by(Unit.id)
    ).first()
    mayor = session.scalars(
        sa.select(Unit).where(Unit.code == config["MAYORS_OFFICE_UNIT"])
    ).first()
    district = finding.words.get("district")
    government = routing.district_government_for(session, district) if district else None
    for unit in (centre, mayor, government):
        if unit is not None and unit not in units:
            units.append(unit)
    level = AlertLevel.red if warning.kind == WarningKind.sudden else AlertLevel.yellow
    return [
        notify.Message(
            unit_id=unit.id,
            unit_code=unit.code,
            kind=NOTIFY_KIND[warning.kind],
            level=level,
            title=f"【{warning.kind.label}预警】{warning.title}"[:200],
            body=warning.body,
        )
        for unit in units
    ]


def _event(kind, warning):
    return {
        "type": kind,
        "id": warning.id,
        "kind": warning.kind.value,
        "title": warning.title,
        # ``area``: the boards' publisher refreshes the city and this district's board.
        "district": warning.district.code if warning.district else None,
        "area": warning.district.code if warning.district else None,
    }


# -- acknowledging -----------------------------------------------------------------------------


def may_view(user, warning=None):
    """Supervisors, leaders, dispatchers and administrators read warnings; a district leader
    only those of their district or with an evidence ticket in it (a sudden event placed by
    the text of its tickets can span districts: its district is the most common one)."""
    if user.role not in VIEW_ROLES:
        return False
    if warning is None or not _district_bound(user) or warning.district_id == user.district_id:
        return True
    if warning.area_id is not None:  # placed by an area: all its tickets are in that district
        return False
    session = sa.orm.object_session(warning)
    query = sa.select(EarlyWarning.id).where(EarlyWarning.id == warning.id, _has_evidence_of(user))
    return session is not None and session.scalar(query) is not None


def _district_bound(user):
    return user.role == Role.leader and user.district_id is not None


class _evidence_ids(sa.sql.functions.GenericFunction):
    """The elements of a warning's ``ticket_ids`` as rows (``value``): a table-valued
    function, ``json_each`` on SQLite, ``jsonb_array_elements_text`` on PostgreSQL."""

    name = "evidence_ids"
    inherit_cache = True


@compiles(_evidence_ids, "postgresql")
def _evidence_ids_pg(element, compiler, **kw):
    return f"jsonb_array_elements_text({compiler.process(element.clauses, **kw)})"


@compiles(_evidence_ids, "sqlite")
def _evidence_ids_sqlite(element, compiler, **kw):
    return f"json_each({compiler.process(element.clauses, **kw)})"


def _has_evidence_of(user):
    """The SQL condition: the warning has an evidence ticket ``user`` may see (the tickets'
    scope of ``dispatch.access``)."""
    evidence = _evidence_ids(EarlyWarning.ticket_ids).table_valued("value").alias("evidence")
    return sa.exists(
        sa.select(sa.literal(1))
        .select_from(evidence)
        .join(Ticket, Ticket.id == sa.cast(evidence.c.value, sa.Integer))
        .where(access.scope_condition(user))
    )


def visible(session, user, warning_id):
    """The warning ``warning_id`` if ``user`` may read it (else ``NotFound``: a district
    leader is not told of other districts' warnings)."""
    if user.role not in VIEW_ROLES:
        raise NotFound(f"预警不存在：{warning_id}", code="WARNING_NOT_FOUND")
    query = sa.select(EarlyWarning).where(EarlyWarning.id == warning_id)
    condition = scope_condition(user)
    warning = session.scalar(query if condition is None else query.where(condition))
    if warning is None:
        raise NotFound(f"预警不存在：{warning_id}", code="WARNING_NOT_FOUND")
    return warning


def may_acknowledge(user, warning):
    """Supervisors and leaders; a district leader only their own district's warnings (one
    they see for an evidence ticket of theirs belongs to another district's leaders)."""
    if user.role not in ACK_ROLES:
        return False
    return not _district_bound(user) or warning.district_id == user.district_id


def scope_condition(user):
    """The SQL condition of the warnings ``user`` may see (None: all): a district leader's
    are those of their district and those placed by text (no area) with an evidence ticket
    in it."""
    if not _district_bound(user):
        return None
    return sa.or_(
        EarlyWarning.district_id == user.district_id,
        sa.and_(EarlyWarning.area_id.is_(None), _has_evidence_of(user)),
    )


def acknowledge(session, actor, warning, note, *, now, config=None):
    """确认预警: a supervisor or leader (a district leader: their district's) acknowledges
    ``warning``, once, with an optional note. The caller commits."""
    if actor.role not in ACK_ROLES:
        raise Forbidden("只有督办审核员和领导可以确认预警", code="WARNING_ACK_FORBIDDEN")
    if not may_acknowledge(actor, warning):
        raise Forbidden("只能确认本区的预警", code="WARNING_NOT_IN_SCOPE")
    note = (note or "").strip() or None
    note = note[:1000] if note else None
    # One conditional UPDATE: of two people acknowledging at once, the second's finds the
    # state no longer open (PostgreSQL re-checks the row after the first commits).
    done = session.execute(
        sa.update(EarlyWarning)
        .where(EarlyWarning.id == warning.id, EarlyWarning.state == WarningState.open)
        .values(
            state=WarningState.acknowledged,
            acknowledged_at=now,
            acknowledged_by_id=actor.id,
            acknowledged_note=note,
        )
        .execution_options(synchronize_session=False)
    )
    session.refresh(warning)
    if done.rowcount != 1:
        who = warning.acknowledged_by.name if warning.acknowledged_by else "他人"
        when = _local(warning.acknowledged_at, _config(config))
        raise Conflict(
            f"该预警已由{who}于 {when:%Y-%m-%d %H:%M} 确认，无需重复确认",
            code="WARNING_ALREADY_ACKNOWLEDGED",
        )
    audit(
        session,
        actor,
        "warning.acknowledge",
        target=f"warning:{warning.id}",
        payload={"kind": warning.kind.value, "subject": warning.subject, "note": note},
    )
    events.queue(session, _event(ACKNOWLEDGED, warning))
    return warning


#: Open warnings a board's banner lists (the count says how many there are in all), and
#: how many of the newest open ones the rooms' lists are taken from.
BANNER_SIZE = 5
BANNER_POOL = 200


def banner(session, rooms):
    """{room: {"count", "items"}}: the open (unacknowledged) warnings of each board room
    (``city``: all; ``district:<code>``: that district's), sudden events first, then newest
    first, at most ``BANNER_SIZE`` listed. Two queries for all rooms (counts per district;
    the newest ``BANNER_POOL`` open warnings to list from)."""
    opened = EarlyWarning.state == WarningState.open
    counts = dict(
        session.execute(
            sa.select(Area.code, sa.func.count())
            .select_from(EarlyWarning)
            .outerjoin(Area, Area.id == EarlyWarning.district_id)
            .where(opened)
            .group_by(Area.code)
        ).all()
    )
    rows = session.execute(
        sa.select(
            EarlyWarning.id,
            EarlyWarning.kind,
            EarlyWarning.title,
            EarlyWarning.created_at,
            Area.code,
        )
        .outerjoin(Area, Area.id == EarlyWarning.district_id)
        .where(opened)
        .order_by(
            sa.case((EarlyWarning.kind == WarningKind.sudden, 0), else_=1),
            EarlyWarning.created_at.desc(),
            EarlyWarning.id.desc(),
        )
        .limit(BANNER_POOL)
    ).all()
    result = {}
    for room in rooms:
        district = None if room == "city" else room.removeprefix("district:")
        mine = [r for r in rows if district is None or r.code == district]
        count = sum(counts.values()) if district is None else counts.get(district, 0)
        result[room] = {
            "count": count,
            "items": [
                {
                    "id": r.id,
                    "kind": r.kind.value,
                    "label": r.kind.label,
                    "level": "red" if r.kind == WarningKind.sudden else "yellow",
                    "title": r.title,
                    "at": r.created_at.isoformat(),
                }
                for r in mine[:BANNER_SIZE]
            ],
        }
    return result


def open_warnings(session, district_code=None, limit=10):
    """The open (unacknowledged) warnings of the city or of one district, newest first, and
    how many there are: what a board's banner shows."""
    query = sa.select(EarlyWarning).where(EarlyWarning.state == WarningState.open)
    if district_code is not None:
        query = query.join(Area, Area.id == EarlyWarning.district_id).where(
            Area.code == district_code
        )
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    rows = session.scalars(
        query.order_by(EarlyWarning.created_at.desc(), EarlyWarning.id.desc()).limit(limit)
    ).all()
    return rows, total
