"""我的诉求 in a real browser at 390×844: a handler finishes a ticket filed with the citizen's
phone; the citizen logs in with the texted code (read from the outbox, as the test's own
sender), sees the reply, rates it online — the ticket closes and the ranking counts the
rating — then asks again within the window, and the ticket waits in the supervisor's review.
Screenshots: citizen-mine, citizen-ticket, citizen-rate, citizen-reopen."""

import datetime as dt
import random
import re

import sqlalchemy as sa
from playwright.sync_api import expect

from dashboards import ranking
from dispatch import operations as ops
from hotline.enums import Channel, RequestType, TicketStatus, Urgency
from hotline.models import Area, Category, Ticket, Unit, User
from server.app import create_app
from tests.browser.sms import code_sent_to

DONGGUAN = "U-S-370705001"


def _app(database_url, models_dir):
    """An application on the browser database with the server's key (its rating links)."""
    return create_app(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "browser-tests",
            "CLASSIFIER_MODELS_DIR": models_dir,
            "CLASSIFIER_PRELOAD": False,
            "CLASSIFIER_ENABLED": False,
            "LIMITS_ENABLED": False,
        }
    )


def _one(session, model, **where):
    return session.scalars(sa.select(model).filter_by(**where)).one()


def _finished_ticket(app, phone):
    """A web request filed with ``phone``, handled and finished by 东关街道 (operations)."""
    with app.app_context():
        session = app.extensions["hotline.db"]()
        user = {
            name: _one(session, User, username=name)
            for name in ("operator", "dispatcher", "dongguan")
        }
        ticket, _ = ops.receive(
            session,
            user["operator"],
            channel=Channel.web,
            request_type=RequestType.complaint,
            urgency=Urgency.normal,
            title="小区门口路灯不亮",
            content="小区门口路灯连续一周不亮，晚上出行不便。",
            requester_name="李女士",
            requester_phone=phone,
            address="奎文区东关街道胜利东街100号",
            category=_one(session, Category, code="010103"),
            area=_one(session, Area, code="370705001"),
            suggestion=None,
        )
        ops.dispatch(session, user["dispatcher"], ticket, lead=_one(session, Unit, code=DONGGUAN))
        ops.sign(session, user["dongguan"], ticket)
        ops.contact(session, user["dongguan"], ticket, note="已电话联系")
        ops.finish(
            session,
            user["dongguan"],
            ticket,
            result="经现场核查，路灯线路老化，已更换线路和灯具，恢复照明。",
        )
        session.commit()
        number, unit_id = ticket.number, ticket.lead_unit_id
        session.close()
    return number, unit_id


def _rated(app, unit_id):
    with app.app_context():
        session = app.extensions["hotline.db"]()
        now = dt.datetime.now(dt.UTC)
        counts = ranking.count_tickets(
            session, now - dt.timedelta(days=1), now + dt.timedelta(days=1), now, "unit", [unit_id]
        )
        session.close()
    return counts.get(unit_id, {}).get("rated", 0), counts.get(unit_id, {}).get("satisfied", 0)


def _status(app, number):
    with app.app_context():
        session = app.extensions["hotline.db"]()
        status = session.scalars(sa.select(Ticket.status).where(Ticket.number == number)).one()
        session.close()
    return status


def test_a_citizen_follows_rates_and_reopens_at_phone_width(
    new_page, browser_database, models_dir, screenshot
):
    app = _app(browser_database, models_dir)
    phone = f"1370536{random.randrange(10000):04d}"
    number, unit_id = _finished_ticket(app, phone)
    rated_before, satisfied_before = _rated(app, unit_id)

    page = new_page(phone=True)
    page.goto("/citizen/mine")
    page.fill("#phone", phone)
    page.click("#send-code")
    expect(page.locator(".c-notice")).to_contain_text(f"{phone[:3]}****{phone[-4:]}")
    page.fill("#code", code_sent_to(phone))
    page.click("#login")
    expect(page.get_by_role("link", name=number)).to_be_visible()
    expect(page.locator("main")).to_contain_text("已办结，待评价")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "citizen-mine")

    page.get_by_role("link", name=number).click()
    expect(page.locator("#reply")).to_contain_text("已更换线路和灯具")
    expect(page.locator("#timeline")).to_contain_text("已派至东关街道办事处")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "citizen-ticket")

    page.locator("#rate-form label", has_text=re.compile("^解决$")).click()
    page.locator("#rate-form label", has_text=re.compile("^满意$")).click()
    page.fill("#comment", "修得很快，谢谢！")
    page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar stays on top of the shot
    screenshot(page, "citizen-rate")
    page.click("#rate")
    expect(page.locator(".c-notice")).to_contain_text("感谢您的评价")
    expect(page.locator("#rating")).to_contain_text("网上评价结果")
    assert _status(app, number) == TicketStatus.closed
    assert _rated(app, unit_id) == (rated_before + 1, satisfied_before + 1)

    page.fill("#reason", "才过了三天，路灯晚上又不亮了。")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "citizen-reopen")
    page.click("#reopen")
    expect(page.locator(".c-notice")).to_contain_text("已收到您的再次反映")
    expect(page.locator("#status")).to_have_text("复核中")
    assert _status(app, number) == TicketStatus.called_back

    supervisor = new_page("supervisor")
    supervisor.goto("/supervision")
    expect(supervisor.locator("#reviews")).to_contain_text(number)
    app.extensions["hotline.db"].kw["bind"].dispose()
