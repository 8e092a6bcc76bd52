"""个人信息保护 in Chromium at 1920×1080: the administrator sets the retention period, runs a
dry run and reads its report among the runs; a supervisor answering a citizen's request looks
up the citizen's number with a reason and sees every ticket of it with its personal data."""

import datetime as dt
import uuid

import requests
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import sessionmaker

from hotline.db import make_engine
from hotline.enums import TicketStatus
from hotline.models import Ticket
from tests.helpers import PASSWORD

FULL_HD = {"width": 1920, "height": 1080}


def _old_closed_ticket(base, browser_database, phone):
    """A ticket received through the API, then closed three years ago (as if archived then)."""
    http = requests.Session()
    login = http.post(
        f"{base}/api/v1/auth/login", json={"username": "operator", "password": PASSWORD}, timeout=10
    )
    assert login.status_code == 200, login.text
    http.headers["X-CSRF-Token"] = login.json()["data"]["csrf_token"]
    received = http.post(
        f"{base}/api/v1/tickets",
        json={
            "channel": "phone",
            "request_type": "complaint",
            "content": f"赵六一来电，家门口路灯不亮，回电 {phone}",
            "requester_name": "赵六一",
            "requester_phone": phone,
            "address": "奎文区东关街道胜利东街100号",
            "area": "370705001001001",
            "category": "010103",
        },
        timeout=10,
    )
    assert received.status_code == 201, received.text
    number = received.json()["data"]["number"]
    engine = make_engine(browser_database)
    with sessionmaker(bind=engine)() as session:
        long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=3 * 365)
        session.execute(
            sa.update(Ticket)
            .where(Ticket.number == number)
            .values(status=TicketStatus.closed, closed_at=long_ago, finished_at=long_ago)
        )
        session.commit()
    engine.dispose()
    return number


def test_admin_dry_run_and_supervisor_lookup(new_page, browser_database, live_server, screenshot):
    phone = "139" + str(uuid.uuid4().int)[:8]
    number = _old_closed_ticket(live_server, browser_database, phone)

    page = new_page("admin")
    page.set_viewport_size(FULL_HD)
    page.goto("/admin/")
    page.locator(".admin-nav").get_by_role("link", name="个人信息保护").click()
    expect(page.get_by_role("heading", name="个人信息保护", exact=True)).to_be_visible()
    expect(page.locator("input[name=months]")).to_have_value("24")
    page.get_by_role("button", name="试运行").click()
    page.wait_for_load_state()
    expect(page.locator("div.notice[role=status]").first).to_contain_text("试运行完成")
    newest = page.locator("table.retention-runs tbody tr").first
    expect(newest).to_have_attribute("data-dry-run", "true")
    expect(newest).to_contain_text("试运行")
    expect(newest.locator("[data-kind=requester_phone]")).to_be_visible()
    screenshot(page, "admin-retention")

    page = new_page("supervisor")
    page.set_viewport_size(FULL_HD)
    page.goto("/admin/personal-data")
    page.fill("input[name=phone]", phone)
    page.get_by_role("button", name="查询").click()
    page.wait_for_load_state()
    # The reason is required (the browser keeps the form until it is given).
    expect(page.locator("table.personal-data")).to_have_count(0)
    page.fill("input[name=reason]", "市民来电申请查阅本人信息")
    page.get_by_role("button", name="查询").click()
    page.wait_for_load_state()
    tickets = page.locator("table[data-sheet=tickets]")
    expect(tickets).to_contain_text(number)
    expect(tickets).to_contain_text("赵六一")
    expect(tickets).to_contain_text(phone)
    with page.expect_download() as download:
        page.locator("#personal-data-export").click()
    assert download.value.suggested_filename.endswith(".xlsx")
    screenshot(page, "admin-personal-data")
