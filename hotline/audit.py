"""Audit rows for state changes outside tickets (ticket changes are their own events)."""

from flask import has_request_context, request

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
            remote_addr=request.remote_addr if has_request_context() else None,
        )
    )
