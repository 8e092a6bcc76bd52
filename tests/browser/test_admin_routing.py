"""The dispatch catalogue (派单目录) in Chromium at 1920×1080, as an administrator: a dated rule
added with the pickers (category by pinyin, area cascade, unit by name), a conflicting rule
refused with the reason, a conflict left by older data flagged on the list, and "who handles
this?" naming the rule that decides and the rule it beat."""

import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from playwright.sync_api import expect

from hotline.db import make_engine

SCREEN = {"width": 1920, "height": 1080}
TODAY = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
TOMORROW = TODAY + dt.timedelta(days=1)


def pick(page, select_id, query, expected_value):
    """Choose in the searchable picker of ``select_id`` by typing ``query``."""
    search = page.locator(f"#{select_id}-search")
    search.click()
    search.fill("")
    search.press_sequentially(query)
    page.keyboard.press("Enter")
    expect(page.locator(f"#{select_id}")).to_have_value(expected_value)


def add_legacy_conflict(browser_database):
    """Two rules of one category and area naming different units in the same period, as a
    catalogue loaded before the check could hold them."""
    engine = make_engine(browser_database)
    with engine.begin() as conn:

        def id_of(table, code):
            return conn.execute(
                sa.text(f"SELECT id FROM {table} WHERE code = :code"), {"code": code}
            ).scalar_one()

        category = id_of("categories", "020301")
        area = id_of("areas", "370702001")
        for unit in ("U-GAJ", "U-STHJ"):
            conn.execute(
                sa.text(
                    "INSERT INTO routing_rules (category_id, area_id, unit_id, note)"
                    " VALUES (:c, :a, :u, '旧目录遗留')"
                ),
                {"c": category, "a": area, "u": id_of("units", unit)},
            )
    engine.dispose()


def test_admin_adds_a_dated_rule_sees_a_conflict_and_uses_the_preview(
    new_page, screenshot, browser_database
):
    page = new_page("admin")
    page.set_viewport_size(SCREEN)
    page.goto("/admin/")
    page.get_by_role("link", name="派单目录").first.click()
    expect(page.locator("h1")).to_have_text("派单目录")

    # A new rule: 路灯故障 in 东关街道 goes to the police from tomorrow (a made-up decision).
    page.get_by_role("link", name="新增规则").click()
    pick(page, "rule-category", "ldgz", "010103")
    pick(page, "rule-area-district", "奎文", "370705")
    pick(page, "rule-area-street", "东关", "370705001")
    pick(page, "rule-unit", "公安", "U-GAJ")
    page.fill("#rule-valid-from", TOMORROW.isoformat())
    page.fill("#rule-note", "夜间照明试点")
    screenshot(page, "admin-routing-new")
    page.get_by_role("button", name="保存").click()
    expect(page.locator("div.notice[role=status]")).to_contain_text("已新增派单规则")
    row = page.locator("table.routing-rules tr", has_text="夜间照明试点")
    expect(row).to_contain_text("尚未生效")
    expect(row).to_contain_text("东关街道")
    screenshot(page, "admin-routing-list")

    # The same category and street to another unit in an overlapping period: refused.
    page.get_by_role("link", name="新增规则").click()
    pick(page, "rule-category", "ldgz", "010103")
    pick(page, "rule-area-district", "奎文", "370705")
    pick(page, "rule-area-street", "东关", "370705001")
    pick(page, "rule-unit", "住房和城乡", "U-ZJJ")
    page.fill("#rule-valid-from", (TOMORROW + dt.timedelta(days=10)).isoformat())
    page.get_by_role("button", name="保存").click()
    alert = page.locator("div.error[role=alert]")
    expect(alert).to_contain_text("与现有规则冲突")
    screenshot(page, "admin-routing-conflict-refused")

    # A conflict left by older data is flagged on the list with its reason.
    add_legacy_conflict(browser_database)
    page.goto("/admin/routing/")
    page.select_option("select[name=issue]", "conflict")
    page.get_by_role("button", name="筛选").click()
    flagged = page.locator("table.routing-rules tbody tr")
    expect(flagged).to_have_count(2)
    expect(flagged.first.locator(".flag-conflict")).to_contain_text("冲突")
    expect(flagged.first).to_contain_text("分别派给")
    screenshot(page, "admin-routing-conflicts")

    # Who handles a street light in 东关街道 tomorrow? The new rule, beating 市政设施 × 全市.
    page.get_by_role("link", name="派单目录").first.click()
    page.get_by_role("link", name="谁来办？预览").click()
    pick(page, "preview-category", "ldgz", "010103")
    pick(page, "preview-area-district", "奎文", "370705")
    pick(page, "preview-area-street", "东关", "370705001")
    page.fill("#preview-date", TOMORROW.isoformat())
    page.get_by_role("button", name="查看").click()
    answer = page.locator(".routing-answer")
    expect(answer).to_contain_text("公安")
    chain = page.locator("ol.routing-chain li")
    expect(chain).to_have_count(2)
    expect(chain.first).to_contain_text("路灯故障")
    expect(chain.nth(1)).to_contain_text("市政设施")
    expect(chain.nth(1)).to_contain_text("更具体")
    expect(page.locator(".routing-preview")).to_contain_text("历史办理学习的建议")
    screenshot(page, "admin-routing-preview")

    # Today the new rule is not yet in force: 市政设施's unit decides.
    page.fill("#preview-date", TODAY.isoformat())
    page.get_by_role("button", name="查看").click()
    expect(page.locator("ol.routing-chain li")).to_have_count(1)
    expect(page.locator("ol.routing-chain li").first).to_contain_text("市政设施")
