"""用户管理 pages (hotline/admin/users.py) and 修改密码 (/account/password)."""

import re

import pytest
import sqlalchemy as sa

from hotline.models import AuditLog, User
from tests.helpers import PASSWORD

GRID_A, GRID_B = "370705001001001", "370705001001002"


@pytest.fixture
def admin_client(client, web_login):
    web_login(client, "admin")
    return client


def token_of(client, path):
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


def get_user(db, username):
    return db.scalars(sa.select(User).where(User.username == username)).first()


def test_the_list_searches_and_shows_logins_and_sessions(admin_client):
    page = admin_client.get("/admin/users/?role=unit_handler").get_data(as_text=True)
    assert "用户管理" in page and "water" in page and "孙立伟" in page
    assert "operator" not in re.sub(r"<(select|option)[^>]*>.*?</\1>", "", page, flags=re.S)
    assert "最近登录" in page and "在线" in page
    found = admin_client.get("/admin/users/?q=杨磊").get_data(as_text=True)
    assert "2 个网格" in found and "共 1 人" in found
    assert admin_client.get("/admin/users/?page=x").status_code == 422
    home = admin_client.get("/admin/").get_data(as_text=True)
    assert "用户管理" in home


@pytest.mark.parametrize("username", ["operator", "water", "leader"])
def test_other_roles_may_not_open_the_pages(client, web_login, db, username):
    web_login(client, username)
    assert client.get("/admin/users/").status_code == 403
    assert client.get("/admin/users/water").status_code == 403
    token = token_of(client, "/account/password")
    response = client.post("/admin/users/water/deactivate", data={"csrf_token": token})
    assert response.status_code == 403
    assert get_user(db, "water").active


def test_create_shows_the_temporary_password_once(admin_client, db):
    token = token_of(admin_client, "/admin/users/new")
    form = admin_client.get("/admin/users/new").get_data(as_text=True)
    assert "密码至少 8 位，须同时包含字母和数字" in form and 'data-picker="unit"' in form
    response = admin_client.post(
        "/admin/users/new",
        data={
            "csrf_token": token,
            "username": "wang.wu",
            "name": "王五",
            "role": "grid_worker",
            "unit": "",
            "grids": [GRID_A, GRID_B],
            "district": "370705",
        },
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    shown = re.search(r'data-testid="temporary-password">([^<]+)<', page).group(1)
    created = get_user(db, "wang.wu")
    assert created.check_password(shown) and created.must_change_password
    assert sorted(g.code for g in created.grids) == [GRID_A, GRID_B]
    assert created.district.code == "370705"
    assert shown not in admin_client.get("/admin/users/wang.wu").get_data(as_text=True)


def test_an_inspector_is_created_from_the_role_choices(admin_client, db):
    form = admin_client.get("/admin/users/new").get_data(as_text=True)
    assert '<option value="inspector">质检员</option>' in form
    response = admin_client.post(
        "/admin/users/new",
        data={
            "csrf_token": token_of(admin_client, "/admin/users/new"),
            "username": "qc.zhao",
            "name": "赵质检",
            "role": "inspector",
            "unit": "U-HOTLINE",
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert get_user(db, "qc.zhao").role.label == "质检员"


def test_a_refused_create_keeps_what_was_typed_and_saves_nothing(admin_client, db):
    token = token_of(admin_client, "/admin/users/new")
    response = admin_client.post(
        "/admin/users/new",
        data={
            "csrf_token": token,
            "username": "li.si",
            "name": "李四<b>",
            "role": "unit_handler",
            "password": "Secret-2026z",
        },
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "承办人须绑定一个承办单位" in page
    assert 'value="李四&lt;b&gt;"' in page and "Secret-2026z" not in page
    assert get_user(db, "li.si") is None


def test_edit_saves_and_audits(admin_client, db):
    token = token_of(admin_client, "/admin/users/water")
    page = admin_client.get("/admin/users/water").get_data(as_text=True)
    assert "确认停用" in page and "确认重置密码" in page
    response = admin_client.post(
        "/admin/users/water",
        data={
            "csrf_token": token,
            "name": "孙立伟",
            "role": "unit_handler",
            "unit": "U-CGJ",
            "phone": "13905361234",
        },
    )
    assert response.status_code == 302
    water = get_user(db, "water")
    assert water.unit.code == "U-CGJ" and water.phone == "13905361234"
    row = db.scalars(sa.select(AuditLog).where(AuditLog.action == "user.update")).one()
    assert row.payload["changes"]["unit"] == ["U-WATER", "U-CGJ"]
    refused = admin_client.post(
        "/admin/users/water",
        data={"csrf_token": token, "name": "", "role": "unit_handler", "unit": "U-CGJ"},
    )
    assert refused.status_code == 422 and "请填写姓名" in refused.get_data(as_text=True)
    assert get_user(db, "water").name == "孙立伟"


def test_deactivate_activate_and_reset_from_the_page(admin_client, db):
    token = token_of(admin_client, "/admin/users/water")
    response = admin_client.post("/admin/users/water/deactivate", data={"csrf_token": token})
    assert response.status_code == 302
    assert not get_user(db, "water").active
    assert "已停用" in admin_client.get(response.headers["Location"]).get_data(as_text=True)
    admin_client.post("/admin/users/water/activate", data={"csrf_token": token})
    assert get_user(db, "water").active
    weak = admin_client.post(
        "/admin/users/water/reset-password", data={"csrf_token": token, "password": "weak"}
    )
    assert weak.status_code == 302 and not get_user(db, "water").must_change_password
    assert "未重置密码" in admin_client.get(weak.headers["Location"]).get_data(as_text=True)
    reset = admin_client.post(
        "/admin/users/water/reset-password", data={"csrf_token": token, "password": ""}
    )
    shown = re.search(r'data-testid="temporary-password">([^<]+)<', reset.get_data(as_text=True))
    assert get_user(db, "water").check_password(shown.group(1))
    own = admin_client.post("/admin/users/admin/deactivate", data={"csrf_token": token})
    assert "不能停用自己的账号" in admin_client.get(own.headers["Location"]).get_data(as_text=True)


def test_every_page_leads_to_the_password_change_until_done(api, client, db, web_login):
    # (Reset through the API: two page clients in one test share Flask-WTF's cached token.)
    reset = api("admin").post("/users/water/reset-password", json={"password": "Temp-2026x"})
    assert reset.status_code == 200
    assert web_login(client, "water", "Temp-2026x").status_code == 302
    held = client.get("/inbox")
    assert held.status_code == 302
    assert held.headers["Location"].startswith("/account/password?next=/inbox")
    page = client.get(held.headers["Location"]).get_data(as_text=True)
    assert "管理员已重置您的密码" in page and "密码至少 8 位" in page
    token = token_of(client, "/account/password")
    mismatch = client.post(
        "/account/password",
        data={
            "csrf_token": token,
            "old_password": "Temp-2026x",
            "password": "Mine-2026y",
            "password_again": "Mine-2026z",
            "next": "/inbox",
        },
    )
    assert mismatch.status_code == 422 and "两次输入的新密码不一致" in mismatch.get_data(
        as_text=True
    )
    done = client.post(
        "/account/password",
        data={
            "csrf_token": token,
            "old_password": "Temp-2026x",
            "password": "Mine-2026y",
            "password_again": "Mine-2026y",
            "next": "/inbox",
        },
    )
    assert done.status_code == 302 and done.headers["Location"] == "/inbox"
    assert client.get("/inbox").status_code == 200
    assert not get_user(db, "water").must_change_password


def test_the_header_links_to_the_own_password_page(client, web_login, db):
    web_login(client, "operator")
    page = client.get("/account/password").get_data(as_text=True)
    assert 'class="who-password" href="/account/password"' in page
    assert "原密码" in page and "密码至少 8 位" in page
    token = token_of(client, "/account/password")
    wrong = client.post(
        "/account/password",
        data={
            "csrf_token": token,
            "old_password": "nope",
            "password": "Mine-2026y",
            "password_again": "Mine-2026y",
        },
    )
    assert wrong.status_code == 422 and "原密码不正确" in wrong.get_data(as_text=True)
    done = client.post(
        "/account/password",
        data={
            "csrf_token": token,
            "old_password": PASSWORD,
            "password": "Mine-2026y",
            "password_again": "Mine-2026y",
        },
    )
    assert done.status_code == 302
    assert get_user(db, "operator").check_password("Mine-2026y")


def test_the_users_import_is_on_the_import_page(admin_client):
    page = admin_client.get("/admin/imports/users").get_data(as_text=True)
    assert "初始密码" in page and "网格编码" in page
    export = admin_client.get("/admin/imports/users/export")
    assert export.status_code == 200 and export.data[:2] == b"PK"
