"""The 承办单位 pages of the administration: list and filters, the form (areas ticked by name,
phones one per line, errors shown with what was typed), and the deactivation page."""

import re

import pytest
import sqlalchemy as sa

from dispatch import operations as ops
from hotline.models import Unit
from tests.dispatch.common import DONGGUAN, STREETLIGHT

NEIGHBOUR = "U-S-370705002"


@pytest.fixture
def admin_client(client, web_login):
    web_login(client, "admin")
    return client


def token(page):
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


def unit(db, code):
    db.expire_all()
    return db.scalars(sa.select(Unit).where(Unit.code == code)).first()


def test_list_filters_by_text_kind_and_status(admin_client):
    page = admin_client.get("/admin/units/").get_data(as_text=True)
    assert "承办单位" in page and "潍坊市城市管理局" in page and "U-CGJ" in page
    assert 'href="/admin/units/new"' in page

    page = admin_client.get("/admin/units/?q=东关").get_data(as_text=True)
    assert "东关街道" in page and "潍坊市城市管理局" not in page
    page = admin_client.get("/admin/units/?kind=utility&status=active").get_data(as_text=True)
    assert "公共服务企业" in page and "潍坊市城市管理局" not in page
    # The administration lists the section.
    assert "/admin/units/" in admin_client.get("/admin/").get_data(as_text=True)


@pytest.mark.parametrize("username", ["dispatcher", "cgj"])
def test_other_roles_get_403(client, web_login, username):
    web_login(client, username)
    assert client.get("/admin/units/").status_code == 403
    assert client.get("/admin/units/new").status_code == 403


def test_create_through_the_form(admin_client, db):
    page = admin_client.get("/admin/units/new").get_data(as_text=True)
    assert 'name="areas" value="370705001"' in page and "东关街道" in page
    assert '<option value="utility">公共服务企业</option>' in page
    response = admin_client.post(
        "/admin/units/new",
        data={
            "csrf_token": token(page),
            "code": "U-NEWGAS",
            "name": "潍坊市燃气公司",
            "kind": "utility",
            "always_on": "true",
            "areas": ["370705", "370702"],
            "phones": "13805360000\n0536-8234567\n",
        },
    )
    assert response.status_code == 302
    created = unit(db, "U-NEWGAS")
    assert created.always_on and created.phones == ["13805360000", "05368234567"]
    assert sorted(a.code for a in created.areas) == ["370702", "370705"]
    listed = admin_client.get(response.location).get_data(as_text=True)
    assert "已新增承办单位“潍坊市燃气公司”" in listed


def test_a_refused_form_shows_the_reason_and_what_was_typed(admin_client, db):
    page = admin_client.get("/admin/units/new").get_data(as_text=True)
    response = admin_client.post(
        "/admin/units/new",
        data={
            "csrf_token": token(page),
            "code": "U-NEWGAS",
            "name": "<b>燃气</b>",
            "kind": "utility",
            "areas": ["370705"],
            "phones": "13805360000\n12345",
        },
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "格式不正确" in html and "12345" in html
    assert "&lt;b&gt;燃气&lt;/b&gt;" in html and "<b>燃气</b>" not in html
    assert 'value="370705" checked' in html
    assert unit(db, "U-NEWGAS") is None


def test_edit_keeps_the_code_and_saves_the_rest(admin_client, db):
    page = admin_client.get("/admin/units/U-CGJ/edit").get_data(as_text=True)
    assert 'name="code"' not in page
    response = admin_client.post(
        "/admin/units/U-CGJ/edit",
        data={
            "csrf_token": token(page),
            "name": "潍坊市城市管理局",
            "kind": "city_department",
            "phones": "13805361234",
        },
    )
    assert response.status_code == 302
    assert unit(db, "U-CGJ").phones == ["13805361234"]


def test_deactivate_page_moves_open_tickets(admin_client, db, user, make_ticket):
    ticket = make_ticket(user("operator"), category=STREETLIGHT, area="370705001")
    ops.dispatch(db, user("dispatcher"), ticket, lead=unit(db, DONGGUAN))
    db.flush()
    path = f"/admin/units/{DONGGUAN}/deactivate"
    page = admin_client.get(path).get_data(as_text=True)
    assert 'data-testid="open-total">1<' in page
    assert ticket.number in page
    assert 'name="move_to"' in page and f'value="{NEIGHBOUR}"' in page
    assert f'value="{DONGGUAN}"' not in page  # not to itself

    refused = admin_client.post(path, data={"csrf_token": token(page), "reason": "合并"})
    assert refused.status_code == 422
    assert "请选择接收单位" in refused.get_data(as_text=True)
    assert unit(db, DONGGUAN).active

    done = admin_client.post(
        path, data={"csrf_token": token(page), "move_to": NEIGHBOUR, "reason": "街道合并"}
    )
    assert done.status_code == 302
    assert not unit(db, DONGGUAN).active
    listed = admin_client.get(done.location).get_data(as_text=True)
    assert "1 件在办工单已改派" in listed

    again = admin_client.post(
        f"/admin/units/{DONGGUAN}/reactivate", data={"csrf_token": token(listed)}
    )
    assert again.status_code == 302
    assert unit(db, DONGGUAN).active


def test_unknown_unit_is_404(admin_client):
    assert admin_client.get("/admin/units/U-NONE/edit").status_code == 404
    assert admin_client.get("/admin/units/U-NONE/deactivate").status_code == 404


def test_units_sms_cannot_reach_are_flagged_when_sms_is_on(app, admin_client, monkeypatch):
    # Without SMS the administration has nothing to say about phones.
    assert "未登记值班电话" not in admin_client.get("/admin/").get_data(as_text=True)
    monkeypatch.setitem(app.config, "NOTIFY_SENDERS", "logging,sms")
    home = admin_client.get("/admin/").get_data(as_text=True)
    assert "个启用的承办单位未登记值班电话" in home
    assert "/admin/units/?phones=missing" in home
    listed = admin_client.get("/admin/units/?phones=missing").get_data(as_text=True)
    assert "潍坊市城市管理局" in listed
