"""办结审核 (dispatch.reply_review and the operations finish / approve_reply / return_reply):
the three modes and the per-category rules, the deterministic sample, what 待审核 holds back
(callback, the citizen's text and reply, timers), approval starting the callback clock, and a
return that keeps the result and the deadlines."""

import datetime as dt

import pytest
import sqlalchemy as sa

from dispatch import calendar, citizen_tracking, reply_review, review_schemas, schemas, timers
from dispatch import operations as ops
from hotline import settings
from hotline.db import utcnow
from hotline.enums import ReviewMode, Role, TicketStatus, TimerKind, UnitKind
from hotline.errors import Conflict, Forbidden, ValidationFailed
from hotline.models import (
    AuditLog,
    Category,
    Notification,
    OutboxMessage,
    ReviewRule,
    Ticket,
    TicketEvent,
    TimerFiring,
    Unit,
)
from tests.dispatch.common import DONGGUAN, PHONE, STREETLIGHT, local

S = TicketStatus

#: A reply that only acknowledges the request (the automatic check flags it).
POOR = "您反映的问题已收悉。"
#: A reply that says what was done and with what result.
GOOD = (
    "经现场核查，小区门口路灯因线路老化损坏，我街道已于11月17日组织维修人员更换线路和灯具，"
    "路灯已恢复照明，并已电话告知诉求人。"
)


@pytest.fixture(autouse=True)
def _shipped_default(shipped_review_default):
    """These tests see the review default the product ships (``flagged``)."""


def unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


def category(db, code):
    return db.scalars(sa.select(Category).where(Category.code == code)).one()


@pytest.fixture
def people(user):
    return {name: user(name) for name in ("operator", "dispatcher", "dongguan", "supervisor")}


@pytest.fixture
def contacted(db, people, make_ticket):
    """``contacted(now=…)`` → a streetlight ticket of 东关街道, signed and contacted."""

    def make(at=None, **overrides):
        at = at or local(17, 9)
        ticket = make_ticket(
            people["operator"], category=STREETLIGHT, area="370705001", **overrides
        )
        ops.dispatch(db, people["dispatcher"], ticket, lead=unit(db, DONGGUAN), now=at)
        ops.sign(db, people["dongguan"], ticket, now=at + dt.timedelta(minutes=10))
        ops.contact(
            db, people["dongguan"], ticket, note="已电话联系", now=at + dt.timedelta(hours=1)
        )
        return ticket

    return make


def set_rule(db, people, code, mode, percent=None):
    reply_review.set_rule(
        db, people["supervisor"], category(db, code), mode=mode, sample_percent=percent
    )


def finish_event(db, ticket):
    return db.scalars(
        sa.select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.action == "finish")
        .order_by(TicketEvent.id.desc())
    ).first()


def texts(db, ticket):
    return db.scalars(
        sa.select(OutboxMessage).where(
            OutboxMessage.ticket_id == ticket.id, OutboxMessage.kind == "citizen_finished"
        )
    ).all()


# -- the modes ------------------------------------------------------------------------------------


def test_default_flagged_reviews_only_a_poor_reply(db, app, people, contacted):
    assert settings.get(db, "review.default_mode") == "flagged"
    poor, good = contacted(), contacted()
    ops.finish(db, people["dongguan"], poor, result=POOR, now=local(18, 10))
    ops.finish(db, people["dongguan"], good, result=GOOD, now=local(18, 10))
    assert (poor.status, good.status) == (S.reviewing, S.finished)

    payload = finish_event(db, poor).payload
    assert payload["review"] is True
    assert payload["review_mode"] == "flagged"
    assert payload["review_why"] == "flagged"
    assert payload["reply_quality"]["poor"] is True
    assert payload["reply_quality"]["reasons"]
    assert all(isinstance(r, str) and r for r in payload["reply_quality"]["reasons"])
    assert "callback_due" not in payload
    good_payload = finish_event(db, good).payload
    assert good_payload["review"] is False
    assert good_payload["reply_quality"]["poor"] is False
    assert good_payload["callback_due"] == good.callback_due.isoformat()


def test_mode_all_reviews_a_good_reply_and_none_lets_a_poor_one_through(db, app, people, contacted):
    set_rule(db, people, STREETLIGHT, ReviewMode.all)
    reviewed = contacted()
    ops.finish(db, people["dongguan"], reviewed, result=GOOD)
    assert reviewed.status == S.reviewing
    assert finish_event(db, reviewed).payload["review_why"] == "all"

    set_rule(db, people, STREETLIGHT, ReviewMode.none)
    passed = contacted()
    ops.finish(db, people["dongguan"], passed, result=POOR)
    assert passed.status == S.finished
    payload = finish_event(db, passed).payload
    assert payload["review"] is False and payload["reply_quality"]["poor"] is True


def test_the_most_specific_rule_applies(db, app, people, contacted):
    # A rule on the top class covers its sub-categories; the leaf's own rule beats it.
    set_rule(db, people, STREETLIGHT[:2], ReviewMode.all)
    ticket = contacted()
    assert reply_review.rule_for(db, ticket.category).mode == ReviewMode.all
    assert reply_review.rule_for(db, ticket.category).category.code == STREETLIGHT[:2]
    set_rule(db, people, STREETLIGHT, ReviewMode.none)
    rule = reply_review.rule_for(db, ticket.category)
    assert (rule.mode, rule.category.code) == (ReviewMode.none, STREETLIGHT)
    # Without a category the city's default applies.
    assert reply_review.rule_for(db, None).mode == ReviewMode.flagged


def test_sample_mode_draws_deterministic_lots_and_always_takes_flagged_replies(
    db, app, people, contacted
):
    set_rule(db, people, STREETLIGHT, ReviewMode.sample, 50)
    tickets = [contacted() for _ in range(6)]
    expected = [reply_review.sampled(t.id, 0, 50) for t in tickets]
    for t in tickets:
        ops.finish(db, people["dongguan"], t, result=GOOD)
    assert [t.status == S.reviewing for t in tickets] == expected
    for t, lot in zip(tickets, expected, strict=True):
        assert finish_event(db, t).payload["review_why"] == ("sampled" if lot else None)
    flagged = contacted()
    ops.finish(db, people["dongguan"], flagged, result=POOR)
    assert flagged.status == S.reviewing


def test_the_lot_is_the_same_for_a_retry_and_about_the_share(db, app, people, contacted):
    ticket = contacted()
    set_rule(db, people, STREETLIGHT, ReviewMode.sample, 20)
    assessment = ops.reply_quality.assess(GOOD, ticket.content, ticket.title)
    first = reply_review.decide(db, ticket, assessment)
    again = reply_review.decide(db, ticket, assessment)
    assert first == again
    assert first.review == reply_review.sampled(ticket.id, 0, 20)
    # Another round (a finish after a return or 重办) draws anew.
    lots = [reply_review.sampled(ticket.id, r, 20) for r in range(400)]
    assert 0 < sum(lots) < 400
    share = sum(reply_review.sampled(i, 0, 20) for i in range(1, 2001)) / 2000
    assert 0.17 < share < 0.23
    assert not any(reply_review.sampled(i, 0, 0) for i in range(1, 200))
    assert all(reply_review.sampled(i, 0, 100) for i in range(1, 200))


def test_the_city_default_is_a_setting_checked_and_audited(db, app, people):
    section = reply_review.SECTION
    with pytest.raises(ValidationFailed) as caught:
        section.update(db, people["supervisor"], {"default_mode": "sometimes"})
    assert "默认审核方式" in caught.value.message
    assert settings.get(db, "review.default_mode") == "flagged"
    section.update(db, people["supervisor"], {"default_mode": "all", "sample_percent": "30"})
    assert reply_review.default_rule(db) == reply_review.Rule(ReviewMode.all, 30)
    with pytest.raises(Forbidden):
        section.update(db, people["dongguan"], {"default_mode": "none"})


def test_a_rule_is_audited_and_checked(db, app, people):
    supervisor = people["supervisor"]
    streetlight = category(db, STREETLIGHT)
    with pytest.raises(ValidationFailed) as caught:
        reply_review.set_rule(db, supervisor, streetlight, mode=ReviewMode.sample)
    assert caught.value.details == {"sample_percent": "抽样审核须填写 1–100 的抽样比例"}
    with pytest.raises(Forbidden):
        reply_review.set_rule(db, people["dongguan"], streetlight, mode=ReviewMode.all)
    assert db.scalar(sa.select(sa.func.count()).select_from(ReviewRule)) == 0

    reply_review.set_rule(db, supervisor, streetlight, mode=ReviewMode.sample, sample_percent=40)
    reply_review.set_rule(db, supervisor, streetlight, mode=None)
    assert db.scalar(sa.select(sa.func.count()).select_from(ReviewRule)) == 0
    rows = db.scalars(
        sa.select(AuditLog).where(AuditLog.action == "review_rule.update").order_by(AuditLog.id)
    ).all()
    assert [r.payload["changes"] for r in rows] == [
        {"mode": [None, "sample"], "sample_percent": [None, 40]},
        {"mode": ["sample", None], "sample_percent": [40, None]},
    ]
    assert {r.target for r in rows} == {STREETLIGHT}
    assert {r.actor_id for r in rows} == {supervisor.id}


# -- 待审核 holds the reply back ----------------------------------------------------------------


def test_in_review_no_callback_no_text_no_timers_and_the_citizen_does_not_see_the_reply(
    db, app, people, contacted
):
    start = utcnow()  # after the ticket's receipt: the citizen's timeline is in time order
    ticket = contacted(at=start, requester_phone=PHONE)
    finished = start + dt.timedelta(days=1)
    ops.finish(db, people["dongguan"], ticket, result=POOR, now=finished)
    assert ticket.status == S.reviewing
    assert ticket.finished_at == finished
    assert ticket.lead_assignment.finished_at == finished
    assert ticket.callback_due is None and ticket.callback_next_at is None
    # The unit has reported; only the hotline's own 审核时限 waits on the review.
    review_due, _ = calendar.load(db, app.config["TIMEZONE"]).add_working_days(finished, 1)
    assert ticket.next_due_at == review_due
    assert texts(db, ticket) == []

    view = citizen_tracking.view(db, ticket, finished, app.config["TIMEZONE"])
    assert view.status == "办理结果审核中"
    assert view.reply is None
    assert view.actions.can_rate is False
    assert view.steps[-1].title == "办理结果审核中"
    assert POOR not in " ".join(f"{s.title}{s.detail}" for s in view.steps)

    # The scheduler, long after the finish deadline, fires nothing on it.
    later = ticket.finish_due + dt.timedelta(days=30)
    timers.tick(db, later, ops.timer_settings())
    fired = db.scalars(sa.select(TimerFiring.kind).where(TimerFiring.ticket_id == ticket.id))
    assert not {TimerKind.finish_overdue, TimerKind.reminder, TimerKind.escalation} & set(fired)


def test_approval_starts_the_callback_clock_and_tells_the_citizen(db, app, people, contacted):
    start = utcnow()
    ticket = contacted(at=start, requester_phone=PHONE)
    finished, approved = start + dt.timedelta(days=1), start + dt.timedelta(days=2)
    ops.finish(db, people["dongguan"], ticket, result=POOR, now=finished)
    event = ops.approve_reply(db, people["supervisor"], ticket, note="答复可以", now=approved)

    assert ticket.status == S.finished
    assert ticket.finished_at == finished  # the unit's moment
    assert ticket.callback_next_at == approved
    policy = ops.ticket_policy(db, ticket)
    due, _ = ops.sla.add_limit(
        approved,
        policy.callback_amount,
        policy.callback_unit,
        always_on=False,
        calendar=ops.work_calendar(db),
    )
    assert ticket.callback_due == due
    assert event.payload["callback_due"] == due.isoformat()
    assert event.unit_id == ticket.lead_unit_id
    assert event.reason == "答复可以"
    (text,) = texts(db, ticket)
    assert text.delivery_key.endswith(f"finished:{ticket.id}:{event.id}")
    assert POOR.rstrip("。") in text.body

    view = citizen_tracking.view(db, ticket, approved, app.config["TIMEZONE"])
    assert view.reply == POOR
    assert view.status == "已办结，待评价"
    assert [s.title for s in view.steps[-2:]] == ["办理结果审核中", "已办结"]
    assert view.steps[-1].detail == POOR


def test_return_goes_back_to_the_unit_with_result_and_deadlines_kept(db, app, people, contacted):
    ticket = contacted()
    deadlines = (ticket.sign_due, ticket.contact_due, ticket.finish_due, ticket.clock_started_at)
    ops.finish(db, people["dongguan"], ticket, result=POOR, now=local(18, 10))
    with pytest.raises(ValidationFailed):
        ops.return_reply(db, people["supervisor"], ticket, reason="  ")
    assert ticket.status == S.reviewing

    returned = ticket.finish_due + dt.timedelta(hours=2)  # the review waited past the deadline
    event = ops.return_reply(
        db, people["supervisor"], ticket, reason="答复未说明路灯是否修好", now=returned
    )
    assert ticket.status == S.contacted
    assert ticket.finished_at is None and ticket.lead_assignment.finished_at is None
    assert ticket.result == POOR
    assert (
        ticket.sign_due,
        ticket.contact_due,
        ticket.finish_due,
        ticket.clock_started_at,
    ) == deadlines
    assert event.unit_id == unit(db, DONGGUAN).id
    assert (event.from_status, event.to_status) == ("reviewing", "contacted")
    (message,) = db.scalars(
        sa.select(Notification).where(
            Notification.ticket_id == ticket.id, Notification.kind == "reply_returned"
        )
    ).all()
    assert message.unit_id == unit(db, DONGGUAN).id
    assert "答复未说明路灯是否修好" in message.body
    assert reply_review.last_return(db, ticket).id == event.id

    # The unit is now overdue, and its message says so; the overdue that fell due while the
    # hotline held the reply does not fire (the wait was the reviewer's).
    assert "已超过办结时限" in message.body
    timers.tick(db, returned + dt.timedelta(minutes=1), ops.timer_settings())
    fired = set(db.scalars(sa.select(TimerFiring.kind).where(TimerFiring.ticket_id == ticket.id)))
    assert TimerKind.finish_overdue not in fired


def test_a_returned_reply_is_reviewed_again_even_when_good(db, app, people, contacted):
    ticket = contacted()
    ops.finish(db, people["dongguan"], ticket, result=POOR, now=local(18, 10))
    ops.return_reply(db, people["supervisor"], ticket, reason="请说明办理结果", now=local(18, 11))
    ops.finish(db, people["dongguan"], ticket, result=GOOD, now=local(18, 12))
    assert ticket.status == S.reviewing
    assert finish_event(db, ticket).payload["review_why"] == "returned_before"
    ops.approve_reply(db, people["supervisor"], ticket, now=local(18, 13))
    assert ticket.status == S.finished
    assert reply_review.last_return(db, ticket) is None


def test_only_supervisors_decide_and_a_refusal_changes_nothing(
    db, app, people, user, contacted, snapshot, assert_unchanged
):
    ticket = contacted()
    ops.finish(db, people["dongguan"], ticket, result=POOR)
    before = snapshot(ticket)
    for name in ("dongguan", "dispatcher", "callback", "admin"):
        with pytest.raises(Forbidden):
            ops.approve_reply(db, user(name), ticket)
        with pytest.raises(Forbidden):
            ops.return_reply(db, user(name), ticket, reason="不行")
    with pytest.raises(Conflict) as caught:
        ops.approve_reply(db, people["supervisor"], ticket, expected_version=ticket.version - 1)
    assert caught.value.code == "TICKET_VERSION_CONFLICT"
    assert_unchanged(ticket, before)


def test_queue_oldest_first_with_filters(db, app, people, contacted, make_ticket):
    from hotline.schemas import Page

    first, second = contacted(), contacted()
    ops.finish(db, people["dongguan"], second, result=POOR, now=local(18, 9))
    ops.finish(db, people["dongguan"], first, result=POOR, now=local(18, 10))
    total, rows = reply_review.queue(db, people["supervisor"], Page(1, 500))
    numbers = [t.number for t, _ in rows]
    assert numbers.index(second.number) < numbers.index(first.number)
    assert all(t.status == S.reviewing for t, _ in rows)
    assert all(e is not None and e.action == "finish" for _, e in rows)
    _, mine = reply_review.queue(
        db,
        people["supervisor"],
        Page(1, 500),
        category=category(db, STREETLIGHT[:2]),
        unit=unit(db, DONGGUAN),
    )
    assert {second.number, first.number} <= {t.number for t, _ in mine}
    _, none = reply_review.queue(db, people["supervisor"], Page(1, 500), unit=unit(db, "U-CGJ"))
    assert not {second.number, first.number} & {t.number for t, _ in none}
    assert db.get(Ticket, first.id).status == S.reviewing
    assert Role.supervisor in reply_review.REVIEWERS


def test_no_return_to_a_deactivated_unit(db, app, people, contacted, snapshot, assert_unchanged):
    ticket = contacted()
    ops.finish(db, people["dongguan"], ticket, result=POOR)
    before = snapshot(ticket)
    ticket.lead_unit.active = False
    with pytest.raises(Conflict) as caught:
        ops.return_reply(db, people["supervisor"], ticket, reason="请补充")
    assert caught.value.code == "UNIT_INACTIVE"
    ticket.lead_unit.active = True
    assert_unchanged(ticket, before)


# -- fixes: what reaches the citizen, the clocks around a review --------------------------------


def test_the_operator_reads_a_reply_only_once_it_reached_the_citizen(db, app, people, contacted):
    ticket = contacted(requester_phone=PHONE)
    ops.finish(db, people["dongguan"], ticket, result=POOR, now=local(18, 10))
    shown = schemas.caller_ticket_to_dict(ticket)
    assert shown["result"] is None and shown["result_pending"] == "办理结果审核中"
    ops.return_reply(db, people["supervisor"], ticket, reason="请说明结果", now=local(18, 11))
    shown = schemas.caller_ticket_to_dict(ticket)
    assert ticket.result == POOR
    assert shown["result"] is None and shown["result_pending"] == "办理结果审核中"
    ops.finish(db, people["dongguan"], ticket, result=GOOD, now=local(18, 12))
    ops.approve_reply(db, people["supervisor"], ticket, now=local(18, 13))
    shown = schemas.caller_ticket_to_dict(ticket)
    assert shown["result"].startswith(GOOD[:20]) and shown["result_pending"] is None


def test_after_a_long_review_the_return_fires_nothing_missed(db, app, people, contacted):
    ticket = contacted()
    ops.finish(db, people["dongguan"], ticket, result=POOR, now=local(18, 10))
    work = calendar.load(db, app.config["TIMEZONE"])
    # Three weeks in review: every warning, the overdue, the 催办 and all 督办 levels passed.
    returned, _ = work.add_working_days(ticket.finish_due, 16)
    ops.return_reply(db, people["supervisor"], ticket, reason="请说明结果", now=returned)
    (message,) = db.scalars(
        sa.select(Notification).where(
            Notification.ticket_id == ticket.id, Notification.kind == "reply_returned"
        )
    ).all()
    assert "已超过办结时限" in message.body
    timers.tick(db, returned + dt.timedelta(minutes=1), ops.timer_settings())
    fired = db.scalars(sa.select(TimerFiring).where(TimerFiring.ticket_id == ticket.id)).all()
    assert [f for f in fired if f.fired_at > local(18, 10)] == []
    db.refresh(ticket)
    assert ticket.escalation_level == 0


def test_a_return_in_time_says_the_deadline(db, app, people, contacted):
    ticket = contacted()
    ops.finish(db, people["dongguan"], ticket, result=POOR, now=local(18, 10))
    ops.return_reply(db, people["supervisor"], ticket, reason="请说明结果", now=local(18, 11))
    (message,) = db.scalars(
        sa.select(Notification).where(
            Notification.ticket_id == ticket.id, Notification.kind == "reply_returned"
        )
    ).all()
    assert "办结时限为" in message.body and "已超过" not in message.body


def test_a_reply_waiting_beyond_the_review_limit_reminds_the_hotline(db, app, people, contacted):
    ticket = contacted()
    finished = local(18, 10)
    ops.finish(db, people["dongguan"], ticket, result=POOR, now=finished)
    work = calendar.load(db, app.config["TIMEZONE"])
    due, _ = work.add_working_days(finished, 1)  # the shipped 审核时限: 1 working day
    assert ticket.next_due_at == due
    timers.tick(db, due - dt.timedelta(minutes=1), ops.timer_settings())
    kinds = db.scalars(sa.select(TimerFiring.kind).where(TimerFiring.ticket_id == ticket.id))
    assert TimerKind.review_overdue not in set(kinds)
    timers.tick(db, due + dt.timedelta(minutes=1), ops.timer_settings())
    kinds = db.scalars(sa.select(TimerFiring.kind).where(TimerFiring.ticket_id == ticket.id))
    assert TimerKind.review_overdue in set(kinds)
    (message,) = db.scalars(
        sa.select(Notification).where(
            Notification.ticket_id == ticket.id, Notification.kind == "review_overdue"
        )
    ).all()
    hotline = db.scalars(sa.select(Unit).where(Unit.kind == UnitKind.hotline_centre)).first()
    assert message.unit_id == hotline.id
    assert "审核超时" in message.title

    # The limit is a setting: two working days put the next review's reminder later.
    reply_review.SECTION.update(db, people["supervisor"], {"limit_days": "2"})
    ops.return_reply(db, people["supervisor"], ticket, reason="请说明结果", now=due)
    ops.finish(db, people["dongguan"], ticket, result=GOOD, now=due + dt.timedelta(hours=1))
    later, _ = work.add_working_days(due + dt.timedelta(hours=1), 2)
    assert ticket.next_due_at == later


def test_the_citizen_may_re_raise_for_days_after_approval_not_after_finishing(
    db, app, people, contacted
):
    start = utcnow()
    ticket = contacted(at=start, requester_phone=PHONE)
    finished = start + dt.timedelta(days=1)
    ops.finish(db, people["dongguan"], ticket, result=POOR, now=finished)
    approved = finished + dt.timedelta(days=15)  # a long review
    ops.approve_reply(db, people["supervisor"], ticket, now=approved)
    assert reply_review.replied_at(db, ticket) == approved
    asking = approved + dt.timedelta(days=3)
    actions = citizen_tracking.actions(db, ticket, asking)
    assert actions.can_rerequest and actions.rerequest_until == approved + dt.timedelta(days=15)
    citizen_tracking.rerequest(db, ticket, PHONE, reason="路灯还是不亮", now=asking)
    assert ticket.status == S.called_back
    assert citizen_tracking.actions(db, ticket, asking).can_rerequest is False


def test_the_queue_item_links_photos_through_the_routes(db, app, people, contacted):
    """Behind a path prefix (a reverse proxy's SCRIPT_NAME) the link keeps the prefix."""
    ticket = contacted()
    ops.finish(db, people["dongguan"], ticket, result=POOR, now=local(18, 10))
    with app.test_request_context("/", base_url="http://localhost/hotline/"):
        item = review_schemas.queue_item(ticket, None, people["supervisor"], local(18, 11))
    assert item["photos_url"] == f"/hotline/tickets/{ticket.number}#photos"


def test_the_queue_marks_a_reply_waiting_beyond_the_limit(db, app, people, contacted):
    ticket = contacted()
    ops.finish(db, people["dongguan"], ticket, result=POOR, now=local(18, 10))
    due = reply_review.review_due(db, ticket, app.config["TIMEZONE"])
    assert due == ticket.next_due_at
    with app.test_request_context("/"):
        early = review_schemas.queue_item(ticket, None, people["supervisor"], local(18, 11), due)
        late = review_schemas.queue_item(
            ticket, None, people["supervisor"], due + dt.timedelta(minutes=1), due
        )
    assert early["review_late"] is False and early["review_due"] == due.isoformat()
    assert late["review_late"] is True
