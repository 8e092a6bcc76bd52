"""The simulator (server/simulate.py) feeding a live server through its HTTP API."""

import threading

import sqlalchemy as sa
from werkzeug.serving import make_server

from hotline.enums import UnitKind
from hotline.models import Assignment, Category, Ticket, Unit


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


def test_lifecycle_never_dispatches_to_the_hotline_centre(committed_app, monkeypatch):
    """热线服务 (1103) calls: the catalogue names the hotline centre itself, which takes calls
    and handles none (dispatch refuses it); the simulator's dispatcher must pick a real unit
    (the place's street office) and the server refuses nothing."""
    from server import simulate

    original = simulate.CallGenerator.call

    def hotline_matters(self, template=None):
        own = [t for t in self.templates if t["category"].startswith("1103")]
        return original(self, template or self.rng.choice(own))

    monkeypatch.setattr(simulate.CallGenerator, "call", hotline_matters)
    server = make_server("127.0.0.1", 0, committed_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    lines = []
    try:
        simulate.run(
            f"http://127.0.0.1:{server.server_port}",
            "operator",
            "demo-12345",
            rate=0,
            count=8,
            lifecycle=True,
            random_seed=3,
            echo=lines.append,
        )
    finally:
        server.shutdown()
    assert not [line for line in lines if "拒绝" in line or line.startswith("失败")], lines
    with committed_app.app_context():
        from hotline.db import get_session

        session = get_session()
        leads = session.execute(
            sa.select(Unit.code, Unit.kind)
            .join(Assignment, Assignment.unit_id == Unit.id)
            .join(Ticket, Ticket.id == Assignment.ticket_id)
            .join(Category, Category.id == Ticket.category_id)
            .where(Category.code.like("1103%"))
        ).all()
        assert leads, "no 热线服务 ticket was dispatched"
        assert all(kind != UnitKind.hotline_centre for _, kind in leads), leads
