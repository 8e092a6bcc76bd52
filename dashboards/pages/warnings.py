"""The early warnings pages (预警): the list with filters (kind, state, district, period) and
each warning's page with its counts against the expected level, its evidence tickets and
the acknowledge form.

Supervisors, leaders (a district leader: their district's only), dispatchers and
administrators (read only) see them; supervisors and leaders acknowledge
(``dashboards.warnings.acknowledge``). The filters and the serialised warning are the JSON
API's (``dashboards.warning_schemas``).
"""

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)

from dashboards import warning_schemas, warnings
from dashboards.pages import district_choices
from hotline import web
from hotline.db import get_session, utcnow
from hotline.enums import WarningKind, WarningState
from hotline.errors import HotlineError, NotFound
from hotline.models import EarlyWarning
from hotline.schemas import form_values
from hotline.web import page_for

VIEW_ROLES = tuple(warnings.VIEW_ROLES)


def create_blueprint():
    bp = Blueprint("warnings", __name__, template_folder="templates")
    bp.add_url_rule("/warnings", view_func=list_page)
    bp.add_url_rule("/warnings/<id:warning_id>", view_func=warning_page)
    bp.add_url_rule(
        "/warnings/<id:warning_id>/acknowledge", view_func=acknowledge, methods=["POST"]
    )
    web.add_to_menu(bp, "list_page", "预警", VIEW_ROLES)
    return bp


@page_for(*VIEW_ROLES)
def list_page():
    db = get_session()
    error, total, rows, filters = None, 0, [], None
    try:
        filters = warning_schemas.list_filters(
            request.args, g.user, timezone=current_app.config["TIMEZONE"]
        )
        total, rows = warning_schemas.list_page(db, filters, g.user)
    except HotlineError as exc:
        error = exc
    page = filters["page"] if filters else None
    return render_template(
        "warnings.html",
        error=error,
        warnings=[warning_schemas.warning_to_dict(w, g.user) for w in rows],
        total=total,
        page=page.number if page else 1,
        pages=page.count(total) if page else 1,
        args=request.args,
        kinds=list(WarningKind),
        states=list(WarningState),
        districts=district_choices(g.user),
        open_count=warning_schemas.open_count(db, g.user),
    ), (error.status if error else 200)


def _render(db, warning, error=None, note=None):
    tickets, hidden = warning_schemas.evidence(db, warning, g.user)
    return render_template(
        "warning.html",
        w=warning_schemas.warning_to_dict(warning, g.user),
        tickets=tickets,
        hidden=hidden,
        error=error,
        note=note,
    )


@page_for(*VIEW_ROLES)
def warning_page(warning_id):
    db = get_session()
    try:
        warning = warnings.visible(db, g.user, warning_id)
    except NotFound:
        abort(404)
    return _render(db, warning)


@page_for(*VIEW_ROLES)
def acknowledge(warning_id):
    db = get_session()
    try:
        warning = warnings.visible(db, g.user, warning_id)
    except NotFound:
        abort(404)

    def change(session):
        note = warning_schemas.acknowledge_note(form_values(request.form))
        return warnings.acknowledge(
            session, g.user, warning, note, now=utcnow(), config=current_app.config
        )

    def refused(exc):
        fresh = get_session().get(EarlyWarning, warning_id)
        return _render(get_session(), fresh, error=exc, note=request.form.get("note")), exc.status

    done, result = web.perform(change, refused=refused)
    if not done:
        return result
    flash(f"已确认预警：{warning.title}")
    return redirect(url_for("warnings.warning_page", warning_id=warning_id))
