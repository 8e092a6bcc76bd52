"""The same migrations upgrade and downgrade cleanly on SQLite and PostgreSQL, and match the
models exactly."""

import json
import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from hotline import migrate
from hotline.db import Base
from tests.helpers import POSTGRES_URL

EXPECTED_TABLES = {
    "alembic_version",
    "analysis_reports",
    "api_tokens",
    "areas",
    "assignments",
    "attachments",
    "audit_log",
    "blobs",
    "calendar_days",
    "calendar_years",
    "callback_attempts",
    "categories",
    "citizen_sessions",
    "early_warnings",
    "extensions",
    "heartbeats",
    "hot_issue_tickets",
    "hot_issues",
    "incoming_calls",
    "inspections",
    "joint_meetings",
    "knowledge_articles",
    "meeting_items",
    "model_activations",
    "model_retrains",
    "model_versions",
    "notifications",
    "open311_keys",
    "outbox",
    "ranking_rows",
    "ranking_snapshots",
    "reference_versions",
    "referrals",
    "retention_runs",
    "review_rules",
    "routing_rules",
    "settings",
    "sla_policies",
    "summons_firings",
    "summonses",
    "ticket_events",
    "tickets",
    "timer_firings",
    "unit_areas",
    "units",
    "user_grids",
    "user_sessions",
    "users",
    "verification_codes",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def scratch_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.sqlite'}"
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured: set HOTLINE_TEST_DATABASE_URL")
    name = f"hotline_migrations_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    sa.create_engine(url).dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def _tables(url):
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(scratch_url):
    migrate.upgrade(scratch_url)
    assert _tables(scratch_url) == EXPECTED_TABLES
    migrate.downgrade(scratch_url, "0001")
    migrate.downgrade(scratch_url, "base")
    assert _tables(scratch_url) <= {"alembic_version"}
    migrate.upgrade(scratch_url)
    assert _tables(scratch_url) == EXPECTED_TABLES


def test_models_match_migrations(scratch_url):
    migrate.upgrade(scratch_url)
    engine = sa.create_engine(scratch_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == []


def test_events_are_append_only(scratch_url):
    migrate.upgrade(scratch_url)
    engine = sa.create_engine(scratch_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO units (code, name, kind, always_on, active) "
                "VALUES ('U-X', 'x', 'utility', false, true)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO users (username, name, password_hash, role, active, created_at) "
                "VALUES ('u', 'u', 'x', 'operator', true, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO tickets (channel, request_type, urgency, title, content, status, "
                "received_at, reopen_count, scoring_exempt, created_by_id, version, updated_at) "
                "VALUES ('phone', 'help', 'normal', 't', 'c', 'received', CURRENT_TIMESTAMP, 0, "
                "false, 1, 1, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO ticket_events (ticket_id, action, to_status, payload, created_at) "
                "VALUES (1, 'receive', 'received', '{}', CURRENT_TIMESTAMP)"
            )
        )
    for statement in (
        "UPDATE ticket_events SET action = 'forged'",
        "DELETE FROM ticket_events",
    ):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(sa.text(statement))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT action FROM ticket_events")).scalars().all() == [
            "receive"
        ]
    engine.dispose()


def test_0006_fills_the_new_ticket_columns(scratch_url):
    """Upgrading a database with tickets: the ones that changed hands are flagged, finished
    ones join the callback queue, exempt ones get their reviewer and time."""
    migrate.upgrade(scratch_url, "0005")
    engine = sa.create_engine(scratch_url)
    ticket = (
        "INSERT INTO tickets (id, channel, request_type, urgency, title, content, status, "
        "received_at, finished_at, reopen_count, scoring_exempt, created_by_id, version, "
        "updated_at) VALUES ({id}, 'phone', 'help', 'normal', 't', 'c', '{status}', "
        "'2026-10-12 01:00:00', {finished}, 0, {exempt}, 1, 1, '2026-10-12 01:00:00')"
    )
    assignment = (
        "INSERT INTO assignments (ticket_id, unit_id, role, active, designated, dispatched_at, "
        "dispatched_by_id, return_requested_at) VALUES ({ticket}, {unit}, 'lead', false, "
        "false, '2026-10-12 01:00:00', 1, {returned})"
    )
    with engine.begin() as conn:
        for code in ("U-A", "U-B"):
            conn.execute(
                sa.text(
                    "INSERT INTO units (code, name, kind, always_on, active) "
                    f"VALUES ('{code}', '{code}', 'street_office', false, true)"
                )
            )
        conn.execute(
            sa.text(
                "INSERT INTO users (username, name, password_hash, role, active, created_at) "
                "VALUES ('s', 's', 'x', 'supervisor', true, CURRENT_TIMESTAMP)"
            )
        )
        rows = [
            # 1: led by A, then B; 2: A asked to return it; 3: only A, finished; 4: exempt.
            ticket.format(id=1, status="signed", finished="NULL", exempt="false"),
            assignment.format(ticket=1, unit=1, returned="NULL"),
            assignment.format(ticket=1, unit=2, returned="NULL"),
            ticket.format(id=2, status="return_requested", finished="NULL", exempt="false"),
            assignment.format(ticket=2, unit=1, returned="'2026-10-12 02:00:00'"),
            ticket.format(
                id=3, status="finished", finished="'2026-10-13 01:00:00'", exempt="false"
            ),
            assignment.format(ticket=3, unit=1, returned="NULL"),
            assignment.format(ticket=3, unit=1, returned="NULL"),
            ticket.format(id=4, status="closed", finished="NULL", exempt="true"),
            "INSERT INTO ticket_events (ticket_id, action, actor_id, to_status, payload, "
            "created_at) VALUES (4, 'exempt', 1, 'closed', '{}', '2026-10-20 02:00:00')",
        ]
        for statement in rows:
            conn.execute(sa.text(statement))
    migrate.upgrade(scratch_url)
    with engine.connect() as conn:
        got = conn.execute(
            sa.text(
                "SELECT id, lead_history, callback_next_at IS NOT NULL, exempted_by_id, "
                "exempted_at IS NOT NULL FROM tickets ORDER BY id"
            )
        ).all()
    engine.dispose()
    assert [tuple(bool(v) if i in (1, 2, 4) else v for i, v in enumerate(row)) for row in got] == [
        (1, True, False, None, False),
        (2, True, False, None, False),
        (3, False, True, None, False),
        (4, False, False, 1, True),
    ]


def test_0007_gives_waiting_tickets_their_dispatch_confidence(scratch_url):
    """Tickets waiting for dispatch get the weakest of their suggestion's confidences; others
    and tickets without a suggestion stay empty."""
    migrate.upgrade(scratch_url, "0006")
    engine = sa.create_engine(scratch_url)
    suggestion = {
        "category": {"top": [{"code": "0106", "probability": 0.82}], "abstain": False},
        "area": {"code": "370705001", "confidence": 0.9},
        "units": [{"code": "U-S-370705001", "confidence": 0.64}],
    }
    abstained = {**suggestion, "category": {"top": [], "abstain": True}}
    ticket = (
        "INSERT INTO tickets (id, channel, request_type, urgency, title, content, status, "
        "received_at, reopen_count, scoring_exempt, created_by_id, version, updated_at, "
        "suggestion) VALUES ({id}, 'phone', 'help', 'normal', 't', 'c', '{status}', "
        "'2026-10-12 01:00:00', 0, false, 1, 1, '2026-10-12 01:00:00', {suggestion})"
    )
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO users (username, name, password_hash, role, active, created_at) "
                "VALUES ('o', 'o', 'x', 'operator', true, CURRENT_TIMESTAMP)"
            )
        )
        for id_, status, value in [
            (1, "received", suggestion),
            (2, "received", abstained),
            (3, "dispatched", suggestion),
            (4, "received", None),
        ]:
            literal = "NULL" if value is None else "'" + json.dumps(value) + "'"
            conn.execute(sa.text(ticket.format(id=id_, status=status, suggestion=literal)))
    migrate.upgrade(scratch_url)
    with engine.connect() as conn:
        got = conn.execute(sa.text("SELECT id, dispatch_confidence FROM tickets ORDER BY id")).all()
    engine.dispose()
    assert got == [(1, 0.64), (2, 0.0), (3, None), (4, None)]
