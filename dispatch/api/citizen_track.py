"""The 市民端's JSON API for apps (``/citizen/api/v1``): a citizen proves a phone with a code
and follows, rates and re-opens their own requests, as the 我的诉求 pages do.

- ``POST sessions/code`` {phone}: text a code (purpose ``track``);
- ``POST sessions`` {phone, code} → {token, expires_in}: a citizen session
  (``hotline.citizens``); the app sends ``Authorization: Bearer <token>`` from then on;
- ``GET requests`` (``page``, ``per_page``), ``GET requests/<number>`` (the public timeline
  and reply), ``POST requests/<number>/rating`` {solved, satisfaction, comment},
  ``POST requests/<number>/reopen`` {reason}; ``DELETE sessions/current``.

JSON only, the ``/api/v1`` envelope and error codes (``hotline.api``). No CSRF token: the
citizen token is no ambient credential (no cookie), so the blueprint is exempt. A number
that does not exist and one of another phone both answer 404 ``TICKET_NOT_FOUND``.
"""

import sqlalchemy as sa
from flask import Blueprint, current_app, g, request
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from dispatch import citizen_schemas, citizen_tracking
from dispatch.citizen_tracking import STATUS_WORDS
from hotline import api, citizens, limits
from hotline.auth import csrf
from hotline.db import get_session, utcnow
from hotline.errors import INTERNAL_ERROR, AuthRequired, HotlineError, stale_conflict
from hotline.privacy import mask_phone
from hotline.schemas import Page, json_body

PREFIX = "/citizen/api/v1"


def create_blueprint():
    bp = Blueprint("citizen_track_api", __name__, url_prefix=PREFIX)
    csrf.exempt(bp)
    bp.before_request(_citizen)
    bp.register_error_handler(HotlineError, api.hotline_error)
    bp.register_error_handler(StaleDataError, lambda exc: api.hotline_error(stale_conflict()))
    bp.register_error_handler(sa.exc.SQLAlchemyError, api.database_error)
    bp.register_error_handler(Exception, _unexpected)
    bp.add_url_rule("/sessions/code", view_func=send_code, methods=["POST"])
    bp.add_url_rule("/sessions", view_func=open_session, methods=["POST"])
    bp.add_url_rule("/sessions/current", view_func=close_session, methods=["DELETE"])
    bp.add_url_rule("/requests", view_func=list_requests)
    bp.add_url_rule("/requests/<number>", view_func=one_request)
    bp.add_url_rule("/requests/<number>/rating", view_func=rate, methods=["POST"])
    bp.add_url_rule("/requests/<number>/reopen", view_func=reopen, methods=["POST"])
    return bp


def _unexpected(exc):
    if isinstance(exc, HTTPException):
        return api.http_error(exc)
    current_app.logger.exception("unhandled error in the citizen API")
    return api.error_response(500, "INTERNAL_ERROR", INTERNAL_ERROR)


_OPEN = {"citizen_track_api.send_code", "citizen_track_api.open_session"}


def _citizen():
    """The phone of the citizen's bearer token (``g.citizen_phone``); refused without one,
    except for getting a code and opening a session."""
    g.citizen_token = None
    g.citizen_phone = None
    if request.endpoint in _OPEN:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthRequired("请先验证手机号（Authorization: Bearer <令牌>）", code="AUTH_REQUIRED")
    phone = citizens.session_phone(get_session(), token.strip())
    if phone is None:
        raise AuthRequired("登录已失效，请重新验证手机号", code="AUTH_INVALID")
    g.citizen_token, g.citizen_phone = token.strip(), phone


@limits.limited("LIMIT_CITIZEN_CODES")
def send_code():
    db = get_session()
    phone = citizen_schemas.parse_phone(json_body())
    wait = citizens.send_code(db, phone, purpose="track", client_ip=limits.client_address())
    db.commit()
    return api.ok({"resend_after": wait, "expires_in": citizens.CODE_MINUTES * 60}, 202)


@limits.limited("LIMIT_CITIZEN_LOOKUP")
def open_session():
    db = get_session()
    phone, code = citizen_schemas.parse_login(json_body())
    citizens.check_code(db, phone, code, purpose="track")
    token = citizens.open_session(db, phone, client_ip=limits.client_address())
    db.commit()
    return api.ok(
        {
            "token": token,
            "expires_in": citizens.SESSION_DAYS * 86400,
            "phone": mask_phone(phone),
        },
        201,
    )


def close_session():
    db = get_session()
    citizens.end_session(db, g.citizen_token)
    db.commit()
    return api.ok({"ended": True})


def list_requests():
    config = current_app.config
    page = Page.from_args(
        request.args,
        size=config["DEFAULT_PAGE_SIZE"],
        size_arg="per_page",
        max_size=config["MAX_PAGE_SIZE"],
    )
    total, rows = citizen_tracking.tickets_of(get_session(), g.citizen_phone, page)
    return api.ok(
        {
            "items": [citizen_schemas.ticket_summary(t, STATUS_WORDS) for t in rows],
            **page.to_dict(total),
        }
    )


def _detail(ticket):
    db = get_session()
    view = citizen_tracking.view(db, ticket, utcnow(), current_app.config["TIMEZONE"])
    return citizen_schemas.ticket_detail(view, STATUS_WORDS)


@limits.limited("LIMIT_CITIZEN_LOOKUP")
def one_request(number):
    return api.ok(_detail(citizen_tracking.find_own(get_session(), g.citizen_phone, number)))


def rate(number):
    db = get_session()
    ticket = citizen_tracking.find_own(db, g.citizen_phone, number)
    values = citizen_schemas.parse_rating(json_body())
    citizen_tracking.rate_online(db, ticket, g.citizen_phone, **values)
    db.commit()
    return api.ok(_detail(ticket))


def reopen(number):
    db = get_session()
    ticket = citizen_tracking.find_own(db, g.citizen_phone, number)
    values = citizen_schemas.parse_reopen(json_body())
    citizen_tracking.rerequest(db, ticket, g.citizen_phone, **values)
    db.commit()
    return api.ok(_detail(ticket))
