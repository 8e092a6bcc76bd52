"""导出查询结果: the whole result of a ticket search (every page, newest first) as an XLSX
workbook, for supervisors and leaders, within the reader's scope, audited. The search page
(``dashboards.pages.search``) and the JSON API (``GET /api/v1/tickets/export.xlsx``) both
call ``export_tickets``; the filters are those of the ticket list (``dispatch.filters``).
"""

import io
from dataclasses import dataclass

import sqlalchemy as sa

from dashboards import exports
from dispatch import access, schemas
from dispatch.filters import ticket_query
from hotline.audit import audit
from hotline.enums import Role, TicketStatus
from hotline.errors import Forbidden, ValidationFailed
from hotline.models import Area, Category, Ticket, Unit
from hotline.schemas import check_query

#: Who may download a result: supervisors and leaders (a district leader: their district's).
EXPORT_ROLES = frozenset({Role.supervisor, Role.leader})
#: Most rows one download holds; a larger result is refused with a message to narrow it.
EXPORT_MAX_ROWS = 10_000
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: The filters a search may use (``ticket_query``'s arguments), in the order they are named.
FILTERS = (
    "number",
    "q",
    "phone",
    "received_from",
    "received_to",
    "status",
    "category",
    "area",
    "unit",
    "overdue",
    "channel",
    "request_type",
    "urgency",
    "escalation_level",
)
ORDER = (Ticket.received_at.desc(), Ticket.id.desc())


@dataclass(frozen=True)
class Export:
    data: bytes
    rows: int
    filename: str


def filters_of(args):
    """The filters asked for in ``args`` (blank fields, pages and anything else left out)."""
    return {name: args[name] for name in FILTERS if args.get(name)}


def export_tickets(session, actor, args, *, now, timezone):
    """The tickets ``actor`` may see that match ``args``, as a workbook; an audit row records
    who exported what. Refused (nothing written) for other roles, bad filters and results
    above ``EXPORT_MAX_ROWS``."""
    if actor.role not in EXPORT_ROLES:
        raise Forbidden("只有督办审核员和领导可以导出工单", code="EXPORT_FORBIDDEN")
    filters = filters_of(args)
    errors = {}
    query = ticket_query(filters, actor, now=now, timezone=timezone, errors=errors)
    check_query(errors)
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    if total > EXPORT_MAX_ROWS:
        raise ValidationFailed(
            f"查询结果共 {total:,} 件，超过一次导出的上限 {EXPORT_MAX_ROWS:,} 件，"
            "请缩小受理日期范围或增加查询条件后再导出",
            code="EXPORT_TOO_LARGE",
            details={"total": total, "max_rows": EXPORT_MAX_ROWS},
        )
    tickets = session.scalars(
        query.options(*schemas.TICKET_OPTIONS).order_by(*ORDER).limit(EXPORT_MAX_ROWS)
    ).all()
    audit(session, actor, "tickets.export", payload={"filters": filters, "rows": len(tickets)})
    data = io.BytesIO()
    exports.write_ticket_list(
        tickets,
        data,
        phone=lambda t: access.visible_phone(actor, t.requester_phone, t.number),
        conditions=conditions(session, filters),
        now=now,
        timezone=timezone,
    )
    stamp = exports.local_stamp(now, timezone)
    return Export(data.getvalue(), len(tickets), f"tickets-{stamp}.xlsx")


def conditions(session, args):
    """The filters in words, names not codes: [(label, value)] for a page's summary and the
    workbook's subtitle."""
    words = []
    if args.get("number"):
        words.append(("工单编号", args["number"].strip()))
    if args.get("q"):
        words.append(("关键词", args["q"].strip()))
    if args.get("phone"):
        words.append(("联系电话", args["phone"].strip()))
    start, end = args.get("received_from"), args.get("received_to")
    if start or end:
        words.append(("受理日期", f"{start or '不限'} 至 {end or '不限'}"))
    if args.get("status"):
        statuses = [TicketStatus.parse(s) for s in args["status"].split(",")]
        words.append(("状态", "、".join(s.label for s in statuses if s is not None)))
    for name, label, model in (
        ("category", "事项分类", Category),
        ("area", "区域", Area),
        ("unit", "主办单位", Unit),
    ):
        if args.get(name):
            found = session.scalar(sa.select(model.name).where(model.code == args[name]))
            words.append((label, found or args[name]))
    if args.get("overdue") == "1":
        words.append(("超期", "仅超期未办结"))
    return words
