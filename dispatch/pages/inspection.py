"""质检 pages (``dispatch.inspection``):

- ``GET /inspection``: 待质检, the pending samples, oldest day first, filtered by operator
  (picked by name) and day; the inspectors' landing page (supervisors may look).
- ``GET/POST /inspection/<id>``: one sample — the ticket as it was taken (content, category,
  area, address, the recording, the intake decision, the operator) and the checklist form;
  a scored sample shows its scores. Inspectors score; supervisors read.
- ``POST /inspection/<id>/claim``: 领取 (inspectors): the form is shown to the holder only;
  ``POST /inspection/<id>/release``: 放弃领取 (the holder, or a supervisor).
- ``GET /inspection/scores``: 质检成绩, every operator's month (inspectors, supervisors).
- ``GET /inspection/mine``: 我的质检, an operator's own month with every comment.

Views parse and render: the checks, the scoring and who may see what live in
``dispatch.inspection``.
"""

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

from dispatch import inspection
from dispatch.access import mask_phone
from hotline import web
from hotline.db import get_session, local_today
from hotline.enums import InspectionState, Role
from hotline.schemas import Page, check_query, form_values
from hotline.web import page_for

READERS = tuple(inspection.SCORE_ROLES)


def create_blueprint():
    bp = Blueprint("inspection", __name__, template_folder="templates")
    bp.add_url_rule("/inspection", view_func=queue)
    bp.add_url_rule("/inspection/<id:inspection_id>", view_func=sample, methods=["GET", "POST"])
    bp.add_url_rule("/inspection/<id:inspection_id>/claim", view_func=claim, methods=["POST"])
    bp.add_url_rule("/inspection/<id:inspection_id>/release", view_func=release, methods=["POST"])
    bp.add_url_rule("/inspection/scores", view_func=scores)
    bp.add_url_rule("/inspection/mine", view_func=mine)
    web.add_to_menu(bp, "queue", "待质检", {Role.inspector}, home_of={Role.inspector})
    web.add_to_menu(bp, "scores", "质检成绩", inspection.SCORE_ROLES)
    web.add_to_menu(bp, "mine", "我的质检", inspection.OWN_ROLES)
    return bp


def _today():
    return local_today(current_app.config["TIMEZONE"])


@page_for(*READERS)
def queue():
    db = get_session()
    errors = {}
    operators, operator, day = inspection.queue_filters(db, request.args, errors)
    page = Page.from_args(request.args, size=current_app.config["DEFAULT_PAGE_SIZE"])
    check_query(errors)
    total, rows = inspection.queue(
        db, g.user, page, operator_id=operator.id if operator else None, day=day
    )
    return render_template(
        "inspection_queue.html",
        rows=rows,
        total=total,
        page=page,
        pages=page.count(total),
        operators=operators,
        chosen=operator.username if operator else "",
        day=day.isoformat() if day else "",
    )


def _render_sample(db, row, *, error=None, typed=None):
    ticket = row.ticket
    inspector = g.user.role in inspection.INSPECT_ROLES
    pending = row.state == InspectionState.pending
    return render_template(
        "inspection_sample.html",
        row=row,
        ticket=ticket,
        # Inspectors never call the requester: the number masked, as for other staff who
        # do not call (dispatch.access.FULL_PHONE_ROLES), so no view to record.
        phone=mask_phone(ticket.requester_phone),
        decision=inspection.intake_decision(db, ticket),
        recording_url=inspection.recording_url(ticket.recording_ref),
        checklist=inspection.CHECKLIST,
        items=inspection.item_rows(row),
        may_claim=inspector and pending and row.inspector_id is None,
        may_score=inspector and pending and row.inspector_id == g.user.id,
        may_release=pending
        and row.inspector_id is not None
        and (row.inspector_id == g.user.id or g.user.role == Role.supervisor),
        error=error,
        field_errors=(error.details or {}) if error is not None else {},
        typed=typed or {},
    ), (error.status if error is not None else 200)


@page_for(*READERS)
def sample(inspection_id):
    db = get_session()
    row = inspection.get(db, g.user, inspection_id)
    if request.method == "GET":
        return _render_sample(db, row)
    if g.user.role not in inspection.INSPECT_ROLES:
        abort(403)
    names = [f"{item.key}_points" for item in inspection.CHECKLIST]
    data = form_values(request.form, integers=names)
    typed = {k: v for k, v in request.form.items() if k != "csrf_token"}

    def change(session):
        values = inspection.submission(data)
        return inspection.inspect(session, g.user, row, **values)

    def refused(error):
        session = get_session()
        return _render_sample(
            session, inspection.get(session, g.user, inspection_id), error=error, typed=typed
        )

    done, result = web.perform(change, refused=refused)
    if not done:
        return result
    flash(f"工单 {row.ticket.number} 已质检评分：{result.score} 分")
    # On with the oldest sample still waiting, or back to the queue when none is left.
    following = inspection.next_pending(db, g.user)
    if following is None:
        return redirect(url_for("inspection.queue"))
    return redirect(url_for("inspection.sample", inspection_id=following))


def _claim_change(inspection_id, operation, message):
    def change(session):
        row = inspection.get(session, g.user, inspection_id)
        return operation(session, g.user, row)

    def refused(error):
        session = get_session()
        return _render_sample(session, inspection.get(session, g.user, inspection_id), error=error)

    done, result = web.perform(change, refused=refused)
    if not done:
        return result
    flash(message.format(number=result.ticket.number))
    return redirect(url_for("inspection.sample", inspection_id=inspection_id))


@page_for(*inspection.INSPECT_ROLES)
def claim(inspection_id):
    return _claim_change(inspection_id, inspection.claim, "已领取工单 {number} 的质检样本")


@page_for(*READERS)
def release(inspection_id):
    return _claim_change(inspection_id, inspection.release, "已放弃领取工单 {number} 的质检样本")


def _month():
    errors = {}
    month = inspection.parse_month(request.args.get("month"), errors, _today())
    check_query(errors)
    return month


def _months(month):
    """The month picker: the last twelve months and the one shown."""
    today = _today()
    year, number = today.year, today.month
    found = []
    for _ in range(12):
        found.append((year, number))
        year, number = (year - 1, 12) if number == 1 else (year, number - 1)
    if month not in found:
        found.append(month)
    return sorted(found, reverse=True)


@page_for(*READERS)
def scores():
    db = get_session()
    month = _month()
    return render_template(
        "inspection_scores.html",
        month=month,
        months=_months(month),
        scores=inspection.monthly_scores(db, g.user, month),
        checklist=inspection.CHECKLIST,
    )


@page_for(*inspection.OWN_ROLES)
def mine():
    db = get_session()
    month = _month()
    done, score = inspection.results_of(db, g.user, month)
    return render_template(
        "inspection_mine.html",
        month=month,
        months=_months(month),
        done=done,
        score=score,
        checklist=inspection.CHECKLIST,
        item_rows=inspection.item_rows,
    )
