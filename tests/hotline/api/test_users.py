"""The users API (/api/v1/users, /api/v1/me/password) and the must-change-password hold."""

import pytest
import sqlalchemy as sa

from hotline.enums import Role
from hotline.models import AuditLog, User
from tests.helpers import PASSWORD, assert_error

GRID_A = "370705001001001"


def audits(db, action, target):
    return db.scalars(
        sa.select(AuditLog).where(AuditLog.action == action, AuditLog.target == target)
    ).all()


def user_count(db):
    return db.scalar(sa.select(sa.func.count()).select_from(User))


def session_login(client, username, password=PASSWORD):
    """Log in through the API session; returns the CSRF token."""
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]["csrf_token"]


NEW_HANDLER = {
    "username": "li.si",
    "name": "李四",
    "role": "unit_handler",
    "unit": "U-CGJ",
    "phone": "139 0536 1234",
}


def test_admin_creates_a_user_with_a_generated_password_shown_once(api, db):
    response = api("admin").post("/users", json=NEW_HANDLER)
    assert response.status_code == 201, response.get_json()
    data = response.get_json()["data"]
    assert data["user"]["unit"] == {"code": "U-CGJ", "name": data["user"]["unit"]["name"]}
    assert data["user"]["phone"] == "13905361234"
    assert data["user"]["must_change_password"] is True
    assert data["user"]["open_sessions"] == 0 and data["user"]["last_login_at"] is None
    temporary = data["temporary_password"]
    created = db.scalars(sa.select(User).where(User.username == "li.si")).one()
    assert created.check_password(temporary)
    (row,) = audits(db, "user.create", "li.si")
    assert row.payload["changes"]["unit"] == [None, "U-CGJ"]
    assert temporary not in str(row.payload)
    # Shown once: reading the user never shows it again.
    again = api("admin").get("/users/li.si").get_data(as_text=True)
    assert temporary not in again and "password_hash" not in again


@pytest.mark.parametrize(
    "username", ["operator", "dispatcher", "water", "grid", "supervisor", "leader"]
)
def test_only_administrators_manage_users(api, db, username):
    before = user_count(db)
    caller = api(username)
    assert_error(caller.get("/users"), 403, "ROLE_NOT_ALLOWED")
    assert_error(caller.get("/users/water"), 403, "ROLE_NOT_ALLOWED")
    assert_error(caller.post("/users", json=NEW_HANDLER), 403, "ROLE_NOT_ALLOWED")
    patch = caller.client.patch(
        "/api/v1/users/water", json={"name": "改名"}, headers=caller.headers
    )
    assert_error(patch, 403, "ROLE_NOT_ALLOWED")
    for action in ("deactivate", "activate", "reset-password"):
        assert_error(caller.post(f"/users/water/{action}", json={}), 403, "ROLE_NOT_ALLOWED")
    assert user_count(db) == before
    water = db.scalars(sa.select(User).where(User.username == "water")).one()
    assert water.active and water.name == "孙立伟" and not water.must_change_password
    assert db.scalars(sa.select(AuditLog).where(AuditLog.action.like("user.%"))).all() == []


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({**NEW_HANDLER, "unit": None}, "USER_BINDING_INVALID", "unit"),
        ({**NEW_HANDLER, "role": "chef"}, "VALIDATION_FAILED", "role"),
        ({**NEW_HANDLER, "username": "x"}, "USERNAME_INVALID", "username"),
        ({**NEW_HANDLER, "username": "water"}, "USERNAME_TAKEN", "username"),
        ({**NEW_HANDLER, "password": "weakpass"}, "PASSWORD_TOO_WEAK", "password"),
        ({**NEW_HANDLER, "phone": "12"}, "VALIDATION_FAILED", "phone"),
        ({**NEW_HANDLER, "grids": "370705001001001"}, "VALIDATION_FAILED", "grids"),
        ({**NEW_HANDLER, "active": False}, "VALIDATION_FAILED", "active"),
    ],
)
def test_bad_input_creates_nothing(api, db, body, code, field):
    before = user_count(db)
    response = api("admin").post("/users", json=body)
    error = assert_error(response, 409 if code == "USERNAME_TAKEN" else 422, code)
    assert field in error["details"]
    assert user_count(db) == before


def test_list_searches_and_pages(api):
    admin = api("admin")
    body = admin.get("/users?role=unit_handler&per_page=2").get_json()["data"]
    assert body["total"] == 5 and len(body["items"]) == 2 and body["per_page"] == 2
    assert [u["username"] for u in body["items"]] == ["cgj", "dongguan"]
    found = admin.get("/users?q=孙").get_json()["data"]["items"]
    assert {u["username"] for u in found} == {"water", "kuiwen-leader"}
    by_unit = admin.get("/users?unit=U-WATER").get_json()["data"]["items"]
    assert [u["username"] for u in by_unit] == ["water"]
    admin.post("/users/water/deactivate")
    assert admin.get("/users?unit=U-WATER").get_json()["data"]["items"] == []
    inactive = admin.get("/users?active=0").get_json()["data"]["items"]
    assert [u["username"] for u in inactive] == ["water"]
    error = assert_error(admin.get("/users?role=chef&active=maybe"), 422, "VALIDATION_FAILED")
    assert set(error["details"]) == {"role", "active"}


def test_patch_changes_bindings_and_audits_old_and_new(api, db):
    response = api("admin").client.patch(
        "/api/v1/users/grid",
        json={"role": "unit_handler", "unit": "U-CGJ", "district": None},
        headers=api("admin").headers,
    )
    assert response.status_code == 200, response.get_json()
    data = response.get_json()["data"]
    assert data["user"]["role"]["value"] == "unit_handler" and data["user"]["grids"] == []
    assert data["changes"]["district"] == ["370705", None]
    (row,) = audits(db, "user.update", "grid")
    assert row.payload["changes"]["role"] == ["grid_worker", "unit_handler"]
    assert row.payload["changes"]["unit"] == ["U-S-370705001", "U-CGJ"]


def test_a_refused_patch_changes_nothing(api, db):
    admin = api("admin")
    response = admin.client.patch(
        "/api/v1/users/grid",
        json={"name": "新名", "grids": ["370705001"]},
        headers=admin.headers,
    )
    error = assert_error(response, 422, "USER_BINDING_INVALID")
    assert "grids" in error["details"]
    grid = db.scalars(sa.select(User).where(User.username == "grid")).one()
    db.refresh(grid)
    assert grid.name == "杨磊" and len(grid.grids) == 2
    assert_error(admin.get("/users/nobody"), 404, "USER_NOT_FOUND")


def test_deactivate_ends_sessions_at_once(app, api, client, db):
    phone = app.test_client()
    session_login(phone, "water")
    assert phone.get("/api/v1/me").status_code == 200
    response = api("admin").post("/users/water/deactivate")
    assert response.get_json()["data"]["sessions_ended"] == 1
    assert_error(phone.get("/api/v1/me"), 401, "AUTH_REQUIRED")
    assert (
        phone.post(
            "/api/v1/auth/login", json={"username": "water", "password": PASSWORD}
        ).status_code
        == 401
    )
    activated = api("admin").post("/users/water/activate").get_json()["data"]["user"]
    assert activated["active"] is True
    assert audits(db, "user.activate", "water")


# -- reset, the hold, the user's own change ----------------------------------------------------


def test_reset_password_holds_the_user_until_they_change_it(app, api, db):
    phone = app.test_client()
    session_login(phone, "water")
    reset = api("admin").post("/users/water/reset-password", json={"password": "Temp-2026x"})
    assert reset.status_code == 200, reset.get_json()
    assert reset.get_json()["data"]["temporary_password"] == "Temp-2026x"
    # The old session ended at once.
    assert_error(phone.get("/api/v1/me"), 401, "AUTH_REQUIRED")

    client = app.test_client()
    csrf = session_login(client, "water", "Temp-2026x")
    me = client.get("/api/v1/me").get_json()["data"]
    assert me["must_change_password"] is True
    assert_error(client.get("/api/v1/inbox"), 403, "PASSWORD_CHANGE_REQUIRED")
    assert_error(client.get("/api/v1/tickets"), 403, "PASSWORD_CHANGE_REQUIRED")
    page = client.get("/inbox")
    assert page.status_code == 302 and "/account/password" in page.headers["Location"]
    assert client.get("/account/password").status_code == 200

    bad = client.post(
        "/api/v1/me/password",
        json={"old_password": "Temp-2026x", "password": "water"},
        headers={"X-CSRF-Token": csrf},
    )
    assert_error(bad, 422, "PASSWORD_TOO_WEAK")
    done = client.post(
        "/api/v1/me/password",
        json={"old_password": "Temp-2026x", "password": "Mine-2026y"},
        headers={"X-CSRF-Token": csrf},
    )
    assert done.status_code == 200, done.get_json()
    assert client.get("/api/v1/inbox").status_code == 200
    assert client.get("/api/v1/me").get_json()["data"]["must_change_password"] is False


def test_reset_with_a_generated_password_and_a_weak_chosen_one(api, db):
    admin = api("admin")
    generated = admin.post("/users/water/reset-password").get_json()["data"]
    water = db.scalars(sa.select(User).where(User.username == "water")).one()
    assert water.check_password(generated["temporary_password"])
    before = water.password_hash
    response = admin.post("/users/cgj/reset-password", json={"password": "weakpass"})
    assert_error(response, 422, "PASSWORD_TOO_WEAK")
    cgj = db.scalars(sa.select(User).where(User.username == "cgj")).one()
    assert not cgj.must_change_password and water.password_hash == before


def test_every_user_changes_their_own_password(app, db):
    client, other = app.test_client(), app.test_client()
    csrf = session_login(client, "operator")
    session_login(other, "operator")
    wrong = client.post(
        "/api/v1/me/password",
        json={"old_password": "nope-1234", "password": "Mine-2026y"},
        headers={"X-CSRF-Token": csrf},
    )
    assert_error(wrong, 422, "OLD_PASSWORD_WRONG")
    missing = client.post("/api/v1/me/password", json={}, headers={"X-CSRF-Token": csrf})
    error = assert_error(missing, 422, "VALIDATION_FAILED")
    assert set(error["details"]) == {"old_password", "password"}
    no_csrf = client.post(
        "/api/v1/me/password", json={"old_password": PASSWORD, "password": "Mine-2026y"}
    )
    assert_error(no_csrf, 403, "CSRF_FAILED")
    done = client.post(
        "/api/v1/me/password",
        json={"old_password": PASSWORD, "password": "Mine-2026y"},
        headers={"X-CSRF-Token": csrf},
    )
    assert done.get_json()["data"]["sessions_ended"] == 1
    assert client.get("/api/v1/me").status_code == 200  # this session stays
    assert_error(other.get("/api/v1/me"), 401, "AUTH_REQUIRED")  # the other one ended
    (row,) = audits(db, "user.password", "operator")
    assert "Mine-2026y" not in str(row.payload)


def test_the_admin_role_label_is_in_the_refusal(api):
    error = assert_error(api("operator").get("/users"), 403, "ROLE_NOT_ALLOWED")
    assert Role.operator.label in error["message"]
