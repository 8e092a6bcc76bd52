"""The dispatch catalogue (派单目录) in the JSON API: its rules with their flags, the rules
that need attention, "who handles this?", and the administrators' changes
(``dispatch.catalogue`` holds every rule). ``GET /routing/suggest`` (whom a program dispatches
to) stays in ``dispatch.api.tickets``."""

from flask import Blueprint, g, request

from dispatch import catalogue, routing
from hotline import openapi
from hotline.api import commit, ok
from hotline.api.auth import require_role
from hotline.db import get_session
from hotline.schemas import Page, check_query, json_body

PER_PAGE = 50
MAX_PER_PAGE = 500


def create_blueprint():
    bp = Blueprint("catalogue", __name__)
    bp.add_url_rule("/routing/rules", view_func=list_rules)
    bp.add_url_rule("/routing/rules", view_func=create_rule, methods=["POST"])
    bp.add_url_rule("/routing/rules/issues", view_func=list_issues)
    bp.add_url_rule("/routing/rules/<id:rule_id>", view_func=get_rule)
    bp.add_url_rule("/routing/rules/<id:rule_id>", view_func=update_rule, methods=["PATCH"])
    bp.add_url_rule("/routing/rules/<id:rule_id>", view_func=delete_rule, methods=["DELETE"])
    bp.add_url_rule("/routing/preview", view_func=preview)
    return bp


def _require_reader():
    require_role(catalogue.READ_ROLES, "“{role}”角色无权查看派单目录")


def list_rules():
    """The rules matching ``category`` (its subtree), ``area`` (its subtree, or ``city``),
    ``unit``, ``issue`` (a flag kind or ``any``) and ``state`` (today/future/expired), each
    with its flags, by category and area."""
    _require_reader()
    errors = {}
    page = Page.from_args(
        request.args, size=PER_PAGE, size_arg="per_page", max_size=MAX_PER_PAGE, errors=errors
    )
    check_query(errors)
    filters = catalogue.parse_filters(request.args)
    db = get_session()
    today = routing.today()
    found = catalogue.listing(db, filters, today)
    shown = found[page.offset : page.offset + page.size]
    return ok(
        {
            "items": [catalogue.describe(rule, today, flags) for rule, flags in shown],
            "today": today.isoformat(),
            **page.to_dict(len(found)),
        }
    )


def list_issues():
    """Every flagged rule (conflicts, duplicates, shadowed, expired, inactive), with the count
    of each kind."""
    _require_reader()
    db = get_session()
    today = routing.today()
    found = catalogue.listing(db, catalogue.Filters(issue="any"), today)
    counts = {kind: 0 for kind in catalogue.FLAG_LABELS}
    for _, flags in found:
        for kind in {f.kind for f in flags}:
            counts[kind] += 1
    return ok(
        {
            "today": today.isoformat(),
            "counts": counts,
            "items": [catalogue.describe(rule, today, flags) for rule, flags in found],
        }
    )


def _describe(db, rule):
    today = routing.today()
    flags = catalogue.analyse(catalogue.all_rules(db), catalogue.offered_categories(db), today)
    return catalogue.describe(rule, today, flags.get(rule.id, []))


def get_rule(rule_id):
    _require_reader()
    db = get_session()
    return ok(_describe(db, catalogue.load_rule(db, rule_id)))


@openapi.body(lambda data: catalogue.rule_values(None, data, creating=True))
def create_rule():
    """A new rule: ``category``, ``unit`` (codes), ``area`` (code; absent or null: the whole
    city), ``valid_from``/``valid_to`` (``YYYY-MM-DD``; absent: open-ended), ``note``;
    ``replace: true`` ends conflicting older rules the day before this one starts."""
    catalogue.require_editor(g.user)
    db = get_session()
    values = catalogue.rule_values(db, json_body(), creating=True)
    rule = catalogue.create_rule(db, g.user, values, routing.today())
    commit()
    return ok(_describe(db, rule), 201, {"Location": f"/api/v1/routing/rules/{rule.id}"})


@openapi.body(lambda data: catalogue.rule_values(None, data, creating=False), partial=True)
def update_rule(rule_id):
    """Change the members given (as for creating); ``valid_to`` ends the rule."""
    catalogue.require_editor(g.user)
    db = get_session()
    rule = catalogue.load_rule(db, rule_id)
    values = catalogue.rule_values(db, json_body(), creating=False)
    catalogue.update_rule(db, g.user, rule, values, routing.today())
    commit()
    return ok(_describe(db, rule))


def delete_rule(rule_id):
    catalogue.require_editor(g.user)
    db = get_session()
    rule = catalogue.load_rule(db, rule_id)
    old = catalogue.delete_rule(db, g.user, rule)
    commit()
    return ok({"id": rule_id, "deleted": old})


def preview():
    """Who handles ``category`` at ``area`` (or the place read from ``address``) on ``date``
    (default today): the catalogue's unit, the rule that decided and the rules it beat, the
    unit a program dispatches to, and the learned router's top 3."""
    _require_reader()
    db = get_session()
    category, area, day, address = catalogue.preview_query(db, request.args)
    result = catalogue.preview(db, category, area, day, address=address)
    return ok(catalogue.preview_to_dict(result))
