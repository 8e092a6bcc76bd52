"""监察问责 for programs, under /api/v1 (bearer token or session): the month's cases with
their evidence and the month's referrals (supervisors and leaders; a district leader only
their district's units), and referring a case (supervisors). The rules and the referral are
``dashboards.accountability``'s, as on the pages."""

from flask import Blueprint, current_app, g

from dashboards import accountability, ranking
from hotline.api import commit, ok
from hotline.api.auth import require_role
from hotline.db import get_session
from hotline.schemas import json_body


def create_blueprint():
    bp = Blueprint("accountability_api", __name__)
    bp.add_url_rule("/accountability/<month>", view_func=get_cases)
    bp.add_url_rule("/accountability/<month>/referrals", view_func=get_referrals)
    bp.add_url_rule("/accountability/<month>/referrals", view_func=refer, methods=["POST"])
    return bp


def _require_viewer():
    require_role(accountability.VIEW_ROLES, "“{role}”角色无权查看监察问责")


def get_cases(month):
    _require_viewer()
    ranking.parse_month(month)
    cases = accountability.cases_for(get_session(), g.user, month, current_app.config["TIMEZONE"])
    return ok({"month": month, "cases": [accountability.case_dict(c) for c in cases]})


def get_referrals(month):
    _require_viewer()
    ranking.parse_month(month)
    rows = accountability.referrals_for(
        get_session(), g.user, month, current_app.config["TIMEZONE"]
    )
    return ok({"month": month, "referrals": rows})


def refer(month):
    """``{"unit": "U-CGJ", "kind": "shirking", "reason": "…"}`` → 201 with the referral, or
    200 with the same one on a retry (same supervisor, same reason)."""
    _require_viewer()
    data = json_body()
    db = get_session()
    unit = accountability.unit_by_code(db, data.get("unit"))
    referral, created = accountability.refer(
        db,
        g.user,
        month=month,
        unit=unit,
        kind=data.get("kind"),
        reason=data.get("reason"),
        timezone=current_app.config["TIMEZONE"],
    )
    commit()
    (row,) = [
        r
        for r in accountability.referrals(db, month, current_app.config["TIMEZONE"])
        if r["id"] == referral.id
    ]
    return ok(row, 201 if created else 200)
