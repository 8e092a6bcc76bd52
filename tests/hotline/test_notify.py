"""Notification senders (hotline/notify.py) against a real local HTTP gateway, the sender
registry, and delivery after commit only.

The WeChat Work robot and the SMS gateway are stood in for by a ``ThreadingHTTPServer`` on
127.0.0.1 that records every request; the assertions are on the exact JSON posted.
"""

import datetime as dt
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import sqlalchemy as sa

from hotline import notify
from hotline.db import get_session
from hotline.errors import Forbidden
from hotline.models import Notification, Unit, User
from hotline.notify import (
    WECOM_MAX_BYTES,
    LoggingSender,
    Message,
    Notifier,
    SmsSender,
    WeComSender,
    build_senders,
    deliver,
)

NOW = dt.datetime(2026, 11, 16, 2, 0, tzinfo=dt.UTC)
DONGGUAN = "U-S-370705001"


def message(unit_code="U-CGJ", n=1, **overrides):
    values = {
        "unit_id": 1,
        "unit_code": unit_code,
        "kind": "sign_warning",
        "level": "yellow",
        "title": f"【签收预警】工单 12345-20261116-{n:04d}",
        "body": "签收时限已用去 80%，请在 2026-11-16 11:00 前完成签收。",
        "ticket_id": n,
        "ticket_number": f"12345-20261116-{n:04d}",
    }
    values.update(overrides)
    return Message(**values)


class RecordingSender:
    """A ``module:Class`` sender for ``build_senders``; records what it is given."""

    def __init__(self, config):
        self.config = config
        self.batches = []

    def send(self, messages):
        self.batches.append(list(messages))


class Gateway:
    """What the local HTTP server received, and the status it answers with."""

    def __init__(self):
        self.requests = []
        self.status = 200
        self.reply = {"errcode": 0, "errmsg": "ok"}
        self.url = None

    @property
    def bodies(self):
        return [r["json"] for r in self.requests]


@pytest.fixture
def gateway(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)
    state = Gateway()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                state.requests.append(
                    {
                        "path": self.path,
                        "content_type": self.headers["Content-Type"],
                        "raw": raw,
                        "json": json.loads(raw),
                    }
                )
            payload = json.dumps(state.reply).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def wecom(gateway):
    return WeComSender({"NOTIFY_WECOM_URL": gateway.url + "/cgi-bin/webhook/send?key=test-key"})


def sms(gateway):
    return SmsSender({"NOTIFY_SMS_URL": gateway.url + "/sms/send"})


# --- WeChat Work robot -------------------------------------------------------------------


def test_wecom_posts_one_text_message_with_every_notification(gateway):
    first, second = message(n=1), message(n=2, title="【签收超时】工单 B", body="已超过签收时限。")
    wecom(gateway).send([first, second])

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


def test_wecom_splits_many_notifications_under_the_byte_limit(gateway):
    messages = [message(n=n) for n in range(1, 61)]
    texts = [f"{m.title}\n{m.body}" for m in messages]
    assert sum(len(t.encode()) for t in texts) > 3 * WECOM_MAX_BYTES

    wecom(gateway).send(messages)

    contents = [body["text"]["content"] for body in gateway.bodies]
    assert len(contents) > 3
    assert all(body["msgtype"] == "text" for body in gateway.bodies)
    assert all(len(c.encode("utf-8")) <= WECOM_MAX_BYTES for c in contents)
    # Nothing lost, duplicated, reordered or cut in half.
    assert [part for c in contents for part in c.split("\n\n")] == texts
    # Chunks are filled greedily: the next notification would not have fitted.
    position = 0
    for content in contents[:-1]:
        position += len(content.split("\n\n"))
        following = texts[position].encode()
        assert len(content.encode()) + 2 + len(following) > WECOM_MAX_BYTES


def test_wecom_with_no_messages_posts_nothing(gateway):
    wecom(gateway).send([])
    assert gateway.requests == []


def test_wecom_never_posts_more_than_the_byte_limit(gateway):
    # A title (≤ 200 characters) and body (≤ 1000) in Chinese can reach ~3.6 kB.
    long = message(title="【督办】" + "超" * 196, body="请" * 1000)
    wecom(gateway).send([long])
    assert gateway.requests
    assert all(len(b["text"]["content"].encode()) <= WECOM_MAX_BYTES for b in gateway.bodies)


def test_wecom_error_code_in_a_200_answer_is_an_error(gateway):
    gateway.reply = {"errcode": 93000, "errmsg": "invalid webhook url"}
    with pytest.raises(Exception) as raised:
        wecom(gateway).send([message()])
    assert "93000" in str(raised.value)


# --- SMS gateway -------------------------------------------------------------------------


def test_sms_goes_to_each_units_duty_phones(gateway):
    sender = sms(gateway)
    cgj = message("U-CGJ", 1, phones=("13800000000", "13900000000"))
    street = message(DONGGUAN, 2)
    water = message("U-WATER", 3, phones=("05368234567",))

    sender.send([cgj, street, water])

    assert [r["path"] for r in gateway.requests] == ["/sms/send", "/sms/send"]
    assert all(r["content_type"] == "application/json" for r in gateway.requests)
    assert gateway.bodies == [
        {"mobiles": ["13800000000", "13900000000"], "content": f"{cgj.title} {cgj.body}"},
        {"mobiles": ["05368234567"], "content": f"{water.title} {water.body}"},
    ]


def test_sms_to_a_unit_without_duty_phones_posts_nothing(gateway):
    sms(gateway).send([message(), message("U-CGJ", phones=())])
    assert gateway.requests == []


def test_the_old_recipients_setting_stops_the_start():
    # The phones moved to the units table: a deployment still listing them here must not
    # silently stop texting those units.
    with pytest.raises(ValueError, match="值班电话"):
        SmsSender({"NOTIFY_SMS_URL": "http://127.0.0.1:9/sms", "NOTIFY_SMS_RECIPIENTS": "U-A:1"})
    assert SmsSender({"NOTIFY_SMS_URL": "http://127.0.0.1:9/sms", "NOTIFY_SMS_RECIPIENTS": ""})


@pytest.mark.parametrize("make", [wecom, sms])
def test_gateway_error_is_raised_by_the_sender(gateway, make):
    gateway.status = 500
    with pytest.raises(requests.HTTPError) as raised:
        make(gateway).send([message("U-CGJ", phones=("13800000000",))])
    assert raised.value.response.status_code == 500
    assert len(gateway.requests) == 1


def test_failing_sender_is_logged_and_the_next_still_runs(gateway, caplog):
    gateway.status = 500
    after = RecordingSender({})
    phones = ("13800000000",)
    messages = [message("U-CGJ", 1, phones=phones), message("U-CGJ", 2, phones=phones)]

    with caplog.at_level(logging.ERROR, logger="hotline.notify"):
        Notifier([sms(gateway), after]).send(messages)

    assert after.batches == [messages]
    errors = [r for r in caplog.records if r.name == "hotline.notify"]
    assert len(errors) == 1
    assert errors[0].levelno == logging.ERROR
    assert "SmsSender" in errors[0].getMessage()
    assert "2 notification(s)" in errors[0].getMessage()
    assert isinstance(errors[0].exc_info[1], requests.HTTPError)
    assert "500" in caplog.text


def test_unreachable_gateway_is_isolated_too(caplog):
    # Bind and close a port so nothing listens on it: the connection is refused at once.
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{server.server_port}/send"
    server.server_close()
    after = RecordingSender({})

    with caplog.at_level(logging.ERROR, logger="hotline.notify"):
        Notifier([WeComSender({"NOTIFY_WECOM_URL": url}), after]).send([message()])

    assert len(after.batches) == 1
    assert "WeComSender" in caplog.text
    assert isinstance(caplog.records[-1].exc_info[1], requests.ConnectionError)


# --- configuration -----------------------------------------------------------------------


def test_build_senders_by_name_in_order():
    config = {
        "NOTIFY_SENDERS": " logging, wecom ,sms,",
        "NOTIFY_WECOM_URL": "http://127.0.0.1:9/wecom",
        "NOTIFY_SMS_URL": "http://127.0.0.1:9/sms",
    }
    senders = build_senders(config)
    assert [type(s) for s in senders] == [LoggingSender, WeComSender, SmsSender]
    assert senders[1].url == "http://127.0.0.1:9/wecom"
    assert senders[2].url == "http://127.0.0.1:9/sms"


@pytest.mark.parametrize("value", ["", " , "])
def test_build_senders_none_configured(value):
    assert build_senders({"NOTIFY_SENDERS": value}) == []
    assert build_senders({}) == []


def test_build_senders_by_class_path():
    config = {"NOTIFY_SENDERS": f"logging,{__name__}:RecordingSender", "EXTRA": "x"}
    logging_sender, custom = build_senders(config)
    assert isinstance(logging_sender, LoggingSender)
    assert type(custom).__name__ == "RecordingSender"
    assert custom.config is config
    custom.send([message()])
    assert custom.batches == [[message()]]


@pytest.mark.parametrize(
    "name, setting",
    [("wecom", "NOTIFY_WECOM_URL"), ("sms", "NOTIFY_SMS_URL")],
)
def test_build_senders_without_url_fails_at_start(name, setting):
    with pytest.raises(ValueError, match=setting):
        build_senders({"NOTIFY_SENDERS": name})
    with pytest.raises(ValueError, match=setting):
        build_senders({"NOTIFY_SENDERS": name, setting: ""})


def test_build_senders_unknown_class_fails_at_start():
    with pytest.raises(ModuleNotFoundError):
        build_senders({"NOTIFY_SENDERS": "no_such_module_xyz:Sender"})
    with pytest.raises(AttributeError):
        build_senders({"NOTIFY_SENDERS": f"{__name__}:NoSuchSender"})


def test_logging_sender_writes_one_line_per_message(caplog):
    with caplog.at_level(logging.INFO, logger="hotline.notify"):
        LoggingSender({}).send(
            [
                message("U-CGJ", 7),
                message(
                    "U-HOTLINE", kind="test", level="info", title="系统消息", ticket_number=None
                ),
            ]
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "hotline.notify"]
    assert lines == [
        "notify U-CGJ sign_warning 12345-20261116-0007: 【签收预警】工单 12345-20261116-0007",
        "notify U-HOTLINE test -: 系统消息",
    ]
    assert all(r.levelno == logging.INFO for r in caplog.records)


# --- delivery after commit ---------------------------------------------------------------


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


@pytest.fixture
def recorder(committed_app):
    """A sender added to the app's own notifier, as ``NOTIFY_SENDERS`` would add it."""
    notifier = committed_app.extensions["hotline.notify"]
    sender = RecordingSender({})
    notifier.senders.append(sender)
    try:
        yield sender
    finally:
        notifier.senders.remove(sender)


def test_senders_get_messages_only_after_commit(committed_app, recorder):
    with committed_app.app_context():
        session = get_session()
        assert session.info["notifier"] is committed_app.extensions["hotline.notify"]
        first, second = unit_message(session, "U-CGJ", 1), unit_message(session, DONGGUAN, 2)
        deliver(session, [first], NOW)
        deliver(session, [second], NOW)
        session.flush()
        # In the inbox of this transaction, not yet anywhere else.
        assert (
            session.scalar(
                sa.select(sa.func.count()).where(Notification.title.startswith("测试消息"))
            )
            == 2
        )
        assert recorder.batches == []

        session.commit()

        assert recorder.batches == [[first, second]]
        # A second commit does not send them again.
        session.commit()
        assert recorder.batches == [[first, second]]

    assert inbox_titles(committed_app) == ["测试消息 1", "测试消息 2"]
    with committed_app.app_context():
        rows = get_session().scalars(
            sa.select(Notification).where(Notification.title.startswith("测试消息"))
        )
        assert {(n.kind, n.level.value, n.created_at, n.read_at) for n in rows} == {
            ("test", "info", NOW, None)
        }


def test_nothing_is_sent_after_a_rollback(committed_app, recorder):
    with committed_app.app_context():
        session = get_session()
        deliver(session, [unit_message(session, "U-CGJ", 1)], NOW)
        session.flush()
        session.rollback()
        assert recorder.batches == []
        # The dropped messages do not ride along with the next transaction's commit.
        kept = unit_message(session, "U-CGJ", 2)
        deliver(session, [kept], NOW)
        session.commit()
        assert recorder.batches == [[kept]]

    assert inbox_titles(committed_app) == ["测试消息 2"]


def test_rolled_back_session_sends_nothing_on_close(committed_app, recorder):
    with committed_app.app_context():
        session = get_session()
        deliver(session, [unit_message(session, "U-CGJ", 1)], NOW)
        session.flush()
    # The request ends without a commit (teardown closes the session).
    assert recorder.batches == []
    assert inbox_titles(committed_app) == []
    with committed_app.app_context():
        get_session().commit()
    assert recorder.batches == []


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


def test_sms_goes_to_the_duty_phones_the_unit_has_when_delivered(
    committed_app, gateway, duty_phones
):
    notifier = committed_app.extensions["hotline.notify"]
    notifier.senders.insert(0, sms(gateway))
    duty_phones("U-CGJ", ["13800000000", "05368234567"])
    duty_phones(DONGGUAN, [])
    try:
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
    finally:
        notifier.senders.pop(0)

    assert gateway.bodies == [
        {"mobiles": ["13800000000", "05368234567"], "content": "测试消息 1 只在提交后发出。"}
    ]


def test_failing_sender_after_commit_loses_nothing(
    committed_app, recorder, gateway, caplog, duty_phones
):
    notifier = committed_app.extensions["hotline.notify"]
    gateway.status = 500
    notifier.senders.insert(0, sms(gateway))
    duty_phones("U-CGJ", ["13800000000"])
    try:
        with committed_app.app_context(), caplog.at_level(logging.ERROR, "hotline.notify"):
            session = get_session()
            sent = unit_message(session, "U-CGJ", 1)
            deliver(session, [sent], NOW)
            session.commit()
    finally:
        notifier.senders.pop(0)

    assert gateway.bodies == [
        {"mobiles": ["13800000000"], "content": "测试消息 1 只在提交后发出。"}
    ]
    assert "could not send 1 notification(s)" in caplog.text
    assert len(recorder.batches) == 1
    assert [(m.title, m.phones) for m in recorder.batches[0]] == [(sent.title, ("13800000000",))]
    assert inbox_titles(committed_app) == ["测试消息 1"]


def test_deliver_nothing_is_a_no_op(committed_app, recorder):
    with committed_app.app_context():
        session = get_session()
        deliver(session, [], NOW)
        assert "pending_notifications" not in session.info
        session.commit()
    assert recorder.batches == []


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
