"""The ranking and rates for programs (dashboards/api/rankings.py, ``/api/v1/rankings``,
``/api/v1/rates``) and a ticket search as XLSX (``/api/v1/tickets/export.xlsx``) on the
fixture month (tests/dashboards/conftest.py)."""

import io

import openpyxl
import sqlalchemy as sa

from dashboards import ticket_export
from hotline.models import AuditLog, RankingSnapshot
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


def _sheet_rows(response):
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == ticket_export.XLSX_MIMETYPE
    ws = openpyxl.load_workbook(io.BytesIO(response.data)).active
    headers = [c.value for c in ws[3]]
    return [dict(zip(headers, (c.value for c in row), strict=True)) for row in ws.iter_rows(4)]


def test_ticket_export_api_holds_what_the_list_finds(api, db, october):
    query = {"received_from": "2026-10-01", "received_to": "2026-10-31", "area": "370705"}
    listed = api("leader").get("/tickets", query_string={**query, "per_page": 200})
    numbers = [item["number"] for item in listed.get_json()["data"]["items"]]
    assert numbers  # the fixture month lies in 奎文区
    rows = _sheet_rows(api("leader").get("/tickets/export.xlsx", query_string=query))
    assert [r["工单编号"] for r in rows] == numbers  # every page, newest first
    assert all("****" in (r["联系电话"] or "****") for r in rows)  # a leader's are masked
    entry = db.scalars(sa.select(AuditLog).where(AuditLog.action == "tickets.export")).one()
    assert entry.payload == {"filters": query, "rows": len(numbers)}


def test_ticket_export_api_refusals(api, db, october, monkeypatch):
    for username in ("operator", "dispatcher", "callback", "admin"):
        response = api(username).get("/tickets/export.xlsx")
        assert_error(response, 403, "EXPORT_FORBIDDEN")
    bad = api("supervisor").get("/tickets/export.xlsx", query_string={"received_to": "soon"})
    assert set(assert_error(bad, 422, "VALIDATION_FAILED")["details"]) == {"received_to"}
    monkeypatch.setattr(ticket_export, "EXPORT_MAX_ROWS", 5)
    error = assert_error(api("supervisor").get("/tickets/export.xlsx"), 422, "EXPORT_TOO_LARGE")
    assert "超过一次导出的上限 5 件" in error["message"] and error["details"]["max_rows"] == 5
    assert db.scalar(sa.select(sa.func.count()).where(AuditLog.action == "tickets.export")) == 0
    # The export's path is not taken for a ticket number.
    assert_error(api("supervisor").get("/tickets/export.xls"), 404, "TICKET_NOT_FOUND")


def test_board_map_api_serves_the_city_its_districts(api):
    response = api("leader").get("/boards/city/map")
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()["data"]
    assert data["type"] == "FeatureCollection" and data["level"] == "district"
    names = {f["id"]: f["properties"]["name"] for f in data["features"]}
    assert names["370705"] == "奎文区" and names["370702"] == "潍城区"
    assert all(len(code) == 6 for code in names)
    assert {f["geometry"]["type"] for f in data["features"]} <= {"Polygon", "MultiPolygon"}
    # The seeded grids are 150 m squares sampling the city: the outlines are inferred.
    assert data["approximate"] is True
    for username in ("dispatcher", "supervisor", "admin"):
        assert api(username).get("/boards/city/map").status_code == 200


def test_board_map_api_gives_a_district_leader_only_their_streets(api):
    response = api("kuiwen-leader").get("/boards/district/370705/map")
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data["level"] == "street"
    codes = [f["id"] for f in data["features"]]
    assert len(codes) == 10 and all(c.startswith("370705") and len(c) == 9 for c in codes)
    assert "东关街道" in [f["properties"]["name"] for f in data["features"]]
    assert_error(api("kuiwen-leader").get("/boards/city/map"), 403, "BOARD_FORBIDDEN")
    assert_error(api("kuiwen-leader").get("/boards/district/370702/map"), 403, "BOARD_FORBIDDEN")
    assert_error(api("operator").get("/boards/city/map"), 403, "BOARD_FORBIDDEN")
    assert_error(api("leader").get("/boards/district/379999/map"), 404, "DISTRICT_NOT_FOUND")
