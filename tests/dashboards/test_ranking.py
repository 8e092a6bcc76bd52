"""The monthly ranking on a fixture month worked out by hand.

October 2026: 34 tickets received, driven through the real operations with an injected
clock. Every count, rate, score, place and list below was computed by hand from the plan in
the comments (DOMAIN.md §5, definitions in dashboards/ranking.py), with the weights 10/45/45,
部分解决 = 0.5, 基本满意 = 0.8, and a minimum sample of 3 tickets.
"""

import datetime as dt

import pytest
import sqlalchemy as sa

from dashboards import ranking
from dispatch import operations as ops
from hotline.enums import ListMark, RankingClass
from hotline.errors import Conflict, ValidationFailed
from hotline.models import AuditLog, RankingSnapshot
from tests.dashboards.month import AS_OF, CONFIG, SETTINGS, UNHAPPY, local, use_settings


def counts(**given):
    result = dict.fromkeys(ranking.COUNTS, 0)
    result.update(given)
    return result


#: Hand-computed counts per unit (tickets in brackets).
S1 = counts(
    dispatched=5,  # 1–5
    exempt=1,  # 6
    responded=4,  # 1, 3 (no phone), 4 (its new clock), 5; 2 signed late
    rated=3,  # 1, 2, 4
    solved=2,  # 1, 4
    partly=1,  # 2
    satisfied=1,  # 1
    basically=2,  # 2, 4
    overdue=1,  # 5
    reopened=1,  # 4
    repeat=1,  # 4 (32 merged into it)
    return_base=5,
)
S2 = counts(
    dispatched=4,  # 7–10
    response_pending=1,  # 10: sign due 11:30, ranking at 10:00
    responded=3,  # 7, 8, 9 (signed 10 min after its rejected return)
    rated=3,
    solved=3,
    satisfied=3,
    return_base=4,
    returned=1,  # 9 (rejected returns count too)
    review_returned=1,  # 7 (its reply returned twice: one ticket)
)
S3 = counts(
    dispatched=3,  # 11–13
    responded=1,  # 11; 12 contacted late, 13 never signed
    rated=2,
    solved=2,
    satisfied=2,
    return_base=3,
)
S4 = counts(dispatched=2, responded=2, rated=2, solved=2, satisfied=2, return_base=2)  # 14, 15
KUIWEN_GOV = counts(dispatched=1, responded=1, return_base=1)  # 16: refused the callback
JTJ = counts(
    return_base=1,
    returned=1,  # 15, returned before 梨园 got it (its reply returned too: JTJ no longer leads)
    summoned=1,  # to 4, withdrawn after the report was missed; to 2 withdrawn in time: none
)
CGJ = counts(
    dispatched=3,
    responded=3,
    rated=3,
    solved=2,
    unsolved=1,
    satisfied=2,
    dissatisfied=1,
    overdue=1,  # 18
    return_base=3,  # 25 is only assisted
    review_returned=1,  # 17; 25's return is not its (it assists)
    summoned=1,  # to 1, on time; to 6 (exempt) not counted
    summons_on_time=1,
)
ZJJ = counts(
    dispatched=3,
    responded=3,
    rated=3,
    solved=2,
    unsolved=1,
    satisfied=2,
    dissatisfied=1,
    return_base=3,  # 21 finished within its extension
    summoned=2,  # to 1 (reported late) and to 11 (31 October, answered 1 November)
    summons_on_time=1,  # 11
)
STHJ = counts(
    dispatched=3,
    responded=3,
    rated=3,
    solved=2,
    partly=1,
    satisfied=1,
    basically=1,
    dissatisfied=1,
    return_base=3,
    summoned=1,  # to 1, no opinion by its deadline; to 12 still within it: not yet counted
)
WATER = counts(dispatched=3, responded=2, rated=3, solved=3, satisfied=3, return_base=3)
POWER = counts(dispatched=3, responded=3, rated=1, solved=1, satisfied=1, return_base=3)
#: 奎文区 = its government + 东关 + 大虞 + 梨园; 潍城区 = 城关.
KUIWEN = {k: KUIWEN_GOV[k] + S1[k] + S2[k] + S4[k] for k in ranking.COUNTS}


def rows_of(result, ranking_class):
    return {row.unit_code: row for row in result.rows[ranking_class]}


def compute(db, as_of=AS_OF, month="2026-10"):
    return ranking.compute(
        db,
        month,
        as_of=as_of,
        settings=SETTINGS,
        timezone="Asia/Shanghai",
        mayors_office_code="U-SZFB",
    )


def test_counts_per_unit(db, october):
    result = compute(db)
    streets = rows_of(result, RankingClass.street)
    assert streets["U-S-370705001"].counts == S1
    assert streets["U-S-370705002"].counts == S2
    assert streets["U-S-370702001"].counts == S3
    assert streets["U-S-370705003"].counts == S4
    assert streets["U-S-370705004"].counts == counts()
    departments = rows_of(result, RankingClass.department)
    assert departments["U-CGJ"].counts == CGJ
    assert departments["U-ZJJ"].counts == ZJJ
    assert departments["U-STHJ"].counts == STHJ
    assert departments["U-JTJ"].counts == JTJ
    assert "U-SZFB" not in departments  # the mayor's office ranks, it is not ranked
    utilities = rows_of(result, RankingClass.utility)
    assert utilities["U-WATER"].counts == WATER  # 35 (November) is not counted
    assert utilities["U-POWER"].counts == POWER
    districts = rows_of(result, RankingClass.district)
    assert districts["U-D-370705"].counts == KUIWEN
    assert districts["U-D-370702"].counts == S3
    assert districts["U-D-370703"].counts == counts()


def test_rates_and_scores(db, october):
    result = compute(db)
    streets = rows_of(result, RankingClass.street)
    s1 = streets["U-S-370705001"].rates
    assert s1["response_rate"] == pytest.approx(4 / 5)
    assert s1["resolution_rate"] == pytest.approx((2 + 0.5) / 3)
    assert s1["satisfaction_rate"] == pytest.approx((1 + 2 * 0.8) / 3)
    # 10 × 0.8 + 45 × 2.5/3 + 45 × 2.6/3 = 8 + 37.5 + 39
    assert s1["composite"] == 84.50
    assert s1["reopen_rate"] == s1["overdue_rate"] == s1["repeat_rate"] == pytest.approx(0.2)
    assert s1["return_rate"] == 0
    s2 = streets["U-S-370705002"].rates
    assert s2["response_rate"] == 1  # 3 ÷ (4 − 1 pending)
    assert s2["composite"] == 100.00
    assert s2["return_rate"] == pytest.approx(0.25)
    s3 = streets["U-S-370702001"].rates
    assert s3["response_rate"] == pytest.approx(1 / 3)
    assert s3["composite"] == 93.33  # 10/3 + 45 + 45 = 93.333…
    districts = rows_of(result, RankingClass.district)
    kuiwen = districts["U-D-370705"].rates
    assert kuiwen["response_rate"] == pytest.approx(10 / 11)
    assert kuiwen["resolution_rate"] == pytest.approx(7.5 / 8)
    assert kuiwen["satisfaction_rate"] == pytest.approx(7.6 / 8)
    # 100/11 + 45 × 0.9375 + 45 × 0.95 = 9.0909… + 42.1875 + 42.75 = 94.0284…
    assert kuiwen["composite"] == 94.03
    assert kuiwen["return_rate"] == pytest.approx(1 / 12)
    departments = rows_of(result, RankingClass.department)
    assert departments["U-CGJ"].rates["composite"] == 70.00  # 10 + 30 + 30
    assert departments["U-CGJ"].rates["overdue_rate"] == pytest.approx(1 / 3)
    assert departments["U-ZJJ"].rates["composite"] == 70.00
    assert departments["U-ZJJ"].rates["overdue_rate"] == 0
    assert departments["U-STHJ"].rates["composite"] == 74.50  # 10 + 37.5 + 27
    assert departments["U-JTJ"].rates["return_rate"] == 1
    assert departments["U-JTJ"].rates["response_rate"] is None
    utilities = rows_of(result, RankingClass.utility)
    assert utilities["U-WATER"].rates["composite"] == 96.67  # 20/3 + 90
    assert utilities["U-POWER"].rates["composite"] == 100.00


def test_review_returns_and_summonses_lead_to_their_tickets(db, october):
    """The drill-down finds the tickets behind every unit's figure, 审核退回 and 吹哨报到
    included (a summons counts for the summoned department whoever leads the ticket and
    whenever it came in)."""
    result = compute(db)
    for ranking_class in (RankingClass.street, RankingClass.department):
        for row in result.rows[ranking_class]:
            for fact in ranking.FACTS:
                total, tickets = ranking.ticket_facts(
                    db, result.period_start, result.period_end, AS_OF, [row.unit_id], fact=fact
                )
                assert (row.unit_code, fact, total) == (row.unit_code, fact, row.counts[fact])
                assert all(t[fact] for t in tickets)
    zjj = rows_of(result, RankingClass.department)["U-ZJJ"]
    _, tickets = ranking.ticket_facts(
        db, result.period_start, result.period_end, AS_OF, [zjj.unit_id], fact="summoned"
    )
    assert [t["summons_on_time"] for t in tickets] == [False, True]  # 1 late, 11 on time
    assert {t["lead_unit_code"] for t in tickets} != {"U-ZJJ"}


def _places(result, ranking_class):
    return [(r.unit_code, r.rank, r.list_mark) for r in result.ranked(ranking_class)]


def test_review_returns_and_summonses(db, october):
    """审核退回率 and 报到及时率, by hand; neither moves the composite."""
    result = compute(db)
    streets = rows_of(result, RankingClass.street)
    departments = rows_of(result, RankingClass.department)
    assert streets["U-S-370705002"].rates["review_return_rate"] == 0.25  # 1 of 4
    assert streets["U-S-370705001"].rates["review_return_rate"] == 0  # 6 is exempt
    assert departments["U-CGJ"].rates["review_return_rate"] == pytest.approx(1 / 3)
    assert departments["U-CGJ"].rates["summons_on_time_rate"] == 1
    assert departments["U-ZJJ"].rates["summons_on_time_rate"] == 0.5
    assert departments["U-STHJ"].rates["summons_on_time_rate"] == 0
    assert departments["U-JTJ"].rates["summons_on_time_rate"] == 0
    assert streets["U-S-370705001"].rates["summons_on_time_rate"] is None  # never summoned
    districts = rows_of(result, RankingClass.district)
    assert districts["U-D-370705"].counts["review_returned"] == 1  # 大虞's
    assert districts["U-D-370705"].rates["review_return_rate"] == pytest.approx(
        1 / 12
    )  # 1 + 5 + 4 + 2 dispatched
    # The composite is the three rates' alone (as before these figures existed).
    assert departments["U-CGJ"].rates["composite"] == 70.00
    assert streets["U-S-370705002"].rates["composite"] == 100.00


def test_places_ties_and_lists(db, october):
    result = compute(db)
    # Three ranked streets: k = min(5, 3 // 2) = 1.
    assert _places(result, RankingClass.street) == [
        ("U-S-370705002", 1, ListMark.red),
        ("U-S-370702001", 2, None),
        ("U-S-370705001", 3, ListMark.black),
    ]
    # 城管局 and 住建局 tie at 70.00: one place, and the tie joins the black list whole.
    assert _places(result, RankingClass.department) == [
        ("U-STHJ", 1, ListMark.red),
        ("U-CGJ", 2, ListMark.black),
        ("U-ZJJ", 2, ListMark.black),
    ]
    assert _places(result, RankingClass.utility) == [
        ("U-POWER", 1, ListMark.red),
        ("U-WATER", 2, ListMark.black),
    ]
    assert _places(result, RankingClass.district) == [
        ("U-D-370705", 1, ListMark.red),
        ("U-D-370702", 2, ListMark.black),
    ]
    streets = rows_of(result, RankingClass.street)
    assert streets["U-S-370705003"].rank is None
    assert streets["U-S-370705003"].unranked_reason == "样本量不足（派单 2 件，少于 3 件）"
    assert streets["U-S-370705004"].unranked_reason == "样本量不足（派单 0 件，少于 3 件）"
    # The ranked come first in place order, then the unranked by code.
    codes = [r.unit_code for r in result.rows[RankingClass.street]]
    assert codes[:3] == ["U-S-370705002", "U-S-370702001", "U-S-370705001"]
    assert codes[3:] == sorted(codes[3:])


def test_totals_and_exemptions(db, october):
    result = compute(db)
    totals = result.totals
    assert totals["received"] == 34  # 1–34; 35 is November's
    assert (totals["resolved_at_intake"], totals["transferred"], totals["merged"]) == (1, 1, 1)
    assert totals["dispatched"] == 30 and totals["exempt"] == 1
    assert totals["returned"] == 2  # 9 and 15
    (exemption,) = result.exemptions
    assert exemption["ticket"] == october.tickets[6].number
    assert exemption["unit_code"] == "U-S-370705001"
    assert exemption["kind_label"] == "不合理诉求"
    assert exemption["reason"] == "要求拆除邻居合法建筑，属不合理诉求"
    assert exemption["by"] == october.staff.supervisor.name
    assert exemption["at"] == local(10, 20).isoformat()


def test_weights_are_configuration(db, october):
    settings = ranking.Settings(
        weight_response=30,
        weight_resolution=35,
        weight_satisfaction=35,
        partly_solved_percent=100,
        basically_satisfied_percent=100,
        min_sample=3,
    )
    result = ranking.compute(
        db,
        "2026-10",
        as_of=AS_OF,
        settings=settings,
        timezone="Asia/Shanghai",
        mayors_office_code="U-SZFB",
    )
    s1 = rows_of(result, RankingClass.street)["U-S-370705001"].rates
    # 30 × 0.8 + 35 × 1 + 35 × 1
    assert s1["composite"] == 94.00


def test_response_pending_turns_into_a_miss_when_the_deadline_passes(db, october):
    later = compute(db, as_of=local(11, 2, 12))  # after 10's sign deadline (11:30)
    s2 = rows_of(later, RankingClass.street)["U-S-370705002"]
    assert s2.counts["response_pending"] == 0
    assert s2.rates["response_rate"] == pytest.approx(3 / 4)


def test_area_counts_add_up_to_the_units(db, october):
    start, end = ranking.month_bounds("2026-10")
    by_area = ranking.count_tickets(db, start, end, AS_OF, by="area")
    by_unit = ranking.count_tickets(db, start, end, AS_OF, by="unit")
    areas, units = ranking.add_counts(by_area.values()), ranking.add_counts(by_unit.values())
    # 15 was led by two units (交通运输局, then 梨园) but lies in one area.
    assert areas == {**units, "return_base": units["return_base"] - 1}


def test_frozen_ranking_does_not_move(db, october):
    use_settings(db, min_sample=3)
    power = october.tickets[31]
    frozen = ranking.freeze(db, october.staff.supervisor, "2026-10", now=AS_OF, config=CONFIG)
    assert frozen.frozen_at == AS_OF
    snapshot = db.scalars(sa.select(RankingSnapshot)).one()
    assert snapshot.settings["min_sample"] == 3
    assert snapshot.frozen_by_id == october.staff.supervisor.id
    audit = db.scalars(sa.select(AuditLog).where(AuditLog.action == "ranking.freeze")).one()
    assert audit.target == "2026-10"

    # A late callback arrives after publication, and the water company is renamed.
    october.call(power, UNHAPPY, at=local(11, 3))
    october.unit("U-WATER").name = "潍坊水务集团"
    live = compute(db, as_of=local(11, 3, 12))
    assert rows_of(live, RankingClass.utility)["U-POWER"].counts["rated"] == 2
    # 12's summons missed its opinion deadline (2 November 22:00) after publication.
    assert rows_of(live, RankingClass.department)["U-STHJ"].counts["summoned"] == 2

    published = ranking.load(db, "2026-10", now=local(11, 3, 12), config=CONFIG)
    assert published.frozen_at == AS_OF
    power_row = rows_of(published, RankingClass.utility)["U-POWER"]
    assert power_row.counts == POWER
    published_departments = rows_of(published, RankingClass.department)
    assert published_departments["U-STHJ"].counts == STHJ
    assert published_departments["U-ZJJ"].rates["summons_on_time_rate"] == 0.5
    assert published_departments["U-CGJ"].rates["review_return_rate"] == pytest.approx(1 / 3)
    assert (power_row.rank, power_row.list_mark) == (1, ListMark.red)
    assert _places(published, RankingClass.department) == _places(frozen, RankingClass.department)
    assert published.exemptions == frozen.exemptions
    assert rows_of(published, RankingClass.utility)["U-WATER"].unit_name == "潍坊市自来水有限公司"
    assert published.totals == frozen.totals

    with pytest.raises(Conflict) as caught:
        ranking.freeze(db, None, "2026-10", now=local(11, 4), config=CONFIG)
    assert caught.value.code == "RANKING_ALREADY_FROZEN"


def test_next_month_shows_the_change_against_the_published_one(db, october):
    use_settings(db, min_sample=3)
    ranking.freeze(db, None, "2026-10", now=AS_OF, config=CONFIG)
    november = ranking.load(db, "2026-11", now=local(11, 20), config=CONFIG)
    water = rows_of(november, RankingClass.utility)["U-WATER"]
    assert (water.prev_rank, water.prev_composite) == (2, 96.67)
    assert water.rank is None and water.rank_change is None  # one November ticket: unranked


def test_freezing_needs_the_month_over(db):
    with pytest.raises(Conflict) as caught:
        ranking.freeze(db, None, "2026-11", now=local(11, 30, 23), config=CONFIG)
    assert caught.value.code == "RANKING_MONTH_NOT_OVER"
    assert db.scalar(sa.select(sa.func.count()).select_from(RankingSnapshot)) == 0


@pytest.mark.parametrize(
    "month",
    ["2026-13", "2026-1", "abc", "", None, "1999-12", "2026-10x", "9999-12", "2101-01"]
    + ["2026-10\x00", "２０２６-10"],
)
def test_bad_months_are_refused(month):
    with pytest.raises(ValidationFailed) as caught:
        ranking.parse_month(month)
    assert caught.value.details == {"month": "格式应为 YYYY-MM"}


def test_month_bounds_are_local():
    start, end = ranking.month_bounds("2026-10")
    assert start == dt.datetime(2026, 9, 30, 16, tzinfo=dt.UTC)
    assert end == dt.datetime(2026, 10, 31, 16, tzinfo=dt.UTC)
    assert ranking.month_bounds("2026-12")[1] == dt.datetime(2026, 12, 31, 16, tzinfo=dt.UTC)
    assert ranking.previous_month("2026-01") == "2025-12"


def test_rounding_is_half_up():
    # 84.125 exactly: a float round() would give 84.12.
    c = counts(dispatched=8, responded=8, rated=8, solved=8, satisfied=8)
    settings = ranking.Settings(weight_response=0, weight_resolution=1, weight_satisfaction=0)
    c.update(solved=6, partly=1)  # (6 + 0.5) ÷ 8 = 0.8125 → 81.25
    assert ranking.compute_rates(c, settings)["composite"] == 81.25
    c.update(solved=5, partly=3)  # (5 + 1.5) ÷ 8 = 0.8125 again
    settings = ranking.Settings(
        weight_response=0, weight_resolution=1, weight_satisfaction=0, partly_solved_percent=45
    )
    # (5 + 3 × 0.45) ÷ 8 = 0.79375 → 79.375 → 79.38 (half up)
    assert ranking.compute_rates(c, settings)["composite"] == 79.38


def test_deadline_edges(db, user, month_builder):
    """Acting at the deadline is on time and a deadline passes only after its moment; a
    ticket terminated after its finish deadline was overdue."""
    city = month_builder()
    late_end = city.ticket(1, "U-GAS", contact=None, finish=None)  # finish due 17 Oct (24×7)
    ops.request_termination(
        db, city.handler("U-GAS"), late_end, reason="诉求人撤回", now=local(10, 26)
    )
    ops.review_termination(
        db, city.staff.supervisor, late_end, approve=True, note="同意", now=local(10, 26, 10)
    )
    waiting = city.ticket(2, "U-GAS", at=local(10, 20), sign=None)
    result = compute(db, as_of=waiting.sign_due)
    gas = rows_of(result, RankingClass.utility)["U-GAS"].counts
    # 1: signed, never contacted before termination → a missed response, and overdue.
    # 2: unsigned, its sign deadline is this very moment → still pending.
    assert (gas["dispatched"], gas["responded"], gas["response_pending"]) == (2, 0, 1)
    assert gas["overdue"] == 1
    after = compute(db, as_of=waiting.sign_due + dt.timedelta(seconds=1))
    assert rows_of(after, RankingClass.utility)["U-GAS"].counts["response_pending"] == 0


def test_the_ranking_opens_on_last_month_when_it_has_data(db, october):
    # Mid-November: October has the fixture's tickets.
    assert ranking.default_month(db, local(11, 15)) == ("2026-10", "2026-10", True)
    # January 2027: December 2026 has no ticket, so January so far, live.
    january = dt.datetime(2027, 1, 10, 1, tzinfo=dt.UTC)
    assert ranking.default_month(db, january) == ("2027-01", "2026-12", False)
    # A published (frozen) month counts as data even without tickets.
    ranking.freeze(db, None, "2026-12", now=january, config=CONFIG)
    assert ranking.default_month(db, january) == ("2026-12", "2026-12", True)


def test_a_new_deployment_opens_on_this_month(db):
    # No ticket at all; the local month starts 8 hours before UTC's.
    first_of_june = dt.datetime(2026, 5, 31, 17, tzinfo=dt.UTC)
    assert ranking.default_month(db, first_of_june) == ("2026-06", "2026-05", False)
    months = ranking.months_until(db, first_of_june)
    assert months[:2] == ["2026-06", "2026-05"] and len(months) == 12


def test_the_month_picker_reaches_back_to_the_first_ticket(db, october):
    months = ranking.months_until(db, dt.datetime(2029, 3, 1, tzinfo=dt.UTC))
    assert months[0] == "2029-03" and len(months) == 30 and months[-1] == "2026-10"
    capped = ranking.months_until(db, dt.datetime(2030, 3, 1, tzinfo=dt.UTC), limit=36)
    assert len(capped) == 36 and capped[-1] == "2027-04"
    assert [ranking.month_label(m) for m in ("2026-11", "2027-01")] == ["2026年11月", "2027年1月"]
