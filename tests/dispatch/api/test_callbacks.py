"""The callback queues over HTTP (``/api/v1/callbacks``, ``/api/v1/callbacks/reviews``): the
calling queue in calling order, its items and filters, who may read it, and the supervisors'
review queue (reopen or accept).

Moments are injected (the ``clock`` fixture for HTTP requests, ``now=`` for operations) and
written in Asia/Shanghai wall-clock time of November 2026 (tests/dispatch/common.py). The ticket
builders (``finished``, ``call``, ``answer``) are fixtures of tests/dispatch/conftest.py.
"""

from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from dispatch import operations as ops
from hotline.enums import CallbackOutcome, Satisfaction, Solved
from hotline.models import Unit
from tests.dispatch.common import DONGGUAN, NAMES, PHONE, STREETLIGHT, local
from tests.helpers import assert_error


@pytest.fixture
def u(user):
    return SimpleNamespace(**{name: user(name) for name in NAMES})


@pytest.fixture
def clock(monkeypatch):
    """The moment HTTP requests run at: ``clock.now = …``."""
    state = SimpleNamespace(now=None)
    monkeypatch.setattr("dispatch.operations.utcnow", lambda: state.now)
    monkeypatch.setattr("dispatch.api.callbacks.utcnow", lambda: state.now)
    return state


def unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


def data(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["success"] is True
    return body["data"]


def numbers(page):
    return [item["number"] for item in page["items"]]


# -- the calling queue over HTTP ----------------------------------------------------------------


@pytest.fixture
def queue(db, u, answer, call, finished, make_ticket):
    """Tickets in every callback situation; the queue is read on Wednesday 08:30."""
    t = SimpleNamespace()
    t.b = finished(at=local(17, 8))  # callback due Wed 08:00: overdue
    t.a = finished()
    call(t.a, CallbackOutcome.no_answer, local(17, 10))  # next try Wed 10:00
    t.c = finished()
    t.g = finished()  # same moment as c: after it, by id
    t.unhappy = finished()
    answer(t.unhappy, local(17, 15), Solved.unsolved, Satisfaction.dissatisfied)
    t.happy = finished()
    answer(t.happy, local(17, 15))
    t.handling = make_ticket(u.operator, category=STREETLIGHT, now=local(16))
    ops.dispatch(db, u.dispatcher, t.handling, lead=unit(db, DONGGUAN), now=local(16))
    db.flush()
    return t


def test_queue_in_calling_order_with_the_due_filter(db, api, clock, queue):
    clock.now = local(18, 8, 30)
    page = data(api("callback").get("/callbacks"))
    assert numbers(page) == [queue.b.number, queue.c.number, queue.g.number, queue.a.number]
    assert (page["page"], page["per_page"], page["total"]) == (1, 20, 4)
    due = data(api("callback").get("/callbacks?due=1"))
    assert numbers(due) == [queue.b.number, queue.c.number, queue.g.number]
    assert due["total"] == 3
    assert numbers(data(api("callback").get("/callbacks?due=0"))) == numbers(page)
    second = data(api("callback").get("/callbacks?per_page=2&page=2"))
    assert numbers(second) == [queue.g.number, queue.a.number]
    assert second["total"] == 4
    # Later in the day the retried ticket is callable again.
    clock.now = local(18, 10)
    assert data(api("callback").get("/callbacks?due=1"))["total"] == 4


def test_queue_items(db, api, clock, queue):
    clock.now = local(18, 8, 30)
    items = {i["number"]: i for i in data(api("callback").get("/callbacks"))["items"]}
    b, a = items[queue.b.number], items[queue.a.number]
    assert b == {
        "number": queue.b.number,
        "version": queue.b.version,
        "status": {"value": "finished", "label": "已办结"},
        "title": "小区门口路灯不亮",
        "category": {"code": STREETLIGHT, "name": queue.b.category.name},
        "lead_unit": {"code": DONGGUAN, "name": "东关街道办事处"},
        "result": "路灯已修复",
        "finished_at": local(17, 8).isoformat(),
        "requester_name": "王先生",
        "requester_phone": PHONE,
        "attempts": {"count": 0, "max": 3, "last_outcome": None, "last_at": None},
        "callback_due": local(18, 8).isoformat(),
        "callback_next_at": local(17, 8).isoformat(),
        "due_now": True,
        "overdue": True,
    }
    assert a["attempts"] == {
        "count": 1,
        "max": 3,
        "last_outcome": {"value": "no_answer", "label": "无人接听"},
        "last_at": local(17, 10).isoformat(),
    }
    assert a["callback_next_at"] == local(18, 10).isoformat()
    assert (a["due_now"], a["overdue"]) == (False, False)


def test_queue_counts_only_the_attempts_on_the_current_result(
    db, u, api, clock, answer, call, finished
):
    ticket = finished()
    call(ticket, CallbackOutcome.no_answer, local(17, 10))
    answer(ticket, local(18, 10), Solved.unsolved, Satisfaction.dissatisfied)
    ops.reopen(db, u.supervisor, ticket, reason="未解决", now=local(18, 11))
    ops.sign(db, u.dongguan, ticket, now=local(18, 12))
    ops.contact(db, u.dongguan, ticket, note="再次联系", now=local(18, 13))
    ops.finish(db, u.dongguan, ticket, result="已更换灯具", now=local(18, 14))
    db.flush()
    assert ticket.callback_next_at == local(18, 14)
    clock.now = local(18, 15)
    (item,) = data(api("callback").get("/callbacks"))["items"]
    assert item["attempts"]["count"] == 0
    assert item["result"] == "已更换灯具"


def test_an_unreachable_requester_over_http(db, u, api, clock, finished):
    ticket = finished()
    path = f"/tickets/{ticket.number}/callback"
    agent = api("callback")
    clock.now = local(17, 10)
    assert data(agent.post(path, json={"outcome": "no_answer"}))["status"]["value"] == "finished"
    clock.now = local(17, 16)
    seen = data(agent.get(f"/tickets/{ticket.number}"))
    error = assert_error(
        agent.post(path, json={"outcome": "no_answer"}), 409, "CALLBACK_RETRY_TOO_SOON"
    )
    assert error["details"] == {"next_attempt_at": "2026-11-18T02:00:00+00:00"}
    assert "2026-11-18 10:00" in error["message"]
    assert data(agent.get(f"/tickets/{ticket.number}")) == seen  # nothing written
    assert data(agent.get("/callbacks?due=1"))["total"] == 0
    clock.now = local(18, 10)
    assert numbers(data(agent.get("/callbacks?due=1"))) == [ticket.number]
    data(agent.post(path, json={"outcome": "no_answer"}))
    clock.now = local(19, 10)
    closed = data(agent.post(path, json={"outcome": "no_answer"}))
    assert closed["status"]["value"] == "closed"
    assert closed["closed_at"] == local(19, 10).isoformat()
    assert closed["callback"]["solved"] is None
    assert closed["event"]["payload"] == {
        "outcome": "no_answer",
        "attempt": 3,
        "closed": "unreachable",
    }
    assert data(agent.get("/callbacks"))["total"] == 0


def test_queue_query_errors(db, api, clock):
    clock.now = local(18, 9)
    error = assert_error(api("callback").get("/callbacks?due=yes"), 422, "VALIDATION_FAILED")
    assert error["details"] == {"due": "取值应为 1 或 0"}
    error = assert_error(api("callback").get("/callbacks?per_page=201"), 422, "VALIDATION_FAILED")
    assert error["details"] == {"per_page": "每页最多 200 条"}
    error = assert_error(
        api("supervisor").get("/callbacks/reviews?page=0"), 422, "VALIDATION_FAILED"
    )
    assert error["details"] == {"page": "须为正整数"}


@pytest.mark.parametrize(
    "username,phone",
    [("callback", PHONE), ("supervisor", PHONE), ("admin", "138****0001")],
)
def test_phone_shown_in_full_only_to_roles_that_call(
    db, u, api, clock, username, phone, answer, finished
):
    ticket = finished()
    unhappy = finished()
    answer(unhappy, local(17, 10), Solved.unsolved, Satisfaction.dissatisfied)
    clock.now = local(17, 11)
    (item,) = data(api(username).get("/callbacks"))["items"]
    assert item["number"] == ticket.number
    assert item["requester_phone"] == phone
    (review,) = data(api(username).get("/callbacks/reviews"))["items"]
    assert review["requester_phone"] == phone


@pytest.mark.parametrize("path", ["/callbacks", "/callbacks/reviews"])
@pytest.mark.parametrize("username", ["operator", "dispatcher", "dongguan", "grid", "leader"])
def test_other_roles_are_refused(db, api, clock, path, username):
    clock.now = local(18, 9)
    error = assert_error(api(username).get(path), 403, "ROLE_NOT_ALLOWED")
    assert "无权查看回访" in error["message"]
    assert set(error["details"]) == {"role"}


def test_the_queue_needs_a_login(client):
    response = client.get("/api/v1/callbacks")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "AUTH_REQUIRED"


# -- the review queue: reopen or accept ---------------------------------------------------------


@pytest.fixture
def reviews(db, u, answer, finished):
    t = SimpleNamespace()
    t.later = finished()
    answer(t.later, local(18, 11), Solved.unsolved, Satisfaction.dissatisfied)
    t.earlier = finished()
    answer(t.earlier, local(17, 15), Solved.partly, Satisfaction.dissatisfied)
    t.happy = finished()
    answer(t.happy, local(17, 16))
    db.flush()
    return t


def test_review_queue_oldest_callback_first(db, api, clock, reviews):
    clock.now = local(18, 12)
    page = data(api("supervisor").get("/callbacks/reviews"))
    assert numbers(page) == [reviews.earlier.number, reviews.later.number]
    assert page["total"] == 2
    item = page["items"][0]
    assert item["status"] == {"value": "called_back", "label": "已回访"}
    assert item["callback"] == {
        "solved": {"value": "partly", "label": "部分解决"},
        "satisfaction": {"value": "dissatisfied", "label": "不满意"},
        "comment": "回访记录",
        "at": local(17, 15).isoformat(),
    }
    assert item["reopen_count"] == 0
    assert item["lead_unit"] == {"code": DONGGUAN, "name": "东关街道办事处"}
    assert item["result"] == "路灯已修复"
    assert item["attempts"]["count"] == 1
    assert item["attempts"]["last_outcome"]["value"] == "answered"
    # Callback agents may look; the called-back tickets are not in their calling queue.
    assert numbers(data(api("callback").get("/callbacks/reviews"))) == numbers(page)
    assert data(api("callback").get("/callbacks"))["total"] == 0


def test_review_reopen_goes_back_to_the_same_unit_with_a_new_clock(db, api, clock, reviews):
    clock.now = local(18, 14)
    number = reviews.earlier.number
    error = assert_error(
        api("callback").post(f"/tickets/{number}/reopen", json={"reason": "未解决"}),
        403,
        "ROLE_NOT_ALLOWED",
    )
    reopened = data(
        api("supervisor").post(f"/tickets/{number}/reopen", json={"reason": "路灯仍时亮时不亮"})
    )
    assert reopened["status"]["value"] == "reopened"
    assert reopened["lead_unit"]["code"] == DONGGUAN
    assert reopened["reopen_count"] == 1
    assert reopened["clock_started_at"] == local(18, 14).isoformat()
    assert reopened["sign_due"] == local(18, 16).isoformat()
    assert reopened["callback_due"] is None
    assert numbers(data(api("supervisor").get("/callbacks/reviews"))) == [reviews.later.number]
    assert data(api("callback").get("/callbacks"))["total"] == 0
    assert error["details"] == {"operation": "reopen", "role": "callback_agent"}


def test_review_accepted_with_a_reason(db, api, clock, reviews):
    clock.now = local(18, 14)
    number = reviews.later.number
    path = f"/tickets/{number}/close"
    assert_error(api("callback").post(path, json={}), 403, "SUPERVISOR_DECISION_REQUIRED")
    assert_error(api("supervisor").post(path, json={}), 422, "VALIDATION_FAILED")
    closed = data(api("supervisor").post(path, json={"reason": "诉求超出政策范围，已解释"}))
    assert closed["status"]["value"] == "closed"
    assert closed["event"]["payload"] == {"closed": "accepted_unhappy"}
    assert closed["event"]["reason"] == "诉求超出政策范围，已解释"
    assert closed["callback"]["solved"]["value"] == "unsolved"  # rated as answered
    assert numbers(data(api("supervisor").get("/callbacks/reviews"))) == [reviews.earlier.number]


def test_no_phone_tickets_are_listed_and_archived_by_hand(db, u, api, clock, finished):
    ticket = finished(requester_phone=None)
    clock.now = local(17, 10)
    (item,) = data(api("callback").get("/callbacks?due=1"))["items"]
    assert item["requester_phone"] is None
    closed = data(
        api("callback").post(f"/tickets/{ticket.number}/close", json={"reason": "未留电话"})
    )
    assert closed["event"]["payload"] == {"closed": "no_phone"}
    assert data(api("callback").get("/callbacks"))["total"] == 0
