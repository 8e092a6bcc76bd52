"""开放接口密钥 in the administration: the Open311 clients' API keys — the list (name,
first characters, created, last used, revoked), the form that makes a key and shows it once,
and revoking one.

Views parse and render; ``dispatch.open311`` holds every rule. A new key is shown on the
answer to the POST itself, never in a URL, a flash message or the session.
"""

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from dispatch import open311
from hotline import web
from hotline.db import get_session
from hotline.enums import Role
from hotline.errors import ValidationFailed
from hotline.models import Open311Key
from hotline.web import page_for

ADMIN = (Role.admin,)


def create_blueprint():
    bp = Blueprint(
        "admin_open311", __name__, url_prefix="/admin/open311", template_folder="templates"
    )
    bp.add_url_rule("/", view_func=keys_page, methods=["GET", "POST"])
    bp.add_url_rule("/<int:key_id>/revoke", view_func=revoke, methods=["POST"])
    web.add_to_admin(
        bp, "keys_page", "开放接口密钥", "其他系统通过 Open311 接口提交诉求所用的密钥：新建、吊销"
    )
    return bp


def _page(*, error=None, created=None, key=None, typed=None, status=200):
    db = get_session()
    return (
        render_template(
            "admin_open311/list.html",
            keys=open311.list_keys(db),
            error=error,
            created=created,
            key=key,
            typed=typed or {"name": "", "note": ""},
            endpoint=request.url_root.rstrip("/") + "/open311/v2",
        ),
        status,
        # The page that shows a new key is never kept by a browser or a proxy.
        {"Cache-Control": "no-store"},
    )


@page_for(*ADMIN)
def keys_page():
    if request.method == "GET":
        return _page()
    typed = {"name": request.form.get("name", ""), "note": request.form.get("note", "")}

    def change(db):
        return open311.create_key(db, g.user, typed["name"], typed["note"])

    done, result = web.perform(
        change, refused=lambda error: _page(error=error, typed=typed, status=422)
    )
    if not done:
        return result
    row, key = result
    return _page(created=row, key=key)


@page_for(*ADMIN)
def revoke(key_id):
    db = get_session()
    row = db.get(Open311Key, key_id)
    if row is None:
        abort(404)

    def change(db):
        if request.form.get("confirm") != "yes":
            raise ValidationFailed(f"请勾选“确认吊销”后再吊销“{row.name}”的密钥")
        return open311.revoke_key(db, g.user, row)

    done, result = web.perform(change, refused=lambda error: _page(error=error, status=422))
    if not done:
        return result
    flash(f"已吊销密钥“{row.name}”" if result else f"密钥“{row.name}”此前已吊销")
    return redirect(url_for("admin_open311.keys_page"))
