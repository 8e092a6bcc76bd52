"""考核设置 in Chromium at 1920×1080, as an administrator: all-zero weights are refused with
the reason, a change is saved and shows in the history (old → new); the defaults are put back
at the end (the browser database is shared by the session's browser tests)."""

from playwright.sync_api import expect

SCREEN = {"width": 1920, "height": 1080}
DEFAULTS = {"weight_response": "10", "weight_resolution": "45", "weight_satisfaction": "45"}


def test_admin_changes_the_scoring_settings(new_page, screenshot):
    page = new_page("admin")
    page.set_viewport_size(SCREEN)
    page.goto("/admin/")
    page.locator(".admin-nav").get_by_role("link", name="考核设置").click()
    expect(page.get_by_label("响应率权重")).to_have_value("10")

    for name in DEFAULTS:
        page.fill(f"input[name={name}]", "0")
    page.get_by_role("button", name="保存设置").click()
    expect(page.locator("div.error[role=alert]")).to_contain_text("不能全部为 0")
    expect(page.locator("input[name=weight_response]")).to_have_value("0")

    page.fill("input[name=weight_response]", "20")
    page.fill("input[name=weight_resolution]", "40")
    page.fill("input[name=weight_satisfaction]", "40")
    page.get_by_role("button", name="保存设置").click()
    expect(page.locator("div.notice[role=status]")).to_contain_text("考核设置已保存")
    history = page.locator("table.settings-history")
    expect(history).to_contain_text("响应率权重：10 → 20")
    expect(history).to_contain_text("满意率权重：45 → 40")
    screenshot(page, "admin-timecal-scoring")

    for name, value in DEFAULTS.items():
        page.fill(f"input[name={name}]", value)
    page.get_by_role("button", name="保存设置").click()
    expect(page.locator("div.notice[role=status]")).to_contain_text("考核设置已保存")
    expect(page.locator("input[name=weight_response]")).to_have_value("10")
