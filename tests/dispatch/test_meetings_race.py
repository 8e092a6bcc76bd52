"""Two supervisors putting the same ticket on one meeting's agenda at once, for real on
PostgreSQL: both pass the "already on the agenda" check, the second insert waits on the first
and meets the (meeting, ticket) unique constraint; it is refused as ``MEETING_ITEM_EXISTS``
(409), not a 500, and the agenda holds the ticket once."""

import datetime as dt
import threading
import time

import pytest
import sqlalchemy as sa

from dispatch import meetings
from dispatch import operations as ops
from hotline.db import get_session
from hotline.errors import Conflict
from hotline.models import JointMeeting, MeetingItem, Ticket, Unit, User
from tests.helpers import is_postgres

ZONE = "Asia/Shanghai"


def _waiting_on_a_lock(engine):
    with engine.connect() as conn:
        return conn.scalar(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        )


def test_two_supervisors_add_the_same_ticket_at_once(committed_app, make_ticket):
    if not is_postgres(committed_app.config["DATABASE_URL"]):
        pytest.skip("concurrent writers are PostgreSQL's; SQLite has a single writer")
    now = dt.datetime.now(dt.UTC)
    with committed_app.app_context():
        session = get_session()
        users = {
            u.username: u
            for u in session.scalars(
                sa.select(User).where(User.username.in_(["operator", "dispatcher", "supervisor"]))
            )
        }
        lead = session.scalars(sa.select(Unit).where(Unit.code == "U-S-370705001")).one()
        ticket = make_ticket(users["operator"], session=session, category="010103", now=now)
        ops.dispatch(session, users["dispatcher"], ticket, lead=lead, now=now)
        meeting = meetings.create_meeting(
            session,
            users["supervisor"],
            title="疑难工单联席会议（并发）",
            scheduled_at=now + dt.timedelta(days=1),
        )
        session.commit()
        meeting_id, ticket_id = meeting.id, ticket.id

    factory = committed_app.extensions["hotline.db"]
    engine = factory.kw["bind"]
    outcome = []

    def second():
        with factory() as other:
            actor = other.scalars(sa.select(User).where(User.username == "supervisor")).one()
            try:
                meetings.add_item(
                    other,
                    actor,
                    other.get(JointMeeting, meeting_id),
                    other.get(Ticket, ticket_id),
                    reason="领导批示",
                    tz=ZONE,
                )
                other.commit()
                outcome.append("added")
            except Conflict as error:
                other.rollback()
                outcome.append(error.code)
            except Exception as error:  # noqa: BLE001 - the test reports what went wrong
                other.rollback()
                outcome.append(repr(error))

    with factory() as first:
        actor = first.scalars(sa.select(User).where(User.username == "supervisor")).one()
        meetings.add_item(
            first,
            actor,
            first.get(JointMeeting, meeting_id),
            first.get(Ticket, ticket_id),
            reason="领导批示",
            tz=ZONE,
        )  # inserted, not committed: the second insert will wait on it
        thread = threading.Thread(target=second)
        thread.start()
        deadline = time.monotonic() + 30
        while _waiting_on_a_lock(engine) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        first.commit()
    thread.join(timeout=60)

    assert outcome == ["MEETING_ITEM_EXISTS"]
    with committed_app.app_context():
        session = get_session()
        count = sa.select(sa.func.count()).where(MeetingItem.meeting_id == meeting_id)
        assert session.scalar(count) == 1
