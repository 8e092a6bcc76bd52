"""协同办理 (issue 17 §3): assisting units' reports (协办反馈) and calls split into several
tickets (拆单). Operations in the transition table (``dispatch.states``) and their read models;
no Flask.

**协办反馈** (``report_assist``). An assisting unit (an active ``assist`` assignment) files its
part of the work into the lead's ticket: a text and photos (attachments of purpose
``assist``), stored in ``Assignment.report`` with its moment in ``Assignment.finished_at`` and
in one ``report_assist`` event. Rules, and why:

- the unit must have signed first (签收 is its acknowledgement and has its own clock; reporting
  does not sign for it), so "never signed" stays visible as such;
- one report per assignment: a second one is refused (``ASSIST_ALREADY_REPORTED``) rather than
  replacing the first, so what the lead read when finishing is what stays on record;
- a new round (重办, an upheld return, 指定, a redispatch) gives every unit a new assignment
  (``operations._assign``): earlier reports stay on the ended assignments and in the events
  (the ticket's history), and the new round needs new reports;
- the lead cannot finish (``operations.finish``) while an active assist has not reported,
  unless it records why (``assists_at_finish``): the finish event keeps ``assists_missing``
  (the units' codes) and ``assists_note``.

**拆单** (``split``). An operator or dispatcher splits a received call that holds several
matters into 2..``MAX_CHILDREN`` child tickets, each with its own content (its part of the
call), category, area and unit. The children inherit the channel, request type, urgency,
requester, phone, address, the call id and recording and the moment the call was received;
they get numbers of their own and ``parent_id``; a citizen who was texted the call's
受理通知 (an online submission) is texted the matters' numbers
(``citizen_notices.tell_split``). A dispatcher's children are dispatched to their units at
once through the real ``operations.dispatch``; an operator (who may not dispatch) leaves
them received in the dispatcher's queue with the chosen unit as the proposed lead (the
child's ``suggestion``, marked ``"source": "split"``, which the dispatch form preselects).
The parent goes to 已拆单: no unit, no clock, outside every ranking (the ranking counts
dispatched tickets; its month's intake counts the children, not the parent). Everything is
checked before anything is written (a bad child refuses the whole split); with an
``idempotency_key`` a retry returns the first split.

The parent closes itself (``close_split``, an administrative transition, no actor) when its
last child reaches a final state: ``operations._record`` calls ``close_parent_if_done`` at
the one moment a child enters a final state. A child asked again after that (不满意再次反映
out of 已归档) is handled on its own; the parent stays closed.

Package-private helpers. Like ``whistle``, ``whistle_timers`` and ``timers``, this module calls
``operations._record``, ``_own_assignment``, ``_require_reason``, ``_late`` and ``_setting``:
the underscore means private to the ``dispatch`` package (the one place a transition is
recorded and checked), not to ``operations.py``; nothing outside ``dispatch`` may call them.
They keep their names so the many operations and the other modules using them are not
renamed in one sweep.
"""

from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dispatch import citizen_notices, citizens, operations, placing
from dispatch.states import FINAL, IN_HANDLING
from hotline import attachments, notify
from hotline.db import utcnow
from hotline.enums import AlertLevel, AssignmentRole, Role, TicketStatus, UnitKind
from hotline.errors import Conflict, Forbidden, ValidationFailed
from hotline.models import Attachment, Ticket, TicketEvent

S = TicketStatus

#: Most child tickets one call is split into.
MAX_CHILDREN = 8


# -- 协办反馈 ---------------------------------------------------------------------------------


def report_assist(session, actor, ticket, *, report, photos=(), expected_version=None, now=None):
    """协办反馈: the actor's assisting unit files its part (``report``, ``photos`` checked by
    the view with ``attachments.check``) into the lead's ticket; the lead's inbox is told."""
    now = now or utcnow()
    operations.check_allowed("report_assist", ticket, actor, expected_version)
    held = operations._own_assignment(ticket, actor)
    if held.role != AssignmentRole.assist:
        raise Forbidden("只有本工单的协办单位可以提交协办反馈", code="NOT_AN_ASSIST")
    if held.signed_at is None:
        raise Conflict("请先签收工单，再提交协办反馈", code="ASSIST_NOT_SIGNED")
    if held.finished_at is not None:
        raise Conflict(
            f"本单位已于 {_local(held.finished_at)} 提交协办反馈，本轮办理不能重复提交",
            code="ASSIST_ALREADY_REPORTED",
        )
    report = operations._require_reason(report, "协办反馈内容")
    held.report = report
    held.finished_at = now
    event = operations._record(
        session,
        ticket,
        actor,
        "report_assist",
        ticket.status,
        reason=report,
        unit_id=actor.unit_id,
        now=now,
        payload={"photos": len(photos), "late": operations._late(now, ticket.finish_due)},
    )
    if photos:
        attachments.store(session, actor, ticket, photos, purpose="assist", event=event)
    lead = ticket.lead_unit
    notify.deliver(
        session,
        [
            notify.Message(
                unit_id=lead.id,
                unit_code=lead.code,
                kind="assist_report",
                level=AlertLevel.info.value,
                title=f"【协办反馈】工单 {ticket.number}",
                body=f"协办单位{actor.unit.name}已提交协办反馈：{report[:300]}",
                ticket_id=ticket.id,
                ticket_number=ticket.number,
            )
        ],
        now,
    )
    return event


def assists_at_finish(ticket, assists_note):
    """What ``operations.finish`` records of the assisting units — ``{"assists_missing":
    [codes], "assists_note": …}`` — or a refusal naming the units that have not reported
    while the lead gave no reason to finish without them."""
    missing = [
        a
        for a in ticket.assignments
        if a.active and a.role == AssignmentRole.assist and a.finished_at is None
    ]
    note = assists_note.strip() if isinstance(assists_note, str) else None
    if missing and not note:
        names = "、".join(f"{a.unit.name}（{assist_state(a)}）" for a in missing)
        message = (
            f"协办单位尚未提交协办反馈：{names}。请待其反馈后再办结，或填写未等协办反馈即办结的原因"
        )
        raise Conflict(
            message,
            code="ASSISTS_NOT_REPORTED",
            details={"assists_note": message, "missing_units": [a.unit.code for a in missing]},
        )
    return {
        "assists_missing": [a.unit.code for a in missing],
        "assists_note": note if missing else None,
    }


#: An assisting unit's part in words, as the desk shows it.
NOT_SIGNED, SIGNED_NOT_REPORTED, REPORTED = "未签收", "已签收未反馈", "已反馈"


def assist_state(assignment):
    if assignment.finished_at is not None:
        return REPORTED
    return NOT_SIGNED if assignment.signed_at is None else SIGNED_NOT_REPORTED


@dataclass
class AssistRow:
    """One assisting unit's part as the ticket page shows it."""

    assignment: object
    state: str
    #: Whether the part belongs to the current round (earlier rounds' reports stay shown).
    current: bool
    photos: list


def assist_rows(session, ticket):
    """The ticket's assisting units with their reports and photos: the current round's
    first, then earlier rounds' that reported (one query for the photos)."""
    parts = [a for a in ticket.assignments if a.role == AssignmentRole.assist]
    parts = [a for a in parts if a.active or a.report is not None]
    if not parts:
        return []
    photos = {}
    reported = [a for a in parts if a.finished_at is not None]
    if reported:
        rows = session.execute(
            sa.select(TicketEvent.unit_id, TicketEvent.created_at, Attachment)
            .join(Attachment, Attachment.event_id == TicketEvent.id)
            .where(
                TicketEvent.ticket_id == ticket.id,
                TicketEvent.action == "report_assist",
                Attachment.purpose == "assist",
            )
            .order_by(Attachment.id)
        ).all()
        for unit_id, at, photo in rows:
            photos.setdefault((unit_id, at), []).append(photo)
    parts.sort(key=lambda a: (not a.active, a.id))
    return [
        AssistRow(a, assist_state(a), a.active, photos.get((a.unit_id, a.finished_at), []))
        for a in parts
    ]


def reportable(user, ticket):
    """Whether ``user``'s unit may file its 协办反馈 on ``ticket`` now (display only: the
    operation decides again)."""
    if user.role != Role.unit_handler or ticket.status not in IN_HANDLING:
        return False
    mine = ticket.active_assignment(user.unit_id, AssignmentRole.assist)
    return mine is not None and mine.signed_at is not None and mine.finished_at is None


# -- 拆单 -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Child:
    """One matter of a split call: its part of the text, category, area (None: the call's)
    and unit (the lead of a dispatcher's child, the proposed lead of an operator's)."""

    content: str
    category: object
    area: object
    unit: object


def split(
    session,
    actor,
    ticket,
    *,
    children,
    reason=None,
    idempotency_key=None,
    digest=None,
    expected_version=None,
    now=None,
):
    """拆单: split the received call ``ticket`` into ``children`` (``Child``). Returns
    ``(event, created)``: the parent's ``split`` event, and False when it is the replay of
    an earlier split with the same ``idempotency_key`` (the same key with a different
    request, ``digest``, is refused)."""
    now = now or utcnow()
    operations.check_role("split", actor)
    if idempotency_key is not None:
        earlier = _earlier_split(session, ticket, actor, idempotency_key, digest)
        if earlier is not None:
            return earlier, False
    operations.check_allowed("split", ticket, actor, expected_version)
    children = list(children or ())
    _check_children(children)
    reason = reason.strip() if isinstance(reason, str) and reason.strip() else None
    dispatching = actor.role == Role.dispatcher
    made = []
    for part, child in enumerate(children, 1):
        made.append(_make_child(session, actor, ticket, child, part, dispatching, now))
    before = ticket.status
    ticket.status = S.split
    payload = {
        "children": [
            {"number": t.number, "unit": c.unit.code, "category": c.category.code}
            for t, c in zip(made, children, strict=True)
        ],
        "dispatched": dispatching,
    }
    if idempotency_key is not None:
        payload.update(idempotency_key=idempotency_key, request_digest=digest)
    event = operations._record(
        session, ticket, actor, "split", before, reason=reason, payload=payload, now=now
    )
    if ticket.channel in citizens.PORTAL_CHANNELS:
        # Submitted online, the call got a 受理通知 text with its number: the citizen is told
        # the matters' numbers the same way (a phone call gets no text, nor do its matters).
        promise = citizens.reply_text(citizens.promised_reply(session, ticket))
        citizen_notices.tell_split(session, ticket, made, promise, event, now)
    return event, True


def _earlier_split(session, ticket, actor, key, digest):
    event = session.scalars(
        sa.select(TicketEvent)
        .where(
            TicketEvent.ticket_id == ticket.id,
            TicketEvent.action == "split",
            TicketEvent.actor_id == actor.id,
        )
        .limit(1)
    ).first()
    if event is None or (event.payload or {}).get("idempotency_key") != key:
        return None
    if digest is not None and event.payload.get("request_digest") != digest:
        raise ValidationFailed(
            "该 Idempotency-Key 已用于另一次不同的拆单，请使用新的键",
            code="IDEMPOTENCY_KEY_REUSED",
            details={"idempotency_key": key},
        )
    return event


def _check_children(children):
    """Refuse the whole split, before anything is written, if any child is wrong."""
    if not 2 <= len(children) <= MAX_CHILDREN:
        message = f"拆单须拆分为 2–{MAX_CHILDREN} 项（现为 {len(children)} 项）"
        raise ValidationFailed(message, code="SPLIT_CHILDREN_COUNT", details={"children": message})
    errors = {}
    for i, child in enumerate(children, 1):
        problem = _child_problem(child)
        if problem:
            errors[f"children.{i}"] = f"第 {i} 项：{problem}"
    if errors:
        first = next(iter(errors.values()))
        raise ValidationFailed(f"拆单未生效：{first}", code="SPLIT_CHILD_INVALID", details=errors)


def _child_problem(child):
    if not isinstance(child, Child):
        return "格式不正确"
    if not (isinstance(child.content, str) and child.content.strip()):
        return "请填写该项诉求内容"
    if child.category is None:
        return "请选择事项分类"
    if not child.category.active:
        return f"事项分类“{child.category.name}”（{child.category.code}）已停用，请选择其他分类"
    unit = child.unit
    if unit is None:
        return "请选择承办单位"
    if not unit.active:
        return f"承办单位“{unit.name}”已停用"
    if unit.kind == UnitKind.hotline_centre:
        return "不能派给热线中心本身"
    return None


def _make_child(session, actor, parent, child, part, dispatching, now):
    area = child.area or parent.area
    same_place = child.area is None or child.area.id == parent.area_id
    values = {
        "channel": parent.channel,
        "channel_client": parent.channel_client,
        "request_type": parent.request_type,
        "urgency": parent.urgency,
        "category_id": child.category.id,
        "title": operations.title_from(child.content),
        "content": child.content.strip(),
        "requester_name": parent.requester_name,
        "requester_phone": parent.requester_phone,
        "address": parent.address,
        "area_id": area.id if area else None,
        "area_source": parent.area_source if same_place else placing.TYPED,
        "lng": parent.lng if same_place else None,
        "lat": parent.lat if same_place else None,
        "status": S.received,
        # The citizen asked at the call's moment: the child waits in the queue in its place.
        "received_at": parent.received_at,
        "updated_at": now,
        "created_by_id": actor.id,
        "suggestion": None if dispatching else _proposal(child),
        "call_id": parent.call_id,
        "recording_ref": parent.recording_ref,
        "parent_id": parent.id,
    }
    ticket = operations.insert_ticket(session, values)
    operations._record(
        session,
        ticket,
        actor,
        "receive",
        None,
        now=now,
        payload={
            "channel": parent.channel.value,
            "request_type": parent.request_type.value,
            "split_from": parent.number,
            "part": part,
        },
    )
    if dispatching:
        operations.dispatch(
            session,
            actor,
            ticket,
            lead=child.unit,
            note=f"拆单派单（原工单 {parent.number} 第 {part} 项）",
            now=now,
        )
    return ticket


def _proposal(child):
    """An operator's chosen unit and category, in the shape the dispatch form preselects
    from (``dispatch.pages.desk.suggested``); ``source`` tells it from the classifier's."""
    return {
        "source": "split",
        "units": [{"code": child.unit.code, "name": child.unit.name, "confidence": None}],
        "category": {"top": [{"code": child.category.code, "name": child.category.name}]},
    }


def close_parent_if_done(session, child, now):
    """子单全部办结: close ``child``'s split parent when no child is left open (called by
    ``operations._record`` when a child enters a final state)."""
    if child.parent_id is None:
        return None
    # Lock the parent first, then read its children. Two children finishing in concurrent
    # transactions would each see the other still open and leave the parent open forever;
    # with the lock, the second waits for the first to commit, and its next statement (a new
    # snapshot under READ COMMITTED) sees the first's child final. SQLite has one writer.
    parent = session.scalars(
        sa.select(Ticket)
        .where(Ticket.id == child.parent_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if parent.status != S.split:
        return None
    children = session.execute(
        sa.select(Ticket.number, Ticket.status)
        .where(Ticket.parent_id == parent.id)
        .order_by(Ticket.id)
    ).all()
    if any(status not in FINAL for _, status in children):
        return None
    before = parent.status
    parent.status = S.closed
    parent.closed_at = now
    return operations._record(
        session,
        parent,
        None,
        "close_split",
        before,
        payload={"children": {number: status.value for number, status in children}},
        now=now,
    )


def children_of(session, ticket):
    """The child tickets a call was split into, in order."""
    return session.scalars(
        sa.select(Ticket).where(Ticket.parent_id == ticket.id).order_by(Ticket.id)
    ).all()


def _local(moment):
    zone = ZoneInfo(operations._setting("TIMEZONE"))
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")
