"""承办单位管理 in the JSON API (administrators only; ``dispatch.units`` holds the rules).

``GET /admin/units`` (``q``, ``kind``, ``active``), ``POST /admin/units``,
``GET|PATCH /admin/units/<code>``, ``POST /admin/units/<code>/deactivate`` (``move_to``,
``reason``) and ``POST /admin/units/<code>/reactivate``. The public list of active units
stays ``GET /units`` (``hotline.api.reference``).
"""

from flask import Blueprint, g, request

from dispatch import units
from hotline import openapi
from hotline.api import commit, ok
from hotline.api.auth import require_role
from hotline.db import get_session
from hotline.enums import UnitKind
from hotline.errors import ValidationFailed
from hotline.schemas import Fields, check_query, json_body


def create_blueprint():
    bp = Blueprint("admin_units_api", __name__)
    bp.add_url_rule("/admin/units", view_func=list_units)
    bp.add_url_rule("/admin/units", view_func=create_unit, methods=["POST"])
    bp.add_url_rule("/admin/units/<code>", view_func=get_unit)
    bp.add_url_rule("/admin/units/<code>", view_func=update_unit, methods=["PATCH"])
    bp.add_url_rule("/admin/units/<code>/deactivate", view_func=deactivate, methods=["POST"])
    bp.add_url_rule("/admin/units/<code>/reactivate", view_func=reactivate, methods=["POST"])
    return bp


def _admin_only():
    require_role(units.EDIT_ROLES, "“{role}”角色无权管理承办单位")


def list_units():
    """Units matching ``q`` (name or code), ``kind`` and ``active`` (true/false), each with
    its open tickets."""
    _admin_only()
    errors = {}
    text = (request.args.get("q") or "").strip()[:100] or None
    kind = None
    if request.args.get("kind"):
        kind = UnitKind.parse(request.args["kind"])
        if kind is None:
            errors["kind"] = f"单位类型取值无效，可选：{'、'.join(k.value for k in UnitKind)}"
    active = {"true": True, "false": False, None: None, "": None}.get(request.args.get("active"))
    if request.args.get("active") not in ("true", "false", None, ""):
        errors["active"] = "active 须为 true 或 false"
    check_query(errors)
    db = get_session()
    rows = units.search(db, text=text, kind=kind, active=active)
    counts = units.open_ticket_counts(db, [u.id for u in rows])
    return ok([units.unit_to_dict(u, counts.get(u.id, 0)) for u in rows])


def _detail(db, unit):
    by_role = units.open_by_role(db, unit)
    data = units.unit_to_dict(unit, units.open_ticket_counts(db, [unit.id]).get(unit.id, 0))
    data["open_by_role"] = {role.value: n for role, n in by_role.items()}
    rules = units.routing_rules_naming(db, unit)
    data["routing_rules"] = {"count": len(rules), "rules": [units.rule_to_dict(r) for r in rules]}
    return data


def get_unit(code):
    _admin_only()
    db = get_session()
    return ok(_detail(db, units.get_unit(db, code)))


@openapi.body(lambda data: units.unit_values(None, data))
@openapi.creates(code="$response.body#/data/code")
def create_unit():
    _admin_only()
    db = get_session()
    values = units.unit_values(db, json_body())
    unit = units.create_unit(db, g.user, values)
    commit()
    return ok(units.unit_to_dict(unit, 0), 201, {"Location": f"/api/v1/admin/units/{unit.code}"})


@openapi.body(lambda data: units.unit_values(None, data), partial=True)
def update_unit(code):
    """Change name, kind, ``always_on``, ``areas`` (codes) or ``phones`` (those given)."""
    _admin_only()
    db = get_session()
    unit = units.get_unit(db, code)
    values = units.unit_values(db, json_body(), unit=unit)
    changes = units.update_unit(db, g.user, unit, values)
    commit()
    return ok({**_detail(db, unit), "changes": changes})


def _deactivate_values(data):
    fields = Fields(data)
    target = fields.code("move_to", "接收单位")
    reason = fields.text("reason", "转移原因", max_len=500, multiline=True)
    fields.check()
    return target, reason


@openapi.body(_deactivate_values)
def deactivate(code):
    """Deactivate; with open tickets, ``move_to`` (a unit code) and ``reason`` are needed."""
    _admin_only()
    db = get_session()
    unit = units.get_unit(db, code)
    target, reason = _deactivate_values(json_body())
    move_to = None
    if target is not None:
        move_to = units.find_unit(db, target)
        if move_to is None:
            message = f"接收单位不存在：{target}"
            raise ValidationFailed(message, details={"move_to": message})
    result = units.deactivate_unit(db, g.user, unit, move_to=move_to, reason=reason)
    commit()
    return ok(result.as_dict())


def reactivate(code):
    _admin_only()
    db = get_session()
    unit = units.reactivate_unit(db, g.user, units.get_unit(db, code))
    commit()
    return ok(_detail(db, unit))
