"""Who may call the API and what they may see: tokens, login sessions with CSRF, ticket scope,
phone masking, password storage."""

import base64
import hashlib

import pytest
import sqlalchemy as sa
from werkzeug import security

from dispatch import operations
from dispatch.access import mask_phone
from hotline import auth, users
from hotline.db import get_session
from hotline.enums import Channel, Role
from hotline.models import ApiToken, Area, AuditLog, Unit, User, UserSession
from tests.helpers import PASSWORD, assert_error

BODY = {"channel": "phone", "request_type": "complaint", "content": "胜利东街路灯连续一周不亮"}


# -- helpers ----------------------------------------------------------------------------------


def login(client, username="operator", password=PASSWORD, headers=None):
    return client.post(
        "/api/v1/auth/login",
        json={"username": username, "password": password},
        headers=headers or {},
    )


def audit_rows(db, action, target=None):
    db.expire_all()
    query = sa.select(AuditLog).where(AuditLog.action == action)
    if target is not None:
        query = query.where(AuditLog.target == target)
    return db.scalars(query.order_by(AuditLog.id)).all()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


# -- no or bad credentials --------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/v1/tickets"),
        ("get", "/api/v1/tickets/WF2099010199999999"),
        ("get", "/api/v1/me"),
        ("get", "/api/v1/areas"),
        ("get", "/api/v1/routing/suggest?category=0106"),
        ("post", "/api/v1/auth/tokens"),
        ("post", "/api/v1/auth/logout"),
    ],
)
def test_no_credentials_is_401(client, method, path):
    error = assert_error(getattr(client, method)(path), 401, "AUTH_REQUIRED")
    assert error["message"] == "请先登录或提供 API 令牌"


def test_create_without_credentials_is_401_and_stores_nothing(client, db, ticket_count):
    before = ticket_count()
    assert_error(client.post("/api/v1/tickets", json=BODY), 401, "AUTH_REQUIRED")
    assert ticket_count() == before


@pytest.mark.parametrize(
    "header",
    [
        "Bearer not-a-real-token",
        "Bearer hl_" + "A" * 43,
        "Bearer " + hashlib.sha256(b"x").hexdigest(),
    ],
)
def test_unknown_bearer_token_is_401_auth_invalid(client, db, header, ticket_count):
    before = ticket_count()
    response = client.post("/api/v1/tickets", json=BODY, headers={"Authorization": header})
    error = assert_error(response, 401, "AUTH_INVALID")
    assert error["message"] == "API 令牌无效或已吊销"
    assert ticket_count() == before


def test_stored_hash_is_not_a_token(api, client, db, user):
    """Presenting the stored SHA-256 itself must not authenticate."""
    api("operator")  # creates a token row for operator
    stored_hash = db.scalars(
        sa.select(ApiToken.token_hash).where(ApiToken.user_id == user("operator").id)
    ).first()
    assert_error(client.get("/api/v1/me", headers=bearer(stored_hash)), 401, "AUTH_INVALID")


@pytest.mark.parametrize(
    "header",
    [
        "Basic " + base64.b64encode(f"operator:{PASSWORD}".encode()).decode(),
        "Bearer",
        "Bearer    ",
        "Token abc",
        "abc",
        "Bearer\tabc",
    ],
    ids=["basic", "bearer-only", "bearer-blank", "token-scheme", "no-scheme", "tab"],
)
def test_malformed_authorization_header_is_401(client, header):
    response = client.get("/api/v1/me", headers={"Authorization": header})
    error = assert_error(response, 401, "AUTH_INVALID")
    assert error["code"] == "AUTH_INVALID"


def test_bearer_scheme_is_case_insensitive(api, client):
    token = api("operator").headers["Authorization"].removeprefix("Bearer ")
    response = client.get("/api/v1/me", headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200
    assert response.get_json()["data"]["username"] == "operator"


def test_bad_bearer_does_not_fall_back_to_the_session(client):
    assert login(client).status_code == 200
    assert client.get("/api/v1/me").status_code == 200
    response = client.get("/api/v1/me", headers=bearer("wrong"))
    assert_error(response, 401, "AUTH_INVALID")


def test_token_of_deactivated_user_is_refused(api, client, db, user):
    headers = api("water").headers
    user("water").active = False
    db.flush()
    assert_error(client.get("/api/v1/me", headers=headers), 401, "AUTH_INVALID")


def test_role_without_receive_right_cannot_create(api, db, ticket_count):
    before = ticket_count()
    for name in ("dispatcher", "cgj", "leader", "admin", "callback"):
        response = api(name).post("/tickets", json=BODY)
        error = assert_error(response, 403, "ROLE_NOT_ALLOWED")
        assert "受理" in error["message"]
    assert ticket_count() == before


# -- login, session, CSRF, logout -------------------------------------------------------------


def test_wrong_password_is_401_and_audited(client, db):
    before = len(audit_rows(db, "auth.login_failed", "operator"))
    response = login(client, password="demo-12346")
    error = assert_error(response, 401, "LOGIN_FAILED")
    assert error["message"] == "用户名或密码错误"
    rows = audit_rows(db, "auth.login_failed", "operator")
    assert len(rows) == before + 1
    assert rows[-1].actor_id is None
    assert PASSWORD not in str(rows[-1].payload) and "demo-12346" not in str(rows[-1].payload)
    # No session was opened.
    assert_error(client.get("/api/v1/me"), 401, "AUTH_REQUIRED")


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(client, db):
    wrong_password = login(client, password="nope").get_json()
    unknown_user = login(client, username="nobody").get_json()
    assert unknown_user["error"] == wrong_password["error"]
    assert len(audit_rows(db, "auth.login_failed", "nobody")) == 1


def test_deactivated_user_cannot_log_in(client, db, user):
    user("water").active = False
    db.flush()
    assert_error(login(client, username="water"), 401, "LOGIN_FAILED")
    assert len(audit_rows(db, "auth.login_failed", "water")) == 1


@pytest.mark.parametrize(
    "body, details",
    [
        ({"username": "operator"}, {"password": "请填写密码"}),
        ({"username": "operator", "password": ""}, {"password": "请填写密码"}),
        ({"username": "operator", "password": 12345}, {"password": "请填写密码"}),
        ({"password": PASSWORD}, {"username": "请填写用户名"}),
        ({"username": "operator", "password": PASSWORD, "remember": True}, {"remember": None}),
    ],
)
def test_login_with_incomplete_body_is_422(client, db, body, details):
    before = len(audit_rows(db, "auth.login_failed"))
    response = client.post("/api/v1/auth/login", json=body)
    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert set(error["details"]) == set(details)
    for name, message in details.items():
        if message:
            assert error["details"][name] == message
    assert len(audit_rows(db, "auth.login_failed")) == before
    assert_error(client.get("/api/v1/me"), 401, "AUTH_REQUIRED")


def test_login_returns_user_and_csrf_token_and_is_audited(client, db):
    response = login(client, "dongguan")
    assert response.status_code == 200, response.get_json()
    data = response.get_json()["data"]
    assert isinstance(data["csrf_token"], str) and len(data["csrf_token"]) >= 32
    assert data["user"] == {
        "username": "dongguan",
        "name": "李明华",
        "role": "unit_handler",
        "role_label": "承办人",
        "unit": {"code": "U-S-370705001", "name": "东关街道办事处"},
        "grids": [],
        "district": "370705",
        "must_change_password": False,
    }
    text = response.get_data(as_text=True)
    assert PASSWORD not in text and "password_hash" not in text and "scrypt:" not in text
    assert len(audit_rows(db, "auth.login", "dongguan")) == 1
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.get_json()["data"] == data["user"]


def test_session_cookie_is_httponly(client):
    response = login(client)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_session_post_needs_the_csrf_header(client, db, ticket_count):
    csrf = login(client).get_json()["data"]["csrf_token"]
    before = ticket_count()

    missing = client.post("/api/v1/tickets", json=BODY)
    error = assert_error(missing, 403, "CSRF_FAILED")
    assert "X-CSRF-Token" in error["message"]
    wrong = client.post("/api/v1/tickets", json=BODY, headers={"X-CSRF-Token": csrf[:-1] + "x"})
    assert_error(wrong, 403, "CSRF_FAILED")
    empty = client.post("/api/v1/tickets", json=BODY, headers={"X-CSRF-Token": ""})
    assert_error(empty, 403, "CSRF_FAILED")
    assert ticket_count() == before

    ok = client.post("/api/v1/tickets", json=BODY, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201, ok.get_json()
    assert ticket_count() == before + 1

    # Safe methods need no CSRF header.
    number = ok.get_json()["data"]["number"]
    assert client.get(f"/api/v1/tickets/{number}").status_code == 200


def test_csrf_token_of_another_session_is_refused(app, client, db, ticket_count):
    login(client)
    other = app.test_client()
    other_csrf = login(other, "operator2").get_json()["data"]["csrf_token"]
    before = ticket_count()
    response = client.post("/api/v1/tickets", json=BODY, headers={"X-CSRF-Token": other_csrf})
    assert_error(response, 403, "CSRF_FAILED")
    assert ticket_count() == before


def test_logout_ends_the_session(client, db, ticket_count):
    csrf = login(client).get_json()["data"]["csrf_token"]
    assert_error(client.post("/api/v1/auth/logout"), 403, "CSRF_FAILED")
    assert client.get("/api/v1/me").status_code == 200  # still logged in

    response = client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200
    assert response.get_json() == {"success": True, "data": {}}

    assert_error(client.get("/api/v1/me"), 401, "AUTH_REQUIRED")
    before = ticket_count()
    stale = client.post("/api/v1/tickets", json=BODY, headers={"X-CSRF-Token": csrf})
    assert_error(stale, 401, "AUTH_REQUIRED")
    assert ticket_count() == before


def test_session_of_deactivated_user_ends(client, db, user):
    assert login(client, "water").status_code == 200
    user("water").active = False
    db.flush()
    assert_error(client.get("/api/v1/me"), 401, "AUTH_REQUIRED")


# -- API tokens -------------------------------------------------------------------------------


def test_token_is_shown_once_stored_hashed_and_revocable(api, client, db, user, ticket_count):
    response = api("operator").post("/auth/tokens", json={"label": "报表脚本"})
    assert response.status_code == 201, response.get_json()
    data = response.get_json()["data"]
    token, token_id = data["token"], data["id"]
    assert token.startswith("hl_") and len(token) > 40
    assert data["label"] == "报表脚本"

    db.expire_all()
    row = db.get(ApiToken, token_id)
    assert row.user_id == user("operator").id
    assert row.label == "报表脚本"
    assert row.revoked_at is None
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    for column in ApiToken.__table__.columns:
        assert token not in str(getattr(row, column.key)), column.key
    assert [r.target for r in audit_rows(db, "token.create", str(token_id))] == [str(token_id)]
    assert token not in str(audit_rows(db, "token.create", str(token_id))[0].payload)

    me = client.get("/api/v1/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.get_json()["data"]["username"] == "operator"

    # Somebody else cannot revoke it (and cannot tell that it exists).
    other = client.delete(f"/api/v1/auth/tokens/{token_id}", headers=api("dispatcher").headers)
    assert_error(other, 404, "TOKEN_NOT_FOUND")
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200

    revoked = client.delete(f"/api/v1/auth/tokens/{token_id}", headers=bearer(token))
    assert revoked.status_code == 200
    assert revoked.get_json()["data"] == {"id": token_id}
    db.expire_all()
    assert db.get(ApiToken, token_id).revoked_at is not None
    assert len(audit_rows(db, "token.revoke", str(token_id))) == 1

    assert_error(client.get("/api/v1/me", headers=bearer(token)), 401, "AUTH_INVALID")
    before = ticket_count()
    refused = client.post("/api/v1/tickets", json=BODY, headers=bearer(token))
    assert_error(refused, 401, "AUTH_INVALID")
    assert ticket_count() == before
    again = client.delete(f"/api/v1/auth/tokens/{token_id}", headers=api("operator").headers)
    assert_error(again, 404, "TOKEN_NOT_FOUND")


def test_each_token_is_new(api):
    first = api("operator").post("/auth/tokens", json={}).get_json()["data"]
    second = api("operator").post("/auth/tokens", json={}).get_json()["data"]
    assert first["token"] != second["token"]
    assert first["label"] == second["label"] == ""


def test_token_label_is_validated(api, db):
    operator = api("operator")
    before = db.scalar(sa.select(sa.func.count()).select_from(ApiToken))
    response = operator.post("/auth/tokens", json={"label": "长" * 101})
    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert error["details"] == {"label": "用途说明不能超过 100 字（现为 101 字）"}
    nul = operator.post("/auth/tokens", json={"label": "a\u0000"})
    assert_error(nul, 422, "VALIDATION_FAILED")
    assert db.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == before


def test_session_can_create_token_only_with_csrf(client, db):
    csrf = login(client).get_json()["data"]["csrf_token"]
    assert_error(client.post("/api/v1/auth/tokens", json={}), 403, "CSRF_FAILED")
    response = client.post("/api/v1/auth/tokens", json={}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 201


def test_unknown_token_id_is_404(api, client):
    response = client.delete("/api/v1/auth/tokens/999999", headers=api("operator").headers)
    assert_error(response, 404, "TOKEN_NOT_FOUND")


# -- password storage -------------------------------------------------------------------------


def test_password_is_stored_hashed(user):
    operator, dispatcher = user("operator"), user("dispatcher")
    assert operator.password_hash != PASSWORD
    assert PASSWORD not in operator.password_hash
    assert operator.password_hash.split(":")[0] in {"scrypt", "pbkdf2"}
    assert operator.check_password(PASSWORD)
    assert not operator.check_password("demo-12346")
    assert not operator.check_password("")
    # Salted: the same password gives different hashes.
    assert dispatcher.check_password(PASSWORD)
    assert operator.password_hash != dispatcher.password_hash


# -- scope: who sees which tickets ------------------------------------------------------------


def _unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


def _area(db, code):
    return db.scalars(sa.select(Area).where(Area.code == code)).one()


@pytest.fixture
def scoped(db, user, make_ticket):
    """Five tickets in known places and hands (name → number)."""
    op, dispatcher = user("operator"), user("dispatcher")

    def make(category, area, phone, lead=None):
        ticket = make_ticket(op, category=category, area=area, requester_phone=phone)
        if lead:
            operations.dispatch(db, dispatcher, ticket, lead=_unit(db, lead))
            db.flush()
        return ticket.number

    return {
        # In grid 370705001001001 (the grid worker's), led by 东关街道 → copied to 奎文区政府.
        "street": make("010601", "370705001001001", "13805360001", lead="U-S-370705001"),
        "water": make("010201", "370705002007", "13805360002", lead="U-WATER"),
        "cgj": make("010101", "370702001001", "13805360003", lead="U-CGJ"),
        # Not dispatched; in a grid of the same community that is not the grid worker's.
        "other_grid": make("010101", "370705001001003", "05368888888"),
        "no_area": make("010101", None, "95598"),
    }


@pytest.fixture
def district_leader(db):
    leader = User(
        username="leader_kuiwen",
        name="奎文区领导",
        role=Role.leader,
        district=_area(db, "370705"),
    )
    leader.set_password(PASSWORD)
    db.add(leader)
    db.flush()
    return leader.username


def visible(api, username, scoped):
    response = api(username).get("/tickets", query_string={"per_page": 200})
    assert response.status_code == 200, response.get_json()
    numbers = {item["number"] for item in response.get_json()["data"]["items"]}
    return {name for name, number in scoped.items() if number in numbers}


ALL = {"street", "water", "cgj", "other_grid", "no_area"}


@pytest.mark.parametrize(
    "username, expected",
    [
        ("cgj", {"cgj"}),
        ("dongguan", {"street"}),
        ("kuiwen", {"street"}),
        ("water", {"water"}),
        ("sthj", set()),
        ("grid", {"street"}),
        ("leader", ALL),
        ("admin", ALL),
        ("operator", ALL),
        ("dispatcher", ALL),
        ("callback", ALL),
        ("supervisor", ALL),
        ("inspector", ALL),
    ],
)
def test_list_shows_only_tickets_in_scope(api, scoped, username, expected):
    assert visible(api, username, scoped) == expected


def test_district_leader_sees_only_the_district(api, scoped, district_leader):
    assert visible(api, district_leader, scoped) == {"street", "water", "other_grid"}
    for name in ("street", "water", "other_grid"):
        assert api(district_leader).get(f"/tickets/{scoped[name]}").status_code == 200
    for name in ("cgj", "no_area"):
        response = api(district_leader).get(f"/tickets/{scoped[name]}")
        assert_error(response, 403, "TICKET_FORBIDDEN")


@pytest.mark.parametrize(
    "username, allowed",
    [
        ("cgj", {"cgj"}),
        ("dongguan", {"street"}),
        ("kuiwen", {"street"}),
        ("water", {"water"}),
        ("grid", {"street"}),
        ("leader", ALL),
        ("callback", ALL),
    ],
)
def test_detail_is_forbidden_outside_scope(api, scoped, username, allowed):
    for name, number in scoped.items():
        response = api(username).get(f"/tickets/{number}")
        if name in allowed:
            assert response.status_code == 200, (name, response.get_json())
            assert response.get_json()["data"]["number"] == number
        else:
            error = assert_error(response, 403, "TICKET_FORBIDDEN")
            assert error["message"] == "您无权查看该工单"
            assert number not in response.get_data(as_text=True)


def test_copied_district_government_holds_a_copy_assignment(api, scoped):
    data = api("kuiwen").get(f"/tickets/{scoped['street']}").get_json()["data"]
    roles = {(a["unit"]["code"], a["role"]["value"]) for a in data["assignments"]}
    assert roles == {("U-S-370705001", "lead"), ("U-D-370705", "copy")}
    assert data["lead_unit"] == {"code": "U-S-370705001", "name": "东关街道办事处"}


def test_grid_worker_reports_in_own_grid_and_sees_the_report(api, db, user, ticket_count):
    before = ticket_count()
    body = {"channel": "grid", "request_type": "report", "content": "网格内发现井盖缺失"}
    outside = api("grid").post("/tickets", json={**body, "area": "370705001001003"})
    error = assert_error(outside, 422, "VALIDATION_FAILED")
    assert error["details"] == {"area": "网格员只能上报本人负责网格内的问题"}
    by_phone = api("grid").post(
        "/tickets", json={**body, "channel": "phone", "area": "370705001001002"}
    )
    assert_error(by_phone, 422, "VALIDATION_FAILED")
    assert ticket_count() == before

    response = api("grid").post("/tickets", json={**body, "area": "370705001001002"})
    assert response.status_code == 201, response.get_json()
    number = response.get_json()["data"]["number"]
    assert api("grid").get(f"/tickets/{number}").status_code == 200
    listed = api("grid").get("/tickets").get_json()["data"]["items"]
    assert number in {item["number"] for item in listed}
    assert response.get_json()["data"]["channel"] == {
        "value": Channel.grid.value,
        "label": "网格主动发现",
    }


# -- phone masking ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "username, shown",
    [
        ("leader", "138****0001"),
        ("admin", "138****0001"),
        ("operator", "13805360001"),
        ("dispatcher", "13805360001"),
        ("dongguan", "13805360001"),
        ("kuiwen", "13805360001"),
        ("grid", "13805360001"),
        ("callback", "13805360001"),
        ("supervisor", "13805360001"),
        ("inspector", "138****0001"),
    ],
)
def test_phone_is_masked_for_leader_and_admin_only(api, scoped, username, shown):
    number = scoped["street"]
    detail = api(username).get(f"/tickets/{number}")
    assert detail.status_code == 200
    assert detail.get_json()["data"]["requester_phone"] == shown
    items = api(username).get("/tickets", query_string={"per_page": 200}).get_json()["data"]
    [item] = [i for i in items["items"] if i["number"] == number]
    assert item["requester_phone"] == shown
    if shown != "13805360001":
        assert "13805360001" not in detail.get_data(as_text=True)


def test_masked_numbers_of_every_length_in_lists(api, scoped):
    items = api("leader").get("/tickets", query_string={"per_page": 200}).get_json()["data"]
    phones = {i["number"]: i["requester_phone"] for i in items["items"]}
    assert phones[scoped["other_grid"]] == "053****8888"
    assert phones[scoped["no_area"]] == "*****"


@pytest.mark.parametrize(
    "phone, masked",
    [
        ("13805360001", "138****0001"),
        ("05368888888", "053****8888"),
        ("053688888888", "053*****8888"),
        ("0536888888", "05****8888"),
        ("88888888", "88**8888"),
        ("8888888", "88*8888"),
        ("95598", "*****"),
        ("1234", "****"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_phone(phone, masked):
    assert mask_phone(phone) == masked
    if phone and len(phone) >= 5:
        # Never more digits shown than hidden-plus-four, never the whole number.
        assert masked != phone
        assert len(masked) == len(phone)


def test_logging_in_again_over_a_live_session_needs_no_old_csrf_token(client, db):
    first = login(client, "operator")
    assert first.status_code == 200
    again = login(client, "dispatcher")
    assert again.status_code == 200, again.get_json()
    assert client.get("/api/v1/me").get_json()["data"]["username"] == "dispatcher"


def test_json_answers_are_never_sniffed_as_html(client, db):
    response = client.get("/api/v1/me")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.mimetype == "application/json"


# -- sessions that end on the server, login timing, throttling (issue 12 §9) -------------------
# Sessions the server can end, logins that take the same time for any name, throttling with
# trusted networks and ``Retry-After`` (the security probe of the demo, issue 12 §9).


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
    csrf = login(client).get_json()["data"]["csrf_token"]
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


def test_page_logout_ends_the_session_on_the_server(app, client, db, web_login):
    web_login(client, "dispatcher")
    cookie = stolen_cookie(client)
    page = client.get("/dispatch").get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert with_cookie(app, cookie).get("/dispatch").status_code == 302


def test_logout_ends_every_session_of_the_user(app, client, db):
    other_device = app.test_client()
    login(other_device)
    csrf = login(client).get_json()["data"]["csrf_token"]
    assert other_device.get("/api/v1/me").status_code == 200
    client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert_error(other_device.get("/api/v1/me"), 401, "AUTH_REQUIRED")
    logout = db.scalars(sa.select(AuditLog).where(AuditLog.action == "auth.logout")).all()
    assert [(row.target, row.payload["sessions"]) for row in logout] == [("operator", 2)]


def test_a_password_change_ends_every_session(app, client, db, user, web_login):
    login(client, "water")
    phone = app.test_client()
    web_login(phone, "water")
    commit(lambda s: users.set_password(s, named(s, "admin"), named(s, "water"), "new-pass-2026"))
    assert_error(client.get("/api/v1/me"), 401, "AUTH_REQUIRED")
    assert phone.get("/inbox").status_code == 302
    # The new password works, the old one no longer does.
    assert login(app.test_client(), "water").status_code == 401
    assert login(app.test_client(), "water", "new-pass-2026").status_code == 200
    audit = db.scalars(sa.select(AuditLog).where(AuditLog.action == "user.password")).one()
    assert audit.payload == {"changes": {}, "sessions_ended": 2} and audit.target == "water"


def test_a_weak_password_is_refused_in_words(db, user):
    with pytest.raises(Exception) as caught:
        users.set_password(db, None, user("water"), "short")
    assert caught.value.code == "PASSWORD_TOO_WEAK" and "至少 8 位" in caught.value.message


def test_deactivation_ends_every_session_and_reactivating_does_not_revive_them(
    app, client, db, user
):
    login(client, "water")
    water = user("water")
    commit(lambda s: users.deactivate(s, named(s, "admin"), named(s, "water")))
    assert_error(client.get("/api/v1/me"), 401, "AUTH_REQUIRED")

    def reactivate(session):
        named(session, "water").active = True

    commit(reactivate)
    assert_error(client.get("/api/v1/me"), 401, "AUTH_REQUIRED")
    ends = db.scalars(sa.select(UserSession.end_reason).where(UserSession.user_id == water.id))
    assert set(ends) == {"deactivated"}


def test_a_session_row_keeps_only_a_hash_of_the_key(client, db):
    login(client)
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
    login(client, "nobody-here", "whatever-1")
    login(client, "operator", "whatever-1")
    method = user("operator").password_hash.split("$", 1)[0]
    assert hash_checks == [method, method]


def test_an_inactive_user_costs_one_hash_check_too(client, db, user, hash_checks):
    user("water").active = False
    db.flush()
    assert_error(login(client, "water"), 401, "LOGIN_FAILED")
    assert len(hash_checks) == 1


# -- throttling: Retry-After, trusted networks ----------------------------------------------


def fail(client, username, times, address="127.0.0.1"):
    for _ in range(times):
        client.post(
            "/api/v1/auth/login",
            json={"username": username, "password": "wrong-password"},
            environ_base={"REMOTE_ADDR": address},
        )


def test_a_throttled_login_says_when_to_retry(app, client, db, web_login):
    fail(client, "operator", app.config["LOGIN_MAX_FAILURES"])
    response = login(client)
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
    assert login(client).status_code == 200


def test_a_bad_trusted_network_stops_the_start(app):
    from server.app import create_app

    config = {
        key: app.config[key]
        for key in ("DATABASE_URL", "SECRET_KEY", "CLASSIFIER_MODELS_DIR", "REDIS_URL")
    }
    with pytest.raises(ValueError, match="LOGIN_TRUSTED_NETWORKS"):
        create_app({**config, "LOGIN_TRUSTED_NETWORKS": "10.8.0.0/33", "CLASSIFIER_PRELOAD": False})


@pytest.mark.parametrize(
    ("address", "trusted"),
    [
        ("10.8.3.4", True),
        ("::ffff:10.8.3.4", True),  # an IPv4 client as a dual-stack listener sees it
        ("192.168.1.20", True),
        ("192.168.1.21", False),
        ("203.0.113.9", False),
        ("not-an-address", False),
        (None, False),
    ],
)
def test_trusted_networks(address, trusted):
    networks = auth.trusted_networks("10.8.0.0/16, 192.168.1.20")
    assert auth.is_trusted(address, networks) is trusted
