"""The early warnings' list filters and their JSON form, as the 预警 pages and the JSON API
(``/api/v1/warnings``) both read and write them: one parser, one serialiser."""

import datetime as dt
import re
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from dashboards import warnings
from dispatch.access import FULL_PHONE_ROLES, scoped, visible_numbers
from hotline.enums import WarningKind, WarningState
from hotline.models import Area, EarlyWarning, Ticket
from hotline.privacy import scrub_personal
from hotline.schemas import Fields, Page, check_query, coded, iso, labelled, local_day

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
_DISTRICT = re.compile(r"^\d{6}$")


def list_filters(args, user, *, timezone):
    """The filters of a warnings list from query ``args``: ``kind`` (surge, sudden),
    ``state`` (open, acknowledged), ``district`` (6-digit code; a district leader's list
    stays within their scope whatever it says: ``list_query``), ``from`` and ``to`` (local
    dates of raising, both included), ``page`` and ``per_page``. Bad values are refused
    together (``VALIDATION_FAILED``)."""
    errors = {}
    filters = {"kind": None, "state": None, "district": None, "from": None, "to": None}
    if args.get("kind"):
        filters["kind"] = WarningKind.parse(args["kind"])
        if filters["kind"] is None:
            errors["kind"] = "须为 surge（诉求激增）或 sudden（突发事件）"
    if args.get("state"):
        filters["state"] = WarningState.parse(args["state"])
        if filters["state"] is None:
            errors["state"] = "须为 open（待确认）或 acknowledged（已确认）"
    if args.get("district"):
        if not _DISTRICT.match(args["district"]):
            errors["district"] = "须为 6 位区县代码"
        else:
            filters["district"] = args["district"]
    for name in ("from", "to"):
        if args.get(name):
            filters[name] = local_day(args[name], name, errors)
    if filters["from"] and filters["to"] and filters["to"] < filters["from"]:
        errors["to"] = "不能早于开始日期"
    page = Page.from_args(
        args, size=PAGE_SIZE, size_arg="per_page", max_size=MAX_PAGE_SIZE, errors=errors
    )
    check_query(errors)
    filters["page"] = page
    filters["timezone"] = timezone
    return filters


def list_query(filters, user):
    """The warnings ``user`` may see that match ``filters``, unordered."""
    query = sa.select(EarlyWarning)
    condition = warnings.scope_condition(user)
    if condition is not None:
        query = query.where(condition)
    if filters["kind"] is not None:
        query = query.where(EarlyWarning.kind == filters["kind"])
    if filters["state"] is not None:
        query = query.where(EarlyWarning.state == filters["state"])
    if filters["district"] is not None:
        query = query.where(
            EarlyWarning.district_id.in_(sa.select(Area.id).where(Area.code == filters["district"]))
        )
    zone = ZoneInfo(filters["timezone"])
    if filters["from"] is not None:
        start = dt.datetime.combine(filters["from"], dt.time(), zone).astimezone(dt.UTC)
        query = query.where(EarlyWarning.created_at >= start)
    if filters["to"] is not None:
        end = dt.datetime.combine(filters["to"] + dt.timedelta(days=1), dt.time(), zone)
        query = query.where(EarlyWarning.created_at < end.astimezone(dt.UTC))
    return query


ORDER = (EarlyWarning.created_at.desc(), EarlyWarning.id.desc())


#: What ``warning_to_dict`` reads of each warning, loaded with the page (one query each, not
#: four a row).
LOAD = (
    selectinload(EarlyWarning.category),
    selectinload(EarlyWarning.area),
    selectinload(EarlyWarning.district),
    selectinload(EarlyWarning.acknowledged_by),
)


def list_page(session, filters, user):
    """(total, warnings of the page asked for), newest first."""
    return filters["page"].of(session, list_query(filters, user), *ORDER, options=LOAD)


def open_count(session, user):
    """How many open (unacknowledged) warnings ``user`` sees: the list page's 待确认 count."""
    query = sa.select(sa.func.count()).select_from(EarlyWarning)
    query = query.where(EarlyWarning.state == WarningState.open)
    condition = warnings.scope_condition(user)
    return session.scalar(query if condition is None else query.where(condition))


def ratio(warning):
    """How many times the expected level was observed (None without an expectation)."""
    if not warning.expected:
        return None
    return round(warning.observed / warning.expected, 1)


def warning_to_dict(warning, user=None):
    """A warning for JSON (and for the pages' templates, which read the same fields)."""
    return {
        "id": warning.id,
        "kind": labelled(warning.kind),
        "state": labelled(warning.state),
        "level": "red" if warning.kind == WarningKind.sudden else "yellow",
        "subject": warning.subject,
        "title": warning.title,
        "body": warning.body,
        "category": coded(warning.category),
        "area": coded(warning.area),
        "district": coded(warning.district),
        "place": warning.place,
        "window": {"start": iso(warning.window_start), "end": iso(warning.window_end)},
        "observed": warning.observed,
        "expected": warning.expected,
        "ratio": ratio(warning),
        "probability": warning.score,
        "ticket_count": len(warning.ticket_ids or []),
        "created_at": iso(warning.created_at),
        "updated_at": iso(warning.updated_at),
        "acknowledged": (
            {
                "at": iso(warning.acknowledged_at),
                "by": warning.acknowledged_by.name if warning.acknowledged_by else None,
                "note": warning.acknowledged_note,
            }
            if warning.state == WarningState.acknowledged
            else None
        ),
        "may_acknowledge": (
            user is not None
            and warning.state == WarningState.open
            and warnings.may_acknowledge(user, warning)
        ),
    }


def evidence(session, warning, user):
    """The evidence tickets ``user`` may see, in the order received (number, title, time,
    place, status, whether ``user`` may open the ticket's page), and how many others there
    are: a district leader sees the tickets of their district only, the others as a count
    (``dispatch.access``'s scope)."""
    ids = list(warning.ticket_ids or [])
    if not ids:
        return [], 0
    # An alias: the scope's own subquery on areas must not correlate with this join.
    place = sa.orm.aliased(Area)
    query = (
        sa.select(Ticket.number, Ticket.title, Ticket.received_at, Ticket.status, place.name)
        .outerjoin(place, place.id == Ticket.area_id)
        .where(Ticket.id.in_(ids))
        .order_by(Ticket.received_at, Ticket.id)
    )
    rows = session.execute(scoped(query, user)).all()
    openable = visible_numbers(session, user, [r.number for r in rows])
    tickets = [
        {
            "number": r.number,
            "title": _title(r.title, user),
            "received_at": iso(r.received_at),
            "status": labelled(r.status),
            "area": r.name,
            "openable": r.number in openable,
        }
        for r in rows
    ]
    return tickets, len(ids) - len(tickets)


def _title(title, user):
    """An evidence ticket's title as ``user`` reads it: with phone and ID numbers and e-mail
    addresses removed for the roles that do not call requesters (leaders, administrators)."""
    return title if user.role in FULL_PHONE_ROLES else scrub_personal(title)


def acknowledge_note(data):
    """The note of an acknowledgement (form or JSON), trimmed; at most 1,000 characters."""
    fields = Fields(data)
    note = fields.text("note", "说明", max_len=1000, multiline=True)
    fields.check()
    return note
