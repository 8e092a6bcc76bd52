"""JSON API under /api/v1: one envelope for every answer.

Success: ``{"success": true, "data": …}``; failure: ``{"success": false, "error": {"code",
"message", "details"}}`` with a stable code for programs and a Chinese message for people.
"""

import logging

from flask import Blueprint, g, jsonify, request
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from hotline.api import auth
from hotline.db import get_session
from hotline.errors import HotlineError, ValidationFailed

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
bp.before_request(auth.authenticate)


@bp.before_request
def _refuse_nul_in_url():
    """PostgreSQL text cannot hold U+0000: refuse it in query parameters and path segments
    here instead of failing in the database with a 500."""
    for name, value in [*request.args.items(multi=True), *(request.view_args or {}).items()]:
        if isinstance(value, str) and "\x00" in value:
            raise ValidationFailed(
                f"参数“{name}”包含不可见控制字符（U+0000）",
                details={name: "包含不可见控制字符（U+0000）"},
            )


_HTTP_CODES = {
    400: ("BAD_REQUEST", "请求格式有误"),
    404: ("NOT_FOUND", "请求的地址不存在"),
    405: ("METHOD_NOT_ALLOWED", "不支持该请求方法"),
    413: ("PAYLOAD_TOO_LARGE", "请求内容过大"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "请求须为 JSON"),
}


def iso(value):
    """A timestamp for JSON (None stays None)."""
    return value.isoformat() if value else None


def labelled(member):
    """An enum member for JSON: its value and its Chinese label."""
    return {"value": member.value, "label": member.label} if member is not None else None


def ok(data, status=200, headers=None):
    return jsonify({"success": True, "data": data}), status, headers or {}


def _error(status, code, message, details=None):
    if "db_session" in g:
        g.db_session.rollback()
    body = {"success": False, "error": {"code": code, "message": message, "details": details or {}}}
    return jsonify(body), status


@bp.errorhandler(HotlineError)
def _hotline_error(exc):
    return _error(exc.status, exc.code, exc.message, exc.details)


@bp.errorhandler(StaleDataError)
def _stale(_exc):
    return _error(
        409, "TICKET_VERSION_CONFLICT", "工单已被他人同时处理，本次操作未生效，请刷新后重试"
    )


@bp.errorhandler(HTTPException)
def http_error(exc):
    code, message = _HTTP_CODES.get(exc.code, ("HTTP_ERROR", exc.name))
    return _error(exc.code, code, message)


@bp.errorhandler(Exception)
def _unexpected(exc):
    log.exception("unhandled error in API")
    return _error(500, "INTERNAL_ERROR", "服务器内部错误，操作未生效，请稍后重试")


def commit():
    get_session().commit()


from hotline.api import admin, classifier, inbox, reference, sessions  # noqa: E402,F401  (routes)
