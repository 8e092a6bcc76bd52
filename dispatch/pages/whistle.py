"""吹哨报到's pages: its part of the ticket page (``_whistle.html``, included there with one
line), the forms it posts (吹哨, 报到, 反馈意见, 撤回), the supervisors' list of summonses and
the settings page (系统管理 › 吹哨报到设置).

On the ticket page the lead street's handler sees the departments to summon (names, grouped
by kind) and every summons with its deadlines coloured like the ticket's; a summoned
department's handler sees the 报到 button, then the opinion form. A refused form re-renders
the ticket page with the Chinese message and what was typed, as every ticket action does.
"""

import itertools

import sqlalchemy as sa
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from dispatch import schemas, whistle, whistle_schemas, whistle_timers
from dispatch.pages import visible_ticket_or_abort
from dispatch.pages.desk import render_ticket
from dispatch.states import TRANSITIONS
from hotline import settings, web
from hotline.db import get_session, utcnow
from hotline.enums import AssignmentRole, Role, UnitKind
from hotline.models import Ticket, Unit
from hotline.web import page_for

#: Who reads the list of summonses.
LIST_ROLES = (Role.supervisor, Role.dispatcher, Role.leader, Role.admin)

SECTION = settings.Section(
    prefixes=("whistle.",),
    strip="whistle.",
    what="吹哨报到设置",
    editors=frozenset({Role.admin}),
    check=whistle_timers.check_settings,
)


def create_blueprint():
    bp = Blueprint("whistle_pages", __name__, template_folder="templates")
    bp.add_url_rule("/tickets/<number>/whistle/<slug>", view_func=summons_action, methods=["POST"])
    bp.add_url_rule("/whistle", view_func=summons_list)
    bp.add_url_rule("/admin/whistle-settings", view_func=settings_page, methods=["GET", "POST"])
    bp.add_app_template_global(whistle_panel)
    web.add_to_menu(bp, "summons_list", "吹哨报到", {Role.supervisor, Role.dispatcher})
    web.add_to_admin(
        bp,
        "settings_page",
        "吹哨报到设置",
        "被吹哨部门报到、反馈的时限，以及反馈超时后的督办间隔",
    )
    return bp


# -- the ticket page's part -----------------------------------------------------------------------


def _summonable(db):
    """Active departments that may be summoned, grouped by kind (for the checklist)."""
    units = db.scalars(
        sa.select(Unit)
        .where(Unit.active, Unit.kind.in_(whistle.SUMMONABLE))
        .order_by(Unit.kind, Unit.code)
    ).all()
    order = {kind: i for i, kind in enumerate(UnitKind)}
    units = sorted(units, key=lambda u: (order[u.kind], u.code))
    return [(kind, list(group)) for kind, group in itertools.groupby(units, key=lambda u: u.kind)]


def whistle_panel(ticket):
    """What ``_whistle.html`` shows the current user on ``ticket`` (display only: the
    operations check everything again). ``show`` False: nothing to show."""
    db = get_session()
    user = g.user
    now = utcnow()
    rows = whistle.of_ticket(db, ticket)
    lead_handler = (
        user.role == Role.unit_handler
        and ticket.lead_unit is not None
        and ticket.lead_unit.kind in whistle.WHISTLE_LEADS
        and (held := ticket.active_assignment(user.unit_id)) is not None
        and held.role == AssignmentRole.lead
    )
    can_whistle = lead_handler and ticket.status in TRANSITIONS["whistle"].from_states
    can_act = ticket.status in TRANSITIONS["report_summons"].from_states
    mine = None
    if user.role == Role.unit_handler and can_act:
        mine = next(
            (s for s in rows if s.unit_id == user.unit_id and s.is_open),
            None,
        )
    return {
        "show": bool(rows) or can_whistle,
        "rows": [
            {
                "summons": s,
                "state": whistle.state_of(s, now),
                "deadlines": whistle.deadlines_of(s, now),
                "open": s.is_open,
            }
            for s in rows
        ],
        "can_whistle": can_whistle,
        "can_withdraw": lead_handler and can_act,
        "units": _summonable(db) if can_whistle else [],
        "mine": mine,
        "slugs": {form.name: form.slug for form in whistle_schemas.FORMS.values()},
    }


@page_for(Role.unit_handler)
def summons_action(number, slug):
    form = whistle_schemas.FORMS.get(slug)
    if form is None:
        abort(404)
    db = get_session()
    ticket = visible_ticket_or_abort(db, number)

    def change(db):
        values = schemas.parse_transition(db, g.user, form, request.form, page=True)
        if form.photos:
            values["photos"] = form.read_photos(request.files.getlist("photos"))
        return form.operation(db, g.user, ticket, **values)

    def refused(error):
        refreshed = db.scalars(sa.select(Ticket).where(Ticket.number == number)).first()
        if refreshed is None:
            abort(404)
        return render_ticket(db, refreshed, error=error, form=request.form, failed_action=form.name)

    done, _ = web.perform(change, refused=refused)
    if not done:
        return _
    flash(f"工单 {ticket.number}：“{TRANSITIONS[form.name].label}”已完成")
    return redirect(url_for("desk.ticket_page", number=ticket.number) + "#whistle")


# -- the supervisors' list ------------------------------------------------------------------------


@page_for(*LIST_ROLES)
def summons_list():
    which = request.args.get("which", "open")
    if which not in whistle.LIST_FILTERS:
        which = "open"
    db = get_session()
    now = utcnow()
    rows = [
        {
            "summons": s,
            "state": whistle.state_of(s, now),
            "deadlines": whistle.deadlines_of(s, now),
        }
        for s in whistle.listing(db, g.user, now, which)
    ]
    return render_template(
        "whistle_list.html", rows=rows, which=which, filters=whistle.LIST_FILTERS
    )


# -- settings -------------------------------------------------------------------------------------


settings_page = web.settings_view(
    SECTION,
    "admin/whistle_settings.html",
    "whistle_pages.settings_page",
    "吹哨报到设置已保存，对此后的吹哨生效",
)
