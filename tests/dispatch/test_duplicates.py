"""Possible duplicates (并单): same phone; same place with similar text; the 30-day window;
scope; final tickets as information only; and ``POST /api/v1/duplicates``."""

import datetime as dt

import pytest
import sqlalchemy as sa

from dispatch import duplicates, operations
from hotline.db import utcnow
from hotline.enums import IntakeOutcome
from hotline.models import Area
from tests.helpers import assert_error

GRID_1 = "370705001001001"
GRID_2 = "370705001001002"  # same community as GRID_1
OTHER_COMMUNITY_GRID = "370705001004001"
LAMP = "市民来电反映，胜利东街100号附近的路灯已经坏了一个星期，晚上一片漆黑，希望尽快修好。"
LAMP_AGAIN = "胜利东街100号门口路灯不亮，连续一周晚上黑漆漆的，出行很不方便，请尽快维修。"
NOISE = "楼上邻居每天深夜装修电钻声音很大，严重影响休息，希望管一管。"


@pytest.fixture
def operator(user):
    return user("operator")


def area(db, code):
    return db.scalars(sa.select(Area).where(Area.code == code)).one()


def numbers(candidates):
    return [c.ticket.number for c in candidates]


def test_same_phone(db, operator, make_ticket):
    ticket = make_ticket(operator, requester_phone="13905360077", content=NOISE)
    make_ticket(operator, requester_phone="13905360078", content=NOISE)
    found = duplicates.find(db, operator, phone="13905360077", content="完全不同的事情")
    assert numbers(found) == [ticket.number]
    assert found[0].reasons == ["同一来电号码"]
    assert found[0].mergeable


def test_same_place_and_similar_text(db, operator, make_ticket):
    ticket = make_ticket(operator, requester_phone=None, content=LAMP, area=GRID_1)
    found = duplicates.find(db, operator, area=area(db, GRID_2), content=LAMP_AGAIN)
    assert numbers(found) == [ticket.number]
    (reason,) = found[0].reasons
    assert reason.startswith("同一地点且内容相似 (相似度 0.")
    assert found[0].similarity >= duplicates.SIMILARITY_THRESHOLD


def test_same_normalised_address_counts_as_same_place(db, operator, make_ticket):
    ticket = make_ticket(
        operator, requester_phone=None, content=LAMP, address="奎文区东关街道胜利东街100号"
    )
    found = duplicates.find(
        db, operator, address="奎文区 东关街道 胜利东街１００号", content=LAMP_AGAIN
    )
    assert numbers(found) == [ticket.number]


def test_different_text_at_the_same_place_is_not_a_duplicate(db, operator, make_ticket):
    make_ticket(operator, requester_phone=None, content=NOISE, area=GRID_1)
    assert duplicates.find(db, operator, area=area(db, GRID_1), content=LAMP) == []


def test_similar_text_elsewhere_is_not_a_duplicate(db, operator, make_ticket):
    make_ticket(operator, requester_phone=None, content=LAMP, area=OTHER_COMMUNITY_GRID)
    assert duplicates.find(db, operator, area=area(db, GRID_1), content=LAMP_AGAIN) == []


def test_older_than_the_window_is_excluded(db, operator, app, make_ticket):
    assert app.config["DUPLICATE_WINDOW_DAYS"] == 30
    now = utcnow()
    make_ticket(operator, requester_phone="13905360079", now=now - dt.timedelta(days=31))
    recent = make_ticket(operator, requester_phone="13905360079", now=now - dt.timedelta(days=29))
    found = duplicates.find(db, operator, phone="13905360079", now=now)
    assert numbers(found) == [recent.number]


def test_ranking_puts_phone_and_place_first(db, operator, make_ticket):
    place_only = make_ticket(operator, requester_phone=None, content=LAMP, area=GRID_1)
    phone_only = make_ticket(operator, requester_phone="13905360080", content=NOISE)
    both = make_ticket(operator, requester_phone="13905360080", content=LAMP, area=GRID_2)
    found = duplicates.find(
        db, operator, phone="13905360080", area=area(db, GRID_1), content=LAMP_AGAIN
    )
    assert numbers(found) == [both.number, phone_only.number, place_only.number]


def test_final_tickets_are_information_only_and_merged_ones_left_out(db, operator, make_ticket):
    answered = make_ticket(operator, requester_phone="13905360081")
    operations.resolve_at_intake(
        db, operator, answered, outcome=IntakeOutcome.answered, answer="已答复"
    )
    target = make_ticket(operator, requester_phone="13905360081")
    merged = make_ticket(operator, requester_phone="13905360081")
    operations.merge(db, operator, merged, into=target)
    found = {c.ticket.number: c for c in duplicates.find(db, operator, phone="13905360081")}
    assert set(found) == {answered.number, target.number}
    assert not found[answered.number].mergeable
    assert found[target.number].mergeable


def test_scope_limits_what_is_offered(db, operator, user, make_ticket):
    make_ticket(operator, requester_phone="13905360082")
    # A unit handler sees only tickets their unit holds: this one is not dispatched.
    assert duplicates.find(db, user("dongguan"), phone="13905360082") == []
    assert len(duplicates.find(db, user("dispatcher"), phone="13905360082")) == 1


def test_nothing_to_compare_finds_nothing(db, operator, make_ticket):
    make_ticket(operator)
    assert duplicates.find(db, operator, content=LAMP) == []


# -- API --------------------------------------------------------------------------------------


def test_api_finds_candidates(api, db, user, make_ticket):
    ticket = make_ticket(user("operator"), requester_phone="13905360083", area=GRID_1)
    response = api("operator").post(
        "/duplicates", json={"phone": "139-0536-0083", "area": GRID_2, "content": LAMP_AGAIN}
    )
    assert response.status_code == 200
    (item,) = response.get_json()["data"]
    assert item["number"] == ticket.number
    assert item["reasons"][0] == "同一来电号码"
    assert item["mergeable"] is True
    assert item["status"] == {"value": "received", "label": "已受理"}
    assert item["requester_phone"] == "13905360083"  # operators call back: full number
    assert item["area"]["code"] == GRID_1


def test_api_validation(api):
    client = api("operator")
    error = assert_error(client.post("/duplicates", json={}), 422, "VALIDATION_FAILED")
    assert "phone" in error["details"]
    error = assert_error(client.post("/duplicates", json={"phone": "12"}), 422, "VALIDATION_FAILED")
    assert "联系电话格式不正确" in error["details"]["phone"]
    error = assert_error(
        client.post("/duplicates", json={"area": "999999999"}), 422, "VALIDATION_FAILED"
    )
    assert error["details"]["area"] == "区域不存在：999999999"
    error = assert_error(
        client.post("/duplicates", json={"phone": "13905360083", "x": 1}), 422, "VALIDATION_FAILED"
    )
    assert error["details"]["x"] == "未知字段“x”"
    assert_error(client.post("/duplicates", data="phone=1"), 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize("username", ["dongguan", "grid", "callback", "supervisor", "leader"])
def test_api_refuses_other_roles(api, username):
    response = api(username).post("/duplicates", json={"phone": "13905360083"})
    assert_error(response, 403, "ROLE_NOT_ALLOWED")


def test_intake_names(api):
    response = api("operator").get("/intake/names?area=370705001001001&units=U-S-370705001")
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert [p["level"] for p in data["place"]] == ["district", "street", "community", "grid"]
    assert data["place"][0]["name"] == "奎文区"
    assert data["place"][1]["name"] == "东关街道"
    assert data["units"][0]["code"] == "U-S-370705001" and data["units"][0]["name"]
    assert_error(api("dongguan").get("/intake/names?area=370705"), 403, "ROLE_NOT_ALLOWED")
