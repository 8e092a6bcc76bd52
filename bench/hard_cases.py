"""Hard-case list benchmark (issue 17 §4): ``dispatch.hard_cases`` over a million tickets.

Loads the ranking benchmark's synthetic month (``bench/ranking_data.py``: a big city, one
month of tickets with their assignments, returned and reopened ones among them) into a fresh
SQLite file, then adds what the generator has no reason to make: a 退单申请 event for every
return request its assignments record, the 3rd 督办 level on one open ticket in 97, and 200
open hot issues of 20 tickets each. Then times, median of runs: the whole rule evaluation
(``evaluate``), the first page of the list (``listing``) and one ticket's findings
(``findings_of``, what 列入议程 reads).

    python bench/hard_cases.py                       # 1,000,000 tickets, 3 runs
    python bench/hard_cases.py --tickets 50000 --runs 1
    python bench/hard_cases.py --json bench/results/hard_cases.json

JSON keys: tickets, open, candidates, hard_cases, by_rule, evaluate_s, listing_s,
findings_of_s, queries (of one listing).
"""

import argparse
import datetime as dt
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench.ranking_data import AS_OF, TIMEZONE, build_city, generate, load_sqlite
from dispatch import hard_cases
from hotline.db import make_engine
from hotline.models import Ticket
from hotline.schemas import Page


def _enrich(path):
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO ticket_events (ticket_id, action, unit_id, from_status, to_status, payload,"
        " created_at) SELECT ticket_id, 'request_return', unit_id, 'dispatched',"
        " 'return_requested', '{}', return_requested_at FROM assignments"
        " WHERE return_requested_at IS NOT NULL"
    )
    opened = ",".join(f"'{s.value}'" for s in hard_cases.DECIDABLE)
    conn.execute(
        f"UPDATE tickets SET escalation_level = 3 WHERE id % 97 = 0 AND status IN ({opened})"
    )
    first = AS_OF.isoformat()
    for issue in range(200):
        cur = conn.execute(
            "INSERT INTO hot_issues (title, state, first_at, last_at, size, callers, heat,"
            " heat_parts, keywords, title_fixed, created_at, updated_at)"
            " VALUES (?, 'open', ?, ?, 20, 20, 1.0, '{}', '[]', 0, ?, ?)",
            (f"压测热点{issue}", first, first, first, first),
        )
        conn.execute(
            "INSERT INTO hot_issue_tickets (ticket_id, hot_issue_id, pinned, added_at)"
            " SELECT id, ?, 0, ? FROM tickets WHERE id % 50000 = ? LIMIT 20",
            (cur.lastrowid, first, issue * 7 + 1),
        )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def _timed(runs, work):
    seconds, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        seconds.append(time.perf_counter() - started)
    return round(statistics.median(seconds), 3), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    city = build_city()
    data = generate(city, args.tickets)
    with tempfile.TemporaryDirectory(prefix="hotline-bench-hard-") as folder:
        path = str(Path(folder) / "hard.sqlite")
        url, _ = load_sqlite(path, city, data)
        _enrich(path)
        engine = make_engine(url)
        now = AS_OF + dt.timedelta(days=40)
        with Session(engine) as session:
            total = session.scalar(sa.select(sa.func.count()).select_from(Ticket))
            open_count = session.scalar(
                sa.select(sa.func.count()).where(Ticket.status.in_(hard_cases.DECIDABLE))
            )
            evaluate_s, cases = _timed(
                args.runs, lambda: hard_cases.evaluate(session, now, tz=TIMEZONE)
            )
            statements = []
            sa.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
            listing_s, listing = _timed(
                args.runs,
                lambda: hard_cases.listing(session, now, Page(1, 30), tz=TIMEZONE),
            )
            queries = len(statements) // args.runs
            one = session.get(Ticket, next(iter(cases)))
            findings_s, _ = _timed(
                args.runs, lambda: hard_cases.findings_of(session, one, now, tz=TIMEZONE)
            )
        engine.dispose()
    result = {
        "tickets": total,
        "open": open_count,
        "hard_cases": len(cases),
        "by_rule": listing.counts,
        "evaluate_s": evaluate_s,
        "listing_s": listing_s,
        "findings_of_s": findings_s,
        "queries": queries,
    }
    print(json.dumps(result, ensure_ascii=False, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
