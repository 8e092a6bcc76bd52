"""Open311 GeoReport v2 at ``/open311/v2`` (``dispatch.open311`` holds the rules and shapes).

Programs call it with an ``api_key``, not a browser session: it is exempt from the pages'
CSRF check and answers every error, routing errors included, in the standard's format
(``[{"code", "description"}]`` or ``<errors><error>…``) with the HTTP status as the code and
our stable code in ``X-Error-Code``.

| Method and path                         | What                                  |
|-----------------------------------------|---------------------------------------|
| GET  discovery.{json,xml}               | endpoints, formats, where to get keys |
| GET  services.{json,xml}                | the services (leaf categories)        |
| GET  services/{service_code}.{json,xml} | a service's definition (no attributes)|
| POST requests.{json,xml}                | file a request (api_key required)     |
| GET  requests.{json,xml}                | requests, filtered, newest first      |
| GET  requests/{service_request_id}.{…}  | one request                           |
| GET  tokens/{token}.{json,xml}          | the request filed under a token       |
"""

import logging

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, json, request, url_for
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from dispatch import open311
from hotline import auth, limits
from hotline import db as hotline_db
from hotline.db import get_session, utcnow
from hotline.errors import (
    INTERNAL_ERROR,
    HotlineError,
    ServiceUnavailable,
    ValidationFailed,
    stale_conflict,
)
from hotline.schemas import positive_int

log = logging.getLogger(__name__)
PREFIX = "/open311/v2"
FMT = "<any(json,xml):fmt>"
#: HTTP statuses the standard knows; ours map onto them (422 → 400 …).
_STATUS = {422: 400, 415: 400}
_HTTP_MESSAGES = {
    400: "请求格式有误",
    404: "请求的地址不存在（格式须为 .json 或 .xml）",
    405: "不支持该请求方法",
    413: "请求内容过大",
}


def create_blueprint():
    bp = Blueprint("open311", __name__, url_prefix=PREFIX)
    bp.add_url_rule(f"/discovery.{FMT}", view_func=discovery)
    bp.add_url_rule(f"/services.{FMT}", view_func=services)
    bp.add_url_rule(f"/services/<code>.{FMT}", view_func=service_definition)
    bp.add_url_rule(f"/requests.{FMT}", view_func=post_request, methods=["POST"])
    bp.add_url_rule(f"/requests.{FMT}", view_func=list_requests)
    bp.add_url_rule(f"/requests/<number>.{FMT}", view_func=get_request)
    bp.add_url_rule(f"/tokens/<token>.{FMT}", view_func=get_token)
    bp.register_error_handler(HotlineError, hotline_error)
    bp.register_error_handler(StaleDataError, lambda _exc: hotline_error(stale_conflict()))
    bp.register_error_handler(sa.exc.SQLAlchemyError, database_error)
    bp.register_error_handler(HTTPException, http_error)
    bp.register_error_handler(Exception, _unexpected)
    # Programs send an api_key, not a session cookie: there is no cross-site form to forge.
    auth.csrf.exempt(bp)
    return bp


# -- answers ------------------------------------------------------------------------------------


def _format():
    """The format asked for: the URL's, or for a URL that matched nothing its ending."""
    fmt = (request.view_args or {}).get("fmt")
    if fmt in open311.FORMATS:
        return fmt
    return "json" if request.path.endswith(".json") else "xml"


def answer(root, value, status=200, headers=None):
    fmt = _format()
    if fmt == "json":
        body = json.dumps(value, ensure_ascii=False)
    else:
        body = open311.to_xml(root, value)
    mimetype = open311.FORMATS[fmt]
    return Response(body, status, headers or {}, content_type=f"{mimetype}; charset=utf-8")


def error_answer(status, errors, code, headers=None):
    try:
        get_session().rollback()
    except Exception:  # noqa: BLE001 — a dead connection has nothing left to roll back
        log.debug("rollback after an Open311 error failed", exc_info=True)
    return answer("errors", errors, status, {"X-Error-Code": code, **(headers or {})})


def hotline_error(exc):
    status = _STATUS.get(exc.status, exc.status)
    return error_answer(status, open311.errors_of(status, exc), exc.code, exc.headers())


def http_error(exc):
    status = exc.code or 500
    message = _HTTP_MESSAGES.get(status, exc.name)
    return error_answer(status, [{"code": status, "description": message}], "HTTP_ERROR")


def database_error(exc):
    if not hotline_db.unavailable(exc):
        hotline_db.log_error(log, exc, f"in Open311 {request.method} {request.path}")
        return internal_error()
    hotline_db.outage.failed(exc)
    return hotline_error(ServiceUnavailable(hotline_db.BUSY_MESSAGE, code="DATABASE_UNAVAILABLE"))


def internal_error(_exc=None):
    return error_answer(500, [{"code": 500, "description": INTERNAL_ERROR}], "INTERNAL_ERROR")


def _unexpected(exc):
    log.exception("unhandled error in Open311")
    return internal_error()


# -- views --------------------------------------------------------------------------------------


def _optional_key(db):
    """A read may carry an api_key: then it is checked and counted like a POST; without one
    it is counted by the caller's address under the same rule."""
    plaintext = request.args.get("api_key")
    if plaintext is None:
        limits.check("LIMIT_OPEN311")
        return None
    key = open311.authorise(db, plaintext)
    db.commit()
    return key


def discovery(fmt):
    url = url_for("open311.discovery", fmt=fmt, _external=True).rsplit("/", 1)[0]
    contact = "12345 政务服务便民热线"
    return answer("discovery", open311.discovery(url, contact))


def services(fmt):
    db = get_session()
    _optional_key(db)
    return answer("services", open311.services(db))


def service_definition(code, fmt):
    db = get_session()
    _optional_key(db)
    return answer("service_definition", open311.service_definition(db, code))


def _posted():
    """The POST's fields: the standard's form, or a JSON object of strings."""
    if request.is_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise ValidationFailed(
                "请求体须为 JSON 对象或表单（application/x-www-form-urlencoded）"
            )
        return {k: v if isinstance(v, str) or v is None else str(v) for k, v in data.items()}
    return {k: v for k, v in request.form.items()}


def post_request(fmt):
    db = get_session()
    data = _posted()
    plaintext = data.pop("api_key", None) or request.args.get("api_key")
    key = open311.authorise(db, plaintext)
    ticket, token, created = open311.post_request(
        db, key, data, idempotency_key=request.headers.get("Idempotency-Key")
    )
    db.commit()
    headers = {"Location": url_for("open311.get_request", number=ticket.number, fmt=fmt)}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return answer(
        "service_requests", [open311.receipt_dict(ticket, token)], 201 if created else 200, headers
    )


def list_requests(fmt):
    db = get_session()
    key = _optional_key(db)
    config = current_app.config
    errors = {}
    page = positive_int(request.args, "page", 1, errors)
    size = positive_int(request.args, "page_size", config["OPEN311_PAGE_SIZE"], errors)
    if size and size > config["OPEN311_PAGE_SIZE"]:
        errors["page_size"] = f"page_size 最大为 {config['OPEN311_PAGE_SIZE']}"
    if errors:
        raise ValidationFailed(
            f"查询条件有误：{next(iter(errors))} {next(iter(errors.values()))}", details=errors
        )
    query = open311.request_query(request.args, now=utcnow(), timezone=config["TIMEZONE"])
    rows, media = open311.page_of(db, query, page=page, size=size)
    items = [open311.request_dict(t, config["TIMEZONE"], media.get(t.id), key) for t in rows]
    return answer("service_requests", items)


def get_request(number, fmt):
    db = get_session()
    key = _optional_key(db)
    ticket = open311.public_ticket(db, number)
    media = open311.media_urls(db, [ticket.id])
    timezone = current_app.config["TIMEZONE"]
    return answer(
        "service_requests", [open311.request_dict(ticket, timezone, media.get(ticket.id), key)]
    )


def get_token(token, fmt):
    db = get_session()
    key = _optional_key(db)
    return answer("service_requests", open311.tokens(db, token, key))
