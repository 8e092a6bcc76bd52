"""Delivering the outbox (``hotline.outbox``): the senders of each channel and the loop that
hands them the copies due, marks what went and retries what did not.

Channels (媒介) and their senders, chosen per channel by ``NOTIFY_<CHANNEL>_SENDER``:

- ``sms``: ``NOTIFY_SMS_URL``, an SMS gateway taking ``{"mobiles": [...], "content": "..."}``;
  recipient: phones, comma-joined (a unit's duty phones, or a citizen's mobile);
- ``wecom``: ``NOTIFY_WECOM_URL``, a WeChat Work (企业微信) group robot; recipient: the unit's
  code (the robot posts to its group);
- ``wechat``: ``NOTIFY_WECHAT_URL``, WeChat's template message API (``touser``,
  ``template_id``, ``data``; template ids by kind in ``NOTIFY_WECHAT_TEMPLATES``); recipient:
  a citizen's openid.

A sender setting is ``logging`` (one INFO line with the full text on the ``hotline.outbox``
logger: what ``make demo`` shows in its terminal, the citizen's code included), ``http`` (the
gateway above) or ``package.module:Class`` (any class built as ``Class(config)``; ``send(copy)``
delivers one ``Copy`` or raises; it may also offer ``send_many(copies)`` returning
``{copy id: error text or None}``). Empty (the default): ``http`` when the channel's URL is set,
else ``logging``.

``deliver_due`` claims the copies due (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so processes
never claim the same copy; a claim moves the copy's next try ``lease_seconds`` ahead, so the
copies of a process that dies mid-send are taken up again after that), sends them outside any
change's transaction, marks each sent only after its sender returned, and on failure retries
after 30 s, 1, 2, 4 … minutes (at most an hour) until ``OUTBOX_MAX_ATTEMPTS`` tries, then
marks it failed (系统管理 › 通知发送 shows it and sends it again on request).

Delivery is at least once: a copy whose process was killed after the gateway accepted it but
before it was marked is sent again. Each copy is marked right after its sender returned
(``MANY_PER_MARK`` copies for a sender taking several), so that is only the copy in flight.
The copy's ``delivery_key`` goes with it (HTTP header ``X-Delivery-Key``, where a gateway
takes headers) so a gateway can drop the double.

Who delivers: right after a commit that wrote copies, a single daemon thread of the process
(``Courier``, woken by an event: the request never waits for a gateway), and the scheduler's
sweep every ``OUTBOX_SWEEP_SECONDS`` for retries and for the copies of a process that died.
"""

import datetime as dt
import importlib
import logging
import re
import threading
import time
from dataclasses import dataclass

import requests
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from hotline import outbox
from hotline.db import utcnow
from hotline.enums import OutboxState
from hotline.models import OutboxMessage, Ticket

log = logging.getLogger(__name__)
#: Where the logging senders write what they "send" (the demo shows it in its terminal).
sent_log = logging.getLogger("hotline.outbox")

CHANNELS = ("sms", "wecom", "wechat")
#: Longest text a WeChat Work robot accepts in one message (bytes, UTF-8).
WECOM_MAX_BYTES = 2048
TIMEOUT_SECONDS = 5
#: How long a claimed copy is left to its process before another may claim it again (at
#: least twice what a batch of sends timing out one after another takes).
LEASE_SECONDS = 600
#: The wait before the n-th retry: 30 s × 2^(n-1), at most an hour.
BACKOFF_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600
#: Copies handed at once to a sender that takes several (``send_many``: a WeChat Work robot
#: post holds about this many), and marked together once it returned.
MANY_PER_MARK = 8
#: Longest error text kept on a copy.
ERROR_CHARS = 300


@dataclass(frozen=True)
class Copy:
    """One copy to deliver, as a sender gets it (a plain object, no database session)."""

    id: int
    delivery_key: str
    channel: str
    audience: str
    recipient: str | None
    kind: str
    title: str
    body: str
    payload: dict
    ticket_number: str | None = None

    @property
    def text(self):
        """Title and body in one line (an SMS, a log line)."""
        return " ".join(part for part in (self.title, self.body) if part)


# --- senders ------------------------------------------------------------------------------


class LoggingSender:
    """Writes the whole copy to the log (the demo's gateway: read the code in the terminal)."""

    def __init__(self, config, channel):
        self.channel = channel

    def send(self, copy):
        sent_log.info(
            "%s → %s [%s] %s",
            self.channel,
            copy.recipient or "-",
            copy.ticket_number or copy.kind,
            copy.text,
        )


#: One HTTP session per delivering thread: connections to a gateway are kept open between
#: copies (a new TCP, and in production TLS, handshake per text costs more than the text).
_local = threading.local()


def _post(url, body, delivery_key=None):
    headers = {"X-Delivery-Key": delivery_key} if delivery_key else {}
    if not hasattr(_local, "http"):
        _local.http = requests.Session()
    response = _local.http.post(url, json=body, headers=headers, timeout=TIMEOUT_SECONDS)
    response.raise_for_status()
    return response


def _refused_in_200(response, what):
    """WeChat's APIs answer errors (a bad key, a rate limit) with HTTP 200 and an errcode."""
    try:
        answer = response.json()
    except ValueError:
        return
    if isinstance(answer, dict) and answer.get("errcode"):
        raise RuntimeError(
            f"{what} refused: errcode {answer.get('errcode')} {answer.get('errmsg')}"
        )


class SmsSender:
    """Posts ``{"mobiles": [...], "content": "..."}`` to the SMS gateway, one copy a request."""

    def __init__(self, config, channel="sms"):
        self.url = config.get("NOTIFY_SMS_URL")
        if not self.url:
            raise ValueError("NOTIFY_SMS_SENDER is http but NOTIFY_SMS_URL is not set")

    def send(self, copy):
        phones = [p for p in (copy.recipient or "").split(",") if p]
        if not phones:
            raise ValueError("没有收信号码")
        _post(self.url, {"mobiles": phones, "content": copy.text}, copy.delivery_key)


class WeComSender:
    """Posts to a WeChat Work group robot, as many copies per message as fit (the robot takes
    20 messages a minute: a tick firing hundreds of timers must not post each alone)."""

    def __init__(self, config, channel="wecom"):
        self.url = config.get("NOTIFY_WECOM_URL")
        if not self.url:
            raise ValueError("NOTIFY_WECOM_SENDER is http but NOTIFY_WECOM_URL is not set")

    def send(self, copy):
        error = self.send_many([copy])[copy.id]
        if error:
            raise RuntimeError(error)

    def send_many(self, copies):
        outcome = {}
        for chunk in _chunks(copies, WECOM_MAX_BYTES):
            content = "\n\n".join(text for _, text in chunk)
            try:
                response = _post(self.url, {"msgtype": "text", "text": {"content": content}})
                _refused_in_200(response, "WeChat Work robot")
                error = None
            except Exception as exc:  # noqa: BLE001 — recorded on the copies, retried
                error = short_error(exc)
            outcome.update({copy.id: error for copy, _ in chunk})
        return outcome


class WeChatTemplateSender:
    """Posts a WeChat official account template message (模板消息) to a citizen's openid:
    ``{"touser", "template_id", "url", "data": {name: {"value"}}}`` at ``NOTIFY_WECHAT_URL``
    (the city's WeChat gateway, or WeChat's ``/cgi-bin/message/template/send?access_token=``
    itself: whoever holds the access token). The template of each kind is named in
    ``NOTIFY_WECHAT_TEMPLATES`` (``kind=template id``, comma-separated); its keywords are the
    placeholders of the administrator's template (``outbox.TEMPLATES``), and ``rating_url``,
    when there is one, is where the message leads."""

    def __init__(self, config, channel="wechat"):
        self.url = config.get("NOTIFY_WECHAT_URL")
        if not self.url:
            raise ValueError("NOTIFY_WECHAT_SENDER is http but NOTIFY_WECHAT_URL is not set")
        self.templates = wechat_templates(config.get("NOTIFY_WECHAT_TEMPLATES") or "")

    def send(self, copy):
        template_id = self.templates.get(copy.kind)
        if not template_id:
            raise ValueError(f"NOTIFY_WECHAT_TEMPLATES 未配置 {copy.kind} 的模板")
        fields = copy.payload.get("fields") or {}
        body = {
            "touser": copy.recipient,
            "template_id": template_id,
            "data": {name: {"value": str(value)} for name, value in fields.items()},
        }
        if fields.get("rating_url"):
            body["url"] = fields["rating_url"]
        response = _post(self.url, body, copy.delivery_key)
        _refused_in_200(response, "WeChat template message")


def wechat_templates(text):
    """``"citizen_received=ID1, citizen_finished=ID2"`` → ``{kind: template id}``."""
    templates = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, _, template_id = part.partition("=")
        if not template_id.strip():
            raise ValueError(f"NOTIFY_WECHAT_TEMPLATES: {part!r} is not kind=template_id")
        templates[kind.strip()] = template_id.strip()
    return templates


HTTP_SENDERS = {"sms": SmsSender, "wecom": WeComSender, "wechat": WeChatTemplateSender}


def sender_setting(config, channel):
    """What delivers ``channel``: ``logging``, ``http`` or ``package.module:Class``; and
    whether that was chosen (rather than defaulted because no URL is set)."""
    name = (config.get(f"NOTIFY_{channel.upper()}_SENDER") or "").strip()
    if name:
        return name, True
    return ("http" if config.get(f"NOTIFY_{channel.upper()}_URL") else "logging"), False


def build_senders(config):
    """``{channel: sender}`` for every channel, as configured (a bad setting stops the start)."""
    senders = {}
    for channel in CHANNELS:
        name, _ = sender_setting(config, channel)
        if name == "logging":
            senders[channel] = LoggingSender(config, channel)
        elif name == "http":
            senders[channel] = HTTP_SENDERS[channel](config, channel)
        elif ":" in name:
            module, _, attr = name.partition(":")
            senders[channel] = getattr(importlib.import_module(module), attr)(config)
        else:
            raise ValueError(
                f"NOTIFY_{channel.upper()}_SENDER: unknown sender {name!r} "
                "(logging, http or package.module:Class)"
            )
    return senders


def _truncate(text, max_bytes):
    """``text`` cut at a character boundary to fit ``max_bytes`` of UTF-8 (marked with …)."""
    if len(text.encode()) <= max_bytes:
        return text
    return text.encode()[: max_bytes - 3].decode(errors="ignore") + "…"


def _chunks(copies, max_bytes):
    """``[(copy, text), …]`` groups whose texts, joined by blank lines, fit ``max_bytes``."""
    chunk, size = [], 0
    for copy in copies:
        text = _truncate(f"{copy.title}\n{copy.body}" if copy.title else copy.body, max_bytes)
        length = len(text.encode()) + 2
        if chunk and size + length > max_bytes:
            yield chunk
            chunk, size = [], 0
        chunk.append((copy, text))
        size += length
    if chunk:
        yield chunk


_QUERY = re.compile(r"\?\S*")


def short_error(exc):
    """What went wrong, short and without a URL's query (a robot key, an access token)."""
    text = _QUERY.sub("?…", f"{type(exc).__name__}: {exc}")
    return text[:ERROR_CHARS]


# --- delivery -----------------------------------------------------------------------------


@dataclass
class Result:
    sent: int = 0
    retried: int = 0
    failed: int = 0

    @property
    def claimed(self):
        return self.sent + self.retried + self.failed


def backoff_seconds(attempts):
    """The wait after the ``attempts``-th failed try."""
    return min(BACKOFF_SECONDS * 2 ** (attempts - 1), BACKOFF_MAX_SECONDS)


def deliver_due(session_factory, senders, *, now=None, limit=100, max_attempts=8, lease=0):
    """Deliver up to ``limit`` copies due at ``now`` (default: the present) with ``senders``
    (``{channel: sender}``) and return what became of them. Safe to run in several
    processes at once; never raises for a sender's failure (it is recorded on the copy).
    ``lease``: seconds the claimed copies stay with this process (0: ``lease_seconds``)."""
    clock = (lambda: now) if now is not None else utcnow
    copies = _claim(session_factory, clock(), limit, lease)
    # Sends start only while the claim surely outlasts them (a send takes at most two
    # timeouts: connecting and reading): the rest wait for the claim to lapse, so a short
    # ``OUTBOX_LEASE_SECONDS`` never lets another process send a copy still queued here.
    send_until = time.monotonic() + lease_seconds(limit, lease) - 2 * TIMEOUT_SECONDS
    result = Result()
    by_channel = {}
    for copy in copies:
        by_channel.setdefault(copy.channel, []).append(copy)
    for channel, group in by_channel.items():
        sender = senders.get(channel)
        # Each copy is marked as soon as its sender returned, not after the whole batch: a
        # process killed mid-batch sends again only the copy (or the one post) in flight.
        step = MANY_PER_MARK if hasattr(sender, "send_many") else 1
        for start in range(0, len(group), step):
            if time.monotonic() > send_until:
                return result
            part = group[start : start + step]
            outcome = _send(sender, channel, part)
            _mark(session_factory, part, outcome, clock(), max_attempts, result)
    return result


def lease_seconds(limit, configured=0):
    """How long a batch of ``limit`` claimed copies stays with its process: ``configured``
    (``OUTBOX_LEASE_SECONDS``) when set (at least room for one send), else long enough for
    every send to time out."""
    if configured:
        return max(configured, 3 * TIMEOUT_SECONDS)
    return max(LEASE_SECONDS, 2 * limit * TIMEOUT_SECONDS)


def claim_statement(now, limit, lease=0):
    """Take up to ``limit`` copies due at ``now``: their next try moves a lease ahead, and
    their ids come back. On PostgreSQL copies another process is claiming are skipped, not
    waited for (SQLite has one writer at a time anyway)."""
    table = OutboxMessage.__table__
    due = (
        sa.select(table.c.id)
        .where(table.c.state == OutboxState.pending, table.c.next_attempt_at <= now)
        .order_by(table.c.next_attempt_at, table.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (
        sa.update(table)
        .where(table.c.id.in_(due.scalar_subquery()))
        .values(next_attempt_at=now + _seconds(lease_seconds(limit, lease)))
        .returning(table.c.id)
    )


def _claim(session_factory, now, limit, lease=0):
    table = OutboxMessage.__table__
    with session_factory(info={"publisher": None, "notifier": None, "courier": None}) as session:
        ids = session.scalars(claim_statement(now, limit, lease)).all()
        if not ids:
            session.rollback()
            return []
        rows = session.execute(
            sa.select(table, Ticket.number)
            .outerjoin(Ticket, Ticket.id == table.c.ticket_id)
            .where(table.c.id.in_(ids))
            .order_by(table.c.id)
        ).all()
        session.commit()
    return [
        Copy(
            id=row.id,
            delivery_key=row.delivery_key,
            channel=row.channel,
            audience=row.audience,
            recipient=row.recipient,
            kind=row.kind,
            title=row.title or "",
            body=row.body or "",
            payload=row.payload or {},
            ticket_number=row.number,
        )
        for row in rows
    ]


def _send(sender, channel, copies):
    """``{copy id: error or None}``: each copy handed to ``sender`` (a failure is caught)."""
    if sender is None:
        return {c.id: f"没有配置“{channel}”渠道的发送方式" for c in copies}
    if hasattr(sender, "send_many"):
        try:
            outcome = dict(sender.send_many(copies))
        except Exception as exc:  # noqa: BLE001 — recorded on the copies, retried
            log.warning("%s could not send %d copies: %s", channel, len(copies), short_error(exc))
            return {c.id: short_error(exc) for c in copies}
        return {c.id: outcome.get(c.id, "发送方未报告结果") for c in copies}
    outcome = {}
    for copy in copies:
        try:
            sender.send(copy)
            outcome[copy.id] = None
        except Exception as exc:  # noqa: BLE001 — recorded on the copy, retried
            outcome[copy.id] = short_error(exc)
            log.warning("%s copy %s not sent: %s", channel, copy.delivery_key, outcome[copy.id])
    return outcome


def _mark(session_factory, copies, outcome, now, max_attempts, result):
    table = OutboxMessage.__table__
    sent = [c.id for c in copies if outcome[c.id] is None]
    with session_factory(info={"publisher": None, "notifier": None, "courier": None}) as session:
        if sent:
            session.execute(
                sa.update(table)
                .where(table.c.id.in_(sent), table.c.state == OutboxState.pending)
                .values(
                    state=OutboxState.sent,
                    sent_at=now,
                    attempts=table.c.attempts + 1,
                    last_error=None,
                )
            )
            result.sent += len(sent)
        failed = [c.id for c in copies if outcome[c.id] is not None]
        secret = {c.id for c in copies if c.kind in outbox.SECRET_KINDS}
        if failed:
            attempts = dict(
                session.execute(
                    sa.select(table.c.id, table.c.attempts).where(table.c.id.in_(failed))
                ).all()
            )
            for copy_id in failed:
                tries = attempts.get(copy_id, 0) + 1
                limit = max_attempts
                if copy_id in secret:
                    limit = min(limit, outbox.SECRET_MAX_ATTEMPTS)
                given_up = tries >= limit
                session.execute(
                    sa.update(table)
                    .where(table.c.id == copy_id, table.c.state == OutboxState.pending)
                    .values(
                        state=OutboxState.failed if given_up else OutboxState.pending,
                        attempts=tries,
                        last_error=outcome[copy_id],
                        next_attempt_at=now + _seconds(backoff_seconds(tries)),
                    )
                )
                if given_up:
                    result.failed += 1
                else:
                    result.retried += 1
        if secret:
            # A code delivered or given up: its text leaves the database.
            session.execute(
                sa.update(table)
                .where(table.c.id.in_(secret), table.c.state != OutboxState.pending)
                .values(body=outbox.SECRET_BLANKED, payload={})
            )
        session.commit()


def _seconds(n):
    return dt.timedelta(seconds=n)


def drain(session_factory, senders, *, limit=100, max_attempts=8, rounds=50, lease=0):
    """Deliver batch after batch while full batches come back (at most ``rounds``): what is
    due now, not what waits for a retry later. Returns the totals."""
    total = Result()
    for _ in range(rounds):
        result = deliver_due(
            session_factory, senders, limit=limit, max_attempts=max_attempts, lease=lease
        )
        total.sent += result.sent
        total.retried += result.retried
        total.failed += result.failed
        if result.claimed < limit:
            break
    return total


# --- after commit: one delivery thread per process -----------------------------------------


class Courier:
    """The process's delivery thread, started at the first commit that wrote copies and woken
    by each later one. A commit only sets an event: the request or the scheduler's tick never
    waits for a gateway, and a gateway that is down only delays the copies (the sweep and the
    retries take over)."""

    def __init__(self, app, senders):
        self.app = app
        self.senders = senders
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread = None

    def kick(self):
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="outbox-courier", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def _run(self):
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                drain(
                    self.app.extensions["hotline.db"],
                    self.senders,
                    limit=self.app.config["OUTBOX_BATCH"],
                    max_attempts=self.app.config["OUTBOX_MAX_ATTEMPTS"],
                    lease=self.app.config["OUTBOX_LEASE_SECONDS"],
                )
            except Exception:
                # The database away, say: the copies wait for the next commit or the sweep.
                log.exception("outbox delivery after commit failed")


class Outbox:
    """The app's delivery: its senders, and the courier (None: no delivery after commit)."""

    def __init__(self, senders, courier):
        self.senders = senders
        self.courier = courier


def init_app(app):
    senders = build_senders(app.config)
    courier = Courier(app, senders) if app.config["OUTBOX_DELIVER_AFTER_COMMIT"] else None
    app.extensions["hotline.outbox"] = Outbox(senders, courier)


def sweep(app, now=None):
    """The scheduler's sweep: everything due (retries, copies of a process that died)."""
    if now is not None:
        return deliver_due(
            app.extensions["hotline.db"],
            app.extensions["hotline.outbox"].senders,
            now=now,
            limit=app.config["OUTBOX_BATCH"],
            max_attempts=app.config["OUTBOX_MAX_ATTEMPTS"],
            lease=app.config["OUTBOX_LEASE_SECONDS"],
        )
    return drain(
        app.extensions["hotline.db"],
        app.extensions["hotline.outbox"].senders,
        limit=app.config["OUTBOX_BATCH"],
        max_attempts=app.config["OUTBOX_MAX_ATTEMPTS"],
    )


@event.listens_for(Session, "after_commit")
def _kick(session):
    if session.info.pop("outbox_written", False):
        courier = session.info.get("courier")
        if courier is not None:
            courier.kick()


@event.listens_for(Session, "after_soft_rollback")
def _forget(session, _previous_transaction):
    session.info.pop("outbox_written", None)
