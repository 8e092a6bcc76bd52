"""``/api/v1/classifier/retrains`` (dispatch.api.learning): administrators ask for a
retraining (202, once while one is pending or running); administrators and supervisors read
the runs with their figures; everyone else is refused with ``ROLE_NOT_ALLOWED``."""

import datetime as dt

import pytest

from hotline.models import ModelRetrain


def test_an_administrator_asks_once_and_gets_the_same_run_again(api, db):
    first = api("admin").post("/classifier/retrains")
    assert first.status_code == 202, first.get_json()
    run = first.get_json()["data"]
    assert run["status"] == {"value": "pending", "label": "等待训练"}
    assert run["trigger"] == {"value": "page", "label": "管理员手动"}
    assert run["requested_by"]["username"] == "admin"
    again = api("admin").post("/classifier/retrains", json={})
    assert again.status_code == 202 and again.get_json()["data"]["id"] == run["id"]


def test_a_request_takes_no_fields(api):
    refused = api("admin").post("/classifier/retrains", json={"force": True})
    assert refused.status_code == 422
    assert "force" in refused.get_json()["error"]["details"]


@pytest.mark.parametrize("name", ["supervisor", "dispatcher", "operator", "leader"])
def test_only_administrators_ask(api, name):
    refused = api(name).post("/classifier/retrains")
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "ROLE_NOT_ALLOWED"


def test_the_runs_newest_first_with_their_figures(api, db):
    finished = dt.datetime(2026, 12, 1, 2, 3, tzinfo=dt.UTC)
    db.add(
        ModelRetrain(
            status="kept",
            trigger="schedule",
            requested_at=finished - dt.timedelta(minutes=2),
            started_at=finished - dt.timedelta(minutes=1),
            finished_at=finished,
            active_version="v-active",
            reason="未启用：分类宏平均F1 下降 0.031，超过允许的 0.02",
            figures={
                "candidate": {"category_macro_f1": 0.77, "n_category": 80},
                "active": {"category_macro_f1": 0.801, "n_category": 80},
                "tolerance": 0.02,
            },
        )
    )
    db.flush()
    api("admin").post("/classifier/retrains")

    for name in ("admin", "supervisor"):
        answer = api(name).get("/classifier/retrains?per_page=5")
        assert answer.status_code == 200, answer.get_json()
        data = answer.get_json()["data"]
        assert (data["total"], data["per_page"]) == (2, 5)
        newest, kept = data["items"]
        assert newest["status"]["value"] == "pending"
        assert kept["status"] == {"value": "kept", "label": "未启用（保留为候选版本）"}
        assert kept["finished_at"] == finished.isoformat()
        assert kept["requested_by"] is None and kept["reason"].startswith("未启用")
        assert kept["table"] == [
            {
                "key": "category_macro_f1",
                "name": "分类宏平均F1",
                "candidate": 0.77,
                "active": 0.801,
                "change": -0.031,
                "n": 80,
            }
        ]


@pytest.mark.parametrize("name", ["dispatcher", "operator", "leader"])
def test_others_may_not_read_the_runs(api, name):
    refused = api(name).get("/classifier/retrains")
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "ROLE_NOT_ALLOWED"


def test_a_bad_page_is_refused(api):
    refused = api("admin").get("/classifier/retrains?per_page=1000")
    assert refused.status_code == 422
