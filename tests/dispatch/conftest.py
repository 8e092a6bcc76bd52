"""Fixtures shared by the dispatch tests: snapshots of a ticket and its rows (to prove a refusal
changed nothing), and the grid workers' and callbacks' scenario builders."""

import datetime as dt

import pytest
import sqlalchemy as sa

from dispatch import operations as ops
from hotline.enums import CallbackOutcome, Channel, Role, Satisfaction, Solved
from hotline.models import (
    Area,
    Assignment,
    CallbackAttempt,
    Extension,
    Ticket,
    TicketEvent,
    Unit,
    User,
)
from tests.dispatch.common import DONGGUAN, MY_GRID, PHONE, PHOTOS, STREETLIGHT, TUE_0900
from tests.helpers import PASSWORD


def unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


def area(db, code):
    return db.scalars(sa.select(Area).where(Area.code == code)).one()


# -- refusals change nothing ----------------------------------------------------------------------


def _rows(db, model, ticket):
    table = model.__table__
    return db.execute(
        sa.select(table).where(table.c.ticket_id == ticket.id).order_by(table.c.id)
    ).all()


@pytest.fixture
def snapshot(db, ticket_count):
    """``snapshot(ticket)`` → everything a transition could change: the ticket row and its
    child rows (and how many tickets there are)."""

    def take(ticket):
        db.flush()
        row = db.execute(sa.select(Ticket.__table__).where(Ticket.id == ticket.id)).one()
        return {
            "ticket": row._asdict(),
            "events": _rows(db, TicketEvent, ticket),
            "assignments": _rows(db, Assignment, ticket),
            "extensions": _rows(db, Extension, ticket),
            "callback_attempts": _rows(db, CallbackAttempt, ticket),
            "tickets": ticket_count(),
        }

    return take


@pytest.fixture
def assert_unchanged(snapshot):
    """``assert_unchanged(ticket, before)``: nothing changed since ``before = snapshot(ticket)``."""

    def check(ticket, before):
        after = snapshot(ticket)
        assert after == before
        assert ticket.status.value == before["ticket"]["status"]
        assert ticket.version == before["ticket"]["version"]

    return check


# -- grid workers (tests/dispatch/test_operations_grid.py, pages/test_grid.py) -------------------


@pytest.fixture
def second_worker(db):
    """``second_worker(username="grid2", grids=(MY_GRID,))`` → another grid worker of 东关街道
    sharing the grid (workers cover for each other)."""

    def make(username="grid2", grids=(MY_GRID,)):
        worker = User(
            username=username,
            name="孙网格",
            role=Role.grid_worker,
            unit_id=unit(db, DONGGUAN).id,
            grids=[area(db, code) for code in grids],
        )
        worker.set_password(PASSWORD)
        db.add(worker)
        db.flush()
        return worker

    return make


@pytest.fixture
def dispatched(db, user, make_ticket):
    """``dispatched(grid=MY_GRID, lead=DONGGUAN, assists=(), **overrides)`` → a streetlight
    ticket located in ``grid`` and dispatched to ``lead``."""

    def make(grid=MY_GRID, lead=DONGGUAN, assists=(), **overrides):
        ticket = make_ticket(user("operator"), category="010103", area=grid, **overrides)
        ops.dispatch(
            db,
            user("dispatcher"),
            ticket,
            lead=unit(db, lead),
            assists=[unit(db, c) for c in assists],
        )
        db.flush()
        return ticket

    return make


@pytest.fixture
def centre(db):
    """``centre(code=MY_GRID)`` → the (lng, lat) centre of a grid."""

    def make(code=MY_GRID):
        a = area(db, code)
        return a.center_lng, a.center_lat

    return make


@pytest.fixture
def accepted(db, user, dispatched):
    """``accepted(**overrides)`` → a ``dispatched`` ticket the seeded worker "grid" accepted."""

    def make(**overrides):
        ticket = dispatched(**overrides)
        ops.accept(db, user("grid"), ticket)
        db.flush()
        return ticket

    return make


@pytest.fixture
def checked_in(db, user, accepted, centre):
    """``checked_in(**overrides)`` → an ``accepted`` ticket checked in at its grid's centre."""

    def make(**overrides):
        ticket = accepted(**overrides)
        lng, lat = centre()
        ops.check_in(db, user("grid"), ticket, lng=lng, lat=lat, photos=PHOTOS)
        db.flush()
        return ticket

    return make


# -- callbacks (tests/dispatch/test_operations_callback.py, api/test_callbacks.py) --------------


@pytest.fixture
def finished(db, user, make_ticket):
    """``finished(at=TUE_0900, **overrides)`` → a streetlight ticket of 东关街道 finished at
    ``at`` (handled the day before)."""

    def make(at=TUE_0900, **overrides):
        start = at - dt.timedelta(days=1)
        values = {"category": STREETLIGHT, "area": "370705001", "now": start}
        values.update(overrides)
        ticket = make_ticket(user("operator"), **values)
        ops.dispatch(db, user("dispatcher"), ticket, lead=unit(db, DONGGUAN), now=start)
        handler = user("dongguan")
        ops.sign(db, handler, ticket, now=start + dt.timedelta(minutes=30))
        if ticket.requester_phone:
            ops.contact(db, handler, ticket, note="已联系", now=start + dt.timedelta(hours=1))
        ops.finish(db, handler, ticket, result="路灯已修复", now=at)
        db.flush()
        return ticket

    return make


@pytest.fixture
def call(db, user):
    """``call(ticket, outcome, at, **kwargs)`` → the event of the seeded callback agent's call."""

    def make(ticket, outcome, at, **kwargs):
        return ops.record_callback(db, user("callback"), ticket, outcome=outcome, now=at, **kwargs)

    return make


@pytest.fixture
def answer(call):
    """``answer(ticket, at, solved=…, satisfaction=…)`` → the event of an answered call."""

    def make(ticket, at, solved=Solved.solved, satisfaction=Satisfaction.satisfied):
        return call(
            ticket,
            CallbackOutcome.answered,
            at,
            solved=solved,
            satisfaction=satisfaction,
            comment="回访记录",
        )

    return make


# -- the 市民端 (tests of dispatch.citizen_tracking, its pages and API) ---------------------------


@pytest.fixture
def citizen_ticket(db, user, make_ticket):
    """``citizen_ticket(phone=PHONE, channel=Channel.web, result=…)`` → a ticket filed with
    ``phone``, dispatched to 东关街道, signed, contacted and finished."""

    def make(phone=PHONE, channel=Channel.web, result="路灯已更换灯泡，恢复照明。"):
        ticket = make_ticket(
            user("operator"),
            category=STREETLIGHT,
            area="370705001",
            requester_phone=phone,
            channel=channel,
        )
        ops.dispatch(db, user("dispatcher"), ticket, lead=unit(db, DONGGUAN))
        ops.sign(db, user("dongguan"), ticket)
        ops.contact(db, user("dongguan"), ticket, note="已电话联系诉求人")
        ops.finish(db, user("dongguan"), ticket, result=result)
        db.flush()
        return ticket

    return make
