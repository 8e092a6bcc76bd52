"""The demo's history (server/history.py): a city's recent past made by the real operations."""

import datetime as dt

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from dashboards import ranking, snapshots
from dashboards.access import CITY
from dispatch.operations import EMERGENCY_LINES
from dispatch.states import IN_HANDLING
from hotline.enums import (
    AreaLevel,
    CallbackChannel,
    Channel,
    IntakeOutcome,
    RankingClass,
    Satisfaction,
    TicketStatus,
    TimerKind,
    UnitKind,
    Urgency,
    WarningKind,
)
from hotline.models import (
    Area,
    Assignment,
    CallbackAttempt,
    EarlyWarning,
    KnowledgeArticle,
    ModelRetrain,
    Notification,
    OutboxMessage,
    Ticket,
    TicketEvent,
    TimerFiring,
    Unit,
    User,
)
from server import history
from server.cli import main
from tests.helpers import is_postgres

#: The demo history runs with the review default the product ships (办结审核 of flagged
#: replies), as ``hotline demo`` does.
pytestmark = pytest.mark.usefixtures("shipped_review_default")

#: A Wednesday afternoon, local time 15:30: calls are still coming in.
NOW = dt.datetime(2026, 11, 25, 7, 30, tzinfo=dt.UTC)
MINE = Ticket.idempotency_key.like(history.KEY_PREFIX + "%")


def _fingerprint(db, serial_numbers):
    """Every history ticket as (key, number, status, lead unit, category, area, received)."""
    rows = db.execute(
        sa.select(
            Ticket.idempotency_key,
            Ticket.number,
            Ticket.status,
            Ticket.lead_unit_id,
            Ticket.category_id,
            Ticket.area_id,
            Ticket.received_at,
            Ticket.finished_at,
            Ticket.callback_satisfaction,
        )
        .where(MINE)
        .order_by(Ticket.received_at, Ticket.idempotency_key)
    ).all()
    # PostgreSQL's number serial comes from a sequence a rollback does not rewind.
    return [(row[0], row[1] if serial_numbers else row[1][:10], *row[2:]) for row in rows]


def test_same_seed_same_history_and_a_second_run_adds_nothing(db, database_url):
    serial_numbers = not is_postgres(database_url)
    first = history.generate(db, days=3, seed=5, now=NOW, per_day=20)
    assert not first.already and first.tickets > 30
    made = _fingerprint(db, serial_numbers)
    assert len(made) == first.tickets

    again = history.generate(db, days=3, seed=5, now=NOW, per_day=20)
    assert again.already and again.tickets == first.tickets
    other_seed = history.generate(db, days=3, seed=6, now=NOW, per_day=20)
    assert other_seed.already and other_seed.seed == 5
    assert _fingerprint(db, serial_numbers) == made
    assert history.report(again)[0].startswith("演示历史已存在（种子 5")
    # The classifier is asked to learn from this past, once (the demo's scheduler runs it).
    asked = db.scalars(sa.select(ModelRetrain)).all()
    assert [(r.status, r.trigger, r.requested_at) for r in asked] == [("pending", "command", NOW)]

    db.rollback()
    assert db.scalar(sa.select(sa.func.count()).select_from(Ticket).where(MINE)) == 0
    second = history.generate(db, days=3, seed=5, now=NOW, per_day=20)
    assert _fingerprint(db, serial_numbers) == made
    assert second.by_status == first.by_status

    db.rollback()
    different = history.generate(db, days=3, seed=6, now=NOW, per_day=20)
    assert _fingerprint(db, serial_numbers) != made
    assert different.tickets > 30


def test_a_week_of_history_looks_like_a_working_city(db, app):
    summary = history.generate(db, days=7, seed=1, now=NOW, per_day=60)
    assert 300 < summary.tickets < 500
    # The demo history does not split calls (拆单): its calls each hold one matter.
    reached = set(TicketStatus) - {TicketStatus.split}
    assert set(summary.by_status) == reached, "every status is reached"
    # Assisting units that signed file their part (协办反馈) before the lead finishes.
    reports = sa.select(sa.func.count()).where(TicketEvent.action == "report_assist")
    assert db.scalar(reports) > 0
    # Open311 requests come from other systems, which the demo history does not simulate.
    assert set(summary.by_channel) == set(Channel) - {Channel.open311}
    districts = db.scalars(sa.select(Area.name).where(Area.level == AreaLevel.district)).all()
    assert set(districts) <= set(summary.by_district)

    tickets = db.scalars(sa.select(Ticket).where(MINE)).all()
    # Received over the week, Monday busier than Sunday, and nothing after the end.
    assert all(NOW - dt.timedelta(days=7) < t.received_at <= NOW for t in tickets)
    local = [t.received_at.astimezone(history.ZoneInfo("Asia/Shanghai")) for t in tickets]
    monday = sum(1 for t in local if t.date() == dt.date(2026, 11, 23))
    sunday = sum(1 for t in local if t.date() == dt.date(2026, 11, 22))
    assert monday > 1.5 * sunday
    assert sum(1 for t in local if 9 <= t.hour < 12) > 5 * sum(1 for t in local if t.hour < 6)

    # Never the hotline centre; most tickets end with the unit they were first given.
    centre_parts = db.scalar(
        sa.select(sa.func.count())
        .select_from(Assignment)
        .join(Unit, Unit.id == Assignment.unit_id)
        .join(Ticket, Ticket.id == Assignment.ticket_id)
        .where(MINE, Unit.kind == UnitKind.hotline_centre)
    )
    assert centre_parts == 0
    dispatched = [t for t in tickets if t.lead_unit_id is not None]
    returned = [t for t in dispatched if t.lead_history]
    assert 0 < len(returned) < 0.15 * len(dispatched)

    # Overdue tickets are really overdue, and the timers fired as if the scheduler had run.
    overdue = [t for t in tickets if t.status in IN_HANDLING and t.finish_due < NOW]
    assert overdue
    fired = set(
        db.scalars(
            sa.select(TimerFiring.ticket_id).where(TimerFiring.kind == TimerKind.finish_overdue)
        )
    )
    assert {t.id for t in overdue} <= fired
    assert all(t.next_due_at is None or t.next_due_at > NOW for t in tickets)
    assert db.scalar(sa.select(sa.func.count()).select_from(Notification)) > 0

    # At intake, as at the console: emergencies transferred with the warning answered
    # 转接, a shown warning otherwise kept or dismissed as the urgency says, and knowledge-base
    # answers naming their article.
    receipts = dict(
        db.execute(
            sa.select(TicketEvent.ticket_id, TicketEvent.payload)
            .join(Ticket, Ticket.id == TicketEvent.ticket_id)
            .where(MINE, TicketEvent.action == "receive")
        ).all()
    )
    emergencies = [
        t for t in tickets if t.transfer_target and t.transfer_target.value in EMERGENCY_LINES
    ]
    assert emergencies
    for ticket in emergencies:
        assert receipts[ticket.id]["urgency_warning"]["decision"] == "transferred"
    for ticket in tickets:
        warning = receipts[ticket.id].get("urgency_warning")
        if warning is None or ticket in emergencies:
            continue
        assert warning["shown"] and warning["urgency"] == ticket.urgency.value
        kept = ticket.urgency == Urgency.emergency
        assert warning["decision"] == ("kept" if kept else "dismissed")
    answered = [t for t in tickets if t.intake_outcome == IntakeOutcome.answered]
    from_articles = [t for t in answered if t.answer_article_id is not None]
    assert from_articles and len(from_articles) < len(answered)
    articles = dict(db.execute(sa.select(KnowledgeArticle.id, KnowledgeArticle.code)).all())
    for ticket in from_articles:
        assert f"知识库条目 {articles[ticket.answer_article_id]}" in ticket.result

    # Called back, mostly satisfied; some reopened, some exempted.
    rated = [t.callback_satisfaction for t in tickets if t.callback_satisfaction]
    assert rated.count(Satisfaction.satisfied) > 0.6 * len(rated)
    assert db.scalar(sa.select(sa.func.count()).select_from(CallbackAttempt)) >= len(rated)
    assert any(t.reopen_count for t in tickets)
    # Some citizens of the web, WeChat and app channels rated online (一事一评), through the
    # portal accounts, and nobody called them after.
    online = db.execute(
        sa.select(Ticket.channel, User.username)
        .join(CallbackAttempt, CallbackAttempt.ticket_id == Ticket.id)
        .join(User, User.id == CallbackAttempt.agent_id)
        .where(MINE, CallbackAttempt.channel == CallbackChannel.online)
    ).all()
    assert online and summary.facts["其中网上评价"] == len(online)
    assert {channel for channel, _ in online} <= {Channel.web, Channel.wechat, Channel.app}
    assert all(username == f"portal-{channel.value}" for channel, username in online)
    # The past is not news: no citizen is texted about it.
    assert not db.scalar(
        sa.select(sa.func.count())
        .select_from(OutboxMessage)
        .join(Ticket, Ticket.id == OutboxMessage.ticket_id)
        .where(MINE, OutboxMessage.audience == "citizen")
    )
    assert any(t.scoring_exempt for t in tickets)
    assert summary.facts["超期未办结（现在）"] == len(overdue)

    # The month's ranking and the city board have content.
    month = ranking.load(db, "2026-11", now=NOW, config=app.config)
    assert month.totals["dispatched"] > 200
    assert month.ranked(RankingClass.department)
    board = snapshots.Board(db, app.config, now=NOW)
    rates = snapshots.month_rates(db, app.config, force=True, now=NOW)
    city = board.snapshots([CITY], month=rates)[CITY]
    today = city["today"]
    assert today["received"] > 20 and today["dispatched"] > 10 and today["signed"] > 5
    assert today["overdue"] == len(overdue)
    assert city["overdue"] and city["feed"]
    assert len(city["rates"]["month"]["rows"]) >= 5 and city["rates"]["month"]["total"]


def test_seed_command_makes_and_then_keeps_the_history(tmp_path, models_dir):
    url = f"sqlite:///{tmp_path / 'history.sqlite'}"
    env = {
        "HOTLINE_DATABASE_URL": url,
        "HOTLINE_SECRET_KEY": "cli-test",
        "HOTLINE_CLASSIFIER_MODELS_DIR": models_dir,
    }
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    # Four days end on today's real date: at least two working days whatever the weekday,
    # so tickets have been handled and closed (two days ending on a Saturday closed none).
    first = runner.invoke(main, ["seed", "--history-days", "4", "--seed", "9"], env=env)
    assert first.exit_code == 0, first.output
    assert "已生成近 4 天的演示历史（种子 9）" in first.output
    assert "按状态" in first.output and "已归档" in first.output
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        count = conn.scalar(sa.select(sa.func.count()).select_from(Ticket).where(MINE))
    assert count > 20
    again = runner.invoke(main, ["seed", "--history-days", "4", "--seed", "9"], env=env)
    assert again.exit_code == 0, again.output
    assert f"演示历史已存在（种子 9，{count} 件工单），本次未重复生成" in again.output
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(Ticket).where(MINE)) == count
    engine.dispose()


def test_the_history_tells_its_storylines(db):
    """A surge, a sudden event and repeated matters are written into the history, and the
    early warnings the scheduler would have raised are there (``warnings.backfill``)."""
    summary = history.generate(db, days=14, seed=3, now=NOW, per_day=15)
    raised = db.scalars(sa.select(EarlyWarning).order_by(EarlyWarning.created_at)).all()
    kinds = [w.kind for w in raised]
    assert WarningKind.surge in kinds and WarningKind.sudden in kinds
    surges, sudden_events = kinds.count(WarningKind.surge), kinds.count(WarningKind.sudden)
    assert summary.facts["预警（诉求激增/突发事件）"] == f"{surges}/{sudden_events}"
    local = history.ZoneInfo("Asia/Shanghai")
    surge = next(w for w in raised if w.kind == WarningKind.surge)
    # The burst main: the last working day at least three days before the end (Friday 20
    # November), in the morning, water (供水), several times the street's usual level.
    assert surge.created_at.astimezone(local).date() == dt.date(2026, 11, 20)
    assert 7 <= surge.created_at.astimezone(local).hour < 12
    assert surge.category.code == "0102" and surge.observed >= 3 * surge.expected
    sudden = next(w for w in raised if w.kind == WarningKind.sudden)
    assert sudden.created_at.astimezone(local).date() == dt.date(2026, 11, 24)
    assert sudden.area.level == AreaLevel.community and sudden.observed == 7
    # Told once each: the hotline centre, the mayor's office, the district government.
    told = db.scalars(sa.select(Notification.kind).where(Notification.kind.like("warning.%")))
    assert sorted(told) == sorted(["warning.surge"] * 3 + ["warning.sudden"] * 3)
    # The repeated matters: the mixing plant's night noise beside 凤凰嘉苑, with callers
    # who call again.
    plant = db.scalars(sa.select(Ticket).where(MINE, Ticket.content.like("%搅拌站%"))).all()
    assert len(plant) >= 8
    phones = [t.requester_phone for t in plant]
    assert len(set(phones)) < len(phones)
    assert all(t.area.code.startswith("370704003020") for t in plant)


def test_the_history_tells_its_accountability_stories(db):
    """The month before the last day's holds the 监察问责 stories, and the detectors find
    them: 城管局 and 住建局 passing three manhole covers back and forth within minutes, and
    梨园街道 reporting rubbish cleared while every callback says it was not."""
    from dashboards import accountability

    now = dt.datetime(2026, 12, 3, 7, 30, tzinfo=dt.UTC)  # the story month: November
    history.generate(db, days=35, seed=3, now=now, per_day=4)
    cases = {
        (c.unit_code, c.kind.value): c
        for c in accountability.detect(db, "2026-11", timezone="Asia/Shanghai")
    }
    covers = db.scalars(sa.select(Ticket).where(MINE, Ticket.title.like("%井盖%"))).all()
    story = {t.id for t in covers}
    for code in ("U-CGJ", "U-ZJJ"):
        case = cases[(code, "shirking")]
        found = {f["rule"]: f for f in case.findings}
        assert found["bounced"]["count"] >= 3
        assert found["quick_returns"]["count"] >= 3
        assert {i["ticket_id"] for i in found["bounced"]["items"]} <= story
    claims = {f["rule"]: f for f in cases[("U-S-370705003", "falsification")].findings}
    assert claims["unsolved_claims"]["count"] >= 4
    facts = claims["unsolved_claims"]["items"][0]["facts"]
    assert "已安排保洁人员清理完毕，问题已解决" in facts[0]["text"]
    assert "诉求人称未解决" in facts[1]["text"]
