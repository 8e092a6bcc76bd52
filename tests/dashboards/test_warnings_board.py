"""The live boards' early-warning banner (预警): a room's open warnings in its snapshot,
recomputed by the publisher when a warning is raised or acknowledged."""

import sqlalchemy as sa

from dashboards import warnings
from tests.dashboards.test_warnings import MIN, POWER, local


def _sudden(db, user, make_ticket, community, at):
    for i in range(5):
        make_ticket(
            user("operator"),
            category=POWER,
            area=community,
            title="小区大面积停电",
            content=f"市民来电反映，小区停电，电梯停了（{i + 1}）。",
            requester_phone=f"1370536{i:04d}",
            now=at + i * 5 * MIN,
        )


def test_the_banner_follows_the_rooms_open_warnings(db, user, make_ticket, publisher):
    _sudden(db, user, make_ticket, "370705001001", local(11, 16, 19))
    _sudden(db, user, make_ticket, "370702001001", local(11, 16, 20))
    kuiwen = warnings.run(db, local(11, 16, 19, 30)).raised[0]
    weicheng = warnings.run(db, local(11, 16, 20, 30)).raised[0]
    db.flush()
    assert kuiwen.district.code == "370705" and weicheng.district.code == "370702"
    banner = warnings.banner(db, ["city", "district:370705", "district:370702"])
    city = banner["city"]
    assert city["count"] == 2
    assert [i["id"] for i in city["items"]] == [weicheng.id, kuiwen.id]  # newest first
    assert city["items"][0]["level"] == "red" and city["items"][0]["label"] == "突发事件"
    assert [i["id"] for i in banner["district:370705"]["items"]] == [kuiwen.id]
    assert banner["district:370705"]["count"] == 1
    # The board's snapshot carries it.
    assert publisher.flush([], rooms=["city"])["city"]["warnings"] == city
    # Acknowledged: the publisher recomputes the city's and 奎文区's boards without it.
    warnings.acknowledge(db, user("supervisor"), kuiwen, "已处置", now=local(11, 16, 21))
    event = [e for e in db.info["pending_events"] if e["type"] == "warning.acknowledged"]
    payloads = publisher.flush(event)
    assert set(payloads) == {"city", "district:370705"}
    assert payloads["district:370705"]["warnings"] == {"count": 0, "items": []}
    assert [i["id"] for i in payloads["city"]["warnings"]["items"]] == [weicheng.id]


def test_the_board_page_shows_the_banner(client, db, user, make_ticket, web_login):
    _sudden(db, user, make_ticket, "370705001001", local(11, 16, 19))
    (warning,) = warnings.run(db, local(11, 16, 19, 30)).raised
    db.flush()
    web_login(client, "leader")
    html = client.get("/boards").get_data(as_text=True)
    assert 'data-testid="warning-banner"' in html
    banner = html[html.index('data-testid="warning-banner"') :]
    banner = banner[: banner.index("</div>")]
    assert " hidden" not in banner.split(">")[0]
    assert f'href="/warnings/{warning.id}"' in banner and warning.title in banner
    db.execute(sa.text("DELETE FROM early_warnings"))
    html = client.get("/boards").get_data(as_text=True)
    head = html[html.index('data-testid="warning-banner"') :].split(">")[0]
    assert " hidden" in head
