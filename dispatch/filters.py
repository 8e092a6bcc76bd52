"""Filters of ticket lists: the query arguments a client may send and the WHERE conditions
they mean. The JSON API's ticket list reads them; a page listing tickets reads the same.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dispatch import access, sla
from hotline.enums import Channel, RequestType, TicketStatus, Urgency
from hotline.models import Area, Category, Ticket, Unit

#: The enum filters: query argument → (enum, column).
_CHOICES = {
    "channel": (Channel, Ticket.channel),
    "request_type": (RequestType, Ticket.request_type),
    "urgency": (Urgency, Ticket.urgency),
}


def like_pattern(text):
    """``text`` as a LIKE pattern matching it anywhere, its own % and _ taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"


def ticket_query(args, actor, *, now, timezone, errors):
    """A query of the tickets ``actor`` may see that match the filters in ``args``. Each bad
    argument is recorded in ``errors`` (the caller refuses the request with all of them).

    - ``status``: comma-separated statuses; ``channel``, ``request_type``, ``urgency``;
    - ``category``, ``area``: code prefixes (a category or area and everything under it);
    - ``unit``: the lead unit's code; ``phone``: the requester's phone;
    - ``overdue=1``: still with a unit after the finish deadline (``sla.overdue``);
    - ``escalation_level``: 督办 at least this level (1–3);
    - ``received_from``, ``received_to``: ISO 8601 dates or moments (local time when no zone
      is given), the upper bound excluded;
    - ``q``: words in the title or the content.
    """
    query = access.scoped(sa.select(Ticket), actor)
    if args.get("status"):
        statuses = [TicketStatus.parse(s) for s in args["status"].split(",")]
        if None in statuses:
            errors["status"] = "状态取值无效"
        else:
            query = query.where(Ticket.status.in_(statuses))
    for name, (enum_cls, column) in _CHOICES.items():
        if args.get(name):
            member = enum_cls.parse(args[name])
            if member is None:
                errors[name] = "取值无效"
            else:
                query = query.where(column == member)
    if args.get("category"):
        codes = sa.select(Category.id).where(
            Category.code.startswith(args["category"], autoescape=True)
        )
        query = query.where(Ticket.category_id.in_(codes))
    if args.get("area"):
        codes = sa.select(Area.id).where(Area.code.startswith(args["area"], autoescape=True))
        query = query.where(Ticket.area_id.in_(codes))
    if args.get("unit"):
        query = query.where(
            Ticket.lead_unit_id.in_(sa.select(Unit.id).where(Unit.code == args["unit"]))
        )
    if args.get("phone"):
        query = query.where(Ticket.requester_phone == args["phone"])
    if args.get("overdue") == "1":
        query = query.where(sla.overdue(now))
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
            moment = _moment(args[name], name, timezone, errors)
            if moment is not None:
                query = query.where(getattr(Ticket.received_at, op)(moment))
    if args.get("q"):
        pattern = like_pattern(args["q"])
        query = query.where(
            sa.or_(
                Ticket.title.like(pattern, escape="\\"), Ticket.content.like(pattern, escape="\\")
            )
        )
    return query


def _moment(raw, name, timezone, errors):
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        errors[name] = "日期格式应为 ISO 8601，如 2026-11-01 或 2026-11-01T08:00:00+08:00"
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    try:
        moment.astimezone(dt.UTC)  # 0001-01-01 or 9999-12-31 may leave the calendar in UTC
    except OverflowError:
        errors[name] = "日期超出范围"
        return None
    return moment
