"""Hot issues (热点问题) in the database: grouping tickets as they arrive, the batch rebuild,
a supervisor's decisions, and the queries the pages and the API show.

Grouping is the engine's (``classifier.hotspots``: blocking by place, text similarity, titles,
heat); this module keeps its memberships in ``hot_issue_tickets`` and its figures in
``hot_issues``.

**The grouper** (``Grouper.run``, the scheduler's job every ``HOTSPOT_INTERVAL_SECONDS``).
One process holds the in-memory ``Index``, built on first use by replaying the window's
tickets (setting ``hotspot.window_days``) in (received, id) order, each ticket with its stored
membership forced (``group=``), so the index agrees with the database. Each run then adds
the tickets received since its high-water mark (looking ``MARGIN`` ids back for tickets
committed out of id order; every ``REFRESH_ALL_SECONDS`` it also sweeps the window for ticket
ids the index does not hold, committed later still) and, for every group it touched:

- a group named by a hot issue (``("hot", id)``): its new tickets become members;
- another group that reached ``hotspot.min_size``: a new hot issue (open) is created, the
  group is renamed to it, and all its tickets become members.

Each changed hot issue gets its figures again (size, callers, first/last, most frequent
category and district, place, keywords, title unless a person fixed it, heat and its parts),
and a ``hotspot.changed`` event. Heat depends on the time (growth of the last 7 days), so
every open or handled hot issue with a ticket in the last ``GROWTH_DAYS * 2`` days gets it
again every ``REFRESH_ALL_SECONDS``.

Only one grouper runs at a time: it takes a PostgreSQL advisory lock (try-lock: skipped
while another holds it), as do the rebuild (it waits) and the decisions (they wait at most
``DECISION_WAIT_SECONDS``, then refuse with HOTSPOT_BUSY), so a run never interleaves with
them; ``hot_issue_tickets.ticket_id`` is the primary key, the last guard. A person's decision
and a rebuild raise the ``hotspots`` reference counter (``hotline.reference``); a grouper
whose stamp differs replays its index from the database before its next run. The grouper's
own runs do not raise it (two schedulers would otherwise replay in turn every run): each run
reads the stored memberships of the groups it touches, so a group another process's grouper
already made a hot issue is joined to it, not made twice; a run whose writes are not there
the next time (the caller rolled it back) makes the grouper replay. The replay reads only
the part of each text the engine reads.

**Rebuild** (``rebuild``: ``hotline hotspots rebuild``, after the demo's history): the
window is grouped again from scratch with the pinned memberships forced; each group is
mapped to the existing hot issue with the largest overlap, so ids, states and fixed titles
survive; unpinned memberships that no longer belong are removed; a hot issue no group maps
to is deleted if no person ever touched it (still open, not renamed, no pinned ticket),
else kept as it is.

**Decisions** (supervisors only, ``DECIDE_ROLES``; administrators read; audited,
``hotspot.changed`` queued):
``merge`` (all tickets of one hot issue move into another, pinned; the first becomes 已合并),
``split`` (chosen tickets become a new hot issue, pinned; the rest stay, pinned too, so a
rebuild cannot join them again), ``mark_handled`` (its tickets pinned: what was handled
stays with it) / ``reopen``, ``rename`` (the title is
kept by later runs and rebuilds).
"""

import collections
import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from classifier import hotspots as engine
from dispatch import access, hot_issues
from hotline import events, reference, settings
from hotline.audit import audit, audit_change
from hotline.db import utcnow
from hotline.enums import AreaLevel, AssignmentRole, HotIssueState, Role, Satisfaction
from hotline.errors import Conflict, Forbidden, NotFound, ValidationFailed
from hotline.models import (
    Area,
    Assignment,
    AuditLog,
    Category,
    EarlyWarning,
    HotIssue,
    HotIssueTicket,
    Ticket,
    Unit,
    User,
)
from hotline.privacy import scrub_personal
from hotline.schemas import iso, local_day

#: Tickets committed out of id order that a run still looks back for.
MARGIN = 200
#: Every open hot issue's heat is computed again this often (growth moves with time).
REFRESH_ALL_SECONDS = 600
#: Growth: tickets of the last this many days against the same span before.
GROWTH_DAYS = 7
#: The PostgreSQL advisory lock of the grouper, the rebuild and the decisions.
LOCK_KEY = 1_612_345
#: How long a person's decision waits for a grouper run (or a rebuild) to finish.
DECISION_WAIT_SECONDS = 3.0
BUSY_MESSAGE = "热点问题正在自动归并或重建，请稍后几秒再试"
#: Who sees hot issues, and who decides about them (merge, split, handled, reopen, rename):
#: the issue gives the decisions to supervisors; administrators read.
VIEW_ROLES = hot_issues.VIEW_ROLES
DECIDE_ROLES = frozenset({Role.supervisor})
EVENT = "hotspot.changed"
TITLE_MAX = 200
NOTE_MAX = 1000


def _hot_key(hot_issue_id):
    return ("hot", hot_issue_id)


def _hot_id(key):
    """The hot issue a group key names, or None (a group the engine keys)."""
    if isinstance(key, tuple) and len(key) == 2 and key[0] == "hot":
        return key[1]
    return None


# -- locking ---------------------------------------------------------------------------------


def _is_postgres(session):
    return session.get_bind().dialect.name == "postgresql"


def try_lock(session):
    """Take the grouping lock for this transaction if free (PostgreSQL); True if taken.
    SQLite has one writer at a time anyway."""
    if not _is_postgres(session):
        return True
    return bool(session.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(LOCK_KEY))))


def lock(session):
    """Wait for the grouping lock (a rebuild never interleaves with a run)."""
    if _is_postgres(session):
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_KEY)))


def lock_for_decision(session, wait=None):
    """Take the grouping lock for a person's decision, waiting at most ``wait`` seconds
    (``DECISION_WAIT_SECONDS``); a run or a rebuild still holding it then is a refusal
    (HOTSPOT_BUSY) rather than a page that hangs."""
    if not _is_postgres(session):
        return
    wait = DECISION_WAIT_SECONDS if wait is None else wait
    deadline = time.monotonic() + wait
    while not try_lock(session):
        if time.monotonic() >= deadline:
            raise Conflict(BUSY_MESSAGE, code="HOTSPOT_BUSY", retry_after=max(1, round(wait)))
        time.sleep(0.1)


# -- tickets as the engine sees them ------------------------------------------------------------

_TICKET_COLUMNS = (
    Ticket.id,
    Ticket.received_at,
    Ticket.title,
    # The engine reads the title and the text's first ``TEXT_CHARS * 2`` characters only: a
    # replay of 90 days need not carry every long complaint across.
    sa.func.substr(Ticket.content, 1, engine.TEXT_CHARS * 2).label("content"),
    Ticket.requester_phone,
    Ticket.area_id,
    Ticket.likes,
)


class Places:
    """Each area's chain of names, most specific first (秀新社区, 坑梓街道, 坪山区)."""

    def __init__(self, session):
        rows = session.execute(sa.select(Area.id, Area.name, Area.parent_id)).all()
        self._rows = {r.id: (r.name, r.parent_id) for r in rows}
        self._chains = {}

    def chain(self, area_id):
        if area_id is None:
            return ()
        if area_id not in self._chains:
            names, current, seen = [], area_id, set()
            while current is not None and current in self._rows and current not in seen:
                seen.add(current)
                name, current = self._rows[current]
                names.append(name)
            self._chains[area_id] = tuple(names)
        return self._chains[area_id]


def _message(row, places):
    return engine.Message(
        id=row.id,
        at=row.received_at,
        title=row.title or "",
        text=row.content or "",
        caller=row.requester_phone,
        places=places.chain(row.area_id),
        likes=row.likes or 0,
    )


def _window_rows(session, start, condition=None):
    query = sa.select(*_TICKET_COLUMNS).where(Ticket.received_at >= start)
    if condition is not None:
        query = query.where(condition)
    return session.execute(query.order_by(Ticket.received_at, Ticket.id)).all()


def _memberships(session, ticket_ids=None):
    """``{ticket_id: (hot_issue_id, pinned)}`` (of ``ticket_ids`` if given)."""
    query = sa.select(HotIssueTicket.ticket_id, HotIssueTicket.hot_issue_id, HotIssueTicket.pinned)
    if ticket_ids is not None:
        found = {}
        ids = list(ticket_ids)
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            for row in session.execute(query.where(HotIssueTicket.ticket_id.in_(chunk))):
                found[row.ticket_id] = (row.hot_issue_id, row.pinned)
        return found
    return {r.ticket_id: (r.hot_issue_id, r.pinned) for r in session.execute(query)}


def _window_start(session, now):
    return now - dt.timedelta(days=settings.get(session, "hotspot.window_days"))


def _new_index(session):
    return engine.Index(window_days=settings.get(session, "hotspot.window_days"))


# -- a hot issue's figures --------------------------------------------------------------------


def refresh(session, hot_issue_ids, now, index=None):
    """Compute the figures of these hot issues again from their tickets: size, callers,
    first/last, category and district (most frequent), heat and its parts; place, keywords
    and (unless fixed) the title from ``index`` when it holds the group. Returns the
    refreshed HotIssue rows."""
    ids = sorted(set(hot_issue_ids))
    if not ids:
        return []
    issues = {i.id: i for i in session.scalars(sa.select(HotIssue).where(HotIssue.id.in_(ids)))}
    rows = session.execute(
        sa.select(
            HotIssueTicket.hot_issue_id,
            HotIssueTicket.ticket_id,
            Ticket.received_at,
            Ticket.requester_phone,
            Ticket.category_id,
            Ticket.reopen_count,
            Ticket.callback_satisfaction,
            Ticket.likes,
            Area.code.label("area_code"),
        )
        .join(Ticket, Ticket.id == HotIssueTicket.ticket_id)
        .outerjoin(Area, Area.id == Ticket.area_id)
        .where(HotIssueTicket.hot_issue_id.in_(ids))
    ).all()
    by_issue = collections.defaultdict(list)
    for row in rows:
        by_issue[row.hot_issue_id].append(row)
    district_codes = {r.area_code[:6] for r in rows if r.area_code and len(r.area_code) >= 6}
    districts = (
        dict(
            session.execute(
                sa.select(Area.code, Area.id).where(
                    Area.code.in_(district_codes), Area.level == AreaLevel.district
                )
            ).all()
        )
        if district_codes
        else {}
    )
    for hot_id, issue in issues.items():
        members = by_issue.get(hot_id, [])
        _set_figures(issue, members, districts, now)
        key = _hot_key(hot_id)
        if index is not None and _has_group(index, key):
            group = index.group(key)
            issue.place = (group.place or None) and group.place[:100]
            issue.keywords = list(group.keywords or [])
            if not issue.title_fixed:
                issue.title = (index.title(key) or issue.title or "热点问题")[:TITLE_MAX]
        issue.updated_at = now
    session.flush()
    return list(issues.values())


def _has_group(index, key):
    try:
        index.group(key)
    except KeyError:
        return False
    return True


def _set_figures(issue, members, districts, now):
    issue.size = len(members)
    if not members:
        issue.callers = 0
        issue.heat, issue.heat_parts = engine.heat(engine.HeatInput(0, 0, 0, 0, 0))
        return
    # The engine counts callers, growth and likes (one home for them); the outcomes are the
    # tickets' own.
    heat_input = engine.heat_input(
        [
            engine.Message(
                id=m.ticket_id,
                at=m.received_at,
                title="",
                text="",
                caller=m.requester_phone,
                likes=m.likes or 0,
            )
            for m in members
        ],
        now,
        reopened=sum(1 for m in members if (m.reopen_count or 0) > 0),
        unhappy=sum(1 for m in members if m.callback_satisfaction == Satisfaction.dissatisfied),
    )
    issue.callers = heat_input.callers
    issue.heat, issue.heat_parts = engine.heat(heat_input)
    issue.heat = round(float(issue.heat), 3)
    issue.first_at = min(m.received_at for m in members)
    issue.last_at = max(m.received_at for m in members)
    issue.category_id = _most_frequent(m.category_id for m in members)
    issue.district_id = _most_frequent(
        districts.get(m.area_code[:6]) if m.area_code else None for m in members
    )


def _most_frequent(values):
    counts = collections.Counter(v for v in values if v is not None)
    if not counts:
        return None
    return min(counts.items(), key=lambda item: (-item[1], item[0]))[0]


def _changed(session, issue, now):
    """Tell the boards and other processes (after commit) that ``issue`` changed."""
    district = session.scalar(sa.select(Area.code).where(Area.id == issue.district_id))
    events.queue(
        session,
        {
            "type": EVENT,
            "hot_issue": issue.id,
            "state": issue.state.value,
            "area": district or "",
            "at": now.isoformat(),
        },
    )


def _create(session, index, key, now):
    """A new hot issue for the engine's group ``key``; the group takes its id."""
    group = index.group(key)
    issue = HotIssue(
        title=(index.title(key) or "热点问题")[:TITLE_MAX],
        place=(group.place or None) and group.place[:100],
        keywords=list(group.keywords or []),
        first_at=group.first_at,
        last_at=group.last_at,
        state=HotIssueState.open,
        heat_parts={},
        created_at=now,
        updated_at=now,
    )
    session.add(issue)
    session.flush()
    index.rekey(key, _hot_key(issue.id))
    return issue


# -- the grouper ------------------------------------------------------------------------------


@dataclass
class RunResult:
    skipped: bool = False
    #: Whether the index was (re)built from the database in this run.
    loaded: bool = False
    added: int = 0
    created: list = field(default_factory=list)
    grown: list = field(default_factory=list)
    refreshed: int = 0


class Grouper:
    """The incremental grouper: one per process that runs the job (the scheduler)."""

    def __init__(self, *, margin=MARGIN):
        self._lock = threading.Lock()
        self._area_names = None
        #: How many ids back each run looks for tickets committed out of id order; one
        #: committed later still is found by the sweep (``_sweep``).
        self.margin = margin
        self.reset()

    def reset(self):
        """Forget the index: the next run replays it from the database."""
        self.index = None
        #: ticket id → hot issue id, as stored.
        self.member = {}
        self.floor = None
        self.seen = set()
        self.stamp = None
        self.window_days = self.min_size = None
        self.database = None
        self.refreshed_at = None
        self.swept_at = None
        #: ticket id → hot issue id written by the last run (checked by the next).
        self.written = {}

    def run(self, source, now=None):
        """One run on ``source``: a session factory (the run commits) or a session (the
        caller commits; a rollback is noticed by the next run through the stamp)."""
        now = now or utcnow()
        if not self._lock.acquire(blocking=False):
            return RunResult(skipped=True)
        try:
            if isinstance(source, Session):
                return self._run(source, now)
            session = source()
            try:
                result = self._run(session, now)
                session.commit()
                return result
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()
        except BaseException:
            self.reset()
            raise
        finally:
            self._lock.release()

    def _run(self, session, now):
        if not try_lock(session):
            return RunResult(skipped=True)
        result = RunResult()
        window_days = settings.get(session, "hotspot.window_days")
        min_size = settings.get(session, "hotspot.min_size")
        # Read afresh each run (one small query): a decision committed a moment ago, or this
        # grouper's own last run rolled back, must not wait for the watcher's interval.
        reference.forget()
        stamp = reference.stamp(session, reference.HOTSPOTS)
        database = str(session.get_bind().engine.url)
        places = self._places(session, database)
        if (
            self.index is None
            or stamp != self.stamp
            or (window_days, min_size) != (self.window_days, self.min_size)
            or database != self.database
            or not self._last_run_stored(session)
        ):
            touched = self._load(session, now, places)
            result.loaded = True
            result.added = len(self.index)
        else:
            for ticket_id in self.index.expire(now):
                self.member.pop(ticket_id, None)
            touched = self._add_new(session, now, places, result)
            touched |= self._sweep(session, now, places, result)
        self.window_days, self.min_size = window_days, min_size
        self.database = database
        changed = self._sync(session, touched, now, result)
        due = self._refresh_due(session, now)
        refreshed = refresh(session, changed | due, now, self.index)
        result.refreshed = len(refreshed)
        for issue in refreshed:
            if issue.id in changed:
                _changed(session, issue, now)
        # No bump of the ``hotspots`` counter: another process's grouper catches up with
        # these memberships when it touches their groups (``_sync``), without a replay.
        self.stamp = stamp
        return result

    def _last_run_stored(self, session):
        """Whether the memberships the last run wrote are stored (not if the caller rolled
        that run back)."""
        if not self.written:
            return True
        stored = _memberships(session, self.written)
        return all(stored.get(t, (None,))[0] == h for t, h in self.written.items())

    def _places(self, session, database):
        """The areas' names, read again only when the areas changed (``hotline.reference``)."""
        stamp = (database, reference.stamp(session, reference.AREAS))
        if self._area_names is None or self._area_names[0] != stamp:
            self._area_names = (stamp, Places(session))
        return self._area_names[1]

    def _load(self, session, now, places):
        """Replay the window with the stored memberships forced."""
        self.reset()
        self.index = _new_index(session)
        rows = _window_rows(session, _window_start(session, now))
        stored = _memberships(session, [r.id for r in rows])
        for row in rows:
            hot = stored.get(row.id)
            self.index.add(_message(row, places), group=_hot_key(hot[0]) if hot else None)
            if hot:
                self.member[row.id] = hot[0]
        top = session.scalar(sa.select(sa.func.max(Ticket.id))) or 0
        self.floor = max(0, top - self.margin)
        self.seen = {r.id for r in rows if r.id > self.floor}
        # Tickets received before the window but committed lately are not grouped: mark them.
        self.seen |= set(
            session.scalars(
                sa.select(Ticket.id).where(
                    Ticket.id > self.floor, Ticket.received_at < _window_start(session, now)
                )
            )
        )
        self.refreshed_at = None
        self.swept_at = now
        return {g.key for g in self.index.groups()}

    def _add_new(self, session, now, places, result):
        rows = session.execute(
            sa.select(*_TICKET_COLUMNS)
            .where(Ticket.id > self.floor)
            .order_by(Ticket.received_at, Ticket.id)
        ).all()
        start = _window_start(session, now)
        touched = set()
        for row in rows:
            if row.id in self.seen or row.received_at < start:
                continue
            self.seen.add(row.id)
            assigned = self.index.add(_message(row, places))
            touched.add(assigned.group)
            result.added += 1
        top = max([self.floor, *(r.id for r in rows)])
        self.floor = max(self.floor, top - self.margin)
        self.seen = {i for i in self.seen if i > self.floor}
        return touched

    def _sweep(self, session, now, places, result):
        """Every ``REFRESH_ALL_SECONDS``: the window's tickets at or below the floor that the
        index does not hold (a transaction that committed after more than ``margin`` later
        ids), added now. One query of ids, then the rows of those missing."""
        if self.swept_at is not None and (now - self.swept_at).total_seconds() < (
            REFRESH_ALL_SECONDS
        ):
            return set()
        self.swept_at = now
        ids = session.scalars(
            sa.select(Ticket.id).where(
                Ticket.received_at >= _window_start(session, now), Ticket.id <= self.floor
            )
        ).all()
        missing = [i for i in ids if self.index.group_of(i) is None]
        if not missing:
            return set()
        touched = set()
        for start in range(0, len(missing), 5000):
            rows = _window_rows(
                session,
                _window_start(session, now),
                Ticket.id.in_(missing[start : start + 5000]),
            )
            for row in rows:
                assigned = self.index.add(_message(row, places))
                touched.add(assigned.group)
                result.added += 1
        return touched

    def _sync(self, session, keys, now, result):
        """Store what the index decided for the groups ``keys``; returns the changed hot
        issues' ids."""
        min_size = settings.get(session, "hotspot.min_size")
        changed = set()
        self.written = {}
        keys = [k for k in keys if _has_group(self.index, k)]
        # What is stored now: another process's grouper may have written these groups.
        ids = [t for k in keys for t in self.index.group(k).ids]
        stored = _memberships(session, ids)
        for ticket_id in ids:
            if ticket_id in stored:
                self.member[ticket_id] = stored[ticket_id][0]
            else:
                self.member.pop(ticket_id, None)
        for key in keys:
            group = self.index.group(key)
            hot_id = _hot_id(key)
            if hot_id is None:
                known = collections.Counter(
                    stored[t][0]
                    for t in group.ids
                    if t in stored and not _has_group(self.index, _hot_key(stored[t][0]))
                )
                if known:
                    # Another grouper made this group a hot issue: the group takes its id.
                    hot_id = min(known.items(), key=lambda item: (-item[1], item[0]))[0]
                    self.index.rekey(key, _hot_key(hot_id))
                    key = _hot_key(hot_id)
                    group = self.index.group(key)
            if hot_id is None:
                if len(group.ids) < min_size:
                    continue
                issue = _create(session, self.index, key, now)
                hot_id = issue.id
                result.created.append(hot_id)
            elif any(self.member.get(t) != hot_id for t in group.ids):
                result.grown.append(hot_id)
            else:
                continue
            for ticket_id in group.ids:
                if self.member.get(ticket_id) == hot_id:
                    continue
                if ticket_id in stored and stored[ticket_id][0] != hot_id:
                    continue  # stored elsewhere meanwhile (another grouper): first one wins
                _put(session, ticket_id, hot_id, now, pinned=False)
                self.member[ticket_id] = hot_id
                self.written[ticket_id] = hot_id
            changed.add(hot_id)
        session.flush()
        return changed

    def _refresh_due(self, session, now):
        if (
            self.refreshed_at is not None
            and (now - self.refreshed_at).total_seconds() < REFRESH_ALL_SECONDS
        ):
            return set()
        self.refreshed_at = now
        return set(
            session.scalars(
                sa.select(HotIssue.id).where(
                    HotIssue.state != HotIssueState.merged,
                    HotIssue.last_at >= now - dt.timedelta(days=2 * GROWTH_DAYS + 1),
                )
            )
        )


def _put(session, ticket_id, hot_issue_id, now, *, pinned):
    """Make ``ticket_id`` a member of ``hot_issue_id`` (moving it if it was elsewhere)."""
    row = session.get(HotIssueTicket, ticket_id)
    if row is None:
        session.add(
            HotIssueTicket(
                ticket_id=ticket_id, hot_issue_id=hot_issue_id, pinned=pinned, added_at=now
            )
        )
    else:
        row.hot_issue_id = hot_issue_id
        row.pinned = pinned or row.pinned


_grouper = Grouper()


def run(source, now=None):
    """This process's grouper's run (the scheduler's job)."""
    return _grouper.run(source, now)


def grouper():
    return _grouper


# -- rebuild ----------------------------------------------------------------------------------


@dataclass
class RebuildResult:
    tickets: int = 0
    groups: int = 0
    created: list = field(default_factory=list)
    kept: list = field(default_factory=list)
    deleted: list = field(default_factory=list)
    #: Hot issues no group maps to, kept because a person touched them.
    untouched_kept: list = field(default_factory=list)
    added: int = 0
    removed: int = 0
    moved: int = 0

    def as_dict(self):
        return {
            "tickets": self.tickets,
            "groups": self.groups,
            "created": self.created,
            "kept": self.kept,
            "deleted": self.deleted,
            "kept_unmatched": self.untouched_kept,
            "memberships_added": self.added,
            "memberships_removed": self.removed,
            "memberships_moved": self.moved,
        }


def rebuild(session, now=None, actor=None):
    """Group the window again from scratch (pinned memberships forced) and store it,
    keeping ids, states and fixed titles; see the module's docstring. The caller commits."""
    now = now or utcnow()
    lock(session)
    min_size = settings.get(session, "hotspot.min_size")
    places = Places(session)
    rows = _window_rows(session, _window_start(session, now))
    stored = _memberships(session, [r.id for r in rows])
    index = _new_index(session)
    for row in rows:
        hot = stored.get(row.id)
        pinned = hot is not None and hot[1]
        index.add(_message(row, places), group=_hot_key(hot[0]) if pinned else None)
    result = RebuildResult(tickets=len(rows))
    groups = [g for g in index.groups() if _hot_id(g.key) is not None or len(g.ids) >= min_size]
    result.groups = len(groups)
    existing = {
        i.id: i
        for i in session.scalars(
            sa.select(HotIssue).where(
                HotIssue.id.in_({h for h, _ in stored.values()}),
                HotIssue.state != HotIssueState.merged,
            )
        )
    }
    # Pinned groups keep their hot issue; the others take the one they overlap most, one a
    # person touched (handled, renamed) before an untouched one.
    mapping, taken = {}, set()
    for group in groups:
        if _hot_id(group.key) is not None:
            mapping[group.key] = _hot_id(group.key)
            taken.add(_hot_id(group.key))
    candidates = []
    for group in groups:
        if group.key in mapping:
            continue
        overlap = collections.Counter(
            stored[t][0] for t in group.ids if t in stored and stored[t][0] in existing
        )
        for hot_id, count in overlap.items():
            issue = existing[hot_id]
            touched = (
                issue.state != HotIssueState.open or issue.title_fixed or bool(issue.handled_at)
            )
            candidates.append((not touched, -count, hot_id, str(group.key), group.key))
    for _, _, hot_id, _, key in sorted(candidates, key=lambda c: c[:4]):
        if key in mapping or hot_id in taken:
            continue
        mapping[key] = hot_id
        taken.add(hot_id)
    belongs = {}
    for group in groups:
        if group.key not in mapping:
            issue = _create(session, index, group.key, now)
            mapping[_hot_key(issue.id)] = issue.id
            result.created.append(issue.id)
            hot_id = issue.id
        else:
            hot_id = mapping[group.key]
            if _hot_id(group.key) is None:
                index.rekey(group.key, _hot_key(hot_id))
            result.kept.append(hot_id)
        for ticket_id in index.group(_hot_key(hot_id)).ids:
            belongs[ticket_id] = hot_id
    for row in rows:
        hot = stored.get(row.id)
        target = belongs.get(row.id)
        if hot is None and target is not None:
            session.add(
                HotIssueTicket(ticket_id=row.id, hot_issue_id=target, pinned=False, added_at=now)
            )
            result.added += 1
        elif hot is not None and not hot[1] and target is None:
            session.execute(sa.delete(HotIssueTicket).where(HotIssueTicket.ticket_id == row.id))
            result.removed += 1
        elif hot is not None and target is not None and hot[0] != target:
            session.get(HotIssueTicket, row.id).hot_issue_id = target
            result.moved += 1
    session.flush()
    affected = set(belongs.values()) | {h for h, _ in stored.values()}
    for hot_id in sorted(set(existing) - taken):
        issue = existing[hot_id]
        if _touched_by_person(session, issue):
            result.untouched_kept.append(hot_id)
            continue
        left = session.scalar(
            sa.select(sa.func.count()).where(HotIssueTicket.hot_issue_id == hot_id)
        )
        if left:
            continue  # tickets before the window are its history: not regrouped
        session.execute(
            sa.update(EarlyWarning)
            .where(EarlyWarning.hot_issue_id == hot_id)
            .values(hot_issue_id=None)
        )
        session.delete(issue)
        affected.discard(hot_id)
        result.deleted.append(hot_id)
    session.flush()
    refresh(session, affected, now, index)
    reference.bump(session, reference.HOTSPOTS)
    audit(session, actor, "hotspot.rebuild", target=None, payload=result.as_dict())
    events.queue(session, {"type": EVENT, "rebuild": True, "area": "", "at": now.isoformat()})
    result.created.sort()
    result.kept.sort()
    return result


def _touched_by_person(session, issue):
    if issue.state != HotIssueState.open or issue.title_fixed or issue.handled_at:
        return True
    return bool(
        session.scalar(
            sa.select(sa.func.count()).where(
                HotIssueTicket.hot_issue_id == issue.id, HotIssueTicket.pinned
            )
        )
    )


# -- decisions --------------------------------------------------------------------------------


def require_decider(actor):
    if actor is None or actor.role not in DECIDE_ROLES:
        raise Forbidden(
            "只有督办审核员可以合并、拆分、处理或重命名热点问题",
            code="HOTSPOT_FORBIDDEN",
        )


def _issue(session, value, *, lock_row=True):
    if isinstance(value, HotIssue):
        value = value.id
    query = sa.select(HotIssue).where(HotIssue.id == value)
    if lock_row:
        query = query.with_for_update()
    issue = session.scalars(query).first() if isinstance(value, int) else None
    if issue is None:
        raise NotFound(f"热点问题 #{value} 不存在", code="HOTSPOT_NOT_FOUND")
    return issue


def _open_for_decision(session, hot_issue):
    """The hot issue a decision is about, once the grouper lets go (``lock_for_decision``),
    its row locked; refused if it was merged away."""
    lock_for_decision(session)  # a grouper run writing the same row waits, briefly
    issue = _issue(session, hot_issue)
    _not_merged(issue)
    return issue


def _not_merged(issue):
    if issue.state == HotIssueState.merged:
        raise Conflict(
            f"热点问题 #{issue.id} 已合并到 #{issue.merged_into_id}，请在该热点问题上操作",
            code="HOTSPOT_MERGED",
            details={"merged_into": issue.merged_into_id},
        )


def _member_ids(session, hot_issue_id):
    return set(
        session.scalars(
            sa.select(HotIssueTicket.ticket_id).where(HotIssueTicket.hot_issue_id == hot_issue_id)
        )
    )


def _describe(session, issue, ticket_ids, now):
    """Place, keywords and (unless fixed) title of ``issue`` from its tickets, as the
    engine names a group of them."""
    ids = sorted(ticket_ids)
    if not ids:
        return
    places = Places(session)
    rows = session.execute(
        sa.select(*_TICKET_COLUMNS)
        .where(Ticket.id.in_(ids))
        .order_by(Ticket.received_at, Ticket.id)
    ).all()
    index = engine.Index(window_days=36500)
    key = _hot_key(issue.id)
    for row in rows:
        index.add(_message(row, places), group=key)
    group = index.group(key)
    issue.place = (group.place or None) and group.place[:100]
    issue.keywords = list(group.keywords or [])
    if not issue.title_fixed:
        issue.title = (index.title(key) or issue.title)[:TITLE_MAX]


def _clean_text(value, field_name, label, limit, *, required):
    if value is not None and not isinstance(value, str):
        raise ValidationFailed(f"{label}须为文字", details={field_name: "须为字符串"})
    text = (value or "").strip()
    if required and not text:
        raise ValidationFailed(f"请填写{label}", details={field_name: f"请填写{label}"})
    if len(text) > limit:
        raise ValidationFailed(
            f"{label}不能超过 {limit} 个字", details={field_name: f"不能超过 {limit} 个字"}
        )
    return text


def merge(session, actor, source, into, reason, now=None):
    """合并: every ticket of ``source`` moves into ``into``, pinned (both issues' tickets
    stay together through rebuilds); ``source`` becomes 已合并 with ``merged_into``."""
    require_decider(actor)
    now = now or utcnow()
    reason = _clean_text(reason, "reason", "合并理由", NOTE_MAX, required=True)
    lock_for_decision(session)
    source, into = _issue(session, source), _issue(session, into)
    if source.id == into.id:
        raise Conflict("不能把热点问题合并到它自己", code="HOTSPOT_MERGE_SELF")
    _not_merged(source)
    if into.state == HotIssueState.merged:
        raise Conflict(
            f"目标热点问题 #{into.id} 已合并到 #{into.merged_into_id}，请改为合并到该热点问题",
            code="HOTSPOT_MERGE_INTO_MERGED",
            details={"merged_into": into.merged_into_id},
        )
    moved = sorted(_member_ids(session, source.id))
    session.execute(
        sa.update(HotIssueTicket)
        .where(HotIssueTicket.hot_issue_id.in_([source.id, into.id]))
        .values(hot_issue_id=into.id, pinned=True)
    )
    source.state = HotIssueState.merged
    source.merged_into_id = into.id
    # Those merged into the source earlier now point at where their tickets are.
    session.execute(
        sa.update(HotIssue)
        .where(HotIssue.merged_into_id == source.id)
        .values(merged_into_id=into.id)
    )
    session.flush()
    _describe(session, into, _member_ids(session, into.id), now)
    refresh(session, [source.id, into.id], now)
    audit(
        session,
        actor,
        "hotspot.merge",
        target=str(source.id),
        payload={"into": into.id, "reason": reason, "tickets": moved},
    )
    reference.bump(session, reference.HOTSPOTS)
    _changed(session, into, now)
    _changed(session, source, now)
    return into


def split(session, actor, hot_issue, ticket_ids, title=None, now=None):
    """拆分: ``ticket_ids`` become a new hot issue, pinned; the tickets left stay, pinned
    too, so a rebuild cannot join them again. Returns the new hot issue."""
    require_decider(actor)
    now = now or utcnow()
    title = _clean_text(title, "title", "标题", TITLE_MAX, required=False)
    issue = _open_for_decision(session, hot_issue)
    chosen = set(ticket_ids or ())
    if not chosen:
        raise ValidationFailed(
            "请勾选要拆分出去的工单",
            code="HOTSPOT_SPLIT_NONE",
            details={"tickets": "请至少勾选一件工单"},
        )
    members = _member_ids(session, issue.id)
    strangers = sorted(chosen - members)
    if strangers:
        raise ValidationFailed(
            f"工单不属于热点问题 #{issue.id}：{'、'.join(map(str, strangers))}",
            code="HOTSPOT_SPLIT_NOT_MEMBER",
            details={"tickets": strangers},
        )
    if chosen == members:
        raise ValidationFailed(
            "不能把全部工单拆分出去：至少留下一件（要改名请用“重命名”）",
            code="HOTSPOT_SPLIT_ALL",
            details={"tickets": "至少留下一件工单"},
        )
    new = HotIssue(
        title=title or issue.title,
        title_fixed=bool(title),
        keywords=[],
        heat_parts={},
        state=HotIssueState.open,
        first_at=issue.first_at,
        last_at=issue.last_at,
        created_at=now,
        updated_at=now,
    )
    session.add(new)
    session.flush()
    session.execute(
        sa.update(HotIssueTicket)
        .where(HotIssueTicket.ticket_id.in_(sorted(chosen)))
        .values(hot_issue_id=new.id, pinned=True)
    )
    session.execute(
        sa.update(HotIssueTicket).where(HotIssueTicket.hot_issue_id == issue.id).values(pinned=True)
    )
    session.flush()
    _describe(session, new, chosen, now)
    _describe(session, issue, members - chosen, now)
    refresh(session, [issue.id, new.id], now)
    audit(
        session,
        actor,
        "hotspot.split",
        target=str(issue.id),
        payload={"new": new.id, "tickets": sorted(chosen), "title": new.title},
    )
    reference.bump(session, reference.HOTSPOTS)
    _changed(session, issue, now)
    _changed(session, new, now)
    return new


def mark_handled(session, actor, hot_issue, note, now=None):
    """标记已处理: the matter was dealt with (a joint meeting, a campaign …), with a note."""
    require_decider(actor)
    now = now or utcnow()
    note = _clean_text(note, "note", "处理说明", NOTE_MAX, required=True)
    issue = _open_for_decision(session, hot_issue)
    if issue.state == HotIssueState.handled:
        raise Conflict(f"热点问题 #{issue.id} 已标记为已处理", code="HOTSPOT_ALREADY_HANDLED")
    issue.state = HotIssueState.handled
    issue.handled_at = now
    issue.handled_by_id = actor.id
    issue.handled_note = note
    issue.updated_at = now
    # What was handled is these tickets: pinned, so a rebuild cannot map their group to
    # another hot issue and leave this one empty.
    session.execute(
        sa.update(HotIssueTicket).where(HotIssueTicket.hot_issue_id == issue.id).values(pinned=True)
    )
    session.flush()
    audit(session, actor, "hotspot.handle", target=str(issue.id), payload={"note": note})
    _changed(session, issue, now)
    return issue


def reopen(session, actor, hot_issue, note=None, now=None):
    """重新关注: a handled hot issue is watched again (关注中)."""
    require_decider(actor)
    now = now or utcnow()
    note = _clean_text(note, "note", "说明", NOTE_MAX, required=False)
    issue = _open_for_decision(session, hot_issue)
    if issue.state != HotIssueState.handled:
        raise Conflict(f"热点问题 #{issue.id} 未标记为已处理", code="HOTSPOT_NOT_HANDLED")
    issue.state = HotIssueState.open
    issue.updated_at = now
    session.flush()
    audit(
        session,
        actor,
        "hotspot.reopen",
        target=str(issue.id),
        payload={"note": note, "handled_note": issue.handled_note},
    )
    _changed(session, issue, now)
    return issue


def rename(session, actor, hot_issue, title, now=None):
    """重命名: a person's title, kept by later runs and rebuilds."""
    require_decider(actor)
    now = now or utcnow()
    title = _clean_text(title, "title", "标题", TITLE_MAX, required=True)
    issue = _open_for_decision(session, hot_issue)
    before = {"title": issue.title, "title_fixed": issue.title_fixed}
    issue.title = title
    issue.title_fixed = True
    issue.updated_at = now
    session.flush()
    audit_change(
        session,
        actor,
        "hotspot.rename",
        target=str(issue.id),
        before=before,
        after={"title": issue.title, "title_fixed": True},
    )
    _changed(session, issue, now)
    return issue


# -- queries (the pages and the API) ------------------------------------------------------------

#: The list's state filter: "" is 关注中 and 已处理 (not those merged away).
STATE_CHOICES = {"": "关注中和已处理", **{s.value: s.label for s in HotIssueState}, "all": "全部"}
#: Longest timeline drawn, in days.
TIMELINE_MAX_DAYS = 400
#: Most tickets a hot issue's page and API list (the newest; the count says how many in all).
TICKETS_SHOWN = 200


@dataclass(frozen=True)
class Filters:
    """What the list is narrowed to (parsed from query arguments by ``parse_filters``)."""

    district: str | None = None
    category: str | None = None
    state: str = ""
    q: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    #: The period in UTC (end excluded), from the local dates.
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def args(self):
        """The query arguments that give these filters back (links, paging)."""
        values = {
            "district": self.district,
            "category": self.category,
            "state": self.state,
            "q": self.q,
            "from": self.date_from.isoformat() if self.date_from else None,
            "to": self.date_to.isoformat() if self.date_to else None,
        }
        return {k: v for k, v in values.items() if v}


def parse_filters(args, user, *, timezone, errors=None):
    """The list's filters from query arguments ``district`` (6-digit code), ``category``
    (code, any level: its sub-classes too), ``from``/``to`` (local dates: hot issues with a
    ticket received then), ``state`` and ``q`` (words of the title). A district leader's
    district is always theirs. Bad values go to ``errors`` (or raise)."""
    own = errors is None
    errors = {} if own else errors
    district = (args.get("district") or "").strip() or None
    if district is not None and not (len(district) == 6 and district.isdigit()):
        errors["district"] = "区县编码应为 6 位数字"
        district = None
    if district_bound(user):
        district = None  # their scope is their district's tickets (``visible``)
    category = (args.get("category") or "").strip() or None
    if category is not None and not category.replace("-", "").isalnum():
        errors["category"] = "事项分类编码无效"
        category = None
    state = (args.get("state") or "").strip()
    if state not in STATE_CHOICES:
        errors["state"] = "状态取值无效"
        state = ""
    q = (args.get("q") or "").strip()[:50] or None
    if q is not None and "\x00" in q:
        errors["q"] = "标题关键词含有无效字符"
        q = None
    dates = {}
    for name in ("from", "to"):
        raw = (args.get(name) or "").strip()
        if raw:
            day = local_day(raw, name, errors)
            if day is not None:
                dates[name] = day
    if "from" in dates and "to" in dates and dates["to"] < dates["from"]:
        errors["to"] = "结束日期不能早于开始日期"
    if own and errors:
        raise ValidationFailed(f"查询条件有误：{next(iter(errors.values()))}", details=errors)
    zone = ZoneInfo(timezone)

    def moment(day):
        return dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC)

    return Filters(
        district=district,
        category=category,
        state=state,
        q=q,
        date_from=dates.get("from"),
        date_to=dates.get("to"),
        start=moment(dates["from"]) if "from" in dates else None,
        end=moment(dates["to"] + dt.timedelta(days=1)) if "to" in dates else None,
    )


def district_bound(user):
    return user.role == Role.leader and user.district_id is not None


def require_viewer(user):
    if user is None or user.role not in VIEW_ROLES:
        raise Forbidden(
            "只有领导、督办审核员、派单员和管理员可以查看热点问题", code="HOTSPOT_VIEW_FORBIDDEN"
        )


def visible(user):
    """A condition on HotIssue: those ``user`` may see (None: all). A district leader sees
    the hot issues with a ticket in their district (by the tickets' scope rule,
    ``dispatch.access``), and of each only those tickets (``detail``)."""
    condition = access.scope_condition(user)
    if condition is None:
        return None
    return (
        sa.select(HotIssueTicket.ticket_id)
        .join(Ticket, Ticket.id == HotIssueTicket.ticket_id)
        .where(HotIssueTicket.hot_issue_id == HotIssue.id, condition)
        .exists()
    )


def may_see(session, user, issue):
    if user.role not in VIEW_ROLES:
        return False
    condition = visible(user)
    return condition is None or bool(
        session.scalar(sa.select(sa.literal(True)).where(HotIssue.id == issue.id, condition))
    )


def _list_query(session, user, filters):
    query = sa.select(HotIssue)
    condition = visible(user)
    if condition is not None:
        query = query.where(condition)
    if filters.district:
        query = query.join(Area, Area.id == HotIssue.district_id).where(
            Area.code == filters.district
        )
    if filters.category:
        query = query.join(Category, Category.id == HotIssue.category_id).where(
            Category.code.startswith(filters.category, autoescape=True)
        )
    if filters.state == "":
        query = query.where(HotIssue.state != HotIssueState.merged)
    elif filters.state != "all":
        query = query.where(HotIssue.state == HotIssueState(filters.state))
    if filters.q:
        for word in filters.q.split():
            query = query.where(HotIssue.title.contains(word, autoescape=True))
    if filters.start or filters.end:
        inside = (
            sa.select(HotIssueTicket.ticket_id)
            .join(Ticket, Ticket.id == HotIssueTicket.ticket_id)
            .where(HotIssueTicket.hot_issue_id == HotIssue.id)
        )
        if filters.start:
            inside = inside.where(Ticket.received_at >= filters.start)
        if filters.end:
            inside = inside.where(Ticket.received_at < filters.end)
        query = query.where(inside.exists())
    return query


def list_issues(session, user, filters, page):
    """(total, [HotIssue] of this page), hottest first, within what ``user`` may see."""
    require_viewer(user)
    return page.of(
        session,
        _list_query(session, user, filters),
        HotIssue.heat.desc(),
        HotIssue.id.desc(),
        options=(
            sa.orm.joinedload(HotIssue.category),
            sa.orm.joinedload(HotIssue.district),
            sa.orm.joinedload(HotIssue.handled_by),
        ),
    )


def period_sizes(session, issues, filters):
    """{hot issue id: tickets received in the filters' period} (None without a period)."""
    if not (filters.start or filters.end) or not issues:
        return {}
    query = (
        sa.select(HotIssueTicket.hot_issue_id, sa.func.count())
        .join(Ticket, Ticket.id == HotIssueTicket.ticket_id)
        .where(HotIssueTicket.hot_issue_id.in_([i.id for i in issues]))
        .group_by(HotIssueTicket.hot_issue_id)
    )
    if filters.start:
        query = query.where(Ticket.received_at >= filters.start)
    if filters.end:
        query = query.where(Ticket.received_at < filters.end)
    return dict(session.execute(query).all())


def issue_to_dict(issue, period_size=None):
    """One hot issue as the pages and the API show it."""
    return {
        "id": issue.id,
        "title": issue.title,
        "title_fixed": issue.title_fixed,
        "place": issue.place,
        "keywords": list(issue.keywords or []),
        "state": {"code": issue.state.value, "label": issue.state.label},
        "merged_into": issue.merged_into_id,
        "size": issue.size,
        "callers": issue.callers,
        "period_size": period_size,
        "heat": round(issue.heat or 0.0, 1),
        "heat_parts": _heat_parts(issue.heat_parts),
        "category": (
            {"code": issue.category.code, "name": issue.category.name} if issue.category else None
        ),
        "district": (
            {"code": issue.district.code, "name": issue.district.name} if issue.district else None
        ),
        "first_at": iso(issue.first_at),
        "last_at": iso(issue.last_at),
        "created_at": iso(issue.created_at),
        "handled": (
            {
                "at": iso(issue.handled_at),
                "by": issue.handled_by.name if issue.handled_by else None,
                "note": issue.handled_note,
            }
            if issue.state == HotIssueState.handled
            else None
        ),
    }


def _heat_parts(parts):
    """The heat's parts as a list, largest share first: {name, label, value, points}."""
    rows = [
        {
            "name": name,
            "label": part.get("label", name),
            "value": part.get("value"),
            "points": round(float(part.get("points") or 0), 1),
        }
        for name, part in (parts or {}).items()
        if isinstance(part, dict)
    ]
    return sorted(rows, key=lambda r: -r["points"])


def get_issue(session, user, hot_issue_id):
    """The hot issue ``user`` may see, or a refusal."""
    require_viewer(user)
    issue = session.get(HotIssue, hot_issue_id) if isinstance(hot_issue_id, int) else None
    if issue is None:
        raise NotFound(f"热点问题 #{hot_issue_id} 不存在", code="HOTSPOT_NOT_FOUND")
    if not may_see(session, user, issue):
        raise Forbidden("只能查看本区县的热点问题", code="HOTSPOT_OUT_OF_SCOPE")
    return issue


def detail(session, user, hot_issue_id, *, timezone):
    """Everything the hot issue's page shows: the issue, its tickets (status, lead unit,
    result, satisfaction), a timeline (tickets per local day and the key moments), the units
    involved and their results."""
    issue = get_issue(session, user, hot_issue_id)
    zone = ZoneInfo(timezone)
    lead = sa.orm.aliased(Unit)
    # A district leader gets the tickets in their district only (the issue's figures stay
    # the whole issue's; the page says how many of them are theirs).
    query = access.scoped(
        sa.select(Ticket, HotIssueTicket.pinned, lead.name.label("unit"))
        .join(HotIssueTicket, HotIssueTicket.ticket_id == Ticket.id)
        .outerjoin(lead, lead.id == Ticket.lead_unit_id)
        .where(HotIssueTicket.hot_issue_id == issue.id),
        user,
    )
    rows = session.execute(
        query.options(sa.orm.joinedload(Ticket.area), sa.orm.joinedload(Ticket.category)).order_by(
            Ticket.received_at, Ticket.id
        )
    ).all()
    # Callers' own words: those who do not call requesters back (a leader, an administrator)
    # get them without ID numbers, phones and e-mail addresses, as they get phones masked.
    shown = (lambda text: text) if user.role in access.FULL_PHONE_ROLES else scrub_personal
    tickets = [
        {
            "id": t.id,
            "number": t.number,
            "received_at": iso(t.received_at),
            "title": shown(t.title),
            "status": {"code": t.status.value, "label": t.status.label},
            "unit": unit,
            "area": t.area.name if t.area else None,
            "category": t.category.name if t.category else None,
            "result": shown(t.result),
            "satisfaction": (
                {"code": t.callback_satisfaction.value, "label": t.callback_satisfaction.label}
                if t.callback_satisfaction
                else None
            ),
            "reopened": (t.reopen_count or 0) > 0,
            "likes": t.likes or 0,
            "pinned": pinned,
        }
        for t, pinned, unit in rows[-TICKETS_SHOWN:]
    ]
    per_day = collections.Counter(
        t.received_at.astimezone(zone).date().isoformat() for t, _, _ in rows
    )
    days = []
    if rows:
        first = rows[0][0].received_at.astimezone(zone).date()
        last = rows[-1][0].received_at.astimezone(zone).date()
        first = max(first, last - dt.timedelta(days=TIMELINE_MAX_DAYS - 1))
        day = first
        while day <= last:
            days.append({"date": day.isoformat(), "count": per_day.get(day.isoformat(), 0)})
            day += dt.timedelta(days=1)
    handled_since = (
        sum(1 for t, _, _ in rows if t.received_at > issue.handled_at)
        if issue.state == HotIssueState.handled and issue.handled_at
        else 0
    )
    return {
        "issue": issue_to_dict(issue),
        #: The newest ``TICKETS_SHOWN`` of them, oldest first; ``tickets_total`` in all.
        "tickets": tickets,
        "tickets_total": len(rows),
        "timeline": {"days": days, "moments": _moments(session, issue, rows, zone)},
        "units": _units(session, [t.id for t, _, _ in rows]),
        "handled_since": handled_since,
        #: Whether ``tickets`` (and the timeline and units) are only those in the viewer's
        #: district.
        "scoped": access.scope_condition(user) is not None,
        "merged_from": [
            {"id": i, "title": title}
            for i, title in session.execute(
                sa.select(HotIssue.id, HotIssue.title)
                .where(HotIssue.merged_into_id == issue.id)
                .order_by(HotIssue.id)
            )
        ],
    }


_MOMENT_LABELS = {
    "hotspot.merge": "合并",
    "hotspot.split": "拆分",
    "hotspot.handle": "标记已处理",
    "hotspot.reopen": "重新关注",
    "hotspot.rename": "重命名",
}


def _moments(session, issue, rows, zone):
    """The key moments, in time order: {at, day (the local date), label, text}."""
    moments = []
    if rows:
        first = rows[0][0]
        moments.append(
            {"at": iso(first.received_at), "label": "首件工单", "text": first.number or ""}
        )
    moments.append({"at": iso(issue.created_at), "label": "列为热点问题", "text": ""})
    merged_from = list(
        session.scalars(sa.select(HotIssue.id).where(HotIssue.merged_into_id == issue.id))
    )
    targets = [str(issue.id), *(str(i) for i in merged_from)]
    audited = session.execute(
        sa.select(
            AuditLog.created_at, AuditLog.action, AuditLog.target, AuditLog.payload, User.name
        )
        .outerjoin(User, User.id == AuditLog.actor_id)
        .where(AuditLog.action.in_(list(_MOMENT_LABELS)), AuditLog.target.in_(targets))
        .order_by(AuditLog.created_at, AuditLog.id)
    ).all()
    for at, action, target, payload, name in audited:
        payload = payload or {}
        if action == "hotspot.merge":
            text = (
                f"#{target} 并入本热点问题"
                if target != str(issue.id)
                else f"并入 #{payload.get('into')}"
            )
        elif action == "hotspot.split":
            text = f"{len(payload.get('tickets', []))} 件工单拆分为 #{payload.get('new')}"
        elif action == "hotspot.rename":
            text = (payload.get("changes", {}).get("title") or [None, ""])[1] or ""
        else:
            text = payload.get("note") or ""
        moments.append(
            {
                "at": iso(at),
                "label": _MOMENT_LABELS[action],
                "text": f"{name or '系统'}：{text}" if text else (name or "系统"),
            }
        )
    if len(rows) > 1:
        last = rows[-1][0]
        moments.append(
            {"at": iso(last.received_at), "label": "最新工单", "text": last.number or ""}
        )
    for moment in moments:
        at = moment["at"] and dt.datetime.fromisoformat(moment["at"])
        moment["day"] = at.astimezone(zone).date().isoformat() if at else None
    return sorted(moments, key=lambda m: m["at"] or "")


def _units(session, ticket_ids):
    """Per unit involved (leading or assisting; a copy (抄送) is only informed): tickets,
    signed, finished, and the callers' satisfaction with the tickets it leads."""
    if not ticket_ids:
        return []
    rows = session.execute(
        sa.select(
            Unit.code,
            Unit.name,
            Assignment.ticket_id,
            Assignment.role,
            Assignment.signed_at,
            Assignment.finished_at,
            Ticket.lead_unit_id,
            Assignment.unit_id,
            Ticket.callback_satisfaction,
        )
        .join(Unit, Unit.id == Assignment.unit_id)
        .join(Ticket, Ticket.id == Assignment.ticket_id)
        .where(Assignment.ticket_id.in_(ticket_ids), Assignment.role != AssignmentRole.copy)
    ).all()
    units = {}
    for r in rows:
        unit = units.setdefault(
            r.code,
            {
                "code": r.code,
                "name": r.name,
                "tickets": set(),
                "led": set(),
                "signed": set(),
                "finished": set(),
                "satisfied": set(),
                "dissatisfied": set(),
            },
        )
        unit["tickets"].add(r.ticket_id)
        if r.signed_at:
            unit["signed"].add(r.ticket_id)
        if r.finished_at:
            unit["finished"].add(r.ticket_id)
        if r.lead_unit_id == r.unit_id:
            unit["led"].add(r.ticket_id)
            if r.callback_satisfaction in (Satisfaction.satisfied, Satisfaction.basically):
                unit["satisfied"].add(r.ticket_id)
            elif r.callback_satisfaction == Satisfaction.dissatisfied:
                unit["dissatisfied"].add(r.ticket_id)
    result = [
        {k: (len(v) if isinstance(v, set) else v) for k, v in unit.items()}
        for unit in units.values()
    ]
    return sorted(result, key=lambda u: (-u["led"], -u["tickets"], u["code"]))


def top_open(session, district_code=None, *, now, limit=5):
    """The board's panel: the hottest open hot issues (of one district if given), each with
    its size and growth (tickets of the last ``GROWTH_DAYS`` days against the days before)."""
    return top_open_of_rooms(session, [district_code], now=now, limit=limit)[district_code]


def top_open_of_rooms(session, district_codes, *, now, limit=5):
    """``{district code or None (the city): top_open list}`` for many boards in two queries:
    each district's ``limit`` hottest (the city's are among them), then the growth of all
    those listed."""
    ranked = (
        sa.select(
            HotIssue.id,
            HotIssue.title,
            HotIssue.size,
            HotIssue.heat,
            Area.code.label("district"),
            sa.func.row_number()
            .over(partition_by=HotIssue.district_id, order_by=(HotIssue.heat.desc(), HotIssue.id))
            .label("rank"),
        )
        .outerjoin(Area, Area.id == HotIssue.district_id)
        .where(HotIssue.state == HotIssueState.open)
        .subquery()
    )
    rows = session.execute(sa.select(ranked).where(ranked.c.rank <= limit)).all()
    rows.sort(key=lambda r: (-(r.heat or 0.0), r.id))
    chosen = {
        code: [r for r in rows if code is None or r.district == code][:limit]
        for code in district_codes
    }
    listed = sorted({r.id for found in chosen.values() for r in found})
    growth = _growth(session, listed, now) if listed else {}
    return {
        code: [
            {
                "id": r.id,
                "title": r.title,
                "size": r.size,
                "heat": round(r.heat or 0.0, 1),
                "recent": growth.get(r.id, (0, 0))[0],
                "previous": growth.get(r.id, (0, 0))[1],
            }
            for r in found
        ]
        for code, found in chosen.items()
    }


def _growth(session, hot_issue_ids, now):
    """{hot issue id: (tickets of the last GROWTH_DAYS days, of the GROWTH_DAYS before)}."""
    recent_from = now - dt.timedelta(days=GROWTH_DAYS)
    previous_from = now - dt.timedelta(days=2 * GROWTH_DAYS)
    counts = session.execute(
        sa.select(
            HotIssueTicket.hot_issue_id,
            sa.func.sum(
                sa.case(
                    (sa.and_(Ticket.received_at > recent_from, Ticket.received_at <= now), 1),
                    else_=0,
                )
            ),
            sa.func.sum(
                sa.case(
                    (
                        sa.and_(
                            Ticket.received_at > previous_from, Ticket.received_at <= recent_from
                        ),
                        1,
                    ),
                    else_=0,
                )
            ),
        )
        .join(Ticket, Ticket.id == HotIssueTicket.ticket_id)
        .where(HotIssueTicket.hot_issue_id.in_(hot_issue_ids))
        .group_by(HotIssueTicket.hot_issue_id)
    ).all()
    return {hot_id: (int(recent or 0), int(previous or 0)) for hot_id, recent, previous in counts}


# -- what forms and JSON bodies send ----------------------------------------------------------

#: The largest id a row may have (the tables' 32-bit keys; more is a typing error).
MAX_ID = 2**31 - 1


def id_of(value, field_name, label):
    """A hot issue's or ticket's id as sent (a number, or text of digits)."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, int) and 0 < value <= MAX_ID:
        return value
    text = str(value or "").strip().removeprefix("#")
    if not text.isdigit() or not 0 < int(text) <= MAX_ID:
        raise ValidationFailed(f"请选择{label}", details={field_name: f"请选择{label}"})
    return int(text)


def ticket_ids_of(values):
    """The ticket ids a split names (check boxes, or a JSON list)."""
    if values is None:
        return []
    if not isinstance(values, list | tuple):
        raise ValidationFailed("tickets 须为工单编号列表", details={"tickets": "须为列表"})
    return sorted({id_of(v, "tickets", "工单") for v in values if str(v).strip()})


def merge_targets(session, user, hot_issue, limit=300):
    """The hot issues ``hot_issue`` may be merged into (not itself, not merged away), hottest
    first: what the merge form's picker offers."""
    query = sa.select(HotIssue.id, HotIssue.title, HotIssue.size).where(
        HotIssue.id != hot_issue.id, HotIssue.state != HotIssueState.merged
    )
    condition = visible(user)
    if condition is not None:
        query = query.where(condition)
    return session.execute(query.order_by(HotIssue.heat.desc(), HotIssue.id).limit(limit)).all()
