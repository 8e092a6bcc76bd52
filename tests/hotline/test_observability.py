"""Health, metrics, request ids and log lines (hotline/observability.py, hotline/metrics.py,
hotline/heartbeats.py, hotline/logs.py) on the suite's database (SQLite or PostgreSQL)."""

import datetime as dt
import io
import json
import logging
import socket

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from hotline import heartbeats, logs
from hotline.models import AuditLog, Ticket, TicketEvent
from tests.helpers import REDIS_URL, is_postgres

BODY = {
    "channel": "phone",
    "request_type": "complaint",
    "title": "路灯不亮",
    "content": "小区路灯不亮。",
    "requester_phone": "13805360009",
    "area": "370705001001001",
}


def closed_port():
    """A port of this helper's range nothing listens on (the second app's unreachable
    database or Redis)."""
    for port in range(18599, 18550, -1):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("no closed port in 18551–18599")


def samples(response):
    """{(name, frozenset(labels)): value} of a scrape."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found, name, **labels):
    return found.get((name, frozenset(labels.items())), 0.0)


# -- /healthz and /readyz ---------------------------------------------------------------------


def test_healthz_answers_without_login_or_cookie(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers


def test_readyz_degraded_until_the_background_processes_beat(app, client, db):
    body = client.get("/readyz").get_json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["scheduler"] == {"ok": False, "seen": False}
    assert body["warnings"] == ["scheduler_stale", "board_publisher_stale"]
    if REDIS_URL:
        assert body["checks"]["redis"]["ok"] is True

    factory = app.extensions["hotline.db"]
    assert heartbeats.beat(factory, heartbeats.SCHEDULER, 12.5, interval_seconds=10)
    assert heartbeats.beat(
        factory, heartbeats.BOARD_PUBLISHER, 0.2, interval_seconds=5, detail={"rooms": 3}
    )
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready" and body["warnings"] == []
    scheduler = body["checks"]["scheduler"]
    assert scheduler["ok"] and scheduler["lag_seconds"] == 12.5
    assert scheduler["stale_after_seconds"] == 6 * 10
    # Public: no host names or process ids.
    assert "host" not in json.dumps(body) and "pid" not in json.dumps(body)


def test_a_stale_scheduler_is_a_warning_not_an_outage(app, client, db):
    factory = app.extensions["hotline.db"]
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=61)
    heartbeats.beat(factory, heartbeats.SCHEDULER, 0, interval_seconds=10, now=long_ago)
    heartbeats.beat(factory, heartbeats.BOARD_PUBLISHER, 0, interval_seconds=5)
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "degraded" and body["warnings"] == ["scheduler_stale"]
    assert body["checks"]["scheduler"]["age_seconds"] >= 61
    # The process's own interval counts (``hotline scheduler --interval 30``).
    heartbeats.beat(factory, heartbeats.SCHEDULER, 0, interval_seconds=30, now=long_ago)
    assert client.get("/readyz").get_json()["status"] == "ready"


def test_a_beat_is_one_row_per_process_updated_in_place(app, db):
    factory = app.extensions["hotline.db"]
    for lag in (5, 0):
        heartbeats.beat(factory, heartbeats.SCHEDULER, lag, interval_seconds=10, detail={"n": lag})
    rows = heartbeats.read_all(db)
    assert list(rows) == [heartbeats.SCHEDULER]
    row = rows[heartbeats.SCHEDULER]
    assert row.lag_seconds == 0 and row.detail == {"interval_seconds": 10, "n": 0}


def test_readyz_unavailable_when_the_database_is_unreachable(make_app, database_url, tmp_path):
    if is_postgres(database_url):
        url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/nowhere"
    else:
        url = f"sqlite:///{tmp_path}/missing/dir/hotline.sqlite"
    away = make_app(DATABASE_URL=url)
    response = away.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["database"]["error"] == "OperationalError"
    assert "scheduler" not in body["checks"]
    # The process itself is up.
    assert away.test_client().get("/healthz").status_code == 200


def test_readyz_unavailable_when_redis_is_down(make_app):
    away = make_app(REDIS_URL=f"redis://127.0.0.1:{closed_port()}/15")
    response = away.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["redis"]["error"] == "ConnectionError"


def test_probes_are_never_rate_limited(make_app):
    limited = make_app(LIMITS_ENABLED=True)
    client = limited.test_client()
    assert all(client.get("/healthz").status_code == 200 for _ in range(300))


# -- /metrics ---------------------------------------------------------------------------------


def test_metrics_refused_outside_the_allowed_networks(make_app):
    app = make_app(METRICS_TOKEN="s3cret-token")
    client = app.test_client()
    outside = {"REMOTE_ADDR": "203.0.113.9"}
    refused = client.get("/metrics", environ_base=outside)
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "METRICS_FORBIDDEN"
    wrong = client.get("/metrics", environ_base=outside, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    right = client.get(
        "/metrics", environ_base=outside, headers={"Authorization": "Bearer s3cret-token"}
    )
    assert right.status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    # Through a proxy the application does not know of, 127.0.0.1 is the proxy's address.
    proxied = {"X-Forwarded-For": "203.0.113.9"}
    assert client.get("/metrics", headers=proxied).status_code == 403
    behind = make_app(PROXY_HOPS=1).test_client()
    assert behind.get("/metrics", headers=proxied).status_code == 403
    assert behind.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200
    ranged = make_app(METRICS_ALLOWED_NETWORKS="10.8.0.0/16")
    assert ranged.test_client().get("/metrics", environ_base=outside).status_code == 403
    inside = {"REMOTE_ADDR": "10.8.3.4"}
    assert ranged.test_client().get("/metrics", environ_base=inside).status_code == 200


def test_a_bad_network_setting_stops_the_start(make_app):
    with pytest.raises(ValueError, match="METRICS_ALLOWED_NETWORKS"):
        make_app(METRICS_ALLOWED_NETWORKS="not-a-network")
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        make_app(LOG_FORMAT="xml")


def test_request_metrics_count_real_requests(api, client):
    before = samples(client.get("/metrics"))
    operator = api("operator")
    for _ in range(3):
        assert operator.get("/tickets").status_code == 200
    assert operator.get("/tickets/WF-NONE").status_code == 404
    client.get("/no/such/path/123")
    after = samples(client.get("/metrics"))

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    listed = {"endpoint": "api.tickets.list_tickets", "method": "GET"}
    assert delta("hotline_http_requests_total", status="200", **listed) == 3
    assert delta("hotline_http_request_duration_seconds_count", **listed) == 3
    assert delta("hotline_http_request_duration_seconds_sum", **listed) > 0
    assert delta("hotline_http_request_duration_seconds_bucket", le="+Inf", **listed) == 3
    shown = {"endpoint": "api.tickets.get_ticket", "method": "GET", "status": "404"}
    assert delta("hotline_http_requests_total", **shown) == 1
    # Unknown paths share one label: a scanner cannot grow the metrics.
    unmatched = {"endpoint": "unmatched", "method": "GET", "status": "404"}
    assert delta("hotline_http_requests_total", **unmatched) == 1
    assert not any("no/such" in str(key) for key in after)


def test_ticket_gauges_follow_the_database_within_the_cache(
    app, make_app, api, client, db, monkeypatch
):
    monkeypatch.setitem(app.config, "METRICS_CACHE_SECONDS", 0)
    first = samples(client.get("/metrics"))
    assert value(first, "hotline_database_up") == 1
    assert value(first, "hotline_metrics_database_seconds") > 0
    received = value(first, "hotline_open_tickets", state="received")
    overdue = value(first, "hotline_overdue_tickets")
    monkeypatch.setitem(app.config, "METRICS_CACHE_SECONDS", 3600)
    samples(client.get("/metrics"))
    numbers = [api("operator").post("/tickets", json=BODY).get_json()["data"]["number"]]
    numbers.append(api("operator").post("/tickets", json=BODY).get_json()["data"]["number"])
    # Within METRICS_CACHE_SECONDS a scrape counts nothing: the same values, in this process
    # and in another one (another worker reads the count this one left in the heartbeats).
    cached = samples(client.get("/metrics"))
    assert value(cached, "hotline_open_tickets", state="received") == received
    other = make_app(METRICS_CACHE_SECONDS=3600)
    other.extensions["hotline.db"] = app.extensions["hotline.db"]  # the test's transaction
    shared = samples(other.test_client().get("/metrics"))
    assert value(shared, "hotline_open_tickets", state="received") == received
    assert ("hotline_heartbeat_age_seconds", frozenset({("process", "metrics")})) not in shared
    monkeypatch.setitem(app.config, "METRICS_CACHE_SECONDS", 0)
    fresh = samples(client.get("/metrics"))
    assert value(fresh, "hotline_open_tickets", state="received") == received + 2
    # One of them with a unit past its finish deadline: overdue (超期).
    late = db.scalars(sa.select(Ticket).where(Ticket.number == numbers[0])).one()
    late.status = late.status.__class__.signed
    late.finish_due = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    db.flush()
    now = samples(client.get("/metrics"))
    assert value(now, "hotline_open_tickets", state="received") == received + 1
    assert value(now, "hotline_open_tickets", state="signed") >= 1
    assert value(now, "hotline_overdue_tickets") == overdue + 1


def test_heartbeats_in_metrics(app, client, db, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_CACHE_SECONDS", 0)
    factory = app.extensions["hotline.db"]
    heartbeats.beat(factory, heartbeats.SCHEDULER, 42.0, interval_seconds=10)
    heartbeats.beat(factory, heartbeats.BOARD_PUBLISHER, 1.5, interval_seconds=5)
    found = samples(client.get("/metrics"))
    assert value(found, "hotline_scheduler_lag_seconds") == 42.0
    assert value(found, "hotline_publisher_lag_seconds") == 1.5
    age = value(found, "hotline_heartbeat_age_seconds", process="scheduler")
    assert 0 <= age < 60


def test_metrics_still_served_when_the_database_is_away(make_app, database_url, tmp_path):
    if is_postgres(database_url):
        url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/nowhere"
    else:
        url = f"sqlite:///{tmp_path}/missing/dir/hotline.sqlite"
    found = samples(make_app(DATABASE_URL=url).test_client().get("/metrics"))
    assert value(found, "hotline_database_up") == 0
    assert ("hotline_overdue_tickets", frozenset()) not in found


# -- request ids ------------------------------------------------------------------------------


def test_request_id_round_trip_into_the_event_and_the_audit(api, client, db):
    operator = api("operator")
    response = operator.post("/tickets", json=BODY, headers={"X-Request-Id": "lb-7f3a.01:x"})
    assert response.status_code == 201
    assert response.headers["X-Request-Id"] == "lb-7f3a.01:x"
    number = response.get_json()["data"]["number"]
    event = db.scalars(sa.select(TicketEvent).join(Ticket).where(Ticket.number == number)).one()
    assert event.action == "receive" and event.request_id == "lb-7f3a.01:x"

    login = client.post(
        "/api/v1/auth/login",
        json={"username": "dispatcher", "password": "wrong"},
        headers={"X-Request-Id": "audit-42"},
    )
    assert login.headers["X-Request-Id"] == "audit-42"
    row = db.scalars(
        sa.select(AuditLog).where(AuditLog.action == "auth.login_failed").order_by(AuditLog.id)
    ).all()[-1]
    assert row.request_id == "audit-42"


@pytest.mark.parametrize("given", ["", "has space", "x" * 65, "<script>", "名字", "-lead"])
def test_an_unsafe_request_id_is_replaced(client, given):
    response = client.get("/healthz", headers={"X-Request-Id": given})
    made = response.headers["X-Request-Id"]
    assert made != given and len(made) == 32 and made.isalnum()


def test_each_request_gets_its_own_id(client):
    ids = {client.get("/healthz").headers["X-Request-Id"] for _ in range(5)}
    assert len(ids) == 5


def test_events_made_outside_a_request_have_no_request_id(db, make_ticket, user):
    ticket = make_ticket(user("operator"))  # as the scheduler or a command makes them
    ids = db.scalars(sa.select(TicketEvent.request_id).where(TicketEvent.ticket_id == ticket.id))
    assert ids.all() == [None]


# -- log lines ----------------------------------------------------------------------------------


@pytest.fixture
def json_log():
    """The app's log lines as parsed JSON objects (``logs.configure`` with LOG_FORMAT=json)."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = logs.configure({"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}, stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def test_access_lines_are_json_with_the_request_id(api, client, user, json_log):
    operator = api("operator")
    response = client.get(
        "/api/v1/tickets?phone=13805360009",
        headers={**operator.headers, "X-Request-Id": "trace-1"},
    )
    assert response.status_code == 200
    client.get("/healthz")
    client.get("/metrics")
    lines = json_log()
    access = [line for line in lines if line["logger"] == "hotline.access"]
    assert len(access) == 1  # the probes write none
    line = access[0]
    assert line["request_id"] == "trace-1"
    assert line["method"] == "GET" and line["path"] == "/api/v1/tickets"
    assert line["status"] == 200 and line["level"] == "INFO"
    assert line["endpoint"] == "api.tickets.list_tickets"
    assert line["user_id"] == user("operator").id
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert dt.datetime.fromisoformat(line["time"]).tzinfo is not None
    # The query string (a requester's phone) stays out of every line.
    assert "13805360009" not in json.dumps(lines)


def test_every_line_of_a_request_carries_its_id(make_app, json_log):
    app = make_app()

    @app.get("/_test/log-twice")
    def log_twice():
        logging.getLogger("hotline.test").warning("first")
        logging.getLogger("hotline.test").error("second", exc_info=ValueError("x"))
        return "ok"

    app.test_client().get("/_test/log-twice", headers={"X-Request-Id": "both-lines"})
    mine = [line for line in json_log() if line["logger"] == "hotline.test"]
    assert [line["message"] for line in mine] == ["first", "second"]
    assert all(line["request_id"] == "both-lines" for line in mine)
    assert "ValueError" in mine[1]["exception"]


def test_text_lines_for_a_terminal(client):
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = logs.configure({"LOG_FORMAT": "text", "LOG_LEVEL": "INFO"}, stream)
    try:
        client.get("/login", headers={"X-Request-Id": "txt-1"})
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    line = [x for x in stream.getvalue().splitlines() if "hotline.access" in x][0]
    assert " INFO hotline.access GET /login 200 " in line and line.endswith("[txt-1]")
