"""The search page (工单查询): every role within its scope, the filters by name, dates
inclusive of both ends, masked phones, pages, and the XLSX download for supervisors and
leaders (audited, read back with openpyxl)."""

import datetime as dt
import io
import re

import openpyxl
import pytest
import sqlalchemy as sa

from dashboards import ticket_export
from dashboards.pages import search
from dispatch import operations
from hotline.enums import Role
from hotline.models import AuditLog, Unit

SEEDED = {
    "operator": Role.operator,
    "dispatcher": Role.dispatcher,
    "dongguan": Role.unit_handler,
    "grid": Role.grid_worker,
    "callback": Role.callback_agent,
    "supervisor": Role.supervisor,
    "leader": Role.leader,
    "kuiwen-leader": Role.leader,
    "admin": Role.admin,
    "inspector": Role.inspector,
}
NUMBER_LINK = re.compile(r'<a href="/tickets/([A-Z0-9]+)">\1</a>')


@pytest.fixture
def city(db, user, make_ticket):
    """Four tickets at known moments (UTC) in two districts, two of them dispatched."""
    op = user("operator")

    def make(when, **values):
        return make_ticket(op, now=dt.datetime(*when, tzinfo=dt.UTC), **values)

    tickets = {
        # 2025-03-01 23:30 in Shanghai, 奎文区东关街道
        "lamp": make(
            (2025, 3, 1, 15, 30),
            category="010103",
            area="370705001",
            title="胜利东街路灯不亮",
            content="搜索测试：胜利东街路灯连续一周不亮",
            requester_phone="13805369001",
        ),
        # 2025-03-02 00:30 in Shanghai, 奎文区大虞街道
        "water": make(
            (2025, 3, 1, 16, 30),
            category="010201",
            area="370705002",
            title="大虞街道停水",
            content="搜索测试：小区停水一整天",
            requester_phone="13805369002",
        ),
        # 2025-03-03 10:00 in Shanghai, 潍城区
        "noise": make(
            (2025, 3, 3, 2, 0),
            category="020302",
            area="370702001",
            title="广场舞噪声",
            content="搜索测试：夜间广场舞噪声扰民",
            address="潍城区城关街道十笏园",
            requester_phone="13805369003",
        ),
        # 2025-03-04 10:00 in Shanghai, no area
        "path": make(
            (2025, 3, 4, 2, 0),
            category="010101",
            title="路面破损",
            content="搜索测试：路面破损，行人易摔倒",
            requester_phone="13805369004",
        ),
    }
    dispatcher = user("dispatcher")
    for name, code in (("lamp", "U-S-370705001"), ("water", "U-WATER")):
        unit = db.scalars(sa.select(Unit).where(Unit.code == code)).one()
        operations.dispatch(db, dispatcher, tickets[name], lead=unit)
    db.flush()
    return {name: t.number for name, t in tickets.items()}


def found(client, city, **params):
    """Names of the fixture's tickets the page lists (its first page), in order."""
    response = client.get("/search", query_string={"q": "搜索测试", **params})
    assert response.status_code == 200, response.get_data(as_text=True)
    page = response.get_data(as_text=True)
    names = {number: name for name, number in city.items()}
    return [names[n] for n in NUMBER_LINK.findall(page) if n in names]


@pytest.mark.parametrize("username", SEEDED)
def test_every_role_has_the_page_in_its_menu(client, web_login, username):
    web_login(client, username)
    page = client.get("/search").get_data(as_text=True)
    assert '<a href="/search" aria-current="page">工单查询</a>' in page
    assert 'name="received_from"' in page and 'type="date"' in page
    assert '<select name="category" data-picker="category">' in page
    assert '<select name="area" data-picker="area">' in page
    assert '<select name="unit" data-picker="unit">' in page


def test_page_lists_newest_first_with_names_and_links(client, web_login, city):
    web_login(client, "operator")
    assert found(client, city) == ["path", "noise", "water", "lamp"]
    page = client.get("/search", query_string={"number": city["water"]}).get_data(as_text=True)
    row = page[page.index(f">{city['water']}</a>") :]
    row = row[: row.index("</tr>")]
    cells = re.findall(r'<td class="text">(.*?)</td>', row)
    assert cells[:7] == [
        "2025-03-02 00:30",
        "大虞街道停水",
        "停水",
        "潍坊市自来水有限公司",  # the unit's name, never its code
        "大虞街道",
        "13805369002",
        "已派单",
    ]
    assert "办结时限" in cells[7]


def test_status_is_chosen_by_its_chinese_label(client, web_login, city):
    web_login(client, "operator")
    page = client.get("/search").get_data(as_text=True)
    assert '<option value="dispatched">已派单</option>' in page
    assert found(client, city, status="dispatched") == ["water", "lamp"]
    page = client.get("/search", query_string={"status": "dispatched"}).get_data(as_text=True)
    assert '<option value="dispatched" selected>已派单</option>' in page


def test_selects_offer_names_and_filter_by_them(client, web_login, city):
    web_login(client, "operator")
    page = client.get("/search").get_data(as_text=True)
    assert '<option value="370705">奎文区</option>' in page
    assert '<option value="370705001">奎文区 › 东关街道</option>' in page
    assert '<option value="U-WATER">' in page
    assert found(client, city, area="370705") == ["water", "lamp"]
    assert found(client, city, area="370702") == ["noise"]
    assert found(client, city, unit="U-WATER") == ["water"]
    assert found(client, city, category="01") == ["path", "water", "lamp"]
    page = client.get("/search", query_string={"area": "370705"}).get_data(as_text=True)
    assert '<option value="370705" selected>奎文区</option>' in page
    assert "区域：奎文区" in page  # the summary names the filter


def test_received_to_includes_its_whole_day(client, web_login, city):
    web_login(client, "operator")
    assert found(client, city, received_to="2025-03-02") == ["water", "lamp"]
    assert found(client, city, received_from="2025-03-02", received_to="2025-03-02") == ["water"]
    both = found(client, city, received_from="2025-03-02", received_to="2025-03-04")
    assert both == ["path", "noise", "water"]


def test_words_number_and_overdue(client, web_login, city):
    web_login(client, "operator")
    assert found(client, city, q="搜索测试 十笏园") == ["noise"]  # the address counts
    assert found(client, city, q="搜索测试 噪声 扰民") == ["noise"]
    assert found(client, city, number=city["lamp"][-6:]) == ["lamp"]
    assert found(client, city, number=city["lamp"].lower()) == ["lamp"]
    assert found(client, city, overdue="1") == []


def test_overdue_tickets_are_marked(client, web_login, city, db):
    from hotline.models import Ticket

    ticket = db.scalars(sa.select(Ticket).where(Ticket.number == city["lamp"])).one()
    ticket.finish_due = dt.datetime(2025, 3, 5, tzinfo=dt.UTC)
    db.flush()
    web_login(client, "operator")
    assert found(client, city, overdue="1") == ["lamp"]
    page = client.get("/search", query_string={"overdue": "1", "q": "搜索测试"})
    text = page.get_data(as_text=True)
    assert '<tr class="overdue">' in text and "dl-overdue" in text and "已超时" in text


def test_district_leader_sees_only_their_district(client, web_login, city):
    web_login(client, "kuiwen-leader")
    assert found(client, city) == ["water", "lamp"]
    page = client.get("/search").get_data(as_text=True)
    assert "奎文区" in page and '<option value="370702">' not in page  # no other district
    # A masked number: leaders see 138****9001, never the whole.
    assert "138****9001" in page and "13805369001" not in page


def test_unit_handler_sees_only_their_units_tickets(client, web_login, city):
    web_login(client, "dongguan")
    assert found(client, city) == ["lamp"]
    web_login(client, "water")
    assert found(client, city) == ["water"]


def test_phone_search_for_roles_that_see_phones(client, web_login, city):
    for username in ("operator", "dispatcher", "callback", "supervisor"):
        web_login(client, username)
        assert found(client, city, phone="138-0536-9003") == ["noise"], username
        assert 'name="phone"' in client.get("/search").get_data(as_text=True)
    for username in ("leader", "admin"):
        web_login(client, username)
        assert 'name="phone"' not in client.get("/search").get_data(as_text=True)
        response = client.get("/search", query_string={"phone": "13805369003"})
        assert response.status_code == 400
        assert "不能按联系电话查询" in response.get_data(as_text=True)


def test_bad_filters_are_named_in_chinese(client, web_login):
    web_login(client, "operator")
    response = client.get(
        "/search", query_string={"received_from": "2025-03-05", "received_to": "2025-03-01"}
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "受理日期（止）：结束日期不能早于开始日期" in page
    assert 'name="received_to" value="2025-03-01" aria-invalid="true"' in page
    response = client.get("/search", query_string={"phone": "12", "page": "x"})
    page = response.get_data(as_text=True)
    assert "联系电话格式不正确" in page and "页码：须为正整数" in page


def test_user_text_is_escaped(client, web_login, db, user, make_ticket):
    make_ticket(user("operator"), title='<script>alert("x")</script>', content="搜索测试 脚本")
    web_login(client, "operator")
    page = client.get("/search", query_string={"q": "脚本"}).get_data(as_text=True)
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "<script>alert" not in page
    page = client.get("/search", query_string={"q": "<b>x"}).get_data(as_text=True)
    assert "关键词：&lt;b&gt;x" in page and "<b>x" not in page


def test_pages_keep_the_filters(client, web_login, db, user, make_ticket, monkeypatch):
    monkeypatch.setattr(search, "PAGE_SIZE", 2)
    op = user("operator")
    numbers = [
        make_ticket(op, content=f"翻页测试 {i}", now=dt.datetime(2025, 6, 1, 8, i, tzinfo=dt.UTC))
        for i in range(5)
    ]
    newest_first = [t.number for t in numbers[::-1]]
    web_login(client, "operator")
    seen = []
    path = "/search?q=翻页测试&received_from=2025-06-01"
    while path:
        page = client.get(path).get_data(as_text=True)
        seen += NUMBER_LINK.findall(page)
        assert "共 5 件" in page
        match = re.search(r'<a href="([^"]+)" rel="next">', page)
        path = match.group(1).replace("&amp;", "&") if match else None
        if path:
            assert "received_from=2025-06-01" in path
    assert seen == newest_first


# -- export -------------------------------------------------------------------------------------


def _sheet(response):
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == ticket_export.XLSX_MIMETYPE
    assert re.match(
        r'attachment; filename="tickets-\d{8}-\d{4}\.xlsx"', response.headers["Content-Disposition"]
    )
    return openpyxl.load_workbook(io.BytesIO(response.data)).active


def test_supervisor_exports_every_page_audited(client, web_login, db, city, monkeypatch):
    monkeypatch.setattr(search, "PAGE_SIZE", 1)
    web_login(client, "supervisor")
    page = client.get("/search", query_string={"q": "搜索测试"}).get_data(as_text=True)
    assert "导出 Excel（4 件）" in page
    ws = _sheet(client.get("/search/export.xlsx", query_string={"q": "搜索测试"}))
    assert ws.cell(1, 1).value == "12345 热线工单查询结果"
    assert "共 4 件" in ws.cell(2, 1).value and "关键词：搜索测试" in ws.cell(2, 1).value
    headers = [c.value for c in ws[3]]
    assert headers[:3] == ["工单编号", "受理时间", "渠道"]
    assert {"标题", "事项分类", "区域", "联系电话", "主办单位", "状态", "办结时限", "超期"} <= set(
        headers
    )
    rows = [dict(zip(headers, (c.value for c in row), strict=True)) for row in ws.iter_rows(4)]
    assert [r["工单编号"] for r in rows] == [city[n] for n in ("path", "noise", "water", "lamp")]
    water = rows[2]
    assert water["受理时间"] == dt.datetime(2025, 3, 2, 0, 30)  # local time
    assert water["主办单位"] == "潍坊市自来水有限公司" and water["事项分类"] == "停水"
    assert water["区域"] == "大虞街道" and water["状态"] == "已派单"
    assert water["联系电话"] == "13805369002"  # supervisors see phones in full
    assert rows[0]["区域"] is None
    entry = db.scalars(sa.select(AuditLog).where(AuditLog.action == "tickets.export")).one()
    assert entry.actor_id is not None
    assert entry.payload == {"filters": {"q": "搜索测试"}, "rows": 4}


def test_district_leader_exports_their_district_masked(client, web_login, city):
    web_login(client, "kuiwen-leader")
    ws = _sheet(client.get("/search/export.xlsx", query_string={"q": "搜索测试"}))
    headers = [c.value for c in ws[3]]
    rows = [dict(zip(headers, (c.value for c in row), strict=True)) for row in ws.iter_rows(4)]
    assert [r["工单编号"] for r in rows] == [city["water"], city["lamp"]]
    assert [r["联系电话"] for r in rows] == ["138****9002", "138****9001"]


@pytest.mark.parametrize("username", ["operator", "dispatcher", "dongguan", "callback", "admin"])
def test_other_roles_may_not_export(client, web_login, city, username):
    web_login(client, username)
    assert "导出 Excel" not in client.get("/search").get_data(as_text=True)
    assert client.get("/search/export.xlsx").status_code == 403


def test_export_beyond_the_cap_is_refused(client, web_login, db, city, monkeypatch):
    monkeypatch.setattr(ticket_export, "EXPORT_MAX_ROWS", 3)
    web_login(client, "leader")
    page = client.get("/search", query_string={"q": "搜索测试"}).get_data(as_text=True)
    assert "不能一次导出" in page and "导出 Excel" not in page
    response = client.get("/search/export.xlsx", query_string={"q": "搜索测试"})
    assert response.status_code == 400
    assert "超过一次导出的上限 3 件" in response.get_data(as_text=True)
    assert db.scalar(sa.select(sa.func.count()).where(AuditLog.action == "tickets.export")) == 0
    ws = _sheet(client.get("/search/export.xlsx", query_string={"q": "搜索测试", "area": "370705"}))
    assert ws.max_row == 3 + 2


def test_grid_worker_finds_their_grids_tickets_and_opens_the_phone_page(
    client, web_login, user, make_ticket, city
):
    mine = make_ticket(user("operator"), area="370705001001001", content="搜索测试：网格内井盖缺失")
    web_login(client, "grid")
    page = client.get("/search", query_string={"q": "搜索测试"}).get_data(as_text=True)
    assert f'<a href="/grid/tickets/{mine.number}">{mine.number}</a>' in page
    assert "共 1 件" in page  # nothing of the city outside their grids
