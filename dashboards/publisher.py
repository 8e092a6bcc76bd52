"""The live boards' publisher: one per deployment, it turns ticket events into board updates.

It listens to the ticket events (``hotline.events``: in-process, or the Redis channel),
gathers them for a short window, recomputes the affected rooms' snapshots from the database
(``dashboards.snapshots``) and emits one ``update`` per room through Socket.IO. A board's
numbers are the database's, never a running tally, so nothing drifts, and a lost event is
repaired by the next update: new tickets are found by id, not only by their events.

Early warnings' events (``warning.raised``, ``warning.updated``, ``warning.acknowledged``,
from ``dashboards.warnings``) carry the warning's district as ``area`` like a ticket's: the
city's and that district's boards are recomputed, banner included.

Each update names the update before it to the same room (``previous``): a board that did
not get that one (Redis away, a dropped connection) asks for what it missed
(``dashboards.socket``). When its own Redis subscription comes back after an outage, the
publisher refreshes every room at once.
"""

import datetime as dt
import json
import logging
import queue
import threading
import time

import redis
import sqlalchemy as sa

from dashboards.access import CITY, district_room
from dashboards.snapshots import MONTH_MIN_SECONDS, Board, month_rates, month_rates_age
from dashboards.socket import app_emitter, redis_emitter
from hotline import heartbeats
from hotline.models import Area, Ticket
from hotline.outage import Outage

log = logging.getLogger(__name__)

#: The publisher recomputes at once when an event comes, but rooms get at most one update
#: per this many seconds: events arriving meanwhile share the next one.
COALESCE_SECONDS = 0.1
#: Events that move the three rates (sign, contact, callback, reopen, exemption …).
RATE_EVENTS = frozenset(
    {
        "ticket.dispatch",
        "ticket.reassign",
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
#: Without events, the database is looked at this often for tickets whose event was lost
#: (Redis away when it was sent): a new ticket reaches the boards within about this time.
POLL_SECONDS = 1.0
#: Seconds between attempts to subscribe again after Redis went away.
RESUBSCRIBE_SECONDS = 0.5
#: A message that makes the next flush refresh every room (after an outage).
RESYNC = {"type": "board.resync"}
#: A message that makes the next flush announce tickets found in the database only.
RESCAN = {"type": "board.rescan"}


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
        self.emit_update = emit_update or app_emitter(app)
        #: Rooms someone watched at some point; an idle refresh reaches all of them.
        self.known_rooms = {CITY}
        self.month_wanted = False
        #: New tickets are found in the database, not only in the events (an event lost on
        #: the way must not lose a feed item): ids above ``floor`` not yet ``announced``.
        self.floor = None
        self.announced = set()
        #: The ``as_of`` of the last update sent to each room (the next one names it).
        self.last_sent = {}
        self._stop = threading.Event()
        self._last_flush = 0.0
        self._thread = None
        # Kept for as long as the publisher runs: a Redis client that is garbage-collected
        # closes its connection pool, and the subscription with it.
        self._redis = None
        self._pubsub = None
        self._failing = Outage(log, "board updates (database)")
        #: The heartbeat (``hotline.heartbeats``): the largest lag of an event published since
        #: the last beat, and when that beat was.
        self.lag_seconds = 0.0
        self._last_beat = None

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
        rescan = False
        for message in messages:
            if message.get("type") == RESYNC["type"]:
                affected |= self.known_rooms
                self.month_wanted = True
                continue
            if message.get("type") == RESCAN["type"]:
                rescan = True
                continue
            affected.add(CITY)
            area = message.get("area") or ""
            if len(area) >= 6:
                affected.add(district_room(area[:6]))
            if message.get("type") == "ticket.receive" and message.get("ticket"):
                received_at[message["ticket"]] = message.get("at")
            if message.get("type") in RATE_EVENTS:
                self.month_wanted = True
        if not affected and not rescan:
            return {}
        started = time.perf_counter()
        with self.app.app_context():
            session = self.app.extensions["hotline.db"]()
            try:
                new_tickets = []
                fresh, remembered = self._new_tickets(session, list(received_at))
                for number, at, area in fresh:
                    new_tickets.append((number, received_at.get(number) or at))
                    affected.add(CITY)
                    if area and len(area) >= 6:
                        affected.add(district_room(area[:6]))
                if not affected:
                    return {}
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
            payload["previous"] = self.last_sent.get(room)
            self.emit_update(room, payload)
            self.last_sent[room] = payload["as_of"]
        self.lag_seconds = max(self.lag_seconds, _oldest_age(messages))
        # Announced only once sent: a flush that failed before this announces them next time.
        self.floor, self.announced = remembered
        log.debug(
            "board flush: %d event(s), %d room(s), computed in %.0f ms, emitted in %.0f ms",
            len(messages),
            len(payloads),
            (computed - started) * 1000,
            (time.perf_counter() - computed) * 1000,
        )
        return payloads

    def _new_tickets(self, session, numbers):
        """([(number, received_at, area code)] of tickets not announced yet, and what to
        remember once they are): those named by events, and any committed since the last
        flush whose event never arrived. ``ANNOUNCE_MARGIN`` ids back covers transactions
        that commit out of id order."""
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
        # Before the first flush nothing is new; later, keep a margin of ids.
        floor = top if self.floor is None else max(self.floor, top - ANNOUNCE_MARGIN)
        announced = {i for i in self.announced | {r.id for r in fresh} if i > floor}
        return [(r.number, r.received_at.isoformat(), r.code) for r in fresh], (floor, announced)

    # Running in the background.

    def start(self):
        """Listen (Redis channel when configured, else in-process) and flush in a thread."""
        if self.app.config["REDIS_URL"]:
            self._redis = redis.Redis.from_url(self.app.config["REDIS_URL"])
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
        if self._redis is not None:
            self._redis.close()

    def _listen_redis(self):
        """Subscribe to the ticket events and feed them in; after losing Redis, subscribe
        again every ``RESUBSCRIBE_SECONDS`` and refresh every room once back (events sent
        meanwhile are gone, but the database has what they said)."""
        down_since = None
        while not self._stop.is_set():
            try:
                self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                self._pubsub.subscribe(self.app.config["EVENT_CHANNEL"])
                if down_since is not None:
                    log.warning(
                        "board events: Redis reachable again after %.1f s; refreshing boards",
                        time.monotonic() - down_since,
                    )
                    down_since = None
                    self.feed(RESYNC)
                for item in self._pubsub.listen():
                    if item.get("type") == "message":
                        self.feed(json.loads(item["data"]))
            except Exception as exc:  # noqa: BLE001 — a broken connection must not end the boards
                if self._stop.is_set():
                    return
                if down_since is None:
                    down_since = time.monotonic()
                    log.warning(
                        "board events: Redis subscription lost (%s); retrying every %.1f s",
                        type(exc).__name__,
                        RESUBSCRIBE_SECONDS,
                    )
                time.sleep(RESUBSCRIBE_SECONDS)

    def run(self):
        while not self._stop.is_set():
            self._maybe_beat()
            try:
                first = self.queue.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if time.monotonic() - self._last_flush >= IDLE_REFRESH_SECONDS:
                    self._last_flush = time.monotonic()
                    self._safe_flush([], rooms=self.known_rooms)
                elif self._unannounced():
                    self._safe_flush([RESCAN])
                continue
            # Flush at once, but not sooner than COALESCE_SECONDS after the last flush
            # began: when events come fast, those arriving meanwhile share one update.
            wait = self._last_flush + COALESCE_SECONDS - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last_flush = time.monotonic()
            self._safe_flush([first, *self.drain()])

    def _maybe_beat(self):
        """Beat at most every ``PUBLISHER_BEAT_SECONDS`` (the loop wakes at least every
        ``POLL_SECONDS``), with the largest lag since the last beat."""
        now = time.monotonic()
        if (
            self._last_beat is not None
            and now - self._last_beat < heartbeats.PUBLISHER_BEAT_SECONDS
        ):
            return
        self._last_beat = now
        lag, self.lag_seconds = self.lag_seconds, 0.0
        heartbeats.beat(
            self.app.extensions["hotline.db"],
            heartbeats.BOARD_PUBLISHER,
            lag,
            interval_seconds=heartbeats.PUBLISHER_BEAT_SECONDS,
            detail={"rooms": len(self.known_rooms)},
        )

    def _unannounced(self):
        """Whether a ticket above every one announced so far is in the database (its event
        never came)."""
        if self.floor is None:
            return False
        try:
            with self.app.app_context():
                session = self.app.extensions["hotline.db"]()
                try:
                    top = session.scalar(sa.select(sa.func.max(Ticket.id))) or 0
                finally:
                    session.close()
        except Exception:  # noqa: BLE001 — the database away: the next flush reports it
            return False
        return top > max(self.announced, default=self.floor)

    def _safe_flush(self, messages, rooms=None):
        try:
            self.flush(messages, rooms=rooms)
        except Exception as exc:  # noqa: BLE001 — the next flush recomputes everything anyway
            if not self._failing.down:
                log.exception("board update failed")
            # Logged once per outage. What these events said is in the database: the next
            # flush (the next event, or the idle refresh) recomputes the rooms.
            self._failing.failed(exc)
        else:
            self._failing.succeeded()


def _oldest_age(messages):
    """Seconds since the oldest ticket event of ``messages`` happened (its ``at``), now that
    it is published; 0 when there is none."""
    moments = []
    for message in messages:
        if not str(message.get("type", "")).startswith("ticket."):
            continue
        try:
            moments.append(dt.datetime.fromisoformat(message["at"]))
        except (KeyError, TypeError, ValueError):
            continue
    if not moments:
        return 0.0
    oldest = min(m if m.tzinfo else m.replace(tzinfo=dt.UTC) for m in moments)
    return max(0.0, (dt.datetime.now(dt.UTC) - oldest).total_seconds())


_running = None
_running_lock = threading.Lock()


def start_publisher(app, *, standalone=False):
    """Start this process's board publisher once: inside ``hotline demo``, or
    ``standalone`` (``hotline board-publisher``, a process serving no clients, which emits
    through Redis only). Web workers never start one: one per deployment."""
    global _running
    with _running_lock:
        if _running is None:
            emitter = redis_emitter(app.config) if standalone and app.config["REDIS_URL"] else None
            _running = BoardPublisher(app, emit_update=emitter).start()
        return _running
