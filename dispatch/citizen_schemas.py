"""The 市民端's tracking pages and its app API read and write the same things: one parser per
form (a posted form through ``hotline.schemas.form_values``, or a JSON body) and the
serialisers of a citizen's ticket. Rules about tickets live in ``dispatch.citizen_tracking``
and ``dispatch.operations``.
"""

import re

from hotline.citizens import CODE_INVALID, normalise_phone
from hotline.enums import Satisfaction, Solved
from hotline.errors import ValidationFailed
from hotline.privacy import mask_phone
from hotline.schemas import Fields, iso, labelled

COMMENT_MAX = 500
REASON_MAX = 1000
NUMBER_MAX = 40
_CODE = re.compile(r"^\d{6}$", re.ASCII)
_NUMBER = re.compile(r"^[A-Za-z0-9-]{1,40}$", re.ASCII)


def _phone(fields):
    raw = fields.raw("phone")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return fields.fail("phone", "请填写手机号码")
    if not isinstance(raw, str):
        return fields.fail("phone", "手机号码须为文本")
    try:
        return normalise_phone(raw)
    except ValidationFailed as exc:
        return fields.fail("phone", exc.message)


def _code(fields):
    raw = fields.raw("code")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return fields.fail("code", "请填写短信验证码")
    if not isinstance(raw, str) or not _CODE.match(raw.strip()):
        return fields.fail("code", "验证码为 6 位数字")
    return raw.strip()


def _number(fields):
    raw = fields.raw("number")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return fields.fail("number", "请填写工单号")
    if not isinstance(raw, str) or not _NUMBER.match(raw.strip()):
        return fields.fail("number", "工单号格式不正确，如 WF20260603000123")
    return raw.strip().upper()


def _checked(fields, values):
    fields.check()
    return values


def parse_phone(data):
    """{phone} → the mobile number to text a code to."""
    f = Fields(data)
    return _checked(f, _phone(f))


def parse_login(data):
    """{phone, code} → (phone, code)."""
    f = Fields(data)
    return _checked(f, (_phone(f), _code(f)))


def parse_lookup(data, *, with_code):
    """{number, phone[, code]} → (number, phone, code or None)."""
    f = Fields(data)
    values = (_number(f), _phone(f), _code(f) if with_code else None)
    return _checked(f, values)


def parse_rating(data):
    """{solved, satisfaction, comment} → the keyword arguments of ``rate_online``."""
    f = Fields(data)
    values = {
        "solved": f.choice("solved", "是否解决", Solved, required=True),
        "satisfaction": f.choice("satisfaction", "满意度", Satisfaction, required=True),
        "comment": f.text("comment", "评价意见", multiline=True, max_len=COMMENT_MAX),
    }
    return _checked(f, values)


def parse_reopen(data):
    """{reason} → the keyword arguments of ``rerequest``."""
    f = Fields(data)
    values = {
        "reason": f.text(
            "reason", "再次反映的理由", required=True, multiline=True, max_len=REASON_MAX
        )
    }
    return _checked(f, values)


def code_refused():
    return ValidationFailed(CODE_INVALID, code="CODE_INVALID", details={"code": CODE_INVALID})


# -- serialising ------------------------------------------------------------------------------


def ticket_summary(ticket, status_words):
    return {
        "number": ticket.number,
        "title": ticket.title,
        "status": {"value": ticket.status.value, "label": status_words[ticket.status]},
        "received_at": iso(ticket.received_at),
    }


def ticket_detail(view, status_words):
    ticket = view.ticket
    data = ticket_summary(ticket, status_words)
    rating = view.rating
    data.update(
        {
            "content": ticket.content,
            "address": ticket.address,
            "phone": mask_phone(ticket.requester_phone),
            "reply": view.reply,
            "finished_at": iso(ticket.finished_at),
            "timeline": [
                {"at": iso(s.at), "title": s.title, "detail": s.detail} for s in view.steps
            ],
            "rating": None
            if rating is None
            else {
                "solved": labelled(rating["solved"]),
                "satisfaction": labelled(rating["satisfaction"]),
                "comment": rating["comment"],
                "at": iso(rating["at"]),
                "channel": labelled(rating["channel"]),
            },
            "can_rate": view.actions.can_rate,
            "can_reopen": view.actions.can_rerequest,
            "reopen_until": iso(view.actions.rerequest_until),
            "reopen_note": view.actions.rerequest_note,
            "parent": view.parent,
            "parts": [
                {"number": p.number, "title": p.title, "status": p.status, "reply": p.reply}
                for p in view.parts
            ],
        }
    )
    return data
