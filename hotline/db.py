"""Database plumbing: declarative base, portable column types, engine and per-request session."""

import datetime as dt
import enum
import json
import logging
import traceback
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app, g
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from hotline.outage import Outage

_log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(sa.TypeDecorator):
    """A timezone-aware UTC timestamp on every backend (SQLite stores no zone of its own)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


#: JSON that is JSONB on PostgreSQL.
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
#: The same, storing Python None as SQL NULL (not JSON null), for optional documents.
NullableJSONType = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def enum_column_type(enum_cls):
    """Store a Python enum by its value as a plain string: portable, and migrations stay simple."""
    return sa.Enum(
        enum_cls,
        native_enum=False,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


def utcnow():
    return dt.datetime.now(dt.UTC)


def make_engine(url, pool_size=5):
    """Create an engine with the per-backend settings this application relies on.

    Statement parameters never appear in error messages (``hide_parameters``): they hold
    requesters' names, phones, addresses and complaint texts, and error messages go to logs.
    """
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):
            # Let SQLAlchemy, not the driver, issue BEGIN (needed for SAVEPOINT and for
            # BEGIN IMMEDIATE), enforce foreign keys, and use WAL so readers never block writers.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # IMMEDIATE takes the write lock up front: two writers queue on busy_timeout instead
            # of one failing mid-transaction with "database is locked".
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        hide_parameters=True,
    )


def bulk_insert(session, table, rows, *, returning=(), skip_conflicts=False):
    """Insert ``rows`` (dicts with the same keys) into ``table`` in one statement.

    On PostgreSQL the rows go as one array per column into ``INSERT … SELECT FROM unnest``: one
    round trip and no per-row work in SQLAlchemy, which is what a scheduler tick firing
    thousands of timers needs. Elsewhere a multi-row executemany. ``skip_conflicts`` ignores
    rows violating a unique constraint; ``returning`` names columns to return for the rows
    actually inserted (as plain values).
    """
    if not rows:
        return []
    dialect = session.get_bind().dialect
    names = list(rows[0])
    if dialect.name != "postgresql":
        statement = sqlite_insert(table) if skip_conflicts else sa.insert(table)
        if skip_conflicts:
            statement = statement.on_conflict_do_nothing()
        if returning:
            statement = statement.returning(*(table.c[n] for n in returning))
            return [tuple(_plain(v) for v in r) for r in session.execute(statement, rows)]
        session.execute(statement, rows)
        return []
    arrays, casts = [], []
    for name in names:
        typename = table.c[name].type.compile(dialect=dialect)
        values = [row[name] for row in rows]
        if typename == "JSONB":
            values = [json.dumps(v, ensure_ascii=False) for v in values]
        arrays.append([_plain(v) for v in values])
        casts.append(f"%b::{typename}[]")  # %b: binary, no text quoting
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM unnest({', '.join(casts)})"
    if skip_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    if returning:
        sql += f" RETURNING {', '.join(returning)}"
        return [tuple(r) for r in session.connection().exec_driver_sql(sql, tuple(arrays))]
    session.connection().exec_driver_sql(sql, tuple(arrays))
    return []


def _plain(value):
    return value.value if isinstance(value, enum.Enum) else value


#: The database going away and coming back, logged once each (``unavailable`` errors).
outage = Outage("hotline.db", "database")
#: What people and programs are told while it is away (with ``Retry-After``).
BUSY_MESSAGE = "系统繁忙，请稍后重试（数据库暂时不可用，本次操作未生效）"

#: PostgreSQL SQLSTATEs that mean "away for now, try again": connection exceptions (08),
#: too many connections or out of memory or disk (53), the server shutting down, crashing or
#: starting (57P0x), and the conflicts a retry settles: serialization failure, deadlock (40001,
#: 40P01) and a lock not available in time (55P03). A statement the database refuses (a
#: limit exceeded, a constraint) is not among them: retrying cannot help.
_POSTGRES_AWAY = ("08", "53", "57P01", "57P02", "57P03", "40001", "40P01", "55P03")

#: SQLite errors that mean "the database cannot be used right now", not a bug.
_SQLITE_AWAY = ("database is locked", "unable to open database", "disk i/o error", "is full")


def unavailable(exc):
    """Whether ``exc`` says the database is away for now (restarting, unreachable, out of
    connections, locked) rather than that a statement was wrong: the request may be sent
    again in a moment."""
    if isinstance(exc, sa.exc.DisconnectionError | sa.exc.TimeoutError):
        return True
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        return False
    if type(exc.orig).__module__.startswith("sqlite3"):
        message = str(exc.orig).lower()
        return any(part in message for part in _SQLITE_AWAY)
    sqlstate = getattr(exc.orig, "sqlstate", None)
    # No SQLSTATE: the server never answered (refused, unreachable, the connection dropped).
    return sqlstate is None or sqlstate.startswith(_POSTGRES_AWAY)


def log_error(logger, exc, where):
    """Log an unexpected database error without the data it carried: the driver's first
    line and SQLSTATE and where it was raised, never the rest of its message (PostgreSQL's
    DETAIL repeats a refused row: names, phones, complaint texts)."""
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [""])[0][:300]
    sqlstate = getattr(orig, "sqlstate", None)
    logger.error(
        "database error %s: %s%s: %s\n%s",
        where,
        type(orig).__name__,
        f" (SQLSTATE {sqlstate})" if sqlstate else "",
        first,
        "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
    )


def init_app(app):
    engine = make_engine(app.config["DATABASE_URL"], app.config["DATABASE_POOL_SIZE"])

    @sa.event.listens_for(engine, "checkout")
    def _reachable(*_args):
        # A connection handed out (PostgreSQL: pinged first) means the database is back.
        if outage.down:
            outage.succeeded()

    app.extensions["hotline.db"] = sessionmaker(
        bind=engine,
        expire_on_commit=False,
        info={
            "publisher": app.extensions["hotline.events"],
            "notifier": app.extensions["hotline.notify"],
            "courier": app.extensions["hotline.outbox"].courier,
        },
    )
    app.teardown_appcontext(_close_session)


def get_session() -> Session:
    """The session of the current application context (one per request or CLI command)."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["hotline.db"]()
    return g.db_session


def _close_session(_exc):
    session = g.pop("db_session", None)
    if session is not None:
        if session.info.pop("rollback_on_close", False):
            # Something waits on a rollback (a photo written for a row never committed).
            try:
                session.rollback()
            except Exception:  # noqa: BLE001 — the connection may be gone; closing is enough
                pass
        try:
            session.close()
        except sa.exc.SQLAlchemyError as exc:
            # Closing rolls back the request's reads; when the database dropped the connection
            # meanwhile (a restart) that fails, after the answer was made: the connection is
            # thrown away, and the answer goes out (not a server's bare 500 instead of it).
            if unavailable(exc):
                outage.failed(exc)
            else:
                log_error(_log, exc, "closing a request's session")
            session.invalidate()


def local_datetime(value, timezone):
    """A UTC datetime (or ISO text) as a naive local datetime, for a page or a spreadsheet cell."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)


def local_today(timezone, now=None):
    """The city's local date now (or at the moment ``now``)."""
    moment = now if now is not None else dt.datetime.now(dt.UTC)
    return moment.astimezone(ZoneInfo(timezone)).date()


def day_bounds(now, timezone):
    """(start of yesterday, start of today, start of tomorrow) in UTC, local days."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    today = dt.datetime(local.year, local.month, local.day, tzinfo=zone)
    # Arithmetic on an aware datetime is wall-clock arithmetic: local midnights.
    yesterday = today - dt.timedelta(days=1)
    tomorrow = today + dt.timedelta(days=1)
    return yesterday.astimezone(dt.UTC), today.astimezone(dt.UTC), tomorrow.astimezone(dt.UTC)
