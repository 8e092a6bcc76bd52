"""Audit rows for state changes outside tickets (ticket changes are their own events)."""

from flask import has_request_context, request

from hotline.db import utcnow
from hotline.logs import current_request_id
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
            request_id=current_request_id(),
        )
    )


def values_of(row, fields):
    """The audited values of ``row``: ``fields`` maps a name to an attribute name or to a
    function of the row (e.g. a unit's area codes)."""
    values = {}
    for name, source in fields.items():
        value = source(row) if callable(source) else getattr(row, source)
        values[name] = _plain(value)
    return values


def changes(before, after):
    """``{name: [old, new]}`` for every value that differs (the audit page shows old → new)."""
    return {
        name: [before.get(name), after.get(name)]
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    }


def audit_change(session, actor, action, *, target, before, after, extra=None):
    """Audit a change to one row as old → new values; nothing is written when nothing
    changed. Returns the changes."""
    diff = changes(before or {}, after or {})
    if diff or before is None or after is None:
        audit(session, actor, action, target=target, payload={"changes": diff, **(extra or {})})
    return diff


def _plain(value):
    if hasattr(value, "value") and not isinstance(value, int | float | str | bool):
        return value.value  # enums
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    return value
