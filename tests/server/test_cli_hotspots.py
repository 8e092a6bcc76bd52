"""``hotline hotspots rebuild`` (server/cli.py): the window grouped again, what changed
printed, and a supervisor's decision kept."""

import datetime as dt
import json

import sqlalchemy as sa
from click.testing import CliRunner

from dashboards import hotspots
from hotline.db import get_session
from hotline.enums import HotIssueState
from hotline.models import HotIssue, HotIssueTicket, User
from server.cli import main
from tests.dashboards.hotspot_city import LIGHT, NOISE


def _invoke(app, *args):
    return CliRunner().invoke(
        main,
        list(args),
        env={
            "HOTLINE_DATABASE_URL": app.config["DATABASE_URL"],
            "HOTLINE_SECRET_KEY": "cli-test",
            "HOTLINE_REDIS_URL": app.config["REDIS_URL"] or "",
        },
        catch_exceptions=False,
    )


def test_rebuild_groups_the_window_and_keeps_decisions(committed_app, make_ticket):
    now = dt.datetime.now(dt.UTC)
    with committed_app.app_context():
        session = get_session()
        operator = session.scalars(sa.select(User).where(User.username == "operator")).one()
        for i, matter in enumerate([NOISE, LIGHT] * 3):
            title, content, area = matter
            make_ticket(
                operator,
                session=session,
                title=title,
                content=content,
                area=area,
                category="010103",
                requester_phone=f"1380536{i:04d}",
                now=now - dt.timedelta(hours=10 - i),
            )
        session.commit()

    first = _invoke(committed_app, "hotspots", "rebuild", "--json")
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    assert len(report["created"]) == 2 and report["memberships_added"] == 6

    with committed_app.app_context():
        session = get_session()
        supervisor = session.scalars(sa.select(User).where(User.username == "supervisor")).one()
        noise, light = report["created"]
        hotspots.mark_handled(session, supervisor, noise, "已联合执法")
        hotspots.merge(session, supervisor, light, noise, "演示：合并")
        session.commit()

    again = _invoke(committed_app, "hotspots", "rebuild")
    assert again.exit_code == 0, again.output
    assert "新建 0" in again.output and "删除 0" in again.output
    with committed_app.app_context():
        session = get_session()
        kept = session.get(HotIssue, noise)
        assert kept.state == HotIssueState.handled and kept.size == 6
        assert session.get(HotIssue, light).state == HotIssueState.merged
        assert (
            session.scalar(sa.select(sa.func.count()).where(HotIssueTicket.hot_issue_id == noise))
            == 6
        )
