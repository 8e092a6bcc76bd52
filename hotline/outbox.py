"""The notification outbox: every copy of a notification that leaves the system (an SMS, a
WeChat Work robot post, a WeChat template message) is first a row of ``outbox``, written in
the transaction of the change that caused it; delivering it comes after the commit.

So a process that dies between the commit and the send loses nothing, and a copy cannot be
made twice: each has a ``delivery_key`` naming what it is a copy of (the unique constraint
drops a second one, e.g. a retried request or a second scheduler).

Citizens' messages (``tell_citizen``) are written from the administrator's templates
(``TEMPLATES``, kept as settings: 系统管理 › 通知模板), by SMS to their phone and, when their
WeChat openid is known, also as a WeChat template message: the portal passes the openid the
city's WeChat gateway vouched for (``openid_from_headers``) when the request is received, and
later messages about the same ticket find it on that first WeChat copy (no other table keeps
it). The verification code goes by SMS only: it proves the phone.

Delivery, retries and the senders: ``hotline.outbox_delivery``. What administrators see and do
(系统管理 › 通知发送): ``OutboxFilter``, ``counts``, ``retry``; the templates: ``check_template``,
``preview``, ``update_templates``.
"""

import hmac
import math
import re
import string
from dataclasses import dataclass

import sqlalchemy as sa

from hotline import settings
from hotline.audit import audit
from hotline.db import bulk_insert, utcnow
from hotline.enums import OutboxState, TimerKind
from hotline.errors import Conflict, NotFound, ValidationFailed
from hotline.models import OutboxMessage, Ticket
from hotline.privacy import mask_phone

#: The messages a citizen receives: kind → the placeholders its template may use.
TEMPLATES = {
    "citizen_code": ("code", "minutes"),
    "citizen_received": ("number", "reply_by"),
    "citizen_finished": ("number", "reply", "rating_url"),
    "citizen_reopened": ("number",),
}
#: Messages whose text is a secret (a one-time code): tried at most ``SECRET_MAX_ATTEMPTS``
#: times (a code is worth minutes; the citizen asks for another), and their text and fields
#: are blanked once sent or given up, so no code outlives its delivery in the database.
SECRET_KINDS = frozenset({"citizen_code"})
SECRET_MAX_ATTEMPTS = 2
SECRET_BLANKED = "（验证码短信，内容不留存）"
#: What the outbox's ``audience`` column holds.
UNIT, CITIZEN = "unit", "citizen"
#: The channels (media) of a citizen's messages.
SMS, WECHAT = "sms", "wechat"
#: What each template is called on the pages, and what its placeholders mean.
TEMPLATE_LABELS = {
    "citizen_code": "短信验证码",
    "citizen_received": "受理通知",
    "citizen_finished": "办结通知",
    "citizen_reopened": "再次反映通知",
}
PLACEHOLDER_LABELS = {
    "code": "验证码",
    "minutes": "有效分钟数",
    "number": "工单号",
    "reply_by": "承诺答复时间",
    "reply": "答复内容",
    "rating_url": "评价链接",
}
#: The values a template's preview is filled with.
SAMPLE_FIELDS = {
    "code": "482913",
    "minutes": 5,
    "number": "12345-20261205-0001",
    "reply_by": "2026-12-08 17:00",
    "reply": "已安排维修人员更换路灯，现已恢复照明。",
    "rating_url": "https://12345.example.gov.cn/r/Ab3dE9",
}
#: One SMS holds 70 characters; a longer text goes as parts of 67.
SMS_CHARS, SMS_PART_CHARS = 70, 67
#: Channel names as people read them.
CHANNEL_LABELS = {"sms": "短信", "wecom": "企业微信", "wechat": "微信公众号"}
AUDIENCE_LABELS = {UNIT: "承办单位", CITIZEN: "市民"}
PAGE_SIZE = 50
_OPENID = re.compile(r"^[A-Za-z0-9_-]{6,64}$")


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


def enqueue(session, rows, now=None, *, new_keys=False):
    """Write copies to deliver, in the caller's transaction. ``rows`` are dicts of
    ``OutboxMessage`` columns with at least delivery_key, channel, audience, kind; a copy
    whose delivery key is already there is skipped. ``new_keys``: the keys cannot be there
    yet (they name rows made in this transaction), so nothing is checked (a tick writing
    thousands saves the conflict handling). Returns how many were written."""
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
    if new_keys:
        bulk_insert(session, OutboxMessage.__table__, complete)
        written = len(complete)
    else:
        written = len(
            bulk_insert(
                session,
                OutboxMessage.__table__,
                complete,
                returning=("id",),
                skip_conflicts=True,
            )
        )
    if written:
        session.info["outbox_written"] = True
    return written


def tell_citizen(
    session, *, kind, phone, fields, delivery_key, ticket_id=None, openid=None, now=None
):
    """Tell the citizen the message ``kind`` (``TEMPLATES``) with ``fields``: by SMS at
    ``phone`` and, but for the code, by WeChat to ``openid`` (or to the openid the ticket's
    earlier WeChat copies went to); once per ``delivery_key`` (e.g. ``received:<ticket id>``)
    and channel. Returns how many copies were written."""
    body = render(session, kind, fields)
    payload = {"template": kind, "fields": {k: str(v) for k, v in fields.items()}}
    rows = []
    if phone:
        rows.append(_citizen_row(SMS, phone, kind, body, delivery_key, ticket_id, payload))
    if kind != "citizen_code":
        openid = openid or (_known_openid(session, ticket_id) if ticket_id else None)
        if openid:
            rows.append(_citizen_row(WECHAT, openid, kind, body, delivery_key, ticket_id, payload))
    return enqueue(session, rows, now=now)


def _citizen_row(channel, recipient, kind, body, delivery_key, ticket_id, payload):
    return {
        "delivery_key": f"citizen:{channel}:{delivery_key}",
        "channel": channel,
        "audience": CITIZEN,
        "recipient": recipient,
        "kind": kind,
        "ticket_id": ticket_id,
        "body": body,
        "payload": payload,
    }


def _known_openid(session, ticket_id):
    return session.scalar(
        sa.select(OutboxMessage.recipient)
        .where(
            OutboxMessage.ticket_id == ticket_id,
            OutboxMessage.channel == WECHAT,
            OutboxMessage.audience == CITIZEN,
        )
        .order_by(OutboxMessage.id.desc())
        .limit(1)
    )


def openid_from_headers(headers, config):
    """The citizen's WeChat openid when the request came through the city's WeChat gateway:
    the gateway (which did WeChat's OAuth) sends ``X-WeChat-OpenID`` with the shared secret
    ``X-WeChat-Gateway-Token`` = ``NOTIFY_WECHAT_GATEWAY_TOKEN``. Without that secret
    configured, or with a wrong one, None: anyone can send a header."""
    secret = config.get("NOTIFY_WECHAT_GATEWAY_TOKEN") or ""
    given = headers.get("X-WeChat-Gateway-Token") or ""
    if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
        return None
    openid = (headers.get("X-WeChat-OpenID") or "").strip()
    return openid if _OPENID.match(openid) else None


# --- the templates (系统管理 › 通知模板) ------------------------------------------------------


def check_template(kind, text):
    """``text`` as a template of ``kind``, or ValueError with the Chinese reason: malformed
    braces, a placeholder ``kind`` has not, or a format it cannot take."""
    allowed = TEMPLATES[kind]
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError:
        raise ValueError(
            "花括号不成对：占位符须写成 {number} 这样，文字中要用花括号请写成 {{ 或 }}"
        ) from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in allowed:
            shown = "{" + name + "}" if name else "{}"
            raise ValueError(f"使用了不存在的占位符 {shown}，可用的占位符：{_listed(allowed)}")
        if spec or conversion:
            raise ValueError(f"占位符 {{{name}}} 不能带格式说明，请写成 {{{name}}}")
    return text


def _listed(names):
    return "、".join(f"{{{n}}}（{PLACEHOLDER_LABELS.get(n, n)}）" for n in names)


def preview(kind, text):
    """``text`` filled with ``SAMPLE_FIELDS``, and how many SMS it makes."""
    filled = string.Formatter().vformat(text, (), _Fields(SAMPLE_FIELDS))
    return filled, sms_parts(filled)


def sms_parts(text):
    return 1 if len(text) <= SMS_CHARS else math.ceil(len(text) / SMS_PART_CHARS)


@dataclass(frozen=True)
class Template:
    kind: str
    label: str
    text: str
    placeholders: tuple
    sample: str
    sms_parts: int

    def to_dict(self):
        return {
            "kind": self.kind,
            "label": self.label,
            "text": self.text,
            "placeholders": [
                {"name": n, "label": PLACEHOLDER_LABELS.get(n, n)} for n in self.placeholders
            ],
            "preview": self.sample,
            "sms_parts": self.sms_parts,
        }


def templates(session):
    """Every citizen template with its text in force and its preview."""
    found = []
    for kind, allowed in TEMPLATES.items():
        text = settings.get(session, template_key(kind))
        sample, parts = preview(kind, text)
        found.append(Template(kind, TEMPLATE_LABELS[kind], text, allowed, sample, parts))
    return found


def update_templates(session, actor, texts):
    """Change the templates ``{kind: text}``: every one is checked before any is written
    (one refusal names each bad template and placeholder); audited old → new by
    ``settings.update``. The caller commits. Returns the changed setting keys."""
    errors, values = {}, {}
    for kind, text in texts.items():
        if kind not in TEMPLATES:
            errors[kind] = f"没有“{kind}”这种通知模板"
            continue
        if not isinstance(text, str) or not text.strip():
            errors[kind] = f"{TEMPLATE_LABELS[kind]}不能为空"
            continue
        try:
            values[template_key(kind)] = check_template(kind, text.strip())
        except ValueError as exc:
            errors[kind] = f"{TEMPLATE_LABELS[kind]}{exc}"
    if errors:
        raise ValidationFailed(
            "模板未保存：" + "；".join(errors.values()), code="TEMPLATE_INVALID", details=errors
        )
    try:
        return settings.update(session, actor, values)
    except ValidationFailed as exc:
        details = {key.removeprefix("notify.template."): m for key, m in exc.details.items()}
        raise ValidationFailed(exc.message, code="TEMPLATE_INVALID", details=details) from None


# --- what administrators see and do (系统管理 › 通知发送) --------------------------------------


@dataclass(frozen=True)
class OutboxFilter:
    state: OutboxState | None = None
    channel: str | None = None
    kind: str | None = None

    @classmethod
    def from_args(cls, args, errors=None):
        """The filter of a page's or the API's query arguments (ValidationFailed if bad)."""
        bad = {}
        state = (args.get("state") or "").strip() or None
        channel = (args.get("channel") or "").strip() or None
        kind = (args.get("kind") or "").strip()[:32] or None
        if state is not None:
            try:
                state = OutboxState(state)
            except ValueError:
                bad["state"] = "状态须为 pending（待发送）、sent（已发送）或 failed（发送失败）"
        if channel is not None and channel not in CHANNEL_LABELS:
            bad["channel"] = "渠道须为 sms（短信）、wecom（企业微信）或 wechat（微信公众号）"
        if bad:
            if errors is not None:
                errors.update(bad)
                return cls()
            raise ValidationFailed("查询条件有误：" + "；".join(bad.values()), details=bad)
        return cls(state, channel, kind)

    def query(self):
        """(copy, ticket number), newest first."""
        query = sa.select(OutboxMessage, Ticket.number).outerjoin(
            Ticket, Ticket.id == OutboxMessage.ticket_id
        )
        if self.state is not None:
            query = query.where(OutboxMessage.state == self.state)
        if self.channel is not None:
            query = query.where(OutboxMessage.channel == self.channel)
        if self.kind is not None:
            query = query.where(OutboxMessage.kind == self.kind)
        return query


def page_of(session, found, page):
    """(total, [(copy, ticket number)]) of the page ``page`` of the copies ``found`` finds."""
    query = found.query()
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    rows = session.execute(
        query.order_by(OutboxMessage.id.desc()).limit(page.size).offset(page.offset)
    ).all()
    return total, rows


def counts(session):
    """``{state: count}`` for every state (0 when none)."""
    found = dict(
        session.execute(
            sa.select(OutboxMessage.state, sa.func.count()).group_by(OutboxMessage.state)
        ).all()
    )
    return {state: found.get(state, 0) for state in OutboxState}


def kinds(session):
    """The kinds of copies there are, for the filter."""
    return session.scalars(
        sa.select(OutboxMessage.kind).distinct().order_by(OutboxMessage.kind)
    ).all()


def masked_recipient(channel, recipient):
    """Where a copy went, as an administrator may see it: phones 138****5678, an openid's
    first and last characters; a unit's code (a WeChat Work group) as it is."""
    if not recipient:
        return "—"
    if channel == SMS:
        return "，".join(mask_phone(p) for p in recipient.split(",") if p)
    if channel == WECHAT:
        return recipient[:4] + "…" + recipient[-2:] if len(recipient) > 8 else "****"
    return recipient


def copy_to_dict(copy, ticket_number):
    return {
        "id": copy.id,
        "created_at": copy.created_at.isoformat(),
        "channel": copy.channel,
        "channel_label": CHANNEL_LABELS.get(copy.channel, copy.channel),
        "audience": copy.audience,
        "kind": copy.kind,
        "kind_label": kind_label(copy.kind),
        "recipient": masked_recipient(copy.channel, copy.recipient),
        "ticket_number": ticket_number,
        "state": copy.state.value,
        "state_label": copy.state.label,
        "attempts": copy.attempts,
        "next_attempt_at": copy.next_attempt_at.isoformat() if copy.next_attempt_at else None,
        "sent_at": copy.sent_at.isoformat() if copy.sent_at else None,
        "last_error": copy.last_error,
    }


def kind_label(kind):
    """A copy's kind in Chinese: a citizen template's name, an SLA timer's, or the code."""
    if kind in TEMPLATE_LABELS:
        return TEMPLATE_LABELS[kind]
    try:
        return TimerKind(kind).label
    except ValueError:
        return kind


def get(session, copy_id):
    copy = session.get(OutboxMessage, copy_id)
    if copy is None:
        raise NotFound("没有这条通知记录", code="OUTBOX_NOT_FOUND")
    return copy


def retry(session, actor, copy, now=None):
    """重新发送: a failed copy goes back to pending, due now, with its tries counted afresh
    (its last error stays until the next try). Audited; the caller commits, and the
    process's delivery thread sends it after the commit. A code's text is not kept, so it
    cannot be sent again: the citizen asks for a new code."""
    if copy.kind in SECRET_KINDS:
        raise Conflict(
            "验证码短信不能重新发送（内容已不留存），请市民重新获取验证码",
            code="OUTBOX_SECRET_NOT_RESENT",
        )
    if copy.state != OutboxState.failed:
        raise Conflict(
            f"只有发送失败的通知可以重新发送（这条{copy.state.label}）", code="OUTBOX_NOT_FAILED"
        )
    copy.state = OutboxState.pending
    copy.attempts = 0
    copy.next_attempt_at = now or utcnow()
    session.flush()
    audit(
        session,
        actor,
        "outbox.retry",
        target=f"outbox:{copy.id}",
        payload={"channel": copy.channel, "kind": copy.kind, "delivery_key": copy.delivery_key},
    )
    session.info["outbox_written"] = True
    return copy
