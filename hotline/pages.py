"""The login page: a Flask-WTF form (CSRF-checked) over ``hotline.auth``, the same session the
JSON API reads. After login each role lands on its own workbench (``web.home_url``).

And the message centre's full page (消息中心): the user's own inbox (``notify.inbox_unit_of``),
newest first and paged, with mark read and mark all read (``notify.mark_read``,
``notify.mark_all_read``). The header's bell (``base.html``, ``static/messages.js``) opens
the newest items of the same inbox on every page.

And 修改密码 (``/account/password``), where every user changes their own password
(``hotline.users.change_own_password``)."""

import sqlalchemy as sa
from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from hotline import notify, schemas, users
from hotline.auth import current_key_hash, log_in, log_out
from hotline.db import get_session
from hotline.enums import AlertLevel, Role
from hotline.errors import NotFound, TooManyRequests, ValidationFailed
from hotline.models import Notification
from hotline.web import home_url, page_for, perform, safe_next

#: Items per page of the message centre.
MESSAGES_PAGE_SIZE = 20


def create_blueprint():
    bp = Blueprint("web", __name__, template_folder="templates")
    bp.add_url_rule("/", view_func=index)
    bp.add_url_rule("/login", view_func=login, methods=["GET", "POST"])
    bp.add_url_rule("/logout", view_func=logout, methods=["POST"])
    bp.add_url_rule("/account/password", view_func=account_password, methods=["GET", "POST"])
    bp.add_url_rule("/messages", view_func=messages)
    bp.add_url_rule("/messages/<id:item_id>/read", view_func=read_message, methods=["POST"])
    bp.add_url_rule("/messages/read-all", view_func=read_all_messages, methods=["POST"])
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


@page_for(*Role)
def account_password():
    """修改密码: every user changes their own password here (the old one required); their
    other sessions end. After an administrator's reset every page leads here until done
    (``hotline.auth``)."""
    held = g.user.must_change_password
    if request.method == "POST":

        def change(db):
            return users.change_own_password(
                db,
                g.user,
                request.form.get("old_password", ""),
                _new_password(),
                keep_session=current_key_hash(),
            )

        def refused(exc):
            page = render_template(
                "account_password.html",
                held=held,
                rules=users.PASSWORD_RULES,
                error=exc.message,
                field_errors=exc.details,
                next=request.form.get("next", ""),
            )
            return page, exc.status

        done, result = perform(change, refused=refused)
        if not done:
            return result
        flash("密码已修改" + (f"，您在其他设备上的 {result} 个登录已退出" if result else ""))
        return redirect(safe_next(request.form.get("next")) or home_url(g.user))
    return render_template(
        "account_password.html",
        held=held,
        rules=users.PASSWORD_RULES,
        error=None,
        field_errors={},
        next=safe_next(request.args.get("next")) or "",
    )


def _new_password():
    new, again = request.form.get("password", ""), request.form.get("password_again", "")
    if not new:
        raise ValidationFailed("请填写新密码", details={"password": "请填写新密码"})
    if new != again:
        raise ValidationFailed(
            "两次输入的新密码不一致", details={"password_again": "两次输入的新密码不一致"}
        )
    return new


def _own_inbox(db):
    return notify.inbox_unit_of(db, g.user, current_app.config["MAYORS_OFFICE_UNIT"])


@page_for(*Role)
def messages():
    """消息中心: the user's own inbox, newest first, ``page`` by page; ``unread=1`` for
    unread only, ``level=red|yellow|info``."""
    db = get_session()
    unit = _own_inbox(db)
    errors = {}
    filters = schemas.inbox_filters(request.args, errors)
    filters["before"] = None
    page = schemas.Page.from_args(request.args, size=MESSAGES_PAGE_SIZE, errors=errors)
    schemas.check_query(errors)
    total, rows, unread, newest = 0, [], 0, None
    if unit is not None:
        query = notify.inbox_query(unit.id, **filters)
        total = db.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
        rows = db.execute(
            query.order_by(Notification.id.desc()).limit(page.size).offset(page.offset)
        ).all()
        unread = notify.unread_count(db, unit.id)
        # 全部已读 stops at the newest item there was when the page was drawn.
        newest = db.scalar(
            sa.select(sa.func.max(Notification.id)).where(Notification.unit_id == unit.id)
        )
    return render_template(
        "messages.html",
        unit=unit,
        rows=rows,
        total=total,
        unread=unread,
        newest=newest,
        page=page,
        pages=page.count(total),
        unread_only=filters["unread_only"],
        level=filters["level"],
        levels=list(AlertLevel),
        badge=schemas.badge,
    )


def _back():
    return redirect(safe_next(request.form.get("next")) or url_for("web.messages"))


@page_for(*Role)
def read_message(item_id):
    """标为已读: one item of the user's own inbox."""

    def change(db):
        item = db.get(Notification, item_id)
        if item is None:
            raise NotFound("消息不存在", code="NOTIFICATION_NOT_FOUND")
        return notify.mark_read(db, g.user, item, _own_inbox(db))

    done, result = perform(change, refused=_refused)
    return _back() if done else result


@page_for(*Role)
def read_all_messages():
    """全部已读: every unread item of the user's own inbox up to the newest one shown."""

    def change(db):
        fields = schemas.Fields(
            schemas.form_values(request.form, integers=("up_to",), skip=("csrf_token", "next"))
        )
        up_to = fields.integer("up_to", "消息编号", minimum=1, maximum=2**31 - 1)
        fields.check()
        return notify.mark_all_read(db, g.user, _own_inbox(db), up_to=up_to)

    done, result = perform(change, refused=_refused)
    if not done:
        return result
    flash(f"已将 {result} 条消息标为已读" if result else "没有未读消息")
    return _back()


def _refused(exc):
    return render_template("error.html", status=exc.status, message=exc.message), exc.status
