"""Early-warning scan benchmark: what one scheduler scan (``dashboards.warnings.run``) costs
on a database of a million tickets.

Fills a fresh PostgreSQL database (migrated and seeded; ``--url``, default a database
``bench_warnings`` on the local server, dropped and created again) with ``--tickets``
tickets received over the 90 days before a fixed moment, in one ``INSERT … SELECT`` (random
level-3 categories, random grids, a daytime-heavy hour of day; nothing else about them
matters to the detectors), plus a burst main in one street in the last two hours (so the
baseline query runs) and seven calls at one community in the last half hour. Then times
``run`` at that moment (each run rolled back, so every one does the same work): wall time,
statements, rows read for the window; and the baseline query's plan (``EXPLAIN ANALYZE``).

    python bench/warnings.py                    # 1,000,000 tickets, 5 scans
    python bench/warnings.py --tickets 100000   # smoke
"""

import argparse
import datetime as dt
import json
import statistics
import sys
import time

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from dashboards import warnings
from hotline import migrate, seed, settings
from hotline.config import DEFAULTS
from hotline.db import make_engine

DEFAULT_SUDDEN = settings.DEFINITIONS["warning.sudden_count"].default
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_warnings"
#: Saturday 5 December 2026, 10:00 in Weifang.
NOW = dt.datetime(2026, 12, 5, 2, 0, tzinfo=dt.UTC)
#: Share of a day's calls by local hour (the demo history's profile).
HOURS = (
    0.3, 0.2, 0.15, 0.1, 0.1, 0.2, 0.6, 1.6, 3.6, 5.2, 5.4, 4.6,
    2.8, 3.0, 4.4, 4.8, 4.4, 3.6, 2.4, 2.0, 1.8, 1.4, 0.9, 0.5,
)  # fmt: skip


def fresh_database(url):
    base = make_url(url)
    admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{base.database}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{base.database}"'))
    admin.dispose()
    migrate.upgrade(url)
    engine = make_engine(url)
    with sessionmaker(bind=engine)() as session:
        seed.load_all(session)
        session.commit()
    return engine


def fill(engine, count):
    """``count`` tickets over the 90 days before NOW, in one statement."""
    # The hour of day from a uniform draw through the cumulative profile.
    total = sum(HOURS)
    edges, running = [], 0.0
    for weight in HOURS:
        running += weight / total
        edges.append(round(running, 6))
    hour = "CASE " + " ".join(f"WHEN h < {e} THEN {i}" for i, e in enumerate(edges)) + " END"
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"""
                WITH cats AS (SELECT array_agg(id) AS ids FROM categories WHERE level = 3),
                     grids AS (SELECT array_agg(id) AS ids FROM areas WHERE level = 'grid'),
                     op AS (SELECT id FROM users WHERE username = 'operator'),
                     draws AS (
                       SELECT g, random() AS h, floor(random() * 91)::int AS d,
                              random() AS m, random() AS c, random() AS a
                       FROM generate_series(1, :count) AS g)
                INSERT INTO tickets (channel, request_type, urgency, title, content, status,
                                     received_at, reopen_count, scoring_exempt, created_by_id,
                                     version, updated_at, escalation_level, lead_history,
                                     likes, category_id, area_id)
                SELECT 'phone', 'complaint', 'normal', '压力测试工单', '压力测试内容', 'received',
                       t.at, 0, false, op.id, 1, t.at, 0, false, 0,
                       cats.ids[1 + floor(c * array_length(cats.ids, 1))::int],
                       grids.ids[1 + floor(a * array_length(grids.ids, 1))::int]
                FROM draws, cats, grids, op,
                     LATERAL (SELECT (date_trunc('day', :now AT TIME ZONE 'Asia/Shanghai')
                                      - make_interval(days => d)
                                      + make_interval(hours => {hour})
                                      + make_interval(secs => m * 3600))
                                     AT TIME ZONE 'Asia/Shanghai' AS at) t
                WHERE t.at < :now
                """
            ),
            {"count": count, "now": NOW},
        )
        # A burst main in 东关街道 (12 calls in four hours), a power cut at 中学街社区 (seven
        # in half an hour).
        for minutes, category, area, n in (
            (240, "010201", "370705001004001", 12),
            (30, "010301", "370705001001001", 7),
        ):
            conn.execute(
                sa.text(
                    """
                    INSERT INTO tickets (channel, request_type, urgency, title, content, status,
                                         received_at, reopen_count, scoring_exempt,
                                         created_by_id, version, updated_at, escalation_level,
                                         lead_history, likes, category_id, area_id)
                    SELECT 'phone', 'complaint', 'normal', '压力测试', '压力测试', 'received',
                           :now - (g * :step) * interval '1 minute', 0, false,
                           (SELECT id FROM users WHERE username = 'operator'), 1, :now, 0,
                           false, 0, (SELECT id FROM categories WHERE code = :category),
                           (SELECT id FROM areas WHERE code = :area)
                    FROM generate_series(1, :n) AS g
                    """
                ),
                {
                    "now": NOW,
                    "step": minutes / n,
                    "category": category,
                    "area": area,
                    "n": n,
                },
            )
        conn.execute(sa.text("ANALYZE tickets"))
    return time.perf_counter() - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--sudden-count",
        type=int,
        help="warning.sudden_count for the run (a city's administrators set it to its size: "
        "a million tickets in 90 days on the demo's 117 communities is ~95 calls per "
        "community a day, ~9 in a peak hour, so the default 5 fires everywhere)",
    )
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    engine = fresh_database(args.url)
    filled = fill(engine, args.tickets)
    if args.sudden_count:
        with sessionmaker(bind=engine)() as session:
            settings.update(session, None, {"warning.sudden_count": args.sudden_count})
            session.commit()
    statements = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    factory = sessionmaker(bind=engine)
    # Scans that raise (each rolled back, so every one raises the same warnings).
    times, counts, found = [], [], None
    for _ in range(args.runs):
        session = factory()
        statements.clear()
        started = time.perf_counter()
        result = warnings.run(session, NOW, config=DEFAULTS)
        times.append(time.perf_counter() - started)
        counts.append(len(statements))
        found = sorted(f"{w.kind.value} {w.subject} {w.observed}" for w in result.raised)
        session.rollback()
        session.close()
    # The steady state: the first scan committed, the next ones find nothing new.
    session = factory()
    warnings.run(session, NOW, config=DEFAULTS)
    session.commit()
    steady, steady_counts = [], []
    for _ in range(args.runs):
        statements.clear()
        started = time.perf_counter()
        result = warnings.run(session, NOW, config=DEFAULTS)
        steady.append(time.perf_counter() - started)
        steady_counts.append(len(statements))
        assert not result.raised and not result.updated
        session.rollback()
    session.close()
    with engine.connect() as conn:
        total = conn.scalar(sa.text("SELECT count(*) FROM tickets"))
        window = conn.scalar(
            sa.text("SELECT count(*) FROM tickets WHERE received_at >= :a AND received_at < :b"),
            {"a": NOW - dt.timedelta(hours=3), "b": NOW},
        )
    report = {
        "tickets": total,
        "fill_s": round(filled, 1),
        "window_rows": window,
        "scan_ms_median": round(statistics.median(times) * 1000, 1),
        "scan_ms_max": round(max(times) * 1000, 1),
        "statements": counts[-1],
        "steady_scan_ms_median": round(statistics.median(steady) * 1000, 1),
        "steady_statements": steady_counts[-1],
        "raised": found,
        "sudden_count": args.sudden_count or DEFAULT_SUDDEN,
        "runs": args.runs,
    }
    width = max(len(k) for k in report)
    for key, value in report.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, ensure_ascii=False, indent=1)
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
