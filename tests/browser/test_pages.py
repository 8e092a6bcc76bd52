"""Every role's pages in a real browser (Debian's Chromium through Playwright), against a real
server process: logging in, the operator's ticket reaching a live board in another browser,
scope (403), and a script typed by a citizen staying text on every page it reaches.
Screenshots of each main page are saved (see conftest)."""

import re
import time

import pytest
import sqlalchemy as sa

#: username → (landing path, screenshot name, phone-sized viewport)
ROLES = {
    "operator": ("/console", "console", False),
    "dispatcher": ("/dispatch", "dispatch-queue", False),
    "dongguan": ("/inbox", "inbox", False),
    "grid": ("/grid", "grid-phone", True),
    "callback": ("/callbacks", "callbacks", False),
    "supervisor": ("/supervision", "supervision", False),
    "leader": ("/boards", "board-city", False),
    "kuiwen-leader": ("/boards/district/370705", "board-district", False),
    "admin": ("/admin/", "admin-home", False),
    "inspector": ("/inspection", "inspection-queue", False),
}

PAYLOAD = '<script>alert("xss")</script><img src=x onerror=alert(1)>'
#: What of it shows where only the title (its first 30 characters) is shown.
SCRIPT = '<script>alert("xss")</script>'
CONTENT = f"{PAYLOAD}东关街道胜利东街100号门口路灯连续一周不亮，晚上出行不便，希望尽快维修"


@pytest.mark.parametrize("username", ROLES)
def test_each_role_logs_in_to_its_page(new_page, username, screenshot):
    path, name, phone = ROLES[username]
    page = new_page(username, phone=phone)
    assert page.url.endswith(path), page.url
    assert page.locator("header.top").inner_text().count("退出") == 1
    if phone:
        # The grid page fits a phone: nothing wider than the screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, name)


def test_wrong_password_shows_a_chinese_refusal(new_page, screenshot):
    page = new_page()
    page.goto("/login")
    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    assert "用户名或密码错误" in page.locator("[role=alert]").inner_text()
    screenshot(page, "login-refused")


def test_a_new_ticket_reaches_the_board_and_stays_text_everywhere(new_page, log_in, screenshot):
    sockets = []
    board = new_page()
    board.on("websocket", lambda ws: sockets.append(ws.url))
    log_in(board, "leader")
    board.wait_for_selector("[data-testid=status][data-state=online]", timeout=10_000)
    # Live over a WebSocket to this host, which the page's connect-src 'self' allows.
    assert any(url.startswith("ws://127.0.0.1:") and "/socket.io/" in url for url in sockets)
    # The chart's tooltip (drawn on hover) breaks no Content-Security-Policy either.
    board.hover("[data-testid=trend] canvas", position={"x": 200, "y": 100})
    board.wait_for_timeout(500)
    screenshot(board, "board-city-tooltip")
    feed = board.locator("[data-testid=feed]")

    console = new_page("operator")
    console.fill("#requester_phone", "13805369999")
    console.fill("#address", "奎文区东关街道胜利东街100号")
    console.fill("#content", CONTENT)
    # Live suggestions arrive while typing (top categories, place, unit).
    console.wait_for_selector("#suggestion-panel li", timeout=10_000)
    screenshot(console, "console-suggestions")
    console.click("#submit-receive")
    console.wait_for_load_state()
    notice = console.locator("div.notice[role=status]").first.inner_text()
    number = re.search(r"WF\d+", notice).group(0)
    created = time.monotonic()

    item = feed.locator(f"[data-ticket='{number}']")
    item.wait_for(timeout=2_000)
    latency = time.monotonic() - created
    assert latency < 2, latency
    assert SCRIPT in item.inner_text()
    screenshot(board, "board-city-live")

    # The console's list of today's calls shows the payload as text.
    assert SCRIPT in console.locator("body").inner_text()
    screenshot(console, "console-after-receive")

    # The dispatcher sends it to 东关街道.
    dispatcher = new_page("dispatcher")
    dispatcher.goto("/dispatch")
    assert number in dispatcher.locator("body").inner_text()
    dispatcher.goto(f"/tickets/{number}")
    form = dispatcher.locator("form[action$='/dispatch']")
    form.locator("select[name=lead_unit]").select_option("U-S-370705001")
    if form.locator("[name=category]").input_value() == "":
        form.locator("[name=category]").select_option("010103")  # 路灯故障
    form.locator("button[type=submit]").click()
    dispatcher.wait_for_load_state()
    assert f"工单 {number}：“派单”已完成" in dispatcher.locator("body").inner_text()
    screenshot(dispatcher, "dispatch-after")

    # 东关街道's handler finds it in the inbox, as text, and signs it.
    handler = new_page("dongguan")
    handler.goto("/inbox")
    row = handler.locator(f"tr:has-text('{number}')")
    assert SCRIPT in handler.locator("body").inner_text()
    screenshot(handler, "inbox-with-ticket")
    row.locator("a").first.click()
    handler.wait_for_load_state()
    handler.locator("form[action$='/sign'] button[type=submit]").click()
    handler.wait_for_load_state()
    assert "已签收" in handler.locator("body").inner_text()
    assert PAYLOAD in handler.locator("body").inner_text()
    screenshot(handler, "ticket-signed")

    # Another unit's handler may not open it.
    other = new_page("cgj")
    response = other.goto(f"/tickets/{number}")
    assert response.status == 403
    assert "您无权访问此页面或工单" in other.locator("body").inner_text()
    screenshot(other, "ticket-forbidden")


def test_a_district_board_shows_only_its_district(new_page):
    page = new_page("kuiwen-leader")
    assert page.url.endswith("/boards/district/370705")
    response = page.goto("/boards/district/370702")
    assert response.status == 403
    response = page.goto("/boards")
    assert page.url.endswith("/boards/district/370705")


def test_reports_open_for_the_mayors_office(new_page, screenshot):
    page = new_page("leader")
    page.goto("/reports/ranking")
    assert "热线考核排名" in page.locator("h1").first.inner_text()
    screenshot(page, "report-ranking")
    page.goto("/reports/rates")
    assert "三率" in page.locator("body").inner_text()
    screenshot(page, "report-rates")
    # A month that is over offers to freeze its ranking.
    page.goto("/reports/ranking")
    page.click("form.month-picker >> text=上一月")
    assert page.locator("form.inline[action*=freeze] button").is_visible()


def test_the_callback_filter_applies_when_ticked(new_page):
    page = new_page("callback")
    page.check("input[name=due]")
    page.wait_for_url("**/callbacks?due=1")
    assert page.locator("input[name=due]").is_checked()


def test_an_emergency_call_offers_the_emergency_lines(new_page, screenshot):
    page = new_page("operator")
    page.fill("#content", "楼道里着火了，现在火很大，赶紧来人")
    # Without waiting for the live panels: the server renders the same warning.
    page.click("button[value=lookup]")
    page.wait_for_load_state()
    warning = page.locator("#emergency-slot .emergency")
    assert "紧急情况预警" in warning.inner_text()
    assert warning.locator(".transfers button[value='transfer:119']").count() == 1
    screenshot(page, "console-emergency")


def test_no_page_can_be_framed(browser, live_server):
    """Another site framing a page (clickjacking) gets nothing: frame-ancestors 'none'."""
    context = browser.new_context()
    page = context.new_page()

    def refused(message):
        return "frame-ancestors 'none'" in message.text

    with page.expect_console_message(refused, timeout=10_000):
        page.set_content(f'<iframe src="{live_server}/login" width="600" height="400"></iframe>')
    frame = page.frames[1]
    assert not frame.url.startswith(live_server)
    assert frame.locator("input[name=password]").count() == 0
    context.close()


def test_a_grid_worker_takes_a_ticket_on_site_from_a_phone(
    new_page, browser_database, png, screenshot
):
    from hotline.db import make_engine

    grid_code = "370705001001001"
    engine = make_engine(browser_database)
    with engine.connect() as conn:
        lng, lat = conn.execute(
            sa.text("SELECT center_lng, center_lat FROM areas WHERE code = :code"),
            {"code": grid_code},
        ).one()
    engine.dispose()

    # A call located in the worker's grid (no phone: nobody to contact), dispatched to 东关.
    console = new_page("operator")
    console.fill("#content", "中学街社区第1网格内人行道井盖缺失，夜间行人容易踩空，请尽快处理")
    console.fill("#area-grid-search", "中学街社区第1网格")
    console.keyboard.press("Enter")
    assert console.locator("#area-grid").input_value() == grid_code
    console.select_option("#request_type", "help")
    console.click("#submit-receive")
    console.wait_for_load_state()
    number = re.search(
        r"WF\d+", console.locator("div.notice[role=status]").first.inner_text()
    ).group(0)
    dispatcher = new_page("dispatcher")
    dispatcher.goto(f"/tickets/{number}")
    form = dispatcher.locator("form[action$='/dispatch']")
    form.locator("select[name=lead_unit]").select_option("U-S-370705001")
    form.locator("select[name=category]").select_option("010102")  # 井盖缺失破损
    form.locator("button[type=submit]").click()
    dispatcher.wait_for_load_state()

    phone = new_page("grid", phone=True)
    phone.goto("/grid")
    phone.locator(f"a:has-text('{number}')").first.click()
    phone.wait_for_load_state()
    phone.locator("form[action$='/accept'] button[type=submit]").click()
    phone.wait_for_load_state()
    assert "接单" in phone.locator("div.notice[role=status]").first.inner_text()

    check_in = phone.locator("form[action$='/check-in']")
    check_in.locator("input[name=photos]").set_input_files(
        {"name": "site.png", "mimeType": "image/png", "buffer": png()}
    )
    check_in.locator("input[name=lng]").fill(str(lng))
    check_in.locator("input[name=lat]").fill(str(lat))
    check_in.locator("textarea[name=note]").fill("已到现场，井盖确实缺失，已设置警示")
    screenshot(phone, "grid-check-in-form")
    check_in.locator("button[type=submit]").click()
    phone.wait_for_load_state()
    body = phone.locator("body").inner_text()
    assert "距网格 0 米" in body
    assert phone.locator("img[src*='/attachments/']").count() == 1

    finish = phone.locator("form[action$='/finish']")
    finish.locator("textarea[name=result]").fill("已协调市政补装井盖，现场恢复通行")
    finish.locator("button[type=submit]").click()
    phone.wait_for_load_state()
    assert "已办结" in phone.locator("body").inner_text()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone, "grid-ticket-finished")
