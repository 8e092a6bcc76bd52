"""Rate limits on public calls (hotline.limits): counted per address, answered in Chinese with
the wait, shared through Redis when there is one."""

import uuid

import pytest
from flask import jsonify

from hotline import limits


def _app(make_app, **config):
    config = {
        "LIMITS_ENABLED": True,
        "RATELIMIT_KEY_PREFIX": f"hotline-limits:test:{uuid.uuid4().hex}",
        "LIMIT_CITIZEN_LOOKUP": "3 per minute",
        **config,
    }
    app = make_app(**config)

    @limits.limited("LIMIT_CITIZEN_LOOKUP")
    def probe():
        return jsonify(ok=True)

    app.add_url_rule("/api/v1/probe", "probe", probe)
    app.add_url_rule("/probe-page", "probe_page", probe)
    return app


def test_a_limit_refuses_with_the_wait_in_chinese(make_app):
    client = _app(make_app).test_client()
    for _ in range(3):
        assert client.get("/api/v1/probe").status_code == 200
    refused = client.get("/api/v1/probe")
    assert refused.status_code == 429
    error = refused.get_json()["error"]
    assert error["code"] == "RATE_LIMITED"
    assert error["message"].startswith("操作过于频繁，请 ")
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    # Another address has its own count.
    other = client.get("/api/v1/probe", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert other.status_code == 200


def test_a_page_is_refused_with_a_page(make_app):
    client = _app(make_app).test_client()
    for _ in range(3):
        client.get("/probe-page")
    refused = client.get("/probe-page")
    assert refused.status_code == 429
    assert "操作过于频繁" in refused.get_data(as_text=True)
    assert refused.headers["Retry-After"]


def test_processes_share_the_count_through_redis(make_app):
    from tests.conftest import REDIS_URL

    if not REDIS_URL:
        pytest.skip("Redis not configured: set HOTLINE_REDIS_URL")
    prefix = f"hotline-limits:test:{uuid.uuid4().hex}"
    first = _app(make_app, RATELIMIT_KEY_PREFIX=prefix).test_client()
    second = _app(make_app, RATELIMIT_KEY_PREFIX=prefix).test_client()
    for _ in range(2):
        assert first.get("/api/v1/probe").status_code == 200
    assert second.get("/api/v1/probe").status_code == 200
    assert second.get("/api/v1/probe").status_code == 429


def test_limits_off_refuse_nothing(make_app):
    client = _app(make_app, LIMITS_ENABLED=False).test_client()
    assert all(client.get("/api/v1/probe").status_code == 200 for _ in range(5))


def test_redis_away_counts_in_memory_and_refuses_no_one_wrongly(make_app):
    client = _app(make_app, REDIS_URL="redis://127.0.0.1:1/0").test_client()
    for _ in range(3):
        assert client.get("/api/v1/probe").status_code == 200
    assert client.get("/api/v1/probe").status_code == 429
