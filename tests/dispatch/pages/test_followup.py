"""The callback workbench page (回访台, ``/callbacks``) and the supervision page (督办审核,
``/supervision``): roles, the queue, recording calls, the supervisors' decisions, refusals
re-rendered with what was typed, escaping and phone masking.

Tickets are driven with the real operations (as in ``test_operations_callback.py``); moments
are written in Asia/Shanghai wall-clock time of November 2026 and the pages run at
``clock.now``.
"""

import datetime as dt
import re
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from dispatch import operations as ops
from hotline.enums import (
    CallbackOutcome,
    DecisionStatus,
    ExemptionKind,
    Satisfaction,
    Solved,
    TicketStatus,
)
from hotline.models import CallbackAttempt, Extension, TicketEvent, Unit
from tests.dispatch.common import DONGGUAN, NAMES, PHONE, STREETLIGHT, local
from tests.helpers import FORM_TOKEN

S = TicketStatus
XSS = '<script>alert("x")</script>'


@pytest.fixture
def u(user):
    return SimpleNamespace(**{name: user(name) for name in NAMES + ["leader"]})


@pytest.fixture
def clock(monkeypatch):
    """The moment page requests run at: ``clock.now = …``."""
    state = SimpleNamespace(now=local(17, 10))
    monkeypatch.setattr("dispatch.operations.utcnow", lambda: state.now)
    monkeypatch.setattr("dispatch.pages.followup.utcnow", lambda: state.now)
    return state


@pytest.fixture
def handling(db, u, make_ticket):
    """A streetlight ticket of 东关街道, signed and contacted from ``start``."""

    def make(start=None, **overrides):
        start = start or local(16, 9)
        values = {"category": STREETLIGHT, "area": "370705001", "now": start}
        values.update(overrides)
        ticket = make_ticket(u.operator, **values)
        ops.dispatch(db, u.dispatcher, ticket, lead=unit(db, DONGGUAN), now=start)
        ops.sign(db, u.dongguan, ticket, now=start + dt.timedelta(minutes=30))
        if ticket.requester_phone:
            ops.contact(db, u.dongguan, ticket, note="已联系", now=start + dt.timedelta(hours=1))
        db.flush()
        return ticket

    return make


@pytest.fixture
def finished(db, u, handling):
    def make(at=None, result="路灯已修复", **overrides):
        at = at or local(17, 9)
        ticket = handling(start=at - dt.timedelta(days=1), **overrides)
        ops.finish(db, u.dongguan, ticket, result=result, now=at)
        db.flush()
        return ticket

    return make


@pytest.fixture
def called_back(db, u, finished):
    """Finished, then answered unsolved and dissatisfied: waits for a supervisor."""

    def make(at=None, comment="回访记录", **overrides):
        ticket = finished(**overrides)
        ops.record_callback(
            db,
            u.callback,
            ticket,
            outcome=CallbackOutcome.answered,
            solved=Solved.unsolved,
            satisfaction=Satisfaction.dissatisfied,
            comment=comment,
            now=at or local(17, 9, 30),
        )
        db.flush()
        return ticket

    return make


def unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


def token(client, path):
    match = FORM_TOKEN.search(client.get(path).get_data(as_text=True))
    assert match, "no form on " + path
    return match.group(1)


def post(client, path, page, **form):
    return client.post(path, data={"csrf_token": token(client, page), **form})


def text(response):
    return response.get_data(as_text=True)


def attempts(db, ticket):
    return db.scalar(sa.select(sa.func.count()).where(CallbackAttempt.ticket_id == ticket.id))


def event_actions(db, ticket):
    return db.scalars(
        sa.select(TicketEvent.action)
        .where(TicketEvent.ticket_id == ticket.id)
        .order_by(TicketEvent.id)
    ).all()


@pytest.fixture
def switch(web_login):
    """Log out through the header's form, then log in as ``username``."""

    def make(client, username):
        assert post(client, "/logout", "/callbacks").status_code == 302
        assert web_login(client, username).status_code == 302

    return make


def row_order(html):
    return re.findall(r'<tr id="t-([^"]+)"', html)


# -- who may open the pages ---------------------------------------------------------------------


def test_pages_need_a_login(client):
    for path in ("/callbacks", "/supervision"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize(
    "username, callbacks, supervision",
    [
        ("callback", 200, 403),
        ("supervisor", 200, 200),
        ("admin", 200, 403),
        ("operator", 403, 403),
        ("dongguan", 403, 403),
        ("leader", 403, 403),
    ],
)
def test_roles(client, clock, username, callbacks, supervision, web_login):
    web_login(client, username)
    assert client.get("/callbacks").status_code == callbacks
    assert client.get("/supervision").status_code == supervision
    forbidden = client.get("/callbacks" if callbacks == 403 else "/supervision")
    if 403 in (callbacks, supervision):
        assert "您无权访问此页面或工单" in text(forbidden)


def test_home_of_each_role(client, clock, web_login):
    assert web_login(client, "callback").headers["Location"] == "/callbacks"
    other = client.application.test_client()
    assert web_login(other, "supervisor").headers["Location"] == "/supervision"


def test_bad_query_parameters_get_a_chinese_message(client, clock, web_login):
    web_login(client, "callback")
    response = client.get("/callbacks?page=abc")
    assert response.status_code == 422
    assert "页码“page”须为正整数" in text(response)
    response = client.get("/callbacks?due=yes")
    assert response.status_code == 422
    assert "取值应为 1 或 0" in text(response)


# -- 回访台 ------------------------------------------------------------------------------------


def test_queue_in_calling_order_with_the_due_filter(client, db, u, clock, finished, web_login):
    late = finished(at=local(17, 8))  # callback due Wed 08:00: overdue on Wednesday
    retried = finished()
    ops.record_callback(
        db, u.callback, retried, outcome=CallbackOutcome.no_answer, now=local(17, 10)
    )
    fresh = finished()
    answered = finished()
    ops.record_callback(
        db,
        u.callback,
        answered,
        outcome=CallbackOutcome.answered,
        solved=Solved.solved,
        satisfaction=Satisfaction.satisfied,
        now=local(17, 10),
    )
    db.flush()
    clock.now = local(18, 8, 30)
    web_login(client, "callback")
    html = text(client.get("/callbacks"))
    assert row_order(html) == [late.number, fresh.number, retried.number]
    assert "共 3 件" in html
    assert "已超期 30 分钟" in html  # the late one, in words
    assert html.count("已超期") == 1
    assert "1 / 3" in html and "上次：无人接听，2026-11-17 10:00" in html
    assert "2026-11-18 10:00" in html  # when the retried one may be called again
    assert f'href="/tickets/{late.number}"' in html
    due = text(client.get("/callbacks?due=1"))
    assert row_order(due) == [late.number, fresh.number]
    assert 'name="due" value="1" checked' in due
    assert "仅显示到期" in due


def test_a_happy_answer_closes_the_ticket(client, db, u, clock, finished, web_login):
    ticket = finished()
    web_login(client, "callback")
    response = post(
        client,
        f"/callbacks/{ticket.number}/callback",
        "/callbacks",
        version=str(ticket.version),
        outcome="answered",
        solved="solved",
        satisfaction="satisfied",
        comment="群众表示路灯已亮",
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/callbacks"
    db.refresh(ticket)
    assert ticket.status == S.closed
    assert ticket.callback_satisfaction == Satisfaction.satisfied
    assert ticket.callback_comment == "群众表示路灯已亮"
    assert event_actions(db, ticket)[-1] == "record_callback"
    page = text(client.get("/callbacks"))
    assert f"工单 {ticket.number} 回访已记录：接通" in page
    assert ticket.number not in row_order(page)


def test_a_retry_too_soon_is_refused_and_nothing_is_written(
    client, db, u, clock, finished, web_login
):
    ticket = finished()
    web_login(client, "callback")
    first = post(
        client,
        f"/callbacks/{ticket.number}/callback",
        "/callbacks",
        version=str(ticket.version),
        outcome="no_answer",
    )
    assert first.status_code == 302
    db.refresh(ticket)
    assert ticket.status == S.finished
    before = (ticket.version, attempts(db, ticket), len(event_actions(db, ticket)))
    assert before[1] == 1
    clock.now = local(17, 16)
    response = post(
        client,
        f"/callbacks/{ticket.number}/callback?due=0",
        "/callbacks",
        version=str(ticket.version),
        outcome="no_answer",
        comment="再拨一次",
    )
    assert response.status_code == 409
    html = text(response)
    assert "距上次未接通的回访不足 24 小时，最早可于 2026-11-18 10:00 再次回访" in html
    assert "再拨一次" in html  # the not-yet-callable row is still listed with the typed note
    assert re.search(r'value="no_answer"[^>]*checked', html)
    db.refresh(ticket)
    assert (ticket.version, attempts(db, ticket), len(event_actions(db, ticket))) == before


def test_an_answer_without_its_questions_keeps_what_was_typed(
    client, db, u, clock, finished, web_login
):
    ticket = finished()
    web_login(client, "callback")
    response = post(
        client,
        f"/callbacks/{ticket.number}/callback",
        "/callbacks",
        version=str(ticket.version),
        outcome="answered",
        satisfaction="basically",
        comment="诉求人说还行",
    )
    assert response.status_code == 422
    html = text(response)
    assert "接通后须记录是否解决" in html
    assert "诉求人说还行</textarea>" in html
    assert re.search(r'value="answered"[^>]*checked', html)
    assert re.search(r'value="basically"[^>]*checked', html)
    assert attempts(db, ticket) == 0
    db.refresh(ticket)
    assert ticket.status == S.finished


def test_a_stale_version_is_a_conflict(client, db, u, clock, finished, web_login):
    ticket = finished()
    web_login(client, "callback")
    stale = ticket.version - 1
    response = post(
        client,
        f"/callbacks/{ticket.number}/callback",
        "/callbacks",
        version=str(stale),
        outcome="refused",
    )
    assert response.status_code == 409
    assert "工单已被他人更新，请刷新后重试" in text(response)
    db.refresh(ticket)
    assert ticket.status == S.finished and attempts(db, ticket) == 0
    missing = post(client, f"/callbacks/{ticket.number}/callback", "/callbacks", outcome="refused")
    assert missing.status_code == 422
    assert "页面缺少工单版本号" in text(missing)


def test_posting_needs_the_csrf_token(client, db, u, clock, finished, web_login):
    ticket = finished()
    web_login(client, "callback")
    response = client.post(
        f"/callbacks/{ticket.number}/callback",
        data={"version": str(ticket.version), "outcome": "refused"},
    )
    assert response.status_code == 400
    assert attempts(db, ticket) == 0


def test_full_phone_for_callback_agents_masked_for_administrators(
    client, db, u, clock, finished, switch, web_login
):
    finished()
    web_login(client, "callback")
    html = text(client.get("/callbacks"))
    assert PHONE in html
    assert 'type="radio" name="outcome"' in html
    switch(client, "admin")
    html = text(client.get("/callbacks"))
    assert PHONE not in html
    assert "138****0001" in html
    assert 'type="radio" name="outcome"' not in html  # watching only


def test_supervisors_watch_the_queue_without_call_forms(client, db, u, clock, finished, web_login):
    ticket = finished()
    web_login(client, "supervisor")
    html = text(client.get("/callbacks"))
    assert ticket.number in row_order(html)
    assert 'type="radio" name="outcome"' not in html and "仅回访员可记录回访" in html


def test_no_phone_tickets_are_archived_by_hand(client, db, u, clock, finished, web_login):
    ticket = finished(requester_phone=None)
    web_login(client, "callback")
    html = text(client.get("/callbacks"))
    assert "未留电话" in html and "直接归档" in html
    response = post(
        client,
        f"/callbacks/{ticket.number}/close",
        "/callbacks",
        version=str(ticket.version),
        reason="未留电话",
    )
    assert response.status_code == 302
    db.refresh(ticket)
    assert ticket.status == S.closed


def test_user_text_is_escaped(client, db, u, clock, called_back, finished, switch, web_login):
    ticket = called_back(result=XSS, comment=XSS, title=XSS, requester_name=XSS)
    finished(result=XSS, requester_name=XSS)
    web_login(client, "callback")
    html = text(client.get("/callbacks"))
    assert XSS not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    switch(client, "supervisor")
    html = text(client.get("/supervision"))
    assert ticket.number in html
    assert XSS not in html
    assert html.count("&lt;script&gt;") >= 3  # title, result, callback comment
    # Typed text re-rendered after a refusal is escaped too.
    response = post(
        client,
        f"/supervision/{ticket.number}/reopen",
        "/supervision",
        version=str(ticket.version - 1),
        reason=XSS,
    )
    assert response.status_code == 409
    assert XSS not in text(response)


# -- 督办审核 ----------------------------------------------------------------------------------


def test_supervisor_reopens_an_unhappy_callback(client, db, u, clock, called_back, web_login):
    ticket = called_back()
    clock.now = local(18, 14)
    web_login(client, "supervisor")
    html = text(client.get("/supervision"))
    assert f'id="review-{ticket.number}"' in html
    assert "未解决 / 不满意" in html
    empty = post(
        client,
        f"/supervision/{ticket.number}/reopen",
        "/supervision",
        version=str(ticket.version),
    )
    assert empty.status_code == 422
    assert "请填写重办理由" in text(empty)
    response = post(
        client,
        f"/supervision/{ticket.number}/reopen",
        "/supervision",
        version=str(ticket.version),
        reason="路灯仍时亮时不亮",
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/supervision#reviews"
    db.refresh(ticket)
    assert ticket.status == S.reopened
    assert ticket.reopen_count == 1
    assert ticket.lead_unit.code == DONGGUAN
    page = text(client.get("/supervision"))
    assert f"工单 {ticket.number} 已退回原承办单位重办" in page
    assert f'id="review-{ticket.number}"' not in page


def test_supervisor_accepts_an_unhappy_callback_with_a_reason(
    client, db, u, clock, called_back, web_login
):
    ticket = called_back()
    web_login(client, "supervisor")
    response = post(
        client,
        f"/supervision/{ticket.number}/close",
        "/supervision",
        version=str(ticket.version),
        reason="诉求超出政策范围，已解释",
    )
    assert response.status_code == 302
    db.refresh(ticket)
    assert ticket.status == S.closed
    event = db.scalars(
        sa.select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id)
        .order_by(TicketEvent.id.desc())
    ).first()
    assert (event.action, event.reason, event.payload) == (
        "close",
        "诉求超出政策范围，已解释",
        {"closed": "accepted_unhappy"},
    )


def test_a_second_submission_of_the_same_decision_changes_nothing(
    client, db, u, clock, called_back, web_login
):
    ticket = called_back()
    web_login(client, "supervisor")
    form = {"version": str(ticket.version), "reason": "重办"}
    assert (
        post(client, f"/supervision/{ticket.number}/reopen", "/supervision", **form).status_code
        == 302
    )
    again = post(client, f"/supervision/{ticket.number}/reopen", "/supervision", **form)
    assert again.status_code == 409
    assert f"工单 {ticket.number}：工单已被他人更新，请刷新后重试" in text(again)
    assert event_actions(db, ticket).count("reopen") == 1


def test_extension_approved(client, db, u, clock, handling, web_login):
    ticket = handling()
    ops.request_extension(
        db, u.dongguan, ticket, days=3, reason="需协调供电部门", now=local(16, 12)
    )
    db.flush()
    old_due = ticket.finish_due
    web_login(client, "supervisor")
    html = text(client.get("/supervision"))
    assert f'id="extension-{ticket.number}"' in html
    assert "延期 3 个工作日" in html and "需协调供电部门" in html
    no_choice = post(
        client,
        f"/supervision/{ticket.number}/extension-decision",
        "/supervision",
        version=str(ticket.version),
        note="同意",
    )
    assert no_choice.status_code == 422
    assert "请填写是否同意" in text(no_choice)
    assert "同意</textarea>" in text(no_choice)
    response = post(
        client,
        f"/supervision/{ticket.number}/extension-decision",
        "/supervision",
        version=str(ticket.version),
        approve="true",
        note="同意延期",
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/supervision#extensions"
    extension = db.scalars(sa.select(Extension).where(Extension.ticket_id == ticket.id)).one()
    db.refresh(extension)
    db.refresh(ticket)
    assert extension.status == DecisionStatus.approved
    assert extension.decision_note == "同意延期"
    assert ticket.finish_due > old_due
    assert f"工单 {ticket.number} 的延期申请已同意" in text(client.get("/supervision"))


@pytest.mark.parametrize("approve, status", [("true", S.terminated), ("false", S.contacted)])
def test_termination_review(client, db, u, clock, approve, status, handling, web_login):
    ticket = handling()
    ops.request_termination(db, u.dongguan, ticket, reason="诉求人撤回", now=local(16, 12))
    db.flush()
    web_login(client, "supervisor")
    html = text(client.get("/supervision"))
    assert f'id="termination-{ticket.number}"' in html and "诉求人撤回" in html
    response = post(
        client,
        f"/supervision/{ticket.number}/termination-review",
        "/supervision",
        version=str(ticket.version),
        approve=approve,
        note="已核实",
    )
    assert response.status_code == 302
    db.refresh(ticket)
    assert ticket.status == status
    verdict = "同意" if approve == "true" else "驳回"
    assert f"工单 {ticket.number} 的终止申请已{verdict}" in text(client.get("/supervision"))


def test_exemption(client, db, u, clock, finished, web_login):
    ticket = finished()
    web_login(client, "supervisor")
    missing = text(client.get("/supervision?ticket=WF-NONE"))
    assert "工单不存在：WF-NONE" in missing
    html = text(client.get(f"/supervision?ticket={ticket.number}"))
    assert "当前：计入考核" in html and "不合理诉求" in html
    no_kind = post(
        client,
        f"/supervision/{ticket.number}/exempt",
        f"/supervision?ticket={ticket.number}",
        version=str(ticket.version),
        exempt="true",
        reason="同一诉求人重复无理诉求",
    )
    assert no_kind.status_code == 422
    assert "请选择豁免类型" in text(no_kind)
    assert "同一诉求人重复无理诉求</textarea>" in text(no_kind)
    response = post(
        client,
        f"/supervision/{ticket.number}/exempt",
        f"/supervision?ticket={ticket.number}",
        version=str(ticket.version),
        exempt="true",
        kind="unreasonable",
        reason="同一诉求人重复无理诉求",
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/supervision?ticket={ticket.number}#exempt"
    db.refresh(ticket)
    assert ticket.scoring_exempt is True
    assert ticket.exempt_kind == ExemptionKind.unreasonable
    assert ticket.exempted_by_id == u.supervisor.id
    page = text(client.get(response.headers["Location"]))
    assert f"工单 {ticket.number} 已设为考核豁免" in page
    assert "已豁免（不合理诉求：同一诉求人重复无理诉求）" in page
    assert "取消豁免" in page


def test_overdue_tickets_most_overdue_first_with_their_level(
    client, db, u, clock, handling, web_login
):
    older = handling(start=local(2, 9))
    newer = handling(start=local(5, 9))
    on_time = handling(start=local(17, 9))
    older.escalation_level = 2
    db.flush()
    clock.now = local(20, 9)
    web_login(client, "supervisor")
    html = text(client.get("/supervision"))
    found = re.findall(r'<tr id="overdue-([^"]+)"', html)
    assert found == [older.number, newer.number]
    assert on_time.number not in found
    row = html[html.index(f'id="overdue-{older.number}"') :]
    row = row[: row.index("</tr>")]
    assert "二级督办（区县或部门领导）" in row and "已超期" in row and "天" in row


def test_sections_are_paged(client, db, u, clock, app, monkeypatch, called_back, web_login):
    monkeypatch.setitem(app.config, "DEFAULT_PAGE_SIZE", 1)
    first = called_back(at=local(17, 9, 30))
    second = called_back(at=local(17, 9, 40))
    web_login(client, "supervisor")
    html = text(client.get("/supervision"))
    assert f'id="review-{first.number}"' in html and f'id="review-{second.number}"' not in html
    assert "第 1 / 2 页" in html
    html = text(client.get("/supervision?rp=2"))
    assert f'id="review-{second.number}"' in html and f'id="review-{first.number}"' not in html
