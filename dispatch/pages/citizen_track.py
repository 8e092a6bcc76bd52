"""The 市民端 after submitting (public, zh-CN, phone width first): 我的诉求, one ticket by
number, and rating from the finish text's link.

- ``/citizen/mine``: phone → 获取验证码 (purpose ``track``) → code → a citizen session (cookie
  ``citizen_session``: HttpOnly, SameSite=Lax, Secure over HTTPS, the token of
  ``citizens.open_session``), then the citizen's tickets (newest first, paged);
  ``/citizen/mine/<number>`` one ticket: its public timeline, the reply, 评价 when finished
  and 不满意再次反映 within the window; ``POST /citizen/mine/logout`` ends the session.
- ``/citizen/lookup``: one ticket by number + phone + code (the code proves the phone and
  opens a session; a number that does not exist and one of another phone answer the same
  未找到).
- ``/citizen/rate/<token>``: the rating page of the finish text's signed link (no code).

Every form carries the CSRF token; parsing is ``dispatch.citizen_schemas`` (shared with the
app API), rules are ``dispatch.citizen_tracking`` and ``dispatch.operations``. A refusal
re-renders the page with the Chinese message and what was typed; nothing half-done stays.
"""

from flask import (
    Blueprint,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy.orm.exc import StaleDataError

from dispatch import citizen_notices, citizen_schemas, citizen_tracking
from dispatch.citizen_tracking import STATUS_WORDS
from hotline import citizens, limits, web
from hotline.db import get_session, utcnow
from hotline.enums import Satisfaction, Solved
from hotline.errors import HotlineError, NotFound
from hotline.models import Ticket
from hotline.privacy import mask_phone
from hotline.schemas import Page, form_values

COOKIE = "citizen_session"
PAGE_SIZE = 10


def create_blueprint():
    # The shared layout (citizen/base.html) and its stylesheet are the citizen blueprint's.
    bp = Blueprint("citizen_track", __name__, url_prefix="/citizen", template_folder="templates")
    bp.add_url_rule("/mine", view_func=mine)
    bp.add_url_rule("/mine/code", view_func=send_code, methods=["POST"])
    bp.add_url_rule("/mine/login", view_func=login, methods=["POST"])
    bp.add_url_rule("/mine/logout", view_func=logout, methods=["POST"])
    bp.add_url_rule("/mine/<number>", view_func=ticket)
    bp.add_url_rule("/mine/<number>/rating", view_func=rate_mine, methods=["POST"])
    bp.add_url_rule("/mine/<number>/reopen", view_func=reopen_mine, methods=["POST"])
    bp.add_url_rule("/lookup", view_func=lookup, methods=["GET", "POST"])
    bp.add_url_rule("/rate/<token>", view_func=rate_link, methods=["GET", "POST"])
    bp.register_error_handler(HotlineError, _refused)
    bp.context_processor(_template_values)
    return bp


def _template_values():
    return {
        "nav": "mine",
        "mask_phone": mask_phone,
        # The two questions of a callback, as the callback agents ask them.
        "solved_choices": list(Solved),
        "satisfaction_choices": list(Satisfaction),
    }


def _refused(exc):
    """A refusal no view renders itself (a rate limit, a bad link): the citizen layout."""
    get_session().rollback()
    return (
        render_template("citizen/track_error.html", message=exc.message, status=exc.status),
        exc.status,
        exc.headers(),
    )


# -- the session ----------------------------------------------------------------------------


def _phone():
    """The phone of the citizen's live session, or None."""
    return citizens.session_phone(get_session(), request.cookies.get(COOKIE))


def _with_session(response, token):
    response.set_cookie(
        COOKIE,
        token,
        max_age=citizens.SESSION_DAYS * 86400,
        path="/citizen",
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
    )
    return response


def _open_session(db, phone):
    return citizens.open_session(db, phone, client_ip=limits.client_address())


def _form():
    return form_values(request.form)


def _login_page(status=200, *, phone=None, sent=False, error=None):
    return (
        render_template("citizen/track_login.html", phone=phone, sent=sent, error=error),
        status,
    )


# -- 我的诉求 -----------------------------------------------------------------------------------


def mine():
    phone = _phone()
    if phone is None:
        return _login_page()
    page = Page.from_args(request.args, size=PAGE_SIZE)
    total, rows = citizen_tracking.tickets_of(get_session(), phone, page)
    return render_template(
        "citizen/track_list.html",
        phone=phone,
        tickets=rows,
        words=STATUS_WORDS,
        page=page,
        pages=page.count(total),
        total=total,
    )


@limits.limited("LIMIT_CITIZEN_CODES")
def send_code():
    """获取验证码 for 我的诉求 (also used by the lookup page, with its number kept)."""
    data = _form()
    number = data.pop("number", None)
    db = get_session()
    try:
        phone = citizen_schemas.parse_phone(data)
        citizens.send_code(db, phone, purpose="track", client_ip=limits.client_address())
        db.commit()
    except HotlineError as exc:
        db.rollback()
        typed = request.form.get("phone", "")
        if number is not None:
            return _lookup_page(exc.status, number=number, phone=typed, error=exc.message)
        return _login_page(exc.status, phone=typed, error=exc.message)
    if number is not None:
        return _lookup_page(number=number, phone=phone, sent=True)
    return _login_page(phone=phone, sent=True)


@limits.limited("LIMIT_CITIZEN_LOOKUP")
def login():
    db = get_session()
    try:
        phone, code = citizen_schemas.parse_login(_form())
        citizens.check_code(db, phone, code, purpose="track")
        token = _open_session(db, phone)
        db.commit()
    except HotlineError as exc:
        db.rollback()
        return _login_page(
            exc.status, phone=request.form.get("phone", ""), sent=True, error=exc.message
        )
    return _with_session(redirect(url_for("citizen_track.mine")), token)


def logout():
    db = get_session()
    citizens.end_session(db, request.cookies.get(COOKIE))
    db.commit()
    response = make_response(redirect(url_for("citizen_track.mine")))
    response.delete_cookie(COOKIE, path="/citizen")
    flash("您已退出", "notice")
    return response


def _own_ticket(number):
    phone = _phone()
    if phone is None:
        return None, None
    return phone, citizen_tracking.find_own(get_session(), phone, number)


def _ticket_page(ticket, *, status=200, error=None, typed=None, action_base=None, token=None):
    db = get_session()
    view = citizen_tracking.view(db, ticket, utcnow(), current_app.config["TIMEZONE"])
    return (
        render_template(
            "citizen/track_ticket.html",
            view=view,
            error=error,
            typed=typed or {},
            token=token,
            rating_action=url_for("citizen_track.rate_link", token=token)
            if token
            else url_for("citizen_track.rate_mine", number=ticket.number),
            reopen_action=None
            if token
            else url_for("citizen_track.reopen_mine", number=ticket.number),
        ),
        status,
    )


def ticket(number):
    phone, found = _own_ticket(number)
    if phone is None:
        return redirect(url_for("citizen_track.mine"))
    return _ticket_page(found)


def _act(found, change, done, *, token=None):
    """Run ``change(db)`` for the ticket page ``found``; refusal → the page with the
    message and what was typed; success → back to the page with ``done``."""
    db = get_session()
    try:
        change(db)
        db.commit()
    except (HotlineError, StaleDataError) as exc:
        # A phone callback recorded meanwhile wins; the citizen sees the page as it is now.
        exc = web.refusal(exc)
        db.rollback()
        db.refresh(found)
        typed = {k: v for k, v in request.form.items() if k != "csrf_token"}
        return _ticket_page(found, status=exc.status, error=exc.message, typed=typed, token=token)
    flash(done, "notice")
    if token:
        return redirect(url_for("citizen_track.rate_link", token=token))
    return redirect(url_for("citizen_track.ticket", number=found.number))


def rate_mine(number):
    phone, found = _own_ticket(number)
    if phone is None:
        return redirect(url_for("citizen_track.mine"))

    def change(db):
        values = citizen_schemas.parse_rating(_form())
        citizen_tracking.rate_online(db, found, phone, **values)

    return _act(found, change, "感谢您的评价")


def reopen_mine(number):
    phone, found = _own_ticket(number)
    if phone is None:
        return redirect(url_for("citizen_track.mine"))

    def change(db):
        values = citizen_schemas.parse_reopen(_form())
        citizen_tracking.rerequest(db, found, phone, **values)

    return _act(found, change, "已收到您的再次反映，我们将督促承办单位重新办理")


# -- one ticket by number -------------------------------------------------------------------


def _lookup_page(status=200, *, number=None, phone=None, sent=False, error=None):
    return (
        render_template(
            "citizen/track_lookup.html", number=number, phone=phone, sent=sent, error=error
        ),
        status,
    )


@limits.limited("LIMIT_CITIZEN_LOOKUP")
def lookup():
    if request.method == "GET":
        return _lookup_page()
    db = get_session()
    typed_number = request.form.get("number", "")
    typed_phone = request.form.get("phone", "")
    try:
        number, phone, code = citizen_schemas.parse_lookup(_form(), with_code=True)
        citizens.check_code(db, phone, code, purpose="track")
        # The code proved the phone: a session either way, so the answer about the number
        # is the same whether it does not exist or is another phone's.
        token = _open_session(db, phone)
        db.commit()
    except HotlineError as exc:
        db.rollback()
        return _lookup_page(
            exc.status, number=typed_number, phone=typed_phone, sent=True, error=exc.message
        )
    try:
        found = citizen_tracking.find_own(db, phone, number)
    except NotFound as exc:
        return _with_session(
            make_response(_lookup_page(404, number=number, phone=phone, error=exc.message)), token
        )
    return _with_session(redirect(url_for("citizen_track.ticket", number=found.number)), token)


# -- the finish text's rating link ----------------------------------------------------------


def rate_link(token):
    db = get_session()
    found, phone = citizen_notices.read_rating_token(
        db, token, lambda ticket_id: db.get(Ticket, ticket_id)
    )
    if request.method == "GET":
        return _ticket_page(found, token=token)

    def change(db):
        values = citizen_schemas.parse_rating(_form())
        citizen_tracking.rate_online(db, found, phone, **values)

    return _act(found, change, "感谢您的评价", token=token)
