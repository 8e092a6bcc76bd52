"""承办单位管理 (dispatch/units.py): creating and editing units, and deactivating one — refused
while it holds open tickets, or done by handing them to another unit, one reassign event per
ticket, the lead's part re-dispatched with a new clock, nothing moved when anything fails."""

import datetime as dt

import pytest
import sqlalchemy as sa

from dispatch import operations as ops
from dispatch import units
from dispatch.narrative import Teller
from hotline import reference
from hotline.enums import AssignmentRole, ReturnReason, TicketStatus, UnitKind
from hotline.errors import Conflict, Forbidden, ValidationFailed
from hotline.models import (
    Area,
    Assignment,
    AuditLog,
    Notification,
    RoutingRule,
    TicketEvent,
    Unit,
)
from tests.dispatch.common import DONGGUAN, STREETLIGHT

S = TicketStatus
KUIWEN = "U-D-370705"  # 奎文区人民政府: copied on 东关街道's tickets
NEIGHBOUR = "U-S-370705002"  # another street office of 奎文区


def unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


def area(db, code):
    return db.scalars(sa.select(Area).where(Area.code == code)).one()


def audit_rows(db, action):
    db.flush()
    return db.scalars(
        sa.select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)
    ).all()


def events_of(db, ticket, action="reassign"):
    db.flush()
    return db.scalars(
        sa.select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.action == action)
        .order_by(TicketEvent.id)
    ).all()


def active_parts(ticket):
    return sorted((a.unit.code, a.role.value) for a in ticket.assignments if a.active)


@pytest.fixture
def people(user):
    return {name: user(name) for name in ("admin", "dispatcher", "dongguan", "operator", "cgj")}


@pytest.fixture
def dispatched(db, people, make_ticket):
    """``dispatched(lead=DONGGUAN, assists=(), then=())`` → a ticket dispatched to ``lead``
    and brought on by ``then`` ("sign", "contact", "return")."""

    def make(lead=DONGGUAN, assists=(), then=()):
        ticket = make_ticket(people["operator"], category=STREETLIGHT, area="370705001")
        ops.dispatch(
            db,
            people["dispatcher"],
            ticket,
            lead=unit(db, lead),
            assists=[unit(db, code) for code in assists],
        )
        handler = people["dongguan"]
        for step in then:
            if step == "sign":
                ops.sign(db, handler, ticket)
            elif step == "contact":
                ops.contact(db, handler, ticket, note="已电话联系")
            elif step == "return":
                ops.request_return(
                    db, handler, ticket, return_reason=ReturnReason.not_our_duty, note="非本单位"
                )
        db.flush()
        return ticket

    return make


# -- create and edit ------------------------------------------------------------------------------


def test_create_unit_is_audited_and_bumps_the_units_version(db, people):
    before = reference.versions(db)[reference.UNITS]
    values = units.unit_values(
        db,
        {
            "code": "U-TEST",
            "name": "潍坊市测试局",
            "kind": "city_department",
            "areas": ["370705", "370702"],
            "phones": "0536-823 4567\n+86 138 0536 0000\n05368234567",
            "always_on": True,
        },
    )
    created = units.create_unit(db, people["admin"], values)

    assert created.active and created.always_on
    assert created.phones == ["05368234567", "13805360000"]  # normalised, duplicate dropped
    assert sorted(a.code for a in created.areas) == ["370702", "370705"]
    (row,) = audit_rows(db, "unit.create")
    assert row.target == "U-TEST"
    assert row.payload["changes"]["name"] == [None, "潍坊市测试局"]
    assert row.payload["changes"]["areas"] == [None, ["370702", "370705"]]
    assert reference.versions(db)[reference.UNITS] == before + 1


@pytest.mark.parametrize(
    "data, field, words",
    [
        ({"phones": ["12345"]}, "phones", "格式不正确"),
        ({"phones": "13805360000\nabc"}, "phones", "abc"),
        ({"phones": [f"1380536000{i}" for i in range(10)] + ["13905360000"]}, "phones", "最多"),
        ({"areas": ["999999"]}, "areas", "区域不存在"),
        ({"areas": ["370705001001"]}, "areas", "只能是区县或街道乡镇"),
        ({"kind": "ministry"}, "kind", "取值无效"),
        ({"name": ""}, "name", "请填写"),
        ({"code": "U TEST"}, "code", "格式"),
        ({"active": False}, "active", "停用"),
        ({"colour": "red"}, "colour", "未知字段"),
    ],
)
def test_bad_values_are_refused_by_field(db, data, field, words):
    base = {"code": "U-TEST", "name": "测试局", "kind": "city_department"}
    with pytest.raises(ValidationFailed) as refused:
        units.unit_values(db, {**base, **data})
    assert words in refused.value.details[field]


def test_kind_and_areas_must_agree_and_there_is_one_hotline_centre(db, people):
    admin = people["admin"]
    street_with_district = units.unit_values(
        db, {"code": "U-S-X", "name": "某街道", "kind": "street_office", "areas": ["370705"]}
    )
    with pytest.raises(ValidationFailed, match="只能是街道乡镇"):
        units.create_unit(db, admin, street_with_district)
    second_centre = units.unit_values(
        db, {"code": "U-H2", "name": "另一热线", "kind": "hotline_centre"}
    )
    with pytest.raises(ValidationFailed, match="热线中心只能有一个"):
        units.create_unit(db, admin, second_centre)
    centre = unit(db, "U-HOTLINE")
    with pytest.raises(ValidationFailed, match="热线中心的类型不能更改"):
        units.update_unit(db, admin, centre, {"kind": UnitKind.city_department})


def test_duplicate_code_is_refused(db, people):
    values = units.unit_values(db, {"code": "U-CGJ", "name": "重复", "kind": "city_department"})
    with pytest.raises(Conflict) as refused:
        units.create_unit(db, people["admin"], values)
    assert refused.value.code == "UNIT_CODE_TAKEN"


def test_update_audits_old_and_new_values_and_only_real_changes(db, people):
    cgj = unit(db, "U-CGJ")
    values = units.unit_values(
        db, {"name": "潍坊市城市管理综合执法局", "phones": ["13805360099"]}, unit=cgj
    )
    changes = units.update_unit(db, people["admin"], cgj, values)
    assert changes == {
        "name": ["潍坊市城市管理局", "潍坊市城市管理综合执法局"],
        "phones": [[], ["13805360099"]],
    }
    (row,) = audit_rows(db, "unit.update")
    assert row.payload["changes"] == changes
    # The same again changes nothing and writes nothing.
    assert units.update_unit(db, people["admin"], cgj, values) == {}
    assert len(audit_rows(db, "unit.update")) == 1
    with pytest.raises(ValidationFailed, match="创建后不能修改"):
        units.unit_values(db, {"code": "U-OTHER"}, unit=cgj)


def test_only_administrators_change_units(db, people):
    values = units.unit_values(db, {"code": "U-TEST", "name": "测试局", "kind": "city_department"})
    for name in ("dispatcher", "cgj"):
        with pytest.raises(Forbidden):
            units.create_unit(db, people[name], values)
        with pytest.raises(Forbidden):
            units.deactivate_unit(db, people[name], unit(db, "U-CGJ"))


# -- open tickets ---------------------------------------------------------------------------------


def test_open_tickets_count_every_role_and_only_tickets_in_handling(db, people, dispatched):
    dispatched(assists=["U-CGJ"])
    dispatched(then=["sign"])
    done = dispatched(then=["sign", "contact"])
    ops.finish(db, people["dongguan"], done, result="已修复")
    db.flush()

    counts = units.open_ticket_counts(db)
    assert counts[unit(db, DONGGUAN).id] == 2  # the finished one waits for its callback
    assert units.open_by_role(db, unit(db, "U-CGJ"))[AssignmentRole.assist] == 1
    assert units.open_by_role(db, unit(db, KUIWEN))[AssignmentRole.copy] == 2


# -- deactivate ---------------------------------------------------------------------------------


def test_a_unit_without_open_tickets_is_deactivated_and_reactivated(db, people):
    admin = people["admin"]
    sthj = unit(db, "U-STHJ")
    rules = db.scalar(
        sa.select(sa.func.count()).select_from(RoutingRule).where(RoutingRule.unit_id == sthj.id)
    )
    before = reference.versions(db)[reference.UNITS]

    result = units.deactivate_unit(db, admin, sthj)

    assert not sthj.active and result.moved == []
    assert len(result.routing_rules) == rules > 0
    assert result.active_users == 1
    (row,) = audit_rows(db, "unit.deactivate")
    assert row.payload["changes"] == {"active": [True, False]}
    assert reference.versions(db)[reference.UNITS] == before + 1
    with pytest.raises(Conflict, match="已是停用状态"):
        units.deactivate_unit(db, admin, sthj)

    units.reactivate_unit(db, admin, sthj)
    assert sthj.active
    (row,) = audit_rows(db, "unit.reactivate")
    assert row.payload["changes"] == {"active": [False, True]}
    with pytest.raises(Conflict, match="已是启用状态"):
        units.reactivate_unit(db, admin, sthj)


def test_the_hotline_centre_cannot_be_deactivated(db, people):
    with pytest.raises(Conflict) as refused:
        units.deactivate_unit(db, people["admin"], unit(db, "U-HOTLINE"))
    assert refused.value.code == "UNIT_IS_HOTLINE_CENTRE"


def test_open_tickets_without_a_receiving_unit_refuse_deactivation(db, people, dispatched):
    dispatched(then=["sign"])
    dispatched(lead="U-CGJ", assists=[DONGGUAN])
    street = unit(db, DONGGUAN)

    with pytest.raises(Conflict) as refused:
        units.deactivate_unit(db, people["admin"], street)

    assert refused.value.code == "UNIT_HAS_OPEN_TICKETS"
    assert "2 件在办工单" in refused.value.message
    assert "主办 1 件、协办 1 件" in refused.value.message
    assert refused.value.details["by_role"] == {"lead": 1, "assist": 1, "copy": 0}
    assert street.active
    assert audit_rows(db, "unit.deactivate") == []


@pytest.mark.parametrize(
    "target, words",
    [(DONGGUAN, "本身"), ("U-HOTLINE", "热线中心"), ("inactive", "已停用")],
)
def test_the_receiving_unit_must_be_another_active_unit(db, people, dispatched, target, words):
    ticket = dispatched()
    if target == "inactive":
        units.deactivate_unit(db, people["admin"], unit(db, "U-STHJ"))
        target = "U-STHJ"
    with pytest.raises(ValidationFailed) as refused:
        units.deactivate_unit(
            db, people["admin"], unit(db, DONGGUAN), move_to=unit(db, target), reason="机构调整"
        )
    assert words in refused.value.details["move_to"]
    assert unit(db, DONGGUAN).active
    assert events_of(db, ticket) == []


def test_a_reason_is_needed_to_move_tickets(db, people, dispatched):
    dispatched()
    with pytest.raises(ValidationFailed, match="转移原因"):
        units.deactivate_unit(
            db, people["admin"], unit(db, DONGGUAN), move_to=unit(db, NEIGHBOUR), reason=" "
        )


def test_the_leads_tickets_are_redispatched_with_a_new_clock(db, people, dispatched):
    signed = dispatched(then=["sign", "contact"])
    returning = dispatched(then=["return"])
    old_clock = signed.clock_started_at
    old_sign_due = signed.sign_due
    now = old_clock + dt.timedelta(hours=3)
    street, neighbour = unit(db, DONGGUAN), unit(db, NEIGHBOUR)

    result = units.deactivate_unit(
        db, people["admin"], street, move_to=neighbour, reason="街道区划调整", now=now
    )

    assert result.moved == [signed.number, returning.number]
    for ticket in (signed, returning):
        assert ticket.status == S.dispatched
        assert ticket.lead_unit_id == neighbour.id
        # The copy to the district government follows the new lead (the same district).
        assert active_parts(ticket) == [(KUIWEN, "copy"), (NEIGHBOUR, "lead")]
        assert ticket.clock_started_at == now
        assert ticket.signed_at is None and ticket.contacted_at is None
        assert ticket.lead_history
        old = [a for a in ticket.assignments if a.unit_id == street.id]
        assert [(a.active, a.ended_at) for a in old] == [(False, now)]
        (event,) = events_of(db, ticket)
        assert event.actor_role == "admin"
        assert event.reason == "街道区划调整"
        assert event.payload["from_unit"] == DONGGUAN
        assert event.payload["to_unit"] == NEIGHBOUR
        assert event.payload["lead_unit"] == NEIGHBOUR
        assert event.created_at == now
        assert ticket.next_due_at is not None and ticket.next_due_at > now
    assert signed.sign_due > old_sign_due
    assert returning.assignments[0].return_status.value == "approved"
    (row,) = audit_rows(db, "unit.deactivate")
    assert row.payload["moved_to"] == NEIGHBOUR
    assert row.payload["tickets"] == result.moved
    # The receiving unit is told once, in its inbox.
    (told,) = db.scalars(sa.select(Notification).where(Notification.kind == "unit_reassign")).all()
    assert told.unit_id == neighbour.id and "2 件工单" in told.title
    sentence = Teller(db, events_of(db, signed), "Asia/Shanghai").sentence(events_of(db, signed)[0])
    assert "东关街道" in sentence and "停用" in sentence and "主办" in sentence


def test_assisting_and_copied_parts_move_alone_and_the_clock_runs_on(db, people, dispatched):
    ticket = dispatched(lead="U-CGJ", assists=[DONGGUAN], then=[])
    street_ticket = dispatched(lead=NEIGHBOUR)
    clock, due = ticket.clock_started_at, ticket.finish_due
    admin = people["admin"]

    units.deactivate_unit(
        db, admin, unit(db, DONGGUAN), move_to=unit(db, NEIGHBOUR), reason="职责划转"
    )
    assert ticket.status == S.dispatched
    assert active_parts(ticket) == [("U-CGJ", "lead"), (NEIGHBOUR, "assist")]
    assert (ticket.clock_started_at, ticket.finish_due) == (clock, due)
    (event,) = events_of(db, ticket)
    assert event.payload == {"from_unit": DONGGUAN, "to_unit": NEIGHBOUR, "role": "assist"}

    # The district government copied on the street's ticket: its copy moves, the lead stays.
    units.deactivate_unit(db, admin, unit(db, KUIWEN), move_to=unit(db, "U-ZJJ"), reason="合并")
    assert street_ticket.status == S.dispatched
    assert street_ticket.lead_unit.code == NEIGHBOUR
    assert ("U-ZJJ", "copy") in active_parts(street_ticket)
    assert (KUIWEN, "copy") not in active_parts(street_ticket)


def test_a_unit_already_holding_the_ticket_is_not_given_a_weaker_part(db, people, dispatched):
    ticket = dispatched(lead=NEIGHBOUR, assists=[DONGGUAN])
    units.deactivate_unit(
        db, people["admin"], unit(db, DONGGUAN), move_to=unit(db, NEIGHBOUR), reason="合并"
    )
    assert active_parts(ticket) == [(KUIWEN, "copy"), (NEIGHBOUR, "lead")]
    assert events_of(db, ticket)[0].payload["already_held_as"] == "lead"

    # An assisting unit becoming the lead leaves the assisting list.
    other = dispatched(lead="U-CGJ", assists=["U-ZJJ"])
    units.deactivate_unit(
        db, people["admin"], unit(db, "U-CGJ"), move_to=unit(db, "U-ZJJ"), reason="合并"
    )
    assert active_parts(other) == [("U-ZJJ", "lead")]


def test_the_new_lead_works_the_moved_ticket(db, people, dispatched):
    ticket = dispatched(then=["sign"])
    units.deactivate_unit(
        db, people["admin"], unit(db, DONGGUAN), move_to=unit(db, "U-CGJ"), reason="职责划转"
    )
    ops.sign(db, people["cgj"], ticket)
    assert ticket.status == S.signed
    with pytest.raises(Forbidden):
        ops.contact(db, people["dongguan"], ticket, note="旧单位")


def test_a_failure_on_any_ticket_moves_nothing(db, people, dispatched, monkeypatch):
    first, second = dispatched(), dispatched()
    real = ops.reassign
    calls = []

    def failing(session, actor, ticket, **kwargs):
        calls.append(ticket.number)
        if len(calls) == 2:
            raise Conflict("工单已被他人更新", code="TICKET_VERSION_CONFLICT")
        return real(session, actor, ticket, **kwargs)

    monkeypatch.setattr(ops, "reassign", failing)
    savepoint = db.begin_nested()
    with pytest.raises(Conflict):
        units.deactivate_unit(
            db, people["admin"], unit(db, DONGGUAN), move_to=unit(db, NEIGHBOUR), reason="调整"
        )
    savepoint.rollback()
    db.expire_all()

    assert calls == [first.number, second.number]
    assert unit(db, DONGGUAN).active
    for ticket in (first, second):
        assert ticket.lead_unit.code == DONGGUAN
        assert events_of(db, ticket) == []
    assert (
        db.scalar(
            sa.select(sa.func.count())
            .select_from(Assignment)
            .where(Assignment.unit_id == unit(db, NEIGHBOUR).id)
        )
        == 0
    )
    assert audit_rows(db, "unit.deactivate") == []
