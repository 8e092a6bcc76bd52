"""The operator console (坐席受理台): one keyboard-first form per call, with live suggestions,
the knowledge base (首问即答), possible duplicates (并单) and the emergency warning (转 110…).

Every button posts the same form with an ``action``: ``receive`` (受理, to the dispatcher's
queue), ``resolve:<article>`` (受理 + 直接办结 with the article's answer), ``merge:<number>``
(受理 + 并单), ``transfer:<110|119|120|122>`` (受理 + 转办), or ``lookup`` (no change: the
server computes the panels, for browsers without JavaScript). A two-step action is one
transaction: both operations' events, or nothing.

The classifier's emergency is a warning, never the ticket's urgency: the operator transfers,
keeps it as 紧急 or dismisses it (``emergency:keep`` / ``emergency:dismiss`` re-render the form
so for browsers without JavaScript; the script does the same in the page). The answer travels
in the hidden ``emergency_decision`` field and is recorded with the receive event.

A hidden idempotency key, new on every blank form, makes a repeated submit return the
ticket made the first time instead of a second one.
"""

import uuid
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)

from dispatch import access, calls, duplicates, operations, placing
from dispatch.schemas import caller_history_to_dict, intake_values
from hotline import knowledge, pickers, suggestions, web
from hotline.db import day_bounds, get_session, utcnow
from hotline.enums import (
    Channel,
    EmergencyDecision,
    IntakeOutcome,
    RequestType,
    Role,
    TransferTarget,
    Urgency,
)
from hotline.errors import NotFound, ValidationFailed
from hotline.models import Area, IncomingCall, Ticket
from hotline.schemas import Fields, valid_idempotency_key
from hotline.suggestions import place_names, unit_names
from hotline.web import page_for


def create_blueprint():
    bp = Blueprint(
        "console",
        __name__,
        template_folder="templates",
        static_folder="static",
        static_url_path="/console/static",
    )
    bp.add_url_rule("/console", view_func=console_page)
    bp.add_url_rule("/console", view_func=console_submit, methods=["POST"])
    web.add_to_menu(bp, "console_page", "受理台", CONSOLE_ROLES, home_of=CONSOLE_ROLES)
    return bp


#: Only operators take calls (``receive`` is theirs; dispatchers sort what was received).
CONSOLE_ROLES = (Role.operator,)
#: The form's fields, in the order the operator tabs through them.
FORM_FIELDS = (
    "requester_phone",
    "requester_name",
    "content",
    "address",
    "category",
    "request_type",
    "urgency",
    "channel",
    "area",
    "emergency_decision",
    "call_id",
    # Hidden: the signed suggestion the page's script received while the operator typed,
    # handed back so that receiving does not classify the text again.
    "suggestion",
)
#: The emergency lines a call may be handed to from the console.
EMERGENCY_TARGETS = (
    TransferTarget.police_110,
    TransferTarget.fire_119,
    TransferTarget.ambulance_120,
    TransferTarget.traffic_122,
)
#: Today's own tickets listed under the form.
TODAY_LIMIT = 50


def new_key():
    return f"console-{uuid.uuid4().hex}"


def _typed():
    """What the operator typed, as strings (absent fields empty). The area pickers post one
    code per level (district … grid; with script only the most specific): kept space-joined."""
    typed = {name: request.form.get(name, "") for name in FORM_FIELDS}
    typed["area"] = " ".join(code.strip() for code in request.form.getlist("area") if code.strip())
    return typed


def _area_code(typed):
    """The most specific area chosen ("" for none, or for levels that do not fit together)."""
    try:
        return pickers.chosen_area(typed["area"].split())
    except ValidationFailed:
        return ""


def parse_intake(db, typed):
    """The ``operations.receive`` values of a console form (the fields of ``POST
    /api/v1/tickets``, parsed by the same ``Fields`` rules), or ValidationFailed per field."""
    # A form sends every field; an empty one means "not given", as an absent JSON key does.
    data = {name: value for name, value in typed.items() if value.strip() and name != "area"}
    fields = Fields(data)
    try:
        area = pickers.chosen_area(typed["area"].split())
    except ValidationFailed as exc:
        area = ""
        fields.errors.update(exc.details)
    if area:
        data["area"] = area
    return intake_values(db, fields)


def _idempotency_key():
    key = request.form.get("idempotency_key", "")
    if not valid_idempotency_key(key):
        raise ValidationFailed(
            "表单缺少有效的防重复提交标识，请刷新页面后重新填写",
            code="IDEMPOTENCY_KEY_INVALID",
        )
    return key


@page_for(*CONSOLE_ROLES)
def console_page():
    typed = {name: "" for name in FORM_FIELDS} | {"channel": Channel.phone.value}
    # A call the phone system put through to this seat fills in the caller (来电弹屏).
    call = calls.pending_for(get_session(), g.user)
    if call is not None:
        typed |= {"call_id": call.call_id, "requester_phone": call.caller_phone or ""}
    return _render(typed, new_key(), call=call)


@page_for(*CONSOLE_ROLES)
def console_submit():
    typed = _typed()
    key = request.form.get("idempotency_key") or new_key()
    action, _, target = (request.form.get("action") or "receive").partition(":")
    if action == "lookup":
        return _render(typed, key, panels=True, prefill=True)
    if action == "emergency":
        return _render(_answer_warning(typed, target), key, panels=True)

    def change(db):
        valid_key = _idempotency_key()
        if action not in {"receive", "resolve", "merge", "transfer"}:
            raise ValidationFailed(f"未知的操作：{action}", code="UNKNOWN_ACTION")
        if action == "resolve" and target not in request.form.getlist("confirm_article"):
            # Closing a call from an article is only for an answer actually read out.
            raise ValidationFailed(
                "请先展开知识库条目，向来电人读出答复并勾选确认后再办结",
                code="ARTICLE_NOT_CONFIRMED",
                details={"confirm_article": "请勾选“已向来电人完整读出答复”"},
            )
        values = parse_intake(db, typed)
        if action == "transfer":
            values["emergency_decision"] = EmergencyDecision.transferred
        ticket, created = operations.receive(
            db,
            g.user,
            idempotency_key=valid_key,
            # The action is part of the request: one key cannot both receive and merge.
            digest=operations.request_digest({**typed, "action": f"{action}:{target}"}),
            **values,
        )
        if not created:
            return f"工单 {ticket.number} 已于此前提交成功（重复提交未重复创建）"
        return _follow_up(db, ticket, action, target)

    done, result = web.perform(
        change, refused=lambda exc: (_render(typed, key, error=exc, panels=True), exc.status)
    )
    if not done:
        return result
    flash(result, "notice")
    return redirect(url_for("console.console_page"))


def _answer_warning(typed, answer):
    """The form after the operator answered the emergency warning: ``keep`` sets 紧急 (their
    choice now), ``dismiss`` leaves the urgency as they chose it, ``show`` undoes either."""
    typed = dict(typed)
    if answer == "keep":
        typed["urgency"] = Urgency.emergency.value
        typed["emergency_decision"] = EmergencyDecision.kept.value
    elif answer == "dismiss":
        if typed.get("emergency_decision") == EmergencyDecision.kept.value:
            typed["urgency"] = Urgency.normal.value  # undo what "keep" set
        typed["emergency_decision"] = EmergencyDecision.dismissed.value
    else:
        typed["emergency_decision"] = ""
    return typed


def _follow_up(db, ticket, action, target):
    """The second operation of a two-step action; returns the success message."""
    if action == "resolve":
        article = knowledge.article_in_force(db, target)
        if article is None:
            raise NotFound(f"知识库条目不存在或已停用：{target}", code="ARTICLE_NOT_FOUND")
        operations.resolve_at_intake(
            db, g.user, ticket, outcome=IntakeOutcome.answered, article=article
        )
        return f"工单 {ticket.number} 已直接办结（首问即答：{article.title}）"
    if action == "merge":
        into = db.scalars(sa.select(Ticket).where(Ticket.number == target)).first()
        if into is None or not access.can_view(db, g.user, into):
            raise NotFound(f"要并入的工单不存在：{target}", code="TICKET_NOT_FOUND")
        operations.merge(db, g.user, ticket, into=into, reason="受理时发现重复诉求，并单")
        return f"工单 {ticket.number} 已受理并并入工单 {into.number}"
    if action == "transfer":
        goal = TransferTarget.parse(target)
        if goal not in EMERGENCY_TARGETS:
            raise ValidationFailed(
                "转办去向应为 110、119、120 或 122", details={"action": "转办去向无效"}
            )
        evidence = ((ticket.suggestion or {}).get("urgency") or {}).get("evidence")
        reason = f"话务员判断为紧急情况，转{goal.label}"
        if evidence:
            reason += f"（来电提及：{evidence}）"
        operations.transfer(db, g.user, ticket, target=goal, reason=reason)
        return f"工单 {ticket.number} 已受理并转{goal.label}"
    return f"工单 {ticket.number} 已受理，已进入派单队列"


# -- rendering --------------------------------------------------------------------------------


def _render(typed, key, *, error=None, panels=False, call=None, prefill=False):
    """The console page. ``prefill``: a confident suggested place fills the area pickers the
    operator left blank (the "查询建议" button, as the page's script does while typing)."""
    db = get_session()
    if call is None and typed.get("call_id"):
        call = db.scalars(
            sa.select(IncomingCall).where(IncomingCall.call_id == typed["call_id"])
        ).first()
    context = {
        "form": typed,
        "idempotency_key": key,
        "error": error,
        "field_errors": (error.details or {}) if isinstance(error, ValidationFailed) else {},
        "channels": [c for c in Channel if c not in (Channel.grid, Channel.open311)],
        "request_types": list(RequestType),
        "urgencies": list(Urgency),
        "emergency_targets": EMERGENCY_TARGETS,
        "area_selected": _area_code(typed),
        "area_prefilled": False,
        "area_prefill_confidence": current_app.config["AREA_FILL_MIN_CONFIDENCE"],
        "today": _today_tickets(db),
        "suggestion": None,
        "places": [],
        "units": {},
        "articles": [],
        "candidates": [],
        "call": call,
        "caller": _caller(db, typed),
    }
    if panels:
        context.update(_panels(db, typed))
    place = (context["suggestion"] or {}).get("area") or {}
    if prefill and not context["area_selected"] and confident_place(place):
        context["area_selected"] = place["code"]
        context["area_prefilled"] = True
    return render_template("console.html", **context)


def _panels(db, typed):
    """The side panels computed on the server (what the page's script fetches while typing)."""
    content = typed["content"].strip()
    result = {}
    if content:
        try:
            suggestion = suggestions.service().suggest(db, content, address=typed["address"])
        except Exception:  # the panels are help; a failing classifier must not hide the form
            current_app.logger.exception("console: suggestion failed")
            suggestion = None
        if suggestion:
            result["suggestion"] = suggestion
            result["places"] = place_names(db, suggestion.get("area"))
            result["units"] = unit_names(db, [u["code"] for u in suggestion.get("units", [])])
        result["articles"] = knowledge.search(db, content)
    phone = (
        Fields({"p": typed["requester_phone"]}).phone("p", "") if typed["requester_phone"] else None
    )
    area_code = _area_code(typed) or (
        ((result.get("suggestion") or {}).get("area") or {}).get("code")
    )
    area = db.scalars(sa.select(Area).where(Area.code == area_code)).first() if area_code else None
    if phone or area is not None or typed["address"].strip():
        result["candidates"] = duplicates.find(
            db,
            g.user,
            phone=phone,
            address=typed["address"].strip() or None,
            area=area,
            content=content or None,
        )
    return result


def confident_place(place):
    """Whether a suggested place (``suggestion["area"]``) is sure enough to pre-fill the area
    pickers: the same rule by which receive fills a blank area (``placing``); a less sure one
    is only shown beside them."""
    threshold = current_app.config["AREA_FILL_MIN_CONFIDENCE"]
    return placing.confident_place(place, threshold) is not None


def _caller(db, typed):
    """The typed phone's earlier tickets (来电历史), or None while no valid number is typed."""
    fields = Fields({"p": typed["requester_phone"]})
    phone = fields.phone("p", "") if typed["requester_phone"].strip() else None
    if phone is None:
        return None
    return caller_history_to_dict(phone, *calls.history(db, g.user, phone))


def _today_tickets(db):
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    _, midnight, _ = day_bounds(utcnow(), current_app.config["TIMEZONE"])
    rows = db.scalars(
        sa.select(Ticket)
        .where(Ticket.created_by_id == g.user.id, Ticket.received_at >= midnight)
        .order_by(Ticket.received_at.desc(), Ticket.id.desc())
        .limit(TODAY_LIMIT)
    ).all()
    return [
        {
            "number": t.number,
            "time": t.received_at.astimezone(tz).strftime("%H:%M"),
            "status": t.status.label,
            "title": t.title,
            "phone": access.visible_phone(g.user, t.requester_phone, t.number),
        }
        for t in rows
    ]
