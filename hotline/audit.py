"""Audit rows for state changes outside tickets (ticket changes are their own events)."""

from hotline.db import utcnow
from hotline.models import AuditLog


def audit(session, actor, action, *, target=None, payload=None):
    session.add(
        AuditLog(
            actor_id=actor.id if actor else None,
            action=action,
            target=target,
            payload=payload or {},
            created_at=utcnow(),
        )
    )
