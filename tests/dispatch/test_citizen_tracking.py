"""What a citizen sees and does after submitting (dispatch.citizen_tracking): their own
tickets only, the public timeline's whitelist, online rating exactly like a phone callback
(closing, review, the ranking, the call queue), 不满意再次反映 within its window, and the
finish text with its signed, expiring rating link (dispatch.citizen_notices)."""

import datetime as dt
import time

import itsdangerous
import pytest
import sqlalchemy as sa

from dashboards import ranking
from dispatch import citizen_notices, citizen_tracking, cohandling, queues
from dispatch import operations as ops
from hotline import privacy
from hotline.db import utcnow
from hotline.enums import (
    CallbackChannel,
    CallbackOutcome,
    Channel,
    ExemptionKind,
    ReturnReason,
    Satisfaction,
    Solved,
    TicketStatus,
    Urgency,
)
from hotline.errors import Conflict, NotFound, ValidationFailed
from hotline.models import CallbackAttempt, OutboxMessage, Ticket, TicketEvent, Unit
from hotline.schemas import Page
from tests.dispatch.common import DONGGUAN, PHONE, STREETLIGHT

S = TicketStatus
OTHER_PHONE = "13905360002"


def unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


def _texts(db, ticket, kind):
    return db.scalars(
        sa.select(OutboxMessage)
        .where(OutboxMessage.ticket_id == ticket.id, OutboxMessage.kind == kind)
        .order_by(OutboxMessage.id)
    ).all()


# -- whose tickets --------------------------------------------------------------------------


def test_a_citizen_sees_only_tickets_filed_with_their_phone(db, user, make_ticket):
    operator = user("operator")
    first = make_ticket(operator, requester_phone=PHONE)
    second = make_ticket(operator, requester_phone=PHONE, title="噪音扰民")
    others = make_ticket(operator, requester_phone=OTHER_PHONE)
    total, rows = citizen_tracking.tickets_of(db, PHONE, Page(1, 10))
    mine = [t for t in rows if t.id in {first.id, second.id, others.id}]
    assert [t.id for t in mine] == [second.id, first.id]  # newest first
    assert all(t.requester_phone == PHONE for t in rows)
    assert total == db.scalar(
        sa.select(sa.func.count()).select_from(Ticket).where(Ticket.requester_phone == PHONE)
    )
    assert citizen_tracking.find_own(db, PHONE, first.number.lower()) is first

    refusals = []
    for number in (others.number, "WF20990101999999"):
        with pytest.raises(NotFound) as caught:
            citizen_tracking.find_own(db, PHONE, number)
        refusals.append((caught.value.code, caught.value.message, caught.value.status))
    assert refusals[0] == refusals[1] == ("TICKET_NOT_FOUND", citizen_tracking.NOT_FOUND, 404)


def test_phone_masking():
    assert privacy.mask_phone("13805360001") == "138****0001"


# -- the public timeline --------------------------------------------------------------------


def test_the_timeline_tells_only_what_a_citizen_may_see(db, user, make_ticket, app):
    operator, dispatcher, supervisor = user("operator"), user("dispatcher"), user("supervisor")
    ticket = make_ticket(operator, category=STREETLIGHT, area="370705001", requester_phone=PHONE)
    cgj, dongguan, water = unit(db, "U-CGJ"), unit(db, DONGGUAN), unit(db, "U-WATER")
    # First sent to 城管局, which returns it with an internal note.
    ops.dispatch(db, dispatcher, ticket, lead=cgj)
    ops.request_return(
        db, user("cgj"), ticket, return_reason=ReturnReason.not_our_duty, note="内部备注甲乙丙"
    )
    ops.decide_return(
        db, dispatcher, ticket, approve=True, note="派单员内部意见丁戊", lead=dongguan
    )
    ops.designate(db, dispatcher, ticket, lead=dongguan, assists=[water], note="指定内部说明")
    ops.sign(db, user("dongguan"), ticket)
    ops.contact(db, user("dongguan"), ticket, note="联系记录内部己庚")
    # The assisting unit's signature and its report (协办反馈) are the hotline's own.
    ops.sign(db, user("water"), ticket)
    cohandling.report_assist(db, user("water"), ticket, report="协办内部反馈辰巳")
    ops.request_extension(db, user("dongguan"), ticket, days=2, reason="延期内部理由辛壬")
    ops.decide_extension(db, supervisor, ticket, approve=True, note="审核内部意见癸")
    ops.reclassify(db, supervisor, ticket, urgency=Urgency.urgent, reason="分类内部理由子丑")
    ops.exempt(db, supervisor, ticket, kind=ExemptionKind.unreasonable, reason="豁免内部理由寅卯")
    ops.finish(db, user("dongguan"), ticket, result="已修复路灯，恢复照明。")
    db.flush()

    steps = citizen_tracking.timeline(db, ticket, app.config["TIMEZONE"])
    titles = [s.title for s in steps]
    assert titles == [
        "已受理",
        f"已派至{dongguan.name}",
        "办理中",
        "办理中",
        "延期",
        "已办结",
    ]
    assert steps[1].detail == f"协办：{water.name}"
    assert steps[4].detail.startswith("经批准延期办理，办结期限调整为 ")
    assert steps[5].detail == "已修复路灯，恢复照明。"
    words = " ".join(f"{s.title} {s.detail}" for s in steps)
    secrets = [
        cgj.name,
        "内部",
        "退单",
        "豁免",
        "督办",
        "预警",
        user("dongguan").name,
        user("dispatcher").name,
        user("supervisor").name,
    ]
    for unit_row in (cgj, dongguan, water):
        secrets += list(unit_row.phones or [])
    for secret in secrets:
        assert secret not in words, secret


def test_timeline_of_rating_rerequest_and_reopen(db, user, citizen_ticket):
    ticket = citizen_ticket()
    citizen_tracking.rate_online(
        db, ticket, PHONE, solved=Solved.solved, satisfaction=Satisfaction.satisfied
    )
    citizen_tracking.rerequest(db, ticket, PHONE, reason="灯又坏了")
    ops.reopen(db, user("supervisor"), ticket, reason="督办内部：退回重办")
    db.flush()
    steps = citizen_tracking.timeline(db, ticket)
    assert [(s.title, s.detail) for s in steps[-3:]] == [
        ("已评价", "解决，满意"),
        ("再次反映", "灯又坏了"),
        ("重新办理", "已交承办单位重新办理"),
    ]


# -- rating online --------------------------------------------------------------------------


def _unit_counts(db, unit_id):
    now = utcnow()
    counts = ranking.count_tickets(
        db, now - dt.timedelta(days=1), now + dt.timedelta(days=1), now, "unit", [unit_id]
    )
    return counts.get(unit_id, dict.fromkeys(ranking.COUNTS, 0))


def _delta(after, before):
    return {k: after[k] - before[k] for k in ranking.COUNTS}


@pytest.mark.parametrize(
    "solved,satisfaction,status",
    [
        (Solved.partly, Satisfaction.basically, S.closed),
        (Solved.unsolved, Satisfaction.dissatisfied, S.called_back),
    ],
)
def test_online_rating_settles_and_counts_exactly_as_a_phone_callback(
    db, user, citizen_ticket, solved, satisfaction, status
):
    online, called = citizen_ticket(), citizen_ticket()
    dongguan = unit(db, DONGGUAN).id
    before = _unit_counts(db, dongguan)
    event = citizen_tracking.rate_online(
        db, online, PHONE, solved=solved, satisfaction=satisfaction, comment="网上评价意见"
    )
    db.flush()
    middle = _unit_counts(db, dongguan)
    ops.record_callback(
        db,
        user("callback"),
        called,
        outcome=CallbackOutcome.answered,
        solved=solved,
        satisfaction=satisfaction,
        comment="网上评价意见",
    )
    db.flush()
    after = _unit_counts(db, dongguan)

    assert online.status == called.status == status
    assert _delta(middle, before) == _delta(after, middle)
    assert _delta(middle, before)["rated"] == 1
    for column in ("callback_solved", "callback_satisfaction", "callback_comment", "closed_at"):
        assert (getattr(online, column) is None) == (getattr(called, column) is None), column
    assert event.actor.username == "portal-web"
    attempt = db.scalars(
        sa.select(CallbackAttempt).where(CallbackAttempt.ticket_id == online.id)
    ).one()
    assert attempt.channel == CallbackChannel.online
    assert attempt.outcome == CallbackOutcome.answered
    review_ids = {t.id for t in queues.reviews(db, user("supervisor"), Page(1, 500))[1]}
    assert (online.id in review_ids) == (called.id in review_ids) == (status == S.called_back)


def test_the_portal_account_follows_the_tickets_channel(db, citizen_ticket):
    ticket = citizen_ticket(channel=Channel.wechat)
    event = citizen_tracking.rate_online(
        db, ticket, PHONE, solved=Solved.solved, satisfaction=Satisfaction.satisfied
    )
    assert event.actor.username == "portal-wechat"
    phone_ticket = citizen_ticket(channel=Channel.phone)
    event = citizen_tracking.rate_online(
        db, phone_ticket, PHONE, solved=Solved.solved, satisfaction=Satisfaction.satisfied
    )
    assert event.actor.username == "portal-web"


def test_a_ticket_rated_online_is_not_called_again(db, user, citizen_ticket):
    ticket = citizen_ticket()
    agent = user("callback")

    def queued():
        return {t.id for t in queues.calls(db, agent, Page(1, 1000), utcnow())[1]}

    assert ticket.id in queued()
    citizen_tracking.rate_online(
        db, ticket, PHONE, solved=Solved.solved, satisfaction=Satisfaction.satisfied
    )
    db.flush()
    assert ticket.id not in queued()
    assert ticket.callback_next_at is None


def test_rating_refused_for_another_phone_before_finishing_and_twice(
    db, user, citizen_ticket, make_ticket
):
    ticket = citizen_ticket()
    with pytest.raises(NotFound):
        citizen_tracking.rate_online(
            db, ticket, OTHER_PHONE, solved=Solved.solved, satisfaction=Satisfaction.satisfied
        )
    open_ticket = make_ticket(user("operator"), requester_phone=PHONE)
    with pytest.raises(Conflict) as caught:
        citizen_tracking.rate_online(
            db, open_ticket, PHONE, solved=Solved.solved, satisfaction=Satisfaction.satisfied
        )
    assert caught.value.code == "NOT_FINISHED"
    citizen_tracking.rate_online(
        db, ticket, PHONE, solved=Solved.solved, satisfaction=Satisfaction.satisfied
    )
    with pytest.raises(Conflict) as caught:
        citizen_tracking.rate_online(
            db, ticket, PHONE, solved=Solved.solved, satisfaction=Satisfaction.satisfied
        )
    assert caught.value.code == "ALREADY_RATED"


# -- 不满意再次反映 -------------------------------------------------------------------------


def test_rerequest_from_finished_goes_to_review_as_an_unhappy_callback(db, user, citizen_ticket):
    ticket = citizen_ticket()
    event = citizen_tracking.rerequest(db, ticket, PHONE, reason="路灯晚上还是不亮")
    db.flush()
    assert ticket.status == S.called_back
    assert (ticket.callback_solved, ticket.callback_satisfaction) == (
        Solved.unsolved,
        Satisfaction.dissatisfied,
    )
    assert ticket.callback_comment == "路灯晚上还是不亮"
    assert event.action == "rerequest" and event.actor.role.value == "portal"
    attempt = db.scalars(
        sa.select(CallbackAttempt).where(CallbackAttempt.ticket_id == ticket.id)
    ).one()
    assert attempt.channel == CallbackChannel.online
    assert ticket.id in {t.id for t in queues.reviews(db, user("supervisor"), Page(1, 500))[1]}
    (text,) = _texts(db, ticket, "citizen_reopened")
    assert ticket.number in text.body and text.recipient == PHONE
    # The supervisor decides it like any unhappy callback.
    ops.reopen(db, user("supervisor"), ticket, reason="重办")
    assert ticket.status == S.reopened and ticket.reopen_count == 1


def test_rerequest_from_closed_reopens_the_units_parts(db, user, citizen_ticket):
    ticket = citizen_ticket()
    citizen_tracking.rate_online(
        db, ticket, PHONE, solved=Solved.solved, satisfaction=Satisfaction.satisfied
    )
    db.flush()
    assert ticket.status == S.closed and ticket.lead_assignment is None
    dongguan = unit(db, DONGGUAN).id
    rated_before = _unit_counts(db, dongguan)
    citizen_tracking.rerequest(db, ticket, PHONE, reason="没几天又坏了")
    db.flush()
    assert ticket.status == S.called_back and ticket.closed_at is None
    assert ticket.lead_assignment is not None and ticket.lead_assignment.unit_id == dongguan
    # The citizen's latest word replaces the rating: still one rated ticket, now unhappy.
    change = _delta(_unit_counts(db, dongguan), rated_before)
    assert change["rated"] == 0
    assert (change["satisfied"], change["dissatisfied"]) == (-1, 1)
    assert (change["solved"], change["unsolved"]) == (-1, 1)
    ops.reopen(db, user("supervisor"), ticket, reason="重办")
    db.flush()
    change = _delta(_unit_counts(db, dongguan), rated_before)
    assert (change["rated"], change["reopened"]) == (-1, 1)
    with pytest.raises(Conflict) as caught:
        citizen_tracking.rerequest(db, ticket, PHONE, reason="再来一次")
    assert caught.value.code == "NOT_FINISHED"


def test_rerequest_window_and_once_per_result(db, user, citizen_ticket):
    ticket = citizen_ticket()
    late = ticket.finished_at + dt.timedelta(days=15, seconds=1)
    with pytest.raises(Conflict) as caught:
        citizen_tracking.rerequest(db, ticket, PHONE, reason="太晚了", now=late)
    assert caught.value.code == "REREQUEST_WINDOW_PASSED"
    assert "15 天" in caught.value.message
    assert caught.value.details["reopen_days"] == 15
    assert ticket.status == S.finished
    with pytest.raises(ValidationFailed):
        citizen_tracking.rerequest(db, ticket, PHONE, reason="  ")
    with pytest.raises(NotFound):
        citizen_tracking.rerequest(db, ticket, OTHER_PHONE, reason="不是我的")
    in_time = ticket.finished_at + dt.timedelta(days=14)
    citizen_tracking.rerequest(db, ticket, PHONE, reason="仍未解决", now=in_time)
    ops.close(db, user("supervisor"), ticket, reason="已核实办理到位", now=in_time)
    db.flush()
    assert ticket.status == S.closed
    with pytest.raises(Conflict) as caught:
        citizen_tracking.rerequest(db, ticket, PHONE, reason="又一次", now=in_time)
    assert caught.value.code == "ALREADY_REREQUESTED"
    view = citizen_tracking.actions(db, ticket, in_time)
    assert not view.can_rerequest and view.rerequest_note == "您已对本次办理结果再次反映过"


# -- the finish text and its rating link ----------------------------------------------------


def test_finishing_texts_the_reply_and_a_rating_link(db, user, citizen_ticket, app):
    long_reply = "经现场核查，" + "路灯线路老化" * 20 + "，已全部更换。"
    ticket = citizen_ticket(result=long_reply)
    (text,) = _texts(db, ticket, "citizen_finished")
    finish_event = db.scalars(
        sa.select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.action == "finish")
        .order_by(TicketEvent.id.desc())
    ).first()
    assert text.delivery_key == f"citizen:sms:finished:{ticket.id}:{finish_event.id}"
    assert text.recipient == PHONE
    assert ticket.number in text.body
    assert citizen_notices.shorten(long_reply) in text.body
    assert len(citizen_notices.shorten(long_reply)) == citizen_notices.REPLY_CHARS
    assert long_reply not in text.body
    url = text.body.split("请对办理结果评价：")[1]
    assert url.startswith(citizen_notices.RATING_PATH)  # no request, no PUBLIC_BASE_URL
    token = url.removeprefix(citizen_notices.RATING_PATH)
    found, phone = citizen_notices.read_rating_token(db, token, lambda i: db.get(Ticket, i))
    assert (found, phone) == (ticket, PHONE)
    assert PHONE not in token


def test_a_landline_or_no_phone_gets_no_text(db, user, citizen_ticket):
    assert _texts(db, citizen_ticket(phone="05368888888"), "citizen_finished") == []


def test_public_base_url_makes_the_link_absolute(db, citizen_ticket, app):
    app.config["PUBLIC_BASE_URL"] = "https://12345.example.gov.cn/"
    try:
        ticket = citizen_ticket()
    finally:
        app.config["PUBLIC_BASE_URL"] = ""
    (text,) = _texts(db, ticket, "citizen_finished")
    assert "评价：https://12345.example.gov.cn/citizen/rate/" in text.body


def test_reopened_and_refinished_ticket_gets_a_new_text(db, user, citizen_ticket):
    ticket = citizen_ticket()
    citizen_tracking.rerequest(db, ticket, PHONE, reason="没修好")
    ops.reopen(db, user("supervisor"), ticket, reason="重办")
    ops.sign(db, user("dongguan"), ticket)
    ops.contact(db, user("dongguan"), ticket, note="再次联系")
    ops.finish(db, user("dongguan"), ticket, result="已彻底修好")
    db.flush()
    texts = _texts(db, ticket, "citizen_finished")
    assert len(texts) == 2 and len({t.delivery_key for t in texts}) == 2
    assert "已彻底修好" in texts[1].body


def test_expired_forged_and_foreign_tokens_are_refused(db, citizen_ticket, monkeypatch):
    ticket = citizen_ticket()

    def load(i):
        return db.get(Ticket, i)

    real_time = time.time
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: real_time() - 8 * 86400)
    old = citizen_notices.rating_token(ticket, PHONE)
    monkeypatch.setattr(itsdangerous.timed.time, "time", real_time)
    with pytest.raises(ValidationFailed) as caught:
        citizen_notices.read_rating_token(db, old, load)
    assert caught.value.code == "RATING_LINK_EXPIRED"
    assert "7 天" in caught.value.message

    good = citizen_notices.rating_token(ticket, PHONE)
    forged = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    foreign = citizen_notices.rating_token(ticket, OTHER_PHONE)
    for token in (forged, foreign, "not-a-token", ""):
        with pytest.raises(NotFound) as caught:
            citizen_notices.read_rating_token(db, token, load)
        assert caught.value.code == "RATING_LINK_INVALID"


def test_a_ticket_finished_in_a_request_links_to_that_host(db, user, api, make_ticket):
    ticket = make_ticket(
        user("operator"), category=STREETLIGHT, area="370705001", requester_phone=PHONE
    )
    ops.dispatch(db, user("dispatcher"), ticket, lead=unit(db, DONGGUAN))
    ops.sign(db, user("dongguan"), ticket)
    ops.contact(db, user("dongguan"), ticket, note="已联系")
    db.flush()
    response = api("dongguan").post(f"/tickets/{ticket.number}/finish", json={"result": "已修复"})
    assert response.status_code == 200, response.get_json()
    (text,) = _texts(db, ticket, "citizen_finished")
    assert "评价：http://localhost/citizen/rate/" in text.body
