"""The ranking and rates for programs (dashboards/api.py, ``/api/v1/rankings``, ``/api/v1/rates``)
on the fixture month (tests/dashboards/conftest.py)."""

import sqlalchemy as sa

from hotline.models import RankingSnapshot
from tests.helpers import assert_error


def test_ranking_api(api, db, october):
    response = api("leader").get("/rankings/2026-10")
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()["data"]
    assert data["month"] == "2026-10" and data["frozen"] is False
    assert_error(api("operator").get("/rankings/2026-10"), 403, "RANKING_FORBIDDEN")
    assert_error(api("leader").get("/rankings/2026-1"), 422, "VALIDATION_FAILED")


def test_freeze_api(api, db, october):
    refused = api("supervisor").post("/rankings/2026-10/freeze")
    assert_error(refused, 403, "RANKING_FREEZE_FORBIDDEN")
    response = api("leader").post("/rankings/2026-10/freeze")
    assert response.status_code == 201
    assert response.get_json()["data"]["frozen"] is True
    assert db.scalar(sa.select(sa.func.count()).select_from(RankingSnapshot)) == 1
    assert_error(api("leader").post("/rankings/2026-10/freeze"), 409, "RANKING_ALREADY_FROZEN")
    assert_error(api("admin").post("/rankings/2099-01/freeze"), 409, "RANKING_MONTH_NOT_OVER")


def test_rates_api(api, october):
    response = api("supervisor").get("/rates?from=2026-10-01&to=2026-10-31&by=street")
    assert response.status_code == 200
    rows = {row["code"]: row for row in response.get_json()["data"]["rows"]}
    # Every fixture ticket lies in 东关街道's area (370705001), whoever handled it.
    assert rows["370705001"]["counts"]["dispatched"] == 30
    assert rows["370705001"]["name"] == "东关街道"
    assert_error(api("supervisor").get("/rates?by=planet"), 422, "VALIDATION_FAILED")
    assert_error(api("dispatcher").get("/rates"), 403, "RANKING_FORBIDDEN")
