"""Who is calling: a bearer token (programs) or the login session (browsers).

Browser sessions must echo their CSRF token in ``X-CSRF-Token`` on every unsafe request;
token calls carry no ambient credential and need none.
"""

import hashlib
import hmac
import secrets

import sqlalchemy as sa
from flask import g, request, session

from hotline.audit import audit
from hotline.cache import token_users
from hotline.db import get_session
from hotline.errors import AuthRequired, Forbidden
from hotline.models import ApiToken, User

#: Endpoints that work without a user.
PUBLIC_ENDPOINTS = {"api.login"}


def hash_token(token):
    return hashlib.sha256(token.encode()).hexdigest()


def new_token():
    return "hl_" + secrets.token_urlsafe(32)


def authenticate():
    g.user = None
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthRequired("Authorization 头格式应为：Bearer <令牌>", code="AUTH_INVALID")
        g.user = _user_for_token(token.strip())
        return
    user_id = session.get("user_id")
    if user_id is not None and request.endpoint not in PUBLIC_ENDPOINTS:
        user = get_session().get(User, user_id)
        if user is not None and user.active:
            g.user = user
            if request.method not in {"GET", "HEAD", "OPTIONS"}:
                expected = session.get("csrf_token", "")
                given = request.headers.get("X-CSRF-Token", "")
                if not expected or not hmac.compare_digest(expected, given):
                    raise Forbidden("缺少或错误的 X-CSRF-Token", code="CSRF_FAILED")
            return
        session.clear()
    if request.endpoint not in PUBLIC_ENDPOINTS:
        raise AuthRequired("请先登录或提供 API 令牌")


def log_in(db, username, password, *, via):
    """Check a username and password; on success open a fresh session for the user. Audited
    either way (``via``: "api" or "web"). Returns the user, or None when refused: an unknown
    user and a wrong password are refused alike."""
    user = db.scalars(sa.select(User).where(User.username == username)).first()
    if user is None or not user.active or not user.check_password(password):
        audit(db, None, "auth.login_failed", target=username, payload={"via": via})
        db.commit()
        return None
    new_session()
    session["user_id"] = user.id
    audit(db, user, "auth.login", target=user.username, payload={"via": via})
    db.commit()
    return user


def new_session():
    """A fresh session with a fresh CSRF secret, forgetting any token signed from the old
    one (Flask-WTF keeps it in ``g`` for the request)."""
    session.clear()
    session["csrf_token"] = secrets.token_urlsafe(32)
    g.pop("csrf_token", None)


def require_role(roles, message="“{role}”角色无权使用此功能", *, code="ROLE_NOT_ALLOWED"):
    """Refuse the request (403) unless the caller has one of ``roles``. ``message`` may name
    the caller's role as ``{role}``."""
    if g.user.role not in roles:
        raise Forbidden(
            message.format(role=g.user.role.label), code=code, details={"role": g.user.role.value}
        )


def _user_for_token(token):
    token_hash = hash_token(token)

    def load(session):
        return session.scalars(
            sa.select(User)
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))
        ).first()

    user = token_users.get(get_session(), token_hash, load)
    if user is None or not user.active:
        raise AuthRequired("API 令牌无效或已吊销", code="AUTH_INVALID")
    return user
