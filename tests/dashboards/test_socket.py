"""The boards' Socket.IO namespace (dashboards/socket.py): who may watch which room, through
the Socket.IO test client."""

import pytest

from dashboards import socket as board_socket
from hotline import auth

NS = board_socket.NAMESPACE


def test_unauthenticated_socket_is_refused(board_app, connect):
    sio = connect(board_app, board_app.test_client())
    assert not sio.is_connected(NS)


def test_role_without_board_is_refused(board_app, app_clients, connect):
    assert not connect(board_app, app_clients("operator")).is_connected(NS)


def test_district_leader_only_their_district(board_app, app_clients, connect, received):
    app = board_app
    leader = app_clients("kuiwen-leader")
    assert not connect(app, leader, auth={"room": "city"}).is_connected(NS)
    assert not connect(app, leader, auth={"room": "district:370702"}).is_connected(NS)
    assert not connect(app, leader, auth={"room": "district:x"}).is_connected(NS)
    own = connect(app, leader)  # no room asked: their district
    assert own.is_connected(NS)
    assert received(own, "snapshot")[0]["room"] == "district:370705"
    refused = own.emit("join", {"room": "city"}, namespace=NS, callback=True)
    assert refused == {"ok": False, "error": "无权查看该看板"}


# -- catching up after missed updates -----------------------------------------------------
# A board whose update did not come (Redis away, a dropped connection) asks for the tickets
# after the newest one it holds (issue 12 §10).


def test_catch_up_returns_what_a_board_missed(
    board_app, db, user, make_ticket, connect, app_clients
):
    operator = user("operator")
    seen = make_ticket(operator, area="370705001")
    missed_here = [make_ticket(operator, area="370705001") for _ in range(3)]
    elsewhere = make_ticket(operator, area="370702001")
    db.flush()
    kuiwen = connect(board_app, app_clients("kuiwen-leader"))
    answer = kuiwen.emit("catch_up", {"after": seen.id}, namespace="/board", callback=True)
    assert answer["ok"] and answer["room"] == "district:370705"
    numbers = [item["number"] for item in answer["feed"]]
    # Newest first; the district's only; a margin of older ones is sent again (the board
    # skips those it has).
    assert numbers[:3] == [t.number for t in reversed(missed_here)]
    assert elsewhere.number not in numbers and seen.number in numbers
    assert all(item["id"] for item in answer["feed"])


@pytest.mark.parametrize("after", [None, "7", -1, True, 1.5])
def test_catch_up_refuses_a_bad_cursor(board_app, connect, app_clients, after):
    leader = connect(board_app, app_clients("leader"))
    answer = leader.emit("catch_up", {"after": after}, namespace="/board", callback=True)
    assert answer == {"ok": False, "error": "缺少有效的 after（已收到的最大工单序号）"}


# -- a board's login ending ------------------------------------------------------------------


def test_a_board_closes_when_its_login_ends(board_app, db, user, connect, app_clients):
    """Logout, a password change or deactivation end the user's sessions on the server; a
    board already open on one of them is disconnected at the next check."""
    leader = connect(board_app, app_clients("leader"))
    other = connect(board_app, app_clients("supervisor"))
    assert leader.is_connected(NS) and other.is_connected(NS)
    namespace = board_app.extensions["hotline.board_namespace"]
    namespace.close_ended(board_app)  # boards of earlier tests, whose logins rolled back
    assert leader.is_connected(NS) and other.is_connected(NS)

    auth.end_sessions(db, user("leader"), auth.END_LOGOUT)
    db.flush()
    closed = namespace.close_ended(board_app)
    assert len(closed) == 1
    assert not leader.is_connected(NS)
    assert other.is_connected(NS)


# -- metrics -------------------------------------------------------------------------------


def test_connected_boards_are_counted_in_the_metrics(board_app, app_clients, connect):
    from tests.hotline.test_observability import samples, value

    def clients():
        found = samples(board_app.test_client().get("/metrics"))
        return value(found, "hotline_socketio_clients", namespace="boards")

    before = clients()
    leader = connect(board_app, app_clients("leader"))
    supervisor = connect(board_app, app_clients("supervisor"))
    assert leader.is_connected(NS) and supervisor.is_connected(NS)
    assert clients() == before + 2
    refused = connect(board_app, app_clients("operator"))
    assert not refused.is_connected(NS)
    assert clients() == before + 2
    leader.disconnect(namespace=NS)
    assert clients() == before + 1
