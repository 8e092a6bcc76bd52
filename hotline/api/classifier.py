"""Classifier endpoints: live suggestions, model versions, acceptance of suggestions."""

import datetime as dt

import sqlalchemy as sa
from flask import Blueprint, current_app, g, request
from sqlalchemy.orm import aliased

from hotline import model_versions, openapi, suggestions
from hotline.api import ok
from hotline.api.auth import require_role
from hotline.db import get_session
from hotline.enums import Role
from hotline.errors import Conflict, ValidationFailed
from hotline.models import Area, Category, Ticket, Unit
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
    over tickets received in [from, to) (local dates; default the last 30 days)."""
    require_role(REPORT_ROLES)
    start, end = _period()
    lead = aliased(Unit)
    rows = (
        get_session()
        .execute(
            sa.select(
                Ticket.suggestion,
                Category.code,
                # An area filled in from the suggestion is no one's choice: not counted.
                sa.case((Ticket.area_source == "suggested", None), else_=Area.code),
                lead.code,
                Ticket.request_type,
                Ticket.urgency,
            )
            .outerjoin(Category, Ticket.category_id == Category.id)
            .outerjoin(Area, Ticket.area_id == Area.id)
            .outerjoin(lead, Ticket.lead_unit_id == lead.id)
            .where(
                Ticket.suggestion.is_not(None),
                Ticket.received_at >= start,
                Ticket.received_at < end,
            )
        )
        .all()
    )
    return ok({"from": start.isoformat(), "to": end.isoformat(), **acceptance_rates(rows)})


def acceptance_rates(rows):
    """Per field: tickets where both a suggestion and a final value exist, and how many agree.

    A category counts as accepted when the chosen code is the suggested one or below it in the
    tree (the model suggests second-level codes, agents may pick a third-level one); an area
    likewise; a unit when the lead unit is the first suggested."""
    counts = {name: [0, 0, 0] for name in ("category", "area", "unit", "request_type", "urgency")}

    def tally(name, final, suggested, in_top=None):
        if final is None or not suggested:
            return
        counts[name][0] += 1
        counts[name][1] += final.startswith(suggested[0])
        counts[name][2] += any(final.startswith(s) for s in (in_top or suggested[:1]))

    for suggestion, category, area, unit, request_type, urgency in rows:
        if not suggestion:  # a JSON null passes the SQL "IS NOT NULL" filter
            continue
        top = [c["code"] for c in suggestion.get("category", {}).get("top", [])]
        if suggestion.get("category", {}).get("abstain"):
            top = top[:0]
        tally("category", category, top, top[:3])
        place = (suggestion.get("area") or {}).get("code")
        tally("area", area, [place] if place else [])
        units = [u["code"] for u in suggestion.get("units", [])]
        tally("unit", unit, units, units[:3])
        tally("request_type", request_type and request_type.value, [suggestion.get("request_type")])
        tier = (suggestion.get("urgency") or {}).get("tier")
        tally("urgency", urgency and urgency.value, [tier] if tier else [])
    return {
        name: {
            "tickets": n,
            "accepted": accepted,
            "rate": round(accepted / n, 4) if n else None,
            "in_top3": in_top,
        }
        for name, (n, accepted, in_top) in counts.items()
    }


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
