"""Who is logged in (Flask-Login), how a login is checked and throttled, and how a session
starts and ends. The JSON API and the web pages share one session and these rules.

The session holds Flask-Login's user id and ``csrf_token``: the raw CSRF secret that the API
expects echoed in ``X-CSRF-Token`` and that Flask-WTF signs into every form.
"""

import datetime as dt
import math
import secrets

import sqlalchemy as sa
from flask import current_app, g, request, session
from flask_login import LoginManager, login_user, logout_user
from flask_wtf.csrf import CSRFProtect

from hotline import attachments
from hotline.audit import audit
from hotline.db import get_session, utcnow
from hotline.errors import TooManyRequests
from hotline.models import AuditLog, User

login_manager = LoginManager()
csrf = CSRFProtect()
login_manager.login_view = "web.login"
login_manager.login_message = "请先登录"
login_manager.login_message_category = "notice"


@login_manager.user_loader
def _load_user(user_id):
    if not user_id.isdigit():
        return None
    user = get_session().get(User, int(user_id))
    return user if user is not None and user.active else None


def init_app(app):
    login_manager.init_app(app)
    # Pages are checked by Flask-WTF (the form field or ``X-CSRFToken``); the JSON API checks
    # its own ``X-CSRF-Token`` for session callers and needs none for token callers.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    csrf.init_app(app)

    @app.before_request
    def _check_page_csrf():
        if request.path.startswith("/api/"):
            return
        if request.mimetype == "multipart/form-data":
            # Page forms with photos: reading the token reads the form, so the photo limit
            # must apply before the check (JSON keeps the small ``MAX_CONTENT_LENGTH``).
            attachments.allow_upload()
        csrf.protect()

    @app.before_request
    def _forget_cached_user():
        # Flask-Login caches the user in ``g``; tests (and CLI contexts) may reuse one app
        # context across requests, so every request loads its user afresh.
        g.pop("_login_user", None)


def log_in(db, username, password, *, via):
    """Check a username and password; on success open a fresh session for the user. Audited
    either way (``via``: "api" or "web"). Returns the user, or None when refused: an unknown
    user and a wrong password are refused alike. Too many recent failures for the name or
    from the address raise ``TooManyRequests`` before the password is even checked."""
    _throttle(db, username, via)
    user = db.scalars(sa.select(User).where(User.username == username)).first()
    if user is None or not user.active or not user.check_password(password):
        audit(db, None, "auth.login_failed", target=username, payload={"via": via})
        db.commit()
        return None
    new_session()
    login_user(user)
    audit(db, user, "auth.login", target=user.username, payload={"via": via})
    db.commit()
    return user


def log_out():
    logout_user()
    new_session()


def new_session():
    """A fresh session with a fresh CSRF secret, forgetting any token signed from the old
    one (Flask-WTF keeps it in ``g`` for the request)."""
    session.clear()
    session["csrf_token"] = secrets.token_urlsafe(32)
    g.pop("csrf_token", None)


def _throttle(db, username, via):
    """Refuse a login attempt after ``LOGIN_MAX_FAILURES`` failures for one user name (since
    its last success) or ``LOGIN_MAX_FAILURES_PER_ADDRESS`` from one address within
    ``LOGIN_THROTTLE_MINUTES``. Counted from the audit log, so every process agrees."""
    config = current_app.config
    now = utcnow()
    window = dt.timedelta(minutes=config["LOGIN_THROTTLE_MINUTES"])
    since = now - window
    last_success = db.scalar(
        sa.select(sa.func.max(AuditLog.created_at)).where(
            AuditLog.action == "auth.login",
            AuditLog.target == username,
            AuditLog.created_at > since,
        )
    )
    checks = [
        (AuditLog.target == username, max(since, last_success or since), "LOGIN_MAX_FAILURES"),
    ]
    if request.remote_addr:
        checks.append(
            (AuditLog.remote_addr == request.remote_addr, since, "LOGIN_MAX_FAILURES_PER_ADDRESS")
        )
    for condition, start, limit_name in checks:
        recent = sa.select(AuditLog.created_at).where(
            AuditLog.action == "auth.login_failed", condition, AuditLog.created_at > start
        )
        failures = db.scalars(recent.order_by(AuditLog.created_at.desc())).all()
        limit = config[limit_name]
        if len(failures) >= limit:
            retry = failures[limit - 1] + window - now
            minutes = max(1, math.ceil(retry.total_seconds() / 60))
            audit(db, None, "auth.login_throttled", target=username, payload={"via": via})
            db.commit()
            seconds = math.ceil(retry.total_seconds())
            raise TooManyRequests(
                f"登录失败次数过多，请 {minutes} 分钟后再试",
                code="LOGIN_RATE_LIMITED",
                details={"retry_after_seconds": seconds},
                retry_after=seconds,
            )
