"""Ticket lifecycle operations (DOMAIN.md §3): one function per transition.

Every operation checks the actor's role and the ticket's state against ``states.TRANSITIONS``,
changes the ticket, appends exactly one ``TicketEvent`` and flushes. The caller (API view, CLI,
scheduler) commits, so a refused or failed operation leaves nothing behind. Concurrent changes
to one ticket are caught by the ticket's version counter: the loser's flush raises
``StaleDataError``, which callers report as a conflict.
"""

import datetime as dt
import hashlib
import json
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from classifier import geo, reply_quality
from dispatch import (
    calendar,
    calls,
    citizen_notices,
    cohandling,
    placing,
    reply_review,
    routing,
    sla,
    timers,
    whistle_timers,
)
from dispatch.states import ADMINISTRATIVE, FINAL, IN_HANDLING, TRANSITIONS
from hotline import attachments, city, events, knowledge, notify, settings, suggestions
from hotline.audit import audit
from hotline.config import DEFAULTS
from hotline.db import utcnow
from hotline.enums import (
    AlertLevel,
    AssignmentRole,
    CallbackChannel,
    CallbackOutcome,
    Channel,
    DecisionStatus,
    IntakeOutcome,
    LimitUnit,
    Role,
    Satisfaction,
    Solved,
    TicketStatus,
    UnitKind,
)
from hotline.errors import Conflict, Forbidden, ValidationFailed
from hotline.logs import current_request_id
from hotline.models import (
    Assignment,
    CallbackAttempt,
    Extension,
    SlaPolicy,
    Ticket,
    TicketEvent,
)

S = TicketStatus


def _config():
    """The application's configuration (the defaults outside an application, e.g. in a
    script that drives the operations directly)."""
    return current_app.config if current_app else DEFAULTS


def _setting(name):
    return _config()[name]


def timer_settings():
    return timers.Settings.from_config(_config())


def work_calendar(session):
    return calendar.load(session, _setting("TIMEZONE"))


# -- shared steps -----------------------------------------------------------------------------


def check_allowed(name, ticket, actor, expected_version=None):
    """Refuse ``name`` on ``ticket`` for ``actor`` unless the transition table allows it."""
    transition = check_role(name, actor)
    if expected_version is not None and ticket.version != expected_version:
        raise Conflict(
            "工单已被他人更新，请刷新后重试",
            code="TICKET_VERSION_CONFLICT",
            details={"expected_version": expected_version, "current_version": ticket.version},
        )
    _check_state(ticket, transition.from_states, name)
    return transition


def check_role(name, actor):
    transition = TRANSITIONS[name]
    if actor.role not in transition.roles:
        raise Forbidden(
            f"“{actor.role.label}”角色无权执行“{transition.label}”操作",
            code="ROLE_NOT_ALLOWED",
            details={"operation": name, "role": actor.role.value},
        )
    return transition


def _check_state(ticket, allowed, name):
    if ticket.status not in allowed:
        raise Conflict(
            f"工单当前状态为“{ticket.status.label}”，不能执行“{TRANSITIONS[name].label}”",
            code="TICKET_STATE_CONFLICT",
            details={"operation": name, "status": ticket.status.value},
        )


def _require(condition, field, message):
    if not condition:
        raise ValidationFailed(message, details={field: message})


def _require_active_category(category, current=None):
    """Refuse a deactivated category (事项分类停用) chosen for a ticket; the one the ticket
    already has (``current``) may stay."""
    if category is None or category.active or (current is not None and category.id == current.id):
        return
    message = f"事项分类“{category.name}”（{category.code}）已停用，请选择其他分类"
    raise ValidationFailed(message, code="CATEGORY_INACTIVE", details={"category": message})


def _require_reason(reason, label="原因"):
    _require(reason is not None and reason.strip(), "reason", f"请填写{label}")
    return reason.strip()


def _own_assignment(ticket, actor, role=None):
    """The actor's unit's active assignment on the ticket, or a refusal."""
    assignment = ticket.active_assignment(actor.unit_id, role)
    if assignment is None:
        if role == AssignmentRole.lead and ticket.active_assignment(actor.unit_id):
            message = "只有主办单位可以执行此操作"
        else:
            message = "该工单未派给您所在单位"
        raise Forbidden(message, code="TICKET_NOT_ASSIGNED_TO_UNIT")
    return assignment


def _record(
    session,
    ticket,
    actor,
    name,
    from_status,
    *,
    reason=None,
    payload=None,
    unit_id=None,
    now,
):
    """Append the event of one transition and mark the ticket changed (bumps its version)."""
    if ticket.updated_at != now:
        ticket.updated_at = now
    if ticket.status != S.finished and ticket.callback_next_at is not None:
        # Only a finished ticket waits for a callback: whatever moved it on ends the wait.
        ticket.callback_next_at = None
    timers.schedule(session, ticket, now, timer_settings())
    ended = whistle_timers.end_with_ticket(session, ticket, from_status, now)
    if ended:
        payload = {**(payload or {}), "summonses_ended": ended}
    event = TicketEvent(
        ticket=ticket,
        action=name,
        actor_id=actor.id if actor else None,
        actor_role=actor.role.value if actor else None,
        unit_id=unit_id,
        from_status=from_status.value if from_status else None,
        to_status=ticket.status.value,
        reason=reason,
        payload=payload or {},
        created_at=now,
        request_id=current_request_id(),
    )
    session.add(event)
    session.flush()
    _publish(session, ticket, name, from_status, now)
    if ticket.parent_id is not None and ticket.status in FINAL and from_status not in FINAL:
        # The one place a child ticket of a split call (拆单) becomes final: its parent
        # closes when this was the last one open.
        cohandling.close_parent_if_done(session, ticket, now)
    return event


def _publish(session, ticket, name, from_status, now):
    """Queue the real-time message of a transition (sent after commit; no personal data)."""
    events.queue(
        session,
        {
            "type": f"ticket.{name}",
            "ticket": ticket.number,
            "status": ticket.status.value,
            "from_status": from_status.value if from_status else None,
            "channel": ticket.channel.value,
            "request_type": ticket.request_type.value,
            "area": ticket.area.code if ticket.area else None,
            "unit": ticket.lead_unit.code if ticket.lead_unit else None,
            "at": now.isoformat(),
            # The request that made it, followed from the log into the boards' messages.
            "request_id": current_request_id(),
        },
    )


def _start_clock(session, ticket, lead_unit, now):
    """Set sign / contact / finish deadlines for a new round of handling."""
    deadlines = sla.compute(
        session,
        ticket,
        now,
        always_on=lead_unit.always_on,
        calendar=work_calendar(session),
    )
    ticket.clock_started_at = now
    ticket.sla_policy_id = deadlines.policy.id
    ticket.sign_due = deadlines.due["sign"]
    ticket.contact_due = deadlines.due["contact"]
    ticket.finish_due = deadlines.due["finish"]
    ticket.callback_due = None
    ticket.signed_at = ticket.contacted_at = ticket.finished_at = None
    ticket.escalation_level = 0
    ticket.calendar_guessed_years = None
    _flag_guessed(ticket, deadlines.guessed_years)
    return {
        "sign_due": ticket.sign_due.isoformat(),
        "contact_due": ticket.contact_due.isoformat(),
        "finish_due": ticket.finish_due.isoformat(),
        "sla_policy": deadlines.policy.name,
        "calendar_guessed_years": deadlines.guessed_years,
    }


def _flag_guessed(ticket, years):
    """Remember years whose deadlines were Monday–Friday guesses (shown as a warning)."""
    if years:
        known = set(filter(None, (ticket.calendar_guessed_years or "").split(",")))
        ticket.calendar_guessed_years = ",".join(sorted(known | {str(y) for y in years}))


def _end_assignments(session, ticket, now):
    """End every unit's part in the ticket; their pending extension requests lapse with it."""
    for a in ticket.assignments:
        if a.active:
            a.active = False
            a.ended_at = now
    _lapse_pending_extension(session, ticket, now, "承办单位已变更或工单已结束，申请自动失效")


def _lapse_pending_extension(session, ticket, now, note):
    extension = _pending_extension(session, ticket)
    if extension is not None:
        extension.status = DecisionStatus.rejected
        extension.decided_at = now
        extension.decision_note = note


def _pending_extension(session, ticket):
    """The ticket's extension request awaiting a decision, or None.

    Read without autoflushing the operation's half-made changes (one flush per operation, in
    ``_record``, is much cheaper than one per read): the rows' statuses in the session and
    requests added but not yet flushed are checked here instead."""
    pending = DecisionStatus.pending
    with session.no_autoflush:
        stored = session.scalars(
            sa.select(Extension)
            .where(Extension.ticket_id == ticket.id, Extension.status == pending)
            .order_by(Extension.id)
        ).all()
    added = [o for o in session.new if isinstance(o, Extension) and o.ticket_id == ticket.id]
    return next((e for e in [*stored, *added] if e.status == pending), None)


def _assign(session, ticket, actor, lead, assists, now, *, designated=False):
    """Give the ticket to ``lead`` (+ ``assists``), copying a street's district government."""
    _require(lead.active, "lead_unit", f"承办单位“{lead.name}”已停用")
    _require(lead.kind != UnitKind.hotline_centre, "lead_unit", "不能派给热线中心本身")
    seen = {lead.id}
    for unit in assists:
        _require(unit.active, "assist_units", f"协办单位“{unit.name}”已停用")
        _require(unit.id not in seen, "assist_units", f"单位“{unit.name}”重复或与主办单位相同")
        seen.add(unit.id)
    if ticket.lead_unit_id is not None and ticket.lead_unit_id != lead.id:
        ticket.lead_history = True
    _end_assignments(session, ticket, now)
    # A new round of handling: a grid worker who took the ticket on site must accept it anew.
    ticket.grid_worker_id = None
    parts = [(lead, AssignmentRole.lead)] + [(u, AssignmentRole.assist) for u in assists]
    if lead.kind == UnitKind.street_office and lead.areas:
        government = routing.district_government_for(session, lead.areas[0])
        if government is not None and government.id not in seen:
            parts.append((government, AssignmentRole.copy))
    for unit, role in parts:
        assignment = Assignment(
            unit=unit,
            unit_id=unit.id,
            role=role,
            designated=designated and role == AssignmentRole.lead,
            dispatched_at=now,
            dispatched_by_id=actor.id,
        )
        ticket.assignments.append(assignment)
    ticket.lead_unit = lead
    return {
        "lead_unit": lead.code,
        "assist_units": [u.code for u in assists],
        "copied_to": [u.code for u, role in parts if role == AssignmentRole.copy],
        "designated": designated,
    }


def _status_before_request(ticket):
    """Where a ticket returns when a unit's return or termination request is turned down."""
    if ticket.contacted_at is not None:
        return S.contacted
    if ticket.signed_at is not None:
        return S.signed
    return S.dispatched


def _number_prefix(session, moment):
    """The city's prefix (城市设置) and the local date of ``moment``."""
    day = moment.astimezone(ZoneInfo(_setting("TIMEZONE"))).strftime("%Y%m%d")
    return f"{city.ticket_prefix(session, _config())}{day}"


def _number(session, ticket):
    """工单编号: prefix + local date + serial (the id, where there is no number sequence)."""
    return f"{_number_prefix(session, ticket.received_at)}{ticket.id:08d}"


#: Ticket inserts, built once so SQLAlchemy compiles them once. On PostgreSQL the number's
#: serial comes from ``ticket_number_seq`` inside the INSERT; SQLite sets it from the id after.
_INSERT_TICKET = sa.insert(Ticket).returning(Ticket)
_INSERT_TICKET_WITH_NUMBER = (
    sa.insert(Ticket)
    .values(
        number=sa.bindparam("number_prefix", type_=sa.String)
        + sa.func.lpad(sa.cast(sa.func.nextval("ticket_number_seq"), sa.Text), 8, "0")
    )
    .returning(Ticket)
)


# -- intake -----------------------------------------------------------------------------------


def request_digest(data):
    """A stable digest of a create request, to tell a retry from a reuse of its key."""
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


#: ``receive(suggestion=SUGGEST)``: ask the classifier (the default).
SUGGEST = object()
#: Longest title made from the first line of the content.
TITLE_CHARS = 30


def title_from(content):
    """A ticket's title when none is given: the first line of its content, shortened."""
    first_line = content.strip().splitlines()[0]
    return first_line[:TITLE_CHARS] + ("…" if len(first_line) > TITLE_CHARS else "")


def receive(
    session,
    actor,
    *,
    channel,
    request_type,
    urgency,
    content,
    title=None,
    category=None,
    requester_name=None,
    requester_phone=None,
    address=None,
    area=None,
    lng=None,
    lat=None,
    photos=(),
    idempotency_key=None,
    digest=None,
    suggestion=SUGGEST,
    emergency_decision=None,
    citizen_saw_warning=None,
    offered_suggestion=None,
    call_id=None,
    channel_client=None,
    extra_payload=None,
    now=None,
):
    """受理: record a new request. Returns (ticket, created).

    The title defaults to the content's first line; the classifier's suggestion (category,
    type, urgency, place, units) is computed here and stored with the ticket, unless the
    caller hands one over (or None: no suggestion). ``offered_suggestion`` is what the
    suggestion API answered the client for this text: used if its signature proves it
    (``suggestions.reusable``), else the suggestion is computed. ``photos``
    (``attachments.check``) are stored with the receive event, in the same transaction (a
    grid worker's 主动发现).

    An area given is ``typed``; without one, a confident suggested place becomes the area
    (``suggested``, narrowed to a grid where that is certain: ``placing.suggested_area``);
    otherwise the ticket has no area and waits in the dispatcher's queue as 待定位.

    With an ``idempotency_key``, a retry of the same request returns the ticket made the
    first time (created False); the same key with a different request is refused.

    The urgency is the caller's, never the suggestion's: a suggested emergency is a warning
    the operator answers (``emergency_decision``: kept, dismissed, transferred). The receive
    event records whether the warning was shown and the answer (``unanswered`` if none), so
    false alarms and overridden warnings can be counted. A citizen's own request (市民端) has
    no operator: ``citizen_saw_warning`` records whether the page showed the citizen the
    line to call before they submitted anyway.

    ``call_id`` names the call the phone system put through to ``actor`` (``calls.announce``):
    the ticket keeps it and its recording, and the call is marked taken.

    ``channel_client`` names the other system a request came from (an Open311 key's name);
    ``extra_payload`` is what that channel adds to the receive event (Open311's media_url).
    """
    now = now or utcnow()
    check_role("receive", actor)
    _require_active_category(category)
    call = None
    if call_id is not None:
        call = calls.for_ticket(session, actor, call_id)
        _require(call is not None, "call_id", f"来电记录不存在：{call_id}")
    if actor.role == Role.grid_worker:
        # 主动发现: a grid worker reports what they find in their own grids.
        _require(channel == Channel.grid, "channel", "网格员上报的渠道必须为“网格主动发现”")
        grid_codes = {g.code for g in actor.grids}
        _require(
            area is not None and area.code[:15] in grid_codes,
            "area",
            "网格员只能上报本人负责网格内的问题",
        )
    else:
        _require(channel != Channel.grid, "channel", "“网格主动发现”渠道只供网格员使用")
    if actor.role != Role.portal:
        # Only another system's own account files through Open311 (dispatch.open311).
        _require(channel != Channel.open311, "channel", "“开放接口”渠道只供外部系统通过接口提交")
    if title is None:
        title = title_from(content)
    if suggestion is SUGGEST:
        suggestion = suggestions.for_intake(
            session, content, address=address, lng=lng, lat=lat, offered=offered_suggestion
        )
    area_source = placing.TYPED if area is not None else None
    if area is None and suggestion:
        area = placing.suggested_area(
            session,
            suggestion.get("area"),
            lng=lng,
            lat=lat,
            min_confidence=_setting("AREA_FILL_MIN_CONFIDENCE"),
        )
        area_source = placing.SUGGESTED if area is not None else None
    values = {
        "channel": channel,
        "request_type": request_type,
        "urgency": urgency,
        "category_id": category.id if category else None,
        "title": title,
        "content": content,
        "requester_name": requester_name,
        "requester_phone": requester_phone,
        "address": address,
        "area_id": area.id if area else None,
        "area_source": area_source,
        "lng": lng,
        "lat": lat,
        "status": S.received,
        "received_at": now,
        "updated_at": now,
        "created_by_id": actor.id,
        "idempotency_key": idempotency_key,
        "request_digest": digest,
        "suggestion": suggestion,
        "dispatch_confidence": suggestions.dispatch_confidence(suggestion),
        "call_id": call.call_id if call else None,
        "recording_ref": call.recording_ref if call else None,
        "channel_client": channel_client,
    }
    try:
        # One INSERT … RETURNING, no look-up first: the unique (creator, key) constraint
        # settles retries and races, so a new request pays nothing for idempotency.
        ticket = insert_ticket(session, values)
    except IntegrityError:
        session.rollback()
        existing = idempotency_key and _ticket_for_key(session, actor, idempotency_key, digest)
        if not existing:
            raise
        return existing, False
    payload = {
        **(extra_payload or {}),
        "channel": channel.value,
        "request_type": request_type.value,
    }
    if area_source == placing.SUGGESTED:
        # Which area the suggestion filled in (a typed one is the ticket's own field).
        payload["suggested_area"] = area.code
    # A grid worker's report shows no warning (they are on site and choose the urgency).
    warning = emergency_warning(suggestion) if channel != Channel.grid else None
    if warning is not None or emergency_decision is not None:
        payload["urgency_warning"] = {
            "shown": warning is not None,
            **(warning or {}),
            "decision": emergency_decision.value if emergency_decision else "unanswered",
            "urgency": urgency.value,
        }
    if citizen_saw_warning or (citizen_saw_warning is not None and warning is not None):
        shown = payload.setdefault("urgency_warning", {"shown": False, "urgency": urgency.value})
        shown["citizen_saw_warning"] = citizen_saw_warning
    event = _record(session, ticket, actor, "receive", None, now=now, payload=payload)
    if photos:
        attachments.store(session, actor, ticket, photos, purpose="report", event=event)
    if call is not None and call.ticket_id is None:
        call.ticket_id = ticket.id
    return ticket, True


def insert_ticket(session, values):
    """Insert a new ticket row (``values``: its columns, ``received_at`` among them) and
    number it: one INSERT … RETURNING, the number's serial from ``ticket_number_seq`` on
    PostgreSQL, from the id on SQLite. ``receive`` and 拆单's children (dispatch.cohandling)
    both make tickets here."""
    statement = _INSERT_TICKET
    if session.get_bind().dialect.name == "postgresql":
        statement = _INSERT_TICKET_WITH_NUMBER
        values = {**values, "number_prefix": _number_prefix(session, values["received_at"])}
    ticket = session.scalars(statement, [values]).one()
    if ticket.number is None:
        ticket.number = _number(session, ticket)
    return ticket


#: The emergency lines the console offers when the classifier names one (the warning).
EMERGENCY_LINES = ("110", "119", "120", "122")


def emergency_warning(suggestion):
    """The emergency warning a suggestion raises at intake — {"transfer_to", "evidence"} —
    or None. The console shows it by the same rule."""
    urgency = (suggestion or {}).get("urgency") or {}
    if urgency.get("tier") != "emergency" or urgency.get("transfer_to") not in EMERGENCY_LINES:
        return None
    return {"transfer_to": urgency["transfer_to"], "evidence": urgency.get("evidence")}


def _ticket_for_key(session, actor, key, digest):
    ticket = session.scalars(
        sa.select(Ticket).where(Ticket.created_by_id == actor.id, Ticket.idempotency_key == key)
    ).first()
    if ticket is not None and digest is not None and ticket.request_digest != digest:
        raise ValidationFailed(
            "该 Idempotency-Key 已用于另一条不同的诉求，请使用新的键",
            code="IDEMPOTENCY_KEY_REUSED",
            details={"idempotency_key": key},
        )
    return ticket


def resolve_at_intake(
    session, actor, ticket, *, outcome, answer=None, article=None, expected_version=None, now=None
):
    """直接办结: closed at intake — answered from the knowledge base (首问即答) or one of the
    outcomes that create no dispatched ticket.

    With a knowledge ``article`` (首问即答 only) the ticket records which article closed it,
    and the answer defaults to the article's, naming it."""
    now = now or utcnow()
    check_allowed("resolve_at_intake", ticket, actor, expected_version)
    payload = {"outcome": outcome.value}
    if article is not None:
        _require(
            outcome == IntakeOutcome.answered,
            "article",
            "只有“首问即答”办结才能引用知识库条目",
        )
        _require(
            knowledge.is_in_force(article, knowledge.local_today(now, _setting("TIMEZONE"))),
            "article",
            f"知识库条目已停用或已过有效期：{article.code}",
        )
        if not (answer or "").strip():
            answer = f"{article.answer}\n（知识库条目 {article.code}：{article.title}）"
        ticket.answer_article_id = article.id
        payload["article"] = article.code
    answer = _require_reason(answer, "答复内容")
    before = ticket.status
    ticket.status = S.resolved_at_intake
    ticket.intake_outcome = outcome
    ticket.result = answer
    ticket.finished_at = ticket.closed_at = now
    return _record(
        session,
        ticket,
        actor,
        "resolve_at_intake",
        before,
        reason=answer,
        now=now,
        payload=payload,
    )


def transfer(session, actor, ticket, *, target, reason, expected_version=None, now=None):
    """转办: emergencies to 110/119/120/122, or matters for a legal channel."""
    now = now or utcnow()
    check_allowed("transfer", ticket, actor, expected_version)
    reason = _require_reason(reason, "转办说明")
    before = ticket.status
    ticket.status = S.transferred
    ticket.transfer_target = target
    ticket.closed_at = now
    return _record(
        session,
        ticket,
        actor,
        "transfer",
        before,
        reason=reason,
        now=now,
        payload={"target": target.value},
    )


def merge(session, actor, ticket, *, into, reason=None, expected_version=None, now=None):
    """并单: a repeated report of a matter already on an open ticket."""
    now = now or utcnow()
    check_allowed("merge", ticket, actor, expected_version)
    _require(into.id != ticket.id, "into", "不能与自身并单")
    _require(
        into.status not in FINAL,
        "into",
        f"目标工单状态为“{into.status.label}”，不能并入",
    )
    before = ticket.status
    ticket.status = S.merged
    ticket.merged_into = into
    ticket.closed_at = now
    return _record(
        session,
        ticket,
        actor,
        "merge",
        before,
        reason=reason,
        now=now,
        payload={"into": into.number},
    )


# -- dispatch and handling --------------------------------------------------------------------


def dispatch(
    session,
    actor,
    ticket,
    *,
    lead,
    assists=(),
    category=None,
    area=None,
    note=None,
    expected_version=None,
    now=None,
):
    """派单: give the ticket to a lead unit (+ assisting units) and start its clock.

    ``area``: where the matter lies, set by the dispatcher (a 待定位 ticket, or a suggested
    place corrected); recorded in the event with the area it replaces."""
    now = now or utcnow()
    check_allowed("dispatch", ticket, actor, expected_version)
    _require(category or ticket.category, "category", "派单前请先确定事项分类")
    _require_active_category(category, ticket.category)
    before = ticket.status
    payload = _assign(session, ticket, actor, lead, list(assists), now)
    if category is not None:
        ticket.category = category
    if area is not None and area.id != ticket.area_id:
        payload["area"] = area.code
        payload["area_before"] = ticket.area.code if ticket.area else None
        ticket.area = area
        ticket.area_source = placing.TYPED
    ticket.status = S.dispatched
    payload.update(_start_clock(session, ticket, lead, now))
    payload["category"] = ticket.category.code
    return _record(
        session, ticket, actor, "dispatch", before, reason=note, payload=payload, now=now
    )


def sign(session, actor, ticket, *, expected_version=None, now=None):
    """签收: the unit acknowledges the ticket. The lead's signature moves the ticket on."""
    now = now or utcnow()
    check_allowed("sign", ticket, actor, expected_version)
    assignment = _own_assignment(ticket, actor)
    if assignment.role == AssignmentRole.copy:
        raise Forbidden("抄送单位无需签收", code="COPY_NEEDS_NO_SIGNATURE")
    if assignment.signed_at is not None:
        raise Conflict("本单位已签收该工单", code="ALREADY_SIGNED")
    if assignment.role == AssignmentRole.lead:
        _check_state(ticket, {S.dispatched, S.reopened}, "sign")
    before = ticket.status
    _sign_assignment(ticket, assignment, actor, now)
    return _record(
        session,
        ticket,
        actor,
        "sign",
        before,
        unit_id=actor.unit_id,
        now=now,
        payload={"role": assignment.role.value, "late": _late(now, ticket.sign_due)},
    )


def _sign_assignment(ticket, assignment, actor, now):
    """The unit's signature (``sign``, or a grid worker's ``accept``): the lead's moves the
    ticket to 已签收."""
    assignment.signed_at = now
    assignment.signed_by_id = actor.id
    if assignment.role == AssignmentRole.lead:
        ticket.status = S.signed
        ticket.signed_at = now


def _late(now, due):
    return due is not None and now > due


def contact(session, actor, ticket, *, note, expected_version=None, now=None):
    """联系诉求人 (响应): the lead unit has reached the requester."""
    now = now or utcnow()
    check_allowed("contact", ticket, actor, expected_version)
    if actor.role == Role.grid_worker:
        _require_accepted_by(ticket, actor)
    assignment = _own_assignment(ticket, actor, AssignmentRole.lead)
    note = _require_reason(note, "联系情况")
    before = ticket.status
    assignment.contacted_at = ticket.contacted_at = now
    ticket.status = S.contacted
    return _record(
        session,
        ticket,
        actor,
        "contact",
        before,
        reason=note,
        unit_id=actor.unit_id,
        now=now,
        payload={"late": _late(now, ticket.contact_due)},
    )


# -- grid workers (DOMAIN.md §6) ---------------------------------------------------------------
# A grid worker belongs to a street office and takes tickets located in their grids on site
# for it: accept (接单), check in on site (现场核查), contact, finish or hand back (上报).


def _require_accepted_by(ticket, actor):
    if ticket.grid_worker_id != actor.id:
        raise Forbidden("只有接单的网格员可以处理该工单，请先接单", code="NOT_ACCEPTED_BY_YOU")


def last_check_in(session, ticket, actor):
    """The actor's latest 现场核查 on the ticket's current clock (None: none yet)."""
    query = sa.select(TicketEvent).where(
        TicketEvent.ticket_id == ticket.id,
        TicketEvent.action == "check_in",
        TicketEvent.actor_id == actor.id,
    )
    if ticket.clock_started_at is not None:
        query = query.where(TicketEvent.created_at >= ticket.clock_started_at)
    return session.scalars(query.order_by(TicketEvent.id.desc()).limit(1)).first()


def check_position(lng, lat):
    _require(lng is not None and lat is not None, "position", "请提供现场定位（经度和纬度）")
    _require(geo.in_china(lng, lat), "position", geo.OUTSIDE_CHINA)


def accept(session, actor, ticket, *, expected_version=None, now=None):
    """接单: a grid worker takes a ticket located in one of their grids and led by their
    street office. If the office has not signed for it yet, accepting is its signature."""
    now = now or utcnow()
    check_allowed("accept", ticket, actor, expected_version)
    if ticket.area_id is None or ticket.area_id not in {g.id for g in actor.grids}:
        raise Forbidden("该工单不在您负责的网格内", code="TICKET_NOT_IN_YOUR_GRIDS")
    assignment = _own_assignment(ticket, actor, AssignmentRole.lead)
    if ticket.grid_worker_id == actor.id:
        raise Conflict("您已接过该工单", code="ALREADY_ACCEPTED")
    if ticket.grid_worker_id is not None:
        raise Conflict(
            f"该工单已由网格员“{ticket.grid_worker.name}”接单",
            code="ACCEPTED_BY_ANOTHER",
            details={"grid_worker": ticket.grid_worker.username},
        )
    before = ticket.status
    signs = assignment.signed_at is None
    if signs:
        _sign_assignment(ticket, assignment, actor, now)
    ticket.grid_worker_id = actor.id
    return _record(
        session,
        ticket,
        actor,
        "accept",
        before,
        unit_id=actor.unit_id,
        now=now,
        payload={"signed": signs, "late": signs and _late(now, ticket.sign_due)},
    )


def check_in(
    session, actor, ticket, *, lng, lat, photos, note=None, expected_version=None, now=None
):
    """现场核查: the accepting worker records that they are on site, with their position
    (GCJ-02) and photos (checked by the view with ``attachments.check``, stored here with the
    event). The payload keeps the distance from the ticket's grid, so supervisors see a
    check-in made far from the place."""
    now = now or utcnow()
    check_allowed("check_in", ticket, actor, expected_version)
    _require_accepted_by(ticket, actor)
    check_position(lng, lat)
    _require(photos, "photos", "请至少上传一张现场照片")
    note = note.strip() if note else None
    distance = geo.distance_m(ticket.area.polygon if ticket.area else None, lng, lat)
    event = _record(
        session,
        ticket,
        actor,
        "check_in",
        ticket.status,
        reason=note or None,
        unit_id=actor.unit_id,
        now=now,
        payload={
            "lng": lng,
            "lat": lat,
            "distance_m": distance,
            "grid": ticket.area.code if ticket.area else None,
            "photos": len(photos),
        },
    )
    attachments.store(session, actor, ticket, photos, purpose="site", event=event)
    return event


def escalate(session, actor, ticket, *, reason, expected_version=None, now=None):
    """上报: the accepting worker hands the ticket back to their street office's handlers
    (it needs a department, or more than a grid worker can do). The office keeps the ticket
    and its clock; its inbox gets a message."""
    now = now or utcnow()
    check_allowed("escalate", ticket, actor, expected_version)
    _require_accepted_by(ticket, actor)
    reason = _require_reason(reason, "上报原因")
    ticket.grid_worker_id = None
    event = _record(
        session,
        ticket,
        actor,
        "escalate",
        ticket.status,
        reason=reason,
        unit_id=actor.unit_id,
        now=now,
        payload={"grid_worker": actor.username},
    )
    unit = actor.unit
    notify.deliver(
        session,
        [
            notify.Message(
                unit_id=unit.id,
                unit_code=unit.code,
                kind="grid_escalation",
                level=AlertLevel.yellow.value,
                title=f"网格员上报工单 {ticket.number}",
                body=f"网格员{actor.name}将工单交回本单位办理，原因：{reason[:300]}",
                ticket_id=ticket.id,
                ticket_number=ticket.number,
            )
        ],
        now,
    )
    return event


def request_return(session, actor, ticket, *, return_reason, note, expected_version=None, now=None):
    """退单申请: the lead unit says the ticket is not its to handle."""
    now = now or utcnow()
    check_allowed("request_return", ticket, actor, expected_version)
    assignment = _own_assignment(ticket, actor, AssignmentRole.lead)
    if assignment.designated:
        raise Conflict("该工单由热线指定承办，不能退单", code="DESIGNATED_NO_RETURN")
    _require(return_reason is not None, "return_reason", "请选择退单原因")
    note = _require_reason(note, "退单说明")
    before = ticket.status
    assignment.return_reason = return_reason
    assignment.return_note = note
    assignment.return_requested_at = now
    assignment.return_status = DecisionStatus.pending
    ticket.status = S.return_requested
    ticket.lead_history = True
    return _record(
        session,
        ticket,
        actor,
        "request_return",
        before,
        reason=note,
        unit_id=actor.unit_id,
        now=now,
        payload={"return_reason": return_reason.value},
    )


def decide_return(
    session, actor, ticket, *, approve, note, lead=None, assists=(), expected_version=None, now=None
):
    """退单审核: uphold (re-dispatch to ``lead``, new clock) or reject (the unit keeps it)."""
    now = now or utcnow()
    check_allowed("decide_return", ticket, actor, expected_version)
    note = _require_reason(note, "审核意见")
    returning = ticket.lead_assignment
    before = ticket.status
    if approve:
        _require(lead is not None, "lead_unit", "同意退单时须指定新的主办单位")
        _require(lead.id != returning.unit_id, "lead_unit", "新的主办单位不能是退单单位")
        returning.return_status = DecisionStatus.approved
        payload = _assign(session, ticket, actor, lead, list(assists), now)
        ticket.status = S.dispatched
        payload.update(_start_clock(session, ticket, lead, now))
    else:
        returning.return_status = DecisionStatus.rejected
        ticket.status = _status_before_request(ticket)
        payload = {}
    payload.update({"approved": approve, "returning_unit": returning.unit.code})
    return _record(
        session, ticket, actor, "decide_return", before, reason=note, payload=payload, now=now
    )


def designate(
    session,
    actor,
    ticket,
    *,
    lead,
    assists=(),
    note,
    category=None,
    expected_version=None,
    now=None,
):
    """指定: the hotline names the handling unit; a designated unit may not return the ticket.
    The new clock's deadlines come from the SLA, as for 派单."""
    return _designate(
        session,
        actor,
        ticket,
        "designate",
        lead=lead,
        assists=assists,
        note=note,
        category=category,
        finish_due=None,
        expected_version=expected_version,
        now=now,
    )


def apply_meeting_decision(
    session, actor, ticket, *, lead, note, finish_due, expected_version=None, now=None
):
    """会议决定指定: a joint meeting's decision (``dispatch.meetings.decide_item``, its only
    caller) designates ``lead`` with the meeting's ``finish_due``.

    A separate transition from 指定承办 so that a deadline set by hand only ever comes with a
    meeting on record: ordinary designating keeps the SLA's deadlines, and moving a deadline
    otherwise goes through 延期审核. ``finish_due`` replaces the new clock's finish deadline
    computed from the SLA: it must lie in the future; the sign and contact deadlines are kept
    no later than it, and the timers follow the ticket's deadlines as always. The event's
    payload keeps both (``finish_due``, ``sla_finish_due``).
    """
    _require(finish_due is not None, "finish_due", "请填写办结时限")
    return _designate(
        session,
        actor,
        ticket,
        "apply_meeting_decision",
        lead=lead,
        assists=(),
        note=note,
        category=None,
        finish_due=finish_due,
        expected_version=expected_version,
        now=now,
    )


def _designate(
    session,
    actor,
    ticket,
    action,
    *,
    lead,
    assists,
    note,
    category,
    finish_due,
    expected_version,
    now,
):
    """指定承办 and 会议决定指定 (``action``): the named unit leads, designated, on a new clock
    whose finish deadline is ``finish_due`` when given."""
    now = now or utcnow()
    check_allowed(action, ticket, actor, expected_version)
    note = _require_reason(note, "指定理由")
    _require_future_due(finish_due, now)
    _require(category or ticket.category, "category", "指定前请先确定事项分类")
    _require_active_category(category, ticket.category)
    before = ticket.status
    pending = ticket.lead_assignment
    payload = _assign(session, ticket, actor, lead, list(assists), now, designated=True)
    if pending is not None and pending.return_status == DecisionStatus.pending:
        # Designating settles an open return request: upheld unless the same unit is named.
        same_unit = pending.unit_id == lead.id
        pending.return_status = DecisionStatus.rejected if same_unit else DecisionStatus.approved
    if category is not None:
        ticket.category = category
    ticket.status = S.dispatched
    payload.update(_start_clock(session, ticket, lead, now))
    if finish_due is not None:
        payload["sla_finish_due"] = payload["finish_due"]
        ticket.finish_due = finish_due
        ticket.sign_due = min(ticket.sign_due, finish_due)
        ticket.contact_due = min(ticket.contact_due, finish_due)
        payload.update(
            sign_due=ticket.sign_due.isoformat(),
            contact_due=ticket.contact_due.isoformat(),
            finish_due=finish_due.isoformat(),
        )
    return _record(session, ticket, actor, action, before, reason=note, payload=payload, now=now)


def _require_future_due(due, now):
    """A deadline someone sets (a joint meeting's) must be an aware moment still to come."""
    if due is None:
        return
    _require(
        isinstance(due, dt.datetime) and due.tzinfo is not None, "finish_due", "办结时限格式不正确"
    )
    _require(2000 <= due.year <= 2100, "finish_due", "办结时限超出范围（2000–2100 年）")
    _require(due > now, "finish_due", "办结时限须晚于当前时间")


#: How strongly a unit holds a ticket: a unit taking over a part never ends up weaker.
_ROLE_STRENGTH = {AssignmentRole.lead: 3, AssignmentRole.assist: 2, AssignmentRole.copy: 1}


def reassign(session, actor, ticket, *, unit, to, reason, now=None):
    """停用改派: an administrator deactivating ``unit`` hands its part in an open ticket to the
    active unit ``to`` (``dispatch.units.deactivate``, which calls this once per ticket in
    one transaction).

    The lead's part moves as a re-dispatch does (an upheld return, 指定): ``to`` leads with
    the same assisting units, the copy to a street's district government follows the new
    lead, the ticket is 已派单 again (a 重办 ticket stays 重办) and a new clock starts, whose
    timers follow; a pending return request is settled as upheld, a pending extension lapses
    and a grid worker's acceptance ends. An assisting or copied part moves alone: ``to``
    gets that role (unless it already holds the ticket as strongly) and the clock runs on.
    One ``reassign`` event per ticket names both units and the reason."""
    now = now or utcnow()
    transition = ADMINISTRATIVE["reassign"]
    if actor.role not in transition.roles:
        raise Forbidden(
            f"“{actor.role.label}”角色无权执行“{transition.label}”操作",
            code="ROLE_NOT_ALLOWED",
            details={"operation": "reassign", "role": actor.role.value},
        )
    if ticket.status not in transition.from_states:
        raise Conflict(
            f"工单 {ticket.number} 当前状态为“{ticket.status.label}”，不需要改派",
            code="TICKET_STATE_CONFLICT",
            details={"operation": "reassign", "status": ticket.status.value},
        )
    _require(to.id != unit.id, "move_to", "接收单位不能是被停用的单位本身")
    _require(to.active, "move_to", f"接收单位“{to.name}”已停用")
    _require(to.kind != UnitKind.hotline_centre, "move_to", "不能转给热线中心本身")
    held = ticket.active_assignment(unit.id)
    _require(held is not None, "unit", f"工单 {ticket.number} 不在“{unit.name}”名下")
    reason = _require_reason(reason, "改派原因")
    before = ticket.status
    payload = {"from_unit": unit.code, "to_unit": to.code, "role": held.role.value}
    if held.role == AssignmentRole.lead:
        if held.return_status == DecisionStatus.pending:
            held.return_status = DecisionStatus.approved
            payload["return_request"] = "upheld"
        assists = [
            a.unit
            for a in ticket.assignments
            if a.active and a.role == AssignmentRole.assist and a.unit_id != to.id
        ]
        payload.update(
            _assign(session, ticket, actor, to, assists, now, designated=held.designated)
        )
        if ticket.status != S.reopened:
            ticket.status = S.dispatched
        payload.update(_start_clock(session, ticket, to, now))
    else:
        held.active = False
        held.ended_at = now
        current = ticket.active_assignment(to.id)
        if current is not None and _ROLE_STRENGTH[current.role] >= _ROLE_STRENGTH[held.role]:
            payload["already_held_as"] = current.role.value
        else:
            if current is not None:
                current.active = False
                current.ended_at = now
            ticket.assignments.append(
                Assignment(
                    unit=to,
                    unit_id=to.id,
                    role=held.role,
                    dispatched_at=now,
                    dispatched_by_id=actor.id,
                )
            )
    return _record(
        session, ticket, actor, "reassign", before, reason=reason, payload=payload, now=now
    )


def request_extension(session, actor, ticket, *, days, reason, expected_version=None, now=None):
    """延期申请: the lead unit asks for more working days."""
    now = now or utcnow()
    check_allowed("request_extension", ticket, actor, expected_version)
    _own_assignment(ticket, actor, AssignmentRole.lead)
    reason = _require_reason(reason, "延期理由")
    _require(isinstance(days, int) and 1 <= days <= 30, "days", "延期天数须为 1–30 个工作日")
    if _pending_extension(session, ticket) is not None:
        raise Conflict("已有待审核的延期申请", code="EXTENSION_PENDING")
    session.add(
        Extension(
            ticket_id=ticket.id,
            unit_id=actor.unit_id,
            requested_by_id=actor.id,
            requested_at=now,
            reason=reason,
            days=days,
            status=DecisionStatus.pending,
            old_finish_due=ticket.finish_due,
        )
    )
    return _record(
        session,
        ticket,
        actor,
        "request_extension",
        ticket.status,
        reason=reason,
        unit_id=actor.unit_id,
        now=now,
        payload={"days": days},
    )


def decide_extension(session, actor, ticket, *, approve, note, expected_version=None, now=None):
    """延期审核: approving moves the finish deadline by the requested working days."""
    now = now or utcnow()
    check_allowed("decide_extension", ticket, actor, expected_version)
    note = _require_reason(note, "审核意见")
    extension = _pending_extension(session, ticket)
    if extension is None:
        raise Conflict("该工单没有待审核的延期申请", code="NO_PENDING_EXTENSION")
    extension.decided_by_id = actor.id
    extension.decided_at = now
    extension.decision_note = note
    payload = {"approved": approve, "days": extension.days}
    if approve:
        extension.status = DecisionStatus.approved
        new_due, guessed = sla.add_limit(
            ticket.finish_due,
            extension.days,
            LimitUnit.working_days,
            always_on=ticket.lead_unit.always_on,
            calendar=work_calendar(session),
        )
        extension.new_finish_due = new_due
        payload.update(
            old_finish_due=ticket.finish_due.isoformat(),
            new_finish_due=new_due.isoformat(),
            calendar_guessed_years=guessed,
        )
        ticket.finish_due = new_due
        _flag_guessed(ticket, guessed)
    else:
        extension.status = DecisionStatus.rejected
    return _record(
        session,
        ticket,
        actor,
        "decide_extension",
        ticket.status,
        reason=note,
        payload=payload,
        now=now,
    )


def finish(
    session,
    actor,
    ticket,
    *,
    result,
    photos=(),
    assists_note=None,
    expected_version=None,
    now=None,
):
    """办结: the lead unit reports the result, with ``photos`` as evidence (stored with the
    event). The reply is checked (``classifier.reply_quality``, kept in the event) and,
    when the category's review rule says so (``dispatch.reply_review``), waits in 待审核 for
    a reviewer: no callback and no text to the citizen until it is approved. Otherwise it is
    已办结 at once and the callback clock starts. Every active assisting unit must have
    filed its part (协办反馈) first, unless ``assists_note`` says why the lead finishes
    without it (``cohandling.assists_at_finish``)."""
    now = now or utcnow()
    check_allowed("finish", ticket, actor, expected_version)
    if actor.role == Role.grid_worker:
        _require_accepted_by(ticket, actor)
        if last_check_in(session, ticket, actor) is None:
            raise Conflict("请先到现场核查（上传现场照片和定位）后再办结", code="CHECK_IN_REQUIRED")
    assignment = _own_assignment(ticket, actor, AssignmentRole.lead)
    result = _require_reason(result, "办理结果")
    assists = cohandling.assists_at_finish(ticket, assists_note)
    if ticket.status == S.signed and ticket.requester_phone:
        raise Conflict("请先联系诉求人（响应）后再办结", code="CONTACT_REQUIRED")
    assessment = reply_quality.assess(result, ticket.content or "", ticket.title or "")
    decision = reply_review.decide(session, ticket, assessment)
    before = ticket.status
    ticket.result = result
    assignment.finished_at = ticket.finished_at = now
    _lapse_pending_extension(session, ticket, now, "工单已办结，申请自动失效")
    payload = {
        "late": _late(now, ticket.finish_due),
        "reply_quality": assessment.as_dict(),
        **decision.as_dict(),
        **assists,
    }
    if decision.review:
        ticket.status = S.reviewing
        ticket.callback_due = None
    else:
        ticket.status = S.finished
        payload.update(_start_callback(session, ticket, now))
    event = _record(
        session,
        ticket,
        actor,
        "finish",
        before,
        reason=result,
        unit_id=actor.unit_id,
        now=now,
        payload=payload,
    )
    if photos:
        attachments.store(session, actor, ticket, photos, purpose="result", event=event)
    if not decision.review:
        # 办结通知 with the reply and a rating link, in this transaction (the outbox
        # delivers it).
        citizen_notices.tell_finished(session, ticket, event, now)
    return event


def _start_callback(session, ticket, now):
    """The reply reaches the citizen (at finishing, or at a reviewer's approval): the
    callback deadline from the ticket's SLA row, and the callback workbench may call at once."""
    policy = ticket_policy(session, ticket)
    due, guessed = sla.add_limit(
        now,
        policy.callback_amount,
        policy.callback_unit,
        always_on=False,
        calendar=work_calendar(session),
    )
    ticket.callback_due = due
    ticket.callback_next_at = now
    _flag_guessed(ticket, guessed)
    return {"callback_due": due.isoformat(), "calendar_guessed_years": guessed}


def approve_reply(session, actor, ticket, *, note=None, expected_version=None, now=None):
    """审核通过: the reviewer lets the unit's reply reach the citizen. The ticket is 已办结
    (``finished_at`` stays the unit's moment), the callback clock starts now and the
    citizen is texted the reply, as at a finish without review."""
    now = now or utcnow()
    check_allowed("approve_reply", ticket, actor, expected_version)
    note = note.strip() if note and note.strip() else None
    before = ticket.status
    ticket.status = S.finished
    payload = _start_callback(session, ticket, now)
    lead = ticket.lead_unit
    payload["unit"] = lead.code if lead else None
    event = _record(
        session,
        ticket,
        actor,
        "approve_reply",
        before,
        reason=note,
        unit_id=lead.id if lead else None,
        now=now,
        payload=payload,
    )
    citizen_notices.tell_finished(session, ticket, event, now)
    return event


def return_reply(session, actor, ticket, *, reason, expected_version=None, now=None):
    """审核退回: the reviewer sends the reply back to the lead unit with ``reason``. The ticket
    is back where it was before finishing (已响应, or 已签收 for a requester without a phone)
    with its result kept for the unit to mend; ``finished_at`` is cleared on the ticket and
    the lead's part and the deadlines stay as they were, so the unit may now be overdue.
    The timers due while the hotline held the reply do not fire (``timers.skip_until``):
    the wait was the reviewer's; the unit's inbox message says the reason and where it
    stands against its finish deadline instead. The event names the lead unit (its 审核退回
    count)."""
    now = now or utcnow()
    check_allowed("return_reply", ticket, actor, expected_version)
    reason = _require_reason(reason, "退回理由")
    unit = ticket.lead_unit
    if unit is not None and not unit.active:
        raise Conflict(
            f"承办单位“{unit.name}”已停用，不能退回修改，请审核通过或联系派单员指定承办",
            code="UNIT_INACTIVE",
        )
    before = ticket.status
    lead = ticket.lead_assignment
    ticket.status = _status_before_request(ticket)
    ticket.finished_at = None
    if lead is not None:
        lead.finished_at = None
    timers.skip_until(ticket, now)
    event = _record(
        session,
        ticket,
        actor,
        "return_reply",
        before,
        reason=reason,
        unit_id=unit.id if unit else None,
        now=now,
        payload={"unit": unit.code if unit else None},
    )
    if unit is not None:
        notify.deliver(
            session,
            [
                notify.Message(
                    unit_id=unit.id,
                    unit_code=unit.code,
                    kind="reply_returned",
                    level=AlertLevel.yellow.value,
                    title=f"【审核退回】工单 {ticket.number}",
                    body=(
                        f"热线中心审核办理结果后退回，请修改后重新办结。退回理由：{reason[:300]}"
                        f"{_deadline_state(ticket, now)}"
                    ),
                    ticket_id=ticket.id,
                    ticket_number=ticket.number,
                )
            ],
            now,
        )
    return event


def _deadline_state(ticket, now):
    """Where a returned reply's unit stands against its finish deadline (the timers due
    during the review do not fire, so the return's message says it)."""
    if ticket.finish_due is None:
        return ""
    due = _local_minute(ticket.finish_due)
    if now > ticket.finish_due:
        return f"。本工单已超过办结时限（{due}），请尽快重新办结"
    return f"。办结时限为 {due}"


def ticket_policy(session, ticket):
    """The SLA row the ticket's clock was started with (or the one that applies now)."""
    if ticket.sla_policy_id is not None:
        return session.get(SlaPolicy, ticket.sla_policy_id)
    return sla.find_policy(session, ticket)


def request_termination(session, actor, ticket, *, reason, expected_version=None, now=None):
    """终止申请: the lead unit asks to stop handling (e.g. requester withdrew); needs review."""
    now = now or utcnow()
    check_allowed("request_termination", ticket, actor, expected_version)
    _own_assignment(ticket, actor, AssignmentRole.lead)
    reason = _require_reason(reason, "终止理由")
    before = ticket.status
    ticket.status = S.termination_requested
    return _record(
        session,
        ticket,
        actor,
        "request_termination",
        before,
        reason=reason,
        unit_id=actor.unit_id,
        now=now,
    )


def review_termination(session, actor, ticket, *, approve, note, expected_version=None, now=None):
    """终止审核: the hotline ends handling, or sends the ticket back to the unit."""
    now = now or utcnow()
    check_allowed("review_termination", ticket, actor, expected_version)
    note = _require_reason(note, "审核意见")
    before = ticket.status
    if approve:
        ticket.status = S.terminated
        ticket.closed_at = now
        _end_assignments(session, ticket, now)
    else:
        ticket.status = _status_before_request(ticket)
    return _record(
        session,
        ticket,
        actor,
        "review_termination",
        before,
        reason=note,
        now=now,
        payload={"approved": approve},
    )


# -- callback and closing ---------------------------------------------------------------------


def record_callback(
    session,
    actor,
    ticket,
    *,
    outcome,
    solved=None,
    satisfaction=None,
    comment=None,
    channel=CallbackChannel.phone,
    expected_version=None,
    now=None,
):
    """回访: one call to the requester (DOMAIN.md §5), or the requester's own rating online
    (``channel`` online: 一事一评, answered, counted exactly as a call). What it settles:

    - answered: solved? and satisfied? are recorded. A result that is not unhappy closes the
      ticket at once (rated); an unhappy one waits in 已回访 for a supervisor to reopen it or
      accept it (``reopen`` / ``close``).
    - no_answer: the ticket stays 已办结 and the workbench calls again ``CALLBACK_RETRY_HOURS``
      later (an earlier retry is refused); when the last allowed attempt
      (``CALLBACK_MAX_ATTEMPTS``) goes unanswered the ticket closes as unreachable.
    - wrong_number: no retry can help, so the ticket closes as unreachable.
    - refused: the requester declines the callback; the ticket closes.

    Tickets closed without an answer are not rated.
    """
    now = now or utcnow()
    check_allowed("record_callback", ticket, actor, expected_version)
    _require(ticket.requester_phone, "outcome", "诉求人未留电话，无法回访，请直接归档")
    _require(
        channel == CallbackChannel.phone or outcome == CallbackOutcome.answered,
        "outcome",
        "网上评价须回答是否解决和是否满意",
    )
    if outcome == CallbackOutcome.answered:
        _require(solved is not None, "solved", "接通后须记录是否解决")
        _require(satisfaction is not None, "satisfaction", "接通后须记录满意度")
    else:
        _require(
            solved is None and satisfaction is None,
            "outcome",
            "未接通的回访不能记录解决情况或满意度",
        )
    hours = _setting("CALLBACK_RETRY_HOURS")
    retry = dt.timedelta(hours=hours)
    if outcome == CallbackOutcome.no_answer:
        last = _last_unanswered(session, ticket)
        if last is not None and now < last + retry:
            earliest = last + retry
            raise Conflict(
                f"距上次未接通的回访不足 {hours} 小时，最早可于 {_local_minute(earliest)} 再次回访",
                code="CALLBACK_RETRY_TOO_SOON",
                details={"next_attempt_at": earliest.isoformat()},
            )
    session.add(
        CallbackAttempt(
            ticket_id=ticket.id,
            agent_id=actor.id,
            attempted_at=now,
            outcome=outcome,
            solved=solved,
            satisfaction=satisfaction,
            comment=comment,
            channel=channel,
        )
    )
    before = ticket.status
    payload = {"outcome": outcome.value, "attempt": _attempts(session, ticket)}
    if channel != CallbackChannel.phone:
        payload["channel"] = channel.value
    if outcome == CallbackOutcome.answered:
        ticket.callback_solved = solved
        ticket.callback_satisfaction = satisfaction
        ticket.callback_comment = comment
        ticket.callback_at = now
        payload.update(solved=solved.value, satisfaction=satisfaction.value)
        if _unhappy(ticket):
            ticket.status = S.called_back
        else:
            payload["closed"] = "rated"
    elif outcome == CallbackOutcome.no_answer:
        max_attempts = _setting("CALLBACK_MAX_ATTEMPTS")
        if _attempts(session, ticket, CallbackOutcome.no_answer) >= max_attempts:
            payload["closed"] = "unreachable"
        else:
            ticket.callback_next_at = now + retry
            payload["next_attempt_at"] = ticket.callback_next_at.isoformat()
    elif outcome == CallbackOutcome.wrong_number:
        payload["closed"] = "unreachable"
    else:
        payload["closed"] = "refused"
    if "closed" in payload:
        _close(session, ticket, now)
    return _record(
        session, ticket, actor, "record_callback", before, reason=comment, payload=payload, now=now
    )


def _current_attempts(query, ticket):
    """Limit ``query`` to the attempts on the current result: a reopened ticket's earlier
    calls don't count."""
    query = query.where(CallbackAttempt.ticket_id == ticket.id)
    if ticket.finished_at is not None:
        query = query.where(CallbackAttempt.attempted_at >= ticket.finished_at)
    return query


def _attempts(session, ticket, outcome=None):
    """How many callback attempts (of ``outcome``) were made on the current result."""
    query = _current_attempts(sa.select(sa.func.count()), ticket)
    if outcome is not None:
        query = query.where(CallbackAttempt.outcome == outcome)
    return session.scalar(query)


def _last_unanswered(session, ticket):
    """When the latest unanswered attempt on the current result was made (None: none)."""
    query = _current_attempts(sa.select(CallbackAttempt.attempted_at), ticket)
    query = query.where(CallbackAttempt.outcome == CallbackOutcome.no_answer)
    return session.scalars(query.order_by(CallbackAttempt.attempted_at.desc()).limit(1)).first()


def _local_minute(moment):
    """``moment`` as local wall-clock time to the minute, rounded up (never too early)."""
    local = moment.astimezone(ZoneInfo(_setting("TIMEZONE")))
    if local.second or local.microsecond:
        local = local.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    return local.strftime("%Y-%m-%d %H:%M")


def _unhappy(ticket):
    return (
        ticket.callback_solved == Solved.unsolved
        or ticket.callback_satisfaction == Satisfaction.dissatisfied
    )


def _close(session, ticket, now):
    """Archive the ticket: the one place closing after handling happens (``close`` and the
    callbacks that settle a ticket both come here)."""
    ticket.status = S.closed
    ticket.closed_at = now
    _end_assignments(session, ticket, now)


def reopen(session, actor, ticket, *, reason, expected_version=None, now=None):
    """重办: unsolved or dissatisfied — back to the same unit(s) with a new clock."""
    now = now or utcnow()
    check_allowed("reopen", ticket, actor, expected_version)
    reason = _require_reason(reason, "重办理由")
    if not _unhappy(ticket):
        raise Conflict("回访结果为已解决且满意，不能重办", code="REOPEN_NOT_NEEDED")
    before = ticket.status
    lead = ticket.lead_unit
    designated = ticket.lead_assignment is not None and ticket.lead_assignment.designated
    assists = [a.unit for a in ticket.assignments if a.active and a.role == AssignmentRole.assist]
    payload = _assign(session, ticket, actor, lead, assists, now, designated=designated)
    ticket.status = S.reopened
    ticket.reopen_count += 1
    ticket.result = None
    ticket.callback_solved = ticket.callback_satisfaction = None
    ticket.callback_comment = ticket.callback_at = None
    payload.update(_start_clock(session, ticket, lead, now))
    payload["reopen_count"] = ticket.reopen_count
    return _record(
        session, ticket, actor, "reopen", before, reason=reason, payload=payload, now=now
    )


def close(session, actor, ticket, *, reason=None, expected_version=None, now=None):
    """归档 by hand, for what no callback can settle. From 已回访: a supervisor accepts an
    unhappy result instead of reopening it, with a reason. From 已办结: only when the
    requester left no phone. Every other callback outcome closes the ticket itself
    (``record_callback``)."""
    now = now or utcnow()
    check_allowed("close", ticket, actor, expected_version)
    if ticket.status == S.called_back:
        if _unhappy(ticket):
            if actor.role != Role.supervisor:
                raise Forbidden(
                    "回访不满意或未解决的工单须由督办审核员决定重办或归档",
                    code="SUPERVISOR_DECISION_REQUIRED",
                )
            reason = _require_reason(reason, "不重办的理由")
            payload = {"closed": "accepted_unhappy"}
        else:
            # Only a ticket called back before answered calls closed at once gets here.
            payload = {"closed": "rated"}
    else:
        if ticket.requester_phone:
            max_attempts = _setting("CALLBACK_MAX_ATTEMPTS")
            raise Conflict(
                "诉求人留有电话，须先回访：接通后按回访结果办理，拒绝回访、号码错误或连续 "
                f"{max_attempts} 次未接通时自动归档",
                code="CALLBACK_REQUIRED",
                details={
                    "unreached_attempts": _attempts(session, ticket, CallbackOutcome.no_answer),
                    "required": max_attempts,
                },
            )
        payload = {"closed": "no_phone"}
    before = ticket.status
    _close(session, ticket, now)
    return _record(session, ticket, actor, "close", before, reason=reason, payload=payload, now=now)


def rerequest(session, actor, ticket, *, reason, expected_version=None, now=None):
    """不满意再次反映: the citizen, unhappy with the result, asks again online within
    ``citizen.reopen_days`` days after the reply reached them (``reply_review.replied_at``:
    the approval of a reviewed reply, else the finish), from 已办结 or 已归档. The ticket goes to
    the supervisor's review queue exactly as after an unhappy callback (已回访, unsolved and
    dissatisfied, the reason as the callback's comment), recorded as the citizen's own online
    callback attempt: their latest word on the result replaces an earlier rating, so the
    ranking counts the ticket rated 未解决 / 不满意 until a supervisor reopens it (重办: the
    rating is cleared, 重办 counted) or accepts it (归档: the rating stays). Once per result.
    The portal checks the ticket is the citizen's; the citizen is texted that it arrived."""
    now = now or utcnow()
    check_allowed("rerequest", ticket, actor, expected_version)
    reason = _require_reason(reason, "再次反映的理由")
    days = settings.get(session, "citizen.reopen_days")
    replied = reply_review.replied_at(session, ticket)
    if replied is None or now > replied + dt.timedelta(days=days):
        raise Conflict(
            f"工单答复已超过 {days} 天，不能在网上再次反映；"
            "如问题仍未解决，请拨打 12345 热线重新反映",
            code="REREQUEST_WINDOW_PASSED",
            details={
                "reopen_days": days,
                "finished_at": _iso(ticket.finished_at),
                "replied_at": _iso(replied),
            },
        )
    earlier = session.scalar(
        sa.select(sa.func.count()).where(
            TicketEvent.ticket_id == ticket.id,
            TicketEvent.action == "rerequest",
            TicketEvent.created_at >= replied,
        )
    )
    if earlier:
        raise Conflict("您已对本次办理结果再次反映过，请等待处理", code="ALREADY_REREQUESTED")
    before = ticket.status
    if before == S.closed:
        # Give the units back the parts the closing ended, as they are after a callback.
        for a in ticket.assignments:
            if not a.active and a.ended_at == ticket.closed_at:
                a.active = True
                a.ended_at = None
        ticket.closed_at = None
    session.add(
        CallbackAttempt(
            ticket_id=ticket.id,
            agent_id=actor.id,
            attempted_at=now,
            outcome=CallbackOutcome.answered,
            solved=Solved.unsolved,
            satisfaction=Satisfaction.dissatisfied,
            comment=reason,
            channel=CallbackChannel.online,
        )
    )
    ticket.status = S.called_back
    ticket.callback_solved = Solved.unsolved
    ticket.callback_satisfaction = Satisfaction.dissatisfied
    ticket.callback_comment = reason
    ticket.callback_at = now
    payload = {
        "channel": CallbackChannel.online.value,
        "solved": Solved.unsolved.value,
        "satisfaction": Satisfaction.dissatisfied.value,
        "attempt": _attempts(session, ticket),
    }
    event = _record(
        session, ticket, actor, "rerequest", before, reason=reason, payload=payload, now=now
    )
    citizen_notices.tell_reopened(session, ticket, event, now)
    return event


def _iso(moment):
    return moment.isoformat() if moment else None


def exempt(
    session, actor, ticket, *, exempt=True, kind=None, reason, expected_version=None, now=None
):
    """考核豁免: a reviewer takes the ticket out of (or back into) scoring, with a kind
    (不合理诉求 …) and a reason. The monthly report lists every exemption."""
    now = now or utcnow()
    check_allowed("exempt", ticket, actor, expected_version)
    reason = _require_reason(reason, "豁免理由")
    if exempt:
        _require(kind is not None, "kind", "请选择豁免类型")
    if ticket.scoring_exempt == exempt:
        raise Conflict("工单已是该考核状态", code="EXEMPTION_UNCHANGED")
    ticket.scoring_exempt = exempt
    ticket.exempt_kind = kind if exempt else None
    ticket.exempt_reason = reason if exempt else None
    ticket.exempted_by_id = actor.id if exempt else None
    ticket.exempted_at = now if exempt else None
    payload = {"exempt": exempt}
    if exempt:
        payload["kind"] = kind.value
    return _record(
        session,
        ticket,
        actor,
        "exempt",
        ticket.status,
        reason=reason,
        now=now,
        payload=payload,
    )


# -- correcting category and urgency ----------------------------------------------------------

#: What ``reclassify`` may change, with each field's name in Chinese.
RECLASSIFY_FIELDS = {"category": "事项分类", "urgency": "紧急程度", "request_type": "诉求类型"}


def reclassify(
    session,
    actor,
    ticket,
    *,
    reason,
    category=None,
    urgency=None,
    request_type=None,
    expected_version=None,
    now=None,
):
    """调整分类和紧急程度: a dispatcher or supervisor corrects the category, urgency or request
    type of a ticket not yet finished (None: keep). A running clock keeps its start and gets
    the deadlines of the SLA policy for the new values (approved extensions of this clock
    added again); the timers follow the new deadlines (``timers.schedule`` in ``_record``),
    so a 紧急 ticket lowered to 一般 no longer fires at the old 30 minutes. The lead and
    assisting units are told of their new deadlines.

    A retry of the same correction (nothing left to change, the last event being this
    actor's identical correction) returns that event instead of failing on its version.
    """
    now = now or utcnow()
    check_role("reclassify", actor)
    wanted = {
        "category": category if category is not None else ticket.category,
        "urgency": urgency or ticket.urgency,
        "request_type": request_type or ticket.request_type,
    }
    changes = {
        name: (getattr(ticket, name), value)
        for name, value in wanted.items()
        if getattr(ticket, name) != value
    }
    if not changes:
        replayed = _same_reclassify(session, ticket, actor, wanted)
        if replayed is not None:
            return replayed
        raise Conflict(
            "事项分类、紧急程度和诉求类型均与当前相同，无需调整", code="RECLASSIFY_UNCHANGED"
        )
    check_allowed("reclassify", ticket, actor, expected_version)
    reason = _require_reason(reason, "调整理由")
    if "category" in changes:
        _require_active_category(wanted["category"])
    payload = {
        "changes": {
            name: {"from": _reclassify_value(old), "to": _reclassify_value(new)}
            for name, (old, new) in changes.items()
        }
    }
    for name, (_, new) in changes.items():
        setattr(ticket, name, new)
    if ticket.clock_started_at is not None and ticket.status in IN_HANDLING:
        payload.update(_recompute_deadlines(session, ticket, now))
    event = _record(
        session,
        ticket,
        actor,
        "reclassify",
        ticket.status,
        reason=reason,
        payload=payload,
        now=now,
    )
    audit(session, actor, "ticket.reclassify", target=ticket.number, payload=payload)
    if "sign_due" in payload:
        _tell_units_of_new_deadlines(session, ticket, payload, now)
    return event


def _reclassify_value(value):
    """A changed value as the event keeps it: an enum's value, a category's code and name
    (the name as it was, for the history to read later)."""
    if value is None:
        return None
    if hasattr(value, "code"):
        return {"code": value.code, "name": value.name}
    return value.value


def _same_reclassify(session, ticket, actor, wanted):
    """The ticket's last event if it is ``actor``'s correction to exactly ``wanted``."""
    last = session.scalars(
        sa.select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id)
        .order_by(TicketEvent.id.desc())
        .limit(1)
    ).first()
    if last is None or last.action != "reclassify" or last.actor_id != actor.id:
        return None
    changed = (last.payload or {}).get("changes", {})
    for name, change in changed.items():
        if change["to"] != _reclassify_value(wanted[name]):
            return None
    return last


def _recompute_deadlines(session, ticket, now):
    """The running clock's deadlines for the ticket's new category / urgency / type, from
    the clock's original start; extensions approved on this clock are added again."""
    old = {clock: getattr(ticket, f"{clock}_due") for clock in ("sign", "contact", "finish")}
    always_on = ticket.lead_unit is not None and ticket.lead_unit.always_on
    work = work_calendar(session)
    deadlines = sla.compute(
        session, ticket, ticket.clock_started_at, always_on=always_on, calendar=work
    )
    finish = deadlines.due["finish"]
    guessed = set(deadlines.guessed_years)
    extensions = session.scalars(
        sa.select(Extension)
        .where(
            Extension.ticket_id == ticket.id,
            Extension.status == DecisionStatus.approved,
            Extension.decided_at >= ticket.clock_started_at,
        )
        .order_by(Extension.decided_at, Extension.id)
    ).all()
    for extension in extensions:
        finish, years = sla.add_limit(
            finish, extension.days, LimitUnit.working_days, always_on=always_on, calendar=work
        )
        guessed.update(years)
    ticket.sla_policy_id = deadlines.policy.id
    ticket.sign_due = deadlines.due["sign"]
    ticket.contact_due = deadlines.due["contact"]
    ticket.finish_due = finish
    _flag_guessed(ticket, sorted(guessed))
    if finish > now:
        # 督办 levels count working days past the finish deadline: none have passed now.
        ticket.escalation_level = 0
    return {
        "sign_due": ticket.sign_due.isoformat(),
        "contact_due": ticket.contact_due.isoformat(),
        "finish_due": ticket.finish_due.isoformat(),
        "sla_policy": deadlines.policy.name,
        "extended_days": sum(x.days for x in extensions),
        "old_deadlines": {f"{k}_due": v.isoformat() if v else None for k, v in old.items()},
        "calendar_guessed_years": sorted(guessed),
    }


def _tell_units_of_new_deadlines(session, ticket, payload, now):
    """An inbox message to each unit still to act on the ticket (lead and assisting)."""
    tz = ZoneInfo(_setting("TIMEZONE"))
    moments = {
        label: dt.datetime.fromisoformat(payload[key]).astimezone(tz).strftime("%m-%d %H:%M")
        for key, label in (("sign_due", "签收"), ("contact_due", "响应"), ("finish_due", "办结"))
    }
    what = "、".join(RECLASSIFY_FIELDS[name] for name in payload["changes"])
    body = f"热线中心调整了工单的{what}，时限已按新规则重新计算：" + "，".join(
        f"{label} {moment}" for label, moment in moments.items()
    )
    notify.deliver(
        session,
        [
            notify.Message(
                unit_id=a.unit_id,
                unit_code=a.unit.code,
                kind="reclassify",
                level=AlertLevel.info.value,
                title=f"【时限调整】工单 {ticket.number}",
                body=body + "。",
                ticket_id=ticket.id,
                ticket_number=ticket.number,
            )
            for a in ticket.assignments
            if a.active and a.role != AssignmentRole.copy
        ],
        now,
    )
