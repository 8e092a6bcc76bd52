"""The callback workbench (回访工作台, DOMAIN.md §5): retry spacing, what each call outcome
settles, the calling queue and the supervisors' review queue.

Moments are injected (``now=`` for operations, the ``clock`` fixture for HTTP requests) and
written in Asia/Shanghai wall-clock time. The week of Monday 2026-11-16 has no holidays; the
callback limit of a streetlight complaint is 1 working day.
"""

import datetime as dt
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from dispatch import operations as ops
from dispatch import timers
from hotline.enums import CallbackOutcome, ExemptionKind, Satisfaction, Solved, TicketStatus
from hotline.errors import Conflict, ValidationFailed
from hotline.models import Assignment, CallbackAttempt, TicketEvent, TimerFiring, Unit
from tests.conftest import assert_error, make_ticket

S = TicketStatus
TZ = ZoneInfo("Asia/Shanghai")
DONGGUAN = "U-S-370705001"
STREETLIGHT = "010103"
PHONE = "13805360001"
NAMES = ["operator", "dispatcher", "dongguan", "callback", "supervisor", "admin"]


def local(day, hour=9, minute=0, second=0):
    """A moment of November 2026 in Asia/Shanghai wall-clock time, as aware UTC."""
    return dt.datetime(2026, 11, day, hour, minute, second, tzinfo=TZ).astimezone(dt.UTC)


TUE_0900 = local(17, 9)


@pytest.fixture
def u(user):
    return SimpleNamespace(**{name: user(name) for name in NAMES})


@pytest.fixture
def clock(monkeypatch):
    """The moment HTTP requests run at: ``clock.now = …``."""
    state = SimpleNamespace(now=None)
    monkeypatch.setattr("dispatch.operations.utcnow", lambda: state.now)
    monkeypatch.setattr("dispatch.api.callbacks.utcnow", lambda: state.now)
    return state


def unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


def finished(db, u, at=TUE_0900, **overrides):
    """A streetlight ticket of 东关街道 finished at ``at`` (handled the day before)."""
    start = at - dt.timedelta(days=1)
    values = {"category": STREETLIGHT, "area": "370705001", "now": start}
    values.update(overrides)
    ticket = make_ticket(db, u.operator, **values)
    ops.dispatch(db, u.dispatcher, ticket, lead=unit(db, DONGGUAN), now=start)
    ops.sign(db, u.dongguan, ticket, now=start + dt.timedelta(minutes=30))
    if ticket.requester_phone:
        ops.contact(db, u.dongguan, ticket, note="已联系", now=start + dt.timedelta(hours=1))
    ops.finish(db, u.dongguan, ticket, result="路灯已修复", now=at)
    db.flush()
    return ticket


def call(db, u, ticket, outcome, at, **kwargs):
    return ops.record_callback(db, u.callback, ticket, outcome=outcome, now=at, **kwargs)


def answer(db, u, ticket, at, solved=Solved.solved, satisfaction=Satisfaction.satisfied):
    return call(
        db,
        u,
        ticket,
        CallbackOutcome.answered,
        at,
        solved=solved,
        satisfaction=satisfaction,
        comment="回访记录",
    )


def attempts(db, ticket):
    return db.scalar(sa.select(sa.func.count()).where(CallbackAttempt.ticket_id == ticket.id))


def events(db, ticket):
    return db.scalars(
        sa.select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
    ).all()


def refused(db, u, ticket, error, code, **kwargs):
    """The callback is refused and nothing is written: no attempt, no event, no change."""
    before = (
        ticket.status,
        ticket.version,
        ticket.callback_next_at,
        len(events(db, ticket)),
        attempts(db, ticket),
    )
    with pytest.raises(error) as caught:
        ops.record_callback(db, u.callback, ticket, **kwargs)
    assert caught.value.code == code
    db.flush()
    after = (
        ticket.status,
        ticket.version,
        ticket.callback_next_at,
        len(events(db, ticket)),
        attempts(db, ticket),
    )
    assert after == before
    return caught.value


def active_assignments(db, ticket):
    return db.scalar(
        sa.select(sa.func.count()).where(Assignment.ticket_id == ticket.id, Assignment.active)
    )


def data(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["success"] is True
    return body["data"]


def numbers(page):
    return [item["number"] for item in page["items"]]


# -- retry spacing ------------------------------------------------------------------------------


def test_finishing_puts_the_ticket_in_the_queue_at_once(db, u):
    ticket = finished(db, u)
    assert ticket.callback_next_at == TUE_0900
    assert ticket.callback_due == local(18, 9)  # 1 working day


def test_an_unanswered_retry_before_24_hours_is_refused_then_allowed(db, u):
    ticket = finished(db, u)
    event = call(db, u, ticket, CallbackOutcome.no_answer, local(17, 10))
    assert ticket.callback_next_at == local(18, 10)
    assert event.payload["next_attempt_at"] == local(18, 10).isoformat()
    for moment in (local(17, 16), local(18, 9, 59)):
        error = refused(
            db,
            u,
            ticket,
            Conflict,
            "CALLBACK_RETRY_TOO_SOON",
            outcome=CallbackOutcome.no_answer,
            now=moment,
        )
        assert error.status == 409
        assert error.details == {"next_attempt_at": "2026-11-18T02:00:00+00:00"}
        assert error.message == "距上次未接通的回访不足 24 小时，最早可于 2026-11-18 10:00 再次回访"
    event = call(db, u, ticket, CallbackOutcome.no_answer, local(18, 10))
    assert ticket.status == S.finished
    assert event.payload == {
        "outcome": "no_answer",
        "attempt": 2,
        "next_attempt_at": local(19, 10).isoformat(),
    }
    assert ticket.callback_next_at == local(19, 10)


def test_the_earliest_time_is_rounded_up_to_the_minute(db, u):
    ticket = finished(db, u)
    call(db, u, ticket, CallbackOutcome.no_answer, local(17, 10, 0, 30))
    error = refused(
        db,
        u,
        ticket,
        Conflict,
        "CALLBACK_RETRY_TOO_SOON",
        outcome=CallbackOutcome.no_answer,
        now=local(17, 11),
    )
    assert "最早可于 2026-11-18 10:01 再次回访" in error.message
    assert error.details == {"next_attempt_at": local(18, 10, 0, 30).isoformat()}


def test_an_answer_needs_no_spacing(db, u):
    """The requester may pick up (or call back) at any time: only unanswered tries are spaced."""
    ticket = finished(db, u)
    call(db, u, ticket, CallbackOutcome.no_answer, local(17, 10))
    answer(db, u, ticket, local(17, 10, 30))
    assert ticket.status == S.closed


@pytest.mark.parametrize(
    "outcome", [CallbackOutcome.wrong_number, CallbackOutcome.refused], ids=lambda o: o.value
)
def test_other_outcomes_need_no_spacing(db, u, outcome):
    ticket = finished(db, u)
    call(db, u, ticket, CallbackOutcome.no_answer, local(17, 10))
    call(db, u, ticket, outcome, local(17, 11))
    assert ticket.status == S.closed


def test_retry_hours_and_attempts_are_configuration(db, u, app, monkeypatch):
    monkeypatch.setitem(app.config, "CALLBACK_RETRY_HOURS", 4)
    monkeypatch.setitem(app.config, "CALLBACK_MAX_ATTEMPTS", 2)
    ticket = finished(db, u)
    call(db, u, ticket, CallbackOutcome.no_answer, local(17, 10))
    assert ticket.callback_next_at == local(17, 14)
    error = refused(
        db,
        u,
        ticket,
        Conflict,
        "CALLBACK_RETRY_TOO_SOON",
        outcome=CallbackOutcome.no_answer,
        now=local(17, 13, 59),
    )
    assert "不足 4 小时，最早可于 2026-11-17 14:00" in error.message
    event = call(db, u, ticket, CallbackOutcome.no_answer, local(17, 14))
    assert ticket.status == S.closed
    assert event.payload == {"outcome": "no_answer", "attempt": 2, "closed": "unreachable"}


# -- what a call settles ------------------------------------------------------------------------


def test_three_unanswered_tries_over_two_days_close_as_unreachable(db, u):
    ticket = finished(db, u)
    call(db, u, ticket, CallbackOutcome.no_answer, local(17, 10))
    call(db, u, ticket, CallbackOutcome.no_answer, local(18, 10))
    assert ticket.status == S.finished
    event = call(db, u, ticket, CallbackOutcome.no_answer, local(19, 10))
    assert (event.from_status, event.to_status) == ("finished", "closed")
    assert event.action == "record_callback"
    assert event.payload == {"outcome": "no_answer", "attempt": 3, "closed": "unreachable"}
    assert ticket.status == S.closed
    assert ticket.closed_at == local(19, 10)
    assert (ticket.callback_solved, ticket.callback_satisfaction, ticket.callback_at) == (
        None,
        None,
        None,
    )  # not rated
    assert ticket.callback_next_at is None
    assert active_assignments(db, ticket) == 0
    # One event per call: finish, three calls; no separate close.
    assert [e.action for e in events(db, ticket)][-4:] == ["finish"] + ["record_callback"] * 3


def test_a_wrong_number_closes_at_once_as_unreachable(db, u):
    ticket = finished(db, u)
    event = call(db, u, ticket, CallbackOutcome.wrong_number, local(17, 10), comment="空号")
    assert event.payload == {"outcome": "wrong_number", "attempt": 1, "closed": "unreachable"}
    assert event.reason == "空号"
    assert ticket.status == S.closed
    assert ticket.callback_solved is None
    assert ticket.callback_next_at is None
    assert active_assignments(db, ticket) == 0


def test_a_refusal_closes_at_once_unrated(db, u):
    ticket = finished(db, u)
    call(db, u, ticket, CallbackOutcome.no_answer, local(17, 10))
    event = call(db, u, ticket, CallbackOutcome.refused, local(18, 10))
    assert event.payload == {"outcome": "refused", "attempt": 2, "closed": "refused"}
    assert ticket.status == S.closed
    assert ticket.closed_at == local(18, 10)
    assert ticket.callback_solved is None
    assert ticket.callback_next_at is None


@pytest.mark.parametrize(
    "solved,satisfaction",
    [
        (Solved.solved, Satisfaction.satisfied),
        (Solved.partly, Satisfaction.basically),
        (Solved.solved, Satisfaction.basically),
    ],
)
def test_a_happy_answer_closes_at_once_rated(db, u, solved, satisfaction):
    ticket = finished(db, u)
    event = answer(db, u, ticket, local(17, 11), solved, satisfaction)
    assert event.payload["closed"] == "rated"
    assert ticket.status == S.closed
    assert (ticket.callback_solved, ticket.callback_satisfaction) == (solved, satisfaction)
    assert ticket.callback_at == ticket.closed_at == local(17, 11)
    assert ticket.callback_next_at is None
    assert active_assignments(db, ticket) == 0


@pytest.mark.parametrize(
    "solved,satisfaction",
    [
        (Solved.unsolved, Satisfaction.satisfied),
        (Solved.partly, Satisfaction.dissatisfied),
    ],
)
def test_an_unhappy_answer_waits_for_review(db, u, solved, satisfaction):
    ticket = finished(db, u)
    event = answer(db, u, ticket, local(17, 11), solved, satisfaction)
    assert "closed" not in event.payload
    assert ticket.status == S.called_back
    assert ticket.closed_at is None
    assert ticket.callback_next_at is None
    assert active_assignments(db, ticket) > 0


def test_close_by_hand_is_only_for_no_phone(db, u):
    with_phone = finished(db, u)
    call(db, u, with_phone, CallbackOutcome.no_answer, local(17, 10))
    with pytest.raises(Conflict) as caught:
        ops.close(db, u.callback, with_phone, now=local(17, 11))
    assert caught.value.code == "CALLBACK_REQUIRED"
    assert caught.value.details == {"unreached_attempts": 1, "required": 3}
    no_phone = finished(db, u, requester_phone=None)
    assert no_phone.callback_next_at == TUE_0900  # listed, so that an agent archives it
    event = ops.close(db, u.callback, no_phone, now=local(17, 10))
    assert event.payload == {"closed": "no_phone"}
    assert no_phone.callback_next_at is None


def test_an_exemption_leaves_the_ticket_waiting(db, u):
    ticket = finished(db, u)
    ops.exempt(
        db, u.supervisor, ticket, kind=ExemptionKind.unreasonable, reason="无理", now=local(17, 9)
    )
    assert ticket.status == S.finished
    assert ticket.callback_next_at == TUE_0900


def test_the_callback_overdue_timer_runs_on_during_retries_and_stops_at_closing(db, u):
    ticket = finished(db, u)
    call(db, u, ticket, CallbackOutcome.no_answer, local(17, 10))
    timers.tick(db, local(18, 9, 30), timers.Settings())
    db.flush()
    kinds = db.scalars(sa.select(TimerFiring.kind).where(TimerFiring.ticket_id == ticket.id)).all()
    assert {k.value for k in kinds} == {"callback_task", "callback_overdue"}
    db.refresh(ticket)
    call(db, u, ticket, CallbackOutcome.no_answer, local(18, 10))
    call(db, u, ticket, CallbackOutcome.no_answer, local(19, 10))
    db.flush()
    assert ticket.status == S.closed
    assert ticket.next_due_at is None


# -- the calling queue over HTTP ----------------------------------------------------------------


@pytest.fixture
def queue(db, u):
    """Tickets in every callback situation; the queue is read on Wednesday 08:30."""
    t = SimpleNamespace()
    t.b = finished(db, u, at=local(17, 8))  # callback due Wed 08:00: overdue
    t.a = finished(db, u)
    call(db, u, t.a, CallbackOutcome.no_answer, local(17, 10))  # next try Wed 10:00
    t.c = finished(db, u)
    t.g = finished(db, u)  # same moment as c: after it, by id
    t.unhappy = finished(db, u)
    answer(db, u, t.unhappy, local(17, 15), Solved.unsolved, Satisfaction.dissatisfied)
    t.happy = finished(db, u)
    answer(db, u, t.happy, local(17, 15))
    t.handling = make_ticket(db, u.operator, category=STREETLIGHT, now=local(16))
    ops.dispatch(db, u.dispatcher, t.handling, lead=unit(db, DONGGUAN), now=local(16))
    db.flush()
    return t


def test_queue_in_calling_order_with_the_due_filter(db, api, clock, queue):
    clock.now = local(18, 8, 30)
    page = data(api("callback").get("/callbacks"))
    assert numbers(page) == [queue.b.number, queue.c.number, queue.g.number, queue.a.number]
    assert (page["page"], page["per_page"], page["total"]) == (1, 20, 4)
    due = data(api("callback").get("/callbacks?due=1"))
    assert numbers(due) == [queue.b.number, queue.c.number, queue.g.number]
    assert due["total"] == 3
    assert numbers(data(api("callback").get("/callbacks?due=0"))) == numbers(page)
    second = data(api("callback").get("/callbacks?per_page=2&page=2"))
    assert numbers(second) == [queue.g.number, queue.a.number]
    assert second["total"] == 4
    # Later in the day the retried ticket is callable again.
    clock.now = local(18, 10)
    assert data(api("callback").get("/callbacks?due=1"))["total"] == 4


def test_queue_items(db, api, clock, queue):
    clock.now = local(18, 8, 30)
    items = {i["number"]: i for i in data(api("callback").get("/callbacks"))["items"]}
    b, a = items[queue.b.number], items[queue.a.number]
    assert b == {
        "number": queue.b.number,
        "version": queue.b.version,
        "status": {"value": "finished", "label": "已办结"},
        "title": "小区门口路灯不亮",
        "category": {"code": STREETLIGHT, "name": queue.b.category.name},
        "lead_unit": {"code": DONGGUAN, "name": "东关街道办事处"},
        "result": "路灯已修复",
        "finished_at": local(17, 8).isoformat(),
        "requester_name": "王先生",
        "requester_phone": PHONE,
        "attempts": {"count": 0, "max": 3, "last_outcome": None, "last_at": None},
        "callback_due": local(18, 8).isoformat(),
        "callback_next_at": local(17, 8).isoformat(),
        "due_now": True,
        "overdue": True,
    }
    assert a["attempts"] == {
        "count": 1,
        "max": 3,
        "last_outcome": {"value": "no_answer", "label": "无人接听"},
        "last_at": local(17, 10).isoformat(),
    }
    assert a["callback_next_at"] == local(18, 10).isoformat()
    assert (a["due_now"], a["overdue"]) == (False, False)


def test_queue_counts_only_the_attempts_on_the_current_result(db, u, api, clock):
    ticket = finished(db, u)
    call(db, u, ticket, CallbackOutcome.no_answer, local(17, 10))
    answer(db, u, ticket, local(18, 10), Solved.unsolved, Satisfaction.dissatisfied)
    ops.reopen(db, u.supervisor, ticket, reason="未解决", now=local(18, 11))
    ops.sign(db, u.dongguan, ticket, now=local(18, 12))
    ops.contact(db, u.dongguan, ticket, note="再次联系", now=local(18, 13))
    ops.finish(db, u.dongguan, ticket, result="已更换灯具", now=local(18, 14))
    db.flush()
    assert ticket.callback_next_at == local(18, 14)
    clock.now = local(18, 15)
    (item,) = data(api("callback").get("/callbacks"))["items"]
    assert item["attempts"]["count"] == 0
    assert item["result"] == "已更换灯具"


def test_an_unreachable_requester_over_http(db, u, api, clock):
    ticket = finished(db, u)
    path = f"/tickets/{ticket.number}/callback"
    agent = api("callback")
    clock.now = local(17, 10)
    assert data(agent.post(path, json={"outcome": "no_answer"}))["status"]["value"] == "finished"
    clock.now = local(17, 16)
    seen = data(agent.get(f"/tickets/{ticket.number}"))
    error = assert_error(
        agent.post(path, json={"outcome": "no_answer"}), 409, "CALLBACK_RETRY_TOO_SOON"
    )
    assert error["details"] == {"next_attempt_at": "2026-11-18T02:00:00+00:00"}
    assert "2026-11-18 10:00" in error["message"]
    assert data(agent.get(f"/tickets/{ticket.number}")) == seen  # nothing written
    assert data(agent.get("/callbacks?due=1"))["total"] == 0
    clock.now = local(18, 10)
    assert numbers(data(agent.get("/callbacks?due=1"))) == [ticket.number]
    data(agent.post(path, json={"outcome": "no_answer"}))
    clock.now = local(19, 10)
    closed = data(agent.post(path, json={"outcome": "no_answer"}))
    assert closed["status"]["value"] == "closed"
    assert closed["closed_at"] == local(19, 10).isoformat()
    assert closed["callback"]["solved"] is None
    assert closed["event"]["payload"] == {
        "outcome": "no_answer",
        "attempt": 3,
        "closed": "unreachable",
    }
    assert data(agent.get("/callbacks"))["total"] == 0


def test_queue_query_errors(db, api, clock):
    clock.now = local(18, 9)
    error = assert_error(api("callback").get("/callbacks?due=yes"), 422, "VALIDATION_FAILED")
    assert error["details"] == {"due": "取值应为 1 或 0"}
    error = assert_error(api("callback").get("/callbacks?per_page=201"), 422, "VALIDATION_FAILED")
    assert error["details"] == {"per_page": "每页最多 200 条"}
    error = assert_error(
        api("supervisor").get("/callbacks/reviews?page=0"), 422, "VALIDATION_FAILED"
    )
    assert error["details"] == {"page": "须为正整数"}


@pytest.mark.parametrize(
    "username,phone",
    [("callback", PHONE), ("supervisor", PHONE), ("admin", "138****0001")],
)
def test_phone_shown_in_full_only_to_roles_that_call(db, u, api, clock, username, phone):
    ticket = finished(db, u)
    unhappy = finished(db, u)
    answer(db, u, unhappy, local(17, 10), Solved.unsolved, Satisfaction.dissatisfied)
    clock.now = local(17, 11)
    (item,) = data(api(username).get("/callbacks"))["items"]
    assert item["number"] == ticket.number
    assert item["requester_phone"] == phone
    (review,) = data(api(username).get("/callbacks/reviews"))["items"]
    assert review["requester_phone"] == phone


@pytest.mark.parametrize("path", ["/callbacks", "/callbacks/reviews"])
@pytest.mark.parametrize("username", ["operator", "dispatcher", "dongguan", "grid", "leader"])
def test_other_roles_are_refused(db, api, clock, path, username):
    clock.now = local(18, 9)
    error = assert_error(api(username).get(path), 403, "ROLE_NOT_ALLOWED")
    assert "无权查看回访" in error["message"]
    assert set(error["details"]) == {"role"}


def test_the_queue_needs_a_login(client):
    response = client.get("/api/v1/callbacks")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "AUTH_REQUIRED"


# -- the review queue: reopen or accept ---------------------------------------------------------


@pytest.fixture
def reviews(db, u):
    t = SimpleNamespace()
    t.later = finished(db, u)
    answer(db, u, t.later, local(18, 11), Solved.unsolved, Satisfaction.dissatisfied)
    t.earlier = finished(db, u)
    answer(db, u, t.earlier, local(17, 15), Solved.partly, Satisfaction.dissatisfied)
    t.happy = finished(db, u)
    answer(db, u, t.happy, local(17, 16))
    db.flush()
    return t


def test_review_queue_oldest_callback_first(db, api, clock, reviews):
    clock.now = local(18, 12)
    page = data(api("supervisor").get("/callbacks/reviews"))
    assert numbers(page) == [reviews.earlier.number, reviews.later.number]
    assert page["total"] == 2
    item = page["items"][0]
    assert item["status"] == {"value": "called_back", "label": "已回访"}
    assert item["callback"] == {
        "solved": {"value": "partly", "label": "部分解决"},
        "satisfaction": {"value": "dissatisfied", "label": "不满意"},
        "comment": "回访记录",
        "at": local(17, 15).isoformat(),
    }
    assert item["reopen_count"] == 0
    assert item["lead_unit"] == {"code": DONGGUAN, "name": "东关街道办事处"}
    assert item["result"] == "路灯已修复"
    assert item["attempts"]["count"] == 1
    assert item["attempts"]["last_outcome"]["value"] == "answered"
    # Callback agents may look; the called-back tickets are not in their calling queue.
    assert numbers(data(api("callback").get("/callbacks/reviews"))) == numbers(page)
    assert data(api("callback").get("/callbacks"))["total"] == 0


def test_review_reopen_goes_back_to_the_same_unit_with_a_new_clock(db, api, clock, reviews):
    clock.now = local(18, 14)
    number = reviews.earlier.number
    error = assert_error(
        api("callback").post(f"/tickets/{number}/reopen", json={"reason": "未解决"}),
        403,
        "ROLE_NOT_ALLOWED",
    )
    reopened = data(
        api("supervisor").post(f"/tickets/{number}/reopen", json={"reason": "路灯仍时亮时不亮"})
    )
    assert reopened["status"]["value"] == "reopened"
    assert reopened["lead_unit"]["code"] == DONGGUAN
    assert reopened["reopen_count"] == 1
    assert reopened["clock_started_at"] == local(18, 14).isoformat()
    assert reopened["sign_due"] == local(18, 16).isoformat()
    assert reopened["callback_due"] is None
    assert numbers(data(api("supervisor").get("/callbacks/reviews"))) == [reviews.later.number]
    assert data(api("callback").get("/callbacks"))["total"] == 0
    assert error["details"] == {"operation": "reopen", "role": "callback_agent"}


def test_review_accepted_with_a_reason(db, api, clock, reviews):
    clock.now = local(18, 14)
    number = reviews.later.number
    path = f"/tickets/{number}/close"
    assert_error(api("callback").post(path, json={}), 403, "SUPERVISOR_DECISION_REQUIRED")
    assert_error(api("supervisor").post(path, json={}), 422, "VALIDATION_FAILED")
    closed = data(api("supervisor").post(path, json={"reason": "诉求超出政策范围，已解释"}))
    assert closed["status"]["value"] == "closed"
    assert closed["event"]["payload"] == {"closed": "accepted_unhappy"}
    assert closed["event"]["reason"] == "诉求超出政策范围，已解释"
    assert closed["callback"]["solved"]["value"] == "unsolved"  # rated as answered
    assert numbers(data(api("supervisor").get("/callbacks/reviews"))) == [reviews.earlier.number]


def test_no_phone_tickets_are_listed_and_archived_by_hand(db, u, api, clock):
    ticket = finished(db, u, requester_phone=None)
    clock.now = local(17, 10)
    (item,) = data(api("callback").get("/callbacks?due=1"))["items"]
    assert item["requester_phone"] is None
    closed = data(
        api("callback").post(f"/tickets/{ticket.number}/close", json={"reason": "未留电话"})
    )
    assert closed["event"]["payload"] == {"closed": "no_phone"}
    assert data(api("callback").get("/callbacks"))["total"] == 0


def test_validation_refusals_write_nothing(db, u):
    ticket = finished(db, u)
    refused(
        db,
        u,
        ticket,
        ValidationFailed,
        "VALIDATION_FAILED",
        outcome=CallbackOutcome.answered,
        solved=Solved.solved,
        now=local(17, 10),
    )
