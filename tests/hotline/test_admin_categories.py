"""The 事项分类 pages of the administration (hotline/admin/categories.py): the tree, each
category's page and its forms; refusals re-render with the Chinese message and change
nothing; other roles get 403; the pickers follow a deactivation at once."""

import io

import pytest
import sqlalchemy as sa

from hotline import pickers
from hotline.models import AuditLog, Category


def cat(db, code):
    db.expire_all()
    return db.scalars(sa.select(Category).where(Category.code == code)).first()


@pytest.fixture
def admin_client(client, web_login):
    web_login(client, "admin")
    return client


def post(client, form_token, path, page, data):
    return client.post(path, data={"csrf_token": form_token(client, page), **data})


def test_tree_page_lists_every_level_with_codes_and_flags(admin_client, db):
    cat(db, "0103").active = False
    db.flush()
    html = admin_client.get("/admin/categories/").get_data(as_text=True)
    assert "<h1>事项分类</h1>" in html
    assert 'href="/admin/categories/010201"' in html
    assert "水电气热" in html and "已停用" in html
    assert 'data-picker="category"' in html
    assert "/admin/imports/categories" in html
    home = admin_client.get("/admin/").get_data(as_text=True)
    assert 'href="/admin/categories/"' in home


def test_find_opens_the_chosen_category(admin_client):
    response = admin_client.get("/admin/categories/find?code=0102")
    assert response.headers["Location"] == "/admin/categories/0102"
    assert admin_client.get("/admin/categories/9999").status_code == 404


def test_add_rename_move_utility_deactivate_through_forms(admin_client, db, form_token):
    page = "/admin/categories/0102"
    response = post(
        admin_client, form_token, "/admin/categories/", page, {"name": "二次供水", "parent": "0102"}
    )
    assert response.headers["Location"] == "/admin/categories/010206"
    page = "/admin/categories/010206"
    response = post(admin_client, form_token, page + "/rename", page, {"name": "二次供水设施"})
    assert response.status_code == 302
    assert cat(db, "010206").name == "二次供水设施"
    response = post(
        admin_client, form_token, page + "/move", page, {"parent": "0103", "confirm": "yes"}
    )
    assert response.headers["Location"] == "/admin/categories/010305"
    shown = admin_client.get("/admin/categories/010305").get_data(as_text=True)
    assert "已移动到“供电”之下，编码 010206 → 010305" in shown
    page = "/admin/categories/010305"
    post(admin_client, form_token, page + "/utility", page, {"utility": "false"})
    assert cat(db, "010305").utility is False
    post(admin_client, form_token, page + "/active", page, {"active": "false", "confirm": "yes"})
    assert cat(db, "010305").active is False
    shown = admin_client.get(page).get_data(as_text=True)
    assert "已停用“二次供水设施”" in shown
    post(admin_client, form_token, page + "/active", page, {"active": "true"})
    assert cat(db, "010305").active is True
    actions = {a.action for a in db.scalars(sa.select(AuditLog))}
    assert {
        "category.create",
        "category.rename",
        "category.move",
        "category.utility",
        "category.deactivate",
        "category.activate",
    } <= actions


def test_refusals_rerender_with_the_message_and_change_nothing(admin_client, db, form_token):
    page = "/admin/categories/0102"
    response = post(admin_client, form_token, page + "/move", page, {"parent": "02"})
    assert response.status_code == 422
    assert "请勾选确认后再提交" in response.get_data(as_text=True)
    response = post(
        admin_client, form_token, page + "/move", page, {"parent": "0103", "confirm": "yes"}
    )
    assert response.status_code == 422
    assert "只能移动到一级分类之下" in response.get_data(as_text=True)
    response = post(admin_client, form_token, page + "/rename", page, {"name": "供电"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "已有名为“供电”的分类" in html
    assert 'value="供电"' in html  # what was typed stays
    response = post(admin_client, form_token, page + "/active", page, {"active": "false"})
    assert response.status_code == 422
    response = post(
        admin_client, form_token, "/admin/categories/", "/admin/categories/", {"name": "城乡建设"}
    )
    assert response.status_code == 422
    assert cat(db, "0102").name == "供水" and cat(db, "0102").active
    assert db.scalars(sa.select(AuditLog).where(AuditLog.action.like("category.%"))).all() == []


@pytest.mark.parametrize("username", ["operator", "dispatcher", "supervisor"])
def test_other_roles_get_403(client, web_login, form_token, username, db):
    web_login(client, username)
    assert client.get("/admin/categories/").status_code == 403
    assert client.get("/admin/categories/0102").status_code == 403
    home = client.get("/").headers["Location"]
    token = form_token(client, home)  # the header's logout form carries one
    for path, data in [
        ("/admin/categories/0102/active", {"active": "false", "confirm": "yes"}),
        ("/admin/categories/0102/rename", {"name": "越权"}),
        ("/admin/categories/", {"name": "越权"}),
    ]:
        response = client.post(path, data={"csrf_token": token, **data})
        assert response.status_code == 403
    assert cat(db, "0102").active and cat(db, "0102").name == "供水"
    assert db.scalars(sa.select(AuditLog).where(AuditLog.action.like("category.%"))).all() == []


def test_forms_need_the_csrf_token(admin_client, db):
    response = admin_client.post(
        "/admin/categories/0102/active", data={"active": "false", "confirm": "yes"}
    )
    assert response.status_code == 400
    assert cat(db, "0102").active


def test_pickers_stop_offering_a_deactivated_category_at_once(admin_client, db, form_token):
    page = "/admin/categories/0102"
    post(admin_client, form_token, page + "/active", page, {"active": "false", "confirm": "yes"})
    with admin_client.application.test_request_context("/console"):
        offered = {c.code for g in pickers.category_groups() for c in g.options}
    assert "0101" in offered and "0102" not in offered and "010201" not in offered


def test_import_page_checks_then_imports_a_names_only_table(admin_client, db, form_token):
    page = "/admin/imports/categories"
    html = admin_client.get(page).get_data(as_text=True)
    assert "导入事项分类" in html and "附件1.csv" in html
    table = "一级分类,二级分类,三级分类\n城乡建设,供水,二次供水\n".encode("gb18030")

    def upload(mode):
        return admin_client.post(
            page,
            data={
                "csrf_token": form_token(admin_client, page),
                "mode": mode,
                "files": (io.BytesIO(table), "附件1.csv"),
            },
            content_type="multipart/form-data",
        )

    checked = upload("check")
    assert checked.status_code == 200
    assert "试运行（未保存）：新增 1 条，更新 0 条，未变 2 条" in checked.get_data(as_text=True)
    assert cat(db, "010206") is None
    imported = upload("apply")
    assert "已导入：新增 1 条" in imported.get_data(as_text=True)
    assert cat(db, "010206").name == "二次供水"
    exported = admin_client.get(page + "/export")
    assert exported.status_code == 200
    assert exported.data[:4] == b"PK\x03\x04"
