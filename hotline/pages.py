"""The login page: a Flask-WTF form (CSRF-checked) over ``hotline.auth``, the same session the
JSON API reads. After login each role lands on its own workbench (``web.home_url``)."""

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from hotline.auth import log_in, log_out
from hotline.db import get_session
from hotline.errors import TooManyRequests
from hotline.web import home_url, safe_next


def create_blueprint():
    bp = Blueprint("web", __name__, template_folder="templates")
    bp.add_url_rule("/", view_func=index)
    bp.add_url_rule("/login", view_func=login, methods=["GET", "POST"])
    bp.add_url_rule("/logout", view_func=logout, methods=["POST"])
    return bp


class LoginForm(FlaskForm):
    username = StringField("用户名", validators=[DataRequired("请填写用户名"), Length(max=64)])
    password = PasswordField("密码", validators=[DataRequired("请填写密码"), Length(max=200)])


def index():
    if not current_user.is_authenticated:
        return redirect(url_for("web.login"))
    return redirect(home_url(current_user))


def login():
    form = LoginForm()
    error, status, headers = None, 200, {}
    if form.validate_on_submit():
        try:
            user = log_in(get_session(), form.username.data, form.password.data, via="web")
        except TooManyRequests as exc:
            error, status = exc.message, exc.status
            headers = exc.headers()
        else:
            if user is not None:
                return redirect(safe_next(request.args.get("next")) or home_url(user))
            error, status = "用户名或密码错误", 400
    elif request.method == "POST":
        error, status = "；".join(e for errors in form.errors.values() for e in errors), 400
    return render_template("login.html", form=form, error=error), status, headers


def logout():
    # CSRF-checked like every page POST (``hotline.auth``): no one logs a user out by link.
    log_out(get_session(), current_user)
    return redirect(url_for("web.login"))
