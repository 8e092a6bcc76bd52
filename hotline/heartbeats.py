"""Heartbeats: the last sign of life of each background process (``heartbeats``, one row per
process kind), written by the process and read by ``/readyz`` and ``/metrics``.

- ``scheduler`` (``server.scheduler.make_job``): after each SLA tick; its lag is how late
  the oldest timer that tick fired was (0 when none was due).
- ``board-publisher`` (``dashboards.publisher``): every ``PUBLISHER_BEAT_SECONDS``; its lag is
  the age of the oldest event it published since its last beat (0 when idle).
- ``metrics`` (``hotline.metrics``): not a process, but the last count of open and overdue
  tickets for ``/metrics``, kept here so that every web process shares it.

A beat is one upsert in its own short transaction (``INSERT … ON CONFLICT (name) DO UPDATE``,
on SQLite and PostgreSQL alike), at most once per tick. Its ``detail`` names the process's
own interval (``interval_seconds``), so a reader judges a beat's age against the interval
the process really runs at (``hotline scheduler --interval`` may differ from the web's
setting): a beat older than ``multiple`` intervals is ``stale``.

Several schedulers share one row (the last to tick wins): the row says that some scheduler
ticked, which is what the timers need.
"""

import datetime as dt
import logging
import os
import socket
from dataclasses import dataclass, fields

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from hotline.db import utcnow
from hotline.models.storage import Heartbeat
from hotline.outage import Outage

log = logging.getLogger(__name__)

SCHEDULER = "scheduler"
BOARD_PUBLISHER = "board-publisher"
#: Seconds between two beats of the board publisher (it flushes up to ten times a second).
PUBLISHER_BEAT_SECONDS = 5
#: Not a process: the last count of the tickets for ``/metrics`` (``hotline.metrics``),
#: shared by every web process for ``METRICS_CACHE_SECONDS`` (its ``detail``).
METRICS = "metrics"

_failing = Outage(log, "heartbeats (database)")


def beat(session_factory, name, lag_seconds=0.0, *, interval_seconds, detail=None, now=None):
    """Record that process ``name`` is alive now, ``lag_seconds`` behind. Never raises: a
    beat that cannot be written (the database away) is logged once per outage, and the
    beat's growing age says the rest. Returns whether it was written."""
    values = {
        "name": name,
        "host": socket.gethostname()[:255],
        "pid": os.getpid(),
        "beat_at": now or utcnow(),
        "lag_seconds": max(0.0, float(lag_seconds or 0.0)),
        "detail": {"interval_seconds": interval_seconds, **(detail or {})},
    }
    session = session_factory()
    try:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(Heartbeat).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=[Heartbeat.name],
            set_={k: statement.excluded[k] for k in values if k != "name"},
        )
        session.execute(statement)
        session.commit()
    except sa.exc.SQLAlchemyError as exc:
        session.rollback()
        _failing.failed(exc)
        return False
    finally:
        session.close()
    _failing.succeeded()
    return True


@dataclass(frozen=True)
class Beat:
    """A heartbeat row as read (plain values: usable after its session ended)."""

    name: str
    host: str
    pid: int
    beat_at: dt.datetime
    lag_seconds: float
    detail: dict


def read_all(session):
    """{name: Beat} of every process that ever beat."""
    columns = [getattr(Heartbeat, f.name) for f in fields(Beat)]
    return {row.name: Beat(*row) for row in session.execute(sa.select(*columns))}


def age_seconds(row, now=None):
    return max(0.0, ((now or utcnow()) - row.beat_at).total_seconds())


def interval_of(row, default):
    value = (row.detail or {}).get("interval_seconds")
    return value if isinstance(value, int | float) and value > 0 else default


def stale(row, multiple, default_interval, now=None):
    """Whether ``row`` (None: never beat) is older than ``multiple`` of its process's
    interval."""
    if row is None:
        return True
    return age_seconds(row, now) > multiple * interval_of(row, default_interval)


def describe(row, multiple, default_interval, now=None):
    """What ``/readyz`` says of one process: its age and lag, and whether it is stale. No
    host or pid: the endpoint is public."""
    if row is None:
        return {"ok": False, "seen": False}
    age = age_seconds(row, now)
    limit = multiple * interval_of(row, default_interval)
    return {
        "ok": age <= limit,
        "seen": True,
        "age_seconds": round(age, 1),
        "stale_after_seconds": limit,
        "lag_seconds": round(row.lag_seconds, 1),
        "beat_at": row.beat_at.astimezone(dt.UTC).isoformat(timespec="seconds"),
    }
