"""The mayor's office monthly report (HTML): the four rankings with charts, definitions,
exemptions, downloads, freezing, and a drill-down from every count to its tickets.

Leaders, supervisors and administrators read it; a district leader drills down only into
their own district's units. Freezing (publishing) is for the mayor's office (a leader with
no district) and administrators.
"""

import datetime as dt
import io
from zoneinfo import ZoneInfo

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

from dashboards import exports, ranking
from hotline.db import get_session, utcnow
from hotline.enums import RankingClass, Role
from hotline.errors import HotlineError, ValidationFailed
from hotline.web import page_for

bp = Blueprint("reports", __name__, url_prefix="/reports", template_folder="templates")

VIEW_ROLES = (Role.leader, Role.supervisor, Role.admin)
PAGE_SIZE = 200
#: Charts show every ranked unit of a class up to this many, else the top and bottom halves.
CHART_UNITS = 30


def may_freeze(user):
    return user.role == Role.admin or (user.role == Role.leader and user.district_id is None)


def _local_today():
    return utcnow().astimezone(ZoneInfo(current_app.config["TIMEZONE"])).date()


def default_month():
    """Last month: the one a report is usually read for."""
    first = _local_today().replace(day=1)
    last = first - dt.timedelta(days=1)
    return f"{last.year}-{last.month:02d}"


def load(month, with_previous=True):
    return ranking.load(
        get_session(), month, now=utcnow(), config=current_app.config, with_previous=with_previous
    )


@bp.errorhandler(HotlineError)
def _refused(exc):
    return render_template("report_error.html", error=exc), exc.status


@bp.get("/ranking")
@page_for(*VIEW_ROLES)
def ranking_page():
    month = request.args.get("month") or default_month()
    result = load(month)
    return render_template(
        "ranking.html",
        r=result,
        month=month,
        previous=ranking.previous_month(month),
        classes=list(RankingClass),
        charts={c: _chart(result.ranked(c)) for c in RankingClass},
        definitions=ranking.DEFINITIONS,
        labels=ranking.LABELS,
        may_freeze=may_freeze(g.user),
        month_over=utcnow() >= result.period_end,
    )


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


@bp.post("/ranking/<month>/freeze")
@page_for(*VIEW_ROLES)
def freeze(month):
    if not may_freeze(g.user):
        abort(403)
    db = get_session()
    ranking.freeze(db, g.user, month, now=utcnow(), config=current_app.config)
    db.commit()
    return redirect(url_for("reports.ranking_page", month=month))


@bp.get("/ranking/<month>.<fmt>")
@page_for(*VIEW_ROLES)
def download(month, fmt):
    result = load(month)
    state = "frozen" if result.frozen_at else "live"
    name = f"ranking-{month}-{state}.{fmt}"
    if fmt == "json":
        response = current_app.json.response(exports.ranking_to_dict(result))
    elif fmt == "csv":
        text = io.StringIO()
        exports.write_csv(result, text)
        response = Response(text.getvalue(), mimetype="text/csv")
        response.charset = "utf-8"
    elif fmt == "xlsx":
        data = io.BytesIO()
        exports.write_xlsx(result, data, timezone=current_app.config["TIMEZONE"])
        response = Response(
            data.getvalue(),
            mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    else:
        abort(404)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.get("/ranking/<month>/units/<code>")
@page_for(*VIEW_ROLES)
def drill_down(month, code):
    """The tickets behind a unit's line (a district: its government and streets)."""
    ranking_class = RankingClass.parse(request.args.get("class", "")) or RankingClass.street
    fact = request.args.get("fact") or None
    if fact is not None and fact not in ranking.FACTS:
        raise ValidationFailed(f"未知的统计项“{fact}”", details={"fact": "未知的统计项"})
    page = request.args.get("page", "1")
    if not page.isdigit() or int(page) < 1:
        raise ValidationFailed("页码须为正整数", details={"page": "须为正整数"})
    page = int(page)
    db = get_session()
    classes, members = ranking.ranked_units(db, current_app.config["MAYORS_OFFICE_UNIT"])
    unit = next((u for u in classes[ranking_class] if u.code == code), None)
    if unit is None:
        abort(404)
    member_ids = members[(ranking_class, unit.id)]
    if not _may_see(db, g.user, member_ids):
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
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
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
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        live_counts=live_counts,
    )


def _may_see(db, user, unit_ids):
    """A district leader sees only units inside their district; others see every unit."""
    if user.role != Role.leader or user.district_id is None:
        return True
    districts = ranking.unit_districts(db)
    return all(districts.get(i) == user.district.code for i in unit_ids)


@bp.get("/rates")
@page_for(*VIEW_ROLES)
def rates_page():
    """Rates per unit or per area for any period (default: this month so far)."""
    period = rates_period()
    settings = ranking.Settings.from_config(current_app.config)
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


def rates_period():
    """The period and grouping of a rates request (``from``, ``to``, ``by``), checked."""
    today = _local_today()
    start_day = _date_arg("from", today.replace(day=1))
    end_day = _date_arg("to", today)
    if end_day < start_day:
        raise ValidationFailed("结束日期不能早于开始日期", details={"to": "不能早于开始日期"})
    if (end_day - start_day).days > 366:
        raise ValidationFailed("统计区间不能超过一年", details={"to": "区间不能超过一年"})
    by = request.args.get("by", "unit")
    if by not in ("unit", "district", "street"):
        raise ValidationFailed("分组方式须为 unit、district 或 street", details={"by": "取值无效"})
    zone = ZoneInfo(current_app.config["TIMEZONE"])
    return {
        "from": start_day,
        "to": end_day,
        "by": by,
        "start": dt.datetime.combine(start_day, dt.time(), zone).astimezone(dt.UTC),
        "end": dt.datetime.combine(end_day + dt.timedelta(days=1), dt.time(), zone).astimezone(
            dt.UTC
        ),
    }


def _date_arg(name, default):
    raw = request.args.get(name)
    if not raw:
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed(
            f"日期“{name}”格式应为 YYYY-MM-DD", details={name: "格式应为 YYYY-MM-DD"}
        ) from None


@bp.app_template_filter("pct")
def percent(value):
    """A rate as a percentage with two decimals (as the exports print it); missing: a dash."""
    return "—" if value is None else exports.percent_text(value)


@bp.app_template_filter("score")
def score(value):
    return "—" if value is None else f"{value:.2f}"
