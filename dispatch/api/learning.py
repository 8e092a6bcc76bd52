"""The classifier's retraining in the JSON API (``dispatch.learning``; the versions
themselves are ``hotline.api.classifier``'s ``/classifier/models``).

- ``GET /classifier/retrains``: the runs, newest first (``page``, ``per_page``), each with
  its status, reason and both models' figures; administrators and supervisors;
- ``POST /classifier/retrains``: ask for a retraining (administrators): 202 with the run,
  a new pending one or the one already pending or running; the scheduler runs it within
  minutes.
"""

from flask import Blueprint, g, request

from dispatch import learning, learning_schemas
from hotline import openapi
from hotline.api import ok
from hotline.db import get_session
from hotline.schemas import json_body


def create_blueprint():
    bp = Blueprint("learning", __name__)
    bp.add_url_rule("/classifier/retrains", view_func=list_retrains)
    bp.add_url_rule("/classifier/retrains", view_func=request_retrain, methods=["POST"])
    return bp


@openapi.query(learning_schemas.list_query)
def list_retrains():
    """The retraining runs, newest first: status, trigger, who asked, when, the candidate
    version and the one it was compared with, the gate's reason and both models' figures."""
    learning.require_reader(g.user)
    db = get_session()
    page = learning_schemas.list_query(request.args)
    total, rows = learning_schemas.runs(db, page)
    people = learning_schemas.requesters(db, rows)
    items = [learning_schemas.retrain_to_dict(r, people.get(r.requested_by_id)) for r in rows]
    return ok({"items": items, **page.to_dict(total)})


@openapi.body(learning_schemas.request_values)
def request_retrain():
    """重新训练: ask for a retraining now (the one pending or running if there is one)."""
    if request.content_length:
        learning_schemas.request_values(json_body())
    db = get_session()
    row = learning.request(db, g.user, "page")
    db.commit()
    requester = learning_schemas.requesters(db, [row]).get(row.requested_by_id)
    return ok(learning_schemas.retrain_to_dict(row, requester), status=202)
