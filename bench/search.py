"""Search benchmark (工单查询): the search page's two queries (the count and the first page of
50, newest first, with its names) over a year of tickets on PostgreSQL.

Sets up a fresh PostgreSQL database with the ranking benchmark's synthetic city and tickets
(``bench/ranking_data.py``: 16 districts, 343 streets, units, assignments), spreads them over
the year before 2026-11-01 and gives them the seed corpus's titles, texts and addresses
(``seed_data/corpus/messages.jsonl``, each with a serial so no two are equal). Then times
``dispatch.filters.ticket_query`` + ``Page.of`` exactly as the page runs them, for typical
searches and scopes; median of ``--runs``.

Words are matched with LIKE '%…%' (case ignored), which no B-tree index serves: the figures
say how far a sequential read of the candidates carries before a trigram index is worth a
migration and an extension.

    python bench/search.py                          # 300,000 tickets, 5 runs
    python bench/search.py --tickets 20000 --runs 1   # smoke
    python bench/search.py --json bench/results/search.json

JSON keys: tickets, load_s, and per search: name, total, median_ms, runs_ms.
"""

import argparse
import datetime as dt
import json
import statistics
import time
from pathlib import Path
from types import SimpleNamespace

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench.intake import fresh_database, print_rows
from bench.ranking_data import build_city, generate, load_postgres
from dispatch import schemas
from dispatch.filters import ticket_query
from hotline import migrate
from hotline.db import make_engine
from hotline.enums import Role
from hotline.models import Ticket
from hotline.schemas import Page

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DATABASE_NAME = "hl_bench_search"
NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
TIMEZONE = "Asia/Shanghai"
STREETS = ["胜利东街", "东风街", "四平路", "北海路", "鸢飞路", "健康街", "福寿街", "新华路"]


def load(url, n):
    migrate.upgrade(url)
    city = build_city()
    data = generate(city, n)
    started = time.perf_counter()
    load_postgres(url, city, data)
    messages = [
        json.loads(line)
        for line in (ROOT / "seed_data/corpus/messages.jsonl").read_text("utf-8").splitlines()
        if line.strip()
    ]
    titles = [m.get("title") or m["text"][:20] for m in messages]
    texts = [m["text"] for m in messages]
    engine = make_engine(url)
    with engine.begin() as conn:
        # A year of history, newest on 2026-10-31; every text and address its own.
        conn.execute(
            sa.text(
                """
                UPDATE tickets SET
                  received_at = received_at - make_interval(days => ((id % 335) * 7919) % 335),
                  title = (CAST(:titles AS text[]))[1 + id % :n],
                  content = (CAST(:texts AS text[]))[1 + (id * 31) % :n] || '（' || id || '）',
                  address = (CAST(:streets AS text[]))[1 + id % :s] || (id % 500) || '号'
                """
            ),
            {"titles": titles, "texts": texts, "streets": STREETS, "n": len(texts), "s": 8},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE tickets"))
    engine.dispose()
    return time.perf_counter() - started


def searches(engine):
    """(name, actor, query arguments) of the searches timed."""
    with engine.connect() as conn:
        district_id, district = conn.execute(
            sa.text("SELECT id, code FROM areas WHERE level = 'district' ORDER BY code LIMIT 1")
        ).one()
        unit_id = conn.execute(
            sa.text(
                "SELECT lead_unit_id FROM tickets WHERE lead_unit_id IS NOT NULL "
                "GROUP BY lead_unit_id ORDER BY count(*) DESC LIMIT 1"
            )
        ).scalar()
        number, phone = conn.execute(
            sa.text(
                "SELECT number, requester_phone FROM tickets "
                "WHERE requester_phone IS NOT NULL ORDER BY id LIMIT 1 OFFSET 777"
            )
        ).one()
    city_leader = SimpleNamespace(id=0, role=Role.leader, district_id=None)
    district_leader = SimpleNamespace(id=0, role=Role.leader, district_id=district_id)
    supervisor = SimpleNamespace(id=0, role=Role.supervisor, district_id=None)
    handler = SimpleNamespace(id=0, role=Role.unit_handler, unit_id=unit_id, district_id=None)
    month = {"received_from": "2026-10-01", "received_to": "2026-10-31"}
    week = {"received_from": "2026-10-25", "received_to": "2026-10-31"}
    return [
        ("no filter (newest 50)", city_leader, {}),
        ("one word, whole year", city_leader, {"q": "路灯"}),
        ("two words, whole year", city_leader, {"q": "噪音 晚上"}),
        ("rare word, whole year", city_leader, {"q": "鸢飞路"}),
        ("one word, one month", city_leader, {"q": "路灯", **month}),
        ("two words, one week", city_leader, {"q": "小区 停水", **week}),
        ("whole number", city_leader, {"number": number}),
        ("part of a number", city_leader, {"number": number[-8:]}),
        ("phone", supervisor, {"phone": phone}),
        (
            "status + district + month",
            city_leader,
            {"status": "finished", "area": district, **month},
        ),
        ("overdue", city_leader, {"overdue": "1"}),
        ("district leader, one word", district_leader, {"q": "路灯"}),
        ("unit handler, one word", handler, {"q": "路灯"}),
    ]


def time_search(engine, actor, args, runs):
    times, total = [], None
    for _ in range(runs + 1):  # the first run warms the cache and is not counted
        with Session(engine) as session:
            started = time.perf_counter()
            errors = {}
            query = ticket_query(args, actor, now=NOW, timezone=TIMEZONE, errors=errors)
            assert not errors, errors
            total, rows = Page(1, 50).of(
                session,
                query,
                Ticket.received_at.desc(),
                Ticket.id.desc(),
                options=schemas.TICKET_OPTIONS,
            )
            times.append((time.perf_counter() - started) * 1000)
    return total, times[1:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    url = fresh_database(args.admin_url, DATABASE_NAME)
    load_s = load(url, args.tickets)
    engine = make_engine(url)
    with engine.connect() as conn:
        tickets = conn.execute(sa.text("SELECT count(*) FROM tickets")).scalar()
    results = []
    for name, actor, query in searches(engine):
        total, runs = time_search(engine, actor, query, args.runs)
        results.append(
            {
                "name": name,
                "total": total,
                "median_ms": round(statistics.median(runs), 1),
                "runs_ms": [round(t, 1) for t in runs],
            }
        )
    engine.dispose()

    print(f"\n{tickets:,} tickets over a year (loaded in {load_s:.0f} s), PostgreSQL\n")
    print_rows(
        [("search (count + first 50)", "found · median")]
        + [(r["name"], f"{r['total']:,} · {r['median_ms']} ms") for r in results]
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps(
                {"tickets": tickets, "load_s": round(load_s, 1), "searches": results},
                ensure_ascii=False,
                indent=2,
            ),
            "utf-8",
        )


if __name__ == "__main__":
    main()
