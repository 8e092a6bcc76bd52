"""Health, metrics and the access log: ``/healthz``, ``/readyz``, ``/metrics``, and what
every request leaves behind (its id, its access line, its counts).

- ``GET /healthz``: the process answers (nothing else is checked): 200 ``{"status": "ok"}``.
- ``GET /readyz``: whether this process can serve: the database answers (one query, which
  also reads the heartbeats) and, when ``REDIS_URL`` is set, Redis answers a PING (1 s at
  most). Either away: 503 ``"unavailable"``. Both there: 200, ``"ready"`` — or
  ``"degraded"`` with ``warnings`` when the scheduler's or the board publisher's last beat
  is missing or older than ``READY_STALE_INTERVALS`` of its interval. A late scheduler does
  not take the web hosts out of the proxy (pages and intake still work, and removing every
  host would stop the city's intake for a fault of one background process); it is a warning
  here and an alert on ``hotline_heartbeat_age_seconds``.
- ``GET /metrics``: Prometheus' text format (``hotline.metrics``), only for addresses in
  ``METRICS_ALLOWED_NETWORKS`` (default this host) or a caller sending
  ``Authorization: Bearer METRICS_TOKEN`` (when set); others get 403, and so does a request
  that came through a proxy (``X-Forwarded-For``) when ``PROXY_HOPS`` is 0.

All three need no login, set no cookie, are never rate-limited, carry no personal data and
write no access line (a probe every few seconds would drown the log; an outage of the
database or Redis is logged once by ``hotline.outage``). They are counted in the request
metrics like any endpoint.
"""

import hmac
import logging
import time

import redis
import sqlalchemy as sa
from flask import Blueprint, Response, current_app, g, jsonify, request

from hotline import heartbeats, logs, metrics
from hotline.auth import is_trusted, trusted_networks

access_log = logging.getLogger("hotline.access")

#: Paths that write no access line.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
#: How a stale process shows in ``/readyz``'s warnings.
STALE = {
    heartbeats.SCHEDULER: "scheduler_stale",
    heartbeats.BOARD_PUBLISHER: "board_publisher_stale",
}


def init_app(app):
    """Register the per-request hooks first, so that their clock starts before any other
    hook runs and their access line is written after every other one."""
    try:
        app.extensions["hotline.metrics_networks"] = trusted_networks(
            app.config["METRICS_ALLOWED_NETWORKS"]
        )
    except ValueError as exc:
        raise ValueError(f"配置项 METRICS_ALLOWED_NETWORKS 有误：{exc}") from None
    logs.formatter(app.config["LOG_FORMAT"])  # refuses an unknown format at start
    metrics.init_app(app)

    @app.before_request
    def _start():
        g.request_started = time.perf_counter()
        incoming = request.headers.get(logs.REQUEST_ID_HEADER)
        g.request_id = logs.valid_request_id(incoming) or logs.new_request_id()

    @app.after_request
    def _finish(response):
        started = g.get("request_started")
        if started is None:  # a response made before this app's hooks ran
            return response
        seconds = time.perf_counter() - started
        response.headers[logs.REQUEST_ID_HEADER] = g.request_id
        try:
            metrics.observe_request(request.endpoint, request.method, response.status_code, seconds)
            if request.path not in QUIET_PATHS:
                _access_line(response.status_code, seconds)
        except Exception:  # noqa: BLE001 — counting and logging never fail the response
            logging.getLogger(__name__).exception("request metrics or access line failed")
        return response

    app.register_blueprint(create_blueprint())


def _access_line(status, seconds):
    duration_ms = round(seconds * 1000, 1)
    level = logging.WARNING if status >= 500 else logging.INFO
    access_log.log(
        level,
        "%s %s %s %.1f ms",
        request.method,
        request.path,
        status,
        duration_ms,
        extra={
            "method": request.method,
            "path": request.path,
            "status": status,
            "duration_ms": duration_ms,
            "endpoint": request.endpoint,
            "user_id": _user_id(),
            "remote_addr": request.remote_addr,
        },
    )


def _user_id():
    """The caller's user id if this request already knew it (an API token's user, a page's
    logged-in user), from the row's identity: never a query of its own (the database may be
    the reason this request failed, and its rollback expired the user's attributes)."""
    for user in (g.get("user"), g.get("_login_user")):
        state = sa.inspect(user, raiseerr=False) if user is not None else None
        if state is not None and state.identity:
            return state.identity[0]
    return None


def create_blueprint():
    bp = Blueprint("health", __name__)

    @bp.get("/healthz")
    def healthz():
        return _no_store(jsonify({"status": "ok"}))

    @bp.get("/readyz")
    def readyz():
        body, status = readiness(current_app)
        return _no_store(jsonify(body)), status

    @bp.get("/metrics")
    def metrics_view():
        if not _may_scrape():
            response = jsonify(
                {
                    "success": False,
                    "error": {
                        "code": "METRICS_FORBIDDEN",
                        "message": "监控指标仅对运维网络开放",
                        "details": {},
                    },
                }
            )
            return _no_store(response), 403
        body, content_type = metrics.render(current_app)
        return _no_store(Response(body, content_type=content_type))

    return bp


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


def _may_scrape():
    token = current_app.config["METRICS_TOKEN"]
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[7:].strip().encode(), token.encode())
    if not current_app.config["PROXY_HOPS"] and "X-Forwarded-For" in request.headers:
        # Through a proxy the application is not told about, the address is the proxy's
        # (127.0.0.1 for nginx on this host): it says nothing of who asks.
        return False
    return is_trusted(request.remote_addr, current_app.extensions["hotline.metrics_networks"])


def readiness(app):
    """(body, HTTP status) of ``/readyz``."""
    checks, warnings = {}, []
    config = app.config
    started = time.perf_counter()
    session = app.extensions["hotline.db"]()
    beats = None
    try:
        beats = heartbeats.read_all(session)
        session.rollback()
        checks["database"] = {"ok": True}
    except sa.exc.SQLAlchemyError as exc:
        session.rollback()
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    finally:
        session.close()
    checks["database"]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    if config["REDIS_URL"]:
        started = time.perf_counter()
        try:
            app.extensions["hotline.events"].redis.ping()
            checks["redis"] = {"ok": True}
        except redis.RedisError as exc:
            checks["redis"] = {"ok": False, "error": type(exc).__name__}
        checks["redis"]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    if beats is not None:
        now = heartbeats.utcnow()
        multiple = config["READY_STALE_INTERVALS"]
        defaults = {
            heartbeats.SCHEDULER: config["SCHEDULER_INTERVAL_SECONDS"],
            heartbeats.BOARD_PUBLISHER: heartbeats.PUBLISHER_BEAT_SECONDS,
        }
        for name, default in defaults.items():
            state = heartbeats.describe(beats.get(name), multiple, default, now)
            checks[name.replace("-", "_")] = state
            if not state["ok"]:
                warnings.append(STALE[name])
    if not all(checks[k]["ok"] for k in ("database", "redis") if k in checks):
        return {"status": "unavailable", "checks": checks, "warnings": warnings}, 503
    status = "degraded" if warnings else "ready"
    return {"status": status, "checks": checks, "warnings": warnings}, 200
