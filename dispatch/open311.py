"""Open311 GeoReport v2 (开放接口): other systems file and follow requests through the open
standard at ``/open311/v2`` (views: ``dispatch.api.open311``). This module holds the rules
and the shapes; the views only parse the URL and pick JSON or XML.

API keys
    An administrator makes a key per client system (``create_key``: the page 开放接口密钥 and
    ``hotline open311-key create NAME``). The key is shown once; only its SHA-256 and first
    characters are kept. Each key has its own service account (``Role.portal``,
    ``open311-<slug>``) that receives its requests, so its tickets, its idempotency keys and
    its audit trail are its own. A revoked key is refused from that moment; the account and
    its tickets stay. Each key's calls are limited by ``LIMIT_OPEN311`` (``hotline.limits``);
    a missing, wrong or revoked key is counted against the caller's address under the same
    rule, so a flood of guessed keys is throttled like reads without a key.

Services (GET services)
    Every active category with no active category below it is a service: ``service_code``
    the category code, ``service_name`` its name, ``group`` its top-level category,
    ``description`` the path from the top, ``keywords`` the names above it, ``metadata``
    false and ``type`` realtime (a request becomes a ticket at once).

Requests (POST requests)
    Received by ``operations.receive`` like every other channel: channel 开放接口, the key's
    name as the channel's client, urgency 一般, request type from the category (a category
    whose path names 咨询/建议/表扬/举报/求助 gives that type; everything else is a 投诉).
    ``lat``/``long`` are WGS-84 as the standard says and are stored in the map's GCJ-02;
    ``media_url`` (http/https) is kept on the receive event and added as a line to the
    content so the handler sees it; ``email`` is kept on the receive event only.
    The idempotency key is the client's ``Idempotency-Key`` header, or a new UUID; either
    is the request's ``token``: a retried POST with the same key returns the first ticket,
    and ``GET tokens/{token}`` finds it.

Public reads (GET requests, GET requests/{id}, GET tokens/{id})
    No names, no phones, no e-mail: ``description`` and ``status_notes`` pass through
    ``privacy.scrub_personal``. 举报 (reports) and requests closed at intake as touching
    secrets or privacy are never listed, nor found by ``GET tokens`` without a key (with a
    key, tokens find only that client's own requests, reports included).
    Where a citizen is: a ticket's exact place is shown only to the client that filed it
    (a read with that client's ``api_key``). To everyone else ``lat``/``long`` are rounded
    to 3 decimals (about 100 m), and ``address`` is null unless the ticket came through
    Open311, whose clients sent their ``address_string`` for this interface (still
    scrubbed); the address a citizen told the hotline by phone, web or app is never shown.
    ``status`` is ``closed`` once the request has its answer or left the hotline
    (``CLOSED_STATUSES``), ``open`` otherwise; ``status_notes`` is the unit's reply (统一回复)
    once finished, or what became of it (transferred, merged, terminated). A call split
    into several matters (拆单) is ``open`` while any of its matters is (its status is its
    children's), with a note that it was split; the matters are requests of their own
    (their numbers on the citizen's page and in the 受理通知 text), and the call is
    ``closed`` once every one is final. Times are ISO 8601
    in the city's time zone with its offset; ``lat``/``long`` are converted back to WGS-84.
"""

import datetime as dt
import hashlib
import hmac
import re
import secrets
import uuid
import xml.etree.ElementTree as ET
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from classifier import geo
from dispatch import operations, reply_review
from hotline import limits, users
from hotline.audit import audit
from hotline.db import utcnow
from hotline.enums import Channel, IntakeOutcome, RequestType, TicketStatus, Urgency
from hotline.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from hotline.models import Category, Open311Key, Ticket, TicketEvent
from hotline.privacy import scrub_personal
from hotline.schemas import ADDRESS_MAX, Fields, valid_idempotency_key

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
#: When this interface last changed (discovery's ``changeset``).
CHANGESET = "2026-12-05T00:00:00+08:00"
FORMATS = {"json": "application/json", "xml": "text/xml"}
#: Characters of a key kept to tell keys apart on the page.
PREFIX_CHARS = 8
NAME_MAX = 40
NOTE_MAX = 200
MEDIA_URL_MAX = 500
EMAIL_MAX = 100
#: Most ids one ``GET requests?service_request_id=…`` may name.
MAX_IDS = 50
#: The standard's default window of ``GET requests`` without dates.
DEFAULT_DAYS = 90
#: Decimals of the coordinates others than the filing client read (0.001° is about 100 m).
PUBLIC_DECIMALS = 3
#: ``last_used_at`` is written at most this often per key (a busy client costs no write
#: per call).
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)

S = TicketStatus
#: Statuses that show as ``closed``: the unit has answered (finished, called back, closed),
#: it was answered at intake, or it left the hotline (transferred, merged, terminated).
#: Everything else, a reopened request included, is ``open``.
CLOSED_STATUSES = frozenset(
    {
        S.finished,
        S.called_back,
        S.closed,
        S.resolved_at_intake,
        S.transferred,
        S.merged,
        S.terminated,
    }
)
#: Statuses whose ``ticket.result`` is the reply the public may read.
ANSWERED_STATUSES = reply_review.REPLIED
#: Words in a category's path that say what kind of request it is (else 投诉).
TYPE_WORDS = [
    ("咨询", RequestType.consult),
    ("建议", RequestType.suggestion),
    ("表扬", RequestType.praise),
    ("举报", RequestType.report),
    ("求助", RequestType.help),
]

_NAME = re.compile(r"^[^\s/\\<>\"'&]+(?: [^\s/\\<>\"'&]+)*$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


# -- API keys -----------------------------------------------------------------------------------


def key_hash(key):
    return hashlib.sha256(key.encode()).hexdigest()


def _slug(name):
    """The service account's suffix: the name itself when it is a plain lower-case word, else
    a digest of it (names differing only in case get different accounts)."""
    if _SLUG.match(name):
        return name
    return hashlib.sha256(name.encode()).hexdigest()[:12]


def _check_name(name):
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name:
        raise ValidationFailed("请填写密钥名称（对接系统的名称）", details={"name": "请填写名称"})
    if len(name) > NAME_MAX:
        message = f"名称不能超过 {NAME_MAX} 字（现为 {len(name)} 字）"
        raise ValidationFailed(message, details={"name": message})
    if not _NAME.match(name) or not name.isprintable():
        message = "名称不能含空白以外的控制字符、斜杠、引号、尖括号或 &，词间只能有一个空格"
        raise ValidationFailed(message, details={"name": message})
    return name


def create_key(db, actor, name, note=None):
    """Make a key for the client system ``name``. Returns (row, key): the key in plain text
    is in no other place, so it is shown to the administrator once."""
    name = _check_name(name)
    note = (note or "").strip() or None
    if note and len(note) > NOTE_MAX:
        message = f"备注不能超过 {NOTE_MAX} 字（现为 {len(note)} 字）"
        raise ValidationFailed(message, details={"note": message})
    taken = Conflict(
        f"名称“{name}”已被使用（已吊销的密钥也保留其名称），请换一个名称",
        code="OPEN311_KEY_NAME_TAKEN",
        details={"name": "名称已被使用"},
    )
    if db.scalar(sa.select(Open311Key.id).where(Open311Key.name == name)) is not None:
        raise taken
    key = secrets.token_urlsafe(32)
    account = users.service_account(db, f"open311-{_slug(name)}", f"开放接口·{name}")
    row = Open311Key(
        name=name,
        key_hash=key_hash(key),
        key_prefix=key[:PREFIX_CHARS],
        user_id=account.id,
        note=note,
        created_at=utcnow(),
        created_by_id=actor.id if actor else None,
    )
    try:
        with db.begin_nested():
            db.add(row)
    except IntegrityError:
        raise taken from None
    audit(
        db,
        actor,
        "open311_key.create",
        target=name,
        payload={"prefix": row.key_prefix, "note": note, "account": account.username},
    )
    return row, key


def get_key(db, name):
    row = db.scalars(sa.select(Open311Key).where(Open311Key.name == name)).first()
    if row is None:
        raise NotFound(f"开放接口密钥不存在：{name}", code="OPEN311_KEY_NOT_FOUND")
    return row


def revoke_key(db, actor, row, now=None):
    """吊销: the key is refused from now on. Revoking a revoked key changes nothing (a
    repeated click or command is no error). Returns whether it changed."""
    if row.revoked_at is not None:
        return False
    row.revoked_at = now or utcnow()
    audit(db, actor, "open311_key.revoke", target=row.name, payload={"prefix": row.key_prefix})
    return True


def list_keys(db):
    """Every key, live ones first, newest first."""
    return db.scalars(
        sa.select(Open311Key).order_by(
            Open311Key.revoked_at.is_not(None), Open311Key.created_at.desc(), Open311Key.id.desc()
        )
    ).all()


def key_for(db, plaintext, now=None):
    """The live key whose plain text is ``plaintext``, or Forbidden. The look-up is by the
    key's SHA-256, so how long it takes tells nothing about how much of a guess was right."""
    if not plaintext:
        raise Forbidden("缺少 api_key：提交诉求须提供开放接口密钥", code="OPEN311_KEY_MISSING")
    digest = key_hash(plaintext) if isinstance(plaintext, str) and len(plaintext) <= 200 else ""
    row = db.scalars(sa.select(Open311Key).where(Open311Key.key_hash == digest)).first()
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        raise Forbidden("api_key 无效", code="OPEN311_KEY_INVALID")
    if row.revoked_at is not None:
        raise Forbidden("api_key 已被吊销，请联系热线管理员", code="OPEN311_KEY_REVOKED")
    now = now or utcnow()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        # An UPDATE without a read-modify-write of the row: two calls at once both succeed.
        db.execute(
            sa.update(Open311Key)
            .where(Open311Key.id == row.id)
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
        row.last_used_at = now
    return row


def authorise(db, plaintext):
    """The key of a call (``key_for``), counted against its rate limit (``LIMIT_OPEN311``
    per key, ``hotline.limits``: shared through Redis by every process). A refused key is
    counted against the caller's address instead: guessing keys costs calls too."""
    try:
        row = key_for(db, plaintext)
    except Forbidden:
        limits.check("LIMIT_OPEN311")
        raise
    limits.check("LIMIT_OPEN311", f"open311:{row.name}")
    return row


# -- services -----------------------------------------------------------------------------------


def _services(db):
    """[(category, path of categories from the top)] of every service, by code."""
    rows = db.scalars(sa.select(Category).where(Category.active).order_by(Category.code)).all()
    by_code = {c.code: c for c in rows}
    parents = {c.code[:-2] for c in rows if len(c.code) > 2}
    result = []
    for c in rows:
        if c.code in parents:
            continue
        path = [by_code.get(c.code[:n]) for n in range(2, len(c.code) + 1, 2)]
        if all(path):  # below an inactive category: not offered
            result.append((c, path))
    return result


def service_dict(category, path):
    names = [p.name for p in path]
    return {
        "service_code": category.code,
        "service_name": category.name,
        "description": " / ".join(names),
        "metadata": False,
        "type": "realtime",
        "keywords": ",".join(names[:-1]),
        "group": names[0],
    }


def services(db):
    return [service_dict(c, path) for c, path in _services(db)]


def service_definition(db, code):
    """A service's definition: no attributes (every service has ``metadata`` false), so the
    definition names the code and an empty attribute list; an unknown code is a 404."""
    category = _service(db, code)
    if category is None:
        raise NotFound(f"service_code 不存在：{code}", code="OPEN311_SERVICE_NOT_FOUND")
    return {"service_code": category.code, "attributes": []}


def _service(db, code):
    for category, _path in _services(db) if isinstance(code, str) else []:
        if category.code == code:
            return category
    return None


def request_type_of(category, db):
    """The request type a category implies (``TYPE_WORDS``), else 投诉."""
    names = [
        c.name
        for c in db.scalars(sa.select(Category).where(Category.code.in_(category.ancestor_codes())))
    ]
    for word, request_type in TYPE_WORDS:
        if any(word in name for name in names):
            return request_type
    return RequestType.complaint


# -- POST requests ------------------------------------------------------------------------------


#: How a refused Open311 coordinate is explained.
COORDINATE_HINT = "（WGS-84 十进制度），如 119.1617"


def parse_request(db, data):
    """The ``receive`` values of a POST's fields (strings, as the standard's form posts
    them), checked. Fields the standard names that we do not use (jurisdiction_id,
    device_id, account_id, attribute[…]) are ignored. Raises ValidationFailed."""
    fields = Fields(data)
    code = fields.text("service_code", "service_code（事项分类编码）", required=True, max_len=16)
    category = None
    if code is not None:
        category = _service(db, code)
        if category is None:
            fields.fail("service_code", f"service_code 不存在：{code}（见 GET services）")
    description = fields.content("description", "description（诉求内容）")
    address = fields.text("address_string", "address_string（地址）", max_len=ADDRESS_MAX)
    lng = fields.coordinate_text("long", "long（经度）", hint=COORDINATE_HINT)
    lat = fields.coordinate_text("lat", "lat（纬度）", hint=COORDINATE_HINT)
    if (lng is None) != (lat is None) and "lat" not in fields.errors:
        fields.fail("lat", "lat 和 long 须同时提供")
    elif lng is not None and lat is not None:
        if not geo.in_china(lng, lat):
            fields.fail("lat", geo.OUTSIDE_CHINA)
        else:
            lng, lat = geo.wgs84_to_gcj02(lng, lat)
    if (
        (lng is None or lat is None)
        and address is None
        and not fields.errors.keys()
        & {
            "lat",
            "long",
            "address_string",
        }
    ):
        fields.fail("address_string", "须提供位置：lat 和 long，或 address_string")
    first = fields.text("first_name", "first_name（名）", max_len=25)
    last = fields.text("last_name", "last_name（姓）", max_len=25)
    phone = fields.phone("phone", "phone（联系电话）")
    email = fields.text("email", "email（电子邮箱）", max_len=EMAIL_MAX)
    if email and not _EMAIL.match(email):
        fields.fail("email", "email 格式不正确")
    media_url = fields.text("media_url", "media_url（图片链接）", max_len=MEDIA_URL_MAX)
    if media_url and not media_url.lower().startswith(("http://", "https://")):
        fields.fail("media_url", "media_url 须为 http:// 或 https:// 开头的链接")
    if fields.errors:
        first_error = next(iter(fields.errors.values()))
        raise ValidationFailed(f"请求内容有误：{first_error}", details=fields.errors)
    content = description + (f"\n图片链接：{media_url}" if media_url else "")
    extra = {k: v for k, v in {"media_url": media_url, "email": email}.items() if v}
    return {
        "category": category,
        "request_type": request_type_of(category, db),
        "urgency": Urgency.normal,
        "content": content,
        "address": address,
        "lng": lng if lat is not None else None,
        "lat": lat if lng is not None else None,
        "requester_name": ((last or "") + (first or "")) or None,
        "requester_phone": phone,
        "extra_payload": {"open311": extra} if extra else None,
    }


def post_request(db, key, fields, idempotency_key=None):
    """提交: receive the request ``fields`` of the client of ``key``. Returns (ticket, token,
    created). The token is ``idempotency_key`` (the client's ``Idempotency-Key``) or a new
    UUID: with the client's key, the same request sent again returns the first ticket and a
    different request under the same key is refused."""
    if idempotency_key is not None and not valid_idempotency_key(idempotency_key):
        raise ValidationFailed(
            "Idempotency-Key 须为 1–100 个可打印 ASCII 字符", code="IDEMPOTENCY_KEY_INVALID"
        )
    values = parse_request(db, fields)
    digest = None
    if idempotency_key is not None:
        digest = operations.request_digest({k: v for k, v in fields.items() if k != "api_key"})
    token = idempotency_key or uuid.uuid4().hex
    actor = key.user
    ticket, created = operations.receive(
        db,
        actor,
        channel=Channel.open311,
        channel_client=key.name,
        idempotency_key=token,
        digest=digest,
        **values,
    )
    return ticket, token, created


def service_notice(ticket):
    """What the client is told on receipt (the emergency lines when the text sounds like
    one)."""
    warning = operations.emergency_warning(ticket.suggestion)
    notice = f"已受理，工单编号 {ticket.number}"
    if warning:
        notice += f"；如情况紧急，请立即拨打 {warning['transfer_to']}"
    return notice


def receipt_dict(ticket, token):
    return {
        "service_request_id": ticket.number,
        "token": token,
        "service_notice": service_notice(ticket),
        "account_id": None,
    }


# -- public reads -------------------------------------------------------------------------------


def _public():
    """Tickets the public may read: no reports (举报), nothing closed as secret or private."""
    return sa.and_(
        Ticket.request_type != RequestType.report,
        sa.or_(
            Ticket.intake_outcome.is_(None),
            Ticket.intake_outcome != IntakeOutcome.secret_or_privacy,
        ),
    )


_OPTIONS = (selectinload(Ticket.category), selectinload(Ticket.lead_unit))


def _parse_moment(raw, name, timezone, errors):
    """An ISO 8601 date-time (an offset or Z; without one, the city's time), or a date."""
    value = raw.strip()
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        errors[name] = f"{name} 须为 ISO 8601 时间，如 2026-12-01T08:00:00+08:00"
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment.astimezone(dt.UTC)


def request_query(args, *, now, timezone):
    """The SELECT of ``GET requests`` from its query arguments, or ValidationFailed naming
    every bad one. With ``service_request_id`` the other filters are ignored (as the
    standard says); otherwise the window is the last 90 days unless dates are given."""
    errors = {}
    query = sa.select(Ticket).where(_public())
    ids = args.get("service_request_id")
    if ids is not None:
        numbers = [n.strip() for n in ids.split(",") if n.strip()]
        if not numbers or len(numbers) > MAX_IDS:
            errors["service_request_id"] = f"service_request_id 须为 1–{MAX_IDS} 个以逗号分隔的编号"
        elif any(len(n) > 32 for n in numbers):
            errors["service_request_id"] = "service_request_id 编号过长"
        if errors:
            raise ValidationFailed(next(iter(errors.values())), details=errors)
        return query.where(Ticket.number.in_(numbers))
    codes = args.get("service_code")
    if codes is not None:
        codes = [c.strip() for c in codes.split(",") if c.strip()]
        if not codes or len(codes) > MAX_IDS or any(len(c) > 16 for c in codes):
            errors["service_code"] = "service_code 须为以逗号分隔的事项分类编码"
        else:
            query = query.join(Category, Category.id == Ticket.category_id).where(
                Category.code.in_(codes)
            )
    start = end = None
    if args.get("start_date") is not None:
        start = _parse_moment(args["start_date"], "start_date", timezone, errors)
    if args.get("end_date") is not None:
        end = _parse_moment(args["end_date"], "end_date", timezone, errors)
    if start and end and start > end:
        errors["end_date"] = "end_date 不能早于 start_date"
    statuses = args.get("status")
    if statuses is not None:
        wanted = {s.strip() for s in statuses.split(",") if s.strip()}
        if not wanted or not wanted <= {"open", "closed"}:
            errors["status"] = "status 须为 open、closed 或 open,closed"
        elif wanted == {"open"}:
            query = query.where(Ticket.status.not_in(CLOSED_STATUSES))
        elif wanted == {"closed"}:
            query = query.where(Ticket.status.in_(CLOSED_STATUSES))
    if errors:
        raise ValidationFailed(f"查询条件有误：{next(iter(errors.values()))}", details=errors)
    if start is None and end is None:
        start = now - dt.timedelta(days=DEFAULT_DAYS)
    if start is not None:
        query = query.where(Ticket.received_at >= start)
    if end is not None:
        query = query.where(Ticket.received_at <= end)
    return query


def page_of(db, query, *, page, size):
    """One page of ``query``'s tickets, newest first, with their media links."""
    rows = db.scalars(
        query.options(*_OPTIONS)
        .order_by(Ticket.received_at.desc(), Ticket.id.desc())
        .limit(size)
        .offset((page - 1) * size)
    ).all()
    return rows, media_urls(db, [t.id for t in rows])


def public_ticket(db, number):
    """The ticket ``number`` as the public may read it, or a 404."""
    ticket = db.scalars(
        sa.select(Ticket).where(Ticket.number == number, _public()).options(*_OPTIONS)
    ).first()
    if ticket is None:
        raise NotFound(f"service_request_id 不存在：{number}", code="OPEN311_REQUEST_NOT_FOUND")
    return ticket


def media_urls(db, ticket_ids):
    """{ticket id: media_url} of the tickets filed with one (kept on the receive event)."""
    if not ticket_ids:
        return {}
    rows = db.execute(
        sa.select(TicketEvent.ticket_id, TicketEvent.payload).where(
            TicketEvent.ticket_id.in_(ticket_ids), TicketEvent.action == "receive"
        )
    )
    return {
        ticket_id: payload["open311"]["media_url"]
        for ticket_id, payload in rows
        if isinstance(payload, dict) and (payload.get("open311") or {}).get("media_url")
    }


def status_notes(ticket):
    if ticket.status in ANSWERED_STATUSES and ticket.result:
        return scrub_personal(ticket.result)
    if ticket.status == S.transferred and ticket.transfer_target is not None:
        return f"已转至{ticket.transfer_target.label}"
    if ticket.status == S.merged:
        return "已与同一事项的其他诉求合并办理"
    if ticket.status == S.terminated:
        return "已终止办理"
    if ticket.status == S.split:
        return "所反映的多件事项已拆分为子工单分别办理，全部办结后本诉求关闭"
    return None


def _iso(value, timezone):
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(ZoneInfo(timezone)).isoformat(timespec="seconds")


def _description(ticket, media_url):
    """The request's text; the media link ``post_request`` added for the handler is the
    request's ``media_url`` instead."""
    text = ticket.content or ""
    if media_url:
        text = text.removesuffix(f"\n图片链接：{media_url}")
    return scrub_personal(text)


def own_request(ticket, reader):
    """Whether ``ticket`` was filed through Open311 by the client of the key ``reader``."""
    return (
        reader is not None
        and ticket.channel == Channel.open311
        and ticket.channel_client == reader.name
    )


def request_dict(ticket, timezone, media_url=None, reader=None):
    """One service request as the standard names its fields; no personal data. The exact
    place only for the client that filed it (``reader``, the key of the read); for others
    coordinates to ``PUBLIC_DECIMALS`` and the address only of Open311 tickets."""
    own = own_request(ticket, reader)
    lng = lat = None
    if ticket.lng is not None and ticket.lat is not None:
        lng, lat = geo.gcj02_to_wgs84(ticket.lng, ticket.lat)
        if not own:
            lng, lat = round(lng, PUBLIC_DECIMALS), round(lat, PUBLIC_DECIMALS)
    address = None
    if own or ticket.channel == Channel.open311:
        address = scrub_personal(ticket.address)
    return {
        "service_request_id": ticket.number,
        "status": "closed" if ticket.status in CLOSED_STATUSES else "open",
        "status_notes": status_notes(ticket),
        "service_name": ticket.category.name if ticket.category else None,
        "service_code": ticket.category.code if ticket.category else None,
        "description": _description(ticket, media_url),
        "agency_responsible": ticket.lead_unit.name if ticket.lead_unit else None,
        "service_notice": None,
        "requested_datetime": _iso(ticket.received_at, timezone),
        "updated_datetime": _iso(ticket.updated_at, timezone),
        "expected_datetime": _iso(ticket.finish_due, timezone),
        "address": address,
        "address_id": None,
        "zipcode": None,
        "lat": lat,
        "long": lng,
        "media_url": media_url,
    }


def tokens(db, token, key=None):
    """[{service_request_id, token}] of the Open311 requests filed under ``token`` (by
    ``key``'s client when given; else by any client, so more than one may answer, and only
    those the public may read: a report's number is not revealed)."""
    query = sa.select(Ticket.number).where(
        Ticket.channel == Channel.open311, Ticket.idempotency_key == token
    )
    if key is not None:
        query = query.where(Ticket.created_by_id == key.user_id)
    else:
        query = query.where(_public())
    numbers = db.scalars(query.order_by(Ticket.id)).all()
    if not numbers:
        raise NotFound(f"token 不存在：{token}", code="OPEN311_TOKEN_NOT_FOUND")
    return [{"service_request_id": n, "token": token} for n in numbers]


def discovery(url, contact):
    return {
        "changeset": CHANGESET,
        "contact": contact,
        "key_service": "向热线管理员申请开放接口密钥（系统管理 → 开放接口密钥）",
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": url,
                "changeset": CHANGESET,
                "type": "production",
                "formats": list(FORMATS.values()),
            }
        ],
    }


# -- formats ------------------------------------------------------------------------------------

#: The element of one item of each list in the XML answers.
_XML_ITEMS = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
    "attributes": "attribute",
}


def errors_of(status, exc):
    """The standard's error list of a refusal: one error per bad field of a validation
    failure, else one."""
    messages = []
    if isinstance(exc, ValidationFailed) and exc.code == ValidationFailed.code:
        messages = [
            text if text.startswith(field) else f"{field}：{text}"
            for field, text in exc.details.items()
            if isinstance(text, str)
        ]
    return [{"code": status, "description": m} for m in messages or [exc.message]]


def _xml_value(parent, tag, value):
    element = ET.SubElement(parent, tag)
    if isinstance(value, dict):
        for k, v in value.items():
            _xml_value(element, k, v)
    elif isinstance(value, list):
        for item in value:
            _xml_value(element, _XML_ITEMS.get(tag, "item"), item)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)


def to_xml(root, value):
    """``value`` (a list of items or one object) as the standard's XML under ``root``."""
    holder = ET.Element("holder")
    _xml_value(holder, root, value)
    body = ET.tostring(holder[0], encoding="unicode")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + body
