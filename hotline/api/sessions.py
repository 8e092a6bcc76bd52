"""Login, logout, who am I, and API tokens."""

from flask import Blueprint, g, session
from flask_login import current_user

from hotline import auth, openapi
from hotline.api import commit, ok
from hotline.auth import log_in, log_out
from hotline.db import get_session
from hotline.errors import AuthRequired
from hotline.schemas import Fields, json_body


def create_blueprint():
    bp = Blueprint("sessions", __name__)
    bp.add_url_rule("/auth/login", view_func=login, methods=["POST"])
    bp.add_url_rule("/auth/logout", view_func=logout, methods=["POST"])
    bp.add_url_rule("/me", view_func=me)
    bp.add_url_rule("/auth/tokens", view_func=create_token, methods=["POST"])
    bp.add_url_rule("/auth/tokens/<id:token_id>", view_func=revoke_token, methods=["DELETE"])
    return bp


def user_to_dict(user):
    return {
        "username": user.username,
        "name": user.name,
        "role": user.role.value,
        "role_label": user.role.label,
        "unit": {"code": user.unit.code, "name": user.unit.name} if user.unit else None,
        "grids": [grid.code for grid in user.grids],
        "district": user.district.code if user.district else None,
        #: Set after an administrator's reset: nothing but the password change (``POST
        #: /me/password``), /me and logout answers until then (403 PASSWORD_CHANGE_REQUIRED).
        "must_change_password": user.must_change_password,
    }


def _login_values(data):
    fields = Fields(data)
    username = fields.text("username", "用户名", required=True, max_len=64)
    fields.describe("password", "密码", True, type="string", minLength=1)
    password = fields.raw("password")
    if not isinstance(password, str) or not password:
        fields.errors["password"] = "请填写密码"
    fields.check()
    return username, password


@openapi.body(_login_values)
def login():
    username, password = _login_values(json_body())
    user = log_in(get_session(), username, password, via="api")
    if user is None:
        raise AuthRequired("用户名或密码错误", code="LOGIN_FAILED")
    return ok({"user": user_to_dict(user), "csrf_token": session["csrf_token"]})


def logout():
    """End the session on the server (and every other session of the user)."""
    log_out(get_session(), current_user)
    return ok({})


def me():
    return ok(user_to_dict(g.user))


def _token_label(data):
    fields = Fields(data)
    label = fields.text("label", "用途说明", max_len=100) or ""
    fields.check()
    return label


@openapi.body(_token_label)
def create_token():
    """Issue an API token for the calling user; the token itself is shown only this once."""
    label = _token_label(json_body())
    row, token = auth.create_token(get_session(), g.user, label)
    commit()
    return ok({"id": row.id, "token": token, "label": label}, 201)


def revoke_token(token_id):
    row = auth.revoke_token(get_session(), g.user, token_id)
    commit()
    return ok({"id": row.id})
