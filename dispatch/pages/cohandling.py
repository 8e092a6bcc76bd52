"""协同办理 on the ticket page: the assisting units' parts and the report form (协办反馈), the
split form (拆单) for the operator and the dispatcher, and the links between a split call and
its child tickets. The desk's ticket page includes ``_cohandling.html`` (and the finish form
``_assists_note.html``); this blueprint gives them what to show and takes their posts.

Views parse (``dispatch.cohandling_schemas``), call ``dispatch.cohandling``, commit and
redirect; a refused post re-renders the ticket page with the message and what was typed.
"""

from flask import Blueprint, abort, flash, g, redirect, request, url_for

from dispatch import access, cohandling
from dispatch import cohandling_schemas as schemas
from dispatch.pages import visible_ticket_or_abort
from dispatch.pages.desk import render_ticket, units_by_kind
from dispatch.states import TRANSITIONS
from hotline import attachments, web
from hotline.db import get_session
from hotline.enums import Role, TicketStatus
from hotline.web import page_for


def create_blueprint():
    bp = Blueprint("cohandling_pages", __name__, template_folder="templates")
    bp.add_url_rule("/tickets/<number>/assist-report", view_func=report, methods=["POST"])
    bp.add_url_rule("/tickets/<number>/split", view_func=split, methods=["POST"])
    bp.add_app_template_global(cohandling_view)
    return bp


def cohandling_view(ticket):
    """What the ticket page shows of co-handling for the current user."""
    db = get_session()
    user = g.user
    children = cohandling.children_of(db, ticket)
    linked = [t.number for t in children] + ([ticket.parent.number] if ticket.parent else [])
    can_split = (
        user.role in TRANSITIONS["split"].roles
        and ticket.status in TRANSITIONS["split"].from_states
    )
    assists = cohandling.assist_rows(db, ticket)
    return {
        "assists": assists,
        "missing": [r for r in assists if r.current and r.state != cohandling.REPORTED],
        "can_report": cohandling.reportable(user, ticket),
        "parent": ticket.parent,
        "part": _part(db, ticket) if ticket.parent else None,
        "children": children,
        "visible": access.visible_numbers(db, user, linked),
        "can_split": can_split,
        "dispatching": user.role == Role.dispatcher,
        "units": units_by_kind(db) if can_split else [],
        "rows": cohandling.MAX_CHILDREN,
        "split_status": TicketStatus.split,
    }


def _part(db, ticket):
    """Which matter of its parent ``ticket`` is (1, 2 …)."""
    numbers = [t.number for t in cohandling.children_of(db, ticket.parent)]
    return numbers.index(ticket.number) + 1 if ticket.number in numbers else None


@page_for(Role.unit_handler)
def report(number):
    attachments.allow_upload()
    db = get_session()
    ticket = visible_ticket_or_abort(db, number)

    def change(db):
        values = schemas.report_values(db, g.user, request.form, page=True)
        values["photos"] = attachments.check(request.files.getlist("photos"))
        return cohandling.report_assist(db, g.user, ticket, **values)

    return _perform(db, number, change, "report_assist", "协办反馈已提交")


@page_for(Role.operator, Role.dispatcher)
def split(number):
    db = get_session()
    ticket = visible_ticket_or_abort(db, number)

    def change(db):
        values = schemas.split_values(db, g.user, request.form, page=True)
        return cohandling.split(db, g.user, ticket, **values)

    return _perform(db, number, change, "split", "已拆分为子工单")


def _perform(db, number, change, name, done_message):
    def refused(error):
        refreshed = access.visible_ticket(db, g.user, number) if number else None
        if refreshed is None:
            abort(404)
        return render_ticket(db, refreshed, error=error, form=request.form, failed_action=name)

    done, _ = web.perform(change, refused=refused)
    if not done:
        return _
    flash(f"工单 {number}：{done_message}")
    return redirect(url_for("desk.ticket_page", number=number))
