"""Live boards (dashboards/snapshots.py, socket.py, publisher.py): the numbers against
hand-computed values, who may watch which room, masking, pushes through the Socket.IO test
client, and two real server processes sharing updates through Redis."""

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
import sqlalchemy as sa

from dashboards import publisher as board_publisher
from dashboards import snapshots
from dashboards import socket as board_socket
from dispatch import operations as ops
from hotline.enums import Channel, RequestType
from hotline.models import Unit
from server.app import create_app
from tests.conftest import PASSWORD, REDIS_URL, _config, make_ticket
from tests.conftest import web_login as login
from tests.dashboards.conftest import local

ROOT = Path(__file__).resolve().parents[2]
NS = board_socket.NAMESPACE
#: Wednesday 14 October 2026, 15:00 local: "now" of the hand-computed board.
NOW = local(10, 14, 15)
LIGHT = "010103"
PHONE_TITLE = "电话13805361234，身份证370705199001011234，<script>alert(1)</script>"


def unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


@pytest.fixture
def city(db, user):
    """Six tickets around NOW (the plan is in the comments; numbers in the tests)."""
    operator, dispatcher, dongguan = user("operator"), user("dispatcher"), user("dongguan")
    street = unit(db, "U-S-370705001")
    t = {}
    # A: today, 奎文区 东关街道, phone complaint; dispatched and signed today, not contacted
    # yet (contact due tomorrow: response pending).
    t["A"] = make_ticket(db, operator, area="370705001", category=LIGHT, now=local(10, 14, 9))
    ops.dispatch(db, dispatcher, t["A"], lead=street, now=local(10, 14, 9, 10))
    ops.sign(db, dongguan, t["A"], now=local(10, 14, 9, 20))
    # B: today, 潍城区 城关街道, web consultation, not dispatched.
    t["B"] = make_ticket(
        db,
        operator,
        area="370702001",
        channel=Channel.web,
        request_type=RequestType.consult,
        title="咨询公积金提取",
        now=local(10, 14, 10),
    )
    # C: today, no area (city board only), WeChat help; personal data in the title.
    t["C"] = make_ticket(
        db,
        operator,
        channel=Channel.wechat,
        request_type=RequestType.help,
        title=PHONE_TITLE,
        now=local(10, 14, 11),
    )
    # E: yesterday 16:00, 东关街道 (the trend's yesterday line).
    t["E"] = make_ticket(db, operator, area="370705001", now=local(10, 13, 16))
    # F: Monday, 东关街道: dispatched, signed and contacted in time (responded).
    t["F"] = make_ticket(db, operator, area="370705001", category=LIGHT, now=local(10, 12, 9))
    ops.dispatch(db, dispatcher, t["F"], lead=street, now=local(10, 12, 9, 5))
    ops.sign(db, dongguan, t["F"], now=local(10, 12, 9, 20))
    ops.contact(db, dongguan, t["F"], note="已电话联系", now=local(10, 12, 10))
    # D: September, 东关街道, signed but never finished: overdue since 28 September.
    t["D"] = make_ticket(db, operator, area="370705001", category=LIGHT, now=local(9, 21, 9))
    ops.dispatch(db, dispatcher, t["D"], lead=street, now=local(9, 21, 9, 5))
    ops.sign(db, dongguan, t["D"], now=local(9, 21, 9, 30))
    db.flush()
    return t


def board(app, db, *rooms, now=NOW):
    month = snapshots.month_rates(db, app.config, force=True, now=now)
    return snapshots.Board(db, app.config, now=now).snapshots(list(rooms), month=month)


def counts(items):
    return {item["code"]: item["count"] for item in items if item["count"]}


def test_city_board_numbers(app, db, city):
    snap = board(app, db, "city")["city"]
    today = snap["today"]
    assert (today["received"], today["dispatched"], today["signed"], today["overdue"]) == (
        3,
        1,
        1,
        1,
    )
    assert counts(today["by_channel"]) == {"phone": 1, "web": 1, "wechat": 1}
    assert counts(today["by_type"]) == {"complaint": 1, "consult": 1, "help": 1}
    # Feed: newest first, every ticket (E, F, D are older than today but still the newest).
    numbers = [item["number"] for item in snap["feed"]]
    assert numbers == [city[k].number for k in "CBAEFD"]
    assert [item["number"] for item in snap["overdue"]] == [city["D"].number]
    assert snap["overdue"][0]["unit"] == "东关街道办事处"
    trend = snap["trend"]
    assert trend["today"][9:12] == [1, 1, 1] and sum(trend["today"][:16]) == 3
    assert trend["today"][16:] == [None] * 8  # hours still to come
    assert trend["yesterday"][16] == 1 and sum(trend["yesterday"]) == 1
    # Month (October): A pending, F responded → 1/1; nothing rated yet.
    month = snap["rates"]["month"]
    assert [(r["code"], r["dispatched"]) for r in month["rows"]] == [("370705", 2)]
    assert month["rows"][0]["name"] == "奎文区"
    assert month["rows"][0]["response_rate"] == 1.0
    assert month["rows"][0]["resolution_rate"] is None
    assert month["total"]["dispatched"] == 2 and month["total"]["name"] == "全市"
    # Today: only A, still pending → no response rate yet.
    assert [
        (r["code"], r["dispatched"], r["response_rate"]) for r in snap["rates"]["today"]["rows"]
    ] == [("370705", 1, None)]


def test_district_boards_hold_only_their_district(app, db, city):
    snaps = board(app, db, "district:370705", "district:370702")
    kuiwen, weicheng = snaps["district:370705"], snaps["district:370702"]
    assert kuiwen["title"] == "奎文区" and weicheng["title"] == "潍城区"
    k = kuiwen["today"]
    assert (k["received"], k["dispatched"], k["signed"], k["overdue"]) == (1, 1, 1, 1)
    assert [i["number"] for i in kuiwen["feed"]] == [city[x].number for x in "AEFD"]
    assert [i["number"] for i in kuiwen["overdue"]] == [city["D"].number]
    # District rates are per street.
    assert [(r["code"], r["dispatched"]) for r in kuiwen["rates"]["month"]["rows"]] == [
        ("370705001", 2)
    ]
    assert kuiwen["rates"]["month"]["total"]["name"] == "奎文区"
    w = weicheng["today"]
    assert (w["received"], w["dispatched"], w["signed"], w["overdue"]) == (1, 0, 0, 0)
    assert counts(w["by_channel"]) == {"web": 1}
    assert [i["number"] for i in weicheng["feed"]] == [city["B"].number]
    assert weicheng["overdue"] == [] and weicheng["rates"]["month"]["rows"] == []
    assert weicheng["trend"]["today"][10] == 1 and sum(weicheng["trend"]["yesterday"]) == 0


def test_feed_masks_personal_data(app, db, city):
    item = next(
        i for i in board(app, db, "city")["city"]["feed"] if i["number"] == city["C"].number
    )
    assert "13805361234" not in item["title"] and "138****1234" in item["title"]
    assert "370705199001011234" not in item["title"] and "37**************34" in item["title"]
    # Escaping is the page's job (textContent): the payload keeps the text as typed.
    assert "<script>alert(1)</script>" in item["title"]
    assert item["place"] == "未定位" and item["channel"] == "微信" and item["type"] == "求助"


def test_mask_text():
    assert (
        snapshots.mask_text("回电 13912345678 或 0536-8881234")
        == "回电 139****5678 或 0536-88***34"
    )
    assert snapshots.mask_text("卡号6222020200112233445") == "卡号62***************45"
    assert snapshots.mask_text("身份证37070519900101123X") == "身份证37**************3X"
    assert snapshots.mask_text("3号楼202室") == "3号楼202室"  # short numbers stay


# -- Socket.IO ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def _queueless_app(app, database_url, models_dir):
    """Flask-SocketIO's test client refuses a message queue: with Redis configured these
    tests run Socket.IO on a second app without one (the Redis path is the two-process
    test's)."""
    if not app.config["REDIS_URL"]:
        return app
    return create_app(_config(database_url, models_dir, REDIS_URL=None))


@pytest.fixture
def board_app(_queueless_app, app, db):
    """The app the Socket.IO tests talk to, on the test's rolled-back connection."""
    original = _queueless_app.extensions["hotline.db"]
    _queueless_app.extensions["hotline.db"] = app.extensions["hotline.db"]
    yield _queueless_app
    _queueless_app.extensions["hotline.db"] = original


def connect(app, client, **kwargs):
    return app.extensions["socketio"].test_client(
        app, namespace=NS, flask_test_client=client, **kwargs
    )


def received(sio, name, *, wait=3.0):
    """Packets named ``name`` (with Redis as message queue they arrive from another thread)."""
    deadline = time.monotonic() + wait
    got = []
    while True:
        got += [p["args"][0] for p in sio.get_received(NS) if p["name"] == name]
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_unauthenticated_socket_is_refused(board_app):
    sio = connect(board_app, board_app.test_client())
    assert not sio.is_connected(NS)


def test_role_without_board_is_refused(board_app, app_clients):
    assert not connect(board_app, app_clients("operator")).is_connected(NS)


def test_district_leader_only_their_district(board_app, app_clients):
    app = board_app
    leader = app_clients("kuiwen-leader")
    assert not connect(app, leader, auth={"room": "city"}).is_connected(NS)
    assert not connect(app, leader, auth={"room": "district:370702"}).is_connected(NS)
    assert not connect(app, leader, auth={"room": "district:x"}).is_connected(NS)
    own = connect(app, leader)  # no room asked: their district
    assert own.is_connected(NS)
    assert received(own, "snapshot")[0]["room"] == "district:370705"
    refused = own.emit("join", {"room": "city"}, namespace=NS, callback=True)
    assert refused == {"ok": False, "error": "无权查看该看板"}


@pytest.fixture
def app_clients(board_app):
    """``app_clients("leader")`` → a test client of ``board_app`` logged in as that user."""

    def make(username):
        client = board_app.test_client()
        assert login(client, username).status_code == 302
        return client

    return make


@pytest.fixture
def publisher(app, board_app):
    """A board publisher fed by the app's in-process events; tests flush it by hand."""
    pub = board_publisher.BoardPublisher(board_app)
    listeners = app.extensions["hotline.events"].listeners
    listeners.append(pub.feed)
    yield pub
    listeners.remove(pub.feed)


BODY = {
    "channel": "phone",
    "request_type": "complaint",
    "category": "0101",
    "title": "路灯不亮，联系13805360077",
    "content": "小区路灯不亮。",
    "requester_phone": "13805360009",
    "area": "370705001001001",
}


def test_update_reaches_the_rooms_of_the_ticket(board_app, api, app_clients, publisher):
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


def test_idle_refresh_sends_no_feed(board_app, app_clients, publisher, city):
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
