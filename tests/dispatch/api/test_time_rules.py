"""Administrators' tables: the working-day calendar and the SLA policy table.

Everyone who plans or supervises dispatch reads them, only administrators write them, every
write is audited, and every refused write leaves the database exactly as it was.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from dispatch import calendar as work_calendar
from dispatch import sla
from hotline.enums import RequestType, TicketStatus, Urgency
from hotline.models import AuditLog, CalendarDay, CalendarYear, SlaPolicy, User
from tests.helpers import assert_error, has_chinese

TZ = "Asia/Shanghai"
WRITERS_REFUSED = ["dispatcher", "supervisor", "operator", "cgj", "leader"]
READERS = ["admin", "supervisor", "dispatcher"]
READERS_REFUSED = ["operator", "cgj", "leader", "callback"]
LIMITS = {
    "sign": {"amount": 30, "unit": "minutes"},
    "contact": {"amount": 2, "unit": "hours"},
    "finish": {"amount": 3, "unit": "working_days"},
    "callback": {"amount": 1, "unit": "working_days"},
}
POLICY = {
    "name": "供水投诉加急",
    "category": "0102",
    "request_type": "complaint",
    "urgency": "urgent",
    **LIMITS,
}


# -- helpers ----------------------------------------------------------------------------------


def send(api, username, method, path, json=None):
    """``method`` on ``/api/v1{path}`` as ``username`` (the Api fixture has GET/POST only)."""
    caller = api(username)
    return caller.client.open(
        "/api/v1" + path, method=method.upper(), json=json, headers=caller.headers
    )


def data(response, status=200):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["success"] is True
    return body["data"]


def audit_rows(db, prefix):
    db.expire_all()
    rows = db.execute(
        sa.select(AuditLog.action, AuditLog.target, AuditLog.payload, User.username)
        .outerjoin(User, AuditLog.actor_id == User.id)
        .where(AuditLog.action.startswith(prefix))
        .order_by(AuditLog.id)
    ).all()
    return [tuple(r) for r in rows]


def calendar_rows(db):
    db.expire_all()
    days = db.execute(sa.select(CalendarDay.day, CalendarDay.workday, CalendarDay.name)).all()
    years = db.execute(sa.select(CalendarYear.year, CalendarYear.note)).all()
    return sorted(map(tuple, days)), sorted(map(tuple, years))


def policy_rows(db):
    db.expire_all()
    return [
        (
            p.id,
            p.name,
            p.category_id,
            p.request_type,
            p.urgency,
            *(getattr(p, f"{c}_{k}") for c in sla.CLOCKS for k in ("amount", "unit")),
            p.active,
        )
        for p in db.scalars(sa.select(SlaPolicy).order_by(SlaPolicy.id))
    ]


def policy_id(db, name):
    return db.scalars(sa.select(SlaPolicy.id).where(SlaPolicy.name == name)).one()


def this_year():
    return dt.datetime.now(ZoneInfo(TZ)).year


def by_year(summaries):
    return {s["year"]: s for s in summaries}


@pytest.fixture
def guessed_ticket(db, user, make_ticket):
    def make(years, status=None):
        ticket = make_ticket(user("operator"))
        ticket.calendar_guessed_years = years
        if status is not None:
            ticket.status = status
        db.flush()
        return ticket

    return make


# -- GET /calendar/years ----------------------------------------------------------------------


@pytest.mark.parametrize("username", READERS)
def test_years_window_and_sources(api, username):
    summaries = data(api(username).get("/calendar/years"))
    now = this_year()
    assert [s["year"] for s in summaries] == list(range(now - 1, now + 2))
    first, last = work_calendar.official_years()
    for s in summaries:
        assert set(s) == {
            "year",
            "source",
            "source_label",
            "note",
            "defined_at",
            "entries",
            "guessed_open_tickets",
            "warning",
        }
        assert has_chinese(s["source_label"])
        if first <= s["year"] <= last:
            assert s["source"] == "official"
            assert s["warning"] is None
        else:
            assert s["source"] == "undefined"
            assert s["warning"] == (
                f"{s['year']} 年节假日安排尚未录入：该年的工作日按周一至周五推算，"
                "涉及 0 张在办工单的时限"
            )


def test_years_count_open_tickets_with_guessed_deadlines(api, db, user, guessed_ticket):
    guessed_ticket("2027")
    guessed_ticket("2027,2028")
    guessed_ticket("2027", status=TicketStatus.closed)  # final: not counted
    guessed_ticket("2027", status=TicketStatus.merged)
    guessed_ticket("2031")
    guessed_ticket("")
    summaries = by_year(data(api("admin").get("/calendar/years")))
    # The window reaches the latest year an open ticket's deadline was guessed in.
    assert max(summaries) == 2031
    assert min(summaries) == min(this_year() - 1, 2027)
    assert summaries[2027]["guessed_open_tickets"] == 2
    assert summaries[2027]["warning"] == (
        "2027 年节假日安排尚未录入：该年的工作日按周一至周五推算，涉及 2 张在办工单的时限"
    )
    assert summaries[2028]["guessed_open_tickets"] == 1
    assert summaries[2031]["guessed_open_tickets"] == 1
    assert summaries[2030]["guessed_open_tickets"] == 0
    assert summaries[2030]["warning"].endswith("涉及 0 张在办工单的时限")


def test_years_partly_entered_and_defined(api, db, user, guessed_ticket):
    guessed_ticket("2027")
    send(api, "admin", "put", "/calendar/days/2027-01-01", {"workday": False, "name": "元旦"})
    partly = by_year(data(api("admin").get("/calendar/years")))[2027]
    assert partly["source"] == "undefined"
    assert partly["entries"] == 1
    assert partly["warning"] == (
        "2027 年节假日安排尚未确认录入完整（已录入 1 天）：其余日期按周一至周五推算，"
        "涉及 1 张在办工单的时限"
    )
    data(send(api, "admin", "put", "/calendar/years/2027", {"note": "国办发明电〔2026〕1号"}), 201)
    defined = by_year(data(api("dispatcher").get("/calendar/years")))[2027]
    assert defined["source"] == "table"
    assert defined["source_label"] == "管理员录入"
    assert defined["note"] == "国办发明电〔2026〕1号"
    assert defined["warning"] is None
    # The ticket's deadline was computed before the year was entered: still counted.
    assert defined["guessed_open_tickets"] == 1


# -- GET /calendar/days -----------------------------------------------------------------------


def test_days_of_an_official_year(api):
    result = data(api("supervisor").get("/calendar/days?year=2026"))
    assert result["year"] == 2026
    assert result["source"] == "official"
    assert result["warning"] is None
    days = {d["date"]: d for d in result["days"]}
    assert [d["date"] for d in result["days"]] == sorted(days)
    assert days["2026-10-01"] == {
        "date": "2026-10-01",
        "weekday": 4,
        "weekday_label": "周四",
        "workday": False,
        "name": "国庆节",
        "source": "official",
        "source_label": "国务院公布（chinese-calendar 内置）",
        "official": None,
        "updated_by": None,
        "updated_at": None,
    }
    assert days["2026-10-10"]["workday"] is True
    assert days["2026-10-10"]["name"] == "国庆节调休上班"
    assert days["2026-10-10"]["weekday_label"] == "周六"
    assert days["2026-09-20"]["workday"] is True
    assert [days[f"2026-09-{d}"]["name"] for d in (25, 26, 27)] == ["中秋"] * 3
    assert days["2026-02-15"]["name"] == "春节"
    # Holidays and weekend working days only: no ordinary day or ordinary weekend.
    assert "2026-10-08" not in days and "2026-11-21" not in days
    assert len(days) == 33 + 6  # 33 days off, 6 swapped working days
    assert {d["source"] for d in days.values()} == {"official"}


def test_days_table_entries_override_official_days(api, db):
    send(api, "admin", "put", "/calendar/days/2026-10-08", {"workday": False, "name": "临时休假"})
    send(api, "admin", "put", "/calendar/days/2026-10-10", {"workday": False})
    result = data(api("dispatcher").get("/calendar/days", query_string={"year": "2026"}))
    days = {d["date"]: d for d in result["days"]}
    assert len(result["days"]) == len(days) == 33 + 6 + 1
    assert result["entries"] == 2
    assert days["2026-10-08"]["source"] == "table"
    assert days["2026-10-08"]["source_label"] == "管理员录入"
    assert days["2026-10-08"]["workday"] is False
    assert days["2026-10-08"]["official"] == {"workday": True, "name": None}
    assert days["2026-10-08"]["updated_by"] == "admin"
    assert days["2026-10-10"]["workday"] is False
    assert days["2026-10-10"]["name"] is None
    assert days["2026-10-10"]["official"] == {"workday": True, "name": "国庆节"}
    assert days["2026-10-01"]["source"] == "official"


def test_days_of_an_undefined_year(api):
    empty = data(api("admin").get("/calendar/days?year=2027"))
    assert empty["days"] == []
    assert empty["source"] == "undefined"
    assert empty["warning"].startswith("2027 年节假日安排尚未录入")
    send(api, "admin", "put", "/calendar/days/2027-01-01", {"workday": False, "name": "元旦"})
    result = data(api("admin").get("/calendar/days?year=2027"))
    assert [(d["date"], d["workday"], d["name"], d["source"]) for d in result["days"]] == [
        ("2027-01-01", False, "元旦", "table")
    ]
    assert result["days"][0]["official"] is None
    assert result["entries"] == 1


def test_days_default_to_this_year(api):
    assert data(api("admin").get("/calendar/days"))["year"] == this_year()


@pytest.mark.parametrize("year", ["", "abc", "27", "1999", "2101", "２０２７", "2027.0", "-2027"])
def test_days_bad_year(api, year):
    error = assert_error(
        api("admin").get("/calendar/days", query_string={"year": year}), 422, "VALIDATION_FAILED"
    )
    assert error["details"] == {"year": "须为 2000–2100 之间的四位数字"}


# -- PUT / DELETE /calendar/days/<date> -------------------------------------------------------


def test_set_day_creates_then_updates(api, db):
    created = data(
        send(api, "admin", "put", "/calendar/days/2027-01-01", {"workday": False, "name": "元旦"}),
        201,
    )
    assert created["date"] == "2027-01-01"
    assert created["workday"] is False
    assert created["name"] == "元旦"
    assert created["source"] == "table"
    assert created["updated_by"] == "admin"
    updated = data(
        send(api, "admin", "put", "/calendar/days/2027-01-01", {"workday": True, "name": " 上班 "})
    )
    assert (updated["workday"], updated["name"]) == (True, "上班")
    assert calendar_rows(db) == ([(dt.date(2027, 1, 1), True, "上班")], [])
    admin_id = db.scalars(sa.select(User.id).where(User.username == "admin")).one()
    assert db.get(CalendarDay, dt.date(2027, 1, 1)).updated_by_id == admin_id
    assert audit_rows(db, "calendar.") == [
        (
            "calendar.day.set",
            "2027-01-01",
            {"old": None, "new": {"workday": False, "name": "元旦"}},
            "admin",
        ),
        (
            "calendar.day.set",
            "2027-01-01",
            {"old": {"workday": False, "name": "元旦"}, "new": {"workday": True, "name": "上班"}},
            "admin",
        ),
    ]


@pytest.mark.parametrize(
    ("day", "body", "field", "message"),
    [
        ("2027-02-30", {"workday": False}, "day", "日期格式应为 YYYY-MM-DD"),
        ("20270101", {"workday": False}, "day", "日期格式应为 YYYY-MM-DD"),
        ("2027-1-1", {"workday": False}, "day", "日期格式应为 YYYY-MM-DD"),
        ("1999-12-31", {"workday": False}, "day", "日期格式应为 YYYY-MM-DD"),
        ("2101-01-01", {"workday": False}, "day", "日期格式应为 YYYY-MM-DD"),
        ("2027-01-01", {}, "workday", "请填写是否工作日"),
        ("2027-01-01", {"workday": None}, "workday", "请填写是否工作日"),
        ("2027-01-01", {"workday": "false"}, "workday", "是否工作日须为 true 或 false"),
        ("2027-01-01", {"workday": 0}, "workday", "是否工作日须为 true 或 false"),
        (
            "2027-01-01",
            {"workday": False, "name": "节" * 51},
            "name",
            "名称不能超过 50 字（现为 51 字）",
        ),
        ("2027-01-01", {"workday": False, "name": "元\n旦"}, "name", "名称不能换行"),
        ("2027-01-01", {"workday": False, "note": "x"}, "note", "未知字段“note”"),
    ],
)
def test_set_day_validation(api, db, day, body, field, message):
    error = assert_error(
        send(api, "admin", "put", f"/calendar/days/{day}", body), 422, "VALIDATION_FAILED"
    )
    assert error["details"][field] == message
    assert calendar_rows(db) == ([], [])
    assert audit_rows(db, "calendar.") == []


def test_set_day_needs_json(api, db):
    caller = api("admin")
    response = caller.client.put(
        "/api/v1/calendar/days/2027-01-01", data="workday=0", headers=caller.headers
    )
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert calendar_rows(db) == ([], [])


def test_delete_day(api, db):
    error = assert_error(
        send(api, "admin", "delete", "/calendar/days/2027-01-01"), 404, "CALENDAR_DAY_NOT_FOUND"
    )
    assert "2027-01-01" in error["message"]
    send(api, "admin", "put", "/calendar/days/2027-01-01", {"workday": False, "name": "元旦"})
    result = data(send(api, "admin", "delete", "/calendar/days/2027-01-01"))
    assert result == {"date": "2027-01-01", "deleted": {"workday": False, "name": "元旦"}}
    assert calendar_rows(db) == ([], [])
    assert audit_rows(db, "calendar.day.delete") == [
        (
            "calendar.day.delete",
            "2027-01-01",
            {"old": {"workday": False, "name": "元旦"}},
            "admin",
        )
    ]
    assert_error(
        send(api, "admin", "delete", "/calendar/days/2027-13-01"), 422, "VALIDATION_FAILED"
    )


# -- PUT / DELETE /calendar/years/<year> ------------------------------------------------------


def test_define_and_undefine_year(api, db):
    error = assert_error(
        send(api, "admin", "put", "/calendar/years/2027", {}), 409, "CALENDAR_YEAR_EMPTY"
    )
    assert "2027" in error["message"]
    send(api, "admin", "put", "/calendar/days/2027-01-01", {"workday": False, "name": "元旦"})
    defined = data(send(api, "admin", "put", "/calendar/years/2027", {"note": "国办发明电"}), 201)
    assert (defined["year"], defined["source"], defined["note"]) == (2027, "table", "国办发明电")
    assert defined["warning"] is None
    again = data(send(api, "admin", "put", "/calendar/years/2027", {}))
    assert again["note"] is None
    assert calendar_rows(db)[1] == [(2027, None)]

    undefined = data(send(api, "admin", "delete", "/calendar/years/2027"))
    assert undefined["source"] == "undefined"
    assert undefined["warning"].startswith("2027 年节假日安排尚未确认录入完整")
    assert calendar_rows(db)[1] == []
    assert_error(
        send(api, "admin", "delete", "/calendar/years/2027"), 404, "CALENDAR_YEAR_NOT_FOUND"
    )
    assert [row[:3] for row in audit_rows(db, "calendar.year.")] == [
        ("calendar.year.define", "2027", {"old": None, "new": {"note": "国办发明电"}}),
        ("calendar.year.define", "2027", {"old": {"note": "国办发明电"}, "new": {"note": None}}),
        ("calendar.year.undefine", "2027", {"old": {"note": None}}),
    ]


def test_official_year_cannot_be_defined(api, db):
    error = assert_error(
        send(api, "admin", "put", "/calendar/years/2026", {"note": "x"}),
        409,
        "CALENDAR_YEAR_OFFICIAL",
    )
    assert "2026" in error["message"]
    assert calendar_rows(db) == ([], [])
    assert audit_rows(db, "calendar.") == []


@pytest.mark.parametrize("year", ["1999", "2101", "abcd", "27", "２０２７"])
def test_define_year_bad_year(api, db, year):
    assert_error(send(api, "admin", "put", f"/calendar/years/{year}", {}), 422, "VALIDATION_FAILED")
    assert_error(send(api, "admin", "delete", f"/calendar/years/{year}"), 422, "VALIDATION_FAILED")
    assert calendar_rows(db) == ([], [])


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"note": "依" * 201}, "note", "依据说明不能超过 200 字（现为 201 字）"),
        ({"note": 5}, "note", "依据说明须为文本"),
        ({"complete": True}, "complete", "未知字段“complete”"),
    ],
)
def test_define_year_validation(api, db, body, field, message):
    send(api, "admin", "put", "/calendar/days/2027-01-01", {"workday": False})
    error = assert_error(
        send(api, "admin", "put", "/calendar/years/2027", body), 422, "VALIDATION_FAILED"
    )
    assert error["details"] == {field: message}
    assert calendar_rows(db)[1] == []
    assert audit_rows(db, "calendar.year.") == []


# -- calendar: roles and the process cache ----------------------------------------------------


@pytest.mark.parametrize("username", READERS_REFUSED)
def test_calendar_read_refused(api, username):
    for path in ("/calendar/years", "/calendar/days?year=2026"):
        error = assert_error(api(username).get(path), 403, "ROLE_NOT_ALLOWED")
        assert "工作日历" in error["message"]


@pytest.mark.parametrize("username", WRITERS_REFUSED)
def test_calendar_write_refused(api, db, username):
    send(api, "admin", "put", "/calendar/days/2027-01-01", {"workday": False})
    before = calendar_rows(db)
    audits = audit_rows(db, "calendar.")
    for method, path, body in [
        ("put", "/calendar/days/2027-01-02", {"workday": False}),
        ("delete", "/calendar/days/2027-01-01", None),
        ("put", "/calendar/years/2027", {}),
        ("delete", "/calendar/years/2027", None),
    ]:
        error = assert_error(send(api, username, method, path, body), 403, "ROLE_NOT_ALLOWED")
        assert error["message"] == "只有系统管理员可以修改工作日历"
    assert calendar_rows(db) == before
    assert audit_rows(db, "calendar.") == audits


def test_calendar_needs_login(client):
    assert_error(client.get("/api/v1/calendar/years"), 401, "AUTH_REQUIRED")
    assert_error(client.get("/api/v1/calendar/days"), 401, "AUTH_REQUIRED")
    response = client.put("/api/v1/calendar/days/2027-01-01", json={"workday": False})
    assert_error(response, 401, "AUTH_REQUIRED")
    assert_error(client.delete("/api/v1/calendar/days/2027-01-01"), 401, "AUTH_REQUIRED")
    assert_error(client.put("/api/v1/calendar/years/2027", json={}), 401, "AUTH_REQUIRED")
    assert_error(client.delete("/api/v1/calendar/years/2027"), 401, "AUTH_REQUIRED")


def test_calendar_edit_is_used_at_once(api, db):
    monday = dt.date(2026, 11, 23)
    friday = dt.datetime(2026, 11, 20, 10, 0, tzinfo=ZoneInfo(TZ))
    cached = work_calendar.load(db, TZ)
    assert cached.is_workday(monday) == (True, False)
    send(api, "admin", "put", f"/calendar/days/{monday}", {"workday": False, "name": "临时休假"})
    calendar = work_calendar.load(db, TZ)
    assert calendar is not cached
    assert calendar.is_workday(monday) == (False, False)
    # Fri → Mon made a holiday → Tue is the first working day.
    assert calendar.add_working_days(friday, 1)[0] == friday + dt.timedelta(days=4)

    send(api, "admin", "put", "/calendar/days/2027-01-01", {"workday": False})
    send(api, "admin", "put", "/calendar/years/2027", {})
    assert work_calendar.load(db, TZ).year_source(2027) == "table"
    send(api, "admin", "delete", "/calendar/years/2027")
    assert work_calendar.load(db, TZ).year_source(2027) == "undefined"
    send(api, "admin", "delete", f"/calendar/days/{monday}")
    assert work_calendar.load(db, TZ).is_workday(monday) == (True, False)


# -- GET /sla-policies ------------------------------------------------------------------------


@pytest.mark.parametrize("username", READERS)
def test_list_policies(api, db, username):
    db.get(SlaPolicy, policy_id(db, "水电气热·供热")).active = False
    db.flush()
    policies = data(api(username).get("/sla-policies"))
    assert [p["id"] for p in policies] == sorted(p["id"] for p in policies)
    by_name = {p["name"]: p for p in policies}
    assert len(by_name) == 8
    assert by_name["水电气热·供水"] == {
        "id": policy_id(db, "水电气热·供水"),
        "name": "水电气热·供水",
        "category": {"code": "0102", "name": by_name["水电气热·供水"]["category"]["name"]},
        "request_type": None,
        "urgency": {"value": "normal", "label": "一般"},
        "sign": {"amount": 30, "unit": "minutes", "unit_label": "分钟"},
        "contact": {"amount": 2, "unit": "hours", "unit_label": "小时"},
        "finish": {"amount": 24, "unit": "hours", "unit_label": "小时"},
        "callback": {"amount": 1, "unit": "working_days", "unit_label": "工作日"},
        "active": True,
    }
    assert has_chinese(by_name["水电气热·供水"]["category"]["name"])
    assert by_name["咨询类诉求"]["request_type"] == {"value": "consult", "label": "咨询"}
    assert by_name["一般诉求"]["category"] is None
    assert by_name["水电气热·供热"]["active"] is False


def test_get_policy(api, db):
    pid = policy_id(db, "一般诉求")
    policy = data(api("dispatcher").get(f"/sla-policies/{pid}"))
    assert policy["name"] == "一般诉求"
    assert policy["finish"] == {"amount": 5, "unit": "working_days", "unit_label": "工作日"}
    assert_error(api("admin").get("/sla-policies/999999"), 404, "SLA_POLICY_NOT_FOUND")


@pytest.mark.parametrize("username", READERS_REFUSED)
def test_policies_read_refused(api, db, username):
    pid = policy_id(db, "一般诉求")
    for path in ("/sla-policies", f"/sla-policies/{pid}"):
        error = assert_error(api(username).get(path), 403, "ROLE_NOT_ALLOWED")
        assert "时限规则" in error["message"]


# -- POST /sla-policies -----------------------------------------------------------------------


def test_create_policy(api, db, user, make_ticket):
    response = api("admin").post("/sla-policies", json=POLICY)
    created = data(response, 201)
    assert response.headers["Location"] == f"/api/v1/sla-policies/{created['id']}"
    assert created["name"] == "供水投诉加急"
    assert created["category"]["code"] == "0102"
    assert created["request_type"] == {"value": "complaint", "label": "投诉"}
    assert created["urgency"] == {"value": "urgent", "label": "加急"}
    assert created["finish"] == {"amount": 3, "unit": "working_days", "unit_label": "工作日"}
    assert created["active"] is True
    assert data(api("supervisor").get(f"/sla-policies/{created['id']}")) == created
    assert audit_rows(db, "sla_policy.") == [
        ("sla_policy.create", str(created["id"]), {"before": None, "after": created}, "admin")
    ]
    # Clocks started from now on use it.
    ticket = make_ticket(
        user("operator"),
        category="010201",
        request_type=RequestType.complaint,
        urgency=Urgency.urgent,
    )
    assert sla.find_policy(db, ticket).id == created["id"]


def test_create_minimal_policy(api):
    body = {"name": "建议类", "request_type": "suggestion", **LIMITS}
    created = data(api("admin").post("/sla-policies", json=body), 201)
    assert (created["category"], created["urgency"], created["active"]) == (None, None, True)


def test_create_policy_largest_limits(api):
    body = {
        **POLICY,
        "sign": {"amount": 10080, "unit": "minutes"},
        "contact": {"amount": 720, "unit": "hours"},
        "finish": {"amount": 60, "unit": "working_days"},
    }
    created = data(api("admin").post("/sla-policies", json=body), 201)
    assert created["sign"]["amount"] == 10080


UNITS = "minutes（分钟）、hours（小时）、working_days（工作日）"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"name": None}, "name", "请填写规则名称"),
        ({"name": "  "}, "name", "请填写规则名称"),
        ({"name": "名" * 101}, "name", "规则名称不能超过 100 字（现为 101 字）"),
        ({"category": "9999"}, "category", "事项分类不存在：9999"),
        ({"category": "01/02"}, "category", "事项分类编码格式不正确"),
        ({"category": 102}, "category", "事项分类编码格式不正确"),
        (
            {"request_type": "question"},
            "request_type",
            "诉求类型取值无效，可选：consult（咨询）、help（求助）、complaint（投诉）、"
            "report（举报）、suggestion（建议）、praise（表扬）",
        ),
        (
            {"urgency": "high"},
            "urgency",
            "紧急程度取值无效，可选：emergency（紧急）、urgent（加急）、normal（一般）",
        ),
        ({"sign": None}, "sign", "请填写签收时限"),
        ({"contact": 2}, "contact", '响应时限须为对象，如 {"amount": 2, "unit": "hours"}'),
        ({"finish": {"amount": 5}}, "finish.unit", f"办结时限的单位取值无效，可选：{UNITS}"),
        (
            {"finish": {"amount": 5, "unit": "days"}},
            "finish.unit",
            f"办结时限的单位取值无效，可选：{UNITS}",
        ),
        ({"sign": {"amount": 0, "unit": "hours"}}, "sign.amount", "签收时限的数值须为正整数"),
        ({"sign": {"amount": -3, "unit": "hours"}}, "sign.amount", "签收时限的数值须为正整数"),
        ({"sign": {"amount": 1.5, "unit": "hours"}}, "sign.amount", "签收时限的数值须为正整数"),
        ({"sign": {"amount": "2", "unit": "hours"}}, "sign.amount", "签收时限的数值须为正整数"),
        ({"sign": {"amount": True, "unit": "hours"}}, "sign.amount", "签收时限的数值须为正整数"),
        ({"sign": {"unit": "hours"}}, "sign.amount", "签收时限的数值须为正整数"),
        (
            {"sign": {"amount": 10081, "unit": "minutes"}},
            "sign.amount",
            "签收时限不能超过 10080 分钟（现为 10081）",
        ),
        (
            {"contact": {"amount": 721, "unit": "hours"}},
            "contact.amount",
            "响应时限不能超过 720 小时（现为 721）",
        ),
        (
            {"callback": {"amount": 61, "unit": "working_days"}},
            "callback.amount",
            "回访时限不能超过 60 工作日（现为 61）",
        ),
        (
            {"callback": {"amount": 1, "unit": "hours", "note": "x"}},
            "callback",
            "回访时限含未知字段“note”",
        ),
        ({"active": "yes"}, "active", "是否启用须为 true 或 false"),
        ({"priority": 1}, "priority", "未知字段“priority”"),
    ],
)
def test_create_policy_validation(api, db, change, field, message):
    before = policy_rows(db)
    body = {**POLICY, **change}
    error = assert_error(api("admin").post("/sla-policies", json=body), 422, "VALIDATION_FAILED")
    assert error["details"][field] == message
    assert error["message"] == f"请求内容有误：{next(iter(error['details'].values()))}"
    assert policy_rows(db) == before
    assert audit_rows(db, "sla_policy.") == []


def test_create_policy_reports_every_field(api, db):
    body = {"name": "", "sign": {"amount": 0, "unit": "weeks"}, "extra": 1}
    error = assert_error(api("admin").post("/sla-policies", json=body), 422, "VALIDATION_FAILED")
    assert set(error["details"]) == {
        "name",
        "sign.amount",
        "sign.unit",
        "contact",
        "finish",
        "callback",
        "extra",
    }


def test_create_duplicate_match_key(api, db):
    before = policy_rows(db)
    body = {**LIMITS, "name": "又一条一般诉求", "urgency": "normal"}
    error = assert_error(api("admin").post("/sla-policies", json=body), 409, "SLA_POLICY_DUPLICATE")
    assert "一般诉求" in error["message"]
    assert error["details"] == {"policy": policy_id(db, "一般诉求")}
    assert policy_rows(db) == before
    # The same match key is fine while inactive…
    inactive = data(api("admin").post("/sla-policies", json={**body, "active": False}), 201)
    assert inactive["active"] is False
    # …but cannot be switched on beside the other.
    assert_error(
        send(api, "admin", "patch", f"/sla-policies/{inactive['id']}", {"active": True}),
        409,
        "SLA_POLICY_DUPLICATE",
    )


def test_create_duplicate_name(api, db):
    error = assert_error(
        api("admin").post("/sla-policies", json={**POLICY, "name": "一般诉求"}),
        409,
        "SLA_POLICY_NAME_TAKEN",
    )
    assert "一般诉求" in error["message"]


# -- PATCH /sla-policies/<id> -----------------------------------------------------------------


def test_update_policy(api, db):
    pid = policy_id(db, "一般诉求")
    before = data(api("admin").get(f"/sla-policies/{pid}"))
    after = data(
        send(
            api,
            "admin",
            "patch",
            f"/sla-policies/{pid}",
            {"finish": {"amount": 7, "unit": "working_days"}, "name": "一般诉求（7 个工作日）"},
        )
    )
    assert after == {
        **before,
        "name": "一般诉求（7 个工作日）",
        "finish": {"amount": 7, "unit": "working_days", "unit_label": "工作日"},
    }
    stored = db.get(SlaPolicy, pid)
    assert (stored.finish_amount, stored.name) == (7, "一般诉求（7 个工作日）")
    assert audit_rows(db, "sla_policy.") == [
        ("sla_policy.update", str(pid), {"before": before, "after": after}, "admin")
    ]


def test_update_match_columns(api, db):
    pid = policy_id(db, "咨询类诉求")
    after = data(send(api, "admin", "patch", f"/sla-policies/{pid}", {"urgency": None}))
    assert after["urgency"] is None
    after = data(send(api, "admin", "patch", f"/sla-policies/{pid}", {"category": "01"}))
    assert after["category"]["code"] == "01"
    assert db.get(SlaPolicy, pid).category.code == "01"
    after = data(send(api, "admin", "patch", f"/sla-policies/{pid}", {"category": None}))
    assert after["category"] is None


def test_update_into_a_duplicate(api, db):
    pid = policy_id(db, "水电气热·供水")
    before = policy_rows(db)
    error = assert_error(
        send(api, "admin", "patch", f"/sla-policies/{pid}", {"category": "0103"}),
        409,
        "SLA_POLICY_DUPLICATE",
    )
    assert "水电气热·供电" in error["message"]
    assert policy_rows(db) == before
    assert audit_rows(db, "sla_policy.") == []


def test_update_into_a_taken_name(api, db):
    pid = policy_id(db, "水电气热·供水")
    assert_error(
        send(api, "admin", "patch", f"/sla-policies/{pid}", {"name": "一般诉求"}),
        409,
        "SLA_POLICY_NAME_TAKEN",
    )
    # Its own name is not "taken".
    data(send(api, "admin", "patch", f"/sla-policies/{pid}", {"name": "水电气热·供水"}))


@pytest.mark.parametrize(
    ("name", "change", "lost"),
    [
        ("一般诉求", {"active": False}, ["normal"]),
        ("紧急诉求", {"category": "0102"}, ["emergency"]),
        ("加急诉求", {"request_type": "help"}, ["urgent"]),
        ("一般诉求", {"request_type": "help"}, ["normal"]),
    ],
)
def test_last_default_policy_stays(api, db, name, change, lost):
    pid = policy_id(db, name)
    before = policy_rows(db)
    error = assert_error(
        send(api, "admin", "patch", f"/sla-policies/{pid}", change),
        409,
        "SLA_POLICY_LAST_DEFAULT",
    )
    assert error["details"] == {"urgencies": lost}
    assert Urgency(lost[0]).label in error["message"]
    assert policy_rows(db) == before
    assert audit_rows(db, "sla_policy.") == []


def test_default_may_go_when_another_covers(api, db):
    everything = {**LIMITS, "name": "兜底规则"}
    data(api("admin").post("/sla-policies", json=everything), 201)
    pid = policy_id(db, "一般诉求")
    after = data(send(api, "admin", "patch", f"/sla-policies/{pid}", {"active": False}))
    assert after["active"] is False
    # Now the catch-all for every urgency is the last one for "normal".
    last = policy_id(db, "兜底规则")
    assert_error(
        send(api, "admin", "patch", f"/sla-policies/{last}", {"active": False}),
        409,
        "SLA_POLICY_LAST_DEFAULT",
    )


def test_other_policies_may_be_deactivated(api, db):
    pid = policy_id(db, "水电气热·供水")
    assert (
        data(send(api, "admin", "patch", f"/sla-policies/{pid}", {"active": False}))["active"]
        is False
    )


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"active": None}, "active", "请填写是否启用"),
        ({"name": None}, "name", "请填写规则名称"),
        ({"finish": None}, "finish", "请填写办结时限"),
        (
            {"finish": {"amount": 61, "unit": "working_days"}},
            "finish.amount",
            "办结时限不能超过 60 工作日（现为 61）",
        ),
        ({"category": "XX99"}, "category", "事项分类不存在：XX99"),
        ({"id": 5}, "id", "未知字段“id”"),
    ],
)
def test_update_policy_validation(api, db, body, field, message):
    pid = policy_id(db, "水电气热·供水")
    before = policy_rows(db)
    error = assert_error(
        send(api, "admin", "patch", f"/sla-policies/{pid}", body), 422, "VALIDATION_FAILED"
    )
    assert error["details"] == {field: message}
    assert policy_rows(db) == before
    assert audit_rows(db, "sla_policy.") == []


def test_update_unknown_policy(api):
    assert_error(
        send(api, "admin", "patch", "/sla-policies/999999", {"active": False}),
        404,
        "SLA_POLICY_NOT_FOUND",
    )


@pytest.mark.parametrize("username", WRITERS_REFUSED)
def test_policy_write_refused(api, db, username):
    pid = policy_id(db, "水电气热·供水")
    before = policy_rows(db)
    for response in (
        api(username).post("/sla-policies", json=POLICY),
        send(api, username, "patch", f"/sla-policies/{pid}", {"active": False}),
    ):
        error = assert_error(response, 403, "ROLE_NOT_ALLOWED")
        assert error["message"] == "只有系统管理员可以修改时限规则"
    assert policy_rows(db) == before
    assert audit_rows(db, "sla_policy.") == []


def test_policies_need_login(client, db):
    pid = policy_id(db, "一般诉求")
    assert_error(client.get("/api/v1/sla-policies"), 401, "AUTH_REQUIRED")
    assert_error(client.get(f"/api/v1/sla-policies/{pid}"), 401, "AUTH_REQUIRED")
    assert_error(client.post("/api/v1/sla-policies", json=POLICY), 401, "AUTH_REQUIRED")
    response = client.patch(f"/api/v1/sla-policies/{pid}", json={"active": False})
    assert_error(response, 401, "AUTH_REQUIRED")
