"""The working-day calendar and the SLA policy table in the JSON API (``dispatch.time_rules``
holds their rules). Everyone who plans or supervises dispatch may read both tables; only
administrators change them."""

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, g, request

from dispatch import schemas, time_rules
from hotline import openapi
from hotline.api import commit, ok
from hotline.api.auth import require_role
from hotline.db import get_session
from hotline.schemas import Fields, json_body


def create_blueprint():
    bp = Blueprint("time_rules", __name__)
    bp.add_url_rule("/calendar/years", view_func=list_calendar_years)
    bp.add_url_rule("/calendar/days", view_func=list_calendar_days)
    bp.add_url_rule("/calendar/days/<day>", view_func=set_calendar_day, methods=["PUT"])
    bp.add_url_rule("/calendar/days/<day>", view_func=delete_calendar_day, methods=["DELETE"])
    bp.add_url_rule("/calendar/years/<year>", view_func=define_calendar_year, methods=["PUT"])
    bp.add_url_rule("/calendar/years/<year>", view_func=undefine_calendar_year, methods=["DELETE"])
    bp.add_url_rule("/sla-policies", view_func=list_sla_policies)
    bp.add_url_rule("/sla-policies", view_func=create_sla_policy, methods=["POST"])
    bp.add_url_rule("/sla-policies/<id:policy_id>", view_func=get_sla_policy)
    bp.add_url_rule("/sla-policies/<id:policy_id>", view_func=update_sla_policy, methods=["PATCH"])
    return bp


def _require_reader(what):
    require_role(time_rules.READ_ROLES, "“{role}”角色无权查看" + what)


def _this_year():
    return dt.datetime.now(ZoneInfo(current_app.config["TIMEZONE"])).year


def _summary(db, year):
    (summary,) = time_rules.year_summaries(db, year, year, current_app.config["TIMEZONE"])
    return schemas.year_summary_to_dict(summary)


# -- calendar ---------------------------------------------------------------------------------


def list_calendar_years():
    """Each year from last year to the latest one an open ticket's deadline reaches."""
    _require_reader("工作日历")
    db = get_session()
    first, last, guessed = time_rules.years_to_show(db, _this_year())
    summaries = time_rules.year_summaries(db, first, last, current_app.config["TIMEZONE"], guessed)
    return ok([schemas.year_summary_to_dict(s) for s in summaries])


def list_calendar_days():
    """The whole arrangement of a year: every holiday and weekend working day, whether
    chinese-calendar or an administrator says so (an administrator's entry wins)."""
    _require_reader("工作日历")
    db = get_session()
    raw = request.args.get("year")
    year = _this_year() if raw is None else schemas.parse_year(raw, "year")
    days = [
        schemas.calendar_day_to_dict(
            d.day, d.workday, d.name, d.source, updated_by=d.updated_by, updated_at=d.updated_at
        )
        for d in time_rules.arranged_days(db, year).values()
    ]
    return ok({**_summary(db, year), "days": days})


@openapi.body(lambda data: schemas.calendar_day_values(Fields(data)))
def set_calendar_day(day):
    """Make one day a holiday (``workday: false``) or a working day, whatever the other
    sources say."""
    time_rules.require_editor(g.user, "工作日历")
    day = schemas.parse_day(day)
    values = schemas.calendar_day_values(Fields(json_body()))
    db = get_session()
    entry, created = time_rules.set_calendar_day(db, g.user, day, **values)
    commit()
    return ok(schemas.calendar_entry_to_dict(entry, g.user.username), 201 if created else 200)


def delete_calendar_day(day):
    """Remove an entry: the day follows chinese-calendar (or Monday–Friday) again."""
    time_rules.require_editor(g.user, "工作日历")
    day = schemas.parse_day(day)
    old = time_rules.delete_calendar_day(get_session(), g.user, day)
    commit()
    return ok({"date": day.isoformat(), "deleted": old})


@openapi.body(lambda data: schemas.calendar_year_values(Fields(data)))
def define_calendar_year(year):
    """Declare a year's arrangement entered in full: its other days are then Monday–Friday
    by rule, no longer by guess."""
    time_rules.require_editor(g.user, "工作日历")
    year = schemas.parse_year(year, "year")
    values = schemas.calendar_year_values(Fields(json_body()))
    db = get_session()
    existed = time_rules.define_calendar_year(db, g.user, year, **values)
    commit()
    return ok(_summary(db, year), 200 if existed else 201)


def undefine_calendar_year(year):
    """Withdraw the declaration: deadlines in the year are flagged as guesses again."""
    time_rules.require_editor(g.user, "工作日历")
    year = schemas.parse_year(year, "year")
    db = get_session()
    time_rules.undefine_calendar_year(db, g.user, year)
    commit()
    return ok(_summary(db, year))


# -- SLA policies -----------------------------------------------------------------------------


def list_sla_policies():
    """Every policy, inactive ones included."""
    _require_reader("时限规则")
    return ok([time_rules.describe_policy(p) for p in time_rules.all_policies(get_session())])


def get_sla_policy(policy_id):
    _require_reader("时限规则")
    return ok(time_rules.describe_policy(time_rules.load_policy(get_session(), policy_id)))


@openapi.body(lambda data: schemas.policy_values(None, data, creating=True))
def create_sla_policy():
    time_rules.require_editor(g.user, "时限规则")
    db = get_session()
    values = schemas.policy_values(db, json_body(), creating=True)
    policy = time_rules.create_sla_policy(db, g.user, values)
    commit()
    return ok(
        time_rules.describe_policy(policy), 201, {"Location": f"/api/v1/sla-policies/{policy.id}"}
    )


@openapi.body(lambda data: schemas.policy_values(None, data, creating=False), partial=True)
def update_sla_policy(policy_id):
    """Change a policy; tickets whose clock is running keep the deadlines they were given."""
    time_rules.require_editor(g.user, "时限规则")
    db = get_session()
    policy = time_rules.load_policy(db, policy_id)
    values = schemas.policy_values(db, json_body(), creating=False)
    time_rules.update_sla_policy(db, g.user, policy, values)
    commit()
    return ok(time_rules.describe_policy(policy))
