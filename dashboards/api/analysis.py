"""The 民情分析 reports for programs, under /api/v1 (bearer token or session): a period's report
as JSON (the same dict the report page shows, ``dashboards.analysis``), publishing it, and
the same report as XLSX. Readers: ``access.ANALYSIS_ROLES`` (a district leader gets their
district's report, live); publishers: ``access.may_publish_analysis``."""

import io

from flask import Blueprint, Response, current_app, g, request

from dashboards import access, analysis, exports, schemas
from hotline import openapi
from hotline.api import commit, ok
from hotline.api.auth import require_role
from hotline.db import get_session, utcnow
from hotline.errors import ValidationFailed
from hotline.schemas import json_body

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def create_blueprint():
    bp = Blueprint("analysis", __name__)
    bp.add_url_rule("/analysis/<kind>", view_func=get_report)
    bp.add_url_rule("/analysis/<kind>/<key>", view_func=get_report)
    bp.add_url_rule("/analysis/<kind>/<key>/publish", view_func=publish, methods=["POST"])
    bp.add_url_rule("/analysis/<kind>/<key>/report.xlsx", view_func=download)
    return bp


def _require_reader():
    require_role(
        access.ANALYSIS_ROLES,
        "只有领导、督办审核员和管理员可以查看民情分析报告",
        code="ANALYSIS_FORBIDDEN",
    )


def _report(kind, key):
    _require_reader()
    now = utcnow()
    period, scope = schemas.analysis_request(
        g.user, request.args, kind=kind, key=key, now=now, timezone=current_app.config["TIMEZONE"]
    )
    return analysis.load(get_session(), period, scope=scope, now=now)


def get_report(kind, key=None):
    """``GET /analysis/quarterly/2026-Q4?district=370705``; without a key, the last period
    of that kind that has ended."""
    return ok(_report(kind, key))


def publish(kind, key):
    """Publish the city's report of a period that has ended, ``{"summary": "…"}`` (optional:
    the generated paragraph when absent)."""
    _require_reader()
    data = json_body() if request.get_data(cache=True) else {}
    if not isinstance(data, dict):
        raise ValidationFailed("请求体须为 JSON 对象", details={"body": "须为对象"})
    period = analysis.parse_period(kind, key, current_app.config["TIMEZONE"])
    summary = data.get("summary")
    if summary is not None and not isinstance(summary, str):
        raise ValidationFailed("摘要须为文字", details={"summary": "须为字符串"})
    report = analysis.publish(get_session(), g.user, period, summary=summary, now=utcnow())
    commit()
    return ok(report, 201)


@openapi.answers(openapi.FILE, media=XLSX_MIMETYPE)
def download(kind, key):
    report = _report(kind, key)
    data = io.BytesIO()
    exports.write_analysis_xlsx(report, data, timezone=current_app.config["TIMEZONE"])
    response = Response(data.getvalue(), mimetype=XLSX_MIMETYPE)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{exports.analysis_filename(report)}"'
    )
    return response
