"""What the citizen is told after submitting (市民端 notifications) and the rating link of the
finish text.

- **办结通知** (``tell_finished``): when a unit finishes a ticket whose requester left a mobile
  phone, a text with the reply (shortened to ``REPLY_CHARS``) and a link to rate it
  (``citizen_finished``), written to the outbox in the finishing transaction, once per
  finish event (delivery key ``finished:<ticket id>:<finish event id>``: a ticket reopened
  and finished again gets a new text).
- **拆单受理通知** (``tell_split``): when a call the citizen was texted a 受理通知 for is split
  into matters (拆单), one text with the matters' numbers (the 受理通知 template, its
  ``{number}`` the list), so the citizen can follow each by its own number.
- **再次反映通知** (``tell_reopened``): when the citizen asks again online
  (``operations.rerequest``), a text that it was received (``citizen_reopened``).

**The rating link** opens ``/citizen/rate/<token>`` without a code. The token is an
itsdangerous ``URLSafeTimedSerializer`` token signed with the application's ``SECRET_KEY``
and the salt ``RATING_SALT``: its payload is ``[ticket id, phone digest]``, the digest the
first 12 hex digits of HMAC-SHA256(SECRET_KEY, "rating-phone:<phone>"), so the link names
the ticket and binds the phone without showing the number in the URL. It is valid
``citizen.rating_link_days`` days (read when it is used) from its signing; a link for a
ticket whose requester phone has since changed is refused as invalid.

The link is absolute when it can be: ``PUBLIC_BASE_URL`` (configuration) when set, else the
host of the request that finishes the ticket, else (a scheduler, the demo history) a path.
"""

import hashlib
import hmac
import logging

from flask import current_app, has_request_context, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from hotline import outbox, settings
from hotline.citizens import normalise_phone
from hotline.errors import NotFound, ValidationFailed

log = logging.getLogger(__name__)

RATING_SALT = "hotline.citizen-rating"
#: Where a rating link leads (the page ``citizen_track.rate`` serves it).
RATING_PATH = "/citizen/rate/"
#: The longest reply quoted in the finish text (the page shows it whole).
REPLY_CHARS = 60
LINK_INVALID = "评价链接无效，请登录“我的诉求”查看和评价"


def mobile(phone):
    """``phone`` as an 11-digit mobile number a text can reach, or None (a landline, none)."""
    if not phone:
        return None
    try:
        return normalise_phone(phone)
    except ValidationFailed:
        return None


def shorten(text, limit=REPLY_CHARS):
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _serializer():
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=RATING_SALT)


def _phone_digest(phone):
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"rating-phone:{phone}".encode(), hashlib.sha256).hexdigest()[:12]


def rating_token(ticket, phone):
    """A signed token that lets the holder of ``phone`` rate ``ticket``."""
    return _serializer().dumps([ticket.id, _phone_digest(phone)])


def read_rating_token(session, token, load_ticket):
    """The (ticket, phone) a rating token names, or a refusal: expired (410-like, saying for
    how long links last) or forged/unknown (404). ``load_ticket(id)`` returns the ticket."""
    days = settings.get(session, "citizen.rating_link_days")
    try:
        ticket_id, digest = _serializer().loads(token, max_age=days * 86400)
    except SignatureExpired:
        raise ValidationFailed(
            f"评价链接已过期（有效期 {days} 天），请登录“我的诉求”查看和评价",
            code="RATING_LINK_EXPIRED",
            details={"rating_link_days": days},
        ) from None
    except (BadSignature, ValueError, TypeError):
        raise NotFound(LINK_INVALID, code="RATING_LINK_INVALID") from None
    ticket = load_ticket(ticket_id) if isinstance(ticket_id, int) else None
    phone = mobile(ticket.requester_phone) if ticket is not None else None
    if phone is None or not hmac.compare_digest(str(digest), _phone_digest(phone)):
        raise NotFound(LINK_INVALID, code="RATING_LINK_INVALID")
    return ticket, phone


def base_url():
    """Where the public reaches this site: ``PUBLIC_BASE_URL``, else the request's host, else
    "" (links are then paths)."""
    configured = current_app.config.get("PUBLIC_BASE_URL") or ""
    if configured:
        return configured.rstrip("/")
    if has_request_context():
        return request.host_url.rstrip("/")
    return ""


def rating_url(token):
    return f"{base_url()}{RATING_PATH}{token}"


def tell_finished(session, ticket, event, now):
    """办结通知 with the reply and the rating link (nothing without a mobile phone, or
    outside an application: no key to sign the link with)."""
    phone = mobile(ticket.requester_phone)
    if phone is None:
        return False
    if not current_app or not current_app.config.get("SECRET_KEY"):
        log.warning("no SECRET_KEY: finish text of %s not written", ticket.number)
        return False
    return outbox.tell_citizen(
        session,
        kind="citizen_finished",
        phone=phone,
        fields={
            "number": ticket.number,
            "reply": shorten(ticket.result),
            "rating_url": rating_url(rating_token(ticket, phone)),
        },
        delivery_key=f"finished:{ticket.id}:{event.id}",
        ticket_id=ticket.id,
        now=now,
    )


def tell_reopened(session, ticket, event, now):
    """再次反映通知: the citizen's renewed request was received."""
    phone = mobile(ticket.requester_phone)
    if phone is None:
        return False
    return outbox.tell_citizen(
        session,
        kind="citizen_reopened",
        phone=phone,
        fields={"number": ticket.number},
        delivery_key=f"reopened:{ticket.id}:{event.id}",
        ticket_id=ticket.id,
        now=now,
    )


def tell_split(session, parent, children, reply_by, event, now):
    """拆单受理通知: the matters' numbers of the split call ``parent`` in one text, with the
    promise ``reply_by`` (words) the citizen's receipt gave."""
    phone = mobile(parent.requester_phone)
    if phone is None:
        return False
    return outbox.tell_citizen(
        session,
        kind="citizen_received",
        phone=phone,
        fields={"number": "、".join(t.number for t in children), "reply_by": reply_by},
        delivery_key=f"split:{parent.id}:{event.id}",
        ticket_id=parent.id,
        now=now,
    )
