"""The live boards on a real big screen (issue 13 §11): the city board and a district's at
exactly 1920×1080 without scrolling, the map of their areas drawn from the stored outlines
and coloured from the snapshot, the trend chart's legend clear of its plot, and the labels
that say a count is by location, not by responsible unit."""

import pytest
import requests

from tests.helpers import PASSWORD

pytestmark = pytest.mark.browser

SCREEN = {"width": 1920, "height": 1080}
#: Grids of five districts' streets, and how many tickets each gets.
PLACES = {
    "370705001001001": 4,  # 奎文区 东关街道
    "370705002007001": 2,  # 奎文区 大虞街道
    "370702001001001": 3,  # 潍城区 城关街道
    "370703001001001": 1,  # 寒亭区 寒亭街道
    "370704003018001": 2,  # 坊子区 凤凰街道
}


@pytest.fixture(scope="module")
def tickets(live_server):
    """Tickets received today in several districts (through the API, as a console does)."""
    http = requests.Session()
    login = http.post(
        f"{live_server}/api/v1/auth/login",
        json={"username": "operator", "password": PASSWORD},
        timeout=10,
    )
    token = login.json()["data"]["csrf_token"]
    for area, count in PLACES.items():
        for i in range(count):
            response = http.post(
                f"{live_server}/api/v1/tickets",
                json={
                    "channel": "phone" if i % 2 else "wechat",
                    "request_type": "complaint",
                    "content": f"大屏地图测试第 {i + 1} 件：小区门口路灯不亮，晚上出行不便",
                    "area": area,
                },
                headers={"X-CSRF-Token": token},
                timeout=10,
            )
            assert response.status_code == 201, response.text
    return PLACES


def open_board(new_page, username, path):
    page = new_page(username)
    page.set_viewport_size(SCREEN)
    page.goto(path)
    page.wait_for_selector("[data-testid=status][data-state=online]", timeout=10_000)
    page.wait_for_selector(".map-panel.drawn #area-map canvas", timeout=10_000)
    page.wait_for_timeout(300)  # the charts' first frame
    return page


def assert_fits_the_screen(page):
    size = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    assert size[0] <= SCREEN["width"] and size[1] <= SCREEN["height"], size
    # Every panel ends on the screen (nothing pushed below the fold and clipped).
    bottoms = page.evaluate(
        "Array.from(document.querySelectorAll('.board .panel'))"
        ".map(p => p.getBoundingClientRect().bottom)"
    )
    assert bottoms and max(bottoms) <= SCREEN["height"], bottoms


def map_figures(page):
    rows = page.locator("[data-testid=map-data] tbody tr")
    return {
        rows.nth(i).get_attribute("data-code"): [
            int(t) for t in rows.nth(i).locator("td").all_inner_texts()[1:]
        ]
        for i in range(rows.count())
    }


def legend_and_plot(page):
    """The trend chart's legend box and plot box, in the chart's pixels."""
    return page.evaluate(
        """() => {
        const chart = echarts.getInstanceByDom(document.getElementById("trend-chart"));
        const legend = chart.getModel().getComponent("legend");
        const view = chart.getViewOfComponentModel(legend);
        const box = view.group.getBoundingRect().clone();
        box.applyTransform(view.group.getLocalTransform());
        const plot = chart.getModel().getComponent("grid").coordinateSystem.getRect();
        return {legend: [box.y, box.y + box.height], plot: [plot.y, plot.y + plot.height]};
        }"""
    )


def test_the_city_board_fits_a_big_screen_with_its_map(new_page, tickets, screenshot):
    page = open_board(new_page, "leader", "/boards")
    assert_fits_the_screen(page)
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    # The map: one outline per district, coloured by today's intake per district.
    outlines = page.evaluate(
        "fetch(document.getElementById('board').dataset.mapUrl).then(r => r.json())"
    )["data"]
    assert [f["properties"]["name"] for f in outlines["features"]][:2] == ["潍城区", "寒亭区"]
    assert len(outlines["features"]) == 5 and outlines["approximate"] is True
    assert page.locator("[data-testid=map-approximate]").is_visible()
    figures = map_figures(page)
    assert figures["370705"][0] >= 6 and figures["370702"][0] >= 3
    assert figures["370703"][0] >= 1 and figures["370704"][0] >= 2
    assert page.locator("[data-testid=map-metric]").inner_text() == "今日受理"
    # Counts say what they count: where the problem is, not who handles it.
    basis = page.locator("[data-testid=basis]").inner_text()
    assert "按问题发生地" in basis and "承办单位" in basis
    assert "（发生地）" in page.locator("[data-testid=rates-today] th").first.inner_text()
    assert (
        "考核排名里的区县只计该区县政府及其街道乡镇承办"
        in page.locator("[data-testid=rates-note]").inner_text()
    )
    # The legend sits above the plot, not over its axis.
    boxes = legend_and_plot(page)
    assert boxes["legend"][1] <= boxes["plot"][0], boxes
    screenshot(page, "board-city-1920")

    page.click(".toggle button[data-metric=overdue]")
    assert page.locator("[data-testid=map-metric]").inner_text() == "当前超期"
    assert page.get_attribute(".toggle button[data-metric=overdue]", "aria-pressed") == "true"
    assert page.get_attribute(".toggle button[data-metric=received]", "aria-pressed") == "false"
    page.hover("#area-map canvas", position={"x": 400, "y": 200})
    page.wait_for_timeout(300)
    screenshot(page, "board-city-1920-overdue")
    assert_fits_the_screen(page)


def test_a_district_leaders_board_maps_its_streets(new_page, tickets, screenshot):
    page = open_board(new_page, "kuiwen-leader", "/boards")
    assert page.url.endswith("/boards/district/370705")
    assert_fits_the_screen(page)
    figures = map_figures(page)
    assert all(code.startswith("370705") and len(code) == 9 for code in figures)
    assert len(figures) == 10
    assert figures["370705001"][0] >= 4 and figures["370705002"][0] >= 2
    outlines = page.evaluate(
        "fetch(document.getElementById('board').dataset.mapUrl).then(r => r.json())"
    )["data"]
    assert sorted(f["id"] for f in outlines["features"]) == sorted(figures)
    # The city's map is not theirs.
    refused = page.evaluate("fetch('/api/v1/boards/city/map').then(r => r.status)")
    assert refused == 403
    assert "奎文区内发生的工单" in page.locator("[data-testid=basis]").inner_text()
    screenshot(page, "board-district-1920")
