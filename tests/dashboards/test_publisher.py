"""The board publisher (dashboards/publisher.py): updates pushed to the rooms of a changed
ticket through the Socket.IO test client, idle refreshes, and two real server processes and a
publisher sharing updates through Redis."""

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import socketio as socketio_client

from dashboards import socket as board_socket
from tests.helpers import PASSWORD, REDIS_URL

NS = board_socket.NAMESPACE


# -- Socket.IO ------------------------------------------------------------------------------


BODY = {
    "channel": "phone",
    "request_type": "complaint",
    "category": "0101",
    "title": "路灯不亮，联系13805360077",
    "content": "小区路灯不亮。",
    "requester_phone": "13805360009",
    "area": "370705001001001",
}


def test_update_reaches_the_rooms_of_the_ticket(
    board_app, api, app_clients, publisher, connect, received
):
    app = board_app
    city_board = connect(app, app_clients("leader"))
    kuiwen = connect(app, app_clients("kuiwen-leader"))
    weicheng = connect(app, app_clients("dispatcher"), auth={"room": "district:370702"})
    for sio in (city_board, kuiwen, weicheng):
        assert sio.is_connected(NS)
        before = received(sio, "snapshot")[0]
    assert before["room"] == "district:370702"

    response = api("operator").post("/tickets", json=BODY)
    assert response.status_code == 201, response.get_data(as_text=True)
    number = response.get_json()["data"]["number"]
    emitted = publisher.flush()
    assert set(emitted) == {"city", "district:370705"}

    for sio, room in ((city_board, "city"), (kuiwen, "district:370705")):
        update = received(sio, "update")[-1]
        assert update["room"] == room
        assert [i["number"] for i in update["feed"]] == [number]
        assert update["feed"][0]["title"] == "路灯不亮，联系138****0077"
        assert update["today"]["received"] >= 1
    # 潍城区's board hears nothing of a 奎文区 ticket.
    assert received(weicheng, "update", wait=0.5) == []


def test_idle_refresh_sends_no_feed(board_app, app_clients, publisher, city, connect, received):
    sio = connect(board_app, app_clients("admin"))
    received(sio, "snapshot")
    publisher.flush([], rooms={"city"})
    update = received(sio, "update")[-1]
    # As of the real clock (after October 2026) A, F and D are all past their deadline.
    assert update["feed"] == [] and update["today"]["overdue"] == 3


# -- two server processes, one Redis -------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hotline_command():
    return [str(Path(sys.executable).parent / "hotline")]


def wait_until_up(port, process, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/login", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not start")


def web_session(base, username):
    """A requests session logged in through the login page, as a browser is."""
    import re

    http = requests.Session()
    page = http.get(f"{base}/login", timeout=5).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    response = http.post(
        f"{base}/login",
        data={"csrf_token": token, "username": username, "password": PASSWORD},
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 302, response.text
    return http


@pytest.mark.slow
@pytest.mark.skipif(
    not REDIS_URL,
    reason="two-process board test needs Redis: set HOTLINE_REDIS_URL (CI sets it for PostgreSQL)",
)
def test_two_processes_share_updates_through_redis(committed_app, tmp_path):
    channel = f"hotline:test-events:{uuid.uuid4().hex}"
    env = dict(
        os.environ,
        HOTLINE_DATABASE_URL=committed_app.config["DATABASE_URL"],
        HOTLINE_REDIS_URL=REDIS_URL,
        HOTLINE_EVENT_CHANNEL=channel,
        HOTLINE_SECRET_KEY="two-process-" + uuid.uuid4().hex,
        HOTLINE_CLASSIFIER_ENABLED="false",
        HOTLINE_CLASSIFIER_PRELOAD="false",
    )
    ports = [free_port(), free_port()]
    processes = []
    try:
        for port in ports:
            processes.append(
                subprocess.Popen(
                    [*hotline_command(), "serve", "--port", str(port)],
                    env=env,
                    cwd=tmp_path,
                    stdout=subprocess.DEVNULL,
                )
            )
        processes.append(
            subprocess.Popen(
                [*hotline_command(), "board-publisher"],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        for port, process in zip(ports, processes, strict=False):
            wait_until_up(port, process)
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        cookie = "; ".join(
            f"{k}={v}" for k, v in web_session(bases[0], "leader").cookies.get_dict().items()
        )
        heard = []
        clients = []
        for index, base in enumerate(bases):
            sio = socketio_client.Client(reconnection=False)
            sio.on(
                "update",
                lambda data, index=index: heard.append((index, time.monotonic(), data)),
                namespace=NS,
            )
            sio.connect(
                base,
                namespaces=[NS],
                transports=["websocket"],
                headers={"Cookie": cookie},
                auth={"room": "city"},
                wait_timeout=10,
            )
            clients.append(sio)
        time.sleep(0.5)  # the publisher subscribes while the clients connect

        api = requests.Session()
        token = api.post(
            f"{bases[0]}/api/v1/auth/login",
            json={"username": "operator", "password": PASSWORD},
            timeout=5,
        ).json()["data"]["csrf_token"]
        sent = time.monotonic()
        created = api.post(
            f"{bases[0]}/api/v1/tickets",
            json=BODY,
            headers={"X-CSRF-Token": token},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        number = created.json()["data"]["number"]

        deadline = sent + 2.0
        got = {}
        while time.monotonic() < deadline and len(got) < 2:
            for index, at, data in list(heard):
                if any(item["number"] == number for item in data["feed"]):
                    got.setdefault(index, at - sent)
            time.sleep(0.02)
        assert set(got) == {0, 1}, f"updates heard: {got} (of {len(heard)} messages)"
        for sio in clients:
            sio.disconnect()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
