"""The administration's time rules (系统管理 › 办理时限 and 工作日历): the SLA policy table
(list, create, edit, switch off and on) and the working-day calendar of a year as month
grids (mark a day as a holiday or a working day with a note, remove an entry, declare a
year's arrangement complete), and the admin home's warning of years not yet defined.

Views parse forms and render; the rules and the audit are in ``dispatch.time_rules``, the
same operations the JSON API (``dispatch.api.time_rules``) calls, and the form values go
through the API's parsers (``dispatch.schemas``).
"""

import calendar
import datetime as dt
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)

from dispatch import schemas, time_rules
from hotline import web
from hotline.db import get_session
from hotline.enums import LimitUnit, RequestType, Role, Urgency
from hotline.errors import ValidationFailed
from hotline.schemas import Fields
from hotline.web import page_for

ADMIN = (Role.admin,)
#: How each clock reads after its limit: “2 小时签收”.
CLOCK_VERBS = {"sign": "签收", "contact": "联系", "finish": "办结", "callback": "回访"}
UNIT_WORDS = {
    LimitUnit.minutes: "分钟",
    LimitUnit.hours: "小时",
    LimitUnit.working_days: "个工作日",
}
WEEKDAYS = "一二三四五六日"
#: What a day of the grid is, and how the legend names it.
DAY_KINDS = {
    "workday": "工作日",
    "weekend": "周末休息",
    "holiday": "节假日",
    "adjusted": "调休上班",
}


def create_blueprint():
    bp = Blueprint("admin_time", __name__, url_prefix="/admin", template_folder="templates")
    bp.add_url_rule("/time-limits", view_func=policies)
    bp.add_url_rule("/time-limits/new", view_func=new_policy, methods=["GET", "POST"])
    bp.add_url_rule("/time-limits/<id:policy_id>", view_func=edit_policy, methods=["GET", "POST"])
    bp.add_url_rule("/time-limits/<id:policy_id>/active", view_func=switch_policy, methods=["POST"])
    bp.add_url_rule("/calendar", view_func=calendar_page)
    bp.add_url_rule("/calendar/days", view_func=set_day, methods=["POST"])
    bp.add_url_rule("/calendar/days/<day>/delete", view_func=delete_day, methods=["POST"])
    bp.add_url_rule("/calendar/years/<year>/define", view_func=define_year, methods=["POST"])
    bp.add_url_rule("/calendar/years/<year>/undefine", view_func=undefine_year, methods=["POST"])
    bp.add_app_template_filter(limits_text, "limits_text")
    web.add_to_admin(
        bp,
        "policies",
        "办理时限",
        "按事项分类、诉求类型和紧急程度设定签收、联系、办结和回访时限",
    )
    web.add_to_admin(
        bp, "calendar_page", "工作日历", "节假日与调休安排：逐日设定放假或上班，确认全年安排"
    )
    web.add_admin_warnings(bp, calendar_warnings)
    return bp


def _timezone():
    return current_app.config["TIMEZONE"]


def _today():
    return dt.datetime.now(ZoneInfo(_timezone())).date()


def calendar_warnings(db):
    """This year, and next year from 1 October, when its arrangement is not defined."""
    return [
        (summary["warning"], url_for("admin_time.calendar_page", year=summary["year"]))
        for summary in time_rules.years_due(db, _today(), _timezone())
    ]


# -- SLA policies -----------------------------------------------------------------------------


def limits_text(policy):
    """“2 小时签收 · 24 小时联系 · 5 个工作日办结 · 3 个工作日回访”."""
    return " · ".join(
        f"{getattr(policy, f'{clock}_amount')} {UNIT_WORDS[getattr(policy, f'{clock}_unit')]}{verb}"
        for clock, verb in CLOCK_VERBS.items()
    )


@page_for(*ADMIN)
def policies():
    return render_template(
        "admin/time_policies.html", policies=time_rules.all_policies(get_session())
    )


def _policy_form(policy=None):
    """What the form shows: the policy's values, or a new policy's defaults."""
    if policy is None:
        return {
            "name": "",
            "category": "",
            "request_type": "",
            "urgency": "",
            "active": True,
            **{f"{clock}_amount": "" for clock in CLOCK_VERBS},
            **{f"{clock}_unit": "" for clock in CLOCK_VERBS},
        }
    return {
        "name": policy.name,
        "category": policy.category.code if policy.category else "",
        "request_type": policy.request_type.value if policy.request_type else "",
        "urgency": policy.urgency.value if policy.urgency else "",
        "active": policy.active,
        **{f"{c}_amount": getattr(policy, f"{c}_amount") for c in CLOCK_VERBS},
        **{f"{c}_unit": getattr(policy, f"{c}_unit").value for c in CLOCK_VERBS},
    }


def _typed_policy(form):
    typed = {name: form.get(name, "").strip() for name in _policy_form()}
    typed["active"] = form.get("active") == "1"
    return typed


def _amount(text):
    try:
        return int(text)
    except ValueError:
        return text  # refused by the parser with the clock's name


def _policy_data(typed):
    """The form as the API's JSON body (``schemas.policy_values`` parses both)."""
    data = {
        "name": typed["name"],
        "category": typed["category"] or None,
        "request_type": typed["request_type"] or None,
        "urgency": typed["urgency"] or None,
        "active": typed["active"],
    }
    for clock in CLOCK_VERBS:
        data[clock] = {
            "amount": _amount(typed[f"{clock}_amount"]),
            "unit": typed[f"{clock}_unit"],
        }
    return data


def _render_policy_form(policy, form, error=None, status=200):
    errors = error.details if isinstance(error, ValidationFailed) else {}
    return (
        render_template(
            "admin/time_policy_form.html",
            policy=policy,
            form=form,
            message=error.message if error else None,
            errors=errors or {},
            clocks=time_rules.CLOCK_LABELS,
            units=list(LimitUnit),
            request_types=list(RequestType),
            urgencies=list(Urgency),
        ),
        status,
    )


@page_for(*ADMIN)
def new_policy():
    if request.method == "GET":
        return _render_policy_form(None, _policy_form())
    typed = _typed_policy(request.form)

    def change(db):
        values = schemas.policy_values(db, _policy_data(typed), creating=True)
        return time_rules.create_sla_policy(db, g.user, values)

    done, result = web.perform(
        change, refused=lambda e: _render_policy_form(None, typed, e, e.status)
    )
    if not done:
        return result
    flash(f"已新增时限规则“{result.name}”")
    return redirect(url_for("admin_time.policies"))


@page_for(*ADMIN)
def edit_policy(policy_id):
    db = get_session()
    policy = time_rules.load_policy(db, policy_id)
    if request.method == "GET":
        return _render_policy_form(policy, _policy_form(policy))
    typed = _typed_policy(request.form)

    def change(db):
        values = schemas.policy_values(db, _policy_data(typed), creating=False)
        return time_rules.update_sla_policy(db, g.user, policy, values)

    done, result = web.perform(
        change, refused=lambda e: _render_policy_form(policy, typed, e, e.status)
    )
    if not done:
        return result
    flash(f"已保存时限规则“{policy.name}”：新规则自此后开始计时的工单起适用")
    return redirect(url_for("admin_time.policies"))


@page_for(*ADMIN)
def switch_policy(policy_id):
    """停用 or 启用 a policy (the table's rules still hold: e.g. the last catch-all stays)."""
    db = get_session()
    policy = time_rules.load_policy(db, policy_id)
    active = request.form.get("active") == "1"

    def refused(error):
        flash(error.message, "error")
        return redirect(url_for("admin_time.policies"))

    done, result = web.perform(
        lambda db: time_rules.update_sla_policy(db, g.user, policy, {"active": active}),
        refused=refused,
    )
    if not done:
        return result
    flash(f"已{'启用' if active else '停用'}时限规则“{policy.name}”")
    return redirect(url_for("admin_time.policies"))


# -- the working-day calendar -----------------------------------------------------------------


def _day_kind(day, arranged):
    entry = arranged.get(day)
    weekend = day.weekday() >= 5
    if entry is None:
        return "weekend" if weekend else "workday"
    if entry.workday:
        return "adjusted" if weekend else "workday"
    return "holiday"


def _months(year, arranged, today):
    """Twelve month grids: [(month, [[cell or None] × 7 per week])]."""
    weeks_of = calendar.Calendar(firstweekday=0)
    months = []
    for month in range(1, 13):
        weeks = []
        for week in weeks_of.monthdatescalendar(year, month):
            cells = []
            for day in week:
                if day.month != month:
                    cells.append(None)
                    continue
                entry = arranged.get(day)
                cells.append(
                    {
                        "day": day,
                        "kind": _day_kind(day, arranged),
                        "name": entry.name if entry else None,
                        "entered": entry is not None and entry.source == "table",
                        "today": day == today,
                    }
                )
            weeks.append(cells)
        months.append((month, weeks))
    return months


def _year_arg(raw):
    try:
        return schemas.parse_year(raw, "year") if raw else _today().year
    except ValidationFailed:
        return _today().year


def _render_calendar(year, *, form=None, message=None, status=200):
    db = get_session()
    timezone = _timezone()
    today = _today()
    first, last, guessed = time_rules.years_to_show(db, today.year)
    first, last = min(first, year), max(last, year)
    summaries = time_rules.year_summaries(db, first, last, timezone, guessed)
    summary = next(s for s in summaries if s["year"] == year)
    arranged = time_rules.arranged_days(db, year)
    official_first, official_last = time_rules.work_calendar.official_years()
    chosen = request.args.get("day", "")
    if form is None:
        form = {"day": chosen, "kind": "holiday", "name": ""}
        try:
            entry = arranged.get(schemas.parse_day(chosen)) if chosen else None
        except ValidationFailed:
            entry = None
        if entry is not None:
            form.update(kind="workday" if entry.workday else "holiday", name=entry.name or "")
    return (
        render_template(
            "admin/time_calendar.html",
            year=year,
            summaries=summaries,
            summary=summary,
            months=_months(year, arranged, today),
            entries=[d for d in arranged.values() if d.source == "table"],
            official=official_first <= year <= official_last,
            weekdays=WEEKDAYS,
            kinds=DAY_KINDS,
            form=form,
            message=message,
        ),
        status,
    )


@page_for(*ADMIN)
def calendar_page():
    return _render_calendar(_year_arg(request.args.get("year")))


@page_for(*ADMIN)
def set_day():
    """Mark one day a holiday (放假) or a working day (上班), with a note."""
    form = {
        "day": request.form.get("day", "").strip(),
        "kind": request.form.get("kind", ""),
        "name": request.form.get("name", "").strip(),
    }
    year = _year_arg(request.form.get("year"))

    def change(db):
        day = schemas.parse_day(form["day"])
        if form["kind"] not in ("holiday", "workday"):
            raise ValidationFailed("请选择这一天放假还是上班", details={"kind": "请选择"})
        data = {"workday": form["kind"] == "workday", "name": form["name"] or None}
        values = schemas.calendar_day_values(Fields(data))
        time_rules.set_calendar_day(db, g.user, day, **values)
        return day

    def refused(error):
        return _render_calendar(year, form=form, message=error.message, status=error.status)

    done, result = web.perform(change, refused=refused)
    if not done:
        return result
    what = "上班（工作日）" if form["kind"] == "workday" else "放假（节假日）"
    note = f"：{form['name']}" if form["name"] else ""
    flash(f"已将 {result.isoformat()} 设为{what}{note}")
    return redirect(url_for("admin_time.calendar_page", year=result.year))


@page_for(*ADMIN)
def delete_day(day):
    """Remove an administrator's entry: the day follows chinese-calendar (or Monday–Friday)
    again."""
    year = _year_arg(request.form.get("year"))

    def change(db):
        parsed = schemas.parse_day(day)
        time_rules.delete_calendar_day(db, g.user, parsed)
        return parsed

    def refused(error):
        return _render_calendar(year, message=error.message, status=error.status)

    done, result = web.perform(change, refused=refused)
    if not done:
        return result
    flash(f"已删除 {result.isoformat()} 的录入，该日恢复按国家公布安排（或周一至周五）计算")
    return redirect(url_for("admin_time.calendar_page", year=result.year))


def _year_change(year, operation, done_message):
    shown = _year_arg(year)

    def change(db):
        parsed = schemas.parse_year(year, "year")
        operation(db, parsed)
        return parsed

    def refused(error):
        return _render_calendar(shown, message=error.message, status=error.status)

    done, result = web.perform(change, refused=refused)
    if not done:
        return result
    flash(done_message.format(year=result))
    return redirect(url_for("admin_time.calendar_page", year=result))


@page_for(*ADMIN)
def define_year(year):
    """Declare the year's arrangement entered in full (its other days: Monday–Friday)."""
    note = request.form.get("note", "").strip() or None

    def operation(db, parsed):
        values = schemas.calendar_year_values(Fields({"note": note}))
        time_rules.define_calendar_year(db, g.user, parsed, **values)

    return _year_change(year, operation, "已确认 {year} 年节假日安排录入完整")


@page_for(*ADMIN)
def undefine_year(year):
    def operation(db, parsed):
        time_rules.undefine_calendar_year(db, g.user, parsed)

    return _year_change(
        year, operation, "已撤销 {year} 年的确认：该年未录入的日期重新按推算处理并提示"
    )
