"""The ranking for programs, under /api/v1 (bearer token or session): the month's ranking
as JSON, freezing it, and rates for any period. Same roles as the report pages."""

from flask import Blueprint, current_app, g

from dashboards import exports, ranking, report
from hotline.api import commit, iso, ok
from hotline.api.auth import require_role
from hotline.db import get_session, utcnow
from hotline.errors import Forbidden

bp = Blueprint("rankings", __name__)


def _require_viewer():
    require_role(
        report.VIEW_ROLES, "只有领导、督办审核员和管理员可以查看考核排名", code="RANKING_FORBIDDEN"
    )


@bp.get("/rankings/<month>")
def get_ranking(month):
    _require_viewer()
    return ok(exports.ranking_to_dict(report.load(month)))


@bp.post("/rankings/<month>/freeze")
def freeze_ranking(month):
    _require_viewer()
    if not report.may_freeze(g.user):
        raise Forbidden(
            "只有市政府办公室领导和管理员可以冻结发布排名", code="RANKING_FREEZE_FORBIDDEN"
        )
    db = get_session()
    result = ranking.freeze(db, g.user, month, now=utcnow(), config=current_app.config)
    commit()
    return ok(exports.ranking_to_dict(result), 201)


@bp.get("/rates")
def get_rates():
    _require_viewer()
    period = report.rates_period()
    settings = ranking.Settings.from_config(current_app.config)
    rows = ranking.period_rates(
        get_session(), period["start"], period["end"], utcnow(), settings, period["by"]
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
