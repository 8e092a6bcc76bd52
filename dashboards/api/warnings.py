"""Early warnings (预警) for programs, under /api/v1: the list with its filters, one warning
with its evidence tickets, and acknowledging one (``dashboards.warnings.acknowledge``).
Supervisors, leaders (a district leader: their district's), dispatchers and administrators
read them; supervisors and leaders acknowledge."""

from flask import Blueprint, current_app, g, request

from dashboards import warning_schemas, warnings
from hotline.api import commit, ok
from hotline.api.auth import require_role
from hotline.db import get_session, utcnow
from hotline.schemas import json_body


def create_blueprint():
    bp = Blueprint("warnings", __name__)
    bp.add_url_rule("/warnings", view_func=list_warnings)
    bp.add_url_rule("/warnings/<id:warning_id>", view_func=get_warning)
    bp.add_url_rule(
        "/warnings/<id:warning_id>/acknowledge", view_func=acknowledge, methods=["POST"]
    )
    return bp


def _require_viewer():
    require_role(
        warnings.VIEW_ROLES,
        "“{role}”角色无权查看预警",
        code="WARNING_FORBIDDEN",
    )


def list_warnings():
    """``kind``, ``state``, ``district``, ``from``, ``to``, ``page``, ``per_page``; newest first."""
    _require_viewer()
    filters = warning_schemas.list_filters(
        request.args, g.user, timezone=current_app.config["TIMEZONE"]
    )
    total, rows = warning_schemas.list_page(get_session(), filters, g.user)
    return ok(
        {
            "warnings": [warning_schemas.warning_to_dict(w, g.user) for w in rows],
            **filters["page"].to_dict(total),
        }
    )


def get_warning(warning_id):
    _require_viewer()
    db = get_session()
    warning = warnings.visible(db, g.user, warning_id)
    tickets, hidden = warning_schemas.evidence(db, warning, g.user)
    return ok(
        {
            **warning_schemas.warning_to_dict(warning, g.user),
            "tickets": tickets,
            # Evidence tickets outside the reader's scope (a district leader's: other districts').
            "tickets_hidden": hidden,
        }
    )


def acknowledge(warning_id):
    """``{"note": "…"}`` (optional): 确认预警, once."""
    _require_viewer()
    db = get_session()
    warning = warnings.visible(db, g.user, warning_id)
    note = warning_schemas.acknowledge_note(json_body() if request.get_data() else {})
    warnings.acknowledge(db, g.user, warning, note, now=utcnow(), config=current_app.config)
    commit()
    return ok(warning_schemas.warning_to_dict(warning, g.user))
