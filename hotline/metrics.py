"""Prometheus metrics (the official client, ``prometheus_client``), served at ``/metrics``.

Two kinds:

- **Counted by the processes**: requests by endpoint, method and status
  (``hotline_http_requests_total``), their latency (``hotline_http_request_duration_seconds``,
  a histogram), the live boards' Socket.IO clients (``hotline_socketio_clients``). gunicorn
  runs several worker processes and a scrape reaches one of them, so with
  ``PROMETHEUS_MULTIPROC_DIR`` set (an empty folder, wiped at each start by
  ``server.gunicorn_config``) every process writes its values to files there and a scrape
  sums them all (prometheus_client's multiprocess mode; the variable must be set before the
  processes start). Without it, one process's own values (``hotline serve``, tests).
- **Read from the database at scrape time** (``add_collector``: a domain above registers its
  own, e.g. ``dispatch.metrics``' open tickets by state and overdue count; the heartbeats'
  scheduler and publisher lag are read here): computed by the worker the scrape reaches and
  kept for ``METRICS_CACHE_SECONDS``, so scrapes every 15 s from two Prometheus servers cost
  one computation per period and worker. ``hotline_metrics_database_seconds`` says what the
  last computation took; when the database cannot be read, ``hotline_database_up`` is 0 and
  the process metrics are still served.
"""

import logging
import os
import threading
import time

import sqlalchemy as sa
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from hotline import heartbeats

log = logging.getLogger(__name__)
# The ``_created`` series double every counter and histogram for nothing a city alerts on.
disable_created_metrics()


def multiprocess_dir():
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


# In multiprocess mode each metric below opens its file in the folder when it is made: a
# process started with the variable (the scheduler sharing the web's environment file) must
# not fail for want of the folder.
if multiprocess_dir():
    os.makedirs(multiprocess_dir(), exist_ok=True)

#: Latency buckets in seconds: the load test's target is a p99 under 0.3 s.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "hotline_http_requests",
    "HTTP requests answered, by Flask endpoint, method and status",
    ["endpoint", "method", "status"],
)
LATENCY = Histogram(
    "hotline_http_request_duration_seconds",
    "Time from the request reaching the application to its response, by endpoint and method",
    ["endpoint", "method"],
    buckets=BUCKETS,
)
SOCKETIO_CLIENTS = Gauge(
    "hotline_socketio_clients",
    "Live-board Socket.IO connections open, summed over the live web processes",
    ["namespace"],
    multiprocess_mode="livesum",
)
BOARDS = "boards"
SOCKETIO_CLIENTS.labels(BOARDS)
#: The endpoint label of a request no route matched (a 404 before routing): one label for
#: every unknown path, so a scanner cannot grow the metrics.
UNMATCHED = "unmatched"


def observe_request(endpoint, method, status, seconds):
    REQUESTS.labels(endpoint or UNMATCHED, method, str(status)).inc()
    LATENCY.labels(endpoint or UNMATCHED, method).observe(seconds)


def init_app(app):
    app.extensions["hotline.metrics_database"] = _DatabaseCollector(app)
    app.extensions.setdefault("hotline.metric_collectors", [])


def add_collector(app, collect):
    """Have ``collect(session, now)`` (returning metric families) read at scrape time, within
    the cache of ``METRICS_CACHE_SECONDS``."""
    app.extensions["hotline.metric_collectors"].append(collect)


def heartbeat_families(rows, now):
    """The scheduler's and the board publisher's lag and the age of their last beat."""
    age = GaugeMetricFamily(
        "hotline_heartbeat_age_seconds",
        "Seconds since a background process last beat (heartbeats table)",
        labels=["process"],
    )
    lag = {
        heartbeats.SCHEDULER: GaugeMetricFamily(
            "hotline_scheduler_lag_seconds",
            "How late the oldest timer fired by the scheduler's last tick was",
        ),
        heartbeats.BOARD_PUBLISHER: GaugeMetricFamily(
            "hotline_publisher_lag_seconds",
            "Age of the oldest event the board publisher published since its last beat",
        ),
    }
    for name, row in sorted(rows.items()):
        age.add_metric([name], heartbeats.age_seconds(row, now))
        if name in lag:
            lag[name].add_metric([], row.lag_seconds)
    return [age, *lag.values()]


def _dump(families):
    """Gauge families as JSON (kept in the ``metrics`` heartbeat for the other processes)."""
    return [
        {
            "name": family.name,
            "help": family.documentation,
            "samples": [[sample.labels, sample.value] for sample in family.samples],
        }
        for family in families
    ]


def _load(dumped):
    families = []
    for item in dumped:
        labels = sorted(item["samples"][0][0]) if item["samples"] else []
        family = GaugeMetricFamily(item["name"], item["help"], labels=labels)
        for sample_labels, sample_value in item["samples"]:
            family.add_metric([sample_labels[k] for k in labels], sample_value)
        families.append(family)
    return families


class _DatabaseCollector:
    """The families read from the database. Kept for ``METRICS_CACHE_SECONDS`` twice over: in
    this process (a scrape within it reads nothing), and for every process of the deployment
    in the ``metrics`` heartbeat (a process whose own copy expired reads that row and computes
    only when it is older too), so the tickets are counted once per period however many
    workers, hosts and Prometheus servers there are."""

    def __init__(self, app):
        self.app = app
        self._lock = threading.Lock()
        self._families = None
        self._at = None

    def describe(self):
        # Nothing up front: registering must not query the database.
        return []

    def collect(self):
        seconds = self.app.config["METRICS_CACHE_SECONDS"]
        with self._lock:
            if self._at is None or time.monotonic() - self._at >= seconds:
                self._families = self._compute(seconds)
                self._at = time.monotonic()
            return list(self._families)

    def _compute(self, seconds):
        up = GaugeMetricFamily(
            "hotline_database_up", "Whether the database answered the last metrics read"
        )
        cost = GaugeMetricFamily(
            "hotline_metrics_database_seconds",
            "Time the last count of the tickets took (shared by every process for the cache's "
            "length)",
        )
        factory = self.app.extensions["hotline.db"]
        session = factory()
        counted_here = False
        try:
            now = heartbeats.utcnow()
            rows = heartbeats.read_all(session)
            shared = rows.pop(heartbeats.METRICS, None)
            if shared is not None and heartbeats.age_seconds(shared, now) < seconds:
                counted = _load(shared.detail.get("families", []))
                took = shared.detail.get("seconds", 0.0)
            else:
                started = time.perf_counter()
                counted = []
                for collect in self.app.extensions["hotline.metric_collectors"]:
                    counted.extend(collect(session, now))
                took = time.perf_counter() - started
                counted_here = True
            session.rollback()
        except sa.exc.SQLAlchemyError as exc:
            session.rollback()
            log.warning("metrics: database not readable (%s)", type(exc).__name__)
            up.add_metric([], 0)
            return [up]
        finally:
            session.close()
        if counted_here:
            # Once the reading transaction has ended: the other processes' copy.
            heartbeats.beat(
                factory,
                heartbeats.METRICS,
                interval_seconds=seconds,
                detail={"families": _dump(counted), "seconds": took},
            )
        up.add_metric([], 1)
        cost.add_metric([], took)
        return [*heartbeat_families(rows, now), *counted, up, cost]


class _ThisProcess:
    """The default registry's metrics (this process's counters, its process and platform
    collectors) in a scrape's registry."""

    def describe(self):
        return []

    def collect(self):
        return REGISTRY.collect()


def render(app):
    """The text exposition of a scrape: (body, content type)."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(app.extensions["hotline.metrics_database"])
    return generate_latest(registry), CONTENT_TYPE_LATEST
