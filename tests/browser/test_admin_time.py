"""办理时限 and 工作日历 in Chromium at 1920×1080, as an administrator: the admin home's
calendar warning leads to the calendar; a policy is created and edited with the category
picker (pinyin initials, then the keyboard) and switched off again; a day is marked as a
holiday by clicking it in the month grid, then its entry removed. The browser database is
shared by the session's browser tests, so each change is undone at the end."""

import re

from playwright.sync_api import expect

SCREEN = {"width": 1920, "height": 1080}


def notice(page):
    return page.locator("div.notice[role=status]")


def test_admin_edits_a_policy_with_the_picker(new_page, screenshot):
    page = new_page("admin")
    page.set_viewport_size(SCREEN)
    page.goto("/admin/time-limits")
    expect(page.locator("table.time-policies")).to_contain_text(
        "2 小时签收 · 24 小时联系 · 5 个工作日办结 · 1 个工作日回访"
    )
    screenshot(page, "admin-timecal-policies")

    page.get_by_role("link", name="新增时限规则").click()
    page.fill("input[name=name]", "路灯故障加急")
    search = page.locator("#category-search")
    search.click()
    search.press_sequentially("ldgz")
    page.keyboard.press("Enter")
    assert page.locator("#category").input_value() == "010103"
    page.select_option("select[name=urgency]", label="加急")
    for clock, amount, unit in [
        ("sign", "30", "分钟"),
        ("contact", "2", "小时"),
        ("finish", "3", "工作日"),
        ("callback", "1", "工作日"),
    ]:
        page.fill(f"input[name={clock}_amount]", amount)
        page.select_option(f"select[name={clock}_unit]", label=unit)
    page.get_by_role("button", name="保存").click()
    expect(notice(page)).to_contain_text("已新增时限规则“路灯故障加急”")
    row = page.locator("tr", has_text="路灯故障加急")
    expect(row).to_contain_text("路灯故障")
    expect(row).to_contain_text("30 分钟签收 · 2 小时联系 · 3 个工作日办结 · 1 个工作日回访")

    # Edit: another category through the picker, a longer finish limit.
    row.get_by_role("link", name="编辑").click()
    expect(page.locator("#category-search")).to_have_value(re.compile("路灯故障$"))
    search = page.locator("#category-search")
    search.click()
    search.fill("")
    search.press_sequentially("井盖")
    page.keyboard.press("Enter")
    assert page.locator("#category").input_value() == "010102"
    page.fill("input[name=finish_amount]", "5")
    screenshot(page, "admin-timecal-policy-edit")
    page.get_by_role("button", name="保存").click()
    expect(notice(page)).to_contain_text("已保存时限规则“路灯故障加急”")
    row = page.locator("tr", has_text="路灯故障加急")
    expect(row).to_contain_text("井盖缺失破损")
    expect(row).to_contain_text("5 个工作日办结")

    # A refused change keeps what was typed and says why.
    row.get_by_role("link", name="编辑").click()
    page.fill("input[name=name]", "一般诉求")
    page.get_by_role("button", name="保存").click()
    expect(page.locator("div.error[role=alert]")).to_contain_text("已有同名时限规则“一般诉求”")
    expect(page.locator("input[name=name]")).to_have_value("一般诉求")

    # Switched off again: the rule no longer applies.
    page.goto("/admin/time-limits")
    page.locator("tr", has_text="路灯故障加急").get_by_role("button", name="停用").click()
    expect(notice(page)).to_contain_text("已停用时限规则“路灯故障加急”")
    expect(page.locator("tr.inactive", has_text="路灯故障加急")).to_contain_text("已停用")
    screenshot(page, "admin-timecal-policies-after")


def test_admin_marks_a_holiday_on_the_calendar(new_page, screenshot):
    page = new_page("admin")
    page.set_viewport_size(SCREEN)
    page.goto("/admin/calendar?year=2027")
    expect(page.locator(".calendar-summary")).to_contain_text("2027 年节假日安排尚未录入")
    day = page.locator('td[data-day="2027-02-08"]')
    expect(day).to_have_class("day-workday")
    day.get_by_role("link").click()
    expect(page.locator("input[name=day]")).to_have_value("2027-02-08")
    page.get_by_label("放假（节假日或休息日）").check()
    page.fill("input[name=name]", "春节")
    page.get_by_role("button", name="保存", exact=True).click()
    expect(notice(page)).to_contain_text("已将 2027-02-08 设为放假（节假日）：春节")
    day = page.locator('td[data-day="2027-02-08"]')
    expect(day).to_have_class("day-holiday entered")
    expect(day).to_have_attribute("title", re.compile("春节"))
    expect(page.locator("table.calendar-entries")).to_contain_text("春节")
    screenshot(page, "admin-timecal-calendar-2027")

    page.goto("/admin/calendar?year=2026")
    expect(page.locator('td[data-day="2026-10-01"]')).to_have_class("day-holiday")
    expect(page.locator('td[data-day="2026-09-20"]')).to_have_class("day-adjusted")
    screenshot(page, "admin-timecal-calendar-2026")

    # Remove the entry: the day follows the ordinary week again.
    page.goto("/admin/calendar?year=2027")
    entry = page.locator('table.calendar-entries tr[data-day="2027-02-08"]')
    entry.get_by_role("button", name="删除").click()
    expect(notice(page)).to_contain_text("已删除 2027-02-08 的录入")
    expect(page.locator('td[data-day="2027-02-08"]')).to_have_class("day-workday")
