"""用户管理: the administrator's pages over ``hotline.users`` — the list with search and
paging, the create and edit form (unit, grids and district chosen by name in pickers), and
deactivate, reactivate and reset password, each behind a confirmation. A temporary password
(a new user's, a reset's) is shown once on the page that answers the change, never put in
the session or a redirect. The users import/export (``hotline.users.IMPORTER``) is
registered here."""

import sqlalchemy as sa
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from hotline import pickers, schemas, tabular, users, web
from hotline.db import get_session
from hotline.enums import AreaLevel, Role, UnitKind
from hotline.models import Unit, User
from hotline.web import page_for, perform

ADMIN = (Role.admin,)
#: Users per page of the list.
PAGE_SIZE = 30
#: The form's inputs (what ``hotline.users.parse_user`` reads).
FORM_FIELDS = ("username", "name", "role", "unit", "district", "phone", "password")


def create_blueprint():
    bp = Blueprint("admin_users", __name__, url_prefix="/admin/users")
    bp.add_url_rule("/", view_func=index)
    bp.add_url_rule("/new", view_func=new, methods=["GET", "POST"])
    bp.add_url_rule("/<username>", view_func=edit, methods=["GET", "POST"])
    bp.add_url_rule("/<username>/deactivate", view_func=deactivate, methods=["POST"])
    bp.add_url_rule("/<username>/activate", view_func=activate, methods=["POST"])
    bp.add_url_rule("/<username>/reset-password", view_func=reset_password, methods=["POST"])
    web.add_to_admin(bp, "index", "用户管理", "账号、角色与绑定的单位、网格、区县；停用与重置密码")
    tabular.register_on(bp, users.IMPORTER)
    return bp


# -- choices for the pickers -------------------------------------------------------------------


def unit_groups(db, selected=None):
    """Active units as picker groups by kind (and the selected one even if inactive)."""
    rows = db.execute(
        sa.select(Unit.code, Unit.name, Unit.kind, Unit.active)
        .where(sa.or_(Unit.active, Unit.code == (selected or "")))
        .order_by(Unit.kind, Unit.code)
    ).all()
    groups = {}
    for code, name, kind, active in rows:
        label = name if active else f"{name}（已停用）"
        groups.setdefault(UnitKind(kind).label, []).append(
            pickers.Choice(code=code, name=label, level=1, path=(label,), parent=None)
        )
    return tuple(pickers.Group(kind, tuple(options)) for kind, options in groups.items())


def _form_context(db, values):
    levels = pickers.area_levels(db)
    grid_names = {
        choice.code: choice for group in levels[AreaLevel.grid] for choice in group.options
    }
    return {
        "values": values,
        "roles": users.PERSON_ROLES,
        "unit_options": pickers.options_html(
            unit_groups(db, values.get("unit")), values.get("unit")
        ),
        "district_options": pickers.options_html(
            levels[AreaLevel.district], values.get("district")
        ),
        "grid_options": pickers.options_html(levels[AreaLevel.grid]),
        "chosen_grids": [
            grid_names.get(code) or pickers.Choice(code, code, 4, (code,), None)
            for code in values.get("grids", [])
        ],
        "rules": users.PASSWORD_RULES,
        "username_rules": users.USERNAME_RULES,
    }


def _posted():
    """The posted form as ``parse_user`` reads it: every input present (blank → None)."""
    data = {name: (request.form.get(name) or "").strip() or None for name in FORM_FIELDS}
    data["grids"] = [v.strip() for v in request.form.getlist("grids") if v.strip()]
    return data


def _typed(data):
    """What was typed, to show it back on a refused form (never the password)."""
    return {k: v for k, v in data.items() if k != "password"}


# -- list --------------------------------------------------------------------------------------


@page_for(*ADMIN)
def index():
    db = get_session()
    errors = {}
    filters = users.list_filters(request.args, errors)
    page = schemas.Page.from_args(request.args, size=PAGE_SIZE, errors=errors)
    schemas.check_query(errors)
    total, rows = page.of(db, users.search(**filters), User.username, options=users.LIST_OPTIONS)
    ids = [u.id for u in rows]
    active_arg = request.args.get("active", "1")
    return render_template(
        "admin/users.html",
        rows=rows,
        total=total,
        page=page,
        pages=page.count(total),
        sessions=users.open_sessions(db, ids),
        logins=users.last_logins(db, ids),
        roles=users.PERSON_ROLES,
        q=filters["text"] or "",
        role=filters["role"],
        unit=filters["unit"] or "",
        active=active_arg if active_arg in ("1", "0", "all") else "1",
        unit_options=pickers.options_html(unit_groups(db, filters["unit"]), filters["unit"]),
        query_args={k: v for k, v in request.args.items() if k != "page" and v},
    )


# -- create and edit ---------------------------------------------------------------------------


@page_for(*ADMIN)
def new():
    db = get_session()
    if request.method == "GET":
        return render_template("admin/user_form.html", user=None, **_form_context(db, {}))
    data = _posted()

    def change(db):
        values = users.parse_user(schemas.Fields(data), creating=True)
        password = values.pop("password") or users.temporary_password()
        user = users.create_user(db, g.user, **values, password=password, must_change_password=True)
        return user, password

    done, result = perform(change, refused=lambda exc: _refused_form(None, data, exc))
    if not done:
        return result
    user, password = result
    return render_template("admin/user_password.html", user=user, password=password, created=True)


@page_for(*ADMIN)
def edit(username):
    db = get_session()
    user = _user_or_404(db, username)
    if request.method == "GET":
        values = {
            "username": user.username,
            "name": user.name,
            "role": user.role.value,
            "unit": user.unit.code if user.unit else None,
            "district": user.district.code if user.district else None,
            "phone": user.phone,
            "grids": sorted(grid.code for grid in user.grids),
        }
        return _edit_page(db, user, values)
    data = _posted()
    data.pop("username")
    data.pop("password")

    def change(db):
        values = users.parse_user(schemas.Fields(data), creating=False)
        return users.update_user(db, g.user, user, values)

    done, result = perform(change, refused=lambda exc: _refused_form(user, data, exc))
    if not done:
        return result
    flash(f"已保存 {user.name}（{user.username}）" + ("" if result else "：没有变化"))
    return redirect(url_for("admin_users.edit", username=user.username))


def _edit_page(db, user, values, status=200, error=None, field_errors=None):
    sessions = users.open_sessions(db, [user.id]).get(user.id, 0)
    last_login = users.last_logins(db, [user.id]).get(user.id)
    page = render_template(
        "admin/user_form.html",
        user=user,
        sessions=sessions,
        last_login=last_login,
        error=error,
        field_errors=field_errors or {},
        **_form_context(db, values),
    )
    return page, status


def _refused_form(user, data, exc):
    db = get_session()
    values = _typed(data)
    if user is None:
        page = render_template(
            "admin/user_form.html",
            user=None,
            error=exc.message,
            field_errors=exc.details,
            **_form_context(db, values),
        )
        return page, exc.status
    values["username"] = user.username
    return _edit_page(db, user, values, exc.status, exc.message, exc.details)


def _user_or_404(db, username):
    user = db.scalars(sa.select(User).where(User.username == username)).first()
    if user is None:
        abort(404)
    return user


# -- deactivate, activate, reset password ------------------------------------------------------


def _action(username, run, done_message):
    db = get_session()
    user = _user_or_404(db, username)

    def refused(exc):
        flash(exc.message, "error")
        return redirect(url_for("admin_users.edit", username=username))

    done, result = perform(lambda db: run(db, user), refused=refused)
    if not done:
        return result
    flash(done_message(user, result))
    return redirect(url_for("admin_users.edit", username=username))


@page_for(*ADMIN)
def deactivate(username):
    return _action(
        username,
        lambda db, user: users.deactivate(db, g.user, user),
        lambda user, ended: (
            f"已停用 {user.name}（{user.username}）"
            + (f"，其 {ended} 个登录已结束" if ended else "")
        ),
    )


@page_for(*ADMIN)
def activate(username):
    return _action(
        username,
        lambda db, user: users.activate(db, g.user, user),
        lambda user, _: f"已启用 {user.name}（{user.username}）",
    )


@page_for(*ADMIN)
def reset_password(username):
    db = get_session()
    user = _user_or_404(db, username)
    chosen = request.form.get("password") or None

    def refused(exc):
        flash(f"未重置密码：{exc.message}", "error")
        return redirect(url_for("admin_users.edit", username=username))

    done, result = perform(
        lambda db: users.reset_password(db, g.user, user, chosen), refused=refused
    )
    if not done:
        return result
    return render_template("admin/user_password.html", user=user, password=result, created=False)
