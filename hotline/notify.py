"""Notifications to units: one interface, the in-app inbox always, other channels pluggable.

``deliver(session, messages)`` writes each message to its unit's inbox (``notifications``
table) in the caller's transaction and, once that commits, hands the messages to every
configured sender. Senders are named in ``NOTIFY_SENDERS`` (comma-separated):

- ``logging`` (default): one log line per message, for the operators' log pipeline;
- ``wecom``: a WeChat Work (企业微信) group robot, ``NOTIFY_WECOM_URL`` its webhook;
- ``sms``: an SMS gateway taking ``{"mobiles": [...], "content": "..."}`` at
  ``NOTIFY_SMS_URL``, to the unit's duty phones (``Unit.phones``, 值班电话, kept by the
  administration's units page or ``hotline import units``) as they were when the message
  was made;
- ``package.module:Class``: any class built as ``Class(config)`` with a ``send(messages)``.

A sender that fails is logged and skipped: the inbox already holds the message, so nothing is
lost, and a slow gateway cannot hold up the scheduler for long (5 s timeout).
"""

import dataclasses
import importlib
import logging
from dataclasses import dataclass

import requests
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from hotline.db import bulk_insert, utcnow
from hotline.enums import Role, UnitKind
from hotline.errors import Forbidden
from hotline.models import Notification, Ticket, Unit, unit_areas

log = logging.getLogger(__name__)

#: Longest text a WeChat Work robot accepts in one message (bytes, UTF-8).
WECOM_MAX_BYTES = 2048
TIMEOUT_SECONDS = 5


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
    #: The unit's duty phones when the message was made (filled by ``deliver`` for senders
    #: that text them).
    phones: tuple = ()


def deliver(session, messages, now):
    """Put ``messages`` in their units' inboxes; senders get them after commit (with the
    units' duty phones, read in this transaction, when a sender texts them)."""
    if not messages:
        return
    bulk_insert(
        session,
        Notification.__table__,
        [
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
        ],
    )
    if _texts_phones(session):
        messages = _with_phones(session, messages)
    session.info.setdefault("pending_notifications", []).extend(messages)


def _texts_phones(session):
    notifier = session.info.get("notifier")
    return notifier is not None and any(
        getattr(sender, "texts_duty_phones", False) for sender in notifier.senders
    )


def _with_phones(session, messages):
    unit_ids = {m.unit_id for m in messages}
    with session.no_autoflush:
        phones = dict(
            session.execute(sa.select(Unit.id, Unit.phones).where(Unit.id.in_(unit_ids))).all()
        )
    return [dataclasses.replace(m, phones=tuple(phones.get(m.unit_id) or ())) for m in messages]


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


class LoggingSender:
    def __init__(self, config):
        pass

    def send(self, messages):
        for m in messages:
            log.info("notify %s %s %s: %s", m.unit_code, m.kind, m.ticket_number or "-", m.title)


class WeComSender:
    """Posts to a WeChat Work group robot, several notifications per message."""

    def __init__(self, config):
        self.url = config.get("NOTIFY_WECOM_URL")
        if not self.url:
            raise ValueError("NOTIFY_SENDERS names wecom but NOTIFY_WECOM_URL is not set")

    def send(self, messages):
        for content in _chunks([f"{m.title}\n{m.body}" for m in messages], WECOM_MAX_BYTES):
            response = requests.post(
                self.url,
                json={"msgtype": "text", "text": {"content": content}},
                timeout=TIMEOUT_SECONDS,
            )
            response.raise_for_status()
            # The robot answers errors (bad key, rate limit) with HTTP 200 and an errcode.
            answer = response.json()
            if answer.get("errcode"):
                raise RuntimeError(f"WeChat Work robot refused: {answer}")


class SmsSender:
    """Posts each notification to an SMS gateway for its unit's duty phones (a unit without
    any gets its inbox only)."""

    texts_duty_phones = True

    def __init__(self, config):
        self.url = config.get("NOTIFY_SMS_URL")
        if not self.url:
            raise ValueError("NOTIFY_SENDERS names sms but NOTIFY_SMS_URL is not set")
        if config.get("NOTIFY_SMS_RECIPIENTS"):
            # The phones moved to the units table (migration 0011): refuse to start rather
            # than let a deployment silently stop texting the units it listed here.
            raise ValueError(
                "NOTIFY_SMS_RECIPIENTS 已不再使用：各单位的值班电话请在“系统管理 → 承办单位”"
                "中填写（或用 hotline import units 导入“值班电话”列），然后删除此配置"
            )

    def send(self, messages):
        for m in messages:
            if m.phones:
                response = requests.post(
                    self.url,
                    json={"mobiles": list(m.phones), "content": f"{m.title} {m.body}"},
                    timeout=TIMEOUT_SECONDS,
                )
                response.raise_for_status()


def _truncate(text, max_bytes):
    """``text`` cut at a character boundary to fit ``max_bytes`` of UTF-8 (marked with …)."""
    if len(text.encode()) <= max_bytes:
        return text
    return text.encode()[: max_bytes - 3].decode(errors="ignore") + "…"


def _chunks(texts, max_bytes):
    chunk, size = [], 0
    for text in (_truncate(t, max_bytes) for t in texts):
        length = len(text.encode()) + 2
        if chunk and size + length > max_bytes:
            yield "\n\n".join(chunk)
            chunk, size = [], 0
        chunk.append(text)
        size += length
    if chunk:
        yield "\n\n".join(chunk)


SENDERS = {"logging": LoggingSender, "wecom": WeComSender, "sms": SmsSender}


def build_senders(config):
    senders = []
    names = (config.get("NOTIFY_SENDERS") or "").split(",")
    for name in filter(None, (n.strip() for n in names)):
        if name in SENDERS:
            cls = SENDERS[name]
        elif ":" in name:
            module, _, attr = name.partition(":")
            cls = getattr(importlib.import_module(module), attr)
        else:
            raise ValueError(
                f"NOTIFY_SENDERS: unknown sender {name!r} "
                f"(one of {', '.join(SENDERS)} or package.module:Class)"
            )
        senders.append(cls(config))
    return senders


class Notifier:
    def __init__(self, senders):
        self.senders = senders
        #: Called after commit with the ids of the units whose inbox changed (new items, items
        #: read): the live message centre registers one (``add_inbox_watcher``).
        self.inbox_watchers = []

    def send(self, messages):
        for sender in self.senders:
            try:
                sender.send(messages)
            except Exception:
                log.exception("%s could not send %d notification(s)", type(sender), len(messages))

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
    app.extensions["hotline.notify"] = Notifier(build_senders(app.config))


@event.listens_for(Session, "after_commit")
def _send_pending(session):
    messages = session.info.pop("pending_notifications", None)
    changed = session.info.pop("changed_inboxes", set())
    notifier = session.info.get("notifier")
    if notifier is None:
        return
    if messages:
        notifier.send(messages)
        changed |= {m.unit_id for m in messages}
    if changed:
        notifier.inbox_changed(sorted(changed))


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session, _previous_transaction):
    session.info.pop("pending_notifications", None)
    session.info.pop("changed_inboxes", None)
