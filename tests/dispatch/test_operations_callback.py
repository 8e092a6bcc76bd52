"""Callback operations (回访, DOMAIN.md §5): retry spacing and what each call outcome settles.

Moments are injected (``now=``) and written in Asia/Shanghai wall-clock time. The week of
Monday 2026-11-16 has no holidays; the callback limit of a streetlight complaint is 1 working
day. The ticket builders (``finished``, ``call``, ``answer``) are fixtures of
tests/dispatch/conftest.py.
"""

from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from dispatch import operations as ops
from dispatch import timers
from hotline.enums import CallbackOutcome, ExemptionKind, Satisfaction, Solved, TicketStatus
from hotline.errors import Conflict, ValidationFailed
from hotline.models import Assignment, CallbackAttempt, TicketEvent, TimerFiring
from tests.dispatch.common import NAMES, TUE_0900, local

S = TicketStatus


@pytest.fixture
def u(user):
    return SimpleNamespace(**{name: user(name) for name in NAMES})


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


# -- retry spacing ------------------------------------------------------------------------------


def test_finishing_puts_the_ticket_in_the_queue_at_once(db, u, finished):
    ticket = finished()
    assert ticket.callback_next_at == TUE_0900
    assert ticket.callback_due == local(18, 9)  # 1 working day


def test_an_unanswered_retry_before_24_hours_is_refused_then_allowed(db, u, call, finished):
    ticket = finished()
    event = call(ticket, CallbackOutcome.no_answer, local(17, 10))
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
    event = call(ticket, CallbackOutcome.no_answer, local(18, 10))
    assert ticket.status == S.finished
    assert event.payload == {
        "outcome": "no_answer",
        "attempt": 2,
        "next_attempt_at": local(19, 10).isoformat(),
    }
    assert ticket.callback_next_at == local(19, 10)


def test_the_earliest_time_is_rounded_up_to_the_minute(db, u, call, finished):
    ticket = finished()
    call(ticket, CallbackOutcome.no_answer, local(17, 10, 0, 30))
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


def test_an_answer_needs_no_spacing(db, u, answer, call, finished):
    """The requester may pick up (or call back) at any time: only unanswered tries are spaced."""
    ticket = finished()
    call(ticket, CallbackOutcome.no_answer, local(17, 10))
    answer(ticket, local(17, 10, 30))
    assert ticket.status == S.closed


@pytest.mark.parametrize(
    "outcome", [CallbackOutcome.wrong_number, CallbackOutcome.refused], ids=lambda o: o.value
)
def test_other_outcomes_need_no_spacing(db, u, outcome, call, finished):
    ticket = finished()
    call(ticket, CallbackOutcome.no_answer, local(17, 10))
    call(ticket, outcome, local(17, 11))
    assert ticket.status == S.closed


def test_retry_hours_and_attempts_are_configuration(db, u, app, monkeypatch, call, finished):
    monkeypatch.setitem(app.config, "CALLBACK_RETRY_HOURS", 4)
    monkeypatch.setitem(app.config, "CALLBACK_MAX_ATTEMPTS", 2)
    ticket = finished()
    call(ticket, CallbackOutcome.no_answer, local(17, 10))
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
    event = call(ticket, CallbackOutcome.no_answer, local(17, 14))
    assert ticket.status == S.closed
    assert event.payload == {"outcome": "no_answer", "attempt": 2, "closed": "unreachable"}


# -- what a call settles ------------------------------------------------------------------------


def test_three_unanswered_tries_over_two_days_close_as_unreachable(db, u, call, finished):
    ticket = finished()
    call(ticket, CallbackOutcome.no_answer, local(17, 10))
    call(ticket, CallbackOutcome.no_answer, local(18, 10))
    assert ticket.status == S.finished
    event = call(ticket, CallbackOutcome.no_answer, local(19, 10))
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


def test_a_wrong_number_closes_at_once_as_unreachable(db, u, call, finished):
    ticket = finished()
    event = call(ticket, CallbackOutcome.wrong_number, local(17, 10), comment="空号")
    assert event.payload == {"outcome": "wrong_number", "attempt": 1, "closed": "unreachable"}
    assert event.reason == "空号"
    assert ticket.status == S.closed
    assert ticket.callback_solved is None
    assert ticket.callback_next_at is None
    assert active_assignments(db, ticket) == 0


def test_a_refusal_closes_at_once_unrated(db, u, call, finished):
    ticket = finished()
    call(ticket, CallbackOutcome.no_answer, local(17, 10))
    event = call(ticket, CallbackOutcome.refused, local(18, 10))
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
def test_a_happy_answer_closes_at_once_rated(db, u, solved, satisfaction, answer, finished):
    ticket = finished()
    event = answer(ticket, local(17, 11), solved, satisfaction)
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
def test_an_unhappy_answer_waits_for_review(db, u, solved, satisfaction, answer, finished):
    ticket = finished()
    event = answer(ticket, local(17, 11), solved, satisfaction)
    assert "closed" not in event.payload
    assert ticket.status == S.called_back
    assert ticket.closed_at is None
    assert ticket.callback_next_at is None
    assert active_assignments(db, ticket) > 0


def test_close_by_hand_is_only_for_no_phone(db, u, call, finished):
    with_phone = finished()
    call(with_phone, CallbackOutcome.no_answer, local(17, 10))
    with pytest.raises(Conflict) as caught:
        ops.close(db, u.callback, with_phone, now=local(17, 11))
    assert caught.value.code == "CALLBACK_REQUIRED"
    assert caught.value.details == {"unreached_attempts": 1, "required": 3}
    no_phone = finished(requester_phone=None)
    assert no_phone.callback_next_at == TUE_0900  # listed, so that an agent archives it
    event = ops.close(db, u.callback, no_phone, now=local(17, 10))
    assert event.payload == {"closed": "no_phone"}
    assert no_phone.callback_next_at is None


def test_an_exemption_leaves_the_ticket_waiting(db, u, finished):
    ticket = finished()
    ops.exempt(
        db, u.supervisor, ticket, kind=ExemptionKind.unreasonable, reason="无理", now=local(17, 9)
    )
    assert ticket.status == S.finished
    assert ticket.callback_next_at == TUE_0900


def test_the_callback_overdue_timer_runs_on_during_retries_and_stops_at_closing(
    db, u, call, finished
):
    ticket = finished()
    call(ticket, CallbackOutcome.no_answer, local(17, 10))
    timers.tick(db, local(18, 9, 30), timers.Settings())
    db.flush()
    kinds = db.scalars(sa.select(TimerFiring.kind).where(TimerFiring.ticket_id == ticket.id)).all()
    assert {k.value for k in kinds} == {"callback_task", "callback_overdue"}
    db.refresh(ticket)
    call(ticket, CallbackOutcome.no_answer, local(18, 10))
    call(ticket, CallbackOutcome.no_answer, local(19, 10))
    db.flush()
    assert ticket.status == S.closed
    assert ticket.next_due_at is None


def test_validation_refusals_write_nothing(db, u, finished):
    ticket = finished()
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
