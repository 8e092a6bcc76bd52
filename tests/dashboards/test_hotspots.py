"""Hot issues in the database (dashboards.hotspots): the incremental grouper, the rebuild,
a supervisor's decisions and who sees what, with tickets received at injected moments."""

import datetime as dt
import time

import pytest
import sqlalchemy as sa

from classifier import hotspots as engine
from dashboards import hotspots
from hotline.enums import HotIssueState
from hotline.errors import Conflict, Forbidden, NotFound, ValidationFailed
from hotline.models import AuditLog, HotIssue, HotIssueTicket
from hotline.schemas import Page
from tests.dashboards import hotspot_city
from tests.dashboards.hotspot_city import DAY, HOUR, LIGHT, NOISE, NOW, WATER, City


@pytest.fixture
def city(db, user, make_ticket):
    return City(db, user, make_ticket)


def test_a_matter_becomes_a_hot_issue_at_min_size(db, city):
    grouper = hotspots.Grouper()
    first = city.call(NOISE, NOW - 3 * DAY)
    second = city.call(NOISE, NOW - 2 * DAY)
    city.call(LIGHT, NOW - 2 * DAY)
    grouper.run(db, NOW - 2 * DAY + HOUR)
    assert db.scalar(sa.select(sa.func.count()).select_from(HotIssue)) == 0

    third = city.call(NOISE, NOW - HOUR, phone=first.requester_phone)
    db.info.pop("pending_events", None)
    result = grouper.run(db, NOW)
    assert len(result.created) == 1 and result.added == 1
    issue = db.get(HotIssue, result.created[0])
    assert city.groups() == {issue.id: {first.id, second.id, third.id}}
    assert issue.size == 3
    assert issue.callers == 2  # the third call is the first caller again
    assert issue.first_at == first.received_at and issue.last_at == third.received_at
    assert issue.district.code == "370705"
    assert issue.category.code == "010103"
    assert issue.state == HotIssueState.open and issue.title
    assert issue.heat > 0 and issue.heat_parts
    assert sum(p["points"] for p in issue.heat_parts.values()) == pytest.approx(issue.heat, 0.01)
    queued = db.info.get("pending_events", [])
    assert {"type": "hotspot.changed", "hot_issue": issue.id, "area": "370705"}.items() <= (
        queued[-1].items()
    )

    # The next call about it joins it; another matter does not.
    fourth = city.call(NOISE, NOW + HOUR)
    city.call(WATER, NOW + HOUR)
    result = grouper.run(db, NOW + 2 * HOUR)
    assert result.grown == [issue.id] and not result.created
    assert city.groups()[issue.id] == {first.id, second.id, third.id, fourth.id}
    assert db.get(HotIssue, issue.id).size == 4


def test_a_ticket_committed_out_of_id_order_is_not_missed(db, city):
    # A run looks ``margin`` ids back: a ticket committed after a later one was grouped.
    grouper = hotspots.Grouper(margin=5)
    calls = [city.call(NOISE, NOW - i * HOUR) for i in (5, 4)]
    grouper.run(db, NOW)
    late = city.call(NOISE, NOW - 3 * HOUR)
    _hide(db, late)
    city.call(WATER, NOW - 2 * HOUR)  # a higher id, grouped first
    grouper.run(db, NOW)
    assert city.groups() == {}
    _show(db, late)
    assert grouper.floor < late.id
    assert grouper.run(db, NOW).added == 1
    assert list(city.groups().values()) == [{*(c.id for c in calls), late.id}]
    assert grouper.run(db, NOW).added == 0  # seen once, added once


def test_a_ticket_committed_past_the_margin_is_found_by_the_sweep(db, city):
    grouper = hotspots.Grouper(margin=2)
    calls = [city.call(NOISE, NOW - i * HOUR) for i in (9, 8)]
    grouper.run(db, NOW)
    late = city.call(NOISE, NOW - 7 * HOUR)
    _hide(db, late)
    for i in range(4):  # more than ``margin`` later ids, grouped before it commits
        city.call(WATER if i % 2 else LIGHT, NOW - (6 - i) * HOUR)
        grouper.run(db, NOW + i * dt.timedelta(minutes=1))
    _show(db, late)
    assert late.id <= grouper.floor
    # Not before the sweep is due; then found.
    assert grouper.run(db, NOW + dt.timedelta(minutes=5)).added == 0
    soon = NOW + dt.timedelta(seconds=hotspots.REFRESH_ALL_SECONDS + 60)
    assert grouper.run(db, soon).added == 1
    groups = city.groups()
    assert {*(c.id for c in calls), late.id} in groups.values()
    assert grouper.run(db, soon + 2 * dt.timedelta(seconds=hotspots.REFRESH_ALL_SECONDS)).added == 0


def _hide(db, ticket):
    """As if ``ticket``'s transaction had not committed yet: out of every run's sight."""
    ticket.original_received_at = ticket.received_at
    ticket.received_at = NOW - 1000 * DAY
    db.flush()


def _show(db, ticket):
    ticket.received_at = ticket.original_received_at
    db.flush()


def test_incremental_agrees_with_rebuild(db, city):
    grouper = hotspots.Grouper()
    at = NOW - 10 * DAY
    for i, matter in enumerate([NOISE, WATER, NOISE, LIGHT, WATER, NOISE, LIGHT, WATER, LIGHT]):
        city.call(matter, at + i * HOUR)
        if i % 2:
            grouper.run(db, at + i * HOUR + dt.timedelta(minutes=5))
    grouper.run(db, NOW)
    before = city.memberships()
    assert len(city.groups()) == 3
    result = hotspots.rebuild(db, NOW)
    assert result.created == [] and result.deleted == []
    assert (result.added, result.removed, result.moved) == (0, 0, 0)
    assert sorted(result.kept) == sorted(city.groups())
    assert city.memberships() == before


def test_a_fresh_grouper_replays_the_stored_memberships(db, city, user):
    first = hotspots.Grouper()
    noise = [city.call(NOISE, NOW - (5 - i) * HOUR) for i in range(3)]
    water = [city.call(WATER, NOW - (5 - i) * HOUR) for i in range(3)]
    first.run(db, NOW)
    groups = city.groups()
    noise_id = next(h for h, ids in groups.items() if noise[0].id in ids)
    water_id = next(h for h, ids in groups.items() if water[0].id in ids)
    # A supervisor merges the water issue into the noise issue (an odd decision: it must
    # stick anyway).
    hotspots.merge(db, user("supervisor"), water_id, noise_id, "同一小区同一物业问题")
    # The first grouper learns of it (the stamp moved) and a new process's grouper replays it.
    later = city.call(NOISE, NOW + HOUR)
    fresh = hotspots.Grouper()
    result = fresh.run(db, NOW + 2 * HOUR)
    assert result.loaded
    assert city.groups() == {noise_id: {*(t.id for t in noise + water), later.id}}
    assert {fresh.index.group_of(t.id) for t in noise + water} == {("hot", noise_id)}
    assert first.run(db, NOW + 3 * HOUR).loaded
    assert {first.index.group_of(t.id) for t in [*noise, *water, later]} == {("hot", noise_id)}


def test_decisions_stick_through_rebuild(db, city, user):
    supervisor = user("supervisor")
    grouper = hotspots.Grouper()
    noise = [city.call(NOISE, NOW - (9 - i) * HOUR) for i in range(5)]
    water = [city.call(WATER, NOW - (9 - i) * HOUR) for i in range(3)]
    light = [city.call(LIGHT, NOW - (9 - i) * HOUR) for i in range(3)]
    grouper.run(db, NOW)
    groups = city.groups()

    def issue_of(ticket):
        return next(h for h, ids in groups.items() if ticket.id in ids)

    noise_id, water_id, light_id = issue_of(noise[0]), issue_of(water[0]), issue_of(light[0])
    new = hotspots.split(db, supervisor, noise_id, [noise[3].id, noise[4].id], title="夜间施工")
    hotspots.merge(db, supervisor, light_id, water_id, "同一批维修")
    hotspots.mark_handled(db, supervisor, water_id, "已召开联席会议")
    hotspots.rename(db, supervisor, noise_id, "丽发新城搅拌站噪音")
    after_decisions = city.memberships()
    assert all(pinned for _, pinned in after_decisions.values())

    result = hotspots.rebuild(db, NOW + HOUR)
    assert city.memberships() == after_decisions
    assert result.deleted == [] and result.created == []
    assert city.groups() == {
        noise_id: {t.id for t in noise[:3]},
        new.id: {noise[3].id, noise[4].id},
        water_id: {t.id for t in water + light},
    }
    db.expire_all()
    assert db.get(HotIssue, noise_id).title == "丽发新城搅拌站噪音"
    assert db.get(HotIssue, new.id).title == "夜间施工"
    assert db.get(HotIssue, water_id).state == HotIssueState.handled
    light_issue = db.get(HotIssue, light_id)
    assert light_issue.state == HotIssueState.merged and light_issue.merged_into_id == water_id
    assert light_issue.size == 0

    # A new noise call after all that: the grouper replays and puts it with its matter.
    later = city.call(NOISE, NOW + 2 * HOUR)
    hotspots.Grouper().run(db, NOW + 3 * HOUR)
    assert later.id in city.groups()[noise_id] | city.groups()[new.id]
    assert db.get(HotIssue, noise_id).title == "丽发新城搅拌站噪音"


def test_rebuild_drops_an_untouched_hot_issue_and_keeps_a_touched_one(db, city, user):
    lone = city.call(LIGHT, NOW - DAY)
    other = city.call(WATER, NOW - DAY)
    untouched = HotIssue(title="旧的", first_at=NOW, last_at=NOW, heat_parts={}, keywords=[])
    touched = HotIssue(
        title="督办员命名的", title_fixed=True, first_at=NOW, last_at=NOW, heat_parts={}
    )
    db.add_all([untouched, touched])
    db.flush()
    db.add_all(
        [
            HotIssueTicket(ticket_id=lone.id, hot_issue_id=untouched.id),
            HotIssueTicket(ticket_id=other.id, hot_issue_id=touched.id),
        ]
    )
    db.flush()
    result = hotspots.rebuild(db, NOW)
    assert result.deleted == [untouched.id]
    assert result.untouched_kept == [touched.id]
    assert db.get(HotIssue, untouched.id) is None
    assert db.get(HotIssue, touched.id) is not None
    assert city.memberships() == {}  # neither single ticket is a hot issue's any more
    audited = db.scalars(sa.select(AuditLog).where(AuditLog.action == "hotspot.rebuild")).one()
    assert audited.payload["deleted"] == [untouched.id]


@pytest.fixture
def two_issues(db, city):
    return hotspot_city.two_issues(db, city)


def _refused(kind, code, call):
    with pytest.raises(kind) as caught:
        call()
    assert caught.value.code == code
    assert any("\u4e00" <= ch <= "\u9fff" for ch in caught.value.message)


def test_decisions_refuse_bad_input(db, user, two_issues):
    supervisor = user("supervisor")
    noise, light, noise_tickets, light_tickets = two_issues
    _refused(
        Conflict, "HOTSPOT_MERGE_SELF", lambda: hotspots.merge(db, supervisor, noise, noise, "x")
    )
    _refused(
        ValidationFailed,
        "VALIDATION_FAILED",
        lambda: hotspots.merge(db, supervisor, noise, light, "  "),
    )
    _refused(NotFound, "HOTSPOT_NOT_FOUND", lambda: hotspots.merge(db, supervisor, 999999, 1, "x"))
    _refused(
        ValidationFailed, "HOTSPOT_SPLIT_NONE", lambda: hotspots.split(db, supervisor, noise, [])
    )
    _refused(
        ValidationFailed,
        "HOTSPOT_SPLIT_ALL",
        lambda: hotspots.split(db, supervisor, noise, [t.id for t in noise_tickets]),
    )
    _refused(
        ValidationFailed,
        "HOTSPOT_SPLIT_NOT_MEMBER",
        lambda: hotspots.split(db, supervisor, noise, [light_tickets[0].id]),
    )
    _refused(
        ValidationFailed, "VALIDATION_FAILED", lambda: hotspots.rename(db, supervisor, noise, "")
    )
    _refused(
        ValidationFailed,
        "VALIDATION_FAILED",
        lambda: hotspots.mark_handled(db, supervisor, noise, ""),
    )
    _refused(Conflict, "HOTSPOT_NOT_HANDLED", lambda: hotspots.reopen(db, supervisor, noise))
    hotspots.mark_handled(db, supervisor, noise, "已处理")
    _refused(
        Conflict,
        "HOTSPOT_ALREADY_HANDLED",
        lambda: hotspots.mark_handled(db, supervisor, noise, "再次"),
    )
    hotspots.reopen(db, supervisor, noise, "又有来电")
    assert noise.state == HotIssueState.open
    hotspots.merge(db, supervisor, light, noise, "同一事项")
    _refused(
        Conflict,
        "HOTSPOT_MERGE_INTO_MERGED",
        lambda: hotspots.merge(db, supervisor, noise, light, "x"),
    )
    _refused(Conflict, "HOTSPOT_MERGED", lambda: hotspots.rename(db, supervisor, light, "新"))


def test_only_supervisors_decide(db, user, two_issues):
    noise, light, _, _ = two_issues
    for name in ("dispatcher", "leader", "operator", "admin"):
        _refused(
            Forbidden,
            "HOTSPOT_FORBIDDEN",
            lambda name=name: hotspots.rename(db, user(name), noise, "新标题"),
        )
    hotspots.rename(db, user("supervisor"), noise, "督办改的标题")
    hotspots.mark_handled(db, user("supervisor"), light, "已处理")
    actions = db.execute(
        sa.select(AuditLog.action, AuditLog.target, AuditLog.actor_id)
        .where(AuditLog.action.startswith("hotspot."))
        .order_by(AuditLog.id)
    ).all()
    assert [(a, t) for a, t, _ in actions] == [
        ("hotspot.rename", str(noise.id)),
        ("hotspot.handle", str(light.id)),
    ]
    assert actions[0].actor_id == user("supervisor").id


def test_decisions_queue_events_after_commit(db, user, two_issues, app):
    noise, light, _, _ = two_issues
    heard = []
    publisher = app.extensions["hotline.events"]
    publisher.listeners.append(heard.append)
    try:
        hotspots.merge(db, user("supervisor"), light, noise, "同一事项")
        assert heard == []
        db.commit()
    finally:
        publisher.listeners.remove(heard.append)
    assert {m["hot_issue"] for m in heard if m["type"] == events_type()} == {noise.id, light.id}


def events_type():
    return hotspots.EVENT


def test_district_leaders_see_their_district_only(db, user, two_issues):
    noise, light, _, _ = two_issues  # 奎文区 and 潍城区
    page = Page(1, 50)
    leader = user("kuiwen-leader")
    filters = hotspots.parse_filters({}, leader, timezone="Asia/Shanghai")
    total, rows = hotspots.list_issues(db, leader, filters, page)
    assert [r.id for r in rows] == [noise.id]
    # Asking for another district does not widen it.
    filters = hotspots.parse_filters({"district": "370702"}, leader, timezone="Asia/Shanghai")
    assert [r.id for r in hotspots.list_issues(db, leader, filters, page)[1]] == [noise.id]
    _refused(
        Forbidden,
        "HOTSPOT_OUT_OF_SCOPE",
        lambda: hotspots.detail(db, leader, light.id, timezone="Asia/Shanghai"),
    )
    city_leader = user("leader")
    filters = hotspots.parse_filters({}, city_leader, timezone="Asia/Shanghai")
    assert {r.id for r in hotspots.list_issues(db, city_leader, filters, page)[1]} == {
        noise.id,
        light.id,
    }
    _refused(
        Forbidden,
        "HOTSPOT_VIEW_FORBIDDEN",
        lambda: hotspots.list_issues(db, user("operator"), filters, page),
    )


def test_list_filters(db, user, two_issues):
    noise, light, _, _ = two_issues
    viewer = user("supervisor")
    page = Page(1, 50)

    def ids(**args):
        filters = hotspots.parse_filters(args, viewer, timezone="Asia/Shanghai")
        return {r.id for r in hotspots.list_issues(db, viewer, filters, page)[1]}

    assert ids() == {noise.id, light.id}
    assert ids(district="370702") == {light.id}
    assert ids(category="01") == {noise.id, light.id}  # any level, by prefix
    assert ids(category="0102") == set()
    day = (NOW - HOUR).astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    assert ids(**{"from": day.isoformat(), "to": day.isoformat()}) == {noise.id, light.id}
    assert ids(**{"to": (day - dt.timedelta(days=2)).isoformat()}) == set()
    hotspots.mark_handled(db, viewer, light, "已处理")
    assert ids(state="open") == {noise.id}
    assert ids(state="handled") == {light.id}
    assert ids(q="曹家巷") <= {light.id}
    with pytest.raises(ValidationFailed) as caught:
        hotspots.parse_filters({"from": "2026-13-01"}, viewer, timezone="Asia/Shanghai")
    assert "from" in caught.value.details


def test_detail_has_tickets_timeline_and_units(db, user, two_issues):
    noise, _, noise_tickets, _ = two_issues
    hotspots.rename(db, user("supervisor"), noise, "搅拌站噪音")
    found = hotspots.detail(db, user("dispatcher"), noise.id, timezone="Asia/Shanghai")
    assert [t["number"] for t in found["tickets"]] == [t.number for t in noise_tickets]
    assert found["tickets"][0]["status"]["label"] == "已受理"
    assert sum(d["count"] for d in found["timeline"]["days"]) == 4
    labels = [m["label"] for m in found["timeline"]["moments"]]
    assert labels[0] == "首件工单" and "列为热点问题" in labels and "重命名" in labels
    assert found["units"] == []  # none dispatched yet
    assert found["issue"]["title"] == "搅拌站噪音"

    # Two dispatched to 东关街道 (one signed), one assisted by 城管局: the units and results.
    from dispatch import operations as ops
    from hotline.models import Unit

    def unit(code):
        return db.scalars(sa.select(Unit).where(Unit.code == code)).one()

    dispatcher = user("dispatcher")
    street, cgj = unit("U-S-370705001"), unit("U-CGJ")
    ops.dispatch(db, dispatcher, noise_tickets[0], lead=street, assists=[cgj], now=NOW)
    ops.dispatch(db, dispatcher, noise_tickets[1], lead=street, now=NOW)
    ops.sign(db, user("dongguan"), noise_tickets[0], now=NOW + HOUR)
    db.flush()
    found = hotspots.detail(db, user("dispatcher"), noise.id, timezone="Asia/Shanghai")
    assert [(u["code"], u["tickets"], u["led"], u["signed"]) for u in found["units"]] == [
        ("U-S-370705001", 2, 2, 1),
        ("U-CGJ", 1, 0, 0),
    ]
    assert found["tickets"][0]["unit"] == street.name


def test_the_board_shows_the_hottest_open_issues_of_its_room(db, app, user, two_issues):
    from dashboards.publisher import BoardPublisher
    from dashboards.snapshots import Board, month_rates

    noise, light, _, _ = two_issues
    board = Board(db, app.config, now=NOW)
    month = month_rates(db, app.config, force=True, now=NOW)
    rooms = board.snapshots(["city", "district:370705"], month=month)
    city_ids = [i["id"] for i in rooms["city"]["hot_issues"]]
    assert set(city_ids) == {noise.id, light.id}
    (only,) = rooms["district:370705"]["hot_issues"]
    assert only == {
        "id": noise.id,
        "title": noise.title,
        "size": 4,
        "heat": round(noise.heat, 1),
        "recent": 4,
        "previous": 0,
    }
    # A handled one leaves the panel; the event brings the update to its rooms.
    hotspots.mark_handled(db, user("supervisor"), noise, "已处理")
    (message,) = [m for m in db.info["pending_events"] if m.get("hot_issue") == noise.id][-1:]
    sent = []
    BoardPublisher(app, emit_update=lambda room, payload: sent.append((room, payload))).flush(
        [message]
    )
    by_room = dict(sent)
    assert set(by_room) == {"city", "district:370705"}
    assert by_room["district:370705"]["hot_issues"] == []
    assert [i["id"] for i in by_room["city"]["hot_issues"]] == [light.id]


def test_the_boards_hot_issues_take_two_queries_for_any_number_of_rooms(
    db, city, two_issues, count_queries
):
    noise, light, _, _ = two_issues
    extra = [city.call(WATER, NOW - (3 - i) * HOUR) for i in range(3)]
    hotspots.Grouper().run(db, NOW)
    water_id = next(h for h, ids in city.groups().items() if extra[0].id in ids)
    rooms = [None, "370705", "370702", "370703"]
    with count_queries() as counted:
        found = hotspots.top_open_of_rooms(db, rooms, now=NOW, limit=1)
    assert counted.count == 2, counted
    hottest = max([noise, light, db.get(HotIssue, water_id)], key=lambda i: (i.heat, -i.id))
    assert [i["id"] for i in found[None]] == [hottest.id]
    kuiwen = max([noise, db.get(HotIssue, water_id)], key=lambda i: (i.heat, -i.id))
    assert [i["id"] for i in found["370705"]] == [kuiwen.id]
    assert [i["id"] for i in found["370702"]] == [light.id]
    assert found["370703"] == []
    assert found["370702"][0]["recent"] == 3 and found["370702"][0]["previous"] == 0
    assert hotspots.top_open(db, "370702", now=NOW) == found["370702"]


def test_only_one_grouper_runs_at_a_time(db, app, city):
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's (SQLite has one writer anyway)")
    for i in range(3):
        city.call(NOISE, NOW - (3 - i) * HOUR)
    other = app.extensions["hotline.db"].kw["bind"].engine.connect()
    try:
        other.execute(sa.select(sa.func.pg_advisory_lock(hotspots.LOCK_KEY)))
        grouper = hotspots.Grouper()
        assert grouper.run(db, NOW).skipped
        assert grouper.index is None and city.groups() == {}
        other.execute(sa.select(sa.func.pg_advisory_unlock(hotspots.LOCK_KEY)))
        assert not grouper.run(db, NOW).skipped
        assert len(city.groups()) == 1
    finally:
        other.close()


def test_heat_follows_the_time_and_old_tickets_leave_the_index(db, city):
    grouper = hotspots.Grouper()
    calls = [city.call(NOISE, NOW - (3 - i) * HOUR) for i in range(3)]
    (hot_id,) = grouper.run(db, NOW).created
    issue = db.get(HotIssue, hot_id)
    fresh_heat = issue.heat
    # Ten days later, nothing new: at the next full refresh the growth is gone.
    later = NOW + 10 * DAY
    grouper.refreshed_at = later - dt.timedelta(seconds=hotspots.REFRESH_ALL_SECONDS)
    result = grouper.run(db, later)
    assert result.refreshed >= 1 and not result.loaded
    assert db.get(HotIssue, hot_id).heat < fresh_heat
    # Past the window the tickets leave the index; the hot issue keeps them.
    window = settings_days(db)
    grouper.run(db, NOW + (window + 1) * DAY)
    assert all(grouper.index.group_of(c.id) is None for c in calls)
    assert city.groups() == {hot_id: {c.id for c in calls}}


def settings_days(db):
    from hotline import settings

    return settings.get(db, "hotspot.window_days")


def test_the_list_reads_a_page_in_a_fixed_number_of_queries(db, user, two_issues, count_queries):
    noise, light, _, _ = two_issues
    supervisor = user("supervisor")
    for issue in (noise, light):
        hotspots.mark_handled(db, supervisor, issue, "已处理")
    db.expire_all()
    filters = hotspots.parse_filters({"state": "all"}, supervisor, timezone="Asia/Shanghai")
    with count_queries() as counted:
        _, rows = hotspots.list_issues(db, supervisor, filters, Page(1, 50))
        listed = [hotspots.issue_to_dict(r) for r in rows]
    assert len(listed) == 2 and all(item["handled"]["by"] for item in listed)
    assert counted.count == 2, counted  # the total and the page, relations joined


def test_a_district_leader_sees_only_their_districts_tickets_of_a_hot_issue(
    db, user, city, two_issues
):
    """A hot issue mostly elsewhere with one ticket in 奎文区: its leader sees the issue and
    that ticket only; a city leader sees it whole."""
    _, light, _, light_tickets = two_issues  # 潍城区
    near = city.call((LIGHT[0], LIGHT[1], "370705001001"), NOW + HOUR)
    alone = HotIssue(title="单件", first_at=NOW, last_at=NOW, heat_parts={}, keywords=[])
    db.add(alone)
    db.flush()
    db.add(HotIssueTicket(ticket_id=near.id, hot_issue_id=alone.id))
    db.flush()
    hotspots.merge(db, user("supervisor"), alone, light, "同一事项")
    leader = user("kuiwen-leader")
    filters = hotspots.parse_filters({}, leader, timezone="Asia/Shanghai")
    assert light.id in {r.id for r in hotspots.list_issues(db, leader, filters, Page(1, 50))[1]}
    found = hotspots.detail(db, leader, light.id, timezone="Asia/Shanghai")
    assert found["scoped"] and [t["id"] for t in found["tickets"]] == [near.id]
    assert found["issue"]["size"] == 4
    whole = hotspots.detail(db, user("leader"), light.id, timezone="Asia/Shanghai")
    assert not whole["scoped"] and len(whole["tickets"]) == 4


def test_a_lower_min_size_makes_hot_issues_of_the_groups_already_there(db, city, user):
    from hotline import settings

    grouper = hotspots.Grouper()
    pair = [city.call(NOISE, NOW - (2 - i) * HOUR) for i in range(2)]
    assert not grouper.run(db, NOW).created
    settings.update(db, user("admin"), {"hotspot.min_size": 2})
    result = grouper.run(db, NOW + HOUR)
    assert result.loaded and len(result.created) == 1
    assert list(city.groups().values()) == [{t.id for t in pair}]


def test_two_groupers_take_turns_without_replaying_or_doubling(db, city):
    # Two schedulers' groupers run in turn: neither's own writes make either replay, and a
    # group the one made a hot issue is joined, not made again, by the other.
    first, second = hotspots.Grouper(), hotspots.Grouper()
    noise = [city.call(NOISE, NOW - (5 - i) * HOUR) for i in range(2)]
    assert first.run(db, NOW - 3 * HOUR).loaded
    assert second.run(db, NOW - 3 * HOUR).loaded
    noise.append(city.call(NOISE, NOW - 2 * HOUR))
    made = first.run(db, NOW - 2 * HOUR)
    assert not made.loaded and len(made.created) == 1
    hot_id = made.created[0]
    noise.append(city.call(NOISE, NOW - HOUR))
    joined = second.run(db, NOW - HOUR)
    assert not joined.loaded and joined.created == [] and joined.grown == [hot_id]
    assert city.groups() == {hot_id: {t.id for t in noise}}
    assert second.index.group_of(noise[0].id) == ("hot", hot_id)
    noise.append(city.call(NOISE, NOW))
    again = first.run(db, NOW)
    assert not again.loaded and again.grown == [hot_id]
    assert city.groups() == {hot_id: {t.id for t in noise}}


def test_a_rolled_back_run_makes_the_grouper_replay(db, city):
    grouper = hotspots.Grouper()
    for i in range(3):
        city.call(NOISE, NOW - (3 - i) * HOUR)
    db.commit()
    assert len(grouper.run(db, NOW).created) == 1
    db.rollback()
    assert city.groups() == {}
    result = grouper.run(db, NOW)
    assert result.loaded and len(result.created) == 1 and len(city.groups()) == 1


def test_the_replay_reads_only_what_the_engine_reads(db, city, make_ticket):
    long = city.call((NOISE[0], NOISE[1] * 40, NOISE[2]), NOW - HOUR)
    assert len(long.content) > engine.TEXT_CHARS * 2
    (row,) = hotspots._window_rows(db, NOW - DAY)
    assert row.content == long.content[: engine.TEXT_CHARS * 2]


def test_a_decision_waits_briefly_for_a_run_then_refuses(db, app, user, two_issues, monkeypatch):
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's (SQLite has one writer anyway)")
    noise, _, _, _ = two_issues
    # The test's transaction ran the grouper, so it holds the grouping lock (as a long run
    # would): a decision from another connection waits DECISION_WAIT_SECONDS, then refuses.
    monkeypatch.setattr(hotspots, "DECISION_WAIT_SECONDS", 0.3)
    other = sa.orm.Session(bind=app.extensions["hotline.db"].kw["bind"].engine)
    try:
        started = time.monotonic()
        with pytest.raises(Conflict) as refused:
            hotspots.rename(other, user("supervisor"), noise.id, "丽发新城噪音")
        assert refused.value.code == "HOTSPOT_BUSY" and "稍后" in refused.value.message
        assert refused.value.status == 409 and refused.value.retry_after >= 1
        assert 0.3 <= time.monotonic() - started < 2
    finally:
        other.rollback()
        other.close()


def test_a_handled_hot_issue_keeps_its_tickets_through_a_rebuild(db, city, user):
    noise = [city.call(NOISE, NOW - (9 - i) * HOUR) for i in range(6)]
    (first,) = hotspots.Grouper().run(db, NOW).created
    # Half of the matter's tickets in a later hot issue (as an older grouping left them),
    # which a supervisor marks handled: a rebuild groups all six together again.
    later = HotIssue(
        title="丽发新城搅拌站噪音",
        state=HotIssueState.open,
        keywords=[],
        heat_parts={},
        first_at=NOW,
        last_at=NOW,
        created_at=NOW,
        updated_at=NOW,
    )
    db.add(later)
    db.flush()
    db.execute(
        sa.update(HotIssueTicket)
        .where(HotIssueTicket.ticket_id.in_([t.id for t in noise[3:]]))
        .values(hot_issue_id=later.id)
    )
    hotspots.mark_handled(db, user("supervisor"), later.id, "已约谈施工单位")
    assert all(p for t, (h, p) in city.memberships().items() if h == later.id)
    hotspots.rebuild(db, NOW + HOUR)
    assert city.groups()[later.id] == {t.id for t in noise[3:]}
    assert first in city.groups()
    db.expire_all()
    assert db.get(HotIssue, later.id).size == 3
