"""拆单 for real on PostgreSQL: the last two children of a split call reaching a final state
in concurrent transactions still close the parent (``cohandling.close_parent_if_done`` locks
the parent before reading its children)."""

import threading

import pytest
import sqlalchemy as sa

from dispatch import cohandling
from dispatch import operations as ops
from hotline.enums import TicketStatus, TransferTarget
from hotline.models import Category, Ticket, TicketEvent, Unit, User
from tests.helpers import is_postgres

#: How long the first transaction keeps its child final but uncommitted, waiting for the
#: second to get as far as it can (without the lock, all the way).
HOLD_SECONDS = 1.5


def test_two_children_final_at_once_close_the_parent(committed_app, make_ticket):
    if not is_postgres(committed_app.config["DATABASE_URL"]):
        pytest.skip("row locks are PostgreSQL's; SQLite has a single writer")
    factory = committed_app.extensions["hotline.db"]
    with factory() as session:
        users = {
            u.username: u
            for u in session.scalars(
                sa.select(User).where(User.username.in_(["operator", "dispatcher"]))
            )
        }
        streetlight = session.scalars(sa.select(Category).where(Category.code == "010103")).one()
        units = session.scalars(
            sa.select(Unit).where(Unit.code.in_(["U-S-370705001", "U-CGJ"])).order_by(Unit.code)
        ).all()
        parent = make_ticket(users["operator"], session=session, area="370705")
        cohandling.split(
            session,
            users["operator"],
            parent,
            children=[
                cohandling.Child("路灯不亮", streetlight, None, units[0]),
                cohandling.Child("井盖缺失", streetlight, None, units[1]),
            ],
        )
        session.commit()
        parent_id = parent.id
        children = [c.id for c in cohandling.children_of(session, parent)]

    first_final, second_final, errors = threading.Event(), threading.Event(), []

    def transfer(child_id, before_commit):
        try:
            with factory() as session:
                dispatcher = session.scalars(
                    sa.select(User).where(User.username == "dispatcher")
                ).one()
                ticket = session.get(Ticket, child_id)
                ops.transfer(
                    session, dispatcher, ticket, target=TransferTarget.fire_119, reason="火情"
                )
                before_commit()
                session.commit()
        except Exception as error:  # reported by the main thread
            errors.append(error)
            first_final.set()

    def hold():
        # Final but uncommitted: the second runs meanwhile (without the lock, to its end).
        first_final.set()
        second_final.wait(HOLD_SECONDS)

    first = threading.Thread(target=transfer, args=(children[0], hold))
    second = threading.Thread(target=transfer, args=(children[1], second_final.set))
    first.start()
    assert first_final.wait(30)
    second.start()
    first.join(timeout=60)
    second.join(timeout=60)
    assert errors == []
    with factory() as session:
        assert session.get(Ticket, parent_id).status == TicketStatus.closed
        closings = session.scalars(
            sa.select(TicketEvent).where(
                TicketEvent.ticket_id == parent_id, TicketEvent.action == "close_split"
            )
        ).all()
        assert len(closings) == 1
