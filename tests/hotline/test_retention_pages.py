"""个人信息保护's pages: the settings and runs page with its dry run (administrators), and the
look-up and export of one number's data (supervisors and administrators), audited with a
reason; nobody else may."""

import io

import openpyxl
import pytest
import sqlalchemy as sa

from hotline import retention, settings
from hotline.errors import Forbidden
from hotline.models import AuditLog, IncomingCall, OutboxMessage, RetentionRun
from tests.helpers import FORM_TOKEN

URL = "/admin/retention"
LOOKUP = "/admin/personal-data"
PHONE = "13900001111"


def _token(client, path):
    return FORM_TOKEN.search(client.get(path).get_data(as_text=True)).group(1)


def _form(client, **values):
    """The look-up's form: POSTed with the session's CSRF token (every page's header has it)."""
    return {"csrf_token": _token(client, "/messages"), **values}


def test_the_page_shows_the_settings_and_the_runs(client, web_login):
    web_login(client, "admin")
    text = client.get(URL).get_data(as_text=True)
    assert "个人信息保存期限（月）" in text and 'name="months" value="24"' in text
    assert "每日自动脱敏已关闭" in text and "尚未运行过" in text
    assert "个人信息保护" in client.get("/admin/").get_data(as_text=True)


@pytest.mark.parametrize("username", ["supervisor", "operator", "leader"])
def test_the_retention_page_is_for_administrators(client, web_login, username):
    web_login(client, username)
    assert client.get(URL).status_code == 403
    assert client.post(URL + "/dry-run", data={}).status_code in (400, 403)


def test_settings_are_checked_and_audited(client, db, web_login):
    web_login(client, "admin")
    form = {"csrf_token": _token(client, URL), "enabled": "0", "months": "36"}
    response = client.post(URL, data=form)
    assert response.status_code == 302
    page = client.get(URL).get_data(as_text=True)
    assert "个人信息保存期限（月）：24 → 36" in page and "每日自动脱敏已关闭" in page
    assert settings.get(db, "retention.months") == 36
    form["months"] = "0"
    assert client.post(URL, data=form).status_code == 422
    assert settings.get(db, "retention.months") == 36


def test_a_dry_run_from_the_page_is_recorded_and_shown(client, db, web_login, user, make_ticket):
    web_login(client, "admin")
    response = client.post(URL + "/dry-run", data={"csrf_token": _token(client, URL)})
    assert response.status_code == 302
    run = db.scalars(sa.select(RetentionRun)).one()
    assert run.dry_run and run.actor_id == user("admin").id and run.finished_at
    page = client.get(URL).get_data(as_text=True)
    assert "试运行完成" in page and 'data-dry-run="true"' in page
    assert db.scalars(sa.select(AuditLog).where(AuditLog.action == "retention.dry_run")).one()


@pytest.fixture
def held(db, user, make_ticket):
    ticket = make_ticket(user("operator"), requester_name="李四海", requester_phone=PHONE)
    other = make_ticket(user("operator"), requester_name="别人", requester_phone="13900002222")
    db.add(
        IncomingCall(call_id="c-pd-1", caller_phone=PHONE, agent="operator", ticket_id=ticket.id)
    )
    db.add(
        OutboxMessage(
            delivery_key="pd-1",
            channel="sms",
            audience="citizen",
            recipient=PHONE,
            kind="citizen_received",
            ticket_id=ticket.id,
            body="【12345】您的诉求已受理",
        )
    )
    db.flush()
    return ticket, other


def _audits(db, action):
    return db.scalars(sa.select(AuditLog).where(AuditLog.action == action)).all()


@pytest.mark.parametrize("username", ["supervisor", "admin"])
def test_a_lookup_shows_everything_held_and_is_audited(client, db, web_login, held, username):
    ticket, other = held
    web_login(client, username)
    response = client.post(LOOKUP, data=_form(client, phone="139-0000-1111", reason="市民申请"))
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert ticket.number in text and "李四海" in text and PHONE in text and "c-pd-1" in text
    assert "【12345】您的诉求已受理" in text
    assert other.number not in text and "别人" not in text
    (row,) = _audits(db, "pii.lookup")
    assert row.payload["reason"] == "市民申请" and row.payload["tickets"] == [ticket.number]
    assert PHONE not in repr(row.payload)  # the audit names the number masked
    (view,) = _audits(db, "pii.view")
    assert view.payload["what"] == "requester_data" and view.payload["tickets"] == [ticket.number]


def test_a_lookup_without_a_reason_is_refused_and_shows_nothing(client, db, web_login, held):
    web_login(client, "supervisor")
    response = client.post(LOOKUP, data=_form(client, phone=PHONE, reason=" "))
    text = response.get_data(as_text=True)
    assert response.status_code == 422 and "请填写查询事由" in text and "李四海" not in text
    assert not _audits(db, "pii.lookup") and not _audits(db, "pii.view")


def test_a_look_up_or_export_without_the_form_token_is_refused(client, db, web_login, held):
    """A link or another site's form cannot make a supervisor look a number up in their name,
    and the number never travels in a URL (logs)."""
    web_login(client, "supervisor")
    assert client.get(LOOKUP, query_string={"phone": PHONE, "reason": "x"}).status_code == 200
    assert client.post(LOOKUP, data={"phone": PHONE, "reason": "x"}).status_code == 400
    assert client.get(LOOKUP + "/export.xlsx").status_code == 405
    assert (
        client.post(LOOKUP + "/export.xlsx", data={"phone": PHONE, "reason": "x"}).status_code
        == 400
    )
    assert not _audits(db, "pii.lookup") and not _audits(db, "pii.export")


@pytest.mark.parametrize("username", ["operator", "dispatcher", "callback", "leader"])
def test_other_roles_may_not_look_up_or_export(client, db, web_login, held, username):
    web_login(client, username)
    assert client.get(LOOKUP).status_code == 403
    form = _form(client, phone=PHONE, reason="x")
    assert client.post(LOOKUP, data=form).status_code == 403
    assert client.post(LOOKUP + "/export.xlsx", data=form).status_code == 403
    assert not _audits(db, "pii.lookup") and not _audits(db, "pii.export")


def test_the_export_holds_every_sheet_and_is_audited(client, db, web_login, held):
    ticket, _ = held
    web_login(client, "supervisor")
    response = client.post(
        LOOKUP + "/export.xlsx", data=_form(client, phone=PHONE, reason="市民书面申请 2026-12")
    )
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    assert book.sheetnames == [
        "工单",
        "回访",
        "办理记录",
        "来电",
        "通知短信",
        "市民端登录",
        "验证码",
    ]
    tickets = list(book["工单"].values)
    assert tickets[0][:2] == ("工单编号", "受理时间")
    assert [r[0] for r in tickets[1:]] == [ticket.number]
    assert "李四海" in tickets[1] and PHONE in tickets[1]
    assert list(book["来电"].values)[1][2] == PHONE
    assert list(book["通知短信"].values)[1][3] == PHONE
    (row,) = _audits(db, "pii.export")
    assert row.payload["reason"] == "市民书面申请 2026-12"
    assert row.actor_id is not None and row.payload["count"] == 1


def test_only_an_administrator_runs_the_job_by_hand(app, db, user):
    with pytest.raises(Forbidden):
        retention.run(app.extensions["hotline.db"], actor=user("supervisor"), dry_run=True)
    assert not db.scalars(sa.select(RetentionRun)).all()
