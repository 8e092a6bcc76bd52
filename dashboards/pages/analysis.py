"""The 民情分析 report pages (HTML): a period's report with charts and tables, the summary,
publishing with an edited summary, the XLSX file, and a layout that prints (or saves as PDF)
cleanly on A4.

The figures are ``dashboards.analysis``'s dict, the same the JSON API serves
(``dashboards.api.analysis``); the charts are drawn by ``static/analysis.js`` with ECharts
(served from node_modules by the boards' ``vendor`` route) and copied to images for print.
Leaders, supervisors and administrators read it (a district leader their district's, live);
the publish form is offered by ``analysis.may_publish``, the rule ``analysis.publish`` follows,
and a refused publish (``web.perform``) shows the report again with the message and the
summary as typed.
"""

import io

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)

from dashboards import access, analysis, exports, schemas
from dashboards.pages import district_choices
from hotline import web
from hotline.db import get_session, utcnow
from hotline.enums import ReportPeriod
from hotline.errors import HotlineError
from hotline.web import page_for

VIEW_ROLES = access.ANALYSIS_ROLES
#: Lines of a long table shown on the page (the XLSX file has every line).
PAGE_LINES = 20
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def create_blueprint():
    bp = Blueprint(
        "analysis_reports",
        __name__,
        url_prefix="/reports/analysis",
        template_folder="templates",
        static_folder="static",
        static_url_path="/static",
    )
    bp.add_url_rule("", view_func=report_page)
    bp.add_url_rule("/<kind>/<key>/publish", view_func=publish, methods=["POST"])
    bp.add_url_rule("/<kind>/<key>.xlsx", view_func=download)
    bp.register_error_handler(HotlineError, _refused)
    web.add_to_menu(bp, "report_page", "民情分析", VIEW_ROLES)
    return bp


def _refused(exc):
    return render_template("analysis_error.html", error=exc), exc.status


def _timezone():
    return current_app.config["TIMEZONE"]


def _request(kind=None, key=None):
    now = utcnow()
    period, scope = schemas.analysis_request(
        g.user, request.args, kind=kind, key=key, now=now, timezone=_timezone()
    )
    return now, period, scope


def _charts(report):
    """What the charts draw, from the report's figures."""
    series = report["series"]
    quality = report["quality"]["by_category1"]
    # A longer previous period's last days are drawn too, by their number.
    extra = range(len(series["labels"]), len(series["previous"]))
    return {
        "trend": {
            "labels": series["labels"] + [f"第{i + 1}天" for i in extra],
            "current": series["current"],
            "previous": series["previous"],
            "current_name": "本期",
            "previous_name": report["previous"]["name"],
        },
        "channel": [
            {"name": r["name"], "value": r["count"]} for r in report["breakdowns"]["channel"]
        ],
        "category": [
            {"name": r["name"], "current": r["count"], "previous": r["previous"]}
            for r in report["breakdowns"]["category1"][:12]
        ],
        "area": [
            {"name": r["name"], "current": r["count"], "previous": r["previous"]}
            for r in report["breakdowns"]["area"][:16]
        ],
        "quality": [
            {
                "name": r["name"],
                "resolution": r["rates"]["resolution_rate"],
                "satisfaction": r["rates"]["satisfaction_rate"],
            }
            for r in quality
            if r["counts"]["rated"]
        ][:12],
        "keywords": [
            {"name": k["word"], "current": k["count"], "previous": k["previous"]}
            for k in report["keywords"]["rows"]
        ],
    }


@page_for(*VIEW_ROLES)
def report_page():
    """A period's report; without one asked for, the last quarter that has ended."""
    now, period, scope = _request()
    return _render(now, period, scope)


def _render(now, period, scope, *, error=None, typed_summary=None, status=200):
    """The report page; after a refused publish, with the Chinese message and the summary
    as it was typed."""
    db = get_session()
    report = analysis.load(db, period, scope=scope, now=now)
    timezone = _timezone()
    options = analysis.picker(period.kind, now, timezone)
    if period.key not in {p.key for p in options}:
        options = sorted([*options, period], key=lambda p: p.first, reverse=True)
    current = analysis.period_of(period.kind, analysis.local_today(now, timezone), timezone)
    following = period.following()
    html = render_template(
        "analysis.html",
        r=report,
        period=period,
        scope=scope,
        kinds=list(ReportPeriod),
        options=options,
        current_key=current.key,
        previous_key=period.previous().key,
        following_key=following.key if following.first <= current.first else None,
        districts=district_choices(g.user),
        charts=_charts(report),
        may_publish=analysis.may_publish(db, g.user, period, scope=scope, now=now),
        error=error,
        typed_summary=typed_summary,
        status=exports.analysis_status(report, timezone),
        lines=PAGE_LINES,
        breakdowns=exports.ANALYSIS_BREAKDOWNS,
        summary_max=analysis.SUMMARY_MAX,
    )
    return html, status


@page_for(*VIEW_ROLES)
def publish(kind, key):
    period = analysis.parse_period(kind, key, _timezone())
    summary = request.form.get("summary")
    now = utcnow()

    def change(db):
        return analysis.publish(db, g.user, period, summary=summary, now=now)

    def refused(exc):
        scope = access.analysis_scope(g.user, None)
        return _render(now, period, scope, error=exc, typed_summary=summary, status=exc.status)

    done, result = web.perform(change, refused=refused)
    if not done:
        return result
    flash(f"{period.label}{period.kind.label}已发布，数据已冻结")
    return redirect(url_for(".report_page", kind=period.kind.value, key=period.key))


@page_for(*VIEW_ROLES)
def download(kind, key):
    now, period, scope = _request(kind, key)
    report = analysis.load(get_session(), period, scope=scope, now=now)
    data = io.BytesIO()
    exports.write_analysis_xlsx(report, data, timezone=_timezone())
    response = Response(data.getvalue(), mimetype=XLSX_MIMETYPE)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{exports.analysis_filename(report)}"'
    )
    return response
