"""The audit page and API (审计日志) and the record of who saw a requester's full phone number
(个人信息查看留痕)."""

import io

import openpyxl
import pytest
import sqlalchemy as sa

from hotline import settings
from hotline.models import AuditLog
from tests.helpers import assert_error


def _entries(db, action):
    db.expire_all()
    return db.scalars(sa.select(AuditLog).where(AuditLog.action == action)).all()


@pytest.fixture
def admin_client(client, web_login):
    web_login(client, "admin")
    return client


def test_the_audit_page_shows_who_when_where_and_old_to_new(admin_client, db, user):
    settings.update(db, user("admin"), {"ranking.weight_response": 15})
    db.flush()
    html = admin_client.get("/admin/audit/").get_data(as_text=True)
    assert "登录" in html and "auth.login" in html and "127.0.0.1" in html
    assert "修改系统设置" in html
    assert "<del>10</del> → <ins>15</ins>" in html


def test_filters_narrow_the_list(admin_client, db, user, web_login, client):
    web_login(client, "operator", password="wrong-password")
    html = admin_client.get("/admin/audit/?action=auth.login_failed").get_data(as_text=True)
    assert "登录失败" in html and "operator" in html
    html = admin_client.get("/admin/audit/?action=auth.&actor=admin").get_data(as_text=True)
    assert 'data-action="auth.login_failed"' not in html
    assert 'data-action="auth.login"' in html
    html = admin_client.get("/admin/audit/?from=2000-01-01&to=2000-01-02").get_data(as_text=True)
    assert "没有符合条件的记录" in html


def test_bad_filters_are_named(admin_client):
    response = admin_client.get("/admin/audit/?from=2026-13-01&to=x")
    assert response.status_code == 422
    assert "日期格式应为 YYYY-MM-DD" in response.get_data(as_text=True)
    response = admin_client.get("/admin/audit/?from=2026-12-05&to=2026-12-01")
    assert "结束日期不能早于开始日期" in response.get_data(as_text=True)


def test_the_export_is_a_workbook_and_is_itself_recorded(admin_client, db):
    response = admin_client.get("/admin/audit/export.xlsx?action=auth.")
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
    header = [c.value for c in sheet[1]]
    assert header[:5] == ["时间", "操作人", "用户名", "来源地址", "操作"]
    actions = {row[5] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert actions == {"auth.login"}
    (entry,) = _entries(db, "audit.export")
    assert entry.payload["filters"] == {"action": "auth."}


def test_only_administrators_read_the_audit_log(api, client, web_login):
    assert_error(api("supervisor").get("/audit"), 403, "AUDIT_FORBIDDEN")
    response = api("admin").get("/audit?action=auth.login&per_page=5")
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data["per_page"] == 5
    assert all(item["action"] == "auth.login" for item in data["items"])
    assert_error(api("admin").get("/audit?from=yesterday"), 422, "VALIDATION_FAILED")
    web_login(client, "leader")
    assert client.get("/admin/audit/export.xlsx").status_code == 403


def test_seeing_a_full_phone_number_is_recorded(api, db, make_ticket, user):
    ticket = make_ticket(user("operator"))
    db.flush()
    # The operator who typed the number is not shown anything new by the answer to receive.
    assert _entries(db, "pii.view") == []
    assert api("callback").get(f"/tickets/{ticket.number}").status_code == 200
    (entry,) = _entries(db, "pii.view")
    assert entry.actor_id == user("callback").id
    assert entry.target == ticket.number
    assert entry.payload["tickets"] == [ticket.number]
    assert entry.payload["path"] == f"/api/v1/tickets/{ticket.number}"


def test_a_masked_number_is_not_a_view(api, db, make_ticket, user):
    ticket = make_ticket(user("operator"))
    db.flush()
    response = api("leader").get(f"/tickets/{ticket.number}")
    assert response.status_code == 200
    assert "****" in response.get_json()["data"]["requester_phone"]
    assert _entries(db, "pii.view") == []


def test_a_ticket_page_records_the_view(client, db, make_ticket, user, web_login):
    ticket = make_ticket(user("operator"))
    db.flush()
    web_login(client, "dispatcher")
    assert client.get(f"/tickets/{ticket.number}").status_code == 200
    (entry,) = _entries(db, "pii.view")
    assert entry.payload["tickets"] == [ticket.number]
    assert entry.remote_addr == "127.0.0.1"


def test_old_and_new_values_side_by_side_read_as_changes():
    from hotline import audit_log

    def entry(payload):
        return AuditLog(action="x", payload=payload)

    side = entry({"old": {"kind": "holiday", "note": "a"}, "new": {"kind": "holiday", "note": "b"}})
    assert audit_log.changes_of(side) == [("note", "a", "b")]
    assert audit_log.details_of(side) == []
    created = entry({"before": None, "after": {"name": "默认"}, "rows": 3})
    assert audit_log.changes_of(created) == [("name", None, "默认")]
    assert audit_log.details_of(created) == [("行数", "3")]
    deleted = entry({"old": {"kind": "workday"}})
    assert audit_log.changes_of(deleted) == [("kind", "workday", None)]
