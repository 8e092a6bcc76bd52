"""民情分析 report benchmark (issue 16 §5): how long a report takes to compute, part by part.

Two data sets:

- ``--demo PATH``: a database holding the demo history (``hotline seed --history-days 90``,
  SQLite or PostgreSQL URL): every report kind for the newest periods with data;
- ``--tickets N``: a fresh PostgreSQL database with the ranking benchmark's big city and N
  synthetic tickets in October 2026 (``bench/ranking_data.py``), given the seed's categories
  and a few dozen different titles, then the quarterly report of 2026-Q4 (all N tickets in
  the quarter; the previous quarter nearly empty) and the monthly report of 2026-10.

Each report is computed ``--runs`` times (median reported), with the time of each part
(``compute``'s sections, timed by wrapping them).

    python bench/analysis.py --demo sqlite:////tmp/demo.sqlite
    python bench/analysis.py --tickets 1000000 --runs 3 --json bench/results/analysis.json
    python bench/analysis.py --tickets 1000000 --database-url URL --loaded   # measure again
"""

import argparse
import contextlib
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboards import analysis
from hotline import migrate, seed
from hotline.db import make_engine
from hotline.enums import ReportPeriod

TIMEZONE = "Asia/Shanghai"
DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
#: ``compute``'s parts, by the private function computing each.
PARTS = ("_volume", "_hot_issues", "_repeat_callers", "_repeats", "_quality", "_keywords")
TITLES = [
    "小区门口路灯不亮",
    "工地夜间施工噪音扰民",
    "楼道小广告乱贴",
    "污水井冒水",
    "物业不作为",
    "占道经营",
    "公交车不按站停车",
    "拖欠工资",
    "学区划分咨询",
    "医保报销咨询",
    "违章建筑举报",
    "垃圾清运不及时",
    "供暖温度不达标",
    "停车位被占用",
    "餐馆油烟扰民",
    "道路坑洼不平",
    "自来水水压低",
    "噪音扰民",
    "绿化带被毁",
    "外卖电动车乱停",
]


@contextlib.contextmanager
def timed_parts(times):
    """Time each of ``compute``'s parts into ``times`` (name → seconds)."""
    originals = {name: getattr(analysis, name) for name in PARTS}

    def wrap(name, function):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                times[name] = times.get(name, 0.0) + time.perf_counter() - started

        return timed

    for name, function in originals.items():
        setattr(analysis, name, wrap(name, function))
    try:
        yield
    finally:
        for name, function in originals.items():
            setattr(analysis, name, function)


def measure(url, period, runs, as_of):
    engine = make_engine(url)
    totals, parts = [], []
    received = None
    try:
        for _ in range(runs):
            times = {}
            with Session(engine) as session, timed_parts(times):
                started = time.perf_counter()
                report = analysis.compute(session, period, as_of=as_of)
                totals.append(time.perf_counter() - started)
                session.rollback()
            parts.append(times)
            received = (report["totals"]["received"], report["totals"]["previous"])
    finally:
        engine.dispose()
    return {
        "kind": period.kind.value,
        "key": period.key,
        "received": received[0],
        "previous": received[1],
        "seconds": round(statistics.median(totals), 3),
        "runs": [round(t, 3) for t in totals],
        "parts": {
            name.lstrip("_"): round(statistics.median(p.get(name, 0.0) for p in parts), 3)
            for name in PARTS
        },
        "keywords_read": report["keywords"]["current"]["read"]
        + report["keywords"]["previous"]["read"],
    }


def demo(args):
    engine = make_engine(args.demo)
    with engine.connect() as conn:
        newest = conn.scalar(sa.text("SELECT max(received_at) FROM tickets"))
    engine.dispose()
    if isinstance(newest, str):
        newest = dt.datetime.fromisoformat(newest)
    newest = newest.replace(tzinfo=dt.UTC) if newest.tzinfo is None else newest
    as_of = newest + dt.timedelta(minutes=1)
    day = analysis.local_today(newest, TIMEZONE)
    results = []
    for kind in ReportPeriod:
        period = analysis.period_of(kind, day, TIMEZONE)
        results.append(measure(args.demo, period, args.runs, as_of))
    return {"data": "demo history", "url": args.demo, "reports": results}


def synthetic(args):
    from bench.intake import fresh_database
    from bench.ranking_data import AS_OF

    url = args.database_url or fresh_database(args.admin_url, "hotline_bench_analysis")
    started = time.perf_counter()
    if not args.loaded:
        load(url, args.tickets)
    setup = time.perf_counter() - started
    as_of = AS_OF
    results = [
        measure(url, analysis.parse_period("quarterly", "2026-Q4", TIMEZONE), args.runs, as_of),
        measure(url, analysis.parse_period("monthly", "2026-10", TIMEZONE), args.runs, as_of),
    ]
    return {
        "data": f"{args.tickets} synthetic tickets (bench/ranking_data.py)",
        "url": url,
        "setup_s": round(setup, 1),
        "reports": results,
    }


def load(url, tickets):
    """The big city and ``tickets`` tickets, with the seed's categories and varied titles."""
    from bench.ranking_data import SEED, build_city, generate, load_postgres

    migrate.upgrade(url)
    city = build_city()
    data = generate(city, tickets, seed=SEED)
    load_postgres(url, city, data)
    engine = make_engine(url)
    with Session(engine) as session:
        seed.load_categories(session, seed._read(seed.SEED_DIR, "categories.json"))
        session.commit()
    with engine.begin() as conn:
        ids = conn.execute(sa.text("SELECT id FROM categories WHERE level = 3 ORDER BY id")).all()
        ids = [i for (i,) in ids]
        conn.execute(
            sa.text(
                "UPDATE tickets SET "
                "category_id = (CAST(:ids AS integer[]))[1 + (id::bigint * 7919) % :n], "
                "title = (CAST(:titles AS text[]))[1 + (id::bigint * 104729) % :t], "
                "content = (CAST(:titles AS text[]))[1 + (id::bigint * 1299709) % :t]"
                " || '，市民反映情况属实，请尽快处理。'"
            ),
            {"ids": ids, "n": len(ids), "titles": TITLES, "t": len(TITLES)},
        )
        conn.execute(sa.text("ANALYZE tickets"))
    engine.dispose()


def print_table(result):
    print(f"民情分析报告计算用时 — {result['data']}")
    head = f"{'报告':<8}{'期次':<12}{'受理':>10}{'上期':>10}{'用时 s':>9}  分项 s"
    print(head)
    for r in result["reports"]:
        parts = " ".join(f"{k}={v}" for k, v in r["parts"].items())
        print(
            f"{r['kind']:<8}{r['key']:<12}{r['received']:>10}{r['previous']:>10}"
            f"{r['seconds']:>9.3f}  {parts}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", help="URL of a database holding the demo history")
    parser.add_argument("--tickets", type=int, help="synthetic tickets on PostgreSQL")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: fresh)")
    parser.add_argument(
        "--loaded", action="store_true", help="--database-url already holds the tickets"
    )
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    if bool(args.demo) == bool(args.tickets):
        parser.error("give --demo URL or --tickets N")
    result = demo(args) if args.demo else synthetic(args)
    print_table(result)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
