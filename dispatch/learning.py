"""The classifier learns from the centre's own decisions (issue 19): the tickets' confirmed
values become training examples, a retraining is asked for and run one at a time, and its
gate decision is kept as a ``model_retrains`` row (``hotline.models.ModelRetrain``).

- ``request(session, actor, trigger)``: ask for a retraining (重新训练): a ``pending`` row,
  or the one already pending or running;
- ``run_due(session_factory, …)``: the scheduler's and the command's run (see its docstring);
- ``examples(session, since)``: the confirmed tickets as ``classifier.learning.Example``\\ s.
"""

import datetime as dt

import sqlalchemy as sa

from hotline.audit import audit
from hotline.db import utcnow
from hotline.enums import Role
from hotline.errors import Forbidden
from hotline.models import ModelRetrain

#: Who may ask for a retraining (an actor of None is the command line or the schedule).
REQUEST_ROLES = frozenset({Role.admin})
#: Who may read the runs (the model page, ``GET /api/v1/classifier/retrains``).
READ_ROLES = frozenset({Role.admin, Role.supervisor})
#: What asked for a run.
TRIGGERS = ("schedule", "command", "page")
PENDING, RUNNING = "pending", "running"
PROMOTED, KEPT, SKIPPED, FAILED = "promoted", "kept", "skipped", "failed"
#: A run not finished after this long is taken for dead (its process was killed): another
#: scheduler may take its claim over. Training takes minutes, not hours.
STALE_AFTER = dt.timedelta(hours=3)
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
