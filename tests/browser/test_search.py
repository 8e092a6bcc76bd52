"""The search page (工单查询) in Chromium at a desk's size: a ticket received at the console
is found by words and a date range ending today (the end day included), by names in the plain
selects (no script needed), opens from its number, and downloads as XLSX for a supervisor."""

import datetime as dt
import io
import re
from zoneinfo import ZoneInfo

import openpyxl

WORDS = "浏览器查询测试"
CONTENT = f"{WORDS}：鸢飞路与北海路路口井盖缺失，夜间行人容易踩空，请尽快处理"


def test_search_by_words_and_dates_then_open_and_export(new_page, screenshot):
    console = new_page("operator")
    console.fill("#content", CONTENT)
    console.fill("#area-street-search", "东关街道")  # the area picker, by name
    console.keyboard.press("Enter")
    assert console.locator("#area-street").input_value() == "370705001"
    console.select_option("#request_type", "help")
    console.click("#submit-receive")
    console.wait_for_load_state()
    number = re.search(
        r"WF\d+", console.locator("div.notice[role=status]").first.inner_text()
    ).group(0)

    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    page = new_page("supervisor")
    page.goto("/search")
    assert page.locator("header nav.menu a[aria-current=page]").inner_text() == "工单查询"
    page.fill("input[name=q]", f"{WORDS} 井盖")
    page.fill("input[name=received_from]", (today - dt.timedelta(days=7)).isoformat())
    page.fill("input[name=received_to]", today.isoformat())  # today itself is included
    page.select_option("select[name=area]", label="奎文区")
    page.select_option("select[name=status]", label="已受理")
    page.click("form.search button[type=submit]")
    page.wait_for_load_state()

    assert "共 1 件" in page.locator("#result h2").inner_text()
    row = page.locator("#tickets tbody tr").first
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == number and cells[5] == "东关街道" and cells[7] == "已受理"
    assert "受理日期" in page.locator("#result h2").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1440
    screenshot(page, "search-words-dates")

    with page.expect_download() as download:
        page.click("text=导出 Excel（1 件）")
    sheet = openpyxl.load_workbook(io.BytesIO(open(download.value.path(), "rb").read())).active
    assert sheet.cell(3, 1).value == "工单编号" and sheet.cell(4, 1).value == number
    assert sheet.max_row == 4

    # Yesterday as the end excludes today's ticket.
    page.fill("input[name=received_to]", (today - dt.timedelta(days=1)).isoformat())
    page.click("form.search button[type=submit]")
    page.wait_for_load_state()
    assert "共 0 件" in page.locator("#result h2").inner_text()

    page.go_back()
    page.wait_for_load_state()
    page.click(f"#tickets a:text-is('{number}')")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == f"工单 {number}"
