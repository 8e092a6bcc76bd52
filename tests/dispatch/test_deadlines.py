"""The deadline colour rule of the pages (dispatch/deadlines.py) at its edges, its words, and a
ticket's deadlines following the 80 % warning timer."""

import datetime as dt

import pytest
import sqlalchemy as sa

from dispatch import deadlines
from dispatch import operations as ops
from hotline.db import utcnow
from hotline.models import Category, Unit
from tests.dispatch.common import DONGGUAN, STREETLIGHT


def unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


def category(db, code):
    return db.scalars(sa.select(Category).where(Category.code == code)).one()


# -- the colour rule ----------------------------------------------------------------------------

DUE = dt.datetime(2026, 11, 16, 10, 0, tzinfo=dt.UTC)
WARN = DUE - dt.timedelta(minutes=24)
TICK = dt.timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("now", "state", "words"),
    [
        (WARN - TICK, "ok", "剩余 24 分钟"),
        (WARN, "warn", "即将到期，剩余 24 分钟"),
        (DUE, "warn", "即将到期，剩余 不足 1 分钟"),
        (DUE + TICK, "overdue", "已超时 不足 1 分钟"),
        (DUE + dt.timedelta(hours=3), "overdue", "已超时 3 小时"),
        (DUE - dt.timedelta(days=1, hours=2), "ok", "剩余 1 天 2 小时"),
    ],
)
def test_deadline_state_edges(now, state, words):
    result = deadlines.deadline_state(DUE, warn_at=WARN, done_at=None, now=now)
    assert (result.state, result.words) == (state, words)


def test_deadline_state_done_stopped_and_missing():
    late = deadlines.deadline_state(DUE, warn_at=WARN, done_at=DUE + dt.timedelta(hours=2), now=DUE)
    assert (late.state, late.words) == ("done", "已完成（超时 2 小时）")
    on_time = deadlines.deadline_state(
        DUE, warn_at=WARN, done_at=DUE, now=DUE + dt.timedelta(days=9)
    )
    assert (on_time.state, on_time.words) == ("done", "已按时完成")
    stopped = deadlines.deadline_state(
        DUE, warn_at=WARN, done_at=None, now=DUE + TICK, stopped=True
    )
    assert (stopped.state, stopped.words) == ("done", "已停止计时")
    assert deadlines.deadline_state(None, warn_at=None, done_at=None, now=DUE).state == "none"


def test_duration_words():
    assert deadlines.duration_words(dt.timedelta(days=2)) == "2 天"
    assert deadlines.duration_words(dt.timedelta(hours=1, minutes=5, seconds=59)) == "1 小时 5 分钟"
    assert deadlines.duration_words(dt.timedelta(seconds=59)) == "不足 1 分钟"


def test_ticket_deadlines_follow_the_warning_timer(db, user, make_ticket):
    """Amber exactly from the moment the 80 % warning timer fires (timers.plan)."""
    now = utcnow()
    ticket = make_ticket(user("operator"))
    ops.dispatch(
        db,
        user("dispatcher"),
        ticket,
        lead=unit(db, DONGGUAN),
        category=category(db, STREETLIGHT),
        now=now - dt.timedelta(hours=2),
    )  # sign due: 2 h
    db.flush()
    warn = ticket.clock_started_at + dt.timedelta(hours=2) * 0.8
    before = deadlines.ticket_deadlines(db, ticket, warn - TICK)
    at = deadlines.ticket_deadlines(db, ticket, warn)
    assert before[0][0] == "签收" and before[0][2].state == "ok"
    assert at[0][2].state == "warn"
