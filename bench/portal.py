"""Citizen portal benchmark: public submissions through HTTP, gunicorn on PostgreSQL.

Each logical submission is what a citizen's phone does: ask for a code
(``POST /citizen/api/v1/codes``), receive it by SMS, and submit the request with it
(``POST /citizen/api/v1/requests``, a fresh ``Idempotency-Key``). The SMS goes through the
real path — the outbox, its delivery thread and the HTTP SMS sender — to a gateway this
script runs on a local port, which reads the code out of the text and hands it to the
waiting client: the benchmark is "the test's own sender".

Every submission uses a phone of its own (the per-phone rules: one code a minute, ten a day),
and the per-address rules are raised for the one address all clients share (the table says
so): the limits stay on and are counted, in Redis when ``--redis-url`` is given.

Prints a table; ``--json PATH`` writes ``{"submissions_per_s", "p50_ms", "p99_ms",
"errors"}`` (the submit request's latency; the code request's and the whole flow's beside).

    python bench/portal.py                       # 30 s, 16 clients
    python bench/portal.py --seconds 10 --json ci-artifacts/portal-smoke.json
"""

import argparse
import http.client
import http.server
import json
import os
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from bench import intake
from bench.intake import (
    DEFAULT_ADMIN_URL,
    default_model,
    free_port,
    fresh_database,
    group_cpu_seconds,
    percentile,
    print_rows,
)
from hotline import migrate, seed, settings
from hotline.db import make_engine
from hotline.models import OutboxMessage, Ticket

CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")
#: What the citizens write (real kinds of 12345 requests, varied a little per submission).
REQUESTS = [
    ("complaint", "小区门口的路灯坏了一个多星期，晚上出行很不方便，请尽快维修。"),
    ("complaint", "楼下烧烤店每天营业到凌晨两点，油烟和噪音严重影响休息。"),
    ("help", "家里停水两天了，物业说是市政管网的问题，请帮忙协调恢复供水。"),
    ("report", "有人在河道边倾倒建筑垃圾，已经堆了很大一片。"),
    ("consult", "请问新生儿医保怎么办理，需要带哪些材料？"),
    ("suggestion", "建议在学校门口的路口增设红绿灯，上下学时段车辆很多很危险。"),
    ("complaint", "公交车站的站牌被撞坏了，看不清线路信息。"),
    ("help", "小区电梯经常故障停运，老人上下楼困难，物业一直不修。"),
]
ADDRESSES = [
    "奎文区东关街道",
    "潍城区城关街道",
    "高新区新城街道",
    "寒亭区寒亭街道",
    "坊子区凤凰街道",
]


class Gateway(http.server.ThreadingHTTPServer):
    """A local SMS gateway: takes what the HTTP SMS sender posts and keeps each phone's
    latest code for the client waiting on it."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), GatewayHandler)
        self.codes = {}
        self.condition = threading.Condition()
        self.received = 0

    def wait_code(self, phone, timeout):
        deadline = time.monotonic() + timeout
        with self.condition:
            while phone not in self.codes:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.condition.wait(left)
            return self.codes.pop(phone)


class GatewayHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Keep-alive: the answer's header and body go out at once, not held by Nagle's algorithm
    # until the sender's delayed ACK (40 ms a text).
    disable_nagle_algorithm = True

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        match = CODE.search(body.get("content", ""))
        with self.server.condition:
            self.server.received += 1
            if match:
                for phone in body.get("mobiles", []):
                    self.server.codes[phone] = match.group(1)
            self.server.condition.notify_all()
        answer = b'{"code": 0}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def prepare(url):
    """Migrate and seed; raise the per-address daily code limit (every client is one
    address here) to its maximum."""
    migrate.upgrade(url)
    engine = make_engine(url)
    with sessionmaker(bind=engine)() as session:
        seed.load_all(session)
        limit = settings.DEFINITIONS["citizen.codes_per_address_daily"].maximum
        settings.update(session, None, {"citizen.codes_per_address_daily": int(limit)})
        session.commit()
    engine.dispose()


def start_server(url, port, workers, threads, models_dir, gateway_url, redis_url):
    return intake.start_server(
        url,
        port,
        workers,
        threads,
        models_dir,
        env={
            "HOTLINE_REDIS_URL": redis_url or "",
            "HOTLINE_RATELIMIT_KEY_PREFIX": f"hotline-limits:bench:{uuid.uuid4().hex}",
            # One address stands for every citizen here: its rules are raised, not off.
            "HOTLINE_LIMIT_CITIZEN_CODES": "100000 per minute",
            "HOTLINE_LIMIT_CITIZEN_SUBMIT": "100000 per minute",
            # Citizens' texts go to this script's gateway through the real HTTP SMS sender.
            "HOTLINE_NOTIFY_SMS_SENDER": "http",
            "HOTLINE_NOTIFY_SMS_URL": gateway_url,
        },
    )


def post(conn, path, body, headers=None):
    data = json.dumps(body, ensure_ascii=False).encode()
    began = time.perf_counter()
    conn.request(
        "POST", path, body=data, headers={"Content-Type": "application/json", **(headers or {})}
    )
    response = conn.getresponse()
    answer = response.read()
    return response.status, answer, time.perf_counter() - began


class Client(threading.Thread):
    """One citizen after another on one keep-alive connection until ``stop_at``."""

    def __init__(self, index, port, gateway, phones, start_at, stop_at, record):
        super().__init__()
        self.index, self.port, self.gateway = index, port, gateway
        self.phones, self.start_at, self.stop_at = phones, start_at, stop_at
        self.record = record
        self.submit_ms, self.code_ms, self.flow_ms, self.errors = [], [], [], []

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        n = 0
        while time.time() < self.start_at:
            time.sleep(0.001)
        while time.time() < self.stop_at:
            phone = next(self.phones)
            kind, text = REQUESTS[(self.index + n) % len(REQUESTS)]
            address = ADDRESSES[n % len(ADDRESSES)]
            n += 1
            began = time.perf_counter()
            try:
                status, answer, took = post(
                    conn, "/citizen/api/v1/codes", {"phone": phone, "purpose": "submit"}
                )
                if status != 200:
                    self.errors.append(f"code {status} {answer[:120]!r}")
                    continue
                self.code_ms.append(took)
                code = self.gateway.wait_code(phone, timeout=30)
                if code is None:
                    self.errors.append("no SMS within 30 s")
                    continue
                body = {
                    "request_type": kind,
                    "content": f"{text}（{address}）",
                    "address": address,
                    "name": "张先生" if n % 3 else None,
                    "phone": phone,
                    "code": code,
                    "channel": "app",
                }
                status, answer, took = post(
                    conn,
                    "/citizen/api/v1/requests",
                    body,
                    {"Idempotency-Key": uuid.uuid4().hex},
                )
                if status != 201:
                    self.errors.append(f"submit {status} {answer[:120]!r}")
                    continue
                self.submit_ms.append(took)
                self.flow_ms.append(time.perf_counter() - began)
                if self.record is not None:
                    self.record.append(json.loads(answer)["data"]["number"])
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(type(exc).__name__)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)


def phone_numbers(prefix):
    """Mobile numbers no other run of this script uses at the same time."""
    for n in range(10**6):
        yield f"{prefix}{n:06d}"


class Phones:
    def __init__(self, prefix):
        self._numbers = phone_numbers(prefix)
        self._lock = threading.Lock()

    def __iter__(self):
        return self

    def __next__(self):
        with self._lock:
            return next(self._numbers)


def run_clients(port, gateway, phones, clients, seconds):
    start_at = time.time() + 0.5
    stop_at = start_at + seconds
    numbers = []
    threads = [Client(i, port, gateway, phones, start_at, stop_at, numbers) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return threads, numbers


def run(args):
    url = args.database_url or fresh_database(args.admin_url, "hotline_bench_portal")
    prepare(url)
    gateway = Gateway()
    threading.Thread(target=gateway.serve_forever, daemon=True).start()
    gateway_url = f"http://127.0.0.1:{gateway.server_address[1]}/sms"
    models_dir = tempfile.mkdtemp(prefix="hotline-bench-models-")
    default_model(models_dir)
    port = free_port()
    server = start_server(
        url, port, args.workers, args.threads, models_dir, gateway_url, args.redis_url
    )
    try:
        # Warm-up: every worker's first requests (the model, the gazetteer, connections).
        run_clients(port, gateway, Phones("13700"), 4, args.warmup)
        cpu_before = group_cpu_seconds(server.pid)
        threads, numbers = run_clients(port, gateway, Phones("13900"), args.clients, args.seconds)
        cpu_after = group_cpu_seconds(server.pid)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        gateway.shutdown()

    submit = [t for c in threads for t in c.submit_ms]
    codes = [t for c in threads for t in c.code_ms]
    flows = [t for c in threads for t in c.flow_ms]
    errors = [e for c in threads for e in c.errors]
    engine = make_engine(url)
    with engine.connect() as conn:
        stored = (
            conn.scalar(
                sa.select(sa.func.count()).select_from(Ticket).where(Ticket.number.in_(numbers))
            )
            if numbers
            else 0
        )
        receipts = conn.scalar(
            sa.select(sa.func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.kind == "citizen_received")
        )
    engine.dispose()
    ok = len(submit)

    def ms(values, fraction=None):
        if not values:
            return None
        value = statistics.median(values) if fraction is None else percentile(values, fraction)
        return round(value * 1000, 2)

    return {
        "submissions": ok,
        "submissions_per_s": round(ok / args.seconds, 1),
        "p50_ms": ms(submit),
        "p99_ms": ms(submit, 0.99),
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:10],
        "code_p50_ms": ms(codes),
        "code_p99_ms": ms(codes, 0.99),
        "flow_p50_ms": ms(flows),
        "flow_p99_ms": ms(flows, 0.99),
        "stored": stored,
        "receipt_texts": receipts,
        "sms_received_by_gateway": gateway.received,
        "server_cpu_ms_per_submission": round((cpu_after - cpu_before) * 1000 / ok, 2)
        if ok and cpu_before is not None
        else None,
        "load_average": round(os.getloadavg()[0], 1),
        "seconds": args.seconds,
        "clients": args.clients,
        "gunicorn": f"{args.workers} workers × {args.threads} threads (gthread)",
        "rate_limit_counters": "redis" if args.redis_url else "memory",
    }


def print_table(r):
    print_rows(
        [
            ("submissions (code → SMS → submit)", r["submissions"]),
            ("duration (s)", r["seconds"]),
            ("concurrent citizens", r["clients"]),
            ("server", r["gunicorn"]),
            ("rate-limit counters", r["rate_limit_counters"]),
            ("submissions/s", r["submissions_per_s"]),
            ("submit latency p50 (ms)", r["p50_ms"]),
            ("submit latency p99 (ms)", r["p99_ms"]),
            ("code request p50 / p99 (ms)", f"{r['code_p50_ms']} / {r['code_p99_ms']}"),
            ("whole flow p50 / p99 (ms)", f"{r['flow_p50_ms']} / {r['flow_p99_ms']}"),
            ("server CPU per submission (ms)", r["server_cpu_ms_per_submission"]),
            ("load average at the end", r["load_average"]),
            ("errors", r["errors"]),
            ("submissions stored (checked in the database)", r["stored"]),
            ("texts received by the gateway (incl. warm-up)", r["sms_received_by_gateway"]),
        ]
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=6)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--database-url", help="an empty PostgreSQL database")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    result = run(args)
    print_table(result)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=2))
    return 0 if result["errors"] == 0 and result["stored"] == result["submissions"] else 1


if __name__ == "__main__":
    sys.exit(main())
