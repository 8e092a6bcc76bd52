"""Every illegal (operation, state, role) combination of ``dispatch.states.TRANSITIONS`` is
refused, and a refusal leaves the ticket exactly as it was.

Tickets are brought into each state by running the real operations (``ticket_in``). The big
table runs at the operations level; a smaller sample checks the HTTP error envelope.
"""

import datetime as dt
import re
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from dispatch import cohandling, reply_review, whistle
from dispatch import operations as ops
from dispatch.states import TRANSITIONS
from hotline.db import utcnow
from hotline.enums import (
    CallbackOutcome,
    Channel,
    IntakeOutcome,
    RequestType,
    ReturnReason,
    ReviewMode,
    Role,
    Satisfaction,
    Solved,
    TicketStatus,
    TransferTarget,
    Urgency,
)
from hotline.errors import Conflict, Forbidden
from hotline.models import Category, TicketEvent, Unit

S = TicketStatus

DONGGUAN = "U-S-370705001"

#: One seeded user per role.
USER_FOR_ROLE = {
    Role.operator: "operator",
    Role.dispatcher: "dispatcher",
    Role.unit_handler: "dongguan",  # handler of the lead unit of every ticket built here
    Role.grid_worker: "grid",
    Role.callback_agent: "callback",
    Role.supervisor: "supervisor",
    Role.leader: "leader",
    Role.admin: "admin",
    Role.inspector: "inspector",
    Role.portal: "portal-web",
}

#: How a fresh ticket reaches each state: the operations to run after receive.
PATH = {
    S.received: [],
    S.resolved_at_intake: ["resolve_at_intake"],
    S.transferred: ["transfer"],
    S.merged: ["merge"],
    S.dispatched: ["dispatch"],
    S.return_requested: ["dispatch", "request_return"],
    S.signed: ["dispatch", "sign"],
    S.termination_requested: ["dispatch", "sign", "request_termination"],
    S.terminated: ["dispatch", "sign", "request_termination", "approve_termination"],
    S.contacted: ["dispatch", "sign", "contact"],
    S.reviewing: ["dispatch", "sign", "contact", "finish_for_review"],
    S.finished: ["dispatch", "sign", "contact", "finish"],
    S.called_back: ["dispatch", "sign", "contact", "finish", "callback_unhappy"],
    S.reopened: ["dispatch", "sign", "contact", "finish", "callback_unhappy", "reopen"],
    # A solved and satisfied callback archives the ticket itself.
    S.closed: ["dispatch", "sign", "contact", "finish", "callback_happy"],
    S.split: ["split"],
}

#: Operations whose functions live in a module of their own (the rest in dispatch.operations).
ELSEWHERE = {
    "report_assist": cohandling,
    "split": cohandling,
    "whistle": whistle,
    "report_summons": whistle,
    "give_opinion": whistle,
    "withdraw_summons": whistle,
}


def operation(name):
    return getattr(ELSEWHERE.get(name, ops), name)


def split_children(db):
    """Two matters of one call (拆单), each with its category and unit."""
    lights = db.scalars(sa.select(Category).where(Category.code == "010103")).one()
    return [
        cohandling.Child("小区门口路灯不亮", lights, None, unit(db, DONGGUAN)),
        cohandling.Child("路边井盖缺失", lights, None, unit(db, "U-CGJ")),
    ]


@pytest.fixture
def u(user):
    return SimpleNamespace(**{name: user(name) for name in set(USER_FOR_ROLE.values())})


def unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


@pytest.fixture
def ticket_in(db, u, make_ticket):
    """A fresh ticket brought to ``status`` through the real operations."""

    def make(status):
        ticket = make_ticket(u.operator, category="010103", area="370705001")

        def finish(mode):
            reply_review.set_rule(db, u.supervisor, ticket.category, mode=mode)
            ops.finish(db, u.dongguan, ticket, result="已修复")

        steps = {
            "resolve_at_intake": lambda: ops.resolve_at_intake(
                db, u.operator, ticket, outcome=IntakeOutcome.answered, answer="已答复"
            ),
            "transfer": lambda: ops.transfer(
                db, u.operator, ticket, target=TransferTarget.fire_119, reason="火情"
            ),
            "merge": lambda: ops.merge(db, u.operator, ticket, into=make_ticket(u.operator)),
            "dispatch": lambda: ops.dispatch(db, u.dispatcher, ticket, lead=unit(db, DONGGUAN)),
            "request_return": lambda: ops.request_return(
                db, u.dongguan, ticket, return_reason=ReturnReason.not_our_duty, note="非本单位职责"
            ),
            "sign": lambda: ops.sign(db, u.dongguan, ticket),
            "request_termination": lambda: ops.request_termination(
                db, u.dongguan, ticket, reason="诉求人撤回"
            ),
            "approve_termination": lambda: ops.review_termination(
                db, u.supervisor, ticket, approve=True, note="同意"
            ),
            "contact": lambda: ops.contact(db, u.dongguan, ticket, note="已联系"),
            # Whether a reply is reviewed is the category's rule (dispatch.reply_review),
            # set here so the path does not hang on the automatic check's verdict.
            "finish": lambda: finish(ReviewMode.none),
            "finish_for_review": lambda: finish(ReviewMode.all),
            "callback_unhappy": lambda: ops.record_callback(
                db,
                u.callback,
                ticket,
                outcome=CallbackOutcome.answered,
                solved=Solved.unsolved,
                satisfaction=Satisfaction.dissatisfied,
            ),
            "callback_happy": lambda: ops.record_callback(
                db,
                u.callback,
                ticket,
                outcome=CallbackOutcome.answered,
                solved=Solved.solved,
                satisfaction=Satisfaction.satisfied,
            ),
            "reopen": lambda: ops.reopen(db, u.supervisor, ticket, reason="未解决"),
            "split": lambda: cohandling.split(db, u.operator, ticket, children=split_children(db)),
        }
        for name in PATH[status]:
            steps[name]()
        db.flush()
        assert ticket.status == status
        return ticket

    return make


@pytest.fixture
def arguments(db, u, make_ticket):
    """Keyword arguments that would make a valid call of ``name`` if state and role allowed."""

    def make(name):
        return {
            "resolve_at_intake": lambda: {"outcome": IntakeOutcome.answered, "answer": "已答复"},
            "transfer": lambda: {"target": TransferTarget.police_110, "reason": "治安案件"},
            "merge": lambda: {"into": make_ticket(u.operator), "reason": "重复反映"},
            "dispatch": lambda: {"lead": unit(db, "U-CGJ")},
            "sign": lambda: {},
            "accept": lambda: {},
            "check_in": lambda: {"lng": 119.1, "lat": 36.7, "photos": ["照片"], "note": "现场"},
            "escalate": lambda: {"reason": "需职能部门处理"},
            "contact": lambda: {"note": "已联系"},
            "request_return": lambda: {
                "return_reason": ReturnReason.wrong_territory,
                "note": "属地不符",
            },
            "decide_return": lambda: {"approve": True, "note": "同意", "lead": unit(db, "U-CGJ")},
            "designate": lambda: {"lead": unit(db, "U-CGJ"), "note": "指定城管局"},
            # A valid decision (a deadline still to come), so only the state or role refuses.
            "apply_meeting_decision": lambda: {
                "lead": unit(db, "U-CGJ"),
                "note": "联席会议决定由城管局办理",
                "finish_due": utcnow() + dt.timedelta(days=7),
            },
            "request_extension": lambda: {"days": 2, "reason": "情况复杂"},
            "decide_extension": lambda: {"approve": True, "note": "同意"},
            "finish": lambda: {"result": "已办结"},
            "approve_reply": lambda: {"note": "答复清楚"},
            "return_reply": lambda: {"reason": "答复未说明路灯何时修复"},
            "record_callback": lambda: {
                "outcome": CallbackOutcome.answered,
                "solved": Solved.solved,
                "satisfaction": Satisfaction.satisfied,
            },
            "reopen": lambda: {"reason": "未解决"},
            "close": lambda: {"reason": "归档"},
            "rerequest": lambda: {"reason": "路灯仍然不亮"},
            "request_termination": lambda: {"reason": "诉求人撤回"},
            "review_termination": lambda: {"approve": True, "note": "同意"},
            "exempt": lambda: {"exempt": True, "kind": "unreasonable", "reason": "无理索要"},
            "reclassify": lambda: {"urgency": Urgency.emergency, "reason": "核实有人受伤"},
            "whistle": lambda: {"units": [unit(db, "U-CGJ")], "reason": "占道经营需城管执法"},
            "report_summons": lambda: {},
            "give_opinion": lambda: {"opinion": "已派执法队员到场处置"},
            "withdraw_summons": lambda: {"unit": unit(db, "U-CGJ"), "reason": "街道已自行解决"},
            "split": lambda: {"children": split_children(db)},
            "report_assist": lambda: {"report": "已清理协办范围内的杂物"},
        }[name]()

    return make


CHINESE = re.compile(r"[\u4e00-\u9fff]")

# -- the tables -------------------------------------------------------------------------------

OPERATIONS = [name for name in TRANSITIONS if name != "receive"]

STATE_CASES = [
    pytest.param(name, status, role, id=f"{name}-{status.value}-{role.value}")
    for name in OPERATIONS
    for status in S
    if status not in TRANSITIONS[name].from_states
    for role in sorted(TRANSITIONS[name].roles)
]

#: For the role table, the state a ticket is put in: the first allowed state (by enum order).
ALLOWED_STATE = {
    name: next(s for s in S if s in TRANSITIONS[name].from_states) for name in OPERATIONS
}

ROLE_CASES = [
    pytest.param(name, role, id=f"{name}-{role.value}")
    for name in OPERATIONS
    for role in Role
    if role not in TRANSITIONS[name].roles
]


#: The transition table as DOMAIN.md §3 describes it, pinned here so that loosening
#: ``dispatch.states`` (which the tables below are generated from) fails a test.
EXPECTED_TABLE = {
    "receive": (set(), {"operator", "grid_worker", "portal"}),
    "resolve_at_intake": ({"received"}, {"operator", "dispatcher"}),
    "transfer": ({"received"}, {"operator", "dispatcher"}),
    "merge": ({"received"}, {"operator", "dispatcher"}),
    "dispatch": ({"received"}, {"dispatcher"}),
    "split": ({"received"}, {"operator", "dispatcher"}),
    "sign": ({"dispatched", "reopened", "signed", "contacted"}, {"unit_handler"}),
    "accept": ({"dispatched", "signed", "contacted", "reopened"}, {"grid_worker"}),
    "check_in": ({"signed", "contacted"}, {"grid_worker"}),
    "escalate": ({"signed", "contacted"}, {"grid_worker"}),
    "contact": ({"signed"}, {"unit_handler", "grid_worker"}),
    "request_return": ({"dispatched", "signed"}, {"unit_handler"}),
    "decide_return": ({"return_requested"}, {"dispatcher"}),
    "designate": (
        {"received", "dispatched", "signed", "contacted", "return_requested", "reopened"},
        {"dispatcher"},
    ),
    "apply_meeting_decision": (
        {"received", "dispatched", "signed", "contacted", "return_requested", "reopened"},
        {"supervisor"},
    ),
    "request_extension": ({"signed", "contacted"}, {"unit_handler"}),
    "decide_extension": ({"signed", "contacted"}, {"dispatcher", "supervisor"}),
    "finish": ({"signed", "contacted"}, {"unit_handler", "grid_worker"}),
    "approve_reply": ({"reviewing"}, {"supervisor"}),
    "return_reply": ({"reviewing"}, {"supervisor"}),
    "report_assist": (
        {
            "dispatched",
            "signed",
            "contacted",
            "return_requested",
            "reopened",
            "termination_requested",
        },
        {"unit_handler"},
    ),
    "record_callback": ({"finished"}, {"callback_agent", "portal"}),
    "reopen": ({"called_back"}, {"supervisor"}),
    "close": ({"finished", "called_back"}, {"callback_agent", "supervisor"}),
    "rerequest": ({"finished", "closed"}, {"portal"}),
    "request_termination": ({"signed", "contacted"}, {"unit_handler"}),
    "review_termination": ({"termination_requested"}, {"supervisor"}),
    "exempt": ({s.value for s in S}, {"supervisor"}),
    "reclassify": (
        {
            "received",
            "dispatched",
            "signed",
            "contacted",
            "return_requested",
            "reopened",
            "termination_requested",
        },
        {"dispatcher", "supervisor"},
    ),
    "whistle": ({"signed", "contacted"}, {"unit_handler"}),
    "report_summons": (
        {"signed", "contacted", "return_requested", "termination_requested"},
        {"unit_handler"},
    ),
    "give_opinion": (
        {"signed", "contacted", "return_requested", "termination_requested"},
        {"unit_handler"},
    ),
    "withdraw_summons": (
        {"signed", "contacted", "return_requested", "termination_requested"},
        {"unit_handler"},
    ),
}


def test_transition_table_is_as_documented():
    actual = {
        name: ({s.value for s in t.from_states}, {r.value for r in t.roles})
        for name, t in TRANSITIONS.items()
    }
    assert actual == EXPECTED_TABLE
    # Nothing leaves a final state except the scoring exemption, and the citizen's renewed
    # request (不满意再次反映) out of 已归档 within its window.
    final = {S.resolved_at_intake, S.transferred, S.merged, S.terminated, S.closed}
    for name, t in TRANSITIONS.items():
        if name == "rerequest":
            assert t.from_states & final == {S.closed}
        elif name != "exempt":
            assert not (t.from_states & final), name


def test_tables_cover_every_operation():
    assert set(OPERATIONS) == set(TRANSITIONS) - {"receive"}
    assert {p.values[0] for p in ROLE_CASES} == set(OPERATIONS)
    # exempt is allowed from every state, so it is the only operation without state cases.
    assert {p.values[0] for p in STATE_CASES} == set(OPERATIONS) - {"exempt"}
    assert len(STATE_CASES) == sum(
        (len(S) - len(t.from_states)) * len(t.roles)
        for n, t in TRANSITIONS.items()
        if n != "receive"
    )


@pytest.mark.parametrize("status", list(S), ids=lambda s: s.value)
def test_ticket_in_reaches_every_state_through_events(db, u, status, ticket_in):
    ticket = ticket_in(status)
    events = db.scalars(
        sa.select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
    ).all()
    assert len(events) == 1 + len(PATH[status])
    assert events[0].from_status is None
    for previous, event in zip(events, events[1:], strict=False):
        assert event.from_status == previous.to_status
    assert events[-1].to_status == status.value


@pytest.mark.parametrize("name,status,role", STATE_CASES)
def test_wrong_state_refused(
    db, u, user, name, status, role, arguments, assert_unchanged, snapshot, ticket_in
):
    ticket = ticket_in(status)
    actor = user(USER_FOR_ROLE[role])
    kwargs = arguments(name)
    before = snapshot(ticket)
    with pytest.raises(Conflict) as caught:
        operation(name)(db, actor, ticket, **kwargs)
    error = caught.value
    assert error.code == "TICKET_STATE_CONFLICT"
    assert error.status == 409
    assert error.details == {"operation": name, "status": status.value}
    assert error.message == (f"工单当前状态为“{status.label}”，不能执行“{TRANSITIONS[name].label}”")
    assert_unchanged(ticket, before)


@pytest.mark.parametrize("name,role", ROLE_CASES)
def test_wrong_role_refused(
    db, u, user, name, role, arguments, assert_unchanged, snapshot, ticket_in
):
    status = ALLOWED_STATE[name]
    ticket = ticket_in(status)
    actor = user(USER_FOR_ROLE[role])
    kwargs = arguments(name)
    before = snapshot(ticket)
    with pytest.raises(Forbidden) as caught:
        operation(name)(db, actor, ticket, **kwargs)
    error = caught.value
    assert error.code == "ROLE_NOT_ALLOWED"
    assert error.status == 403
    assert error.details == {"operation": name, "role": role.value}
    assert error.message == f"“{role.label}”角色无权执行“{TRANSITIONS[name].label}”操作"
    assert_unchanged(ticket, before)


@pytest.mark.parametrize(
    "role",
    [r for r in Role if r not in TRANSITIONS["receive"].roles],
    ids=lambda r: r.value,
)
def test_receive_by_wrong_role_refused(db, user, role, ticket_count):
    before = ticket_count()
    with pytest.raises(Forbidden) as caught:
        ops.receive(
            db,
            user(USER_FOR_ROLE[role]),
            channel=Channel.phone,
            request_type=RequestType.help,
            urgency=Urgency.normal,
            title="求助",
            content="求助内容",
        )
    assert caught.value.code == "ROLE_NOT_ALLOWED"
    assert ticket_count() == before


def test_stale_version_refused_before_anything_changes(
    db, u, assert_unchanged, snapshot, ticket_in
):
    ticket = ticket_in(S.dispatched)
    before = snapshot(ticket)
    with pytest.raises(Conflict) as caught:
        ops.sign(db, u.dongguan, ticket, expected_version=ticket.version - 1)
    assert caught.value.code == "TICKET_VERSION_CONFLICT"
    assert caught.value.details == {
        "expected_version": ticket.version - 1,
        "current_version": ticket.version,
    }
    assert_unchanged(ticket, before)


# -- units that do not hold the ticket --------------------------------------------------------


@pytest.mark.parametrize("username", ["cgj", "water", "sthj"])
def test_other_units_handler_cannot_sign(
    db, u, user, username, assert_unchanged, snapshot, ticket_in
):
    ticket = ticket_in(S.dispatched)
    before = snapshot(ticket)
    with pytest.raises(Forbidden) as caught:
        ops.sign(db, user(username), ticket)
    assert caught.value.code == "TICKET_NOT_ASSIGNED_TO_UNIT"
    assert caught.value.message == "该工单未派给您所在单位"
    assert_unchanged(ticket, before)


@pytest.mark.parametrize(
    "name,status",
    [
        ("contact", S.signed),
        ("request_return", S.dispatched),
        ("request_extension", S.signed),
        ("finish", S.contacted),
        ("request_termination", S.signed),
    ],
)
def test_other_units_handler_cannot_act_for_the_lead(
    db, u, user, name, status, arguments, assert_unchanged, snapshot, ticket_in
):
    ticket = ticket_in(status)
    kwargs = arguments(name)
    before = snapshot(ticket)
    for username in ("cgj", "kuiwen"):  # an unrelated unit; the copied district government
        with pytest.raises(Forbidden) as caught:
            operation(name)(db, user(username), ticket, **kwargs)
        assert caught.value.code == "TICKET_NOT_ASSIGNED_TO_UNIT"
    assert_unchanged(ticket, before)


# -- the same refusals through HTTP -----------------------------------------------------------


def _error(response, status, code):
    assert response.status_code == status, response.json
    body = response.json
    assert body["success"] is False
    assert set(body) == {"success", "error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert CHINESE.search(body["error"]["message"])
    return body["error"]


HTTP_CASES = [
    # (state, user, slug, body, status, code, details)
    pytest.param(
        S.dispatched,
        "dispatcher",
        "dispatch",
        {"lead_unit": "U-CGJ"},
        409,
        "TICKET_STATE_CONFLICT",
        {"operation": "dispatch", "status": "dispatched"},
        id="dispatch-twice",
    ),
    pytest.param(
        S.signed,
        "callback",
        "close",
        {},
        409,
        "TICKET_STATE_CONFLICT",
        {"operation": "close", "status": "signed"},
        id="close-signed",
    ),
    pytest.param(
        S.finished,
        "callback",
        "close",
        {},
        409,
        "CALLBACK_REQUIRED",
        {"unreached_attempts": 0, "required": 3},
        id="close-finished-before-any-callback",
    ),
    pytest.param(
        S.closed,
        "supervisor",
        "reopen",
        {"reason": "再办"},
        409,
        "TICKET_STATE_CONFLICT",
        {"operation": "reopen", "status": "closed"},
        id="reopen-closed",
    ),
    pytest.param(
        S.contacted,
        "dongguan",
        "contact",
        {"note": "再联系"},
        409,
        "TICKET_STATE_CONFLICT",
        {"operation": "contact", "status": "contacted"},
        id="contact-twice",
    ),
    pytest.param(
        S.received,
        "operator",
        "dispatch",
        {"lead_unit": "U-CGJ"},
        403,
        "ROLE_NOT_ALLOWED",
        {"operation": "dispatch", "role": "operator"},
        id="operator-dispatches",
    ),
    pytest.param(
        S.finished,
        "dongguan",
        "close",
        {},
        403,
        "ROLE_NOT_ALLOWED",
        {"operation": "close", "role": "unit_handler"},
        id="unit-closes",
    ),
    pytest.param(
        S.received,
        "leader",
        "exempt",
        {"reason": "不合理"},
        403,
        "ROLE_NOT_ALLOWED",
        {"operation": "exempt", "role": "leader"},
        id="leader-exempts",
    ),
    pytest.param(
        S.return_requested,
        "supervisor",
        "return-decision",
        {"approve": False, "note": "驳回"},
        403,
        "ROLE_NOT_ALLOWED",
        {"operation": "decide_return", "role": "supervisor"},
        id="supervisor-decides-return",
    ),
    pytest.param(
        S.contacted,
        "supervisor",
        "designate",
        {"lead_unit": "U-CGJ", "note": "改由城管局办理"},
        403,
        "ROLE_NOT_ALLOWED",
        {"operation": "designate", "role": "supervisor"},
        id="supervisor-designates",
    ),
    pytest.param(
        S.reviewing,
        "dongguan",
        "approve-reply",
        {},
        403,
        "ROLE_NOT_ALLOWED",
        {"operation": "approve_reply", "role": "unit_handler"},
        id="unit-approves-own-reply",
    ),
    pytest.param(
        S.finished,
        "supervisor",
        "return-reply",
        {"reason": "答复不清"},
        409,
        "TICKET_STATE_CONFLICT",
        {"operation": "return_reply", "status": "finished"},
        id="return-reply-already-finished",
    ),
]


@pytest.mark.parametrize("state,username,slug,body,status,code,details", HTTP_CASES)
def test_http_refusal_envelope(
    db, u, api, state, username, slug, body, status, code, details, snapshot, ticket_in
):
    ticket = ticket_in(state)
    before = snapshot(ticket)
    number = ticket.number
    seen = api("dispatcher").get(f"/tickets/{number}").json["data"]

    error = _error(api(username).post(f"/tickets/{number}/{slug}", json=body), status, code)
    assert error["details"] == details

    after = api("dispatcher").get(f"/tickets/{number}").json["data"]
    assert after["version"] == seen["version"] == before["ticket"]["version"]
    assert after["status"]["value"] == state.value
    assert len(after["events"]) == len(seen["events"]) == len(before["events"])
    assert len(after["assignments"]) == len(seen["assignments"])
    assert after == seen
    db.expire_all()
    assert snapshot(ticket) == before


def test_http_other_units_handler_cannot_even_see_the_ticket(db, u, api, snapshot, ticket_in):
    ticket = ticket_in(S.dispatched)
    before = snapshot(ticket)
    error = _error(
        api("cgj").post(f"/tickets/{ticket.number}/sign", json={}), 403, "TICKET_FORBIDDEN"
    )
    assert error["message"] == "您无权查看该工单"
    _error(api("cgj").get(f"/tickets/{ticket.number}"), 403, "TICKET_FORBIDDEN")
    db.expire_all()
    assert snapshot(ticket) == before


def test_http_copy_unit_sees_but_cannot_sign(db, u, api, snapshot, ticket_in):
    ticket = ticket_in(S.dispatched)
    before = snapshot(ticket)
    assert api("kuiwen").get(f"/tickets/{ticket.number}").status_code == 200
    error = _error(
        api("kuiwen").post(f"/tickets/{ticket.number}/sign", json={}),
        403,
        "COPY_NEEDS_NO_SIGNATURE",
    )
    assert error["details"] == {}
    db.expire_all()
    assert snapshot(ticket) == before


def test_http_stale_version_is_a_conflict(db, u, api, snapshot, ticket_in):
    ticket = ticket_in(S.dispatched)
    before = snapshot(ticket)
    error = _error(
        api("dongguan").post(
            f"/tickets/{ticket.number}/sign", json={"version": ticket.version - 1}
        ),
        409,
        "TICKET_VERSION_CONFLICT",
    )
    assert error["details"] == {
        "expected_version": ticket.version - 1,
        "current_version": ticket.version,
    }
    db.expire_all()
    assert snapshot(ticket) == before
