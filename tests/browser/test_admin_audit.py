"""The audit page (审计日志) in Chromium for an administrator: a supervisor's look at a
requester's full number and the administrator's own login are there, found with the pickers
by name, and the list downloads as XLSX."""

import io
import re

import openpyxl


def test_the_administrator_finds_a_personal_data_view_and_exports(new_page, screenshot):
    console = new_page("operator")
    console.fill("#content", "审计页面浏览器测试：小区门口垃圾桶满溢多日无人清运，气味很大")
    console.fill("#requester_phone", "13905361234")
    console.fill("#area-street-search", "东关街道")
    console.keyboard.press("Enter")
    console.select_option("#request_type", "complaint")
    console.click("#submit-receive")
    console.wait_for_load_state()
    number = re.search(
        r"WF\d+", console.locator("div.notice[role=status]").first.inner_text()
    ).group(0)
    supervisor = new_page("supervisor")
    supervisor.goto(f"/tickets/{number}")
    assert "13905361234" in supervisor.locator("main").inner_text()

    page = new_page("admin")
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto("/admin/")
    page.click("nav.admin-nav >> text=审计日志")
    page.fill("#audit-action-search", "个人信息")
    page.keyboard.press("Enter")
    assert page.locator("#audit-action").input_value() in ("pii.", "pii.view")
    page.click("form.audit-filter button[type=submit]")
    page.wait_for_load_state()
    row = page.locator("table.audit-table tbody tr", has_text=number).first
    assert "查看个人信息" in row.inner_text()
    assert "督办审核员" in row.inner_text() or "supervisor" in row.inner_text()
    screenshot(page, "admin-audit")

    with page.expect_download() as download:
        page.click("text=导出 XLSX")
    sheet = openpyxl.load_workbook(io.BytesIO(open(download.value.path(), "rb").read())).active
    assert sheet["A1"].value == "时间"
    assert any(
        number in (row[6] or "") or number in (row[8] or "")
        for row in sheet.iter_rows(min_row=2, values_only=True)
    )
