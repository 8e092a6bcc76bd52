"""分类模型设置 in Chromium at 1920×1080, as an administrator: a tolerance above its maximum
is kept back by the browser, a change is saved and shows in the history; the defaults are put
back at the end (the browser database is shared by the session's browser tests, and the model
page's test relies on the default drift settings)."""

from playwright.sync_api import expect

SCREEN = {"width": 1920, "height": 1080}


def test_admin_changes_the_retraining_settings(new_page, screenshot):
    page = new_page("admin")
    page.set_viewport_size(SCREEN)
    page.goto("/admin/")
    page.locator(".admin-nav").get_by_role("link", name="分类模型设置").click()
    days = page.locator('input[name="classifier.retrain_days"]')
    tolerance = page.locator('input[name="classifier.tolerance"]')
    expect(days).to_have_value("7")

    # Above the maximum the browser itself keeps the form (the server's refusal of the same
    # value is tested in tests/dashboards/pages/test_admin_classifier.py).
    tolerance.fill("0.9")
    page.get_by_role("button", name="保存设置").click()
    assert tolerance.evaluate("e => e.validity.rangeOverflow")
    expect(page.locator("div.notice[role=status]")).to_have_count(0)

    days.fill("14")
    tolerance.fill("0.03")
    page.get_by_role("button", name="保存设置").click()
    expect(page.locator("div.notice[role=status]")).to_contain_text("分类模型设置已保存")
    history = page.locator("table.settings-history")
    expect(history).to_contain_text("重新训练间隔（天）：7 → 14")
    expect(history).to_contain_text("允许下降幅度：0.02 → 0.03")
    screenshot(page, "admin-classifier-settings")

    days.fill("7")
    tolerance.fill("0.02")
    page.get_by_role("button", name="保存设置").click()
    expect(page.locator("div.notice[role=status]")).to_contain_text("分类模型设置已保存")
    expect(days).to_have_value("7")
