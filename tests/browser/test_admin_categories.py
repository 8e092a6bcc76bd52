"""事项分类 in Chromium: an administrator adds a category, renames it, moves it under another
一级 class with the searchable parent picker (its code follows), and deactivates it; the tree
shows it struck through, and the console's picker no longer offers it."""

from playwright.sync_api import expect

NAME = "浏览器测试分类"


def notice(page):
    return page.locator("div.notice[role=status]")


def test_admin_adds_renames_moves_and_deactivates(new_page, screenshot):
    page = new_page("admin")
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto("/admin/categories/")
    expect(page.locator("h1")).to_have_text("事项分类")
    expect(page.locator(".cat-tree")).to_contain_text("城乡建设")
    screenshot(page, "admin-categories-tree")

    # Find 城乡建设 by its pinyin initials and open its page.
    search = page.locator("#find-code-search")
    search.click()
    search.press_sequentially("cxjs")
    page.keyboard.press("Enter")
    page.get_by_role("button", name="打开").click()
    expect(page.locator("h1")).to_contain_text("城乡建设")

    # Add a 二级 class under it.
    page.locator("#add-form input[name=name]").fill(NAME)
    page.locator("#add-form button[type=submit]").click()
    expect(notice(page)).to_contain_text(f"已新增二级分类“{NAME}”")
    expect(page.locator("h1")).to_contain_text(NAME)
    code = page.locator("h1 .cat-code").inner_text()
    assert code.startswith("01") and len(code) == 4

    # Rename it.
    page.locator("#rename-form input[name=name]").fill(NAME + "（改）")
    page.locator("#rename-form button[type=submit]").click()
    expect(notice(page)).to_contain_text(f"已改名为“{NAME}（改）”")

    # Move it under 环境保护, chosen by pinyin initials: its code is derived again.
    parent = page.locator("#move-parent-search")
    parent.click()
    parent.press_sequentially("hjbh")
    page.keyboard.press("Enter")
    assert page.locator("#move-parent").input_value() == "02"
    page.locator("#move-form input[name=confirm]").check()
    screenshot(page, "admin-categories-move")
    page.locator("#move-form button[type=submit]").click()
    expect(notice(page)).to_contain_text("已移动到“环境保护”之下")
    moved = page.locator("h1 .cat-code").inner_text()
    assert moved.startswith("02") and len(moved) == 4
    expect(notice(page)).to_contain_text(f"{code} → {moved}")

    # Deactivate it (confirmation required).
    page.locator("#active-form input[name=confirm]").check()
    page.locator("#active-form button[type=submit]").click()
    expect(notice(page)).to_contain_text(f"已停用“{NAME}（改）”")
    expect(page.locator(".chip.cat-inactive")).to_have_text("已停用")
    screenshot(page, "admin-categories-detail")

    # Back to the tree, opened at its branch: struck through under 环境保护.
    page.locator(".admin-main > p a", has_text="事项分类").click()
    expect(page.locator("h1")).to_have_text("事项分类")
    line = page.locator(".cat-line.inactive", has_text=NAME)
    expect(line).to_be_visible()
    expect(line.locator(".cat-code")).to_have_text(moved)
    line.scroll_into_view_if_needed()
    screenshot(page, "admin-categories-tree-after")
    page.get_by_role("button", name="全部展开").click()
    expect(page.locator(".cat-line", has_text="路灯故障")).to_be_visible()
    page.get_by_role("button", name="全部收起").click()
    expect(page.locator(".cat-line", has_text="路灯故障")).to_be_hidden()

    # The console's category picker no longer offers it.
    console = new_page("operator")
    console.goto("/console")
    assert console.locator(f'#category option[value="{moved}"]').count() == 0
