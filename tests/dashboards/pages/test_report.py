"""The monthly report pages: roles, the ranking page, freezing, drill-down, downloads
and rates for any period. The data is the fixture month (tests/dashboards/conftest.py);
pages compute as of the real clock, which is after October 2026."""

import csv
import io
import json
import re

import openpyxl
import pytest
import sqlalchemy as sa

from dashboards import ranking
from dispatch import operations as ops
from hotline.db import utcnow
from hotline.enums import ExemptionKind, Role
from hotline.models import Area, RankingSnapshot, User
from tests.dashboards.month import AS_OF, CONFIG, UNHAPPY, local
from tests.helpers import FORM_TOKEN, PASSWORD


@pytest.fixture
def district_leader(db):
    """A leader bound to 潍城区 (370702)."""
    district = db.scalars(sa.select(Area).where(Area.code == "370702")).one()
    leader = User(
        username="weicheng-leader", name="潍城区领导", role=Role.leader, district_id=district.id
    )
    leader.set_password(PASSWORD)
    db.add(leader)
    db.flush()
    return leader


def test_pages_need_login_and_a_role(client, web_login):
    response = client.get("/reports/ranking?month=2026-10")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    web_login(client, "operator")
    assert client.get("/reports/ranking?month=2026-10").status_code == 403
    assert client.get("/reports/ranking/2026-10.csv").status_code == 403


def test_ranking_page(client, db, october, web_login):
    ops.exempt(
        db,
        october.staff.supervisor,
        october.tickets[24],
        kind=ExemptionKind.other,
        reason='<script>alert("x")</script>重复',
    )
    web_login(client, "supervisor")
    page = client.get("/reports/ranking?month=2026-10").get_data(as_text=True)
    assert "2026年10月 12345 热线考核排名" in page
    # The month picker speaks Chinese.
    assert '<option value="2026-10" selected>2026年10月</option>' in page
    # What the counts are by: the responsible unit, not the place.
    assert "本排名按<strong>承办单位</strong>统计" in page
    assert "实时数据" in page and "冻结发布本月排名" not in page  # a supervisor cannot freeze
    assert "84.50" in page  # 东关街道
    assert "<svg" in page and "综合得分" in page
    assert "东关街道办事处" in page and "样本量不足（派单 2 件，少于 10 件）" in page
    # User text is escaped everywhere.
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;重复" in page
    assert "要求拆除邻居合法建筑，属不合理诉求" in page
    assert "响应率" in page and "签收与联系诉求人均在时限内的工单" in page  # definitions


def test_the_ranking_opens_on_this_month_when_last_month_is_empty(client, web_login):
    web_login(client, "leader")
    page = client.get("/reports/ranking").get_data(as_text=True)
    now = utcnow()
    current = ranking.month_of(now)
    last = ranking.previous_month(current)
    label, last_label = ranking.month_label(current), ranking.month_label(last)
    assert f"{label} 12345 热线考核排名" in page
    assert f"上月（{last_label}）没有工单，默认显示本月（{label}）截至目前的实时排名" in page
    assert f'<option value="{current}" selected>{label}（本月）</option>' in page
    assert f'<option value="{last}">{last_label}</option>' in page


def test_the_ranking_opens_on_last_month_when_it_has_data(client, db, october, web_login):
    last = ranking.previous_month(ranking.month_of(utcnow()))
    start, end = ranking.month_bounds(last)
    october.tickets[1].received_at = start + (end - start) / 2
    db.flush()
    web_login(client, "leader")
    page = client.get("/reports/ranking").get_data(as_text=True)
    label = ranking.month_label(last)
    assert f"{label} 12345 热线考核排名" in page
    assert f"默认显示上月（{label}）的排名" in page
    assert f'<option value="{last}" selected>{label}</option>' in page


def test_bad_month_gives_a_clear_page(client, web_login):
    web_login(client, "leader")
    response = client.get("/reports/ranking?month=2026-13")
    assert response.status_code == 422
    assert "月份格式应为 YYYY-MM" in response.get_data(as_text=True)


def test_mayors_office_freezes_the_month(client, db, october, web_login):
    web_login(client, "leader")
    page = client.get("/reports/ranking?month=2026-10").get_data(as_text=True)
    assert "冻结发布本月排名" in page
    token = FORM_TOKEN.search(page).group(1)
    response = client.post("/reports/ranking/2026-10/freeze", data={"csrf_token": token})
    assert response.status_code == 302
    snapshot = db.scalars(sa.select(RankingSnapshot)).one()
    assert snapshot.month == "2026-10"
    page = client.get("/reports/ranking?month=2026-10").get_data(as_text=True)
    assert "已冻结发布" in page
    again = client.post("/reports/ranking/2026-10/freeze", data={"csrf_token": token})
    assert again.status_code == 409
    assert "已冻结发布，不能重复冻结" in again.get_data(as_text=True)


def test_freezing_needs_the_csrf_token_and_the_right_role(
    client, db, district_leader, form_token, web_login
):
    web_login(client, "leader")
    response = client.post("/reports/ranking/2026-10/freeze", data={})
    assert response.status_code == 400
    assert "缺少安全校验" in response.get_data(as_text=True)
    client.post("/logout", data={"csrf_token": form_token(client, "/reports/ranking")})
    web_login(client, "weicheng-leader")
    token = form_token(client, "/reports/ranking?month=2026-10")
    response = client.post("/reports/ranking/2026-10/freeze", data={"csrf_token": token})
    assert response.status_code == 403
    assert db.scalar(sa.select(sa.func.count()).select_from(RankingSnapshot)) == 0


def test_drill_down_lists_the_tickets_behind_a_count(client, october, web_login):
    web_login(client, "supervisor")
    path = "/reports/ranking/2026-10/units/U-S-370705001?class=street"
    page = client.get(path).get_data(as_text=True)
    code = '<small class="code">U-S-370705001</small>'
    assert f"东关街道办事处 {code}（街道乡镇）2026年10月 工单明细" in page
    # Each ticket's lead unit by name, its code small beside it.
    assert page.count(f"东关街道办事处 {code}</td>") >= 6
    for no in (1, 2, 3, 4, 5, 6):
        number = october.tickets[no].number
        assert f'<a href="/tickets/{number}">{number}</a>' in page
    assert "13805360001" not in page  # no personal data
    overdue = client.get(path + "&fact=overdue").get_data(as_text=True)
    assert "“超期”的工单（1 件）" in overdue
    assert october.tickets[5].number in overdue and october.tickets[1].number not in overdue
    # A unit's returns include tickets it no longer leads.
    returned = client.get(
        "/reports/ranking/2026-10/units/U-JTJ?class=department&fact=returned"
    ).get_data(as_text=True)
    assert october.tickets[15].number in returned
    district = client.get("/reports/ranking/2026-10/units/U-D-370705?class=district")
    assert october.tickets[16].number in district.get_data(as_text=True)
    assert october.tickets[11].number not in district.get_data(as_text=True)  # 潍城区's
    # 审核退回 and 吹哨报到 lead to their tickets too (summonses whoever leads the ticket).
    zjj = "/reports/ranking/2026-10/units/U-ZJJ?class=department"
    assert "fact=review_returned" in client.get(zjj).get_data(as_text=True)
    summoned = client.get(zjj + "&fact=summoned").get_data(as_text=True)
    assert "“吹哨被召”的工单（2 件）" in summoned
    assert october.tickets[1].number in summoned and october.tickets[11].number in summoned
    assert "<td>不及时</td>" in summoned and "<td>及时</td>" in summoned
    reviewed = client.get(
        "/reports/ranking/2026-10/units/U-CGJ?class=department&fact=review_returned"
    ).get_data(as_text=True)
    assert "“审核退回”的工单（1 件）" in reviewed and october.tickets[17].number in reviewed


def test_drill_down_of_a_frozen_month_shows_published_and_live_counts(
    client, db, october, web_login
):
    ranking.freeze(db, None, "2026-10", now=AS_OF, config=CONFIG)
    october.call(october.tickets[31], UNHAPPY, at=local(11, 3))  # a late callback for 供电
    web_login(client, "supervisor")
    page = client.get("/reports/ranking/2026-10/units/U-POWER?class=utility")
    text = page.get_data(as_text=True)
    assert '<th class="num">发布时</th>' in text and '<th class="num">当前实时</th>' in text
    # 有效回访: 1 when published, 2 now.
    assert re.search(
        r"<td class=\"text\">有效回访</td><td class=\"num\">1</td><td class=\"num\">2</td>", text
    )


def test_exempted_tickets_link_where_the_reader_may_open_them(
    client, db, october, district_leader, web_login
):
    kuiwen = october.tickets[1]  # 东关街道, 奎文区
    ops.exempt(db, october.staff.supervisor, kuiwen, kind=ExemptionKind.other, reason="测试豁免")
    link = f'<a href="/tickets/{kuiwen.number}">{kuiwen.number}</a>'
    web_login(client, "supervisor")
    assert link in client.get("/reports/ranking?month=2026-10").get_data(as_text=True)
    web_login(client, "weicheng-leader")  # 潍城区's leader may not open a 奎文区 ticket
    page = client.get("/reports/ranking?month=2026-10").get_data(as_text=True)
    assert f'<td class="text">{kuiwen.number}</td>' in page and link not in page


def test_drill_down_refusals(client, october, district_leader, web_login):
    web_login(client, "weicheng-leader")
    own = client.get("/reports/ranking/2026-10/units/U-S-370702001?class=street")
    assert own.status_code == 200
    assert october.tickets[11].number in own.get_data(as_text=True)
    assert client.get("/reports/ranking/2026-10/units/U-S-370705001").status_code == 403
    assert client.get("/reports/ranking/2026-10/units/U-CGJ?class=department").status_code == 403
    assert client.get("/reports/ranking/2026-10/units/U-NOPE").status_code == 404
    bad = client.get("/reports/ranking/2026-10/units/U-S-370702001?fact=nonsense")
    assert bad.status_code == 422


def test_downloads(client, october, web_login):
    web_login(client, "leader")
    response = client.get("/reports/ranking/2026-10.xlsx")
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    assert 'filename="ranking-2026-10-live.xlsx"' in response.headers["Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    assert "区县" in book.sheetnames
    response = client.get("/reports/ranking/2026-10.csv")
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert any("东关街道办事处" in row for row in rows)
    data = json.loads(client.get("/reports/ranking/2026-10.json").data)
    assert data["month"] == "2026-10"
    assert client.get("/reports/ranking/2026-10.pdf").status_code == 404


def test_rates_for_any_period(client, october, web_login):
    web_login(client, "supervisor")
    page = client.get("/reports/rates?from=2026-10-12&to=2026-10-12&by=unit")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "三率统计 2026年10月12日至2026年10月12日" in text
    assert '东关街道办事处 <small class="code">U-S-370705001</small>' in text
    assert "按承办单位统计" in text
    empty = client.get("/reports/rates?from=2026-09-01&to=2026-09-30")
    assert "该时段没有派单工单" in empty.get_data(as_text=True)
    districts = client.get("/reports/rates?from=2026-10-01&to=2026-10-31&by=district")
    assert '奎文区 <small class="code">370705</small>' in districts.get_data(as_text=True)
    assert "按工单所在地统计" in districts.get_data(as_text=True)
    refused = client.get("/reports/rates?from=2026-10-31&to=2026-10-01")
    assert refused.status_code == 422
    assert "结束日期不能早于开始日期" in refused.get_data(as_text=True)
    assert client.get("/reports/rates?from=yesterday").status_code == 422
    assert client.get("/reports/rates?by=planet").status_code == 422


# -- the same for programs (/api/v1) -----------------------------------------------------------
