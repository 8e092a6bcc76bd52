"""The monthly ranking in a browser (issue 13 §12): with no ticket last month it opens on this
month, live, and says so; the month picker speaks Chinese; the page says its counts are by
responsible unit, not by location as on the boards."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

pytestmark = pytest.mark.browser


def test_the_ranking_opens_on_this_month_when_last_month_is_empty(new_page, screenshot):
    # The browser database holds only tickets received today (if any).
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    last = today.replace(day=1) - dt.timedelta(days=1)
    page = new_page("leader")
    page.goto("/reports/ranking")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    label = f"{today.year}年{today.month}月"
    assert page.locator("h1").inner_text() == f"{label} 12345 热线考核排名"
    opened = page.locator("[data-testid=opened]").inner_text()
    assert f"上月（{last.year}年{last.month}月）没有工单" in opened
    assert f"默认显示本月（{label}）截至目前的实时排名" in opened
    picker = page.locator("[data-testid=month-picker]")
    assert picker.input_value() == f"{today.year}-{today.month:02d}"
    options = picker.locator("option").all_inner_texts()
    assert options[0] == f"{label}（本月）" and options[1] == f"{last.year}年{last.month}月"
    assert all("年" in o and "月" in o for o in options)
    assert "按承办单位统计" in page.locator("[data-testid=basis]").inner_text()
    screenshot(page, "ranking-this-month")

    # Choosing last month in the picker opens it, with no default note.
    picker.select_option(f"{last.year}-{last.month:02d}")
    page.click("form.month-picker button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == f"{last.year}年{last.month}月 12345 热线考核排名"
    assert page.locator("[data-testid=opened]").count() == 0
