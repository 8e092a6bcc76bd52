"""民情分析 reports (dashboards/analysis.py): periods in local time, volume and trend, rising
lists, hot issues, repeat callers and complaints, the ranking's rates, keywords, summary,
publishing. Tickets are received through the real operation with injected moments."""

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from dashboards import analysis, ranking
from hotline.enums import Channel, HotIssueState, ReportPeriod, RequestType
from hotline.errors import Conflict, Forbidden, ValidationFailed
from hotline.models import AnalysisReport, AuditLog, HotIssue, HotIssueTicket
from tests.dashboards.month import AS_OF, STREETLIGHT

TZ_NAME = "Asia/Shanghai"
TZ = ZoneInfo(TZ_NAME)
NOISE = "020301"  # 建筑施工噪声 (0203 噪声污染, 02 环境保护)
#: After every period the tests use.
LATER = dt.datetime(2027, 3, 1, tzinfo=dt.UTC)


def at(month, day, hour=9, minute=0, year=2026):
    return dt.datetime(year, month, day, hour, minute, tzinfo=TZ).astimezone(dt.UTC)


def period(kind, key):
    return analysis.parse_period(kind, key, TZ_NAME)


@pytest.fixture(autouse=True)
def _fresh_keywords():
    """Each test reads its own database's keywords (a cache kept from another test's tickets
    with the same ids and versions would be wrong)."""
    analysis.clear_keyword_cache()
    yield
    analysis.clear_keyword_cache()


@pytest.fixture
def receive(make_ticket, user):
    operator = user("operator")

    def make(moment, **values):
        values.setdefault("category", STREETLIGHT)
        values.setdefault("area", "370705001001")
        return make_ticket(operator, now=moment, **values)

    return make


# -- periods ------------------------------------------------------------------------------------


def test_periods_are_local_and_chain():
    week = period("weekly", "2026-W49")
    assert (week.first, week.end) == (dt.date(2026, 11, 30), dt.date(2026, 12, 7))
    assert week.start_at == dt.datetime(2026, 11, 29, 16, tzinfo=dt.UTC)  # local midnight
    assert week.label == "2026年第49周（11月30日—12月6日）"
    assert week.previous().key == "2026-W48" and week.following().key == "2026-W50"
    # The ISO week of 1 January 2027 belongs to 2026.
    assert analysis.period_of(ReportPeriod.weekly, dt.date(2027, 1, 1), TZ_NAME).key == "2026-W53"
    quarter = period("quarterly", "2026-Q4")
    assert (quarter.first, quarter.end) == (dt.date(2026, 10, 1), dt.date(2027, 1, 1))
    assert quarter.label == "2026年第四季度" and quarter.previous().key == "2026-Q3"
    assert period("quarterly", "2026-Q1").previous().key == "2025-Q4"
    assert period("monthly", "2026-03").previous().key == "2026-02"
    day = period("daily", "2026-03-01")
    assert day.previous().key == "2026-02-28" and day.label == "2026年3月1日（星期日）"
    for kind, key in [
        ("daily", "2026-02-30"),
        ("weekly", "2026-W54"),
        ("monthly", "2026-13"),
        ("quarterly", "2026-Q5"),
        ("monthly", "2026-1"),
        # Out of the years a report may name (the next period would overflow date).
        ("daily", "9999-12-31"),
        ("weekly", "9999-W52"),
        ("monthly", "9999-12"),
        ("quarterly", "9999-Q4"),
        ("quarterly", "2101-Q1"),
        ("monthly", "1999-12"),
    ]:
        with pytest.raises(ValidationFailed) as refused:
            period(kind, key)
        assert refused.value.code == "ANALYSIS_PERIOD_INVALID"
    with pytest.raises(ValidationFailed):
        period("yearly", "2026")
    # The last years allowed step on without overflowing.
    assert period("quarterly", "2100-Q4").following().key == "2101-Q1"
    assert period("daily", "2000-01-01").previous().key == "1999-12-31"


def test_default_period_is_the_last_one_ended():
    now = at(12, 5, 10)
    assert analysis.default_period(ReportPeriod.quarterly, now, TZ_NAME).key == "2026-Q3"
    assert analysis.default_period(ReportPeriod.daily, now, TZ_NAME).key == "2026-12-04"
    options = analysis.picker(ReportPeriod.monthly, now, TZ_NAME)
    assert [p.key for p in options[:3]] == ["2026-12", "2026-11", "2026-10"]


# -- figures ------------------------------------------------------------------------------------


def test_volume_trend_and_local_boundaries(db, receive):
    # Quarter boundary in local time: 30 September 23:30 is Q3, 1 October 00:10 is Q4,
    # though both are on 30 September in UTC.
    receive(at(9, 30, 23, 30))
    receive(at(10, 1, 0, 10), channel=Channel.web, request_type=RequestType.consult)
    receive(at(10, 1, 8), category=NOISE)
    receive(at(12, 31, 23, 59), category=NOISE, area="370702001001")
    receive(at(1, 1, 0, 0, year=2027))  # next quarter
    report = analysis.compute(db, period("quarterly", "2026-Q4"), as_of=LATER)
    assert report["totals"] == {"received": 3, "previous": 1, "change": 2, "change_rate": 2.0}
    series = report["series"]
    assert series["unit"] == "day" and len(series["labels"]) == 92
    assert series["labels"][0] == "10月1日" and series["current"][0] == 2
    assert series["current"][-1] == 1 and sum(series["current"]) == 3
    assert len(series["previous"]) == 92 and series["previous"][-1] == 1  # 30 September
    breakdowns = report["breakdowns"]
    channels = {r["code"]: (r["count"], r["previous"]) for r in breakdowns["channel"]}
    assert channels == {"phone": (2, 1), "web": (1, 0)}
    assert breakdowns["channel"][0]["name"] == "电话"
    types = {r["name"]: r["count"] for r in breakdowns["request_type"]}
    assert types == {"投诉": 2, "咨询": 1}
    level1 = {r["code"]: (r["name"], r["count"], r["previous"]) for r in breakdowns["category1"]}
    assert level1 == {"01": ("城乡建设", 1, 1), "02": ("环境保护", 2, 0)}
    level2 = {r["code"]: (r["name"], r["count"]) for r in breakdowns["category2"]}
    assert level2 == {"0101": ("市政设施", 1), "0203": ("噪声污染", 2)}
    districts = {r["code"]: (r["name"], r["count"]) for r in breakdowns["area"]}
    assert districts == {"370705": ("奎文区", 2), "370702": ("潍城区", 1)}

    day = analysis.compute(db, period("daily", "2026-10-01"), as_of=LATER)
    assert day["series"]["unit"] == "hour" and len(day["series"]["current"]) == 24
    assert day["series"]["current"][0] == 1 and day["series"]["current"][8] == 1
    assert day["series"]["previous"][23] == 1  # 30 September 23:30
    assert day["totals"]["received"] == 2 and day["totals"]["previous"] == 1


def test_the_series_groups_by_bucket_in_the_database(db, receive):
    """Two tickets in the same 15 minutes are one row of the grouped query, on every database."""
    receive(at(10, 5, 9, 1))
    receive(at(10, 5, 9, 14))
    receive(at(10, 5, 9, 16))
    bucket = analysis._bucket(db)
    rows = db.execute(
        sa.select(bucket.label("bucket"), sa.func.count().label("n"))
        .group_by(bucket)
        .order_by(bucket)
    ).all()
    assert [row.n for row in rows] == [2, 1]
    first = int(at(10, 5, 9).timestamp()) // 900
    assert [int(row.bucket) for row in rows] == [first, first + 1]


def test_week_and_month_end_at_local_midnight(db, receive):
    receive(at(11, 30, 23, 59))  # Monday 30 November, late: week 49, November
    receive(at(12, 6, 23, 59))  # Sunday: still week 49
    receive(at(12, 7, 0, 0))  # Monday 00:00 local (Sunday 16:00 UTC): week 50
    week = analysis.compute(db, period("weekly", "2026-W49"), as_of=LATER)
    assert week["totals"]["received"] == 2 and week["series"]["current"] == [1, 0, 0, 0, 0, 0, 1]
    assert week["series"]["labels"][0] == "11月30日"
    following = analysis.compute(db, period("weekly", "2026-W50"), as_of=LATER)
    assert following["totals"] == {"received": 1, "previous": 2, "change": -1, "change_rate": -0.5}
    november = analysis.compute(db, period("monthly", "2026-11"), as_of=LATER)
    assert november["totals"]["received"] == 1 and len(november["series"]["current"]) == 30


def test_district_scope_counts_its_places_only(db, receive):
    receive(at(10, 5), area="370705001001")
    receive(at(10, 6), area="370702001001")
    receive(at(10, 7), area=None)
    city = analysis.compute(db, period("monthly", "2026-10"), as_of=LATER)
    assert city["totals"]["received"] == 3
    assert {r["name"] for r in city["breakdowns"]["area"]} == {"奎文区", "潍城区", "未定位"}
    kuiwen = analysis.compute(db, period("monthly", "2026-10"), scope="370705", as_of=LATER)
    assert kuiwen["totals"]["received"] == 1 and kuiwen["scope"]["name"] == "奎文区"
    assert [r["name"] for r in kuiwen["breakdowns"]["area"]] == ["奎文区·东关街道"]  # by street
    assert kuiwen["title"].startswith("奎文区12345热线民情分析月报")


def test_rising_needs_the_minimum_count(db, receive):
    # Daily minimum: 3 tickets. 噪声污染 3 (was 1): rises ×2; 市政设施 2 (was 0): too few.
    receive(at(10, 4, 10), category=NOISE)
    for hour in (9, 10, 11):
        receive(at(10, 5, hour), category=NOISE, area="370702001001")
    for hour in (12, 13):
        receive(at(10, 5, hour), category=STREETLIGHT)
    report = analysis.compute(db, period("daily", "2026-10-05"), as_of=LATER)
    rising = report["rising"]
    assert rising["min_count"] == 3
    assert [(r["code"], r["count"], r["previous"], r["growth"]) for r in rising["categories"]] == [
        ("0203", 3, 1, 2.0)
    ]
    places = [(r["code"], r["name"], r["count"], r["previous"]) for r in rising["places"]]
    assert places == [
        ("370702001", "潍城区·城关街道", 3, 0),
        ("370702001001", "潍城区·曹家巷社区", 3, 0),
    ]
    assert "与前一日相比上升最快的是噪声污染（由1件增至3件）" in report["summary"]


def test_repeat_callers_are_masked(db, receive):
    for day in (3, 4, 5):
        receive(at(10, day), requester_phone="13905368888")
    receive(at(10, 6), requester_phone="13905367777", category=NOISE)
    receive(at(10, 7), requester_phone="13905367777")
    receive(at(10, 8), requester_phone="13905366666")
    receive(at(9, 8), requester_phone="13905366666")  # previous period: not a repeat now
    report = analysis.compute(db, period("monthly", "2026-10"), as_of=LATER)
    callers = report["repeat_callers"]
    assert callers["callers"] == 2 and callers["tickets"] == 5
    top = callers["top"]
    assert [(r["phone"], r["count"]) for r in top] == [("139****8888", 3), ("139****7777", 2)]
    assert {c["name"] for c in top[1]["categories"]} == {"路灯故障", "建筑施工噪声"}
    dumped = json.dumps(report, ensure_ascii=False)
    assert "13905368888" not in dumped and "13905367777" not in dumped


def test_repeat_complaints_and_rates_are_the_rankings(db, october):
    report = analysis.compute(db, period("monthly", "2026-10"), as_of=AS_OF)
    repeats = report["repeats"]
    assert repeats["merged"] == 1 and repeats["reopened"] == 1
    four = october.tickets[4]
    assert repeats["merged_into"] == [{"number": four.number, "title": four.title, "merged": 1}]
    assert [t["number"] for t in repeats["reopened_tickets"]] == [four.number]
    assert repeats["reopened_tickets"][0]["unit"] == "东关街道办事处"

    # Per unit: the same counts and rates as the monthly ranking for the same tickets.
    settings = ranking.Settings.from_settings(db)
    month = ranking.compute(
        db,
        "2026-10",
        as_of=AS_OF,
        settings=settings,
        timezone=TZ_NAME,
        mayors_office_code="U-MAYOR",
    )
    quality = report["quality"]
    by_unit = {r["code"]: r for r in quality["by_unit"]}
    compared = 0
    for rows in month.rows.values():
        for row in rows:
            if row.ranking_class.value == "district":
                continue  # a district sums units; the report lists units
            if not row.counts["dispatched"]:
                assert row.unit_code not in by_unit
                continue
            line = by_unit[row.unit_code]
            for rate in ("resolution_rate", "satisfaction_rate", "response_rate"):
                assert line["rates"][rate] == row.rates[rate], (row.unit_code, rate)
            assert line["counts"]["rated"] == row.counts["rated"]
            compared += 1
    assert compared >= 8
    total = quality["total"]
    assert total["counts"]["dispatched"] == month.totals["dispatched"]
    assert total["rates"] == {
        k: v
        for k, v in ranking.compute_rates(month.totals, settings).items()
        if k in total["rates"]
    }
    # By category: every fixture ticket is a streetlight ticket.
    assert [r["code"] for r in quality["by_category2"]] == ["0101"]
    assert quality["by_category2"][0]["rates"] == total["rates"]


def test_hot_issues_of_the_period(db, receive):
    tickets = [receive(at(10, d)) for d in (3, 4, 5)] + [receive(at(9, 20))]

    def issue(title, heat, members, state=HotIssueState.open):
        row = HotIssue(
            title=title,
            place="丽发新城",
            heat=heat,
            size=len(members),
            callers=len(members),
            state=state,
            first_at=at(9, 1),
            last_at=at(10, 5),
        )
        db.add(row)
        db.flush()
        for ticket in members:
            db.add(HotIssueTicket(ticket_id=ticket.id, hot_issue_id=row.id))
        db.flush()
        return row

    noisy = issue("丽发新城搅拌站噪音扰民", 12.5, [tickets[0], tickets[1], tickets[3]])
    hotter = issue("胜利东街路灯不亮", 30.0, [tickets[2]])
    issue("已合并的热点", 99.0, [receive(at(10, 6))], state=HotIssueState.merged)
    issue("上月的热点", 50.0, [receive(at(9, 6))])
    report = analysis.compute(db, period("monthly", "2026-10"), as_of=LATER)
    hot = report["hot_issues"]
    assert hot["total"] == 2
    assert [(h["id"], h["in_period"], h["size"]) for h in hot["top"]] == [
        (hotter.id, 1, 1),
        (noisy.id, 2, 3),
    ]
    assert "本期涉及热点问题2个，主要有“胜利东街路灯不亮”（本期1件）" in report["summary"]


def test_keywords_count_tickets_and_compare(db, receive, monkeypatch):
    for day in (3, 4, 5):
        receive(at(10, day), title="工地夜间噪音扰民", content="工地夜间施工噪音，电话13805361234")
    receive(at(9, 3), title="工地噪音", content="噪音噪音噪音")  # one ticket, counted once
    report = analysis.compute(db, period("monthly", "2026-10"), as_of=LATER)
    keywords = {r["word"]: r for r in report["keywords"]["rows"]}
    assert keywords["噪音"]["count"] == 3 and keywords["噪音"]["previous"] == 1
    assert keywords["噪音"]["change"] == 2
    assert keywords["工地"]["count"] == 3
    assert not any(w.isdigit() or "1380536" in w for w in keywords)
    assert report["keywords"]["estimated"] is False
    # Over the cap, every k-th ticket is read and the counts are scaled.
    monkeypatch.setattr(analysis, "KEYWORD_SAMPLE", 1)
    sampled = analysis.compute(db, period("monthly", "2026-10"), as_of=LATER)["keywords"]
    assert sampled["estimated"] is True
    assert sampled["current"]["tickets"] == 3 and sampled["current"]["read"] <= 1


def test_keywords_are_reused_only_while_the_tickets_are_unchanged(db, receive, monkeypatch):
    month = period("monthly", "2026-10")
    reads = []
    read = analysis._read_keywords
    monkeypatch.setattr(analysis, "_read_keywords", lambda *a: reads.append(a[1].key) or read(*a))
    clock = [1000.0]
    monkeypatch.setattr(analysis, "_clock", lambda: clock[0])

    def words():
        report = analysis.compute(db, month, as_of=LATER)
        return {r["word"]: r["count"] for r in report["keywords"]["rows"]}

    first = receive(at(10, 3), title="工地夜间噪音扰民", content="工地噪音")
    assert words()["噪音"] == 1 and len(reads) == 1
    clock[0] += 30
    assert words()["噪音"] == 1 and len(reads) == 1  # reused
    # A ticket more (this or the previous month): read again.
    receive(at(10, 4), title="工地噪音", content="夜间施工")
    assert words()["噪音"] == 2 and len(reads) == 2
    receive(at(9, 4), title="路灯不亮", content="路灯")
    assert len(reads) == 2 and words() and len(reads) == 3
    # A ticket edited (its version moves): read again, with the new text.
    first.title = "路灯损坏"
    first.content = "路灯"
    db.flush()
    assert words()["噪音"] == 1 and len(reads) == 4
    # Another scope or period is its own entry.
    analysis.compute(db, month, scope="370705", as_of=LATER)
    assert len(reads) == 5
    # Unchanged, but older than KEYWORD_CACHE_SECONDS: read again.
    words()
    assert len(reads) == 5
    clock[0] += analysis.KEYWORD_CACHE_SECONDS
    words()
    assert len(reads) == 6


def test_boilerplate_is_not_a_keyword():
    assert analysis.words("市民来电反映小区垃圾很多，希望尽快处理，电话13805361234") == {
        "垃圾",
        "电话",
    }


def test_summary_states_the_main_figures(db, receive):
    for day in range(1, 25):
        receive(at(10, day), category=NOISE)
    receive(at(7, 2))
    report = analysis.compute(db, period("quarterly", "2026-Q4"), as_of=LATER)
    summary = report["summary"]
    assert summary.startswith(
        "2026年第四季度，全市12345热线共受理群众诉求24件，较上季度增加23件（+2300.0%）。"
    )
    assert "投诉24件（占100.0%）" in summary
    assert "诉求量居前的事项是噪声污染（24件）" in summary
    assert "上升最快的是噪声污染（由0件增至24件）" in summary


# -- publishing ---------------------------------------------------------------------------------


def test_publish_freezes_the_report(db, receive, user):
    receive(at(10, 5))
    receive(at(10, 6))
    quarter = period("quarterly", "2026-Q4")
    supervisor = user("supervisor")
    live = analysis.load(db, quarter, now=LATER)
    assert live["published"] is None
    result = analysis.publish(db, supervisor, quarter, summary="  季度摘要（编辑后）  ", now=LATER)
    assert result["summary"] == "季度摘要（编辑后）"
    assert result["published"]["by"] == supervisor.name
    stored = db.scalars(sa.select(AnalysisReport)).one()
    assert (stored.period, stored.period_key) == (ReportPeriod.quarterly, "2026-Q4")
    assert stored.period_start == quarter.start_at and stored.data["totals"]["received"] == 2
    entry = db.scalars(sa.select(AuditLog).where(AuditLog.action == "analysis.publish")).one()
    assert entry.actor_id == supervisor.id and entry.target == "quarterly:2026-Q4"
    assert entry.payload["summary_edited"] is True and entry.payload["received"] == 2

    # A ticket received in the quarter afterwards (late entry) does not move it.
    receive(at(10, 7))
    frozen = analysis.load(db, quarter, now=LATER + dt.timedelta(days=1))
    assert frozen["totals"]["received"] == 2
    assert frozen["summary"] == "季度摘要（编辑后）" and frozen["published"] is not None
    # The district's report stays live.
    district = analysis.load(db, quarter, scope="370705", now=LATER)
    assert district["totals"]["received"] == 3 and district["published"] is None

    with pytest.raises(Conflict) as twice:
        analysis.publish(db, user("leader"), quarter, now=LATER)
    assert twice.value.code == "ANALYSIS_ALREADY_PUBLISHED"
    assert "2026年第四季度季报已发布，不能重复发布" == twice.value.message


def test_publish_rules(db, user, receive):
    receive(at(10, 5))
    month = period("monthly", "2026-10")
    for name in ("admin", "kuiwen-leader", "dispatcher"):
        with pytest.raises(Forbidden) as refused:
            analysis.publish(db, user(name), month, now=LATER)
        assert refused.value.code == "ANALYSIS_PUBLISH_FORBIDDEN"
    current = period("monthly", "2027-03")
    with pytest.raises(Conflict) as early:
        analysis.publish(db, user("leader"), current, now=at(3, 20, year=2027))
    assert early.value.code == "ANALYSIS_PERIOD_NOT_OVER"
    with pytest.raises(ValidationFailed):
        analysis.publish(db, user("leader"), month, summary="   ", now=LATER)
    result = analysis.publish(db, user("leader"), "monthly", "2026-10", now=LATER)
    # Without an edited summary, the generated one is published.
    assert result["summary"].startswith("2026年10月，全市12345热线共受理群众诉求1件")
    assert (
        db.scalar(
            sa.select(sa.func.count())
            .select_from(AuditLog)
            .where(AuditLog.action == "analysis.publish")
        )
        == 1
    )


def test_statements_do_not_grow_with_tickets(db, receive, count_queries):
    """Grouped queries: the same statements for 2 tickets as for 12 (no per-ticket read)."""
    month = period("monthly", "2026-10")

    def statements():
        with count_queries() as counted:
            analysis.compute(db, month, as_of=LATER)
        return counted.count

    for day in (3, 4):
        receive(at(10, day), requester_phone="13905368888", category=NOISE)
    few = statements()
    for day in range(5, 15):
        receive(at(10, day), requester_phone=f"1390536{day:04d}", area="370702001001")
    assert statements() == few
