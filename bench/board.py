"""Live board benchmark: many board clients while tickets flow in, across server processes.

Sets up a fresh PostgreSQL database (migrate + seed), starts ``--processes`` ``hotline
serve`` processes and one ``hotline board-publisher``, all sharing Redis (ticket events and
Socket.IO's message queue). ``--clients`` python-socketio clients (WebSocket) watch the
boards, spread over the server processes (three in four the city board as ``leader``, one in
four 奎文区's board as ``kuiwen-leader``). A loader process receives ``--rate`` tickets per
second for ``--seconds`` through ``dispatch.operations.receive`` (one commit each, as the
API does). Every client records, for every new ticket in its feed, receipt time − the event's
``at``; at the end each client's last counts are compared with the database.

``lost`` = feed items a client should have seen and did not + clients whose final count of
today's tickets differs from the database's. Prints a table; ``--json PATH`` writes
``{"clients", "tickets_per_s", "p50_ms", "p99_ms", "lost"}`` (plus details).

    python bench/board.py                                   # 200 clients, 100/s, 60 s
    python bench/board.py --seconds 5 --clients 20 --rate 20  # smoke (CI)
"""

import argparse
import datetime as dt
import json
import multiprocessing
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from bench.intake import free_port, fresh_database, percentile, print_rows
from hotline import migrate, seed
from hotline.config import DEFAULTS
from hotline.db import make_engine

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DATABASE_NAME = "hl_bench_board"
PASSWORD = "demo-12345"
NS = "/board"
DISTRICT = "370705"
#: Each client's room and the user watching it (3 of 4 clients on the city board).
ROOMS = [("city", "leader")] * 3 + [(f"district:{DISTRICT}", "kuiwen-leader")]


def prepare(url):
    migrate.upgrade(url)
    engine = make_engine(url)
    with sessionmaker(bind=engine)() as session:
        seed.load_all(session)
        session.commit()
    engine.dispose()


def server_env(url, redis_url, channel, secret):
    env = dict(
        os.environ,
        HOTLINE_DATABASE_URL=url,
        HOTLINE_REDIS_URL=redis_url,
        HOTLINE_EVENT_CHANNEL=channel,
        HOTLINE_SECRET_KEY=secret,
        HOTLINE_CLASSIFIER_ENABLED="false",
        HOTLINE_CLASSIFIER_PRELOAD="false",
    )
    return env


def start_servers(env, count, log):
    """``count`` web servers and the publisher; their stderr goes to ``log``."""
    hotline = str(Path(sys.executable).parent / "hotline")
    ports = [free_port() for _ in range(count)]
    processes = [
        subprocess.Popen(
            [hotline, "serve", "--port", str(port), "--no-access-log"],
            env=env,
            cwd=ROOT,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        for port in ports
    ]
    processes.append(
        subprocess.Popen(
            [hotline, "board-publisher"],
            env=env,
            cwd=ROOT,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    )
    deadline = time.monotonic() + 60
    for port in ports:
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/login", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                stop(processes)
                raise RuntimeError("server did not start")
            time.sleep(0.2)
    return ports, processes


def stop(processes):
    for process in processes:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def session_cookie(base, username):
    """Log in through the login page (as a browser does); returns the Cookie header."""
    http = requests.Session()
    page = http.get(f"{base}/login", timeout=10).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    response = http.post(
        f"{base}/login",
        data={"csrf_token": token, "username": username, "password": PASSWORD},
        allow_redirects=False,
        timeout=10,
    )
    if response.status_code != 302:
        raise RuntimeError(f"login of {username} failed: {response.status_code}")
    return "; ".join(f"{k}={v}" for k, v in http.cookies.get_dict().items())


# -- board clients --------------------------------------------------------------------------


def client_process(specs, ready, stop_event, results):
    """Connect ``specs`` [(index, url, room, cookie)] and record until ``stop_event``."""
    import socketio

    clients = []
    records = {}
    errors = []

    for index, url, room, cookie in specs:
        record = {
            "room": room,
            "latencies": [],
            "seen": set(),
            "last": None,
            "updates": 0,
            "catch_ups": 0,
            "as_of": None,
            "newest": 0,
            "connected_before": False,
        }
        records[index] = record
        # A browser checks UTF-8 in native code; websocket-client would do it in pure
        # Python, byte by byte, and the harness would measure itself.
        sio = socketio.Client(
            reconnection=True, websocket_extra_options={"skip_utf8_validation": True}
        )

        # The board's protocol (dashboards/pages/static/board.js): an update names the one
        # before it; when that is not the last one this client got, or after a reconnect,
        # it asks for the tickets after the newest it holds.
        def note(items, record, now):
            for item in items:
                record["newest"] = max(record["newest"], item.get("id") or 0)
                if item["number"] in record["seen"]:
                    continue
                record["seen"].add(item["number"])
                at = dt.datetime.fromisoformat(item["at"]).timestamp()
                record["latencies"].append(now - at)

        def catch_up(sio=sio, record=record):
            record["catch_ups"] += 1

            def answered(answer):
                if answer and answer.get("ok"):
                    note(answer["feed"], record, time.time())

            sio.emit("catch_up", {"after": record["newest"]}, namespace=NS, callback=answered)

        def on_snapshot(data, record=record, catch_up=catch_up):
            record["last"] = data["today"]
            # The room was joined before the snapshot: the next update misses nothing.
            record["as_of"] = None
            for item in data["feed"]:  # what the page showed already: not new
                record["newest"] = max(record["newest"], item.get("id") or 0)
                if record["connected_before"]:
                    note([item], record, time.time())
                else:
                    record["seen"].add(item["number"])
            if record["connected_before"]:
                catch_up()
            record["connected_before"] = True

        def on_update(data, record=record, catch_up=catch_up):
            now = time.time()
            record["updates"] += 1
            record["last"] = data["today"]
            missed = record["as_of"] is not None and data.get("previous") != record["as_of"]
            record["as_of"] = data["as_of"]
            note(data["feed"], record, now)
            if missed:
                catch_up()

        sio.on("snapshot", on_snapshot, namespace=NS)
        sio.on("update", on_update, namespace=NS)
        try:
            sio.connect(
                url,
                namespaces=[NS],
                transports=["websocket"],
                headers={"Cookie": cookie},
                auth={"room": room},
                wait_timeout=30,
            )
        except Exception as exc:  # noqa: BLE001 — counted and reported
            errors.append(f"{index}: {exc}")
        clients.append(sio)
    ready.put(len(specs) - len(errors))
    stop_event.wait()
    results.put(({i: {**r, "seen": sorted(r["seen"])} for i, r in records.items()}, errors))
    results.close()
    results.join_thread()  # the figures are out before any disconnect can hang
    closing = [threading.Thread(target=sio.disconnect, daemon=True) for sio in clients]
    for thread in closing:
        thread.start()
    for thread in closing:
        thread.join(timeout=5)
    os._exit(0)


# -- ticket loader ----------------------------------------------------------------------------


def loader_process(env, rate, seconds, start_at, results):
    """Receive ``rate`` tickets per second for ``seconds`` (one transaction each)."""
    os.environ.update(env)
    from dispatch import operations
    from hotline.enums import Channel, RequestType, Urgency
    from hotline.models import Area, Category, User
    from server.app import create_app
    from server.simulate import CallGenerator

    app = create_app({"CLASSIFIER_PRELOAD": False})
    generator = CallGenerator(random.Random(7))
    bodies = [generator.call() for _ in range(2000)]
    created = []
    lateness = []
    with app.app_context():
        factory = app.extensions["hotline.db"]
        session = factory()
        operator = session.scalars(sa.select(User).where(User.username == "operator")).one()
        categories = {c.code: c for c in session.scalars(sa.select(Category))}
        areas = {a.code: a for a in session.scalars(sa.select(Area))}
        total = int(rate * seconds)
        while time.time() < start_at:
            time.sleep(0.001)
        began = time.time()
        for i in range(total):
            due = began + i / rate
            pause = due - time.time()
            if pause > 0:
                time.sleep(pause)
            else:
                lateness.append(-pause)
            body = bodies[i % len(bodies)]
            ticket, _ = operations.receive(
                session,
                operator,
                channel=Channel(body["channel"]),
                request_type=RequestType(body["request_type"]),
                urgency=Urgency(body["urgency"]),
                category=categories.get(body["category"]),
                title=body["title"],
                content=body["content"],
                requester_name=body.get("requester_name"),
                requester_phone=body.get("requester_phone"),
                address=body.get("address"),
                area=areas.get(body.get("area")),
                suggestion=None,
            )
            number, area = ticket.number, body.get("area") or ""
            session.commit()
            created.append((number, area))
        elapsed = time.time() - began
        session.close()
    results.put({"created": created, "elapsed": elapsed, "max_late_s": max(lateness or [0])})


# -- the run ------------------------------------------------------------------------------------


def database_counts(url, timezone=DEFAULTS["TIMEZONE"]):
    """Today's tickets in the database, city-wide and in DISTRICT (independent SQL)."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)
    local = dt.datetime.now(zone)
    start = dt.datetime(local.year, local.month, local.day, tzinfo=zone).astimezone(dt.UTC)
    engine = make_engine(url)
    with engine.connect() as conn:
        city = conn.execute(
            sa.text("SELECT count(*) FROM tickets WHERE received_at >= :start"), {"start": start}
        ).scalar()
        district = conn.execute(
            sa.text(
                "SELECT count(*) FROM tickets JOIN areas ON areas.id = tickets.area_id "
                "WHERE received_at >= :start AND substr(areas.code, 1, 6) = :code"
            ),
            {"start": start, "code": DISTRICT},
        ).scalar()
    engine.dispose()
    return {"city": city, f"district:{DISTRICT}": district}


def run(args):
    url = args.database_url or fresh_database(args.admin_url, DATABASE_NAME)
    prepare(url)
    channel = f"hotline:bench-board:{uuid.uuid4().hex[:8]}"
    env = server_env(url, args.redis_url, channel, uuid.uuid4().hex)
    # Werkzeug logs a "Bad request" line for each WebSocket closed by a client: keep the
    # servers' noise out of the table, in a file of its own.
    log_path = Path(tempfile.gettempdir()) / f"bench-board-{channel.rsplit(':', 1)[1]}.log"
    log = open(log_path, "w")  # noqa: SIM115 — closed with the servers
    print(f"server logs: {log_path}", file=sys.stderr)
    ports, servers = start_servers(env, args.processes, log)
    try:
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        cookies = {user: session_cookie(bases[0], user) for _, user in ROOMS}
        specs = []
        for index in range(args.clients):
            room, user = ROOMS[index % len(ROOMS)]
            specs.append((index, bases[index % len(bases)], room, cookies[user]))
        ready, results = multiprocessing.Queue(), multiprocessing.Queue()
        stop_event = multiprocessing.Event()
        per = [specs[i :: args.client_processes] for i in range(args.client_processes)]
        clients = [
            multiprocessing.Process(target=client_process, args=(part, ready, stop_event, results))
            for part in per
            if part
        ]
        for process in clients:
            process.start()
        began = time.monotonic()
        connected = sum(ready.get(timeout=600) for _ in clients)
        print(f"{connected} clients connected in {time.monotonic() - began:.1f} s", file=sys.stderr)

        loaded = multiprocessing.Queue()
        start_at = time.time() + 1.0
        loader = multiprocessing.Process(
            target=loader_process, args=(env, args.rate, args.seconds, start_at, loaded)
        )
        loader.start()
        load = loaded.get(timeout=args.seconds * 5 + 120)
        loader.join()
        time.sleep(args.settle)  # the last flush, and a margin for a slow one
        stop_event.set()
        records, errors = {}, []
        for _ in clients:
            got, bad = results.get(timeout=120)
            records.update(got)
            errors.extend(bad)
        for process in clients:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    finally:
        stop(servers)
        log.close()

    in_db = database_counts(url)
    created = load["created"]
    expected = {
        "city": {number for number, _ in created},
        f"district:{DISTRICT}": {number for number, area in created if area.startswith(DISTRICT)},
    }
    latencies, missing, wrong_counts = [], 0, 0
    for record in records.values():
        latencies.extend(record["latencies"])
        missing += len(expected[record["room"]] - set(record["seen"]))
        last = record["last"]
        if last is None or last["received"] != in_db[record["room"]]:
            wrong_counts += 1
    ok = len(latencies)
    return {
        "clients": connected,
        "tickets_per_s": round(len(created) / load["elapsed"], 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if ok else None,
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1) if ok else None,
        "lost": missing + wrong_counts,
        "p90_ms": round(percentile(latencies, 0.90) * 1000, 1) if ok else None,
        "max_ms": round(max(latencies) * 1000, 1) if ok else None,
        "offered_tickets_per_s": args.rate,
        "tickets": len(created),
        "seconds": args.seconds,
        "deliveries": ok,
        "missing_feed_items": missing,
        "clients_with_wrong_counts": wrong_counts,
        "connect_errors": errors[:10],
        "database_today": in_db,
        "updates_per_client": round(statistics.mean(r["updates"] for r in records.values()), 1)
        if records
        else 0,
        # Catch-ups the clients asked for (one after each connect; more means gaps).
        "catch_ups": sum(r["catch_ups"] for r in records.values()),
        "server_processes": args.processes,
        "loader_max_late_s": round(load["max_late_s"], 3),
    }


def print_table(r):
    rows = [
        ("board clients connected", r["clients"]),
        ("server processes (+1 publisher)", r["server_processes"]),
        ("duration (s)", r["seconds"]),
        ("tickets/s offered", r["offered_tickets_per_s"]),
        ("tickets/s achieved", r["tickets_per_s"]),
        ("tickets created", r["tickets"]),
        ("feed deliveries measured", r["deliveries"]),
        ("updates per client", r["updates_per_client"]),
        ("event→client p50 (ms)", r["p50_ms"]),
        ("event→client p90 (ms)", r["p90_ms"]),
        ("event→client p99 (ms)", r["p99_ms"]),
        ("event→client max (ms)", r["max_ms"]),
        ("lost (missing items + wrong counts)", r["lost"]),
        ("today's tickets in database", r["database_today"]),
    ]
    print_rows(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rate", type=float, default=100, help="tickets per second")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--processes", type=int, default=2, help="web server processes")
    parser.add_argument("--client-processes", type=int, default=4)
    parser.add_argument("--settle", type=float, default=3, help="seconds to wait at the end")
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: fresh one)")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    result = run(args)
    print_table(result)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=2))
    return 0 if result["lost"] == 0 and result["clients"] == args.clients else 1


if __name__ == "__main__":
    sys.exit(main())
