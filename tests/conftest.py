"""Test fixtures.

The suite runs on SQLite by default and on PostgreSQL when ``HOTLINE_TEST_DATABASE_URL`` is set
(CI sets it, and ``HOTLINE_REDIS_URL`` too). The database is migrated and seeded once per run;
each test then runs inside a transaction that is rolled back (the app's commits become
savepoints), so tests see the seed data and never each other's. Tests that need real commits
from several connections (races) use ``committed_app`` instead.
"""

import contextlib
import dataclasses
import sqlite3
import struct
import uuid
import zlib

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from classifier import artefact, training
from dispatch import calendar as work_calendar
from dispatch import timers
from hotline import cache as hotline_cache
from hotline import migrate, model_versions, reference, seed, settings
from hotline.auth import token_hash
from hotline.db import make_engine
from hotline.models import ApiToken, AuditLog, Ticket, User
from server.app import create_app
from tests.helpers import (
    BASE_POSTGRES_URL,
    FORM_TOKEN,
    PASSWORD,
    POSTGRES_URL,
    REDIS_URL,
    is_postgres,
)

#: ``review.default_mode`` as the product ships it (before ``replies_unreviewed``).
SHIPPED_REVIEW_DEFAULT = settings.DEFINITIONS["review.default_mode"].default

#: The model versions the suite starts with (any other was made by a test and goes after it).
SUITE_MODELS = set()

#: Tables the tests write to; reference data (areas, units, …) stays as seeded.
MUTABLE_TABLES = [
    "heartbeats",
    "retention_runs",
    "model_retrains",
    "summons_firings",
    "summonses",
    "meeting_items",
    "joint_meetings",
    "referrals",
    "inspections",
    "review_rules",
    "early_warnings",
    "hot_issue_tickets",
    "hot_issues",
    "analysis_reports",
    "ranking_rows",
    "ranking_snapshots",
    "timer_firings",
    "notifications",
    "calendar_days",
    "calendar_years",
    "attachments",
    "ticket_events",
    "callback_attempts",
    "extensions",
    "assignments",
    "incoming_calls",
    "tickets",
    "api_tokens",
    "user_sessions",
    "audit_log",
    "settings",
    "reference_versions",
    "outbox",
    "verification_codes",
    "citizen_sessions",
    "open311_keys",
]


def reset_postgres(url):
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def create_worker_database(url):
    """The database of this pytest-xdist worker, created empty beside the given one."""
    name = make_url(url).database
    admin = sa.create_engine(
        make_url(BASE_POSTGRES_URL).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def _review_default(mode):
    """Make ``mode`` the code default of ``review.default_mode`` (no row in the database)."""
    definition = settings.DEFINITIONS["review.default_mode"]
    settings.DEFINITIONS["review.default_mode"] = dataclasses.replace(definition, default=mode)
    settings.clear()
    return definition


@pytest.fixture(autouse=True, scope="session")
def replies_unreviewed():
    """The suite's city reviews no finished reply (办结审核) unless a test says so: the
    shipped default (``flagged``) would send the short replies most tests finish with
    ("已修复") to 待审核, and what those tests check is not the review. The review is tested
    with the shipped default (``shipped_review_default``) and with explicit rules in
    tests/dispatch/test_reply_review.py and the tests beside it; browser tests run a server
    of their own, with the shipped default."""
    shipped = _review_default("none")
    yield
    settings.DEFINITIONS["review.default_mode"] = shipped
    settings.clear()


@pytest.fixture
def shipped_review_default():
    """For one test, the shipped default of ``review.default_mode`` (``flagged``)."""
    unreviewed = settings.DEFINITIONS["review.default_mode"]
    _review_default(SHIPPED_REVIEW_DEFAULT)
    yield
    settings.DEFINITIONS["review.default_mode"] = unreviewed
    settings.clear()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory, models_dir):
    """The suite's database: migrated, seeded, and with the suite's model registered and
    active (``hotline.model_versions``)."""
    if POSTGRES_URL:
        url = POSTGRES_URL
        if url != BASE_POSTGRES_URL:
            create_worker_database(url)
        reset_postgres(url)
    else:
        url = "sqlite:///" + str(tmp_path_factory.mktemp("db") / "hotline.sqlite")
    migrate.upgrade(url)
    engine = make_engine(url)
    with sessionmaker(bind=engine)() as session:
        seed.load_all(session)
        model_versions.import_folder(session, None, models_dir)
        SUITE_MODELS.update(row.version for row in model_versions.versions(session))
        # The suite's set-up is no one's action: tests count the audit rows they cause.
        session.execute(sa.delete(AuditLog))
        session.commit()
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    """A models folder holding the default model trained from the seed corpus (``ACTIVE``
    names it; the suite's database has it registered and active)."""
    path = tmp_path_factory.mktemp("models")
    bundle, meta = training.train_default()
    artefact.save(bundle, path, meta, activate=True)
    return str(path)


def _config(url, models_dir, **extra):
    config = {
        "DATABASE_URL": url,
        "SECRET_KEY": "test-secret",
        "TESTING": True,
        "REDIS_URL": REDIS_URL,
        "CLASSIFIER_MODELS_DIR": models_dir,
        # Tests build many apps; each loads the model when it first needs it.
        "CLASSIFIER_PRELOAD": False,
        # Rate limits are tested on apps of their own (``make_app(LIMITS_ENABLED=True)``);
        # counters of a run of its own, should it share Redis with another.
        "LIMITS_ENABLED": False,
        "RATELIMIT_KEY_PREFIX": f"hotline-limits:test:{uuid.uuid4().hex}",
        # No delivery thread: a test's rows live in its own connection's transaction; tests
        # of the delivery call it (``hotline.outbox_delivery``) or build an app with it.
        "OUTBOX_DELIVER_AFTER_COMMIT": False,
    }
    config.update(extra)
    return config


@pytest.fixture(scope="session")
def attachment_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("attachments"))


@pytest.fixture(scope="session")
def app(database_url, models_dir, attachment_dir):
    return create_app(_config(database_url, models_dir, ATTACHMENT_DIR=attachment_dir))


@pytest.fixture
def db(app):
    """A session on a connection whose transaction is rolled back after the test.

    The application's own sessions are bound to the same connection, so requests made through
    ``client`` see what the test wrote and vice versa.
    """
    original = app.extensions["hotline.db"]
    connection = original.kw["bind"].connect()
    transaction = connection.begin()
    factory = sessionmaker(
        bind=connection,
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
        info=original.kw["info"],
    )
    app.extensions["hotline.db"] = factory
    session = factory()
    # Open the test's savepoint first, so the app's sessions nest inside it.
    session.connection()
    ctx = app.app_context()
    ctx.push()
    try:
        yield session
    finally:
        ctx.pop()
        session.close()
        app.extensions["hotline.db"] = original
        transaction.rollback()
        connection.close()
        # Rows cached during the test may have been rolled back with it.
        hotline_cache.clear_all()
        work_calendar.invalidate()
        timers.reference.clear()
        settings.clear()


@pytest.fixture
def client(app, db):
    return app.test_client()


@pytest.fixture
def user(db):
    """``user("dispatcher")`` → the seeded User of that name."""

    def get(username):
        return db.scalars(sa.select(User).where(User.username == username)).one()

    return get


class Api:
    """A test client speaking for one user through a bearer token."""

    def __init__(self, client, token):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path, **kwargs):
        return self.client.get("/api/v1" + path, headers=self.headers, **kwargs)

    def post(self, path, json=None, headers=None, **kwargs):
        return self.client.post(
            "/api/v1" + path, json=json, headers={**self.headers, **(headers or {})}, **kwargs
        )

    def put(self, path, json=None, **kwargs):
        return self.client.put("/api/v1" + path, json=json, headers=self.headers, **kwargs)


def _token_for(session, user):
    token = "test_" + uuid.uuid4().hex
    session.add(ApiToken(user_id=user.id, token_hash=token_hash(token), label="test"))
    session.flush()
    return token


@pytest.fixture
def api(client, db, user):
    """``api("operator")`` → an Api client authenticated as that seeded user."""
    cache = {}

    def get(username):
        if username not in cache:
            cache[username] = Api(client, _token_for(db, user(username)))
        return cache[username]

    return get


@pytest.fixture
def committed_app(app, database_url, models_dir, tmp_path):
    """An app whose transactions really commit, on a database of its own for this test."""
    if is_postgres(database_url):
        yield app
        engine = app.extensions["hotline.db"].kw["bind"]
        with engine.begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {', '.join(MUTABLE_TABLES)} RESTART IDENTITY CASCADE"))
            conn.execute(sa.text("DELETE FROM users WHERE username LIKE 'race_%'"))
            # Versions a test trained or switched to (retraining): the suite's model is
            # active again, and its file stays.
            suite = sa.bindparam("suite", sorted(SUITE_MODELS), expanding=True)
            conn.execute(
                sa.text("DELETE FROM model_activations WHERE version NOT IN :suite").bindparams(
                    suite
                )
            )
            conn.execute(
                sa.text("DELETE FROM model_versions WHERE version NOT IN :suite").bindparams(suite)
            )
            # Photos; the suite's model file stays.
            conn.execute(
                sa.text("DELETE FROM blobs WHERE sha256 NOT IN (SELECT sha256 FROM model_versions)")
            )
        # The emptied settings and reference counters: no process keeps what it read.
        reference.forget()
        settings.clear()
        return
    copy = tmp_path / "copy.sqlite"
    source = sqlite3.connect(database_url.removeprefix("sqlite:///"))
    target = sqlite3.connect(copy)
    source.backup(target)
    source.close()
    target.close()
    fresh = create_app(_config(f"sqlite:///{copy}", models_dir))
    yield fresh
    fresh.extensions["hotline.db"].kw["bind"].dispose()
    reference.forget()
    settings.clear()


@pytest.fixture(scope="session")
def make_app(database_url, models_dir):
    """``make_app(**config)`` → a second app on the suite's database, with ``config`` on top of
    the test configuration (e.g. ``REDIS_URL=None``)."""

    def make(**extra):
        return create_app(_config(database_url, models_dir, **extra))

    return make


def _receive(session, operator, **overrides):
    from dispatch import operations
    from hotline.enums import Channel, RequestType, Urgency
    from hotline.models import Area, Category

    values = {
        "channel": Channel.phone,
        "request_type": RequestType.complaint,
        "urgency": Urgency.normal,
        "title": "小区门口路灯不亮",
        "content": "市民来电反映，小区门口路灯连续一周不亮，晚上出行不便，希望尽快维修。",
        "requester_name": "王先生",
        "requester_phone": "13805360001",
        "address": "奎文区东关街道胜利东街100号",
        "suggestion": None,
    }
    values.update(overrides)
    if isinstance(values.get("category"), str):
        values["category"] = session.scalars(
            sa.select(Category).where(Category.code == values["category"])
        ).one()
    if isinstance(values.get("area"), str):
        values["area"] = session.scalars(sa.select(Area).where(Area.code == values["area"])).one()
    ticket, _ = operations.receive(session, operator, **values)
    session.flush()
    return ticket


@pytest.fixture
def make_ticket(request):
    """``make_ticket(operator, **overrides)`` → a received ticket created through the real
    operation (without a classifier suggestion unless one is given), in the test's ``db``
    session, or in ``session=`` (tests on ``committed_app`` pass their own)."""

    def make(operator, *, session=None, **overrides):
        if session is None:
            session = request.getfixturevalue("db")
        return _receive(session, operator, **overrides)

    return make


@pytest.fixture
def ticket_count(db):
    """``ticket_count()`` → how many tickets the test's session sees."""

    def count():
        return db.scalar(sa.select(sa.func.count()).select_from(Ticket))

    return count


@pytest.fixture
def form_token():
    """``form_token(client, path)`` → the CSRF token of the form on the page at ``path``."""

    def token(client, path):
        page = client.get(path)
        match = FORM_TOKEN.search(page.get_data(as_text=True))
        assert match, "no CSRF token on " + path
        return match.group(1)

    return token


@pytest.fixture
def web_login(form_token):
    """``web_login(client, username, password=…, next_path=None)`` → the response of logging
    in through the login page, as a browser does."""

    def login(client, username, password=PASSWORD, next_path=None):
        token = form_token(client, "/login")
        path = "/login" + (f"?next={next_path}" if next_path else "")
        return client.post(
            path, data={"csrf_token": token, "username": username, "password": password}
        )

    return login


@pytest.fixture
def png():
    """``png(extra=b"")`` → a valid 1×1 PNG (``extra`` bytes after its end make it bigger,
    still a PNG)."""

    def make(extra=b""):
        def chunk(kind, data):
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
        pixels = zlib.compress(b"\x00\xff\x00\x00")
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", pixels)
            + chunk(b"IEND", b"")
            + extra
        )

    return make


class QueryCount:
    """The SQL statements executed while a ``count_queries()`` block ran."""

    def __init__(self):
        self.statements = []

    @property
    def count(self):
        return len(self.statements)

    def __repr__(self):
        return f"<{self.count} statements:\n" + "\n".join(self.statements) + ">"


@pytest.fixture
def count_queries(db):
    """``with count_queries() as counted: …`` → ``counted.count`` is the number of SQL
    statements executed on the test's connection (the one the app's sessions use) inside the
    block; ``counted.statements`` holds them."""
    connection = db.connection()

    @contextlib.contextmanager
    def counting():
        counted = QueryCount()

        def record(conn, cursor, statement, parameters, context, executemany):
            counted.statements.append(statement)

        sa.event.listen(connection, "before_cursor_execute", record)
        try:
            yield counted
        finally:
            sa.event.remove(connection, "before_cursor_execute", record)

    return counting


@pytest.fixture
def varied_tickets(db, user, make_ticket):
    """``varied_tickets(n, state="dispatched", lead=None)`` → ``n`` new tickets, each with a
    category, an area, a requester and (unless ``lead`` names one) a lead unit that no earlier
    call used, so that loading a relation once per row would show in ``count_queries``;
    brought to ``state``: "received", "dispatched", "signed", "return_requested" or
    "extension_requested". With ``lead``, each ticket gets a new assisting unit instead."""
    from dispatch import operations as ops
    from hotline.enums import AreaLevel, ReturnReason, Role, UnitKind
    from hotline.models import Area, Category, Unit

    # Codes, not rows: the rows are looked up again for each ticket, so a test may expunge
    # the session between batches.
    categories = db.scalars(
        sa.select(Category.code)
        .where(Category.level == 3, Category.active, Category.utility.is_(False))
        .order_by(Category.code)
    ).all()
    areas = db.scalars(
        sa.select(Area.code).where(Area.level == AreaLevel.street).order_by(Area.code)
    ).all()
    units = db.scalars(
        sa.select(Unit.code)
        .where(
            Unit.kind.in_([UnitKind.street_office, UnitKind.city_department]),
            Unit.active,
            Unit.always_on.is_(False),
        )
        .order_by(Unit.code)
    ).all()
    made = []

    def unit(code):
        return db.scalars(sa.select(Unit).where(Unit.code == code)).one()

    def handler(unit):
        found = db.scalars(
            sa.select(User)
            .where(User.unit_id == unit.id, User.role == Role.unit_handler, User.active)
            .order_by(User.id)
        ).first()
        if found is None:
            found = User(
                username=f"handler-{unit.code.lower()}",
                name=f"{unit.name}经办人",
                role=Role.unit_handler,
                unit_id=unit.id,
                password_hash="-",
            )
            db.add(found)
            db.flush()
        return found

    def make(n, state="dispatched", lead=None):
        batch = []
        for _ in range(n):
            i = len(made)
            ticket = make_ticket(
                user("operator"),
                category=categories[i % len(categories)],
                area=areas[i % len(areas)],
                title=f"第{i + 1}件工单",
                requester_name=f"市民{i + 1}",
                requester_phone=f"1380536{i:04d}",
            )
            made.append(ticket)
            batch.append(ticket)
            if state == "received":
                continue
            if lead is None:
                lead_unit, assists = unit(units[i % len(units)]), []
            else:
                others = [code for code in units if code != lead]
                lead_unit, assists = unit(lead), [unit(others[i % len(others)])]
            ops.dispatch(db, user("dispatcher"), ticket, lead=lead_unit, assists=assists)
            if state == "dispatched":
                continue
            handling = handler(lead_unit)
            ops.sign(db, handling, ticket)
            if state == "return_requested":
                ops.request_return(
                    db,
                    handling,
                    ticket,
                    return_reason=ReturnReason.not_our_duty,
                    note="非本单位职责",
                )
            elif state == "extension_requested":
                ops.request_extension(db, handling, ticket, days=3, reason="需协调相关单位")
        db.flush()
        return batch

    return make
