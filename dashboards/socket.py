"""The live boards' Socket.IO endpoint (namespace ``/board``).

A board connects with its session cookie and asks for a room (``auth={"room": …}`` or
``?room=…``); it is refused unless the user may watch it (``dashboards.access``), then gets
the room's snapshot. The publisher (``dashboards.publisher``) sends each room an ``update``
whenever its numbers change; every update names the one before it (``previous``), so a board
that missed one (a dropped connection, Redis away for a while) notices, and asks
``catch_up`` for the tickets after the newest one it holds.

With ``REDIS_URL`` set, Socket.IO's messages go through Redis (its ``message_queue``), so
the publisher's updates reach the clients of every web process. The Redis listener here
retries every ``RECONNECT_SECONDS`` and logs an outage once and the recovery once.
"""

import logging
import threading
import time

import socketio as python_socketio
from flask import current_app, request, session
from flask_login import current_user
from flask_socketio import Namespace, SocketIO, emit, join_room, leave_room, rooms

from dashboards import access, inbox_live
from dashboards.snapshots import Board, room_snapshot
from hotline import auth as hotline_auth
from hotline import metrics
from hotline.db import get_session

log = logging.getLogger(__name__)

NAMESPACE = "/board"
#: Tickets before the newest one a board holds that a catch-up looks back over too: they may
#: have committed after it (ids are taken in INSERT order, not commit order).
CATCH_UP_MARGIN = 200
#: Seconds between attempts to reach Redis again after it went away.
RECONNECT_SECONDS = 0.5
#: Seconds between checks that every board connected here still belongs to an open login:
#: logging out, a password change or deactivation closes the user's boards within this time.
SESSION_CHECK_SECONDS = 10


def init_app(app):
    """Socket.IO for this application: in-process, or through Redis when ``REDIS_URL`` is
    set (its channel is named after ``EVENT_CHANNEL``, so one setting keeps deployments and
    test runs that share a Redis apart)."""
    options = {"async_mode": "threading"}
    if app.config["REDIS_URL"]:
        options["client_manager"] = RedisManager(
            app.config["REDIS_URL"], channel=channel_name(app.config)
        )
    socketio = SocketIO(app, **options)
    namespace = BoardNamespace(NAMESPACE)
    socketio.on_namespace(namespace)
    app.extensions["hotline.board_namespace"] = namespace
    inbox_live.init_app(app, socketio)
    return socketio


def channel_name(config):
    return config["EVENT_CHANNEL"] + ":socketio"


class RedisManager(python_socketio.RedisManager):
    """Socket.IO's Redis manager, reconnecting at once and logging an outage once.

    (The library's own backs off up to a minute and logs every attempt: boards would stay
    silent for seconds after Redis is back, and the log fills while it is away.)"""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("redis_options", {"socket_connect_timeout": 2})
        super().__init__(*args, **kwargs)
        self._down_since = None

    def _outage(self, what, exc):
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("Socket.IO %s: Redis unreachable (%s); retrying", what, type(exc).__name__)

    def _recovered(self):
        if self._down_since is not None:
            log.warning(
                "Socket.IO: Redis reachable again after %.1f s", time.monotonic() - self._down_since
            )
            self._down_since = None

    def _publish(self, data):
        try:
            if not self.connected:
                self._redis_connect()
            result = self.redis.publish(self.channel, self.json.dumps(data))
        except Exception as exc:  # noqa: BLE001 — Redis away: the boards catch up later
            self.connected = False
            self._outage("publish", exc)
            return None
        self._recovered()
        return result

    def _redis_listen_with_retries(self):
        subscribed = False
        while True:
            try:
                if not subscribed:
                    self._redis_connect()
                    self.pubsub.subscribe(self.channel)
                    subscribed = True
                    self._recovered()
                yield from self.pubsub.listen()
            except Exception as exc:  # noqa: BLE001 — retried until Redis is back
                self._outage("listener", exc)
                subscribed = False
                time.sleep(RECONNECT_SECONDS)


def redis_emitter(config):
    """``emit_update`` for a publisher process that serves no clients: writes straight to
    Socket.IO's Redis channel (write-only: it never reads back every update it sends)."""
    manager = RedisManager(config["REDIS_URL"], channel=channel_name(config), write_only=True)

    def emit_update(room, payload):
        manager.emit("update", payload, namespace=NAMESPACE, room=room)

    return emit_update


def app_emitter(app):
    """``emit_update`` through this application's Socket.IO server (one process, or a web
    process whose manager forwards through Redis)."""
    socketio = app.extensions["socketio"]

    def emit_update(room, payload):
        socketio.emit("update", payload, to=room, namespace=NAMESPACE)

    return emit_update


class BoardNamespace(Namespace):
    def __init__(self, namespace):
        super().__init__(namespace)
        #: Socket id → the hash of the login (``user_sessions.key_hash``) it belongs to.
        self.logins = {}
        self._lock = threading.Lock()
        self._checking = False

    def on_connect(self, auth=None):
        """Admit a watcher of the room asked for, then send its snapshot."""
        if not current_user.is_authenticated or current_user.role not in access.BOARD_ROLES:
            return False
        wanted = auth.get("room") if isinstance(auth, dict) else None
        room = wanted or request.args.get("room") or access.default_room(current_user)
        if not isinstance(room, str) or not access.may_watch(current_user, room):
            return False
        self._watch(request.sid, session.get("sid"))
        join_room(room)
        emit("snapshot", _snapshot(room))

    def on_disconnect(self, *args):
        with self._lock:
            self.logins.pop(request.sid, None)
            self._count()

    def _count(self):
        # Set, not counted up and down: the gauge is what this process holds (the metrics
        # sum the live processes), so a missed disconnect cannot make it drift.
        metrics.SOCKETIO_CLIENTS.labels(metrics.BOARDS).set(len(self.logins))

    def _watch(self, sid, key):
        with self._lock:
            self.logins[sid] = hotline_auth.key_hash(key) if isinstance(key, str) else None
            self._count()
            start = not self._checking
            self._checking = True
        if start:
            app = current_app._get_current_object()
            self.socketio.start_background_task(self._check_forever, app)

    def _check_forever(self, app):
        while True:
            time.sleep(SESSION_CHECK_SECONDS)
            try:
                self.close_ended(app)
            except Exception:  # noqa: BLE001 — the database away: checked again next time
                log.debug("board login check failed", exc_info=True)

    def close_ended(self, app):
        """Disconnect the boards whose login has ended (logout, password change,
        deactivation) since they connected. Returns their socket ids."""
        with self._lock:
            watched = dict(self.logins)
        if not watched:
            return []
        with app.app_context():
            db = app.extensions["hotline.db"]()
            try:
                still_open = hotline_auth.open_logins(db, {h for h in watched.values() if h})
            finally:
                db.close()
        ended = [sid for sid, key_hash in watched.items() if key_hash not in still_open]
        for sid in ended:
            self.socketio.server.disconnect(sid, namespace=NAMESPACE)
            with self._lock:
                self.logins.pop(sid, None)
                self._count()
        return ended

    def on_join(self, data):
        """Switch the connection to another room (same check as on connect)."""
        room = data.get("room") if isinstance(data, dict) else None
        if not isinstance(room, str) or not access.may_watch(current_user, room):
            return {"ok": False, "error": "无权查看该看板"}
        for joined in _board_rooms():
            leave_room(joined)
        join_room(room)
        emit("snapshot", _snapshot(room))
        return {"ok": True}

    def on_catch_up(self, data):
        """The tickets of this connection's room after ``after`` (the largest feed id the
        board holds), newest first: what it missed while an update did not reach it."""
        after = data.get("after") if isinstance(data, dict) else None
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            return {"ok": False, "error": "缺少有效的 after（已收到的最大工单序号）"}
        joined = _board_rooms()
        if not joined or not access.may_watch(current_user, joined[0]):
            return {"ok": False, "error": "无权查看该看板"}
        session = get_session()
        try:
            feed = Board(session, current_app.config).feed_after(
                joined[0], max(0, after - CATCH_UP_MARGIN)
            )
        finally:
            session.rollback()
        return {"ok": True, "room": joined[0], "feed": feed}


def _board_rooms():
    return [r for r in rooms(namespace=NAMESPACE) if r != request.sid]


def _snapshot(room):
    return room_snapshot(get_session(), current_app.config, room)
