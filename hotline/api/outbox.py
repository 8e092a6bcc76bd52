"""Notifications leaving the system in the JSON API, for administrators (``hotline.outbox``):
``GET /outbox`` (counts by state and the copies, filtered by state, channel, kind),
``POST /outbox/<id>/retry`` (a failed copy sent again), ``GET /notify-templates`` and
``PUT /notify-templates`` (``{kind: text}``; a template with an unknown placeholder or unpaired
braces is refused, naming it)."""

from flask import Blueprint, g, request

from hotline import outbox
from hotline.api import commit, ok
from hotline.api.auth import require_role
from hotline.db import get_session
from hotline.enums import Role
from hotline.schemas import Page, check_query, json_body

PAGE_SIZE = 50
PAGE_MAX = 200


def create_blueprint():
    bp = Blueprint("outbox", __name__)
    bp.add_url_rule("/outbox", view_func=list_copies)
    bp.add_url_rule("/outbox/<id:copy_id>/retry", view_func=retry, methods=["POST"])
    bp.add_url_rule("/notify-templates", view_func=get_templates)
    bp.add_url_rule("/notify-templates", view_func=put_templates, methods=["PUT"])
    return bp


def _require_admin():
    require_role({Role.admin}, "“{role}”角色无权管理通知发送")


def list_copies():
    """The counts by state and the copies matching ``state``, ``channel``, ``kind``, newest
    first, ``page`` by page (``per_page`` up to 200); recipients masked."""
    _require_admin()
    db = get_session()
    errors = {}
    found = outbox.OutboxFilter.from_args(request.args, errors)
    page = Page.from_args(
        request.args, size=PAGE_SIZE, size_arg="per_page", max_size=PAGE_MAX, errors=errors
    )
    check_query(errors)
    total, rows = outbox.page_of(db, found, page)
    return ok(
        {
            "counts": {state.value: n for state, n in outbox.counts(db).items()},
            "items": [outbox.copy_to_dict(copy, number) for copy, number in rows],
            **page.to_dict(total),
        }
    )


def retry(copy_id):
    _require_admin()
    db = get_session()
    copy = outbox.retry(db, g.user, outbox.get(db, copy_id))
    commit()
    return ok(outbox.copy_to_dict(copy, copy.ticket.number if copy.ticket else None))


def get_templates():
    _require_admin()
    return ok({"items": [t.to_dict() for t in outbox.templates(get_session())]})


def put_templates():
    """Change any of the templates: ``{kind: text}``. Answers every template and the setting
    keys changed."""
    _require_admin()
    db = get_session()
    changed = outbox.update_templates(db, g.user, json_body())
    commit()
    return ok({"items": [t.to_dict() for t in outbox.templates(db)], "changed": sorted(changed)})
