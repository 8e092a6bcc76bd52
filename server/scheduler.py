"""The scheduler: APScheduler interval jobs — the SLA timers (``dispatch.timers``) and
吹哨报到's beside them (``dispatch.whistle_timers``), the
knowledge base's expiry and review-due reminders (``hotline.knowledge_admin.run_due``), the
hot issues' grouper (``dashboards.hotspots``: new tickets join their 热点问题), the
outbox's sweep (``hotline.outbox_delivery``: retries, and copies a process that died
after its commit never sent), and the early warnings' scan (``dashboards.warnings.scan``:
surges and sudden events, every ``WARNING_INTERVAL_SECONDS``, one scanner at a time under
an advisory lock), and the quality inspection's daily sample (``dispatch.inspection.run_due``:
each finished local day's sample of every operator's tickets, missed days caught up), and
the personal-data retention job once a day (``hotline.retention``: tickets closed longer ago
than the setting lose their requesters' personal data; batches taken ``FOR UPDATE SKIP
LOCKED``, so two schedulers share them and redact nothing twice), and the classifier's
retraining (``dispatch.learning.run_due``, every ``learning.JOB_INTERVAL_SECONDS``: a run an
administrator asked for, or the weekly one the schedule makes due; one at a time across
processes, each run a minute or two of training outside any transaction).

Production runs it as its own process, ``hotline scheduler``; ``hotline demo`` runs it in a
thread beside the server. The application factory never starts one, so web workers (gunicorn,
``hotline run``) cannot start a second scheduler by accident, and within a process
``start_in_process`` starts at most one. Several scheduler processes are safe anyway: they
share the due tickets through ``FOR UPDATE SKIP LOCKED`` and each timer fires once.

On start the job runs at once, so timers missed while no scheduler ran fire immediately,
each with its lateness recorded.
"""

import datetime as dt
import logging
import threading

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from dashboards import hotspots, warnings
from dispatch import inspection, learning, timers, whistle_timers
from hotline import heartbeats, knowledge_admin, outbox_delivery, retention

log = logging.getLogger(__name__)
JOB_ID = "sla-timers"
KNOWLEDGE_JOB_ID = "knowledge-review"
OUTBOX_JOB_ID = "outbox-sweep"
HOTSPOT_JOB_ID = "hotspots"
WARNING_JOB_ID = "early-warnings"
INSPECTION_JOB_ID = "inspection-sample"
WHISTLE_JOB_ID = "whistle-timers"
RETENTION_JOB_ID = "retention"
LEARNING_JOB_ID = "classifier-retrain"
#: The retention job runs daily (and once on start, like every job).
RETENTION_INTERVAL_SECONDS = 24 * 3600

_lock = threading.Lock()
_in_process = None


def make_job(app, clock=None):
    """The job: tick in batches until nothing is due. ``clock`` may be injected (tests)."""
    settings = timers.Settings.from_config(app.config)
    session_factory = app.extensions["hotline.db"]
    batch = app.config["SCHEDULER_BATCH"]

    interval = app.config["SCHEDULER_INTERVAL_SECONDS"]

    def run():
        result = timers.run_due(session_factory, settings, batch=batch, clock=clock)
        if result.fired:
            log.info(
                "fired %d timer(s) on %d ticket(s), latest %.0f s late",
                result.fired,
                result.tickets,
                result.max_lateness,
                extra={"lag_seconds": result.max_lateness},
            )
        # The tick is done (a tick that failed does not beat: its age shows it in /readyz).
        heartbeats.beat(
            session_factory,
            heartbeats.SCHEDULER,
            result.max_lateness,
            interval_seconds=interval,
            detail={"fired": result.fired, "tickets": result.tickets},
        )
        return result

    return run


def make_whistle_job(app, clock=None):
    """吹哨报到's timers (``dispatch.whistle_timers``): the summoned departments' 报到 and
    反馈 warnings, overdues and 督办, ticked like the SLA timers beside them."""
    settings = timers.Settings.from_config(app.config)
    session_factory = app.extensions["hotline.db"]
    batch = app.config["SCHEDULER_BATCH"]

    def run():
        result = whistle_timers.run_due(session_factory, settings, batch=batch, clock=clock)
        if result.fired:
            log.info(
                "fired %d summons timer(s) on %d summons(es), latest %.0f s late",
                result.fired,
                result.tickets,
                result.max_lateness,
            )
        return result

    return run


def make_knowledge_job(app, clock=None):
    """The knowledge job: expire articles past their date, remind of those due for review."""
    session_factory = app.extensions["hotline.db"]

    def run():
        now = clock() if clock else None
        result = knowledge_admin.run_due(session_factory, now, app.config["TIMEZONE"])
        if result.expired or result.reminded:
            log.info(
                "knowledge base: %d article(s) expired, %d review reminder(s) sent",
                result.expired,
                result.reminded,
            )
        return result

    return run


def make_outbox_job(app, clock=None):
    """The sweep: deliver every copy due (the delivery thread sends most right after their
    commit; this catches retries and the copies of a process that died)."""

    def run():
        result = outbox_delivery.sweep(app, now=clock() if clock else None)
        if result.claimed:
            log.info(
                "outbox: %d sent, %d to retry, %d failed",
                result.sent,
                result.retried,
                result.failed,
            )
        return result

    return run


def make_hotspot_job(app, clock=None):
    """The grouper: new tickets join their hot issue, new hot issues are made, heat follows
    the time (this process keeps the index; ``dashboards.hotspots``)."""
    session_factory = app.extensions["hotline.db"]

    def run():
        result = hotspots.run(session_factory, clock() if clock else None)
        if result.created or result.grown:
            log.info(
                "hot issues: %d ticket(s) added, %d new, %d grown",
                result.added,
                len(result.created),
                len(result.grown),
            )
        return result

    return run


def make_warning_job(app, clock=None):
    """The early warnings' scan (预警): surges and sudden events at this moment."""
    session_factory = app.extensions["hotline.db"]

    def run():
        result = warnings.scan(session_factory, now=clock() if clock else None, config=app.config)
        if result is None:
            log.info("early warnings: another scheduler is scanning; skipped")
        elif result.raised or result.updated:
            log.info(
                "early warnings: %d raised, %d updated", len(result.raised), len(result.updated)
            )
        return result

    return run


def make_inspection_job(app, clock=None):
    """质检's daily sample: every finished local day not yet sampled (catch-up included)."""
    session_factory = app.extensions["hotline.db"]

    def run():
        now = clock() if clock else None
        result = inspection.run_due(session_factory, now, app.config["TIMEZONE"])
        if result is None:
            log.info("inspection sample: another scheduler is sampling; skipped")
        elif result.sampled:
            log.info(
                "inspection sample: %d ticket(s) over %d day(s)", result.sampled, len(result.days)
            )
        return result

    return run


def make_retention_job(app, clock=None):
    """个人信息保护: redact the personal data of tickets closed before the retention period
    (``hotline.retention``); nothing when the setting is off."""
    session_factory = app.extensions["hotline.db"]

    def run():
        result = retention.run(session_factory, now=clock() if clock else None)
        if result.skipped:
            log.info("retention: switched off")
        elif result.tickets:
            log.info(
                "retention: %d ticket(s) redacted in %d batch(es), %.1f s",
                result.tickets,
                len(result.runs),
                result.seconds,
            )
        return result

    return run


def make_learning_job(app, clock=None):
    """The classifier's retraining (``dispatch.learning.run_due``): the run asked for, or the
    one the weekly schedule makes due; at most one per call."""
    session_factory = app.extensions["hotline.db"]
    models_dir = app.config["CLASSIFIER_MODELS_DIR"]

    def run():
        now = clock() if clock else None
        result = learning.run_due(session_factory, now, models_dir=models_dir)
        if result is not None:
            log.info(
                "classifier retrain %d (%s): %s in %.0f s — %s",
                result.id,
                result.trigger,
                result.status,
                result.seconds,
                result.reason,
            )
        return result

    return run


def every(scheduler, job, seconds, job_id):
    """Run ``job`` every ``seconds``: at once on start (catch-up), never twice at a time, and
    after a stall once rather than once per missed interval (one run drains everything due)."""
    scheduler.add_job(
        job,
        "interval",
        seconds=seconds,
        id=job_id,
        next_run_time=dt.datetime.now(dt.UTC),
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
    )


def build(app, *, blocking, clock=None):
    cls = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = cls(timezone=app.config["TIMEZONE"])
    every(scheduler, make_job(app, clock), app.config["SCHEDULER_INTERVAL_SECONDS"], JOB_ID)
    every(
        scheduler,
        make_whistle_job(app, clock),
        app.config["SCHEDULER_INTERVAL_SECONDS"],
        WHISTLE_JOB_ID,
    )
    every(
        scheduler,
        make_knowledge_job(app, clock),
        knowledge_admin.JOB_INTERVAL_SECONDS,
        KNOWLEDGE_JOB_ID,
    )
    every(
        scheduler,
        make_hotspot_job(app, clock),
        app.config["HOTSPOT_INTERVAL_SECONDS"],
        HOTSPOT_JOB_ID,
    )
    every(scheduler, make_outbox_job(app, clock), app.config["OUTBOX_SWEEP_SECONDS"], OUTBOX_JOB_ID)
    every(
        scheduler,
        make_warning_job(app, clock),
        app.config["WARNING_INTERVAL_SECONDS"],
        WARNING_JOB_ID,
    )
    every(
        scheduler,
        make_inspection_job(app, clock),
        inspection.JOB_INTERVAL_SECONDS,
        INSPECTION_JOB_ID,
    )
    every(scheduler, make_retention_job(app, clock), RETENTION_INTERVAL_SECONDS, RETENTION_JOB_ID)
    every(
        scheduler,
        make_learning_job(app, clock),
        learning.JOB_INTERVAL_SECONDS,
        LEARNING_JOB_ID,
    )
    return scheduler


def start_in_process(app):
    """Start the scheduler in a background thread of this process (demo mode), once."""
    global _in_process
    with _lock:
        if _in_process is None:
            _in_process = build(app, blocking=False)
            _in_process.start()
        return _in_process


def stop_in_process():
    global _in_process
    with _lock:
        if _in_process is not None:
            _in_process.shutdown(wait=True)
            _in_process = None
