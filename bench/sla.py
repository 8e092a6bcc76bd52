"""SLA timer benchmark: the scheduler's tick with a million open tickets on PostgreSQL.

Sets up a fresh PostgreSQL database (migrate + seed), inserts ``--tickets`` open tickets whose
next timers are spread over the coming five days, then measures, with the real engine
(``dispatch.timers``) and the app's sessions, events (Redis when reachable) and inbox:

- a tick that fires 1,000 due timers (1,000 tickets made due, one timer each), median of runs;
- an idle tick (nothing due), median of runs;
- catch-up of 100,000 overdue timers (``run_due`` in batches of 1,000 until drained);
- side by side, in fresh processes: the naive design (one APScheduler job per ticket, 100,000
  tickets, memory job store) against ours (one interval job), start-up time and memory.

    python bench/sla.py                                  # 1,000,000 tickets
    python bench/sla.py --tickets 20000 --catchup 5000   # a quick smoke run
    python bench/sla.py --json bench/results/sla.json

JSON keys: open_tickets, tick_1000_due_ms, idle_tick_ms, catchup_100k_s, naive_100k_start_s,
naive_100k_rss_mb, ours_100k_rss_mb (plus details).
"""

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from bench.intake import DEFAULT_ADMIN_URL, fresh_database
from dispatch import timers
from hotline import migrate, seed
from hotline.enums import TimerKind

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def app_for(url, redis_url=None):
    from server.app import create_app

    return create_app(
        {
            "DATABASE_URL": url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": "bench",
            "CLASSIFIER_ENABLED": False,
            "CLASSIFIER_PRELOAD": False,
            "NOTIFY_SENDERS": "logging",
        }
    )


def redis_if_reachable(url):
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        return url
    except redis.RedisError:
        return None


def load_tickets(app, count):
    """``count`` open (contacted) tickets at street offices, next timers 1 min – 5 days ahead."""
    factory = app.extensions["hotline.db"]
    with factory() as session:
        seed.load_all(session)
        session.commit()
        ids = lambda sql: session.execute(sa.text(sql)).scalars().all()  # noqa: E731
        units = ids("SELECT id FROM units WHERE kind = 'street_office' ORDER BY id")
        category = ids("SELECT id FROM categories WHERE code = '010103'")[0]
        policy = ids("SELECT id FROM sla_policies WHERE name = '一般诉求'")[0]
        user = ids("SELECT id FROM users WHERE username = 'operator'")[0]
    started = time.perf_counter()
    engine = factory.kw["bind"]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """
                INSERT INTO tickets (
                    number, channel, request_type, urgency, category_id, title, content,
                    status, lead_unit_id, received_at, clock_started_at, sign_due,
                    contact_due, finish_due, sla_policy_id, signed_at, contacted_at,
                    created_by_id, version, updated_at, next_due_at, timers_checked_until,
                    escalation_level, reopen_count, scoring_exempt)
                SELECT
                    'BENCH' || lpad(g::text, 9, '0'), 'phone', 'complaint', 'normal', :category,
                    '路灯不亮', '压测工单：小区门口路灯不亮', 'contacted',
                    (:units)[1 + g % cardinality(:units)],
                    s, s, s + interval '2 hours', s + interval '24 hours', s + interval '7 days',
                    :policy, s + interval '10 minutes', s + interval '1 hour',
                    :user, 1, s, :now + make_interval(secs => 60 + (g::bigint * 7919) % 432000),
                    :now, 0, 0, false
                FROM generate_series(1, :count) AS g,
                     LATERAL (SELECT :now - make_interval(secs => g % 259200) AS s) AS t
                """
            ),
            {
                "category": category,
                "units": units,
                "policy": policy,
                "user": user,
                "now": dt.datetime.now(dt.UTC),
                "count": count,
            },
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE tickets"))
    return time.perf_counter() - started


def make_due(app, first_id, count):
    """Tickets ``first_id`` … ``first_id + count - 1`` get exactly one due timer: signing
    overdue one minute ago (the sign warning is already behind the check mark)."""
    now = dt.datetime.now(dt.UTC)
    engine = app.extensions["hotline.db"].kw["bind"]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """
                UPDATE tickets SET
                    status = 'dispatched', signed_at = NULL, contacted_at = NULL,
                    clock_started_at = :now - interval '121 minutes',
                    sign_due = :now - interval '1 minute',
                    contact_due = :now - interval '121 minutes' + interval '24 hours',
                    finish_due = :now + interval '7 days',
                    timers_checked_until = :now - interval '2 minutes',
                    next_due_at = :now - interval '1 minute'
                WHERE id BETWEEN :first AND :last
                """
            ),
            {"now": now, "first": first_id, "last": first_id + count - 1},
        )


def timed_tick(app, settings, batch):
    factory = app.extensions["hotline.db"]
    started = time.perf_counter()
    with factory() as session:
        with session.begin():
            result = timers.tick(session, dt.datetime.now(dt.UTC), settings, batch=batch)
    return (time.perf_counter() - started) * 1000, result


def count_firings(app, kind=None):
    with app.extensions["hotline.db"]() as session:
        query = (
            sa.text("SELECT count(*) FROM timer_firings")
            if kind is None
            else sa.text("SELECT count(*) FROM timer_firings WHERE kind = :kind")
        )
        return session.execute(query, {"kind": kind}).scalar()


def child(mode, url, limit):
    """Run in a fresh process: start one scheduler design, report start-up time and memory."""
    app = app_for(url)
    started = time.perf_counter()
    if mode == "naive":
        from apscheduler.schedulers.background import BackgroundScheduler

        from hotline.models import Ticket

        scheduler = BackgroundScheduler(timezone=app.config["TIMEZONE"])
        with app.extensions["hotline.db"]() as session:
            rows = session.execute(
                sa.select(Ticket.id, Ticket.next_due_at)
                .where(Ticket.next_due_at.is_not(None))
                .order_by(Ticket.id)
                .limit(limit)
            ).all()
        for ticket_id, due in rows:
            scheduler.add_job(
                _naive_fire, "date", run_date=due, args=[ticket_id], id=f"t{ticket_id}"
            )
        scheduler.start()
        jobs = len(scheduler.get_jobs())
    else:
        import threading

        from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED

        from server import scheduler as ours

        ran = threading.Event()
        scheduler = ours.build(app, blocking=False)
        scheduler.add_listener(lambda _event: ran.set(), EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        scheduler.start()
        ran.wait(60)  # the first run (catch-up) has finished
        jobs = len(scheduler.get_jobs())
    elapsed = time.perf_counter() - started
    rss_mb = _rss_mb()
    scheduler.shutdown(wait=False)
    print(json.dumps({"start_s": round(elapsed, 3), "rss_mb": round(rss_mb, 1), "jobs": jobs}))


def _naive_fire(ticket_id):
    """What the naive design would run per ticket (never reached in the benchmark)."""


def _rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_child(mode, url, limit):
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--database-url", url, "--limit", str(limit)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def run(args):
    url = args.database_url or fresh_database(args.admin_url, "hotline_bench_sla")
    migrate.upgrade(url)
    redis_url = redis_if_reachable(args.redis_url) if args.redis_url else None
    app = app_for(url, redis_url)
    settings = timers.Settings.from_config(app.config)
    print(f"loading {args.tickets:,} open tickets …", file=sys.stderr)
    load_s = load_tickets(app, args.tickets)

    # Warm the engine's reference data and calendar, as a running scheduler has them.
    timed_tick(app, settings, args.batch)
    idle = [timed_tick(app, settings, args.batch)[0] for _ in range(args.idle_runs)]

    ticks, fired = [], []
    next_id = 1
    for _ in range(args.tick_runs):
        make_due(app, next_id, 1000)
        next_id += 1000
        ms, result = timed_tick(app, settings, args.batch)
        ticks.append(ms)
        fired.append(result.fired)

    print(f"catch-up of {args.catchup:,} overdue timers …", file=sys.stderr)
    make_due(app, next_id, args.catchup)
    before = count_firings(app)
    started = time.perf_counter()
    total = timers.run_due(app.extensions["hotline.db"], settings, batch=args.batch)
    catchup_s = time.perf_counter() - started
    caught = count_firings(app) - before

    print("naive vs ours in fresh processes …", file=sys.stderr)
    naive = [run_child("naive", url, args.naive) for _ in range(args.child_runs)]
    ours = [run_child("ours", url, args.naive) for _ in range(args.child_runs)]
    med = statistics.median
    result = {
        "open_tickets": args.tickets,
        "tick_1000_due_ms": round(med(ticks), 1),
        "idle_tick_ms": round(med(idle), 2),
        "catchup_100k_s": round(catchup_s, 2),
        "naive_100k_start_s": round(med(r["start_s"] for r in naive), 2),
        "naive_100k_rss_mb": round(med(r["rss_mb"] for r in naive), 1),
        "ours_100k_rss_mb": round(med(r["rss_mb"] for r in ours), 1),
        "ours_start_s": round(med(r["start_s"] for r in ours), 2),
        "naive_jobs": naive[0]["jobs"],
        "ours_jobs": ours[0]["jobs"],
        "tick_1000_due_ms_runs": [round(t, 1) for t in ticks],
        "tick_fired": fired,
        "idle_tick_ms_p90": round(sorted(idle)[int(len(idle) * 0.9)], 2),
        "catchup_timers": args.catchup,
        "catchup_fired": caught,
        "catchup_ticks": -(-total.tickets // args.batch),
        "catchup_max_lateness_s": total.max_lateness,
        "naive_tickets": args.naive,
        "load_s": round(load_s, 1),
        "redis": bool(redis_url),
        "sign_overdue_firings": count_firings(app, TimerKind.sign_overdue.value),
    }
    result["start_ratio"] = round(result["naive_100k_start_s"] / result["ours_start_s"], 1)
    result["rss_ratio"] = round(result["naive_100k_rss_mb"] / result["ours_100k_rss_mb"], 1)
    app.extensions["hotline.db"].kw["bind"].dispose()
    return result


def print_table(r):
    rows = [
        ("open tickets in PostgreSQL", f"{r['open_tickets']:,}", ""),
        ("tick firing 1,000 due timers (median ms)", r["tick_1000_due_ms"], "≤ 200"),
        ("idle tick (median ms)", r["idle_tick_ms"], "≤ 5"),
        (f"catch-up of {r['catchup_timers']:,} overdue timers (s)", r["catchup_100k_s"], "≤ 60"),
        (
            f"naive: {r['naive_tickets']:,} APScheduler jobs, start-up (s)",
            r["naive_100k_start_s"],
            "",
        ),
        ("ours: one interval job, start-up incl. first tick (s)", r["ours_start_s"], ""),
        ("start-up ratio naive / ours", r["start_ratio"], ""),
        ("naive resident memory (MB)", r["naive_100k_rss_mb"], ""),
        ("ours resident memory (MB)", r["ours_100k_rss_mb"], ""),
        ("memory ratio naive / ours", r["rss_ratio"], ""),
    ]
    width = max(len(name) for name, _, _ in rows)
    print(f"| {'figure'.ljust(width)} | measured | target |")
    print(f"|{'-' * (width + 2)}|----------|--------|")
    for name, value, target in rows:
        print(f"| {name.ljust(width)} | {value} | {target} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--catchup", type=int, default=100_000)
    parser.add_argument("--naive", type=int, default=100_000, help="tickets for naive vs ours")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--tick-runs", type=int, default=7)
    parser.add_argument("--idle-runs", type=int, default=51)
    parser.add_argument("--child-runs", type=int, default=3)
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: fresh one)")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="'' to publish nowhere")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--child", choices=["naive", "ours"], help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.database_url, args.limit)
        return 0
    result = run(args)
    print_table(result)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
