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
    # POST, with the form's CSRF token: a look-up is audited in the name of whoever makes it,
    # so a link from elsewhere must not make one; and the number stays out of URLs and logs.
    bp.add_url_rule("/personal-data", view_func=lookup_page, methods=["GET", "POST"])
    bp.add_url_rule("/personal-data/export.xlsx", view_func=export, methods=["POST"])
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
    if request.method == "GET":
        return _render()
    phone = request.form.get("phone", "")
    reason = request.form.get("reason", "")

    def refused(error):
        return _render(phone, reason, None, error.message, error.details, error.status)

    def look_up(db):
        held = requester_data.lookup(db, g.user, phone, reason)
        # What the page shows is recorded with the look-up, in its transaction.
        privacy.record(db, g.user, "requester_data", held.numbers)
        return held

    done, held = web.perform(look_up, refused=refused)
    if not done:
        return held
    return _render(phone, reason, held)


@page_for(*ROLES)
def export():
    phone = request.form.get("phone", "")
    reason = request.form.get("reason", "")

    def refused(error):
        return _render(phone, reason, None, error.message, error.details, error.status)

    timezone = current_app.config["TIMEZONE"]

    def export_(db):
        data, held = requester_data.export(db, g.user, phone, reason, timezone)
        privacy.record(db, g.user, "requester_data", held.numbers)
        return data, held

    done, result = web.perform(export_, refused=refused)
    if not done:
        return result
    data, held = result
    return send_file(
        io.BytesIO(data),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        as_attachment=True,
        download_name=f"个人信息_{privacy.mask_phone(held.phone)}.xlsx",
    )
