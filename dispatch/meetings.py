"""联席会议: a supervisor (督办审核员) calls a joint meeting on hard cases
(``dispatch.hard_cases``), puts tickets on its agenda, records it held with its minutes, and
records the meeting's decision on each ticket — the responsible unit, a deadline, notes —
which is applied at once as 会议决定指定 (``operations.apply_meeting_decision``, designating
with the meeting's deadline: the new clock's finish deadline is the meeting's, and its
warnings and 督办 follow it). The agenda item keeps the event it produced.

The life of a meeting: 待召开 (planned: agenda open) → 已召开 (held: minutes written, decisions
recorded one ticket at a time). Each function here is one change: it checks, changes, audits
(``hotline.audit``: ``meeting.*``) and flushes; the caller commits, so a refusal leaves
nothing behind.

What may go on an agenda: a ticket the meeting's decision can be applied to (会议决定指定's
from-states, as ``hard_cases`` lists): not one in review, finished, called back, split, asking
for termination or final. A ticket meeting a hard-case rule
carries the rules' evidence as it was when added; any other needs the supervisor's written
reason (a matter the rules cannot see, e.g. a leader's instruction). A decision on a ticket
that has meanwhile left handling (finished, closed…) is refused: the meeting decided on a
situation that no longer exists.
"""

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from dispatch import hard_cases, operations
from dispatch.states import TRANSITIONS
from hotline.audit import audit
from hotline.db import utcnow
from hotline.enums import MeetingState, Role
from hotline.errors import Conflict, Forbidden, ValidationFailed
from hotline.models import JointMeeting, MeetingItem

#: Who calls meetings, fills their agendas and records their decisions.
MEETING_ROLES = frozenset({Role.supervisor})
#: Who may read them (the list of hard cases, the meetings, their exports).
READER_ROLES = frozenset({Role.supervisor, Role.leader})

TITLE_MAX = 200
PLACE_MAX = 200
CHAIR_MAX = 100
ATTENDEES_MAX = 2000
MINUTES_MAX = 20000
REASON_MAX = 500
#: The decision's notes go into the decision event's reason (1000 characters) after the
#: meeting's name.
NOTES_MAX = 700
#: The manual reason's rule name on an agenda item.
MANUAL = "manual"


def _require_role(actor):
    if actor.role not in MEETING_ROLES:
        raise Forbidden(f"“{actor.role.label}”角色无权管理联席会议", code="ROLE_NOT_ALLOWED")


def _text(value, field, label, max_len, *, required=False):
    value = (value or "").strip() if isinstance(value, str) or value is None else None
    if value is None:
        raise ValidationFailed(f"{label}须为文本", details={field: f"{label}须为文本"})
    if "\x00" in value:
        raise ValidationFailed(f"{label}含有无效字符", details={field: f"{label}含有无效字符"})
    if required and not value:
        raise ValidationFailed(f"请填写{label}", details={field: f"请填写{label}"})
    if len(value) > max_len:
        message = f"{label}不能超过 {max_len} 字（现为 {len(value)} 字）"
        raise ValidationFailed(message, details={field: message})
    return value or None


def _require_planned(meeting, what):
    if meeting.state != MeetingState.planned:
        raise Conflict(f"会议“{meeting.title}”已召开，不能再{what}", code="MEETING_ALREADY_HELD")


def create_meeting(
    session, actor, *, title, scheduled_at, place=None, chair=None, attendees=None, now=None
):
    """召集联席会议: a planned meeting with its time, place, chair and attendees.

    A meeting of the same name at the same time is refused (``MEETING_EXISTS``, with its id):
    a retried or resubmitted request never calls the meeting twice. On PostgreSQL the check
    and the insert run under a transaction-scoped advisory lock on the name (SQLite has one
    writer), so two requests at once cannot both pass the check.
    """
    now = now or utcnow()
    _require_role(actor)
    title = _text(title, "title", "会议名称", TITLE_MAX, required=True)
    if scheduled_at is None or scheduled_at.tzinfo is None:
        raise ValidationFailed("请填写会议时间", details={"scheduled_at": "请填写会议时间"})
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(title))))
    same = session.scalar(
        sa.select(JointMeeting).where(
            JointMeeting.title == title, JointMeeting.scheduled_at == scheduled_at
        )
    )
    if same is not None:
        raise Conflict(
            f"会议“{title}”（同一时间）已召集，不能重复召集",
            code="MEETING_EXISTS",
            details={"meeting_id": same.id},
        )
    meeting = JointMeeting(
        title=title,
        scheduled_at=scheduled_at,
        place=_text(place, "place", "会议地点", PLACE_MAX),
        chair=_text(chair, "chair", "主持人", CHAIR_MAX),
        attendees=_text(attendees, "attendees", "参会单位和人员", ATTENDEES_MAX),
        state=MeetingState.planned,
        created_by_id=actor.id,
        created_at=now,
    )
    session.add(meeting)
    session.flush()
    audit(
        session,
        actor,
        "meeting.create",
        target=f"meeting:{meeting.id}",
        payload={"title": title, "scheduled_at": scheduled_at.isoformat(), "place": meeting.place},
    )
    return meeting


def add_item(session, actor, meeting, ticket, *, reason=None, tz, now=None):
    """列入议程: put ``ticket`` on the agenda with the hard-case rules it meets now; a ticket
    meeting none needs ``reason``."""
    now = now or utcnow()
    _require_role(actor)
    _require_planned(meeting, "增加议题")
    if ticket.status not in TRANSITIONS["apply_meeting_decision"].from_states:
        raise Conflict(
            f"工单 {ticket.number} 当前状态为“{ticket.status.label}”，会议决定无法对其指定"
            "承办单位，不能列入会议议程",
            code="TICKET_NOT_DECIDABLE",
            details={"status": ticket.status.value},
        )
    reason = _text(reason, "reason", "提请理由", REASON_MAX)
    existing = session.scalar(
        sa.select(MeetingItem.id).where(
            MeetingItem.meeting_id == meeting.id, MeetingItem.ticket_id == ticket.id
        )
    )
    if existing is not None:
        raise _item_exists(ticket)
    reasons = [f.as_dict() for f in hard_cases.findings_of(session, ticket, now, tz=tz)]
    if not reasons and reason is None:
        message = f"工单 {ticket.number} 不符合疑难工单规则，列入议程须填写提请理由"
        raise ValidationFailed(message, code="REASON_REQUIRED", details={"reason": message})
    if reason is not None:
        reasons.append({"rule": MANUAL, "label": "督办提请", "text": reason})
    item = MeetingItem(
        meeting_id=meeting.id,
        ticket_id=ticket.id,
        reasons=reasons,
        added_by_id=actor.id,
        added_at=now,
    )
    try:
        # Two supervisors adding the same ticket at once both pass the check above; the
        # second insert meets the (meeting, ticket) unique constraint, in a savepoint so
        # the caller's transaction survives the refusal.
        with session.begin_nested():
            session.add(item)
    except IntegrityError:
        raise _item_exists(ticket) from None
    session.expire(meeting, ["items"])
    audit(
        session,
        actor,
        "meeting.add_item",
        target=f"meeting:{meeting.id}",
        payload={"ticket": ticket.number, "rules": [r["rule"] for r in reasons]},
    )
    return item


def _item_exists(ticket):
    return Conflict(f"工单 {ticket.number} 已在本次会议议程中", code="MEETING_ITEM_EXISTS")


def remove_item(session, actor, item):
    """移出议程 (before the meeting is held)."""
    _require_role(actor)
    meeting = item.meeting
    _require_planned(meeting, "移出议题")
    number = item.ticket.number
    session.delete(item)
    session.flush()
    audit(
        session,
        actor,
        "meeting.remove_item",
        target=f"meeting:{meeting.id}",
        payload={"ticket": number},
    )


def hold_meeting(session, actor, meeting, *, minutes, held_at=None, now=None):
    """记录会议召开: the meeting was held (``held_at``, not in the future) with these minutes;
    from now on its decisions can be recorded and its agenda is closed."""
    now = now or utcnow()
    _require_role(actor)
    _require_planned(meeting, "记录召开")
    minutes = _text(minutes, "minutes", "会议纪要", MINUTES_MAX, required=True)
    held_at = held_at or now
    if held_at > now:
        raise ValidationFailed(
            "召开时间不能晚于当前时间", details={"held_at": "召开时间不能晚于当前时间"}
        )
    if not meeting.items:
        raise Conflict("会议议程为空，请先列入议题", code="MEETING_AGENDA_EMPTY")
    meeting.state = MeetingState.held
    meeting.minutes = minutes
    meeting.held_at = held_at
    meeting.held_by_id = actor.id
    session.flush()
    audit(
        session,
        actor,
        "meeting.hold",
        target=f"meeting:{meeting.id}",
        payload={"held_at": held_at.isoformat(), "items": len(meeting.items)},
    )
    return meeting


def decide_item(session, actor, item, *, unit, due, notes, now=None):
    """记录会议决定并执行: the responsible ``unit`` handles the ticket by ``due`` — applied as
    会议决定指定 (``operations.apply_meeting_decision``) whose event the item keeps."""
    now = now or utcnow()
    _require_role(actor)
    meeting = item.meeting
    if meeting.state != MeetingState.held:
        raise Conflict("会议尚未召开，请先记录会议召开和纪要", code="MEETING_NOT_HELD")
    if item.decided_at is not None:
        raise Conflict(
            f"工单 {item.ticket.number} 的会议决定已记录，不能重复执行", code="MEETING_ITEM_DECIDED"
        )
    if unit is None:
        raise ValidationFailed("请选择责任单位", details={"unit": "请选择责任单位"})
    if due is None:
        raise ValidationFailed("请填写办结时限", details={"finish_due": "请填写办结时限"})
    notes = _text(notes, "notes", "决定事项", NOTES_MAX, required=True)
    ticket = item.ticket
    if ticket.status not in TRANSITIONS["apply_meeting_decision"].from_states:
        raise Conflict(
            f"工单 {ticket.number} 当前状态为“{ticket.status.label}”，已不在办理中，"
            "会议决定无法执行；请核实后重新提请",
            code="TICKET_LEFT_HANDLING",
            details={"status": ticket.status.value},
        )
    event = operations.apply_meeting_decision(
        session,
        actor,
        ticket,
        lead=unit,
        note=f"联席会议“{meeting.title}”决定：{notes}",
        finish_due=due,
        now=now,
    )
    item.decision_unit_id = unit.id
    item.decision_due = due
    item.decision_notes = notes
    item.decided_at = now
    item.decided_by_id = actor.id
    item.event_id = event.id
    session.flush()
    audit(
        session,
        actor,
        "meeting.decide",
        target=f"meeting:{meeting.id}",
        payload={
            "ticket": ticket.number,
            "unit": unit.code,
            "finish_due": due.isoformat(),
            "event_id": event.id,
        },
    )
    return event


def meetings_page(session, page):
    """(total, meetings of ``page``), the latest first."""
    query = sa.select(JointMeeting)
    return page.of(session, query, JointMeeting.scheduled_at.desc(), JointMeeting.id.desc())


def planned_meetings(session):
    """Meetings whose agenda is still open, the soonest first (the list's 列入会议 select)."""
    return session.scalars(
        sa.select(JointMeeting)
        .where(JointMeeting.state == MeetingState.planned)
        .order_by(JointMeeting.scheduled_at, JointMeeting.id)
    ).all()
