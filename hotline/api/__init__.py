"""JSON API under /api/v1: one envelope for every answer.

Success: ``{"success": true, "data": …}``; failure: ``{"success": false, "error": {"code",
"message", "details"}}`` with a stable code for programs and a Chinese message for people.

``create_blueprint`` builds the ``/api/v1`` parent: who is calling (``hotline.api.auth``), the
envelope and the error handlers. Each domain's API blueprints are nested in it by the
application factory, so they all share them.
"""

import logging

import sqlalchemy as sa
from flask import Blueprint, g, jsonify, request
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from hotline import db
from hotline.api import auth
from hotline.db import get_session
from hotline.errors import (
    INTERNAL_ERROR,
    HotlineError,
    ServiceUnavailable,
    ValidationFailed,
    stale_conflict,
)
from hotline.openapi import PUBLIC_ENDPOINTS

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: ("BAD_REQUEST", "请求格式有误"),
    404: ("NOT_FOUND", "请求的地址不存在"),
    405: ("METHOD_NOT_ALLOWED", "不支持该请求方法"),
    413: ("PAYLOAD_TOO_LARGE", "请求内容过大"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "请求须为 JSON"),
}


def create_blueprint():
    bp = Blueprint("api", __name__, url_prefix="/api/v1")
    bp.record_once(
        lambda state: state.app.extensions.setdefault(PUBLIC_ENDPOINTS, auth.PUBLIC_ENDPOINTS)
    )
    bp.before_request(auth.authenticate)
    bp.before_request(_refuse_nul_in_url)
    bp.register_error_handler(HotlineError, hotline_error)
    bp.register_error_handler(StaleDataError, _stale)
    bp.register_error_handler(sa.exc.SQLAlchemyError, database_error)
    bp.register_error_handler(HTTPException, http_error)
    bp.register_error_handler(Exception, _unexpected)
    return bp


def _refuse_nul_in_url():
    """PostgreSQL text cannot hold U+0000: refuse it in query parameters and path segments
    here instead of failing in the database with a 500."""
    for name, value in [*request.args.items(multi=True), *(request.view_args or {}).items()]:
        if isinstance(value, str) and "\x00" in value:
            raise ValidationFailed(
                f"参数“{name}”包含不可见控制字符（U+0000）",
                details={name: "包含不可见控制字符（U+0000）"},
            )


def ok(data, status=200, headers=None):
    return jsonify({"success": True, "data": data}), status, headers or {}


def error_response(status, code, message, details=None, headers=None):
    if "db_session" in g:
        try:
            g.db_session.rollback()
        except Exception:  # noqa: BLE001 — a dead connection has nothing left to roll back
            log.debug("rollback after an API error failed", exc_info=True)
    body = {"success": False, "error": {"code": code, "message": message, "details": details or {}}}
    return jsonify(body), status, headers or {}


def hotline_error(exc):
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers())


def _stale(_exc):
    return hotline_error(stale_conflict())


def http_error(exc):
    code, message = _HTTP_CODES.get(exc.code, ("HTTP_ERROR", exc.name))
    return error_response(exc.code, code, message)


def database_error(exc):
    """The database away (restarting, unreachable): 503 with ``Retry-After`` and a stable
    code, so a client retries (with the same ``Idempotency-Key``); any other database error
    is a 500 like every unexpected one."""
    if not db.unavailable(exc):
        db.log_error(log, exc, f"in API {request.method} {request.path}")
        return error_response(500, "INTERNAL_ERROR", INTERNAL_ERROR)
    db.outage.failed(exc)
    return hotline_error(ServiceUnavailable(db.BUSY_MESSAGE, code="DATABASE_UNAVAILABLE"))


def _unexpected(exc):
    log.exception("unhandled error in API")
    return error_response(500, "INTERNAL_ERROR", INTERNAL_ERROR)


def commit():
    get_session().commit()
