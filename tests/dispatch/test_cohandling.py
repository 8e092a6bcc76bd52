"""协同办理 (dispatch/cohandling.py): assisting units' reports (协办反馈) and the lead's finish
guard, split calls (拆单) with their children, all-or-nothing and idempotency, and the parent
closing itself when its last child is final — the citizen's view and the ranking included."""

import datetime as dt

import pytest
import sqlalchemy as sa

from dashboards import ranking
from dispatch import citizen_tracking, cohandling, open311
from dispatch import operations as ops
from hotline.enums import (
    AssignmentRole,
    CallbackOutcome,
    Channel,
    ExemptionKind,
    Satisfaction,
    Solved,
    TicketStatus,
    TransferTarget,
)
from hotline.errors import Conflict, Forbidden, ValidationFailed
from hotline.models import Attachment, Category, OutboxMessage, Ticket, TicketEvent
from tests.dispatch.common import DONGGUAN, PHOTOS, STREETLIGHT
from tests.dispatch.conftest import area, unit

S = TicketStatus
CGJ, WATER, STHJ = "U-CGJ", "U-WATER", "U-STHJ"


def category(db, code=STREETLIGHT):
    return db.scalars(sa.select(Category).where(Category.code == code)).one()


@pytest.fixture
def assisted(dispatched):
    """A ticket led by 东关街道 with 城管局 and 水务 assisting (and 奎文区 copied)."""
    return lambda: dispatched(assists=(CGJ, WATER))


def _assignment(ticket, code, role=None):
    return next(
        a
        for a in ticket.assignments
        if a.active and a.unit.code == code and (role is None or a.role == role)
    )


def _events(db, ticket, action):
    return db.scalars(
        sa.select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.action == action)
        .order_by(TicketEvent.id)
    ).all()


# -- 协办反馈 ---------------------------------------------------------------------------------


def test_an_assist_reports_its_part_with_photos(db, user, assisted):
    ticket = assisted()
    ops.sign(db, user("cgj"), ticket)
    event = cohandling.report_assist(
        db, user("cgj"), ticket, report="  已清运路边堆放的建筑垃圾  ", photos=PHOTOS
    )
    db.flush()
    part = _assignment(ticket, CGJ)
    assert part.report == "已清运路边堆放的建筑垃圾"
    assert part.finished_at == event.created_at
    assert event.action == "report_assist"
    assert event.unit.code == CGJ
    assert event.reason == "已清运路边堆放的建筑垃圾"
    assert event.from_status == event.to_status == S.dispatched.value
    assert event.payload == {"photos": 1, "late": False}
    photos = db.scalars(sa.select(Attachment).where(Attachment.event_id == event.id)).all()
    assert [(p.purpose, p.filename) for p in photos] == [("assist", "现场.png")]
    # The lead is told.
    rows = cohandling.assist_rows(db, ticket)
    assert [(r.assignment.unit.code, r.state, len(r.photos)) for r in rows] == [
        (CGJ, "已反馈", 1),
        (WATER, "未签收", 0),
    ]


def test_a_report_needs_the_signature_first(db, user, assisted, snapshot, assert_unchanged):
    ticket = assisted()
    before = snapshot(ticket)
    with pytest.raises(Conflict) as caught:
        cohandling.report_assist(db, user("cgj"), ticket, report="已处理")
    assert caught.value.code == "ASSIST_NOT_SIGNED"
    assert caught.value.message == "请先签收工单，再提交协办反馈"
    assert_unchanged(ticket, before)


def test_one_report_per_assignment_a_second_is_refused(
    db, user, assisted, snapshot, assert_unchanged
):
    ticket = assisted()
    ops.sign(db, user("cgj"), ticket)
    cohandling.report_assist(db, user("cgj"), ticket, report="第一次反馈")
    before = snapshot(ticket)
    with pytest.raises(Conflict) as caught:
        cohandling.report_assist(db, user("cgj"), ticket, report="第二次反馈")
    assert caught.value.code == "ASSIST_ALREADY_REPORTED"
    assert "本轮办理不能重复提交" in caught.value.message
    assert_unchanged(ticket, before)
    assert _assignment(ticket, CGJ).report == "第一次反馈"


@pytest.mark.parametrize(
    "username,code",
    [
        ("dongguan", "NOT_AN_ASSIST"),  # the lead
        ("kuiwen", "NOT_AN_ASSIST"),  # the copied district government
        ("sthj", "TICKET_NOT_ASSIGNED_TO_UNIT"),  # a unit with no part
    ],
)
def test_only_an_assisting_unit_reports(
    db, user, assisted, username, code, snapshot, assert_unchanged
):
    ticket = assisted()
    ops.sign(db, user("dongguan"), ticket)
    before = snapshot(ticket)
    with pytest.raises(Forbidden) as caught:
        cohandling.report_assist(db, user(username), ticket, report="已处理")
    assert caught.value.code == code
    assert_unchanged(ticket, before)


def test_a_blank_report_is_refused(db, user, assisted, snapshot, assert_unchanged):
    ticket = assisted()
    ops.sign(db, user("cgj"), ticket)
    before = snapshot(ticket)
    with pytest.raises(ValidationFailed) as caught:
        cohandling.report_assist(db, user("cgj"), ticket, report="   ")
    assert caught.value.details == {"reason": "请填写协办反馈内容"}
    assert_unchanged(ticket, before)


def _lead_ready(db, user, ticket):
    ops.sign(db, user("dongguan"), ticket)
    ops.contact(db, user("dongguan"), ticket, note="已联系诉求人")


def test_the_lead_cannot_finish_before_the_assists_report(
    db, user, assisted, snapshot, assert_unchanged
):
    ticket = assisted()
    _lead_ready(db, user, ticket)
    ops.sign(db, user("cgj"), ticket)
    before = snapshot(ticket)
    for note in (None, "", "   "):
        with pytest.raises(Conflict) as caught:
            ops.finish(db, user("dongguan"), ticket, result="已修复路灯", assists_note=note)
        assert caught.value.code == "ASSISTS_NOT_REPORTED"
        assert caught.value.message == (
            "协办单位尚未提交协办反馈：潍坊市城市管理局（已签收未反馈）、"
            f"{_assignment(ticket, WATER).unit.name}（未签收）。请待其反馈后再办结，"
            "或填写未等协办反馈即办结的原因"
        )
        assert caught.value.details["missing_units"] == [CGJ, WATER]
        assert_unchanged(ticket, before)


def test_the_lead_finishes_without_them_when_it_says_why(db, user, assisted):
    ticket = assisted()
    _lead_ready(db, user, ticket)
    ops.sign(db, user("cgj"), ticket)
    cohandling.report_assist(db, user("cgj"), ticket, report="已清运")
    event = ops.finish(
        db, user("dongguan"), ticket, result="已修复路灯", assists_note=" 水务部门无需到场 "
    )
    assert ticket.status == S.finished
    assert event.payload["assists_missing"] == [WATER]
    assert event.payload["assists_note"] == "水务部门无需到场"


def test_the_lead_finishes_once_every_assist_reported(db, user, assisted):
    ticket = assisted()
    _lead_ready(db, user, ticket)
    for name in ("cgj", "water"):
        ops.sign(db, user(name), ticket)
        cohandling.report_assist(db, user(name), ticket, report=f"{name} 已完成")
    event = ops.finish(db, user("dongguan"), ticket, result="已修复路灯", assists_note="多余")
    assert event.payload["assists_missing"] == []
    assert event.payload["assists_note"] is None


def test_a_ticket_without_assists_finishes_as_before(db, user, dispatched):
    ticket = dispatched()
    _lead_ready(db, user, ticket)
    event = ops.finish(db, user("dongguan"), ticket, result="已修复")
    assert event.payload["assists_missing"] == []
    assert event.payload["assists_note"] is None


def test_a_reopened_ticket_needs_new_reports_and_keeps_the_old(db, user, assisted):
    ticket = assisted()
    _lead_ready(db, user, ticket)
    for name in ("cgj", "water"):
        ops.sign(db, user(name), ticket)
        cohandling.report_assist(db, user(name), ticket, report=f"第一轮 {name}")
    ops.finish(db, user("dongguan"), ticket, result="已修复")
    ops.record_callback(
        db,
        user("callback"),
        ticket,
        outcome=CallbackOutcome.answered,
        solved=Solved.unsolved,
        satisfaction=Satisfaction.dissatisfied,
    )
    ops.reopen(db, user("supervisor"), ticket, reason="仍未修好")
    db.flush()
    new = _assignment(ticket, CGJ, AssignmentRole.assist)
    assert new.report is None and new.finished_at is None and new.signed_at is None
    rows = cohandling.assist_rows(db, ticket)
    assert [(r.assignment.unit.code, r.state, r.current, r.assignment.report) for r in rows] == [
        (CGJ, "未签收", True, None),
        (WATER, "未签收", True, None),
        (CGJ, "已反馈", False, "第一轮 cgj"),
        (WATER, "已反馈", False, "第一轮 water"),
    ]
    _lead_ready(db, user, ticket)
    with pytest.raises(Conflict) as caught:
        ops.finish(db, user("dongguan"), ticket, result="再次修复")
    assert caught.value.details["missing_units"] == [CGJ, WATER]


# -- 拆单 -------------------------------------------------------------------------------------


def _children(db, *units, bad=None):
    texts = ["小区门口路灯不亮", "路边井盖缺失", "河道有异味", "噪音扰民"]
    return [
        cohandling.Child(
            texts[i], category(db), area(db, "370705001") if i == 0 else None, unit(db, c)
        )
        for i, c in enumerate(units)
    ]


@pytest.fixture
def call(db, user, make_ticket):
    """A received call holding several matters, with a call id and a recording."""

    def make():
        ticket = make_ticket(
            user("operator"),
            area="370705",
            content="市民来电反映多件事：路灯不亮；井盖缺失；河道有异味。",
        )
        ticket.call_id = "CALL-SPLIT-1"
        ticket.recording_ref = "rec/split-1.wav"
        db.flush()
        return ticket

    return make


def test_a_dispatcher_splits_a_call_and_the_children_are_dispatched(db, user, call):
    parent = call()
    event, created = cohandling.split(
        db, user("dispatcher"), parent, children=_children(db, DONGGUAN, CGJ), reason="两件事"
    )
    db.flush()
    assert created
    children = cohandling.children_of(db, parent)
    assert parent.status == S.split
    assert parent.lead_unit_id is None and parent.clock_started_at is None
    assert parent.next_due_at is None
    assert event.action == "split" and event.reason == "两件事"
    assert event.payload == {
        "children": [
            {"number": children[0].number, "unit": DONGGUAN, "category": STREETLIGHT},
            {"number": children[1].number, "unit": CGJ, "category": STREETLIGHT},
        ],
        "dispatched": True,
    }
    assert len({parent.number, *(c.number for c in children)}) == 3
    for child, lead, content in zip(
        children, (DONGGUAN, CGJ), ("小区门口路灯不亮", "路边井盖缺失"), strict=True
    ):
        assert child.parent_id == parent.id
        assert child.status == S.dispatched
        assert child.lead_unit.code == lead
        assert child.content == content
        assert child.clock_started_at is not None
        for name in ("channel", "request_type", "urgency", "requester_name", "requester_phone"):
            assert getattr(child, name) == getattr(parent, name)
        assert (child.call_id, child.recording_ref) == ("CALL-SPLIT-1", "rec/split-1.wav")
        assert child.received_at == parent.received_at
        assert [e.action for e in _events(db, child, "receive")] == ["receive"]
        assert _events(db, child, "receive")[0].payload["split_from"] == parent.number
        assert len(_events(db, child, "dispatch")) == 1
    assert children[0].area.code == "370705001"
    assert children[1].area.code == "370705"  # the call's own area


def test_an_operator_splits_and_the_children_wait_for_the_dispatcher(db, user, call):
    parent = call()
    cohandling.split(db, user("operator"), parent, children=_children(db, DONGGUAN, CGJ, WATER))
    db.flush()
    children = cohandling.children_of(db, parent)
    assert [c.status for c in children] == [S.received] * 3
    assert [c.lead_unit_id for c in children] == [None] * 3
    # The chosen unit is the proposed lead the dispatch form preselects.
    assert [c.suggestion["units"][0]["code"] for c in children] == [DONGGUAN, CGJ, WATER]
    assert all(c.suggestion["source"] == "split" for c in children)


@pytest.mark.parametrize(
    "change,code,field",
    [
        (lambda db, cs: cs[:1], "SPLIT_CHILDREN_COUNT", "children"),
        (lambda db, cs: cs + cs + cs + cs + cs, "SPLIT_CHILDREN_COUNT", "children"),
        (
            lambda db, cs: [cs[0], cohandling.Child("  ", cs[1].category, None, cs[1].unit)],
            "SPLIT_CHILD_INVALID",
            "children.2",
        ),
        (
            lambda db, cs: [
                cs[0],
                cohandling.Child("井盖", cs[1].category, None, unit(db, "U-HOTLINE")),
            ],
            "SPLIT_CHILD_INVALID",
            "children.2",
        ),
        (
            lambda db, cs: [cs[0], cohandling.Child("井盖", None, None, cs[1].unit)],
            "SPLIT_CHILD_INVALID",
            "children.2",
        ),
    ],
    ids=["one-child", "too-many", "blank-content", "hotline-centre", "no-category"],
)
def test_a_bad_child_refuses_the_whole_split(
    db, user, call, change, code, field, snapshot, assert_unchanged, ticket_count
):
    parent = call()
    children = change(db, _children(db, DONGGUAN, CGJ))
    before = snapshot(parent)
    for actor in ("dispatcher", "operator"):
        with pytest.raises(ValidationFailed) as caught:
            cohandling.split(db, user(actor), parent, children=children)
        assert caught.value.code == code
        assert field in caught.value.details
        assert_unchanged(parent, before)


def test_a_deactivated_unit_refuses_the_split(db, user, call, snapshot, assert_unchanged):
    parent = call()
    children = _children(db, DONGGUAN, CGJ)
    children[1].unit.active = False
    db.flush()
    before = snapshot(parent)
    with pytest.raises(ValidationFailed) as caught:
        cohandling.split(db, user("dispatcher"), parent, children=children)
    assert caught.value.details == {"children.2": "第 2 项：承办单位“潍坊市城市管理局”已停用"}
    assert_unchanged(parent, before)


def test_a_split_with_a_key_is_replayed_not_repeated(db, user, call, ticket_count):
    parent = call()
    children = _children(db, DONGGUAN, CGJ)
    first, created = cohandling.split(
        db, user("dispatcher"), parent, children=children, idempotency_key="k-1", digest="d1"
    )
    db.flush()
    count = ticket_count()
    again, created_again = cohandling.split(
        db, user("dispatcher"), parent, children=children, idempotency_key="k-1", digest="d1"
    )
    assert created and not created_again
    assert again.id == first.id
    assert ticket_count() == count
    with pytest.raises(ValidationFailed) as caught:
        cohandling.split(
            db, user("dispatcher"), parent, children=children, idempotency_key="k-1", digest="d2"
        )
    assert caught.value.code == "IDEMPOTENCY_KEY_REUSED"
    # Without the key, a second split is a state conflict.
    with pytest.raises(Conflict) as caught:
        cohandling.split(db, user("dispatcher"), parent, children=children)
    assert caught.value.code == "TICKET_STATE_CONFLICT"


def _close_happily(db, user, ticket, handler="dongguan"):
    ops.sign(db, user(handler), ticket)
    ops.contact(db, user(handler), ticket, note="已联系")
    ops.finish(db, user(handler), ticket, result="已办好")
    ops.record_callback(
        db,
        user("callback"),
        ticket,
        outcome=CallbackOutcome.answered,
        solved=Solved.solved,
        satisfaction=Satisfaction.satisfied,
    )


def test_the_parent_closes_when_its_last_child_is_final(db, user, call):
    parent = call()
    cohandling.split(db, user("operator"), parent, children=_children(db, DONGGUAN, CGJ, WATER))
    first, second, third = cohandling.children_of(db, parent)
    ops.transfer(db, user("dispatcher"), first, target=TransferTarget.fire_119, reason="火情")
    ops.merge(db, user("dispatcher"), second, into=third, reason="同一事项")
    assert parent.status == S.split
    assert _events(db, parent, "close_split") == []
    ops.dispatch(db, user("dispatcher"), third, lead=unit(db, DONGGUAN))
    ops.sign(db, user("dongguan"), third)
    ops.contact(db, user("dongguan"), third, note="已联系")
    ops.finish(db, user("dongguan"), third, result="已办好")
    assert parent.status == S.split  # 已办结 is not final: the callback may still reopen it
    ops.record_callback(
        db,
        user("callback"),
        third,
        outcome=CallbackOutcome.answered,
        solved=Solved.solved,
        satisfaction=Satisfaction.satisfied,
    )
    db.flush()
    assert parent.status == S.closed
    assert parent.closed_at is not None
    (closing,) = _events(db, parent, "close_split")
    assert closing.actor_id is None
    assert (closing.from_status, closing.to_status) == ("split", "closed")
    assert closing.payload == {
        "children": {first.number: "transferred", second.number: "merged", third.number: "closed"}
    }


def test_open311_shows_a_split_call_open_until_its_matters_are_final(db, user, call):
    parent = call()
    cohandling.split(db, user("operator"), parent, children=_children(db, DONGGUAN, CGJ))
    first, second = cohandling.children_of(db, parent)
    shown = open311.request_dict(parent, "Asia/Shanghai")
    assert shown["status"] == "open"
    assert shown["status_notes"] == "所反映的多件事项已拆分为子工单分别办理，全部办结后本诉求关闭"
    for child in (first, second):
        ops.transfer(db, user("dispatcher"), child, target=TransferTarget.fire_119, reason="火情")
    db.flush()
    assert open311.request_dict(parent, "Asia/Shanghai")["status"] == "closed"


def test_a_terminated_child_counts_as_final(db, user, call):
    parent = call()
    cohandling.split(db, user("dispatcher"), parent, children=_children(db, DONGGUAN, CGJ))
    first, second = cohandling.children_of(db, parent)
    ops.sign(db, user("cgj"), second)
    ops.request_termination(db, user("cgj"), second, reason="诉求人撤回")
    ops.review_termination(db, user("supervisor"), second, approve=True, note="同意")
    assert parent.status == S.split
    _close_happily(db, user, first)
    db.flush()
    assert parent.status == S.closed
    assert len(_events(db, parent, "close_split")) == 1
    # Exempting a closed child later does not close the parent twice.
    ops.exempt(db, user("supervisor"), first, kind=ExemptionKind.unreasonable, reason="不合理诉求")
    assert len(_events(db, parent, "close_split")) == 1


def test_the_ranking_counts_the_children_not_the_parent(db, user, call):
    now = dt.datetime.now(dt.UTC)
    start, end = now - dt.timedelta(days=40), now + dt.timedelta(days=1)
    units = [unit(db, DONGGUAN).id, unit(db, CGJ).id]

    def dispatched():
        counts = ranking.count_tickets(db, start, end, now, "unit", unit_ids=units)
        return {k: v["dispatched"] for k, v in counts.items()}

    before = dispatched()
    parent = call()
    cohandling.split(db, user("dispatcher"), parent, children=_children(db, DONGGUAN, CGJ))
    db.flush()
    after = dispatched()
    assert after == {u: before.get(u, 0) + 1 for u in units}
    all_counts = ranking.count_tickets(db, start, end, now, "unit")
    assert None not in all_counts  # the parent leads nothing and is in no unit's row


def test_the_month_received_the_matters_of_a_split_call_not_the_call_too(db, user, call):
    now = dt.datetime.now(dt.UTC)
    start, end = now - dt.timedelta(days=40), now + dt.timedelta(days=1)

    def received():
        return ranking._count(db, start, end, now, "unit")[1]["received"]

    before = received()
    for splitter in ("dispatcher", "operator"):
        parent = call()
        cohandling.split(db, user(splitter), parent, children=_children(db, DONGGUAN, CGJ, WATER))
    db.flush()
    assert received() == before + 6  # two calls of three matters each
    first, second, third = cohandling.children_of(db, parent)
    ops.transfer(db, user("dispatcher"), first, target=TransferTarget.fire_119, reason="火情")
    ops.merge(db, user("dispatcher"), second, into=third, reason="同一事项")
    ops.transfer(db, user("dispatcher"), third, target=TransferTarget.fire_119, reason="火情")
    db.flush()
    assert parent.status == S.closed  # closed after the split, still not a matter of its own
    assert received() == before + 6


def test_the_citizen_sees_the_matters_together(db, user, call):
    parent = call()
    cohandling.split(db, user("dispatcher"), parent, children=_children(db, DONGGUAN, CGJ))
    first, second = cohandling.children_of(db, parent)
    _close_happily(db, user, first)
    db.flush()
    now = dt.datetime.now(dt.UTC)
    view = citizen_tracking.view(db, parent, now)
    assert view.status == "已分项办理"
    assert [(p.number, p.status, p.reply) for p in view.parts] == [
        (first.number, "已办结", "已办好"),
        (second.number, "已派单", None),
    ]
    assert [s.title for s in view.steps] == ["已受理", "分项办理"]
    assert view.steps[-1].detail == "您反映的 2 件事项已分别登记，逐项办理"
    child = citizen_tracking.view(db, second, now)
    assert child.parent == parent.number
    assert child.parts == []
    _close_happily(db, user, second, handler="cgj")
    db.flush()
    closed = citizen_tracking.view(db, parent, now)
    assert closed.status == "已办结"
    assert closed.steps[-1].title == "已办结"
    assert db.scalar(sa.select(Ticket.status).where(Ticket.id == parent.id)) == S.closed


def test_a_citizen_who_got_a_receipt_is_texted_the_matters_numbers(db, user, make_ticket):
    online = make_ticket(user("operator"), area="370705", channel=Channel.app)
    cohandling.split(db, user("operator"), online, children=_children(db, DONGGUAN, CGJ))
    first, second = cohandling.children_of(db, online)
    (text,) = _texts(db, online)
    assert text.recipient == online.requester_phone
    assert f"工单号{first.number}、{second.number}，" in text.body
    by_phone = make_ticket(user("operator"), area="370705")  # a call gets no text
    cohandling.split(db, user("operator"), by_phone, children=_children(db, DONGGUAN, CGJ))
    assert _texts(db, by_phone) == []


def _texts(db, ticket):
    return db.scalars(
        sa.select(OutboxMessage).where(
            OutboxMessage.ticket_id == ticket.id, OutboxMessage.kind == "citizen_received"
        )
    ).all()
