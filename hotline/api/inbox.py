"""Unit inboxes (站内消息): SLA warnings, 催办, 督办 and callback tasks for a unit's staff.

Everyone reads their own unit's inbox. The hotline centre's staff share its inbox (callback
tasks, level-1 督办); a leader reads the mayor's office inbox, or their district government's
when bound to a district. Supervisors and administrators may open any unit's inbox with
``?unit=CODE``. Items name the ticket but carry no personal data.
"""

import sqlalchemy as sa
from flask import Blueprint, current_app, g, request

from hotline import notify
from hotline.api import commit, ok
from hotline.cache import reference_rows
from hotline.db import get_session
from hotline.enums import AlertLevel, Role
from hotline.errors import Forbidden, NotFound, ValidationFailed
from hotline.models import Notification, Ticket, Unit

#: Roles that may read another unit's inbox.
OVERSEER_ROLES = {Role.supervisor, Role.admin}


def create_blueprint():
    bp = Blueprint("inbox", __name__)
    bp.add_url_rule("/inbox", view_func=list_inbox)
    bp.add_url_rule("/inbox/<id:item_id>/read", view_func=mark_read, methods=["POST"])
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
    return {
        "id": n.id,
        "kind": n.kind,
        "level": {"value": n.level.value, "label": n.level.label},
        "title": n.title,
        "body": n.body,
        "ticket": number,
        "created_at": n.created_at.isoformat(),
        "read_at": n.read_at.isoformat() if n.read_at else None,
    }


def list_inbox():
    """Newest first; ``unread=1`` for unread only, ``level=red|yellow|info``, ``before=<id>``
    to page back."""
    db = get_session()
    unit = _inbox_unit(db)
    args = request.args
    query = (
        sa.select(Notification, Ticket.number)
        .outerjoin(Ticket, Ticket.id == Notification.ticket_id)
        .where(Notification.unit_id == unit.id)
    )
    errors = {}
    if args.get("unread") == "1":
        query = query.where(Notification.read_at.is_(None))
    if args.get("level"):
        level = AlertLevel.parse(args["level"])
        if level is None:
            errors["level"] = "级别应为 red、yellow 或 info"
        query = query.where(Notification.level == level)
    if args.get("before"):
        if not (args["before"].isascii() and args["before"].isdigit() and len(args["before"]) < 10):
            errors["before"] = "须为消息编号"
        else:
            query = query.where(Notification.id < int(args["before"]))
    limit = current_app.config["DEFAULT_PAGE_SIZE"]
    if errors:
        raise ValidationFailed(f"查询条件有误：{next(iter(errors.values()))}", details=errors)
    rows = db.execute(query.order_by(Notification.id.desc()).limit(limit)).all()
    unread = db.scalar(
        sa.select(sa.func.count()).where(
            Notification.unit_id == unit.id, Notification.read_at.is_(None)
        )
    )
    return ok(
        {
            "unit": {"code": unit.code, "name": unit.name},
            "unread": unread,
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
