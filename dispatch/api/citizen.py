"""The 市民端's JSON API for the city's apps (and WeChat mini-programs): under
``/citizen/api/v1``, public (no token, no login), CSRF-exempt (no cookie is used), JSON only
except photos (below), answers in the ``/api/v1`` envelope (``hotline.api``).

- ``POST /citizen/api/v1/codes`` ``{"phone", "purpose": "submit"|"track"}`` → ``{"resend_after"}``:
  texts a one-time code; the same answer for any valid mobile number.
- ``POST /citizen/api/v1/requests`` with ``Idempotency-Key`` (required): ``{"request_type",
  "content", "address", "lng", "lat", "name", "phone", "code", "channel", "emergency_seen"}``
  → 201 ``{"number", "received_at", "reply_by", "reply_by_text", "sms_sent"}`` (200 and
  ``Idempotent-Replayed: true`` for a retry). ``lng``/``lat`` are the phone's GPS (WGS-84),
  converted to the map's GCJ-02. ``channel``: ``app`` (default), ``wechat`` or ``web``.
  Photos: send the same fields as ``multipart/form-data`` with up to 5 ``photos`` files
  (checked as staff uploads); numbers are then text.

The fields are read by the page's parser (``dispatch.citizens.submission_values``) and the
request recorded by the same operation (``dispatch.citizens.submit``). Rate limits per address
(``LIMIT_CITIZEN_CODES``, ``LIMIT_CITIZEN_SUBMIT``).
"""

import sqlalchemy as sa
from flask import Blueprint, current_app, request
from werkzeug.exceptions import HTTPException

from dispatch import citizens
from hotline import api, attachments, limits, outbox
from hotline import citizens as codes
from hotline.auth import csrf
from hotline.db import get_session
from hotline.enums import Channel
from hotline.errors import HotlineError, ValidationFailed
from hotline.schemas import Fields, form_values, idempotency_key_header, iso, json_body


def create_blueprint():
    bp = Blueprint("citizen_api", __name__, url_prefix="/citizen/api/v1")
    bp.add_url_rule("/codes", view_func=send_code, methods=["POST"])
    bp.add_url_rule("/requests", view_func=create_request, methods=["POST"])
    bp.register_error_handler(HotlineError, api.hotline_error)
    bp.register_error_handler(sa.exc.SQLAlchemyError, api.database_error)
    bp.register_error_handler(HTTPException, api.http_error)
    csrf.exempt(bp)
    return bp


@limits.limited("LIMIT_CITIZEN_CODES")
def send_code():
    """获取验证码."""
    fields = Fields(json_body())
    phone = fields.raw("phone")
    purpose = fields.raw("purpose")
    if purpose not in codes.PURPOSES:
        fields.fail("purpose", "用途须为 submit（反映诉求）或 track（查询诉求）")
    fields.check()
    phone = codes.normalise_phone(phone if isinstance(phone, str) else "")
    db = get_session()
    resend_after = codes.send_code(db, phone, purpose=purpose, client_ip=limits.client_address())
    api.commit()
    return api.ok({"resend_after": resend_after})


@limits.limited("LIMIT_CITIZEN_SUBMIT")
def create_request():
    """我要反映."""
    key = idempotency_key_header()
    if key is None:
        raise ValidationFailed(
            "请在 Idempotency-Key 请求头中提供本次提交的唯一标识（重试时保持不变）",
            code="IDEMPOTENCY_KEY_MISSING",
        )
    photos = []
    if request.mimetype == "multipart/form-data":
        data = form_values(request.form)
        if "lng" in data or "lat" in data:
            data["position_source"] = "device"
        fields = Fields(data)
        values = citizens.submission_values(fields, text_position=True)
        fields.read.add("position_source")
    else:
        fields = Fields(json_body())
        values = citizens.submission_values(fields, text_position=False)
    channel = fields.choice("channel", "受理渠道", Channel, default=Channel.app)
    if channel not in citizens.PORTAL_CHANNELS:
        fields.fail("channel", "受理渠道须为 app、wechat 或 web")
    fields.check()
    if request.mimetype == "multipart/form-data":
        photos = attachments.check(request.files.getlist("photos"))
    db = get_session()
    ticket, created = citizens.submit(
        db,
        channel=channel,
        photos=photos,
        idempotency_key=key,
        openid=outbox.openid_from_headers(request.headers, current_app.config),
        **values,
    )
    api.commit()
    reply_by = citizens.promised_reply(db, ticket)
    body = {
        "number": ticket.number,
        "received_at": iso(ticket.received_at),
        "reply_by": iso(reply_by),
        "reply_by_text": citizens.reply_text(reply_by),
        "sms_sent": bool(ticket.requester_phone),
    }
    headers = {} if created else {"Idempotent-Replayed": "true"}
    return api.ok(body, 201 if created else 200, headers)
