"""个人信息保护: the retention job (hotline.retention) on committed transactions, as the
scheduler runs it — ticket_events' trigger only lets a transaction that holds its own
unfinished run row (on PostgreSQL not a savepoint's) redact events."""

import datetime as dt
import json
import threading
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from dashboards import ranking
from dispatch import operations as ops
from hotline import retention, settings
from hotline.db import get_session
from hotline.enums import (
    CallbackOutcome,
    Channel,
    IntakeOutcome,
    RequestType,
    Satisfaction,
    Solved,
    Urgency,
)
from hotline.models import (
    Area,
    Assignment,
    AuditLog,
    CallbackAttempt,
    Category,
    CitizenSession,
    IncomingCall,
    Notification,
    OutboxMessage,
    RetentionRun,
    Ticket,
    TicketEvent,
    Unit,
    User,
    VerificationCode,
)
from hotline.privacy import ID_REMOVED, PHONE_REMOVED
from server.cli import main
from tests.helpers import is_postgres

TZ = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 12, 5, 2, 0, tzinfo=dt.UTC)


def local(year, month, day, hour=9):
    return dt.datetime(year, month, day, hour, tzinfo=TZ).astimezone(dt.UTC)


OLD = local(2024, 3, 4)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
NAME = "张三丰"
PHONE = "13805361234"
ID_NUMBER = "370705199001011234"


def _user(session, username):
    return session.scalars(sa.select(User).where(User.username == username)).one()


def _receive(session, *, at, name=NAME, phone=PHONE):
    return ops.receive(
        session,
        _user(session, "operator"),
        channel=Channel.phone,
        request_type=RequestType.complaint,
        urgency=Urgency.normal,
        title=f"{name}反映路灯不亮",
        content=(
            f"{name[0]}先生来电，小区门口路灯不亮。身份证{ID_NUMBER}，"
            f"邮箱 zs@example.com，另一电话 0536-8888 8888。"
        ),
        requester_name=name,
        requester_phone=phone,
        address="奎文区东关街道胜利东街100号3单元502室",
        area=session.scalars(sa.select(Area).where(Area.code == "370705001")).one(),
        category=session.scalars(sa.select(Category).where(Category.code == "010103")).one(),
        lng=119.123456,
        lat=36.712345,
        suggestion=None,
        now=at,
    )[0]


def _handled(session, at):
    """An old ticket taken the whole way: dispatched, signed, contacted, an extension,
    finished, called back satisfied (closed); a call, a text and a notification about it."""
    ticket = _receive(session, at=at)
    street = session.scalars(sa.select(Unit).where(Unit.code == "U-S-370705001")).one()
    handler = _user(session, "dongguan")
    ops.dispatch(session, _user(session, "dispatcher"), ticket, lead=street, now=at + HOUR)
    ops.sign(session, handler, ticket, now=at + 2 * HOUR)
    ops.contact(session, handler, ticket, note=f"已联系{NAME}（{PHONE}）", now=at + 3 * HOUR)
    ops.request_extension(
        session, handler, ticket, days=2, reason=f"{NAME[0]}女士要求改期，电话{PHONE}", now=at + DAY
    )
    ops.decide_extension(
        session, _user(session, "supervisor"), ticket, approve=True, note="同意", now=at + DAY
    )
    ops.finish(
        session,
        handler,
        ticket,
        result=f"已联系{NAME}（{PHONE}），路灯已修复。",
        now=at + 2 * DAY,
    )
    ops.record_callback(
        session,
        _user(session, "callback"),
        ticket,
        outcome=CallbackOutcome.answered,
        solved=Solved.solved,
        satisfaction=Satisfaction.satisfied,
        comment=f"{NAME}表示满意，手机{PHONE}",
        now=at + 3 * DAY,
    )
    session.add(
        IncomingCall(
            call_id=f"call-{ticket.id}",
            caller_phone=PHONE,
            agent="operator",
            recording_ref=f"rec/{ticket.id}.wav",
            received_at=at,
            ticket_id=ticket.id,
        )
    )
    session.add(
        OutboxMessage(
            delivery_key=f"sms-{ticket.id}",
            channel="sms",
            audience="citizen",
            recipient=PHONE,
            kind="citizen_received",
            ticket_id=ticket.id,
            body=f"【12345】{NAME}您好，您的诉求已受理",
            payload={"fields": {"name": NAME, "phone": PHONE}},
            created_at=at,
            next_attempt_at=at,
        )
    )
    session.add(
        Notification(
            unit_id=street.id,
            ticket_id=ticket.id,
            kind="note",
            level="info",
            title="新工单",
            body=f"诉求人{NAME}，电话{PHONE}",
            created_at=at,
        )
    )
    return ticket


def _intake(session, at, **kwargs):
    ticket = _receive(session, at=at, **kwargs)
    ops.resolve_at_intake(
        session,
        _user(session, "operator"),
        ticket,
        outcome=IntakeOutcome.answered,
        answer=f"已答复{NAME}，如有问题拨打{PHONE}",
        now=at + HOUR,
    )
    return ticket


@pytest.fixture
def city(committed_app):
    """Committed tickets: an old closed one taken the whole way, an old one closed at intake,
    an old one still open, a recent closed one."""
    with committed_app.app_context():
        session = get_session()
        tickets = {
            "handled": _handled(session, OLD),
            "intake": _intake(session, OLD + DAY),
            "open": _receive(session, at=OLD),
            "recent": _intake(session, NOW - 40 * DAY),
        }
        street = session.scalars(sa.select(Unit).where(Unit.code == "U-S-370705001")).one()
        ops.dispatch(
            session, _user(session, "dispatcher"), tickets["open"], lead=street, now=OLD + HOUR
        )
        # The citizen portal's records of the phone, old and recent.
        for tag, at in (("old", OLD), ("new", NOW - DAY)):
            session.add(
                VerificationCode(
                    phone=PHONE, purpose="track", code_hash=tag, created_at=at, expires_at=at
                )
            )
            session.add(
                CitizenSession(token_hash=tag, phone=PHONE, created_at=at, expires_at=at + DAY)
            )
            session.add(
                OutboxMessage(
                    delivery_key=f"code:{tag}",
                    channel="sms",
                    audience="citizen",
                    recipient=PHONE,
                    kind="citizen_code",
                    body="【12345】验证码 123456",
                    created_at=at,
                    next_attempt_at=at,
                )
            )
            # A call never taken into a ticket.
            session.add(
                IncomingCall(
                    call_id=f"unlinked-{tag}",
                    caller_phone=PHONE,
                    agent="operator",
                    recording_ref=f"rec/unlinked-{tag}.wav",
                    received_at=at,
                )
            )
        # Off by default (redaction cannot be undone): the city's administrator turns it on.
        assert not retention.enabled(session)
        settings.update(session, None, {"retention.enabled": "1"})
        session.commit()
        ids = {k: t.id for k, t in tickets.items()}
    return committed_app, ids


def _snapshot(session, ticket_id):
    """Every value of the ticket and its rows that the job may touch."""
    t = session.get(Ticket, ticket_id)
    session.refresh(t)
    rows = {
        "ticket": {c.name: getattr(t, c.key) for c in Ticket.__table__.columns},
        "events": session.execute(
            sa.select(TicketEvent.reason, TicketEvent.payload)
            .where(TicketEvent.ticket_id == ticket_id)
            .order_by(TicketEvent.id)
        ).all(),
        "assignments": session.execute(
            sa.select(Assignment.report, Assignment.return_note).where(
                Assignment.ticket_id == ticket_id
            )
        ).all(),
        "callbacks": session.scalars(
            sa.select(CallbackAttempt.comment).where(CallbackAttempt.ticket_id == ticket_id)
        ).all(),
    }
    return rows


def _factory(app):
    return app.extensions["hotline.db"]


def test_old_closed_tickets_lose_personal_data_and_keep_what_statistics_read(city):
    app, ids = city
    with app.app_context():
        session = get_session()
        before = {k: _snapshot(session, i) for k, i in ids.items()}
        start, end = local(2024, 3, 1, 0), local(2024, 4, 1, 0)
        counts = {
            by: ranking.count_tickets(session, start, end, NOW, by=by)
            for by in ("unit", "area", "category")
        }
        session.rollback()

        report = retention.run(_factory(app), now=NOW)

        assert report.tickets == 2 and not report.dry_run
        assert report.newest == session.get(Ticket, ids["handled"]).closed_at
        session.expire_all()
        handled = session.get(Ticket, ids["handled"])
        # Removed.
        assert handled.requester_name is None and handled.requester_phone is None
        assert handled.address is None and handled.recording_ref is None
        assert (handled.lng, handled.lat) == (119.123, 36.712)
        assert handled.redacted_at == NOW
        # Scrubbed, every free text.
        texts = [handled.title, handled.content, handled.result, handled.callback_comment]
        for text in texts:
            assert NAME not in text and PHONE not in text and "张先生" not in text
        assert retention.NAME_REMOVED in handled.title
        assert ID_REMOVED in handled.content and "zs@example.com" not in handled.content
        assert "8888" not in handled.content
        after = _snapshot(session, ids["handled"])
        everything = repr(after)
        assert NAME not in everything and PHONE not in everything and ID_NUMBER not in everything
        assert PHONE_REMOVED in repr(after["events"])
        ext = session.execute(sa.text("SELECT reason FROM extensions")).scalars().all()
        assert all(PHONE not in r and "张女士" not in r for r in ext)
        call = session.scalars(sa.select(IncomingCall).where(IncomingCall.ticket_id == handled.id))
        call = call.one()
        assert call.caller_phone is None and call.recording_ref is None
        copies = session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.ticket_id == handled.id)
        ).all()
        assert all(c.recipient is None and PHONE not in repr(c.payload) for c in copies)
        sms = next(c for c in copies if c.delivery_key == f"sms-{handled.id}")
        assert NAME not in sms.body
        assert sms.payload == {"fields": {"name": retention.NAME_REMOVED}}
        note = session.scalars(
            sa.select(Notification).where(
                Notification.ticket_id == handled.id, Notification.kind == "note"
            )
        ).one()
        assert NAME not in note.body and PHONE not in note.body
        # Kept: every other column of the ticket, and the statistics.
        changed = {
            "requester_name",
            "requester_phone",
            "address",
            "recording_ref",
            "lng",
            "lat",
            "title",
            "content",
            "result",
            "callback_comment",
            "redacted_at",
            "version",
        }
        old = before["handled"]["ticket"]
        new = after["ticket"]
        assert {k: v for k, v in old.items() if k not in changed} == {
            k: v for k, v in new.items() if k not in changed
        }
        assert new["version"] == old["version"] + 1
        assert len(after["events"]) == len(before["handled"]["events"])
        assert {
            by: ranking.count_tickets(session, start, end, NOW, by=by)
            for by in ("unit", "area", "category")
        } == counts
        # The other old closed ticket too; the open one and the recent one untouched.
        assert session.get(Ticket, ids["intake"]).requester_phone is None
        for key in ("open", "recent"):
            assert _snapshot(session, ids[key]) == before[key]
        # One finished run row per batch, audited in the same transaction.
        runs = session.scalars(sa.select(RetentionRun).order_by(RetentionRun.id)).all()
        assert [(r.dry_run, r.tickets, r.finished_at is not None) for r in runs] == [
            (False, 2, True),
            (False, 0, True),  # the portal's records of phones
        ]
        assert runs[0].counts["requester_phone"] == 2
        assert runs[0].counts["call_numbers"] == 1
        assert runs[1].counts["citizen_codes"] == runs[1].counts["citizen_sessions"] == 1
        assert runs[1].counts["outbox_unlinked"] == 1
        assert runs[1].counts["calls_unlinked"] == 1
        calls = dict(
            session.execute(
                sa.select(IncomingCall.call_id, IncomingCall.caller_phone).where(
                    IncomingCall.ticket_id.is_(None)
                )
            ).all()
        )
        assert calls == {"unlinked-old": None, "unlinked-new": PHONE}
        audits = session.scalars(
            sa.select(AuditLog).where(AuditLog.action == "retention.redact").order_by(AuditLog.id)
        ).all()
        assert [a.payload["run"] for a in audits] == [r.id for r in runs]
        assert audits[0].payload["tickets"] == 2
        # Old portal records gone, recent ones kept.
        assert session.scalars(sa.select(VerificationCode.code_hash)).all() == ["new"]
        assert session.scalars(sa.select(CitizenSession.token_hash)).all() == ["new"]
        codes = session.execute(
            sa.select(OutboxMessage.delivery_key, OutboxMessage.recipient)
            .where(OutboxMessage.kind == "citizen_code")
            .order_by(OutboxMessage.delivery_key)
        ).all()
        assert codes == [("code:new", PHONE), ("code:old", None)]

        # Idempotent: a second run finds nothing and changes nothing.
        snapshot = _snapshot(session, ids["handled"])
        session.rollback()
        again = retention.run(_factory(app), now=NOW)
        assert again.tickets == 0 and again.runs == []
        session.expire_all()
        assert _snapshot(session, ids["handled"]) == snapshot


def test_dry_run_reports_and_changes_nothing(city):
    app, ids = city
    with app.app_context():
        session = get_session()
        before = {k: _snapshot(session, i) for k, i in ids.items()}
        session.rollback()
        report = retention.run(_factory(app), now=NOW, dry_run=True, batch=1)
        assert report.dry_run and report.tickets == 2
        assert report.counts["requester_name"] == 2
        assert report.counts["event_texts"] > 0 and report.counts["outbox"] >= 1
        assert report.counts["citizen_codes"] == report.counts["citizen_sessions"] == 1
        assert report.oldest < report.newest
        assert any("诉求人电话：2" in line for line in report.lines())
        session.expire_all()
        assert {k: _snapshot(session, i) for k, i in ids.items()} == before
        run = session.scalars(sa.select(RetentionRun)).one()
        assert run.dry_run and run.finished_at is not None and run.tickets == 2
        assert session.scalar(
            sa.select(sa.func.count()).where(AuditLog.action == "retention.dry_run")
        )
        session.rollback()
        # Stopped after a number of batches (the page's dry run): says whether more are due.
        part = retention.run(_factory(app), now=NOW, dry_run=True, batch=1, max_batches=1)
        assert part.tickets == 1 and part.capped and "仅统计了一部分" in part.lines()[1]
        whole = retention.run(_factory(app), now=NOW, dry_run=True, batch=1, max_batches=2)
        assert whole.tickets == 2 and not whole.capped


def test_the_setting_switches_it_off_and_sets_the_period(city):
    app, ids = city
    with app.app_context():
        session = get_session()
        settings.update(session, None, {"retention.enabled": "0"})
        session.commit()
        off = retention.run(_factory(app), now=NOW)
        assert off.skipped and off.tickets == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(RetentionRun)) == 0
        settings.update(session, None, {"retention.enabled": "1", "retention.months": "1"})
        session.commit()
        # 1 month: the recent ticket (closed 40 days ago) is due too, the open one never.
        assert retention.run(_factory(app), now=NOW).tickets == 3
        session.expire_all()
        assert session.get(Ticket, ids["open"]).requester_phone == PHONE


def test_events_stay_append_only_outside_a_run(city):
    app, _ = city
    engine = _factory(app).kw["bind"]
    update = sa.text("UPDATE ticket_events SET reason = 'forged'")
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        with engine.begin() as conn:
            conn.execute(update)
    # A dry run's row (finished, or even unfinished) opens nothing.
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        with engine.begin() as conn:
            conn.execute(
                sa.insert(RetentionRun).values(
                    dry_run=True, cutoff=NOW, started_at=NOW, tickets=0, counts={}
                )
            )
            conn.execute(update)
    # Inside a run: allowed.
    with engine.begin() as conn:
        conn.execute(
            sa.insert(RetentionRun).values(
                dry_run=False, cutoff=NOW, started_at=NOW, tickets=0, counts={}
            )
        )
        assert conn.execute(update).rowcount > 0
        conn.rollback()
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM ticket_events"))


def test_another_transaction_cannot_use_an_open_run(city, database_url):
    """PostgreSQL: a run open in one transaction lets no other transaction update events."""
    if not is_postgres(database_url):
        pytest.skip("SQLite has one writer: no other transaction can write meanwhile")
    app, _ = city
    engine = _factory(app).kw["bind"]
    with engine.connect() as holder:
        holder.execute(
            sa.insert(RetentionRun).values(
                dry_run=False, cutoff=NOW, started_at=NOW, tickets=0, counts={}
            )
        )
        # Make the unfinished row visible to others (the job never commits one): a row
        # another transaction wrote still does not open the trigger.
        holder.commit()
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(sa.text("UPDATE ticket_events SET reason = 'forged'"))
        holder.execute(sa.text("DELETE FROM retention_runs"))
        holder.commit()


def test_two_runners_share_the_work_without_redacting_twice(city, database_url):
    app, ids = city
    reports = []

    def go():
        reports.append(retention.run(_factory(app), now=NOW, batch=1))

    threads = [threading.Thread(target=go) for _ in range(2)]
    if not is_postgres(database_url):
        threads = threads[:1]  # SQLite: one writer
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.tickets for r in reports) == 2
    with app.app_context():
        session = get_session()
        runs = session.scalars(sa.select(RetentionRun).where(RetentionRun.tickets > 0)).all()
        assert sorted(r.tickets for r in runs) == [1, 1]
        assert all(r.finished_at for r in runs)


def test_cutoff_is_calendar_months():
    march31 = dt.datetime(2026, 3, 31, 5, tzinfo=dt.UTC)
    assert retention.cutoff_for(march31, 1) == dt.datetime(2026, 2, 28, 5, tzinfo=dt.UTC)
    assert retention.cutoff_for(march31, 24) == dt.datetime(2024, 3, 31, 5, tzinfo=dt.UTC)
    assert retention.cutoff_for(march31, 3) == dt.datetime(2025, 12, 31, 5, tzinfo=dt.UTC)


def test_scrub_names_only_with_a_usable_name():
    assert retention.scrub("王先生来电", retention._name_pattern("王五")) == "〔姓名已隐去〕来电"
    # One character would eat every word containing it.
    assert retention.scrub("王府井", retention._name_pattern("王")) == "王府井"
    assert retention.scrub("电话13805361234", None) == "电话" + PHONE_REMOVED


def test_the_command_prints_the_dry_run_report_then_runs(city):
    app, ids = city

    def hotline(*args):
        result = CliRunner().invoke(
            main,
            ["retention", "run", *args],
            env={
                "HOTLINE_DATABASE_URL": app.config["DATABASE_URL"],
                "HOTLINE_SECRET_KEY": "cli-test",
                "HOTLINE_REDIS_URL": "",
            },
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        return result.output

    # The command's "now" is the real one: every ticket here closed over 24 months ago but
    # the recent one, which closed 40 days before NOW (2026-12-05) — still under 24 months.
    dry = hotline("--dry-run")
    assert "试运行（未作任何修改）" in dry and "工单数：2" in dry and "诉求人电话：2" in dry
    with app.app_context():
        assert get_session().get(Ticket, ids["handled"]).requester_phone == PHONE
    done = json.loads(hotline("--json"))
    assert done["tickets"] == 2 and not done["dry_run"] and done["counts"]["requester_name"] == 2
    assert "工单数：0" in hotline()


def test_the_scheduler_runs_it_daily(city):
    from server import scheduler as scheduler_module

    app, ids = city
    built = scheduler_module.build(app, blocking=False)
    job = built.get_job(scheduler_module.RETENTION_JOB_ID)
    assert job.trigger.interval == dt.timedelta(days=1)
    assert scheduler_module.make_retention_job(app, clock=lambda: NOW)().tickets == 2
    with app.app_context():
        assert get_session().get(Ticket, ids["intake"]).redacted_at == NOW
