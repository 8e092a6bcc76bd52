"""吹哨报到 in the JSON API (``dispatch.whistle``):

- ``POST /tickets/<number>/whistle`` ``{"units": ["U-CGJ", …], "reason": …, "version"}``: 吹哨;
- ``POST /tickets/<number>/summons-report`` ``{"version"}``: the summoned department 报到;
- ``POST /tickets/<number>/summons-opinion`` ``{"opinion", "version"}``: 反馈意见;
- ``POST /tickets/<number>/summons-withdrawal`` ``{"unit", "reason", "version"}``: 撤回吹哨;
- ``GET /tickets/<number>/summonses``: the ticket's summonses, for whoever may see it;
- ``GET /summonses?which=open|late|all``: the supervisors' list.

Each POST answers with the ticket and its summonses; every rule lives in the operations.
"""

from flask import Blueprint, g, request

from dispatch import access, operations, schemas, whistle, whistle_schemas
from hotline import openapi
from hotline.api import commit, ok
from hotline.api.auth import require_role
from hotline.db import get_session, utcnow
from hotline.enums import Role
from hotline.errors import ValidationFailed
from hotline.schemas import Fields, json_body

#: Who reads the list of every summons.
LIST_ROLES = frozenset({Role.supervisor, Role.dispatcher, Role.leader, Role.admin})


def create_blueprint():
    bp = Blueprint("whistle", __name__)
    for form in whistle_schemas.FORMS.values():
        bp.add_url_rule(
            f"/tickets/<number>/{form.slug}",
            endpoint=form.slug,
            view_func=_transition_view(form),
            methods=["POST"],
        )
    bp.add_url_rule("/tickets/<number>/summonses", view_func=ticket_summonses)
    bp.add_url_rule("/summonses", view_func=list_summonses)
    return bp


def _answer(db, ticket):
    now = utcnow()
    body = schemas.ticket_to_dict(ticket, g.user)
    body["summonses"] = [
        whistle_schemas.summons_to_dict(s, now) for s in whistle.of_ticket(db, ticket)
    ]
    return body


def _transition_view(form):
    def view(number):
        db = get_session()
        operations.check_role(form.name, g.user)
        data = json_body()
        ticket = access.visible_ticket(db, g.user, number)
        values = schemas.parse_transition(db, g.user, form, data)
        form.operation(db, g.user, ticket, **values)
        commit()
        return ok(_answer(db, ticket))

    describe = openapi.body(lambda data: schemas.transition_values(None, form, Fields(data)))
    return describe(view)


def ticket_summonses(number):
    db = get_session()
    ticket = access.visible_ticket(db, g.user, number)
    now = utcnow()
    return ok(
        {"items": [whistle_schemas.summons_to_dict(s, now) for s in whistle.of_ticket(db, ticket)]}
    )


def list_summonses():
    require_role(LIST_ROLES, "“{role}”角色无权查看吹哨报到列表")
    which = request.args.get("which", "open")
    if which not in whistle.LIST_FILTERS:
        message = "取值应为 open、late 或 all"
        raise ValidationFailed(message, details={"which": message})
    db = get_session()
    now = utcnow()
    rows = whistle.listing(db, g.user, now, which)
    return ok(
        {
            "items": [
                {"ticket": s.ticket.number, **whistle_schemas.summons_to_dict(s, now)} for s in rows
            ]
        }
    )
