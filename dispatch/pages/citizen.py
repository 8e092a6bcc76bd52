"""The 市民端's public pages (no login, zh-CN, 390 px first, WeChat's browser too): the home
page, 我要反映 and its receipt, and the two calls the submission page's script makes (the
SMS code and the live suggestion). 我的诉求 and the lookup are ``citizen_track``'s.

Routes (blueprint ``citizen``, under ``/citizen``):

- ``GET /citizen/``: what the service is, 我要反映, 我的诉求, the emergency numbers;
- ``GET /citizen/submit``: the form, with a fresh random idempotency key; ``?channel=app``
  when an app opens it in its webview;
- ``POST /citizen/submit``: the request (``dispatch.citizens.submit``), then 303 to the
  receipt; or, with ``action=code`` (the 获取验证码 button without JavaScript), the code is
  texted and the form shown again as typed;
- ``POST /citizen/codes``: the code for ``phone`` (JSON answer for the page's script; the
  same answer whether or not the phone ever filed a request);
- ``POST /citizen/suggest``: the likely category's name and the emergency line, nothing more;
- ``GET /citizen/receipt/<number>``: the receipt, only for the browser that submitted it
  (the number is kept in its signed session cookie); anyone else gets 404.

Every form carries the app's CSRF token (Flask-WTF checks every page POST, a visitor without
a staff session included: the token lives in the signed session cookie); the script's calls
send it in ``X-CSRFToken``. The channel: 网站, 微信 when the browser is WeChat's
(``MicroMessenger`` in the User-Agent), App when the form says ``channel=app`` (set from the
app's ``?channel=app``; an app may also use the JSON API, ``dispatch.api.citizen``).
"""

import secrets

from flask import (
    Blueprint,
    current_app,
    jsonify,
    render_template,
    request,
    session,
    url_for,
)
from flask import redirect as flask_redirect

from dispatch import citizens
from hotline import attachments, limits, outbox, outbox_delivery, suggestions, web
from hotline import citizens as codes
from hotline.db import get_session
from hotline.enums import Channel, RequestType
from hotline.errors import HotlineError, ValidationFailed
from hotline.models import Ticket
from hotline.privacy import mask_phone
from hotline.schemas import ADDRESS_MAX, Fields, form_values, json_body

#: How many receipts a browser keeps the right to see (the newest).
RECEIPTS_KEPT = 10
#: Said after the message of a refused form that carried photos.
PHOTOS_AGAIN = "（出于安全原因，照片需重新选择）"
#: Form inputs that are the page's, not the request's.
PAGE_ONLY = ("csrf_token", "action", "channel", "idempotency_key")
#: Shortest text worth a suggestion.
SUGGEST_MIN_CHARS = 4
DEMO_NOTE = "演示环境未接入短信网关：验证码显示在运行 make demo 的终端窗口中"


def create_blueprint():
    bp = Blueprint(
        "citizen",
        __name__,
        url_prefix="/citizen",
        template_folder="templates",
        static_folder="static",
        static_url_path="/static",
    )
    bp.add_url_rule("/", view_func=home)
    bp.add_url_rule("/submit", view_func=submit_page)
    bp.add_url_rule("/submit", view_func=submit_post, methods=["POST"])
    bp.add_url_rule("/codes", view_func=send_code, methods=["POST"])
    bp.add_url_rule("/suggest", view_func=suggest, methods=["POST"])
    bp.add_url_rule("/receipt/<number>", view_func=receipt)
    return bp


def home():
    return render_template("citizen/home.html", nav="home")


# -- 我要反映 ---------------------------------------------------------------------------------


def channel_of(form):
    """Which channel the request came through (see the module's docstring)."""
    if form.get("channel") == Channel.app.value:
        return Channel.app
    if "micromessenger" in request.headers.get("User-Agent", "").lower():
        return Channel.wechat
    return Channel.web


def demo_note():
    """Whether the page says where the demo's codes are read: ``CITIZEN_DEMO_NOTE`` when set,
    else whenever texts go to the logging sender (no SMS gateway configured)."""
    config = current_app.config
    if config.get("CITIZEN_DEMO_NOTE") is not None:
        return bool(config["CITIZEN_DEMO_NOTE"])
    sender, _ = outbox_delivery.sender_setting(config, "sms")
    return sender == "logging"


def _render_form(
    typed=None, *, error=None, notice=None, field_errors=None, status=200, headers=None
):
    typed = dict(typed or {})
    if not typed.get("idempotency_key"):
        typed["idempotency_key"] = secrets.token_urlsafe(24)
    if "channel" not in typed and request.args.get("channel") == Channel.app.value:
        typed["channel"] = Channel.app.value
    html = render_template(
        "citizen/submit.html",
        nav="submit",
        form=typed,
        error=error,
        notice=notice,
        field_errors=field_errors or {},
        request_types=list(RequestType),
        content_max=current_app.config["MAX_TICKET_CONTENT_CHARS"],
        address_max=ADDRESS_MAX,
        name_max=citizens.NAME_MAX,
        max_photos=current_app.config["ATTACHMENT_MAX_FILES"],
        anonymous_notice=citizens.ANONYMOUS_NOTICE,
        demo_note=DEMO_NOTE if demo_note() else None,
        resend_seconds=codes.RESEND_SECONDS,
    )
    return html, status, headers or {}


def submit_page():
    return _render_form()


def _typed():
    """What the citizen typed, to show again (never the code: it is single-use anyway)."""
    return {k: v for k, v in request.form.items() if k not in ("csrf_token", "code", "action")}


def submit_post():
    """我要反映 (or, with ``action=code``, the code button of a browser without script)."""
    typed = _typed()
    photos_sent = attachments.sent(request.files.getlist("photos"))
    if request.form.get("action") == "code":
        return _code_from_form(typed, photos_sent)
    channel = channel_of(request.form)

    def change(db):
        limits.check("LIMIT_CITIZEN_SUBMIT")
        fields = Fields(form_values(request.form, skip=PAGE_ONLY))
        values = citizens.submission_values(fields, text_position=True)
        fields.check()
        photos = attachments.check(request.files.getlist("photos"))
        key = request.form.get("idempotency_key", "").strip()
        return citizens.submit(
            db,
            channel=channel,
            photos=photos,
            idempotency_key=key or None,
            openid=outbox.openid_from_headers(request.headers, current_app.config),
            **values,
        )

    def refused(error):
        message = error.message
        if error.code == "IDEMPOTENCY_KEY_REUSED":
            # Back button after a submission, then edited: a new request, so a new key.
            typed.pop("idempotency_key", None)
        if photos_sent:
            message += PHOTOS_AGAIN
        return _render_form(
            typed,
            error=message,
            field_errors=error.details if isinstance(error, ValidationFailed) else {},
            status=error.status,
            headers=error.headers(),
        )

    done, result = web.perform(change, refused=refused)
    if not done:
        return result
    ticket, _ = result
    kept = [n for n in session.get("citizen_receipts", []) if n != ticket.number]
    session["citizen_receipts"] = [*kept, ticket.number][-RECEIPTS_KEPT:]
    return flask_redirect(url_for("citizen.receipt", number=ticket.number), 303)


def _code_from_form(typed, photos_sent):
    """获取验证码 without script: text the code, show the form again as typed."""
    done, result = web.perform(
        lambda db: _send(db, request.form.get("phone")),
        refused=lambda error: error,
    )
    if not done:
        message = result.message + (PHOTOS_AGAIN if photos_sent else "")
        return _render_form(
            typed,
            error=message,
            field_errors={"phone": result.message}
            if result.code == "PHONE_INVALID"
            else {"code": result.message},
            status=result.status,
            headers=result.headers(),
        )
    notice = "验证码已发送，请查收短信后填写（5 分钟内有效）"
    if photos_sent:
        notice += PHOTOS_AGAIN
    typed["contact"] = "phone"
    return _render_form(typed, notice=notice)


def _send(db, phone_text):
    limits.check("LIMIT_CITIZEN_CODES")
    phone = codes.normalise_phone(phone_text or "")
    return codes.send_code(db, phone, purpose="submit", client_ip=limits.client_address())


# -- the page script's calls ------------------------------------------------------------------


def _json_error(error):
    body = {
        "success": False,
        "error": {"code": error.code, "message": error.message, "details": error.details or {}},
    }
    return jsonify(body), error.status, error.headers()


def send_code():
    """获取验证码: ``phone`` (form or JSON) → ``{"resend_after": 60}``. The answer is the same
    for any valid mobile number."""
    data = request.get_json(silent=True) if request.is_json else request.form
    phone = (data or {}).get("phone")
    done, result = web.perform(lambda db: _send(db, phone), refused=lambda error: error)
    if not done:
        return _json_error(result)
    return jsonify({"success": True, "data": {"resend_after": result}})


def suggest():
    """可能属于: the likely category's name and the emergency line for ``content`` (JSON)."""
    try:
        limits.check("LIMIT_CITIZEN_SUGGEST")
        fields = Fields(json_body())
        content = fields.content(label="反映内容")
        fields.check()
    except HotlineError as exc:
        return _json_error(exc)
    answer = {"category": None, "emergency": None}
    if len(content) >= SUGGEST_MIN_CHARS and current_app.config["CLASSIFIER_ENABLED"]:
        result = suggestions.service().suggest(get_session(), content, release=True)
        answer = citizens.suggestion_for_citizen(result)
    return jsonify({"success": True, "data": answer})


# -- the receipt ------------------------------------------------------------------------------


def receipt(number):
    """受理回执: only for the browser whose session holds ``number`` (it submitted it)."""
    db = get_session()
    ticket = None
    if number in session.get("citizen_receipts", []):
        ticket = db.query(Ticket).filter_by(number=number).one_or_none()
    if ticket is None:
        return render_template(
            "citizen/message.html",
            nav=None,
            title="回执不存在",
            message="只有提交诉求的手机浏览器可以查看回执；如需查询办理进度，请进入“我的诉求”。",
        ), 404
    reply_by = citizens.reply_text(citizens.promised_reply(db, ticket))
    return render_template(
        "citizen/receipt.html",
        nav=None,
        ticket=ticket,
        reply_by=reply_by,
        phone=mask_phone(ticket.requester_phone),
    )
