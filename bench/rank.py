"""Ranking benchmark (issue 5): the mayor's monthly ranking over a month of 2,000,000 tickets.

Sets up a fresh PostgreSQL database (migrated to head) with the reference data of a big city —
16 districts, 343 streets and towns, their governments and offices, 60 city departments, 10
utilities, the hotline centre and the mayor's office — and bulk-loads one month (2026-10, Asia/
Shanghai) of synthetic tickets covering every case the definitions in ``dashboards/ranking.py``
distinguish (signed / contacted on time, late, not yet; no phone; finished on time, late,
unfinished; terminated; every callback answer; unreachable; reopened; returned; exempt; merged
repeats; tickets never dispatched; tiny units; units with equal scores), plus tickets just
outside the month (the generator and loaders: ``bench/ranking_data.py``). Then, side by side:

- the full ranking computed by SQL aggregation (``dashboards.ranking.compute``), median of runs;
- a straightforward pandas implementation of the same numbers, written from the module
  docstring of ``dashboards/ranking.py`` (not from its code): ``pandas.read_sql`` of the month's
  tickets and lead assignments, then counts, district roll-up, exact rates, places and lists
  (``tests/dashboards/ranking_reference.py``, which the tests use on a small month too).
  Both results are compared unit by unit (every count, rate, score, place and list mark);
- the same ``compute`` on a SQLite copy of the data.

    python bench/rank.py                                   # 2,000,000 tickets, 3 runs
    python bench/rank.py --tickets 50000 --runs 1          # a quick smoke run (CI)
    python bench/rank.py --json bench/results/rank.json --explain

JSON keys: tickets, rank_s, pandas_s, sqlite_rank_s, agree (plus details: ratio, pandas_load_s,
pandas_compute_s, setup_s, the individual runs, where the SQL time goes, differences).
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench.ranking_data import AS_OF, MONTH, SEED, build_city, generate, load_postgres, load_sqlite
from hotline import migrate
from hotline.db import make_engine
from tests.dashboards.ranking_reference import (
    ALTERNATIVE_READINGS,
    DOCSTRING_READING,
    compare,
    pandas_compute,
    pandas_ranking,
    sql_ranking,
    sql_rows,
    summarize,
)

RANK_TARGET_S = 3.0


# -- the benchmark --------------------------------------------------------------------------------


def _category(statement):
    if "merged_into_id IS NOT NULL" in statement and "FILTER" in statement:
        return "tickets_query"
    if "count(DISTINCT" in statement:
        return "returns_query"
    if "ticket_events" in statement:
        return "exemptions_query"
    if "GROUP BY tickets.status" in statement:
        return "totals_query"
    return "other_queries"


class StatementLog:
    """Time of each statement the engine runs (execute only: the server's work), by category,
    and the last statement of each category with its parameters (for EXPLAIN)."""

    def __init__(self, engine):
        self.times = {}
        self.statements = {}
        sa.event.listen(engine, "before_cursor_execute", self._before)
        sa.event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        category = _category(statement)
        elapsed = time.perf_counter() - conn.info.pop("bench_started")
        self.times[category] = self.times.get(category, 0.0) + elapsed
        self.statements[category] = (statement, parameters)

    def take(self):
        times, self.times = self.times, {}
        return times


def _median(values):
    return statistics.median(values) if values else None


def time_sql(engine, runs, log=None):
    """One warm-up, then ``runs`` timed computations in fresh sessions."""
    times, breakdown = [], []
    with Session(engine) as session:
        started = time.perf_counter()
        sql_ranking(session)
        first = time.perf_counter() - started
    if log is not None:
        log.take()
    ranking = None
    for _ in range(runs):
        with Session(engine) as session:
            started = time.perf_counter()
            ranking = sql_ranking(session)
            times.append(time.perf_counter() - started)
        if log is not None:
            breakdown.append(log.take())
    return ranking, first, times, breakdown


def explain(engine, log):
    """EXPLAIN ANALYZE of the two aggregate queries of ``count_tickets``."""
    plans = {}
    with engine.connect() as conn:
        for category in ("tickets_query", "returns_query"):
            if category not in log.statements:
                continue
            statement, parameters = log.statements[category]
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).all()
            plans[category] = [r[0] for r in rows]
    return plans


def run(args):
    from bench.intake import fresh_database

    began = time.perf_counter()
    url = args.database_url or fresh_database(args.admin_url, "hotline_bench_rank")
    migrate.upgrade(url)
    city = build_city(seed=args.seed)
    say(f"generating {args.tickets:,} tickets …")
    started = time.perf_counter()
    data = generate(city, args.tickets, seed=args.seed)
    generate_s = time.perf_counter() - started
    say(
        f"  {len(data.tickets['id']):,} tickets, {len(data.assignments['id']):,} assignments, "
        f"{len(data.events['id']):,} events in {generate_s:.1f} s; loading PostgreSQL …"
    )
    started = time.perf_counter()
    postgres_phases = load_postgres(url, city, data)
    postgres_load_s = time.perf_counter() - started
    sqlite_dir = tempfile.TemporaryDirectory(prefix="hotline-bench-rank-")
    sqlite_load_s, sqlite_phases = None, {}
    if not args.no_sqlite:
        say(f"  PostgreSQL loaded in {postgres_load_s:.1f} s; loading SQLite …")
        started = time.perf_counter()
        sqlite_url, sqlite_phases = load_sqlite(
            str(Path(sqlite_dir.name) / "rank.sqlite"), city, data
        )
        sqlite_load_s = time.perf_counter() - started
    setup_s = time.perf_counter() - began
    stats = data.stats
    del data

    say("ranking with SQL on PostgreSQL …")
    engine = make_engine(url)
    log = StatementLog(engine)
    ranking, rank_first, rank_runs, breakdown = time_sql(engine, args.runs, log)
    sql = sql_rows(ranking)
    parts = {
        name: round(_median([b.get(name, 0.0) for b in breakdown]), 3)
        for name in (
            "tickets_query",
            "returns_query",
            "totals_query",
            "exemptions_query",
            "other_queries",
        )
    }
    parts["python"] = round(_median(rank_runs) - sum(parts.values()), 3)
    plans = {}
    if args.explain:
        say("EXPLAIN ANALYZE …")
        plans = explain(engine, log)

    say("ranking with pandas (read_sql + DataFrame) …")
    pandas_runs, load_runs, compute_runs = [], [], []
    result = None
    for _ in range(args.runs):
        with engine.connect() as conn:
            result, frames, load_s, compute_s = pandas_ranking(conn)
        load_runs.append(load_s)
        compute_runs.append(compute_s)
        pandas_runs.append(load_s + compute_s)
    differences = compare(sql, result)
    # The data tells each alternative reading apart: read that way, pandas must disagree.
    detected = {
        name: len(compare(sql, pandas_compute(frames, reading=overrides)))
        for name, overrides in ALTERNATIVE_READINGS.items()
    }
    del frames
    engine.dispose()

    sqlite_runs, sqlite_differences = [], []
    sqlite_first = None
    if not args.no_sqlite:
        say("ranking with SQL on SQLite …")
        sqlite_engine = make_engine(sqlite_url)
        sqlite_ranking, sqlite_first, sqlite_runs, _ = time_sql(sqlite_engine, args.runs)
        sqlite_differences = compare(sql, sql_rows(sqlite_ranking), names=("PostgreSQL", "SQLite"))
        sqlite_engine.dispose()
    sqlite_dir.cleanup()

    ranked = sum(1 for r in sql.values() if r["rank"] is not None)
    shared = sum(
        1
        for (cls, _), r in sql.items()
        if r["rank"] is not None
        and sum(1 for (c, _), o in sql.items() if c == cls and o["rank"] == r["rank"]) > 1
    )
    rank_s = _median(rank_runs)
    pandas_s = _median(pandas_runs)
    out = {
        "tickets": args.tickets,
        "rank_s": round(rank_s, 3),
        "pandas_s": round(pandas_s, 3),
        "sqlite_rank_s": round(_median(sqlite_runs), 3) if sqlite_runs else None,
        "agree": not differences,
        "ratio": round(pandas_s / rank_s, 1),
        "pandas_load_s": round(_median(load_runs), 3),
        "pandas_compute_s": round(_median(compute_runs), 3),
        "setup_s": round(setup_s, 1),
        "generate_s": round(generate_s, 1),
        "postgres_load_s": round(postgres_load_s, 1),
        "sqlite_load_s": round(sqlite_load_s, 1) if sqlite_load_s is not None else None,
        "postgres_load_phases_s": postgres_phases,
        "sqlite_load_phases_s": sqlite_phases,
        "runs": args.runs,
        "rank_runs_s": [round(x, 3) for x in rank_runs],
        "rank_first_s": round(rank_first, 3),
        "rank_breakdown_s": parts,
        "pandas_runs_s": [round(x, 3) for x in pandas_runs],
        "pandas_load_runs_s": [round(x, 3) for x in load_runs],
        "pandas_compute_runs_s": [round(x, 3) for x in compute_runs],
        "sqlite_rank_runs_s": [round(x, 3) for x in sqlite_runs],
        "sqlite_rank_first_s": round(sqlite_first, 3) if sqlite_first is not None else None,
        "sqlite_agree": not sqlite_differences if sqlite_runs else None,
        "target_rank_s": RANK_TARGET_S,
        "meets_target": rank_s <= RANK_TARGET_S,
        "rows": len(sql),
        "ranked_units": ranked,
        "units_sharing_a_place": shared,
        "differences": len(differences),
        "difference_summary": summarize(differences),
        "first_differences": differences[:50],
        "reading": DOCSTRING_READING,
        "alternative_readings_differences": detected,
        "alternative_readings_detected": all(detected.values()),
        "sqlite_differences": sqlite_differences[:50],
        "data": stats,
        "explain": plans,
        "as_of": AS_OF.isoformat(),
        "month": MONTH,
    }
    return out


def say(text):
    print(text, file=sys.stderr, flush=True)


def print_table(r):
    runs = r["runs"]
    header = ["figure"] + [f"run {i + 1}" for i in range(runs)] + ["median", "target"]

    def line(name, values, median, target=""):
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in values]
        cells += [""] * (runs - len(cells))
        shown = f"{median:.3f}" if isinstance(median, float) else str(median)
        return [name, *cells, shown, target]

    rows = [
        line("full ranking, SQL on PostgreSQL (s)", r["rank_runs_s"], r["rank_s"], "≤ 3"),
        line("pandas: read_sql of the month (s)", r["pandas_load_runs_s"], r["pandas_load_s"]),
        line(
            "pandas: counts, rates, places (s)", r["pandas_compute_runs_s"], r["pandas_compute_s"]
        ),
        line("pandas: total (s)", r["pandas_runs_s"], r["pandas_s"]),
        line("ratio pandas / SQL", [], f"{r['ratio']}×"),
        line(
            "full ranking, SQL on SQLite (s)",
            r["sqlite_rank_runs_s"],
            r["sqlite_rank_s"] if r["sqlite_rank_s"] is not None else "skipped",
        ),
        line(
            "SQL and pandas agree", [], "yes" if r["agree"] else f"NO ({r['differences']})", "yes"
        ),
        line(
            "SQLite and PostgreSQL agree",
            [],
            {True: "yes", False: "NO", None: "skipped"}[r["sqlite_agree"]],
            "yes",
        ),
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def fmt(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    d = r["data"]
    print(
        f"{r['tickets']:,} tickets received in {r['month']} (+{d['tickets_outside_month']:,} "
        f"just outside), {d['dispatched_in_month']:,} dispatched, {d['assignments']:,} "
        f"assignments; {r['rows']} units in the ranking, {r['ranked_units']} ranked, "
        f"{r['units_sharing_a_place']} sharing a place; as of {r['as_of']}"
    )
    print(
        f"setup {r['setup_s']} s (generate {r['generate_s']} s, PostgreSQL load "
        f"{r['postgres_load_s']} s, SQLite load {r['sqlite_load_s']} s); first (cold) SQL run "
        f"{r['rank_first_s']} s"
    )
    b = r["rank_breakdown_s"]
    print(
        "SQL run, median by part (s): "
        + ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in b.items())
    )
    print(fmt(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(fmt(row))
    if r["differences"]:
        print(f"\nSQL vs pandas: {r['differences']} differences, by class and figure:")
        for key, number in r["difference_summary"].items():
            print(f"  {key}: {number}")
    print("\nAlternative readings of the docstring, differences with the SQL they would give:")
    for name, number in r["alternative_readings_differences"].items():
        print(f"  {name}: {number}{'' if number else ' (NOT told apart by this data)'}")
    for title, lines in (
        ("SQL vs pandas", r["first_differences"]),
        ("PostgreSQL vs SQLite", r["sqlite_differences"]),
    ):
        if lines:
            print(f"\n{title}: first differences")
            for text in lines[:20]:
                print("  " + text)
    for name, plan in r["explain"].items():
        print(f"\nEXPLAIN ANALYZE {name}:")
        for text in plan:
            print("  " + text)


def main():
    from bench.intake import DEFAULT_ADMIN_URL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=2_000_000, help="tickets in the month")
    parser.add_argument("--runs", type=int, default=3, help="timed runs (median reported)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: fresh one)")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite figure")
    parser.add_argument("--explain", action="store_true", help="print the aggregate queries' plans")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    result = run(args)
    print_table(result)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=2))
    return 0 if result["agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
