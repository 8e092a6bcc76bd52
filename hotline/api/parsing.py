"""Strict parsing of JSON request bodies into typed values, with Chinese messages per field."""

import json
import re
import unicodedata

from flask import request

from hotline.errors import HotlineError, UnsupportedMediaType, ValidationFailed

#: ASCII digits only: a str pattern's \d also matches full-width and other Unicode digits.
_PHONE = re.compile(r"^(?:1[3-9]\d{9}|0\d{9,11}|\d{7,8}|9\d{4})$", re.ASCII)
_CODE = re.compile(r"^[0-9A-Za-z_-]{1,32}$")


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
        return self.data.get(name)

    def _fail(self, name, message):
        self.errors.setdefault(name, message)
        return None

    def _value(self, name, label, required):
        value = self.raw(name)
        if value is None and required:
            return self._fail(name, f"请填写{label}")
        return value

    def text(self, name, label, *, required=False, max_len, multiline=False):
        value = self._value(name, label, required)
        if value is None:
            return None
        if not isinstance(value, str):
            return self._fail(name, f"{label}须为文本")
        value = value.strip()
        if not value:
            return self._fail(name, f"请填写{label}") if required else None
        problem = _bad_character(value, multiline)
        if problem:
            return self._fail(name, f"{label}{problem}")
        if len(value) > max_len:
            return self._fail(name, f"{label}不能超过 {max_len} 字（现为 {len(value)} 字）")
        return value

    def code(self, name, label, *, required=False):
        value = self._value(name, label, required)
        if value is None:
            return None
        if not isinstance(value, str) or not _CODE.match(value):
            return self._fail(name, f"{label}编码格式不正确")
        return value

    def codes(self, name, label):
        value = self.raw(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(
            isinstance(v, str) and _CODE.match(v) for v in value
        ):
            return self._fail(name, f"{label}须为编码列表") or []
        if len(value) > 10:
            return self._fail(name, f"{label}最多 10 个") or []
        return value

    def choice(self, name, label, enum_cls, *, required=False, default=None):
        value = self._value(name, label, required and default is None)
        if value is None:
            return default
        member = enum_cls.parse(value) if isinstance(value, str) else None
        if member is None:
            options = "、".join(f"{m.value}（{m.label}）" for m in enum_cls)
            return self._fail(name, f"{label}取值无效，可选：{options}")
        return member

    def boolean(self, name, label, *, required=False, default=None):
        value = self._value(name, label, required and default is None)
        if value is None:
            return default
        if not isinstance(value, bool):
            return self._fail(name, f"{label}须为 true 或 false")
        return value

    def integer(self, name, label, *, required=False, minimum=None, maximum=None):
        value = self._value(name, label, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            return self._fail(name, f"{label}须为整数")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            return self._fail(name, f"{label}须在 {minimum}–{maximum} 之间")
        return value

    def number(self, name, label, *, minimum, maximum):
        value = self.raw(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return self._fail(name, f"{label}须为数字")
        if not minimum <= value <= maximum:
            return self._fail(name, f"{label}须在 {minimum}–{maximum} 之间")
        return float(value)

    def phone(self, name, label):
        value = self.raw(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            return self._fail(name, f"{label}须为文本")
        digits = re.sub(r"[\s-]", "", value)
        if digits.startswith("+86"):
            digits = digits[3:]
        if not _PHONE.match(digits):
            return self._fail(name, f"{label}格式不正确（手机号 11 位，或带区号的固定电话）")
        return digits

    def check(self):
        for name in self.data:
            if name not in self.read:
                self.errors.setdefault(name, f"未知字段“{name}”")
        if self.errors:
            first = next(iter(self.errors.values()))
            raise ValidationFailed(f"请求内容有误：{first}", details=self.errors)


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
