"""Hot issues for programs, under /api/v1 (bearer token or session), as the pages show them
(``dashboards.hotspots``: the same filters, the same serialising, the same operations):

- ``GET /hotspots``: the list, hottest first (``district``, ``category``, ``from``, ``to``,
  ``state``, ``q``, ``page``, ``per_page``); a district leader gets those with a ticket in
  their district.
- ``GET /hotspots/<id>``: one hot issue with its tickets (the newest
  ``hotspots.TICKETS_SHOWN``, ``tickets_total`` in all), timeline (each moment with its
  local ``day``) and units (a district leader: of its tickets, those in their district;
  ``scoped`` says so).
- ``POST /hotspots/<id>/merge`` ``{"into", "reason"}``, ``/split`` ``{"tickets": [ids],
  "title"}``, ``/handle`` ``{"note"}``, ``/reopen`` ``{"note"}``, ``/rename`` ``{"title"}``:
  supervisors' decisions (``hotspots.DECIDE_ROLES``); each answers with the hot issue it leaves
  (the one merged into, the new one split off, or the same).
"""

from flask import Blueprint, current_app, g, request

from dashboards import hotspots
from hotline.api import commit, ok
from hotline.db import get_session
from hotline.schemas import Page, check_query, json_body


def create_blueprint():
    bp = Blueprint("hotspots", __name__)
    bp.add_url_rule("/hotspots", view_func=list_hotspots)
    bp.add_url_rule("/hotspots/<id:hot_id>", view_func=get_hotspot)
    bp.add_url_rule("/hotspots/<id:hot_id>/merge", view_func=merge, methods=["POST"])
    bp.add_url_rule("/hotspots/<id:hot_id>/split", view_func=split, methods=["POST"])
    bp.add_url_rule("/hotspots/<id:hot_id>/handle", view_func=handle, methods=["POST"])
    bp.add_url_rule("/hotspots/<id:hot_id>/reopen", view_func=reopen, methods=["POST"])
    bp.add_url_rule("/hotspots/<id:hot_id>/rename", view_func=rename, methods=["POST"])
    return bp


def _timezone():
    return current_app.config["TIMEZONE"]


def list_hotspots():
    hotspots.require_viewer(g.user)
    errors = {}
    filters = hotspots.parse_filters(request.args, g.user, timezone=_timezone(), errors=errors)
    config = current_app.config
    page = Page.from_args(
        request.args,
        size=config["DEFAULT_PAGE_SIZE"],
        size_arg="per_page",
        max_size=config["MAX_PAGE_SIZE"],
        errors=errors,
    )
    check_query(errors)
    db = get_session()
    total, issues = hotspots.list_issues(db, g.user, filters, page)
    sizes = hotspots.period_sizes(db, issues, filters)
    return ok(
        {
            "items": [hotspots.issue_to_dict(i, sizes.get(i.id)) for i in issues],
            **page.to_dict(total),
        }
    )


def _detail(hot_id):
    return hotspots.detail(get_session(), g.user, hot_id, timezone=_timezone())


def get_hotspot(hot_id):
    return ok(_detail(hot_id))


def _decided(result):
    commit()
    return ok(_detail(result.id))


def merge(hot_id):
    hotspots.require_decider(g.user)
    data = json_body()
    into = hotspots.id_of(data.get("into"), "into", "要并入的热点问题")
    return _decided(hotspots.merge(get_session(), g.user, hot_id, into, data.get("reason")))


def split(hot_id):
    hotspots.require_decider(g.user)
    data = json_body()
    ids = hotspots.ticket_ids_of(data.get("tickets"))
    new = hotspots.split(get_session(), g.user, hot_id, ids, title=data.get("title"))
    commit()
    return ok(_detail(new.id), 201)


def handle(hot_id):
    hotspots.require_decider(g.user)
    data = json_body()
    return _decided(hotspots.mark_handled(get_session(), g.user, hot_id, data.get("note")))


def reopen(hot_id):
    hotspots.require_decider(g.user)
    data = json_body()
    return _decided(hotspots.reopen(get_session(), g.user, hot_id, data.get("note")))


def rename(hot_id):
    hotspots.require_decider(g.user)
    data = json_body()
    return _decided(hotspots.rename(get_session(), g.user, hot_id, data.get("title")))
