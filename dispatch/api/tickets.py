"""Ticket endpoints of the JSON API: create (= receive), list, read, and one POST per transition.

Views parse and serialise (``dispatch.schemas``, ``dispatch.filters``); every rule lives in
``dispatch.operations``.
"""

from flask import Blueprint, current_app, g, request

from dispatch import access, operations, routing, schemas
from dispatch.filters import ticket_query
from hotline import openapi
from hotline.api import commit, ok
from hotline.db import get_session, utcnow
from hotline.errors import ValidationFailed
from hotline.models import Area, Category, Ticket
from hotline.schemas import (
    Fields,
    Page,
    by_code,
    check_query,
    coded,
    idempotency_key_header,
    json_body,
)


def create_blueprint():
    bp = Blueprint("tickets", __name__)
    bp.add_url_rule("/tickets", view_func=create_ticket, methods=["POST"])
    bp.add_url_rule("/tickets", view_func=list_tickets)
    bp.add_url_rule("/tickets/<number>", view_func=get_ticket)
    bp.add_url_rule("/routing/suggest", view_func=suggest_unit)
    for form in schemas.JSON_TRANSITIONS:
        bp.add_url_rule(
            f"/tickets/<number>/{form.slug}",
            endpoint=form.slug,
            view_func=_transition_view(form),
            methods=["POST"],
        )
    return bp


@openapi.body(lambda data: schemas.intake_values(None, Fields(data)))
@openapi.creates(number="$response.body#/data/number")
def create_ticket():
    """受理: create a ticket. Send ``Idempotency-Key`` so a retry never makes a second one."""
    db = get_session()
    operations.check_role("receive", g.user)
    data = json_body()
    key = idempotency_key_header()
    values = schemas.intake_values(db, Fields(data))
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
    return ok(schemas.ticket_to_dict(ticket, g.user), 201 if created else 200, headers)


def list_tickets():
    """Tickets the caller may see, newest first, with filters (``dispatch.filters``) and
    pagination."""
    db = get_session()
    config = current_app.config
    errors = {}
    query = ticket_query(
        request.args, g.user, now=utcnow(), timezone=config["TIMEZONE"], errors=errors
    )
    page = Page.from_args(
        request.args,
        size=config["DEFAULT_PAGE_SIZE"],
        size_arg="per_page",
        max_size=config["MAX_PAGE_SIZE"],
        errors=errors,
    )
    check_query(errors)
    total, rows = page.of(
        db, query, Ticket.received_at.desc(), Ticket.id.desc(), options=schemas.TICKET_OPTIONS
    )
    return ok({"items": [schemas.ticket_to_dict(t, g.user) for t in rows], **page.to_dict(total)})


def get_ticket(number):
    db = get_session()
    ticket = access.visible_ticket(db, g.user, number)
    return ok(schemas.ticket_detail(db, ticket, g.user))


def suggest_unit():
    """The unit to dispatch ``category`` at ``area`` to (``routing.dispatch_unit``: the
    catalogue's, else the place's own; never the hotline centre)."""
    db = get_session()
    if not request.args.get("category"):
        raise ValidationFailed("请提供事项分类 category", details={"category": "请提供事项分类"})
    category = by_code(db, Category, request.args["category"], "事项分类")
    area_code = request.args.get("area")
    area = by_code(db, Area, area_code, "区域") if area_code else None
    unit = routing.dispatch_unit(db, category, area)
    return ok({"unit": coded(unit)})


def _transition_view(form):
    def view(number):
        db = get_session()
        # Who may do it is settled before anything else is read: a role without the right
        # gets 403 whatever it sent.
        operations.check_role(form.name, g.user)
        data = json_body()
        ticket = access.visible_ticket(db, g.user, number)
        values = schemas.parse_transition(db, g.user, form, data)
        event = form.operation(db, g.user, ticket, **values)
        commit()
        body = schemas.ticket_to_dict(ticket, g.user)
        body["event"] = schemas.event_to_dict(event)
        return ok(body)

    describe = openapi.body(lambda data: schemas.transition_values(None, form, Fields(data)))
    return describe(view)
