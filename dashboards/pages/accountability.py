"""四位一体督办 · 监察问责 pages: the month's cases of 推诿扯皮 and 弄虚作假 per unit with
their evidence, the supervisor's referral to discipline inspection (移送纪检监察), and the
month's referral list. Supervisors refer; leaders read (a district leader only the units of
their district). The rules and the referral are ``dashboards.accountability``'s."""

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for

from dashboards import accountability, ranking
from hotline import web
from hotline.db import get_session, utcnow
from hotline.enums import ReferralKind
from hotline.errors import HotlineError
from hotline.web import page_for

VIEW_ROLES = accountability.VIEW_ROLES


def create_blueprint():
    bp = Blueprint("accountability", __name__, url_prefix="/reports", template_folder="templates")
    bp.add_url_rule("/accountability", view_func=cases_page)
    bp.add_url_rule("/accountability/<month>/refer", view_func=refer, methods=["POST"])
    bp.add_url_rule("/accountability/referrals", view_func=referrals_page)
    bp.register_error_handler(HotlineError, _refused)
    web.add_to_menu(bp, "cases_page", "监察问责", VIEW_ROLES)
    return bp


def _refused(exc):
    return render_template("report_error.html", error=exc), exc.status


def _month(db):
    """The month asked for (checked), else last month; and the picker's months."""
    now, timezone = utcnow(), current_app.config["TIMEZONE"]
    month = request.args.get("month") or ranking.previous_month(ranking.month_of(now, timezone))
    ranking.parse_month(month)
    months = ranking.months_until(db, now, timezone)
    if month not in months:
        months = sorted([*months, month], reverse=True)
    return month, months


def _render(month, months, *, typed=None, error=None, status=200):
    db = get_session()
    cases = accountability.cases_for(db, g.user, month, current_app.config["TIMEZONE"])
    return (
        render_template(
            "accountability.html",
            month=month,
            months=months,
            cases=cases,
            settings=accountability.Settings.from_settings(db),
            may_refer=g.user.role in accountability.REFER_ROLES,
            typed=typed or {},
            error=error,
        ),
        status,
    )


@page_for(*VIEW_ROLES)
def cases_page():
    db = get_session()
    month, months = _month(db)
    return _render(month, months)


@page_for(*VIEW_ROLES)
def refer(month):
    db = get_session()
    ranking.parse_month(month)
    form = request.form
    typed = {
        "unit": form.get("unit", ""),
        "kind": form.get("kind", ""),
        "reason": form.get("reason", ""),
    }

    def change(session):
        unit = accountability.unit_by_code(session, typed["unit"])
        return accountability.refer(
            session,
            g.user,
            month=month,
            unit=unit,
            kind=typed["kind"],
            reason=typed["reason"],
            timezone=current_app.config["TIMEZONE"],
        )

    def refused(error):
        _, months = _month(db)
        return _render(month, months, typed=typed, error=error, status=error.status)

    done, result = web.perform(change, refused=refused)
    if not done:
        return result
    referral, created = result
    kind = ReferralKind(referral.kind)
    flash(
        f"已将{referral.unit.name}的{kind.label}问题移送纪检监察"
        if created
        else "该问题此前已由您移送，未重复移送"
    )
    return redirect(url_for("accountability.referrals_page", month=month))


@page_for(*VIEW_ROLES)
def referrals_page():
    db = get_session()
    month, months = _month(db)
    rows = accountability.referrals_for(db, g.user, month, current_app.config["TIMEZONE"])
    return render_template("referrals.html", month=month, months=months, rows=rows)
