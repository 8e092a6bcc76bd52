"""疑难工单 (dispatch/hard_cases.py): each rule met by a ticket built through the real
operations, and the near misses that do not meet it; closed tickets never listed; the list's
order, filter, paging and query count."""

import datetime as dt
from types import SimpleNamespace

import pytest

from dispatch import hard_cases, timers
from dispatch import operations as ops
from hotline.enums import (
    CallbackOutcome,
    HotIssueState,
    ReturnReason,
    Satisfaction,
    Solved,
    TicketStatus,
)
from hotline.models import HotIssue, HotIssueTicket
from hotline.schemas import Page
from tests.dispatch.common import DONGGUAN, STREETLIGHT, TZ
from tests.dispatch.conftest import unit

ZONE = "Asia/Shanghai"
CGJ = "U-CGJ"
WATER = "U-WATER"
USERS = ["operator", "dispatcher", "dongguan", "cgj", "water", "callback", "supervisor"]


def local(month, day, hour=9):
    return dt.datetime(2026, month, day, hour, tzinfo=TZ).astimezone(dt.UTC)


MON = local(11, 16)


@pytest.fixture
def u(user):
    return SimpleNamespace(**{name: user(name) for name in USERS})


@pytest.fixture
def new(db, u, make_ticket):
    """``new(lead=DONGGUAN, at=MON)`` → a streetlight ticket dispatched to ``lead``."""

    def make(lead=DONGGUAN, at=MON, **overrides):
        ticket = make_ticket(u.operator, category=STREETLIGHT, area="370705001", now=at)
        ops.dispatch(db, u.dispatcher, ticket, lead=unit(db, lead), now=at)
        db.flush()
        return ticket

    return make


def handler_of(u, code):
    return {DONGGUAN: u.dongguan, CGJ: u.cgj, WATER: u.water}[code]


def ask_return(db, u, ticket, at):
    code = ticket.lead_unit.code
    ops.request_return(
        db,
        handler_of(u, code),
        ticket,
        return_reason=ReturnReason.not_our_duty,
        note="不属本单位职责",
        now=at,
    )


def uphold(db, u, ticket, to, at):
    ops.decide_return(
        db, u.dispatcher, ticket, approve=True, note="同意退单", lead=unit(db, to), now=at
    )


def reject(db, u, ticket, at):
    ops.decide_return(db, u.dispatcher, ticket, approve=False, note="属本单位职责", now=at)


def found(db, now=MON + dt.timedelta(days=3)):
    db.flush()
    return hard_cases.evaluate(db, now, tz=ZONE)


def rules_of(db, ticket, now=MON + dt.timedelta(days=3)):
    case = found(db, now).get(ticket.id)
    return case.rules if case else []


def finding(db, ticket, rule, now=MON + dt.timedelta(days=3)):
    return next(f for f in found(db, now)[ticket.id].findings if f.rule == rule)


# -- 多次退单 and 单位间争议 -------------------------------------------------------------------


def test_returned_twice_by_two_units(db, u, new):
    ticket = new()
    ask_return(db, u, ticket, MON + dt.timedelta(hours=1))
    uphold(db, u, ticket, CGJ, MON + dt.timedelta(hours=2))
    ask_return(db, u, ticket, MON + dt.timedelta(days=1))
    assert rules_of(db, ticket) == ["returned", "disputed"]
    returned = finding(db, ticket, "returned")
    assert returned.evidence["count"] == 2
    assert [r["unit"] for r in returned.evidence["requests"]] == [DONGGUAN, CGJ]
    assert (
        returned.text
        == "退单申请 2 次：东关街道办事处（2026-11-16）、潍坊市城市管理局（2026-11-17）"
    )
    disputed = finding(db, ticket, "disputed")
    assert disputed.evidence == {"returning_units": [DONGGUAN, CGJ]}
    assert "2 个单位先后申请退单" in disputed.text


def test_one_return_upheld_is_no_hard_case(db, u, new):
    ticket = new()
    ask_return(db, u, ticket, MON + dt.timedelta(hours=1))
    uphold(db, u, ticket, CGJ, MON + dt.timedelta(hours=2))
    assert rules_of(db, ticket) == []


def test_a_rejected_return_is_a_dispute(db, u, new):
    ticket = new()
    ask_return(db, u, ticket, MON + dt.timedelta(hours=1))
    reject(db, u, ticket, MON + dt.timedelta(hours=2))
    assert rules_of(db, ticket) == ["disputed"]
    assert finding(db, ticket, "disputed").evidence == {"rejected_returns": [DONGGUAN]}


def test_the_same_unit_returning_twice_is_returned_not_ping_pong(db, u, new):
    ticket = new()
    ask_return(db, u, ticket, MON + dt.timedelta(hours=1))
    reject(db, u, ticket, MON + dt.timedelta(hours=2))
    ask_return(db, u, ticket, MON + dt.timedelta(hours=3))
    assert rules_of(db, ticket) == ["returned", "disputed"]
    # One unit asked twice: a rejected return, but not two units returning it.
    assert finding(db, ticket, "disputed").evidence == {"rejected_returns": [DONGGUAN]}


def test_lead_changed_twice_is_a_dispute(db, u, new):
    ticket = new()
    ask_return(db, u, ticket, MON + dt.timedelta(hours=1))
    uphold(db, u, ticket, CGJ, MON + dt.timedelta(hours=2))
    ops.designate(db, u.dispatcher, ticket, lead=unit(db, WATER), note="指定水务", now=MON)
    assert rules_of(db, ticket) == ["disputed"]
    disputed = finding(db, ticket, "disputed")
    assert disputed.evidence == {"lead_changes": 2, "leads": [DONGGUAN, CGJ, WATER]}
    assert (
        disputed.text
        == "主办单位变更 2 次：东关街道办事处 → 潍坊市城市管理局 → 潍坊市自来水有限公司"
    )


def test_lead_changed_once_is_no_dispute(db, u, new):
    ticket = new()
    ops.designate(db, u.dispatcher, ticket, lead=unit(db, CGJ), note="指定城管", now=MON)
    assert rules_of(db, ticket) == []


# -- 多次重办 ---------------------------------------------------------------------------------


def handle_and_call_back(db, u, ticket, at):
    ops.sign(db, u.dongguan, ticket, now=at)
    ops.contact(db, u.dongguan, ticket, note="已联系", now=at + dt.timedelta(hours=1))
    ops.finish(db, u.dongguan, ticket, result="已修复", now=at + dt.timedelta(hours=2))
    ops.record_callback(
        db,
        u.callback,
        ticket,
        outcome=CallbackOutcome.answered,
        solved=Solved.unsolved,
        satisfaction=Satisfaction.dissatisfied,
        now=at + dt.timedelta(hours=3),
    )


def reopened(db, u, new, times):
    ticket = new()
    for n in range(times):
        handle_and_call_back(db, u, ticket, MON + dt.timedelta(days=n))
        ops.reopen(db, u.supervisor, ticket, reason="路灯仍不亮", now=MON + dt.timedelta(days=n))
    return ticket


def test_reopened_twice(db, u, new):
    ticket = reopened(db, u, new, 2)
    assert ticket.status == TicketStatus.reopened
    assert rules_of(db, ticket) == ["reopened"]
    assert finding(db, ticket, "reopened").text == "回访后重办 2 次"


def test_reopened_once_is_no_hard_case(db, u, new):
    assert rules_of(db, reopened(db, u, new, 1)) == []


def test_only_tickets_a_meeting_can_act_on_are_listed(db, u, new):
    """Reopened twice, then finished (已办结) or called back (已回访): a meeting's decision
    could not be applied to it (会议决定指定's states), so it is not listed."""
    ticket = reopened(db, u, new, 2)
    at = MON + dt.timedelta(days=3)
    ops.sign(db, u.dongguan, ticket, now=at)
    ops.contact(db, u.dongguan, ticket, note="已联系", now=at)
    ops.finish(db, u.dongguan, ticket, result="已修复", now=at)
    assert ticket.status == TicketStatus.finished
    assert rules_of(db, ticket, at) == []
    ops.record_callback(
        db,
        u.callback,
        ticket,
        outcome=CallbackOutcome.answered,
        solved=Solved.unsolved,
        satisfaction=Satisfaction.dissatisfied,
        now=at,
    )
    assert ticket.status == TicketStatus.called_back
    assert rules_of(db, ticket, at) == []
    ops.reopen(db, u.supervisor, ticket, reason="仍不亮", now=at)
    assert rules_of(db, ticket, at) == ["reopened"]


def test_a_closed_ticket_is_never_listed(db, u, new):
    ticket = reopened(db, u, new, 2)
    handle_and_call_back(db, u, ticket, MON + dt.timedelta(days=3))
    ops.close(db, u.supervisor, ticket, reason="诉求人不再反映", now=MON + dt.timedelta(days=4))
    assert ticket.status == TicketStatus.closed
    assert rules_of(db, ticket) == []


# -- 超期三级督办 -----------------------------------------------------------------------------


def tick(db, now):
    db.flush()
    timers.tick(db, now, ops.timer_settings())
    db.expire_all()


def test_overdue_at_the_third_level(db, u, new):
    ticket = new()
    due = ticket.finish_due
    late = local(12, 31)
    tick(db, late)
    assert ticket.escalation_level == 3
    assert rules_of(db, ticket, late) == ["overdue"]
    overdue = finding(db, ticket, "overdue", late)
    assert overdue.evidence["level"] == 3
    assert overdue.evidence["finish_due"] == due.isoformat()
    assert overdue.evidence["overdue_days"] == (late - due).days


def test_second_level_or_finished_is_not_overdue(db, u, new):
    ticket = new()
    # Deadline Mon 23 Nov; a level every 5 working days: 30 Nov, 7 Dec, 14 Dec.
    tick(db, local(12, 8))
    assert ticket.escalation_level == 2
    assert rules_of(db, ticket, local(12, 8)) == []
    tick(db, local(12, 31))
    ops.sign(db, u.dongguan, ticket, now=local(12, 31))
    ops.contact(db, u.dongguan, ticket, note="已联系", now=local(12, 31, 10))
    ops.finish(db, u.dongguan, ticket, result="已修复", now=local(12, 31, 11))
    assert ticket.escalation_level == 3
    assert rules_of(db, ticket, local(12, 31, 12)) == []


# -- 跨单位热点 -------------------------------------------------------------------------------


def hot_issue(db, tickets, state=HotIssueState.open):
    issue = HotIssue(
        title="胜利东街路灯成片不亮",
        state=state,
        first_at=MON,
        last_at=MON,
        size=len(tickets),
        callers=len(tickets),
    )
    db.add(issue)
    db.flush()
    for t in tickets:
        db.add(HotIssueTicket(ticket_id=t.id, hot_issue_id=issue.id))
    db.flush()
    return issue


def test_a_hot_issue_led_by_two_units(db, u, new):
    a, b, c = new(), new(lead=CGJ), new()
    issue = hot_issue(db, [a, b, c])
    for t in (a, b, c):
        assert rules_of(db, t) == ["hot_issue"]
    evidence = finding(db, a, "hot_issue").evidence
    assert evidence == {
        "hot_issue_id": issue.id,
        "title": "胜利东街路灯成片不亮",
        "tickets": 3,
        "units": [DONGGUAN, CGJ],
    }


def test_a_hot_issue_counts_the_units_of_its_tickets_in_handling(db, u, new):
    """Units disputing now: a unit whose ticket of the issue is finished does not count."""
    a, b, c = new(), new(lead=CGJ), new()
    issue = hot_issue(db, [a, b, c])
    at = MON + dt.timedelta(hours=1)
    ops.sign(db, u.cgj, b, now=at)
    ops.contact(db, u.cgj, b, note="已联系", now=at)
    ops.finish(db, u.cgj, b, result="已修复", now=at)
    for t in (a, b, c):
        assert rules_of(db, t) == []
    d = new(lead=WATER)
    db.add(HotIssueTicket(ticket_id=d.id, hot_issue_id=issue.id))
    assert rules_of(db, a) == ["hot_issue"]
    evidence = finding(db, a, "hot_issue").evidence
    assert (evidence["tickets"], evidence["units"]) == (3, [DONGGUAN, WATER])
    assert rules_of(db, b) == []


def test_a_hot_issue_of_one_unit_or_handled_is_not_hard(db, u, new):
    a, b = new(), new()
    hot_issue(db, [a, b])
    c, d = new(), new(lead=CGJ)
    hot_issue(db, [c, d], state=HotIssueState.handled)
    for t in (a, b, c, d):
        assert rules_of(db, t) == []


# -- the list ---------------------------------------------------------------------------------


def test_list_order_filter_and_page(db, u, new):
    one = reopened(db, u, new, 2)
    two = new()
    ask_return(db, u, two, MON + dt.timedelta(hours=1))
    uphold(db, u, two, CGJ, MON + dt.timedelta(hours=2))
    ask_return(db, u, two, MON + dt.timedelta(hours=3))
    now = MON + dt.timedelta(days=3)
    mine = {one.id, two.id}

    listing = hard_cases.listing(db, now, Page(1, 500), tz=ZONE)
    shown = [c.ticket for c in listing.cases if c.ticket_id in mine]
    assert shown == [two, one]  # two rules before one
    assert listing.counts["reopened"] >= 1 and listing.counts["returned"] >= 1

    only = hard_cases.listing(db, now, Page(1, 500), tz=ZONE, rules=["reopened"])
    assert one.id in {c.ticket_id for c in only.cases}
    assert two.id not in {c.ticket_id for c in only.cases}
    assert all("reopened" in c.rules for c in only.cases)

    first = hard_cases.listing(db, now, Page(1, 1), tz=ZONE)
    assert len(first.cases) == 1 and first.total == listing.total


def test_the_list_takes_few_queries(db, u, new, count_queries):
    for _ in range(3):
        reopened(db, u, new, 2)
    db.flush()
    with count_queries() as counter:
        hard_cases.listing(db, MON + dt.timedelta(days=3), Page(1, 20), tz=ZONE)
    # base, return events, lead assignments, hot issues, units, the page's tickets (+ their
    # units and categories), whatever the number of tickets.
    assert counter.count <= 8, counter


def test_parse_rules():
    assert hard_cases.parse_rules(["overdue", "returned", "overdue"]) == ["overdue", "returned"]
    with pytest.raises(ValueError):
        hard_cases.parse_rules(["nonsense"])
