"""The 民情分析 report's page (dashboards/pages/analysis.py), JSON API
(dashboards/api/analysis.py) and XLSX file: roles and scopes, the same figures on both,
publishing with an edited summary, the workbook's sheets."""

import io
import json
import re

import openpyxl
import pytest
import sqlalchemy as sa

from dashboards import analysis, exports
from hotline.models import AnalysisReport, AuditLog
from tests.dashboards.month import STREETLIGHT
from tests.dashboards.test_analysis import at
from tests.helpers import FORM_TOKEN, assert_error

QUARTER = "/analysis/quarterly/2026-Q3"
PAGE = "/reports/analysis?kind=quarterly&key=2026-Q3"


@pytest.fixture(autouse=True)
def _fresh_keywords():
    """Each test reads its own database's keywords."""
    analysis.clear_keyword_cache()
    yield
    analysis.clear_keyword_cache()


@pytest.fixture
def quarter(make_ticket, user):
    """Three tickets in Q3 2026 (two in 奎文区, one in 潍城区; the last quarter that has
    ended by the real clock) and one in Q2, one caller twice."""
    operator = user("operator")

    def receive(moment, area, **values):
        return make_ticket(operator, now=moment, category=STREETLIGHT, area=area, **values)

    receive(at(7, 5), "370705001001", requester_phone="13905368888")
    receive(at(8, 5), "370705001001", requester_phone="13905368888")
    receive(at(9, 5), "370702001001")
    receive(at(5, 5), "370705001001")


def test_api_report_roles_and_scope(api, quarter):
    response = api("leader").get(QUARTER)
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()["data"]
    assert data["key"] == "2026-Q3" and data["totals"]["received"] == 3
    assert data["scope"] == {"code": None, "name": "全市"}
    assert data["repeat_callers"]["top"][0]["phone"] == "139****8888"
    district = api("supervisor").get(QUARTER + "?district=370702").get_json()["data"]
    assert district["totals"]["received"] == 1 and district["scope"]["name"] == "潍城区"
    # A district leader reads their own district's report, whatever they ask for.
    own = api("kuiwen-leader").get(QUARTER).get_json()["data"]
    assert own["scope"]["code"] == "370705" and own["totals"]["received"] == 2
    other = api("kuiwen-leader").get(QUARTER + "?district=370702").get_json()["data"]
    assert other["scope"]["code"] == "370705"
    assert_error(api("dispatcher").get(QUARTER), 403, "ANALYSIS_FORBIDDEN")
    assert_error(api("leader").get("/analysis/quarterly/2026-Q9"), 422, "ANALYSIS_PERIOD_INVALID")
    assert_error(api("leader").get("/analysis/yearly/2026"), 422, "ANALYSIS_KIND_INVALID")
    assert_error(api("leader").get(QUARTER + "?district=37"), 422, "VALIDATION_FAILED")
    assert_error(api("leader").get(QUARTER + "?district=999999"), 404, "DISTRICT_NOT_FOUND")
    # Without a key: the last period of that kind that has ended.
    latest = api("admin").get("/analysis/monthly").get_json()["data"]
    assert latest["kind"] == "monthly" and latest["published"] is None


def test_api_publish(api, db, quarter):
    assert_error(api("admin").post(QUARTER + "/publish"), 403, "ANALYSIS_PUBLISH_FORBIDDEN")
    assert_error(api("kuiwen-leader").post(QUARTER + "/publish"), 403, "ANALYSIS_PUBLISH_FORBIDDEN")
    assert_error(
        api("supervisor").post(QUARTER + "/publish", json={"summary": 5}), 422, "VALIDATION_FAILED"
    )
    response = api("supervisor").post(QUARTER + "/publish", json={"summary": "编辑后的摘要"})
    assert response.status_code == 201, response.get_data(as_text=True)
    published = response.get_json()["data"]
    assert published["summary"] == "编辑后的摘要" and published["published"]["by"] == "郑国栋"
    again = api("leader").post(QUARTER + "/publish")
    assert_error(again, 409, "ANALYSIS_ALREADY_PUBLISHED")
    assert again.get_json()["error"]["message"] == "2026年第三季度季报已发布，不能重复发布"
    # The frozen figures are what GET serves from now on, identical to the answer.
    frozen = api("leader").get(QUARTER).get_json()["data"]
    assert frozen == published
    assert db.scalar(sa.select(sa.func.count()).select_from(AnalysisReport)) == 1


def test_page_shows_the_report_and_publishes(client, db, quarter, web_login):
    web_login(client, "leader")
    response = client.get(PAGE)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "全市12345热线民情分析季报（2026年第三季度）" in page
    # The picker speaks Chinese; no code to type.
    assert '<option value="2026-Q3" selected>2026年第三季度</option>' in page
    assert "2026年第三季度，全市12345热线共受理群众诉求3件" in page
    assert "139****8888" in page and "13905368888" not in page
    assert 'id="chart-trend"' in page and "echarts.min.js" in page
    assert ">民情分析</a>" in page  # the menu entry
    assert "发布并冻结本期报告" in page
    token = FORM_TOKEN.search(page).group(1)
    posted = client.post(
        "/reports/analysis/quarterly/2026-Q3/publish",
        data={"csrf_token": token, "summary": "<b>季度</b>摘要"},
    )
    assert posted.status_code == 302
    published = client.get(PAGE).get_data(as_text=True)
    assert "&lt;b&gt;季度&lt;/b&gt;摘要" in published  # escaped
    assert "已发布" in published and "发布并冻结本期报告" not in published
    assert db.scalars(sa.select(AuditLog).where(AuditLog.action == "analysis.publish")).one()
    twice = client.post(
        "/reports/analysis/quarterly/2026-Q3/publish", data={"csrf_token": token, "summary": "x"}
    )
    assert twice.status_code == 409
    assert "2026年第三季度季报已发布，不能重复发布" in twice.get_data(as_text=True)


BAD_KEYS = [
    ("quarterly", "9999-Q4"),
    ("monthly", "9999-12"),
    ("weekly", "9999-W52"),
    ("daily", "9999-12-31"),
    ("quarterly", "2026-Q5"),
    ("weekly", "2026-W54"),
    ("monthly", "2026-13"),
    ("daily", "2026-02-30"),
]


@pytest.mark.parametrize(("kind", "key"), BAD_KEYS)
def test_bad_period_keys_are_refused_not_500(client, api, web_login, kind, key):
    assert_error(api("leader").get(f"/analysis/{kind}/{key}"), 422, "ANALYSIS_PERIOD_INVALID")
    assert_error(
        api("leader").get(f"/analysis/{kind}/{key}/report.xlsx"), 422, "ANALYSIS_PERIOD_INVALID"
    )
    web_login(client, "leader")
    page = client.get(f"/reports/analysis?kind={kind}&key={key}")
    assert page.status_code == 422
    assert "期次格式应为" in page.get_data(as_text=True)
    assert client.get(f"/reports/analysis/{kind}/{key}.xlsx").status_code == 422


def test_a_refused_publish_keeps_the_typed_summary(client, db, quarter, web_login):
    """A refused publish re-renders the report with the Chinese message and the summary as
    typed; nothing of it is stored."""
    web_login(client, "supervisor")
    token = FORM_TOKEN.search(client.get(PAGE).get_data(as_text=True)).group(1)
    url = "/reports/analysis/quarterly/2026-Q3/publish"
    long = "很长的摘要" * (analysis.SUMMARY_MAX // 5) + "尾"
    too_long = client.post(url, data={"csrf_token": token, "summary": long})
    assert too_long.status_code == 422
    page = too_long.get_data(as_text=True)
    assert f"摘要不能超过 {analysis.SUMMARY_MAX} 字" in page
    assert 'data-testid="publish-error"' in page
    editor = re.search(r'data-testid="summary-editor">(.*?)</textarea>', page, re.S).group(1)
    assert editor == long  # still editable, as typed
    assert "全市12345热线民情分析季报（2026年第三季度）" in page  # the report, not a bare error
    assert db.scalar(sa.select(sa.func.count()).select_from(AnalysisReport)) == 0
    assert not db.scalars(sa.select(AuditLog).where(AuditLog.action == "analysis.publish")).all()
    # A period not over yet: no form to publish it, the typed text shown to copy.
    early = client.post(
        "/reports/analysis/quarterly/2100-Q4/publish",
        data={"csrf_token": token, "summary": "<i>未到期</i>的摘要"},
    )
    assert early.status_code == 409
    page = early.get_data(as_text=True)
    assert "2100年第四季度季报的统计期尚未结束，不能发布" in page
    assert "&lt;i&gt;未到期&lt;/i&gt;的摘要" in page and "发布并冻结本期报告" not in page
    # Published meanwhile by someone else: the message, the typed text, the published report.
    assert client.post(url, data={"csrf_token": token, "summary": "第一份"}).status_code == 302
    again = client.post(url, data={"csrf_token": token, "summary": "第二份摘要"})
    assert again.status_code == 409
    page = again.get_data(as_text=True)
    assert "2026年第三季度季报已发布，不能重复发布" in page
    typed = re.search(r'data-testid="summary-typed">(.*?)</textarea>', page, re.S).group(1)
    assert typed == "第二份摘要"
    assert 'data-testid="summary">第一份</p>' in page


def test_the_page_offers_publishing_by_the_publish_rule(client, db, quarter, web_login, user):
    """The form is offered exactly when ``analysis.may_publish`` says so (the rule publish
    follows)."""
    web_login(client, "supervisor")
    assert "发布并冻结本期报告" in client.get(PAGE).get_data(as_text=True)
    assert "发布并冻结本期报告" not in client.get(PAGE + "&district=370705").get_data(as_text=True)
    current = client.get("/reports/analysis?kind=daily&key=2100-12-31").get_data(as_text=True)
    assert "发布并冻结本期报告" not in current
    now = at(12, 5, 10)
    q3 = analysis.parse_period("quarterly", "2026-Q3", "Asia/Shanghai")
    assert analysis.may_publish(db, user("supervisor"), q3, now=now)
    assert not analysis.may_publish(db, user("supervisor"), q3, scope="370705", now=now)
    assert not analysis.may_publish(db, user("admin"), q3, now=now)
    assert not analysis.may_publish(db, user("supervisor"), q3, now=at(9, 30, 10))


def test_page_roles(client, quarter, web_login):
    web_login(client, "dispatcher")
    assert client.get(PAGE).status_code == 403
    assert client.get("/reports/analysis/quarterly/2026-Q3.xlsx").status_code == 403


def test_district_leader_page_is_their_district_live(client, quarter, web_login):
    web_login(client, "kuiwen-leader")
    page = client.get(PAGE + "&district=370702").get_data(as_text=True)
    assert "奎文区12345热线民情分析季报" in page
    assert "区县报告为实时数据" in page
    assert "发布并冻结本期报告" not in page
    assert 'data-testid="scope-picker"' not in page
    refused = client.post(
        "/reports/analysis/quarterly/2026-Q3/publish",
        data={"csrf_token": FORM_TOKEN.search(page).group(1)},
    )
    assert refused.status_code == 403


def test_page_and_api_without_login(client):
    response = client.get(PAGE)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_xlsx_has_every_part(client, api, quarter, web_login):
    web_login(client, "supervisor")
    response = client.get("/reports/analysis/quarterly/2026-Q3.xlsx")
    assert response.status_code == 200
    assert "analysis-quarterly-2026-Q3-city-live.xlsx" in response.headers["Content-Disposition"]
    workbook = openpyxl.load_workbook(io.BytesIO(response.data))
    assert tuple(workbook.sheetnames) == exports.ANALYSIS_SHEETS
    overview = {
        row[0].value: row[1].value for row in workbook["概况"].iter_rows(min_row=7) if row[0].value
    }
    assert overview["受理量"] == 3 and overview["上季度受理量"] == 1
    assert workbook["概况"]["A4"].value.startswith("2026年第三季度，全市12345热线共受理群众诉求3件")
    trend = workbook["趋势"]
    assert trend["A5"].value == "7月1日" and trend["B5"].value == 0
    callers = [c.value for c in workbook["重复诉求"]["A"] if c.value]
    assert "139****8888" in callers
    values = " ".join(str(c.value) for ws in workbook for row in ws.iter_rows() for c in row)
    assert "13905368888" not in values
    via_api = api("supervisor").get(QUARTER + "/report.xlsx")
    assert via_api.status_code == 200
    assert openpyxl.load_workbook(io.BytesIO(via_api.data)).sheetnames == workbook.sheetnames


def test_the_page_and_its_xlsx_read_the_keywords_once(client, quarter, web_login, monkeypatch):
    reads = []
    read = analysis._read_keywords
    monkeypatch.setattr(analysis, "_read_keywords", lambda *a: reads.append(a) or read(*a))
    web_login(client, "supervisor")
    page = client.get(PAGE)
    assert page.status_code == 200 and len(reads) == 1
    assert client.get("/reports/analysis/quarterly/2026-Q3.xlsx").status_code == 200
    assert len(reads) == 1


def test_report_dict_is_json_round_trip(db, quarter):
    """What is stored on publishing is what the page and API read back."""
    report = analysis.compute(
        db,
        analysis.parse_period("quarterly", "2026-Q3", "Asia/Shanghai"),
        as_of=at(10, 5),
    )
    assert json.loads(json.dumps(report)) == report
    assert re.match(r"^\d{4}-\d{2}-\d{2}T", report["as_of"])


def test_a_longer_previous_month_keeps_its_last_day(db, client, web_login, make_ticket, user):
    """November (30 days) against October (31): 31 October is in the chart and the file."""
    make_ticket(user("operator"), now=at(10, 31, 12), category=STREETLIGHT, area="370705001001")
    web_login(client, "leader")
    page = client.get("/reports/analysis?kind=monthly&key=2026-11").get_data(as_text=True)
    charts = json.loads(re.search(r'id="analysis-charts">(.*?)</script>', page).group(1))
    assert charts["trend"]["labels"][-1] == "第31天" and charts["trend"]["previous"][-1] == 1
    workbook = openpyxl.load_workbook(
        io.BytesIO(client.get("/reports/analysis/monthly/2026-11.xlsx").data)
    )
    trend = workbook["趋势"]
    assert [trend["A35"].value, trend["B35"].value, trend["C35"].value] == ["第31天", None, 1]
