"""The notification outbox (hotline/outbox.py, hotline/outbox_delivery.py): copies written in
the change's transaction, delivered after it by the process's delivery thread or the
scheduler's sweep, retried with backoff, given up after the limit, never twice for one
delivery key (two deliverers at once), the real HTTP senders against a local gateway, a
gateway that is down never failing the operation, and the citizens' templates."""

import datetime as dt
import threading
import time

import pytest
import sqlalchemy as sa

from hotline import citizens, outbox, outbox_delivery, settings
from hotline.db import get_session
from hotline.enums import OutboxState
from hotline.errors import Conflict, ValidationFailed
from hotline.models import AuditLog, OutboxMessage
from hotline.outbox_delivery import (
    BACKOFF_MAX_SECONDS,
    MANY_PER_MARK,
    TIMEOUT_SECONDS,
    SmsSender,
    WeChatTemplateSender,
    backoff_seconds,
    claim_statement,
    deliver_due,
    drain,
    lease_seconds,
    sweep,
    wechat_templates,
)
from server.app import create_app
from tests.hotline.gateway import closed_port_url

NOW = dt.datetime(2026, 12, 5, 2, 0, tzinfo=dt.UTC)
PHONE = "13912345678"
OPENID = "oWx3A5fJk2Lr9QmZt7Yh0pQ1"


class Recorder:
    """A sender that records each copy (optionally slowly, or failing)."""

    def __init__(self, fail=None, delay=0):
        self.copies = []
        self.fail = fail
        self.delay = delay
        self._lock = threading.Lock()

    def send(self, copy):
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise ConnectionError(self.fail)
        with self._lock:
            self.copies.append(copy)


def tell(session, n=1, **overrides):
    values = {
        "kind": "citizen_received",
        "phone": PHONE,
        "fields": {"number": f"12345-20261205-{n:04d}", "reply_by": "2026-12-08 17:00"},
        "delivery_key": f"received:test-{n}",
        "now": NOW,
    }
    values.update(overrides)
    return outbox.tell_citizen(session, **values)


def copies(db):
    db.expire_all()
    return db.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)).all()


# --- written with the change --------------------------------------------------------------


def test_a_copy_is_written_in_the_changes_transaction(db):
    savepoint = db.begin_nested()
    assert tell(db) == 1
    assert [(c.channel, c.recipient, c.state) for c in copies(db)] == [
        ("sms", PHONE, OutboxState.pending)
    ]
    assert db.info["outbox_written"]
    savepoint.rollback()
    assert copies(db) == []
    assert "outbox_written" not in db.info


def test_a_delivery_key_is_written_once(db):
    assert tell(db) == 1
    assert tell(db) == 0
    assert len(copies(db)) == 1


def test_a_citizens_code_goes_by_sms_only_and_its_text_is_the_template(db):
    citizens.send_code(db, PHONE, purpose="submit", now=NOW)
    (copy,) = copies(db)
    assert (copy.channel, copy.audience, copy.kind) == ("sms", "citizen", "citizen_code")
    assert copy.body.startswith("【12345】您的验证码是") and "5分钟内有效" in copy.body
    assert copy.payload["template"] == "citizen_code"


def test_a_wechat_copy_goes_to_the_openid_and_later_ones_find_it(db, make_ticket, user):
    ticket = make_ticket(user("operator"))
    assert tell(db, ticket_id=ticket.id, openid=OPENID) == 2
    # Finished days later: nobody passes the openid any more, the first WeChat copy has it.
    finished = tell(
        db,
        kind="citizen_finished",
        fields={"number": ticket.number, "reply": "已修复", "rating_url": "https://x/r/1"},
        delivery_key=f"finished:{ticket.id}",
        ticket_id=ticket.id,
    )
    assert finished == 2
    found = [(c.channel, c.recipient, c.kind, c.delivery_key) for c in copies(db)]
    assert found == [
        ("sms", PHONE, "citizen_received", "citizen:sms:received:test-1"),
        ("wechat", OPENID, "citizen_received", "citizen:wechat:received:test-1"),
        ("sms", PHONE, "citizen_finished", f"citizen:sms:finished:{ticket.id}"),
        ("wechat", OPENID, "citizen_finished", f"citizen:wechat:finished:{ticket.id}"),
    ]
    # A code proves the phone: never by WeChat.
    assert tell(db, n=9, kind="citizen_code", fields={"code": "1"}, openid=OPENID) == 1


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({"X-WeChat-Gateway-Token": "s3cret", "X-WeChat-OpenID": OPENID}, OPENID),
        ({"X-WeChat-Gateway-Token": "wrong", "X-WeChat-OpenID": OPENID}, None),
        ({"X-WeChat-OpenID": OPENID}, None),
        ({"X-WeChat-Gateway-Token": "s3cret", "X-WeChat-OpenID": "<script>"}, None),
        ({"X-WeChat-Gateway-Token": "s3cret"}, None),
    ],
)
def test_an_openid_is_taken_only_from_the_citys_gateway(headers, expected):
    config = {"NOTIFY_WECHAT_GATEWAY_TOKEN": "s3cret"}
    assert outbox.openid_from_headers(headers, config) == expected
    # Without a secret configured, no header is believed.
    assert outbox.openid_from_headers(headers, {"NOTIFY_WECHAT_GATEWAY_TOKEN": ""}) is None


# --- delivery, retries, giving up ---------------------------------------------------------


def test_a_codes_text_leaves_the_database_once_sent_and_is_never_sent_again(app, db, user):
    factory = app.extensions["hotline.db"]
    citizens.send_code(db, PHONE, purpose="submit", now=NOW)
    db.commit()
    gateway = Recorder()
    assert deliver_due(factory, {"sms": gateway}, now=NOW).sent == 1
    assert "验证码是" in gateway.copies[0].text
    (copy,) = copies(db)
    assert copy.state == OutboxState.sent
    assert copy.body == outbox.SECRET_BLANKED and copy.payload == {}
    copy.state = OutboxState.failed
    with pytest.raises(Conflict) as caught:
        outbox.retry(db, user("admin"), copy)
    assert caught.value.code == "OUTBOX_SECRET_NOT_RESENT"


def test_an_undeliverable_code_is_given_up_after_two_tries(app, db):
    factory = app.extensions["hotline.db"]
    citizens.send_code(db, PHONE, purpose="track", now=NOW)
    db.commit()
    down = {"sms": Recorder(fail="gateway down")}
    assert deliver_due(factory, down, now=NOW).retried == 1
    assert deliver_due(factory, down, now=NOW + dt.timedelta(seconds=30)).failed == 1
    (copy,) = copies(db)
    assert copy.state == OutboxState.failed and "验证码是" not in copy.body


def test_retries_back_off_then_the_copy_is_failed_after_the_limit(app, db):
    factory = app.extensions["hotline.db"]
    tell(db)
    db.commit()
    down = {"sms": Recorder(fail="gateway down")}

    result = deliver_due(factory, down, now=NOW, max_attempts=3)
    assert (result.sent, result.retried, result.failed) == (0, 1, 0)
    (copy,) = copies(db)
    assert (copy.state, copy.attempts) == (OutboxState.pending, 1)
    assert copy.next_attempt_at == NOW + dt.timedelta(seconds=30)
    assert copy.last_error == "ConnectionError: gateway down"

    # Not due before its time.
    assert deliver_due(factory, down, now=NOW + dt.timedelta(seconds=29)).claimed == 0
    later = NOW + dt.timedelta(seconds=30)
    assert deliver_due(factory, down, now=later, max_attempts=3).retried == 1
    (copy,) = copies(db)
    assert copy.next_attempt_at == later + dt.timedelta(seconds=60)

    last = later + dt.timedelta(seconds=60)
    assert deliver_due(factory, down, now=last, max_attempts=3).failed == 1
    (copy,) = copies(db)
    assert (copy.state, copy.attempts, copy.sent_at) == (OutboxState.failed, 3, None)
    # A failed copy is not tried again by itself.
    assert deliver_due(factory, down, now=last + dt.timedelta(days=1)).claimed == 0


def test_backoff_doubles_up_to_an_hour():
    assert [backoff_seconds(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff_seconds(20) == BACKOFF_MAX_SECONDS == 3600


def test_a_copy_is_marked_sent_once_its_sender_returned(app, db):
    factory = app.extensions["hotline.db"]
    tell(db)
    db.commit()
    recorder = Recorder()
    result = deliver_due(factory, {"sms": recorder}, now=NOW)
    assert result.sent == 1
    (copy,) = copies(db)
    assert (copy.state, copy.attempts, copy.sent_at, copy.last_error) == (
        OutboxState.sent,
        1,
        NOW,
        None,
    )
    assert [c.delivery_key for c in recorder.copies] == [copy.delivery_key]
    assert recorder.copies[0].body == copy.body
    # A second sweep sends nothing again.
    assert deliver_due(factory, {"sms": recorder}, now=NOW + dt.timedelta(hours=1)).claimed == 0
    assert len(recorder.copies) == 1


def test_a_channel_without_a_sender_is_recorded_not_lost(app, db):
    tell(db)
    db.commit()
    result = deliver_due(app.extensions["hotline.db"], {}, now=NOW)
    assert result.retried == 1
    assert "没有配置“sms”渠道的发送方式" in copies(db)[0].last_error


def test_retry_puts_a_failed_copy_back_and_is_audited(app, db, user):
    tell(db)
    db.commit()
    deliver_due(app.extensions["hotline.db"], {"sms": Recorder(fail="x")}, now=NOW, max_attempts=1)
    (copy,) = copies(db)
    assert copy.state == OutboxState.failed
    admin = user("admin")

    outbox.retry(db, admin, copy, now=NOW)
    assert (copy.state, copy.attempts, copy.next_attempt_at) == (OutboxState.pending, 0, NOW)
    assert db.info["outbox_written"]
    entry = db.scalars(sa.select(AuditLog).where(AuditLog.action == "outbox.retry")).one()
    assert entry.target == f"outbox:{copy.id}" and entry.actor_id == admin.id
    with pytest.raises(Conflict) as refused:
        outbox.retry(db, admin, copy)
    assert refused.value.code == "OUTBOX_NOT_FAILED"
    assert deliver_due(app.extensions["hotline.db"], {"sms": Recorder()}, now=NOW).sent == 1


# --- the real HTTP senders ----------------------------------------------------------------


def test_the_sms_gateway_gets_the_citizens_text_and_the_delivery_key(app, db, gateway):
    tell(db)
    db.commit()
    senders = {"sms": SmsSender({"NOTIFY_SMS_URL": gateway.url + "/sms/send"})}
    assert deliver_due(app.extensions["hotline.db"], senders, now=NOW).sent == 1
    (request,) = gateway.requests
    assert request["delivery_key"] == "citizen:sms:received:test-1"
    assert request["json"] == {
        "mobiles": [PHONE],
        "content": "【12345】您的诉求已受理，工单号12345-20261205-0001，"
        "我们将于2026-12-08 17:00前答复您。",
    }


def test_the_wechat_template_message(app, db, gateway):
    tell(
        db,
        kind="citizen_finished",
        phone=None,
        openid=OPENID,
        fields={"number": "12345-20261205-0001", "reply": "已修复", "rating_url": "https://x/r/1"},
    )
    db.commit()
    config = {
        "NOTIFY_WECHAT_URL": gateway.url + "/cgi-bin/message/template/send?access_token=T0KEN",
        "NOTIFY_WECHAT_TEMPLATES": "citizen_received=tpl-r, citizen_finished=tpl-f",
    }
    senders = {"wechat": WeChatTemplateSender(config)}
    assert deliver_due(app.extensions["hotline.db"], senders, now=NOW).sent == 1
    (request,) = gateway.requests
    assert request["path"] == "/cgi-bin/message/template/send?access_token=T0KEN"
    assert request["delivery_key"] == "citizen:wechat:received:test-1"
    assert request["json"] == {
        "touser": OPENID,
        "template_id": "tpl-f",
        "data": {
            "number": {"value": "12345-20261205-0001"},
            "reply": {"value": "已修复"},
            "rating_url": {"value": "https://x/r/1"},
        },
        "url": "https://x/r/1",
    }

    # WeChat refuses with HTTP 200 and an errcode: a failed try, the token kept out.
    gateway.reply = {"errcode": 43004, "errmsg": "require subscribe"}
    tell(db, n=2, phone=None, openid=OPENID)
    db.commit()
    assert deliver_due(app.extensions["hotline.db"], senders, now=NOW).retried == 1
    error = copies(db)[-1].last_error
    assert "43004" in error and "T0KEN" not in error


def test_wechat_templates_setting():
    assert wechat_templates(" citizen_received=a ,citizen_finished = b,") == {
        "citizen_received": "a",
        "citizen_finished": "b",
    }
    with pytest.raises(ValueError, match="kind=template_id"):
        wechat_templates("citizen_received")
    with pytest.raises(ValueError, match="NOTIFY_WECHAT_URL"):
        WeChatTemplateSender({})


# --- several deliverers, processes that die, the delivery thread ---------------------------


def _committed_copies(app, count):
    with app.app_context():
        session = get_session()
        for n in range(count):
            tell(session, n=n, now=None)
        session.commit()


def _states(app):
    engine = app.extensions["hotline.db"].kw["bind"]
    with engine.connect() as conn:
        return conn.execute(
            sa.select(OutboxMessage.state, OutboxMessage.attempts, OutboxMessage.last_error)
        ).all()


def test_two_deliverers_at_once_send_each_copy_once(committed_app):
    _committed_copies(committed_app, 40)
    factory = committed_app.extensions["hotline.db"]
    recorder = Recorder(delay=0.01)
    start = threading.Barrier(2)
    totals = []

    def deliverer():
        start.wait()
        totals.append(drain(factory, {"sms": recorder}, limit=5))

    threads = [threading.Thread(target=deliverer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    keys = [c.delivery_key for c in recorder.copies]
    assert len(keys) == len(set(keys)) == 40
    assert sum(t.sent for t in totals) == 40
    assert {state for state, _, _ in _states(committed_app)} == {OutboxState.sent}


def test_a_process_killed_after_commit_loses_nothing(committed_app):
    """The change commits and its process dies before any delivery (no delivery thread here):
    the scheduler's sweep in another process delivers the copy."""
    assert committed_app.extensions["hotline.outbox"].courier is None
    with committed_app.app_context():
        session = get_session()
        citizens.send_code(session, PHONE, purpose="submit")
        session.commit()
    assert [s for s, _, _ in _states(committed_app)] == [OutboxState.pending]

    senders = committed_app.extensions["hotline.outbox"].senders
    recorder = Recorder()
    saved, senders["sms"] = senders["sms"], recorder
    try:
        assert sweep(committed_app).sent == 1
        assert sweep(committed_app).claimed == 0
    finally:
        senders["sms"] = saved
    assert [c.recipient for c in recorder.copies] == [PHONE]
    assert "您的验证码是" in recorder.copies[0].body


def _app_with_courier(committed_app, **config):
    return create_app(
        {
            "DATABASE_URL": committed_app.config["DATABASE_URL"],
            "SECRET_KEY": "outbox-test",
            "TESTING": True,
            "CLASSIFIER_PRELOAD": False,
            "OUTBOX_DELIVER_AFTER_COMMIT": True,
            **config,
        }
    )


def _wait_for(condition, seconds=15):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_the_delivery_thread_sends_right_after_the_commit(committed_app, gateway):
    app = _app_with_courier(committed_app, NOTIFY_SMS_URL=gateway.url + "/sms")
    with app.app_context():
        session = get_session()
        citizens.send_code(session, "13912340001", purpose="submit")
        session.flush()
        assert gateway.requests == []
        session.commit()
    assert _wait_for(lambda: _states(app) and _states(app)[0][0] == OutboxState.sent)
    (request,) = gateway.requests
    assert request["json"]["mobiles"] == ["13912340001"]
    app.extensions["hotline.db"].kw["bind"].dispose()


def test_a_gateway_that_is_down_never_fails_the_operation(committed_app):
    app = _app_with_courier(committed_app, NOTIFY_SMS_URL=closed_port_url())
    with app.app_context():
        session = get_session()
        wait = citizens.send_code(session, "13912340002", purpose="submit")
        session.commit()
    assert wait == citizens.RESEND_SECONDS
    # The code is saved; its copy failed once and waits for the retry.
    assert _wait_for(lambda: _states(app) and _states(app)[0][1] == 1)
    ((state, attempts, error),) = _states(app)
    assert (state, attempts) == (OutboxState.pending, 1)
    assert error.startswith("ConnectionError")
    app.extensions["hotline.db"].kw["bind"].dispose()


# --- the templates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, text, message",
    [
        ("citizen_received", "工单{number}，请于{deadline}前", "不存在的占位符 {deadline}"),
        ("citizen_code", "验证码{code}，工单{number}", "不存在的占位符 {number}"),
        ("citizen_received", "工单{number", "花括号不成对"),
        ("citizen_received", "工单number}", "花括号不成对"),
        ("citizen_received", "工单{}", "不存在的占位符 {}"),
        ("citizen_received", "工单{0}", "不存在的占位符 {0}"),
        ("citizen_received", "工单{number.upper}", "不存在的占位符 {number.upper}"),
        ("citizen_code", "验证码{code:>8}", "占位符 {code} 不能带格式说明"),
        ("citizen_code", "验证码{code!r}", "占位符 {code} 不能带格式说明"),
    ],
)
def test_a_bad_template_is_refused_naming_what_is_wrong(kind, text, message):
    with pytest.raises(ValueError) as refused:
        outbox.check_template(kind, text)
    assert message in str(refused.value)


def test_good_templates_and_their_preview():
    text = "【12345】{{重要}}验证码{code}，{minutes}分钟有效"
    assert outbox.check_template("citizen_code", text) == text
    sample, parts = outbox.preview("citizen_code", text)
    assert sample == "【12345】{重要}验证码482913，5分钟有效"
    assert parts == 1
    assert outbox.preview("citizen_received", "长" * 71)[1] == 2


def test_update_templates_checks_every_one_and_audits(db, user):
    admin = user("admin")
    with pytest.raises(ValidationFailed) as refused:
        outbox.update_templates(
            db,
            admin,
            {"citizen_received": "工单{number}{bad}", "citizen_reopened": "再次{number", "x": "y"},
        )
    assert refused.value.code == "TEMPLATE_INVALID"
    assert "受理通知使用了不存在的占位符 {bad}" in refused.value.message
    assert "再次反映通知花括号不成对" in refused.value.message
    assert set(refused.value.details) == {"citizen_received", "citizen_reopened", "x"}
    assert settings.get(db, "notify.template.citizen_received").startswith("【12345】您的诉求")

    changed = outbox.update_templates(db, admin, {"citizen_received": " 已受理：{number} "})
    assert changed == {"notify.template.citizen_received": "已受理：{number}"}
    tell(db)
    assert copies(db)[0].body == "已受理：12345-20261205-0001"
    entry = db.scalars(sa.select(AuditLog).where(AuditLog.action == "settings.update")).one()
    assert entry.actor_id == admin.id

    with pytest.raises(ValidationFailed, match="不能超过 200 个字"):
        outbox.update_templates(db, admin, {"citizen_received": "{number}" + "长" * 200})


def test_recipients_are_masked():
    assert outbox.masked_recipient("sms", "13912345678,05368234567") == "139****5678，053****4567"
    assert outbox.masked_recipient("wechat", OPENID) == "oWx3…Q1"
    assert outbox.masked_recipient("wecom", "U-CGJ") == "U-CGJ"
    assert outbox.masked_recipient("sms", None) == "—"


def test_the_claim_skips_what_another_process_is_claiming_on_postgresql():
    from sqlalchemy.dialects import postgresql

    sql = str(claim_statement(NOW, 10).compile(dialect=postgresql.dialect()))
    assert "FOR UPDATE SKIP LOCKED" in sql and "LIMIT" in sql and "RETURNING outbox.id" in sql


class ProcessKilled(BaseException):
    """Stands for SIGKILL: nothing after it in the process runs (no ``except Exception``)."""


def test_the_default_lease_outlasts_a_batch_of_sends_timing_out():
    assert lease_seconds(100) == 2 * 100 * TIMEOUT_SECONDS
    assert lease_seconds(100, 15) == 15
    # A configured lease leaves room for at least one send.
    assert lease_seconds(100, 5) == 3 * TIMEOUT_SECONDS


def test_sends_stop_once_the_claim_could_lapse_before_they_end(committed_app, monkeypatch):
    """With a short lease a process sends only while its claim surely outlasts the send:
    the copies left wait for the claim to lapse instead of going out twice (another process
    may take them the moment it lapses)."""
    _committed_copies(committed_app, 3)
    clock = [1000.0]
    monkeypatch.setattr(outbox_delivery.time, "monotonic", lambda: clock[0])
    sent = Recorder()

    class Slow:
        def send(self, copy):
            sent.send(copy)
            clock[0] += TIMEOUT_SECONDS + 1

    result = deliver_due(committed_app.extensions["hotline.db"], {"sms": Slow()}, lease=15)
    assert result.sent == len(sent.copies) == 1
    states = [state for state, _, _ in _states(committed_app)]
    assert states.count(OutboxState.sent) == 1 and states.count(OutboxState.pending) == 2


def test_a_process_killed_mid_batch_sends_again_only_the_copy_in_flight(committed_app):
    """Each copy is marked as soon as its sender returned: a process dying after the gateway
    took its third copy leaves the first two sent, and after the lease only the third goes
    again (with the later ones), not the whole batch."""
    _committed_copies(committed_app, 5)
    factory = committed_app.extensions["hotline.db"]
    first = Recorder()

    class Dying:
        def send(self, copy):
            first.send(copy)
            if len(first.copies) == 3:
                raise ProcessKilled

    with pytest.raises(ProcessKilled):
        deliver_due(factory, {"sms": Dying()}, lease=15)
    states = [state for state, _, _ in _states(committed_app)]
    assert states.count(OutboxState.sent) == 2
    assert states.count(OutboxState.pending) == 3

    now = dt.datetime.now(dt.UTC)
    # The dead process's claim holds for the lease (OUTBOX_LEASE_SECONDS), then lapses.
    early = now + dt.timedelta(seconds=14)
    assert deliver_due(factory, {"sms": Recorder()}, now=early).claimed == 0
    second = Recorder()
    assert deliver_due(factory, {"sms": second}, now=now + dt.timedelta(seconds=16)).sent == 3
    assert {c.delivery_key for c in first.copies} & {c.delivery_key for c in second.copies} == {
        first.copies[2].delivery_key
    }
    assert {state for state, _, _ in _states(committed_app)} == {OutboxState.sent}


def test_a_sender_taking_several_copies_gets_them_a_robot_posts_worth_at_a_time(committed_app):
    """A sender with ``send_many`` (the WeChat Work robot) is handed ``MANY_PER_MARK`` copies
    at a time, marked once it returned: a process dying in the second post leaves the
    first post's copies sent."""
    _committed_copies(committed_app, MANY_PER_MARK + 2)
    calls = []

    class DyingRobot:
        def send_many(self, copies):
            calls.append([c.delivery_key for c in copies])
            if len(calls) == 2:
                raise ProcessKilled
            return {c.id: None for c in copies}

    with pytest.raises(ProcessKilled):
        deliver_due(committed_app.extensions["hotline.db"], {"sms": DyingRobot()})
    assert [len(keys) for keys in calls] == [MANY_PER_MARK, 2]
    states = [state for state, _, _ in _states(committed_app)]
    assert states.count(OutboxState.sent) == MANY_PER_MARK
    assert states.count(OutboxState.pending) == 2
