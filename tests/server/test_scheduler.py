"""The SLA scheduler for real: committed ticks, two processes racing, the CLI, and the rule
that only ``hotline scheduler`` and the demo start one.

These tests commit (``committed_app``): on PostgreSQL the racing processes share the due
tickets through ``FOR UPDATE SKIP LOCKED``; on SQLite they queue on the write lock. Either way
every timer must fire exactly once.
"""

import datetime as dt
import multiprocessing
import threading

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from dashboards import warnings
from dispatch import operations as ops
from dispatch import timers
from hotline import heartbeats
from hotline.db import get_session
from hotline.models import (
    EarlyWarning,
    Notification,
    Ticket,
    TicketEvent,
    TimerFiring,
    Unit,
    User,
)
from server import scheduler
from server.app import create_app
from server.cli import main
from tests.helpers import is_postgres

TICKETS = 60
#: Dispatched 30 hours ago and never touched: sign warning and overdue, contact warning and
#: overdue are all due (2 h and 24 h clocks); the finish warning (5 working days) is not.
TIMERS_PER_TICKET = 4


@pytest.fixture
def seed_overdue(make_ticket):
    def make(app, count=TICKETS):
        start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=30)
        with app.app_context():
            session = get_session()
            users = {
                u.username: u
                for u in session.scalars(
                    sa.select(User).where(User.username.in_(["operator", "dispatcher"]))
                )
            }
            lead = session.scalars(sa.select(Unit).where(Unit.code == "U-S-370705001")).one()
            for _ in range(count):
                ticket = make_ticket(
                    users["operator"], session=session, category="010103", now=start
                )
                ops.dispatch(session, users["dispatcher"], ticket, lead=lead, now=start)
            session.commit()

    return make


def _counts(app):
    with app.app_context():
        session = get_session()
        return {
            "firings": session.scalar(sa.select(sa.func.count()).select_from(TimerFiring)),
            "distinct": session.scalar(
                sa.select(sa.func.count()).select_from(
                    sa.select(TimerFiring.ticket_id, TimerFiring.kind, TimerFiring.due_at)
                    .distinct()
                    .subquery()
                )
            ),
            "events": session.scalar(
                sa.select(sa.func.count()).where(TicketEvent.actor_id.is_(None))
            ),
            "inbox": session.scalar(sa.select(sa.func.count()).select_from(Notification)),
            "pending": session.scalar(
                sa.select(sa.func.count()).where(Ticket.next_due_at <= dt.datetime.now(dt.UTC))
            ),
        }


def _race_worker(config, barrier, results):
    app = create_app(config)
    job_settings = timers.Settings.from_config(app.config)
    barrier.wait()
    total = timers.run_due(app.extensions["hotline.db"], job_settings, batch=3)
    results.put((total.tickets, total.fired))


def test_two_scheduler_processes_fire_every_timer_once(committed_app, seed_overdue):
    seed_overdue(committed_app)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    config = {
        key: committed_app.config[key]
        for key in ("DATABASE_URL", "SECRET_KEY", "CLASSIFIER_MODELS_DIR", "REDIS_URL")
    }
    config["CLASSIFIER_PRELOAD"] = False
    workers = [
        context.Process(target=_race_worker, args=(config, barrier, results)) for _ in range(2)
    ]
    for w in workers:
        w.start()
    totals = [results.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=30)
        assert w.exitcode == 0
    counts = _counts(committed_app)
    expected = TICKETS * TIMERS_PER_TICKET
    assert counts["firings"] == counts["distinct"] == expected
    assert counts["events"] == expected
    assert counts["inbox"] == expected
    assert counts["pending"] == 0
    # Every firing was reported by exactly one process.
    assert sum(fired for _, fired in totals) == expected
    if is_postgres(config["DATABASE_URL"]):
        # SKIP LOCKED lets both work at once (SQLite's single writer may starve one).
        assert all(fired > 0 for _, fired in totals), totals


def test_a_committed_tick_publishes_and_notifies_after_commit(committed_app, seed_overdue):
    seed_overdue(committed_app, count=3)
    heard, sent = [], []
    publisher = committed_app.extensions["hotline.events"]
    notifier = committed_app.extensions["hotline.notify"]
    senders = committed_app.extensions["hotline.outbox"].senders

    class Recorder:
        def send(self, copy):
            sent.append(copy)

    publisher.listeners.append(heard.append)
    notifier.channels.append("wecom")
    saved, senders["wecom"] = senders["wecom"], Recorder()
    try:
        result = scheduler.make_job(committed_app)()
        # The copies are in the outbox with the inbox items; the sweep sends them.
        assert sent == []
        swept = scheduler.make_outbox_job(committed_app)()
    finally:
        publisher.listeners.remove(heard.append)
        notifier.channels.remove("wecom")
        senders["wecom"] = saved
    assert result.fired == 3 * TIMERS_PER_TICKET
    # The sign warning was due 1 h 36 min after a dispatch 30 h ago: 28 h 24 min late.
    assert result.max_lateness == pytest.approx(28.4 * 3600, abs=60)
    sla = [m for m in heard if m["type"].startswith("sla.")]
    assert sorted({m["type"] for m in sla}) == [
        "sla.contact_overdue",
        "sla.contact_warning",
        "sla.sign_overdue",
        "sla.sign_warning",
    ]
    assert {m["level"] for m in sla} == {"yellow", "red"}
    assert all(m["unit"] == "U-S-370705001" and "requester" not in str(m) for m in sla)
    assert swept.sent == len(sent) == 3 * TIMERS_PER_TICKET
    assert all(c.recipient == "U-S-370705001" and c.channel == "wecom" for c in sent)
    assert len({c.delivery_key for c in sent}) == len(sent)
    # Nothing is due any more: the next run is idle.
    assert scheduler.make_job(committed_app)().tickets == 0


def test_each_tick_beats_with_its_lag(committed_app, seed_overdue):
    """The SLA job's heartbeat (``hotline.heartbeats``): after each tick, its lag is how late
    the oldest timer it fired was, and 0 once nothing is due."""
    seed_overdue(committed_app, count=2)
    job = scheduler.make_job(committed_app)
    result = job()
    with committed_app.app_context():
        beat = heartbeats.read_all(get_session())[heartbeats.SCHEDULER]
    assert (
        beat.lag_seconds == pytest.approx(result.max_lateness) == pytest.approx(28.4 * 3600, abs=60)
    )
    assert beat.detail == {"interval_seconds": 10, "fired": result.fired, "tickets": 2}
    assert (dt.datetime.now(dt.UTC) - beat.beat_at).total_seconds() < 30
    job()
    with committed_app.app_context():
        again = heartbeats.read_all(get_session())[heartbeats.SCHEDULER]
    assert again.lag_seconds == 0 and again.beat_at >= beat.beat_at
    assert again.detail["fired"] == 0


def test_scheduler_command_runs_once(committed_app, seed_overdue):
    seed_overdue(committed_app, count=2)
    result = CliRunner().invoke(
        main,
        ["scheduler", "--once", "--batch", "1"],
        env={
            "HOTLINE_DATABASE_URL": committed_app.config["DATABASE_URL"],
            "HOTLINE_SECRET_KEY": "cli-test",
            "HOTLINE_REDIS_URL": committed_app.config["REDIS_URL"] or "",
        },
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert f"fired={2 * TIMERS_PER_TICKET} tickets=2" in result.output
    assert "summons_fired=0 summonses=0" in result.output
    assert "knowledge_expired=0 knowledge_reminded=0" in result.output
    assert "outbox_sent=0 outbox_retry=0 outbox_failed=0" in result.output
    assert "hotspots_added=2 hotspots_created=0 hotspots_grown=0" in result.output
    assert "warnings_raised=0 warnings_updated=0" in result.output
    # The two tickets were received yesterday (30 hours ago) by an operator: sampled.
    assert "inspection_sampled=2" in result.output
    # No retraining ever finished: the weekly one is due, and two tickets are too few.
    assert "classifier_retrain=skipped" in result.output
    assert _counts(committed_app)["firings"] == 2 * TIMERS_PER_TICKET


def _scheduler_threads():
    return [t for t in threading.enumerate() if "APScheduler" in t.name or "apscheduler" in t.name]


def test_web_app_never_starts_a_scheduler(app, client):
    before = len(_scheduler_threads())
    create_app(
        {
            "DATABASE_URL": app.config["DATABASE_URL"],
            "SECRET_KEY": "x",
            "CLASSIFIER_PRELOAD": False,
        }
    )
    client.get("/api/v1/units")
    assert len(_scheduler_threads()) == before
    assert scheduler._in_process is None


def test_demo_mode_starts_one_scheduler_per_process(committed_app):
    first = scheduler.start_in_process(committed_app)
    try:
        assert scheduler.start_in_process(committed_app) is first
        jobs = first.get_jobs()
        assert {j.id for j in jobs} == {
            scheduler.JOB_ID,
            scheduler.KNOWLEDGE_JOB_ID,
            scheduler.OUTBOX_JOB_ID,
            scheduler.HOTSPOT_JOB_ID,
            scheduler.WARNING_JOB_ID,
            scheduler.INSPECTION_JOB_ID,
            scheduler.WHISTLE_JOB_ID,
            scheduler.RETENTION_JOB_ID,
            scheduler.LEARNING_JOB_ID,
        }
        summonses = first.get_job(scheduler.WHISTLE_JOB_ID)
        assert summonses.trigger.interval == dt.timedelta(
            seconds=committed_app.config["SCHEDULER_INTERVAL_SECONDS"]
        )
        assert summonses.max_instances == 1 and summonses.coalesce
        grouper = first.get_job(scheduler.HOTSPOT_JOB_ID)
        assert grouper.trigger.interval == dt.timedelta(
            seconds=committed_app.config["HOTSPOT_INTERVAL_SECONDS"]
        )
        assert grouper.max_instances == 1
        scan = first.get_job(scheduler.WARNING_JOB_ID)
        assert scan.trigger.interval == dt.timedelta(
            seconds=committed_app.config["WARNING_INTERVAL_SECONDS"]
        )
        assert scan.max_instances == 1 and scan.coalesce
        sweep = first.get_job(scheduler.OUTBOX_JOB_ID)
        assert sweep.trigger.interval == dt.timedelta(
            seconds=committed_app.config["OUTBOX_SWEEP_SECONDS"]
        )
        sample = first.get_job(scheduler.INSPECTION_JOB_ID)
        assert sample.trigger.interval == dt.timedelta(seconds=3600)
        assert sample.max_instances == 1 and sample.coalesce
        job = first.get_job(scheduler.JOB_ID)
        assert job.trigger.interval == dt.timedelta(
            seconds=committed_app.config["SCHEDULER_INTERVAL_SECONDS"]
        )
        assert job.max_instances == 1 and job.coalesce
    finally:
        scheduler.stop_in_process()
    assert scheduler._in_process is None


def test_the_interval_job_fires_timers_on_its_own(committed_app, seed_overdue):
    seed_overdue(committed_app, count=1)
    committed_app.config["SCHEDULER_INTERVAL_SECONDS"] = 1
    running = scheduler.build(committed_app, blocking=False)
    running.start()
    try:
        deadline = dt.datetime.now() + dt.timedelta(seconds=20)
        while _counts(committed_app)["firings"] < TIMERS_PER_TICKET:
            assert dt.datetime.now() < deadline, "the scheduler fired nothing in 20 s"
            threading.Event().wait(0.2)
    finally:
        running.shutdown(wait=True)
        committed_app.config["SCHEDULER_INTERVAL_SECONDS"] = 10


def test_the_warning_job_scans_once_per_moment_and_skips_while_another_scans(
    committed_app, make_ticket
):
    """Five power-cut calls at one community in the last half hour: the job raises one
    sudden-event warning (committed, with its inbox items); the next run adds nothing; on
    PostgreSQL a scanner that finds the advisory lock taken skips its round."""
    now = dt.datetime.now(dt.UTC)
    with committed_app.app_context():
        session = get_session()
        operator = session.scalars(sa.select(User).where(User.username == "operator")).one()
        for i in range(5):
            make_ticket(
                operator,
                session=session,
                category="010301",
                area="370705001001",
                title="小区大面积停电",
                now=now - dt.timedelta(minutes=30 - 5 * i),
            )
        session.commit()
    job = scheduler.make_warning_job(committed_app, clock=lambda: now)
    first = job()
    assert [w.kind.value for w in first.raised] == ["sudden"]
    assert tuple(job()) == ([], [])
    with committed_app.app_context():
        session = get_session()
        assert session.scalar(sa.select(sa.func.count()).select_from(EarlyWarning)) == 1
        inbox = session.scalars(
            sa.select(Notification.kind).where(Notification.kind == "warning.sudden")
        ).all()
        assert len(inbox) == 3
    if is_postgres(committed_app.config["DATABASE_URL"]):
        engine = committed_app.extensions["hotline.db"].kw["bind"]
        with engine.connect() as holder:
            holder.execute(sa.select(sa.func.pg_advisory_lock(warnings.SCAN_LOCK)))
            try:
                assert job() is None
            finally:
                holder.execute(sa.select(sa.func.pg_advisory_unlock(warnings.SCAN_LOCK)))
                holder.commit()


def test_the_learning_job_runs_the_retraining_asked_for(committed_app, monkeypatch):
    """The job is ``dispatch.learning.run_due`` on this app's database and models folder, at
    the scheduler's clock (tests/dispatch/test_learning.py tests the runs themselves)."""
    moment = dt.datetime(2026, 12, 1, 2, tzinfo=dt.UTC)
    calls = []

    def run_due(session_factory, now=None, *, models_dir, policy=None):
        calls.append((session_factory, now, models_dir))

    monkeypatch.setattr(scheduler.learning, "run_due", run_due)
    assert scheduler.make_learning_job(committed_app, clock=lambda: moment)() is None
    assert calls == [
        (
            committed_app.extensions["hotline.db"],
            moment,
            committed_app.config["CLASSIFIER_MODELS_DIR"],
        )
    ]
