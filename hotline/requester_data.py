"""个人信息查询/导出: on a citizen's request, everything the system holds about one phone
number — the tickets it reported (name, phone, address and the texts about them, the callback
attempts and the ticket's records), the calls from it, the texts sent to it, the citizen
portal's sign-ins and verification codes of it — shown to an authorised person and exported
as XLSX.

Who: the hotline's supervisors (they answer citizens' requests) and administrators. Every
look-up and every export needs a reason (the citizen's request, a reference number) and is
audited with it (``pii.lookup``, ``pii.export``: who, when, from where, why, the masked
number, which tickets); the page also records the view through ``hotline.privacy``.
Tickets already redacted by the retention job (``hotline.retention``) hold no number and
are not found: the data is gone.
"""

import re
import unicodedata
from dataclasses import dataclass, field

import sqlalchemy as sa

from hotline.audit import audit
from hotline.db import local_datetime
from hotline.enums import Role
from hotline.errors import Forbidden, ValidationFailed
from hotline.models import (
    Area,
    CallbackAttempt,
    Category,
    CitizenSession,
    IncomingCall,
    OutboxMessage,
    Ticket,
    TicketEvent,
    VerificationCode,
)
from hotline.privacy import mask_phone
from hotline.tabular import Column, write_xlsx_sheets

ROLES = frozenset({Role.supervisor, Role.admin})
REASON_MAX = 500


def require_role(actor):
    if actor.role not in ROLES:
        raise Forbidden(
            f"“{actor.role.label}”角色无权查询诉求人个人信息",
            code="ROLE_NOT_ALLOWED",
            details={"role": actor.role.value},
        )


def checked(phone, reason):
    """(phone as stored, reason) or ValidationFailed naming each problem (``LOOKUP_INVALID``).
    A number is stored as typed apart from spaces and hyphens; +86 is dropped."""
    problems = {}
    digits = re.sub(r"[\s\-()（）]", "", unicodedata.normalize("NFKC", phone or ""))
    digits = re.sub(r"^(?:\+86|0086)", "", digits)
    if not re.fullmatch(r"[0-9]{5,20}", digits):
        problems["phone"] = "请输入诉求人的电话号码（5–20 位数字）"
    reason = (reason or "").strip()
    if not reason:
        problems["reason"] = "请填写查询事由（如市民申请的编号或日期）"
    elif len(reason) > REASON_MAX:
        problems["reason"] = f"查询事由不能超过 {REASON_MAX} 字"
    if problems:
        raise ValidationFailed(
            "；".join(problems.values()), code="LOOKUP_INVALID", details=problems
        )
    return digits, reason


@dataclass
class Held:
    """What is held about one number."""

    phone: str
    tickets: list = field(default_factory=list)
    callbacks: list = field(default_factory=list)
    events: list = field(default_factory=list)
    calls: list = field(default_factory=list)
    messages: list = field(default_factory=list)
    sessions: list = field(default_factory=list)
    codes: list = field(default_factory=list)

    @property
    def numbers(self):
        return [t["number"] for t in self.tickets]


def collect(session, phone):
    """Everything held about ``phone`` (a stored number), oldest first."""
    held = Held(phone)
    rows = session.execute(
        sa.select(Ticket, Category.name, Area.name)
        .outerjoin(Category, Category.id == Ticket.category_id)
        .outerjoin(Area, Area.id == Ticket.area_id)
        .where(Ticket.requester_phone == phone)
        .order_by(Ticket.received_at, Ticket.id)
    ).all()
    by_id = {}
    for t, category, area in rows:
        by_id[t.id] = t.number
        held.tickets.append(
            {
                "number": t.number,
                "received_at": t.received_at,
                "channel": t.channel.label,
                "status": t.status.label,
                "category": category,
                "area": area,
                "requester_name": t.requester_name,
                "requester_phone": t.requester_phone,
                "address": t.address,
                "title": t.title,
                "content": t.content,
                "result": t.result,
                "callback_comment": t.callback_comment,
                "closed_at": t.closed_at,
            }
        )
    ids = list(by_id)
    if ids:
        for a in session.scalars(
            sa.select(CallbackAttempt)
            .where(CallbackAttempt.ticket_id.in_(ids))
            .order_by(CallbackAttempt.attempted_at, CallbackAttempt.id)
        ):
            held.callbacks.append(
                {
                    "number": by_id[a.ticket_id],
                    "at": a.attempted_at,
                    "outcome": a.outcome.label,
                    "comment": a.comment,
                }
            )
        for e in session.scalars(
            sa.select(TicketEvent)
            .where(TicketEvent.ticket_id.in_(ids), TicketEvent.reason.is_not(None))
            .order_by(TicketEvent.created_at, TicketEvent.id)
        ):
            held.events.append(
                {"number": by_id[e.ticket_id], "at": e.created_at, "action": e.action}
                | {"reason": e.reason}
            )
    for c in session.scalars(
        sa.select(IncomingCall)
        .where(IncomingCall.caller_phone == phone)
        .order_by(IncomingCall.received_at, IncomingCall.id)
    ):
        held.calls.append(
            {
                "call_id": c.call_id,
                "at": c.received_at,
                "caller_phone": c.caller_phone,
                "number": by_id.get(c.ticket_id) or _number(session, c.ticket_id),
            }
        )
    for m in session.scalars(
        sa.select(OutboxMessage)
        .where(OutboxMessage.recipient == phone)
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
    ):
        held.messages.append(
            {
                "at": m.created_at,
                "channel": m.channel,
                "kind": m.kind,
                "recipient": m.recipient,
                "body": m.body,
                "state": m.state.label,
                "number": by_id.get(m.ticket_id) or _number(session, m.ticket_id),
            }
        )
    for s in session.scalars(
        sa.select(CitizenSession)
        .where(CitizenSession.phone == phone)
        .order_by(CitizenSession.created_at, CitizenSession.id)
    ):
        held.sessions.append(
            {
                "at": s.created_at,
                "expires_at": s.expires_at,
                "last_seen_at": s.last_seen_at,
                "client_ip": s.client_ip,
            }
        )
    for v in session.scalars(
        sa.select(VerificationCode)
        .where(VerificationCode.phone == phone)
        .order_by(VerificationCode.created_at, VerificationCode.id)
    ):
        held.codes.append(
            {
                "at": v.created_at,
                "purpose": v.purpose,
                "used_at": v.used_at,
                "client_ip": v.client_ip,
            }
        )
    return held


def _number(session, ticket_id):
    return (
        session.scalar(sa.select(Ticket.number).where(Ticket.id == ticket_id))
        if ticket_id
        else None
    )


def _audit(session, actor, action, phone, reason, held):
    audit(
        session,
        actor,
        action,
        target=mask_phone(phone),
        payload={
            "reason": reason,
            "phone": mask_phone(phone),
            "tickets": held.numbers[:500],
            "count": len(held.tickets),
        },
    )


def lookup(session, actor, phone, reason):
    """What is held about ``phone``, for ``actor``, audited with ``reason``; the caller
    commits."""
    require_role(actor)
    phone, reason = checked(phone, reason)
    held = collect(session, phone)
    _audit(session, actor, "pii.lookup", phone, reason, held)
    return held


# -- the export ------------------------------------------------------------------------------------

SHEETS = (
    (
        "工单",
        "tickets",
        [
            Column("number", "工单编号"),
            Column("received_at", "受理时间"),
            Column("channel", "渠道"),
            Column("status", "状态"),
            Column("category", "分类"),
            Column("area", "区划"),
            Column("requester_name", "诉求人姓名"),
            Column("requester_phone", "联系电话"),
            Column("address", "地址"),
            Column("title", "标题"),
            Column("content", "诉求内容"),
            Column("result", "办理结果"),
            Column("callback_comment", "回访记录"),
            Column("closed_at", "归档时间"),
        ],
    ),
    (
        "回访",
        "callbacks",
        [
            Column("number", "工单编号"),
            Column("at", "回访时间"),
            Column("outcome", "结果"),
            Column("comment", "回访记录"),
        ],
    ),
    (
        "办理记录",
        "events",
        [
            Column("number", "工单编号"),
            Column("at", "时间"),
            Column("action", "操作"),
            Column("reason", "说明"),
        ],
    ),
    (
        "来电",
        "calls",
        [
            Column("call_id", "呼叫编号"),
            Column("at", "来电时间"),
            Column("caller_phone", "来电号码"),
            Column("number", "工单编号"),
        ],
    ),
    (
        "通知短信",
        "messages",
        [
            Column("at", "时间"),
            Column("channel", "渠道"),
            Column("kind", "类别"),
            Column("recipient", "接收号码"),
            Column("body", "内容"),
            Column("state", "状态"),
            Column("number", "工单编号"),
        ],
    ),
    (
        "市民端登录",
        "sessions",
        [
            Column("at", "登录时间"),
            Column("expires_at", "有效期至"),
            Column("last_seen_at", "最近访问"),
            Column("client_ip", "IP 地址"),
        ],
    ),
    (
        "验证码",
        "codes",
        [
            Column("at", "发送时间"),
            Column("purpose", "用途"),
            Column("used_at", "使用时间"),
            Column("client_ip", "IP 地址"),
        ],
    ),
)


def _cells(rows, timezone):
    return [
        {
            k: f"{local_datetime(v, timezone):%Y-%m-%d %H:%M:%S}" if hasattr(v, "tzinfo") else v
            for k, v in row.items()
        }
        for row in rows
    ]


def export(session, actor, phone, reason, timezone):
    """(XLSX bytes, Held) of everything held about ``phone``, audited with ``reason``; the
    caller commits."""
    require_role(actor)
    phone, reason = checked(phone, reason)
    held = collect(session, phone)
    _audit(session, actor, "pii.export", phone, reason, held)
    data = write_xlsx_sheets(
        [(title, columns, _cells(getattr(held, attr), timezone)) for title, attr, columns in SHEETS]
    )
    return data, held
