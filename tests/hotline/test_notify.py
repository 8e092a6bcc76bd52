"""Notifications to units (hotline/notify.py): the inbox and the outbox copies written in the
change's transaction, the staff channels' configuration, and the channel senders
(hotline/outbox_delivery.py) against a real local HTTP gateway.

The WeChat Work robot and the SMS gateway are stood in for by a ``ThreadingHTTPServer`` on
127.0.0.1 that records every request (``tests/hotline/gateway.py``); the assertions are on the
exact JSON posted.
"""

import datetime as dt
import json
import logging

import pytest
import requests
import sqlalchemy as sa

from hotline import notify
from hotline.db import get_session
from hotline.errors import Forbidden
from hotline.models import Notification, OutboxMessage, Unit, User
from hotline.notify import Message, Notifier, deliver, staff_channels
from hotline.outbox_delivery import (
    WECOM_MAX_BYTES,
    Copy,
    LoggingSender,
    SmsSender,
    WeComSender,
    build_senders,
)
from tests.helpers import is_postgres
from tests.hotline.gateway import closed_port_url

NOW = dt.datetime(2026, 11, 16, 2, 0, tzinfo=dt.UTC)
DONGGUAN = "U-S-370705001"


def copy(unit_code="U-CGJ", n=1, **overrides):
    """A staff copy as a sender gets it (title and body of a sign warning)."""
    values = {
        "id": n,
        "delivery_key": f"unit:{n}:wecom",
        "channel": "wecom",
        "audience": "unit",
        "recipient": unit_code,
        "kind": "sign_warning",
        "title": f"【签收预警】工单 12345-20261116-{n:04d}",
        "body": "签收时限已用去 80%，请在 2026-11-16 11:00 前完成签收。",
        "payload": {},
        "ticket_number": f"12345-20261116-{n:04d}",
    }
    values.update(overrides)
    return Copy(**values)


def wecom(gateway):
    return WeComSender({"NOTIFY_WECOM_URL": gateway.url + "/cgi-bin/webhook/send?key=test-key"})


def sms(gateway):
    return SmsSender({"NOTIFY_SMS_URL": gateway.url + "/sms/send"})


# --- WeChat Work robot -------------------------------------------------------------------


def test_wecom_posts_one_text_message_with_every_copy(gateway):
    first, second = copy(n=1), copy(n=2, title="【签收超时】工单 B", body="已超过签收时限。")
    outcome = wecom(gateway).send_many([first, second])

    assert outcome == {1: None, 2: None}
    assert len(gateway.requests) == 1
    request = gateway.requests[0]
    assert request["path"] == "/cgi-bin/webhook/send?key=test-key"
    assert request["content_type"] == "application/json"
    assert request["json"] == {
        "msgtype": "text",
        "text": {"content": f"{first.title}\n{first.body}\n\n【签收超时】工单 B\n已超过签收时限。"},
    }
    # Chinese goes out as UTF-8 (escaped or not, it must decode to the same text).
    assert "签收" in json.loads(request["raw"].decode("utf-8"))["text"]["content"]


def test_wecom_splits_many_copies_under_the_byte_limit(gateway):
    copies = [copy(n=n) for n in range(1, 61)]
    texts = [f"{c.title}\n{c.body}" for c in copies]
    assert sum(len(t.encode()) for t in texts) > 3 * WECOM_MAX_BYTES

    outcome = wecom(gateway).send_many(copies)

    assert outcome == {n: None for n in range(1, 61)}
    contents = [body["text"]["content"] for body in gateway.bodies]
    assert len(contents) > 3
    assert all(body["msgtype"] == "text" for body in gateway.bodies)
    assert all(len(c.encode("utf-8")) <= WECOM_MAX_BYTES for c in contents)
    # Nothing lost, duplicated, reordered or cut in half.
    assert [part for c in contents for part in c.split("\n\n")] == texts
    # Chunks are filled greedily: the next copy would not have fitted.
    position = 0
    for content in contents[:-1]:
        position += len(content.split("\n\n"))
        following = texts[position].encode()
        assert len(content.encode()) + 2 + len(following) > WECOM_MAX_BYTES


def test_wecom_never_posts_more_than_the_byte_limit(gateway):
    # A title (≤ 200 characters) and body (≤ 1000) in Chinese can reach ~3.6 kB.
    long = copy(title="【督办】" + "超" * 196, body="请" * 1000)
    wecom(gateway).send(long)
    assert gateway.requests
    assert all(len(b["text"]["content"].encode()) <= WECOM_MAX_BYTES for b in gateway.bodies)


def test_wecom_error_code_in_a_200_answer_fails_its_copies(gateway):
    gateway.reply = {"errcode": 93000, "errmsg": "invalid webhook url"}
    outcome = wecom(gateway).send_many([copy(n=1), copy(n=2)])
    assert set(outcome) == {1, 2}
    assert all("93000" in error for error in outcome.values())
    with pytest.raises(RuntimeError, match="93000"):
        wecom(gateway).send(copy())


def test_wecom_error_keeps_the_robot_key_out_of_the_copy(gateway):
    gateway.status = 500
    outcome = wecom(gateway).send_many([copy()])
    assert "500" in outcome[1]
    assert "test-key" not in outcome[1]


# --- SMS gateway -------------------------------------------------------------------------


def test_sms_goes_to_every_phone_of_the_copy_with_its_delivery_key(gateway):
    sender = sms(gateway)
    cgj = copy(n=1, channel="sms", recipient="13800000000,13900000000", delivery_key="unit:1:sms")
    water = copy(n=3, channel="sms", recipient="05368234567", delivery_key="unit:3:sms")

    sender.send(cgj)
    sender.send(water)

    assert [r["path"] for r in gateway.requests] == ["/sms/send", "/sms/send"]
    assert all(r["content_type"] == "application/json" for r in gateway.requests)
    assert [r["delivery_key"] for r in gateway.requests] == ["unit:1:sms", "unit:3:sms"]
    assert gateway.bodies == [
        {"mobiles": ["13800000000", "13900000000"], "content": f"{cgj.title} {cgj.body}"},
        {"mobiles": ["05368234567"], "content": f"{water.title} {water.body}"},
    ]


def test_sms_without_a_phone_is_an_error_not_a_post(gateway):
    with pytest.raises(ValueError):
        sms(gateway).send(copy(channel="sms", recipient=""))
    assert gateway.requests == []


def test_the_old_recipients_setting_stops_the_start():
    # The phones moved to the units table: a deployment still listing them here must not
    # silently stop texting those units.
    config = {"NOTIFY_SENDERS": "sms", "NOTIFY_SMS_URL": "http://127.0.0.1:9/sms"}
    with pytest.raises(ValueError, match="值班电话"):
        staff_channels({**config, "NOTIFY_SMS_RECIPIENTS": "U-A:1"})
    assert staff_channels({**config, "NOTIFY_SMS_RECIPIENTS": ""}) == (["sms"], False)


@pytest.mark.parametrize("make", [wecom, sms])
def test_gateway_error_is_raised_by_the_sender(gateway, make):
    gateway.status = 500
    with pytest.raises(Exception) as raised:
        make(gateway).send(copy(channel="sms", recipient="13800000000"))
    assert "500" in str(raised.value)
    assert len(gateway.requests) == 1


def test_unreachable_gateway_raises_at_once():
    with pytest.raises(requests.ConnectionError):
        SmsSender({"NOTIFY_SMS_URL": closed_port_url()}).send(copy(recipient="13800000000"))


# --- configuration -----------------------------------------------------------------------


def test_staff_channels_by_name_in_order():
    config = {
        "NOTIFY_SENDERS": " logging, wecom ,sms,",
        "NOTIFY_WECOM_URL": "http://127.0.0.1:9/wecom",
        "NOTIFY_SMS_URL": "http://127.0.0.1:9/sms",
    }
    assert staff_channels(config) == (["wecom", "sms"], True)
    senders = build_senders(config)
    assert type(senders["wecom"]) is WeComSender
    assert type(senders["sms"]) is SmsSender
    assert senders["wecom"].url == "http://127.0.0.1:9/wecom"
    assert senders["sms"].url == "http://127.0.0.1:9/sms"
    # WeChat has no URL: its copies are logged.
    assert type(senders["wechat"]) is LoggingSender


@pytest.mark.parametrize("value", ["", " , "])
def test_staff_channels_none_configured(value):
    assert staff_channels({"NOTIFY_SENDERS": value}) == ([], False)
    assert staff_channels({}) == ([], False)


def test_a_channel_sender_by_class_path():
    config = {"NOTIFY_SMS_SENDER": f"{__name__}:RecordingSender", "EXTRA": "x"}
    custom = build_senders(config)["sms"]
    assert type(custom).__name__ == "RecordingSender"
    assert custom.config is config


class RecordingSender:
    """A ``module:Class`` sender for ``build_senders``; records what it is given."""

    def __init__(self, config):
        self.config = config
        self.copies = []

    def send(self, copy):
        self.copies.append(copy)


def test_a_class_in_notify_senders_says_where_it_goes_now():
    with pytest.raises(ValueError, match="NOTIFY_SMS_SENDER"):
        staff_channels({"NOTIFY_SENDERS": f"logging,{__name__}:RecordingSender"})
    with pytest.raises(ValueError, match="unknown sender 'fax'"):
        staff_channels({"NOTIFY_SENDERS": "fax"})


@pytest.mark.parametrize(
    "name, setting",
    [("wecom", "NOTIFY_WECOM_URL"), ("sms", "NOTIFY_SMS_URL")],
)
def test_a_staff_channel_without_url_fails_at_start(name, setting):
    with pytest.raises(ValueError, match=setting):
        staff_channels({"NOTIFY_SENDERS": name})
    with pytest.raises(ValueError, match=setting):
        build_senders({f"NOTIFY_{name.upper()}_SENDER": "http", setting: ""})
    # Logging them is a choice one can make (a trial run).
    assert staff_channels({"NOTIFY_SENDERS": name, f"NOTIFY_{name.upper()}_SENDER": "logging"})


def test_build_senders_unknown_class_fails_at_start():
    with pytest.raises(ModuleNotFoundError):
        build_senders({"NOTIFY_SMS_SENDER": "no_such_module_xyz:Sender"})
    with pytest.raises(AttributeError):
        build_senders({"NOTIFY_SMS_SENDER": f"{__name__}:NoSuchSender"})
    with pytest.raises(ValueError, match="NOTIFY_WECHAT_SENDER"):
        build_senders({"NOTIFY_WECHAT_SENDER": "carrier-pigeon"})


def test_logging_sender_writes_the_whole_copy(caplog):
    with caplog.at_level(logging.INFO, logger="hotline.outbox"):
        LoggingSender({}, "wecom").send(copy("U-CGJ", 7))
        LoggingSender({}, "sms").send(
            copy(
                channel="sms",
                recipient="13912345678",
                kind="citizen_code",
                title="",
                body="【12345】您的验证码是482913。",
                ticket_number=None,
            )
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "hotline.outbox"]
    assert lines == [
        "wecom → U-CGJ [12345-20261116-0007] 【签收预警】工单 12345-20261116-0007 "
        "签收时限已用去 80%，请在 2026-11-16 11:00 前完成签收。",
        "sms → 13912345678 [citizen_code] 【12345】您的验证码是482913。",
    ]
    assert all(r.levelno == logging.INFO for r in caplog.records)


# --- the inbox and the outbox, in the change's transaction --------------------------------


def unit_message(session, code, n):
    unit = session.scalars(sa.select(Unit).where(Unit.code == code)).one()
    return Message(
        unit_id=unit.id,
        unit_code=code,
        kind="test",
        level="info",
        title=f"测试消息 {n}",
        body="只在提交后发出。",
    )


def inbox_titles(app, prefix="测试消息"):
    """Titles in the inbox as another connection sees them."""
    engine = app.extensions["hotline.db"].kw["bind"]
    with engine.connect() as conn:
        return conn.scalars(
            sa.select(Notification.title)
            .where(Notification.title.startswith(prefix))
            .order_by(Notification.id)
        ).all()


def outbox_rows(app):
    """(delivery key, channel, recipient, title) of the outbox as another connection sees it."""
    engine = app.extensions["hotline.db"].kw["bind"]
    with engine.connect() as conn:
        return conn.execute(
            sa.select(
                OutboxMessage.delivery_key,
                OutboxMessage.channel,
                OutboxMessage.recipient,
                OutboxMessage.title,
            ).order_by(OutboxMessage.id)
        ).all()


@pytest.fixture
def channels(committed_app):
    """``channels("wecom", "sms")``: units' copies go by those channels for this test."""
    notifier = committed_app.extensions["hotline.notify"]
    saved = list(notifier.channels)

    def use(*names):
        notifier.channels[:] = names

    yield use
    notifier.channels[:] = saved


def test_copies_are_written_with_the_inbox_in_one_transaction(committed_app, channels):
    channels("wecom")
    with committed_app.app_context():
        session = get_session()
        assert session.info["notifier"] is committed_app.extensions["hotline.notify"]
        first, second = unit_message(session, "U-CGJ", 1), unit_message(session, DONGGUAN, 2)
        deliver(session, [first], NOW)
        deliver(session, [second], NOW)
        session.flush()
        # In the inbox and the outbox of this transaction, not yet anywhere else.
        assert session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 2
        if is_postgres(committed_app.config["DATABASE_URL"]):
            # (SQLite: another connection would wait for this one's write lock.)
            assert outbox_rows(committed_app) == []
        session.commit()
        ids = session.scalars(
            sa.select(Notification.id)
            .where(Notification.title.startswith("测试消息"))
            .order_by(Notification.id)
        ).all()

    assert inbox_titles(committed_app) == ["测试消息 1", "测试消息 2"]
    assert outbox_rows(committed_app) == [
        (f"unit:{ids[0]}:wecom", "wecom", "U-CGJ", "测试消息 1"),
        (f"unit:{ids[1]}:wecom", "wecom", DONGGUAN, "测试消息 2"),
    ]
    with committed_app.app_context():
        rows = get_session().scalars(
            sa.select(Notification).where(Notification.title.startswith("测试消息"))
        )
        assert {(n.kind, n.level.value, n.created_at, n.read_at) for n in rows} == {
            ("test", "info", NOW, None)
        }
        copies = get_session().scalars(sa.select(OutboxMessage)).all()
        assert {(c.audience, c.kind, c.state.value, c.attempts, c.body) for c in copies} == {
            ("unit", "test", "pending", 0, "只在提交后发出。")
        }
        assert [c.notification_id for c in copies] == ids


def test_a_rolled_back_change_leaves_no_copy(committed_app, channels):
    channels("wecom")
    with committed_app.app_context():
        session = get_session()
        deliver(session, [unit_message(session, "U-CGJ", 1)], NOW)
        session.flush()
        session.rollback()
        kept = unit_message(session, "U-CGJ", 2)
        deliver(session, [kept], NOW)
        session.commit()

    assert inbox_titles(committed_app) == ["测试消息 2"]
    assert [row.title for row in outbox_rows(committed_app)] == ["测试消息 2"]


def test_a_request_ending_without_commit_leaves_no_copy(committed_app, channels):
    channels("wecom", "sms")
    with committed_app.app_context():
        session = get_session()
        deliver(session, [unit_message(session, "U-CGJ", 1)], NOW)
        session.flush()
    # The request ends without a commit (teardown closes the session).
    assert inbox_titles(committed_app) == []
    assert outbox_rows(committed_app) == []


def test_alike_messages_get_a_copy_each(committed_app, channels):
    channels("wecom")
    with committed_app.app_context():
        session = get_session()
        same = unit_message(session, "U-CGJ", 1)
        deliver(session, [same, same, unit_message(session, "U-CGJ", 2)], NOW)
        session.commit()
    keys = [row.delivery_key for row in outbox_rows(committed_app)]
    assert len(keys) == len(set(keys)) == 3


def test_only_logging_writes_no_copy_and_logs_after_commit(committed_app, channels, caplog):
    channels()
    notifier = committed_app.extensions["hotline.notify"]
    assert notifier.log_lines
    with committed_app.app_context(), caplog.at_level(logging.INFO, "hotline.notify"):
        session = get_session()
        deliver(session, [unit_message(session, "U-CGJ", 1)], NOW)
        session.flush()
        assert "测试消息 1" not in caplog.text
        session.commit()
    assert "notify U-CGJ test -: 测试消息 1" in caplog.text
    assert outbox_rows(committed_app) == []
    assert inbox_titles(committed_app) == ["测试消息 1"]


@pytest.fixture
def duty_phones(committed_app):
    """``duty_phones(code, phones)`` sets a unit's duty phones (committed; put back after)."""
    saved = {}

    def set_phones(code, phones):
        with committed_app.app_context():
            session = get_session()
            unit = session.scalars(sa.select(Unit).where(Unit.code == code)).one()
            saved.setdefault(code, list(unit.phones or []))
            unit.phones = phones
            session.commit()

    yield set_phones
    for code, phones in saved.items():
        set_phones(code, phones)


def test_sms_copies_go_to_the_duty_phones_the_unit_has_when_made(
    committed_app, channels, duty_phones
):
    channels("sms")
    duty_phones("U-CGJ", ["13800000000", "05368234567"])
    duty_phones(DONGGUAN, [])
    with committed_app.app_context():
        session = get_session()
        deliver(
            session,
            [unit_message(session, "U-CGJ", 1), unit_message(session, DONGGUAN, 2)],
            NOW,
        )
        # A change made after the message was made does not redirect it.
        session.scalars(sa.select(Unit).where(Unit.code == "U-CGJ")).one().phones = []
        session.commit()

    # The street office has no duty phone: its inbox only.
    assert [(row.channel, row.recipient) for row in outbox_rows(committed_app)] == [
        ("sms", "13800000000,05368234567")
    ]


def test_deliver_nothing_is_a_no_op(committed_app, channels):
    channels("wecom")
    with committed_app.app_context():
        session = get_session()
        deliver(session, [], NOW)
        assert "pending_notifications" not in session.info
        assert "outbox_written" not in session.info
        session.commit()
    assert outbox_rows(committed_app) == []


def test_a_session_without_notifier_writes_the_inbox_only(committed_app, channels):
    """The demo history's session (``notifier`` None): the past is not news."""
    channels("wecom")
    factory = committed_app.extensions["hotline.db"]
    with factory(info={"notifier": None}) as session:
        deliver(session, [unit_message(session, "U-CGJ", 1)], NOW)
        session.commit()
    assert inbox_titles(committed_app) == ["测试消息 1"]
    assert outbox_rows(committed_app) == []


def test_notifier_defaults():
    notifier = Notifier()
    assert notifier.channels == [] and not notifier.log_lines


# -- the message centre: mark all read, inbox watchers -------------------------------------


@pytest.fixture
def watched(committed_app):
    """The unit ids each inbox watcher call got, as the live message centre would."""
    calls = []
    notifier = committed_app.extensions["hotline.notify"]
    notifier.inbox_watchers.append(calls.append)
    try:
        yield calls
    finally:
        notifier.inbox_watchers.remove(calls.append)


def unit_id(session, code):
    return session.scalar(sa.select(Unit.id).where(Unit.code == code))


def user_named(session, username):
    return session.scalars(sa.select(User).where(User.username == username)).one()


def test_watchers_hear_of_delivered_items_after_commit_only(committed_app, watched):
    with committed_app.app_context():
        session = get_session()
        deliver(session, [unit_message(session, "U-CGJ", 1)], NOW)
        session.flush()
        session.rollback()
        assert watched == []
        deliver(
            session,
            [unit_message(session, DONGGUAN, 2), unit_message(session, "U-CGJ", 3)],
            NOW,
        )
        session.flush()
        assert watched == []
        session.commit()
        assert watched == [sorted([unit_id(session, DONGGUAN), unit_id(session, "U-CGJ")])]


def test_mark_all_read_reads_the_own_inbox_up_to_an_item(committed_app, watched):
    with committed_app.app_context():
        session = get_session()
        deliver(session, [unit_message(session, DONGGUAN, n) for n in (1, 2, 3)], NOW)
        deliver(session, [unit_message(session, "U-CGJ", 4)], NOW)
        session.commit()
        watched.clear()
        handler = user_named(session, "dongguan")
        street = session.get(Unit, handler.unit_id)
        ids = session.scalars(
            sa.select(Notification.id)
            .where(Notification.unit_id == street.id)
            .order_by(Notification.id)
        ).all()

        assert notify.unread_count(session, street.id) == 3
        assert notify.mark_all_read(session, handler, street, up_to=ids[1]) == 2
        assert watched == []
        session.commit()
        assert watched == [[street.id]]
        assert notify.unread_count(session, street.id) == 1
        rows = session.scalars(
            sa.select(Notification).where(Notification.id.in_(ids)).order_by(Notification.id)
        ).all()
        assert [(n.read_at is not None, n.read_by_id) for n in rows] == [
            (True, handler.id),
            (True, handler.id),
            (False, None),
        ]
        first_read = rows[0].read_at

        # Nothing left up to there: no change, nobody told; then the rest.
        watched.clear()
        assert notify.mark_all_read(session, handler, street, up_to=ids[1]) == 0
        session.commit()
        assert watched == []
        assert notify.mark_all_read(session, handler, street) == 1
        session.commit()
        assert session.get(Notification, ids[0]).read_at == first_read
        # Another unit's inbox was not touched.
        assert notify.unread_count(session, unit_id(session, "U-CGJ")) == 1


def test_mark_all_read_needs_an_own_inbox(committed_app):
    with committed_app.app_context():
        session = get_session()
        with pytest.raises(Forbidden) as refused:
            notify.mark_all_read(session, user_named(session, "admin"), None)
        assert refused.value.code == "INBOX_NOT_YOURS"


def test_a_failing_watcher_is_logged_and_the_next_still_runs(committed_app, watched, caplog):
    notifier = committed_app.extensions["hotline.notify"]

    def broken(_unit_ids):
        raise RuntimeError("socket away")

    notifier.inbox_watchers.insert(0, broken)
    try:
        with committed_app.app_context(), caplog.at_level(logging.ERROR, "hotline.notify"):
            session = get_session()
            deliver(session, [unit_message(session, "U-CGJ", 1)], NOW)
            session.commit()
    finally:
        notifier.inbox_watchers.remove(broken)
    assert "inbox watcher" in caplog.text
    assert len(watched) == 1
    assert inbox_titles(committed_app) == ["测试消息 1"]
