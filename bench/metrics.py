"""What a Prometheus scrape of ``/metrics`` costs with a million open tickets on PostgreSQL.

Sets up a fresh database (migrate + seed), inserts ``--tickets`` open tickets
(``bench.sla.load_tickets``: contacted, at street offices), makes every tenth overdue, and
``--closed`` closed ones beside them (a history the query must not read), then measures
``GET /metrics`` through the application (test client, no network):

- a computed scrape (``METRICS_CACHE_SECONDS`` 0: open tickets by state, the overdue count and
  the heartbeats read from the database, plus the request metrics), median and max of runs;
- a scrape by another process within ``METRICS_CACHE_SECONDS`` (it reads the count the first
  left in the ``metrics`` heartbeat) and a cached one (the same process: nothing is read);
- ``hotline_metrics_database_seconds``, the database part alone, as the scrape reports it;
- the values the scrape gives, checked against a plain count.

    python bench/metrics.py                       # 1,000,000 open tickets
    python bench/metrics.py --smoke               # 20,000, for CI
    python bench/metrics.py --json bench/results/metrics.json

JSON keys: open_tickets, closed_tickets, overdue, scrape_computed_ms (median),
scrape_computed_max_ms, scrape_shared_ms, scrape_cached_ms (medians), database_ms (median),
per_30s_count_pct.
"""

import argparse
import json
import statistics
import time

import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from bench.intake import DEFAULT_ADMIN_URL, fresh_database
from bench.sla import app_for, load_tickets
from hotline import migrate


def close_some(app, count):
    """``count`` closed tickets (the history beside the open ones)."""
    if not count:
        return
    engine = app.extensions["hotline.db"].kw["bind"]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """
                INSERT INTO tickets (number, channel, request_type, urgency, category_id, title,
                    content, status, lead_unit_id, received_at, created_by_id, version,
                    updated_at, escalation_level, reopen_count, scoring_exempt, finish_due)
                SELECT 'CLOSED' || lpad(g::text, 9, '0'), channel, request_type, urgency,
                    category_id, title, content, 'closed', lead_unit_id, received_at,
                    created_by_id, 1, updated_at, 0, 0, false, finish_due - interval '30 days'
                FROM tickets t, generate_series(1, :count) AS g
                WHERE t.id = 1
                """
            ),
            {"count": count},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE tickets"))


def make_overdue(app):
    engine = app.extensions["hotline.db"].kw["bind"]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE tickets SET finish_due = now() - interval '1 hour' "
                "WHERE status = 'contacted' AND id % 10 = 0"
            )
        )
        overdue = conn.scalar(
            sa.text(
                "SELECT count(*) FROM tickets WHERE status = 'contacted' AND finish_due < now()"
            )
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE tickets"))
    return overdue


def scrape(client):
    started = time.perf_counter()
    response = client.get("/metrics")
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.get_data(as_text=True)
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return elapsed, found


def run(args):
    url = args.database_url or fresh_database(args.admin_url, "hotline_bench_metrics")
    migrate.upgrade(url)
    app = app_for(url)
    print(f"loading {args.tickets:,} open tickets …", flush=True)
    load_tickets(app, args.tickets)
    close_some(app, args.closed)
    overdue = make_overdue(app)
    client = app.test_client()

    app.config["METRICS_CACHE_SECONDS"] = 0
    scrape(client)  # the first one warms the connection pool and PostgreSQL's cache
    computed, database = [], []
    for _ in range(args.runs):
        elapsed, found = scrape(client)
        computed.append(elapsed)
        database.append(found[("hotline_metrics_database_seconds", ())] * 1000)
    open_total = sum(v for (name, _), v in found.items() if name == "hotline_open_tickets")
    assert open_total == args.tickets, (open_total, args.tickets)
    assert found[("hotline_overdue_tickets", ())] == overdue
    app.config["METRICS_CACHE_SECONDS"] = 3600
    scrape(client)
    cached = [scrape(client)[0] for _ in range(args.runs)]
    # Another worker (or host) within the period: it reads the count the first one left in
    # the ``metrics`` heartbeat instead of counting again.
    shared = []
    for _ in range(args.runs):
        other = app_for(url)
        other.config["METRICS_CACHE_SECONDS"] = 3600
        other_client = other.test_client()
        other_client.get("/healthz")  # its connection pool, as a running worker has
        elapsed, found = scrape(other_client)
        assert found[("hotline_overdue_tickets", ())] == overdue
        shared.append(elapsed)
        other.extensions["hotline.db"].kw["bind"].dispose()
    result = {
        "open_tickets": args.tickets,
        "closed_tickets": args.closed,
        "overdue": overdue,
        "runs": args.runs,
        "scrape_computed_ms": round(statistics.median(computed), 1),
        "scrape_computed_max_ms": round(max(computed), 1),
        "scrape_cached_ms": round(statistics.median(cached), 1),
        "scrape_shared_ms": round(statistics.median(shared), 1),
        "database_ms": round(statistics.median(database), 1),
        # One count per METRICS_CACHE_SECONDS (30 s) in the whole deployment.
        "per_30s_count_pct": round(statistics.median(computed) / 30_000 * 100, 2),
    }
    app.extensions["hotline.db"].kw["bind"].dispose()
    return result


def print_table(r):
    rows = [
        ("open tickets (closed beside them)", f"{r['open_tickets']:,} ({r['closed_tickets']:,})"),
        ("of them overdue", f"{r['overdue']:,}"),
        (
            "scrape, computed: median / max",
            f"{r['scrape_computed_ms']} / {r['scrape_computed_max_ms']} ms",
        ),
        ("  of which the database", f"{r['database_ms']} ms"),
        ("scrape, another worker within the period", f"{r['scrape_shared_ms']} ms"),
        ("scrape, cached in the process", f"{r['scrape_cached_ms']} ms"),
        ("one count per 30 s (the default cache)", f"{r['per_30s_count_pct']} % of the time"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"\n/metrics on PostgreSQL, {r['runs']} runs each")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--closed", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--smoke", action="store_true", help="20,000 open tickets, for CI")
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: fresh one)")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    if args.smoke:
        args.tickets, args.closed, args.runs = 20_000, 20_000, 5
    result = run(args)
    print_table(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
