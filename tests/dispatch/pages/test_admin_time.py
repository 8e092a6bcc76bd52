"""The administration's time rules pages (dispatch/pages/admin_time.py): 办理时限 (the SLA
policy table) and 工作日历 (the working-day calendar), and the admin home's warning of
calendar years not yet defined. The pages call the operations the JSON API calls
(``dispatch.time_rules``): administrators only, every change audited, a refused change
leaves everything as it was."""

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from dispatch import time_rules
from dispatch.pages import admin_time
from hotline.enums import LimitUnit, Urgency
from hotline.models import AuditLog, CalendarDay, CalendarYear, SlaPolicy
from tests.helpers import FORM_TOKEN

OTHERS = ["supervisor", "dispatcher", "operator", "leader", "cgj"]
NEW_POLICY = {
    "name": "供水投诉加急",
    "category": "0102",
    "request_type": "complaint",
    "urgency": "urgent",
    "sign_amount": "30",
    "sign_unit": "minutes",
    "contact_amount": "2",
    "contact_unit": "hours",
    "finish_amount": "3",
    "finish_unit": "working_days",
    "callback_amount": "1",
    "callback_unit": "working_days",
    "active": "1",
}


@pytest.fixture
def admin(client, web_login):
    assert web_login(client, "admin").status_code == 302
    return client


def token(client, path):
    return FORM_TOKEN.search(client.get(path).get_data(as_text=True)).group(1)


def post(client, path, data, form_path):
    return client.post(path, data={"csrf_token": token(client, form_path), **data})


def policies(db):
    db.expire_all()
    return [
        (p.id, p.name, p.category_id, p.request_type, p.urgency, p.active, p.sign_amount)
        for p in db.scalars(sa.select(SlaPolicy).order_by(SlaPolicy.id))
    ]


def calendar_rows(db):
    db.expire_all()
    days = db.execute(sa.select(CalendarDay.day, CalendarDay.workday, CalendarDay.name)).all()
    years = db.execute(sa.select(CalendarYear.year, CalendarYear.note)).all()
    return sorted(map(tuple, days)), sorted(map(tuple, years))


def audits(db, prefix):
    db.expire_all()
    return db.scalars(
        sa.select(AuditLog).where(AuditLog.action.startswith(prefix)).order_by(AuditLog.id)
    ).all()


def policy_named(db, name):
    return db.scalars(sa.select(SlaPolicy).where(SlaPolicy.name == name)).one()


# -- 办理时限 -----------------------------------------------------------------------------------


def test_the_policy_list_reads_in_words(admin):
    page = admin.get("/admin/time-limits")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "2 小时签收 · 24 小时联系 · 5 个工作日办结 · 1 个工作日回访" in text
    assert "30 分钟签收 · 2 小时联系 · 24 小时办结 · 1 个工作日回访" in text
    # The category by its name, code small beside; enums by their Chinese labels.
    assert re.search(r"供水 <span class=\"code\">0102</span>", text)
    for label in ("全部分类", "全部类型", "咨询", "紧急", "加急", "一般", "启用"):
        assert label in text
    home = admin.get("/admin/").get_data(as_text=True)
    assert "办理时限" in home and "工作日历" in home


def test_the_policy_form_has_a_category_picker_and_chinese_choices(admin, db):
    water = policy_named(db, "水电气热·供水")
    text = admin.get(f"/admin/time-limits/{water.id}").get_data(as_text=True)
    assert 'data-picker="category"' in text
    assert re.search(r'<option value="0102"[^>]*selected[^>]*>供水</option>', text)
    for label in ("签收时限", "响应时限", "办结时限", "回访时限", "分钟", "小时", "工作日"):
        assert label in text
    assert '<option value="complaint">投诉</option>' in text


def test_create_a_policy(admin, db):
    response = post(admin, "/admin/time-limits/new", NEW_POLICY, "/admin/time-limits/new")
    assert response.status_code == 302, response.get_data(as_text=True)
    text = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "已新增时限规则“供水投诉加急”" in text
    assert "30 分钟签收 · 2 小时联系 · 3 个工作日办结 · 1 个工作日回访" in text
    policy = policy_named(db, "供水投诉加急")
    assert (policy.category.code, policy.urgency, policy.finish_unit) == (
        "0102",
        Urgency.urgent,
        LimitUnit.working_days,
    )
    (row,) = audits(db, "sla_policy.")
    assert row.action == "sla_policy.create" and row.payload["before"] is None
    assert row.payload["after"]["name"] == "供水投诉加急"


def test_edit_a_policy_audits_old_and_new(admin, db):
    normal = policy_named(db, "一般诉求")
    path = f"/admin/time-limits/{normal.id}"
    form = {**NEW_POLICY, "name": "一般诉求", "category": "", "request_type": ""}
    form.update(urgency="normal", sign_amount="4", sign_unit="hours")
    response = post(admin, path, form, path)
    assert response.status_code == 302, response.get_data(as_text=True)
    db.expire_all()
    assert (normal.sign_amount, normal.sign_unit) == (4, LimitUnit.hours)
    (row,) = audits(db, "sla_policy.")
    assert row.action == "sla_policy.update"
    assert row.payload["before"]["sign"]["amount"] == 2
    assert row.payload["after"]["sign"]["amount"] == 4


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": ""}, "规则名称"),
        ({"sign_amount": "0"}, "签收时限的数值须为正整数"),
        ({"sign_amount": "两"}, "签收时限的数值须为正整数"),
        ({"contact_unit": "weeks"}, "响应时限的单位取值无效"),
        ({"finish_amount": "999", "finish_unit": "working_days"}, "办结时限不能超过"),
        ({"category": "9999"}, "9999"),
        ({"urgency": "asap"}, "紧急程度"),
        ({"name": "一般诉求"}, "已有同名时限规则"),
        ({"category": "", "request_type": "", "urgency": "normal"}, "适用于相同的事项分类"),
    ],
)
def test_a_bad_policy_changes_nothing(admin, db, change, message):
    before = policies(db)
    form = {**NEW_POLICY, **change}
    response = post(admin, "/admin/time-limits/new", form, "/admin/time-limits/new")
    assert response.status_code in (409, 422)
    text = response.get_data(as_text=True)
    assert message in text
    # What was typed stays in the form.
    assert f'value="{form["name"]}"' in text
    assert policies(db) == before and audits(db, "sla_policy.") == []


def test_deactivate_and_reactivate(admin, db):
    water = policy_named(db, "水电气热·供水")
    path = f"/admin/time-limits/{water.id}/active"
    response = post(admin, path, {"active": "0"}, "/admin/time-limits")
    assert response.status_code == 302
    assert "已停用时限规则“水电气热·供水”" in admin.get("/admin/time-limits").get_data(as_text=True)
    db.expire_all()
    assert water.active is False
    post(admin, path, {"active": "1"}, "/admin/time-limits")
    db.expire_all()
    assert water.active is True
    assert [r.action for r in audits(db, "sla_policy.")] == ["sla_policy.update"] * 2


def test_the_last_catch_all_cannot_be_deactivated(admin, db):
    before = policies(db)
    normal = policy_named(db, "一般诉求")
    response = post(
        admin, f"/admin/time-limits/{normal.id}/active", {"active": "0"}, "/admin/time-limits"
    )
    assert response.status_code == 302
    text = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "每个紧急程度都须保留一条启用中的通用时限规则" in text
    assert policies(db) == before and audits(db, "sla_policy.") == []


def test_an_unknown_policy_is_404(admin):
    assert admin.get("/admin/time-limits/99999").status_code == 404


@pytest.mark.parametrize("username", OTHERS)
def test_policy_pages_are_for_administrators(client, db, web_login, username):
    web_login(client, username)
    water = policy_named(db, "水电气热·供水")
    before = policies(db)
    assert client.get("/admin/time-limits").status_code == 403
    assert client.get(f"/admin/time-limits/{water.id}").status_code == 403
    response = client.post(f"/admin/time-limits/{water.id}/active", data={"active": "0"})
    assert response.status_code in (400, 403)
    assert policies(db) == before


# -- 工作日历 -----------------------------------------------------------------------------------


def cell(text, day):
    match = re.search(rf'<td class="([^"]*)" data-day="{day}" title="([^"]*)"', text)
    assert match, day
    return match.group(1), match.group(2)


def test_the_calendar_shows_holidays_and_adjusted_working_days(admin):
    text = admin.get("/admin/calendar?year=2026").get_data(as_text=True)
    assert text.count('<table class="month"') == 12
    assert cell(text, "2026-10-01")[0] == "day-holiday"
    assert "国庆节" in cell(text, "2026-10-01")[1]
    # Sunday 2026-09-20 is a working day (国庆节调休上班), an ordinary Saturday rests.
    kind, title = cell(text, "2026-09-20")
    assert kind == "day-adjusted" and "调休上班" in title
    assert cell(text, "2026-09-19")[0] == "day-weekend"
    assert cell(text, "2026-09-21")[0] == "day-workday"
    assert "国务院公布" in text


def test_mark_a_holiday_then_remove_it(admin, db):
    page = "/admin/calendar?year=2027"
    form = {"day": "2027-02-08", "kind": "holiday", "name": "春节", "year": "2027"}
    response = post(admin, "/admin/calendar/days", form, page)
    assert response.status_code == 302
    text = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "已将 2027-02-08 设为放假（节假日）：春节" in text
    kind, title = cell(text, "2027-02-08")
    assert kind == "day-holiday entered" and "春节" in title
    assert calendar_rows(db) == ([(dt.date(2027, 2, 8), False, "春节")], [])
    (row,) = audits(db, "calendar.")
    assert row.action == "calendar.day.set"
    assert row.payload == {"old": None, "new": {"workday": False, "name": "春节"}}

    # A Sunday made a working day (调休).
    form = {"day": "2027-02-14", "kind": "workday", "name": "春节调休上班", "year": "2027"}
    post(admin, "/admin/calendar/days", form, page)
    text = admin.get(page).get_data(as_text=True)
    assert cell(text, "2027-02-14")[0] == "day-adjusted entered"

    response = post(admin, "/admin/calendar/days/2027-02-08/delete", {"year": "2027"}, page)
    assert response.status_code == 302
    text = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "已删除 2027-02-08 的录入" in text
    assert cell(text, "2027-02-08")[0] == "day-workday"
    assert [r.action for r in audits(db, "calendar.")] == [
        "calendar.day.set",
        "calendar.day.set",
        "calendar.day.delete",
    ]


def test_clicking_a_day_fills_the_form(admin, db):
    text = admin.get("/admin/calendar?year=2026&day=2026-10-01").get_data(as_text=True)
    assert 'name="day" value="2026-10-01"' in text


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"day": "2027-02-30", "kind": "holiday"}, "日期须为"),
        ({"day": "", "kind": "holiday"}, "日期须为"),
        ({"day": "2027-02-08", "kind": "maybe"}, "请选择这一天放假还是上班"),
        ({"day": "2027-02-08", "kind": "holiday", "name": "节" * 51}, "名称"),
    ],
)
def test_a_bad_day_changes_nothing(admin, db, form, message):
    response = post(admin, "/admin/calendar/days", {"year": "2027", **form}, "/admin/calendar")
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert calendar_rows(db) == ([], []) and audits(db, "calendar.") == []


def test_removing_a_day_without_an_entry_is_refused(admin, db):
    response = post(admin, "/admin/calendar/days/2027-02-08/delete", {}, "/admin/calendar")
    assert response.status_code == 404
    assert "没有 2027-02-08 的录入" in response.get_data(as_text=True)
    assert audits(db, "calendar.") == []


def test_define_and_undefine_a_year(admin, db):
    page = "/admin/calendar?year=2027"
    # Nothing entered yet: refused.
    response = post(admin, "/admin/calendar/years/2027/define", {"note": "国办发明电"}, page)
    assert response.status_code == 409
    assert "尚未录入任何节假日" in response.get_data(as_text=True)
    assert calendar_rows(db) == ([], [])
    post(
        admin,
        "/admin/calendar/days",
        {"day": "2027-01-01", "kind": "holiday", "name": "元旦"},
        page,
    )
    response = post(admin, "/admin/calendar/years/2027/define", {"note": "国办发明电"}, page)
    assert response.status_code == 302
    text = admin.get(page).get_data(as_text=True)
    assert "已确认 2027 年节假日安排录入完整" in text and "撤销" in text
    assert calendar_rows(db)[1] == [(2027, "国办发明电")]
    response = post(admin, "/admin/calendar/years/2027/undefine", {}, page)
    assert response.status_code == 302
    assert calendar_rows(db)[1] == []
    assert [r.action for r in audits(db, "calendar.year")] == [
        "calendar.year.define",
        "calendar.year.undefine",
    ]


def test_an_official_year_cannot_be_defined(admin, db):
    response = post(admin, "/admin/calendar/years/2026/define", {}, "/admin/calendar?year=2026")
    assert response.status_code == 409
    assert "国务院公布" in response.get_data(as_text=True)
    assert calendar_rows(db) == ([], [])


@pytest.mark.parametrize("username", OTHERS)
def test_calendar_pages_are_for_administrators(client, db, web_login, username):
    web_login(client, username)
    assert client.get("/admin/calendar").status_code == 403
    response = client.post("/admin/calendar/days", data={"day": "2027-02-08", "kind": "holiday"})
    assert response.status_code in (400, 403)
    assert calendar_rows(db) == ([], [])


# -- the admin home's warning -----------------------------------------------------------------


def test_years_due(db):
    # Before October only this year is due; 2026 is official (chinese-calendar).
    assert time_rules.years_due(db, dt.date(2026, 9, 30), "Asia/Shanghai") == []
    (due,) = time_rules.years_due(db, dt.date(2026, 10, 1), "Asia/Shanghai")
    assert due["year"] == 2027 and "2027 年节假日安排尚未录入" in due["warning"]
    assert [s["year"] for s in time_rules.years_due(db, dt.date(2027, 3, 1), "Asia/Shanghai")] == [
        2027
    ]


def test_the_admin_home_warns_of_undefined_years(admin, db, monkeypatch):
    monkeypatch.setattr(admin_time, "_today", lambda: dt.date(2027, 10, 8))
    text = admin.get("/admin/").get_data(as_text=True)
    assert '<a href="/admin/calendar?year=2027">2027 年节假日安排尚未录入' in text
    assert '<a href="/admin/calendar?year=2028">2028 年节假日安排尚未录入' in text
    # Entered and declared complete: no longer warned of.
    page = "/admin/calendar?year=2027"
    post(admin, "/admin/calendar/days", {"day": "2027-01-01", "kind": "holiday"}, page)
    text = admin.get("/admin/").get_data(as_text=True)
    assert "2027 年节假日安排尚未确认录入完整（已录入 1 天）" in text
    post(admin, "/admin/calendar/years/2027/define", {}, page)
    text = admin.get("/admin/").get_data(as_text=True)
    assert "?year=2027" not in text and "?year=2028" in text
