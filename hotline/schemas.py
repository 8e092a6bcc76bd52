"""The layer the JSON API and the pages share: strict parsing of what a client sends (a JSON
body or a posted form, read by the same ``Fields`` rules) into typed values with a Chinese
message per field, serialising rows for JSON, looking rows up by code, and pagination.

Views parse and render; the rules about what a value may be live here once.
"""

import datetime as dt
import json
import math
import re
import unicodedata
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app, request

from classifier import geo
from hotline import reference
from hotline.cache import reference_rows
from hotline.db import local_datetime
from hotline.enums import AlertLevel, WarningKind
from hotline.errors import HotlineError, NotFound, UnsupportedMediaType, ValidationFailed

#: ASCII digits only: a str pattern's \d also matches full-width and other Unicode digits.
_PHONE = re.compile(r"^(?:1[3-9]\d{9}|0\d{9,11}|\d{7,8}|9\d{4})$", re.ASCII)
_CODE = re.compile(r"^[0-9A-Za-z_-]{1,32}$")
#: Longest accepted idempotency key (API header, page forms' hidden key).
IDEMPOTENCY_KEY_MAX = 100
#: Longest title and address of a request (its content: ``MAX_TICKET_CONTENT_CHARS``).
TITLE_MAX = 100
ADDRESS_MAX = 200


def json_body():
    """The request's JSON object, or a 4xx saying exactly what is wrong with it."""
    if not request.is_json:
        raise UnsupportedMediaType("请求须为 JSON（Content-Type: application/json）")
    raw = request.get_data(cache=True)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HotlineError(
            f"请求体不是有效的 UTF-8 编码（第 {exc.start} 字节）", code="INVALID_ENCODING"
        ) from None
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise HotlineError(
            f"请求体不是有效的 JSON：第 {exc.lineno} 行第 {exc.colno} 列", code="INVALID_JSON"
        ) from None
    except (ValueError, RecursionError):
        # Numbers of more than 4300 digits (ValueError) or nesting deeper than the recursion
        # limit: still a malformed request, not a server error.
        raise HotlineError(
            "请求体不是有效的 JSON：数字过长或嵌套过深", code="INVALID_JSON"
        ) from None
    if not isinstance(data, dict):
        raise HotlineError("请求体须为 JSON 对象", code="INVALID_JSON")
    return data


class Fields:
    """Collects every field error of a request, then raises them together."""

    def __init__(self, data):
        self.data = data
        self.errors = {}
        #: Fields the parser asked for; anything else in the body is refused as unknown.
        self.read = set()

    def raw(self, name):
        self.read.add(name)
        if isinstance(self.data, DescribedBody):
            self.data.record(name, None, False, {})
        return self.data.get(name)

    def describe(self, name, label, required=False, **schema):
        """What field ``name`` may hold, as JSON Schema: each reading method below states it
        beside its check. Reading a body it does nothing; a ``DescribedBody`` records it."""
        if isinstance(self.data, DescribedBody):
            self.data.record(name, label, required, schema)

    def fail(self, name, message):
        """Record ``message`` for field ``name`` (the first one stays); returns None."""
        self.errors.setdefault(name, message)
        return None

    def _value(self, name, label, required):
        value = self.raw(name)
        if value is None and required:
            return self.fail(name, f"请填写{label}")
        return value

    def text(self, name, label, *, required=False, max_len, multiline=False):
        self.describe(
            name,
            label,
            required,
            type="string",
            maxLength=max_len,
            **({"minLength": 1, "pattern": r"\S"} if required else {}),
            **({"x-multiline": True} if multiline else {}),
        )
        value = self._value(name, label, required)
        if value is None:
            return None
        if not isinstance(value, str):
            return self.fail(name, f"{label}须为文本")
        value = value.strip()
        if not value:
            return self.fail(name, f"请填写{label}") if required else None
        problem = _bad_character(value, multiline)
        if problem:
            return self.fail(name, f"{label}{problem}")
        if len(value) > max_len:
            return self.fail(name, f"{label}不能超过 {max_len} 字（现为 {len(value)} 字）")
        return value

    def code(self, name, label, *, required=False):
        self.describe(name, label, required, type="string", pattern=_CODE.pattern)
        value = self._value(name, label, required)
        if value is None:
            return None
        if not isinstance(value, str) or not _CODE.match(value):
            return self.fail(name, f"{label}编码格式不正确")
        return value

    def codes(self, name, label):
        self.describe(
            name,
            label,
            type="array",
            maxItems=10,
            items={"type": "string", "pattern": _CODE.pattern},
        )
        value = self.raw(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(
            isinstance(v, str) and _CODE.match(v) for v in value
        ):
            return self.fail(name, f"{label}须为编码列表") or []
        if len(value) > 10:
            return self.fail(name, f"{label}最多 10 个") or []
        return value

    def choice(self, name, label, enum_cls, *, required=False, default=None):
        self.describe(
            name,
            label,
            required and default is None,
            type="string",
            enum=[m.value for m in enum_cls],
            **{"x-enum-labels": {m.value: m.label for m in enum_cls}},
            **({"default": default.value} if default is not None else {}),
        )
        value = self._value(name, label, required and default is None)
        if value is None:
            return default
        member = enum_cls.parse(value) if isinstance(value, str) else None
        if member is None:
            options = "、".join(f"{m.value}（{m.label}）" for m in enum_cls)
            return self.fail(name, f"{label}取值无效，可选：{options}")
        return member

    def boolean(self, name, label, *, required=False, default=None):
        self.describe(
            name,
            label,
            required and default is None,
            type="boolean",
            **({"default": default} if default is not None else {}),
        )
        value = self._value(name, label, required and default is None)
        if value is None:
            return default
        if not isinstance(value, bool):
            return self.fail(name, f"{label}须为 true 或 false")
        return value

    def integer(self, name, label, *, required=False, minimum=None, maximum=None):
        bounds = {"minimum": minimum, "maximum": maximum}
        self.describe(
            name,
            label,
            required,
            type="integer",
            **{k: v for k, v in bounds.items() if v is not None},
        )
        value = self._value(name, label, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            return self.fail(name, f"{label}须为整数")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            return self.fail(name, f"{label}须在 {minimum}–{maximum} 之间")
        return value

    def number(self, name, label, *, minimum, maximum):
        self.describe(name, label, type="number", minimum=minimum, maximum=maximum)
        value = self.raw(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return self.fail(name, f"{label}须为数字")
        if not minimum <= value <= maximum:
            return self.fail(name, f"{label}须在 {minimum}–{maximum} 之间")
        return float(value)

    def moment(self, name, label, *, timezone, required=False):
        """A moment: ISO 8601 with an offset (``2026-11-20T17:00:00+08:00``), or a local
        wall-clock time in ``timezone`` without one (a form's ``datetime-local``,
        ``2026-11-20T17:00``); returned in UTC."""
        self.describe(
            name,
            label,
            required,
            type="string",
            description=f"ISO 8601 时刻；不带时区时按 {timezone} 当地时间",
        )
        value = self._value(name, label, required)
        if value is None:
            return None
        if isinstance(value, str) and not value.strip():
            return self.fail(name, f"请填写{label}") if required else None
        try:
            moment = dt.datetime.fromisoformat(value.strip())
        except (TypeError, ValueError, AttributeError):
            return self.fail(name, f"{label}格式应为 YYYY-MM-DD HH:MM")
        if not DAY_YEARS[0] <= moment.year <= DAY_YEARS[1]:
            return self.fail(name, f"{label}超出范围（{DAY_YEARS[0]}–{DAY_YEARS[1]} 年）")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(timezone))
        return moment.astimezone(dt.UTC)

    def content(self, name="content", label="诉求内容", *, required=True):
        """A request's text, up to ``MAX_TICKET_CONTENT_CHARS``."""
        limit = current_app.config["MAX_TICKET_CONTENT_CHARS"]
        return self.text(name, label, required=required, multiline=True, max_len=limit)

    def position(self, *, text=False):
        """(lng, lat) from ``lng`` and ``lat`` inside China's bounding box, or (None, None).
        Half a position is an error. ``text``: the values come typed into a form (strings);
        one the device filled in (``position_source=device``) is WGS-84 and converted to the
        map's GCJ-02, one typed by hand is taken as GCJ-02 (read off a Chinese map)."""
        if text:
            device = self.raw("position_source") == "device"
            lng = self.coordinate_text("lng", "经度")
            lat = self.coordinate_text("lat", "纬度")
        else:
            lng = self.number("lng", "经度", minimum=geo.CHINA_LNG[0], maximum=geo.CHINA_LNG[1])
            lat = self.number("lat", "纬度", minimum=geo.CHINA_LAT[0], maximum=geo.CHINA_LAT[1])
        if (lng is None) != (lat is None):
            if text:
                self.fail("position", "经度和纬度须同时填写")
            else:
                self.fail("lat", "经度和纬度须同时提供")
            return None, None
        if lng is None:
            return None, None
        if text:
            if not geo.in_china(lng, lat):
                self.fail("position", geo.OUTSIDE_CHINA)
                return None, None
            if device:
                lng, lat = geo.wgs84_to_gcj02(lng, lat)
        return lng, lat

    def coordinate_text(self, name, label, *, hint="，如 119.1234"):
        """A coordinate typed as text (a form, Open311's fields) as a float, or None when
        blank; ``hint`` ends the refusal (须为数字…)."""
        self.describe(name, label, type="string", description="十进制数字文本")
        raw = self.raw(name)
        raw = raw.strip() if isinstance(raw, str) else raw
        if raw is None or raw == "":
            return None
        try:
            value = float(raw)
        except (TypeError, ValueError):
            return self.fail(name, f"{label}须为数字{hint}")
        if not math.isfinite(value):
            return self.fail(name, f"{label}须为数字{hint}")
        return value

    def version(self, name="version"):
        """The ticket version a form or body was read at (a stale or repeated form is then
        refused instead of acting twice)."""
        self.describe(name, "版本号", type="string", pattern=r"^[0-9]{1,9}$")
        raw = self.raw(name)
        if isinstance(raw, str):
            raw = raw.strip()
            if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or not raw.strip("0"):
                return self.fail(name, "页面缺少工单版本号，请刷新页面后重试")
            return int(raw)
        return self.integer(name, "版本号", minimum=1)

    def idempotency_key(self, name, message):
        """A page form's hidden key against double submits; ``message`` when it is missing."""
        self.describe(
            name, "防重复提交键", True, type="string", minLength=1, maxLength=IDEMPOTENCY_KEY_MAX
        )
        value = self.raw(name)
        value = value.strip() if isinstance(value, str) else value
        if not valid_idempotency_key(value):
            return self.fail(name, message)
        return value

    def phone(self, name, label):
        self.describe(
            name,
            label,
            type="string",
            description="手机号 11 位，或带区号的固定电话（可含空格、短横线、+86）",
        )
        value = self.raw(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            return self.fail(name, f"{label}须为文本")
        digits = re.sub(r"[\s-]", "", value)
        if digits.startswith("+86"):
            digits = digits[3:]
        if not _PHONE.match(digits):
            return self.fail(name, f"{label}格式不正确（手机号 11 位，或带区号的固定电话）")
        return digits

    def check(self):
        if isinstance(self.data, DescribedBody):
            return
        for name in self.data:
            if name not in self.read:
                self.errors.setdefault(name, f"未知字段“{name}”")
        if self.errors:
            first = next(iter(self.errors.values()))
            raise ValidationFailed(f"请求内容有误：{first}", details=self.errors)


class DescribedBody(dict):
    """A body in describe mode: ``Fields(DescribedBody())`` handed to a parser reads no value
    but records each field the parser asks for as JSON Schema (type, limits, enum values with
    their labels, required), so the published description (``hotline.openapi``) comes from
    the parsers themselves.

    Every field reads as absent, so a parser that looks a code up finds nothing to look up;
    ``name in data`` (a partial update's "was it sent?") is true for every name."""

    def __init__(self):
        super().__init__()
        self.properties = {}
        self.required = []

    def __contains__(self, name):
        return True

    def record(self, name, label, required, schema):
        if label is None:
            # A field read without a typed method: its type is not known here.
            self.properties.setdefault(name, {"description": "类型未声明（解析器直接读取）"})
            return
        self.properties[name] = {"title": label, **schema}
        if required and name not in self.required:
            self.required.append(name)

    def schema(self, *, partial=False):
        """The JSON Schema of the body the parser read (``partial``: an update, where no
        field is required)."""
        body = {"type": "object", "properties": self.properties, "additionalProperties": False}
        if self.required and not partial:
            body["required"] = list(self.required)
        return body


class DescribedArgs(dict):
    """Query arguments in describe mode: a list filter run against it reads nothing but
    records each argument it asks for (as text, or as the JSON Schema ``describe`` is given)."""

    def __init__(self):
        super().__init__()
        self.parameters = {}

    def get(self, name, default=None, type=None):  # noqa: A002 (werkzeug's MultiDict.get)
        self.parameters.setdefault(name, {"type": "string"})
        return default

    def getlist(self, name):
        self.parameters.setdefault(name, {"type": "array", "items": {"type": "string"}})
        return []

    def describe(self, name, label=None, **schema):
        self.parameters[name] = {**({"title": label} if label else {}), **schema}


def valid_idempotency_key(key):
    """1–100 printable ASCII characters (an ``Idempotency-Key`` header or a form's key)."""
    return (
        isinstance(key, str)
        and 1 <= len(key) <= IDEMPOTENCY_KEY_MAX
        and key.isascii()
        and key.isprintable()
    )


def idempotency_key_header():
    """The request's ``Idempotency-Key`` (None when absent), or a refusal of a bad one."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not valid_idempotency_key(key):
        raise ValidationFailed(
            f"Idempotency-Key 须为 1–{IDEMPOTENCY_KEY_MAX} 个可打印 ASCII 字符",
            code="IDEMPOTENCY_KEY_INVALID",
        )
    return key


def form_values(form, *, lists=(), booleans=(), integers=(), skip=("csrf_token",)):
    """A posted form (werkzeug MultiDict) as the JSON the ``Fields`` rules read: blank inputs
    are absent, ``lists`` (multi-selects) are lists, ``booleans`` (radio "true"/"false") are
    booleans, ``integers`` whole numbers. Other values stay strings."""
    data = {}
    for name in form:
        if name in skip:
            continue
        if name in lists:
            values = [v.strip() for v in form.getlist(name) if v.strip()]
            if values:
                data[name] = values
            continue
        value = form.get(name, "").strip()
        if not value:
            continue
        if name in booleans:
            value = {"true": True, "false": False}.get(value, value)
        elif name in integers and value.isascii() and value.isdigit():
            value = int(value[:9])
        data[name] = value
    return data


# -- serialising ------------------------------------------------------------------------------


def iso(value):
    """A timestamp for JSON (None stays None)."""
    return value.isoformat() if value else None


def labelled(member):
    """An enum member for JSON: its value and its Chinese label."""
    return {"value": member.value, "label": member.label} if member is not None else None


def coded(row):
    """A reference row (area, unit, category) for JSON: its code and its name."""
    return {"code": row.code, "name": row.name} if row is not None else None


# -- looking up by code -----------------------------------------------------------------------


def by_code(session, model, code, label):
    """The row of ``model`` with ``code``, or a 404 naming what was not found."""
    row = session.scalars(sa.select(model).where(model.code == code)).first()
    if row is None:
        raise NotFound(f"{label}不存在：{code}", code="REFERENCE_NOT_FOUND")
    return row


def lookup_code(session, fields, name, model, label, code):
    """Resolve ``code`` to a row (from the reference cache), recording a field error in
    ``fields`` when there is none."""
    if code is None:
        return None
    key = (model.__name__, code)
    if model.__name__ == "Category":
        # A category deactivated or moved (its code changes) must be seen within seconds,
        # not when the cached row expires: the key carries the categories' version.
        key += reference.stamp(session, reference.CATEGORIES)
    row = reference_rows.get(
        session, key, lambda s: s.scalars(sa.select(model).where(model.code == code)).first()
    )
    if row is None:
        fields.errors.setdefault(name, f"{label}不存在：{code}")
    return row


# -- pagination -------------------------------------------------------------------------------


#: Dates a filter accepts: a day outside these years is a typing error (and 0001-01-01 or
#: 9999-12-31 would leave the calendar once turned into UTC).
DAY_YEARS = (2000, 2100)


def local_day(raw, name, errors):
    """The date ``raw`` (``YYYY-MM-DD``) of a filter, or None with a Chinese reason in
    ``errors[name]``."""
    try:
        day = dt.date.fromisoformat((raw or "").strip())
    except ValueError:
        errors[name] = "日期格式应为 YYYY-MM-DD"
        return None
    if not DAY_YEARS[0] <= day.year <= DAY_YEARS[1]:
        errors[name] = f"日期超出范围（{DAY_YEARS[0]}–{DAY_YEARS[1]} 年）"
        return None
    return day


#: A month as typed: ``YYYY-MM`` in ASCII digits (around it only spaces, stripped).
_MONTH = re.compile(r"(\d{4})-(\d{2})\Z", re.ASCII)


def month_of_text(raw):
    """``YYYY-MM`` → (year, month) with the year in ``DAY_YEARS``, or None for anything else
    (a missing value, a bad format, month 13, NUL, year 9999 that would leave the calendar
    once its end is turned into UTC). The one home of month parsing: the ranking, 监察问责
    and 质检 each word their own refusal around it."""
    if not isinstance(raw, str):
        return None
    match = _MONTH.match(raw.strip())
    if match is None:
        return None
    year, number = int(match.group(1)), int(match.group(2))
    if not DAY_YEARS[0] <= year <= DAY_YEARS[1] or not 1 <= number <= 12:
        return None
    return year, number


def month_days(month):
    """(year, month) → (its first day, the next month's first day)."""
    year, number = month
    return dt.date(year, number, 1), dt.date(year + number // 12, number % 12 + 1, 1)


def positive_int(args, name, default, errors):
    """The query argument ``name`` as a whole number ≥ 1 (``default`` when absent); a bad one
    is recorded in ``errors``."""
    if isinstance(args, DescribedArgs):
        args.describe(name, type="integer", minimum=1, maximum=999_999_999)
    raw = args.get(name)
    if raw is None:
        return default
    # ASCII only: "²".isdigit() is true but int("²") fails.
    if not (raw.isascii() and raw.isdigit()) or not raw.strip("0"):
        errors[name] = "须为正整数"
        return None
    if len(raw.lstrip("0")) > 9:  # keeps int() and the SQL OFFSET within range
        errors[name] = "不能超过 999999999"
        return None
    return int(raw)


@dataclass(frozen=True)
class Page:
    """One page of a list: its number (from 1) and its size. Every list, in the API and on
    the pages, is cut by this one rule."""

    number: int
    size: int

    @classmethod
    def from_args(cls, args, *, size, name="page", size_arg=None, max_size=None, errors=None):
        """The page asked for in the query ``args`` (``name``, and the size from ``size_arg``
        up to ``max_size`` where clients may choose it). Bad values go to ``errors`` when
        given (an API list reports them with its other filters); otherwise they raise."""
        own = errors is None
        errors = {} if own else errors
        number = positive_int(args, name, 1, errors)
        if size_arg is not None:
            size = positive_int(args, size_arg, size, errors)
            if isinstance(args, DescribedArgs) and max_size:
                args.parameters[size_arg]["maximum"] = max_size
            if size and max_size and size > max_size:
                errors[size_arg] = f"每页最多 {max_size} 条"
        if own and errors:
            raise ValidationFailed(f"页码“{name}”须为正整数", details=errors)
        return cls(number or 1, size or 1)

    @property
    def offset(self):
        return (self.number - 1) * self.size

    def count(self, total):
        """How many pages ``total`` rows fill (at least one, if empty)."""
        return max(1, -(-total // self.size))

    def of(self, session, query, *order, options=()):
        """(total, rows of this page) of ``query``, in ``order``."""
        total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
        rows = session.scalars(
            query.options(*options).order_by(*order).limit(self.size).offset(self.offset)
        ).all()
        return total, rows

    def to_dict(self, total):
        return {"page": self.number, "per_page": self.size, "total": total}


def check_query(errors):
    """Refuse a list request whose query arguments had errors, naming every one."""
    if errors:
        raise ValidationFailed(f"查询条件有误：{next(iter(errors.values()))}", details=errors)


def _bad_character(value, multiline):
    for ch in value:
        if "\ud800" <= ch <= "\udfff":
            return "包含无效字符（不成对的代理字符）"
        if ch in "\n\r\t":
            if not multiline and ch != "\t":
                return "不能换行"
            continue
        if unicodedata.category(ch) in {"Cc", "Cs"}:
            return f"包含不可见控制字符（U+{ord(ch):04X}）"
    return None


# -- inbox items (站内消息) --------------------------------------------------------------------


def inbox_filters(args, errors):
    """The message list's filters from query ``args``: unread only, level, before (an item
    id, to page back). Bad values go to ``errors``."""
    level = None
    if args.get("level"):
        level = AlertLevel.parse(args["level"])
        if level is None:
            errors["level"] = "级别应为 red、yellow 或 info"
    before = None
    if args.get("before"):
        raw = args["before"]
        if not (raw.isascii() and raw.isdigit() and len(raw) < 10):
            errors["before"] = "须为消息编号"
        else:
            before = int(raw)
    return {"unread_only": args.get("unread") == "1", "level": level, "before": before}


def badge(item):
    """What the message centre's badge says of inbox ``item``: its level's label (黄色预警,
    红色超时 …), but an early warning's kind (``warning.sudden`` 突发事件, ``warning.surge``
    诉求激增), which its level only colours: a sudden event is not an overdue ticket."""
    if item.kind and item.kind.startswith("warning."):
        kind = WarningKind.parse(item.kind.removeprefix("warning."))
        if kind is not None:
            return kind.label
    return item.level.label


def inbox_item(item, number, timezone):
    """One inbox item for JSON (the API and the header's message centre): its level with
    colour and label, its badge (``badge``), the ticket number, the time in UTC and as the
    city reads it."""
    return {
        "id": item.id,
        "kind": item.kind,
        "level": labelled(item.level),
        "badge": badge(item),
        "title": item.title,
        "body": item.body,
        "ticket": number,
        "created_at": iso(item.created_at),
        "created_local": f"{local_datetime(item.created_at, timezone):%Y-%m-%d %H:%M}",
        "read_at": iso(item.read_at),
    }
