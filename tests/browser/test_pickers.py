"""The searchable pickers in Chromium: a category found by its pinyin initials and chosen with
the keyboard, the suggestion's top 3 one key away, the area cascade pre-filled from a sure
suggested place and narrowed level by level, and the grid worker's report form on a phone."""

import re

import sqlalchemy as sa
from playwright.sync_api import expect

from hotline.db import make_engine

CALL = "小区门口路灯坏了一个星期，晚上很黑，希望尽快修好。"
#: The first suggestion of a server process loads the model (slow on a busy machine).
SUGGESTION_WAIT = 30_000


def ticket_area(browser_database, number):
    engine = make_engine(browser_database)
    with engine.connect() as conn:
        code = conn.execute(
            sa.text(
                "SELECT areas.code FROM tickets LEFT JOIN areas ON areas.id = tickets.area_id"
                " WHERE tickets.number = :number"
            ),
            {"number": number},
        ).scalar_one()
    engine.dispose()
    return code


def listed(page, select_id):
    """The names the open picker of ``select_id`` lists, in order."""
    return page.locator(f"#{select_id}-list [role=option] .picker-name").all_inner_texts()


def test_category_by_pinyin_initials_and_the_keyboard(new_page, screenshot):
    page = new_page("operator")
    search = page.locator("#category-search")
    # The label points at the search box; the select itself is out of the tab order.
    assert page.get_by_label("事项分类").get_attribute("id") == "category-search"
    assert page.locator("#category").get_attribute("tabindex") == "-1"
    search.click()
    search.press_sequentially("ldgz")
    assert listed(page, "category")[0] == "路灯故障"
    path = page.locator("#category-list .active .picker-path").inner_text()
    assert path == "城乡建设 › 市政设施 › "
    screenshot(page, "console-category-picker")
    page.keyboard.press("Enter")
    assert page.locator("#category").input_value() == "010103"
    assert search.input_value() == "城乡建设 › 市政设施 › 路灯故障"
    assert page.locator("#category-list").is_hidden()
    assert page.url.endswith("/console")  # Enter chose; it did not submit the form

    # Part of a name, then ↓ to the second match; Esc cancels a search and keeps the choice.
    search.fill("")
    search.press_sequentially("噪声")
    names = listed(page, "category")
    assert len(names) >= 2 and all("噪声" in n for n in names[:2])
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    second = page.locator("#category").input_value()
    assert page.locator(f"#category option[value='{second}']").inner_text() == names[1]
    search.press_sequentially("gongjiao")  # full pinyin
    assert set(listed(page, "category")[:4]) == {"公交线路", "公交服务", "公交站点", "公交卡"}
    page.keyboard.press("Escape")
    assert page.locator("#category").input_value() == second
    assert page.locator("#category-list").is_hidden()


def test_the_suggestions_top_three_are_one_key_away(new_page):
    page = new_page("operator")
    page.fill("#content", CALL)
    buttons = page.locator("#category-top button")
    buttons.first.wait_for(timeout=SUGGESTION_WAIT)
    assert 1 <= buttons.count() <= 3
    first = buttons.first.inner_text()
    page.keyboard.press("Alt+1")
    code = page.locator("#category").input_value()
    assert code
    name = page.locator(f"#category option[value='{code}']").inner_text()
    assert name in first and name in page.locator("#category-search").input_value()
    assert "chosen" in buttons.first.get_attribute("class")
    if buttons.count() > 1:
        buttons.nth(1).click()
        assert page.locator("#category").input_value() != code


def test_area_cascade_prefilled_from_the_suggestion(new_page, browser_database, screenshot):
    page = new_page("operator")
    page.fill("#address", "奎文区东关街道胜利东街100号")
    page.fill("#content", CALL)
    expect(page.locator("#area-street")).to_have_value("370705001", timeout=SUGGESTION_WAIT)
    assert page.locator("#area-district").input_value() == "370705"
    assert page.locator("#area-district-search").input_value() == "奎文区"
    assert page.locator("#area-street-search").input_value() == "东关街道"
    assert page.locator("#area-community").input_value() == ""
    assert "已按智能建议预填区域" in page.locator("#area-note").inner_text()
    screenshot(page, "console-area-prefilled")
    # Only 东关街道's communities are offered below it; choose one by its initials.
    communities = page.locator("#area-community option:not([value=''])")
    values = communities.evaluate_all("options => options.map(o => o.value)")
    assert values and all(v.startswith("370705001") for v in values)
    search = page.locator("#area-community-search")
    search.click()
    assert len(listed(page, "area-community")) == len(values) + 1  # and 不指定
    first = communities.first.inner_text()
    initials = page.locator("#area-community option").nth(1).get_attribute("data-py")
    search.press_sequentially(initials)
    assert listed(page, "area-community")[0] == first
    page.keyboard.press("Enter")
    community = page.locator("#area-community").input_value()
    assert community == values[0]
    page.wait_for_timeout(400)  # the panels refresh; the operator's choice stays
    screenshot(page, "console-area-cascade")
    page.select_option("#request_type", "complaint")
    page.click("#submit-receive")
    page.wait_for_load_state()
    number = re.search(r"WF\d+", page.locator("div.notice[role=status]").first.inner_text()).group(
        0
    )
    assert ticket_area(browser_database, number) == community


def test_area_cascade_follows_the_operator(new_page, browser_database):
    page = new_page("operator")
    # A grid chosen directly fills the levels above it.
    grid = page.locator("#area-grid-search")
    grid.click()
    grid.press_sequentially("中学街社区第1网格")
    page.keyboard.press("Enter")
    assert [page.locator(f"#area-{level}").input_value() for level in ("district", "street")] == [
        "370705",
        "370705001",
    ]
    assert page.locator("#area-grid").input_value() == "370705001001001"
    # Another district clears what lay under the old one and narrows the streets.
    district = page.locator("#area-district-search")
    district.click()
    district.press_sequentially("wcq")
    page.keyboard.press("Enter")
    assert page.locator("#area-district").input_value() == "370702"
    assert page.locator("#area-street").input_value() == ""
    assert page.locator("#area-grid").input_value() == ""
    streets = page.locator("#area-street option:not([value=''])").evaluate_all(
        "options => options.map(o => o.value)"
    )
    assert streets and all(s.startswith("370702") for s in streets)
    # Emptied: 由系统定位, and a later suggestion does not fill it back (the operator chose).
    district.fill("")
    page.keyboard.press("Tab")
    assert page.locator("#area-district").input_value() == ""
    assert district.get_attribute("placeholder") == "由系统定位"
    page.fill("#address", "奎文区东关街道胜利东街100号")
    page.fill("#content", CALL)
    page.locator("#suggestion-panel li").first.wait_for(timeout=SUGGESTION_WAIT)
    page.wait_for_timeout(400)
    assert page.locator("#area-district").input_value() == ""
    page.select_option("#request_type", "complaint")
    page.click("#submit-receive")
    page.wait_for_load_state()
    number = re.search(r"WF\d+", page.locator("div.notice[role=status]").first.inner_text()).group(
        0
    )
    assert number  # received; where a blank area goes is the receive operation's decision


def test_grid_report_category_picker_on_a_phone(new_page, screenshot):
    page = new_page("grid", phone=True)
    page.goto("/grid/report")
    search = page.locator("#rp-category-search")
    assert search.get_attribute("placeholder") == "不确定，由派单员判断"
    search.click()
    search.press_sequentially("jgqs")
    assert listed(page, "rp-category")[0] == "井盖缺失破损"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "grid-report-category-picker")
    page.keyboard.press("Enter")
    assert page.locator("#rp-category").input_value() == "010102"
    assert search.input_value() == "城乡建设 › 市政设施 › 井盖缺失破损"
