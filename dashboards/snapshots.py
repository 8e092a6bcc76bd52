"""The live boards' numbers (实时大屏), always from the database.

A room's snapshot: today's intake by channel and type; dispatched, signed and overdue counts;
response / resolution / satisfaction rates per district (city board) or per street (district
board), today and this month, from the ranking's own functions; the overdue list; an hourly
trend of today's vs yesterday's intake; the five hottest open hot issues (热点问题) with
their growth; the map's figures (today's intake and the current
overdue count per district, or per street on a district's board); and the live feed of new
tickets, with phone numbers, ID numbers and long digit runs masked. ``Board`` computes the
snapshots of any set of rooms with a fixed number of grouped queries, so a flush costs the
same for one room or twenty.

Which tickets belong to a district: those whose area (address) lies in it, the same rule as
a district leader's scope (``dispatch.access.scope_condition``). Tickets without an area are
on the city board only. Every figure here is by location (where the problem is), not by
responsible unit as the monthly ranking counts: the board says so.
"""

import datetime as dt
import re
import threading
import time
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dashboards import hotspots, ranking, warnings
from dashboards.access import CITY, district_room, room_district
from dispatch import sla
from dispatch.access import mask_phone
from hotline.db import day_bounds, utcnow
from hotline.enums import AreaLevel, Channel, RequestType
from hotline.models import Area, Category, Ticket, TicketEvent, Unit

#: Newest tickets in a snapshot's feed, and overdue tickets listed per board.
FEED_SIZE = 20
OVERDUE_SIZE = 20
#: Most tickets a board that missed updates gets back at once (``Board.feed_after``).
CATCH_UP_LIMIT = 5000
#: Month rates are heavy (every ticket of the month): recomputed this often at the latest,
#: sooner (but not more often than ``MONTH_MIN_SECONDS``) after an event that moves them.
MONTH_MAX_SECONDS = 60
MONTH_MIN_SECONDS = 10


def room_snapshot(session, config, room):
    """The full snapshot of one room, for a page render or a connecting client."""
    try:
        board = Board(session, config)
        return board.snapshots([room], month=month_rates(session, config))[room]
    finally:
        session.rollback()  # read only; end the transaction (SET LOCAL, snapshots)


# -- personal data ------------------------------------------------------------------------

#: Mobile numbers, ID card numbers and any other run of 7+ digits (landlines, bank cards).
_DIGITS = re.compile(r"\d{7,}[Xx]?")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def mask_text(text):
    """A title fit for a public screen: phone numbers, ID numbers and long digit runs
    masked (138****5678; 37**************12)."""
    if not text:
        return text

    def hide(match):
        digits = match.group(0)
        if _MOBILE.match(digits):
            return mask_phone(digits)
        return digits[:2] + "*" * (len(digits) - 4) + digits[-2:]

    return _DIGITS.sub(hide, text)


# -- the numbers ------------------------------------------------------------------------------


def _district_key():
    # Literal positions: PostgreSQL must see the same expression in SELECT and GROUP BY,
    # which bound parameters (one per use) are not.
    return sa.func.substr(Area.code, sa.literal_column("1"), sa.literal_column("6"))


def _street_key():
    """The street's code (9 digits) of a ticket's area; a district's own code (6) for a
    ticket placed only in a district; None without an area."""
    return sa.func.substr(Area.code, sa.literal_column("1"), sa.literal_column("9"))


def _in(district, key):
    """Whether a grouped row's key (district or street code, or None) belongs to the room of
    ``district`` (None: the city, every row)."""
    return district is None or (key is not None and key[:6] == district)


def _group_counts(area_counts, codes, length, prefix=None):
    """Per-area counts (``ranking.count_tickets(by="area")``) grouped by the area of code
    ``length`` (6 district, 9 street) they lie in, for areas whose code starts with
    ``prefix``. Tickets without an area are left out. Returns ({code: [counts]}, [counts])."""
    groups = {}
    total = []
    for area_id, counts in area_counts.items():
        if area_id is None:
            continue
        code = codes.get(area_id) or ""
        if prefix and not code.startswith(prefix):
            continue
        total.append(counts)
        key = code[:length] if len(code) >= length else None
        groups.setdefault(key, []).append(counts)
    return groups, total


def _rate_entry(code, name, counts, settings):
    rates = ranking.compute_rates(counts, settings)
    return {
        "code": code,
        "name": name,
        "dispatched": counts["dispatched"],
        "rated": counts["rated"],
        "response_rate": rates["response_rate"],
        "resolution_rate": rates["resolution_rate"],
        "satisfaction_rate": rates["satisfaction_rate"],
    }


class AreaNames:
    """Codes and names of districts and streets (reference data, read once per board)."""

    def __init__(self, session):
        rows = session.execute(
            sa.select(Area.id, Area.code, Area.name).where(
                Area.level.in_([AreaLevel.district, AreaLevel.street])
            )
        ).all()
        self.names = {code: name for _, code, name in rows}

    def place(self, code):
        """ "奎文区 东关街道" for any area code inside them."""
        if not code:
            return "未定位"
        parts = [self.names.get(code[:6]), self.names.get(code[:9]) if len(code) >= 9 else None]
        return " ".join(p for p in parts if p) or "未定位"


def rates_by_area(session, start, end, as_of, settings):
    """The period's counts per area id (``ranking.count_tickets``) with the area codes:
    what both the city's per-district and a district's per-street rates are summed from."""
    counts = ranking.count_tickets(session, start, end, as_of, by="area")
    ids = [k for k in counts if k]
    codes = dict(session.execute(sa.select(Area.id, Area.code).where(Area.id.in_(ids))).all())
    return {"counts": counts, "codes": codes, "as_of": as_of.isoformat()}


def month_rates(session, config, *, force=False, now=None):
    """This month's counts per area, cached per process for ``MONTH_MAX_SECONDS`` (and
    computed afresh at once when an administrator changed the ranking's settings)."""
    now = now or utcnow()
    zone = ZoneInfo(config["TIMEZONE"])
    local = now.astimezone(zone)
    month = f"{local.year}-{local.month:02d}"
    settings = ranking.Settings.from_settings(session)
    with _month_lock:
        cached = _month_cache.get((month, settings))
        fresh = cached and time.monotonic() - cached[0] < MONTH_MAX_SECONDS
        if fresh and not force:
            return cached[1]
    start, end = ranking.month_bounds(month, config["TIMEZONE"])
    value = rates_by_area(session, start, end, now, settings)
    with _month_lock:
        _month_cache.clear()
        _month_cache[(month, settings)] = (time.monotonic(), value)
    return value


def month_rates_age():
    with _month_lock:
        ages = [time.monotonic() - at for at, _ in _month_cache.values()]
    return min(ages) if ages else None


_month_lock = threading.Lock()
_month_cache = {}


class Board:
    """Computes the snapshots of any set of rooms with a fixed number of queries (each
    grouped by district), so a flush costs the same for one room or twenty."""

    def __init__(self, session, config, now=None):
        self.session = session
        self.config = config
        self.now = now or utcnow()
        self.settings = ranking.Settings.from_settings(session)
        self.yesterday, self.today, self.tomorrow = day_bounds(self.now, config["TIMEZONE"])

    def snapshots(self, rooms, *, month, new_tickets=None):
        """{room: snapshot} for ``rooms``. ``month`` is ``month_rates(...)``. The ``feed``
        is the room's newest ``FEED_SIZE`` tickets, or with ``new_tickets`` [(number, event
        at)] (an update) only those of them in the room."""
        session = self.session
        names = AreaNames(session)
        intake = self._intake()
        handled = self._handled()
        overdue_counts, overdue_rows = self._overdue(rooms)
        trend = self._trend()
        today_rates = rates_by_area(session, self.today, self.tomorrow, self.now, self.settings)
        if new_tickets is not None:
            feeds = self._new_feed(names, new_tickets, rooms)
        else:
            feeds = {room: self._latest_feed(names, room_district(room)) for room in rooms}
        # 热点问题: each room's hottest open hot issues (dashboards.hotspots; two queries).
        hot = hotspots.top_open_of_rooms(
            session, sorted({room_district(r) for r in rooms}, key=str), now=self.now
        )
        result = {}
        for room in rooms:
            district = room_district(room)
            result[room] = {
                "room": room,
                "title": "全市" if district is None else names.names.get(district, district),
                "district": district,
                "as_of": self.now.isoformat(),
                "today": self._today(district, intake, handled, overdue_counts),
                "rates": {
                    "today": self._rates(today_rates, district, names),
                    "month": self._rates(month, district, names),
                    "month_as_of": month["as_of"],
                },
                "overdue": overdue_rows.get(room, []),
                "trend": self._trend_of(trend, district),
                "map": self._map(district, intake, overdue_counts, names),
                "feed": feeds.get(room, []),
                "hot_issues": hot[district],
            }
        # The early warnings' banner (预警): the room's open warnings (one query).
        banners = warnings.banner(session, rooms)
        for room in rooms:
            result[room]["warnings"] = banners[room]
        return result

    # Today's intake per street × channel × type (by where the problem is).
    def _intake(self):
        query = (
            sa.select(_street_key(), Ticket.channel, Ticket.request_type, sa.func.count())
            .select_from(Ticket)
            .outerjoin(Area, Area.id == Ticket.area_id)
            .where(Ticket.received_at >= self.today, Ticket.received_at < self.tomorrow)
            .group_by(_street_key(), Ticket.channel, Ticket.request_type)
        )
        return self.session.execute(query).all()

    # Tickets dispatched (派单) and signed by their lead unit (签收) today, per district.
    def _handled(self):
        counted = sa.or_(
            TicketEvent.action == "dispatch",
            sa.and_(TicketEvent.action == "sign", TicketEvent.unit_id == Ticket.lead_unit_id),
        )
        query = (
            sa.select(_district_key(), TicketEvent.action, sa.func.count(sa.distinct(Ticket.id)))
            .select_from(TicketEvent)
            .join(Ticket, Ticket.id == TicketEvent.ticket_id)
            .outerjoin(Area, Area.id == Ticket.area_id)
            .where(TicketEvent.created_at >= self.today, counted)
            .group_by(_district_key(), TicketEvent.action)
        )
        return self.session.execute(query).all()

    def _overdue(self, rooms):
        """Counts of overdue tickets per street, and each room's most overdue tickets."""
        session = self.session
        counts = dict(
            session.execute(
                sa.select(_street_key(), sa.func.count())
                .select_from(Ticket)
                .outerjoin(Area, Area.id == Ticket.area_id)
                .where(sla.overdue(self.now))
                .group_by(_street_key())
            ).all()
        )
        rank = (
            sa.func.row_number()
            .over(partition_by=_district_key(), order_by=(Ticket.finish_due, Ticket.id))
            .label("rank")
        )
        ranked = (
            sa.select(
                Ticket.id,
                Ticket.number,
                Ticket.title,
                Ticket.finish_due,
                Area.code.label("area"),
                Unit.name.label("unit"),
                _district_key().label("district"),
                rank,
            )
            .select_from(Ticket)
            .outerjoin(Area, Area.id == Ticket.area_id)
            .outerjoin(Unit, Unit.id == Ticket.lead_unit_id)
            .where(sla.overdue(self.now))
            .subquery()
        )
        rows = session.execute(
            sa.select(ranked)
            .where(ranked.c.rank <= OVERDUE_SIZE)
            .order_by(ranked.c.finish_due, ranked.c.id)
        ).all()
        lists = {}
        for row in rows:
            item = {
                "number": row.number,
                "title": mask_text(row.title),
                "unit": row.unit or "",
                "due": row.finish_due.isoformat(),
                "hours": round((self.now - row.finish_due).total_seconds() / 3600, 1),
            }
            lists.setdefault(district_room(row.district) if row.district else None, []).append(item)
            lists.setdefault(CITY, []).append(item)
        # The city's list: the most overdue of all districts' lists.
        lists[CITY] = lists.get(CITY, [])[:OVERDUE_SIZE]
        return counts, {room: lists.get(room, []) for room in rooms}

    # Intake per local hour, today and yesterday, per district (one query, 48 counts).
    def _trend(self):
        hour = dt.timedelta(hours=1)
        columns = []
        for day_start in (self.yesterday, self.today):
            for h in range(24):
                begin = day_start + h * hour
                columns.append(
                    sa.func.count().filter(
                        Ticket.received_at >= begin, Ticket.received_at < begin + hour
                    )
                )
        query = (
            sa.select(_district_key(), *columns)
            .select_from(Ticket)
            .outerjoin(Area, Area.id == Ticket.area_id)
            .where(Ticket.received_at >= self.yesterday, Ticket.received_at < self.tomorrow)
            .group_by(_district_key())
        )
        return {row[0]: list(row[1:]) for row in self.session.execute(query).all()}

    def _trend_of(self, trend, district):
        total = [0] * 48
        for key, values in trend.items():
            if district is None or key == district:
                total = [a + b for a, b in zip(total, values, strict=True)]
        local_now = self.now.astimezone(ZoneInfo(self.config["TIMEZONE"]))
        # Hours not yet come today are None (no line), not 0.
        today = [v if h <= local_now.hour else None for h, v in enumerate(total[24:])]
        return {"hours": [f"{h:02d}时" for h in range(24)], "yesterday": total[:24], "today": today}

    def _today(self, district, intake, handled, overdue_counts):
        channels = {c.value: 0 for c in Channel}
        types = {t.value: 0 for t in RequestType}
        received = 0
        for key, channel, request_type, count in intake:
            if _in(district, key):
                received += count
                channels[channel.value] += count
                types[request_type.value] += count
        actions = {"dispatch": 0, "sign": 0}
        for key, action, count in handled:
            if district is None or key == district:
                actions[action] += count
        overdue = sum(n for key, n in overdue_counts.items() if _in(district, key))
        return {
            "received": received,
            "dispatched": actions["dispatch"],
            "signed": actions["sign"],
            "overdue": overdue,
            "by_channel": [
                {"code": c.value, "label": c.label, "count": channels[c.value]} for c in Channel
            ],
            "by_type": [
                {"code": t.value, "label": t.label, "count": types[t.value]} for t in RequestType
            ],
        }

    def _map(self, district, intake, overdue_counts, names):
        """Today's intake and the current overdue count per district (the city) or per
        street (a district), by where the problem is (the ticket's area), for the map;
        tickets placed at no area of that level are ``unplaced``."""
        length = 6 if district is None else 9
        areas = {
            code: {"code": code, "name": name, "received": 0, "overdue": 0}
            for code, name in sorted(names.names.items())
            if len(code) == length and (district is None or code[:6] == district)
        }
        unplaced = {"received": 0, "overdue": 0}

        def add(key, field, count):
            if not _in(district, key):
                return
            entry = areas.get(key[:length]) if key and len(key) >= length else None
            (entry or unplaced)[field] += count

        for key, _, _, count in intake:
            add(key, "received", count)
        for key, count in overdue_counts.items():
            add(key, "overdue", count)
        return {
            "level": "district" if district is None else "street",
            "areas": list(areas.values()),
            "unplaced": unplaced,
        }

    def _rates(self, period, district, names):
        """The city: one row per district; a district: one row per street. Plus the total."""
        length = 6 if district is None else 9
        groups, total = _group_counts(period["counts"], period["codes"], length, district)
        rows = [
            _rate_entry(
                code,
                names.names.get(code, "未定位到该级区域") if code else "未定位到该级区域",
                ranking.add_counts(counts),
                self.settings,
            )
            for code, counts in sorted(groups.items(), key=lambda g: g[0] or "~")
        ]
        if district is None and None in period["counts"]:
            # Tickets without an area count for the city, in no district.
            rows.append(_rate_entry(None, "未定位", period["counts"][None], self.settings))
            total.append(period["counts"][None])
        summed = ranking.add_counts(total) if total else None
        title = "全市" if district is None else names.names.get(district, district)
        return {
            "rows": rows,
            "total": _rate_entry(district, title, summed, self.settings) if summed else None,
        }

    def _feed_query(self):
        return (
            sa.select(
                Ticket.id,
                Ticket.number,
                Ticket.received_at,
                Ticket.channel,
                Ticket.request_type,
                Ticket.title,
                Category.name.label("category"),
                Area.code.label("area"),
            )
            .select_from(Ticket)
            .outerjoin(Area, Area.id == Ticket.area_id)
            .outerjoin(Category, Category.id == Ticket.category_id)
        )

    def _feed_item(self, row, names, at=None):
        return {
            # The feed's cursor: a board that missed updates asks for what came after the
            # largest id it holds (``feed_after``).
            "id": row.id,
            "number": row.number,
            "received_at": row.received_at.isoformat(),
            # The event's own time: a client measures its latency against it.
            "at": at or row.received_at.isoformat(),
            "channel": row.channel.label,
            "type": row.request_type.label,
            "category": row.category or "未分类",
            "place": names.place(row.area),
            "title": mask_text(row.title),
        }

    def _latest_feed(self, names, district):
        query = self._feed_query()
        if district is not None:
            query = query.where(_district_key() == district)
        rows = self.session.execute(
            query.order_by(Ticket.received_at.desc(), Ticket.id.desc()).limit(FEED_SIZE)
        ).all()
        return [self._feed_item(row, names) for row in rows]

    def _new_feed(self, names, new_tickets, rooms):
        feeds = {room: [] for room in rooms}
        if not new_tickets:
            return feeds
        at = dict(new_tickets)
        rows = self.session.execute(
            self._feed_query()
            .where(Ticket.number.in_(list(at)))
            .order_by(Ticket.received_at.desc(), Ticket.id.desc())
        ).all()
        for row in rows:
            item = self._feed_item(row, names, at[row.number])
            for room in rooms:
                district = room_district(room)
                if district is None or (row.area or "").startswith(district):
                    feeds[room].append(item)
        return feeds

    def feed_after(self, room, after, limit=CATCH_UP_LIMIT):
        """The room's tickets with an id above ``after``, newest first (at most ``limit``):
        what a board that missed updates has not seen."""
        names = AreaNames(self.session)
        query = self._feed_query().where(Ticket.id > after)
        district = room_district(room)
        if district is not None:
            query = query.where(_district_key() == district)
        rows = self.session.execute(query.order_by(Ticket.id.desc()).limit(limit)).all()
        return [self._feed_item(row, names) for row in rows]
