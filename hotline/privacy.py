"""个人信息查看留痕: every time a page, an API answer or an export shows someone a
requester's full phone number, the view is recorded in the audit log (who, when, from where,
which tickets), so the centre can answer "who looked at this citizen's number".

Code that reveals a number calls ``viewed(actor, ticket_number)``; after the response is
made, one audit row (``pii.view``) records every ticket of that request. Views are what GET
requests show (pages, API reads, exports); the answer to a change (receiving a ticket with
the number just typed, a callback on a ticket whose page was opened) is not a new view. A
request that failed (4xx/5xx) or redirected showed nothing and records nothing.
"""

import logging
import re

from flask import g, has_request_context, request

from hotline.audit import audit
from hotline.db import get_session

log = logging.getLogger(__name__)

#: Ticket numbers kept in one audit row (an export of thousands records the count).
MAX_NUMBERS = 500


def mask_phone(phone):
    """138****5678: enough to recognise a caller, not to call them."""
    if not phone:
        return phone
    if len(phone) <= 6:  # 95598: keeping 2 + 4 digits would show every digit
        return "*" * len(phone)
    keep = 3 if len(phone) >= 11 else 2
    return phone[:keep] + "*" * (len(phone) - keep - 4) + phone[-4:]


def viewed(actor, ticket_number, what="phone"):
    """``actor`` is being shown the full ``what`` of ticket ``ticket_number``."""
    if not has_request_context() or actor is None:
        return
    views = g.setdefault("pii_views", {})
    key = (actor.id, what)
    numbers = views.setdefault(key, {"actor": actor, "numbers": []})["numbers"]
    if ticket_number not in numbers:
        numbers.append(ticket_number)


def record(db, actor, what, numbers):
    """Audit that ``actor`` was shown the full ``what`` of the tickets ``numbers``; the caller
    commits (a POST's operation records its view in its own transaction)."""
    audit(
        db,
        actor,
        "pii.view",
        target=(numbers[0] or "")[:100] if len(numbers) == 1 else f"{len(numbers)} 张工单",
        payload={
            "what": what,
            "count": len(numbers),
            "tickets": numbers[:MAX_NUMBERS],
            "path": request.path[:200] if has_request_context() else None,
        },
    )


def init_app(app):
    @app.after_request
    def _record(response):
        # The views a GET page collected (``viewed``), recorded after it was rendered.
        views = g.pop("pii_views", None)
        if not views or request.method not in ("GET", "HEAD") or response.status_code >= 300:
            return response
        db = get_session()
        try:
            for (_, what), view in views.items():
                record(db, view["actor"], what, view["numbers"])
            db.commit()
        except Exception:  # noqa: BLE001 — the page was shown; the failure must be seen in logs
            db.rollback()
            log.exception("could not record a personal-data view (%s)", request.path)
        return response


# -- scrubbing text shown to the public ---------------------------------------------------------

#: A digit, ASCII or full-width (people type both).
_D = "[0-9\uff10-\uff19]"
_NOT_DIGIT_BEFORE = f"(?<!{_D})"
_NOT_DIGIT_AFTER = f"(?!{_D})"
#: A separator people put between groups of digits: a space, a dot or a hyphen (not a line
#: break: numbers on two lines are two numbers).
_SEP = "[ \\t.\\-\u3000]"
#: A digit, optionally after one separator.
_SD = f"(?:{_SEP}?{_D})"
#: 18-digit resident ID numbers (the last may be X), whole or in groups (370702 19900101 1234).
_ID_NUMBER = re.compile(
    f"{_NOT_DIGIT_BEFORE}{_D}{_SD}{{16}}{_SEP}?(?:{_D}|[Xx\uff38\uff58]){_NOT_DIGIT_AFTER}"
)
#: Mobiles (+86 optional; 11 digits in any grouping: 1391 234 5678, 139.1234.5678),
#: landlines with an area code (brackets optional; the local part grouped too: 0536-8888 8888),
#: and bare 7–8 digit local numbers (no separators: a date such as 2026-12-05 stays).
_PHONE = re.compile(
    _NOT_DIGIT_BEFORE
    + "(?:"
    + f"(?:[+\uff0b]?86{_SEP}?)?[1\uff11][3-9\uff13-\uff19]{_SD}{{9}}"
    + f"|[(\uff08]?[0\uff10]{_D}{{2,3}}[)\uff09]?{_SEP}?{_D}{_SD}{{6,7}}"
    + f"|{_D}{{7,8}}"
    + ")"
    + _NOT_DIGIT_AFTER
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
ID_REMOVED = "〔身份证号已隐去〕"
PHONE_REMOVED = "〔电话已隐去〕"
EMAIL_REMOVED = "〔邮箱已隐去〕"


def scrub_personal(text):
    """``text`` with ID numbers, phone numbers and e-mail addresses replaced by a note, for
    what the public reads (Open311's descriptions and replies). Bare 7–8 digit numbers go
    too: a local number without its area code is still a phone, and losing a number written
    without separators (20241201) costs less than showing someone's phone. Names cannot be
    found reliably in free text; public reads never show the name fields instead."""
    if not text:
        return text
    text = _ID_NUMBER.sub(ID_REMOVED, text)
    text = _EMAIL.sub(EMAIL_REMOVED, text)
    return _PHONE.sub(PHONE_REMOVED, text)
