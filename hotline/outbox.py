"""The notification outbox: every copy of a notification that leaves the system (an SMS, a
WeChat Work robot post, a WeChat template message) is first a row of ``outbox``, written in
the transaction of the change that caused it; delivering it comes after the commit.

So a process that dies between the commit and the send loses nothing, and a copy cannot be
made twice: each has a ``delivery_key`` naming what it is a copy of (the unique constraint
drops a second one, e.g. a retried request or a second scheduler).

Citizens' messages (``tell_citizen``) are written from the administrator's templates
(``TEMPLATES``, kept as settings: 系统管理 › 通知模板).
"""

import string

from hotline import settings
from hotline.db import bulk_insert, utcnow
from hotline.models import OutboxMessage

#: The messages a citizen receives: kind → the placeholders its template may use.
TEMPLATES = {
    "citizen_code": ("code", "minutes"),
    "citizen_received": ("number", "reply_by"),
    "citizen_finished": ("number", "reply", "rating_url"),
    "citizen_reopened": ("number",),
}
#: What the outbox's ``audience`` column holds.
UNIT, CITIZEN = "unit", "citizen"
#: The channel (medium) of a citizen's text message.
SMS = "sms"


def template_key(kind):
    return f"notify.template.{kind}"


def render(session, kind, fields):
    """The citizen message ``kind`` as the administrator's template words it, ``fields``
    filled in (a placeholder without a value stays empty)."""
    template = settings.get(session, template_key(kind))
    return string.Formatter().vformat(template, (), _Fields(fields))


class _Fields(dict):
    def __missing__(self, key):
        return ""


def placeholders(text):
    """The placeholder names used in a template's ``text`` (ValueError if it is malformed)."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def enqueue(session, rows, now=None):
    """Write copies to deliver, in the caller's transaction. ``rows`` are dicts of
    ``OutboxMessage`` columns with at least delivery_key, channel, audience, kind; a copy
    whose delivery key is already there is skipped. Returns how many were written."""
    if not rows:
        return 0
    now = now or utcnow()
    complete = [
        {
            "recipient": None,
            "ticket_id": None,
            "notification_id": None,
            "title": "",
            "body": "",
            "payload": {},
            "state": "pending",
            "created_at": now,
            "next_attempt_at": now,
            "attempts": 0,
            **row,
        }
        for row in rows
    ]
    inserted = bulk_insert(
        session,
        OutboxMessage.__table__,
        complete,
        returning=("id",),
        skip_conflicts=True,
    )
    if inserted:
        session.info["outbox_written"] = True
    return len(inserted)


def tell_citizen(session, *, kind, phone, fields, delivery_key, ticket_id=None, now=None):
    """Text the citizen at ``phone`` the message ``kind`` (``TEMPLATES``) with ``fields``,
    once per ``delivery_key`` (e.g. ``received:<ticket id>``). Nothing is sent without a
    phone. Returns whether a copy was written."""
    if not phone:
        return False
    body = render(session, kind, fields)
    written = enqueue(
        session,
        [
            {
                "delivery_key": f"citizen:{SMS}:{delivery_key}",
                "channel": SMS,
                "audience": CITIZEN,
                "recipient": phone,
                "kind": kind,
                "ticket_id": ticket_id,
                "body": body,
                "payload": {"template": kind},
            }
        ],
        now=now,
    )
    return bool(written)
