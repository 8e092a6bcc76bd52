"""吹哨报到 (dispatch/whistle.py, dispatch/whistle_timers.py): the street leading a ticket
summons departments, each reports and gives its opinion on its own clock; summonses end with
the ticket's handling; timers fire once each, catch up, and reach the supervising levels.

Moments are Asia/Shanghai wall-clock times worked out by hand: a whistle at 09:00 with the
default limits (报到 1 h, 反馈 24 h, 督办 every 24 h, warnings at 80 %) has 报到预警 09:48,
报到超时 10:00, 反馈预警 next day 04:12, 反馈超时 next day 09:00 and 吹哨督办 levels 1–3 on the
following three days at 09:00.
"""

import datetime as dt
import hashlib
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from dispatch import access, timers, whistle, whistle_timers
from dispatch import operations as ops
from hotline import attachments, settings
from hotline.enums import TicketStatus
from hotline.errors import Conflict, Forbidden, ValidationFailed
from hotline.models import (
    Attachment,
    Notification,
    Summons,
    SummonsFiring,
    TicketEvent,
    Unit,
    User,
)

TZ = ZoneInfo("Asia/Shanghai")
SLA = timers.Settings()
DONGGUAN = "U-S-370705001"


def local(month, day, hour=9, minute=0):
    return dt.datetime(2026, month, day, hour, minute, tzinfo=TZ).astimezone(dt.UTC)


def show(moment):
    return moment.astimezone(TZ).strftime("%m-%d %H:%M")


T0 = local(3, 10)  # a Tuesday


@pytest.fixture
def u(db):
    names = ["operator", "dispatcher", "dongguan", "cgj", "water", "sthj", "supervisor"]
    return {n: db.scalars(sa.select(User).where(User.username == n)).one() for n in names}


def unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


@pytest.fixture
def signed(db, u, make_ticket):
    """A ticket led by 东关街道 and signed by it at ``at``."""

    def make(at=T0 - dt.timedelta(minutes=30), lead=DONGGUAN):
        ticket = make_ticket(
            u["operator"], category="010103", area="370705001", now=at - dt.timedelta(minutes=5)
        )
        ops.dispatch(db, u["dispatcher"], ticket, lead=unit(db, lead), now=at)
        handler = u["dongguan"] if lead == DONGGUAN else u["cgj"]
        ops.sign(db, handler, ticket, now=at)
        db.flush()
        return ticket

    return make


def summonses(db, ticket):
    db.expire_all()
    return db.scalars(
        sa.select(Summons).where(Summons.ticket_id == ticket.id).order_by(Summons.id)
    ).all()


def blow(db, u, ticket, codes=("U-CGJ",), at=T0, reason="占道经营，需城管执法和供水配合"):
    made = whistle.whistle(
        db, u["dongguan"], ticket, units=[unit(db, c) for c in codes], reason=reason, now=at
    )
    db.flush()
    return made


def events(db, ticket, action):
    return db.scalars(
        sa.select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.action == action)
        .order_by(TicketEvent.id)
    ).all()


def inbox(db, code, ticket):
    return [
        (n.kind, n.title)
        for n in db.scalars(
            sa.select(Notification)
            .where(Notification.ticket_id == ticket.id, Notification.unit_id == unit(db, code).id)
            .order_by(Notification.id)
        )
    ]


# -- operations -----------------------------------------------------------------------------------


def test_whistle_summons_each_department_with_its_own_deadlines(db, u, signed):
    ticket = signed()
    version = ticket.version
    cgj, water = blow(db, u, ticket, codes=("U-CGJ", "U-WATER"))
    for s in (cgj, water):
        assert show(s.summoned_at) == "03-10 09:00"
        assert show(s.report_due) == "03-10 10:00"
        assert show(s.opinion_due) == "03-11 09:00"
        assert show(s.next_due_at) == "03-10 09:48"  # the 报到预警
        assert s.summoning_unit_id == unit(db, DONGGUAN).id
        assert s.reported_at is s.opinion_at is s.cancelled_at is None
    # One event per department, each in that department's record; the street stays the lead.
    recorded = events(db, ticket, "whistle")
    assert [e.unit_id for e in recorded] == [unit(db, "U-CGJ").id, unit(db, "U-WATER").id]
    assert recorded[0].payload["unit_name"] == "潍坊市城市管理局"
    assert recorded[0].reason == "占道经营，需城管执法和供水配合"
    assert ticket.status == TicketStatus.signed
    assert ticket.lead_unit.code == DONGGUAN
    assert ticket.version == version + 1
    assert inbox(db, "U-CGJ", ticket) == [("summons", f"【吹哨报到】工单 {ticket.number}")]


def test_whistle_refusals_write_nothing(db, u, signed):
    ticket = signed()
    cases = [
        (dict(units=[]), ValidationFailed, None),
        (dict(units=[unit(db, "U-CGJ")], reason="  "), ValidationFailed, None),
        (dict(units=[unit(db, "U-D-370705")]), ValidationFailed, "WHISTLE_UNIT_INVALID"),
        (dict(units=[unit(db, "U-CGJ"), unit(db, "U-CGJ")]), ValidationFailed, None),
    ]
    for kwargs, error, code in cases:
        kwargs.setdefault("reason", "需要部门协助")
        with pytest.raises(error) as caught:
            whistle.whistle(db, u["dongguan"], ticket, now=T0, **kwargs)
        if code:
            assert caught.value.code == code
    # Only the lead's handler blows the whistle.
    with pytest.raises(Forbidden) as caught:
        whistle.whistle(db, u["cgj"], ticket, units=[unit(db, "U-WATER")], reason="协助", now=T0)
    assert caught.value.code == "TICKET_NOT_ASSIGNED_TO_UNIT"
    assert summonses(db, ticket) == []
    assert events(db, ticket, "whistle") == []
    # Summoned once, not again while the summons is open (a retried form makes no second).
    blow(db, u, ticket)
    with pytest.raises(Conflict) as caught:
        blow(db, u, ticket, codes=("U-WATER", "U-CGJ"))
    assert caught.value.code == "SUMMONS_ALREADY_OPEN"
    assert len(summonses(db, ticket)) == 1


def test_only_a_street_or_district_government_lead_blows_the_whistle(db, u, signed):
    ticket = signed(lead="U-CGJ")
    with pytest.raises(Forbidden) as caught:
        whistle.whistle(db, u["cgj"], ticket, units=[unit(db, "U-WATER")], reason="协助", now=T0)
    assert caught.value.code == "WHISTLE_LEAD_KIND"
    assert "街道乡镇或区政府" in caught.value.message
    assert summonses(db, ticket) == []


def test_report_then_opinion_with_photo(db, u, signed, png):
    png = png()
    ticket = signed()
    blow(db, u, ticket)
    # Only the summoned department acts on its summons.
    for name in ("water", "dongguan"):
        with pytest.raises(Forbidden) as caught:
            whistle.report_summons(db, u[name], ticket, now=T0)
        assert caught.value.code == "SUMMONS_NOT_FOR_UNIT"
    with pytest.raises(Conflict) as caught:
        whistle.give_opinion(db, u["cgj"], ticket, opinion="已处理", now=T0)
    assert caught.value.code == "SUMMONS_NOT_REPORTED"

    whistle.report_summons(db, u["cgj"], ticket, now=T0 + dt.timedelta(minutes=40))
    db.flush()
    (s,) = summonses(db, ticket)
    assert show(s.reported_at) == "03-10 09:40"
    assert s.reported_by_id == u["cgj"].id
    assert show(s.next_due_at) == "03-11 04:12"  # the 报到 timers are gone
    assert events(db, ticket, "report_summons")[0].payload["late"] is False
    with pytest.raises(Conflict) as caught:
        whistle.report_summons(db, u["cgj"], ticket, now=T0 + dt.timedelta(hours=1))
    assert caught.value.code == "SUMMONS_ALREADY_REPORTED"

    with pytest.raises(ValidationFailed):
        whistle.give_opinion(db, u["cgj"], ticket, opinion="", now=T0 + dt.timedelta(hours=2))
    photo = attachments.Photo("现场.png", "image/png", png, hashlib.sha256(png).hexdigest())
    whistle.give_opinion(
        db,
        u["cgj"],
        ticket,
        opinion="已派执法中队到场，责令摊主当日撤离",
        photos=[photo],
        now=local(3, 11, 10),
    )
    db.flush()
    (s,) = summonses(db, ticket)
    assert show(s.opinion_at) == "03-11 10:00"
    assert s.opinion == "已派执法中队到场，责令摊主当日撤离"
    assert s.next_due_at is None
    event = events(db, ticket, "give_opinion")[0]
    assert event.payload["late"] is True  # after 03-11 09:00
    assert event.unit_id == unit(db, "U-CGJ").id
    stored = db.scalars(sa.select(Attachment).where(Attachment.event_id == event.id)).all()
    assert [a.purpose for a in stored] == ["opinion"]
    assert whistle_timers.lateness(s, local(3, 12)) == {"report_late": False, "opinion_late": True}
    # Done: no longer open, so the department may be summoned again.
    blow(db, u, ticket, at=local(3, 11, 11))
    assert len(summonses(db, ticket)) == 2


def test_withdraw(db, u, signed):
    ticket = signed()
    blow(db, u, ticket, codes=("U-CGJ", "U-WATER"))
    with pytest.raises(Forbidden):
        whistle.withdraw_summons(
            db, u["cgj"], ticket, unit=unit(db, "U-CGJ"), reason="撤回", now=T0
        )
    with pytest.raises(ValidationFailed):
        whistle.withdraw_summons(
            db, u["dongguan"], ticket, unit=unit(db, "U-CGJ"), reason="", now=T0
        )
    at = T0 + dt.timedelta(hours=2)
    whistle.withdraw_summons(
        db, u["dongguan"], ticket, unit=unit(db, "U-CGJ"), reason="街道已自行协调解决", now=at
    )
    db.flush()
    cgj, water = summonses(db, ticket)
    assert cgj.cancelled_at == at and cgj.cancel_reason == "街道已自行协调解决"
    assert cgj.next_due_at is None and cgj.opinion_at is None
    assert water.cancelled_at is None
    event = events(db, ticket, "withdraw_summons")[0]
    assert event.payload["report_late"] is True  # never reported, withdrawn after 10:00
    assert event.payload["opinion_late"] is False
    with pytest.raises(Forbidden):
        whistle.report_summons(db, u["cgj"], ticket, now=at)
    with pytest.raises(Conflict) as caught:
        whistle.withdraw_summons(
            db, u["dongguan"], ticket, unit=unit(db, "U-CGJ"), reason="再撤", now=at
        )
    assert caught.value.code == "SUMMONS_NOT_OPEN"
    assert ("summons", f"【吹哨已撤回】工单 {ticket.number}") in inbox(db, "U-CGJ", ticket)


def test_finishing_the_ticket_ends_open_summonses_keeping_lateness(db, u, signed):
    ticket = signed()
    blow(db, u, ticket, codes=("U-CGJ", "U-WATER", "U-STHJ"))
    whistle.report_summons(db, u["water"], ticket, now=T0 + dt.timedelta(minutes=20))
    whistle.give_opinion(
        db, u["water"], ticket, opinion="已检修管网", now=T0 + dt.timedelta(hours=1)
    )
    whistle.report_summons(db, u["sthj"], ticket, now=T0 + dt.timedelta(minutes=30))
    ops.contact(db, u["dongguan"], ticket, note="已联系", now=T0 + dt.timedelta(hours=2))
    at = T0 + dt.timedelta(hours=3)
    ops.finish(db, u["dongguan"], ticket, result="已清理占道摊点", now=at)
    db.flush()
    cgj, water, sthj = summonses(db, ticket)
    assert water.cancelled_at is None and water.opinion_at is not None  # done before
    for s in (cgj, sthj):
        assert s.cancelled_at == at
        assert s.cancel_reason == "工单已办结，吹哨报到随之结束"
        assert s.next_due_at is None
    finish = events(db, ticket, "finish")[0]
    assert finish.payload["summonses_ended"] == [
        {"summons": cgj.id, "unit": "U-CGJ", "report_late": True, "opinion_late": False},
        {"summons": sthj.id, "unit": "U-STHJ", "report_late": False, "opinion_late": False},
    ]
    assert ("summons_ended", f"【吹哨报到结束】工单 {ticket.number}") in inbox(db, "U-CGJ", ticket)
    # The departments still see the ticket they were summoned to; another does not.
    assert access.can_view(db, u["cgj"], ticket)
    assert access.can_view(db, u["water"], ticket)


def test_designating_another_unit_ends_the_summonses(db, u, signed):
    ticket = signed()
    blow(db, u, ticket)
    ops.designate(db, u["dispatcher"], ticket, lead=unit(db, "U-CGJ"), note="改由城管局", now=T0)
    db.flush()
    (s,) = summonses(db, ticket)
    assert s.cancelled_at == T0
    assert "其他单位承办" in s.cancel_reason


def test_access_summoned_department_sees_others_do_not(db, u, signed):
    ticket = signed()
    assert not access.can_view(db, u["cgj"], ticket)
    blow(db, u, ticket)
    assert access.can_view(db, u["cgj"], ticket)
    assert not access.can_view(db, u["water"], ticket)
    assert ticket.number in access.visible_numbers(db, u["cgj"], [ticket.number])


def test_limits_come_from_the_settings(db, u, signed):
    ticket = signed()
    settings.update(db, u["supervisor"], {"whistle.report_hours": 2, "whistle.opinion_hours": 48})
    (s,) = blow(db, u, ticket)
    assert show(s.report_due) == "03-10 11:00"
    assert show(s.opinion_due) == "03-12 09:00"


# -- timers -------------------------------------------------------------------------------------


def tick(db, now):
    result = whistle_timers.tick(db, now, SLA)
    db.flush()
    db.expire_all()
    return result


def fired(db, summons):
    rows = db.scalars(
        sa.select(SummonsFiring)
        .where(SummonsFiring.summons_id == summons.id)
        .order_by(SummonsFiring.due_at, SummonsFiring.id)
    )
    return [(f.kind.value, show(f.due_at), f.level) for f in rows]


def test_timers_fire_once_each_in_order(db, u, signed):
    ticket = signed()
    (s,) = blow(db, u, ticket)
    tick(db, T0 + dt.timedelta(minutes=47))
    assert fired(db, s) == []
    tick(db, T0 + dt.timedelta(minutes=48))
    tick(db, T0 + dt.timedelta(minutes=49))  # a second tick fires nothing again
    assert fired(db, s) == [("report_warning", "03-10 09:48", None)]
    tick(db, T0 + dt.timedelta(hours=1))
    assert fired(db, s)[-1] == ("report_overdue", "03-10 10:00", None)
    # The overdue reaches the street too; the warning only the department.
    assert inbox(db, "U-CGJ", ticket)[1:] == [
        ("report_warning", f"【报到预警】工单 {ticket.number}"),
        ("report_overdue", f"【报到超时】工单 {ticket.number}"),
    ]
    assert ("report_overdue", f"【报到超时】工单 {ticket.number}") in inbox(db, DONGGUAN, ticket)
    assert ("report_warning", f"【报到预警】工单 {ticket.number}") not in inbox(
        db, DONGGUAN, ticket
    )
    timer_events = events(db, ticket, "report_overdue")
    assert len(timer_events) == 1 and timer_events[0].unit_id == unit(db, "U-CGJ").id
    assert timer_events[0].actor_id is None


def test_catch_up_after_downtime_fires_everything_due_with_lateness(db, u, signed):
    ticket = signed()
    (s,) = blow(db, u, ticket)
    result = tick(db, local(3, 14, 12))  # the scheduler was down four days
    assert result.fired == 7
    assert fired(db, s) == [
        ("report_warning", "03-10 09:48", None),
        ("report_overdue", "03-10 10:00", None),
        ("opinion_warning", "03-11 04:12", None),
        ("opinion_overdue", "03-11 09:00", None),
        ("summons_escalation", "03-12 09:00", 1),
        ("summons_escalation", "03-13 09:00", 2),
        ("summons_escalation", "03-14 09:00", 3),
    ]
    db.refresh(s)
    assert s.escalation_level == 3
    assert s.next_due_at is None
    late = db.scalars(
        sa.select(SummonsFiring.lateness_seconds)
        .where(SummonsFiring.summons_id == s.id)
        .order_by(SummonsFiring.due_at)
    ).all()
    assert late[-3:] == [51 * 3600, 27 * 3600, 3 * 3600]
    # 督办 reaches the supervising levels: the hotline centre, the department's own
    # leadership (a city department is its own), the mayor's office.
    titles = [t for _, t in inbox(db, "U-HOTLINE", ticket)]
    assert f"【吹哨督办】工单 {ticket.number}" in titles
    assert [t for k, t in inbox(db, "U-SZFB", ticket) if k == "summons_escalation"]
    # Run again: nothing fires twice, even with the check mark moved back.
    db.execute(sa.update(Summons).where(Summons.id == s.id).values(timers_checked_until=T0))
    db.execute(sa.update(Summons).where(Summons.id == s.id).values(next_due_at=T0))
    assert tick(db, local(3, 14, 13)).fired == 0
    assert len(fired(db, s)) == 7


def test_reporting_and_the_opinion_stop_their_timers(db, u, signed):
    ticket = signed()
    (s,) = blow(db, u, ticket)
    whistle.report_summons(db, u["cgj"], ticket, now=T0 + dt.timedelta(minutes=10))
    whistle.give_opinion(db, u["cgj"], ticket, opinion="已处理", now=T0 + dt.timedelta(hours=3))
    db.flush()
    assert tick(db, local(3, 20)).tickets == 0
    assert fired(db, s) == []


# -- limits, deactivation, the supervisors' list ------------------------------------------------


def test_a_report_limit_longer_than_the_opinion_limit_is_refused(db, u, signed):
    check = whistle_timers.check_settings
    with pytest.raises(ValidationFailed) as caught:
        settings.update(db, u["supervisor"], {"whistle.report_hours": 48}, check=check)
    assert "报到时限（48 小时）不能长于反馈时限（24 小时）" in caught.value.message
    assert settings.get(db, "whistle.report_hours") == 1
    # Written behind the page's back (no check): blowing the whistle refuses, writes nothing.
    settings.update(db, u["supervisor"], {"whistle.report_hours": 48})
    ticket = signed()
    with pytest.raises(Conflict) as caught:
        blow(db, u, ticket)
    assert caught.value.code == "WHISTLE_LIMITS_INVALID"
    assert summonses(db, ticket) == []


def test_deactivating_a_summoned_department_ends_its_open_summonses(db, u, signed):
    from dispatch import units

    admin = db.scalars(sa.select(User).where(User.username == "admin")).one()
    ticket, answered = signed(), signed()
    (open_one,) = blow(db, u, ticket, codes=("U-CGJ", "U-WATER"))[:1]
    blow(db, u, answered)
    whistle.report_summons(db, u["cgj"], answered, now=T0 + dt.timedelta(minutes=10))
    whistle.give_opinion(db, u["cgj"], answered, opinion="已处理", now=T0 + dt.timedelta(hours=1))
    db.flush()
    version = ticket.version
    at = T0 + dt.timedelta(hours=2)
    result = units.deactivate_unit(db, admin, unit(db, "U-CGJ"), now=at)
    db.flush()
    assert [s.id for s in result.summonses_ended] == [open_one.id]
    assert result.as_dict()["summonses_ended"] == 1
    cgj, water = summonses(db, ticket)
    assert cgj.cancelled_at == at and "已停用" in cgj.cancel_reason
    assert cgj.next_due_at is None and not cgj.is_open
    assert water.is_open  # another department's summons goes on
    (event,) = events(db, ticket, "end_summons")
    assert event.unit_id == cgj.unit_id and event.actor_id == admin.id
    assert event.payload["unit"] == "U-CGJ" and "已停用" in event.reason
    assert ticket.version > version
    assert ("summons_ended", f"【吹哨报到结束】工单 {ticket.number}") in inbox(db, DONGGUAN, ticket)
    # The answered summons is history, not ended again.
    (done,) = summonses(db, answered)
    assert done.cancelled_at is None and events(db, answered, "end_summons") == []
    # Nothing left to fire for the deactivated department; the other's timers go on.
    tick(db, T0 + dt.timedelta(days=5))
    assert fired(db, cgj) == [] and fired(db, water) != []


def test_supervisors_list_is_limited_to_the_leaders_district(db, u, signed, make_ticket):
    leader = db.scalars(sa.select(User).where(User.username == "kuiwen-leader")).one()
    mine = signed()
    elsewhere = make_ticket(u["operator"], category="010103", area="370702001", now=T0)
    ops.dispatch(db, u["dispatcher"], elsewhere, lead=unit(db, DONGGUAN), now=T0)
    ops.sign(db, u["dongguan"], elsewhere, now=T0)
    blow(db, u, mine)
    blow(db, u, elsewhere)
    shown = {s.ticket_id for s in whistle.listing(db, leader, T0, "all")}
    assert mine.id in shown and elsewhere.id not in shown
    everyone = {s.ticket_id for s in whistle.listing(db, u["supervisor"], T0, "all")}
    assert {mine.id, elsewhere.id} <= everyone
