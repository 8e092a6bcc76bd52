"""质检 in the JSON API (``dispatch.inspection``):

- ``GET /inspections``: pending samples, oldest day first (``operator``: a login name,
  ``day``: YYYY-MM-DD, ``page``, ``per_page``); inspectors and supervisors;
- ``GET /inspections/<id>``: one sample with its ticket as taken (the phone masked);
- ``POST /inspections/<id>/inspect``: score it (inspectors): ``category_points``,
  ``category_comment`` … for every checklist item, and ``comment``;
- ``POST /inspections/<id>/claim``: 领取 (inspectors; 409 ``INSPECTION_CLAIMED`` when
  another holds it); ``POST /inspections/<id>/release``: 放弃领取 (the holder, supervisors);
  a pending sample's ``inspector`` is its holder;
- ``GET /inspections/scores?month=YYYY-MM``: every operator's month;
- ``GET /inspections/mine?month=YYYY-MM``: an operator's own month, with every comment.
"""

from flask import Blueprint, current_app, g, request

from dispatch import inspection
from dispatch.access import mask_phone
from hotline.api import commit, ok
from hotline.api.auth import require_role
from hotline.db import get_session, local_today
from hotline.schemas import Page, check_query, json_body


def create_blueprint():
    bp = Blueprint("inspections", __name__)
    bp.add_url_rule("/inspections", view_func=list_samples)
    bp.add_url_rule("/inspections/scores", view_func=scores)
    bp.add_url_rule("/inspections/mine", view_func=mine)
    bp.add_url_rule("/inspections/<id:inspection_id>", view_func=get_sample)
    bp.add_url_rule("/inspections/<id:inspection_id>/inspect", view_func=inspect, methods=["POST"])
    bp.add_url_rule("/inspections/<id:inspection_id>/claim", view_func=claim, methods=["POST"])
    bp.add_url_rule("/inspections/<id:inspection_id>/release", view_func=release, methods=["POST"])
    return bp


def _month(errors):
    today = local_today(current_app.config["TIMEZONE"])
    return inspection.parse_month(request.args.get("month"), errors, today)


def list_samples():
    """待质检: pending samples, oldest day first."""
    require_role(inspection.SCORE_ROLES, "“{role}”角色无权查看质检队列")
    db = get_session()
    config = current_app.config
    errors = {}
    _, operator, day = inspection.queue_filters(db, request.args, errors)
    page = Page.from_args(
        request.args,
        size=config["DEFAULT_PAGE_SIZE"],
        size_arg="per_page",
        max_size=config["MAX_PAGE_SIZE"],
        errors=errors,
    )
    check_query(errors)
    total, rows = inspection.queue(
        db, g.user, page, operator_id=operator.id if operator else None, day=day
    )
    return ok({"items": [inspection.sample_to_dict(r) for r in rows], **page.to_dict(total)})


def _detail(db, row):
    return inspection.sample_to_dict(
        row,
        full=True,
        decision=inspection.intake_decision(db, row.ticket),
        # Inspectors never call the requester: masked, so no view to record.
        phone=mask_phone(row.ticket.requester_phone),
    )


def get_sample(inspection_id):
    require_role(inspection.SCORE_ROLES, "“{role}”角色无权查看质检记录")
    db = get_session()
    return ok(_detail(db, inspection.get(db, g.user, inspection_id)))


def inspect(inspection_id):
    """质检评分: once per sample (409 ``INSPECTION_DONE`` after)."""
    require_role(inspection.INSPECT_ROLES, "“{role}”角色无权进行质检评分")
    db = get_session()
    row = inspection.get(db, g.user, inspection_id)
    values = inspection.submission(json_body())
    inspection.inspect(db, g.user, row, **values)
    commit()
    return ok(_detail(db, row))


def claim(inspection_id):
    """领取: the caller holds the sample (409 ``INSPECTION_CLAIMED`` when another does)."""
    require_role(inspection.INSPECT_ROLES, "“{role}”角色无权领取质检样本")
    db = get_session()
    row = inspection.claim(db, g.user, inspection.get(db, g.user, inspection_id))
    commit()
    return ok(_detail(db, row))


def release(inspection_id):
    """放弃领取: the holder, or a supervisor, gives the sample back to the queue."""
    require_role(inspection.SCORE_ROLES, "“{role}”角色无权放弃领取质检样本")
    db = get_session()
    row = inspection.release(db, g.user, inspection.get(db, g.user, inspection_id))
    commit()
    return ok(_detail(db, row))


def scores():
    """质检成绩: every operator's month."""
    require_role(inspection.SCORE_ROLES, "“{role}”角色无权查看全体话务员的质检成绩")
    errors = {}
    month = _month(errors)
    check_query(errors)
    rows = inspection.monthly_scores(get_session(), g.user, month)
    return ok(
        {
            "month": f"{month[0]:04d}-{month[1]:02d}",
            "items": [inspection.score_to_dict(s) for s in rows],
        }
    )


def mine():
    """我的质检: the caller's own month."""
    require_role(inspection.OWN_ROLES, "“{role}”角色没有本人质检结果")
    errors = {}
    month = _month(errors)
    check_query(errors)
    done, score = inspection.results_of(get_session(), g.user, month)
    return ok(
        {
            "month": f"{month[0]:04d}-{month[1]:02d}",
            "summary": inspection.score_to_dict(score),
            "items": [inspection.sample_to_dict(r) for r in done],
        }
    )
