"""The live feed when Redis blips (issue 12 §10: with Redis killed for 20 s the fault probe saw
boards silent until 11 s after it came back, every ticket received meanwhile missing from
every feed, the publisher losing its own subscription at every start, and a traceback logged
for every request while Redis was down).

A private ``redis-server`` on a free port is stopped and started again under a running
publisher; tickets are received meanwhile. Also, the catch-up a board asks for when an update
did not reach it, and the ``previous`` chain that tells it so."""

import gc
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid

import pytest
import redis
import sqlalchemy as sa

from dashboards import publisher as board_publisher
from dispatch import operations as ops
from hotline import events
from hotline.enums import Channel, RequestType, Urgency
from hotline.models import Area, User
from server.app import create_app
from tests.conftest import _config, make_ticket, web_login

REDIS_SERVER = shutil.which("redis-server")
needs_redis_server = pytest.mark.skipif(
    REDIS_SERVER is None, reason="redis-server is not installed (Debian package redis-server)"
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A throw-away redis-server that can be killed and started again on the same port."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url, socket_connect_timeout=0.2).ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self):
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
            self.process = None


@pytest.fixture
def private_redis():
    server = RedisServer()
    server.start()
    yield server
    server.kill()


@pytest.fixture
def redis_app(committed_app, models_dir, private_redis):
    """An application on the committed database whose events go through the private Redis."""
    config = _config(
        committed_app.config["DATABASE_URL"],
        models_dir,
        REDIS_URL=private_redis.url,
        EVENT_CHANNEL=f"hotline:test-faults:{uuid.uuid4().hex}",
    )
    app = create_app(config)
    yield app
    app.extensions["hotline.db"].kw["bind"].dispose()


class Recorder:
    """Stands in for Socket.IO: keeps every update the publisher emits."""

    def __init__(self):
        self.updates = []

    def __call__(self, room, payload):
        self.updates.append((time.monotonic(), room, payload))

    def numbers(self, room="city"):
        return {item["number"] for _, r, p in self.updates if r == room for item in p["feed"]}


def receive(app, count):
    """``count`` tickets received (and committed) one by one, as the API does."""
    numbers = []
    with app.app_context():
        session = app.extensions["hotline.db"]()
        operator = session.scalars(sa.select(User).where(User.username == "operator")).one()
        area = session.scalars(sa.select(Area).where(Area.code == "370705001")).one()
        for i in range(count):
            ticket, _ = ops.receive(
                session,
                operator,
                channel=Channel.phone,
                request_type=RequestType.complaint,
                urgency=Urgency.normal,
                content=f"停电第 {i} 户",
                area=area,
                suggestion=None,
            )
            session.commit()
            numbers.append(ticket.number)
        session.close()
    return numbers


def wait_for(condition, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def running_publisher(redis_app):
    recorder = Recorder()
    publisher = board_publisher.BoardPublisher(redis_app, emit_update=recorder).start()
    yield publisher, recorder
    publisher.stop()


@needs_redis_server
@pytest.mark.slow
def test_the_publisher_keeps_its_subscription_after_start(redis_app, running_publisher, caplog):
    """The probe: the Redis client made in ``start`` was garbage-collected when ``start``
    returned, closing the subscription; events in the next second were lost."""
    publisher, recorder = running_publisher
    with caplog.at_level(logging.WARNING, logger="dashboards.publisher"):
        assert wait_for(lambda: publisher._pubsub is not None and publisher._pubsub.subscribed, 5)
        gc.collect()
        numbers = receive(redis_app, 1)
        assert wait_for(lambda: set(numbers) <= recorder.numbers(), 3), recorder.updates
    assert not [r for r in caplog.records if "subscription lost" in r.getMessage()]


@needs_redis_server
@pytest.mark.slow
def test_tickets_received_while_redis_was_away_reach_the_boards(
    redis_app, running_publisher, private_redis, caplog
):
    publisher, recorder = running_publisher
    assert wait_for(lambda: publisher._pubsub is not None and publisher._pubsub.subscribed, 5)
    before = receive(redis_app, 2)
    assert wait_for(lambda: set(before) <= recorder.numbers(), 5)

    with caplog.at_level(logging.WARNING):
        private_redis.kill()
        during = receive(redis_app, 12)  # requests go on; their events cannot be published
        private_redis.start()
        back = time.monotonic()
        # Within seconds of Redis coming back, every board has every ticket of the outage.
        assert wait_for(lambda: set(during) <= recorder.numbers(), 5), sorted(
            set(during) - recorder.numbers()
        )
        assert set(during) <= recorder.numbers(f"district:{'370705'}")
        first = min(
            t for t, _, p in recorder.updates if {i["number"] for i in p["feed"]} & set(during)
        )
        assert first - back < 5
        # Events go through again once the publisher's pause after a failure is over.
        time.sleep(events.RETRY_SECONDS)
        after = receive(redis_app, 1)
        assert wait_for(lambda: set(after) <= recorder.numbers(), 5)

    messages = [r.getMessage() for r in caplog.records]
    events_down = [m for m in messages if m.startswith("Redis (ticket events) unavailable")]
    events_up = [m for m in messages if m.startswith("Redis (ticket events) available again")]
    lost = [m for m in messages if "subscription lost" in m]
    regained = [m for m in messages if "reachable again" in m]
    # The outage and the recovery once each, not once per request or per retry.
    assert len(events_down) == 1 and len(events_up) == 1, messages
    assert len(lost) == 1 and len(regained) == 1, messages
    assert not [r for r in caplog.records if r.exc_info], "no tracebacks for an outage"


def test_each_update_names_the_one_before_it(app, db, board_publisher_recording):
    publisher, recorder = board_publisher_recording
    publisher.flush([], rooms={"city"})
    publisher.flush([], rooms={"city"})
    (_, _, first), (_, _, second) = [u for u in recorder.updates if u[1] == "city"]
    assert first["previous"] is None
    assert second["previous"] == first["as_of"]


@pytest.fixture
def board_publisher_recording(app, db):
    recorder = Recorder()
    return board_publisher.BoardPublisher(app, emit_update=recorder), recorder


@pytest.fixture
def board_client(app, db):
    """A Socket.IO test client of ``app`` (which has no message queue) logged in as ``user``."""
    if app.config["REDIS_URL"]:
        pytest.skip("the Socket.IO test client refuses a message queue (covered end to end)")

    def connect(username, **kwargs):
        client = app.test_client()
        web_login(client, username)
        return app.extensions["socketio"].test_client(
            app, namespace="/board", flask_test_client=client, **kwargs
        )

    return connect


def test_catch_up_returns_what_a_board_missed(app, db, user, board_client):
    operator = user("operator")
    seen = make_ticket(db, operator, area="370705001")
    missed_here = [make_ticket(db, operator, area="370705001") for _ in range(3)]
    elsewhere = make_ticket(db, operator, area="370702001")
    db.flush()
    kuiwen = board_client("kuiwen-leader")
    answer = kuiwen.emit("catch_up", {"after": seen.id}, namespace="/board", callback=True)
    assert answer["ok"] and answer["room"] == "district:370705"
    numbers = [item["number"] for item in answer["feed"]]
    # Newest first; the district's only; a margin of older ones is sent again (the board
    # skips those it has).
    assert numbers[:3] == [t.number for t in reversed(missed_here)]
    assert elsewhere.number not in numbers and seen.number in numbers
    assert all(item["id"] for item in answer["feed"])


@pytest.mark.parametrize("after", [None, "7", -1, True, 1.5])
def test_catch_up_refuses_a_bad_cursor(board_client, after):
    answer = board_client("leader").emit(
        "catch_up", {"after": after}, namespace="/board", callback=True
    )
    assert answer == {"ok": False, "error": "缺少有效的 after（已收到的最大工单序号）"}
