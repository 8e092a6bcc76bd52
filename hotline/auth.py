"""Who is logged in (Flask-Login), how a login is checked and throttled, and how a session
starts and ends. The JSON API and the web pages share one session and these rules.

The session cookie holds Flask-Login's user id, ``sid`` (a random key whose SHA-256 names a
``user_sessions`` row) and ``csrf_token``: the raw CSRF secret that the API expects echoed in
``X-CSRF-Token`` and that Flask-WTF signs into every form. A request belongs to a user only
while that row is open: logging out, a password change and deactivation end every session
of the user on the server, so an old cookie is worth nothing. A user whose password an
administrator reset is held at the password change until they choose their own
(``_hold_for_password_change``). Passwords themselves are ruled in ``hotline.users``.

A login is checked in the same time whether the name exists or not (an unknown name is
checked against a dummy hash), and throttled per name and per client address
(``LOGIN_*``); addresses in ``LOGIN_TRUSTED_NETWORKS`` (a call centre behind one NAT
address) are throttled per name only.
"""

import datetime as dt
import functools
import hashlib
import ipaddress
import math
import secrets

import sqlalchemy as sa
from flask import current_app, g, redirect, request, session, url_for
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.security import check_password_hash, generate_password_hash

from hotline import attachments
from hotline.audit import audit
from hotline.cache import token_users
from hotline.db import get_session, utcnow
from hotline.enums import SERVICE_ROLES
from hotline.errors import Forbidden, NotFound, TooManyRequests
from hotline.models import ApiToken, AuditLog, User, UserSession

login_manager = LoginManager()
csrf = CSRFProtect()
login_manager.login_view = "web.login"
login_manager.login_message = "请先登录"
login_manager.login_message_category = "notice"

#: Why a session ended.
END_LOGOUT = "logout"
END_PASSWORD = "password_changed"
END_DEACTIVATED = "deactivated"


def key_hash(key):
    """How a session key is stored (``user_sessions.key_hash``)."""
    return hashlib.sha256(key.encode()).hexdigest()


def open_logins(db, key_hashes):
    """Which of ``key_hashes`` name sessions still open, of users still active."""
    if not key_hashes:
        return set()
    return set(
        db.scalars(
            sa.select(UserSession.key_hash)
            .join(User, User.id == UserSession.user_id)
            .where(
                UserSession.key_hash.in_(list(key_hashes)),
                UserSession.ended_at.is_(None),
                User.active,
            )
        )
    )


@login_manager.user_loader
def _load_user(user_id):
    """The user of this request's session, if that session is still open on the server."""
    key = session.get("sid")
    if not user_id.isdigit() or not isinstance(key, str):
        return None
    return (
        get_session()
        .scalars(
            sa.select(User)
            .join(UserSession, UserSession.user_id == User.id)
            .where(
                User.id == int(user_id),
                User.active,
                UserSession.key_hash == key_hash(key),
                UserSession.ended_at.is_(None),
            )
        )
        .first()
    )


def init_app(app):
    login_manager.init_app(app)
    # Pages are checked by Flask-WTF (the form field or ``X-CSRFToken``); the JSON API checks
    # its own ``X-CSRF-Token`` for session callers and needs none for token callers.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    csrf.init_app(app)
    # Computed once per process: the hash method of new passwords, so that checking an
    # unknown name costs what checking a known one does.
    app.extensions["hotline.dummy_hash"] = generate_password_hash(secrets.token_hex(16))
    try:
        trusted_networks(app.config["LOGIN_TRUSTED_NETWORKS"])
    except ValueError as exc:
        raise ValueError(f"配置项 LOGIN_TRUSTED_NETWORKS 有误：{exc}") from None

    @app.before_request
    def _check_page_csrf():
        if request.path.startswith("/api/"):
            return
        if request.mimetype == "multipart/form-data":
            # Page forms with photos: reading the token reads the form, so the photo limit
            # must apply before the check (JSON keeps the small ``MAX_CONTENT_LENGTH``).
            attachments.allow_upload()
        # Blueprints marked ``csrf.exempt`` (Open311: programs with an api_key) are skipped.
        csrf.protect(apply_exemptions=True)

    @app.before_request
    def _forget_cached_user():
        # Flask-Login caches the user in ``g``; tests (and CLI contexts) may reuse one app
        # context across requests, so every request loads its user afresh.
        g.pop("_login_user", None)

    app.before_request(_hold_for_password_change)


#: What a user who must change their password may still open: the password forms, logging
#: out, who am I (a client learns why it is held) and the static files.
PASSWORD_CHANGE_OPEN = {
    "static",
    "web.login",
    "web.logout",
    "web.account_password",
    "api.sessions.login",
    "api.sessions.logout",
    "api.sessions.me",
    "api.users.change_own_password",
}


def _hold_for_password_change():
    """必须修改密码: a user whose password an administrator reset (``must_change_password``)
    opens nothing but the password change until they have chosen their own — every page
    redirects to it, and the API answers 403 ``PASSWORD_CHANGE_REQUIRED``. Held here, in one
    place, for the login session; an API token is a credential of its own (revoked apart)."""
    if request.endpoint in PASSWORD_CHANGE_OPEN:
        return None
    is_api = request.path.startswith("/api/")
    if is_api and request.headers.get("Authorization"):
        return None
    if not current_user.is_authenticated or not current_user.must_change_password:
        return None
    if is_api:
        raise Forbidden(
            "管理员已重置您的密码，请先修改密码再继续使用",
            code="PASSWORD_CHANGE_REQUIRED",
        )
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("web.account_password", next=target))


def log_in(db, username, password, *, via):
    """Check a username and password; on success open a fresh session for the user. Audited
    either way (``via``: "api" or "web"). Returns the user, or None when refused: an unknown
    user and a wrong password are refused alike, in the same time. Too many recent failures
    for the name or from the address raise ``TooManyRequests`` before the password is even
    checked."""
    _throttle(db, username, via)
    user = db.scalars(sa.select(User).where(User.username == username)).first()
    if user is None:
        check_password_hash(current_app.extensions["hotline.dummy_hash"], password)
    if (
        user is None
        or user.role in SERVICE_ROLES  # a service account has no password anyone could know
        or not user.check_password(password)
        or not user.active
    ):
        audit(db, None, "auth.login_failed", target=username, payload={"via": via})
        db.commit()
        return None
    new_session()
    key = secrets.token_urlsafe(32)
    db.add(
        UserSession(
            user_id=user.id,
            key_hash=key_hash(key),
            created_at=utcnow(),
            remote_addr=request.remote_addr,
            user_agent=(request.user_agent.string or "")[:200] or None,
        )
    )
    session["sid"] = key
    login_user(user)
    audit(db, user, "auth.login", target=user.username, payload={"via": via})
    db.commit()
    return user


def log_out(db, user):
    """End this session and every other session of ``user`` (on every device), then give
    the browser a fresh, anonymous session."""
    if user is not None and user.is_authenticated:
        ended = end_sessions(db, user, END_LOGOUT)
        audit(db, user, "auth.logout", target=user.username, payload={"sessions": ended})
        db.commit()
    logout_user()
    new_session()


def end_sessions(db, user, reason, *, keep=None):
    """End every open session of ``user`` at once, but the one whose key hash is ``keep``
    (the caller commits). Returns how many."""
    query = sa.update(UserSession).where(
        UserSession.user_id == user.id, UserSession.ended_at.is_(None)
    )
    if keep is not None:
        query = query.where(UserSession.key_hash != keep)
    result = db.execute(query.values(ended_at=utcnow(), end_reason=reason))
    return result.rowcount


def current_key_hash():
    """The key hash of this request's login session (None: no session, e.g. a token call)."""
    key = session.get("sid")
    return key_hash(key) if isinstance(key, str) else None


def create_token(db, user, label):
    """Issue an API token for ``user``: returns (row, token); only the token's SHA-256 is
    stored, so it is shown this once. Audited; the caller commits."""
    token = "hl_" + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, token_hash=token_hash(token), label=label)
    db.add(row)
    db.flush()
    audit(db, user, "token.create", target=str(row.id), payload={"label": label})
    return row, token


def revoke_token(db, user, token_id):
    """Revoke one of ``user``'s own tokens (at once in this process; in the others within
    the token cache's few seconds). Audited; the caller commits."""
    row = db.get(ApiToken, token_id)
    if row is None or row.user_id != user.id or row.revoked_at is not None:
        raise NotFound("令牌不存在或已吊销", code="TOKEN_NOT_FOUND")
    row.revoked_at = utcnow()
    token_users.clear()
    audit(db, user, "token.revoke", target=str(row.id))
    return row


def token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def new_session():
    """A fresh session with a fresh CSRF secret, forgetting any token signed from the old
    one (Flask-WTF keeps it in ``g`` for the request)."""
    session.clear()
    session["csrf_token"] = secrets.token_urlsafe(32)
    g.pop("csrf_token", None)


@functools.lru_cache(maxsize=8)
def trusted_networks(text):
    """The networks of ``LOGIN_TRUSTED_NETWORKS`` (comma-separated addresses or CIDR
    ranges)."""
    parts = (part.strip() for part in text.split(","))
    return tuple(ipaddress.ip_network(part, strict=False) for part in parts if part)


def is_trusted(address, networks):
    if not address or not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    # A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d.
    ip = getattr(ip, "ipv4_mapped", None) or ip
    return any(ip in network for network in networks)


def _throttle(db, username, via):
    """Refuse a login attempt after ``LOGIN_MAX_FAILURES`` failures for one user name (since
    its last success) or ``LOGIN_MAX_FAILURES_PER_ADDRESS`` from one address within
    ``LOGIN_THROTTLE_MINUTES``. Counted from the audit log, so every process agrees. The
    per-address rule is off for addresses in ``LOGIN_TRUSTED_NETWORKS`` and when its limit
    is 0."""
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
    address = request.remote_addr
    per_address = config["LOGIN_MAX_FAILURES_PER_ADDRESS"] > 0 and not is_trusted(
        address, trusted_networks(config["LOGIN_TRUSTED_NETWORKS"])
    )
    if address and per_address:
        checks.append((AuditLog.remote_addr == address, since, "LOGIN_MAX_FAILURES_PER_ADDRESS"))
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
