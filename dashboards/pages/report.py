"""The mayor's office monthly report (HTML): the four rankings with charts, definitions,
exemptions, downloads, freezing, and a drill-down from every count to its tickets.

Leaders, supervisors and administrators read it; a district leader drills down only into
their own district's units. Freezing (publishing) is for the mayor's office (a leader with
no district) and administrators.
"""

import io

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)

from dashboards import access, accountability, exports, ranking, schemas
from dispatch.access import visible_numbers
from hotline import web
from hotline.db import get_session, utcnow
from hotline.enums import RankingClass
from hotline.errors import HotlineError, ValidationFailed
from hotline.schemas import Page
from hotline.web import page_for

VIEW_ROLES = access.RANKING_ROLES
PAGE_SIZE = 200
#: Charts show every ranked unit of a class up to this many, else the top and bottom halves.
CHART_UNITS = 30


def create_blueprint():
    bp = Blueprint("reports", __name__, url_prefix="/reports", template_folder="templates")
    bp.add_url_rule("/ranking", view_func=ranking_page)
    bp.add_url_rule("/ranking/<month>/freeze", view_func=freeze, methods=["POST"])
    bp.add_url_rule("/ranking/<month>.<fmt>", view_func=download)
    bp.add_url_rule("/ranking/<month>/units/<code>", view_func=drill_down)
    bp.add_url_rule("/rates", view_func=rates_page)
    bp.register_error_handler(HotlineError, _refused)
    bp.add_app_template_filter(percent, "pct")
    bp.add_app_template_filter(score, "score")
    bp.add_app_template_filter(ranking.month_label, "month_label")
    web.add_to_menu(bp, "ranking_page", "月度排名", VIEW_ROLES)
    web.add_to_menu(bp, "rates_page", "三率查询", VIEW_ROLES)
    return bp


def _today():
    return schemas.local_today(utcnow(), current_app.config["TIMEZONE"])


def load(month, with_previous=True):
    return ranking.load(
        get_session(), month, now=utcnow(), config=current_app.config, with_previous=with_previous
    )


def _refused(exc):
    return render_template("report_error.html", error=exc), exc.status


@page_for(*VIEW_ROLES)
def ranking_page():
    """A month's ranking; without one asked for, last month if it has data, else this
    month so far (and the page says which, and why)."""
    db = get_session()
    now = utcnow()
    timezone = current_app.config["TIMEZONE"]
    month = request.args.get("month")
    opened = None
    if not month:
        month, last, last_has_data = ranking.default_month(db, now, timezone)
        opened = {"last": last, "last_has_data": last_has_data}
    result = load(month)
    exempted = result.exemptions
    months = ranking.months_until(db, now, timezone)
    if month not in months:
        months = sorted([*months, month], reverse=True)
    current = ranking.month_of(now, timezone)
    return render_template(
        "ranking.html",
        r=result,
        month=month,
        opened=opened,
        months=months,
        current=current,
        previous=ranking.previous_month(month),
        following=_following(month) if month < current else None,
        classes=list(RankingClass),
        charts={c: _chart(result.ranked(c)) for c in RankingClass},
        definitions=ranking.DEFINITIONS,
        labels=ranking.LABELS,
        may_freeze=access.may_freeze(g.user),
        openable=visible_numbers(get_session(), g.user, [e.get("ticket") for e in exempted]),
        month_over=utcnow() >= result.period_end,
    )


def _following(month):
    year, number = ranking.parse_month(month)
    return f"{year + 1}-01" if number == 12 else f"{year}-{number + 1:02d}"


def _chart(rows):
    """Bars of the composite score: every ranked unit, or the top and bottom of a long class."""
    if len(rows) > CHART_UNITS:
        half = CHART_UNITS // 2
        rows = rows[:half] + rows[-half:]
    return [
        {
            "label": f"{row.rank}. {row.unit_name}",
            "value": row.rates["composite"],
            "mark": row.list_mark.value if row.list_mark else "",
        }
        for row in rows
    ]


@page_for(*VIEW_ROLES)
def freeze(month):
    if not access.may_freeze(g.user):
        abort(403)
    db = get_session()
    ranking.freeze(db, g.user, month, now=utcnow(), config=current_app.config)
    db.commit()
    return redirect(url_for("reports.ranking_page", month=month))


@page_for(*VIEW_ROLES)
def download(month, fmt):
    """The ranking as JSON, CSV or Excel. The JSON and the workbook carry the month's
    referrals to discipline inspection that the user may read on the referral page (a
    district leader their district's, an administrator none), as they stood when a frozen
    month was frozen; the CSV is the one table of unit lines."""
    result = load(month)
    state = "frozen" if result.frozen_at else "live"
    name = f"ranking-{month}-{state}.{fmt}"
    timezone = current_app.config["TIMEZONE"]
    if fmt not in ("json", "csv", "xlsx"):
        abort(404)
    referrals = accountability.referrals_for(
        get_session(), g.user, month, timezone, until=result.frozen_at
    )
    if fmt == "json":
        response = current_app.json.response(exports.ranking_to_dict(result, referrals))
    elif fmt == "csv":
        text = io.StringIO()
        exports.write_csv(result, text)
        response = Response(text.getvalue(), mimetype="text/csv")
        response.charset = "utf-8"
    else:
        data = io.BytesIO()
        exports.write_xlsx(result, data, timezone=timezone, referrals=referrals)
        response = Response(
            data.getvalue(),
            mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@page_for(*VIEW_ROLES)
def drill_down(month, code):
    """The tickets behind a unit's line (a district: its government and streets)."""
    ranking_class = RankingClass.parse(request.args.get("class", "")) or RankingClass.street
    fact = request.args.get("fact") or None
    if fact is not None and fact not in ranking.FACTS:
        raise ValidationFailed(f"未知的统计项“{fact}”", details={"fact": "未知的统计项"})
    page = Page.from_args(request.args, size=PAGE_SIZE)
    db = get_session()
    classes, members = ranking.ranked_units(db, current_app.config["MAYORS_OFFICE_UNIT"])
    unit = next((u for u in classes[ranking_class] if u.code == code), None)
    if unit is None:
        abort(404)
    member_ids = members[(ranking_class, unit.id)]
    if not access.may_see_units(g.user, ranking.unit_districts(db), member_ids):
        abort(403)
    result = load(month, with_previous=False)  # the page shows no month-over-month change
    row = next((r for r in result.rows[ranking_class] if r.unit_id == unit.id), None)
    live_counts = None
    if result.frozen_at is not None:
        start, end = result.period_start, result.period_end
        live = ranking.count_tickets(db, start, end, utcnow(), by="unit", unit_ids=member_ids)
        live_counts = ranking.add_counts(live.values())
    total, tickets = ranking.ticket_facts(
        db,
        result.period_start,
        result.period_end,
        utcnow(),
        member_ids,
        fact=fact,
        limit=page.size,
        offset=page.offset,
    )
    return render_template(
        "drill_down.html",
        r=result,
        row=row,
        unit=unit,
        ranking_class=ranking_class,
        month=month,
        fact=fact,
        facts=ranking.FACTS,
        labels=ranking.LABELS,
        tickets=tickets,
        total=total,
        page=page.number,
        pages=page.count(total),
        live_counts=live_counts,
        openable=visible_numbers(db, g.user, [t["ticket"].number for t in tickets]),
    )


@page_for(*VIEW_ROLES)
def rates_page():
    """Rates per unit or per area for any period (default: this month so far)."""
    timezone = current_app.config["TIMEZONE"]
    period = schemas.rates_period(request.args, today=_today(), timezone=timezone)
    settings = ranking.Settings.from_settings(get_session())
    rows = ranking.period_rates(
        get_session(), period["start"], period["end"], utcnow(), settings, period["by"]
    )
    return render_template(
        "rates.html",
        rows=rows,
        by=period["by"],
        start_day=period["from"],
        end_day=period["to"],
        labels=ranking.LABELS,
        definitions=ranking.DEFINITIONS,
    )


def percent(value):
    """A rate as a percentage with two decimals (as the exports print it); missing: a dash."""
    return "—" if value is None else exports.percent_text(value)


def score(value):
    return "—" if value is None else f"{value:.2f}"
