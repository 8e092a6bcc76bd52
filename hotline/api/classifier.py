"""Classifier endpoints: live suggestions, model versions, acceptance of suggestions."""

import datetime as dt

from flask import Blueprint, current_app, g, request

import hotline.acceptance
from hotline import model_versions, openapi, suggestions
from hotline.api import ok
from hotline.api.auth import require_role
from hotline.db import get_session
from hotline.enums import Role
from hotline.errors import Conflict, ValidationFailed
from hotline.schemas import ADDRESS_MAX, Fields, json_body

#: Who may ask for suggestions while typing up a request.
SUGGEST_ROLES = {Role.operator, Role.dispatcher, Role.grid_worker, Role.supervisor}
#: Who may read how often suggestions are accepted.
REPORT_ROLES = {Role.dispatcher, Role.supervisor, Role.leader, Role.admin}


def create_blueprint():
    bp = Blueprint("classifier", __name__)
    bp.add_url_rule("/suggest", view_func=suggest, methods=["POST"])
    bp.add_url_rule("/classifier/models", view_func=list_models)
    bp.add_url_rule(
        "/classifier/models/<version>/activate", view_func=activate_model, methods=["POST"]
    )
    bp.add_url_rule("/classifier/acceptance", view_func=acceptance)
    return bp


def _suggest_values(data):
    fields = Fields(data)
    content = fields.content()
    address = fields.text("address", "地址", max_len=ADDRESS_MAX)
    lng, lat = fields.position()
    fields.check()
    return content, address, lng, lat


@openapi.body(_suggest_values)
def suggest():
    """What the classifier makes of a text being typed in: category, type, urgency, place,
    units; with ``sealed_at`` and ``seal``, so that ``POST /api/v1/tickets`` may be sent the
    whole object back as ``suggestion`` for the same text (then not classified again)."""
    require_role(SUGGEST_ROLES)
    content, address, lng, lat = _suggest_values(json_body())
    result = suggestions.service().suggest(
        get_session(), content, address=address, lng=lng, lat=lat, release=True
    )
    if result is None:
        raise Conflict("尚未启用分类模型，请管理员先训练并启用", code="NO_ACTIVE_MODEL")
    # Signed, so that creating the ticket can hand it back instead of computing it again.
    return ok(suggestions.sealed(result, content, address=address, lng=lng, lat=lat))


def list_models():
    """The registered versions (``hotline.model_versions``), the active one marked, and the
    latest switches."""
    require_role(REPORT_ROLES)
    db = get_session()
    active = model_versions.active_version(db)
    items = []
    for row in model_versions.versions(db):
        meta = row.meta or {}
        items.append(
            {
                "version": row.version,
                "active": row.version == active,
                "created_at": meta.get("created_at"),
                "source": meta.get("source"),
                "training_rows": meta.get("training_rows"),
                "metrics": {k: meta.get("metrics", {}).get(k) for k in ("accuracy", "macro_f1")},
            }
        )
    switches = [
        {
            "version": row.version,
            "previous": row.previous,
            "reason": row.reason,
            "activated_at": row.activated_at.isoformat(),
        }
        for row in model_versions.activations(db, limit=20)
    ]
    return ok({"active": active, "models": items, "activations": switches})


def activate_model(version):
    """Switch every server process on every host to ``version`` (each notices within
    seconds); an optional JSON ``{"reason": …}`` is kept with the switch (a rollback says
    why)."""
    reason = None
    if request.content_length:
        fields = Fields(json_body())
        reason = fields.text("reason", "原因", max_len=model_versions.REASON_MAX)
        fields.check()
    db = get_session()
    previous = model_versions.activate(db, g.user, version, reason=reason)
    db.commit()
    suggestions.service().active.recheck()
    return ok({"active": version, "previous": previous})


def acceptance():
    """How often the values finally chosen equal what the classifier suggested at intake,
    over tickets received in [from, to) (local dates; default the last 30 days); the rule is
    ``hotline.acceptance``'s."""
    require_role(REPORT_ROLES)
    start, end = _period()
    rates = hotline.acceptance.period_rates(get_session(), start, end)
    return ok({"from": start.isoformat(), "to": end.isoformat(), **rates})


def _period():
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(current_app.config["TIMEZONE"])
    errors = {}

    def day(name, default):
        raw = request.args.get(name)
        if not raw:
            return default
        try:
            return dt.datetime.combine(dt.date.fromisoformat(raw), dt.time(), tzinfo=tz)
        except ValueError:
            errors[name] = "日期格式应为 YYYY-MM-DD"
            return default

    today = dt.datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    end = day("to", today + dt.timedelta(days=1))
    start = day("from", end - dt.timedelta(days=30))
    if errors:
        raise ValidationFailed(f"查询条件有误：{next(iter(errors.values()))}", details=errors)
    return start, end
