"""导出质检成绩: ``GET /inspection/scores.xlsx?month=YYYY-MM``, every operator's month of 质检
(``dispatch.inspection.monthly_scores``) as an XLSX workbook (``dashboards.exports``), for
those who read the 质检成绩 page (inspectors, supervisors); audited (``inspection.export``),
as the scores judge people. The page itself lives with the rest of 质检 in
``dispatch.pages.inspection`` and links here; the workbook sits in ``dashboards`` with the
other exports, which the dispatch layer may not import.
"""

from flask import Blueprint, Response, current_app, g, request

from dashboards import exports
from dispatch import inspection
from hotline.audit import audit
from hotline.db import get_session, local_today, utcnow
from hotline.schemas import check_query
from hotline.web import page_for

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def create_blueprint():
    bp = Blueprint("inspection_export", __name__)
    bp.add_url_rule("/inspection/scores.xlsx", view_func=scores_xlsx)
    return bp


@page_for(*inspection.SCORE_ROLES)
def scores_xlsx():
    db = get_session()
    timezone = current_app.config["TIMEZONE"]
    errors = {}
    month = inspection.parse_month(request.args.get("month"), errors, local_today(timezone))
    check_query(errors)
    scores = inspection.monthly_scores(db, g.user, month)
    label = f"{month[0]:04d}-{month[1]:02d}"
    data = exports.inspection_scores_xlsx(
        scores, month=month, checklist=inspection.CHECKLIST, now=utcnow(), timezone=timezone
    )
    audit(db, g.user, "inspection.export", payload={"month": label, "operators": len(scores)})
    db.commit()
    response = Response(data, mimetype=XLSX_MIMETYPE)
    response.headers.set("Content-Disposition", "attachment", filename=f"质检成绩-{label}.xlsx")
    return response
