"""协同办理 endpoints of the JSON API: an assisting unit's report (协办反馈), splitting a call
(拆单, idempotent with ``Idempotency-Key`` like creating a ticket) and what the lead reads of
both. Views parse and serialise (``dispatch.cohandling_schemas``); every rule lives in
``dispatch.cohandling``.
"""

from flask import Blueprint, g, request

from dispatch import access, cohandling, operations
from dispatch import cohandling_schemas as schemas
from dispatch.schemas import event_to_dict, ticket_to_dict
from hotline import attachments
from hotline.api import commit, ok
from hotline.db import get_session
from hotline.schemas import coded, form_values, idempotency_key_header, json_body


def create_blueprint():
    bp = Blueprint("cohandling", __name__)
    bp.add_url_rule("/tickets/<number>/assist-report", view_func=report, methods=["POST"])
    bp.add_url_rule("/tickets/<number>/split", view_func=split, methods=["POST"])
    bp.add_url_rule("/tickets/<number>/cohandling", view_func=overview)
    return bp


def report(number):
    """协办反馈: JSON ``{"report", "version"}``, or, with photos, the same fields as
    ``multipart/form-data`` with up to ``ATTACHMENT_MAX_FILES`` ``photos`` files (as the
    citizens' API takes them; checked as the page's uploads)."""
    db = get_session()
    operations.check_role("report_assist", g.user)
    multipart = request.mimetype == "multipart/form-data"
    if multipart:
        attachments.allow_upload()
        data = form_values(request.form, integers=("version",))
    else:
        data = json_body()
    ticket = access.visible_ticket(db, g.user, number)
    values = schemas.report_values(db, g.user, data)
    if multipart:
        values["photos"] = attachments.check(request.files.getlist("photos"))
    event = cohandling.report_assist(db, g.user, ticket, **values)
    commit()
    body = ticket_to_dict(ticket, g.user)
    body["event"] = event_to_dict(event)
    return ok(body)


def split(number):
    """拆单. Send ``Idempotency-Key`` so a retry returns the first split (200, replayed).

    A retry sent while the first is still being written (the two at once) is answered 409
    ``TICKET_VERSION_CONFLICT`` instead: only one split commits; send the retry again and it
    is the replay of that split."""
    db = get_session()
    operations.check_role("split", g.user)
    data = json_body()
    key = idempotency_key_header()
    ticket = access.visible_ticket(db, g.user, number)
    values = schemas.split_values(db, g.user, data)
    event, created = cohandling.split(
        db,
        g.user,
        ticket,
        idempotency_key=key,
        digest=operations.request_digest(data) if key else None,
        **values,
    )
    commit()
    headers = {} if created else {"Idempotent-Replayed": "true"}
    return ok(schemas.split_to_dict(db, ticket, g.user, event), 201 if created else 200, headers)


def overview(number):
    """The assisting units' parts and the split's parent or children of a ticket."""
    db = get_session()
    ticket = access.visible_ticket(db, g.user, number)
    return ok(
        {
            "number": ticket.number,
            "assists": [schemas.assist_to_dict(r) for r in cohandling.assist_rows(db, ticket)],
            "parent": ticket.parent.number if ticket.parent else None,
            "children": [schemas.child_to_dict(t) for t in cohandling.children_of(db, ticket)],
            "lead_unit": coded(ticket.lead_unit),
        }
    )
