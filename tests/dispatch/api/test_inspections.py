"""质检 in the JSON API (``/api/v1/inspections``): the queue, one sample (phone masked), scoring
once, refusals in the envelope, the monthly scores and an operator's own results."""

import datetime as dt

import pytest

from dispatch import inspection
from hotline.enums import InspectionState
from tests.dispatch.common import TZ
from tests.helpers import assert_error

DAY = dt.date(2026, 3, 11)


def at(hour):
    return dt.datetime(2026, 3, 11, hour, tzinfo=TZ).astimezone(dt.UTC)


@pytest.fixture
def samples(db, user, make_ticket):
    make_ticket(user("operator"), now=at(9), title="接口质检样本", category="010103")
    make_ticket(user("operator2"), now=at(10), title="另一名话务员的工单")
    return {r.operator.username: r for r in inspection.sample_day(db, DAY, "Asia/Shanghai")}


def body(**overrides):
    data = {f"{item.key}_points": item.maximum for item in inspection.CHECKLIST}
    data.update(overrides)
    return data


def test_the_queue_and_its_filters(api, samples):
    items = api("inspector").get("/inspections").get_json()["data"]["items"]
    assert {i["id"] for i in items} == {r.id for r in samples.values()}
    only = api("inspector").get("/inspections", query_string={"operator": "operator2"})
    [item] = only.get_json()["data"]["items"]
    assert item["operator"] == {"username": "operator2", "name": "刘婷婷"}
    assert item["state"] == {"value": "pending", "label": "待质检"}
    bad = api("supervisor").get("/inspections", query_string={"day": "2026-02-30"})
    assert assert_error(bad, 422, "VALIDATION_FAILED")["details"] == {
        "day": "日期格式应为 YYYY-MM-DD"
    }


def test_one_sample_shows_the_ticket_as_taken_with_the_phone_masked(api, samples):
    row = samples["operator"]
    data = api("inspector").get(f"/inspections/{row.id}").get_json()["data"]
    ticket = data["ticket"]
    assert ticket["title"] == "接口质检样本"
    assert ticket["category"]["code"] == "010103" and ticket["category"]["name"]
    assert ticket["requester_phone"] == "138****0001"
    assert ticket["intake_decision"] is None  # still waiting for the dispatcher
    assert data["checks"] is None


def test_scoring_once_through_the_api(api, samples, db):
    row = samples["operator"]
    response = api("inspector").post(
        f"/inspections/{row.id}/inspect",
        json=body(content_points=20, content_comment="未记下诉求人希望的处理时间", comment="好"),
    )
    assert response.status_code == 200, response.get_json()
    data = response.get_json()["data"]
    assert data["score"] == 95 and data["state"]["value"] == "done"
    assert data["inspector"]["username"] == "inspector"
    content = next(c for c in data["checks"] if c["item"] == "content")
    assert content == {
        "item": "content",
        "label": "内容完整",
        "maximum": 25,
        "points": 20,
        "comment": "未记下诉求人希望的处理时间",
    }
    again = api("inspector").post(f"/inspections/{row.id}/inspect", json=body())
    assert_error(again, 409, "INSPECTION_DONE")


def test_claiming_and_releasing_through_the_api(api, samples, db):
    row = samples["operator"]
    claimed = api("inspector").post(f"/inspections/{row.id}/claim")
    assert claimed.status_code == 200, claimed.get_json()
    assert claimed.get_json()["data"]["inspector"]["username"] == "inspector"
    assert claimed.get_json()["data"]["state"]["value"] == "pending"
    listed = api("supervisor").get("/inspections").get_json()["data"]["items"]
    assert next(i for i in listed if i["id"] == row.id)["inspector"]["name"] == "郑雅琴"
    assert_error(api("supervisor").post(f"/inspections/{row.id}/claim"), 403, "ROLE_NOT_ALLOWED")
    released = api("supervisor").post(f"/inspections/{row.id}/release")
    assert released.status_code == 200 and released.get_json()["data"]["inspector"] is None
    assert_error(
        api("inspector").post(f"/inspections/{row.id}/release"), 409, "INSPECTION_NOT_CLAIMED"
    )


@pytest.mark.parametrize(
    "payload, field, message",
    [
        (body(address_points=30), "address_points", "“地址准确”得分须在 0–20 之间"),
        (body(address_points="20"), "address_points", "“地址准确”得分须为整数"),
        ({"category_points": 20}, "address_points", "请填写“地址准确”得分"),
        (body(version=3), "version", "没有这个评分项"),
        (body(comment=5), "comment", "总体评语须为文本"),
    ],
)
def test_bad_scores_are_refused_in_the_envelope(api, samples, db, payload, field, message):
    row = samples["operator"]
    response = api("inspector").post(f"/inspections/{row.id}/inspect", json=payload)
    error = assert_error(response, 422, "INSPECTION_INVALID")
    assert error["details"][field] == message
    db.refresh(row)
    assert row.state == InspectionState.pending


@pytest.mark.parametrize("username", ["operator", "supervisor", "dispatcher", "admin"])
def test_other_roles_get_403_before_their_body_is_read(api, samples, username):
    row = samples["operator"]
    response = api(username).post(f"/inspections/{row.id}/inspect", json={"bad": [1]})
    error = assert_error(response, 403, "ROLE_NOT_ALLOWED")
    assert error["details"]["role"]


def test_unknown_and_huge_ids(api):
    assert_error(api("inspector").get("/inspections/999999999"), 404, "INSPECTION_NOT_FOUND")
    assert api("inspector").get("/inspections/99999999999999999999999").status_code == 404


def test_scores_for_inspectors_and_supervisors_only(api, samples, db, user):
    inspection.inspect(db, user("inspector"), samples["operator"], checks=full())
    data = api("supervisor").get("/inspections/scores", query_string={"month": "2026-03"})
    data = data.get_json()["data"]
    assert data["month"] == "2026-03"
    by_name = {s["operator"]["username"]: s for s in data["items"]}
    assert (by_name["operator"]["count"], by_name["operator"]["average"]) == (1, 100.0)
    assert (by_name["operator2"]["count"], by_name["operator2"]["pending"]) == (0, 1)
    assert_error(api("operator").get("/inspections/scores"), 403, "ROLE_NOT_ALLOWED")
    bad = api("inspector").get("/inspections/scores", query_string={"month": "2026-00"})
    assert_error(bad, 422, "VALIDATION_FAILED")


def test_an_operators_own_results(api, samples, db, user):
    inspection.inspect(db, user("inspector"), samples["operator2"], checks=full())
    mine = api("operator").get("/inspections/mine", query_string={"month": "2026-03"})
    assert mine.get_json()["data"]["items"] == []
    theirs = api("operator2").get("/inspections/mine", query_string={"month": "2026-03"})
    [item] = theirs.get_json()["data"]["items"]
    assert item["id"] == samples["operator2"].id and item["score"] == 100
    assert_error(api("inspector").get("/inspections/mine"), 403, "ROLE_NOT_ALLOWED")


def full():
    return {i.key: {"points": i.maximum} for i in inspection.CHECKLIST}
