"""The independent pandas implementation of the monthly ranking, and the comparison helpers.

Written from the module docstring of ``dashboards/ranking.py`` (not from its code):
``pandas.read_sql`` of the month's tickets and lead assignments (``pandas_load``), then counts,
district roll-up, exact rates, places and lists (``pandas_compute``). ``sql_ranking`` and
``sql_rows`` give the SQL ranking (``dashboards.ranking.compute``) of the same month in the
same shape, and ``compare`` lists every count, rate, score, place and list mark on which two
results differ. ``ALTERNATIVE_READINGS`` are the readings of the docstring the data must tell
apart.

A plain module (no tests here): used by ``tests/dashboards/test_rank_bench.py`` on a small
generated month and by ``bench/rank.py`` on a big one.
"""

import math
import time
from fractions import Fraction

import numpy as np
import pandas as pd
import sqlalchemy as sa

from bench.ranking_data import AS_OF, MAYORS_OFFICE, MONTH, TIMEZONE, local_month
from dashboards.ranking import COUNTS, RATES, Settings

# -- the SQL ranking ------------------------------------------------------------------------------


def sql_ranking(session, *, month=MONTH, as_of=AS_OF, settings=None, timezone=TIMEZONE):
    from dashboards.ranking import compute

    return compute(
        session,
        month,
        as_of=as_of,
        settings=settings or Settings(),
        timezone=timezone,
        mayors_office_code=MAYORS_OFFICE,
        previous=None,
    )


def sql_rows(ranking):
    """(class, unit code) → counts, rates, rank and list mark of a computed ranking."""
    out = {}
    for ranking_class, rows in ranking.rows.items():
        for row in rows:
            out[(ranking_class.value, row.unit_code)] = {
                "counts": dict(row.counts),
                "rates": dict(row.rates),
                "rank": row.rank,
                "list": row.list_mark.value if row.list_mark is not None else None,
            }
    return out


# -- the pandas ranking (independent: written from the docstring) -------------------------------

#: "Still being handled": the states in which a unit holds the ticket.
HANDLING = [
    "dispatched",
    "signed",
    "contacted",
    "return_requested",
    "termination_requested",
    "reopened",
]
UNIT_CLASSES = {
    "street_office": "street",
    "city_department": "department",
    "utility": "utility",
    "district_government": "district",
}


def _utc(series):
    return pd.to_datetime(series, utc=True, format="ISO8601")


def pandas_load(connection, *, month=MONTH, timezone=TIMEZONE):
    """The month's tickets and lead assignments, all merged-into ids, the units and areas."""
    start, end = local_month(month, timezone)
    period = {"start": start, "end": end}
    tickets = pd.read_sql(
        sa.text(
            "SELECT id, lead_unit_id, status, requester_phone, sign_due, contact_due, "
            "finish_due, signed_at, contacted_at, finished_at, closed_at, callback_solved, "
            "callback_satisfaction, reopen_count, scoring_exempt FROM tickets "
            "WHERE received_at >= :start AND received_at < :end"
        ).bindparams(
            sa.bindparam("start", type_=_utc_type()), sa.bindparam("end", type_=_utc_type())
        ),
        connection,
        params=period,
    )
    leads = pd.read_sql(
        sa.text(
            "SELECT a.ticket_id, a.unit_id, a.return_requested_at FROM assignments a "
            "JOIN tickets t ON t.id = a.ticket_id WHERE a.role = 'lead' "
            "AND t.received_at >= :start AND t.received_at < :end"
        ).bindparams(
            sa.bindparam("start", type_=_utc_type()), sa.bindparam("end", type_=_utc_type())
        ),
        connection,
        params=period,
    )
    merged = pd.read_sql(
        sa.text("SELECT merged_into_id FROM tickets WHERE merged_into_id IS NOT NULL"),
        connection,
    )
    review_returns = pd.read_sql(
        sa.text(
            "SELECT ticket_id, unit_id, created_at FROM ticket_events WHERE action = 'return_reply'"
        ),
        connection,
    )
    summonses = pd.read_sql(
        sa.text(
            "SELECT s.unit_id, s.summoned_at, s.report_due, s.reported_at, s.opinion_due, "
            "s.opinion_at, s.cancelled_at, t.scoring_exempt FROM summonses s "
            "JOIN tickets t ON t.id = s.ticket_id "
            "WHERE s.summoned_at >= :start AND s.summoned_at < :end"
        ).bindparams(
            sa.bindparam("start", type_=_utc_type()), sa.bindparam("end", type_=_utc_type())
        ),
        connection,
        params=period,
    )
    units = pd.read_sql(sa.text("SELECT id, code, name, kind, active FROM units"), connection)
    areas = pd.read_sql(sa.text("SELECT id, code, level, parent_id FROM areas"), connection)
    unit_areas = pd.read_sql(sa.text("SELECT unit_id, area_id FROM unit_areas"), connection)
    return {
        "tickets": tickets,
        "leads": leads,
        "merged": merged,
        "review_returns": review_returns,
        "summonses": summonses,
        "units": units,
        "areas": areas,
        "unit_areas": unit_areas,
    }


def _utc_type():
    from hotline.db import UTCDateTime

    return UTCDateTime()


#: Three points a reader of the docstring could take either way, as the docstring settles
#: them; each alternative reading below is one the data must tell apart (the bench and the
#: tests check that pandas read that way no longer agrees with the SQL):
#: - a deadline equal to ``as_of`` has not passed yet ("passes the moment after it");
#: - a ticket terminated unfinished only after its finish deadline is overdue;
#: - a district's counts, return base included, are the sums of its units' counts.
DOCSTRING_READING = {
    "due_at_as_of_passed": False,
    "terminated_after_due_overdue": True,
    "district_returns": "sum",
}
ALTERNATIVE_READINGS = {
    "a deadline equal to as_of has passed": {"due_at_as_of_passed": True},
    "terminated unfinished after the deadline is not overdue": {
        "terminated_after_due_overdue": False
    },
    "a district counts each ticket once in its return base": {"district_returns": "distinct"},
}


def pandas_compute(
    frames, *, as_of=AS_OF, settings=None, mayors_office_code=MAYORS_OFFICE, reading=None
):
    """Counts, district roll-up, rates, places and lists, as the docstring defines them.
    ``reading`` overrides points of ``DOCSTRING_READING`` (see ``ALTERNATIVE_READINGS``)."""
    settings = settings or Settings()
    readings = {**DOCSTRING_READING, **(reading or {})}
    t = frames["tickets"].copy()
    for name in (
        "sign_due",
        "contact_due",
        "finish_due",
        "signed_at",
        "contacted_at",
        "finished_at",
        "closed_at",
    ):
        t[name] = _utc(t[name])
    t["scoring_exempt"] = t["scoring_exempt"].astype(bool)
    t = t[t["lead_unit_id"].notna()].copy()
    t["lead_unit_id"] = t["lead_unit_id"].astype("int64")
    moment = pd.Timestamp(as_of)

    def passed(due):
        return due <= moment if readings["due_at_as_of_passed"] else due < moment

    replies = frames["review_returns"]
    replies = replies[_utc(replies["created_at"]) <= moment]
    returned_replies = replies[["ticket_id", "unit_id"]].dropna().astype("int64").drop_duplicates()
    has_phone = t["requester_phone"].notna()
    signed, contacted, finished = t["signed_at"], t["contacted_at"], t["finished_at"]
    sign_ok = signed.notna() & (signed <= t["sign_due"])
    contact_ok = ~has_phone | (contacted.notna() & (contacted <= t["contact_due"]))
    responded = sign_ok & contact_ok
    # A deadline is missed once it has passed without the act, or the act came after it.
    sign_missed = (signed > t["sign_due"]) | (signed.isna() & passed(t["sign_due"]))
    contact_missed = has_phone & (
        (contacted > t["contact_due"]) | (contacted.isna() & passed(t["contact_due"]))
    )
    closed = t["closed_at"]
    open_at_due = closed.isna() | (
        (closed > t["finish_due"]) if readings["terminated_after_due_overdue"] else False
    )
    in_handling = t["status"].isin(HANDLING)
    flags = pd.DataFrame(
        {
            "responded": responded,
            "response_pending": in_handling & ~responded & ~sign_missed & ~contact_missed,
            "rated": t["callback_solved"].notna(),
            "solved": t["callback_solved"] == "solved",
            "partly": t["callback_solved"] == "partly",
            "unsolved": t["callback_solved"] == "unsolved",
            "satisfied": t["callback_satisfaction"] == "satisfied",
            "basically": t["callback_satisfaction"] == "basically",
            "dissatisfied": t["callback_satisfaction"] == "dissatisfied",
            # Finished after the deadline, or the deadline passed while it was neither
            # finished nor closed.
            "overdue": (finished.notna() & (finished > t["finish_due"]))
            | (finished.isna() & passed(t["finish_due"]) & open_at_due),
            "reopened": t["reopen_count"] > 0,
            "repeat": t["id"].isin(frames["merged"]["merged_into_id"].dropna().unique()),
            # The reviewer returned the reply of the unit that leads it now, by as_of.
            "review_returned": pd.MultiIndex.from_frame(t[["id", "lead_unit_id"]]).isin(
                pd.MultiIndex.from_frame(returned_replies)
            ),
        }
    )
    flags = flags.fillna(False).astype(bool)
    exempt = t["scoring_exempt"].to_numpy()
    flags["dispatched"] = True
    flags = flags[~exempt]
    unit_of_flags = t.loc[~exempt, "lead_unit_id"]
    unit_of_exempt = t.loc[exempt, "lead_unit_id"]
    # Return rate: the month's non-exempt tickets each unit led at some point (lead rows).
    leads = frames["leads"]
    leads = leads[leads["ticket_id"].isin(t.loc[~exempt, "id"])].copy()
    leads["returned"] = leads["return_requested_at"].notna()

    units = frames["units"].copy()
    units["class"] = units["kind"].map(UNIT_CLASSES)
    units = units[units["class"].notna() & (units["code"] != mayors_office_code)]
    # Districts: a government answers for itself and the streets and towns of its district.
    areas = frames["areas"].set_index("id")
    links = frames["unit_areas"].merge(units[["id", "kind"]], left_on="unit_id", right_on="id")
    level = areas.loc[links["area_id"], "level"].to_numpy()
    parent = areas.loc[links["area_id"], "parent_id"].to_numpy()
    links["district_area"] = np.where(level == "district", links["area_id"], parent)
    governments = links[links["kind"] == "district_government"][["unit_id", "district_area"]]
    streets = links[links["kind"] == "street_office"][["unit_id", "district_area"]]
    members = pd.concat(
        [
            pd.DataFrame({"member": governments["unit_id"], "district": governments["unit_id"]}),
            streets.merge(governments, on="district_area", suffixes=("", "_g")).rename(
                columns={"unit_id": "member", "unit_id_g": "district"}
            )[["member", "district"]],
        ]
    )
    district_of = members.drop_duplicates("member").set_index("member")["district"]

    # Summonses of the month (by summoned_at) on tickets not exempt, with a known outcome.
    sm = frames["summonses"].copy()
    for name in ("summoned_at", "report_due", "reported_at", "opinion_due", "opinion_at"):
        sm[name] = _utc(sm[name])
    sm = sm[~sm["scoring_exempt"].astype(bool)]
    open_until = _utc(sm["cancelled_at"]).fillna(moment)

    def missed(act, due):
        # Done after the deadline, or not done and the deadline passed while open.
        return (act.notna() & (act > due)) | (act.isna() & (due < open_until))

    known = (
        sm["opinion_at"].notna()
        | missed(sm["reported_at"], sm["report_due"])
        | missed(sm["opinion_at"], sm["opinion_due"])
    )
    on_time = (sm["reported_at"] <= sm["report_due"]) & (sm["opinion_at"] <= sm["opinion_due"])
    sm = sm.assign(summoned=known, summons_on_time=known & on_time.fillna(False))
    sm["unit_id"] = sm["unit_id"].astype("int64")

    summons_names = ("summoned", "summons_on_time")
    flag_names = [
        n for n in COUNTS if n not in ("exempt", "return_base", "returned", *summons_names)
    ]

    def count_by(key):
        """Counts grouped by ``key`` (a function of a unit id → group id)."""
        returned = leads[leads["returned"]]
        table = pd.concat(
            [
                flags[flag_names].groupby(key(unit_of_flags)).sum(),
                key(unit_of_exempt).value_counts().rename("exempt"),
                leads.groupby(key(leads["unit_id"]))["ticket_id"].nunique().rename("return_base"),
                returned.groupby(key(returned["unit_id"]))["ticket_id"]
                .nunique()
                .rename("returned"),
                sm[list(summons_names)].astype("int64").groupby(key(sm["unit_id"])).sum(),
            ],
            axis=1,
        )
        return table.fillna(0).astype("int64")

    per_unit = count_by(lambda ids: ids)
    # A district's counts are the sums of its units' counts.
    per_district = per_unit.groupby(per_unit.index.map(district_of)).sum()
    if readings["district_returns"] == "distinct":
        distinct = count_by(lambda ids: ids.map(district_of))
        returns = ["return_base", "returned"]
        per_district[returns] = distinct[returns].reindex(per_district.index).fillna(0)

    result = {}
    for cls, class_units in units.groupby("class"):
        table = per_district if cls == "district" else per_unit
        rows = []
        for unit in class_units.itertuples():
            counts = dict.fromkeys(COUNTS, 0)
            if unit.id in table.index:
                counts.update({n: int(table.at[unit.id, n]) for n in COUNTS})
            rows.append({"code": unit.code, "counts": counts, "rates": _rates(counts, settings)})
        _places(rows, settings)
        for row in rows:
            result[(cls, row["code"])] = {k: row[k] for k in ("counts", "rates", "rank", "list")}
    return result


def _rates(c, settings):
    def ratio(numerator, denominator):
        return Fraction(numerator, denominator) if denominator else None

    rated = c["rated"]
    response = ratio(c["responded"], c["dispatched"] - c["response_pending"])
    resolution = ratio(
        100 * c["solved"] + settings.partly_solved_percent * c["partly"], 100 * rated
    )
    satisfaction = ratio(
        100 * c["satisfied"] + settings.basically_satisfied_percent * c["basically"], 100 * rated
    )
    weights = settings.weight_response, settings.weight_resolution, settings.weight_satisfaction
    composite = None
    if None not in (response, resolution, satisfaction) and sum(weights):
        score = (
            100
            * (weights[0] * response + weights[1] * resolution + weights[2] * satisfaction)
            / sum(weights)
        )
        composite = math.floor(score * 100 + Fraction(1, 2))  # in cents, half up (≥ 0)
    out = {
        "response_rate": response,
        "resolution_rate": resolution,
        "satisfaction_rate": satisfaction,
        "composite": composite,
        "return_rate": ratio(c["returned"], c["return_base"]),
        "reopen_rate": ratio(c["reopened"], c["dispatched"]),
        "overdue_rate": ratio(c["overdue"], c["dispatched"]),
        "repeat_rate": ratio(c["repeat"], c["dispatched"]),
        "review_return_rate": ratio(c["review_returned"], c["dispatched"]),
        "summons_on_time_rate": ratio(c["summons_on_time"], c["summoned"]),
    }
    return out


def _places(rows, settings):
    """Rank on the rounded score (in cents), ties share a place; red and black lists."""
    frame = pd.DataFrame(
        {
            "cents": [r["rates"]["composite"] for r in rows],
            "ranked": [
                r["counts"]["dispatched"] >= settings.min_sample
                and r["counts"]["rated"] >= 1
                and r["counts"]["dispatched"] - r["counts"]["response_pending"] >= 1
                for r in rows
            ],
        }
    )
    ranked = frame[frame["ranked"]].copy()
    ranked["cents"] = ranked["cents"].astype("int64")
    ranked["rank"] = ranked["cents"].rank(method="min", ascending=False).astype("int64")
    k = min(settings.list_size, len(ranked) // 2)
    ranked["list"] = None
    if k:
        red = ranked["rank"] <= k
        ranked.loc[red, "list"] = "red"
        others = ranked[~red]
        bottom = others["cents"].rank(method="min", ascending=True)
        ranked.loc[bottom[bottom <= k].index, "list"] = "black"
    for i, row in enumerate(rows):
        row["rank"] = int(ranked.at[i, "rank"]) if i in ranked.index else None
        row["list"] = ranked.at[i, "list"] if i in ranked.index else None
        rates = row["rates"]
        for name in RATES:
            value = rates[name]
            if name == "composite":
                rates[name] = None if value is None else int(value) / 100
            else:
                rates[name] = None if value is None else float(value)


def pandas_ranking(connection, *, month=MONTH, timezone=TIMEZONE, **options):
    """Load and compute; returns (result, frames, load seconds, compute seconds)."""
    started = time.perf_counter()
    frames = pandas_load(connection, month=month, timezone=timezone)
    loaded = time.perf_counter()
    result = pandas_compute(frames, **options)
    return result, frames, loaded - started, time.perf_counter() - loaded


# -- comparing ------------------------------------------------------------------------------------


def compare(left, right, *, names=("SQL", "pandas"), tolerance=1e-9):
    """Differences between two results, as readable lines (empty: they agree)."""
    out = []
    for key in sorted(set(left) | set(right)):
        a, b = left.get(key), right.get(key)
        where = f"{key[0]:<10} {key[1]:<16}"
        if a is None or b is None:
            out.append(f"{where} only in {names[0] if b is None else names[1]}")
            continue
        for name in COUNTS:
            if a["counts"][name] != b["counts"][name]:
                out.append(
                    f"{where} {name}: {names[0]} {a['counts'][name]} ≠ {names[1]} "
                    f"{b['counts'][name]}"
                )
        for name in RATES:
            x, y = a["rates"][name], b["rates"][name]
            exact = name == "composite"
            if (x is None) != (y is None) or (
                x is not None and (x != y if exact else abs(x - y) > tolerance)
            ):
                out.append(f"{where} {name}: {names[0]} {x} ≠ {names[1]} {y}")
        for name in ("rank", "list"):
            if a[name] != b[name]:
                out.append(f"{where} {name}: {names[0]} {a[name]} ≠ {names[1]} {b[name]}")
    return out


def summarize(differences):
    """Differences counted by class and figure: {"district overdue": 13, …}."""
    counter = {}
    for text in differences:
        parts = text.split()
        key = f"{parts[0]} {parts[2].rstrip(':')}" if len(parts) > 2 else text
        counter[key] = counter.get(key, 0) + 1
    return dict(sorted(counter.items()))
