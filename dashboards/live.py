"""Live boards (实时大屏): the Socket.IO endpoint, the board's numbers, and the publisher.

Two boards: the city board (room ``city``) and one per district (room ``district:<code>``).
A board's numbers always come from the database: on connect the server sends the room's
full snapshot, and the **publisher** (one per deployment) listens to the ticket events
(``hotline.events``), gathers them for a short window, recomputes the affected rooms'
snapshots from the database and emits one ``update`` per room. So a board never drifts from
the database and a lost push is repaired by the next one. With ``REDIS_URL`` set Socket.IO
uses Redis as its message queue, so an emit from the publisher process reaches the clients
of every web process.

Which tickets belong to a district: those whose area (address) lies in it, the same rule as
a district leader's scope (``dispatch.access.scope_condition``). Tickets without an area are
on the city board only.
"""

import datetime as dt
import json
import logging
import queue
import re
import threading
import time
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app, request
from flask_login import current_user
from flask_socketio import SocketIO, emit, join_room, leave_room, rooms

from dashboards import ranking
from dispatch import sla
from dispatch.access import mask_phone
from hotline.db import day_bounds, get_session, utcnow
from hotline.enums import AreaLevel, Channel, RequestType, Role
from hotline.models import Area, Category, Ticket, TicketEvent, Unit

log = logging.getLogger(__name__)

socketio = SocketIO()
NAMESPACE = "/board"
CITY = "city"
#: Roles that may watch a board; a leader bound to a district watches only that district.
BOARD_ROLES = frozenset({Role.dispatcher, Role.supervisor, Role.leader, Role.admin})
#: Newest tickets in a snapshot's feed, and overdue tickets listed per board.
FEED_SIZE = 20
OVERDUE_SIZE = 20
#: The publisher recomputes at once when an event comes, but rooms get at most one update
#: per this many seconds: events arriving meanwhile share the next one.
COALESCE_SECONDS = 0.1
#: Month rates are heavy (every ticket of the month): recomputed this often at the latest,
#: sooner (but not more often than ``MONTH_MIN_SECONDS``) after an event that moves them.
MONTH_MAX_SECONDS = 60
MONTH_MIN_SECONDS = 10
#: Events that move the three rates (sign, contact, callback, reopen, exemption …).
RATE_EVENTS = frozenset(
    {
        "ticket.dispatch",
        "ticket.sign",
        "ticket.contact",
        "ticket.finish",
        "ticket.record_callback",
        "ticket.reopen",
        "ticket.exempt",
        "ticket.decide_return",
        "ticket.close",
    }
)
#: Tickets committed out of id order that a flush still looks back for.
ANNOUNCE_MARGIN = 200
#: Without events, boards are refreshed this often anyway (tickets fall overdue with time).
IDLE_REFRESH_SECONDS = 30

_DISTRICT_CODE = re.compile(r"^\d{6}$")


def init_app(app):
    """Socket.IO on this app: in-process, or through Redis when ``REDIS_URL`` is set (the
    Socket.IO channel is named after ``EVENT_CHANNEL``, so one setting keeps deployments and
    test runs that share a Redis apart)."""
    options = {"async_mode": "threading"}
    if app.config["REDIS_URL"]:
        options["message_queue"] = app.config["REDIS_URL"]
        options["channel"] = socketio_channel(app.config)
    else:
        # Explicitly none: ``socketio`` is global and keeps the options of an earlier app.
        options["message_queue"] = None
        options["client_manager"] = None
    socketio.init_app(app, **options)


def socketio_channel(config):
    return config["EVENT_CHANNEL"] + ":socketio"


def redis_emitter(app):
    """``emit_update`` for a publisher process that serves no clients: writes straight to
    Socket.IO's Redis channel (write-only: it never reads back every update it sends)."""
    import socketio as python_socketio

    manager = python_socketio.RedisManager(
        app.config["REDIS_URL"], channel=socketio_channel(app.config), write_only=True
    )

    def emit_update(room, payload):
        manager.emit("update", payload, namespace=NAMESPACE, room=room)

    return emit_update


# -- who watches which room ---------------------------------------------------------------


def district_room(code):
    return f"district:{code}"


def default_room(user):
    """A district leader's board is their district's; everyone else starts on the city's."""
    if user.role == Role.leader and user.district_id is not None:
        return district_room(user.district.code)
    return CITY


def may_watch(user, room):
    """Whether ``user`` may watch ``room`` (``city`` or ``district:<6 digits>``)."""
    if user is None or not user.is_authenticated or user.role not in BOARD_ROLES:
        return False
    district = room.removeprefix("district:") if room.startswith("district:") else None
    if room != CITY and (district is None or not _DISTRICT_CODE.match(district)):
        return False
    if user.role == Role.leader and user.district_id is not None:
        return district == user.district.code
    return True


def room_district(room):
    return None if room == CITY else room.removeprefix("district:")


@socketio.on("connect", namespace=NAMESPACE)
def _connect(auth=None):
    """A board connects with its session cookie, asking for a room (``auth={"room": …}`` or
    ``?room=…``); refused unless the user may watch it. Then the room's snapshot."""
    if not current_user.is_authenticated or current_user.role not in BOARD_ROLES:
        return False
    wanted = (auth or {}).get("room") if isinstance(auth, dict) else None
    room = wanted or request.args.get("room") or default_room(current_user)
    if not isinstance(room, str) or not may_watch(current_user, room):
        return False
    join_room(room)
    emit("snapshot", room_snapshot(room))


@socketio.on("join", namespace=NAMESPACE)
def _join(data):
    """Switch the connection to another room (same check as on connect)."""
    room = data.get("room") if isinstance(data, dict) else None
    if not isinstance(room, str) or not may_watch(current_user, room):
        return {"ok": False, "error": "无权查看该看板"}
    for joined in rooms(namespace=NAMESPACE):
        if joined != request.sid:
            leave_room(joined)
    join_room(room)
    emit("snapshot", room_snapshot(room))
    return {"ok": True}


def room_snapshot(room):
    """The full snapshot of one room, for a page render or a connecting client."""
    session = get_session()
    try:
        board = Board(session, current_app.config)
        return board.snapshots([room], month=month_rates(session, current_app.config))[room]
    finally:
        session.rollback()  # read only; end the transaction (SET LOCAL, snapshots)


# -- personal data ------------------------------------------------------------------------

#: Mobile numbers, ID card numbers and any other run of 7+ digits (landlines, bank cards).
_DIGITS = re.compile(r"\d{7,}[Xx]?")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def mask_text(text):
    """A title fit for a public screen: phone numbers, ID numbers and long digit runs
    masked (138****5678; 37**************12)."""
    if not text:
        return text

    def hide(match):
        digits = match.group(0)
        if _MOBILE.match(digits):
            return mask_phone(digits)
        return digits[:2] + "*" * (len(digits) - 4) + digits[-2:]

    return _DIGITS.sub(hide, text)


# -- the numbers ------------------------------------------------------------------------------


def _district_key():
    # Literal positions: PostgreSQL must see the same expression in SELECT and GROUP BY,
    # which bound parameters (one per use) are not.
    return sa.func.substr(Area.code, sa.literal_column("1"), sa.literal_column("6"))


def _group_counts(area_counts, codes, length, prefix=None):
    """Per-area counts (``ranking.count_tickets(by="area")``) grouped by the area of code
    ``length`` (6 district, 9 street) they lie in, for areas whose code starts with
    ``prefix``. Tickets without an area are left out. Returns ({code: [counts]}, [counts])."""
    groups = {}
    total = []
    for area_id, counts in area_counts.items():
        if area_id is None:
            continue
        code = codes.get(area_id) or ""
        if prefix and not code.startswith(prefix):
            continue
        total.append(counts)
        key = code[:length] if len(code) >= length else None
        groups.setdefault(key, []).append(counts)
    return groups, total


def _rate_entry(code, name, counts, settings):
    rates = ranking.compute_rates(counts, settings)
    return {
        "code": code,
        "name": name,
        "dispatched": counts["dispatched"],
        "rated": counts["rated"],
        "response_rate": rates["response_rate"],
        "resolution_rate": rates["resolution_rate"],
        "satisfaction_rate": rates["satisfaction_rate"],
    }


class AreaNames:
    """Codes and names of districts and streets (reference data, read once per board)."""

    def __init__(self, session):
        rows = session.execute(
            sa.select(Area.id, Area.code, Area.name).where(
                Area.level.in_([AreaLevel.district, AreaLevel.street])
            )
        ).all()
        self.names = {code: name for _, code, name in rows}

    def place(self, code):
        """ "奎文区 东关街道" for any area code inside them."""
        if not code:
            return "未定位"
        parts = [self.names.get(code[:6]), self.names.get(code[:9]) if len(code) >= 9 else None]
        return " ".join(p for p in parts if p) or "未定位"


def rates_by_area(session, start, end, as_of, settings):
    """The period's counts per area id (``ranking.count_tickets``) with the area codes:
    what both the city's per-district and a district's per-street rates are summed from."""
    counts = ranking.count_tickets(session, start, end, as_of, by="area")
    ids = [k for k in counts if k]
    codes = dict(session.execute(sa.select(Area.id, Area.code).where(Area.id.in_(ids))).all())
    return {"counts": counts, "codes": codes, "as_of": as_of.isoformat()}


def month_rates(session, config, *, force=False, now=None):
    """This month's counts per area, cached per process for ``MONTH_MAX_SECONDS``."""
    now = now or utcnow()
    zone = ZoneInfo(config["TIMEZONE"])
    local = now.astimezone(zone)
    month = f"{local.year}-{local.month:02d}"
    with _month_lock:
        cached = _month_cache.get(month)
        fresh = cached and time.monotonic() - cached[0] < MONTH_MAX_SECONDS
        if fresh and not force:
            return cached[1]
    start, end = ranking.month_bounds(month, config["TIMEZONE"])
    settings = ranking.Settings.from_config(config)
    value = rates_by_area(session, start, end, now, settings)
    with _month_lock:
        _month_cache.clear()
        _month_cache[month] = (time.monotonic(), value)
    return value


def month_rates_age():
    with _month_lock:
        ages = [time.monotonic() - at for at, _ in _month_cache.values()]
    return min(ages) if ages else None


_month_lock = threading.Lock()
_month_cache = {}


class Board:
    """Computes the snapshots of any set of rooms with a fixed number of queries (each
    grouped by district), so a flush costs the same for one room or twenty."""

    def __init__(self, session, config, now=None):
        self.session = session
        self.config = config
        self.now = now or utcnow()
        self.settings = ranking.Settings.from_config(config)
        self.yesterday, self.today, self.tomorrow = day_bounds(self.now, config["TIMEZONE"])

    def snapshots(self, rooms, *, month, new_tickets=None):
        """{room: snapshot} for ``rooms``. ``month`` is ``month_rates(...)``. The ``feed``
        is the room's newest ``FEED_SIZE`` tickets, or with ``new_tickets`` [(number, event
        at)] (an update) only those of them in the room."""
        session = self.session
        names = AreaNames(session)
        intake = self._intake()
        handled = self._handled()
        overdue_counts, overdue_rows = self._overdue(rooms)
        trend = self._trend()
        today_rates = rates_by_area(session, self.today, self.tomorrow, self.now, self.settings)
        if new_tickets is not None:
            feeds = self._new_feed(names, new_tickets, rooms)
        else:
            feeds = {room: self._latest_feed(names, room_district(room)) for room in rooms}
        result = {}
        for room in rooms:
            district = room_district(room)
            result[room] = {
                "room": room,
                "title": "全市" if district is None else names.names.get(district, district),
                "district": district,
                "as_of": self.now.isoformat(),
                "today": self._today(district, intake, handled, overdue_counts),
                "rates": {
                    "today": self._rates(today_rates, district, names),
                    "month": self._rates(month, district, names),
                    "month_as_of": month["as_of"],
                },
                "overdue": overdue_rows.get(room, []),
                "trend": self._trend_of(trend, district),
                "feed": feeds.get(room, []),
            }
        return result

    # Today's intake per district × channel × type.
    def _intake(self):
        query = (
            sa.select(_district_key(), Ticket.channel, Ticket.request_type, sa.func.count())
            .select_from(Ticket)
            .outerjoin(Area, Area.id == Ticket.area_id)
            .where(Ticket.received_at >= self.today, Ticket.received_at < self.tomorrow)
            .group_by(_district_key(), Ticket.channel, Ticket.request_type)
        )
        return self.session.execute(query).all()

    # Tickets dispatched (派单) and signed by their lead unit (签收) today, per district.
    def _handled(self):
        counted = sa.or_(
            TicketEvent.action == "dispatch",
            sa.and_(TicketEvent.action == "sign", TicketEvent.unit_id == Ticket.lead_unit_id),
        )
        query = (
            sa.select(_district_key(), TicketEvent.action, sa.func.count(sa.distinct(Ticket.id)))
            .select_from(TicketEvent)
            .join(Ticket, Ticket.id == TicketEvent.ticket_id)
            .outerjoin(Area, Area.id == Ticket.area_id)
            .where(TicketEvent.created_at >= self.today, counted)
            .group_by(_district_key(), TicketEvent.action)
        )
        return self.session.execute(query).all()

    def _overdue(self, rooms):
        """Counts of overdue tickets per district, and each room's most overdue tickets."""
        session = self.session
        counts = dict(
            session.execute(
                sa.select(_district_key(), sa.func.count())
                .select_from(Ticket)
                .outerjoin(Area, Area.id == Ticket.area_id)
                .where(sla.overdue(self.now))
                .group_by(_district_key())
            ).all()
        )
        rank = (
            sa.func.row_number()
            .over(partition_by=_district_key(), order_by=(Ticket.finish_due, Ticket.id))
            .label("rank")
        )
        ranked = (
            sa.select(
                Ticket.id,
                Ticket.number,
                Ticket.title,
                Ticket.finish_due,
                Area.code.label("area"),
                Unit.name.label("unit"),
                _district_key().label("district"),
                rank,
            )
            .select_from(Ticket)
            .outerjoin(Area, Area.id == Ticket.area_id)
            .outerjoin(Unit, Unit.id == Ticket.lead_unit_id)
            .where(sla.overdue(self.now))
            .subquery()
        )
        rows = session.execute(
            sa.select(ranked)
            .where(ranked.c.rank <= OVERDUE_SIZE)
            .order_by(ranked.c.finish_due, ranked.c.id)
        ).all()
        lists = {}
        for row in rows:
            item = {
                "number": row.number,
                "title": mask_text(row.title),
                "unit": row.unit or "",
                "due": row.finish_due.isoformat(),
                "hours": round((self.now - row.finish_due).total_seconds() / 3600, 1),
            }
            lists.setdefault(district_room(row.district) if row.district else None, []).append(item)
            lists.setdefault(CITY, []).append(item)
        # The city's list: the most overdue of all districts' lists.
        lists[CITY] = lists.get(CITY, [])[:OVERDUE_SIZE]
        return counts, {room: lists.get(room, []) for room in rooms}

    # Intake per local hour, today and yesterday, per district (one query, 48 counts).
    def _trend(self):
        hour = dt.timedelta(hours=1)
        columns = []
        for day_start in (self.yesterday, self.today):
            for h in range(24):
                begin = day_start + h * hour
                columns.append(
                    sa.func.count().filter(
                        Ticket.received_at >= begin, Ticket.received_at < begin + hour
                    )
                )
        query = (
            sa.select(_district_key(), *columns)
            .select_from(Ticket)
            .outerjoin(Area, Area.id == Ticket.area_id)
            .where(Ticket.received_at >= self.yesterday, Ticket.received_at < self.tomorrow)
            .group_by(_district_key())
        )
        return {row[0]: list(row[1:]) for row in self.session.execute(query).all()}

    def _trend_of(self, trend, district):
        total = [0] * 48
        for key, values in trend.items():
            if district is None or key == district:
                total = [a + b for a, b in zip(total, values, strict=True)]
        local_now = self.now.astimezone(ZoneInfo(self.config["TIMEZONE"]))
        # Hours not yet come today are None (no line), not 0.
        today = [v if h <= local_now.hour else None for h, v in enumerate(total[24:])]
        return {"hours": [f"{h:02d}时" for h in range(24)], "yesterday": total[:24], "today": today}

    def _today(self, district, intake, handled, overdue_counts):
        channels = {c.value: 0 for c in Channel}
        types = {t.value: 0 for t in RequestType}
        received = 0
        for key, channel, request_type, count in intake:
            if district is None or key == district:
                received += count
                channels[channel.value] += count
                types[request_type.value] += count
        actions = {"dispatch": 0, "sign": 0}
        for key, action, count in handled:
            if district is None or key == district:
                actions[action] += count
        overdue = sum(n for key, n in overdue_counts.items() if district is None or key == district)
        return {
            "received": received,
            "dispatched": actions["dispatch"],
            "signed": actions["sign"],
            "overdue": overdue,
            "by_channel": [
                {"code": c.value, "label": c.label, "count": channels[c.value]} for c in Channel
            ],
            "by_type": [
                {"code": t.value, "label": t.label, "count": types[t.value]} for t in RequestType
            ],
        }

    def _rates(self, period, district, names):
        """The city: one row per district; a district: one row per street. Plus the total."""
        length = 6 if district is None else 9
        groups, total = _group_counts(period["counts"], period["codes"], length, district)
        rows = [
            _rate_entry(
                code,
                names.names.get(code, "未定位到该级区域") if code else "未定位到该级区域",
                ranking.add_counts(counts),
                self.settings,
            )
            for code, counts in sorted(groups.items(), key=lambda g: g[0] or "~")
        ]
        if district is None and None in period["counts"]:
            # Tickets without an area count for the city, in no district.
            rows.append(_rate_entry(None, "未定位", period["counts"][None], self.settings))
            total.append(period["counts"][None])
        summed = ranking.add_counts(total) if total else None
        title = "全市" if district is None else names.names.get(district, district)
        return {
            "rows": rows,
            "total": _rate_entry(district, title, summed, self.settings) if summed else None,
        }

    def _feed_query(self):
        return (
            sa.select(
                Ticket.number,
                Ticket.received_at,
                Ticket.channel,
                Ticket.request_type,
                Ticket.title,
                Category.name.label("category"),
                Area.code.label("area"),
            )
            .select_from(Ticket)
            .outerjoin(Area, Area.id == Ticket.area_id)
            .outerjoin(Category, Category.id == Ticket.category_id)
        )

    def _feed_item(self, row, names, at=None):
        return {
            "number": row.number,
            "received_at": row.received_at.isoformat(),
            # The event's own time: a client measures its latency against it.
            "at": at or row.received_at.isoformat(),
            "channel": row.channel.label,
            "type": row.request_type.label,
            "category": row.category or "未分类",
            "place": names.place(row.area),
            "title": mask_text(row.title),
        }

    def _latest_feed(self, names, district):
        query = self._feed_query()
        if district is not None:
            query = query.where(_district_key() == district)
        rows = self.session.execute(
            query.order_by(Ticket.received_at.desc(), Ticket.id.desc()).limit(FEED_SIZE)
        ).all()
        return [self._feed_item(row, names) for row in rows]

    def _new_feed(self, names, new_tickets, rooms):
        feeds = {room: [] for room in rooms}
        if not new_tickets:
            return feeds
        at = dict(new_tickets)
        rows = self.session.execute(
            self._feed_query()
            .where(Ticket.number.in_(list(at)))
            .order_by(Ticket.received_at.desc(), Ticket.id.desc())
        ).all()
        for row in rows:
            item = self._feed_item(row, names, at[row.number])
            for room in rooms:
                district = room_district(room)
                if district is None or (row.area or "").startswith(district):
                    feeds[room].append(item)
        return feeds


# -- the publisher --------------------------------------------------------------------------


class BoardPublisher:
    """Turns ticket events into board updates: one per deployment.

    ``feed(message)`` queues an event (from ``hotline.events``' in-process listeners or the
    Redis channel); ``flush()`` takes everything queued, recomputes the affected rooms from
    the database and emits one ``update`` per room. ``start()`` runs that in a thread:
    wait for an event, flush (at most one per ``COALESCE_SECONDS``); refresh every
    ``IDLE_REFRESH_SECONDS`` even without events (tickets fall overdue as time passes).
    """

    def __init__(self, app, emit_update=None):
        self.app = app
        self.queue = queue.Queue()
        self.emit_update = emit_update or _emit_update
        #: Rooms someone watched at some point; an idle refresh reaches all of them.
        self.known_rooms = {CITY}
        self.month_wanted = False
        #: New tickets are found in the database, not only in the events (an event lost on
        #: the way must not lose a feed item): ids above ``floor`` not yet ``announced``.
        self.floor = None
        self.announced = set()
        self._stop = threading.Event()
        self._last_flush = 0.0
        self._thread = None
        self._pubsub = None

    def feed(self, message):
        self.queue.put(message)

    def drain(self):
        messages = []
        while True:
            try:
                messages.append(self.queue.get_nowait())
            except queue.Empty:
                return messages

    def flush(self, messages=None, *, rooms=None):
        """Recompute and emit. Returns {room: payload} (what was emitted)."""
        messages = self.drain() if messages is None else messages
        affected = set(rooms or ())
        received_at = {}
        for message in messages:
            affected.add(CITY)
            area = message.get("area") or ""
            if len(area) >= 6:
                affected.add(district_room(area[:6]))
            if message.get("type") == "ticket.receive" and message.get("ticket"):
                received_at[message["ticket"]] = message.get("at")
            if message.get("type") in RATE_EVENTS:
                self.month_wanted = True
        if not affected:
            return {}
        started = time.perf_counter()
        with self.app.app_context():
            session = self.app.extensions["hotline.db"]()
            try:
                new_tickets = []
                for number, at, area in self._new_tickets(session, list(received_at)):
                    new_tickets.append((number, received_at.get(number) or at))
                    affected.add(CITY)
                    if area and len(area) >= 6:
                        affected.add(district_room(area[:6]))
                self.known_rooms |= affected
                config = self.app.config
                age = month_rates_age()
                force = self.month_wanted and (age is None or age >= MONTH_MIN_SECONDS)
                month = month_rates(session, config, force=force)
                if force:
                    self.month_wanted = False
                board = Board(session, config)
                # An update's feed: only the new tickets (the board keeps the others).
                payloads = board.snapshots(sorted(affected), month=month, new_tickets=new_tickets)
            finally:
                session.rollback()
                session.close()
        computed = time.perf_counter()
        for room, payload in payloads.items():
            self.emit_update(room, payload)
        log.debug(
            "board flush: %d event(s), %d room(s), computed in %.0f ms, emitted in %.0f ms",
            len(messages),
            len(payloads),
            (computed - started) * 1000,
            (time.perf_counter() - computed) * 1000,
        )
        return payloads

    def _new_tickets(self, session, numbers):
        """[(number, received_at, area code)] of tickets not announced yet: those named by
        events, and any committed since the last flush whose event never arrived.
        ``ANNOUNCE_MARGIN`` ids back covers transactions that commit out of id order."""
        condition = Ticket.number.in_(numbers)
        if self.floor is not None:
            condition = sa.or_(condition, Ticket.id > self.floor)
        rows = session.execute(
            sa.select(Ticket.id, Ticket.number, Ticket.received_at, Area.code)
            .outerjoin(Area, Area.id == Ticket.area_id)
            .where(condition)
        ).all()
        top = session.scalar(sa.select(sa.func.max(Ticket.id))) or 0
        fresh = [r for r in rows if r.id not in self.announced]
        self.announced.update(r.id for r in fresh)
        # Before the first flush nothing is new; later, keep a margin of ids.
        self.floor = top if self.floor is None else max(self.floor, top - ANNOUNCE_MARGIN)
        self.announced = {i for i in self.announced if i > self.floor}
        return [(r.number, r.received_at.isoformat(), r.code) for r in fresh]

    # Running in the background.

    def start(self):
        """Listen (Redis channel when configured, else in-process) and flush in a thread."""
        redis_url = self.app.config["REDIS_URL"]
        if redis_url:
            import redis

            client = redis.Redis.from_url(redis_url)
            self._pubsub = client.pubsub(ignore_subscribe_messages=True)
            self._pubsub.subscribe(self.app.config["EVENT_CHANNEL"])
            threading.Thread(target=self._listen_redis, name="board-events", daemon=True).start()
        else:
            self.app.extensions["hotline.events"].listeners.append(self.feed)
        self._thread = threading.Thread(target=self.run, name="board-publisher", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        listeners = self.app.extensions["hotline.events"].listeners
        if self.feed in listeners:
            listeners.remove(self.feed)
        if self._pubsub is not None:
            self._pubsub.close()

    def _listen_redis(self):
        while not self._stop.is_set():
            try:
                for item in self._pubsub.listen():
                    if item.get("type") == "message":
                        self.feed(json.loads(item["data"]))
            except Exception:  # noqa: BLE001 — a broken connection must not end the boards
                if self._stop.is_set():
                    return
                log.exception("board event subscription failed; retrying")
                time.sleep(1)

    def run(self):
        while not self._stop.is_set():
            try:
                first = self.queue.get(timeout=IDLE_REFRESH_SECONDS)
            except queue.Empty:
                self._safe_flush([], rooms=self.known_rooms)
                continue
            # Flush at once, but not sooner than COALESCE_SECONDS after the last flush
            # began: when events come fast, those arriving meanwhile share one update.
            wait = self._last_flush + COALESCE_SECONDS - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last_flush = time.monotonic()
            self._safe_flush([first, *self.drain()])

    def _safe_flush(self, messages, rooms=None):
        try:
            self.flush(messages, rooms=rooms)
        except Exception:  # noqa: BLE001 — the next flush recomputes everything anyway
            log.exception("board update failed")


def _emit_update(room, payload):
    socketio.emit("update", payload, to=room, namespace=NAMESPACE)


_running = None
_running_lock = threading.Lock()


def start_publisher(app, *, standalone=False):
    """Start this process's board publisher once: inside ``hotline demo``, or
    ``standalone`` (``hotline board-publisher``, a process serving no clients, which emits
    through Redis only). Web workers never start one: one per deployment."""
    global _running
    with _running_lock:
        if _running is None:
            emitter = redis_emitter(app) if standalone and app.config["REDIS_URL"] else None
            _running = BoardPublisher(app, emit_update=emitter).start()
        return _running
