"""The classifier learns from the centre's own decisions (issue 19): the tickets' confirmed
values become training examples, a retraining is asked for and run one at a time, and its
gate decision is kept as a ``model_retrains`` row (``hotline.models.ModelRetrain``).

- ``request(session, actor, trigger)``: ask for a retraining (重新训练): a ``pending`` row,
  or the one already pending or running;
- ``run_due(session_factory, …)``: the scheduler's and the command's run (see its docstring);
- ``examples(session, since)``: the confirmed tickets as ``classifier.learning.Example``\\ s.
"""

import datetime as dt
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from classifier import learning as model_learning
from classifier.learning import Example
from dispatch import placing
from hotline import model_versions, settings
from hotline.audit import audit
from hotline.db import utcnow
from hotline.enums import (
    AssignmentRole,
    Channel,
    DecisionStatus,
    EmergencyDecision,
    Role,
    TicketStatus,
    TransferTarget,
    Urgency,
)
from hotline.errors import Forbidden
from hotline.models import (
    Area,
    Assignment,
    Category,
    ModelRetrain,
    Ticket,
    TicketEvent,
    Unit,
    User,
)

log = logging.getLogger(__name__)

#: Who may ask for a retraining (an actor of None is the command line or the schedule).
REQUEST_ROLES = frozenset({Role.admin})
#: Who may read the runs (the model page, ``GET /api/v1/classifier/retrains``).
READ_ROLES = frozenset({Role.admin, Role.supervisor})
#: What asked for a run.
TRIGGERS = ("schedule", "command", "page")
PENDING, RUNNING = "pending", "running"
# The decisions are classifier.learning's own; a failure is this side's.
PROMOTED, KEPT, SKIPPED = model_learning.PROMOTED, model_learning.KEPT, model_learning.SKIPPED
FAILED = "failed"
#: How a run's status and trigger read (the command, the API, the model page).
STATUS_LABELS = {
    PENDING: "等待训练",
    RUNNING: "训练中",
    PROMOTED: "已启用新模型",
    KEPT: "未启用（保留为候选版本）",
    SKIPPED: "未训练",
    FAILED: "训练失败",
}
TRIGGER_LABELS = {"schedule": "定期训练", "command": "命令行", "page": "管理员手动"}
#: A run not finished after this long is taken for dead (its process was killed): another
#: scheduler may take its claim over. Training takes minutes, not hours.
STALE_AFTER = dt.timedelta(hours=3)
#: How often the scheduler looks for a run asked for or due.
JOB_INTERVAL_SECONDS = 300
#: The PostgreSQL advisory lock under which runs are asked for and claimed.
LOCK_KEY = 0x4C4F4F50  # "LOOP"


def _lock(session):
    """Serialise asking and claiming (held to the end of the transaction): on PostgreSQL an
    advisory lock; SQLite's transactions take the write lock up front (``BEGIN IMMEDIATE``)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_KEY)))


def require_requester(actor):
    if actor is not None and actor.role not in REQUEST_ROLES:
        raise Forbidden(
            "只有系统管理员可以重新训练分类模型",
            code="ROLE_NOT_ALLOWED",
            details={"role": actor.role.value},
        )


def require_reader(actor):
    if actor is not None and actor.role not in READ_ROLES:
        raise Forbidden(
            f"“{actor.role.label}”角色无权查看模型训练记录",
            code="ROLE_NOT_ALLOWED",
            details={"role": actor.role.value},
        )


def unfinished(session):
    """The run pending or running (the oldest), or None."""
    return session.scalars(
        sa.select(ModelRetrain)
        .where(ModelRetrain.status.in_((PENDING, RUNNING)))
        .order_by(ModelRetrain.id)
        .limit(1)
    ).first()


def request(session, actor, trigger, *, now=None):
    """重新训练: ask for a retraining of the classifier (``trigger``: ``command``, ``page``
    or ``schedule``). Returns the ``ModelRetrain`` row: a new ``pending`` one, or the run
    already pending or running (asking twice runs once). Administrators only when an
    ``actor`` is given. Audited; the caller commits."""
    require_requester(actor)
    if trigger not in TRIGGERS:
        raise ValueError(trigger)
    _lock(session)
    row = unfinished(session)
    if row is not None:
        return row
    row = ModelRetrain(
        status=PENDING,
        trigger=trigger,
        requested_at=now or utcnow(),
        requested_by_id=actor.id if actor is not None else None,
        figures={},
    )
    session.add(row)
    session.flush()
    audit(
        session,
        actor,
        "classifier.retrain_request",
        target=str(row.id),
        payload={"trigger": trigger},
    )
    return row


def recent(session, limit=20):
    """The latest runs, newest first."""
    return session.scalars(
        sa.select(ModelRetrain).order_by(ModelRetrain.id.desc()).limit(limit)
    ).all()


# -- the centre's decisions as examples --------------------------------------------------------

#: Events in which a person chose the ticket's category or kept it (the dispatch and
#: designation forms and 调整分类 show it and may change it).
CATEGORY_ACTIONS = ("dispatch", "designate", "reclassify")
#: The emergency lines: a ticket transferred to one was an emergency in a person's judgement.
EMERGENCY_LINES = frozenset(
    {
        TransferTarget.police_110,
        TransferTarget.fire_119,
        TransferTarget.ambulance_120,
        TransferTarget.traffic_122,
    }
)
#: Tickets that are not one matter of their own: a repeated report merged into another
#: (并单; its text repeats the other's) and a call split into its matters (拆单; the children
#: are the examples).
NOT_A_MATTER = (TicketStatus.merged, TicketStatus.split)
#: Rows fetched at a time from the database.
YIELD_PER = 2000


@dataclass
class Tickets:
    """What the centre's tickets teach: ``examples`` (``classifier.learning.Example``, one
    per ticket with a confirmed value the models learn from, ``Example.confirmed``; oldest
    first) and ``unlabelled`` (``Example``s of the tickets whose category nobody confirmed:
    their texts shape the vocabulary, those received before the holdout the probe's only)."""

    examples: list = field(default_factory=list)
    unlabelled: list = field(default_factory=list)


def ticket_text(content):
    """A ticket's text as the classifier sees it: what intake gives the suggester
    (``operations.receive`` → ``suggestions.for_intake``: the content; the title is most
    often its first line)."""
    return content


def examples(session, since=None):
    """The tickets received since ``since`` (all when None) as ``Tickets``: one query
    streamed in batches, whatever the number of tickets.

    A value counts as **confirmed** when a person chose it or kept it, never when it is
    only what the classifier filled in:

    - **category**: chosen by staff at intake (an operator, or a grid worker's report), or
      set or kept by a person later (派单, 指定, 调整分类: each form shows it). A
      category given by another system through Open311 (a citizen's choice of service)
      counts once a dispatcher dispatched or corrected it. Citizens choose none;
    - **request type**: chosen by staff or the citizen at intake (市民端's form asks for it),
      or set or kept by 调整分类. An Open311 ticket's type is derived from its service
      (``open311.request_type_of``): only 调整分类 confirms it;
    - **emergency**: after 调整分类, its final urgency; a ticket transferred to
      110/119/120/122 is one; the operator's answer to the console's emergency warning
      (确认紧急 True, 忽略预警 False); staff who chose 紧急 without a warning (a warning
      the classifier missed) True; otherwise None (no one was asked);
    - **area**: typed by staff or the citizen, or set by the dispatcher
      (``area_source`` ``typed``), not a suggested place filled in at intake;
    - **unit**: the lead unit once it signed (签收) or finished, and did not ask to return
      the ticket (a return asked for and not rejected);
    - **channel**: the ticket's.

    Left out entirely: merged duplicates and split calls (``NOT_A_MATTER``). The suite has
    no test tickets in production data to leave out (there is no such mark)."""
    query = _query(since)
    found = Tickets()
    # Streamed (a server-side cursor on PostgreSQL): rows arrive YIELD_PER at a time.
    for row in session.execute(query.execution_options(yield_per=YIELD_PER)):
        example = _example(row)
        if example.category is None:
            found.unlabelled.append(example)
        if example.confirmed:
            found.examples.append(example)
    return found


def _query(since):
    creator = aliased(User)
    received = aliased(TicketEvent)
    # Correlated EXISTS (each an index look-up on the ticket's events or assignments), not
    # IN over every ticket's id: PostgreSQL cannot hash a subplan of a million ids in work_mem.
    seen = aliased(TicketEvent)
    category_seen = sa.exists().where(
        seen.ticket_id == Ticket.id, seen.action.in_(CATEGORY_ACTIONS)
    )
    changed = aliased(TicketEvent)
    reclassified = sa.exists().where(changed.ticket_id == Ticket.id, changed.action == "reclassify")
    # The lead unit signed or finished it and kept it.
    lead_kept = sa.exists().where(
        Assignment.ticket_id == Ticket.id,
        Assignment.unit_id == Ticket.lead_unit_id,
        Assignment.role == AssignmentRole.lead,
        sa.or_(Assignment.signed_at.is_not(None), Assignment.finished_at.is_not(None)),
        sa.or_(
            Assignment.return_status.is_(None),
            Assignment.return_status == DecisionStatus.rejected,
        ),
    )
    query = (
        sa.select(
            Ticket.content,
            Ticket.received_at,
            Ticket.channel,
            Ticket.request_type,
            Ticket.urgency,
            Ticket.transfer_target,
            Ticket.area_source,
            Category.code.label("category"),
            Area.code.label("area"),
            Unit.code.label("unit"),
            creator.role.label("creator_role"),
            received.payload["urgency_warning"]["decision"].as_string().label("decision"),
            category_seen.label("category_seen"),
            reclassified.label("reclassified"),
            lead_kept.label("lead_kept"),
        )
        .join(creator, creator.id == Ticket.created_by_id)
        .outerjoin(Category, Category.id == Ticket.category_id)
        .outerjoin(Area, Area.id == Ticket.area_id)
        .outerjoin(Unit, Unit.id == Ticket.lead_unit_id)
        .outerjoin(received, sa.and_(received.ticket_id == Ticket.id, received.action == "receive"))
        .where(Ticket.status.not_in(NOT_A_MATTER), Ticket.merged_into_id.is_(None))
        .order_by(Ticket.received_at, Ticket.id)
    )
    if since is not None:
        query = query.where(Ticket.received_at >= since)
    return query


def _example(row):
    staff = row.creator_role != Role.portal
    category = row.category if row.category and (staff or row.category_seen) else None
    # An Open311 ticket's type comes from its service, a grid report's is the form's default
    # (求助) more often than a choice: only 调整分类 confirms them.
    typed_by_person = row.channel not in (Channel.open311, Channel.grid) or row.reclassified
    return Example(
        text=ticket_text(row.content),
        received_at=row.received_at,
        category=category,
        request_type=row.request_type.value if typed_by_person else None,
        emergency=_emergency(row, staff),
        area=row.area if row.area_source == placing.TYPED else None,
        unit=row.unit if row.unit and row.lead_kept else None,
        channel=row.channel.value,
    )


def _emergency(row, staff):
    if row.reclassified:
        return row.urgency == Urgency.emergency
    if row.transfer_target in EMERGENCY_LINES:
        return True
    if row.decision == EmergencyDecision.kept.value:
        return True
    if row.decision == EmergencyDecision.dismissed.value:
        return False
    if staff and row.urgency == Urgency.emergency:
        return True
    return None


# -- running a retraining ----------------------------------------------------------------------

#: Longest error message kept as a failed run's reason.
REASON_MAX = 1000
#: The settings of the loop (系统设置, group 分类模型).
RETRAIN_DAYS = "classifier.retrain_days"


def current_policy(session):
    """The gate's and the training's ``classifier.learning.Policy`` from the settings."""
    return model_learning.Policy(
        holdout_days=settings.get(session, "classifier.holdout_days"),
        min_training=settings.get(session, "classifier.min_training"),
        min_holdout=settings.get(session, "classifier.min_holdout"),
        tolerance=settings.get(session, "classifier.tolerance"),
    )


def schedule_due(session, now):
    """Whether the weekly schedule asks for a run at ``now``: ``classifier.retrain_days``
    days after the last finished run (any outcome; the first run at once), never when the
    setting is 0."""
    days = settings.get(session, RETRAIN_DAYS)
    if not days:
        return False
    last = session.scalar(sa.select(sa.func.max(ModelRetrain.finished_at)))
    return last is None or now - last >= dt.timedelta(days=days)


@dataclass
class Run:
    """A finished run as ``run_due`` leaves it (the ``ModelRetrain`` row's values)."""

    id: int
    trigger: str
    status: str
    reason: str
    candidate_version: str | None
    active_version: str | None
    figures: dict
    seconds: float


def run_due(session_factory, now=None, *, models_dir, policy=None):
    """The scheduler's job and ``hotline classifier retrain``: run the oldest pending
    retraining or, when none is pending, the one the schedule makes due (``schedule_due``:
    a new ``schedule`` row). Returns the finished ``Run``, or None when nothing was due or
    another process is running one.

    One run at a time, in three steps so that no transaction or lock is held while training
    (about a minute):

    1. **claim** (one short transaction): under an advisory lock on PostgreSQL (SQLite's
       transactions hold the write lock), nothing else running (a run started more than
       ``STALE_AFTER`` ago is taken for dead and its claim taken over), the row taken
       ``FOR UPDATE SKIP LOCKED`` and marked ``running`` by a conditional UPDATE;
    2. **train**: the active version's bundle, the confirmed tickets (``examples``) and
       ``classifier.learning.retrain``, which trains a candidate and judges it against the
       active model on the held-out recent days;
    3. **decide** (one transaction): the candidate registered (``model_versions.save``,
       even when kept back) and, when promoted, activated; the row finished with status,
       reason and both models' figures; audited. A candidate is not promoted over a version
       someone activated while it trained. A run that lost its claim meanwhile writes
       nothing.

    An error on the way finishes the row as ``failed`` with the error's message; nothing
    else is written (the candidate is registered only with the finished row). ``policy``
    replaces the settings' (tests)."""
    now = now or utcnow()
    started = time.monotonic()
    run_id = _claim(session_factory, now)
    if run_id is None:
        return None
    saved = None
    try:
        session = session_factory()
        try:
            active = model_versions.current(session, models_dir)
            bundle, meta = (
                model_versions.load(session, models_dir, active) if active else (None, {})
            )
            # The newest ticket the active model learned from (a retrained version's).
            trained_until = (meta or {}).get("to")
            trained_until = dt.datetime.fromisoformat(trained_until) if trained_until else None
            rules = policy or current_policy(session)
            tickets = examples(session)
        finally:
            session.rollback()
            session.close()
        outcome = model_learning.retrain(
            tickets.examples,
            bundle,
            now=now,
            policy=rules,
            unlabelled=tickets.unlabelled,
            active_until=trained_until,
        )
        del bundle, tickets
        finished_at = now + dt.timedelta(seconds=time.monotonic() - started)
        session = session_factory()
        try:
            row = _still_ours(session, run_id, now)
            if row is None:
                session.rollback()
                return None
            status, reason = outcome.status, outcome.reason
            if outcome.bundle is not None:
                meta = {**(outcome.meta or {}), "retrain": run_id}
                saved = model_versions.save(session, None, outcome.bundle, models_dir, meta)
            switched = model_versions.current(session, models_dir)
            if status == PROMOTED and switched != active:
                status = KEPT
                reason = f"训练期间在用模型已切换为 {switched}，未自动启用。{reason}"
            if status == PROMOTED:
                model_versions.activate(session, None, saved, reason=f"自动评估通过：{reason}")
            _finish(row, status, reason, finished_at, saved, active, _plain(outcome.figures))
            session.commit()
            return _run(row, time.monotonic() - started)
        except Exception:
            session.rollback()
            raise
        finally:
            session.close()
    except Exception as exc:
        log.exception("classifier retrain %s failed", run_id)
        if saved is not None:  # this process's copy of a version never registered
            shutil.rmtree(Path(models_dir) / saved, ignore_errors=True)
        return _fail(session_factory, run_id, now, exc, time.monotonic() - started)
    except BaseException as exc:  # the process is stopping: the run does not stay "running"
        _fail(session_factory, run_id, now, exc, time.monotonic() - started)
        raise


def _claim(session_factory, now):
    """The id of the run this process now holds, or None."""
    session = session_factory()
    try:
        postgres = session.get_bind().dialect.name == "postgresql"
        if postgres and not session.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(LOCK_KEY))):
            session.rollback()
            return None  # another process is asking or claiming at this moment
        running = session.scalars(
            sa.select(ModelRetrain).where(ModelRetrain.status == RUNNING).order_by(ModelRetrain.id)
        ).all()
        if any(row.started_at is None or row.started_at > now - STALE_AFTER for row in running):
            session.rollback()
            return None
        query = (
            sa.select(ModelRetrain)
            .where(ModelRetrain.status == PENDING)
            .order_by(ModelRetrain.id)
            .limit(1)
        )
        if postgres:
            query = query.with_for_update(skip_locked=True)
        row = running[0] if running else session.scalars(query).first()
        if row is None and schedule_due(session, now):
            row = ModelRetrain(status=PENDING, trigger="schedule", requested_at=now, figures={})
            session.add(row)
            session.flush()
            audit(
                session,
                None,
                "classifier.retrain_request",
                target=str(row.id),
                payload={"trigger": "schedule"},
            )
        if row is None:
            session.rollback()
            return None
        if row.status == RUNNING:
            log.warning(
                "classifier retrain %s started %s looks dead; taking it over",
                row.id,
                row.started_at,
            )
        # Conditional: a row another process claimed (or took over) first is left alone.
        claimed = session.execute(
            sa.update(ModelRetrain)
            .where(
                ModelRetrain.id == row.id,
                ModelRetrain.status == row.status,
                ModelRetrain.started_at.is_(None)
                if row.started_at is None
                else ModelRetrain.started_at == row.started_at,
            )
            .values(status=RUNNING, started_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            session.rollback()
            return None
        run_id = row.id
        session.commit()
        return run_id
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()


def _still_ours(session, run_id, started_at):
    """The run's row, locked, if this process still holds its claim (its ``started_at``)."""
    row = session.get(ModelRetrain, run_id, with_for_update=True, populate_existing=True)
    if row is None or row.status != RUNNING or row.started_at != started_at:
        log.warning(
            "classifier retrain %s was taken over by another process; result dropped", run_id
        )
        return None
    return row


def _finish(row, status, reason, finished_at, candidate, active, figures):
    row.status = status
    row.reason = reason
    row.finished_at = finished_at
    row.candidate_version = candidate
    row.active_version = active
    row.figures = figures
    audit(
        sa.inspect(row).session,
        None,
        "classifier.retrain",
        target=str(row.id),
        payload={
            "status": status,
            "trigger": row.trigger,
            "candidate": candidate,
            "active": active,
            "reason": reason,
        },
    )


def _fail(session_factory, run_id, now, exc, seconds):
    session = session_factory()
    try:
        row = _still_ours(session, run_id, now)
        if row is None:
            session.rollback()
            return None
        # The error's kind and first line (a database error's SQL and parameters stay in
        # the log): the page shows it to supervisors.
        first = (str(exc).strip().splitlines() or [""])[0]
        message = f"训练失败：{type(exc).__name__}: {first}"[:REASON_MAX]
        _finish(row, FAILED, message, now + dt.timedelta(seconds=seconds), None, None, {})
        session.commit()
        return _run(row, seconds)
    finally:
        session.close()


def _run(row, seconds):
    return Run(
        id=row.id,
        trigger=row.trigger,
        status=row.status,
        reason=row.reason,
        candidate_version=row.candidate_version,
        active_version=row.active_version,
        figures=row.figures,
        seconds=seconds,
    )


def _plain(value):
    """``value`` as plain JSON (numpy numbers and moments included)."""

    def convert(item):
        if hasattr(item, "isoformat"):
            return item.isoformat()
        if hasattr(item, "item"):
            return item.item()
        raise TypeError(type(item).__name__)

    return json.loads(json.dumps(value or {}, default=convert))


#: The figures a run shows, candidate beside active: the gate's headline figures first
#: (``classifier.learning.HEADLINE``), then those it reports without deciding on them.
FIGURES = (
    *model_learning.HEADLINE,
    ("category_top3", "n_category", "分类前三命中率"),
    ("emergency_false_alarm_rate", "n_not_emergency", "紧急误报率"),
)


def figure_rows(figures):
    """A run's figures as rows for a table (the command, the model page): ``{"key",
    "name", "candidate", "active", "change", "n"}`` for each of ``FIGURES`` measured on
    either side; ``n`` is the held-out tickets it was measured on."""
    candidate = figures.get("candidate") or {}
    active = figures.get("active") or {}
    rows = []
    for key, count_key, name in FIGURES:
        new, old = candidate.get(key), active.get(key)
        if new is None and old is None:
            continue
        change = round(new - old, 4) if new is not None and old is not None else None
        rows.append(
            {
                "key": key,
                "name": name,
                "candidate": new,
                "active": old,
                "change": change,
                "n": candidate.get(count_key) or active.get(count_key) or 0,
            }
        )
    return rows
