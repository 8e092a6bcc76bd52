"""Calls and callers: the phone system's announcement of an incoming call (来电弹屏), and a
caller's earlier tickets (来电历史) shown to the operator taking the call.

The call-centre switch tells the system, as a call is put through to an agent, who is
calling (``announce``); the agent's open console picks the call up within seconds
(``pending_for``), fills in the caller's number and shows their history, and the ticket made
from the call keeps the switch's call id and recording reference (``operations.receive``).
"""

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from dispatch import access
from hotline.audit import audit
from hotline.db import utcnow
from hotline.enums import Role
from hotline.errors import Conflict
from hotline.models import Assignment, IncomingCall, Ticket, User

#: A call not taken into a ticket within this time is no longer shown as ringing.
PENDING_FOR = dt.timedelta(minutes=15)
#: Earlier tickets listed for a caller (the total is counted too).
HISTORY_LIMIT = 50


def announce(session, actor, *, call_id, caller_phone, agent, recording_ref=None, now=None):
    """来电: the switch puts a call through to ``agent`` (the operator's login name).
    Returns (call, created); announcing the same call id again returns the first record,
    and a different caller or agent under a known call id is refused."""
    existing = session.scalars(
        sa.select(IncomingCall).where(IncomingCall.call_id == call_id)
    ).first()
    if existing is not None:
        if existing.caller_phone != caller_phone or existing.agent != agent:
            raise Conflict(f"呼叫编号 {call_id} 已登记为另一通来电", code="CALL_ID_REUSED")
        return existing, False
    user = session.scalars(
        sa.select(User).where(User.username == agent, User.role == Role.operator, User.active)
    ).first()
    call = IncomingCall(
        call_id=call_id,
        caller_phone=caller_phone,
        agent=agent,
        agent_id=user.id if user else None,
        recording_ref=recording_ref,
        received_at=now or utcnow(),
    )
    session.add(call)
    session.flush()
    audit(
        session,
        actor,
        "call.announce",
        target=call_id,
        payload={"agent": agent, "agent_found": user is not None},
    )
    return call, True


def pending_for(session, user, *, after_id=0, now=None):
    """The newest call put through to ``user`` in the last ``PENDING_FOR`` that no ticket
    was made from yet and whose id is above ``after_id`` (None: nothing ringing)."""
    since = (now or utcnow()) - PENDING_FOR
    return session.scalars(
        sa.select(IncomingCall)
        .where(
            IncomingCall.agent_id == user.id,
            IncomingCall.id > after_id,
            IncomingCall.ticket_id.is_(None),
            IncomingCall.received_at >= since,
        )
        .order_by(IncomingCall.id.desc())
        .limit(1)
    ).first()


def for_ticket(session, actor, call_id):
    """The announced call a ticket is being made from: it must have been put through to
    ``actor`` (or to nobody the system knows)."""
    call = session.scalars(sa.select(IncomingCall).where(IncomingCall.call_id == call_id)).first()
    if call is None:
        return None
    if call.agent_id is not None and call.agent_id != actor.id:
        raise Conflict("该来电未接入您的坐席，不能以其建单", code="CALL_NOT_YOURS")
    return call


def history(session, actor, phone, limit=HISTORY_LIMIT):
    """Every earlier ticket of the caller ``phone`` that ``actor`` may see, newest first:
    (tickets, total)."""
    query = access.scoped(sa.select(Ticket).where(Ticket.requester_phone == phone), actor)
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    tickets = session.scalars(
        query.options(
            selectinload(Ticket.category),
            selectinload(Ticket.lead_unit),
            selectinload(Ticket.assignments).selectinload(Assignment.unit),
        )
        .order_by(Ticket.received_at.desc(), Ticket.id.desc())
        .limit(limit)
    ).all()
    return tickets, total
