"""Server-rendered pages' login and the guard every page uses to admit a role.

Login is a Flask-WTF form (CSRF-checked) over ``hotline.auth``, the same session the JSON API
reads. After login each role lands on its own workbench (``HOME``).
"""

import functools
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from hotline.auth import log_in, log_out
from hotline.db import get_session, local_datetime
from hotline.enums import Role
from hotline.errors import TooManyRequests

bp = Blueprint("web", __name__, template_folder="templates")
# Forms written by hand in templates carry ``{{ csrf_token() }}``.
bp.add_app_template_global(generate_csrf, "csrf_token")


@bp.app_template_global()
def api_csrf_token():
    """The session's raw CSRF secret, which page scripts echo in ``X-CSRF-Token`` when they
    call the JSON API (forms carry Flask-WTF's signed form of the same secret)."""
    generate_csrf()  # makes sure the session has one
    return session["csrf_token"]


#: Where each role starts (endpoint names); the header's menu lists the pages of ``MENU``.
HOME = {
    Role.operator: "console.console_page",
    Role.dispatcher: "desk.dispatch_queue",
    Role.unit_handler: "desk.inbox",
    Role.grid_worker: "grid.grid_page",
    Role.callback_agent: "followup.callbacks",
    Role.supervisor: "followup.supervision",
    Role.leader: "boards.board_page",
    Role.admin: "boards.board_page",
}


#: The header's menu: (endpoint, label, roles).
MENU = [
    ("console.console_page", "受理台", {Role.operator}),
    ("desk.dispatch_queue", "派单台", {Role.dispatcher}),
    ("desk.inbox", "待办工单", {Role.unit_handler}),
    ("grid.grid_page", "网格工作台", {Role.grid_worker}),
    ("followup.callbacks", "回访台", {Role.callback_agent}),
    ("followup.supervision", "督办审核", {Role.supervisor}),
    ("boards.board_page", "实时大屏", {Role.dispatcher, Role.supervisor, Role.leader, Role.admin}),
    ("reports.ranking_page", "月度排名", {Role.supervisor, Role.leader, Role.admin}),
    ("reports.rates_page", "三率查询", {Role.supervisor, Role.leader, Role.admin}),
]


@bp.app_context_processor
def _menu():
    def menu():
        if not current_user.is_authenticated:
            return []
        return [
            (url_for(endpoint), label, request.endpoint == endpoint)
            for endpoint, label, roles in MENU
            if current_user.role in roles
        ]

    return {"menu": menu}


@bp.app_template_filter("local")
def local_time(value):
    """A moment in the city's local time, to the minute (every page shows times so)."""
    if value is None:
        return "—"
    return f"{local_datetime(value, current_app.config['TIMEZONE']):%Y-%m-%d %H:%M}"


class LoginForm(FlaskForm):
    username = StringField("用户名", validators=[DataRequired("请填写用户名"), Length(max=64)])
    password = PasswordField("密码", validators=[DataRequired("请填写密码"), Length(max=200)])


def page_for(*roles):
    """Admit only logged-in users with one of ``roles``; others go to the login page (not
    logged in) or get 403 (logged in, wrong role). The view finds its user in ``g.user``."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
            if current_user.role not in roles:
                abort(403)
            g.user = current_user._get_current_object()
            return view(*args, **kwargs)

        return wrapper

    return decorate


def home_url(user):
    return url_for(HOME[user.role])


def safe_next(target):
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


@bp.get("/")
def index():
    if not current_user.is_authenticated:
        return redirect(url_for("web.login"))
    return redirect(home_url(current_user))


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    error, status = None, 200
    if form.validate_on_submit():
        try:
            user = log_in(get_session(), form.username.data, form.password.data, via="web")
        except TooManyRequests as exc:
            error, status = exc.message, exc.status
        else:
            if user is not None:
                return redirect(safe_next(request.args.get("next")) or home_url(user))
            error, status = "用户名或密码错误", 400
    elif request.method == "POST":
        error, status = "；".join(e for errors in form.errors.values() for e in errors), 400
    return render_template("login.html", form=form, error=error), status


@bp.post("/logout")
def logout():
    # CSRF-checked like every page POST (``hotline.auth``): no one logs a user out by link.
    log_out()
    return redirect(url_for("web.login"))
