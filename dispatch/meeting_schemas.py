"""Joint meetings (联席会议) and hard cases (疑难工单) as the pages and the JSON API read and
write them: one parser per change of ``dispatch.meetings`` (a posted form's strings or a JSON
body, read by the same ``Fields`` rules) and the serialisers."""

import sqlalchemy as sa
from flask import current_app

from dispatch import meetings
from hotline.errors import NotFound
from hotline.models import JointMeeting, MeetingItem, Unit
from hotline.schemas import Fields, iso, lookup_code

#: Largest id a URL may name (the columns are 32-bit integers on PostgreSQL).
MAX_ID = 2**31 - 1


def _timezone():
    return current_app.config["TIMEZONE"]


def meeting_or_404(db, meeting_id):
    meeting = db.get(JointMeeting, meeting_id) if 0 < meeting_id <= MAX_ID else None
    if meeting is None:
        raise NotFound(f"联席会议不存在：{meeting_id}", code="MEETING_NOT_FOUND")
    return meeting


def item_or_404(db, meeting, item_id):
    item = db.get(MeetingItem, item_id) if 0 < item_id <= MAX_ID else None
    if item is None or item.meeting_id != meeting.id:
        raise NotFound(f"议题不存在：{item_id}", code="MEETING_ITEM_NOT_FOUND")
    return item


def parse_meeting(data):
    """召集会议: title, time (local), place, chair, attendees."""
    f = Fields(data)
    values = {
        "title": f.text("title", "会议名称", required=True, max_len=meetings.TITLE_MAX),
        "scheduled_at": f.moment("scheduled_at", "会议时间", timezone=_timezone(), required=True),
        "place": f.text("place", "会议地点", max_len=meetings.PLACE_MAX),
        "chair": f.text("chair", "主持人", max_len=meetings.CHAIR_MAX),
        "attendees": f.text(
            "attendees", "参会单位和人员", multiline=True, max_len=meetings.ATTENDEES_MAX
        ),
    }
    f.check()
    return values


def parse_item(data):
    """列入议程: the ticket's number and the supervisor's reason (needed if it meets no rule)."""
    f = Fields(data)
    values = {
        "number": f.text("number", "工单编号", required=True, max_len=32),
        "reason": f.text("reason", "提请理由", multiline=True, max_len=meetings.REASON_MAX),
    }
    f.check()
    return values


def parse_hold(data):
    """记录召开: the minutes and when it was held (default: now)."""
    f = Fields(data)
    values = {
        "minutes": f.text(
            "minutes", "会议纪要", required=True, multiline=True, max_len=meetings.MINUTES_MAX
        ),
        "held_at": f.moment("held_at", "召开时间", timezone=_timezone()),
    }
    f.check()
    return values


def parse_decision(db, data):
    """会议决定: the responsible unit (chosen by name, posted as its code), the deadline, notes."""
    f = Fields(data)
    code = f.code("unit", "责任单位", required=True)
    values = {
        "unit": lookup_code(db, f, "unit", Unit, "责任单位", code),
        "due": f.moment("finish_due", "办结时限", timezone=_timezone(), required=True),
        "notes": f.text(
            "notes", "决定事项", required=True, multiline=True, max_len=meetings.NOTES_MAX
        ),
    }
    f.check()
    return values


def item_to_dict(item):
    t = item.ticket
    return {
        "id": item.id,
        "ticket": t.number,
        "title": t.title,
        "status": t.status.value,
        "lead_unit": t.lead_unit.code if t.lead_unit else None,
        "reasons": item.reasons,
        "added_at": iso(item.added_at),
        "decision": None
        if item.decided_at is None
        else {
            "unit": item.decision_unit.code,
            "finish_due": iso(item.decision_due),
            "notes": item.decision_notes,
            "decided_at": iso(item.decided_at),
            "event_id": item.event_id,
        },
    }


def meeting_to_dict(meeting, *, items=True):
    data = {
        "id": meeting.id,
        "title": meeting.title,
        "scheduled_at": iso(meeting.scheduled_at),
        "place": meeting.place,
        "chair": meeting.chair,
        "attendees": meeting.attendees,
        "state": meeting.state.value,
        "minutes": meeting.minutes,
        "held_at": iso(meeting.held_at),
    }
    if items:
        data["items"] = [item_to_dict(i) for i in meeting.items]
    return data


def case_to_dict(case):
    t = case.ticket
    return {
        "ticket": t.number,
        "title": t.title,
        "status": t.status.value,
        "lead_unit": t.lead_unit.code if t.lead_unit else None,
        "received_at": iso(t.received_at),
        "findings": [f.as_dict() for f in case.findings],
    }


def agenda_counts(db, meeting_ids):
    """Meeting id → (items, decided) for a list of meetings (one query)."""
    if not meeting_ids:
        return {}
    rows = db.execute(
        sa.select(
            MeetingItem.meeting_id,
            sa.func.count(),
            sa.func.count(MeetingItem.decided_at),
        )
        .where(MeetingItem.meeting_id.in_(meeting_ids))
        .group_by(MeetingItem.meeting_id)
    )
    return {r[0]: (r[1], r[2]) for r in rows}
