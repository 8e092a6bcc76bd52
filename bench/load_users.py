"""The locust users of ``bench/load.py``: a 12345 centre's staff and the public at work.

Run by ``bench/load.py`` as ``locust -f bench/load_users.py --headless …`` with
``HOTLINE_LOAD_CONFIG`` naming a JSON file (the accounts, ports, the SMS gateway's port, the
request log to write). Every request is timed by locust; a listener on ``events.request``
writes each one (when, operation, milliseconds, error) to the request log for
``bench/load.py``'s figures.

Who works and how (counts are the full size's; think times are drawn uniformly):

- 话务员 operators: a call every 10–20 s; while it is typed the console asks
  ``POST /api/v1/suggest`` twice (the first sentence, then the whole text, 1–2 s apart), then
  ``POST /api/v1/tickets`` with the signed suggestion and an ``Idempotency-Key``.
- 派单员 dispatchers: every 1–3 s read the 派单台 page or the queue
  (``GET /api/v1/tickets?status=received``), open the oldest unclaimed ticket, ask the catalogue's
  unit (``GET /api/v1/routing/suggest``) and ``POST …/dispatch`` to it.
- 承办人 unit handlers (ticket pages, as in the browser): 待办 page, ticket page, 签收 form,
  联系 form, 办结 form with a photo (multipart; only the page form takes photos), 1–3 s between
  steps. Each ticket is handled by its lead unit's own account (one per unit).
- 回访员 callback agents: every 4–8 s the queue (``GET /api/v1/callbacks?due=1``) and one call
  (2–4 s) recorded (``POST …/callback``: 80 % satisfied, 10 % partly, 10 % no answer; a
  ticket without a phone is archived, ``POST …/close``), now and then the 回访台 page.
- 大屏 board viewers: the board page and map (``hotline serve``, the Socket.IO process), a
  Socket.IO connection that waits for the snapshot and watches updates for 60–120 s, again.
- 市民 citizens: prove their phone once (code by SMS → citizen session), then every 10–30 s
  their list (``GET /citizen/api/v1/requests``) and one request's timeline.
"""

import collections
import http.server
import io
import itertools
import json
import os
import random
import re
import threading
import time
import uuid

import gevent
from locust import HttpUser, between, events, task

CONFIG = json.loads(open(os.environ["HOTLINE_LOAD_CONFIG"], encoding="utf-8").read())
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
VERSION = re.compile(r'name="version"[^>]*value="(\d+)"')
CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")

#: Handoffs between the roles (what the inbox message, the queue's lock or the board says in a
#: real centre): tickets dispatched and not yet taken by a handler; tickets someone is on.
DISPATCHED = collections.deque()
CLAIMED = set()
#: One logged-in page session per unit (its handler's account), shared by the handler users.
UNIT_COOKIES = {}
UNIT_LOCKS = collections.defaultdict(gevent.lock.Semaphore)

RESULTS = [
    "已派工作人员到现场核查，更换了损坏的设施，经测试已恢复正常，并电话告知市民处理结果。",
    "经现场查看，问题属实，已责令责任单位当日整改完毕，后续将加强日常巡查，已向市民反馈。",
    "已联系相关物业和社区现场协调，问题已解决，市民对处理结果表示认可。",
    "工作人员已到场清理完毕并设置警示标识，已安排专人每日巡查，防止再次发生。",
]


# -- the request log ------------------------------------------------------------------------

_log = open(CONFIG["request_log"], "w", encoding="utf-8")  # noqa: SIM115 (closed at quit)


@events.request.add_listener
def _record(request_type, name, response_time, response_length, exception=None, **kwargs):
    error = None if exception is None else str(exception)[:200]
    _log.write(json.dumps([time.time(), name, round(response_time, 2), error]) + "\n")


@events.quitting.add_listener
def _close(environment, **kwargs):
    _log.flush()
    _log.close()


# -- the SMS gateway (citizens' codes arrive here through the real outbox and HTTP sender) ---


class Gateway(http.server.ThreadingHTTPServer):
    daemon_threads = True
    codes = {}


class GatewayHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        match = CODE.search(body.get("content", ""))
        if match:
            for phone in body.get("mobiles", []):
                Gateway.codes[phone] = match.group(1)
        answer = b'{"code": 0}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


_gateway = Gateway(("127.0.0.1", CONFIG["gateway_port"]), GatewayHandler)
threading.Thread(target=_gateway.serve_forever, daemon=True).start()


# -- helpers --------------------------------------------------------------------------------


def expect(response, *statuses):
    """Mark a ``catch_response`` response failed unless its status is one of ``statuses``."""
    if response.status_code in statuses:
        response.success()
        return True
    response.failure(f"{response.status_code} {response.text[:160]!r}")
    return False


def photo(size):
    """A valid PNG of ``size`` bytes (a phone photo's weight; the store checks the type)."""
    import struct
    import zlib

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    image = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )
    return image + os.urandom(max(0, size - len(image)))


PHOTO = photo(CONFIG["photo_bytes"])


class Staff(HttpUser):
    abstract = True
    host = CONFIG["base_url"]

    def api(self, method, path, name, body=None, ok=(200,), **kwargs):
        headers = {"Authorization": f"Bearer {self.token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        headers.update(kwargs.pop("headers", {}))
        with self.client.request(
            method,
            path,
            name=name,
            data=None if body is None else json.dumps(body, ensure_ascii=False).encode(),
            headers=headers,
            catch_response=True,
            **kwargs,
        ) as response:
            if expect(response, *ok):
                return response.json()["data"]
        return None

    def page(self, path, name):
        with self.client.get(path, name=name, catch_response=True) as response:
            if expect(response, 200):
                return response.text
        return None

    def web_login(self, client, username):
        page = client.get("/login", name="GET /login").text
        response = client.post(
            "/login",
            name="POST /login",
            data={
                "csrf_token": CSRF.search(page).group(1),
                "username": username,
                "password": CONFIG["password"],
            },
            allow_redirects=False,
        )
        if response.status_code != 302:
            raise RuntimeError(f"login of {username}: {response.status_code}")


# -- the roles -----------------------------------------------------------------------------


class Operator(Staff):
    fixed_count = CONFIG["users"]["operator"]
    wait_time = between(10, 20)

    def on_start(self):
        self.token = CONFIG["tokens"]["operator"].pop()
        seat = len(CONFIG["tokens"]["operator"])
        self.calls = itertools.cycle(CONFIG["calls"][seat :: CONFIG["users"]["operator"]])
        self.web_login(self.client, CONFIG["operator_names"].pop())
        self.page("/console", "GET /console (受理台)")

    @task
    def receive(self):
        call = next(self.calls)
        first = call["content"].split("，")[0]
        self.api("POST", "/api/v1/suggest", "POST /api/v1/suggest", {"content": first})
        gevent.sleep(random.uniform(1, 2))
        suggestion = self.api(
            "POST",
            "/api/v1/suggest",
            "POST /api/v1/suggest",
            {"content": call["content"], "address": call.get("address")},
        )
        gevent.sleep(random.uniform(1, 2))
        body = dict(call)
        if suggestion is not None:
            body["suggestion"] = suggestion
        self.api(
            "POST",
            "/api/v1/tickets",
            "POST /api/v1/tickets (受理)",
            body,
            ok=(201,),
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )


class Dispatcher(Staff):
    fixed_count = CONFIG["users"]["dispatcher"]
    wait_time = between(1, 3)

    def on_start(self):
        self.token = CONFIG["tokens"]["dispatcher"].pop()
        self.web_login(self.client, CONFIG["dispatcher_names"].pop())

    @task(1)
    def queue_page(self):
        self.page("/dispatch", "GET /dispatch (派单台)")

    @task(4)
    def dispatch_one(self):
        queue = self.api(
            "GET",
            "/api/v1/tickets?status=received&per_page=20",
            "GET /api/v1/tickets?status=received",
        )
        if not queue:
            return
        items = [t for t in reversed(queue["items"]) if t["number"] not in CLAIMED]
        if not items:
            return
        number = items[0]["number"]
        CLAIMED.add(number)
        try:
            ticket = self.api("GET", f"/api/v1/tickets/{number}", "GET /api/v1/tickets/<number>")
            if ticket is None or ticket["status"]["value"] != "received":
                return
            category = (ticket.get("category") or {}).get("code")
            area = (ticket.get("area") or {}).get("code")
            if not category:
                return
            gevent.sleep(random.uniform(0.5, 1.5))
            route = self.api(
                "GET",
                f"/api/v1/routing/suggest?category={category}&area={area or ''}",
                "GET /api/v1/routing/suggest",
            )
            unit = ((route or {}).get("unit") or {}).get("code")
            if unit is None or unit not in CONFIG["handler_units"]:
                unit = CONFIG["fallback_unit"]
            done = self.api(
                "POST",
                f"/api/v1/tickets/{number}/dispatch",
                "POST /api/v1/tickets/<number>/dispatch",
                {"lead_unit": unit, "category": category, "version": ticket["version"]},
            )
            if done is not None:
                DISPATCHED.append((number, unit))
        finally:
            CLAIMED.discard(number)


class Handler(Staff):
    fixed_count = CONFIG["users"]["handler"]
    wait_time = between(1, 3)
    token = None

    def session_for(self, unit):
        """The unit's logged-in cookies (one login per unit, shared)."""
        with UNIT_LOCKS[unit]:
            if unit not in UNIT_COOKIES:
                self.client.cookies.clear()
                self.web_login(self.client, CONFIG["handler_units"][unit])
                UNIT_COOKIES[unit] = self.client.cookies.copy()
        self.client.cookies = UNIT_COOKIES[unit].copy()

    def form(self, number, slug, name, data, files=None):
        page = self.page(f"/tickets/{number}", "GET /tickets/<number> (工单页)")
        if page is None:
            return False
        fields = {
            "csrf_token": CSRF.search(page).group(1),
            "version": VERSION.search(page).group(1),
        }
        fields.update(data)
        gevent.sleep(random.uniform(1, 3))
        with self.client.post(
            f"/tickets/{number}/{slug}",
            name=name,
            data=fields,
            files=files,
            allow_redirects=False,
            catch_response=True,
        ) as response:
            return expect(response, 302)

    @task
    def handle(self):
        if not DISPATCHED:
            return
        number, unit = DISPATCHED.popleft()
        self.session_for(unit)
        self.page("/inbox", "GET /inbox (待办工单)")
        if not self.form(number, "sign", "POST /tickets/<number>/sign (签收)", {}):
            return
        note = "已电话联系市民，说明将安排人员到现场查看处理。"
        if not self.form(
            number, "contact", "POST /tickets/<number>/contact (联系)", {"note": note}
        ):
            return
        self.form(
            number,
            "finish",
            "POST /tickets/<number>/finish (办结, photo)",
            {"result": random.choice(RESULTS)},
            files={"photos": ("现场.png", io.BytesIO(PHOTO), "image/png")},
        )


class CallbackAgent(Staff):
    fixed_count = CONFIG["users"]["callback"]
    wait_time = between(4, 8)

    def on_start(self):
        self.token = CONFIG["tokens"]["callback"].pop()
        self.web_login(self.client, CONFIG["callback_names"].pop())

    @task(1)
    def desk(self):
        self.page("/callbacks", "GET /callbacks (回访台)")

    @task(5)
    def call_back(self):
        queue = self.api("GET", "/api/v1/callbacks?due=1", "GET /api/v1/callbacks?due=1")
        if not queue:
            return
        items = [t for t in queue["items"] if t["number"] not in CLAIMED]
        if not items:
            return
        item = items[0]
        number = item["number"]
        CLAIMED.add(number)
        try:
            if not item.get("requester_phone"):  # nobody to call: archived by hand
                self.api(
                    "POST",
                    f"/api/v1/tickets/{number}/close",
                    "POST /api/v1/tickets/<number>/close (no phone)",
                    {"reason": "诉求人未留电话，无法回访，直接归档。"},
                )
                return
            gevent.sleep(random.uniform(2, 4))  # the call itself
            roll = random.random()
            if roll < 0.8:
                body = {"outcome": "answered", "solved": "solved", "satisfaction": "satisfied"}
            elif roll < 0.9:
                body = {"outcome": "answered", "solved": "partly", "satisfaction": "basically"}
            else:
                body = {"outcome": "no_answer"}
            body["comment"] = "回访记录：市民确认已处理。"
            self.api(
                "POST",
                f"/api/v1/tickets/{number}/callback",
                "POST /api/v1/tickets/<number>/callback",
                body,
            )
        finally:
            CLAIMED.discard(number)


class BoardViewer(Staff):
    fixed_count = CONFIG["users"]["board"]
    wait_time = between(1, 3)
    host = CONFIG["board_url"]

    def on_start(self):
        self.web_login(self.client, "leader")
        self.cookie = "; ".join(f"{k}={v}" for k, v in self.client.cookies.get_dict().items())

    @task
    def watch(self):
        import socketio

        self.page("/boards", "GET /boards (大屏)")
        self.page("/api/v1/boards/city/map", "GET /api/v1/boards/city/map")
        snapshot = gevent.event.Event()
        updates = [0]
        sio = socketio.Client(reconnection=False)
        sio.on("snapshot", lambda data: snapshot.set(), namespace="/board")
        sio.on("update", lambda data: updates.__setitem__(0, updates[0] + 1), namespace="/board")
        began = time.perf_counter()
        error = None
        try:
            sio.connect(
                CONFIG["board_url"],
                namespaces=["/board"],
                transports=["websocket"],
                headers={"Cookie": self.cookie},
                auth={"room": "city"},
                wait_timeout=10,
            )
            if not snapshot.wait(timeout=10):
                error = RuntimeError("no snapshot within 10 s")
        except Exception as exc:  # noqa: BLE001 — reported as this operation's failure
            error = exc
        events.request.fire(
            request_type="WS",
            name="Socket.IO /board connect → snapshot",
            response_time=(time.perf_counter() - began) * 1000,
            response_length=0,
            exception=error,
            context={},
        )
        try:
            if error is None:
                gevent.sleep(random.uniform(60, 120))
        finally:
            sio.disconnect()


class Citizen(HttpUser):
    fixed_count = CONFIG["users"]["citizen"]
    wait_time = between(10, 30)
    host = CONFIG["base_url"]

    def on_start(self):
        self.phone = CONFIG["citizen_phones"].pop()
        self.token = None

    def login(self):
        Gateway.codes.pop(self.phone, None)
        with self.client.post(
            "/citizen/api/v1/sessions/code",
            name="POST /citizen/api/v1/sessions/code",
            json={"phone": self.phone},
            catch_response=True,
        ) as response:
            if not expect(response, 202):
                return
        deadline = time.monotonic() + 30
        while self.phone not in Gateway.codes and time.monotonic() < deadline:
            gevent.sleep(0.1)
        code = Gateway.codes.pop(self.phone, None)
        if code is None:
            events.request.fire(
                request_type="SMS",
                name="citizen code by SMS",
                response_time=30000,
                response_length=0,
                exception=RuntimeError("no SMS within 30 s"),
                context={},
            )
            return
        with self.client.post(
            "/citizen/api/v1/sessions",
            name="POST /citizen/api/v1/sessions",
            json={"phone": self.phone, "code": code},
            catch_response=True,
        ) as response:
            if expect(response, 200, 201):
                self.token = response.json()["data"]["token"]

    @task
    def track(self):
        if self.token is None:
            self.login()
            if self.token is None:
                return
        headers = {"Authorization": f"Bearer {self.token}"}
        with self.client.get(
            "/citizen/api/v1/requests",
            name="GET /citizen/api/v1/requests (我的诉求)",
            headers=headers,
            catch_response=True,
        ) as response:
            if not expect(response, 200):
                return
            items = response.json()["data"]["items"]
        if items:
            number = random.choice(items)["number"]
            gevent.sleep(random.uniform(2, 5))
            with self.client.get(
                f"/citizen/api/v1/requests/{number}",
                name="GET /citizen/api/v1/requests/<number>",
                headers=headers,
                catch_response=True,
            ) as response:
                expect(response, 200)
