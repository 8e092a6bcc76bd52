"""Hot issues (热点问题) in Chromium at 1920×1080: a supervisor opens the list and a hot issue
(its timeline drawn), merges one into another with the searchable picker, marks it handled
and splits two tickets off; a dispatcher sees "属于热点问题 #N" on a ticket and follows the
link; the live board's hot-issue panel."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from dashboards import hotspots
from hotline.db import get_session
from hotline.models import HotIssueTicket, User
from server.app import create_app
from tests.dashboards.hotspot_city import City

pytestmark = pytest.mark.browser

FULL_HD = {"width": 1920, "height": 1080}
#: Matters of this test's own (the browser database is shared by every browser test).
SITE = (
    "丽发新城搅拌站夜间施工噪音扰民",
    "丽发新城北门外的搅拌站每天夜里施工到凌晨两点，噪音很大，居民无法休息，请查处。",
    "370705001001",
)
LAMPS = (
    "曹家巷路灯成片不亮",
    "曹家巷一带的路灯已经一周不亮，晚上漆黑一片，老人孩子出行很不安全，希望尽快维修。",
    "370702001001",
)
WATER = (
    "中学街小区自来水发黄有异味",
    "中学街小区这几天自来水发黄还有异味，不能饮用，请供水公司尽快检查水质并处理。",
    "370705001001",
)


@pytest.fixture(scope="module")
def issues(browser_database, models_dir):
    """Three hot issues in the browser database, grouped by a rebuild as ``hotline hotspots
    rebuild`` does: (site issue id, lamps issue id, site ticket numbers)."""
    app = create_app(
        {
            "DATABASE_URL": browser_database,
            "SECRET_KEY": "browser-tests",
            "CLASSIFIER_PRELOAD": False,
            "CLASSIFIER_MODELS_DIR": models_dir,
        }
    )
    from tests.conftest import _receive

    with app.app_context():
        session = get_session()

        def user(name):
            return session.scalars(sa.select(User).where(User.username == name)).one()

        city = City(session, user, lambda op, **kw: _receive(session, op, **kw))
        city.phone = 13905360000
        now = dt.datetime.now(dt.UTC)
        midnight = dt.datetime.now(ZoneInfo("Asia/Shanghai")).replace(
            hour=0, minute=0, second=0, microsecond=0
        )

        def today(hours_ago):
            """``hours_ago`` before now, but received today: the browser database keeps last
            month empty (the ranking page's test opens on this month)."""
            return max(now - dt.timedelta(hours=hours_ago), midnight + dt.timedelta(minutes=1))

        site = [city.call(SITE, today(5.1 - i)) for i in range(5)]
        lamps = [city.call(LAMPS, today(6 - i)) for i in range(3)]
        # Stays open whatever the other tests decide: the board's panel shows it.
        for i in range(4):
            city.call(WATER, today(7 - i / 2))
        session.commit()
        hotspots.rebuild(session, now)
        session.commit()

        def issue_of(ticket):
            return session.scalar(
                sa.select(HotIssueTicket.hot_issue_id).where(HotIssueTicket.ticket_id == ticket.id)
            )

        found = issue_of(site[0]), issue_of(lamps[0]), [t.number for t in site]
    app.extensions["hotline.db"].kw["bind"].dispose()
    assert found[0] and found[1] and found[0] != found[1]
    return found


def test_a_supervisor_merges_and_marks_handled(new_page, issues, screenshot):
    site, lamps, _ = issues
    page = new_page("supervisor")
    page.set_viewport_size(FULL_HD)
    page.goto("/hotspots")
    assert page.locator("h1").inner_text().startswith("热点问题")
    rows = page.locator("#hotspots tbody tr")
    expect(page.locator(f'#hotspots tr[data-id="{site}"]')).to_be_visible()
    assert rows.count() >= 2
    screenshot(page, "hotspots-list")

    # The district filter by name (the picker turns the select into a search box).
    search = page.locator("[data-picker=district]").evaluate("s => s.id") + "-search"
    page.locator(f"#{search}").click()
    page.locator(f"#{search}").press_sequentially("潍城")
    page.keyboard.press("Enter")
    page.click("#hotspot-filters button[type=submit]")
    page.wait_for_load_state()
    assert "district=370702" in page.url
    assert page.locator(f'#hotspots tr[data-id="{lamps}"]').count() == 1
    assert page.locator(f'#hotspots tr[data-id="{site}"]').count() == 0

    page.goto(f"/hotspots/{site}")
    assert page.locator("[data-testid=hotspot-size]").inner_text() == "5"
    expect(page.locator("#timeline-chart canvas")).to_have_count(1)
    assert page.locator("[data-testid=heat-parts] tbody tr").count() >= 2
    screenshot(page, "hotspot-page")

    # Merge the lamps issue into the site issue (an odd decision, to see it stick).
    page.goto(f"/hotspots/{lamps}")
    merge_search = page.locator("#merge-into-search")
    merge_search.click()
    merge_search.press_sequentially(f"#{site}")
    page.keyboard.press("Enter")
    assert page.locator("#merge-into").input_value() == str(site)
    page.fill("#merge-form input[name=reason]", "浏览器测试：合并")
    page.click("#merge-form button[type=submit]")
    page.wait_for_load_state()
    assert page.url.endswith(f"/hotspots/{site}")
    assert page.locator("[data-testid=hotspot-size]").inner_text() == "8"
    assert "已并入热点问题" in page.locator("main").inner_text()

    page.fill("#handle-form input[name=note]", "已召开联席会议，责成停工整改")
    page.click("#handle-form button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("[data-testid=hotspot-state]").inner_text() == "已处理"
    assert "已召开联席会议" in page.locator("[data-testid=handled]").inner_text()
    moments = page.locator("[data-testid=moments]").inner_text()
    assert "合并" in moments and "标记已处理" in moments
    screenshot(page, "hotspot-merged-handled")

    # Split two tickets off with the check boxes: a new hot issue of its own.
    boxes = page.locator("[data-testid=hotspot-tickets] input[name=tickets]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.fill("#split-form input[name=title]", "丽发新城搅拌站（拆分）")
    page.click("#split-form button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("[data-testid=hotspot-title]").inner_text().startswith("热点问题 #")
    assert "丽发新城搅拌站（拆分）" in page.locator("[data-testid=hotspot-title]").inner_text()
    assert page.locator("[data-testid=hotspot-size]").inner_text() == "2"
    assert "已拆分为新的热点问题" in page.locator("main").inner_text()

    page.goto(f"/hotspots/{lamps}")
    assert "已合并到" in page.locator("[data-testid=merged-into]").inner_text()


def test_the_dispatcher_sees_the_hot_issue_on_a_ticket(new_page, issues, screenshot):
    site, _, numbers = issues
    page = new_page("dispatcher")
    page.set_viewport_size(FULL_HD)
    page.goto(f"/tickets/{numbers[-1]}")
    line = page.locator("[data-testid=hot-issue]")
    assert line.inner_text().startswith(f"属于热点问题 #{site} ")
    assert "（共" in line.inner_text()
    screenshot(page, "ticket-part-of-hot-issue")
    line.locator("a").click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/hotspots/{site}")
    assert page.locator("[data-testid=decisions]").count() == 0


def test_the_board_has_the_hot_issue_panel(new_page, issues, screenshot):
    page = new_page("leader")
    page.set_viewport_size(FULL_HD)
    page.goto("/boards")
    panel = page.locator("[data-testid=hot-issues]")
    expect(panel.locator("li").first).to_be_visible()
    titles = panel.locator("li a.title")
    assert titles.count() >= 1
    assert all(
        href.startswith("/hotspots/")
        for href in [titles.nth(i).get_attribute("href") for i in range(titles.count())]
    )
    # The whole board fits the screen: the panel does not push anything below the fold.
    box = page.locator(".hot-panel").bounding_box()
    assert box["y"] + box["height"] <= FULL_HD["height"]
    screenshot(page, "board-hot-issues")
