"""Urgency confirmed by people, in a real browser: the console's emergency warning (keep,
dismiss, transfer; 受理 waits for an answer), the dispatcher's reclassify form on a ticket
page, and a reopened ticket's page showing both rounds. Screenshots at 1440 wide."""

import datetime as dt
import json
import re

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

FIRE = "楼道里着火了，现在火很大，赶紧来人"


def _session(browser_database):
    from hotline.db import make_engine

    engine = make_engine(browser_database)
    return engine, sessionmaker(bind=engine)()


def _receive_event(browser_database, number):
    engine, db = _session(browser_database)
    with db:
        payload = db.execute(
            sa.text(
                "SELECT e.payload FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id "
                "WHERE t.number = :n AND e.action = 'receive'"
            ),
            {"n": number},
        ).scalar_one()
    engine.dispose()
    return payload if isinstance(payload, dict) else json.loads(payload)


def _number(page):
    """The new ticket's number from the page's notice (waiting for it: after a keyboard submit
    the old page, with its own role=status note, may still be showing)."""
    notice = page.locator("div.notice[role=status]").first
    notice.wait_for(timeout=30_000)
    return re.search(r"WF\d+", notice.inner_text()).group(0)


def _type_the_call(page):
    page.fill("#requester_phone", "13805367777")
    page.fill("#address", "奎文区东关街道胜利东街100号")
    page.fill("#content", FIRE)
    page.select_option("#request_type", "help")
    # The first suggestion loads the classifier in the server: allow for a busy machine.
    page.wait_for_selector("#emergency-slot .emergency", timeout=60_000)


def test_emergency_warning_keep_and_dismiss(new_page, browser_database, screenshot):
    page = new_page("operator")
    _type_the_call(page)
    warning = page.locator("#emergency-slot .emergency")
    assert warning.get_attribute("role") == "alert"
    # The suggestion did not set the urgency: it is still the operator's 一般.
    assert page.input_value("#urgency") == "normal"
    # 受理 waits for an answer to the warning.
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#emergency-slot p.decided")
    assert "请先处理紧急预警" in warning.inner_text()
    assert page.url.endswith("/console")
    screenshot(page, "console-emergency-warning")

    # Alt+9 keeps it as 紧急 (the operator's choice now); Alt+0 dismisses it again.
    page.locator("#content").focus()
    page.keyboard.press("Alt+9")
    assert page.input_value("#urgency") == "emergency"
    assert page.input_value("#emergency_decision") == "kept"
    assert "已确认为紧急" in warning.inner_text()
    screenshot(page, "console-emergency-kept")
    page.keyboard.press("Alt+0")
    assert page.input_value("#urgency") == "normal"
    assert page.input_value("#emergency_decision") == "dismissed"
    assert "已忽略紧急情况预警" in page.locator("#emergency-slot").inner_text()
    screenshot(page, "console-emergency-dismissed")

    page.keyboard.press("Control+Enter")
    page.wait_for_load_state()
    number = _number(page)
    warning = _receive_event(browser_database, number)["urgency_warning"]
    assert warning["shown"] is True and warning["decision"] == "dismissed"
    assert warning["urgency"] == "normal"


def test_emergency_warning_dismissed_with_escape_and_kept(new_page, browser_database):
    page = new_page("operator")
    _type_the_call(page)
    page.keyboard.press("Escape")
    assert page.input_value("#emergency_decision") == "dismissed"
    page.click("#emergency-slot button:has-text('重新显示预警')")
    page.click("#emergency-slot button.keep")
    assert page.input_value("#urgency") == "emergency"
    page.click("#submit-receive")
    page.wait_for_load_state()
    number = _number(page)
    assert _receive_event(browser_database, number)["urgency_warning"]["decision"] == "kept"


def test_emergency_warning_transfer(new_page, browser_database, screenshot):
    page = new_page("operator")
    _type_the_call(page)
    page.click("#emergency-slot button[value='transfer:119']")
    page.wait_for_load_state()
    notice = page.locator("div.notice[role=status]").first.inner_text()
    assert "已受理并转119 火警" in notice
    number = _number(page)
    assert _receive_event(browser_database, number)["urgency_warning"]["decision"] == "transferred"
    screenshot(page, "console-emergency-transferred")


def _ticket(browser_database, *, reopen=False):
    """A 紧急 streetlight ticket dispatched to 东关街道 (+ 城管局 assisting); with ``reopen``
    handled, called back unhappy and reopened. Driven through the real operations."""
    from dispatch import operations as ops
    from hotline.enums import (
        CallbackOutcome,
        Channel,
        RequestType,
        Satisfaction,
        Solved,
        Urgency,
    )
    from hotline.models import Area, Category, Unit, User

    engine, db = _session(browser_database)
    with db:

        def one(model, **where):
            return db.scalars(sa.select(model).filter_by(**where)).one()

        def user(name):
            return one(User, username=name)

        start = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
        ticket, _ = ops.receive(
            db,
            user("operator"),
            channel=Channel.phone,
            request_type=RequestType.complaint,
            urgency=Urgency.emergency,
            content="胜利东街100号门口路灯不亮，有老人摔倒" if not reopen else "胜利东街路灯不亮",
            requester_name="钱先生",
            requester_phone="13805368888",
            address="奎文区东关街道胜利东街100号",
            category=one(Category, code="010103"),
            area=one(Area, code="370705001"),
            suggestion=None,
            now=start,
        )
        ops.dispatch(
            db,
            user("dispatcher"),
            ticket,
            lead=one(Unit, code="U-S-370705001"),
            assists=[one(Unit, code="U-CGJ")],
            now=start + dt.timedelta(minutes=5),
        )
        if reopen:
            handler = user("dongguan")
            ops.sign(db, handler, ticket, now=start + dt.timedelta(minutes=10))
            at = start + dt.timedelta(minutes=20)
            ops.contact(db, handler, ticket, note="已电话联系钱先生", now=at)
            at = start + dt.timedelta(hours=1)
            note = "城管局协办部分无需另行反馈"
            ops.finish(
                db, handler, ticket, result="已更换灯泡，路灯恢复", assists_note=note, now=at
            )
            ops.record_callback(
                db,
                user("callback"),
                ticket,
                outcome=CallbackOutcome.answered,
                solved=Solved.unsolved,
                satisfaction=Satisfaction.dissatisfied,
                comment="当晚又不亮了",
                now=start + dt.timedelta(hours=3),
            )
            at = start + dt.timedelta(hours=4)
            ops.reopen(db, user("supervisor"), ticket, reason="路灯再次熄灭", now=at)
        db.commit()
        number = ticket.number
    engine.dispose()
    return number


def test_dispatcher_lowers_urgency_on_the_ticket_page(new_page, browser_database, screenshot):
    number = _ticket(browser_database)
    page = new_page("dispatcher")
    page.goto(f"/tickets/{number}")
    form = page.locator("form#reclassify")
    assert form.locator("select[data-picker=category] optgroup").count() > 10
    assert form.locator("select[name=category]").input_value() == "010103"
    assert form.locator("select[name=urgency]").input_value() == "emergency"
    form.locator("select[name=urgency]").select_option("normal")
    form.locator("textarea[name=reason]").fill("核实为路灯故障，老人未受伤，按一般诉求办理")
    screenshot(page, "ticket-reclassify-form")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    body = page.locator("body").inner_text()
    assert "“调整分类和紧急程度”已完成" in body
    assert "紧急程度由“紧急”改为“一般”" in body
    assert "按“一般诉求”从原起算时间重新计算时限" in body
    assert "紧急程度\n一般" in page.locator("#summary").inner_text()
    screenshot(page, "ticket-reclassified")


def test_a_reopened_ticket_shows_both_rounds(new_page, browser_database, screenshot):
    number = _ticket(browser_database, reopen=True)
    page = new_page("supervisor")
    page.goto(f"/tickets/{number}")
    first = page.locator("#round-1").inner_text()
    second = page.locator("#round-2").inner_text()
    assert "已更换灯泡，路灯恢复" in first and "当晚又不亮了" in first
    assert "东关街道办事处" in first and "潍坊市城市管理局" in first
    assert "第 2 轮（当前）" in second and "重办理由：路灯再次熄灭" in second
    assert "尚未办结" in second and "待签收" in second
    table = page.locator("#assignments").inner_text()
    assert "承办中" not in table
    screenshot(page, "ticket-rounds")
