"""Page forms read by the JSON API's own parsers (``dispatch.api.TRANSITION_ENDPOINTS``): a
rule on a field (required, length, allowed values) lives in one place, whether the request
comes from a page or a program.

A form sends strings; the API's parsers expect JSON. ``form_data`` bridges the two: blank
inputs are absent, multi-selects are lists, radio "true"/"false" are booleans, whole numbers
are integers. Every action form carries the ticket's ``version``, so a stale or repeated form
is refused instead of acting twice.
"""

from dispatch.api import TRANSITION_ENDPOINTS
from hotline.api.parsing import Fields
from hotline.errors import ValidationFailed

#: What a page says when another change to the ticket won the race (StaleDataError).
STALE_MESSAGE = "工单已被他人同时处理，本次操作未生效，请刷新后重试"
#: Fields read apart from the operation's arguments.
_NOT_ARGUMENTS = {"csrf_token", "version", "back"}
#: Multi-selects (lists in the API), radio booleans, and whole numbers.
LIST_FIELDS = {"assist_units"}
BOOLEAN_FIELDS = {"approve", "exempt"}
INTEGER_FIELDS = {"days"}


def form_data(form):
    """The posted ``form`` (a werkzeug MultiDict) as the API's parsers expect it."""
    data = {}
    for name in form:
        if name in _NOT_ARGUMENTS:
            continue
        if name in LIST_FIELDS:
            values = [v.strip() for v in form.getlist(name) if v.strip()]
            if values:
                data[name] = values
            continue
        value = form.get(name, "")
        if not value.strip():
            continue
        if name in BOOLEAN_FIELDS:
            value = {"true": True, "false": False}.get(value, value)
        elif name in INTEGER_FIELDS and value.strip().isascii() and value.strip().isdigit():
            value = int(value.strip()[:9])
        data[name] = value
    return data


def form_version(form):
    raw = form.get("version", "")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        message = "页面缺少工单版本号，请刷新页面后重试"
        raise ValidationFailed(message, details={"version": message})
    return int(raw)


def parse_transition(db, slug, form):
    """(operation, keyword arguments with ``expected_version``) of the transition ``slug``
    from a posted form; raises ValidationFailed naming every bad field."""
    operation, parse = TRANSITION_ENDPOINTS[slug]
    fields = Fields(form_data(form))
    values = parse(db, fields)
    version = form_version(form)
    fields.check()
    return operation, {"expected_version": version, **values}
