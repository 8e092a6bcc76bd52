"""How often the classifier's suggestions are accepted (采纳率): the one home of the rule,
read by the API (``GET /api/v1/classifier/acceptance``) and the model page (分类模型,
``dashboards.pages.classifier``).

Per field, a ticket counts when both a suggestion (the one stored at intake) and a final value
exist; it is *accepted* when the final value is the first suggestion:

- 事项分类: the chosen code is the first suggested one or below it in the tree (the model
  suggests second-level codes, agents may pick a third-level one); *in top 3* when it is
  the first three's. A suggestion that abstained counts for nothing;
- 发生地点: likewise by code; an area filled in from the suggestion is no one's choice and
  does not count;
- 承办单位: the lead unit is the first suggested (in top 3: one of the first three);
- 诉求类型, 紧急程度: the value chosen equals the suggested one.

How it is computed: one ``SELECT`` of ``(received_at, suggestion, final values)`` over the
period's tickets (``ix_tickets_received_at``), streamed in batches, and one pass over those
rows in Python that tallies everything the page shows at once (the weekly series, the
categories, the confusions). The suggestion is a JSON document which SQLite and PostgreSQL
read with different functions, and comparing codes by prefix in the tree in SQL would mean
one query per figure; a single pass is one read of each row, linear in the period's tickets.

The drift warning (``drift``): a field whose acceptance in the latest week falls below the
week before by more than ``classifier.drift_margin`` (absolute, 0.10 = ten points), both
weeks with at least ``classifier.drift_min_tickets`` judged tickets of that field. The latest
week is, field by field, the current one once it has that many, else the last complete week.
"""

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from hotline import settings
from hotline.enums import RequestType
from hotline.models import Area, Category, Ticket, Unit

#: The suggested fields, in the order pages show them, with their Chinese names.
FIELDS = {
    "category": "事项分类",
    "request_type": "诉求类型",
    "urgency": "紧急程度",
    "area": "发生地点",
    "unit": "承办单位",
}
#: Weeks the model page shows.
WEEKS = 12
#: Rows read from the database at a time.
BATCH = 2000


def select(start, end):
    """The rows of tickets received in [start, end) that have a suggestion:
    ``(received_at, suggestion, category code, area code, lead unit code, request type,
    urgency)``."""
    lead = aliased(Unit)
    return (
        sa.select(
            Ticket.received_at,
            Ticket.suggestion,
            Category.code,
            # An area filled in from the suggestion is no one's choice: not counted.
            sa.case((Ticket.area_source == "suggested", None), else_=Area.code),
            lead.code,
            Ticket.request_type,
            Ticket.urgency,
        )
        .outerjoin(Category, Ticket.category_id == Category.id)
        .outerjoin(Area, Ticket.area_id == Area.id)
        .outerjoin(lead, Ticket.lead_unit_id == lead.id)
        .where(
            Ticket.suggestion.is_not(None),
            Ticket.received_at >= start,
            Ticket.received_at < end,
        )
    )


def read(session, start, end):
    """``select``'s rows, streamed."""
    return session.execute(select(start, end).execution_options(yield_per=BATCH))


def _ranked(final, codes):
    """``(accepted, in top 3)`` of a final code against suggested codes, best first: equal to
    the first or below it in the tree; likewise for one of the first three."""
    accepted = final.startswith(codes[0])
    return accepted, accepted or any(final.startswith(code) for code in codes[1:3])


def judge(suggestion, category, area, unit, request_type, urgency):
    """Per field where both a suggestion and a final value exist: ``(field, suggested first,
    final, accepted, in top 3)``. Called once per ticket: kept plain."""
    if not suggestion:  # a JSON null passes the SQL "IS NOT NULL" filter
        return ()
    found = []
    if category is not None:
        suggested = suggestion.get("category") or {}
        top = [c["code"] for c in suggested.get("top") or ()]
        if top and not suggested.get("abstain"):
            found.append(("category", top[0], category, *_ranked(category, top)))
    if area is not None:
        place = (suggestion.get("area") or {}).get("code")
        if place:
            accepted = area.startswith(place)
            found.append(("area", place, area, accepted, accepted))
    if unit is not None:
        units = [u["code"] for u in suggestion.get("units") or ()]
        if units:
            found.append(("unit", units[0], unit, *_ranked(unit, units)))
    kind = suggestion.get("request_type")
    if request_type is not None and kind:
        accepted = request_type.value == kind
        found.append(("request_type", kind, request_type.value, accepted, accepted))
    tier = (suggestion.get("urgency") or {}).get("tier")
    if urgency is not None and tier:
        accepted = urgency.value == tier
        found.append(("urgency", tier, urgency.value, accepted, accepted))
    return found


class Tally:
    """Tickets judged, accepted and in the top 3, per field."""

    def __init__(self, fields=FIELDS):
        self.counts = {name: [0, 0, 0] for name in fields}

    def add(self, name, accepted, in_top):
        counts = self.counts[name]
        counts[0] += 1
        counts[1] += accepted
        counts[2] += in_top

    def result(self):
        return {
            name: {
                "tickets": n,
                "accepted": accepted,
                "rate": round(accepted / n, 4) if n else None,
                "in_top3": in_top,
            }
            for name, (n, accepted, in_top) in self.counts.items()
        }


def rates(rows):
    """Acceptance per field over ``rows`` (``select``'s, with or without ``received_at``
    first): ``{field: {"tickets", "accepted", "rate", "in_top3"}}``."""
    tally = Tally()
    for row in rows:
        values = row[-6:]
        for name, _, _, accepted, in_top in judge(*values):
            tally.add(name, accepted, in_top)
    return tally.result()


def period_rates(session, start, end):
    """Acceptance per field over tickets received in [start, end)."""
    return rates(read(session, start, end))


def week_start(day):
    return day - dt.timedelta(days=day.weekday())


def review(session, now, timezone, *, weeks=WEEKS, level=1, confusions=15):
    """What the model page shows of the last ``weeks`` local weeks (Monday to Sunday, the
    current one so far), from one pass over their tickets:

    - ``weeks``: [{"start", "end" (dates, inclusive), "label", "complete", "fields":
      {field: rates}}], oldest first;
    - ``categories``: by the final category's level-``level`` ancestor (1 or 2), most tickets
      first: [{"code", "name", "tickets", "category": rates, "unit": rates}];
    - ``confusions``: {"category": [...], "request_type": [...]}: the corrections made most,
      [{"suggested", "suggested_name", "chosen", "chosen_name", "count"}] (a category chosen
      below the suggested level is read at that level);
    - ``drift``: ``drift(weeks, …)`` with the settings in force;
    - ``from``, ``to``: the moments read."""
    tz = ZoneInfo(timezone)
    local_now = now.astimezone(tz)
    first = week_start(local_now.date()) - dt.timedelta(weeks=weeks - 1)
    start = dt.datetime.combine(first, dt.time(), tzinfo=tz)
    series = [Tally() for _ in range(weeks)]
    by_category = {}
    wrong = {"category": Counter(), "request_type": Counter()}
    width = 2 * level
    for received_at, *values in read(session, start, now):
        if received_at.tzinfo is None:
            received_at = received_at.replace(tzinfo=dt.UTC)
        index = (received_at.astimezone(tz).date() - first).days // 7
        if not 0 <= index < weeks:
            continue
        week = series[index]
        final_category = values[1]
        group = None
        if final_category:
            group = by_category.setdefault(final_category[:width], Tally(("category", "unit")))
        for name, suggested, final, accepted, in_top in judge(*values):
            week.add(name, accepted, in_top)
            if group is not None and name in ("category", "unit"):
                group.add(name, accepted, in_top)
            if not accepted and name in wrong:
                if name == "category":  # read at the suggested level
                    final = final[: len(suggested)]
                wrong[name][(suggested, final)] += 1
    today = local_now.date()
    listed = []
    for i, tally in enumerate(series):
        begin = first + dt.timedelta(weeks=i)
        end = begin + dt.timedelta(days=6)
        listed.append(
            {
                "start": begin,
                "end": end,
                "label": f"{begin:%m-%d}–{end:%m-%d}" + ("（本周）" if end >= today else ""),
                "complete": end < today,
                "fields": tally.result(),
            }
        )
    names = _category_names(session, by_category, wrong["category"])
    categories = []
    for code, tally in by_category.items():
        figures = tally.result()
        categories.append(
            {
                "code": code,
                "name": names.get(code, code),
                "tickets": figures["category"]["tickets"],
                "category": figures["category"],
                "unit": figures["unit"],
            }
        )
    categories.sort(key=lambda c: (-c["tickets"], c["code"]))
    type_names = {t.value: t.label for t in RequestType}
    return {
        "from": start,
        "to": now,
        "weeks": listed,
        "categories": categories,
        "confusions": {
            "category": _confusions(wrong["category"], names, confusions),
            "request_type": _confusions(wrong["request_type"], type_names, confusions),
        },
        "drift": drift(
            listed,
            margin=settings.get(session, "classifier.drift_margin"),
            min_tickets=settings.get(session, "classifier.drift_min_tickets"),
        ),
    }


def _category_names(session, by_category, confused):
    codes = set(by_category)
    for suggested, chosen in confused:
        codes.update((suggested, chosen))
    if not codes:
        return {}
    return dict(
        session.execute(
            sa.select(Category.code, Category.name).where(Category.code.in_(codes))
        ).all()
    )


def _confusions(counter, names, limit):
    return [
        {
            "suggested": suggested,
            "suggested_name": names.get(suggested, suggested),
            "chosen": chosen,
            "chosen_name": names.get(chosen, chosen),
            "count": count,
        }
        for (suggested, chosen), count in sorted(
            counter.items(), key=lambda item: (-item[1], item[0])
        )[:limit]
    ]


def drift(weeks, *, margin, min_tickets):
    """The fields whose acceptance fell by more than ``margin`` from the week before to the
    latest week, both weeks with at least ``min_tickets`` judged tickets of the field: the
    latest week is the current one once it has that many, else the last complete week.
    [{"field", "label", "week", "rate", "tickets", "previous_week", "previous_rate",
    "previous_tickets", "drop"}]."""
    found = []
    for name, label in FIELDS.items():
        last = len(weeks) - 1
        if last >= 0 and not weeks[last]["complete"]:
            if weeks[last]["fields"][name]["tickets"] < min_tickets:
                last -= 1
        if last < 1:
            continue
        now, before = weeks[last], weeks[last - 1]
        this, previous = now["fields"][name], before["fields"][name]
        if this["tickets"] < min_tickets or previous["tickets"] < min_tickets:
            continue
        drop = previous["rate"] - this["rate"]
        if drop > margin + 1e-9:
            found.append(
                {
                    "field": name,
                    "label": label,
                    "week": now["label"],
                    "rate": this["rate"],
                    "tickets": this["tickets"],
                    "previous_week": before["label"],
                    "previous_rate": previous["rate"],
                    "previous_tickets": previous["tickets"],
                    "drop": round(drop, 4),
                }
            )
    return found
