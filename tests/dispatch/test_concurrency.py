"""Racing requests on one ticket: exactly one wins, the others get 409 and change nothing.

These tests commit for real (``committed_app``) so that each thread has its own connection
and transaction, as gunicorn workers would.
"""

import threading
import uuid

import pytest
import sqlalchemy as sa

from hotline.auth import token_hash
from hotline.db import get_session
from hotline.enums import Role
from hotline.models import ApiToken, Ticket, TicketEvent, Unit, User

RACERS = 6


def _add_user(app, username, role, unit_code=None):
    """A committed user with a token; returns the token."""
    with app.app_context():
        session = get_session()
        user = User(username=username, name=username, role=role)
        if unit_code:
            user.unit = session.scalars(sa.select(Unit).where(Unit.code == unit_code)).one()
        user.set_password("race-password")
        session.add(user)
        session.flush()
        token = "race_" + uuid.uuid4().hex
        session.add(ApiToken(user_id=user.id, token_hash=token_hash(token)))
        session.commit()
    return token


def _race(app, requests_):
    """Run ``(token, method, path, json, headers)`` requests at the same moment."""
    barrier = threading.Barrier(len(requests_))
    results = [None] * len(requests_)

    def worker(index, token, path, body, headers):
        client = app.test_client()
        barrier.wait()
        response = client.post(
            "/api/v1" + path,
            json=body,
            headers={"Authorization": f"Bearer {token}", **(headers or {})},
        )
        results[index] = (response.status_code, response.get_json())

    threads = [
        threading.Thread(target=worker, args=(i, *request)) for i, request in enumerate(requests_)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def _create(app, token, **extra):
    response = app.test_client().post(
        "/api/v1/tickets",
        json={
            "channel": "phone",
            "request_type": "complaint",
            "category": "0101",
            "content": "路灯不亮，晚上出行不便。",
            "requester_phone": "13805360001",
            "area": "370705001",
            **extra,
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["data"]["number"]


def _events(app, number, action):
    with app.app_context():
        session = get_session()
        return session.scalars(
            sa.select(TicketEvent)
            .join(Ticket, Ticket.id == TicketEvent.ticket_id)
            .where(Ticket.number == number, TicketEvent.action == action)
        ).all()


@pytest.fixture
def racers(committed_app):
    tag = uuid.uuid4().hex[:6]
    return {
        "operator": _add_user(committed_app, f"race_op_{tag}", Role.operator),
        "dispatchers": [
            _add_user(committed_app, f"race_d{i}_{tag}", Role.dispatcher) for i in range(RACERS)
        ],
        "handlers": [
            _add_user(committed_app, f"race_h{i}_{tag}", Role.unit_handler, "U-S-370705001")
            for i in range(RACERS)
        ],
    }


def test_racing_signatures_one_wins(committed_app, racers):
    app = committed_app
    number = _create(app, racers["operator"])
    dispatched = app.test_client().post(
        f"/api/v1/tickets/{number}/dispatch",
        json={"lead_unit": "U-S-370705001"},
        headers={"Authorization": f"Bearer {racers['dispatchers'][0]}"},
    )
    assert dispatched.status_code == 200, dispatched.get_json()

    results = _race(app, [(t, f"/tickets/{number}/sign", {}, None) for t in racers["handlers"]])

    statuses = sorted(code for code, _ in results)
    assert statuses == [200] + [409] * (RACERS - 1), results
    for code, body in results:
        if code == 409:
            assert body["error"]["code"] in {
                "TICKET_VERSION_CONFLICT",
                "TICKET_STATE_CONFLICT",
                "ALREADY_SIGNED",
            }
    assert len(_events(app, number, "sign")) == 1


def test_racing_dispatches_one_wins(committed_app, racers):
    app = committed_app
    number = _create(app, racers["operator"])
    units = ["U-CGJ", "U-S-370705001", "U-WATER", "U-ZJJ", "U-D-370705", "U-S-370705002"]
    results = _race(
        app,
        [
            (token, f"/tickets/{number}/dispatch", {"lead_unit": unit}, None)
            for token, unit in zip(racers["dispatchers"], units, strict=True)
        ],
    )
    winners = [body for code, body in results if code == 200]
    assert len(winners) == 1, results
    assert sorted(code for code, _ in results) == [200] + [409] * (RACERS - 1)
    events = _events(app, number, "dispatch")
    assert len(events) == 1
    assert events[0].payload["lead_unit"] == winners[0]["data"]["lead_unit"]["code"]
    with app.app_context():
        ticket = get_session().scalars(sa.select(Ticket).where(Ticket.number == number)).one()
        lead_assignments = [a for a in ticket.assignments if a.role.value == "lead"]
        assert len(lead_assignments) == 1


def test_racing_idempotent_creates_make_one_ticket(committed_app, racers):
    app = committed_app
    key = uuid.uuid4().hex
    body = {
        "channel": "web",
        "request_type": "help",
        "content": "同一条留言因网络重试被提交了多次。",
        "requester_phone": "13805360002",
    }
    token = racers["operator"]
    results = _race(app, [(token, "/tickets", body, {"Idempotency-Key": key})] * RACERS)
    codes = sorted(code for code, _ in results)
    assert codes == [200] * (RACERS - 1) + [201], results
    assert len({b["data"]["number"] for _, b in results}) == 1
    with app.app_context():
        count = get_session().scalar(
            sa.select(sa.func.count()).select_from(Ticket).where(Ticket.idempotency_key == key)
        )
    assert count == 1
