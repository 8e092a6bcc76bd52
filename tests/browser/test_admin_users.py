"""用户管理 in Chromium: the administrator creates a unit handler choosing the unit by name in
the picker, adds a grid to a grid worker with the grid picker, resets the handler's password;
the handler logs in with the temporary password and is made to change it first."""

import re

from playwright.sync_api import expect

from tests.browser.conftest import log_in

DESKTOP = {"width": 1920, "height": 1080}


def notice(page):
    return page.locator("div.notice[role=status]")


def test_admin_creates_a_handler_resets_the_password_and_the_user_must_change_it(
    new_page, screenshot
):
    admin = new_page("admin")
    admin.set_viewport_size(DESKTOP)
    admin.goto("/admin/users/")
    expect(admin.locator("h1")).to_have_text("用户管理")
    expect(admin.locator("table.users-table")).to_contain_text("孙立伟")
    screenshot(admin, "admin-users-list")

    admin.click("text=新建用户")
    admin.fill("input[name=username]", "zhao.liu")
    admin.fill("input[name=name]", "赵六")
    admin.select_option("#user-role", "unit_handler")
    # Grids are for grid workers only: hidden for a handler.
    expect(admin.locator("fieldset.grid-picker")).to_be_hidden()
    unit = admin.locator("#user-unit-search")
    unit.click()
    unit.press_sequentially("wfscsgl")  # 潍坊市城市管理局 by pinyin initials
    expect(admin.locator("#user-unit-list [role=option]").first).to_contain_text("潍坊市城市管理局")
    expect(admin.locator("#user-unit-list .active .picker-code")).to_have_text("U-CGJ")
    admin.keyboard.press("Enter")
    assert admin.locator("#user-unit").input_value() == "U-CGJ"
    admin.fill("input[name=phone]", "13905361234")
    screenshot(admin, "admin-users-form")
    admin.click("button:has-text('创建用户')")
    expect(notice(admin)).to_contain_text("临时密码只显示这一次")
    first = admin.locator("[data-testid=temporary-password]").inner_text()
    assert len(first) >= 8

    # Reset the password, confirming in the panel (no script dialog).
    admin.goto("/admin/users/zhao.liu")
    expect(admin.locator("#user-unit-search")).to_have_value(re.compile("潍坊市城市管理局"))
    admin.click("summary:has-text('重置密码')")
    admin.fill("details.confirm[open] input[name=password]", "Temp-2026x")
    screenshot(admin, "admin-users-reset-confirm")
    admin.click("button:has-text('确认重置密码')")
    expect(notice(admin)).to_contain_text("已重置密码")
    expect(admin.locator("[data-testid=temporary-password]")).to_have_text("Temp-2026x")
    screenshot(admin, "admin-users-temporary-password")

    # The handler logs in and can do nothing before choosing their own password.
    handler = new_page()
    handler.set_viewport_size(DESKTOP)
    log_in(handler, "zhao.liu", "Temp-2026x")
    expect(handler).to_have_url(re.compile(r"/account/password"))
    expect(handler.locator("p.notice")).to_contain_text("管理员已重置您的密码")
    expect(handler.locator("#password-rules")).to_contain_text("密码至少 8 位")
    handler.goto("/inbox")
    expect(handler).to_have_url(re.compile(r"/account/password\?next=/inbox"))
    handler.fill("#old_password", "Temp-2026x")
    handler.fill("#password", "zhao.liu")
    handler.fill("#password_again", "zhao.liu")
    handler.click("button:has-text('保存新密码')")
    expect(handler.locator("p.error[role=alert]")).to_contain_text("须同时包含字母和数字")
    screenshot(handler, "admin-users-must-change")
    handler.fill("#old_password", "Temp-2026x")
    handler.fill("#password", "Zhao-2026y")
    handler.fill("#password_again", "Zhao-2026y")
    handler.click("button:has-text('保存新密码')")
    expect(notice(handler)).to_contain_text("密码已修改")
    expect(handler).to_have_url(re.compile(r"/inbox$"))
    expect(handler.locator("header .who-password")).to_have_text("修改密码")

    # The list shows the login and the open session.
    admin.goto("/admin/users/?q=zhao")
    row = admin.locator("table.users-table tbody tr").first
    expect(row).to_contain_text("潍坊市城市管理局")
    expect(row.locator("td").nth(8)).to_have_text("1")


def test_the_grid_picker_adds_a_grid_by_name(new_page, screenshot):
    admin = new_page("admin")
    admin.set_viewport_size(DESKTOP)
    admin.goto("/admin/users/grid")
    chips = admin.locator("#grid-chips input[name=grids]")
    expect(chips).to_have_count(2)
    search = admin.locator("#grid-add-search")
    search.click()
    search.press_sequentially("工福街")
    expect(admin.locator("#grid-add-list .active .picker-name")).to_have_text("工福街社区第1网格")
    admin.keyboard.press("Enter")
    expect(chips).to_have_count(3)
    expect(admin.locator("#grid-chips")).to_contain_text("工福街社区第1网格")
    # Unticking a chip drops the grid.
    admin.locator("#grid-chips input[value='370705001001002']").uncheck()
    screenshot(admin, "admin-users-grid-picker")
    admin.click("button:has-text('保存')")
    expect(notice(admin)).to_contain_text("已保存 杨磊")
    codes = [box.get_attribute("value") for box in chips.all()]
    assert sorted(codes) == ["370705001001001", "370705001004001"]
