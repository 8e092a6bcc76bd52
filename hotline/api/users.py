"""User accounts in the JSON API (用户管理, ``hotline.users`` holds every rule): administrators
list, create, edit, deactivate, reactivate and reset the password of users; every user changes
their own password at ``POST /me/password``."""

from flask import Blueprint, g, request

from hotline import openapi, users
from hotline.api import commit, ok
from hotline.api.auth import require_role
from hotline.auth import current_key_hash
from hotline.db import get_session
from hotline.enums import Role
from hotline.models import User
from hotline.schemas import Fields, Page, check_query, json_body

#: Users per page of the list, by default and at most.
PAGE_SIZE = 50
PAGE_MAX = 200


def create_blueprint():
    bp = Blueprint("users", __name__)
    bp.add_url_rule("/users", view_func=list_users)
    bp.add_url_rule("/users", view_func=create_user, methods=["POST"])
    bp.add_url_rule("/users/<username>", view_func=get_user)
    bp.add_url_rule("/users/<username>", view_func=update_user, methods=["PATCH"])
    bp.add_url_rule("/users/<username>/deactivate", view_func=deactivate, methods=["POST"])
    bp.add_url_rule("/users/<username>/activate", view_func=activate, methods=["POST"])
    bp.add_url_rule("/users/<username>/reset-password", view_func=reset_password, methods=["POST"])
    bp.add_url_rule("/me/password", view_func=change_own_password, methods=["POST"])
    return bp


def _require_admin():
    require_role({Role.admin}, "“{role}”角色无权管理用户")


def _dict(db, user):
    sessions = users.open_sessions(db, [user.id])
    logins = users.last_logins(db, [user.id])
    return users.user_to_dict(
        user, open_sessions=sessions.get(user.id, 0), last_login=logins.get(user.id)
    )


@openapi.query(lambda args: _list_query(args))
def list_users():
    """Users matching ``q``, ``role``, ``unit``, ``active`` (default: active only), by
    username, ``page`` by page (``per_page`` up to 200)."""
    _require_admin()
    db = get_session()
    filters, page = _list_query(request.args)
    total, rows = page.of(db, users.search(**filters), User.username, options=users.LIST_OPTIONS)
    ids = [u.id for u in rows]
    sessions, logins = users.open_sessions(db, ids), users.last_logins(db, ids)
    items = [
        users.user_to_dict(u, open_sessions=sessions.get(u.id, 0), last_login=logins.get(u.id))
        for u in rows
    ]
    return ok({"items": items, **page.to_dict(total)})


def _list_query(args):
    errors = {}
    filters = users.list_filters(args, errors)
    page = Page.from_args(
        args, size=PAGE_SIZE, size_arg="per_page", max_size=PAGE_MAX, errors=errors
    )
    check_query(errors)
    return filters, page


def get_user(username):
    _require_admin()
    db = get_session()
    return ok(_dict(db, users.get(db, username)))


@openapi.body(lambda data: users.parse_user(Fields(data), creating=True))
def create_user():
    """A new user; without ``password`` a temporary one is generated. Either way the user
    must change it at their first login, and it is in the answer this once
    (``temporary_password``)."""
    _require_admin()
    values = users.parse_user(Fields(json_body()), creating=True)
    password = values.pop("password") or users.temporary_password()
    db = get_session()
    user = users.create_user(db, g.user, **values, password=password, must_change_password=True)
    commit()
    return ok({"user": _dict(db, user), "temporary_password": password}, 201)


@openapi.body(lambda data: users.parse_user(Fields(data), creating=False), partial=True)
def update_user(username):
    """Change any of name, role, unit, grids, district, phone (absent: unchanged; null:
    cleared). Answers the user and the changes made (``{field: [old, new]}``)."""
    _require_admin()
    db = get_session()
    user = users.get(db, username)
    values = users.parse_user(Fields(json_body()), creating=False)
    diff = users.update_user(db, g.user, user, values)
    commit()
    return ok({"user": _dict(db, user), "changes": diff})


def deactivate(username):
    """Stop the user from logging in; every session of theirs ends at once."""
    _require_admin()
    db = get_session()
    user = users.get(db, username)
    ended = users.deactivate(db, g.user, user)
    commit()
    return ok({"user": _dict(db, user), "sessions_ended": ended})


def activate(username):
    _require_admin()
    db = get_session()
    user = users.get(db, username)
    users.activate(db, g.user, user)
    commit()
    return ok({"user": _dict(db, user)})


def reset_password(username):
    """A temporary password (``password`` in the body, or generated), shown this once; the
    user must change it at their next login, and every session of theirs ends."""
    _require_admin()
    fields = Fields(json_body() if request.get_data() else {})
    password = fields.raw("password")
    if password is not None and not isinstance(password, str):
        fields.fail("password", "密码须为文本")
    fields.check()
    db = get_session()
    user = users.get(db, username)
    temporary = users.reset_password(db, g.user, user, password or None)
    commit()
    return ok({"user": _dict(db, user), "temporary_password": temporary})


def change_own_password():
    """The caller's own password: ``old_password`` and the new ``password``. Every other
    session of theirs ends; the one that asked stays open."""
    fields = Fields(json_body())
    old = fields.raw("old_password")
    new = fields.raw("password")
    if not isinstance(old, str) or not old:
        fields.fail("old_password", "请填写原密码")
    if not isinstance(new, str) or not new:
        fields.fail("password", "请填写新密码")
    fields.check()
    db = get_session()
    ended = users.change_own_password(db, g.user, old, new, keep_session=current_key_hash())
    commit()
    return ok({"sessions_ended": ended, "rules": users.PASSWORD_RULES})
