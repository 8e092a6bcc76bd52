"""Unit inboxes (站内消息): SLA warnings, 催办, 督办 and callback tasks for a unit's staff.

Everyone reads their own unit's inbox. The hotline centre's staff share its inbox (callback
tasks, level-1 督办); a leader reads the mayor's office inbox, or their district government's
when bound to a district. Supervisors and administrators may open any unit's inbox with
``?unit=CODE``. Items name the ticket but carry no personal data.

The header's message centre on every page reads ``/inbox/summary`` (always the caller's own
inbox) and marks items read here (``/inbox/<id>/read``, ``/inbox/read-all``).
"""

import sqlalchemy as sa
from flask import Blueprint, current_app, g, request

from hotline import notify, schemas
from hotline.api import commit, ok
from hotline.cache import reference_rows
from hotline.db import get_session
from hotline.enums import Role
from hotline.errors import Forbidden, NotFound, ValidationFailed
from hotline.models import Notification, Ticket, Unit
from hotline.schemas import json_body

#: Roles that may read another unit's inbox.
OVERSEER_ROLES = {Role.supervisor, Role.admin}
#: Items the header's message centre lists.
SUMMARY_ITEMS = 8


def create_blueprint():
    bp = Blueprint("inbox", __name__)
    bp.add_url_rule("/inbox", view_func=list_inbox)
    bp.add_url_rule("/inbox/summary", view_func=summary)
    bp.add_url_rule("/inbox/<id:item_id>/read", view_func=mark_read, methods=["POST"])
    bp.add_url_rule("/inbox/read-all", view_func=mark_all_read, methods=["POST"])
    return bp


def _unit_by_code(db, code):
    unit = reference_rows.get(
        db, ("unit", code), lambda s: s.scalars(sa.select(Unit).where(Unit.code == code)).first()
    )
    if unit is None:
        raise NotFound(f"单位“{code}”不存在", code="UNIT_NOT_FOUND")
    return unit


def _inbox_unit(db):
    """The unit whose inbox the caller reads."""
    code = request.args.get("unit")
    if code:
        unit = _unit_by_code(db, code)
        if g.user.role in OVERSEER_ROLES or unit.id == getattr(_own_unit(db), "id", None):
            return unit
        raise Forbidden("只能查看本单位的消息", code="INBOX_NOT_YOURS")
    unit = _own_unit(db)
    if unit is None:
        raise ValidationFailed("请用 unit 参数指定要查看的单位", details={"unit": "必填"})
    return unit


def _own_unit(db):
    return notify.inbox_unit_of(db, g.user, current_app.config["MAYORS_OFFICE_UNIT"])


def _item(n, number):
    return schemas.inbox_item(n, number, current_app.config["TIMEZONE"])


def list_inbox():
    """Newest first; ``unread=1`` for unread only, ``level=red|yellow|info``, ``before=<id>``
    to page back."""
    db = get_session()
    unit = _inbox_unit(db)
    errors = {}
    filters = schemas.inbox_filters(request.args, errors)
    schemas.check_query(errors)
    limit = current_app.config["DEFAULT_PAGE_SIZE"]
    rows = db.execute(
        notify.inbox_query(unit.id, **filters).order_by(Notification.id.desc()).limit(limit)
    ).all()
    return ok(
        {
            "unit": {"code": unit.code, "name": unit.name},
            "unread": notify.unread_count(db, unit.id),
            "items": [_item(n, number) for n, number in rows],
        }
    )


def summary():
    """What the header's message centre shows: the caller's own inbox's unread count and its
    newest ``SUMMARY_ITEMS`` items (read or not). Two indexed queries: pages ask on every
    change of the inbox and, without a live connection, every 15 seconds."""
    db = get_session()
    unit = _own_unit(db)
    if unit is None:
        raise Forbidden("您没有本单位的消息", code="INBOX_NOT_YOURS")
    rows = db.execute(
        notify.inbox_query(unit.id).order_by(Notification.id.desc()).limit(SUMMARY_ITEMS)
    ).all()
    return ok(
        {
            "unit": {"code": unit.code, "name": unit.name},
            "unread": notify.unread_count(db, unit.id),
            "items": [_item(n, number) for n, number in rows],
        }
    )


def mark_read(item_id):
    """Mark one item of the caller's own inbox read (again is fine: the first reader and
    time are kept). Overseers looking into another unit's inbox do not mark it read."""
    db = get_session()
    item = db.get(Notification, item_id)
    if item is None:
        raise NotFound("消息不存在", code="NOTIFICATION_NOT_FOUND")
    if notify.mark_read(db, g.user, item, _own_unit(db)):
        commit()
    number = db.scalar(sa.select(Ticket.number).where(Ticket.id == item.ticket_id))
    return ok(_item(item, number))


def mark_all_read():
    """全部已读: every unread item of the caller's own inbox, up to ``up_to`` (JSON body,
    optional: the newest item id the reader was shown). Answers how many changed and the
    unread count left."""
    db = get_session()
    fields = schemas.Fields(json_body() if request.get_data(cache=True) else {})
    up_to = fields.integer("up_to", "消息编号", minimum=1, maximum=2**31 - 1)
    fields.check()
    unit = _own_unit(db)
    changed = notify.mark_all_read(db, g.user, unit, up_to=up_to)
    if changed:
        commit()
    return ok({"marked": changed, "unread": notify.unread_count(db, unit.id)})
