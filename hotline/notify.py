"""Notifications to units: the in-app inbox always, copies by other channels through the outbox.

``deliver(session, messages, now)`` writes each message to its unit's inbox
(``notifications`` table) in the caller's transaction and, for each external channel
configured, one copy per message to the outbox (``hotline.outbox``, delivery key
``unit:<notification id>:<channel>``) in the same transaction: a process killed after the
commit loses no copy, and none leaves before the commit. ``NOTIFY_SENDERS``
(comma-separated) names the copies units get:

- ``logging`` (default): one log line per message after commit, for the operators' log
  pipeline (no outbox copy: the inbox is the record);
- ``wecom``: a WeChat Work (企业微信) group robot (``NOTIFY_WECOM_URL``);
- ``sms``: text messages to the unit's duty phones (``Unit.phones``, 值班电话, kept by the
  administration's units page or ``hotline import units``) as they were when the message was
  made (``NOTIFY_SMS_URL``); a unit without any gets its inbox only.

How a channel is delivered (a gateway, the log, or a class of one's own:
``NOTIFY_SMS_SENDER=package.module:Class``) is ``hotline.outbox_delivery``'s business.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from hotline import outbox
from hotline.db import bulk_insert, utcnow
from hotline.enums import Role, UnitKind
from hotline.errors import Forbidden
from hotline.models import Notification, Ticket, Unit, unit_areas
from hotline.outbox_delivery import sender_setting

log = logging.getLogger(__name__)

#: The channels a unit's copies may go by (``NOTIFY_SENDERS``), and the URL each needs.
STAFF_CHANNELS = {"wecom": "NOTIFY_WECOM_URL", "sms": "NOTIFY_SMS_URL"}


@dataclass(frozen=True)
class Message:
    unit_id: int
    unit_code: str
    kind: str
    level: str
    title: str
    body: str
    ticket_id: int | None = None
    ticket_number: str | None = None


def deliver(session, messages, now):
    """Put ``messages`` in their units' inboxes and their copies in the outbox, in the
    caller's transaction (one statement each, however many messages a tick fires)."""
    if not messages:
        return
    notifier = session.info.get("notifier")
    channels = notifier.channels if notifier is not None else ()
    rows = [
        {
            "unit_id": m.unit_id,
            "ticket_id": m.ticket_id,
            "kind": m.kind,
            "level": m.level,
            "title": m.title,
            "body": m.body,
            "created_at": now,
        }
        for m in messages
    ]
    if not channels:
        bulk_insert(session, Notification.__table__, rows)
    else:
        returned = bulk_insert(
            session,
            Notification.__table__,
            rows,
            returning=("id", "unit_id", "ticket_id", "kind", "title", "body"),
        )
        _copies(session, messages, returned, channels, now)
    if notifier is not None and notifier.log_lines:
        session.info.setdefault("pending_notifications", []).extend(messages)
    session.info.setdefault("changed_inboxes", set()).update(m.unit_id for m in messages)


def _copies(session, messages, returned, channels, now):
    """One outbox copy per inbox item and channel. The inserted ids are matched to the
    messages by content (RETURNING promises no order; two messages alike in every column
    make alike copies, so which id goes with which does not matter)."""
    ids = defaultdict(list)
    for notification_id, *content in returned:
        ids[tuple(content)].append(notification_id)
    phones = {}
    if "sms" in channels:
        with session.no_autoflush:
            phones = dict(
                session.execute(
                    sa.select(Unit.id, Unit.phones).where(
                        Unit.id.in_({m.unit_id for m in messages})
                    )
                ).all()
            )
    copies = []
    for m in messages:
        notification_id = ids[(m.unit_id, m.ticket_id, m.kind, m.title, m.body)].pop(0)
        for channel in channels:
            if channel == "sms":
                recipient = ",".join(phones.get(m.unit_id) or ())
                if not recipient:
                    continue
            else:
                recipient = m.unit_code
            copies.append(
                {
                    "delivery_key": f"unit:{notification_id}:{channel}",
                    "channel": channel,
                    "audience": outbox.UNIT,
                    "recipient": recipient,
                    "kind": m.kind,
                    "ticket_id": m.ticket_id,
                    "notification_id": notification_id,
                    "title": m.title,
                    "body": m.body,
                }
            )
    # The keys name inbox items just made: they cannot be in the outbox yet.
    outbox.enqueue(session, copies, now=now, new_keys=True)


def inbox_unit_of(db, user, mayors_office_code):
    """The unit whose inbox is ``user``'s own: their unit; for a leader their district's
    government (or the mayor's office, ``mayors_office_code``); None for an administrator."""
    if user.unit_id is not None:
        return db.get(Unit, user.unit_id)
    if user.role == Role.leader:
        if user.district_id is not None:
            government = db.scalars(
                sa.select(Unit)
                .join(unit_areas, unit_areas.c.unit_id == Unit.id)
                .where(
                    unit_areas.c.area_id == user.district_id,
                    Unit.kind == UnitKind.district_government,
                )
            ).first()
            if government is not None:
                return government
        return db.scalars(sa.select(Unit).where(Unit.code == mayors_office_code)).first()
    return None


def unread_count(db, unit_id):
    """How many items of ``unit_id``'s inbox nobody has read (the message centre's bell)."""
    return db.scalar(
        sa.select(sa.func.count())
        .select_from(Notification)
        .where(Notification.unit_id == unit_id, Notification.read_at.is_(None))
    )


def inbox_query(unit_id, *, unread_only=False, level=None, before=None):
    """(item, ticket number) of ``unit_id``'s inbox, unordered: the one list the API and the
    message centre page cut (newest first, by id)."""
    query = (
        sa.select(Notification, Ticket.number)
        .outerjoin(Ticket, Ticket.id == Notification.ticket_id)
        .where(Notification.unit_id == unit_id)
    )
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    if level is not None:
        query = query.where(Notification.level == level)
    if before is not None:
        query = query.where(Notification.id < before)
    return query


def mark_read(db, user, item, own_unit):
    """Mark ``item`` of ``user``'s own inbox (``own_unit``) read; again is fine (the first
    reader and time are kept). Returns whether it changed; the caller commits. Overseers
    looking into another unit's inbox cannot mark it read."""
    if own_unit is None or own_unit.id != item.unit_id:
        raise Forbidden("只能处理本单位的消息", code="INBOX_NOT_YOURS")
    if item.read_at is not None:
        return False
    item.read_at = utcnow()
    item.read_by_id = user.id
    _changed(db, own_unit.id)
    return True


def mark_all_read(db, user, own_unit, *, up_to=None):
    """全部已读: mark every unread item of ``user``'s own inbox read, up to the item ``up_to``
    (the newest one the reader was shown; one that arrived since stays unread). Items read
    before keep their first reader and time. Returns how many changed; the caller commits."""
    if own_unit is None:
        raise Forbidden("您没有本单位的消息", code="INBOX_NOT_YOURS")
    condition = [Notification.unit_id == own_unit.id, Notification.read_at.is_(None)]
    if up_to is not None:
        condition.append(Notification.id <= up_to)
    changed = db.execute(
        sa.update(Notification)
        .where(*condition)
        .values(read_at=utcnow(), read_by_id=user.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed:
        # Items already loaded in this session must not show their old state.
        db.expire_all()
        _changed(db, own_unit.id)
    return changed


def _changed(db, unit_id):
    """Tell the inbox watchers (the pages' live message centre) after commit that
    ``unit_id``'s inbox changed."""
    db.info.setdefault("changed_inboxes", set()).add(unit_id)


def staff_channels(config):
    """``(channels, log_lines)`` from ``NOTIFY_SENDERS``: the outbox channels units' copies
    go by, and whether each message is logged. A bad setting stops the start."""
    channels, log_lines = [], False
    for name in filter(None, (n.strip() for n in (config.get("NOTIFY_SENDERS") or "").split(","))):
        if name == "logging":
            log_lines = True
        elif name in STAFF_CHANNELS:
            _, chosen = sender_setting(config, name)
            url = STAFF_CHANNELS[name]
            if not chosen and not config.get(url):
                raise ValueError(
                    f"NOTIFY_SENDERS names {name} but {url} is not set "
                    f"(or set NOTIFY_{name.upper()}_SENDER=logging to log the copies)"
                )
            if name not in channels:
                channels.append(name)
        elif ":" in name:
            raise ValueError(
                f"NOTIFY_SENDERS: {name!r}: a sender class now delivers a channel of the outbox: "
                "set NOTIFY_SMS_SENDER (or NOTIFY_WECOM_SENDER) to it and name sms (or wecom) here"
            )
        else:
            raise ValueError(
                f"NOTIFY_SENDERS: unknown sender {name!r} (one of logging, "
                f"{', '.join(STAFF_CHANNELS)})"
            )
    if config.get("NOTIFY_SMS_RECIPIENTS"):
        # The phones moved to the units table (migration 0011): refuse to start rather than
        # let a deployment silently stop texting the units it listed here.
        raise ValueError(
            "NOTIFY_SMS_RECIPIENTS 已不再使用：各单位的值班电话请在“系统管理 → 承办单位”"
            "中填写（或用 hotline import units 导入“值班电话”列），然后删除此配置"
        )
    return channels, log_lines


class Notifier:
    def __init__(self, channels=(), log_lines=False):
        #: The outbox channels units' copies go by (``NOTIFY_SENDERS``).
        self.channels = list(channels)
        #: Whether each message is logged after commit.
        self.log_lines = log_lines
        #: Called after commit with the ids of the units whose inbox changed (new items, items
        #: read): the live message centre registers one (``add_inbox_watcher``).
        self.inbox_watchers = []

    def log(self, messages):
        for m in messages:
            log.info("notify %s %s %s: %s", m.unit_code, m.kind, m.ticket_number or "-", m.title)

    def inbox_changed(self, unit_ids):
        for watcher in self.inbox_watchers:
            try:
                watcher(unit_ids)
            except Exception:
                log.exception("inbox watcher %r failed", watcher)


def add_inbox_watcher(app, watcher):
    """Call ``watcher(unit_ids)`` after every commit that changed those units' inboxes.
    (A layer above registers it: hotline knows nothing of how pages are kept live.)"""
    app.extensions["hotline.notify"].inbox_watchers.append(watcher)


def init_app(app):
    channels, log_lines = staff_channels(app.config)
    app.extensions["hotline.notify"] = Notifier(channels, log_lines)


@event.listens_for(Session, "after_commit")
def _after_commit(session):
    """Log the messages and tell the inbox watchers (the copies are the outbox's: sent by
    ``hotline.outbox_delivery`` once this commit wrote them)."""
    messages = session.info.pop("pending_notifications", None)
    changed = session.info.pop("changed_inboxes", set())
    notifier = session.info.get("notifier")
    if notifier is None:
        return
    if messages:
        notifier.log(messages)
    if changed:
        notifier.inbox_changed(sorted(changed))


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session, _previous_transaction):
    session.info.pop("pending_notifications", None)
    session.info.pop("changed_inboxes", None)
