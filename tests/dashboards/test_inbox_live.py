"""The live message centre (dashboards/inbox_live.py): who may join which inbox room over
Socket.IO, and that a change to a unit's inbox reaches that unit's pages only."""

import time

import sqlalchemy as sa

from dashboards import inbox_live
from hotline.models import Unit

NS = inbox_live.NAMESPACE


def unit_id(db, code):
    return db.scalar(sa.select(Unit.id).where(Unit.code == code))


def connect_inbox(app, client):
    return app.extensions["socketio"].test_client(app, namespace=NS, flask_test_client=client)


def changes(sio, wait=3.0):
    """The ``changed`` packets ``sio`` got (through Redis they arrive from another thread:
    waits up to ``wait`` seconds for the first)."""
    deadline = time.monotonic() + wait
    got = []
    while True:
        got += [p for p in sio.get_received(NS) if p["name"] == "changed"]
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_only_users_with_an_inbox_connect(board_app, app_clients):
    assert not connect_inbox(board_app, board_app.test_client()).is_connected(NS)
    assert not connect_inbox(board_app, app_clients("admin")).is_connected(NS)
    assert connect_inbox(board_app, app_clients("dongguan")).is_connected(NS)
    assert connect_inbox(board_app, app_clients("leader")).is_connected(NS)


def test_a_change_reaches_the_units_pages_only(board_app, db, app_clients):
    handler = connect_inbox(board_app, app_clients("dongguan"))
    worker = connect_inbox(board_app, app_clients("grid"))  # same street office
    cgj = connect_inbox(board_app, app_clients("cgj"))
    leader = connect_inbox(board_app, app_clients("leader"))  # the mayor's office
    for sio in (handler, worker, cgj, leader):
        sio.get_received(NS)

    board_app.extensions["hotline.notify"].inbox_changed([unit_id(db, "U-S-370705001")])

    # An empty message: the page asks the API (login and scope checked there).
    assert [p["args"] for p in changes(handler)] == [[{}]]
    assert len(changes(worker)) == 1
    assert changes(cgj, wait=0) == [] and changes(leader, wait=0) == []

    board_app.extensions["hotline.notify"].inbox_changed([unit_id(db, "U-SZFB")])
    assert len(changes(leader)) == 1 and changes(handler, wait=0) == []


def test_pages_load_the_live_script_before_the_centres(board_app, app_clients):
    html = app_clients("dongguan").get("/inbox").get_data(as_text=True)
    scripts = [html.index("/boards/static/inbox_live.js"), html.index("/static/messages.js")]
    assert scripts == sorted(scripts)
    # It fetches the Socket.IO client from beside itself: /boards/static/../../vendor/.
    assert board_app.test_client().get("/boards/static/inbox_live.js").status_code == 200
