"""Filters of ticket lists: the query arguments a client may send and the WHERE conditions
they mean. The JSON API's ticket list (``GET /api/v1/tickets``) and the search page
(工单查询) read the same arguments through ``ticket_query``, so a search on the page and the
same query string on the API find the same tickets.

Words (``q``) and part of a number are matched with LIKE, their own % _ \\ taken literally,
on PostgreSQL and SQLite alike. A leading-wildcard LIKE reads no B-tree index: the scope,
the date range (``ix_tickets_received_at``) and the other filters narrow the rows it reads,
and the newest-first page stops at 50 matches. ``bench/search.py`` measures it over a year
of tickets. A trigram index (PostgreSQL's pg_trgm, GIN) would serve words over any history,
but needs an extension SQLite lacks and a migration: the next step if the figures call for
it.
"""

import datetime as dt
import re
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dispatch import access, sla
from hotline.enums import Channel, RequestType, TicketStatus, Urgency
from hotline.models import Area, Category, Ticket, Unit
from hotline.schemas import Fields

#: The enum filters: query argument → (enum, column).
_CHOICES = {
    "channel": (Channel, Ticket.channel),
    "request_type": (RequestType, Ticket.request_type),
    "urgency": (Urgency, Ticket.urgency),
}
#: Roles that may look tickets up by the requester's phone: those who see it in full anyway
#: (``access.FULL_PHONE_ROLES``). A leader or an administrator, who see numbers masked,
#: would otherwise learn whose complaint is whose by trying a number they know.
PHONE_SEARCH_ROLES = access.FULL_PHONE_ROLES
#: Longest ``q`` and most words in it; longest (part of a) ticket number.
Q_MAX = 100
Q_WORDS_MAX = 5
NUMBER_MAX = 32
#: A whole ticket number (``TICKET_NUMBER_PREFIX`` + 8-digit day + 8-digit serial): matched
#: exactly, by the unique index, instead of as a part.
_WHOLE_NUMBER = re.compile(r"^[A-Z]{1,8}\d{16}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATE_FORMAT_ERROR = "日期格式应为 ISO 8601，如 2026-11-01 或 2026-11-01T08:00:00+08:00"


def like_pattern(text):
    """``text`` as a LIKE pattern matching it anywhere, its own % and _ taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"


def ticket_query(args, actor, *, now, timezone, errors):
    """A query of the tickets ``actor`` may see that match the filters in ``args``. Each bad
    argument is recorded in ``errors`` (the caller refuses the request with all of them).
    Blank arguments are absent (a search form sends every field).

    - ``number``: a whole ticket number, or part of one (case ignored);
    - ``status``: comma-separated statuses; ``channel``, ``request_type``, ``urgency``;
    - ``category``, ``area``: code prefixes (a category or area and everything under it);
    - ``unit``: the lead unit's code;
    - ``phone``: the requester's phone, written as people write it (spaces, dashes, +86);
      only for roles that see phones in full (``PHONE_SEARCH_ROLES``);
    - ``overdue=1``: still with a unit after the finish deadline (``sla.overdue``);
    - ``escalation_level``: 督办 at least this level (1–3);
    - ``received_from``, ``received_to``: dates (a whole local day: both days included) or
      ISO 8601 moments (local time when no zone is given; a moment as upper bound is
      excluded);
    - ``q``: words (up to 5, separated by spaces), each in the title, the content or the
      address.
    """
    query = access.scoped(sa.select(Ticket), actor)
    if args.get("number"):
        condition = number_condition(args["number"], errors)
        if condition is not None:
            query = query.where(condition)
    if args.get("status"):
        statuses = [TicketStatus.parse(s) for s in args["status"].split(",")]
        if None in statuses:
            errors["status"] = "状态取值无效"
        else:
            query = query.where(Ticket.status.in_(statuses))
    for name, (enum_cls, column) in _CHOICES.items():
        if args.get(name):
            member = enum_cls.parse(args[name])
            if member is None:
                errors[name] = "取值无效"
            else:
                query = query.where(column == member)
    if args.get("category"):
        codes = sa.select(Category.id).where(
            Category.code.startswith(args["category"], autoescape=True)
        )
        query = query.where(Ticket.category_id.in_(codes))
    if args.get("area"):
        codes = sa.select(Area.id).where(Area.code.startswith(args["area"], autoescape=True))
        query = query.where(Ticket.area_id.in_(codes))
    if args.get("unit"):
        query = query.where(
            Ticket.lead_unit_id.in_(sa.select(Unit.id).where(Unit.code == args["unit"]))
        )
    if args.get("phone"):
        phone = search_phone(args["phone"], actor, errors)
        if phone is not None:
            query = query.where(Ticket.requester_phone == phone)
    if args.get("overdue") == "1":
        query = query.where(sla.overdue(now))
    elif args.get("overdue") not in (None, "", "0"):
        errors["overdue"] = "取值应为 1 或 0"
    if args.get("escalation_level"):
        level = args["escalation_level"]
        if level not in ("1", "2", "3"):
            errors["escalation_level"] = "督办级别应为 1、2 或 3"
        else:
            query = query.where(Ticket.escalation_level >= int(level))
    start, end = received_range(args, timezone, errors)
    if start is not None:
        query = query.where(Ticket.received_at >= start)
    if end is not None:
        query = query.where(Ticket.received_at < end)
    if args.get("q"):
        for word in search_words(args["q"], errors):
            query = query.where(word_condition(word))
    return query


def word_condition(word):
    """``word`` anywhere in the title, the content or the address. Case is ignored for words
    with cased letters (ILIKE); Chinese has none and takes plain LIKE, which PostgreSQL runs
    about three times faster on multibyte text (``bench/search.py``)."""
    pattern = like_pattern(word)
    columns = (Ticket.title, Ticket.content, Ticket.address)
    if word.lower() != word.upper():
        return sa.or_(*(column.ilike(pattern, escape="\\") for column in columns))
    return sa.or_(*(column.like(pattern, escape="\\") for column in columns))


def number_condition(raw, errors):
    """``Ticket.number`` is ``raw`` (a whole number) or contains it (a part); None on error."""
    text = raw.strip().upper()
    if len(text) > NUMBER_MAX:
        errors["number"] = f"工单编号不能超过 {NUMBER_MAX} 个字符"
        return None
    if not text:
        return None
    if _WHOLE_NUMBER.match(text):
        return Ticket.number == text
    return Ticket.number.like(like_pattern(text), escape="\\")


def search_phone(raw, actor, errors):
    """The phone to look for, normalised as intake stores it (digits only, no +86)."""
    if actor.role not in PHONE_SEARCH_ROLES:
        errors["phone"] = f"{actor.role.label}不能按联系电话查询"
        return None
    fields = Fields({"phone": raw})
    phone = fields.phone("phone", "联系电话")
    if "phone" in fields.errors:
        errors["phone"] = fields.errors["phone"]
    return phone


def search_words(raw, errors):
    """The words of ``q``: separated by spaces (full-width ones too), at most 5."""
    text = raw.strip()
    if len(text) > Q_MAX:
        errors["q"] = f"关键词不能超过 {Q_MAX} 字"
        return []
    words = list(dict.fromkeys(text.split()))
    if len(words) > Q_WORDS_MAX:
        errors["q"] = f"关键词最多 {Q_WORDS_MAX} 个（以空格分隔）"
        return []
    return words


def received_range(args, timezone, errors):
    """(start, end) of ``received_from`` / ``received_to``: the first moment included and
    the first moment excluded (None: open). A date is the whole local day, so
    ``received_to=2026-11-30`` includes everything received on the 30th."""
    start = end = None
    if args.get("received_from"):
        start = _moment(args["received_from"], "received_from", timezone, errors)
    if args.get("received_to"):
        end = _moment(args["received_to"], "received_to", timezone, errors, day_end=True)
    if start is not None and end is not None and start >= end:
        errors["received_to"] = "结束日期不能早于开始日期"
        return None, None
    return start, end


def _moment(raw, name, timezone, errors, *, day_end=False):
    raw = raw.strip()
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        errors[name] = DATE_FORMAT_ERROR
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    try:
        if day_end and _DATE.match(raw):
            moment += dt.timedelta(days=1)  # the day's end: the next day's first moment
        moment.astimezone(dt.UTC)  # 0001-01-01 or 9999-12-31 may leave the calendar in UTC
    except OverflowError:
        errors[name] = "日期超出范围"
        return None
    return moment
