"""Tickets as the JSON API and the pages read and write them: one parser per transition and for
a new request, the form bridge, and the serialisers.

A rule on a field (required, length, allowed values) lives here once, whether the request
comes from a page form or a program; every rule about the ticket itself lives in
``dispatch.operations``.
"""

import datetime as dt
import json
import re
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import selectinload

from classifier.geo import GridLocator
from dispatch import access, operations, reply_review, time_rules
from dispatch.history import history
from dispatch.narrative import Teller, assignment_state, rounds
from hotline import attachments, knowledge
from hotline.db import utcnow
from hotline.enums import (
    AssignmentRole,
    CallbackOutcome,
    Channel,
    EmergencyDecision,
    ExemptionKind,
    IntakeOutcome,
    LimitUnit,
    RequestType,
    ReturnReason,
    Satisfaction,
    Solved,
    TransferTarget,
    Urgency,
)
from hotline.errors import NotFound, ValidationFailed
from hotline.models import (
    Area,
    Category,
    Ticket,
    TimerFiring,
    Unit,
)
from hotline.schemas import (
    ADDRESS_MAX,
    TITLE_MAX,
    Fields,
    by_code,
    coded,
    form_values,
    iso,
    labelled,
    lookup_code,
)

NOTE_MAX = 1000
RESULT_MAX = 5000
CALL_ID_MAX = 64


# -- a new request ----------------------------------------------------------------------------


def intake_values(db, fields):
    """The ``operations.receive`` values of a new request's fields (the API's body or the
    console's form), checked. Raises ValidationFailed naming every bad field."""
    values = {
        "channel": fields.choice("channel", "受理渠道", Channel, required=True),
        "request_type": fields.choice("request_type", "诉求类型", RequestType, required=True),
        "urgency": fields.choice("urgency", "紧急程度", Urgency, default=Urgency.normal),
        "content": fields.content(),
        "title": fields.text("title", "标题", max_len=TITLE_MAX),
        "requester_name": fields.text("requester_name", "诉求人姓名", max_len=50),
        "requester_phone": fields.phone("requester_phone", "联系电话"),
        "address": fields.text("address", "地址", max_len=ADDRESS_MAX),
        "emergency_decision": fields.choice(
            "emergency_decision", "紧急预警处理", EmergencyDecision
        ),
    }
    if (
        values["emergency_decision"] == EmergencyDecision.kept
        and values["urgency"] != Urgency.emergency
    ):
        fields.errors.setdefault("urgency", "已确认紧急情况，紧急程度须为“紧急”")
    values["lng"], values["lat"] = fields.position()
    values["category"] = lookup_code(
        db, fields, "category", Category, "事项分类", fields.code("category", "事项分类")
    )
    values["area"] = lookup_code(db, fields, "area", Area, "区域", fields.code("area", "区域"))
    # The phone system's id of the call the request came in on (来电弹屏), if any.
    values["call_id"] = fields.text("call_id", "来电编号", max_len=CALL_ID_MAX)
    values["offered_suggestion"] = _offered_suggestion(fields)
    fields.check()
    return values


#: Longest suggestion handed back in a form field (a real one is a few kilobytes).
SUGGESTION_MAX_CHARS = 64 * 1024


def _offered_suggestion(fields):
    """``suggestion``: the object ``POST /api/v1/suggest`` answered for this text, handed back
    (a JSON object, or its text in a form field). Whether it may be used is decided at
    receive (``suggestions.reusable``); text that is not JSON is ignored like a stale one."""
    value = fields.raw("suggestion")
    if isinstance(value, str):
        if len(value) > SUGGESTION_MAX_CHARS:
            return None
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if value is None or isinstance(value, dict):
        return value
    return fields.fail("suggestion", "智能建议须为 /api/v1/suggest 返回的对象")


# -- transitions ------------------------------------------------------------------------------
# Each parser turns the fields of one transition (JSON body or posted form) into the keyword
# arguments of its operation.


def _units(db, fields, name, codes):
    return [u for u in (lookup_code(db, fields, name, Unit, "承办单位", c) for c in codes) if u]


def _p_resolve_at_intake(db, f):
    article = None
    code = f.text("article", "知识库条目", max_len=32)
    if code is not None:
        # Not from the index: an article just withdrawn or past its date must be refused.
        article = knowledge.article_in_force(db, code)
        if article is None:
            f.errors.setdefault("article", f"知识库条目不存在或已停用：{code}")
    return {
        "outcome": f.choice("outcome", "办结类型", IntakeOutcome, default=IntakeOutcome.answered),
        # Answering from an article, its answer is read out: no other text is needed.
        "answer": f.text(
            "answer", "答复内容", required=article is None, multiline=True, max_len=RESULT_MAX
        ),
        "article": article,
    }


def _p_transfer(db, f):
    return {
        "target": f.choice("target", "转办去向", TransferTarget, required=True),
        "reason": f.text("reason", "转办说明", required=True, multiline=True, max_len=NOTE_MAX),
    }


def _p_merge(db, f):
    number = f.text("into", "目标工单编号", required=True, max_len=32)
    into = db.scalars(sa.select(Ticket).where(Ticket.number == number)).first() if number else None
    if number and into is None:
        f.errors.setdefault("into", f"目标工单不存在：{number}")
    return {"into": into, "reason": f.text("reason", "并单说明", multiline=True, max_len=NOTE_MAX)}


def _p_dispatch(db, f):
    return {
        "lead": lookup_code(
            db, f, "lead_unit", Unit, "承办单位", f.code("lead_unit", "主办单位", required=True)
        ),
        "assists": _units(db, f, "assist_units", f.codes("assist_units", "协办单位")),
        "category": lookup_code(
            db, f, "category", Category, "事项分类", f.code("category", "事项分类")
        ),
        "area": lookup_code(db, f, "area", Area, "区域", f.code("area", "区域")),
        "note": f.text("note", "派单说明", multiline=True, max_len=NOTE_MAX),
    }


def _p_designate(db, f):
    values = _p_dispatch(db, f)
    del values["area"]
    values["note"] = f.text("note", "指定理由", required=True, multiline=True, max_len=NOTE_MAX)
    return values


def _p_empty(db, f):
    return {}


def _p_contact(db, f):
    return {"note": f.text("note", "联系情况", required=True, multiline=True, max_len=NOTE_MAX)}


def _p_request_return(db, f):
    return {
        "return_reason": f.choice("return_reason", "退单原因", ReturnReason, required=True),
        "note": f.text("note", "退单说明", required=True, multiline=True, max_len=NOTE_MAX),
    }


def _p_decide_return(db, f):
    approve = f.boolean("approve", "是否同意", required=True)
    lead_code = f.code("lead_unit", "新的主办单位")
    return {
        "approve": approve,
        "note": f.text("note", "审核意见", required=True, multiline=True, max_len=NOTE_MAX),
        "lead": lookup_code(db, f, "lead_unit", Unit, "承办单位", lead_code),
        "assists": _units(db, f, "assist_units", f.codes("assist_units", "协办单位")),
    }


def _p_request_extension(db, f):
    return {
        "days": f.integer("days", "延期天数", required=True, minimum=1, maximum=30),
        "reason": f.text("reason", "延期理由", required=True, multiline=True, max_len=NOTE_MAX),
    }


def _p_decision(db, f):
    return {
        "approve": f.boolean("approve", "是否同意", required=True),
        "note": f.text("note", "审核意见", required=True, multiline=True, max_len=NOTE_MAX),
    }


def _p_finish(db, f):
    return {
        "result": f.text("result", "办理结果", required=True, multiline=True, max_len=RESULT_MAX),
        # Why the lead finishes before every assisting unit reported (协办反馈).
        "assists_note": f.text(
            "assists_note", "未等协办反馈即办结的原因", multiline=True, max_len=NOTE_MAX
        ),
    }


def _p_callback(db, f):
    return {
        "outcome": f.choice("outcome", "回访结果", CallbackOutcome, required=True),
        "solved": f.choice("solved", "解决情况", Solved),
        "satisfaction": f.choice("satisfaction", "满意度", Satisfaction),
        "comment": f.text("comment", "回访记录", multiline=True, max_len=NOTE_MAX),
    }


def _p_reason(label, required=True):
    def parse(db, f):
        return {
            "reason": f.text("reason", label, required=required, multiline=True, max_len=NOTE_MAX)
        }

    return parse


def _p_note(label):
    def parse(db, f):
        return {"note": f.text("note", label, multiline=True, max_len=NOTE_MAX)}

    return parse


def _p_exempt(db, f):
    return {
        "exempt": f.boolean("exempt", "是否豁免", default=True),
        "kind": f.choice("kind", "豁免类型", ExemptionKind),
        "reason": f.text("reason", "豁免理由", required=True, multiline=True, max_len=NOTE_MAX),
    }


def _p_reclassify(db, f):
    """调整分类和紧急程度: each of the three may be left out (kept as it is)."""
    return {
        "category": lookup_code(
            db, f, "category", Category, "事项分类", f.code("category", "事项分类")
        ),
        "urgency": f.choice("urgency", "紧急程度", Urgency),
        "request_type": f.choice("request_type", "诉求类型", RequestType),
        "reason": f.text("reason", "调整理由", required=True, multiline=True, max_len=NOTE_MAX),
    }


def _p_check_in(db, f):
    """现场核查 (a grid worker's phone form: the position is typed text, perhaps from GPS)."""
    lng, lat = f.position(text=True)
    return {
        "lng": lng,
        "lat": lat,
        "note": f.text("note", "核查说明", multiline=True, max_len=NOTE_MAX),
    }


@dataclass(frozen=True)
class TransitionForm:
    """How one transition is posted: its URL segment, its operation (the name in
    ``dispatch.states.TRANSITIONS`` and ``dispatch.operations``) and its fields' parser."""

    slug: str
    name: str
    parse: object
    #: The form carries photos (multipart, stored by the operation): None, "optional" or
    #: "required".
    photos: str | None = None

    @property
    def operation(self):
        return getattr(operations, self.name)

    def read_photos(self, files):
        """The form's uploaded ``files`` checked (``attachments.check``); a bad photo refuses
        the whole action before anything is written."""
        return attachments.check(files, required=self.photos == "required")


_FORMS = [
    TransitionForm("resolve-at-intake", "resolve_at_intake", _p_resolve_at_intake),
    TransitionForm("transfer", "transfer", _p_transfer),
    TransitionForm("merge", "merge", _p_merge),
    TransitionForm("dispatch", "dispatch", _p_dispatch),
    TransitionForm("sign", "sign", _p_empty),
    TransitionForm("contact", "contact", _p_contact),
    TransitionForm("return-request", "request_return", _p_request_return),
    TransitionForm("return-decision", "decide_return", _p_decide_return),
    TransitionForm("designate", "designate", _p_designate),
    TransitionForm("extension-request", "request_extension", _p_request_extension),
    TransitionForm("extension-decision", "decide_extension", _p_decision),
    TransitionForm("finish", "finish", _p_finish, photos="optional"),
    # 办结审核 (dispatch.reply_review): the reviewer's decision on a reply in 待审核.
    TransitionForm("approve-reply", "approve_reply", _p_note("审核意见")),
    TransitionForm("return-reply", "return_reply", _p_reason("退回理由")),
    TransitionForm("callback", "record_callback", _p_callback),
    TransitionForm("reopen", "reopen", _p_reason("重办理由")),
    TransitionForm("close", "close", _p_reason("归档说明", required=False)),
    TransitionForm("termination-request", "request_termination", _p_reason("终止理由")),
    TransitionForm("termination-review", "review_termination", _p_decision),
    TransitionForm("exempt", "exempt", _p_exempt),
    TransitionForm("reclassify", "reclassify", _p_reclassify),
    # Grid workers.
    TransitionForm("accept", "accept", _p_empty),
    TransitionForm("check-in", "check_in", _p_check_in, photos="required"),
    TransitionForm("escalate", "escalate", _p_reason("上报原因")),
]
#: URL segment → how the transition is posted. The JSON API has one POST endpoint per
#: transition taking JSON; check-in carries photos, so it is a page form only.
TRANSITION_FORMS = {form.slug: form for form in _FORMS}
JSON_TRANSITIONS = [form for form in _FORMS if form.slug != "check-in"]

#: Form inputs that are lists (multi-selects), radio booleans and whole numbers in the JSON.
LIST_FIELDS = {"assist_units", "units"}
BOOLEAN_FIELDS = {"approve", "exempt"}
INTEGER_FIELDS = {"days"}
#: Inputs a page form carries besides the operation's fields.
_PAGE_ONLY = ("csrf_token", "back")


def parse_transition(db, actor, form, data, *, page=False):
    """The keyword arguments of ``form``'s operation, with ``expected_version``, from ``data``
    (a JSON body, or a posted form when ``page``: strings, and the version required).

    Whether ``actor``'s role may do it at all is settled first (Forbidden), so a role without
    the right gets 403 whatever it sent; then ValidationFailed names every bad field."""
    operations.check_role(form.name, actor)
    if page:
        raw = data
        data = form_values(
            raw,
            lists=LIST_FIELDS,
            booleans=BOOLEAN_FIELDS,
            integers=INTEGER_FIELDS,
            skip=_PAGE_ONLY,
        )
        data.setdefault("version", "")
    return transition_values(db, form, Fields(data), page=page)


def transition_values(db, form, fields, *, page=False):
    """``form``'s fields read from ``fields`` (after the role check of ``parse_transition``;
    ``hotline.openapi`` describes the body from here)."""
    version = fields.version() if page else fields.integer("version", "版本号", minimum=1)
    values = form.parse(db, fields)
    fields.check()
    return {"expected_version": version, **values}


# -- serialising ------------------------------------------------------------------------------


def ticket_to_dict(ticket, actor):
    return {
        "number": ticket.number,
        "version": ticket.version,
        "status": labelled(ticket.status),
        "channel": labelled(ticket.channel),
        "request_type": labelled(ticket.request_type),
        "urgency": labelled(ticket.urgency),
        "category": coded(ticket.category),
        "title": ticket.title,
        "content": ticket.content,
        "requester_name": ticket.requester_name,
        "requester_phone": access.visible_phone(actor, ticket.requester_phone, ticket.number),
        "address": ticket.address,
        "area": coded(ticket.area),
        # typed (by a person or the client) or suggested (filled from the suggested place);
        # None: no area yet (待定位).
        "area_source": ticket.area_source,
        "lng": ticket.lng,
        "lat": ticket.lat,
        "lead_unit": coded(ticket.lead_unit),
        "received_at": iso(ticket.received_at),
        "clock_started_at": iso(ticket.clock_started_at),
        "sign_due": iso(ticket.sign_due),
        "contact_due": iso(ticket.contact_due),
        "finish_due": iso(ticket.finish_due),
        "callback_due": iso(ticket.callback_due),
        "callback_next_at": iso(ticket.callback_next_at),
        "signed_at": iso(ticket.signed_at),
        "contacted_at": iso(ticket.contacted_at),
        "finished_at": iso(ticket.finished_at),
        "closed_at": iso(ticket.closed_at),
        "result": ticket.result,
        "intake_outcome": labelled(ticket.intake_outcome),
        "transfer_target": labelled(ticket.transfer_target),
        "merged_into": ticket.merged_into.number if ticket.merged_into else None,
        "callback": callback_to_dict(ticket),
        "reopen_count": ticket.reopen_count,
        "scoring_exempt": ticket.scoring_exempt,
        "exempt_kind": labelled(ticket.exempt_kind),
        "exempt_reason": ticket.exempt_reason,
        "suggestion": ticket.suggestion,
        "escalation_level": ticket.escalation_level,
        "deadline_warnings": deadline_warnings(ticket),
    }


#: Characters of a ticket's result shown in a caller's history.
HISTORY_RESULT_MAX = 120


def caller_ticket_to_dict(ticket):
    """One earlier ticket of a caller, as the operator sees it while taking a call. The
    result only once it has reached the citizen (``reply_review.REPLIED``): a reply in
    待审核 or sent back by a reviewer must not be read to a citizen calling back."""
    result = reply_review.citizen_reply(ticket) or ""
    lead = ticket.lead_unit or next(
        (a.unit for a in reversed(ticket.assignments) if a.role == AssignmentRole.lead), None
    )
    return {
        "number": ticket.number,
        "received_at": iso(ticket.received_at),
        "status": labelled(ticket.status),
        "title": ticket.title,
        "category": coded(ticket.category),
        "lead_unit": coded(lead),
        "result": (
            result[:HISTORY_RESULT_MAX] + "…" if len(result) > HISTORY_RESULT_MAX else result
        )
        or None,
        "result_pending": reply_review.PENDING_WORDS if ticket.result and not result else None,
        "satisfaction": labelled(ticket.callback_satisfaction),
        "reopen_count": ticket.reopen_count,
    }


def caller_history_to_dict(phone, tickets, total):
    """A caller's earlier tickets (``calls.history``), as the console's panel and the API
    show them."""
    return {
        "phone": phone,
        "total": total,
        "tickets": [caller_ticket_to_dict(t) for t in tickets],
    }


def call_to_dict(call, actor):
    return {
        "id": call.id,
        "call_id": call.call_id,
        "caller_phone": call.caller_phone,
        "agent": call.agent,
        "agent_found": call.agent_id is not None,
        "recording_ref": call.recording_ref,
        "received_at": iso(call.received_at),
        "ticket": call.ticket.number if call.ticket else None,
    }


def call_values(fields):
    """The ``calls.announce`` values of the phone system's announcement, checked."""
    values = {
        "call_id": fields.text("call_id", "呼叫编号", required=True, max_len=CALL_ID_MAX),
        "caller_phone": fields.phone("caller", "来电号码"),
        "agent": fields.text("agent", "坐席工号", required=True, max_len=64),
        "recording_ref": fields.text("recording", "录音编号", max_len=300),
    }
    fields.check()
    return values


def callback_to_dict(ticket):
    """The answered callback on the current result (all None before one)."""
    return {
        "solved": labelled(ticket.callback_solved),
        "satisfaction": labelled(ticket.callback_satisfaction),
        "comment": ticket.callback_comment,
        "at": iso(ticket.callback_at),
    }


#: What ``ticket_to_dict`` reads of a ticket's relations, loaded with a list in one go each.
TICKET_OPTIONS = (
    selectinload(Ticket.category),
    selectinload(Ticket.area),
    selectinload(Ticket.lead_unit),
    selectinload(Ticket.merged_into),
)


def deadline_warnings(ticket):
    """Deadlines that rest on a Monday–Friday guess, in words (never silent)."""
    years = [y for y in (ticket.calendar_guessed_years or "").split(",") if y]
    return [
        f"时限涉及 {year} 年，计算时该年节假日安排尚未发布或录入，已按周一至周五推算，"
        "请以正式安排核对"
        for year in years
    ]


def _assignment_to_dict(a):
    return {
        "unit": coded(a.unit),
        "role": labelled(a.role),
        "active": a.active,
        "designated": a.designated,
        "dispatched_at": iso(a.dispatched_at),
        "signed_at": iso(a.signed_at),
        "contacted_at": iso(a.contacted_at),
        "finished_at": iso(a.finished_at),
        "ended_at": iso(a.ended_at),
        "return_reason": labelled(a.return_reason),
        "return_note": a.return_note,
        "return_status": labelled(a.return_status),
    }


def event_to_dict(e):
    return {
        "id": e.id,
        "action": e.action,
        "actor": e.actor.username if e.actor else None,
        "actor_role": e.actor_role,
        "unit": e.unit.code if e.unit else None,
        "from_status": e.from_status,
        "to_status": e.to_status,
        "reason": e.reason,
        "payload": e.payload,
        "created_at": iso(e.created_at),
    }


def _round_to_dict(r):
    """One round of handling (``dispatch.narrative.rounds``); the current round's deadlines
    are the ticket's own."""
    return {
        "number": r.number,
        "current": r.current,
        "started_at": iso(r.started_at),
        "reopen_reason": r.reopen_reason,
        "lead_unit": coded(r.lead),
        "units": [
            {"unit": coded(a.unit), "role": labelled(a.role), "state": assignment_state(a)}
            for a in r.assignments
        ],
        "deadlines": {
            clock: iso(due)
            for clock, (_, due, _) in zip(("sign", "contact", "finish"), r.deadlines, strict=True)
        },
        "result": r.result,
        "finished_at": iso(r.finished_at),
        "callback_attempts": [
            {
                "outcome": labelled(c.outcome),
                "solved": labelled(c.solved),
                "satisfaction": labelled(c.satisfaction),
                "comment": c.comment,
                "attempted_at": iso(c.attempted_at),
            }
            for c in r.attempts
        ],
    }


def ticket_detail(db, ticket, actor):
    data = ticket_to_dict(ticket, actor)
    record = history(db, ticket)
    data["assignments"] = [
        {**_assignment_to_dict(a), "state": assignment_state(a)} for a in record.assignments
    ]
    teller = Teller(db, record.events, current_app.config["TIMEZONE"])
    data["events"] = [
        {**event_to_dict(e), "description": teller.sentence(e)} for e in record.events
    ]
    current = [(c, getattr(ticket, f"{c}_due"), None) for c in ("sign", "contact", "finish")]
    data["rounds"] = [_round_to_dict(r) for r in rounds(record, ticket, utcnow(), current)]
    data["extensions"] = [
        {
            "days": x.days,
            "reason": x.reason,
            "status": labelled(x.status),
            "requested_at": iso(x.requested_at),
            "decided_at": iso(x.decided_at),
            "decision_note": x.decision_note,
            "old_finish_due": iso(x.old_finish_due),
            "new_finish_due": iso(x.new_finish_due),
        }
        for x in record.extensions
    ]
    data["timers"] = [
        {
            "kind": labelled(f.kind),
            "level": f.level,
            "due_at": iso(f.due_at),
            "fired_at": iso(f.fired_at),
            "lateness_seconds": f.lateness_seconds,
        }
        for f in db.scalars(
            sa.select(TimerFiring)
            .where(TimerFiring.ticket_id == ticket.id)
            .order_by(TimerFiring.due_at, TimerFiring.id)
        )
    ]
    data["callback_attempts"] = [
        {
            "outcome": labelled(c.outcome),
            "solved": labelled(c.solved),
            "satisfaction": labelled(c.satisfaction),
            "comment": c.comment,
            "attempted_at": iso(c.attempted_at),
        }
        for c in record.attempts
    ]
    return data


# -- the callback queues ----------------------------------------------------------------------


def _attempts_to_dict(rows):
    last = rows[-1] if rows else None
    return {
        "count": len(rows),
        "max": current_app.config["CALLBACK_MAX_ATTEMPTS"],
        "last_outcome": labelled(last.outcome) if last else None,
        "last_at": iso(last.attempted_at) if last else None,
    }


def _callback_common(ticket, attempts, actor):
    return {
        "number": ticket.number,
        "version": ticket.version,
        "status": labelled(ticket.status),
        "title": ticket.title,
        "category": coded(ticket.category),
        "lead_unit": coded(ticket.lead_unit),
        "result": ticket.result,
        "finished_at": iso(ticket.finished_at),
        "requester_name": ticket.requester_name,
        "requester_phone": access.visible_phone(actor, ticket.requester_phone, ticket.number),
        "attempts": _attempts_to_dict(attempts),
    }


def callback_queue_item(ticket, attempts, now, actor):
    data = _callback_common(ticket, attempts, actor)
    data.update(
        {
            "callback_due": iso(ticket.callback_due),
            "callback_next_at": iso(ticket.callback_next_at),
            "due_now": ticket.callback_next_at is not None and ticket.callback_next_at <= now,
            "overdue": ticket.callback_due is not None and ticket.callback_due < now,
        }
    )
    return data


def callback_review_item(ticket, attempts, actor):
    data = _callback_common(ticket, attempts, actor)
    data.update(
        {
            "callback": callback_to_dict(ticket),
            "reopen_count": ticket.reopen_count,
        }
    )
    return data


# -- time limits and the working-day calendar -------------------------------------------------

#: Longest name of a calendar day, note on a year, and name of a policy.
DAY_NAME_MAX = 50
YEAR_NOTE_MAX = 200
POLICY_NAME_MAX = 100
#: Largest limit per unit: a week in minutes, a month in hours, three months in working days.
LIMIT_MAX = {LimitUnit.minutes: 10080, LimitUnit.hours: 720, LimitUnit.working_days: 60}
WEEKDAY_LABELS = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"]
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)
_YEAR = re.compile(r"^\d{4}$", re.ASCII)


def parse_year(raw, name="year"):
    if not (_YEAR.match(raw) and time_rules.FIRST_YEAR <= int(raw) <= time_rules.LAST_YEAR):
        first, last = time_rules.FIRST_YEAR, time_rules.LAST_YEAR
        raise ValidationFailed(
            f"年份须为 {first}–{last} 之间的四位数字：{raw}",
            details={name: f"须为 {first}–{last} 之间的四位数字"},
        )
    return int(raw)


def parse_day(raw):
    try:
        day = dt.date.fromisoformat(raw) if _DATE.match(raw) else None
    except ValueError:
        day = None
    first, last = time_rules.FIRST_YEAR, time_rules.LAST_YEAR
    if day is None or not first <= day.year <= last:
        raise ValidationFailed(
            f"日期须为 {first}–{last} 年间的有效日期，格式 YYYY-MM-DD：{raw}",
            details={"day": "日期格式应为 YYYY-MM-DD"},
        )
    return day


def calendar_day_values(fields):
    values = {
        "workday": fields.boolean("workday", "是否工作日", required=True),
        "name": fields.text("name", "名称", max_len=DAY_NAME_MAX),
    }
    fields.check()
    return values


def calendar_year_values(fields):
    values = {"note": fields.text("note", "依据说明", max_len=YEAR_NOTE_MAX)}
    fields.check()
    return values


def _limit(fields, clock, *, required):
    """One clock's limit ``{"amount": int, "unit": …}`` as (amount, LimitUnit)."""
    label = time_rules.CLOCK_LABELS[clock]
    value = fields.raw(clock)
    if value is None:
        if required:
            fields.errors.setdefault(clock, f"请填写{label}")
        return None
    example = '{"amount": 2, "unit": "hours"}'
    if not isinstance(value, dict):
        fields.errors.setdefault(clock, f"{label}须为对象，如 {example}")
        return None
    unknown = [key for key in value if key not in ("amount", "unit")]
    if unknown:
        fields.errors.setdefault(clock, f"{label}含未知字段“{unknown[0]}”")
        return None
    amount = value.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
        fields.errors.setdefault(f"{clock}.amount", f"{label}的数值须为正整数")
        amount = None
    unit = LimitUnit.parse(value["unit"]) if isinstance(value.get("unit"), str) else None
    if unit is None:
        options = "、".join(f"{m.value}（{m.label}）" for m in LimitUnit)
        fields.errors.setdefault(f"{clock}.unit", f"{label}的单位取值无效，可选：{options}")
    if amount is None or unit is None:
        return None
    if amount > LIMIT_MAX[unit]:
        fields.errors.setdefault(
            f"{clock}.amount", f"{label}不能超过 {LIMIT_MAX[unit]} {unit.label}（现为 {amount}）"
        )
        return None
    return amount, unit


def policy_values(db, data, *, creating):
    """The fields given in ``data`` as SlaPolicy attributes; on PATCH only those present."""
    fields = Fields(data)
    values = {}
    if creating or "name" in data:
        values["name"] = fields.text("name", "规则名称", required=True, max_len=POLICY_NAME_MAX)
    if creating or "category" in data:
        code = fields.code("category", "事项分类")
        category = None
        if code is not None:
            try:
                category = by_code(db, Category, code, "事项分类")
            except NotFound as exc:
                fields.errors.setdefault("category", exc.message)
        values["category"] = category
        values["category_id"] = category.id if category else None
    if creating or "request_type" in data:
        values["request_type"] = fields.choice("request_type", "诉求类型", RequestType)
    if creating or "urgency" in data:
        values["urgency"] = fields.choice("urgency", "紧急程度", Urgency)
    for clock in time_rules.CLOCK_LABELS:
        if creating or clock in data:
            limit = _limit(fields, clock, required=True)
            if limit:
                values[f"{clock}_amount"], values[f"{clock}_unit"] = limit
    if creating or "active" in data:
        # On PATCH a null is refused, not read as "leave as it is" or "switch on".
        values["active"] = fields.boolean(
            "active", "是否启用", required=not creating, default=True if creating else None
        )
    fields.check()
    return values


def year_summary_to_dict(summary):
    return {**summary, "defined_at": iso(summary["defined_at"])}


def calendar_day_to_dict(day, workday, name, source, *, updated_by=None, updated_at=None):
    return {
        "date": day.isoformat(),
        "weekday": day.isoweekday(),
        "weekday_label": WEEKDAY_LABELS[day.weekday()],
        "workday": workday,
        "name": name,
        "source": source,
        "source_label": time_rules.SOURCE_LABELS[source],
        "official": time_rules.official_answer(day) if source == "table" else None,
        "updated_by": updated_by,
        "updated_at": iso(updated_at),
    }


def calendar_entry_to_dict(entry, username):
    return calendar_day_to_dict(
        entry.day,
        entry.workday,
        entry.name,
        "table",
        updated_by=username,
        updated_at=entry.updated_at,
    )


# -- a grid worker's 主动发现 ------------------------------------------------------------------


def report_values(db, user, form):
    """The ``operations.receive`` values of a grid worker's patrol report (a posted form),
    with its idempotency ``key``: the grid is the one chosen (of the worker's own) or the one
    of theirs the position falls in. Raises ValidationFailed naming every bad field."""
    data = form_values(form, skip=_PAGE_ONLY)
    fields = Fields(data)
    values = {
        "content": fields.content(label="问题描述"),
        "title": fields.text("title", "标题", max_len=TITLE_MAX),
        "request_type": fields.choice(
            "request_type", "诉求类型", RequestType, default=RequestType.help
        ),
        "urgency": fields.choice("urgency", "紧急程度", Urgency, default=Urgency.normal),
        "address": fields.text("address", "地址", max_len=ADDRESS_MAX),
        "key": fields.idempotency_key("key", "页面缺少防重复提交标识，请刷新页面后重新填写"),
    }
    code = fields.raw("category")
    values["category"] = None
    if code:
        values["category"] = lookup_code(db, fields, "category", Category, "事项分类", code)
    values["lng"], values["lat"] = fields.position(text=True)
    values["area"] = _grid_for(user, fields, values["lng"], values["lat"])
    fields.check()
    return values


def _grid_for(user, fields, lng, lat):
    """The chosen grid (one of the worker's), or the one of theirs the position falls in."""
    grids = {a.code: a for a in user.grids}
    code = fields.raw("grid")
    if code:
        if code not in grids:
            return fields.fail("grid", "只能上报本人负责网格内的问题")
        return grids[code]
    if lng is None:
        return fields.fail("grid", "请选择网格，或点“获取定位”按位置确定网格")
    # The same point-in-polygon rule as the intake suggestions: near a boundary is no answer.
    located = GridLocator([(a.code, a.polygon) for a in grids.values() if a.polygon])
    hit = located.lookup(lng, lat)
    if hit.code is None:
        return fields.fail("grid", "定位不在您负责的网格内或靠近网格边界，请手动选择网格")
    return grids[hit.code]
