"""民情分析设置 in Chromium at 1920×1080, as an administrator: a value below the minimum is kept
back by the browser, a change (a decimal included) is saved and shows in the history; the
defaults are put back at the end (the browser database is shared by the session's browser
tests, and the warnings' test relies on the default thresholds)."""

from playwright.sync_api import expect

SCREEN = {"width": 1920, "height": 1080}


def test_admin_changes_the_analysis_thresholds(new_page, screenshot):
    page = new_page("admin")
    page.set_viewport_size(SCREEN)
    page.goto("/admin/")
    page.locator(".admin-nav").get_by_role("link", name="民情分析设置").click()
    sudden = page.locator('input[name="warning.sudden_count"]')
    ratio = page.locator('input[name="warning.surge_ratio"]')
    expect(sudden).to_have_value("5")

    # Below the minimum the browser itself keeps the form (the server's refusal of the same
    # value is tested in tests/dashboards/pages/test_admin_analysis.py).
    sudden.fill("1")
    page.get_by_role("button", name="保存设置").click()
    assert sudden.evaluate("e => e.validity.rangeUnderflow")
    expect(page.locator("div.notice[role=status]")).to_have_count(0)

    sudden.fill("7")
    ratio.fill("4.5")
    page.get_by_role("button", name="保存设置").click()
    expect(page.locator("div.notice[role=status]")).to_contain_text("民情分析设置已保存")
    history = page.locator("table.settings-history")
    expect(history).to_contain_text("突发事件工单数：5 → 7")
    expect(history).to_contain_text("激增倍数：3.0 → 4.5")
    screenshot(page, "admin-analysis-settings")

    sudden.fill("5")
    ratio.fill("3")
    page.get_by_role("button", name="保存设置").click()
    expect(page.locator("div.notice[role=status]")).to_contain_text("民情分析设置已保存")
    expect(sudden).to_have_value("5")
