"""Sessions the server can end, logins that take the same time for any name, throttling with
trusted networks and ``Retry-After`` (the security probe of the demo, issue 12 §9)."""

import pytest
import sqlalchemy as sa
from werkzeug import security

from hotline import auth
from hotline.db import get_session
from hotline.models import AuditLog, User, UserSession
from tests.conftest import PASSWORD, assert_error, web_login


def api_login(client, username="operator", password=PASSWORD):
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def stolen_cookie(client):
    """The value of ``client``'s session cookie, as someone who copied it would hold it."""
    return client.get_cookie("session").value


def commit(change):
    """Run ``change(session)`` in the application's own session and commit it, as an
    administrator's request would (tests share one app context, and with it that session)."""
    session = get_session()
    result = change(session)
    session.commit()
    return result


def named(session, username):
    return session.scalars(sa.select(User).where(User.username == username)).one()


def with_cookie(app, value):
    thief = app.test_client()
    thief.set_cookie("session", value)
    return thief


# -- sessions end on the server -------------------------------------------------------------


def test_after_logout_the_old_cookie_is_worth_nothing(app, client, db):
    """The probe: after logout the old cookie still opened pages and even minted an API
    token. Now the session is ended on the server."""
    csrf = api_login(client).get_json()["data"]["csrf_token"]
    cookie = stolen_cookie(client)
    assert with_cookie(app, cookie).get("/api/v1/me").status_code == 200

    response = client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200

    thief = with_cookie(app, cookie)
    assert_error(thief.get("/api/v1/me"), 401, "AUTH_REQUIRED")
    minted = thief.post("/api/v1/auth/tokens", json={"label": "x"}, headers={"X-CSRF-Token": csrf})
    assert_error(minted, 401, "AUTH_REQUIRED")
    page = thief.get("/console")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    row = db.scalars(sa.select(UserSession).order_by(UserSession.id.desc())).first()
    assert row.ended_at is not None and row.end_reason == "logout"


def test_page_logout_ends_the_session_on_the_server(app, client, db):
    web_login(client, "dispatcher")
    cookie = stolen_cookie(client)
    page = client.get("/dispatch").get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert with_cookie(app, cookie).get("/dispatch").status_code == 302


def test_logout_ends_every_session_of_the_user(app, client, db):
    other_device = app.test_client()
    api_login(other_device)
    csrf = api_login(client).get_json()["data"]["csrf_token"]
    assert other_device.get("/api/v1/me").status_code == 200
    client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert_error(other_device.get("/api/v1/me"), 401, "AUTH_REQUIRED")
    logout = db.scalars(sa.select(AuditLog).where(AuditLog.action == "auth.logout")).all()
    assert [(row.target, row.payload["sessions"]) for row in logout] == [("operator", 2)]


def test_a_password_change_ends_every_session(app, client, db, user):
    api_login(client, "water")
    phone = app.test_client()
    web_login(phone, "water")
    commit(lambda s: auth.set_password(s, named(s, "admin"), named(s, "water"), "new-pass-2026"))
    assert_error(client.get("/api/v1/me"), 401, "AUTH_REQUIRED")
    assert phone.get("/inbox").status_code == 302
    # The new password works, the old one no longer does.
    assert api_login(app.test_client(), "water").status_code == 401
    assert api_login(app.test_client(), "water", "new-pass-2026").status_code == 200
    audit = db.scalars(sa.select(AuditLog).where(AuditLog.action == "user.password")).one()
    assert audit.payload == {"sessions_ended": 2} and audit.target == "water"


def test_a_weak_password_is_refused_in_words(db, user):
    with pytest.raises(Exception) as caught:
        auth.set_password(db, None, user("water"), "short")
    assert caught.value.code == "PASSWORD_TOO_WEAK" and "至少 8 位" in caught.value.message


def test_deactivation_ends_every_session_and_reactivating_does_not_revive_them(
    app, client, db, user
):
    api_login(client, "water")
    water = user("water")
    commit(lambda s: auth.deactivate(s, named(s, "admin"), named(s, "water")))
    assert_error(client.get("/api/v1/me"), 401, "AUTH_REQUIRED")

    def reactivate(session):
        named(session, "water").active = True

    commit(reactivate)
    assert_error(client.get("/api/v1/me"), 401, "AUTH_REQUIRED")
    ends = db.scalars(sa.select(UserSession.end_reason).where(UserSession.user_id == water.id))
    assert set(ends) == {"deactivated"}


def test_a_session_row_keeps_only_a_hash_of_the_key(client, db):
    api_login(client)
    row = db.scalars(sa.select(UserSession).order_by(UserSession.id.desc())).first()
    cookie = stolen_cookie(client)
    assert len(row.key_hash) == 64 and row.key_hash not in cookie
    assert row.remote_addr == "127.0.0.1"


# -- a login takes the same time whether the name exists --------------------------------------


@pytest.fixture
def hash_checks(monkeypatch):
    """Every password hash checked during a login (the expensive step an attacker times)."""
    checked = []
    real = security.check_password_hash

    def spy(pwhash, password):
        checked.append(pwhash.split("$", 1)[0])
        return real(pwhash, password)

    monkeypatch.setattr("hotline.auth.check_password_hash", spy)
    monkeypatch.setattr("hotline.models.users.check_password_hash", spy)
    return checked


def test_an_unknown_name_costs_one_hash_check_like_a_known_one(client, db, user, hash_checks):
    """The probe: ≈5 ms for an unknown name against ≈100 ms for a known one. Now an unknown
    name is checked against a dummy hash of the same method and cost."""
    api_login(client, "nobody-here", "whatever-1")
    api_login(client, "operator", "whatever-1")
    method = user("operator").password_hash.split("$", 1)[0]
    assert hash_checks == [method, method]


def test_an_inactive_user_costs_one_hash_check_too(client, db, user, hash_checks):
    user("water").active = False
    db.flush()
    assert_error(api_login(client, "water"), 401, "LOGIN_FAILED")
    assert len(hash_checks) == 1


# -- throttling: Retry-After, trusted networks ----------------------------------------------


def fail(client, username, times, address="127.0.0.1"):
    for _ in range(times):
        client.post(
            "/api/v1/auth/login",
            json={"username": username, "password": "wrong-password"},
            environ_base={"REMOTE_ADDR": address},
        )


def test_a_throttled_login_says_when_to_retry(app, client, db):
    fail(client, "operator", app.config["LOGIN_MAX_FAILURES"])
    response = api_login(client)
    error = assert_error(response, 429, "LOGIN_RATE_LIMITED")
    seconds = error["details"]["retry_after_seconds"]
    assert response.headers["Retry-After"] == str(seconds) and 0 < seconds <= 15 * 60
    page = web_login(app.test_client(), "operator")
    assert page.status_code == 429
    assert 0 < int(page.headers["Retry-After"]) <= 15 * 60
    assert "登录失败次数过多" in page.get_data(as_text=True)


def test_a_trusted_network_is_throttled_per_name_only(app, client, db, monkeypatch):
    """A call centre behind one NAT address: twenty seats mistyping must not lock out the
    twenty-first; the per-name rule still holds."""
    monkeypatch.setitem(app.config, "LOGIN_TRUSTED_NETWORKS", "10.8.0.0/16, 192.168.1.20")
    per_address = app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"]
    names = [f"seat{i}" for i in range(per_address)]
    for name in names:
        fail(client, name, 1, address="10.8.3.4")
    ok = client.post(
        "/api/v1/auth/login",
        json={"username": "operator", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.8.3.4"},
    )
    assert ok.status_code == 200, ok.get_json()
    # The same failures from an untrusted address lock that address.
    for name in names:
        fail(client, name, 1, address="203.0.113.9")
    locked = client.post(
        "/api/v1/auth/login",
        json={"username": "operator2", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )
    assert_error(locked, 429, "LOGIN_RATE_LIMITED")
    # Per name, a trusted address is throttled like any other.
    fail(client, "dispatcher", app.config["LOGIN_MAX_FAILURES"], address="10.8.3.4")
    name_locked = client.post(
        "/api/v1/auth/login",
        json={"username": "dispatcher", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.8.3.4"},
    )
    assert_error(name_locked, 429, "LOGIN_RATE_LIMITED")


def test_the_per_address_rule_can_be_switched_off(app, client, db, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES_PER_ADDRESS", 0)
    for i in range(25):
        fail(client, f"seat{i}", 1)
    assert api_login(client).status_code == 200


def test_a_bad_trusted_network_stops_the_start(app):
    from server.app import create_app

    config = {
        key: app.config[key]
        for key in ("DATABASE_URL", "SECRET_KEY", "CLASSIFIER_MODELS_DIR", "REDIS_URL")
    }
    with pytest.raises(ValueError, match="LOGIN_TRUSTED_NETWORKS"):
        create_app({**config, "LOGIN_TRUSTED_NETWORKS": "10.8.0.0/33", "CLASSIFIER_PRELOAD": False})
