"""The simulator (server/simulate.py) feeding a live server through its HTTP API."""

import threading

import sqlalchemy as sa
from werkzeug.serving import make_server

from hotline.models import Ticket


def test_simulate_feeds_a_live_server(committed_app):
    server = make_server("127.0.0.1", 0, committed_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        from server import simulate

        made = simulate.run(
            f"http://127.0.0.1:{server.server_port}",
            "operator",
            "demo-12345",
            rate=0,
            count=25,
            lifecycle=True,
            random_seed=7,
            echo=lambda line: None,
        )
    finally:
        server.shutdown()
    assert made == 25
    with committed_app.app_context():
        from hotline.db import get_session

        session = get_session()
        statuses = session.scalars(sa.select(Ticket.status)).all()
        assert len(statuses) >= 25
        # The lifecycle mover dispatched tickets and some went further than dispatch.
        assert any(s.value != "received" for s in statuses)
        numbers = session.scalars(sa.select(Ticket.number)).all()
        assert len(set(numbers)) == len(numbers)
