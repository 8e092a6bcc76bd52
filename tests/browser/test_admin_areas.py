"""Areas and grids in Chromium: an administrator browses from the districts to a community,
renames one of its grids and gives it an alias, uploads a GeoJSON boundary for it and sees it
on the map; a wrong file is refused in Chinese with nothing changed."""

import json

import sqlalchemy as sa
from playwright.sync_api import expect

from hotline.db import make_engine

COMMUNITY = "370703001005"  # 寒亭区 › 寒亭街道 › 文化街社区
GRID = "370703001005003"


def centre_of(browser_database, code):
    engine = make_engine(browser_database)
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT center_lng, center_lat FROM areas WHERE code = :code"), {"code": code}
        ).one()
    engine.dispose()
    return row


def test_admin_edits_a_grid_and_its_boundary(new_page, screenshot, browser_database):
    page = new_page("admin")
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto("/admin/")
    page.locator(".admin-nav").get_by_role("link", name="区划与网格").click()
    expect(page.get_by_role("heading", name="区划与网格")).to_be_visible()
    # Search finds an area by one of its aliases.
    page.get_by_label("按名称、别名或编码搜索").fill("文化街社区居民委会")
    page.get_by_role("button", name="搜索").click()
    expect(page.get_by_role("table", name="搜索结果")).to_contain_text("寒亭区 › 寒亭街道")
    screenshot(page, "admin-areas-search")

    # Level by level: district → street → community.
    page.get_by_role("table", name="区县").get_by_role("link", name="寒亭区").click()
    page.get_by_role("table", name="下级街道乡镇").get_by_role("link", name="寒亭街道").click()
    page.get_by_role("table", name="下级社区村").get_by_role("link", name="文化街社区").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("文化街社区")
    expect(page.get_by_role("navigation", name="所在位置")).to_contain_text("寒亭区 › 寒亭街道")
    grid_shapes = page.locator("[data-testid=area-map] path.shape.child")
    expect(grid_shapes).to_have_count(3)
    screenshot(page, "admin-areas-community")

    # Rename a grid and give it an alias.
    page.get_by_role("table", name="下级网格").get_by_role("link", name="文化街社区第3网格").click()
    page.get_by_label("名称", exact=True).fill("文化街北片网格")
    page.get_by_label("别名", exact=True).fill("北片、文化北片")
    page.get_by_role("button", name="保存").click()
    expect(page.locator("div.notice[role=status]")).to_have_text(
        "已保存“文化街北片网格”的名称和别名"
    )
    expect(page.get_by_role("heading", level=1)).to_contain_text("文化街北片网格")
    expect(page.locator("textarea[name=aliases]")).to_have_value("北片、文化北片")

    # A file with latitude and longitude swapped is refused; nothing changes.
    own = page.locator(f"[data-testid=area-map] path.shape.own[data-code='{GRID}']")
    before = own.get_attribute("d")
    lng, lat = centre_of(browser_database, GRID)
    ring = [
        [lng - 0.0012, lat - 0.0008],
        [lng + 0.0010, lat - 0.0010],
        [lng + 0.0014, lat + 0.0004],
        [lng + 0.0002, lat + 0.0013],
        [lng - 0.0013, lat + 0.0006],
        [lng - 0.0012, lat - 0.0008],
    ]
    swapped = {"type": "Polygon", "coordinates": [[[y, x] for x, y in ring]]}
    upload = page.get_by_label("GeoJSON 文件")
    upload.set_input_files(
        {
            "name": "swapped.geojson",
            "mimeType": "application/geo+json",
            "buffer": json.dumps(swapped).encode(),
        }
    )
    page.get_by_role("button", name="上传并替换边界").click()
    expect(page.get_by_role("alert")).to_contain_text("坐标顺序有误")
    assert own.get_attribute("d") == before

    # The right file: a pentagon around the grid's centre, drawn on the map.
    feature = {
        "type": "Feature",
        "properties": {"name": "文化街北片网格"},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }
    page.get_by_label("GeoJSON 文件").set_input_files(
        {
            "name": "grid.geojson",
            "mimeType": "application/geo+json",
            "buffer": json.dumps(feature, ensure_ascii=False).encode(),
        }
    )
    page.get_by_role("button", name="上传并替换边界").click()
    expect(page.locator("div.notice[role=status]")).to_contain_text(
        "已更新“文化街北片网格”的边界（5 个顶点"
    )
    # It overlaps the second grid: allowed (the neighbour may be fixed next), but said.
    expect(page.locator("div.error[role=status]")).to_contain_text(
        "“文化街北片网格”与“文化街社区第2网格”的边界重叠"
    )
    expect(own).to_be_visible()
    after = own.get_attribute("d")
    assert after != before and after.count(" L") == 4  # five vertices
    expect(page.locator("[data-testid=area-map] path.shape.context")).to_have_count(2)
    screenshot(page, "admin-areas-grid-boundary")

    # Back at the community, the grid is drawn with its new boundary and its new name.
    page.get_by_role("navigation", name="所在位置").get_by_role("link", name="文化街社区").click()
    grid = page.locator(f"[data-testid=area-map] path.shape.child[data-code='{GRID}']")
    expect(grid).to_have_count(1)
    assert grid.get_attribute("d").count(" L") == 4
    expect(page.get_by_role("table", name="下级网格")).to_contain_text("文化街北片网格")
    expect(page.get_by_role("table", name="下级网格")).to_contain_text("文化北片")
    screenshot(page, "admin-areas-community-after")
