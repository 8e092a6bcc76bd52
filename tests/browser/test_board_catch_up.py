"""A board that loses its connection catches up from the database when it comes back: every
ticket received meanwhile appears in its feed, more than the snapshot's newest twenty (issue
12 §10: a Redis blip used to leave every ticket of the gap out of every feed)."""

import re

import pytest
import requests

from tests.helpers import PASSWORD

pytestmark = pytest.mark.browser
#: More than a snapshot carries (FEED_SIZE = 20): the rest can only come from the catch-up.
MISSED = 25


def receive(base, count):
    http = requests.Session()
    login = http.post(
        f"{base}/api/v1/auth/login", json={"username": "operator", "password": PASSWORD}, timeout=10
    )
    token = login.json()["data"]["csrf_token"]
    numbers = []
    for i in range(count):
        response = http.post(
            f"{base}/api/v1/tickets",
            json={
                "channel": "phone",
                "request_type": "complaint",
                "content": f"断线期间来电第 {i + 1} 个：楼道灯不亮",
                "area": "370705001001001",
            },
            headers={"X-CSRF-Token": token},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        numbers.append(response.json()["data"]["number"])
    return numbers


def test_a_board_that_was_offline_gets_every_ticket_it_missed(new_page, live_server, screenshot):
    board = new_page("leader")
    board.wait_for_selector("[data-testid=status][data-state=online]", timeout=10_000)

    board.context.set_offline(True)
    board.wait_for_selector("[data-testid=status][data-state=offline]", timeout=30_000)
    missed = receive(live_server, MISSED)
    board.context.set_offline(False)

    board.wait_for_selector("[data-testid=status][data-state=online]", timeout=30_000)
    feed = board.locator("[data-testid=feed]")
    for number in missed:
        feed.locator(f"[data-ticket='{number}']").wait_for(timeout=10_000)
    shown = re.findall(
        r"WF\d+",
        " ".join(
            feed.locator("li").evaluate_all("items => items.map(item => item.dataset.ticket || '')")
        ),
    )
    assert set(missed) <= set(shown)
    assert len(shown) == len(set(shown)), "no ticket shown twice"
    # Newest first: the catch-up also brings back older tickets (a margin before the newest
    # one the board held), which go below, never above, the newest.
    assert shown[0] == missed[-1]
    assert shown[: len(missed)] == list(reversed(missed))
    assert len(shown) <= 50
    screenshot(board, "board-after-catch-up")
