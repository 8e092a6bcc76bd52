"""The dispatcher's queue (派单台) and the unit handler's inbox (待办工单): order, scope, the
dispatch and arbitration forms, stale forms, and the deadline colour rule at its edges."""

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from dispatch import deadlines
from dispatch import operations as ops
from dispatch.pages import desk
from hotline.db import utcnow
from hotline.enums import AssignmentRole, DecisionStatus, ReturnReason, TicketStatus
from hotline.models import Assignment, Category, Extension, Ticket, TicketEvent, Unit
from tests.conftest import form_token, make_ticket, web_login

DONGGUAN = "U-S-370705001"
CGJ = "U-CGJ"
STREETLIGHT = "010103"


def unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


def category(db, code):
    return db.scalars(sa.select(Category).where(Category.code == code)).one()


def suggestion(confidence, unit_code=DONGGUAN):
    """A stored suggestion whose dispatch confidence is ``confidence``."""
    return {
        "category": {"top": [{"code": STREETLIGHT, "name": "路灯故障", "probability": 0.99}]},
        "area": {"code": "370705001", "confidence": 0.99},
        "units": [{"code": unit_code, "confidence": confidence, "reason": "test"}],
    }


def dispatched(db, user, lead=DONGGUAN, now=None, **overrides):
    ticket = make_ticket(db, user("operator"), **overrides)
    ops.dispatch(
        db,
        user("dispatcher"),
        ticket,
        lead=unit(db, lead),
        category=category(db, STREETLIGHT),
        now=now,
    )
    db.flush()
    return ticket


def numbers_in(html, numbers):
    """The given ticket numbers in the order they appear in ``html``."""
    found = sorted((html.index(n), n) for n in numbers if n in html)
    return [n for _, n in found]


# -- the colour rule ----------------------------------------------------------------------------

DUE = dt.datetime(2026, 11, 16, 10, 0, tzinfo=dt.UTC)
WARN = DUE - dt.timedelta(minutes=24)
TICK = dt.timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("now", "state", "words"),
    [
        (WARN - TICK, "ok", "剩余 24 分钟"),
        (WARN, "warn", "即将到期，剩余 24 分钟"),
        (DUE, "warn", "即将到期，剩余 不足 1 分钟"),
        (DUE + TICK, "overdue", "已超时 不足 1 分钟"),
        (DUE + dt.timedelta(hours=3), "overdue", "已超时 3 小时"),
        (DUE - dt.timedelta(days=1, hours=2), "ok", "剩余 1 天 2 小时"),
    ],
)
def test_deadline_state_edges(now, state, words):
    result = deadlines.deadline_state(DUE, warn_at=WARN, done_at=None, now=now)
    assert (result.state, result.words) == (state, words)


def test_deadline_state_done_stopped_and_missing():
    late = deadlines.deadline_state(DUE, warn_at=WARN, done_at=DUE + dt.timedelta(hours=2), now=DUE)
    assert (late.state, late.words) == ("done", "已完成（超时 2 小时）")
    on_time = deadlines.deadline_state(
        DUE, warn_at=WARN, done_at=DUE, now=DUE + dt.timedelta(days=9)
    )
    assert (on_time.state, on_time.words) == ("done", "已按时完成")
    stopped = deadlines.deadline_state(
        DUE, warn_at=WARN, done_at=None, now=DUE + TICK, stopped=True
    )
    assert (stopped.state, stopped.words) == ("done", "已停止计时")
    assert deadlines.deadline_state(None, warn_at=None, done_at=None, now=DUE).state == "none"


def test_duration_words():
    assert deadlines.duration_words(dt.timedelta(days=2)) == "2 天"
    assert deadlines.duration_words(dt.timedelta(hours=1, minutes=5, seconds=59)) == "1 小时 5 分钟"
    assert deadlines.duration_words(dt.timedelta(seconds=59)) == "不足 1 分钟"


def test_ticket_deadlines_follow_the_warning_timer(db, user):
    """Amber exactly from the moment the 80 % warning timer fires (timers.plan)."""
    now = utcnow()
    ticket = dispatched(db, user, now=now - dt.timedelta(hours=2))  # sign due: 2 h
    warn = ticket.clock_started_at + dt.timedelta(hours=2) * 0.8
    before = deadlines.ticket_deadlines(db, ticket, warn - TICK)
    at = deadlines.ticket_deadlines(db, ticket, warn)
    assert before[0][0] == "签收" and before[0][2].state == "ok"
    assert at[0][2].state == "warn"


# -- dispatcher queue ---------------------------------------------------------------------------


def test_queue_only_for_dispatchers(client, db):
    assert client.get("/dispatch").status_code == 302
    web_login(client, "dongguan")
    assert client.get("/dispatch").status_code == 403
    web_login(client, "operator")
    assert client.get("/dispatch").status_code == 403


def test_queue_order_lowest_confidence_first_none_first(client, db, user):
    operator = user("operator")
    t0 = utcnow() - dt.timedelta(hours=5)
    sure = make_ticket(db, operator, suggestion=suggestion(0.9), now=t0)
    unsure_new = make_ticket(
        db, operator, suggestion=suggestion(0.3), now=t0 + dt.timedelta(minutes=1)
    )
    unsure_old = make_ticket(db, operator, suggestion=suggestion(0.3), now=t0)
    bare = make_ticket(db, operator, now=t0 + dt.timedelta(hours=2))
    done = dispatched(db, user, suggestion=suggestion(0.1))
    web_login(client, "dispatcher")
    html = client.get("/dispatch").get_data(as_text=True)
    expected = [bare.number, unsure_old.number, unsure_new.number, sure.number]
    assert numbers_in(html, expected + [done.number]) == expected
    assert "30%" in html and "90%" in html and "无建议" in html
    assert 'class="conf-low">30%' in html
    assert "东关街道办事处" in html  # the suggested unit by name


def test_queue_pages(client, db, user, monkeypatch):
    monkeypatch.setattr(desk, "QUEUE_PAGE_SIZE", 2)
    operator = user("operator")
    tickets = [make_ticket(db, operator, suggestion=suggestion(0.1 * i)) for i in range(1, 4)]
    tickets.insert(0, make_ticket(db, operator))
    numbers = [t.number for t in tickets]
    web_login(client, "dispatcher")
    first = client.get("/dispatch").get_data(as_text=True)
    second = client.get("/dispatch?page=2").get_data(as_text=True)
    assert numbers_in(first, numbers) == numbers[:2]
    assert numbers_in(second, numbers) == numbers[2:]
    assert "第 2 / 2 页" in second


def test_dispatch_through_the_form(client, db, user):
    ticket = make_ticket(db, user("operator"), suggestion=suggestion(0.4))
    web_login(client, "dispatcher")
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    # The form is pre-filled with the suggestion's unit and category.
    assert f'<option value="{DONGGUAN}" selected>' in page
    assert f'<option value="{STREETLIGHT}" selected>' in page
    token = form_token(client, f"/tickets/{ticket.number}")
    response = client.post(
        f"/tickets/{ticket.number}/dispatch",
        data={
            "csrf_token": token,
            "version": ticket.version,
            "lead_unit": DONGGUAN,
            "assist_units": [CGJ],
            "category": STREETLIGHT,
            "note": "请尽快处理",
            "back": "/dispatch",
        },
    )
    assert response.status_code == 302 and response.headers["Location"] == "/dispatch"
    db.expire_all()
    assert ticket.status == TicketStatus.dispatched
    roles = {(a.unit.code, a.role) for a in ticket.assignments if a.active}
    assert (DONGGUAN, AssignmentRole.lead) in roles and (CGJ, AssignmentRole.assist) in roles
    assert ticket.category.code == STREETLIGHT
    event = db.scalars(
        sa.select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
    ).all()[-1]
    assert event.action == "dispatch" and event.reason == "请尽快处理"
    assert "已完成" in client.get("/dispatch").get_data(as_text=True)  # the flash notice


def test_stale_dispatch_form_is_a_conflict_and_changes_nothing(client, db, user):
    ticket = make_ticket(db, user("operator"))
    stale_version = ticket.version
    web_login(client, "dispatcher")
    token = form_token(client, f"/tickets/{ticket.number}")
    form = {
        "csrf_token": token,
        "version": stale_version,
        "lead_unit": DONGGUAN,
        "category": STREETLIGHT,
        "note": "第一次派单",
    }
    assert client.post(f"/tickets/{ticket.number}/dispatch", data=form).status_code == 302
    form["lead_unit"], form["note"] = CGJ, "重复提交的旧表单"
    response = client.post(f"/tickets/{ticket.number}/dispatch", data=form)
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "工单已被他人更新，请刷新后重试" in html
    db.expire_all()
    assert ticket.lead_unit.code == DONGGUAN
    assert len([a for a in ticket.assignments if a.role == AssignmentRole.lead]) == 1
    dispatches = db.scalar(
        sa.select(sa.func.count())
        .select_from(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.action == "dispatch")
    )
    assert dispatches == 1


def test_dispatch_form_refusal_keeps_what_was_typed(client, db, user):
    ticket = make_ticket(db, user("operator"))
    web_login(client, "dispatcher")
    token = form_token(client, f"/tickets/{ticket.number}")
    response = client.post(
        f"/tickets/{ticket.number}/dispatch",
        data={
            "csrf_token": token,
            "version": ticket.version,
            "lead_unit": DONGGUAN,
            "category": "",
            "note": "说明<保留>",
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "派单前请先确定事项分类" in html
    assert "说明&lt;保留&gt;</textarea>" in html
    db.expire_all()
    assert ticket.status == TicketStatus.received


def return_requested(db, user):
    ticket = dispatched(db, user)
    handler = user("dongguan")
    ops.sign(db, handler, ticket)
    ops.request_return(
        db, handler, ticket, return_reason=ReturnReason.not_our_duty, note="路灯归城管局"
    )
    db.flush()
    return ticket


def test_return_requests_listed_and_upheld(client, db, user):
    ticket = return_requested(db, user)
    web_login(client, "dispatcher")
    html = client.get("/dispatch").get_data(as_text=True)
    section = html[html.index('id="returns"') :]
    assert ticket.number in section and "非本单位职责" in section and "路灯归城管局" in section
    token = form_token(client, "/dispatch")
    response = client.post(
        f"/tickets/{ticket.number}/return-decision",
        data={
            "csrf_token": token,
            "version": ticket.version,
            "approve": "true",
            "lead_unit": CGJ,
            "note": "同意，改派城管局",
            "back": "/dispatch",
        },
    )
    assert response.status_code == 302
    db.expire_all()
    assert ticket.status == TicketStatus.dispatched and ticket.lead_unit.code == CGJ
    old = db.scalars(
        sa.select(Assignment).where(
            Assignment.ticket_id == ticket.id, Assignment.unit_id == unit(db, DONGGUAN).id
        )
    ).one()
    assert old.return_status == DecisionStatus.approved and not old.active


def test_return_request_rejected(client, db, user):
    ticket = return_requested(db, user)
    web_login(client, "dispatcher")
    token = form_token(client, "/dispatch")
    response = client.post(
        f"/tickets/{ticket.number}/return-decision",
        data={
            "csrf_token": token,
            "version": ticket.version,
            "approve": "false",
            "note": "属于街道职责",
        },
    )
    assert response.status_code == 302
    db.expire_all()
    assert ticket.status == TicketStatus.signed and ticket.lead_unit.code == DONGGUAN
    assert ticket.lead_assignment.return_status == DecisionStatus.rejected


def test_uphold_without_new_lead_is_refused(client, db, user):
    ticket = return_requested(db, user)
    web_login(client, "dispatcher")
    token = form_token(client, "/dispatch")
    response = client.post(
        f"/tickets/{ticket.number}/return-decision",
        data={"csrf_token": token, "version": ticket.version, "approve": "true", "note": "同意"},
    )
    assert response.status_code == 422
    assert "新的主办单位" in response.get_data(as_text=True)
    db.expire_all()
    assert ticket.status == TicketStatus.return_requested


def test_extension_requests_decided_from_the_queue(client, db, user):
    ticket = dispatched(db, user)
    handler = user("dongguan")
    ops.sign(db, handler, ticket)
    ops.request_extension(db, handler, ticket, days=3, reason="需协调施工队")
    db.flush()
    old_due = ticket.finish_due
    web_login(client, "dispatcher")
    html = client.get("/dispatch").get_data(as_text=True)
    assert "需协调施工队" in html[html.index('id="extensions"') :]
    token = form_token(client, "/dispatch")
    response = client.post(
        f"/tickets/{ticket.number}/extension-decision",
        data={"csrf_token": token, "version": ticket.version, "approve": "true", "note": "同意"},
    )
    assert response.status_code == 302
    db.expire_all()
    extension = db.scalars(sa.select(Extension).where(Extension.ticket_id == ticket.id)).one()
    assert extension.status == DecisionStatus.approved
    assert ticket.finish_due > old_due


# -- unit handler inbox -------------------------------------------------------------------------


def test_inbox_only_for_unit_handlers(client, db):
    web_login(client, "dispatcher")
    assert client.get("/inbox").status_code == 403


def test_inbox_lists_only_my_units_tickets_grouped(client, db, user):
    mine = dispatched(db, user, title="东关的路灯")
    signed = dispatched(db, user, title="东关已签收")
    ops.sign(db, user("dongguan"), signed)
    other = dispatched(db, user, lead=CGJ, title="城管局的工单")
    db.flush()
    web_login(client, "dongguan")
    html = client.get("/inbox").get_data(as_text=True)
    assert mine.number in html and signed.number in html
    assert other.number not in html and "城管局的工单" not in html
    to_sign = html[html.index('id="to_sign"') : html.index('id="doing"')]
    doing = html[html.index('id="doing"') : html.index('id="review"')]
    assert mine.number in to_sign and signed.number not in to_sign
    assert signed.number in doing
    assert "主办" in to_sign


def test_inbox_colours_deadlines_with_words(client, db, user):
    now = utcnow()
    late = dispatched(db, user, now=now - dt.timedelta(hours=5), title="超时工单")
    close = dispatched(db, user, now=now - dt.timedelta(minutes=105), title="临近工单")
    fresh = dispatched(db, user, now=now, title="新工单")
    web_login(client, "dongguan")
    html = client.get("/inbox").get_data(as_text=True)

    def sign_cell(ticket):
        row = html[html.index(ticket.number) :]
        return re.search(r'<span class="dl dl-(\w+)" title="签收时限">([^<]*)</span>', row)

    assert sign_cell(late).group(1) == "overdue" and "已超时 3 小时" in sign_cell(late).group(2)
    assert sign_cell(close).group(1) == "warn" and "即将到期" in sign_cell(close).group(2)
    assert sign_cell(fresh).group(1) == "ok" and "剩余 1 小时" in sign_cell(fresh).group(2)
    # Local time (Asia/Shanghai, UTC+8) is shown, not UTC.
    local_due = (fresh.sign_due + dt.timedelta(hours=8)).strftime("%Y-%m-%d %H:%M")
    assert local_due in sign_cell(fresh).group(2)


def test_inbox_escapes_ticket_text(client, db, user):
    ticket = dispatched(db, user, title="<script>alert(1)</script>")
    web_login(client, "dongguan")
    html = client.get("/inbox").get_data(as_text=True)
    assert ticket.number in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_assisting_unit_sees_its_own_signature(client, db, user):
    ticket = make_ticket(db, user("operator"))
    ops.dispatch(
        db,
        user("dispatcher"),
        ticket,
        lead=unit(db, DONGGUAN),
        assists=[unit(db, CGJ)],
        category=category(db, STREETLIGHT),
    )
    ops.sign(db, user("dongguan"), ticket)
    db.flush()
    web_login(client, "cgj")
    html = client.get("/inbox").get_data(as_text=True)
    to_sign = html[html.index('id="to_sign"') : html.index('id="doing"')]
    assert ticket.number in to_sign and "协办" in to_sign
    assert db.get(Ticket, ticket.id).status == TicketStatus.signed
