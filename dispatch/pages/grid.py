"""The grid worker's pages (网格工作台, phone-width): tickets in my grids, accept (接单), on-site
check-in with photos and position (现场核查), contact, finish or hand back (上报), and the
patrol report form (主动发现).

Each form is read by the parser of its transition (``dispatch.schemas``), and its photos are
stored by the operation in the same transaction (``hotline.web.perform``); a refusal rolls
back and re-renders the page with the Chinese message and what the user typed. Every action
form carries the ticket's version, so a double tap is refused instead of done twice; the
report form carries an idempotency key for the same reason.

Check-in is a page form only (multipart, with photos); accept and escalate are also JSON API
transitions (``/api/v1/tickets/<n>/accept``, ``/escalate``).
"""

import datetime as dt
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy.orm import selectinload

from dispatch import access, operations, reply_review, schemas
from dispatch.deadlines import load_policies, ticket_deadlines
from dispatch.history import history
from dispatch.pages import visible_ticket_or_abort
from dispatch.states import IN_HANDLING, TRANSITIONS, event_label
from hotline import attachments, web
from hotline.db import get_session, utcnow
from hotline.enums import AssignmentRole, Channel, RequestType, TicketStatus, Urgency
from hotline.models import Assignment, Ticket
from hotline.web import page_for

S = TicketStatus
GRID_ROLES = TRANSITIONS["accept"].roles
LIST_LIMIT = 100
RECENT_LIMIT = 20
#: Statuses of a ticket the worker has finished (最近办结; 待审核: the reply awaits review).
DONE = (S.reviewing, S.finished, S.called_back, S.closed)
#: Said after the message of a refused form that carried photos.
PHOTOS_AGAIN = "（出于安全原因，照片需重新选择）"


def create_blueprint():
    bp = Blueprint(
        "grid",
        __name__,
        url_prefix="/grid",
        template_folder="templates",
        static_folder="static",
        static_url_path="/static",
    )
    bp.add_url_rule("", view_func=grid_page)
    bp.add_url_rule("/tickets/<number>", view_func=ticket_page)
    bp.add_url_rule("/tickets/<number>/<action>", view_func=act, methods=["POST"])
    bp.add_url_rule("/report", view_func=report, methods=["GET", "POST"])
    bp.add_app_template_global(event_label)
    web.add_to_menu(bp, "grid_page", "网格工作台", GRID_ROLES, home_of=GRID_ROLES)
    return bp


# -- display helpers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    label: str
    due: dt.datetime
    state: str  # ok / warn / overdue (dispatch.deadlines)
    words: str


def deadline(ticket, now):
    """The deadline the worker is held to next (签收 until signed, then 办结), coloured by the
    one rule of ``dispatch.deadlines`` (amber when the 预警 timer fires)."""
    if ticket.status in (S.dispatched, S.reopened):
        wanted = "签收"
    elif ticket.status in IN_HANDLING:
        wanted = "办结"
    else:
        return None
    for label, due, state in ticket_deadlines(get_session(), ticket, now):
        if label == wanted and due is not None:
            return Deadline(label, due, state.state, state.words)
    return None


# -- the lists ----------------------------------------------------------------------------------


def _cards(db, query, limit):
    return db.scalars(
        query.options(
            selectinload(Ticket.area), selectinload(Ticket.category), selectinload(Ticket.lead_unit)
        ).limit(limit)
    ).all()


def _led_by(unit_id):
    return sa.exists().where(
        Assignment.ticket_id == Ticket.id,
        Assignment.unit_id == unit_id,
        Assignment.role == AssignmentRole.lead,
        Assignment.active,
    )


@page_for(*GRID_ROLES)
def grid_page():
    """网格工作台: 待接单 (in my grids, led by my office, nobody accepted), 我的工单, 最近办结
    and my patrol reports."""
    db = get_session()
    user = g.user
    grid_ids = [a.id for a in user.grids]
    waiting = _cards(
        db,
        sa.select(Ticket)
        .where(
            Ticket.area_id.in_(grid_ids),
            Ticket.grid_worker_id.is_(None),
            Ticket.status.in_(TRANSITIONS["accept"].from_states),
            _led_by(user.unit_id),
        )
        .order_by(Ticket.finish_due, Ticket.id),
        LIST_LIMIT,
    )
    mine = _cards(
        db,
        sa.select(Ticket)
        .where(Ticket.grid_worker_id == user.id, Ticket.status.in_(IN_HANDLING))
        .order_by(Ticket.finish_due, Ticket.id),
        LIST_LIMIT,
    )
    done = _cards(
        db,
        sa.select(Ticket)
        .where(Ticket.grid_worker_id == user.id, Ticket.status.in_(DONE))
        .order_by(Ticket.finished_at.desc(), Ticket.id.desc()),
        RECENT_LIMIT,
    )
    reported = _cards(
        db,
        sa.select(Ticket)
        .where(Ticket.created_by_id == user.id, Ticket.channel == Channel.grid)
        .order_by(Ticket.received_at.desc(), Ticket.id.desc()),
        RECENT_LIMIT,
    )
    now = utcnow()
    _policies = load_policies(db, [*waiting, *mine])  # one query, not one per card's deadline
    return render_template(
        "grid.html",
        sections=[
            ("waiting", "待接单", waiting, "暂无待接单的工单"),
            ("mine", "我的工单", mine, "暂无在办工单"),
            ("done", "最近办结", done, "暂无办结工单"),
            ("reported", "我的主动发现", reported, "暂无上报记录"),
        ],
        deadline=lambda t: deadline(t, now),
        grids=user.grids,
    )


# -- one ticket -------------------------------------------------------------------------------


def _render_ticket(db, ticket, *, error=None, action=None, values=None, status=200):
    user = g.user
    record = history(db, ticket)
    lead = ticket.lead_assignment
    mine = ticket.grid_worker_id == user.id and ticket.status in TRANSITIONS["finish"].from_states
    checked_in = mine and operations.last_check_in(db, ticket, user) is not None
    may_accept = (
        ticket.grid_worker_id is None
        and ticket.status in TRANSITIONS["accept"].from_states
        and lead is not None
        and lead.unit_id == user.unit_id
        and ticket.area_id in {a.id for a in user.grids}
    )
    forms = set()
    if may_accept:
        forms.add("accept")
    if mine:
        forms.update({"check-in", "finish", "escalate"})
        if ticket.status in TRANSITIONS["contact"].from_states:
            forms.add("contact")
    values = values or {}

    def typed(form_action, name, default=""):
        """What the worker typed in the failed form (the desk's partials ask so)."""
        return values.get(name, default) if form_action == action else default

    def field_error(form_action, name):
        return ""  # the grid shows the form's one message above it (form_error)

    return render_template(
        "grid_ticket.html",
        forms=forms,
        # The desk's partials (_reply_review.html, _assists_note.html) read these.
        ticket=ticket,
        reply_review=reply_review.ticket_context(db, ticket),
        actions=(),
        typed=typed,
        field_error=field_error,
        t=ticket,
        phone=access.visible_phone(user, ticket.requester_phone, ticket.number),
        events=record.events,
        photos_by_event=record.photos_by_event(),
        deadline=deadline(ticket, utcnow()),
        checked_in=checked_in,
        error=error,
        action=action,
        values=values,
    ), status


@page_for(*GRID_ROLES)
def ticket_page(number):
    db = get_session()
    return _render_ticket(db, visible_ticket_or_abort(db, number))


#: The grid's forms (``dispatch.schemas.TRANSITION_FORMS``) and what success says.
SAID = {
    "accept": "已接单",
    "check-in": "现场核查已记录",
    "contact": "已记录联系诉求人情况",
    "finish": "工单已办结",
    "escalate": "已上报，工单已交回单位承办人办理",
}


@page_for(*GRID_ROLES)
def act(number, action):
    if action not in SAID:
        abort(404)
    form = schemas.TRANSITION_FORMS[action]
    db = get_session()
    ticket = visible_ticket_or_abort(db, number)

    def change(db):
        values = schemas.parse_transition(db, g.user, form, request.form, page=True)
        if form.photos:
            values["photos"] = form.read_photos(request.files.getlist("photos"))
        return form.operation(db, g.user, ticket, **values)

    def refused(error):
        message = error.message
        if form.photos and attachments.sent(request.files.getlist("photos")):
            message += PHOTOS_AGAIN
        typed = {k: v for k, v in request.form.items() if k != "csrf_token"}
        return _render_ticket(
            db, ticket, error=message, action=action, values=typed, status=error.status
        )

    done, event = web.perform(change, refused=refused)
    if not done:
        return event
    message = SAID[action]
    if action == "accept" and event.payload.get("signed"):
        message += "，并已代表本单位签收"
    if action == "finish" and event.payload.get("review"):
        message = "工单已办结，办理结果待热线审核后发送诉求人"
    if action == "check-in" and event.payload.get("distance_m"):
        message += f"（定位距网格约 {event.payload['distance_m']:.0f} 米）"
    flash(message, "notice")
    if action in ("finish", "escalate"):
        return redirect(url_for("grid.grid_page"), 303)
    return redirect(url_for("grid.ticket_page", number=ticket.number), 303)


# -- 主动发现 -----------------------------------------------------------------------------------


def _render_report(db, *, values=None, error=None, status=200):
    values = dict(values or {})
    values.setdefault("key", uuid.uuid4().hex)
    return render_template(
        "grid_report.html",
        grids=g.user.grids,
        request_types=list(RequestType),
        urgencies=list(Urgency),
        values=values,
        error=error,
    ), status


@page_for(*GRID_ROLES)
def report():
    """主动发现: a problem the worker found on patrol, with photos, becomes a ticket (channel
    网格主动发现) that goes to the dispatcher like any other."""
    db = get_session()
    user = g.user
    if request.method == "GET":
        return _render_report(db)
    typed = {k: v for k, v in request.form.items() if k != "csrf_token"}

    def change(db):
        values = schemas.report_values(db, user, request.form)
        photos = attachments.check(request.files.getlist("photos"), required=True)
        key = values.pop("key")
        digest = operations.request_digest(
            {**typed, "photos": [p.sha256 for p in photos], "csrf_token": None}
        )
        return operations.receive(
            db,
            user,
            channel=Channel.grid,
            idempotency_key=key,
            digest=digest,
            photos=photos,
            **values,
        )

    def refused(error):
        message = error.message
        if error.code == "IDEMPOTENCY_KEY_REUSED":
            # Back button after a report, then edited: this is a new report, so a new key.
            typed.pop("key", None)
            message = "此表单已提交过一次；如要上报另一个问题，请核对内容后再次提交"
        if attachments.sent(request.files.getlist("photos")):
            message += PHOTOS_AGAIN
        return _render_report(db, values=typed, error=message, status=error.status)

    done, result = web.perform(change, refused=refused)
    if not done:
        return result
    ticket, created = result
    if created:
        flash(f"已上报，工单编号 {ticket.number}，将由热线派单", "notice")
    else:
        flash(f"该问题已上报过（工单编号 {ticket.number}），未重复创建", "notice")
    return redirect(url_for("grid.ticket_page", number=ticket.number), 303)
