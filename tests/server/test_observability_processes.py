"""Health, metrics and logs of the real processes: gunicorn with two workers in
prometheus_client's multiprocess mode (``server.gunicorn_config``), ``hotline scheduler`` and
``hotline board-publisher`` beating, every line of every process one JSON object."""

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import REDIS_URL, WORKER

ROOT = Path(__file__).resolve().parents[2]
#: This helper's ports (18500–18599), apart per pytest-xdist worker.
PORT_BASE = 18500 + 20 * int((WORKER or "gw0").removeprefix("gw") or 0)
REQUESTS = 120

pytestmark = pytest.mark.slow


def free_port():
    for port in range(PORT_BASE, PORT_BASE + 20):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def wait_until_up(port, process, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def json_lines(path):
    """Every line of ``path`` parsed as JSON (a line that is not fails the test)."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line in {path.name}: {line!r}")
    return parsed


def scrape(base):
    response = requests.get(f"{base}/metrics", timeout=5)
    assert response.status_code == 200, response.text
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def stop(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_gunicorn_scheduler_and_publisher(committed_app, tmp_path):
    config = committed_app.config
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        HOTLINE_DATABASE_URL=config["DATABASE_URL"],
        HOTLINE_SECRET_KEY="obs-" + uuid.uuid4().hex,
        HOTLINE_CLASSIFIER_MODELS_DIR=config["CLASSIFIER_MODELS_DIR"],
        HOTLINE_CLASSIFIER_ENABLED="false",
        HOTLINE_CLASSIFIER_PRELOAD="false",
        HOTLINE_EVENT_CHANNEL=f"hotline:test-obs:{uuid.uuid4().hex}",
        HOTLINE_LOG_FORMAT="json",
        HOTLINE_SCHEDULER_INTERVAL_SECONDS="1",
        HOTLINE_METRICS_CACHE_SECONDS="2",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    if REDIS_URL:
        env["HOTLINE_REDIS_URL"] = REDIS_URL
    else:
        env.pop("HOTLINE_REDIS_URL", None)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    logs = {name: tmp_path / f"{name}.log" for name in ("web", "scheduler", "publisher")}
    cli = [sys.executable, "-c", "from server.cli import main; main()"]
    commands = {
        "web": [
            *(sys.executable, "-m", "gunicorn", "-c", "python:server.gunicorn_config"),
            # sync workers take one connection at a time: concurrent requests reach both.
            *("--workers", "2", "--worker-class", "sync"),
            # Several gunicorns on one host (tests, benches) must not share gunicorn's
            # default control socket.
            *("--no-control-socket", "--bind", f"127.0.0.1:{port}", "server.app:create_app()"),
        ],
        "scheduler": [*cli, "scheduler"],
    }
    if REDIS_URL:
        commands["publisher"] = [*cli, "board-publisher"]
    processes = {}
    try:
        for name, command in commands.items():
            with open(logs[name], "w") as log:
                processes[name] = subprocess.Popen(
                    command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log
                )
        wait_until_up(port, processes["web"])

        # Requests on new connections, several at a time: both workers serve some.
        def fetch(_):
            response = requests.get(f"{base}/login", timeout=10, headers={"Connection": "close"})
            assert response.status_code == 200
            return response.headers["X-Request-Id"]

        ids = set()
        for _ in range(10):  # until both workers have served some (each line names its pid)
            with ThreadPoolExecutor(8) as pool:
                ids |= set(pool.map(fetch, range(REQUESTS)))
            served_by = {
                line["pid"]
                for line in json_lines(logs["web"])
                if line["logger"] == "hotline.access"
            }
            if len(served_by) == 2:
                break
        sent = len(ids)
        assert sent % REQUESTS == 0

        # Whichever worker answers the scrape, it counts every worker's requests.
        for _ in range(4):
            found = scrape(base)
            login = {"endpoint": "web.login", "method": "GET"}
            key = frozenset({**login, "status": "200"}.items())
            assert found[("hotline_http_requests_total", key)] == sent
            bucket = frozenset({**login, "le": "+Inf"}.items())
            assert found[("hotline_http_request_duration_seconds_bucket", bucket)] == sent

        # The background processes beat; /readyz and /metrics read their heartbeats.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready = requests.get(f"{base}/readyz", timeout=5).json()
            if ready["checks"]["scheduler"]["ok"] and (
                not REDIS_URL or ready["checks"]["board_publisher"]["ok"]
            ):
                break
            time.sleep(0.5)
        assert ready["checks"]["database"]["ok"], ready
        assert ready["checks"]["scheduler"]["ok"], ready
        assert ready["checks"]["scheduler"]["stale_after_seconds"] == 6  # its own 1 s
        if REDIS_URL:
            assert ready["status"] == "ready", ready
            assert ready["checks"]["redis"]["ok"]
        # Each worker keeps what it read for METRICS_CACHE_SECONDS (2 s here).
        scheduler_age = ("hotline_heartbeat_age_seconds", frozenset({("process", "scheduler")}))
        deadline = time.monotonic() + 30
        while scheduler_age not in (found := scrape(base)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert 0 <= found[scheduler_age] < 10
        assert ("hotline_scheduler_lag_seconds", frozenset()) in found
    finally:
        for process in processes.values():
            stop(process)
        engine = sa.create_engine(config["DATABASE_URL"])
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM heartbeats"))
        engine.dispose()

    # Every line of every process is one JSON object.
    web = json_lines(logs["web"])
    access = [line for line in web if line["logger"] == "hotline.access"]
    assert {line["request_id"] for line in access} == ids
    assert all(line["path"] == "/login" and line["status"] == 200 for line in access)
    assert len({line["pid"] for line in access}) == 2, "both workers served requests"
    assert any(line["logger"] == "gunicorn.error" for line in web)  # gunicorn's own lines
    scheduler = json_lines(logs["scheduler"])
    assert scheduler and all({"time", "level", "logger", "message"} <= set(x) for x in scheduler)
    if REDIS_URL:
        assert json_lines(logs["publisher"]) is not None
