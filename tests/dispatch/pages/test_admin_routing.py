"""The dispatch catalogue's pages (/admin/routing): administrators only; the list with its
filters and flags, the rule form (a refused rule re-renders with the message and keeps what
was typed, nothing saved), ending and deleting, the preview, and the import page."""

import datetime as dt

import sqlalchemy as sa

from dispatch import routing
from hotline.models import AuditLog, RoutingRule

TOMORROW = routing.today() + dt.timedelta(days=1)


def _count(db):
    db.expire_all()
    return db.scalar(sa.select(sa.func.count()).select_from(RoutingRule))


def test_only_administrators_open_the_pages(client, web_login):
    web_login(client, "dispatcher")
    for path in ["/admin/routing/", "/admin/routing/new", "/admin/routing/preview"]:
        assert client.get(path).status_code == 403


def test_list_filters_and_menu(client, web_login):
    web_login(client, "admin")
    page = client.get("/admin/routing/").get_data(as_text=True)
    assert "派单目录" in page and "市政设施" in page and "U-CGJ" in page
    home = client.get("/admin/").get_data(as_text=True)
    assert "/admin/routing/" in home
    filtered = client.get("/admin/routing/?unit=U-WATER&city=1").get_data(as_text=True)
    assert "供水" in filtered and "U-CGJ" not in filtered.split("<tbody>")[1]
    bad = client.get("/admin/routing/?state=soon")
    assert "查询条件有误" in bad.get_data(as_text=True)


def test_create_refused_then_saved_then_ended_and_deleted(client, web_login, form_token, db):
    web_login(client, "admin")
    before = _count(db)
    token = form_token(client, "/admin/routing/new")
    form = {
        "csrf_token": token,
        "category": "0101",
        "area": ["", ""],
        "unit": "U-ZJJ",
        "valid_from": TOMORROW.isoformat(),
        "valid_to": "",
        "note": "试行",
    }
    refused = client.post("/admin/routing/new", data=form)
    assert refused.status_code == 409
    text = refused.get_data(as_text=True)
    assert "与现有规则冲突" in text and "试行" in text
    assert _count(db) == before

    saved = client.post("/admin/routing/new", data={**form, "replace": "true"})
    assert saved.status_code == 302
    assert _count(db) == before + 1
    rule = db.scalars(sa.select(RoutingRule).order_by(RoutingRule.id.desc())).first()
    assert rule.unit.code == "U-ZJJ" and rule.valid_from == TOMORROW
    rule_id = rule.id

    edit = client.get(f"/admin/routing/{rule_id}").get_data(as_text=True)
    assert "结束此规则" in edit and "删除此规则" in edit
    ended = client.post(
        f"/admin/routing/{rule_id}/end",
        data={"csrf_token": token, "valid_to": (TOMORROW + dt.timedelta(days=5)).isoformat()},
    )
    assert ended.status_code == 302
    db.expire_all()
    assert db.get(RoutingRule, rule_id).valid_to == TOMORROW + dt.timedelta(days=5)
    deleted = client.post(f"/admin/routing/{rule_id}/delete", data={"csrf_token": token})
    assert deleted.status_code == 302
    assert _count(db) == before
    actions = db.scalars(
        sa.select(AuditLog.action).where(AuditLog.target == str(rule_id)).order_by(AuditLog.id)
    ).all()
    assert actions == ["routing_rule.create", "routing_rule.update", "routing_rule.delete"]


def test_preview_page(client, web_login):
    web_login(client, "admin")
    page = client.get(
        "/admin/routing/preview?category=010103&area=370705&area=370705001&date="
        + TOMORROW.isoformat()
    ).get_data(as_text=True)
    assert "决定的规则" in page and "市政设施" in page
    assert "历史办理学习的建议" in page


def test_import_page_lists_routing(client, web_login):
    web_login(client, "admin")
    page = client.get("/admin/imports/routing").get_data(as_text=True)
    assert "事项分类编码" in page and "承办单位编码" in page
    exported = client.get("/admin/imports/routing/export")
    assert exported.status_code == 200 and exported.data[:2] == b"PK"


def test_the_admin_home_warns_of_conflicts(client, web_login, db):
    from hotline.models import Category, Unit

    lamp = db.scalars(sa.select(Category).where(Category.code == "010103")).one()
    for code in ("U-GAJ", "U-ZJJ"):
        unit = db.scalars(sa.select(Unit).where(Unit.code == code)).one()
        db.add(RoutingRule(category=lamp, unit=unit))
    db.flush()
    web_login(client, "admin")
    home = client.get("/admin/").get_data(as_text=True)
    assert "派单目录有 2 条规则互相冲突" in home
    listed = client.get("/admin/routing/?issue=conflict").get_data(as_text=True)
    assert listed.count("routing-flag flag-conflict") == 2
