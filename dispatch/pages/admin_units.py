"""承办单位 in the administration: the list (search, kind, status, open tickets), the form
that creates or edits a unit (areas served ticked by name, duty phones one per line), and
the deactivation page that moves the unit's open tickets to the unit chosen.

Views parse and render; ``dispatch.units`` holds every rule.
"""

import itertools

import sqlalchemy as sa
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)

from dispatch import units, whistle
from hotline import tabular, web
from hotline.db import get_session
from hotline.enums import AreaLevel, Role, UnitKind
from hotline.errors import NotFound
from hotline.models import Area
from hotline.web import page_for

ADMIN = (Role.admin,)
#: Open tickets listed on the deactivation page (the count is always complete).
TICKETS_SHOWN = 20
STATUS_FILTERS = {"active": True, "inactive": False, "": None}


def create_blueprint():
    bp = Blueprint("admin_units", __name__, url_prefix="/admin/units", template_folder="templates")
    bp.add_url_rule("/", view_func=units_page)
    bp.add_url_rule("/new", view_func=new_unit, methods=["GET", "POST"])
    bp.add_url_rule("/<code>/edit", view_func=edit_unit, methods=["GET", "POST"])
    bp.add_url_rule("/<code>/deactivate", view_func=deactivate_page, methods=["GET", "POST"])
    bp.add_url_rule("/<code>/reactivate", view_func=reactivate, methods=["POST"])
    web.add_to_admin(
        bp, "units_page", "承办单位", "新增、修改、停用承办单位，服务区域、全天候和值班电话"
    )
    tabular.register_on(bp, units.IMPORTER)
    web.add_admin_warnings(bp, _phone_warnings)
    return bp


def _phone_warnings(db):
    """When notifications go out by SMS, the active units no text can reach."""
    senders = {name.strip() for name in current_app.config["NOTIFY_SENDERS"].split(",")}
    if "sms" not in senders:
        return []
    missing = units.without_phones(db)
    if not missing:
        return []
    names = "、".join(u.name for u in missing[:3]) + ("等" if len(missing) > 3 else "")
    return [
        (
            f"{len(missing)} 个启用的承办单位未登记值班电话（{names}），短信通知发不到它们",
            url_for("admin_units.units_page", phones="missing"),
        )
    ]


def _unit_or_404(db, code):
    try:
        return units.get_unit(db, code)
    except NotFound:
        abort(404)


# -- list ----------------------------------------------------------------------------------------


@page_for(*ADMIN)
def units_page():
    db = get_session()
    text = (request.args.get("q") or "").strip()[:100]
    kind = UnitKind.parse(request.args.get("kind") or "")
    status = request.args.get("status", "")
    if status not in STATUS_FILTERS:
        status = ""
    rows = units.search(db, text=text or None, kind=kind, active=STATUS_FILTERS[status])
    no_phones = request.args.get("phones") == "missing"
    if no_phones:
        rows = [u for u in rows if not u.phones]
    counts = units.open_ticket_counts(db, [u.id for u in rows])
    return render_template(
        "admin_units/list.html",
        units=rows,
        counts=counts,
        q=text,
        kind=kind,
        status=status,
        no_phones=no_phones,
        kinds=list(UnitKind),
    )


# -- create and edit -----------------------------------------------------------------------------


def _served_areas(db):
    """[(district, [streets])] by code: what a unit may serve."""
    rows = db.scalars(
        sa.select(Area)
        .where(Area.level.in_([AreaLevel.district, AreaLevel.street]))
        .order_by(Area.code)
    ).all()
    districts = [a for a in rows if a.level == AreaLevel.district]
    streets = {
        code: list(group)
        for code, group in itertools.groupby(
            (a for a in rows if a.level == AreaLevel.street), key=lambda a: a.code[:6]
        )
    }
    return [(d, streets.get(d.code, [])) for d in districts]


def _posted():
    """The form as the JSON the rules read (one shape for pages and the API)."""
    form = request.form
    data = {
        "name": form.get("name", ""),
        "kind": form.get("kind") or None,
        "always_on": form.get("always_on") == "true",
        "areas": [c.strip() for c in form.getlist("areas") if c.strip()],
        "phones": form.get("phones", ""),
    }
    if "code" in form:
        data["code"] = form.get("code", "").strip() or None
    return data


def _typed(unit=None):
    """What the form shows: the posted values, or the unit's."""
    if request.method == "POST":
        data = _posted()
        return {**data, "code": data.get("code") or (unit.code if unit else "")}
    if unit is None:
        return {"code": "", "name": "", "kind": None, "always_on": False, "areas": [], "phones": ""}
    return {
        "code": unit.code,
        "name": unit.name,
        "kind": unit.kind.value,
        "always_on": unit.always_on,
        "areas": [a.code for a in unit.areas],
        "phones": "\n".join(unit.phones or []),
    }


def _form(unit=None, error=None, status=200):
    db = get_session()
    return (
        render_template(
            "admin_units/form.html",
            unit=unit,
            form=_typed(unit),
            error=error,
            kinds=list(UnitKind),
            served=_served_areas(db),
        ),
        status,
    )


@page_for(*ADMIN)
def new_unit():
    if request.method == "GET":
        return _form()

    def change(db):
        return units.create_unit(db, g.user, units.unit_values(db, _posted()))

    done, result = web.perform(change, refused=lambda error: _form(error=error, status=422))
    if not done:
        return result
    flash(f"已新增承办单位“{result.name}”（{result.code}）")
    return redirect(url_for("admin_units.units_page"))


@page_for(*ADMIN)
def edit_unit(code):
    db = get_session()
    unit = _unit_or_404(db, code)
    if request.method == "GET":
        return _form(unit)

    def change(db):
        return units.update_unit(db, g.user, unit, units.unit_values(db, _posted(), unit=unit))

    def refused(error):
        return _form(_unit_or_404(get_session(), code), error=error, status=422)

    done, result = web.perform(change, refused=refused)
    if not done:
        return result
    flash(f"已保存“{unit.name}”" if result else f"“{unit.name}”没有变化")
    return redirect(url_for("admin_units.units_page"))


# -- deactivate and reactivate -------------------------------------------------------------------


def _deactivate_form(db, unit, error=None, status=200):
    by_role = units.open_by_role(db, unit)
    tickets = units.open_tickets(db, unit)
    targets = units.move_targets(db, unit)
    grouped = [(kind, list(group)) for kind, group in itertools.groupby(targets, lambda u: u.kind)]
    return (
        render_template(
            "admin_units/deactivate.html",
            unit=unit,
            by_role=by_role,
            total=len(tickets),
            tickets=tickets[:TICKETS_SHOWN],
            role_of={t.id: t.active_assignment(unit.id).role for t in tickets[:TICKETS_SHOWN]},
            targets=grouped,
            rules=units.routing_rules_naming(db, unit),
            users=units.active_users(db, unit),
            awaiting=units.awaiting_callback(db, unit),
            summonses=len(whistle.open_of_unit(db, unit)),
            error=error,
            form=request.form if request.method == "POST" else {},
        ),
        status,
    )


@page_for(*ADMIN)
def deactivate_page(code):
    db = get_session()
    unit = _unit_or_404(db, code)
    if request.method == "GET":
        if not unit.active:
            flash(f"“{unit.name}”已是停用状态")
            return redirect(url_for("admin_units.units_page"))
        return _deactivate_form(db, unit)

    def change(db):
        target = request.form.get("move_to", "").strip()
        move_to = None
        if target:
            move_to = units.find_unit(db, target)
            if move_to is None:
                raise NotFound(f"接收单位不存在：{target}", code="UNIT_NOT_FOUND")
        return units.deactivate_unit(
            db, g.user, unit, move_to=move_to, reason=request.form.get("reason", "")
        )

    def refused(error):
        db = get_session()
        return _deactivate_form(db, _unit_or_404(db, code), error=error, status=422)

    done, result = web.perform(change, refused=refused)
    if not done:
        return result
    message = f"已停用“{unit.name}”"
    if result.moved:
        message += f"，{len(result.moved)} 件在办工单已改派“{result.moved_to.name}”"
    if result.summonses_ended:
        ended = len(result.summonses_ended)
        message += f"；其 {ended} 项未完成的吹哨报到已结束，主办单位已收到通知"
    flash(message)
    if result.routing_rules:
        flash(
            f"派单目录中仍有 {len(result.routing_rules)} 条规则指向“{unit.name}”，"
            "系统派单时会跳过该单位，请到派单目录修改"
        )
    if result.active_users:
        flash(f"“{unit.name}”仍有 {result.active_users} 名启用的用户，请在用户管理中调整")
    return redirect(url_for("admin_units.units_page"))


@page_for(*ADMIN)
def reactivate(code):
    db = get_session()
    unit = _unit_or_404(db, code)

    def refused(error):
        flash(error.message, "error")
        return redirect(url_for("admin_units.units_page"))

    done, result = web.perform(lambda db: units.reactivate_unit(db, g.user, unit), refused=refused)
    if not done:
        return result
    flash(f"已重新启用“{unit.name}”")
    return redirect(url_for("admin_units.units_page"))
