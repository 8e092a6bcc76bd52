"""A citizen's own request (市民端 我要反映): the parsing both the page and the app API use, the
one operation that records it, and the promised time to reply.

``submit`` receives through the console's ``operations.receive`` — the same numbering,
suggestion, area filling, clocks and events — as the portal's service account of the channel
(``portal-web``, ``portal-wechat``, ``portal-app``, ``hotline.users.portal_account``), urgency
一般 (a citizen does not choose urgency; an emergency is told to call 110/119/120/122). The
rules a citizen's request adds:

- a phone is proved with an SMS code (purpose ``submit``) before anything is written; without
  one the request is anonymous: no reply, no callback, no tracking;
- a double tap or a retry with the same ``idempotency_key`` (a random key the form carries
  from when it was shown, or the app's ``Idempotency-Key``) returns the first ticket, even
  though the code is used up by then; the same key with another request is refused;
- the receive event records whether the emergency warning was shown to the citizen and that
  they went on (``urgency_warning.citizen_saw_warning``);
- with a phone, the receipt is texted (``citizen_received``: number and promised reply time)
  through the outbox, in the same transaction.

The promised reply (``promised_reply``) is the finish deadline the ticket's SLA policy would
give if it were dispatched at the moment it was received, on the working-day calendar (a
24×7 unit counts calendar days, but which unit will lead is not known yet: the citizen is
promised the ordinary one). The policy is found with the ticket's category, or the
classifier's first category when the ticket has none and the classifier did not abstain;
counted from ``received_at`` so the receipt page and the SMS say the same time.
"""

from types import SimpleNamespace

import sqlalchemy as sa
from flask import current_app

from classifier import geo
from dispatch import operations, sla
from hotline import citizens, outbox, reference
from hotline.cache import RowCache, reference_rows
from hotline.db import local_datetime, utcnow
from hotline.enums import Channel, RequestType, Urgency
from hotline.errors import Conflict, ValidationFailed
from hotline.models import Category, Ticket
from hotline.schemas import ADDRESS_MAX, valid_idempotency_key
from hotline.users import portal_account

#: The channels a citizen's own client may be (the 市民端's three service accounts).
PORTAL_CHANNELS = (Channel.web, Channel.wechat, Channel.app)
#: Longest name a citizen may give (as the console's 诉求人姓名).
NAME_MAX = 50
#: What the page says when no phone is given.
ANONYMOUS_NOTICE = "匿名反映无法回访，也无法在线查询办理进度"
#: What the SMS says when no SLA policy applies (an administrator's gap, never a refusal).
REPLY_BY_UNKNOWN = "规定时限内"
IDEMPOTENCY_MISSING = "页面缺少防重复提交标识，请刷新页面后重新填写"


# -- parsing (the page's form and the app's JSON body) ---------------------------------------


def submission_values(fields, *, text_position):
    """The ``submit`` values of a citizen's request read from ``fields`` (``Fields`` of the
    page's form or the API's body); the caller adds its own fields and calls
    ``fields.check()``, which refuses naming every bad field. ``text_position``: the page
    sends ``lng``/``lat`` as text (the device's WGS-84 when ``position_source=device``,
    converted here to the map's GCJ-02); the API sends numbers, taken as WGS-84 from the
    phone's GPS and converted too."""
    values = {
        "request_type": fields.choice("request_type", "反映类型", RequestType, required=True),
        "content": fields.content(label="反映内容"),
        "address": fields.text("address", "地址", max_len=ADDRESS_MAX),
        "name": fields.text("name", "姓名", max_len=NAME_MAX),
    }
    if text_position:
        values["lng"], values["lat"] = fields.position(text=True)
    else:
        lng, lat = fields.position()
        if lng is not None:
            lng, lat = geo.wgs84_to_gcj02(lng, lat)
        values["lng"], values["lat"] = lng, lat
    # The page's choice 匿名反映 (``contact=anonymous``) drops a phone typed before it.
    anonymous = fields.raw("contact") == "anonymous"
    phone = None if anonymous else fields.raw("phone")
    fields.raw("phone")
    values["phone"] = None
    if isinstance(phone, str) and phone.strip():
        try:
            values["phone"] = citizens.normalise_phone(phone)
        except ValidationFailed as exc:
            fields.fail("phone", exc.message)
    elif phone not in (None, ""):
        fields.fail("phone", citizens.PHONE_INVALID)
    code = fields.raw("code")
    values["code"] = code.strip() if isinstance(code, str) and values["phone"] else None
    if values["phone"] and not values["code"]:
        fields.fail("code", "请填写短信验证码（不留手机号可匿名反映）")
    seen = fields.raw("emergency_seen")
    values["emergency_seen"] = seen in (True, "1", "true")
    return values


# -- the operation ----------------------------------------------------------------------------


def submit(
    session,
    *,
    channel,
    request_type,
    content,
    address=None,
    lng=None,
    lat=None,
    photos=(),
    name=None,
    phone=None,
    code=None,
    idempotency_key,
    emergency_seen=False,
    openid=None,
    now=None,
):
    """我要反映: record a citizen's request. Returns (ticket, created).

    ``phone`` (normalised) needs the ``code`` texted to it for ``submit``; ``photos`` are
    ``attachments.check``ed; ``openid``: the citizen's WeChat id when the city's WeChat
    gateway vouched for it (``outbox.openid_from_headers``), for WeChat copies of the texts.
    Nothing is written when anything is refused, except a wrong code's counted try
    (``citizens.check_code``)."""
    now = now or utcnow()
    if channel not in PORTAL_CHANNELS:
        raise ValidationFailed(
            "受理渠道须为网站、微信或 App", details={"channel": "受理渠道须为网站、微信或 App"}
        )
    if not valid_idempotency_key(idempotency_key):
        raise ValidationFailed(
            IDEMPOTENCY_MISSING,
            code="IDEMPOTENCY_KEY_MISSING",
            details={"key": IDEMPOTENCY_MISSING},
        )
    limit = current_app.config["MAX_TICKET_CONTENT_CHARS"] if current_app else 10_000
    content = (content or "").strip()
    if not content or len(content) > limit:
        message = "请填写反映内容" if not content else f"反映内容不能超过 {limit} 字"
        raise ValidationFailed(message, details={"content": message})
    actor = portal_account(session, channel)
    digest = operations.request_digest(
        {
            "channel": channel.value,
            "request_type": request_type.value,
            "content": content,
            "address": address,
            "lng": lng,
            "lat": lat,
            "name": name,
            "phone": phone,
            "photos": [p.sha256 for p in photos],
        }
    )
    # A retry: the first ticket, before the code (used up by the first) is asked for again.
    existing = _ticket_for_key(session, actor, idempotency_key, digest)
    if existing is not None:
        return existing, False
    if phone:
        citizens.check_code(session, phone, code, purpose="submit", now=now)
    ticket, created = operations.receive(
        session,
        actor,
        channel=channel,
        request_type=request_type,
        urgency=Urgency.normal,
        content=content,
        requester_name=name,
        requester_phone=phone,
        address=address,
        lng=lng,
        lat=lat,
        photos=photos,
        idempotency_key=idempotency_key,
        digest=digest,
        citizen_saw_warning=bool(emergency_seen),
        now=now,
    )
    if not created:
        return ticket, False
    if phone:
        outbox.tell_citizen(
            session,
            kind="citizen_received",
            phone=phone,
            fields={
                "number": ticket.number,
                "reply_by": reply_text(promised_reply(session, ticket)),
            },
            delivery_key=f"received:{ticket.id}",
            ticket_id=ticket.id,
            openid=openid,
            now=now,
        )
    return ticket, True


def _ticket_for_key(session, actor, key, digest):
    ticket = session.scalars(
        sa.select(Ticket).where(Ticket.created_by_id == actor.id, Ticket.idempotency_key == key)
    ).first()
    if ticket is not None and ticket.request_digest != digest:
        raise Conflict(
            "此表单已提交过一次；如要反映另一个问题，请核对内容后再次提交",
            code="IDEMPOTENCY_KEY_REUSED",
            details={"idempotency_key": key},
        )
    return ticket


# -- the promise ------------------------------------------------------------------------------


def promised_reply(session, ticket):
    """The moment (UTC) the citizen is promised a reply by, or None when no SLA policy
    applies (see the module's docstring for the rule). Asked twice in one request (the SMS,
    the receipt), it is worked out once."""
    known = session.info.setdefault("promised_reply", {})
    if ticket.id not in known:
        known[ticket.id] = _promised_reply(session, ticket)
    return known[ticket.id]


#: Which policy's finish limit applies to (category id, request type, urgency): asked at
#: every submission, so kept per process; an administrator's change to the time limits
#: reaches the promise within ``POLICY_CACHE_SECONDS`` (deadlines themselves are computed
#: afresh at dispatch). Categories changing empty it at once.
POLICY_CACHE_SECONDS = 10
_policy_limits = RowCache(POLICY_CACHE_SECONDS, follows=(reference.CATEGORIES,))


def _promised_reply(session, ticket):
    category_id = ticket.category_id or _suggested_category_id(session, ticket.suggestion)
    key = (category_id, ticket.request_type, ticket.urgency)
    limit = _policy_limits.value(session, key, lambda: _finish_limit(session, *key))
    if limit is None:
        return None
    due, _ = sla.add_limit(
        ticket.received_at,
        *limit,
        always_on=False,
        calendar=operations.work_calendar(session),
    )
    return due


def _finish_limit(session, category_id, request_type, urgency):
    """(amount, unit) of the finish limit of the policy for these values, or None."""
    stand_in = SimpleNamespace(
        category_id=category_id, category=None, request_type=request_type, urgency=urgency
    )
    try:
        policy = sla.find_policy(session, stand_in)
    except Conflict:
        return None
    return policy.finish_amount, policy.finish_unit


def _suggested_category_id(session, suggestion):
    category = (suggestion or {}).get("category") or {}
    top = category.get("top") or []
    if category.get("abstain") or not top:
        return None
    code = top[0]["code"]
    row = reference_rows.get(
        session,
        ("Category", code, *reference.stamp(session, reference.CATEGORIES)),
        lambda s: s.scalars(sa.select(Category).where(Category.code == code)).first(),
    )
    return row.id if row is not None and row.active else None


def reply_text(moment):
    """A promised moment as a citizen reads it: "12月9日 18:00" in the city's time."""
    if moment is None:
        return REPLY_BY_UNKNOWN
    timezone = current_app.config["TIMEZONE"]
    local = local_datetime(moment, timezone)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def suggestion_for_citizen(suggestion):
    """What the public may see of a classifier suggestion: the likely category's name (None
    when the classifier abstains) and the emergency line to call (None unless an emergency
    wording). Never codes, units, places or probabilities."""
    category = (suggestion or {}).get("category") or {}
    top = category.get("top") or []
    label = None if category.get("abstain") or not top else top[0].get("name")
    warning = operations.emergency_warning(suggestion)
    return {"category": label, "emergency": warning["transfer_to"] if warning else None}
