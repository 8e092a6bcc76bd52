"""The ranking for programs, under /api/v1 (bearer token or session): the month's ranking
as JSON, freezing it, and rates for any period (same roles as the report pages); a ticket
search's whole result as XLSX (``dashboards.ticket_export``, as the search page); and the
outlines the live boards draw their maps with (same viewers as the boards); the ranking's
settings (考核设置: readers of the ranking read them, administrators change them)."""

from flask import Blueprint, Response, current_app, g, request

from dashboards import access, exports, maps, ranking, schemas, scoring, ticket_export
from hotline import openapi
from hotline.api import commit, ok
from hotline.api.auth import require_role
from hotline.db import get_session, utcnow
from hotline.errors import Forbidden, NotFound
from hotline.schemas import iso, json_body


def create_blueprint():
    bp = Blueprint("rankings", __name__)
    bp.add_url_rule("/rankings/<month>", view_func=get_ranking)
    bp.add_url_rule("/rankings/<month>/freeze", view_func=freeze_ranking, methods=["POST"])
    bp.add_url_rule("/rates", view_func=get_rates)
    bp.add_url_rule("/settings/ranking", view_func=get_ranking_settings)
    bp.add_url_rule("/settings/ranking", view_func=update_ranking_settings, methods=["PATCH"])
    bp.add_url_rule("/tickets/export.xlsx", view_func=export_tickets)
    bp.add_url_rule("/boards/city/map", view_func=city_map)
    bp.add_url_rule("/boards/district/<code>/map", view_func=district_map)
    return bp


def _require_viewer():
    require_role(
        access.RANKING_ROLES,
        "只有领导、督办审核员和管理员可以查看考核排名",
        code="RANKING_FORBIDDEN",
    )


def get_ranking(month):
    _require_viewer()
    result = ranking.load(get_session(), month, now=utcnow(), config=current_app.config)
    return ok(exports.ranking_to_dict(result))


def freeze_ranking(month):
    _require_viewer()
    if not access.may_freeze(g.user):
        raise Forbidden(
            "只有市政府办公室领导和管理员可以冻结发布排名", code="RANKING_FREEZE_FORBIDDEN"
        )
    db = get_session()
    result = ranking.freeze(db, g.user, month, now=utcnow(), config=current_app.config)
    commit()
    return ok(exports.ranking_to_dict(result), 201)


def get_rates():
    _require_viewer()
    now = utcnow()
    timezone = current_app.config["TIMEZONE"]
    period = schemas.rates_period(
        request.args, today=schemas.local_today(now, timezone), timezone=timezone
    )
    settings = ranking.Settings.from_settings(get_session())
    rows = ranking.period_rates(
        get_session(), period["start"], period["end"], now, settings, period["by"]
    )
    return ok(
        {
            "from": period["from"].isoformat(),
            "to": period["to"].isoformat(),
            "period": {"start": iso(period["start"]), "end": iso(period["end"])},
            "by": period["by"],
            "settings": settings.as_dict(),
            "rows": [
                {"code": code, "name": name, "counts": counts, "rates": rates}
                for code, name, counts, rates in rows
            ],
        }
    )


def _settings_answer(db):
    return {"settings": scoring.describe(db), "history": _history(db)}


def _history(db):
    return [
        {
            "at": iso(entry["at"]),
            "by": entry["by"],
            "username": entry["username"],
            "changes": [
                {"label": label, "old": old, "new": new} for label, old, new in entry["changes"]
            ],
        }
        for entry in scoring.history(db)
    ]


def get_ranking_settings():
    """The ranking's settings in force (each with its label, help, default and bounds) and
    the history of their changes."""
    require_role(scoring.READ_ROLES, "“{role}”角色无权查看考核设置")
    return ok(_settings_answer(get_session()))


def update_ranking_settings():
    """Change some settings, ``{"weight_response": 20, …}``; applied from the next
    computation (a frozen month keeps its own)."""
    scoring.require_editor(g.user)
    data = json_body()
    db = get_session()
    changed = scoring.update(db, g.user, data)
    commit()
    return ok({"changed": changed, **_settings_answer(db)})


@openapi.answers(openapi.FILE, media=ticket_export.XLSX_MIMETYPE)
def export_tickets():
    """The tickets matching the ticket list's filters (``GET /api/v1/tickets``), all of them
    up to ``EXPORT_MAX_ROWS``, as an XLSX file; supervisors and leaders only, audited."""
    db = get_session()
    result = ticket_export.export_tickets(
        db, g.user, request.args, now=utcnow(), timezone=current_app.config["TIMEZONE"]
    )
    commit()
    response = Response(result.data, mimetype=ticket_export.XLSX_MIMETYPE)
    response.headers["Content-Disposition"] = f'attachment; filename="{result.filename}"'
    return response


def _board_map(room, district):
    require_role(access.BOARD_ROLES, "“{role}”角色无权查看实时大屏", code="BOARD_FORBIDDEN")
    if not access.may_watch(g.user, room):
        raise Forbidden("无权查看该看板的地图", code="BOARD_FORBIDDEN", details={"room": room})
    outline = maps.outlines(get_session(), district)
    if outline is None:
        raise NotFound(f"没有编码为 {district} 的区县", code="DISTRICT_NOT_FOUND")
    return ok(outline, headers={"Cache-Control": "private, max-age=300"})


def city_map():
    """The city's districts (GeoJSON), for the city board's map."""
    return _board_map(access.CITY, None)


def district_map(code):
    """One district's streets (GeoJSON), for its board's map."""
    return _board_map(access.district_room(code), code)
