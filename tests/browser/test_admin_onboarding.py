"""城市导入 in a real browser: the administrator opens the onboarding page, uploads a small
division table on the import page, reads the dry-run report and the row errors of a bad file,
then imports. Screenshots at 1920×1080."""

import pytest
import sqlalchemy as sa

from hotline.db import make_engine
from tests.hotline.test_onboarding import CITIES, DISTRICTS, STREETS, VILLAGES


@pytest.fixture
def division_files(tmp_path, browser_database):
    paths = []
    for name, text in (
        ("areas.csv", DISTRICTS),
        ("streets_sample_9901.csv", STREETS),
        ("villages_sample_9901.csv", VILLAGES),
        ("cities.csv", CITIES),
    ):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    yield paths
    # The browser database is shared by every browser test: take the sample city out again.
    engine = make_engine(browser_database)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM areas WHERE code LIKE '9901%' AND level = 'community'"))
        conn.execute(sa.text("DELETE FROM areas WHERE code LIKE '9901%' AND level = 'street'"))
        conn.execute(sa.text("DELETE FROM areas WHERE code LIKE '9901%'"))
    engine.dispose()


def test_admin_imports_a_division_table(new_page, screenshot, division_files, tmp_path):
    page = new_page("admin")
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto("/admin/")
    page.get_by_role("link", name="城市导入").first.click()
    page.wait_for_load_state()
    assert "城市设置" in page.locator("main, body").first.inner_text()
    screenshot(page, "admin-onboard-overview")

    page.get_by_role("link", name="导入行政区划").click()
    page.wait_for_load_state()
    assert page.url.endswith("/admin/imports/areas")

    # A bad streets table: every error with its file, row and column; nothing saved.
    bad = tmp_path / "streets_bad.csv"
    bad.write_text(STREETS + "99010200,短代码街道,990102,99,9901\n", encoding="utf-8")
    page.set_input_files("input[name=files]", [division_files[0], str(bad), division_files[2]])
    page.fill("input[name=city]", "9901")
    page.get_by_role("button", name="检查（不保存）").click()
    errors = page.locator("table.import-errors")
    assert "街道乡镇代码应为 9 位数字" in errors.inner_text()
    assert "streets_bad.csv" in errors.inner_text() and "code" in errors.inner_text()
    screenshot(page, "admin-onboard-errors")

    page.set_input_files("input[name=files]", division_files)
    page.fill("input[name=city]", "样例市")
    page.get_by_role("button", name="检查（不保存）").click()
    notice = page.locator("div.notice[role=status]")
    assert "试运行（未保存）：新增 9 条" in notice.inner_text()
    assert "新增区县 990101 甲区" in page.locator("ul.import-changes").inner_text()
    screenshot(page, "admin-onboard-dry-run")

    page.set_input_files("input[name=files]", division_files)
    page.get_by_role("button", name="导入").click()
    assert "已导入：新增 9 条" in page.locator("div.notice[role=status]").inner_text()
    screenshot(page, "admin-onboard-imported")

    page.goto("/admin/onboarding/")
    counts = page.locator("table.onboarding-counts").inner_text()
    assert "社区村" in counts
