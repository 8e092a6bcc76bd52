"""Personal data stays out of logs: a database error never carries its statement's
parameters (requesters' names, phones, addresses, complaint texts), on SQLite and PostgreSQL
(the security probe, issue 12 §9)."""

import logging
import sqlite3

import psycopg
import pytest
import sqlalchemy as sa

from hotline import db as database
from hotline.db import make_engine
from tests.helpers import assert_error

PHONE = "13905361234"
TEXT = "王秀英反映胜利东街100号楼道漏水"


def test_a_failed_statement_hides_its_parameters(database_url):
    engine = make_engine(database_url)
    try:
        with pytest.raises(sa.exc.DBAPIError) as caught, engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO no_such_table (phone, content) VALUES (:phone, :content)"),
                {"phone": PHONE, "content": TEXT},
            )
    finally:
        engine.dispose()
    message = str(caught.value)
    assert PHONE not in message and TEXT not in message
    assert "hidden" in message


def test_an_unexpected_database_error_in_the_api_logs_no_personal_data(
    api, db, monkeypatch, caplog
):
    """An error while receiving a call is logged with its traceback, but without the call."""
    from dispatch import operations

    def broken(session, *args, **kwargs):
        session.execute(
            sa.text("SELECT * FROM no_such_table WHERE phone = :phone AND content = :content"),
            {"phone": kwargs["requester_phone"], "content": kwargs["content"]},
        )

    monkeypatch.setattr(operations, "receive", broken)
    body = {
        "channel": "phone",
        "request_type": "complaint",
        "content": TEXT,
        "requester_phone": PHONE,
    }
    with caplog.at_level(logging.ERROR):
        response = api("operator").post("/tickets", json=body)
    assert_error(response, 500, "INTERNAL_ERROR")
    logged = "\n".join(
        record.getMessage() + (str(record.exc_info[1]) if record.exc_info else "")
        for record in caplog.records
    )
    assert "no_such_table" in logged  # the error is logged …
    assert PHONE not in logged and TEXT not in logged  # … without the requester's data


def test_a_refused_row_never_reaches_the_log(api, db, monkeypatch, caplog):
    """PostgreSQL repeats a refused row in its DETAIL line ("Failing row contains (…)"); the
    log keeps the first line and the SQLSTATE only."""
    from dispatch import operations

    def broken(session, *args, **kwargs):
        session.execute(
            sa.text("INSERT INTO areas (code, name, level) VALUES (:code, :name, NULL)"),
            {"code": "X-LOG", "name": TEXT + PHONE},
        )

    monkeypatch.setattr(operations, "receive", broken)
    body = {"channel": "phone", "request_type": "complaint", "content": "路灯不亮"}
    with caplog.at_level(logging.ERROR):
        response = api("operator").post("/tickets", json=body)
    assert_error(response, 500, "INTERNAL_ERROR")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "IntegrityError" in logged or "NotNullViolation" in logged
    assert PHONE not in logged and TEXT not in logged


@pytest.mark.parametrize(
    ("error", "away"),
    [
        (psycopg.errors.AdminShutdown("terminating connection"), True),
        (psycopg.errors.CannotConnectNow("the database system is starting up"), True),
        (psycopg.errors.TooManyConnections("too many clients"), True),
        (psycopg.errors.DeadlockDetected("deadlock detected"), True),
        (psycopg.OperationalError("connection refused"), True),
        (psycopg.errors.ProgramLimitExceeded("index row size exceeds maximum"), False),
        (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), False),
        (sqlite3.OperationalError("database is locked"), True),
        (sqlite3.OperationalError("unable to open database file"), True),
        (sqlite3.OperationalError("no such table: tickets"), False),
    ],
)
def test_which_errors_mean_the_database_is_away(error, away):
    assert database.unavailable(sa.exc.OperationalError("SELECT 1", {}, error)) is away


def test_a_connection_dropped_before_the_session_closes_never_fails_the_answer(
    make_app, database_url
):
    """The fault suite's database restart: a page had read what it showed when the database
    dropped its connection; closing the session (a rollback) then failed after the answer
    was made, and gunicorn sent its own bare HTML 500 instead. The answer goes out, the dead
    connection is thrown away, and the next request gets a fresh one."""
    app = make_app()
    postgres = database_url.startswith("postgresql")

    @app.get("/_test/dropped")
    def dropped():
        session = database.get_session()
        if postgres:
            pid = session.scalar(sa.text("SELECT pg_backend_pid()"))
            other = make_engine(database_url)
            with other.connect() as conn:
                conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            other.dispose()
        else:
            session.scalar(sa.text("SELECT 1"))
            session.connection().connection.dbapi_connection.close()
        return "shown"

    client = app.test_client()
    answer = client.get("/_test/dropped")
    assert (answer.status_code, answer.text) == (200, "shown")
    assert client.get("/login").status_code == 200
    app.extensions["hotline.db"].kw["bind"].dispose()
