"""The login page, the root and logout (hotline/pages.py): Flask-Login sessions shared by
pages and the API, redirects after login (never off site), login throttling and its audit,
CSRF on page forms."""

import datetime as dt

import pytest
import sqlalchemy as sa

from hotline.auth import log_in
from hotline.db import utcnow
from hotline.models import AuditLog
from tests.helpers import PASSWORD, assert_error


def failures(db, username):
    db.expire_all()
    return db.scalars(
        sa.select(AuditLog).where(
            AuditLog.action == "auth.login_failed", AuditLog.target == username
        )
    ).all()


def test_page_login_is_a_flask_login_session_the_api_accepts(client, db, web_login):
    response = web_login(client, "operator")
    assert response.status_code == 302
    with client.session_transaction() as session:
        assert session["_user_id"] == str(
            db.scalar(sa.text("SELECT id FROM users WHERE username = 'operator'"))
        )
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.get_json()["data"]["username"] == "operator"


def test_root_sends_strangers_to_the_login_page(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"


def test_logout_needs_the_form_token(client, db, form_token, web_login):
    web_login(client, "leader")
    assert client.post("/logout").status_code == 400
    assert client.get("/reports/ranking").status_code == 200
    token = form_token(client, "/reports/ranking")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/reports/ranking").status_code == 302
    assert client.get("/api/v1/me").status_code == 401


def test_api_logout_ends_the_page_session_too(client, db, web_login):
    web_login(client, "leader")
    with client.session_transaction() as session:
        token = session["csrf_token"]
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": token}).status_code == 200
    assert client.get("/reports/ranking").status_code == 302


def test_deactivated_user_is_logged_out_of_pages(client, db, user, web_login):
    web_login(client, "leader")
    user("leader").active = False
    db.flush()
    assert client.get("/reports/ranking").status_code == 302


def test_five_failures_lock_the_name_and_are_audited(client, db, web_login):
    for _ in range(5):
        response = web_login(client, "dispatcher", password="wrong")
        assert response.status_code == 400
    assert len(failures(db, "dispatcher")) == 5
    # Even the right password is refused now, without being checked.
    response = web_login(client, "dispatcher")
    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert "登录失败次数过多，请 15 分钟后再试" in page
    assert client.get("/api/v1/me").status_code == 401
    db.expire_all()
    throttled = db.scalars(
        sa.select(AuditLog).where(AuditLog.action == "auth.login_throttled")
    ).all()
    assert [row.target for row in throttled] == ["dispatcher"]
    assert throttled[0].remote_addr == "127.0.0.1"
    # The API gives the same refusal with its stable code.
    error = assert_error(
        client.post("/api/v1/auth/login", json={"username": "dispatcher", "password": PASSWORD}),
        429,
        "LOGIN_RATE_LIMITED",
    )
    assert 0 < error["details"]["retry_after_seconds"] <= 15 * 60
    # Other names are not locked by these failures.
    assert web_login(client, "operator").status_code == 302


def test_failures_older_than_the_window_or_before_a_success_do_not_count(client, db, web_login):
    old = utcnow() - dt.timedelta(minutes=16)
    for _ in range(10):
        db.add(AuditLog(action="auth.login_failed", target="callback", created_at=old))
    db.flush()
    assert web_login(client, "callback").status_code == 302
    for _ in range(4):
        web_login(client, "callback", password="wrong")
    assert web_login(client, "callback").status_code == 302
    # A success resets the count: four more failures still leave the name open.
    for _ in range(4):
        web_login(client, "callback", password="wrong")
    assert web_login(client, "callback").status_code == 302


def test_many_names_from_one_address_lock_the_address(app, client, db, web_login):
    for n in range(20):
        web_login(client, f"guess{n}", password="wrong")
    response = web_login(client, "operator")
    assert response.status_code == 429
    # Another address is not affected.
    with app.test_request_context(environ_base={"REMOTE_ADDR": "10.0.0.7"}):
        assert log_in(db, "operator", PASSWORD, via="web") is not None


def test_every_audit_row_of_a_request_records_the_address(client, db, web_login):
    web_login(client, "operator")
    db.expire_all()
    row = db.scalars(
        sa.select(AuditLog).where(AuditLog.action == "auth.login").order_by(AuditLog.id.desc())
    ).first()
    assert row.remote_addr == "127.0.0.1"
    assert row.payload == {"via": "web"}


def test_login_page_opens_the_session(client, db, web_login):
    response = web_login(client, "leader", next_path="/reports/ranking?month=2026-10")
    assert response.status_code == 302
    assert response.headers["Location"] == "/reports/ranking?month=2026-10"
    page = client.get("/reports/ranking?month=2026-10")
    assert page.status_code == 200
    audit = db.scalars(sa.select(AuditLog).where(AuditLog.action == "auth.login")).all()
    assert audit[-1].target == "leader" and audit[-1].payload == {"via": "web"}


def test_wrong_password_is_refused_and_audited(client, db, web_login):
    response = web_login(client, "leader", password="wrong")
    assert response.status_code == 400
    assert "用户名或密码错误" in response.get_data(as_text=True)
    assert client.get("/reports/ranking").status_code == 302
    failed = db.scalars(sa.select(AuditLog).where(AuditLog.action == "auth.login_failed")).all()
    assert failed[-1].target == "leader"


def test_login_without_csrf_token_is_refused(client):
    response = client.post("/login", data={"username": "leader", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/reports/ranking").status_code == 302


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example/x", "javascript:x"]
)
def test_login_never_redirects_off_site(client, target, web_login):
    response = web_login(client, "leader", next_path=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/boards"  # the leader's own start page
