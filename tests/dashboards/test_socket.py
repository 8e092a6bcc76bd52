"""The boards' Socket.IO namespace (dashboards/socket.py): who may watch which room, through
the Socket.IO test client."""

from dashboards import socket as board_socket

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
