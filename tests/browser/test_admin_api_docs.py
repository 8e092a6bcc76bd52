"""The 接口文档 page in Chromium: an administrator opens it from the administration's menu,
finds the new ticket's fields with their Chinese labels, types, required marks and limits,
and follows the link to the machine-readable description with the same login."""

import json

from tests.browser.conftest import SCREENSHOTS


def test_the_administrator_reads_the_api_description(new_page):
    page = new_page("admin")
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto("/admin/")
    page.click("nav.admin-nav >> text=接口文档")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text().startswith("接口文档")

    create = page.locator("details#post_tickets\\.create_ticket")
    create.locator("summary").click()
    table = create.locator("table.api-fields", has_text="请求体")
    assert table.is_visible()
    channel = table.locator("tr", has_text="受理渠道")
    cells = channel.locator("td").all_inner_texts()
    assert cells[0] == "channel" and cells[2] == "文本" and cells[3] == "是"
    assert "phone（电话）" in cells[4]
    title = table.locator("tr", has_text="标题").locator("td").all_inner_texts()
    assert title[3] == "否" and "最多 100 字" in title[4]
    assert "422" in create.locator(".api-statuses").inner_text()

    create.scroll_into_view_if_needed()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "admin-api-docs.png"))

    response = page.goto("/api/v1/openapi.json")
    assert response.status == 200
    description = json.loads(response.text())
    assert description["openapi"] == "3.1.0"
    assert "/api/v1/tickets" in description["paths"]
