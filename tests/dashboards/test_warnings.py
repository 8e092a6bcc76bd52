"""Early warnings (dashboards.warnings) with injected clocks: surges against a weekday and
time-of-day baseline, sudden events at one place, one warning per episode, acknowledging."""

import datetime as dt
import math
import threading
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from dashboards import warnings
from hotline import settings
from hotline.enums import AlertLevel, WarningKind, WarningState
from hotline.errors import Conflict, Forbidden
from hotline.models import AuditLog, EarlyWarning, Notification, Unit, User

TZ = ZoneInfo("Asia/Shanghai")
WATER = "010201"  # 突然停水 (level 2: 0102 供水)
POWER = "010301"  # 小区大面积停电
STREET = "370705001"  # 奎文区 东关街道
OTHER_STREET = "370702001"  # 潍城区 城关街道
COMMUNITY = "370705001001"  # 东关街道 中学街社区


def local(month, day, hour, minute=0):
    return dt.datetime(2026, month, day, hour, minute, tzinfo=TZ).astimezone(dt.UTC)


MIN = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
#: Monday 16 November 2026, 12:00 (a working day); Sunday 22 November, 23:00 (a rest day).
MONDAY_NOON = local(11, 16, 12)
SUNDAY_NIGHT = local(11, 22, 23)


@pytest.fixture
def calls(db, user, make_ticket):
    """``calls(n, at, step=…, category=…, area=…)`` → n tickets received from ``at`` on."""
    operator = user("operator")

    def make(n, at, *, step=10 * MIN, category=WATER, area=STREET, title="突然停水无通知"):
        return [
            make_ticket(
                operator,
                category=category,
                area=area,
                title=title,
                content=f"市民来电反映，今天早上开始突然停水，事先没有通知（第{i + 1}位）。",
                requester_phone=f"1380536{i:04d}",
                now=at + i * step,
            )
            for i in range(n)
        ]

    return make


def warnings_of(db, kind=None):
    query = sa.select(EarlyWarning).order_by(EarlyWarning.id)
    if kind is not None:
        query = query.where(EarlyWarning.kind == kind)
    return db.scalars(query).all()


def inbox(db, kind):
    return db.execute(
        sa.select(Unit.code, Notification.level, Notification.title)
        .join(Unit, Unit.id == Notification.unit_id)
        .where(Notification.kind == kind)
        .order_by(Unit.code)
    ).all()


@pytest.fixture
def past_mornings(db, calls):
    """One water call on each working-day morning (09:00–12:00) of the two weeks before
    Monday 16 November, in 东关街道: the usual level is one per morning."""
    day = local(11, 2, 10)
    while day < MONDAY_NOON - DAY:
        if day.astimezone(TZ).weekday() < 5:
            calls(1, day)
        day += DAY


def test_surge_fires_once_and_not_before_the_threshold(db, calls, past_mornings):
    # Expected 1 in three hours: 5 calls are P≈0.0037, not significant at 0.001.
    calls(5, local(11, 16, 9, 10), step=20 * MIN)
    assert warnings.run(db, MONDAY_NOON).raised == []
    # The sixth: P(X ≥ 6 | 1) ≈ 0.0006 < 0.001, and 6 ≥ 3 × 1.
    calls(1, local(11, 16, 11, 50))
    raised, updated = warnings.run(db, MONDAY_NOON + MIN)
    assert len(raised) == 1 and updated == []
    warning = raised[0]
    assert warning.kind == WarningKind.surge
    assert warning.subject == f"surge:0102:{STREET}"
    assert warning.observed == 6 and warning.expected == 1.0
    # P(X ≥ 6) for X ~ Poisson(1), by hand: 1 − e⁻¹ (1 + 1 + 1/2 + 1/6 + 1/24 + 1/120).
    assert warning.score == pytest.approx(
        1 - math.exp(-1) * (1 + 1 + 1 / 2 + 1 / 6 + 1 / 24 + 1 / 120)
    )
    assert len(warning.ticket_ids) == 6
    assert warning.district.code == "370705" and warning.category.code == "0102"
    assert "东关街道" in warning.title and "供水" in warning.title
    assert "6 件" in warning.body and "平均 1.0 件" in warning.body
    # The district's count is the street's: no second warning for 奎文区.
    assert len(warnings_of(db)) == 1
    # Once: the same moment again, and a minute later with nothing new, raise nothing.
    assert tuple(warnings.run(db, MONDAY_NOON + MIN)) == ([], [])
    assert tuple(warnings.run(db, MONDAY_NOON + 2 * MIN)) == ([], [])
    assert len(warnings_of(db)) == 1
    # The message centre: supervisors (hotline centre), the mayor's office, 奎文区政府.
    items = inbox(db, "warning.surge")
    assert [(code, level) for code, level, _ in items] == [
        ("U-D-370705", AlertLevel.yellow),
        ("U-HOTLINE", AlertLevel.yellow),
        ("U-SZFB", AlertLevel.yellow),
    ]
    assert all("诉求激增" in title and "东关街道" in title for *_, title in items)
    audit = db.scalars(sa.select(AuditLog).where(AuditLog.action == "warning.raise")).all()
    assert [a.target for a in audit] == [f"warning:{warning.id}"]
    events = [e for e in db.info.get("pending_events", []) if e["type"].startswith("warning.")]
    assert events == [
        {
            "type": "warning.raised",
            "id": warning.id,
            "kind": "surge",
            "title": warning.title,
            "district": "370705",
            "area": "370705",
        }
    ]


def test_more_calls_in_the_episode_update_the_warning(db, calls, past_mornings):
    calls(6, local(11, 16, 10), step=15 * MIN)
    (first,), _ = warnings.run(db, MONDAY_NOON)
    calls(3, local(11, 16, 12, 5), step=5 * MIN)
    raised, updated = warnings.run(db, MONDAY_NOON + 30 * MIN)
    assert raised == [] and updated == [first]
    assert len(warnings_of(db)) == 1
    assert len(first.ticket_ids) == 9 and first.observed == 9
    assert "诉求 9 件" in first.body  # the body states the peak
    assert first.updated_at == MONDAY_NOON + 30 * MIN
    assert first.window_end == MONDAY_NOON + 30 * MIN
    assert first.created_at == MONDAY_NOON
    assert len(inbox(db, "warning.surge")) == 3  # told once


def test_a_new_episode_after_the_cooldown_raises_a_new_warning(db, calls, past_mornings):
    calls(6, local(11, 16, 10), step=15 * MIN)
    (first,), _ = warnings.run(db, MONDAY_NOON)
    # Tuesday morning, 22 hours after the raising (cooldown 6 h): a new surge.
    calls(6, local(11, 17, 9), step=15 * MIN)
    (second,), _ = warnings.run(db, local(11, 17, 10, 30))
    assert second.id != first.id and second.subject == first.subject
    assert second.dedup_key != first.dedup_key
    assert sorted(second.ticket_ids) != sorted(first.ticket_ids)
    # Within the cooldown (from the raising) the same subject would have been an update
    # (Monday's and Tuesday's mornings are in Wednesday's baseline now: it takes more).
    settings.update(db, None, {"warning.cooldown_hours": 25})
    calls(9, local(11, 18, 9), step=10 * MIN)
    raised, updated = warnings.run(db, local(11, 18, 10, 30))
    assert raised == [] and updated == [second]


def test_the_baseline_knows_weekdays_and_time_of_day(db, calls):
    """Six water calls in three hours are a usual Monday morning in 东关街道 (six on every
    working-day morning of the week before) but a surge on a Sunday night."""
    settings.update(db, None, {"warning.surge_weeks": 1})
    for day in range(9, 14):  # Monday 9 to Friday 13 November, 09:00–12:00
        calls(6, local(11, day, 9, 5), step=25 * MIN)
    calls(1, local(11, 8, 9))  # the database's past starts before those weeks
    calls(6, local(11, 16, 9, 5), step=25 * MIN)
    assert warnings.run(db, MONDAY_NOON).raised == []
    # Sunday 22 November, 20:00–23:00: the week before had no water calls on rest-day
    # nights (Saturday 14, Sunday 15), so the same six are a surge.
    for day in range(17, 21):  # the usual mornings go on (the baseline moves with time)
        calls(6, local(11, day, 9, 5), step=25 * MIN)
    calls(6, local(11, 22, 20, 5), step=25 * MIN)
    (warning,) = warnings.run(db, SUNDAY_NIGHT).raised
    assert warning.expected == 0.0 and warning.observed == 6
    assert "休息日" in warning.body and "往常同期几乎没有" in warning.body
    # And the Sunday-night volume on a Monday night would have been a surge as well:
    # time of day matters, not only the kind of day.
    assert warnings.run(db, local(11, 16, 23)).raised == []  # nothing new at night


def test_no_baseline_no_surge(db, calls):
    """A database with no past of the same kind of day judges nothing."""
    calls(10, local(11, 16, 9), step=10 * MIN)
    assert warnings.run(db, MONDAY_NOON).raised == []


def test_sudden_event_at_one_community(db, calls, past_mornings):
    calls(4, local(11, 16, 19, 2), step=9 * MIN, category=POWER, area=COMMUNITY + "001")
    assert warnings.run(db, local(11, 16, 19, 40)).raised == []
    calls(1, local(11, 16, 19, 41), category=POWER, area=COMMUNITY)
    (warning,) = warnings.run(db, local(11, 16, 19, 42)).raised
    assert warning.kind == WarningKind.sudden
    assert warning.subject == f"sudden:{COMMUNITY}"
    assert warning.observed == 5 and warning.place == "中学街社区"
    assert warning.title == "奎文区东关街道中学街社区突发：39分钟内5件诉求"
    assert "供电" in warning.body
    assert [(code, level) for code, level, _ in inbox(db, "warning.sudden")] == [
        ("U-D-370705", AlertLevel.red),
        ("U-HOTLINE", AlertLevel.red),
        ("U-SZFB", AlertLevel.red),
    ]
    # Calls spread over more than the window do not add up to one.
    calls(4, local(11, 16, 6), step=30 * MIN, category=POWER, area="370702001001")
    assert warnings.run(db, local(11, 16, 8)).raised == []


def test_a_scanner_that_lost_the_race_adds_to_the_winner(db, calls, past_mornings):
    """The other scheduler inserted the same episode (same dedup key) but this one did not
    see it as current: the unique key settles it, nothing is raised twice."""
    tickets = calls(5, local(11, 16, 19), step=5 * MIN, category=POWER, area=COMMUNITY)
    key = f"sudden:{COMMUNITY}@{tickets[0].received_at:%Y-%m-%dT%H:%M:%SZ}"
    other = EarlyWarning(
        kind=WarningKind.sudden,
        dedup_key=key,
        subject="sudden:elsewhere",  # not found as this subject's current warning
        title="另一进程",
        body="另一进程",
        window_start=local(11, 16, 18),
        window_end=local(11, 16, 19),
        observed=1,
        ticket_ids=[tickets[0].id],
        created_at=local(11, 16, 19),
        updated_at=local(11, 16, 19),
    )
    db.add(other)
    db.flush()
    raised, updated = warnings.run(db, local(11, 16, 19, 30))
    assert raised == [] and updated == [other]
    assert sorted(other.ticket_ids) == sorted(t.id for t in tickets) and other.observed == 5
    assert len(warnings_of(db)) == 1
    assert inbox(db, "warning.sudden") == []


def test_acknowledge(db, user, calls, past_mornings):
    calls(5, local(11, 16, 19), step=5 * MIN, category=POWER, area=COMMUNITY)
    calls(5, local(11, 16, 19), step=5 * MIN, category=POWER, area="370702001001")
    weicheng, kuiwen = warnings.run(db, local(11, 16, 19, 30)).raised
    assert kuiwen.district.code == "370705" and weicheng.district.code == "370702"
    at = local(11, 16, 20)
    with pytest.raises(Forbidden) as refused:
        warnings.acknowledge(db, user("dispatcher"), kuiwen, "", now=at)
    assert refused.value.code == "WARNING_ACK_FORBIDDEN"
    with pytest.raises(Forbidden) as refused:
        warnings.acknowledge(db, user("kuiwen-leader"), weicheng, "", now=at)
    assert refused.value.code == "WARNING_NOT_IN_SCOPE"
    warnings.acknowledge(db, user("kuiwen-leader"), kuiwen, " 已通知供电公司抢修 ", now=at)
    assert kuiwen.state == WarningState.acknowledged
    assert kuiwen.acknowledged_by.username == "kuiwen-leader"
    assert kuiwen.acknowledged_at == at and kuiwen.acknowledged_note == "已通知供电公司抢修"
    with pytest.raises(Conflict) as again:
        warnings.acknowledge(db, user("supervisor"), kuiwen, "", now=at + MIN)
    assert again.value.code == "WARNING_ALREADY_ACKNOWLEDGED"
    assert "孙志刚" in again.value.message and "已由" in again.value.message
    warnings.acknowledge(db, user("supervisor"), weicheng, "", now=at)
    audit = db.scalars(
        sa.select(AuditLog).where(AuditLog.action == "warning.acknowledge").order_by(AuditLog.id)
    ).all()
    assert [(a.target, a.actor_id, a.payload["note"]) for a in audit] == [
        (f"warning:{kuiwen.id}", user("kuiwen-leader").id, "已通知供电公司抢修"),
        (f"warning:{weicheng.id}", user("supervisor").id, None),
    ]
    acked = [e for e in db.info["pending_events"] if e["type"] == "warning.acknowledged"]
    assert [e["id"] for e in acked] == [kuiwen.id, weicheng.id]
    # The banner's list: open warnings only, a district's own.
    assert warnings.open_warnings(db)[1] == 0
    assert warnings.open_warnings(db, "370705") == ([], 0)


def test_backfill_raises_the_past_once(db, calls, past_mornings):
    calls(5, local(11, 16, 19), step=5 * MIN, category=POWER, area=COMMUNITY)
    calls(7, local(11, 16, 9), step=20 * MIN)
    total = warnings.backfill(db, local(11, 16, 0), local(11, 17, 0))
    assert sorted(w.kind.value for w in total.raised) == ["sudden", "surge"]
    assert len(warnings_of(db)) == 2
    again = warnings.backfill(db, local(11, 16, 0), local(11, 17, 0))
    assert tuple(again) == ([], [])


def test_sudden_event_named_in_the_text(db, user, make_ticket):
    """Tickets without a community (web messages, an address the operator could not place)
    are about the place their text names."""
    texts = [
        ("丽发新城燃气味很大", "丽发新城3号楼楼道里燃气味很浓，担心泄漏，请燃气公司马上来看看。"),
        ("燃气泄漏", "丽发新城2号楼楼下一直有很浓的煤气味，已经打开窗户了。"),
        ("丽发新城闻到燃气味", "丽发新城小区东门附近闻到刺鼻的燃气味，好几户都闻到了。"),
        ("煤气味", "丽发新城5号楼有煤气味，老人孩子不敢在家，请尽快处理。"),
        ("丽发新城疑似燃气泄漏", "丽发新城靠近幼儿园的那栋楼燃气味很重，请派人排查。"),
    ]
    for i, (title, content) in enumerate(texts):
        make_ticket(
            user("operator"),
            category="010401",
            title=title,
            content=content,
            address=None,
            requester_phone=f"1360536{i:04d}",
            now=local(11, 16, 21) + i * 6 * MIN,
        )
    (warning,) = warnings.run(db, local(11, 16, 21, 30)).raised
    assert warning.subject == "sudden:丽发新城" and warning.place == "丽发新城"
    assert warning.title == "丽发新城突发：24分钟内5件诉求"
    assert warning.district is None and "燃气" in warning.body
    # No district: the hotline centre and the mayor's office are told.
    assert [code for code, *_ in inbox(db, "warning.sudden")] == ["U-HOTLINE", "U-SZFB"]


def test_two_people_acknowledging_at_once(committed_app):
    """Both load the open warning; the first commits; the second's acknowledgement is refused
    naming the first (PostgreSQL: the conditional UPDATE waits for the first's row lock
    and re-checks the state)."""
    factory = committed_app.extensions["hotline.db"]
    if factory.kw["bind"].dialect.name != "postgresql":
        pytest.skip("concurrent transactions: PostgreSQL (SQLite has one writer)")
    at = local(11, 16, 20)
    with committed_app.app_context():
        setup = factory()
        warning = EarlyWarning(
            kind=WarningKind.sudden,
            dedup_key="sudden:race@2026-11-16T11:00:00Z",
            subject="sudden:race",
            title="竞争",
            body="竞争",
            window_start=at - HOUR,
            window_end=at,
            observed=5,
            ticket_ids=[],
            created_at=at,
            updated_at=at,
        )
        setup.add(warning)
        setup.commit()
        warning_id = warning.id
        setup.close()
        first, second = factory(), factory()
        try:
            users = {
                u.username: u
                for session in (first, second)
                for u in session.scalars(
                    sa.select(User).where(User.username.in_(["supervisor", "leader"]))
                )
                if (session is first) == (u.username == "supervisor")
            }
            mine, theirs = first.get(EarlyWarning, warning_id), second.get(EarlyWarning, warning_id)
            assert mine.state == theirs.state == WarningState.open
            warnings.acknowledge(first, users["supervisor"], mine, "我来", now=at)
            # The second has read the warning open and updates while the first's row lock
            # is held: it waits for the commit below, then finds the state changed.
            outcome = {}

            def acknowledge_too():
                try:
                    warnings.acknowledge(
                        second,
                        users["leader"],
                        theirs,
                        "我也来",
                        now=at + MIN,
                        config=committed_app.config,
                    )
                    second.commit()
                    outcome["done"] = True
                except Conflict as exc:
                    second.rollback()
                    outcome["refused"] = exc

            racer = threading.Thread(target=acknowledge_too)
            racer.start()
            racer.join(0.5)
            assert racer.is_alive()  # blocked on the first's row lock
            first.commit()
            racer.join(10)
            assert "done" not in outcome
            assert outcome["refused"].code == "WARNING_ALREADY_ACKNOWLEDGED"
            assert "郑国栋" in outcome["refused"].message
        finally:
            first.close()
            second.close()
        check = factory()
        stored = check.get(EarlyWarning, warning_id)
        assert stored.acknowledged_note == "我来"
        audit = check.scalars(
            sa.select(AuditLog).where(AuditLog.target == f"warning:{warning_id}")
        ).all()
        assert [a.action for a in audit] == ["warning.acknowledge"]
        check.close()


def _many_warnings(db, user, n):
    """``n`` acknowledged surges, each in a district, category and area and by a person."""
    from hotline.models import Area, Category

    areas = db.scalars(sa.select(Area).where(sa.func.length(Area.code) == 9).limit(n)).all()
    categories = db.scalars(sa.select(Category).where(sa.func.length(Category.code) == 4)).all()
    people = [user("supervisor"), user("leader")]
    at = local(11, 16, 12)
    for i in range(n):
        area = areas[i]
        district = db.scalars(sa.select(Area).where(Area.code == area.code[:6])).one()
        db.add(
            EarlyWarning(
                kind=WarningKind.surge,
                dedup_key=f"surge:{i}",
                subject=f"surge:{i}",
                title=f"激增{i}",
                body="激增",
                category_id=categories[i % len(categories)].id,
                area_id=area.id,
                district_id=district.id,
                window_start=at - HOUR,
                window_end=at,
                observed=6,
                expected=1.0,
                ticket_ids=[],
                state=WarningState.acknowledged,
                acknowledged_at=at,
                acknowledged_by_id=people[i % 2].id,
                created_at=at + i * MIN,
                updated_at=at + i * MIN,
            )
        )
    db.flush()
    for warning in db.scalars(sa.select(EarlyWarning)):
        db.expire(warning)  # the page loads them afresh


@pytest.mark.parametrize("n", [3, 12])
def test_listing_warnings_takes_the_same_statements_for_any_page_size(
    app, db, user, count_queries, n
):
    from dashboards import warning_schemas

    _many_warnings(db, user, n)
    supervisor = user("supervisor")
    filters = warning_schemas.list_filters({}, supervisor, timezone="Asia/Shanghai")
    with count_queries() as counted:
        total, rows = warning_schemas.list_page(db, filters, supervisor)
        listed = [warning_schemas.warning_to_dict(w, supervisor) for w in rows]
    assert total == n and len(listed) == n
    assert all(w["district"] and w["area"] and w["category"] for w in listed)
    assert {w["acknowledged"]["by"] for w in listed} == {"郑国栋", user("leader").name}
    # The count, the page, then category, area, district and person: one query each.
    assert counted.count == 6, counted


def test_a_sudden_event_is_about_one_matter(db, calls):
    """A busy community's five unrelated calls in an hour are not an event; five power-cut
    calls are, and so are calls mostly (60 %) about one matter."""
    unrelated = ["010101", "020101", "020301", "030101", "050101"]
    for i, category in enumerate(unrelated):
        calls(1, local(11, 16, 19, 2 + 8 * i), category=category, area="370705001004")
    assert warnings.run(db, local(11, 16, 19, 45)).raised == []
    calls(5, local(11, 16, 19, 5), step=7 * MIN, category=POWER, area="370705001006")
    (power,) = warnings.run(db, local(11, 16, 19, 46)).raised
    assert power.subject == "sudden:370705001006" and power.category.code == "0103"
    # Three power cuts among five calls (60 %): one matter; two among five: not.
    for i, category in enumerate([POWER, POWER, "010101", "020101"]):
        calls(1, local(11, 16, 19, 10 + 5 * i), category=category, area="370702001001")
    assert warnings.run(db, local(11, 16, 19, 47)).raised == []
    calls(1, local(11, 16, 19, 47), category=POWER, area="370702001001")
    (mostly,) = warnings.run(db, local(11, 16, 19, 48)).raised
    assert mostly.subject == "sudden:370702001001" and mostly.observed == 5


def test_after_acknowledgement_a_flare_up_is_a_new_warning(db, user, calls):
    calls(5, local(11, 16, 19), step=5 * MIN, category=POWER, area=COMMUNITY)
    (first,) = warnings.run(db, local(11, 16, 19, 30)).raised
    warnings.acknowledge(db, user("supervisor"), first, "已通知供电公司", now=local(11, 16, 19, 35))
    evidence = list(first.ticket_ids)
    # The same calls are still in the window: nothing new to tell.
    assert tuple(warnings.run(db, local(11, 16, 19, 40))) == ([], [])
    # Two more: the acknowledged warning takes no evidence, and two are not an event.
    calls(2, local(11, 16, 19, 45), step=MIN, category=POWER, area=COMMUNITY)
    assert tuple(warnings.run(db, local(11, 16, 19, 50))) == ([], [])
    assert first.ticket_ids == evidence and first.updated_at == local(11, 16, 19, 30)
    # Three more (five since the acknowledgement): it flared up again, a new warning.
    calls(3, local(11, 16, 20), step=MIN, category=POWER, area=COMMUNITY)
    (second,) = warnings.run(db, local(11, 16, 20, 5)).raised
    assert second.id != first.id and second.state == WarningState.open
    assert set(evidence) - set(second.ticket_ids) == {evidence[0]}  # 19:00: out of the window
    assert len(inbox(db, "warning.sudden")) == 6  # told twice
    assert first.ticket_ids == evidence


def test_the_cooldown_runs_from_the_raising(db, calls):
    """Calls that keep coming do not keep an unacknowledged episode going for ever: an hour
    (the cooldown here) after the raising, five new calls are a new warning."""
    settings.update(db, None, {"warning.cooldown_hours": 1})
    calls(5, local(11, 16, 19), step=5 * MIN, category=POWER, area=COMMUNITY)
    (first,) = warnings.run(db, local(11, 16, 19, 30)).raised
    new = []
    for i in range(10):  # one call every ten minutes, 19:40 to 21:10, scanned after each
        at = local(11, 16, 19, 40) + i * 10 * MIN
        calls(1, at, category=POWER, area=COMMUNITY)
        raised, updated = warnings.run(db, at + MIN)
        new += raised
        if at < local(11, 16, 20, 30):
            assert updated == [first]
    # 19:40–20:20 joined the first; from 20:30 on they are new: the fifth (21:10) raises.
    assert [w.created_at for w in new] == [local(11, 16, 21, 11)]
    assert len(first.ticket_ids) == 10
