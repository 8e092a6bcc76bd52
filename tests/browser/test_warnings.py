"""Early warnings (预警) in the browser: five power-cut calls at one community within minutes
raise a sudden-event warning (the scheduler's scan); the city board on a 1920×1080 screen
shows its banner; a supervisor finds it on the 预警 page, opens its evidence and
acknowledges it, and the banner leaves the board at once (live)."""

import datetime as dt

import pytest
import requests
from sqlalchemy.orm import sessionmaker

from dashboards import warnings
from hotline.config import DEFAULTS
from hotline.db import make_engine
from tests.browser.test_board_screen import SCREEN, assert_fits_the_screen, open_board
from tests.helpers import PASSWORD

pytestmark = pytest.mark.browser

COMMUNITY_GRID = "370705003003001"  # 奎文区 梨园街道 樱园社区
CALLS = (
    "樱园社区晚上突然停电，整个小区都黑了，电梯也停了",
    "樱园社区停电了，听到一声响后整片都没电，是不是变压器坏了",
    "樱园社区停电半小时了，家里老人用制氧机，很着急",
    "樱园社区停电，楼道漆黑，老人下楼危险，请尽快抢修",
    "樱园社区全小区停电，没看到停电通知，什么时候能来电",
)


@pytest.fixture(scope="module")
def raised(live_server, browser_database):
    """The calls, received through the API as a console does, and the scheduler's scan."""
    http = requests.Session()
    login = http.post(
        f"{live_server}/api/v1/auth/login",
        json={"username": "operator", "password": PASSWORD},
        timeout=10,
    )
    token = login.json()["data"]["csrf_token"]
    for i, content in enumerate(CALLS):
        response = http.post(
            f"{live_server}/api/v1/tickets",
            json={
                "channel": "phone",
                "request_type": "complaint",
                "category": "010301",
                "title": "小区突然停电",
                "content": content,
                "area": COMMUNITY_GRID,
                "requester_phone": f"1390536{i:04d}",
            },
            headers={"X-CSRF-Token": token},
            timeout=10,
        )
        assert response.status_code == 201, response.text
    engine = make_engine(browser_database)
    try:
        result = warnings.scan(
            sessionmaker(bind=engine),
            now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1),
            config=DEFAULTS,
        )
    finally:
        engine.dispose()
    # Other browser tests' tickets share the database: this test's warning is the one at 樱园社区.
    (warning,) = [w for w in result.raised if w.kind.value == "sudden" and "樱园社区" in w.title]
    return {"id": warning.id, "title": warning.title}


def test_a_supervisor_sees_the_banner_and_acknowledges_the_warning(new_page, raised, screenshot):
    board = open_board(new_page, "supervisor", "/boards")
    banner = board.locator("[data-testid=warning-banner]")
    assert banner.is_visible()
    assert raised["title"] in banner.inner_text()
    assert "突发事件" in banner.inner_text()
    assert_fits_the_screen(board)
    screenshot(board, "warnings-board-banner-1920")

    page = new_page("supervisor")
    page.set_viewport_size(SCREEN)
    page.goto("/boards")
    # The header's message centre: the warning's item badged 突发事件 (red), not 红色超时.
    page.locator(".mc-bell").click()
    item = page.locator("#mc-panel .mc-item", has_text=raised["title"])
    item.wait_for()
    assert item.locator(".mc-level").inner_text() == "突发事件"
    screenshot(page, "warnings-message-centre-1920")
    page.goto("/boards")
    page.click("header >> text=预警")
    page.wait_for_url("**/warnings")
    row = page.locator(f"[data-testid=warnings] tr[data-id='{raised['id']}']")
    assert "待确认" in row.inner_text()
    screenshot(page, "warnings-list-1920")
    row.locator("a").click()
    page.wait_for_url(f"**/warnings/{raised['id']}")
    evidence = page.locator("[data-testid=evidence] tbody tr")
    assert evidence.count() == len(CALLS)
    assert evidence.first.locator("a").get_attribute("href").startswith("/tickets/")
    assert "5 件" in page.locator("[data-testid=observed]").inner_text()
    page.fill("textarea[name=note]", "已通知供电公司抢修，社区已到场安抚居民")
    screenshot(page, "warnings-detail-1920")
    page.click("[data-testid=acknowledge] button[type=submit]")
    page.wait_for_url(f"**/warnings/{raised['id']}")
    state = page.locator("[data-testid=state]").inner_text()
    assert "已确认" in state and "已通知供电公司抢修" in state
    assert page.locator("[data-testid=acknowledge]").count() == 0
    screenshot(page, "warnings-acknowledged-1920")

    # The board, still open, drops the warning from its banner by itself (other browser tests'
    # tickets may have raised warnings of their own, which stay).
    board.wait_for_selector(
        f'#warning-items li[data-id="{raised["id"]}"]', state="detached", timeout=10_000
    )
    assert_fits_the_screen(board)
