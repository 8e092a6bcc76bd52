"""办结审核 as the JSON API and the pages read and write it: the queue's filters and items, the
live reply check's body and the per-category rule's fields (``dispatch.reply_review`` holds
the rules; the approve and return forms are ``dispatch.schemas``' transition forms)."""

from flask import url_for

from classifier import reply_quality
from dispatch import access
from dispatch.reply_review import WHY_LABELS
from dispatch.schemas import RESULT_MAX
from hotline.enums import ReviewMode, Role
from hotline.models import Category, Unit
from hotline.schemas import Fields, coded, iso, labelled, lookup_code

#: Who may ask for the live check of a reply: those who write replies and those who review.
CHECKERS = frozenset({Role.unit_handler, Role.grid_worker, Role.supervisor})


def queue_filters(db, args, errors):
    """``category`` and ``unit`` codes of the queue's query string (rows, or None)."""
    fields = Fields({k: args.get(k) for k in ("category", "unit") if args.get(k)})
    category = lookup_code(
        db, fields, "category", Category, "事项分类", fields.code("category", "事项分类")
    )
    unit = lookup_code(db, fields, "unit", Unit, "承办单位", fields.code("unit", "承办单位"))
    errors.update(fields.errors)
    return category, unit


def check_reply(ticket, data):
    """The automatic check of a reply being typed for ``ticket`` (not stored)."""
    fields = Fields(data)
    result = fields.text("result", "办理结果", required=True, multiline=True, max_len=RESULT_MAX)
    fields.check()
    return reply_quality.assess(result, ticket.content or "", ticket.title or "")


def assessment_of(event):
    """The automatic check stored with a finish event ({poor, score, reasons}), or None."""
    return ((event.payload or {}) if event is not None else {}).get("reply_quality")


def queue_item(ticket, event, actor, now, review_due=None):
    """One reply waiting for review, as the API lists it; ``review_due`` is when its 审核时限
    ends (``reply_review.review_due``): ``review_late`` once it has passed."""
    payload = (event.payload or {}) if event is not None else {}
    return {
        "number": ticket.number,
        "version": ticket.version,
        "title": ticket.title,
        "content": ticket.content,
        "category": coded(ticket.category),
        "area": coded(ticket.area),
        "lead_unit": coded(ticket.lead_unit),
        "requester_phone": access.visible_phone(actor, ticket.requester_phone, ticket.number),
        "result": ticket.result,
        "finished_at": iso(ticket.finished_at),
        "finish_due": iso(ticket.finish_due),
        "late": bool(payload.get("late")),
        "waiting_seconds": int((now - ticket.finished_at).total_seconds())
        if ticket.finished_at
        else None,
        "review_due": iso(review_due),
        "review_late": review_due is not None and now > review_due,
        "reply_quality": assessment_of(event),
        "review_why": {
            "code": payload.get("review_why"),
            "label": WHY_LABELS.get(payload.get("review_why"), ""),
        },
        "photos_url": url_for("desk.ticket_page", number=ticket.number, _anchor="photos"),
    }


def rule_values(db, fields):
    """The fields of one category's rule: ``category`` (code), ``mode`` (or "default" /
    empty to remove the rule) and ``sample_percent``."""
    category = lookup_code(
        db,
        fields,
        "category",
        Category,
        "事项分类",
        fields.code("category", "事项分类", required=True),
    )
    raw_mode = fields.raw("mode")
    mode = None
    if raw_mode not in (None, "", "default"):
        mode = fields.choice("mode", "审核方式", ReviewMode, required=True)
    percent = None
    if mode == ReviewMode.sample:
        percent = fields.integer(
            "sample_percent", "抽样比例", required=True, minimum=1, maximum=100
        )
    fields.check()
    return {"category": category, "mode": mode, "sample_percent": percent}


def rule_to_dict(row, category):
    return {
        "category": coded(category),
        "mode": labelled(row.mode),
        "sample_percent": row.sample_percent,
        "updated_at": iso(row.updated_at),
        "updated_by": row.updated_by.name if row.updated_by else None,
    }
