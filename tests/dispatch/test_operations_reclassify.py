"""调整分类和紧急程度 (operations.reclassify): who may, in which states, deadlines recomputed
from the clock's original start, the timers following the new deadlines, the event, the audit
row, the units' inbox, stale versions and retries.

Moments are Asia/Shanghai wall-clock times worked out by hand. The seeded policies: 紧急诉求
sign 30 min, contact 30 min, finish 2 h; 一般诉求 sign 2 h, contact 24 h, finish 5 working
days. Monday 2026-11-16 starts a week without holidays.
"""

import datetime as dt

import pytest
import sqlalchemy as sa

from dispatch import operations as ops
from dispatch import timers
from hotline.enums import DecisionStatus, RequestType, TicketStatus, Urgency
from hotline.errors import Conflict, ValidationFailed
from hotline.models import AuditLog, Category, Notification, TicketEvent, TimerFiring, Unit
from tests.dispatch.common import DONGGUAN, STREETLIGHT, TZ

SETTINGS = timers.Settings()
#: 停水: another leaf of the seeded tree (城乡建设 › 供水), not a streetlight.
OTHER_CATEGORY = "010201"


def local(day, hour=9, minute=0):
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=TZ).astimezone(dt.UTC)


def show(moment):
    return moment.astimezone(TZ).strftime("%Y-%m-%d %H:%M")


def unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


def category(db, code):
    return db.scalars(sa.select(Category).where(Category.code == code)).one()


@pytest.fixture
def emergency(db, user, make_ticket):
    """``emergency(at=Monday 09:00, urgency=紧急)`` → a streetlight ticket dispatched to
    东关街道 at ``at``."""

    def make(at=None, urgency=Urgency.emergency):
        at = at or local(16, 9)
        ticket = make_ticket(user("operator"), category=STREETLIGHT, urgency=urgency, now=at)
        ops.dispatch(db, user("dispatcher"), ticket, lead=unit(db, DONGGUAN), now=at)
        db.flush()
        return ticket

    return make


def tick(db, now):
    result = timers.tick(db, now, SETTINGS)
    db.flush()
    db.expire_all()
    return result


def fired(db, ticket):
    rows = db.scalars(
        sa.select(TimerFiring)
        .where(TimerFiring.ticket_id == ticket.id)
        .order_by(TimerFiring.due_at, TimerFiring.id)
    )
    return [(f.kind.value, show(f.due_at)) for f in rows]


def events(db, ticket, action="reclassify"):
    return db.scalars(
        sa.select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.action == action)
        .order_by(TicketEvent.id)
    ).all()


def test_lowering_an_emergency_recomputes_deadlines_from_the_clock_start(db, user, emergency):
    ticket = emergency()
    assert show(ticket.sign_due) == "2026-11-16 09:30"
    assert show(ticket.finish_due) == "2026-11-16 11:00"
    version = ticket.version

    event = ops.reclassify(
        db,
        user("dispatcher"),
        ticket,
        urgency=Urgency.normal,
        reason="核实为路灯故障，无人员受伤",
        expected_version=version,
        now=local(16, 9, 10),
    )
    db.flush()

    assert ticket.urgency == Urgency.normal
    assert ticket.version > version
    assert ticket.clock_started_at == local(16, 9)  # the clock keeps its start
    assert show(ticket.sign_due) == "2026-11-16 11:00"
    assert show(ticket.contact_due) == "2026-11-17 09:00"
    assert show(ticket.finish_due) == "2026-11-23 09:00"
    assert ops.ticket_policy(db, ticket).name == "一般诉求"
    assert event.action == "reclassify"
    assert event.reason == "核实为路灯故障，无人员受伤"
    assert event.from_status == event.to_status == "dispatched"
    assert event.payload["changes"] == {"urgency": {"from": "emergency", "to": "normal"}}
    assert event.payload["sla_policy"] == "一般诉求"
    assert event.payload["old_deadlines"]["sign_due"] == local(16, 9, 30).isoformat()
    assert event.payload["finish_due"] == local(23, 9).isoformat()
    # The next timer is the new sign warning (80 % of 2 h), not the old 09:24 one.
    assert show(ticket.next_due_at) == "2026-11-16 10:36"


def test_a_lowered_emergency_no_longer_fires_at_the_old_deadlines(db, user, emergency):
    ticket = emergency()
    ops.reclassify(
        db, user("dispatcher"), ticket, urgency=Urgency.normal, reason="误判", now=local(16, 9, 5)
    )
    db.flush()
    assert tick(db, local(16, 9, 31)).fired == 0
    assert tick(db, local(16, 11, 1)).fired == 2
    assert fired(db, ticket) == [
        ("sign_warning", "2026-11-16 10:36"),
        ("sign_overdue", "2026-11-16 11:00"),
    ]


def test_raising_to_emergency_makes_the_new_deadlines_fire(db, user, emergency):
    ticket = emergency(urgency=Urgency.normal)
    assert show(ticket.sign_due) == "2026-11-16 11:00"
    ops.reclassify(
        db,
        user("supervisor"),
        ticket,
        urgency=Urgency.emergency,
        reason="来电复述有人被困",
        now=local(16, 9, 10),
    )
    db.flush()
    assert show(ticket.sign_due) == "2026-11-16 09:30"
    assert show(ticket.finish_due) == "2026-11-16 11:00"
    assert show(ticket.next_due_at) == "2026-11-16 09:24"
    tick(db, local(16, 9, 31))
    assert fired(db, ticket) == [
        ("sign_warning", "2026-11-16 09:24"),
        ("contact_warning", "2026-11-16 09:24"),
        ("sign_overdue", "2026-11-16 09:30"),
        ("contact_overdue", "2026-11-16 09:30"),
    ]


def test_approved_extensions_are_kept(db, user, emergency):
    ticket = emergency(urgency=Urgency.normal)
    handler = user("dongguan")
    ops.sign(db, handler, ticket, now=local(16, 10))
    ops.request_extension(db, handler, ticket, days=2, reason="需采购灯具", now=local(17, 9))
    ops.decide_extension(
        db, user("dispatcher"), ticket, approve=True, note="同意", now=local(17, 10)
    )
    assert show(ticket.finish_due) == "2026-11-25 09:00"
    ops.reclassify(
        db, user("dispatcher"), ticket, urgency=Urgency.urgent, reason="涉及学校", now=local(17, 11)
    )
    db.flush()
    # 加急诉求: finish 24 h from Monday 09:00, plus the 2 approved working days.
    assert show(ticket.finish_due) == "2026-11-19 09:00"
    assert events(db, ticket)[0].payload["extended_days"] == 2
    assert ticket.signed_at == local(16, 10)  # what was done stays done


def test_category_and_type_of_a_received_ticket(db, user, make_ticket):
    ticket = make_ticket(user("operator"), category=STREETLIGHT)
    event = ops.reclassify(
        db,
        user("dispatcher"),
        ticket,
        category=category(db, OTHER_CATEGORY),
        request_type=RequestType.help,
        reason="分类有误",
    )
    db.flush()
    assert ticket.category.code == OTHER_CATEGORY
    assert ticket.request_type == RequestType.help
    assert ticket.sign_due is None and ticket.clock_started_at is None
    changes = event.payload["changes"]
    assert changes["category"]["from"]["code"] == STREETLIGHT
    assert changes["category"]["to"] == {
        "code": OTHER_CATEGORY,
        "name": category(db, OTHER_CATEGORY).name,
    }
    assert changes["request_type"] == {"from": "complaint", "to": "help"}
    assert "sign_due" not in event.payload


def test_audited_and_units_told(db, user, emergency):
    ticket = emergency()
    ops.reclassify(
        db, user("dispatcher"), ticket, urgency=Urgency.normal, reason="误判", now=local(16, 9, 5)
    )
    db.flush()
    row = db.scalars(
        sa.select(AuditLog).where(
            AuditLog.action == "ticket.reclassify", AuditLog.target == ticket.number
        )
    ).one()
    assert row.actor_id == user("dispatcher").id
    assert row.payload["changes"]["urgency"] == {"from": "emergency", "to": "normal"}
    notes = db.scalars(
        sa.select(Notification).where(
            Notification.ticket_id == ticket.id, Notification.kind == "reclassify"
        )
    ).all()
    assert [n.unit_id for n in notes] == [unit(db, DONGGUAN).id]
    assert "紧急程度" in notes[0].body and "办结 11-23 09:00" in notes[0].body


def test_stale_version_refused_and_nothing_changes(db, user, emergency, snapshot, assert_unchanged):
    ticket = emergency()
    before = snapshot(ticket)
    with pytest.raises(Conflict) as caught:
        ops.reclassify(
            db,
            user("dispatcher"),
            ticket,
            urgency=Urgency.normal,
            reason="误判",
            expected_version=ticket.version - 1,
        )
    assert caught.value.code == "TICKET_VERSION_CONFLICT"
    assert_unchanged(ticket, before)


def test_identical_retry_returns_the_first_event(db, user, emergency):
    ticket = emergency()
    version = ticket.version
    kwargs = {"urgency": Urgency.normal, "reason": "误判", "expected_version": version}
    first = ops.reclassify(db, user("dispatcher"), ticket, now=local(16, 9, 5), **kwargs)
    db.flush()
    after = ticket.version
    again = ops.reclassify(db, user("dispatcher"), ticket, now=local(16, 9, 6), **kwargs)
    db.flush()
    assert again is first
    assert len(events(db, ticket)) == 1
    assert ticket.version == after


def test_nothing_to_change_refused(db, user, emergency):
    ticket = emergency()
    with pytest.raises(Conflict) as caught:
        ops.reclassify(db, user("supervisor"), ticket, urgency=Urgency.emergency, reason="复核")
    assert caught.value.code == "RECLASSIFY_UNCHANGED"
    assert "无需调整" in caught.value.message


def test_reason_required(db, user, emergency):
    ticket = emergency()
    with pytest.raises(ValidationFailed) as caught:
        ops.reclassify(db, user("dispatcher"), ticket, urgency=Urgency.normal, reason="  ")
    assert caught.value.details == {"reason": "请填写调整理由"}


def test_inactive_category_refused(db, user, emergency):
    ticket = emergency()
    other = category(db, OTHER_CATEGORY)
    other.active = False
    with pytest.raises(ValidationFailed) as caught:
        ops.reclassify(db, user("dispatcher"), ticket, category=other, reason="分类有误")
    assert "已停用" in caught.value.details["category"]


def test_finished_ticket_refused(db, user, finished):
    ticket = finished()
    assert ticket.status == TicketStatus.finished
    with pytest.raises(Conflict) as caught:
        ops.reclassify(db, user("dispatcher"), ticket, urgency=Urgency.urgent, reason="复核")
    assert caught.value.code == "TICKET_STATE_CONFLICT"
    assert caught.value.message == "工单当前状态为“已办结”，不能执行“调整分类和紧急程度”"


def test_pending_extension_is_not_counted(db, user, emergency):
    ticket = emergency(urgency=Urgency.normal)
    handler = user("dongguan")
    ops.sign(db, handler, ticket, now=local(16, 10))
    ops.request_extension(db, handler, ticket, days=3, reason="需采购", now=local(17, 9))
    ops.reclassify(
        db, user("dispatcher"), ticket, urgency=Urgency.urgent, reason="涉及学校", now=local(17, 11)
    )
    db.flush()
    assert show(ticket.finish_due) == "2026-11-17 09:00"
    assert ops._pending_extension(db, ticket).status == DecisionStatus.pending
