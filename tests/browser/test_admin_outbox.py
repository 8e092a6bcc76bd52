"""通知发送 and 通知模板 in Chromium at 1920×1080: the administrator sees the failed copies
(masked recipient, tries, last error) among the sent ones, sends one again (the server's
delivery thread sends it at once), then edits a citizen template: an unknown placeholder is
refused by name, a good text is saved and its preview changes."""

import datetime as dt
import uuid

import requests
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import sessionmaker

from hotline import outbox
from hotline.db import make_engine
from hotline.outbox_delivery import deliver_due
from tests.helpers import PASSWORD

FULL_HD = {"width": 1920, "height": 1080}


def received_ticket(base):
    """A ticket received through the API (the unit copies are about it)."""
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
            "content": "小区门口路灯连续一周不亮，晚上出行不便，希望尽快维修",
            "area": "370705001001001",
            "category": "010103",
        },
        timeout=10,
    )
    assert received.status_code == 201, received.text
    return received.json()["data"]["number"]


class _Down:
    def send(self, copy):
        raise ConnectionError("HTTPConnectionPool(host='sms-gw', port=80): 连接被拒绝")


class _Fine:
    def send(self, copy):
        pass


def _copies(browser_database, tag, number):
    """Copies in the server's outbox: a failed code text and unit text, a sent robot post."""
    engine = make_engine(browser_database)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    now = dt.datetime.now(dt.UTC)
    with factory() as session:
        ticket = session.execute(
            sa.text("SELECT id FROM tickets WHERE number = :number"), {"number": number}
        ).scalar_one()
        outbox.tell_citizen(
            session,
            kind="citizen_code",
            phone="13912345678",
            fields={"code": "482913", "minutes": 5},
            delivery_key=f"code:{tag}",
            now=now,
        )
        outbox.enqueue(
            session,
            [
                {
                    "delivery_key": f"unit:{tag}:{channel}",
                    "channel": channel,
                    "audience": "unit",
                    "recipient": recipient,
                    "kind": "sign_overdue",
                    "ticket_id": ticket,
                    "title": "【签收超时】请尽快签收",
                    "body": "工单已超过签收时限。",
                }
                for channel, recipient in (("sms", "13805361111,05368234567"), ("wecom", "U-CGJ"))
            ],
            now=now,
        )
        session.commit()
    deliver_due(factory, {"sms": _Down(), "wecom": _Fine()}, now=now, max_attempts=1)
    engine.dispose()


def test_admin_sees_failed_notifications_and_sends_one_again(
    new_page, browser_database, live_server, screenshot
):
    number = received_ticket(live_server)
    _copies(browser_database, uuid.uuid4().hex[:8], number)
    page = new_page("admin")
    page.set_viewport_size(FULL_HD)
    page.goto("/admin/")
    page.locator(".admin-nav").get_by_role("link", name="通知发送").click()
    expect(page.get_by_role("heading", name="通知发送")).to_be_visible()
    page.locator("select[name=state]").select_option(label="发送失败")
    page.get_by_role("button", name="查询").click()
    failed = page.locator("table.outbox-table tbody tr[data-state=failed]")
    expect(failed.first).to_be_visible()
    text = page.locator("table.outbox-table").inner_text()
    assert "139****5678" in text and "138****1111" in text
    assert "13912345678" not in text and "482913" not in text
    assert "连接被拒绝" in text and "短信验证码" in text and "签收超时" in text
    assert number in text
    screenshot(page, "admin-outbox")

    # A code's text is gone once given up: the citizen asks for another, it is not resent.
    code_row = failed.filter(has_text="短信验证码").first
    expect(code_row.get_by_role("button", name="重新发送")).to_have_count(0)
    unit_row = failed.filter(has_text="签收超时").first
    copy_id = unit_row.get_attribute("data-id")
    unit_row.get_by_role("button", name="重新发送").click()
    page.wait_for_load_state()
    expect(page.locator("div.notice[role=status]").first).to_contain_text("已重新排入发送队列")
    # The server's delivery thread sends it (its demo sender logs it) right after the commit.
    page.goto("/admin/outbox/?state=sent&channel=sms")
    expect(page.locator(f"tr[data-id='{copy_id}']")).to_contain_text("已发送", timeout=15000)


def test_admin_edits_a_template_with_its_preview(new_page, screenshot):
    page = new_page("admin")
    page.set_viewport_size(FULL_HD)
    page.goto("/admin/")
    page.locator(".admin-nav").get_by_role("link", name="通知模板").click()
    expect(page.get_by_role("heading", name="通知模板")).to_be_visible()
    received = page.locator("fieldset[data-kind=citizen_received]")
    expect(received.locator(".template-preview")).to_contain_text("12345-20261205-0001")

    received.locator("textarea").fill("【12345】已受理，工单号{number}，请于{deadline}前留意短信。")
    page.get_by_role("button", name="保存模板").click()
    page.wait_for_load_state()
    received = page.locator("fieldset[data-kind=citizen_received]")
    expect(received.locator(".field-error")).to_contain_text("不存在的占位符 {deadline}")

    received.locator("textarea").fill("【12345】已受理，工单号{number}，{reply_by}前答复您。")
    page.get_by_role("button", name="保存模板").click()
    page.wait_for_load_state()
    expect(page.locator("div.notice[role=status]").first).to_contain_text("通知模板已保存")
    expect(page.locator("fieldset[data-kind=citizen_received] .template-preview")).to_contain_text(
        "【12345】已受理，工单号12345-20261205-0001，2026-12-08 17:00前答复您。"
    )
    screenshot(page, "admin-templates")
