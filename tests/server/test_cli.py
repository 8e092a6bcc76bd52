"""The ``hotline`` command (server/cli.py): migrations, seed and users."""

import logging
import threading

import pytest
import requests
import sqlalchemy as sa
from click.testing import CliRunner
from werkzeug.serving import make_server

from hotline.models import AuditLog, User
from server.cli import RequestLog, main


@pytest.fixture
def fresh_sqlite(tmp_path):
    return f"sqlite:///{tmp_path / 'cli.sqlite'}"


def invoke(url, *args, input=None):
    runner = CliRunner()
    result = runner.invoke(
        main,
        list(args),
        env={"HOTLINE_DATABASE_URL": url, "HOTLINE_SECRET_KEY": "cli-test"},
        input=input,
        catch_exceptions=False,
    )
    return result


def test_upgrade_seed_and_create_user(fresh_sqlite):
    assert invoke(fresh_sqlite, "db", "upgrade").exit_code == 0

    first = invoke(fresh_sqlite, "seed")
    assert first.exit_code == 0, first.output
    assert "areas: " in first.output and "areas: 0 new" not in first.output
    again = invoke(fresh_sqlite, "seed")
    assert again.exit_code == 0
    assert all(line.endswith(": 0 new") for line in again.output.strip().splitlines())

    created = invoke(
        fresh_sqlite,
        "create-user",
        "zhangsan",
        "--role",
        "unit_handler",
        "--name",
        "张三",
        "--unit",
        "U-CGJ",
        "--password",
        "a-long-password-1",
    )
    assert created.exit_code == 0, created.output
    engine = sa.create_engine(fresh_sqlite)
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(User.password_hash, User.role).where(User.username == "zhangsan")
        ).one()
        assert row.password_hash != "a-long-password-1"
        assert row.password_hash.startswith(("scrypt:", "pbkdf2:"))
        actions = conn.execute(sa.select(AuditLog.action, AuditLog.target)).all()
        assert ("user.create", "zhangsan") in actions
    engine.dispose()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["operator", "--role", "operator", "--name", "重名"], "用户名已存在"),
        (["h1", "--role", "unit_handler", "--name", "甲"], "承办人须绑定一个承办单位"),
        (["g1", "--role", "grid_worker", "--name", "乙"], "网格员须绑定至少一个网格"),
        (["h2", "--role", "unit_handler", "--name", "丙", "--unit", "U-NOPE"], "单位不存在"),
    ],
)
def test_create_user_refusals(fresh_sqlite, args, message):
    invoke(fresh_sqlite, "db", "upgrade")
    invoke(fresh_sqlite, "seed")
    result = invoke(fresh_sqlite, "create-user", *args, "--password", "a-long-password-1")
    assert result.exit_code != 0
    assert message in result.output


# -- the access log of hotline serve -------------------------------------------------------
# ``hotline serve``'s access log names the path, never the query string: a list's filters
# may carry a requester's phone number (issue 12 §9: personal data out of every log line).


PHONE = "13905361234"


def test_the_access_log_leaves_out_query_strings(app, caplog):
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=RequestLog)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            url = f"http://127.0.0.1:{server.server_port}/api/v1/tickets?phone={PHONE}"
            assert requests.get(url, timeout=10).status_code == 401
    finally:
        server.shutdown()
        thread.join(5)
    lines = [record.getMessage() for record in caplog.records if record.name == "werkzeug"]
    assert any("GET /api/v1/tickets HTTP/1.1" in line and " 401 " in line for line in lines)
    assert not any(PHONE in line for line in lines)
