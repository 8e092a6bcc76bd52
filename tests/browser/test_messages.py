"""The message centre in a real browser: the bell on a handler's page, its panel, marking
read, and a new 上报 notification (written by the server process for another user's action)
appearing without a reload over Socket.IO. Screenshots: the login page, a handler's page
with the centre open (1440 px), and the header at 390 px on the grid worker's page and a
handler's page."""

import datetime as dt

import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import sessionmaker

from hotline.db import make_engine
from hotline.models import Notification, Ticket, Unit
from hotline.notify import Message, deliver
from tests.helpers import PASSWORD

DONGGUAN = "U-S-370705001"
GRID = "370705001001001"
#: A call located in the grid worker's grid.
CALL = {
    "channel": "phone",
    "request_type": "help",
    "content": "中学街社区第1网格内人行道护栏倒伏，行人通行不便，请尽快处理",
    "area": GRID,
    "category": "010102",
}


def put_items(database_url, titles, level="yellow", number=None):
    """Items in 东关街道's inbox about ticket ``number``, written as the scheduler writes
    them (another process)."""
    engine = make_engine(database_url)
    with sessionmaker(bind=engine)() as session:
        unit = session.scalars(sa.select(Unit).where(Unit.code == DONGGUAN)).one()
        ticket = session.scalars(sa.select(Ticket).where(Ticket.number == number)).first()
        now = dt.datetime.now(dt.UTC)
        deliver(
            session,
            [
                Message(
                    unit_id=unit.id,
                    unit_code=DONGGUAN,
                    kind="finish_warning",
                    level=level,
                    title=title,
                    body="办结时限已用去 80%，请尽快办结。",
                    ticket_id=ticket.id if ticket else None,
                    ticket_number=ticket.number if ticket else None,
                )
                for title in titles
            ],
            now,
        )
        session.commit()
    engine.dispose()


def unread_in(database_url):
    engine = make_engine(database_url)
    with engine.connect() as conn:
        count = conn.scalar(
            sa.select(sa.func.count())
            .select_from(Notification)
            .join(Unit, Unit.id == Notification.unit_id)
            .where(Unit.code == DONGGUAN, Notification.read_at.is_(None))
        )
    engine.dispose()
    return count


def shown_count(page):
    return int(page.locator("#message-centre").get_attribute("data-unread"))


class Api:
    """A user of the JSON API in a browser context of their own (session cookie + CSRF)."""

    def __init__(self, browser, base, username):
        self.context = browser.new_context(base_url=base)
        answer = self.context.request.post(
            "/api/v1/auth/login", data={"username": username, "password": PASSWORD}
        )
        assert answer.ok, answer.text()
        self.csrf = answer.json()["data"]["csrf_token"]

    def post(self, path, body):
        answer = self.context.request.post(
            "/api/v1" + path, data=body, headers={"X-CSRF-Token": self.csrf}
        )
        assert answer.ok, answer.text()
        return answer.json()["data"]


def test_login_page(new_page, screenshot):
    page = new_page()
    page.goto("/login")
    card = page.locator(".login-card")
    assert "12345 热线工单系统" in card.inner_text()
    box = card.bounding_box()
    # A centred card, not a bare form in the corner.
    assert abs((box["x"] + box["width"] / 2) - 720) < 2
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    screenshot(page, "login")


def test_handler_opens_the_message_centre_and_marks_read(
    new_page, browser, live_server, browser_database, screenshot
):
    operator = Api(browser, live_server, "operator")
    number = operator.post("/tickets", CALL)["number"]
    operator.context.close()
    put_items(browser_database, ["【办结预警】路灯维修工单即将到期"], "yellow", number)
    put_items(browser_database, ["【办结超时】井盖缺失工单已超时"], "red", number)
    before = unread_in(browser_database)
    page = new_page("dongguan")
    assert page.url.endswith("/inbox")
    assert page.locator(".mc-count").inner_text() == str(before)

    page.locator(".mc-bell").click()
    panel = page.locator("#mc-panel")
    panel.locator(".mc-item").first.wait_for()
    assert panel.is_visible()
    assert "东关街道" in panel.locator(".mc-unit").inner_text()
    first = panel.locator(".mc-item").first
    assert "【办结超时】井盖缺失工单已超时" in first.inner_text()
    assert "level-red" in first.get_attribute("class")
    assert first.locator(".mc-level").inner_text() == "红色超时"
    link = first.locator("a.mc-ticket")
    assert link.inner_text() == number
    assert link.get_attribute("href") == f"/tickets/{number}"
    screenshot(page, "message-centre-open")

    first.locator(".mc-mark").click()
    centre = page.locator("#message-centre")
    expect(centre).to_have_attribute("data-unread", str(before - 1))
    assert unread_in(browser_database) == before - 1
    page.locator(".mc-read-all").click()
    expect(centre).to_have_attribute("data-unread", "0")
    assert page.locator(".mc-count").is_hidden()
    assert unread_in(browser_database) == 0

    # The full list, paged, from the panel's link.
    page.locator(".mc-more").click()
    page.wait_for_load_state()
    assert page.url.endswith("/messages")
    assert "井盖缺失工单已超时" in page.locator("table.messages").inner_text()
    screenshot(page, "messages-page")


def test_a_new_notification_appears_without_reload(new_page, browser, live_server):
    handler = new_page("dongguan")
    # (Waits use locators: wait_for_function polls by eval, which the pages' CSP forbids.)
    expect(handler.locator("#message-centre")).to_have_attribute("data-live", "1", timeout=10_000)
    handler.locator(".mc-bell").click()
    before = shown_count(handler)
    handler.evaluate("window.__notReloaded = true")

    # Another user's action writes the notification in the server process: a call in the
    # grid, dispatched to 东关, accepted by the grid worker and handed back (上报).
    operator = Api(browser, live_server, "operator")
    ticket = operator.post("/tickets", CALL)
    dispatcher = Api(browser, live_server, "dispatcher")
    ticket = dispatcher.post(
        f"/tickets/{ticket['number']}/dispatch",
        {"lead_unit": DONGGUAN, "category": "010102", "version": ticket["version"]},
    )
    grid = Api(browser, live_server, "grid")
    ticket = grid.post(f"/tickets/{ticket['number']}/accept", {"version": ticket["version"]})
    grid.post(
        f"/tickets/{ticket['number']}/escalate",
        {"reason": "护栏需市政专业队伍更换", "version": ticket["version"]},
    )

    expect(handler.locator("#message-centre")).to_have_attribute(
        "data-unread", str(before + 1), timeout=10_000
    )
    newest = handler.locator("#mc-panel .mc-item").first
    newest.wait_for()
    assert f"网格员上报工单 {ticket['number']}" in newest.inner_text()
    assert handler.evaluate("window.__notReloaded") is True
    for api in (operator, dispatcher, grid):
        api.context.close()


def test_the_header_fits_a_phone(new_page, screenshot):
    for username, path, name in (
        ("grid", "/grid", "header-390-grid"),
        ("dongguan", "/inbox", "header-390-handler"),
    ):
        page = new_page(username, phone=True)
        page.goto(path)
        header = page.locator("header.top")
        # Nothing wider than the screen, nothing on top of anything else in the header.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        boxes = page.evaluate(
            """() => Array.from(document.querySelectorAll(
                   'header.top .brand, header.top nav.menu a, header.top .mc-bell,'
                   + ' header.top .who, header.top form button'))
                 .map(e => { const r = e.getBoundingClientRect();
                             return [e.textContent.trim(), r.left, r.top, r.right, r.bottom]; })"""
        )
        for i, (a, *ra) in enumerate(boxes):
            assert ra[2] <= 390, f"{a} runs off the screen"
            for b, *rb in boxes[i + 1 :]:
                overlap = (
                    ra[0] < rb[2] - 1
                    and rb[0] < ra[2] - 1
                    and ra[1] < rb[3] - 1
                    and rb[1] < ra[3] - 1
                )
                assert not overlap, f"{a!r} overlaps {b!r}"
        assert header.locator(".mc-bell").is_visible()
        assert "退出" in header.inner_text()
        page.locator(".mc-bell").click()
        panel = page.locator("#mc-panel")
        panel.wait_for()
        box = panel.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390
        screenshot(page, name + "-open")
        page.keyboard.press("Escape")
        screenshot(page, name)
