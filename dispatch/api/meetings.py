"""疑难工单 and 联席会议 in the JSON API (``dispatch.hard_cases``, ``dispatch.meetings``).

- ``GET /hard-cases?rule=…&page=&per_page=``: tickets a meeting can act on meeting the
  rules, each with its findings (supervisors and leaders; a district's leader sees the
  district's);
- ``GET /meetings``, ``GET /meetings/<id>``: the meetings, one with its agenda and decisions
  (supervisors and the city's leaders);
- ``POST /meetings`` (title, scheduled_at, place, chair, attendees),
  ``POST /meetings/<id>/items`` (number, reason),
  ``POST /meetings/<id>/hold`` (minutes, held_at),
  ``POST /meetings/<id>/items/<item_id>/decision`` (unit, finish_due, notes): supervisors.

Moments are ISO 8601; one without an offset is the city's local time.
"""

from flask import Blueprint, current_app, g, request

from dispatch import access, hard_cases, meetings
from dispatch import meeting_schemas as schemas
from hotline import openapi
from hotline.api import commit, ok
from hotline.api.auth import require_role
from hotline.db import get_session, utcnow
from hotline.enums import Role
from hotline.errors import Forbidden
from hotline.schemas import Page, check_query, json_body


def create_blueprint():
    bp = Blueprint("meetings", __name__)
    bp.add_url_rule("/hard-cases", view_func=hard_case_list)
    bp.add_url_rule("/meetings", view_func=meeting_list)
    bp.add_url_rule("/meetings", view_func=meeting_create, methods=["POST"])
    bp.add_url_rule("/meetings/<int:meeting_id>", view_func=meeting_get)
    bp.add_url_rule("/meetings/<int:meeting_id>/items", view_func=item_add, methods=["POST"])
    bp.add_url_rule("/meetings/<int:meeting_id>/hold", view_func=meeting_hold, methods=["POST"])
    bp.add_url_rule(
        "/meetings/<int:meeting_id>/items/<int:item_id>/decision",
        view_func=item_decide,
        methods=["POST"],
    )
    return bp


def _page(errors):
    config = current_app.config
    return Page.from_args(
        request.args,
        size=config["DEFAULT_PAGE_SIZE"],
        size_arg="per_page",
        max_size=config["MAX_PAGE_SIZE"],
        errors=errors,
    )


def _city_reader():
    require_role(meetings.READER_ROLES, "“{role}”角色无权查看联席会议")
    if g.user.role == Role.leader and g.user.district_id is not None:
        raise Forbidden(
            "联席会议为全市事项，区县领导仅可查看本区县疑难工单", code="ROLE_NOT_ALLOWED"
        )


def _manager():
    require_role(meetings.MEETING_ROLES, "“{role}”角色无权管理联席会议")


def hard_case_list():
    """疑难工单: most rules met first, then the oldest."""
    require_role(meetings.READER_ROLES, "“{role}”角色无权查看疑难工单")
    errors = {}
    try:
        rules = hard_cases.parse_rules(request.args.getlist("rule"))
    except ValueError:
        rules = []
        errors["rule"] = "取值无效，可选：" + "、".join(hard_cases.RULES)
    page = _page(errors)
    check_query(errors)
    listing = hard_cases.listing(
        get_session(),
        utcnow(),
        page,
        tz=current_app.config["TIMEZONE"],
        rules=rules,
        scope=access.scope_condition(g.user),
    )
    return ok(
        {
            "items": [schemas.case_to_dict(c) for c in listing.cases],
            "counts": listing.counts,
            **page.to_dict(listing.total),
        }
    )


def meeting_list():
    _city_reader()
    errors = {}
    page = _page(errors)
    check_query(errors)
    total, rows = meetings.meetings_page(get_session(), page)
    items = [schemas.meeting_to_dict(m, items=False) for m in rows]
    return ok({"items": items, **page.to_dict(total)})


def meeting_get(meeting_id):
    _city_reader()
    return ok(schemas.meeting_to_dict(schemas.meeting_or_404(get_session(), meeting_id)))


@openapi.body(schemas.parse_meeting)
def meeting_create():
    _manager()
    values = schemas.parse_meeting(json_body())
    meeting = meetings.create_meeting(get_session(), g.user, **values)
    commit()
    return ok(schemas.meeting_to_dict(meeting), status=201)


@openapi.body(schemas.parse_item)
def item_add(meeting_id):
    _manager()
    db = get_session()
    meeting = schemas.meeting_or_404(db, meeting_id)
    values = schemas.parse_item(json_body())
    ticket = access.visible_ticket(db, g.user, values["number"])
    item = meetings.add_item(
        db, g.user, meeting, ticket, reason=values["reason"], tz=current_app.config["TIMEZONE"]
    )
    commit()
    return ok(schemas.item_to_dict(item), status=201)


@openapi.body(schemas.parse_hold)
def meeting_hold(meeting_id):
    _manager()
    db = get_session()
    meeting = schemas.meeting_or_404(db, meeting_id)
    values = schemas.parse_hold(json_body())
    meetings.hold_meeting(db, g.user, meeting, **values)
    commit()
    return ok(schemas.meeting_to_dict(meeting))


@openapi.body(lambda data: schemas.parse_decision(None, data))
def item_decide(meeting_id, item_id):
    _manager()
    db = get_session()
    item = schemas.item_or_404(db, schemas.meeting_or_404(db, meeting_id), item_id)
    values = schemas.parse_decision(db, json_body())
    meetings.decide_item(db, g.user, item, **values)
    commit()
    return ok(schemas.item_to_dict(item))
