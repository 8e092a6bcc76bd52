"""吹哨报到's tick for real on PostgreSQL: two schedulers ticking at once share the due
summonses through ``FOR UPDATE SKIP LOCKED`` and every timer fires exactly once."""

import datetime as dt
import threading
import time

import pytest
import sqlalchemy as sa

from dispatch import operations as ops
from dispatch import timers, whistle, whistle_timers
from hotline.db import get_session
from hotline.errors import Conflict
from hotline.models import Summons, SummonsFiring, Ticket, TicketEvent, Unit, User
from tests.helpers import is_postgres

TICKETS = 12
#: Blown 30 hours ago and never answered: 报到预警, 报到超时, 反馈预警 and 反馈超时 are due
#: (the first 吹哨督办, 24 h after the 反馈 deadline, is not).
TIMERS_PER_SUMMONS = 4


def test_two_schedulers_fire_every_summons_timer_once(committed_app, make_ticket):
    if not is_postgres(committed_app.config["DATABASE_URL"]):
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite has a single writer")
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=30)
    with committed_app.app_context():
        session = get_session()
        users = {
            u.username: u
            for u in session.scalars(
                sa.select(User).where(User.username.in_(["operator", "dispatcher", "dongguan"]))
            )
        }
        units = {
            u.code: u
            for u in session.scalars(
                sa.select(Unit).where(Unit.code.in_(["U-S-370705001", "U-CGJ"]))
            )
        }
        for _ in range(TICKETS):
            ticket = make_ticket(users["operator"], session=session, category="010103", now=start)
            ops.dispatch(
                session, users["dispatcher"], ticket, lead=units["U-S-370705001"], now=start
            )
            ops.sign(session, users["dongguan"], ticket, now=start)
            whistle.whistle(
                session,
                users["dongguan"],
                ticket,
                units=[units["U-CGJ"]],
                reason="需执法",
                now=start,
            )
        session.commit()

    factory = committed_app.extensions["hotline.db"]
    sla = timers.Settings.from_config(committed_app.config)
    barrier, totals = threading.Barrier(2), []

    def run():
        barrier.wait()
        totals.append(whistle_timers.run_due(factory, sla, batch=2))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    with committed_app.app_context():
        session = get_session()
        firings = session.scalar(sa.select(sa.func.count()).select_from(SummonsFiring))
        events = session.scalar(
            sa.select(sa.func.count()).where(
                TicketEvent.actor_id.is_(None),
                TicketEvent.action.like("%_overdue")
                | TicketEvent.action.like("%_warning")
                | (TicketEvent.action == "summons_escalation"),
            )
        )
        pending = session.scalar(
            sa.select(sa.func.count()).where(Summons.next_due_at <= dt.datetime.now(dt.UTC))
        )
    expected = TICKETS * TIMERS_PER_SUMMONS
    assert firings == expected
    assert sum(t.fired for t in totals) == expected
    assert events == expected
    assert pending == 0
    assert all(t.fired > 0 for t in totals), [t.fired for t in totals]


def test_two_identical_whistles_at_once_the_second_is_a_clean_conflict(committed_app, make_ticket):
    """A double click or an API retry while the first request still runs: the second waits
    for the first and is refused with a conflict, not a 500 from the unique index."""
    if not is_postgres(committed_app.config["DATABASE_URL"]):
        pytest.skip("two writers at once is PostgreSQL's; SQLite has a single writer")
    with committed_app.app_context():
        session = get_session()
        users = {
            u.username: u
            for u in session.scalars(
                sa.select(User).where(User.username.in_(["operator", "dispatcher", "dongguan"]))
            )
        }
        street = session.scalars(sa.select(Unit).where(Unit.code == "U-S-370705001")).one()
        ticket = make_ticket(users["operator"], session=session, category="010103")
        ops.dispatch(session, users["dispatcher"], ticket, lead=street)
        ops.sign(session, users["dongguan"], ticket)
        session.commit()
        number, version = ticket.number, ticket.version

    factory = committed_app.extensions["hotline.db"]
    first_flushed, outcomes = threading.Event(), {}

    def blow(name):
        with factory() as session:
            try:
                ticket = session.scalars(sa.select(Ticket).where(Ticket.number == number)).one()
                actor = session.scalars(sa.select(User).where(User.username == "dongguan")).one()
                cgj = session.scalars(sa.select(Unit).where(Unit.code == "U-CGJ")).one()
                if name == "second":
                    first_flushed.wait(30)
                whistle.whistle(
                    session, actor, ticket, units=[cgj], reason="需执法", expected_version=version
                )
                session.flush()
                if name == "first":
                    first_flushed.set()
                    time.sleep(1.5)  # the second request arrives meanwhile and must wait
                session.commit()
                outcomes[name] = "ok"
            except Exception as exc:  # noqa: BLE001 (the outcome is what the test checks)
                session.rollback()
                outcomes[name] = exc
            finally:
                first_flushed.set()

    threads = [threading.Thread(target=blow, args=(n,)) for n in ("first", "second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert outcomes["first"] == "ok"
    assert isinstance(outcomes["second"], Conflict), repr(outcomes["second"])
    assert outcomes["second"].code in {"TICKET_VERSION_CONFLICT", "SUMMONS_ALREADY_OPEN"}
    with committed_app.app_context():
        session = get_session()
        count = session.scalar(sa.select(sa.func.count()).select_from(Summons))
        whistles = session.scalar(sa.select(sa.func.count()).where(TicketEvent.action == "whistle"))
    assert (count, whistles) == (1, 1)
