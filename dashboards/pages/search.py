"""The search page (工单查询): every role finds the tickets it may see by number, phone,
words, received dates, status, category, area, lead unit and overdue, newest first, page by
page; supervisors and leaders download the result as a spreadsheet.

The query arguments are those of ``GET /api/v1/tickets``, read by the same parser
(``dispatch.filters.ticket_query``) within the same scope (``dispatch.access``), so a search
here and the same query string on the API find the same tickets. People choose status,
category, area and unit by name; the form sends their codes.
"""

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, g, render_template, request, url_for

from dashboards import ticket_export
from dispatch import access, schemas
from dispatch.deadlines import deadline_state
from dispatch.filters import PHONE_SEARCH_ROLES, ticket_query
from dispatch.states import IN_HANDLING
from hotline import web
from hotline.db import get_session, utcnow
from hotline.enums import AreaLevel, Role, TicketStatus, UnitKind
from hotline.errors import HotlineError
from hotline.models import Area, Category, Unit
from hotline.schemas import Page
from hotline.web import page_for

PAGE_SIZE = 50
EXPORT_ROLES = ticket_export.EXPORT_ROLES
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
        total, tickets = page.of(db, query, *ticket_export.ORDER, options=schemas.TICKET_OPTIONS)
    return _render(db, errors, total=total, tickets=tickets, page=page)


@page_for(*EXPORT_ROLES)
def export():
    """The whole result (every page) as an XLSX workbook (``ticket_export``); a refusal
    (too many rows, bad filters) is the search page with its message."""
    db = get_session()
    try:
        result = ticket_export.export_tickets(
            db, g.user, request.args, now=utcnow(), timezone=current_app.config["TIMEZONE"]
        )
    except HotlineError as exc:
        db.rollback()
        return _render(db, exc.details if exc.code == "VALIDATION_FAILED" else {"": exc.message})
    db.commit()
    response = Response(result.data, mimetype=ticket_export.XLSX_MIMETYPE)
    response.headers["Content-Disposition"] = f'attachment; filename="{result.filename}"'
    return response


def _query(errors):
    return ticket_query(
        request.args,
        g.user,
        now=utcnow(),
        timezone=current_app.config["TIMEZONE"],
        errors=errors,
    )


def _render(db, errors, *, total=0, tickets=(), page=None):
    user = g.user
    now = utcnow()
    options = _options(db, user)
    filters = ticket_export.filters_of(request.args)
    page = page or Page(1, PAGE_SIZE)
    rows = [
        {
            "ticket": t,
            "phone": access.visible_phone(user, t.requester_phone, t.number),
            "deadline": finish_deadline(t, now),
        }
        for t in tickets
    ]
    messages = [(FIELDS.get(name, ""), message) for name, message in errors.items()]
    return render_template(
        "search.html",
        args=request.args,
        filters=filters,
        conditions=ticket_export.conditions(db, filters),
        options=options,
        statuses=list(TicketStatus),
        may_search_phone=user.role in PHONE_SEARCH_ROLES,
        may_export=user.role in EXPORT_ROLES,
        export_max=ticket_export.EXPORT_MAX_ROWS,
        errors=errors,
        messages=messages,
        rows=rows,
        total=total,
        page=page.number,
        pages=page.count(total),
        page_url=lambda n: url_for("search.search_page", **filters, page=n),
        # A grid worker works a ticket on their phone page; everyone else on the ticket page.
        ticket_endpoint="grid.ticket_page" if user.role == Role.grid_worker else "desk.ticket_page",
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
    }


def _paths(rows):
    """{code: "parent › child"} of rows whose codes nest by prefix."""
    names = {r.code: r.name for r in rows}
    paths = {}
    for code, name in names.items():
        parents = [names[code[:n]] for n in range(1, len(code)) if code[:n] in names]
        paths[code] = " › ".join([*parents, name])
    return paths
