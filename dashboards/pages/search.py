"""The search page (工单查询): every role finds the tickets it may see by number, phone,
words, received dates, status, category, area, lead unit and overdue, newest first, page by
page; supervisors and leaders download the result as a spreadsheet.

The query arguments are those of ``GET /api/v1/tickets``, read by the same parser
(``dispatch.filters.ticket_query``) within the same scope (``dispatch.access``), so a search
here and the same query string on the API find the same tickets. People choose status,
category, area and unit by name; the form sends their codes.
"""

import io

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, g, render_template, request, url_for

from dashboards import exports
from dispatch import access, schemas
from dispatch.deadlines import deadline_state
from dispatch.filters import PHONE_SEARCH_ROLES, ticket_query
from dispatch.states import IN_HANDLING
from hotline import web
from hotline.audit import audit
from hotline.db import get_session, utcnow
from hotline.enums import AreaLevel, Role, TicketStatus, UnitKind
from hotline.models import Area, Category, Ticket, Unit
from hotline.schemas import Page
from hotline.web import page_for

PAGE_SIZE = 50
#: Who may download a result: supervisors and leaders (a district leader: their district's).
EXPORT_ROLES = (Role.supervisor, Role.leader)
#: Most rows one download holds; a larger result is refused with a message to narrow it.
EXPORT_MAX_ROWS = 10_000
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: The search form's fields (query arguments of ``ticket_query``) and their Chinese names.
FIELDS = {
    "number": "工单编号",
    "q": "关键词",
    "phone": "联系电话",
    "received_from": "受理日期（起）",
    "received_to": "受理日期（止）",
    "status": "状态",
    "category": "事项分类",
    "area": "区域",
    "unit": "主办单位",
    "overdue": "超期",
    "page": "页码",
}
#: Area levels offered in the area select (grids are found through their community).
_AREA_LEVELS = (AreaLevel.district, AreaLevel.street, AreaLevel.community)
_ORDER = (Ticket.received_at.desc(), Ticket.id.desc())


def create_blueprint():
    bp = Blueprint(
        "search",
        __name__,
        template_folder="templates",
        static_folder="static",
        static_url_path="/search/static",
    )
    bp.add_url_rule("/search", view_func=search_page)
    bp.add_url_rule("/search/export.xlsx", view_func=export)
    web.add_to_menu(bp, "search_page", "工单查询", set(Role))
    return bp


@page_for(*Role)
def search_page():
    db = get_session()
    errors = {}
    query = _query(errors)
    page = Page.from_args(request.args, size=PAGE_SIZE, errors=errors)
    total, tickets = 0, []
    if not errors:
        total, tickets = page.of(db, query, *_ORDER, options=schemas.TICKET_OPTIONS)
    return _render(db, errors, total=total, tickets=tickets, page=page)


@page_for(*EXPORT_ROLES)
def export():
    """The whole result (every page) as an XLSX workbook, audited; refused beyond
    ``EXPORT_MAX_ROWS``."""
    db = get_session()
    errors = {}
    query = _query(errors)
    if errors:
        return _render(db, errors)
    total = db.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    if total > EXPORT_MAX_ROWS:
        message = (
            f"查询结果共 {total:,} 件，超过一次导出的上限 {EXPORT_MAX_ROWS:,} 件，"
            "请缩小受理日期范围或增加查询条件后再导出"
        )
        return _render(db, {"export": message})
    tickets = db.scalars(
        query.options(*schemas.TICKET_OPTIONS).order_by(*_ORDER).limit(EXPORT_MAX_ROWS)
    ).all()
    options = _options(db, g.user)
    conditions = _conditions(request.args, options)
    now = utcnow()
    audit(
        db,
        g.user,
        "tickets.export",
        target="search",
        payload={"filters": _filters(request.args), "rows": len(tickets)},
    )
    db.commit()
    data = io.BytesIO()
    exports.write_ticket_list(
        tickets,
        data,
        phone=lambda t: access.visible_phone(g.user, t.requester_phone),
        conditions=conditions,
        now=now,
        timezone=current_app.config["TIMEZONE"],
    )
    response = Response(data.getvalue(), mimetype=XLSX_MIMETYPE)
    stamp = exports.local_stamp(now, current_app.config["TIMEZONE"])
    response.headers["Content-Disposition"] = f'attachment; filename="tickets-{stamp}.xlsx"'
    return response


def _query(errors):
    return ticket_query(
        request.args,
        g.user,
        now=utcnow(),
        timezone=current_app.config["TIMEZONE"],
        errors=errors,
    )


def _filters(args):
    """The filters asked for (blank fields and the page number left out)."""
    return {name: args[name] for name in FIELDS if name != "page" and args.get(name)}


def _render(db, errors, *, total=0, tickets=(), page=None):
    user = g.user
    now = utcnow()
    options = _options(db, user)
    filters = _filters(request.args)
    page = page or Page(1, PAGE_SIZE)
    rows = [
        {
            "ticket": t,
            "phone": access.visible_phone(user, t.requester_phone),
            "deadline": finish_deadline(t, now),
        }
        for t in tickets
    ]
    messages = [(FIELDS.get(name, ""), message) for name, message in errors.items()]
    return render_template(
        "search.html",
        args=request.args,
        filters=filters,
        conditions=_conditions(request.args, options),
        options=options,
        statuses=list(TicketStatus),
        may_search_phone=user.role in PHONE_SEARCH_ROLES,
        may_export=user.role in EXPORT_ROLES,
        export_max=EXPORT_MAX_ROWS,
        errors=errors,
        messages=messages,
        rows=rows,
        total=total,
        page=page.number,
        pages=page.count(total),
        page_url=lambda n: url_for("search.search_page", **filters, page=n),
    ), (400 if errors else 200)


def finish_deadline(ticket, now):
    """The finish deadline as it stands (办结时限: overdue in red), by the pages' one rule."""
    return deadline_state(
        ticket.finish_due,
        warn_at=None,
        done_at=ticket.finished_at,
        now=now,
        stopped=ticket.status not in IN_HANDLING,
    )


# -- the names in the selects -------------------------------------------------------------


def _options(db, user):
    """(code, name) of the categories, areas and units the selects offer; names are whole
    paths (城乡建设 › 市政设施 › 路灯) so a name that repeats under two parents is told apart."""
    categories = db.execute(
        sa.select(Category.code, Category.name).where(Category.active).order_by(Category.code)
    ).all()
    area_query = sa.select(Area.code, Area.name, Area.level).where(Area.level.in_(_AREA_LEVELS))
    if user.role == Role.leader and user.district_id is not None:
        district = db.scalar(sa.select(Area.code).where(Area.id == user.district_id))
        area_query = area_query.where(Area.code.startswith(district, autoescape=True))
    areas = db.execute(area_query.order_by(Area.code)).all()
    units = db.execute(
        sa.select(Unit.code, Unit.name, Unit.kind)
        .where(Unit.active, Unit.kind != UnitKind.hotline_centre)
        .order_by(Unit.code)
    ).all()
    order = {kind: i for i, kind in enumerate(UnitKind)}
    by_kind = {}
    for unit in sorted(units, key=lambda u: (order[u.kind], u.code)):
        by_kind.setdefault(unit.kind, []).append((unit.code, unit.name))
    return {
        "category": _paths(categories),
        "area": _paths(areas),
        "unit_groups": [(kind.label, rows) for kind, rows in by_kind.items()],
        "unit": {code: name for rows in by_kind.values() for code, name in rows},
    }


def _paths(rows):
    """{code: "parent › child"} of rows whose codes nest by prefix."""
    names = {r.code: r.name for r in rows}
    paths = {}
    for code, name in names.items():
        parents = [names[code[:n]] for n in range(1, len(code)) if code[:n] in names]
        paths[code] = " › ".join([*parents, name])
    return paths


def _conditions(args, options):
    """The filters in words, for the page's summary and the workbook's subtitle."""
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
        labels = [TicketStatus.parse(s) for s in args["status"].split(",")]
        words.append(("状态", "、".join(s.label for s in labels if s is not None)))
    for name, label in (("category", "事项分类"), ("area", "区域"), ("unit", "主办单位")):
        if args.get(name):
            words.append((label, options[name].get(args[name], args[name])))
    if args.get("overdue") == "1":
        words.append(("超期", "仅超期未办结"))
    return words
