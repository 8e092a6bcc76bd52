"""我要反映 (dispatch.citizens): a citizen's request received through the portal account."""

import datetime as dt

import pytest
import sqlalchemy as sa

from dispatch import citizens, operations, sla
from dispatch.narrative import Teller
from hotline import citizens as codes
from hotline.enums import Channel, RequestType, Role, Urgency
from hotline.errors import Conflict, ValidationFailed
from hotline.models import (
    Attachment,
    Category,
    OutboxMessage,
    Ticket,
    TicketEvent,
    VerificationCode,
)
from tests.dispatch.common import PHOTOS, TUE_0900
from tests.helpers import texted_code

PHONE = "13912345678"
CONTENT = "东关街道胜利东街100号门口的路灯一周都不亮了，晚上出行很不方便，请尽快维修。"
FIRE = "家里着火了，冒出很多浓烟，快来人"


def received_texts(db):
    return db.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.kind == "citizen_received")
    ).all()


def receive_event(db, ticket):
    return db.scalars(
        sa.select(TicketEvent).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.action == "receive"
        )
    ).one()


def submit(db, **overrides):
    values = {
        "channel": Channel.web,
        "request_type": RequestType.complaint,
        "content": CONTENT,
        "address": "奎文区胜利东街100号",
        "idempotency_key": "form-key-0001",
        "now": TUE_0900,
    }
    values.update(overrides)
    return citizens.submit(db, **values)


def with_code(db, phone=PHONE, now=TUE_0900 - dt.timedelta(minutes=1)):
    codes.send_code(db, phone, purpose="submit", now=now)
    return texted_code(db, phone)


def test_a_request_with_a_proved_phone_is_received_by_the_portal_account(app, db):
    code = with_code(db)
    ticket, created = submit(
        db, phone=PHONE, code=code, name="李女士", photos=PHOTOS, lng=119.16, lat=36.71
    )
    assert created
    creator = ticket.created_by
    assert creator.username == "portal-web" and creator.role == Role.portal
    assert ticket.channel == Channel.web and ticket.urgency == Urgency.normal
    assert ticket.requester_phone == PHONE and ticket.requester_name == "李女士"
    assert (ticket.lng, ticket.lat) == (119.16, 36.71)
    assert ticket.number and ticket.status.value == "received"
    assert receive_event(db, ticket).actor_id == creator.id
    assert db.scalars(sa.select(Attachment).where(Attachment.ticket_id == ticket.id)).all()
    (text,) = received_texts(db)
    assert text.recipient == PHONE and text.ticket_id == ticket.id
    assert ticket.number in text.body
    assert citizens.reply_text(citizens.promised_reply(db, ticket)) in text.body
    assert text.delivery_key.endswith(f"received:{ticket.id}")


@pytest.mark.parametrize(
    "channel,username", [(Channel.wechat, "portal-wechat"), (Channel.app, "portal-app")]
)
def test_each_portal_channel_has_its_account(app, db, channel, username):
    ticket, _ = submit(db, channel=channel)
    assert ticket.channel == channel and ticket.created_by.username == username


def test_a_double_tap_returns_the_first_ticket_without_a_second_code(app, db):
    code = with_code(db)
    first, created = submit(db, phone=PHONE, code=code)
    assert created
    # The code is used up; the retry with the same key still gets the first ticket.
    again, created = submit(db, phone=PHONE, code=code)
    assert not created and again.id == first.id
    assert len(received_texts(db)) == 1
    assert (
        db.scalar(
            sa.select(sa.func.count())
            .select_from(Ticket)
            .where(Ticket.idempotency_key == "form-key-0001")
        )
        == 1
    )


def test_the_same_key_with_another_request_is_refused(app, db, ticket_count):
    submit(db)
    before = ticket_count()
    with pytest.raises(Conflict) as caught:
        submit(db, content="另一件事：小区垃圾无人清运，已经三天了。")
    assert caught.value.code == "IDEMPOTENCY_KEY_REUSED"
    assert ticket_count() == before


def test_an_anonymous_request_is_texted_to_nobody(app, db):
    ticket, created = submit(db)
    assert created and ticket.requester_phone is None
    assert received_texts(db) == []


def test_the_emergency_warning_the_citizen_saw_is_recorded(app, db):
    ticket, _ = submit(db, content=FIRE, emergency_seen=True)
    warning = receive_event(db, ticket).payload["urgency_warning"]
    assert warning["shown"] is True and warning["transfer_to"] == "119"
    assert warning["citizen_saw_warning"] is True
    assert ticket.urgency == Urgency.normal
    event = receive_event(db, ticket)
    sentence = Teller(db, [event], "Asia/Shanghai").sentence(event)
    assert "市民已看到拨打紧急电话的提示，仍选择提交" in sentence


def test_a_warning_the_citizen_did_not_see_says_so(app, db):
    ticket, _ = submit(db, content=FIRE, emergency_seen=False)
    warning = receive_event(db, ticket).payload["urgency_warning"]
    assert warning["shown"] is True and warning["citizen_saw_warning"] is False


def test_no_warning_no_record(app, db):
    ticket, _ = submit(db)
    assert "urgency_warning" not in receive_event(db, ticket).payload


@pytest.mark.parametrize(
    "overrides,code",
    [
        ({"channel": Channel.phone}, "VALIDATION_FAILED"),
        ({"content": "  "}, "VALIDATION_FAILED"),
        ({"content": "长" * 10_001}, "VALIDATION_FAILED"),
        ({"idempotency_key": None}, "IDEMPOTENCY_KEY_MISSING"),
        ({"idempotency_key": "k" * 101}, "IDEMPOTENCY_KEY_MISSING"),
        ({"phone": PHONE, "code": "000000"}, "CODE_INVALID"),
    ],
)
def test_bad_input_is_refused_with_nothing_written(app, db, ticket_count, overrides, code):
    before = ticket_count()
    with pytest.raises(ValidationFailed) as caught:
        submit(db, **overrides)
    assert caught.value.code == code
    db.rollback()
    assert ticket_count() == before
    assert received_texts(db) == []


def test_a_wrong_code_counts_a_try_and_writes_no_ticket(app, db, ticket_count):
    code = with_code(db)
    wrong = f"{(int(code) + 1) % 1000000:06d}"
    before = ticket_count()
    with pytest.raises(ValidationFailed):
        submit(db, phone=PHONE, code=wrong)
    db.rollback()
    assert ticket_count() == before
    assert db.scalars(sa.select(VerificationCode)).one().tries == 1
    ticket, created = submit(db, phone=PHONE, code=code)
    assert created


def test_the_promise_is_the_policy_finish_deadline_on_working_days(app, db):
    ticket, _ = submit(db, content=CONTENT)
    promised = citizens.promised_reply(db, ticket)
    stand_in = ticket
    if ticket.category_id is None:
        # The suggested category stands in (the module's rule).
        code = ticket.suggestion["category"]["top"][0]["code"]
        stand_in = type("T", (), {})()
        stand_in.category_id = db.scalar(sa.select(Category.id).where(Category.code == code))
        stand_in.category = None
        stand_in.request_type, stand_in.urgency = ticket.request_type, ticket.urgency
    policy = sla.find_policy(db, stand_in)
    expected, _ = sla.add_limit(
        TUE_0900,
        policy.finish_amount,
        policy.finish_unit,
        always_on=False,
        calendar=operations.work_calendar(db),
    )
    assert promised == expected and promised > TUE_0900


def test_the_promise_reads_as_local_month_day_and_time(app):
    with app.app_context():
        moment = dt.datetime(2026, 12, 9, 10, 0, tzinfo=dt.UTC)  # 18:00 in Asia/Shanghai
        assert citizens.reply_text(moment) == "12月9日 18:00"
        assert citizens.reply_text(None) == citizens.REPLY_BY_UNKNOWN


def test_the_public_sees_only_the_category_name_and_the_line(app, db):
    suggestion = {
        "category": {"top": [{"code": "010103", "name": "路灯照明", "probability": 0.9}]},
        "urgency": {"tier": "emergency", "transfer_to": "119", "evidence": "着火"},
        "units": [{"code": "U-1", "confidence": 0.9}],
    }
    assert citizens.suggestion_for_citizen(suggestion) == {
        "category": "路灯照明",
        "emergency": "119",
    }
    assert citizens.suggestion_for_citizen(None) == {"category": None, "emergency": None}
