"""承办单位 in the administration, at 1920×1080: the administrator creates a unit with the
areas it serves (ticked by name) and its duty phones, the dispatcher gives it tickets, and the
administrator deactivates it, handing its open tickets to another unit in the same step."""

import uuid

import pytest
import requests

from tests.helpers import PASSWORD

pytestmark = pytest.mark.browser
FULL_HD = {"width": 1920, "height": 1080}


def api_session(base, username):
    http = requests.Session()
    login = http.post(
        f"{base}/api/v1/auth/login", json={"username": username, "password": PASSWORD}, timeout=10
    )
    assert login.status_code == 200, login.text
    http.headers["X-CSRF-Token"] = login.json()["data"]["csrf_token"]
    return http


def dispatch_tickets(base, unit_code, count):
    operator, dispatcher = api_session(base, "operator"), api_session(base, "dispatcher")
    numbers = []
    for i in range(count):
        received = operator.post(
            f"{base}/api/v1/tickets",
            json={
                "channel": "phone",
                "request_type": "complaint",
                "content": f"小区燃气管道有异味第 {i + 1} 次反映，请燃气公司上门检查",
                "area": "370705001001001",
                "category": "010103",
            },
            timeout=10,
        )
        assert received.status_code == 201, received.text
        number = received.json()["data"]["number"]
        sent = dispatcher.post(
            f"{base}/api/v1/tickets/{number}/dispatch", json={"lead_unit": unit_code}, timeout=10
        )
        assert sent.status_code == 200, sent.text
        numbers.append(number)
    return numbers


def test_admin_creates_a_unit_and_deactivates_it_moving_its_tickets(
    new_page, live_server, screenshot
):
    code = f"U-GAS-{uuid.uuid4().hex[:6].upper()}"
    page = new_page("admin")
    page.set_viewport_size(FULL_HD)
    page.goto("/admin/units/")
    assert page.locator("table.units-table tr[data-code='U-CGJ']").is_visible()
    screenshot(page, "admin-units-list")

    page.click("text=新增承办单位")
    page.wait_for_load_state()
    form = page.locator("form.unit-form")
    form.locator("input[name=code]").fill(code)
    form.locator("input[name=name]").fill("潍坊市城东燃气有限公司")
    form.locator("select[name=kind]").select_option(label="公共服务企业")
    form.locator("input[name=always_on]").check()
    # Areas are ticked by name; the filter narrows a long list.
    form.locator(".area-filter").fill("东关")
    street = form.locator("input[name=areas][value='370705001']")
    assert street.is_visible()
    assert not form.locator("input[name=areas][value='370702']").is_visible()
    street.check()
    form.locator(".area-filter").fill("")
    form.locator("input[name=areas][value='370705']").check()
    assert "已选 2" in form.locator(".area-group:has(input[value='370705'])").inner_text()
    form.locator("textarea[name=phones]").fill("13805361111\n0536-8234567")
    screenshot(page, "admin-units-new")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert (
        "已新增承办单位“潍坊市城东燃气有限公司”"
        in page.locator("div.notice[role=status]").first.inner_text()
    )
    row = page.locator(f"tr[data-code='{code}']")
    assert "13805361111" in row.inner_text() and "05368234567" in row.inner_text()
    assert "东关街道" in row.inner_text() and "奎文区" in row.inner_text()

    numbers = dispatch_tickets(live_server, code, 2)
    page.goto("/admin/units/?q=" + code)
    assert page.locator(f"tr[data-code='{code}'] td.num").inner_text() == "2"

    page.click(f"tr[data-code='{code}'] >> text=停用")
    page.wait_for_load_state()
    assert page.locator("[data-testid=open-total]").inner_text() == "2"
    for number in numbers:
        assert number in page.locator("table").inner_text()
    # The receiving unit is found by name in the searchable picker.
    picker = page.locator("input[role=combobox]").first
    picker.click()
    picker.fill("港华")
    page.locator("[role=option]:has-text('潍坊港华燃气有限公司')").first.click()
    assert page.locator("select[name=move_to]").input_value() == "U-GAS"
    page.fill("textarea[name=reason]", "燃气经营区域调整，工单交由新单位办理")
    screenshot(page, "admin-units-deactivate")
    page.click("button[type=submit].primary")
    page.wait_for_load_state()
    notice = page.locator("div.notice[role=status]").first.inner_text()
    assert "已停用“潍坊市城东燃气有限公司”" in notice and "2 件在办工单已改派" in notice
    page.goto("/admin/units/?status=inactive&q=" + code)
    assert "停用" in page.locator(f"tr[data-code='{code}']").inner_text()
    screenshot(page, "admin-units-after-deactivate")

    # The ticket's history tells what happened.
    page.goto(f"/tickets/{numbers[0]}")
    body = page.locator("body").inner_text()
    assert "停用改派" in body and "燃气经营区域调整" in body
    screenshot(page, "admin-units-ticket-history")
