"""Fault suite: nothing lost or doubled when processes die, the database restarts, Redis goes
away or the attachment store cannot be written.

Every scenario runs the real processes — gunicorn on PostgreSQL, ``hotline scheduler``,
``hotline serve`` with ``hotline board-publisher`` for the live boards, a Redis server of its
own — and counts at the end, in the database, what the clients meant to do:

1. ``worker_kill``: ``--clients`` clients create tickets through ``POST /api/v1/tickets`` for
   ``--seconds`` while one gunicorn worker is SIGKILLed every ``--kill-every`` seconds.
2. ``db_restart``: the same load; the database is restarted in the middle
   (``pg_ctlcluster … restart``). Every error answer must be the API's JSON envelope (503
   ``DATABASE_UNAVAILABLE`` with ``Retry-After``), never HTML or a stack trace.
3. ``redis_loss``: Redis is stopped for ``--redis-outage`` seconds while tickets come in and
   pages are read; a board client (python-socketio) stays as it is (no reload) and must show
   the database's count of today's tickets within 5 s of Redis coming back.
4. ``scheduler_kill``: ``--timers`` overdue timers (one per ticket); a scheduler is SIGKILLed
   mid-catch-up, then two are started together. Every timer fires once (firings, events and
   inbox items), and every SMS and WeChat Work copy reaches this script's counting gateway
   (the ``http`` senders) — once per delivery key.
5. ``attachments``: a handler finishes a ticket with photos through the page while the
   attachment folder cannot be written → a clean Chinese error, the ticket unchanged, no
   attachment row or file left; then the same finish once the folder is writable again.

Clients retry a logical ticket with the same ``Idempotency-Key`` on connection errors and
5xx (every 0.2 s, for up to a minute); a ticket still not created then is ``failed``.

The database: by default a throwaway PostgreSQL cluster of its own, made with Debian's
``pg_createcluster`` (run as root or postgres; ``--pg-port``), restarted with
``pg_ctlcluster`` and dropped at the end. Or ``--database-url`` (a database the per-scenario
databases are created from) with ``--restart-command`` (a shell command restarting that
server). Redis: a ``redis-server`` of its own on a free port (scenario 3 stops it).

Prints a table; ``--json PATH`` writes ``{"worker_kill": {"logical", "stored", "duplicates",
"failed"}, "db_restart": {…, "error_seconds", "non_json_errors"}, "redis_loss":
{"intake_errors", "board_recovery_s", "board_counts_match"}, "scheduler_kill": {"expected",
"fired", "duplicates"}, "attachments": {"clean_error", "orphans"}}`` (plus details). Exits 1
when a guarantee is broken.

    python bench/faults.py                          # full size (8 min on a busy 2-core host)
    python bench/faults.py --smoke --json ci-artifacts/faults-smoke.json
    python bench/faults.py --only redis_loss,attachments
"""

import argparse
import datetime as dt
import http.client
import http.server
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from pathlib import Path

import requests
import sqlalchemy as sa

from bench.intake import calls, free_port, print_rows
from bench.intake import prepare as prepare_intake
from hotline.db import make_engine

ROOT = Path(__file__).resolve().parent.parent
#: ``hotline …`` from this checkout (the venv's entry point may import another one).
HOTLINE = [sys.executable, "-c", "import sys; from server.cli import main; sys.exit(main())"]
PASSWORD = "demo-12345"
SCENARIOS = ("worker_kill", "db_restart", "redis_loss", "scheduler_kill", "attachments")
#: How long a client keeps retrying one logical ticket, and the pause between tries.
RETRY_FOR_SECONDS = 60
RETRY_PAUSE = 0.2
#: Redis back → the board must show the database's counts within this many seconds.
BOARD_RECOVERY_LIMIT = 5
#: The handler and unit of the attachments scenario (seed data).
HANDLER, HANDLER_UNIT, DISPATCHER = "dongguan", "U-S-370705001", "dispatcher"


def log(message):
    print(f"[faults {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- services: PostgreSQL and Redis of our own ------------------------------------------------


class Cluster:
    """A throwaway Debian PostgreSQL cluster (trust on localhost), or a given database."""

    def __init__(self, args):
        self.url, self.restart_command = args.database_url, args.restart_command
        self.name = f"faults{os.getpid()}"
        self.version = None
        self.made = []
        if self.url is None:
            self.version = sorted(os.listdir("/etc/postgresql"), key=float)[-1]
            self.port = args.pg_port or free_port()

    def __enter__(self):
        if self.url is not None:
            return self
        log(f"creating PostgreSQL {self.version} cluster {self.name} on port {self.port}")
        subprocess.run(
            ["pg_createcluster", self.version, self.name, "--port", str(self.port)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        conf = Path("/etc/postgresql") / self.version / self.name
        (conf / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
        with open(conf / "postgresql.conf", "a") as f:
            f.write("listen_addresses = '127.0.0.1'\nmax_connections = 200\n")
        self.restart_command = f"pg_ctlcluster {self.version} {self.name} restart"
        subprocess.run(["pg_ctlcluster", self.version, self.name, "start"], check=True)
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        return self

    def __exit__(self, *exc):
        if self.version is not None:
            log(f"dropping cluster {self.name}")
            subprocess.run(
                ["pg_dropcluster", "--stop", self.version, self.name], stdout=subprocess.DEVNULL
            )
            return
        admin = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in reversed(self.made):
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    def restart(self):
        subprocess.run(self.restart_command, shell=True, check=True, stdout=subprocess.DEVNULL)

    def database(self, name, template=None):
        admin = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            extra = f' TEMPLATE "{template}"' if template else ""
            conn.execute(sa.text(f'CREATE DATABASE "{name}"{extra}'))
        admin.dispose()
        self.made.append(name)
        return sa.make_url(self.url).set(database=name).render_as_string(hide_password=False)


class RedisServer:
    def __init__(self, port):
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                import redis

                redis.Redis.from_url(self.url, socket_connect_timeout=0.2).ping()
                return
            except Exception:  # noqa: BLE001 — not up yet
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


# -- processes ------------------------------------------------------------------------------


def app_env(url, redis_url=None, **more):
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        HOTLINE_DATABASE_URL=url,
        HOTLINE_SECRET_KEY=SECRET,
        HOTLINE_CLASSIFIER_ENABLED="false",
        HOTLINE_CLASSIFIER_PRELOAD="false",
        HOTLINE_CLASSIFIER_MODELS_DIR=temporary_folder("faults-models-"),
        HOTLINE_EVENT_CHANNEL=f"hotline:faults:{uuid.uuid4().hex[:8]}",
        HOTLINE_REDIS_URL=redis_url or "",
    )
    env.update({f"HOTLINE_{k}": str(v) for k, v in more.items()})
    return env


SECRET = uuid.uuid4().hex
#: Folders made for the run, removed at its end.
TEMPORARY = []


def temporary_folder(prefix):
    TEMPORARY.append(tempfile.mkdtemp(prefix=prefix))
    return TEMPORARY[-1]


def wait_ready(port, processes, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/login", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if any(p.poll() is not None for p in processes):
            raise RuntimeError("a server process exited at start")
        time.sleep(0.2)
    raise RuntimeError(f"no server answered on port {port}")


def start_gunicorn(env, port, workers, log_file):
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        "4",
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "server.app:create_app()",
    ]
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, start_new_session=True, stdout=log_file, stderr=log_file
    )
    wait_ready(port, [process])
    return process


def start_hotline(env, args, log_file, ready=None):
    """``hotline ARGS``; with ``ready`` (a line it prints once running), returns only then."""
    if ready is None:
        return subprocess.Popen(
            HOTLINE + args,
            env=env,
            cwd=ROOT,
            start_new_session=True,
            stdout=log_file,
            stderr=log_file,
        )
    process = subprocess.Popen(
        HOTLINE + args,
        env={**env, "PYTHONUNBUFFERED": "1"},
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=log_file,
        text=True,
    )
    started = threading.Event()

    def copy():
        for line in process.stdout:
            if ready in line:
                started.set()
            log_file.write(line)
        started.set()

    threading.Thread(target=copy, daemon=True).start()
    if not started.wait(180) or process.poll() is not None:
        stop(process)
        raise RuntimeError(f"hotline {' '.join(args)} did not start")
    return process


#: What ``hotline scheduler`` and ``hotline board-publisher`` print once running.
SCHEDULER_READY, PUBLISHER_READY = "SLA 定时器每", "实时大屏推送已启动"


def stop(*processes, sig=signal.SIGTERM):
    for process in processes:
        if process is None:
            continue
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            continue
    for process in processes:
        if process is None:
            continue
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def children(pid):
    """Process ids whose parent is ``pid`` (gunicorn's workers), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def login(base, username):
    """A requests session logged in through the login page (as a browser)."""
    web = requests.Session()
    page = web.get(f"{base}/login", timeout=10).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    answer = web.post(
        f"{base}/login",
        data={"csrf_token": token, "username": username, "password": PASSWORD},
        allow_redirects=False,
        timeout=10,
    )
    if answer.status_code != 302:
        raise RuntimeError(f"login of {username} failed: {answer.status_code}")
    return web


# -- intake clients that retry --------------------------------------------------------------


class Intake:
    """Clients creating tickets through the API, each logical ticket with one
    ``Idempotency-Key`` retried on connection errors and 5xx. Records every error answer."""

    def __init__(self, port, token, clients, pause=0.0):
        self.port, self.token, self.clients, self.pause = port, token, clients, pause
        self.bodies = [json.dumps(b, ensure_ascii=False).encode() for b in calls(400, 0.0)]
        self.keys, self.created, self.failed = [], [], []
        #: (monotonic time, what: status or exception name, JSON envelope?, Retry-After?)
        self.errors = []
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.threads = []

    def start(self):
        self.threads = [
            threading.Thread(target=self._client, args=(i,), daemon=True)
            for i in range(self.clients)
        ]
        for thread in self.threads:
            thread.start()

    def stop(self):
        self.stop_event.set()
        for thread in self.threads:
            thread.join()

    def _connect(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def _client(self, index):
        conn = self._connect()
        n = index
        while not self.stop_event.is_set():
            key = uuid.uuid4().hex
            body = self.bodies[n % len(self.bodies)]
            n += self.clients
            with self.lock:
                self.keys.append(key)
            headers = {
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "Idempotency-Key": key,
            }
            give_up = time.monotonic() + RETRY_FOR_SECONDS
            while True:
                try:
                    conn.request("POST", "/api/v1/tickets", body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    conn = self._connect()
                    self._error(type(exc).__name__, None, None)
                else:
                    if response.status in (200, 201):
                        with self.lock:
                            self.created.append(key)
                        break
                    self._error(response.status, data, response.getheader("Retry-After"))
                    if response.status < 500:
                        with self.lock:
                            self.failed.append((key, response.status, data[:200]))
                        break
                if time.monotonic() > give_up:
                    with self.lock:
                        self.failed.append((key, "gave up", b""))
                    break
                time.sleep(RETRY_PAUSE)
            if self.pause:
                time.sleep(self.pause)
        conn.close()  # an open keep-alive connection would hold up gunicorn's graceful stop

    def _error(self, what, data, retry_after):
        enveloped = None
        if data is not None:
            try:
                answer = json.loads(data)
                enveloped = answer.get("success") is False and bool(answer["error"]["code"])
            except (ValueError, KeyError, TypeError, AttributeError):
                enveloped = False
        with self.lock:
            self.errors.append((time.monotonic(), what, enveloped, retry_after))


def count_tickets(url, keys):
    """(stored, duplicates) of the logical tickets ``keys`` in the database: distinct keys
    found, and rows beyond one per key (counted independently of the unique constraint)."""
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT idempotency_key, count(*) FROM tickets "
                "WHERE idempotency_key IS NOT NULL GROUP BY idempotency_key"
            )
        ).all()
        total = conn.scalar(sa.text("SELECT count(*) FROM tickets"))
    engine.dispose()
    wanted = set(keys)
    counts = {key: n for key, n in rows}
    stored = sum(1 for key in wanted if key in counts)
    duplicates = sum(n - 1 for key, n in counts.items() if key in wanted and n > 1)
    # A row under no key of ours would be a retry that lost its key on the way.
    strays = total - sum(counts.get(key, 0) for key in wanted) - PRE_EXISTING.get(url, 0)
    return stored, duplicates + max(0, strays)


PRE_EXISTING = {}


def intake_database(cluster, template, name):
    url = cluster.database(name, template)
    engine = make_engine(url)
    with engine.connect() as conn:
        PRE_EXISTING[url] = conn.scalar(sa.text("SELECT count(*) FROM tickets"))
    engine.dispose()
    return url


def intake_figures(load, url):
    stored, duplicates = count_tickets(url, load.keys)
    return {
        "logical": len(load.keys),
        "stored": stored,
        "duplicates": duplicates,
        "failed": len(load.failed),
        "error_answers_before_retry": len(load.errors),
        "error_kinds": sorted({str(e[1]) for e in load.errors}),
        "failures": [f"{status} {data[:120]!r}" for _, status, data in load.failed[:5]],
    }


# -- 1. worker kills --------------------------------------------------------------------------


def worker_kill(ctx, args):
    url = intake_database(ctx.cluster, ctx.template, "faults_worker_kill")
    port = free_port()
    server = start_gunicorn(app_env(url), port, args.workers, ctx.log)
    load = Intake(port, ctx.token, args.clients)
    kills = 0
    try:
        load.start()
        stop_at = time.monotonic() + args.seconds
        rng = random.Random(18)
        while time.monotonic() < stop_at:
            time.sleep(min(args.kill_every, max(0, stop_at - time.monotonic())))
            if time.monotonic() >= stop_at:
                break
            workers = children(server.pid)
            if workers:
                os.kill(rng.choice(workers), signal.SIGKILL)
                kills += 1
        load.stop()
    finally:
        stop(server)
    return {**intake_figures(load, url), "workers_killed": kills, "seconds": args.seconds}


# -- 2. database restart ----------------------------------------------------------------------


def db_restart(ctx, args):
    """The intake load, pages and API reads, the scheduler and the board publisher running
    while the database restarts; nothing is restarted but the database."""
    url = intake_database(ctx.cluster, ctx.template, "faults_db_restart")
    port = free_port()
    env = app_env(url, ctx.redis.url, SCHEDULER_INTERVAL_SECONDS=1)
    server = start_gunicorn(env, port, args.workers, ctx.log)
    others = [
        start_hotline(env, ["scheduler"], ctx.log, SCHEDULER_READY),
        start_hotline(env, ["board-publisher"], ctx.log, PUBLISHER_READY),
    ]
    base = f"http://127.0.0.1:{port}"
    sessions = {u: login(base, u) for u in (DISPATCHER, "operator", "leader", HANDLER)}
    load = Intake(port, ctx.token, args.clients)
    reads_stop = threading.Event()
    reader = Reader(base, sessions, ctx.token, reads_stop)
    try:
        load.start()
        reader.start()
        time.sleep(args.restart_at)
        began = time.monotonic()
        ctx.cluster.restart()
        restart_took = time.monotonic() - began
        time.sleep(max(0, args.seconds - args.restart_at - restart_took))
        load.stop()
        reads_stop.set()
        reader.join()
        alive = all(p.poll() is None for p in [server, *others])
    finally:
        stop(server, *others)
    errors = [e for e in load.errors if e[0] >= began - 1]
    http_errors = [e for e in load.errors if not isinstance(e[1], str)]
    non_json = [e for e in http_errors if not e[2]]
    no_retry_after = [e for e in http_errors if e[1] == 503 and not e[3]]
    seconds = (max(e[0] for e in errors) - min(e[0] for e in errors)) if errors else 0.0
    return {
        **intake_figures(load, url),
        "error_seconds": round(seconds, 2),
        # API answers, the intake's and the reads': an error not in the JSON envelope.
        "non_json_errors": len(non_json) + sum(u.startswith("/api/") for u in reader.unclean),
        "restart_command_s": round(restart_took, 2),
        "503_without_retry_after": len(no_retry_after),
        "reads": reader.reads,
        "read_errors": len(reader.errors),
        "unclean_read_errors": len(reader.unclean),
        "unclean_kinds": sorted(set(reader.unclean))[:5],
        "read_reconnects": reader.reconnects,
        "processes_still_running": alive,
        "seconds": args.seconds,
    }


# -- 3. Redis loss ----------------------------------------------------------------------------


class BoardWatcher:
    """A live board (python-socketio, WebSocket) on the city room, never reloaded: keeps
    the newest count of today's tickets it was shown."""

    def __init__(self, base, cookie):
        import socketio

        self.received = None
        self.connects = 0
        self.disconnects = 0
        self.updates = 0
        self.sio = socketio.Client(reconnection=True, reconnection_delay=0.5)
        self.sio.on("snapshot", self._shown, namespace="/board")
        self.sio.on("update", self._updated, namespace="/board")
        self.sio.on("connect", self._connected, namespace="/board")
        self.sio.on("disconnect", self._disconnected, namespace="/board")
        self.sio.connect(
            base,
            namespaces=["/board"],
            transports=["websocket"],
            headers={"Cookie": cookie},
            auth={"room": "city"},
            wait_timeout=30,
        )

    def _connected(self):
        self.connects += 1

    def _disconnected(self, *args):
        self.disconnects += 1

    def _shown(self, data):
        self.received = data["today"]["received"]

    def _updated(self, data):
        self.updates += 1
        self.received = data["today"]["received"]


def today_count(url):
    """Today's tickets (the city's local day) in the database, by independent SQL."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Asia/Shanghai")
    local = dt.datetime.now(zone)
    start = dt.datetime(local.year, local.month, local.day, tzinfo=zone).astimezone(dt.UTC)
    engine = make_engine(url)
    with engine.connect() as conn:
        count = conn.scalar(
            sa.text("SELECT count(*) FROM tickets WHERE received_at >= :start"), {"start": start}
        )
    engine.dispose()
    return count


class Reader(threading.Thread):
    """Reads pages and the API as people and programs do, every 0.2 s, and sorts what comes
    back: 200, a clean refusal (a page: HTML in Chinese without a traceback; the API: its
    JSON envelope), or anything else (``unclean``: an HTML 500, a stack trace, no answer)."""

    PAGES = [
        (DISPATCHER, "/dispatch"),
        ("operator", "/console"),
        ("leader", "/boards"),
        (HANDLER, "/inbox"),
        (None, "/citizen/"),
    ]

    def __init__(self, base, sessions, token, stop_event):
        super().__init__(daemon=True)
        self.base, self.sessions, self.stop_event = base, sessions, stop_event
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Bearer {token}"
        self.reads, self.errors, self.unclean, self.reconnects = 0, [], [], 0

    def run(self):
        anonymous = requests.Session()
        reads = [(self.sessions[u] if u else anonymous, path) for u, path in self.PAGES]
        reads += [(self.api, "/api/v1/tickets?per_page=5"), (self.api, "/api/v1/me")]
        while not self.stop_event.is_set():
            for web, path in reads:
                try:
                    answer = self._get(web, path)
                except requests.RequestException as exc:
                    self.errors.append(f"{path} {type(exc).__name__}")
                    self.unclean.append(f"{path} {type(exc).__name__}")
                    continue
                finally:
                    self.reads += 1
                if answer.status_code == 200:
                    continue
                self.errors.append(f"{path} {answer.status_code}")
                if not clean_refusal(answer, api=path.startswith("/api/")):
                    self.unclean.append(f"{path} {answer.status_code}")
            time.sleep(0.2)

    def _get(self, web, path):
        try:
            return web.get(self.base + path, timeout=30, allow_redirects=False)
        except requests.ConnectionError:
            # A kept-alive connection the server closed as it was reused (gunicorn closes
            # idle ones after 2 s): a browser sends the GET again at once, so do we.
            self.reconnects += 1
            return web.get(self.base + path, timeout=30, allow_redirects=False)


def clean_refusal(answer, api):
    if "Traceback" in answer.text:
        return False
    if api:
        try:
            body = answer.json()
            return body["success"] is False and bool(body["error"]["code"])
        except (ValueError, KeyError, TypeError):
            return False
    html = answer.headers.get("Content-Type", "").startswith("text/html")
    return (
        html
        and answer.status_code < 500
        or (html and answer.status_code == 503 and "系统繁忙" in answer.text)
    )


def redis_loss(ctx, args):
    url = intake_database(ctx.cluster, ctx.template, "faults_redis_loss")
    env = app_env(url, ctx.redis.url)
    port, board_port = free_port(), free_port()
    server = start_gunicorn(env, port, args.workers, ctx.log)
    serve = start_hotline(env, ["serve", "--port", str(board_port), "--no-access-log"], ctx.log)
    publisher = start_hotline(env, ["board-publisher"], ctx.log, PUBLISHER_READY)
    watcher = None
    try:
        wait_ready(board_port, [serve, publisher])
        base, board = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{board_port}"
        sessions = {u: login(base, u) for u in (DISPATCHER, "operator", "leader", HANDLER)}
        leader = login(board, "leader")
        cookie = "; ".join(f"{k}={v}" for k, v in leader.cookies.get_dict().items())
        watcher = BoardWatcher(board, cookie)
        load = Intake(port, ctx.token, 2, pause=0.1)
        pages_stop = threading.Event()
        pages = Reader(base, sessions, ctx.token, pages_stop)
        load.start()
        pages.start()
        time.sleep(3)
        ctx.redis.stop()
        log(f"Redis stopped for {args.redis_outage} s")
        time.sleep(args.redis_outage)
        ctx.redis.start()
        back = time.monotonic()
        log("Redis back")
        load.stop()
        pages_stop.set()
        pages.join()
        # The board must come to the database's count without a reload.
        expected = today_count(url)
        recovery = None
        while time.monotonic() - back < 30:
            if watcher.received == expected:
                recovery = time.monotonic() - back
                break
            time.sleep(0.05)
        shown = watcher.received
        alive = all(p.poll() is None for p in (server, serve, publisher))
    finally:
        if watcher is not None:
            threading.Thread(target=watcher.sio.disconnect, daemon=True).start()
        stop(server, serve, publisher)
    stored, duplicates = count_tickets(url, load.keys)
    return {
        "intake_errors": len(load.errors) + len(load.failed),
        "board_recovery_s": round(recovery, 2) if recovery is not None else None,
        "board_counts_match": recovery is not None and recovery <= BOARD_RECOVERY_LIMIT,
        "page_reads": pages.reads,
        "page_errors": len(pages.errors),
        "unclean_page_errors": len(pages.unclean),
        "page_reconnects": pages.reconnects,
        "page_error_kinds": sorted(set(pages.errors))[:5],
        "tickets_created": len(load.created),
        "stored": stored,
        "duplicates": duplicates,
        "board_shows": shown,
        "database_today": expected,
        "board_reconnects": watcher.connects - 1 if watcher else None,
        "processes_still_running": alive,
        "outage_s": args.redis_outage,
    }


# -- 4. scheduler killed mid-catch-up -----------------------------------------------------------


class Gateway(http.server.ThreadingHTTPServer):
    """A counting SMS gateway and WeChat Work robot: every copy it is handed, by delivery key
    (SMS: ``X-Delivery-Key``) or by ticket number (a robot post joins several copies)."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), GatewayHandler)
        self.lock = threading.Lock()
        self.sms = {}
        self.wecom = {}
        self.posts = 0

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request, client_address):
        pass  # a sender killed mid-request resets its connection: nothing was delivered


class GatewayHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self):  # noqa: N802 (http.server's name)
        try:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        except ValueError:  # the sender was killed halfway through its request: not delivered
            self.close_connection = True
            return
        with self.server.lock:
            self.server.posts += 1
            if self.path == "/sms":
                key = self.headers.get("X-Delivery-Key")
                self.server.sms[key] = self.server.sms.get(key, 0) + 1
            else:
                for number in re.findall(r"FAULT\d{7}", body["text"]["content"]):
                    self.server.wecom[number] = self.server.wecom.get(number, 0) + 1
        answer = b'{"errcode": 0, "code": 0}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def overdue_timers(url, count):
    """``count`` dispatched tickets at street offices (with duty phones), each with exactly
    one timer due: signing overdue one minute ago."""
    engine = make_engine(url)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        ids = lambda sql: conn.execute(sa.text(sql)).scalars().all()  # noqa: E731
        units = ids("SELECT id FROM units WHERE kind = 'street_office' ORDER BY id")
        conn.execute(
            sa.text("UPDATE units SET phones = CAST(:phones AS JSONB) WHERE id = ANY(:units)"),
            {"phones": json.dumps(["13800000000"]), "units": units},
        )
        category = ids("SELECT id FROM categories WHERE code = '010103'")[0]
        policy = ids("SELECT id FROM sla_policies WHERE name = '一般诉求'")[0]
        user = ids("SELECT id FROM users WHERE username = 'operator'")[0]
        conn.execute(
            sa.text(
                """
                INSERT INTO tickets (
                    number, channel, request_type, urgency, category_id, title, content,
                    status, lead_unit_id, received_at, clock_started_at, sign_due,
                    contact_due, finish_due, sla_policy_id, created_by_id, version,
                    updated_at, next_due_at, timers_checked_until, escalation_level,
                    reopen_count, scoring_exempt)
                SELECT
                    'FAULT' || lpad(g::text, 7, '0'), 'phone', 'complaint', 'normal',
                    :category, '路灯不亮', '故障演练工单：小区门口路灯不亮', 'dispatched',
                    (:units)[1 + g % cardinality(:units)],
                    :now - interval '121 minutes', :now - interval '121 minutes',
                    :now - interval '1 minute', :now + interval '22 hours',
                    :now + interval '7 days', :policy, :user, 1, :now,
                    :now - interval '1 minute', :now - interval '2 minutes', 0, 0, false
                FROM generate_series(1, :count) AS g
                """
            ),
            {
                "category": category,
                "units": units,
                "policy": policy,
                "user": user,
                "now": now,
                "count": count,
            },
        )
    engine.dispose()


def scheduler_counts(conn):
    one = lambda sql: conn.scalar(sa.text(sql))  # noqa: E731
    return {
        "firings": one("SELECT count(*) FROM timer_firings"),
        "distinct_firings": one(
            "SELECT count(*) FROM (SELECT DISTINCT ticket_id, kind FROM timer_firings) AS f"
        ),
        "events": one(
            "SELECT count(*) FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id "
            "WHERE t.number LIKE 'FAULT%'"
        ),
        "inbox": one(
            "SELECT count(*) FROM notifications n JOIN tickets t ON t.id = n.ticket_id "
            "WHERE t.number LIKE 'FAULT%'"
        ),
        "copies": one(
            "SELECT count(*) FROM outbox o JOIN tickets t ON t.id = o.ticket_id "
            "WHERE t.number LIKE 'FAULT%'"
        ),
        "pending": one("SELECT count(*) FROM outbox WHERE state = 'pending'"),
        "failed_copies": one("SELECT count(*) FROM outbox WHERE state = 'failed'"),
    }


def scheduler_kill(ctx, args):
    url = ctx.cluster.database("faults_scheduler", ctx.template)
    overdue_timers(url, args.timers)
    gateway = Gateway()
    threading.Thread(target=gateway.serve_forever, daemon=True).start()
    env = app_env(
        url,
        ctx.redis.url,
        NOTIFY_SENDERS="sms,wecom",
        NOTIFY_SMS_SENDER="http",
        NOTIFY_SMS_URL=f"{gateway.url}/sms",
        NOTIFY_WECOM_SENDER="http",
        NOTIFY_WECOM_URL=f"{gateway.url}/wecom",
        SCHEDULER_BATCH=args.scheduler_batch,
        OUTBOX_LEASE_SECONDS=args.outbox_lease,
        LOG_LEVEL="WARNING",
    )
    engine = make_engine(url)
    schedulers = []
    try:
        first = start_hotline(env, ["scheduler"], ctx.log)
        schedulers.append(first)
        fired_at_kill = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                fired_at_kill = scheduler_counts(conn)["firings"]
            if fired_at_kill >= args.timers * 0.2:
                break
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        with engine.connect() as conn:
            at_kill = scheduler_counts(conn)
        log(f"scheduler killed with {at_kill['firings']} of {args.timers} timers fired")
        # Two schedulers started together finish the catch-up.
        schedulers += [start_hotline(env, ["scheduler"], ctx.log) for _ in range(2)]
        deadline = time.monotonic() + args.scheduler_wait
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                counts = scheduler_counts(conn)
            if counts["firings"] >= args.timers and counts["pending"] == 0:
                break
            time.sleep(0.5)
        time.sleep(1)  # a straggling double would show now
        alive = sum(p.poll() is None for p in schedulers[1:])
    finally:
        stop(*schedulers)
        gateway.shutdown()
    with engine.connect() as conn:
        counts = scheduler_counts(conn)
    expected = args.timers
    with engine.connect() as conn:
        keys = set(
            conn.scalars(
                sa.text(
                    "SELECT o.delivery_key FROM outbox o JOIN tickets t ON t.id = o.ticket_id "
                    "WHERE t.number LIKE 'FAULT%' AND o.channel = 'sms'"
                )
            )
        )
    engine.dispose()
    # The gateway drops a text whose X-Delivery-Key it has delivered already (what the README
    # asks of an SMS gateway): "resent" are those, handed again by a process killed between
    # the gateway's answer and the mark. A robot post has no key: a resent one is a double.
    sms_keys = sum(1 for key in gateway.sms if key in keys)
    sms_resent = sum(n - 1 for key, n in gateway.sms.items() if key in keys)
    wecom_copies = len(gateway.wecom)
    wecom_resent = sum(n - 1 for n in gateway.wecom.values())
    duplicates = (
        (counts["firings"] - counts["distinct_firings"])
        + max(0, counts["events"] - expected)
        + max(0, counts["inbox"] - expected)
        + max(0, counts["copies"] - 2 * expected)
        + wecom_resent
    )
    return {
        "expected": expected,
        "fired": counts["distinct_firings"],
        "duplicates": duplicates,
        "firing_rows": counts["firings"],
        "timer_events": counts["events"],
        "inbox_items": counts["inbox"],
        "outbox_copies": counts["copies"],
        "copies_pending": counts["pending"],
        "copies_failed": counts["failed_copies"],
        "sms_delivered": sms_keys,
        "sms_resent_same_key": sms_resent,
        "wecom_delivered": wecom_copies,
        "wecom_resent": wecom_resent,
        "fired_before_kill": at_kill["firings"],
        "schedulers_alive_after": alive,
    }


# -- 5. attachments not writable ------------------------------------------------------------------


def png(seed):
    """A small valid PNG, different per ``seed``."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"".join(
        b"\x00" + bytes([(seed * 31 + y * 7) % 256, y * 9 % 256, 200]) * 8 for y in range(8)
    )
    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def contacted_ticket(url):
    """A ticket dispatched to the handler's unit, signed and contacted (as people do)."""
    from dispatch import operations
    from hotline.enums import Channel, RequestType, Urgency
    from hotline.models import Category, Unit, User
    from server.app import create_app

    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": SECRET,
            "CLASSIFIER_PRELOAD": False,
            "CLASSIFIER_ENABLED": False,
            "REDIS_URL": "",
        }
    )
    with app.app_context():
        session = app.extensions["hotline.db"]()
        user = lambda name: session.scalars(sa.select(User).where(User.username == name)).one()  # noqa: E731
        unit = session.scalars(sa.select(Unit).where(Unit.code == HANDLER_UNIT)).one()
        category = session.scalars(sa.select(Category).where(Category.code == "010103")).one()
        ticket, _ = operations.receive(
            session,
            user("operator"),
            channel=Channel.phone,
            request_type=RequestType.complaint,
            urgency=Urgency.normal,
            content="东关街道某小区门口路灯不亮一周了，请尽快维修。",
            suggestion=None,
            category=category,
        )
        operations.dispatch(session, user(DISPATCHER), ticket, lead=unit)
        operations.sign(session, user(HANDLER), ticket)
        operations.contact(session, user(HANDLER), ticket, note="已电话联系诉求人")
        session.commit()
        number = ticket.number
        session.close()
    return number


def ticket_state(url, number, folder):
    engine = make_engine(url)
    with engine.connect() as conn:
        status, version = conn.execute(
            sa.text("SELECT status, version FROM tickets WHERE number = :n"), {"n": number}
        ).one()
        rows = conn.execute(sa.text("SELECT sha256 FROM attachments")).scalars().all()
    engine.dispose()
    files = [p for p in Path(folder).rglob("*") if p.is_file()]
    return status, version, rows, files


def make_unwritable(folder):
    """Read-only for the server. chmod is not enough for root (CI): then the immutable flag."""
    os.chmod(folder, 0o555)
    probe = Path(folder) / ".probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return "chmod 555"
    probe.unlink()
    subprocess.run(["chattr", "+i", str(folder)], check=True)
    return "chattr +i"


def make_writable(folder, how):
    if how == "chattr +i":
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    os.chmod(folder, 0o755)


def finish_with_photos(web, base, number):
    page = web.get(f"{base}/tickets/{number}", timeout=30).text
    form = re.search(r'<form[^>]*id="finish-form".*?</form>', page, re.S).group(0)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    fields["result"] = "已更换路灯灯泡，经现场检查照明恢复正常，已告知诉求人。"
    files = [("photos", (f"现场{i}.png", png(i), "image/png")) for i in (1, 2)]
    return web.post(
        f"{base}/tickets/{number}/finish",
        data=fields,
        files=files,
        timeout=30,
        allow_redirects=False,
    )


def attachments(ctx, args):
    url = ctx.cluster.database("faults_attachments", ctx.template)
    folder = temporary_folder("faults-attachments-")
    number = contacted_ticket(url)
    env = app_env(url, ATTACHMENT_STORE="files", ATTACHMENT_DIR=folder)
    port = free_port()
    server = start_gunicorn(env, port, 1, ctx.log)
    base = f"http://127.0.0.1:{port}"
    try:
        web = login(base, HANDLER)
        before = ticket_state(url, number, folder)
        how = make_unwritable(folder)
        try:
            refused = finish_with_photos(web, base, number)
        finally:
            make_writable(folder, how)
        after = ticket_state(url, number, folder)
        again = finish_with_photos(web, base, number)
        finished = ticket_state(url, number, folder)
    finally:
        stop(server)
    text = refused.text
    message = "照片保存失败" in text
    html = refused.headers.get("Content-Type", "").startswith("text/html")
    clean = message and html and "Traceback" not in text and refused.status_code in (200, 503)
    unchanged = before[:2] == after[:2]
    orphans = len(after[2]) + len(after[3])
    return {
        "clean_error": bool(clean and unchanged),
        "orphans": orphans,
        "refused_status": refused.status_code,
        "chinese_message": message,
        "ticket_unchanged": unchanged,
        "made_read_only_by": how,
        "retry_status": again.status_code,
        "after_retry": {"status": finished[0], "rows": len(finished[2]), "files": len(finished[3])},
    }


# -- the run --------------------------------------------------------------------------------------


class Context:
    pass


def prepare_template(cluster):
    """One migrated, seeded database with a bench operator; every scenario copies it."""
    url = cluster.database("faults_template")
    token = prepare_intake(url)
    return "faults_template", token


def run(args):
    wanted = args.only.split(",") if args.only else list(SCENARIOS)
    results = {}
    log_path = Path(tempfile.gettempdir()) / f"faults-{os.getpid()}.log"
    log(f"server logs: {log_path}")
    with Cluster(args) as cluster, open(log_path, "w") as log_file:
        ctx = Context()
        ctx.cluster, ctx.log = cluster, log_file
        ctx.redis = RedisServer(args.redis_port or free_port())
        ctx.redis.start()
        try:
            ctx.template, ctx.token = prepare_template(cluster)
            for name in wanted:
                log(f"scenario {name}")
                began = time.monotonic()
                results[name] = globals()[name](ctx, args)
                results[name]["wall_s"] = round(time.monotonic() - began, 1)
                log(f"{name}: {json.dumps(results[name], ensure_ascii=False)}")
        finally:
            ctx.redis.stop()
            for folder in TEMPORARY:
                shutil.rmtree(folder, ignore_errors=True)
    results["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return results


def broken(r):
    """The guarantees each scenario checks, as (scenario, what) for every one not met."""
    out = []
    for name in ("worker_kill", "db_restart"):
        if name in r:
            s = r[name]
            if s["stored"] != s["logical"] or s["duplicates"] or s["failed"]:
                out.append((name, "a logical ticket lost, doubled or failed"))
    if "db_restart" in r and (
        r["db_restart"]["non_json_errors"] or r["db_restart"]["503_without_retry_after"]
    ):
        out.append(("db_restart", "an error answer that is not the JSON envelope with Retry-After"))
    if "db_restart" in r and (
        r["db_restart"]["unclean_read_errors"] or not r["db_restart"]["processes_still_running"]
    ):
        out.append(("db_restart", "a page without a clean refusal, or a process died"))
    if "redis_loss" in r:
        s = r["redis_loss"]
        if s["intake_errors"] or s["page_errors"] or not s["board_counts_match"]:
            out.append(("redis_loss", "intake or pages failed, or the board did not recover"))
    if "scheduler_kill" in r:
        s = r["scheduler_kill"]
        if s["fired"] != s["expected"] or s["duplicates"] or s["sms_delivered"] != s["expected"]:
            out.append(("scheduler_kill", "a timer or a copy not exactly once"))
        if s["sms_resent_same_key"] > 1:  # one kill: at most the one copy in flight
            out.append(("scheduler_kill", "more than the copy in flight sent again"))
        if s["wecom_delivered"] != s["expected"] or s["inbox_items"] != s["expected"]:
            out.append(("scheduler_kill", "inbox items or WeChat Work copies missing"))
    if "attachments" in r:
        s = r["attachments"]
        if not s["clean_error"] or s["orphans"]:
            out.append(("attachments", "no clean error, or orphans left"))
    return out


def print_table(r, args):
    rows = [("size", "smoke" if args.smoke else "full")]
    if "worker_kill" in r:
        s = r["worker_kill"]
        rows += [
            (
                f"1 worker kills: {args.clients} clients, {s['seconds']:g} s, "
                f"kill every {args.kill_every:g} s",
                "",
            ),
            ("  workers SIGKILLed", s["workers_killed"]),
            (
                "  logical tickets / stored / duplicates / failed",
                f"{s['logical']} / {s['stored']} / {s['duplicates']} / {s['failed']}",
            ),
            (
                "  errors seen before retries (kinds)",
                f"{s['error_answers_before_retry']} ({', '.join(s['error_kinds'])})",
            ),
        ]
    if "db_restart" in r:
        s = r["db_restart"]
        rows += [
            (f"2 database restart at {args.restart_at:g} s of {s['seconds']:g} s", ""),
            (
                "  logical tickets / stored / duplicates / failed",
                f"{s['logical']} / {s['stored']} / {s['duplicates']} / {s['failed']}",
            ),
            ("  errors lasted (s)", s["error_seconds"]),
            (
                "  error answers (statuses)",
                f"{s['error_answers_before_retry']} ({', '.join(s['error_kinds'])})",
            ),
            ("  non-JSON error answers", s["non_json_errors"]),
            ("  503 without Retry-After", s["503_without_retry_after"]),
            (
                "  page + API reads: errors / unclean (reads)",
                f"{s['read_errors']} / {s['unclean_read_errors']} ({s['reads']})",
            ),
            ("  web, scheduler, publisher still running", s["processes_still_running"]),
        ]
    if "redis_loss" in r:
        s = r["redis_loss"]
        rows += [
            (f"3 Redis stopped for {s['outage_s']:g} s", ""),
            ("  intake errors (tickets created)", f"{s['intake_errors']} ({s['tickets_created']})"),
            ("  page errors (page reads)", f"{s['page_errors']} ({s['page_reads']})"),
            ("  board shows database count after (s)", s["board_recovery_s"]),
            (
                "  board count = database (within 5 s)",
                f"{s['board_counts_match']} ({s['board_shows']} / {s['database_today']})",
            ),
        ]
    if "scheduler_kill" in r:
        s = r["scheduler_kill"]
        rows += [
            (
                f"4 scheduler killed at {s['fired_before_kill']} of {s['expected']} timers, "
                "then 2 together",
                "",
            ),
            ("  fired / duplicates", f"{s['fired']} / {s['duplicates']}"),
            ("  timer events / inbox items", f"{s['timer_events']} / {s['inbox_items']}"),
            (
                "  SMS delivered / resent with the same key (dropped)",
                f"{s['sms_delivered']} / {s['sms_resent_same_key']}",
            ),
            ("  WeChat Work delivered / resent", f"{s['wecom_delivered']} / {s['wecom_resent']}"),
        ]
    if "attachments" in r:
        s = r["attachments"]
        rows += [
            (f"5 finish with photos, store read-only ({s['made_read_only_by']})", ""),
            ("  clean Chinese error, ticket unchanged", s["clean_error"]),
            ("  orphan rows + files", s["orphans"]),
            (
                "  same finish once writable (status, rows, files)",
                f"{s['retry_status']}, {s['after_retry']['rows']}, {s['after_retry']['files']}",
            ),
        ]
    rows.append(("load average (1, 5, 15 min)", " ".join(map(str, r["load_average"]))))
    print_rows(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="the short CI size")
    parser.add_argument("--only", help="comma-separated scenarios (default: all five)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--kill-every", type=float, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--restart-at", type=float, default=10)
    parser.add_argument("--redis-outage", type=float, default=20)
    parser.add_argument("--timers", type=int, default=5000)
    parser.add_argument("--scheduler-batch", type=int, default=250)
    parser.add_argument("--scheduler-wait", type=float, default=300)
    parser.add_argument("--outbox-lease", type=int, default=15)
    parser.add_argument("--database-url", help="instead of a cluster of its own")
    parser.add_argument("--restart-command", help="restarts --database-url's server")
    parser.add_argument("--pg-port", type=int)
    parser.add_argument("--redis-port", type=int)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    if args.database_url and not args.restart_command:
        parser.error("--database-url needs --restart-command")
    if args.smoke:
        args.clients, args.seconds, args.kill_every = 4, 10, 3
        args.restart_at, args.redis_outage = 4, 6
        args.timers, args.scheduler_batch = 1000, 100
    result = run(args)
    print_table(result, args)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=2))
    problems = broken(result)
    for name, what in problems:
        print(f"FAILED {name}: {what}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
