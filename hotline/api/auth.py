"""Who is calling the API: a bearer token (programs) or the login session (browsers, through
Flask-Login; see ``hotline.auth``).

Browser sessions must echo their CSRF token in ``X-CSRF-Token`` on every unsafe request;
token calls carry no ambient credential and need none.
"""

import hmac

import sqlalchemy as sa
from flask import g, request, session
from flask_login import current_user

from hotline import auth
from hotline.cache import token_users
from hotline.db import get_session
from hotline.errors import AuthRequired, Forbidden
from hotline.models import ApiToken, User

#: Endpoints that work without a user.
PUBLIC_ENDPOINTS = {"api.sessions.login"}


def authenticate():
    g.user = None
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthRequired("Authorization 头格式应为：Bearer <令牌>", code="AUTH_INVALID")
        g.user = _user_for_token(token.strip())
        return
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    if current_user.is_authenticated:
        g.user = current_user._get_current_object()
        if request.method not in {"GET", "HEAD", "OPTIONS"}:
            expected = session.get("csrf_token", "")
            given = request.headers.get("X-CSRF-Token", "")
            if not expected or not hmac.compare_digest(expected, given):
                raise Forbidden("缺少或错误的 X-CSRF-Token", code="CSRF_FAILED")
        return
    raise AuthRequired("请先登录或提供 API 令牌")


def require_role(roles, message="“{role}”角色无权使用此功能", *, code="ROLE_NOT_ALLOWED"):
    """Refuse the request (403) unless the caller has one of ``roles``. ``message`` may name
    the caller's role as ``{role}``."""
    if g.user.role not in roles:
        raise Forbidden(
            message.format(role=g.user.role.label), code=code, details={"role": g.user.role.value}
        )


def _user_for_token(token):
    token_hash = auth.token_hash(token)

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
