"""Server-rendered pages' login: a Flask-WTF form (CSRF-checked) that opens the same
session the JSON API reads, and the guard pages use to admit a role.

The session holds ``user_id`` and ``csrf_token``: the API expects that token echoed in
``X-CSRF-Token``; forms carry Flask-WTF's signed form of it.
"""

import functools
from urllib.parse import urlsplit

from flask import Blueprint, abort, g, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from hotline.api.auth import log_in, new_session
from hotline.db import get_session
from hotline.models import User

bp = Blueprint("web", __name__, template_folder="templates")
# Forms written by hand in templates carry ``{{ csrf_token() }}``.
bp.add_app_template_global(generate_csrf, "csrf_token")


class LoginForm(FlaskForm):
    username = StringField("用户名", validators=[DataRequired("请填写用户名"), Length(max=64)])
    password = PasswordField("密码", validators=[DataRequired("请填写密码"), Length(max=200)])


def current_user():
    """The logged-in, active user of this browser session, or None (also kept in
    ``g.web_user`` for the page header)."""
    user_id = session.get("user_id")
    user = get_session().get(User, user_id) if user_id is not None else None
    g.web_user = user if user is not None and user.active else None
    return g.web_user


def page_for(*roles):
    """Admit only logged-in users with one of ``roles``; others go to the login page (not
    logged in) or get 403 (logged in, wrong role)."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            user = current_user()
            if user is None:
                return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
            if user.role not in roles:
                abort(403)
            g.user = user
            return view(*args, **kwargs)

        return wrapper

    return decorate


def _safe_next(target):
    """Only a path on this site (no scheme, no host) may be a redirect target."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/"):
        return None
    # "//host" and "/\host" (browsers read both as another host) are not our paths.
    if target.startswith("//") or "\\" in target:
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        user = log_in(get_session(), form.username.data, form.password.data, via="web")
        if user is None:
            error = "用户名或密码错误"
        else:
            return redirect(_safe_next(request.args.get("next")) or url_for("reports.ranking_page"))
    elif request.method == "POST":
        error = "；".join(e for errors in form.errors.values() for e in errors)
    status = 200 if error is None else 400
    return render_template("login.html", form=form, error=error), status


@bp.post("/logout")
def logout():
    form = FlaskForm()
    if not form.validate_on_submit():
        abort(400)
    new_session()
    return redirect(url_for("web.login"))
