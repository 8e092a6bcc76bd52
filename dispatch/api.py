"""Ticket endpoints of the JSON API: create (= receive), list, read, and one POST per transition.

Views parse and serialise only; every rule lives in ``dispatch.operations``.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Blueprint, current_app, g, request
from sqlalchemy.orm import selectinload

from dispatch import access, operations, routing, sla
from hotline import suggestions
from hotline.api import commit, ok
from hotline.api import iso as _iso
from hotline.api import labelled as _labelled
from hotline.api.parsing import Fields, json_body
from hotline.api.reference import by_code
from hotline.cache import reference_rows
from hotline.db import get_session, utcnow
from hotline.enums import (
    CallbackOutcome,
    Channel,
    ExemptionKind,
    IntakeOutcome,
    RequestType,
    ReturnReason,
    Satisfaction,
    Solved,
    TicketStatus,
    TransferTarget,
    Urgency,
)
from hotline.errors import Forbidden, NotFound, ValidationFailed
from hotline.models import (
    Area,
    Assignment,
    CallbackAttempt,
    Category,
    Extension,
    Ticket,
    TicketEvent,
    TimerFiring,
    Unit,
)

bp = Blueprint("tickets", __name__)

NOTE_MAX = 1000
RESULT_MAX = 5000


# -- serialisation ----------------------------------------------------------------------------


def coded(row):
    return {"code": row.code, "name": row.name} if row is not None else None


def ticket_to_dict(ticket, actor):
    return {
        "number": ticket.number,
        "version": ticket.version,
        "status": _labelled(ticket.status),
        "channel": _labelled(ticket.channel),
        "request_type": _labelled(ticket.request_type),
        "urgency": _labelled(ticket.urgency),
        "category": coded(ticket.category),
        "title": ticket.title,
        "content": ticket.content,
        "requester_name": ticket.requester_name,
        "requester_phone": access.visible_phone(actor, ticket.requester_phone),
        "address": ticket.address,
        "area": coded(ticket.area),
        "lng": ticket.lng,
        "lat": ticket.lat,
        "lead_unit": coded(ticket.lead_unit),
        "received_at": _iso(ticket.received_at),
        "clock_started_at": _iso(ticket.clock_started_at),
        "sign_due": _iso(ticket.sign_due),
        "contact_due": _iso(ticket.contact_due),
        "finish_due": _iso(ticket.finish_due),
        "callback_due": _iso(ticket.callback_due),
        "callback_next_at": _iso(ticket.callback_next_at),
        "signed_at": _iso(ticket.signed_at),
        "contacted_at": _iso(ticket.contacted_at),
        "finished_at": _iso(ticket.finished_at),
        "closed_at": _iso(ticket.closed_at),
        "result": ticket.result,
        "intake_outcome": _labelled(ticket.intake_outcome),
        "transfer_target": _labelled(ticket.transfer_target),
        "merged_into": ticket.merged_into.number if ticket.merged_into else None,
        "callback": {
            "solved": _labelled(ticket.callback_solved),
            "satisfaction": _labelled(ticket.callback_satisfaction),
            "comment": ticket.callback_comment,
            "at": _iso(ticket.callback_at),
        },
        "reopen_count": ticket.reopen_count,
        "scoring_exempt": ticket.scoring_exempt,
        "exempt_kind": _labelled(ticket.exempt_kind),
        "exempt_reason": ticket.exempt_reason,
        "suggestion": ticket.suggestion,
        "escalation_level": ticket.escalation_level,
        "deadline_warnings": deadline_warnings(ticket),
    }


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
        "role": _labelled(a.role),
        "active": a.active,
        "designated": a.designated,
        "dispatched_at": _iso(a.dispatched_at),
        "signed_at": _iso(a.signed_at),
        "contacted_at": _iso(a.contacted_at),
        "finished_at": _iso(a.finished_at),
        "ended_at": _iso(a.ended_at),
        "return_reason": _labelled(a.return_reason),
        "return_note": a.return_note,
        "return_status": _labelled(a.return_status),
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
        "created_at": _iso(e.created_at),
    }


def ticket_detail(db, ticket, actor):
    data = ticket_to_dict(ticket, actor)
    data["assignments"] = [
        _assignment_to_dict(a)
        for a in db.scalars(
            sa.select(Assignment)
            .where(Assignment.ticket_id == ticket.id)
            .options(selectinload(Assignment.unit))
            .order_by(Assignment.id)
        )
    ]
    data["events"] = [
        event_to_dict(e)
        for e in db.scalars(
            sa.select(TicketEvent)
            .where(TicketEvent.ticket_id == ticket.id)
            .options(selectinload(TicketEvent.actor), selectinload(TicketEvent.unit))
            .order_by(TicketEvent.id)
        )
    ]
    data["extensions"] = [
        {
            "days": x.days,
            "reason": x.reason,
            "status": _labelled(x.status),
            "requested_at": _iso(x.requested_at),
            "decided_at": _iso(x.decided_at),
            "decision_note": x.decision_note,
            "old_finish_due": _iso(x.old_finish_due),
            "new_finish_due": _iso(x.new_finish_due),
        }
        for x in db.scalars(
            sa.select(Extension).where(Extension.ticket_id == ticket.id).order_by(Extension.id)
        )
    ]
    data["timers"] = [
        {
            "kind": _labelled(f.kind),
            "level": f.level,
            "due_at": _iso(f.due_at),
            "fired_at": _iso(f.fired_at),
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
            "outcome": _labelled(c.outcome),
            "solved": _labelled(c.solved),
            "satisfaction": _labelled(c.satisfaction),
            "comment": c.comment,
            "attempted_at": _iso(c.attempted_at),
        }
        for c in db.scalars(
            sa.select(CallbackAttempt)
            .where(CallbackAttempt.ticket_id == ticket.id)
            .order_by(CallbackAttempt.id)
        )
    ]
    return data


# -- lookups ----------------------------------------------------------------------------------


def lookup_code(db, fields, name, model, label, code):
    """Resolve ``code`` to a row, recording a field error when there is none."""
    if code is None:
        return None
    row = reference_rows.get(
        db,
        (model.__name__, code),
        lambda session: session.scalars(sa.select(model).where(model.code == code)).first(),
    )
    if row is None:
        fields.errors.setdefault(name, f"{label}不存在：{code}")
    return row


def load_ticket(db, number):
    ticket = db.scalars(sa.select(Ticket).where(Ticket.number == number)).first()
    if ticket is None:
        raise NotFound(f"工单不存在：{number}", code="TICKET_NOT_FOUND")
    if not access.can_view(db, g.user, ticket):
        raise Forbidden("您无权查看该工单", code="TICKET_FORBIDDEN")
    return ticket


# -- create, list, read -----------------------------------------------------------------------


@bp.post("/tickets")
def create_ticket():
    """受理: create a ticket. Send ``Idempotency-Key`` so a retry never makes a second one."""
    db = get_session()
    data = json_body()
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (1 <= len(key) <= 100 and key.isascii() and key.isprintable()):
        raise ValidationFailed(
            "Idempotency-Key 须为 1–100 个可打印 ASCII 字符", code="IDEMPOTENCY_KEY_INVALID"
        )
    values = intake_values(db, Fields(data))
    ticket, created = operations.receive(
        db,
        g.user,
        idempotency_key=key,
        digest=operations.request_digest(data) if key else None,
        **values,
    )
    commit()
    headers = {"Location": f"/api/v1/tickets/{ticket.number}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return ok(ticket_to_dict(ticket, g.user), 201 if created else 200, headers)


def intake_values(db, fields):
    """The ``operations.receive`` values of a new request's fields (the API's body or the
    console's form): checked, with the title and the classifier's suggestion filled in.
    Raises ValidationFailed naming every bad field."""
    values = {
        "channel": fields.choice("channel", "受理渠道", Channel, required=True),
        "request_type": fields.choice("request_type", "诉求类型", RequestType, required=True),
        "urgency": fields.choice("urgency", "紧急程度", Urgency, default=Urgency.normal),
        "content": fields.text(
            "content",
            "诉求内容",
            required=True,
            multiline=True,
            max_len=current_app.config["MAX_TICKET_CONTENT_CHARS"],
        ),
        "title": fields.text("title", "标题", max_len=100),
        "requester_name": fields.text("requester_name", "诉求人姓名", max_len=50),
        "requester_phone": fields.phone("requester_phone", "联系电话"),
        "address": fields.text("address", "地址", max_len=200),
        "lng": fields.number("lng", "经度", minimum=73.0, maximum=136.0),
        "lat": fields.number("lat", "纬度", minimum=3.0, maximum=54.0),
    }
    if (values["lng"] is None) != (values["lat"] is None):
        fields.errors.setdefault("lat", "经度和纬度须同时提供")
    values["category"] = lookup_code(
        db, fields, "category", Category, "事项分类", fields.code("category", "事项分类")
    )
    values["area"] = lookup_code(db, fields, "area", Area, "区域", fields.code("area", "区域"))
    fields.check()
    if values["title"] is None:
        values["title"] = title_from(values["content"])
    values["suggestion"] = suggestions.for_intake(
        db, values["content"], address=values["address"], lng=values["lng"], lat=values["lat"]
    )
    return values


def title_from(content):
    first_line = content.splitlines()[0]
    return first_line[:30] + ("…" if len(first_line) > 30 else "")


@bp.get("/tickets")
def list_tickets():
    """Tickets the caller may see, newest first, with filters and pagination."""
    db = get_session()
    args = request.args
    config = current_app.config
    query = sa.select(Ticket)
    condition = access.scope_condition(g.user)
    if condition is not None:
        query = query.where(condition)
    errors = {}
    if args.get("status"):
        statuses = [TicketStatus.parse(s) for s in args["status"].split(",")]
        if None in statuses:
            errors["status"] = "状态取值无效"
        else:
            query = query.where(Ticket.status.in_(statuses))
    for name, enum_cls, column in (
        ("channel", Channel, Ticket.channel),
        ("request_type", RequestType, Ticket.request_type),
        ("urgency", Urgency, Ticket.urgency),
    ):
        if args.get(name):
            member = enum_cls.parse(args[name])
            if member is None:
                errors[name] = "取值无效"
            else:
                query = query.where(column == member)
    if args.get("category"):
        query = query.where(
            Ticket.category_id.in_(
                sa.select(Category.id).where(
                    Category.code.startswith(args["category"], autoescape=True)
                )
            )
        )
    if args.get("area"):
        query = query.where(
            Ticket.area_id.in_(
                sa.select(Area.id).where(Area.code.startswith(args["area"], autoescape=True))
            )
        )
    if args.get("unit"):
        query = query.where(
            Ticket.lead_unit_id.in_(sa.select(Unit.id).where(Unit.code == args["unit"]))
        )
    if args.get("phone"):
        query = query.where(Ticket.requester_phone == args["phone"])
    if args.get("overdue") == "1":
        # Past the finish deadline and not finished (the supervisors' overdue list).
        query = query.where(sla.overdue(utcnow()))
    elif args.get("overdue") not in (None, "0"):
        errors["overdue"] = "取值应为 1 或 0"
    if args.get("escalation_level"):
        level = args["escalation_level"]
        if level not in ("1", "2", "3"):
            errors["escalation_level"] = "督办级别应为 1、2 或 3"
        else:
            query = query.where(Ticket.escalation_level >= int(level))
    for name, op in (("received_from", "__ge__"), ("received_to", "__lt__")):
        if args.get(name):
            try:
                moment = dt.datetime.fromisoformat(args[name])
            except ValueError:
                errors[name] = "日期格式应为 ISO 8601，如 2026-11-01 或 2026-11-01T08:00:00+08:00"
                continue
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=ZoneInfo(config["TIMEZONE"]))
            try:
                moment.astimezone(dt.UTC)  # 0001-01-01 or 9999-12-31 may leave the calendar in UTC
            except OverflowError:
                errors[name] = "日期超出范围"
                continue
            query = query.where(getattr(Ticket.received_at, op)(moment))
    if args.get("q"):
        pattern = (
            "%" + args["q"].replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
        )
        query = query.where(
            sa.or_(
                Ticket.title.like(pattern, escape="\\"), Ticket.content.like(pattern, escape="\\")
            )
        )
    page = positive_int(args, "page", 1, errors)
    per_page = positive_int(args, "per_page", config["DEFAULT_PAGE_SIZE"], errors)
    if per_page and per_page > config["MAX_PAGE_SIZE"]:
        errors["per_page"] = f"每页最多 {config['MAX_PAGE_SIZE']} 条"
    if errors:
        raise ValidationFailed(f"查询条件有误：{next(iter(errors.values()))}", details=errors)
    total = db.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    rows = db.scalars(
        query.options(
            selectinload(Ticket.category),
            selectinload(Ticket.area),
            selectinload(Ticket.lead_unit),
            selectinload(Ticket.merged_into),
        )
        .order_by(Ticket.received_at.desc(), Ticket.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return ok(
        {
            "items": [ticket_to_dict(t, g.user) for t in rows],
            "page": page,
            "per_page": per_page,
            "total": total,
        }
    )


def positive_int(args, name, default, errors):
    raw = args.get(name)
    if raw is None:
        return default
    # ASCII only: "²".isdigit() is true but int("²") fails.
    if not (raw.isascii() and raw.isdigit()) or not raw.strip("0"):
        errors[name] = "须为正整数"
        return None
    if len(raw.lstrip("0")) > 9:  # keeps int() and the SQL OFFSET within range
        errors[name] = "不能超过 999999999"
        return None
    return int(raw)


@bp.get("/tickets/<number>")
def get_ticket(number):
    db = get_session()
    ticket = load_ticket(db, number)
    return ok(ticket_detail(db, ticket, g.user))


@bp.get("/routing/suggest")
def suggest_unit():
    """The unit the dispatch catalogue names for ``category`` at ``area``."""
    db = get_session()
    if not request.args.get("category"):
        raise ValidationFailed("请提供事项分类 category", details={"category": "请提供事项分类"})
    category = by_code(db, Category, request.args["category"], "事项分类")
    area_code = request.args.get("area")
    area = by_code(db, Area, area_code, "区域") if area_code else None
    unit = routing.catalogue_unit(db, category, area)
    return ok({"unit": coded(unit)})


# -- transitions ------------------------------------------------------------------------------
# Each parser turns the JSON body into the keyword arguments of one operation.


def _units(db, fields, name, codes):
    return [u for u in (lookup_code(db, fields, name, Unit, "承办单位", c) for c in codes) if u]


def _p_resolve_at_intake(db, f):
    return {
        "outcome": f.choice("outcome", "办结类型", IntakeOutcome, default=IntakeOutcome.answered),
        "answer": f.text("answer", "答复内容", required=True, multiline=True, max_len=RESULT_MAX),
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
        "note": f.text("note", "派单说明", multiline=True, max_len=NOTE_MAX),
    }


def _p_designate(db, f):
    values = _p_dispatch(db, f)
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
        "result": f.text("result", "办理结果", required=True, multiline=True, max_len=RESULT_MAX)
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


def _p_exempt(db, f):
    return {
        "exempt": f.boolean("exempt", "是否豁免", default=True),
        "kind": f.choice("kind", "豁免类型", ExemptionKind),
        "reason": f.text("reason", "豁免理由", required=True, multiline=True, max_len=NOTE_MAX),
    }


#: URL segment → (operation, body parser). One POST endpoint per transition.
TRANSITION_ENDPOINTS = {
    "resolve-at-intake": (operations.resolve_at_intake, _p_resolve_at_intake),
    "transfer": (operations.transfer, _p_transfer),
    "merge": (operations.merge, _p_merge),
    "dispatch": (operations.dispatch, _p_dispatch),
    "sign": (operations.sign, _p_empty),
    "contact": (operations.contact, _p_contact),
    "return-request": (operations.request_return, _p_request_return),
    "return-decision": (operations.decide_return, _p_decide_return),
    "designate": (operations.designate, _p_designate),
    "extension-request": (operations.request_extension, _p_request_extension),
    "extension-decision": (operations.decide_extension, _p_decision),
    "finish": (operations.finish, _p_finish),
    "callback": (operations.record_callback, _p_callback),
    "reopen": (operations.reopen, _p_reason("重办理由")),
    "close": (operations.close, _p_reason("归档说明", required=False)),
    "termination-request": (operations.request_termination, _p_reason("终止理由")),
    "termination-review": (operations.review_termination, _p_decision),
    "exempt": (operations.exempt, _p_exempt),
    # Grid workers (check-in carries photos, so it is a multipart page form: /grid).
    "accept": (operations.accept, _p_empty),
    "escalate": (operations.escalate, _p_reason("上报原因")),
}


def _transition_view(operation, parse):
    def view(number):
        db = get_session()
        data = json_body()
        ticket = load_ticket(db, number)
        fields = Fields(data)
        expected = fields.integer("version", "版本号", minimum=1)
        values = parse(db, fields)
        fields.check()
        event = operation(db, g.user, ticket, expected_version=expected, **values)
        commit()
        body = ticket_to_dict(ticket, g.user)
        body["event"] = event_to_dict(event)
        return ok(body)

    return view


for _slug, (_operation, _parse) in TRANSITION_ENDPOINTS.items():
    bp.add_url_rule(
        f"/tickets/<number>/{_slug}",
        endpoint=_slug,
        view_func=_transition_view(_operation, _parse),
        methods=["POST"],
    )
