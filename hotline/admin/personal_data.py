"""个人信息查询 in the administration (``hotline.requester_data``): a supervisor or an
administrator answering a citizen's request types the number and the reason, sees all that
is held about it and downloads it as XLSX. Both are audited with the reason; the page's view
of the data is also recorded as a personal-data view (``hotline.privacy``)."""

import io

from flask import Blueprint, current_app, g, render_template, request, send_file

from hotline import privacy, requester_data, web
from hotline.enums import Role
from hotline.web import page_for

ROLES = tuple(requester_data.ROLES)


def create_blueprint():
    bp = Blueprint("admin_personal_data", __name__, url_prefix="/admin")
    bp.add_url_rule("/personal-data", view_func=lookup_page)
    bp.add_url_rule("/personal-data/export.xlsx", view_func=export)
    web.add_to_admin(
        bp,
        "lookup_page",
        "个人信息查询",
        "按市民申请查询、导出其电话号码名下的全部个人信息（须填写事由，全程留痕）",
        roles=[Role.supervisor],
    )
    return bp


def _render(phone="", reason="", held=None, error=None, errors=None, status=200):
    return (
        render_template(
            "admin/personal_data.html",
            phone=phone,
            reason=reason,
            held=held,
            error=error,
            errors=errors or {},
            sheets=requester_data.SHEETS,
        ),
        status,
    )


@page_for(*ROLES)
def lookup_page():
    phone = request.args.get("phone", "")
    reason = request.args.get("reason", "")
    if "phone" not in request.args:
        return _render()

    def refused(error):
        return _render(phone, reason, None, error.message, error.details, error.status)

    done, held = web.perform(
        lambda db: requester_data.lookup(db, g.user, phone, reason), refused=refused
    )
    if not done:
        return held
    for number in held.numbers:
        privacy.viewed(g.user, number, what="requester_data")
    return _render(phone, reason, held)


@page_for(*ROLES)
def export():
    phone = request.args.get("phone", "")
    reason = request.args.get("reason", "")

    def refused(error):
        return _render(phone, reason, None, error.message, error.details, error.status)

    timezone = current_app.config["TIMEZONE"]
    done, result = web.perform(
        lambda db: requester_data.export(db, g.user, phone, reason, timezone), refused=refused
    )
    if not done:
        return result
    data, held = result
    for number in held.numbers:
        privacy.viewed(g.user, number, what="requester_data")
    return send_file(
        io.BytesIO(data),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        as_attachment=True,
        download_name=f"个人信息_{privacy.mask_phone(held.phone)}.xlsx",
    )
