"""Live board snapshots (dashboards/snapshots.py): the numbers against hand-computed values
(the ``city`` fixture's six tickets around NOW), district boards and masking."""

from dashboards import snapshots
from hotline.db import utcnow
from tests.dashboards.month import NOW


def board(app, db, *rooms, now=NOW):
    month = snapshots.month_rates(db, app.config, force=True, now=now)
    return snapshots.Board(db, app.config, now=now).snapshots(list(rooms), month=month)


def counts(items):
    return {item["code"]: item["count"] for item in items if item["count"]}


def test_city_board_numbers(app, db, city):
    snap = board(app, db, "city")["city"]
    today = snap["today"]
    assert (today["received"], today["dispatched"], today["signed"], today["overdue"]) == (
        3,
        1,
        1,
        1,
    )
    assert counts(today["by_channel"]) == {"phone": 1, "web": 1, "wechat": 1}
    assert counts(today["by_type"]) == {"complaint": 1, "consult": 1, "help": 1}
    # Feed: newest first, every ticket (E, F, D are older than today but still the newest).
    numbers = [item["number"] for item in snap["feed"]]
    assert numbers == [city[k].number for k in "CBAEFD"]
    assert [item["number"] for item in snap["overdue"]] == [city["D"].number]
    assert snap["overdue"][0]["unit"] == "东关街道办事处"
    trend = snap["trend"]
    assert trend["today"][9:12] == [1, 1, 1] and sum(trend["today"][:16]) == 3
    assert trend["today"][16:] == [None] * 8  # hours still to come
    assert trend["yesterday"][16] == 1 and sum(trend["yesterday"]) == 1
    # Month (October): A pending, F responded → 1/1; nothing rated yet.
    month = snap["rates"]["month"]
    assert [(r["code"], r["dispatched"]) for r in month["rows"]] == [("370705", 2)]
    assert month["rows"][0]["name"] == "奎文区"
    assert month["rows"][0]["response_rate"] == 1.0
    assert month["rows"][0]["resolution_rate"] is None
    assert month["total"]["dispatched"] == 2 and month["total"]["name"] == "全市"
    # Today: only A, still pending → no response rate yet.
    assert [
        (r["code"], r["dispatched"], r["response_rate"]) for r in snap["rates"]["today"]["rows"]
    ] == [("370705", 1, None)]


def test_district_boards_hold_only_their_district(app, db, city):
    snaps = board(app, db, "district:370705", "district:370702")
    kuiwen, weicheng = snaps["district:370705"], snaps["district:370702"]
    assert kuiwen["title"] == "奎文区" and weicheng["title"] == "潍城区"
    k = kuiwen["today"]
    assert (k["received"], k["dispatched"], k["signed"], k["overdue"]) == (1, 1, 1, 1)
    assert [i["number"] for i in kuiwen["feed"]] == [city[x].number for x in "AEFD"]
    assert [i["number"] for i in kuiwen["overdue"]] == [city["D"].number]
    # District rates are per street.
    assert [(r["code"], r["dispatched"]) for r in kuiwen["rates"]["month"]["rows"]] == [
        ("370705001", 2)
    ]
    assert kuiwen["rates"]["month"]["total"]["name"] == "奎文区"
    w = weicheng["today"]
    assert (w["received"], w["dispatched"], w["signed"], w["overdue"]) == (1, 0, 0, 0)
    assert counts(w["by_channel"]) == {"web": 1}
    assert [i["number"] for i in weicheng["feed"]] == [city["B"].number]
    assert weicheng["overdue"] == [] and weicheng["rates"]["month"]["rows"] == []
    assert weicheng["trend"]["today"][10] == 1 and sum(weicheng["trend"]["yesterday"]) == 0


def test_feed_masks_personal_data(app, db, city):
    item = next(
        i for i in board(app, db, "city")["city"]["feed"] if i["number"] == city["C"].number
    )
    assert "13805361234" not in item["title"] and "138****1234" in item["title"]
    assert "370705199001011234" not in item["title"] and "37**************34" in item["title"]
    # Escaping is the page's job (textContent): the payload keeps the text as typed.
    assert "<script>alert(1)</script>" in item["title"]
    assert item["place"] == "未定位" and item["channel"] == "微信" and item["type"] == "求助"


def test_mask_text():
    assert (
        snapshots.mask_text("回电 13912345678 或 0536-8881234")
        == "回电 139****5678 或 0536-88***34"
    )
    assert snapshots.mask_text("卡号6222020200112233445") == "卡号62***************45"
    assert snapshots.mask_text("身份证37070519900101123X") == "身份证37**************3X"
    assert snapshots.mask_text("3号楼202室") == "3号楼202室"  # short numbers stay


def test_board_snapshot_queries_do_not_grow_with_rows(app, db, varied_tickets, count_queries):
    """A board's snapshot (counts, feed, trend, units) reads a fixed number of queries however
    many tickets of how many categories, areas and units there are."""
    rooms = ["city", "district:370705", "district:370702"]

    def snapshot():
        now = utcnow()
        month = snapshots.month_rates(db, app.config, force=True, now=now)
        db.expunge_all()
        # The ranking's settings are read at construction: from a per-process cache whose
        # version check runs at most every 2 s, so not counted here.
        board = snapshots.Board(db, app.config, now=now)
        with count_queries() as counted:
            snaps = board.snapshots(rooms, month=month)
        return counted, snaps

    first = [*varied_tickets(2, "received"), *varied_tickets(2, "signed")]
    snapshot()  # caches warmed
    few, snaps = snapshot()
    assert {t.number for t in first} <= {i["number"] for i in snaps["city"]["feed"]}
    more = [*varied_tickets(6, "received"), *varied_tickets(6, "signed")]
    many, snaps = snapshot()
    assert {t.number for t in more} <= {i["number"] for i in snaps["city"]["feed"]}
    assert many.count == few.count, many


def test_map_figures_count_by_location(app, db, city):
    """The map's figures: today's intake and the current overdue tickets per district (city)
    or per street (a district), by the ticket's area; C has no area."""
    snaps = board(app, db, "city", "district:370705")
    city_map = snaps["city"]["map"]
    assert city_map["level"] == "district"
    areas = {a["code"]: (a["name"], a["received"], a["overdue"]) for a in city_map["areas"]}
    assert len(areas) == 5  # every district, with or without tickets
    assert areas["370705"] == ("奎文区", 1, 1)
    assert areas["370702"] == ("潍城区", 1, 0)
    assert areas["370703"][1:] == (0, 0)
    assert city_map["unplaced"] == {"received": 1, "overdue": 0}
    # The sums are the counters'.
    today = snaps["city"]["today"]
    assert sum(a[1] for a in areas.values()) + 1 == today["received"]
    assert sum(a[2] for a in areas.values()) == today["overdue"]

    kuiwen = snaps["district:370705"]["map"]
    assert kuiwen["level"] == "street"
    streets = {a["code"]: (a["received"], a["overdue"]) for a in kuiwen["areas"]}
    assert len(streets) == 10 and all(code.startswith("370705") for code in streets)
    assert streets["370705001"] == (1, 1)
    assert sum(r for r, _ in streets.values()) == 1
    assert kuiwen["unplaced"] == {"received": 0, "overdue": 0}
