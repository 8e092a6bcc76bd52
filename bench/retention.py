"""Retention benchmark (issue 18, 个人信息保护): the personal-data retention job
(``hotline.retention``) over a table of closed tickets on PostgreSQL.

Sets up a fresh PostgreSQL database (migrate + seed) and bulk-loads ``--tickets`` tickets
closed three years ago, each as a real one leaves its rows: requester name, phone and address;
a content, result and callback comment quoting the phone and the name; a lead assignment with
a report; a callback attempt; five events (receive, dispatch, sign, finish with the result as
its reason, callback with the comment); an SMS copy to the phone. Plus ``--recent`` tickets
closed last week (not due: the job must pass them by). Then:

- the dry run (nothing changed) over as many tickets as the batches below (``--all``: the
  whole table);
- the redaction, batch by batch (``--batch`` tickets per transaction), timing each batch,
  for ``--batches`` batches or, with ``--all``, until nothing is due;
- a second run (idempotent: finds nothing) and its time.

    python bench/retention.py                          # 1,000,000 tickets, 50 batches
    python bench/retention.py --all                    # … and redact every one of them
    python bench/retention.py --smoke                  # 5,000 tickets, all redacted (CI)
    python bench/retention.py --json bench/results/retention.json

JSON keys: tickets, batch, batches, batch_median_s, batch_p95_s, tickets_per_s, dry_run_s,
dry_run_tickets, redacted, rerun_s (plus load_s, recent, phones_left).
"""

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from bench.intake import DEFAULT_ADMIN_URL, fresh_database
from hotline import migrate, retention, seed


def app_for(url):
    from server.app import create_app

    return create_app(
        {
            "DATABASE_URL": url,
            "REDIS_URL": None,
            "SECRET_KEY": "bench",
            "CLASSIFIER_ENABLED": False,
            "CLASSIFIER_PRELOAD": False,
            "NOTIFY_SENDERS": "logging",
        }
    )


TICKETS_SQL = """
INSERT INTO tickets (
    number, channel, request_type, urgency, category_id, area_id, title, content,
    requester_name, requester_phone, address, lng, lat, status, lead_unit_id, received_at,
    signed_at, contacted_at, finished_at, closed_at, result, callback_solved,
    callback_satisfaction, callback_comment, callback_at, created_by_id, version, updated_at,
    reopen_count, scoring_exempt)
SELECT
    :prefix || lpad(g::text, 9, '0'), 'phone', 'complaint', 'normal', :category, :area,
    '路灯不亮',
    '王' || g || '来电：小区门口路灯不亮，回电 138' || lpad((g % 100000000)::text, 8, '0'),
    '王' || g, '138' || lpad((g % 100000000)::text, 8, '0'), '奎文区胜利东街' || g || '号',
    119.1 + (g % 1000) * 0.0001, 36.7 + (g % 1000) * 0.0001, 'closed',
    (:units)[1 + g % cardinality(:units)], s, s + interval '10 minutes', s + interval '1 hour',
    s + interval '2 days', s + interval '3 days',
    '已联系王' || g || '（138' || lpad((g % 100000000)::text, 8, '0') || '），路灯已修复',
    'solved', 'satisfied', '王先生表示满意', s + interval '3 days', :user, 1, s, 0, false
FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS g,
     LATERAL (SELECT :start - make_interval(secs => g % 2592000) AS s) AS t
"""

ROWS_SQL = [
    """
    INSERT INTO assignments (ticket_id, unit_id, role, active, designated, dispatched_at,
        dispatched_by_id, signed_at, finished_at, ended_at, report)
    SELECT id, lead_unit_id, 'lead', false, false, received_at, created_by_id, signed_at,
        finished_at, closed_at, result
    FROM tickets WHERE id BETWEEN :low AND :high
    """,
    """
    INSERT INTO callback_attempts (ticket_id, agent_id, attempted_at, outcome, channel, solved,
        satisfaction, comment)
    SELECT id, created_by_id, callback_at, 'answered', 'phone', 'solved', 'satisfied',
        callback_comment || '，' || requester_phone
    FROM tickets WHERE id BETWEEN :low AND :high
    """,
    """
    INSERT INTO ticket_events (ticket_id, action, actor_id, from_status, to_status, reason,
        payload, created_at)
    SELECT t.id, e.action, t.created_by_id, e.from_status, e.to_status,
        CASE e.action WHEN 'finish' THEN t.result WHEN 'record_callback'
            THEN t.callback_comment || '，电话' || t.requester_phone END,
        CASE e.action WHEN 'receive' THEN '{"channel": "phone", "request_type": "complaint"}'
            ELSE '{}' END::jsonb, t.received_at + e.after
    FROM tickets t CROSS JOIN (VALUES
        ('receive', NULL, 'received', interval '0'),
        ('dispatch', 'received', 'dispatched', interval '5 minutes'),
        ('sign', 'dispatched', 'signed', interval '10 minutes'),
        ('finish', 'contacted', 'finished', interval '2 days'),
        ('record_callback', 'finished', 'closed', interval '3 days')
    ) AS e(action, from_status, to_status, after)
    WHERE t.id BETWEEN :low AND :high
    """,
    """
    INSERT INTO outbox (delivery_key, channel, audience, recipient, kind, ticket_id, title,
        body, payload, state, created_at, next_attempt_at, attempts, sent_at)
    SELECT 'bench:' || id, 'sms', 'citizen', requester_phone, 'citizen_received', id, '',
        '【12345】您的诉求已受理，工单号' || number, '{}'::jsonb, 'sent', received_at,
        received_at, 1, received_at
    FROM tickets WHERE id BETWEEN :low AND :high
    """,
]


def load(app, tickets, recent):
    """The closed tickets and their rows, in chunks (one transaction each)."""
    factory = app.extensions["hotline.db"]
    with factory() as session:
        seed.load_all(session)
        session.commit()
        ids = lambda sql: session.execute(sa.text(sql)).scalars().all()  # noqa: E731
        units = ids("SELECT id FROM units WHERE kind = 'street_office' ORDER BY id")
        category = ids("SELECT id FROM categories WHERE code = '010103'")[0]
        area = ids("SELECT id FROM areas WHERE code = '370705001'")[0]
        user = ids("SELECT id FROM users WHERE username = 'operator'")[0]
    engine = factory.kw["bind"]
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    chunk = 100_000
    for prefix, count, start in (
        ("OLD", tickets, now - dt.timedelta(days=3 * 365)),
        ("NEW", recent, now - dt.timedelta(days=7)),
    ):
        for first in range(1, count + 1, chunk):
            last = min(count, first + chunk - 1)
            with engine.begin() as conn:
                low = conn.execute(sa.text("SELECT coalesce(max(id), 0) + 1 FROM tickets"))
                low = low.scalar_one()
                conn.execute(
                    sa.text(TICKETS_SQL),
                    {
                        "prefix": prefix,
                        "category": category,
                        "area": area,
                        "units": units,
                        "user": user,
                        "start": start,
                        "first": first,
                        "last": last,
                    },
                )
                high = conn.execute(sa.text("SELECT max(id) FROM tickets")).scalar_one()
                for statement in ROWS_SQL:
                    conn.execute(sa.text(statement), {"low": low, "high": high})
            print(f"  loaded {prefix} {last:,}/{count:,}", file=sys.stderr)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    return time.perf_counter() - started


def run(args):
    url = args.database_url or fresh_database(args.admin_url, "hotline_bench_retention")
    migrate.upgrade(url)
    app = app_for(url)
    factory = app.extensions["hotline.db"]
    load_s = load(app, args.tickets, args.recent)

    started = time.perf_counter()
    dry_batches = None if args.all else args.batches
    dry = retention.run(factory, dry_run=True, batch=args.batch, max_batches=dry_batches)
    dry_run_s = time.perf_counter() - started
    expected = args.tickets if args.all else min(args.tickets, args.batch * args.batches)
    assert dry.tickets == expected, (dry.tickets, expected)

    times = []
    redacted = 0
    while args.all or len(times) < args.batches:
        started = time.perf_counter()
        # force: the setting is off by default; the bench is an explicit run.
        report = retention.run(factory, batch=args.batch, max_batches=1, force=True)
        if not report.tickets:
            break
        times.append(time.perf_counter() - started)
        redacted += report.tickets
    started = time.perf_counter()
    if args.all:
        again = retention.run(factory, batch=args.batch, force=True)
        assert again.tickets == 0, again.tickets
    rerun_s = time.perf_counter() - started if args.all else None
    with factory() as session:
        done = session.scalar(sa.text("SELECT count(*) FROM tickets WHERE redacted_at IS NOT NULL"))
        left = session.scalar(
            sa.text("SELECT count(*) FROM tickets WHERE requester_phone IS NOT NULL")
        )
    assert done == redacted, (done, redacted)
    ordered = sorted(times)
    return {
        "tickets": args.tickets,
        "recent": args.recent,
        "batch": args.batch,
        "batches": len(times),
        "batch_median_s": round(statistics.median(times), 4),
        "batch_p95_s": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 4),
        "tickets_per_s": round(redacted / sum(times)),
        "dry_run_s": round(dry_run_s, 2),
        "dry_run_tickets": dry.tickets,
        "redacted": redacted,
        "phones_left": left,
        "rerun_s": None if rerun_s is None else round(rerun_s, 3),
        "load_s": round(load_s, 1),
    }


def print_table(r):
    rows = [
        ("closed tickets due (3 years old)", f"{r['tickets']:,}"),
        ("recent closed tickets (not due)", f"{r['recent']:,}"),
        (f"dry run over {r['dry_run_tickets']:,} tickets, s", r["dry_run_s"]),
        ("tickets per batch (one transaction)", r["batch"]),
        ("batches redacted and timed", r["batches"]),
        ("batch time, median s", r["batch_median_s"]),
        ("batch time, p95 s", r["batch_p95_s"]),
        ("tickets redacted per s", f"{r['tickets_per_s']:,}"),
        ("tickets redacted", f"{r['redacted']:,}"),
        ("phones left (recent + not yet reached)", f"{r['phones_left']:,}"),
        ("second run (nothing due), s", r["rerun_s"] if r["rerun_s"] is not None else "—"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"| {'figure'.ljust(width)} | measured |")
    print(f"|{'-' * (width + 2)}|----------|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--recent", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=retention.BATCH)
    parser.add_argument("--batches", type=int, default=50, help="batches to time")
    parser.add_argument("--all", action="store_true", help="redact every due ticket")
    parser.add_argument("--smoke", action="store_true", help="5,000 tickets, all redacted")
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: fresh one)")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    if args.smoke:
        args.tickets, args.recent, args.all = 5_000, 500, True
    result = run(args)
    print_table(result)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
