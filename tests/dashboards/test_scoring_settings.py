"""The ranking's settings (考核设置): the API (``/api/v1/settings/ranking``) and the admin page
(``/admin/scoring``). Administrators change them, every change is audited old → new, a
refused change leaves everything as it was, the next computation uses the new values, and a
frozen month keeps the settings it was frozen with."""

import re

import pytest
import sqlalchemy as sa

from dashboards import ranking, scoring
from hotline import settings
from hotline.models import AuditLog, RankingSnapshot, Setting
from tests.dashboards.month import AS_OF, CONFIG
from tests.helpers import FORM_TOKEN, assert_error

REFUSED = ["supervisor", "leader", "dispatcher", "operator", "cgj"]
S1 = "U-S-370705001"


def patch(api, username, body):
    caller = api(username)
    return caller.client.patch("/api/v1/settings/ranking", json=body, headers=caller.headers)


def stored(db):
    db.expire_all()
    return dict(db.execute(sa.select(Setting.key, Setting.value)).all())


def audit_rows(db):
    db.expire_all()
    return db.scalars(
        sa.select(AuditLog).where(AuditLog.action == "settings.update").order_by(AuditLog.id)
    ).all()


def composite(data, code=S1, ranking_class="street"):
    rows = {r["unit_code"]: r for r in data["classes"][ranking_class]["rows"]}
    return rows[code]["composite"]


# -- API ------------------------------------------------------------------------------------------


def test_everyone_who_reads_the_ranking_reads_its_settings(api):
    for username in ("admin", "supervisor", "leader"):
        response = api(username).get("/settings/ranking")
        assert response.status_code == 200, response.get_data(as_text=True)
    items = {i["name"]: i for i in response.get_json()["data"]["settings"]}
    assert items["weight_response"] == {
        "name": "weight_response",
        "label": "响应率权重",
        "help": "综合得分中响应率所占权重",
        "value": 10,
        "default": 10,
        "minimum": 0,
        "maximum": 100,
        "decimal": False,
    }
    assert (
        set(items)
        == set(scoring.names())
        == {
            "weight_response",
            "weight_resolution",
            "weight_satisfaction",
            "partly_solved_percent",
            "basically_satisfied_percent",
            "min_sample",
            "list_size",
        }
    )
    assert response.get_json()["data"]["history"] == []
    assert_error(api("operator").get("/settings/ranking"), 403, "ROLE_NOT_ALLOWED")


def test_an_administrator_changes_settings_audited(api, db, user):
    response = patch(api, "admin", {"weight_response": 20, "min_sample": "3"})
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()["data"]
    assert data["changed"] == {"weight_response": 20, "min_sample": 3}
    assert stored(db)["ranking.weight_response"] == {"value": 20}
    assert ranking.Settings.from_settings(db).min_sample == 3
    (row,) = audit_rows(db)
    assert row.payload["changes"] == {
        "ranking.min_sample": [10, 3],
        "ranking.weight_response": [10, 20],
    }
    assert row.actor_id == user("admin").id
    (entry,) = data["history"]
    assert entry["username"] == "admin"
    assert {(c["label"], c["old"], c["new"]) for c in entry["changes"]} == {
        ("最少样本量", 10, 3),
        ("响应率权重", 10, 20),
    }
    # The same values again: nothing to change, nothing audited.
    again = patch(api, "admin", {"weight_response": 20})
    assert again.get_json()["data"]["changed"] == {}
    assert len(audit_rows(db)) == 1


@pytest.mark.parametrize("username", REFUSED)
def test_others_may_not_change_settings(api, db, username):
    assert_error(patch(api, username, {"weight_response": 20}), 403, "ROLE_NOT_ALLOWED")
    assert stored(db) == {} and audit_rows(db) == []


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (
            {"weight_response": 0, "weight_resolution": 0, "weight_satisfaction": 0},
            "RANKING_WEIGHTS_ZERO",
            "weight_response",
        ),
        ({"weight_response": 101}, "SETTINGS_INVALID", "weight_response"),
        ({"weight_response": 20, "min_sample": 0}, "SETTINGS_INVALID", "min_sample"),
        ({"list_size": "五"}, "SETTINGS_INVALID", "list_size"),
        ({"list_size": 2.5}, "SETTINGS_INVALID", "list_size"),
        ({"list_size": True}, "SETTINGS_INVALID", "list_size"),
        ({"weight": 5}, "SETTINGS_INVALID", "weight"),
    ],
)
def test_bad_settings_change_nothing(api, db, body, code, field):
    error = assert_error(patch(api, "admin", body), 422, code)
    assert field in error["details"]
    assert stored(db) == {} and audit_rows(db) == []
    assert ranking.Settings.from_settings(db) == ranking.Settings()


def test_not_json_is_refused(api, db):
    caller = api("admin")
    response = caller.client.patch(
        "/api/v1/settings/ranking", data="weight_response=1", headers=caller.headers
    )
    assert response.status_code == 415
    assert stored(db) == {}


# -- the next computation uses them; a frozen month keeps its own --------------------------------


def test_the_next_computation_uses_the_new_settings(api, db, october):
    before = api("leader").get("/rankings/2026-10").get_json()["data"]
    assert before["settings"]["weight_response"] == 10
    assert patch(api, "admin", {"weight_response": 100, "weight_resolution": 0}).status_code == 200
    after = api("leader").get("/rankings/2026-10").get_json()["data"]
    assert after["settings"]["weight_response"] == 100
    assert after["settings"]["weight_resolution"] == 0
    # 10 dispatched tickets are needed to be ranked, but every row has its composite.
    assert composite(after) != composite(before)


def test_a_frozen_month_keeps_the_settings_it_was_frozen_with(api, db, october, client, web_login):
    assert api("leader").post("/rankings/2026-10/freeze").status_code == 201
    frozen = api("leader").get("/rankings/2026-10").get_json()["data"]
    rates = "/rates?from=2026-10-01&to=2026-10-31&by=unit"
    live_before = api("leader").get(rates).get_json()["data"]
    web_login(client, "leader")
    csv_before = client.get("/reports/ranking/2026-10.csv").get_data(as_text=True)
    page_before = client.get("/reports/ranking?month=2026-10").get_data(as_text=True)

    assert (
        patch(
            api, "admin", {"weight_response": 100, "weight_resolution": 0, "weight_satisfaction": 0}
        ).status_code
        == 200
    )

    published = api("leader").get("/rankings/2026-10").get_json()["data"]
    assert published["settings"] == frozen["settings"]
    assert published["settings"]["weight_response"] == 10
    assert composite(published) == composite(frozen)
    assert client.get("/reports/ranking/2026-10.csv").get_data(as_text=True) == csv_before
    page_after = client.get("/reports/ranking?month=2026-10").get_data(as_text=True)
    assert _scores(page_after) == _scores(page_before) != []
    snapshot = db.scalars(sa.select(RankingSnapshot)).one()
    assert snapshot.settings["weight_response"] == 10
    # Computed live, the same month now weighs the response rate alone.
    live_after = api("leader").get(rates).get_json()["data"]
    assert live_after["settings"]["weight_response"] == 100
    assert _live_composites(live_after) != _live_composites(live_before)


def _scores(html):
    """Every score-like number the page prints (two decimals)."""
    return re.findall(r">\s*(\d+\.\d\d)\s*<", html)


def _live_composites(data):
    return {row["code"]: row["rates"]["composite"] for row in data["rows"]}


def test_freezing_stores_the_settings_in_force(db, october, user):
    settings.update(db, user("admin"), {"ranking.list_size": 2, "ranking.min_sample": 3})
    ranking.freeze(db, None, "2026-10", now=AS_OF, config=CONFIG)
    snapshot = db.scalars(sa.select(RankingSnapshot)).one()
    assert snapshot.settings["list_size"] == 2 and snapshot.settings["min_sample"] == 3
    settings.update(db, user("admin"), {"ranking.list_size": 4})
    assert ranking.load(db, "2026-10", now=AS_OF, config=CONFIG).settings.list_size == 2


# -- the page -------------------------------------------------------------------------------------


def _form(client, **values):
    token = FORM_TOKEN.search(client.get("/admin/scoring").get_data(as_text=True)).group(1)
    defaults = {
        key.removeprefix("ranking."): str(d.default)
        for key, d in settings.DEFINITIONS.items()
        if key.startswith("ranking.")
    }
    return {"csrf_token": token, **defaults, **values}


def test_the_page_shows_values_labels_and_help(client, web_login):
    web_login(client, "admin")
    page = client.get("/admin/scoring")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for label in ("响应率权重", "部分解决折算（%）", "最少样本量", "红黑榜人数", "尚无修改记录"):
        assert label in text
    assert 'name="weight_response" value="10"' in text
    home = client.get("/admin/").get_data(as_text=True)
    assert "考核设置" in home


@pytest.mark.parametrize("username", ["supervisor", "leader", "dispatcher"])
def test_the_page_is_for_administrators(client, web_login, username):
    web_login(client, username)
    assert client.get("/admin/scoring").status_code == 403
    assert client.post("/admin/scoring", data={"weight_response": "20"}).status_code in (400, 403)


def test_saving_on_the_page(client, db, web_login):
    web_login(client, "admin")
    response = client.post("/admin/scoring", data=_form(client, weight_response="25"))
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "考核设置已保存，自下一次计算起生效" in page
    assert "响应率权重：10 → 25" in page
    assert stored(db)["ranking.weight_response"] == {"value": 25}
    assert len(audit_rows(db)) == 1


def test_a_refused_page_change_keeps_what_was_typed(client, db, web_login):
    web_login(client, "admin")
    zero = {"weight_response": "0", "weight_resolution": "0", "weight_satisfaction": "0"}
    response = client.post("/admin/scoring", data=_form(client, min_sample="7", **zero))
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "不能全部为 0" in text
    assert 'name="min_sample" value="7"' in text
    response = client.post("/admin/scoring", data=_form(client, list_size="abc"))
    assert response.status_code == 422
    assert "红黑榜人数须为整数" in response.get_data(as_text=True)
    assert stored(db) == {} and audit_rows(db) == []
