"""Intake benchmark: tickets created through the real HTTP API, gunicorn on PostgreSQL.

Sets up a fresh PostgreSQL database (migrate + seed), starts gunicorn with several workers,
then several client processes post realistic calls (``server.simulate.CallGenerator``) over
keep-alive connections for a fixed time. Prints a table; ``--json PATH`` writes
``{"tickets_per_s", "p50_ms", "p99_ms", "errors", "tickets"}`` (plus details).

Suggestions (``--suggestions``): by default every ticket carries one, as at a real console:
the client asks ``POST /api/v1/suggest`` for each call while it is "typed" (before the timed
run, as the operator's typing precedes the submit) and hands the signed answer back in the
ticket's ``suggestion`` member, so the server checks it instead of classifying again
(``reuse``). ``server`` sends no suggestion and the server computes it at receive; ``off``
disables the classifier. A share of the calls (``--blank-area``) leaves the area empty, as
operators do, so that receive fills it from the suggested place.

    python bench/intake.py                      # 30 s, 3 workers × 2 threads, 8 clients
    python bench/intake.py --seconds 60 --json bench/results/intake.json
    python bench/intake.py --database-url sqlite:////tmp/intake.sqlite   # SQLite
"""

import argparse
import http.client
import json
import multiprocessing
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from classifier import artefact, training
from hotline import migrate, seed
from hotline.auth import token_hash
from hotline.db import make_engine
from hotline.enums import Role
from hotline.models import ApiToken, Ticket, User
from server.simulate import CallGenerator

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SUGGESTION_MODES = {
    "reuse": "on, handed back by the client (signed)",
    "server": "on, computed by the server at receive",
    "off": "off",
}


def fresh_database(admin_url, name):
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def prepare(url):
    """Migrate, seed, and make a bench operator; returns its API token."""
    migrate.upgrade(url)
    engine = make_engine(url)
    with sessionmaker(bind=engine)() as session:
        seed.load_all(session)
        user = User(username=f"bench_{uuid.uuid4().hex[:6]}", name="压测坐席", role=Role.operator)
        user.set_password(uuid.uuid4().hex)
        session.add(user)
        session.flush()
        token = "bench_" + uuid.uuid4().hex
        session.add(ApiToken(user_id=user.id, token_hash=token_hash(token), label="bench"))
        session.commit()
    engine.dispose()
    return token


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_model(models_dir):
    """Intake runs the classifier on every ticket, as in production: give it the default model."""
    bundle, meta = training.train_default()
    artefact.save(bundle, models_dir, meta, activate=True)


def start_server(url, port, workers, threads, models_dir, classifier=True, env=None):
    """gunicorn serving the application on ``url``; ``env``: more configuration (without it
    no Redis). Returns once it answers."""
    base = dict(
        os.environ,
        HOTLINE_DATABASE_URL=url,
        HOTLINE_SECRET_KEY=uuid.uuid4().hex,
        HOTLINE_CLASSIFIER_MODELS_DIR=str(models_dir),
        HOTLINE_CLASSIFIER_ENABLED="true" if classifier else "false",
    )
    base.pop("HOTLINE_REDIS_URL", None)
    env = {**base, **(env or {})}
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(threads),
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "server.app:create_app()",
    ]
    server = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 120  # a loaded machine may take a while to import the workers
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/login")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("gunicorn did not start")


def client_process(port, token, bodies, start_at, stop_at, threads, queue):
    """One client process: ``threads`` keep-alive connections posting until ``stop_at``."""
    import threading

    latencies = []
    errors = []
    lock = threading.Lock()

    def loop(index):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine, bad = [], []
        i = index
        while time.time() < start_at:
            time.sleep(0.001)
        while time.time() < stop_at:
            body = bodies[i % len(bodies)]
            i += threads
            headers = {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Idempotency-Key": uuid.uuid4().hex,
            }
            began = time.perf_counter()
            try:
                conn.request("POST", "/api/v1/tickets", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                elapsed = time.perf_counter() - began
                if response.status == 201:
                    mine.append(elapsed)
                else:
                    bad.append(response.status)
            except (OSError, http.client.HTTPException) as exc:
                bad.append(type(exc).__name__)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    workers = [threading.Thread(target=loop, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    queue.put((latencies, errors))


def group_cpu_seconds(pgid):
    """CPU seconds (user + system) used so far by the live processes of a process group
    (the server's master and workers), from /proc; None where there is no /proc."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, …
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def calls(count, blank_area, seed=20261204):
    """``count`` call bodies; a ``blank_area`` share without an area."""
    generator = CallGenerator()
    rng = random.Random(seed)
    bodies = []
    for _ in range(count):
        body = generator.call()
        if rng.random() < blank_area:
            del body["area"]
        bodies.append(body)
    return bodies


def with_suggestions(port, token, bodies, threads=4):
    """Each body with the signed suggestion ``POST /api/v1/suggest`` answers for its text
    (what the console receives while the operator types)."""
    import threading

    out = [None] * len(bodies)

    def work(index):
        # Generous: the first request of each worker loads the model and the gazetteer.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for i in range(index, len(bodies), threads):
            body = bodies[i]
            ask = {"content": body["content"], "address": body.get("address")}
            conn.request("POST", "/api/v1/suggest", body=json.dumps(ask), headers=headers)
            response = conn.getresponse()
            answer = json.loads(response.read())
            if response.status != 200:
                raise RuntimeError(f"suggest failed: {response.status} {answer}")
            out[i] = {**body, "suggestion": answer["data"]}
        conn.close()

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if any(body is None for body in out):
        raise RuntimeError("could not fetch every suggestion")
    return out


def run(args):
    if args.database_url and args.database_url.startswith("sqlite"):
        url = args.database_url
        database = sa.make_url(url).database
        for suffix in ("", "-wal", "-shm"):  # a stale write-ahead log would outlive the file
            Path(database + suffix).unlink(missing_ok=True)
    else:
        url = args.database_url or fresh_database(args.admin_url, "hotline_bench_intake")
    token = prepare(url)
    calls_made = calls(args.calls, args.blank_area)
    port = free_port()
    models_dir = tempfile.mkdtemp(prefix="hotline-bench-models-")
    default_model(models_dir)
    classifier = args.suggestions != "off"
    server = start_server(url, port, args.workers, args.threads, models_dir, classifier)
    try:
        if args.suggestions == "reuse":
            calls_made = with_suggestions(port, token, calls_made)
        bodies = [json.dumps(body, ensure_ascii=False).encode() for body in calls_made]
        # Warm-up: connections, caches, the first requests of every worker.
        warm = multiprocessing.Queue()
        now = time.time()
        client_process(port, token, bodies, now, now + args.warmup, 4, warm)
        warm.get()

        cpu_before = group_cpu_seconds(server.pid)
        queue = multiprocessing.Queue()
        start_at = time.time() + 1.0
        stop_at = start_at + args.seconds
        per_process = max(1, args.clients // args.client_processes)
        processes = [
            multiprocessing.Process(
                target=client_process,
                args=(port, token, bodies, start_at, stop_at, per_process, queue),
            )
            for _ in range(args.client_processes)
        ]
        for p in processes:
            p.start()
        latencies, errors = [], []
        for _ in processes:
            got, bad = queue.get()
            latencies.extend(got)
            errors.extend(bad)
        for p in processes:
            p.join()
        cpu_after = group_cpu_seconds(server.pid)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    engine = make_engine(url)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(Ticket)).scalar()
        filled = conn.execute(
            sa.select(sa.func.count()).select_from(Ticket).where(Ticket.area_source == "suggested")
        ).scalar()
    engine.dispose()
    ok = len(latencies)
    result = {
        "tickets": ok,
        "tickets_per_s": round(ok / args.seconds, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2) if ok else None,
        "p90_ms": round(percentile(latencies, 0.90) * 1000, 2) if ok else None,
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2) if ok else None,
        "max_ms": round(max(latencies) * 1000, 2) if ok else None,
        "server_cpu_ms_per_ticket": round((cpu_after - cpu_before) * 1000 / ok, 2)
        if ok and cpu_before is not None
        else None,
        "load_average": round(os.getloadavg()[0], 1),
        "errors": len(errors),
        "error_kinds": sorted({str(e) for e in errors}),
        "stored_in_database": stored,
        "seconds": args.seconds,
        "clients": per_process * args.client_processes,
        "gunicorn": f"{args.workers} workers × {args.threads} threads (gthread)",
        "suggestions": args.suggestions,
        "blank_area": args.blank_area,
        "area_filled_from_suggestion": filled,
        "database": sa.make_url(url).get_backend_name(),
    }
    return result


def print_table(r):
    rows = [
        ("tickets created", r["tickets"]),
        ("duration (s)", r["seconds"]),
        ("concurrent clients", r["clients"]),
        ("server", r["gunicorn"]),
        ("database", r["database"]),
        ("suggestions", SUGGESTION_MODES[r["suggestions"]]),
        ("calls with a blank area", f"{r['blank_area']:.0%}"),
        ("tickets/s", r["tickets_per_s"]),
        ("latency p50 (ms)", r["p50_ms"]),
        ("latency p90 (ms)", r["p90_ms"]),
        ("latency p99 (ms)", r["p99_ms"]),
        ("latency max (ms)", r["max_ms"]),
        ("server CPU per ticket (ms, all workers)", r["server_cpu_ms_per_ticket"]),
        ("load average at the end (other work too)", r["load_average"]),
        ("errors", r["errors"]),
        ("tickets in database (incl. warm-up)", r["stored_in_database"]),
        ("of which area filled from the suggestion", r["area_filled_from_suggestion"]),
    ]
    print_rows(rows)


def print_rows(rows):
    """A two-column Markdown table of (metric, value) rows (pasted into closing notes)."""
    width = max(len(name) for name, _ in rows)
    print(f"| {'metric'.ljust(width)} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=8)
    # One worker process per core, each with threads to overlap database waits: on this
    # 2-core machine 2 × 4 measured 316 tickets/s against 289 for 3 × 2 and 281 for 4 × 2.
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument(
        "--database-url",
        help="an empty PostgreSQL database, or a SQLite file (replaced) "
        "(default: a fresh PostgreSQL database)",
    )
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument(
        "--suggestions",
        choices=sorted(SUGGESTION_MODES),
        default="reuse",
        help="reuse: the client hands back the suggestion it got while typing (default); "
        "server: the server computes it at receive; off: classifier disabled",
    )
    parser.add_argument(
        "--no-classifier",
        dest="suggestions",
        action="store_const",
        const="off",
        help="the same as --suggestions off",
    )
    parser.add_argument("--calls", type=int, default=1000, help="distinct call bodies")
    parser.add_argument(
        "--blank-area", type=float, default=0.5, help="share of calls without an area"
    )
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    result = run(args)
    print_table(result)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=2))
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
