"""/api/v1/admin/categories: the tree for administrators, adding and changing categories;
other roles and bad input are refused with nothing changed; a deactivated category is refused
at intake through the API with nothing written, and old tickets keep showing its name."""

import pytest
import sqlalchemy as sa

from hotline.models import AuditLog, Category
from tests.helpers import assert_error


def patch(api, path, body):
    return api.client.patch("/api/v1" + path, json=body, headers=api.headers)


def cat(db, code):
    db.expire_all()
    return db.scalars(sa.select(Category).where(Category.code == code)).first()


def audit_count(db):
    return db.scalar(
        sa.select(sa.func.count()).select_from(AuditLog).where(AuditLog.action.like("category.%"))
    )


def test_admin_reads_the_whole_tree(api):
    response = api("admin").get("/admin/categories")
    assert response.status_code == 200
    tree = response.get_json()["data"]
    assert [n["code"] for n in tree][:3] == ["01", "02", "03"]
    water = tree[0]["children"][1]
    assert water["name"] == "供水" and water["utility"] is True
    assert water["level_label"] == "二级分类"
    assert [c["code"] for c in water["children"]][0] == "010201"
    one = api("admin").get("/admin/categories/0102").get_json()["data"]
    assert one["code"] == "0102" and len(one["children"]) == 5


def test_admin_adds_renames_moves_and_deactivates(api, db):
    admin = api("admin")
    created = admin.post("/admin/categories", json={"name": "二次供水", "parent": "0102"})
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.headers["Location"] == "/api/v1/admin/categories/010206"
    assert created.get_json()["data"]["utility"] is True
    renamed = patch(admin, "/admin/categories/010206", {"name": "二次供水设施"})
    assert renamed.get_json()["data"]["name"] == "二次供水设施"
    moved = patch(admin, "/admin/categories/010206", {"parent": "0103"})
    assert moved.status_code == 200
    assert moved.get_json()["data"]["code"] == "010305"
    assert cat(db, "010206") is None
    off = patch(admin, "/admin/categories/010305", {"active": False, "utility": False})
    data = off.get_json()["data"]
    assert (data["active"], data["utility"]) == (False, False)
    actions = [
        a.action
        for a in db.scalars(
            sa.select(AuditLog).where(AuditLog.action.like("category.%")).order_by(AuditLog.id)
        )
    ]
    assert actions == [
        "category.create",
        "category.rename",
        "category.move",
        "category.deactivate",
        "category.utility",
    ]
    # The same PATCH again changes nothing and audits nothing.
    count = audit_count(db)
    assert patch(admin, "/admin/categories/010305", {"active": False}).status_code == 200
    assert audit_count(db) == count


@pytest.mark.parametrize("role", ["operator", "dispatcher", "supervisor", "leader", "cgj"])
def test_other_roles_are_refused(api, db, role):
    client = api(role)
    assert_error(client.get("/admin/categories"), 403, "ROLE_NOT_ALLOWED")
    assert_error(
        client.post("/admin/categories", json={"name": "越权", "parent": "01"}),
        403,
        "ROLE_NOT_ALLOWED",
    )
    assert_error(
        patch(client, "/admin/categories/0102", {"active": False}), 403, "ROLE_NOT_ALLOWED"
    )
    assert cat(db, "0102").active
    assert audit_count(db) == 0


def test_without_a_login_the_api_asks_for_one(client):
    response = client.get("/api/v1/admin/categories")
    assert_error(response, 401, "AUTH_REQUIRED")


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("post", "/admin/categories", {}, 422, "VALIDATION_FAILED"),
        ("post", "/admin/categories", {"name": "x", "parent": "9999"}, 422, "VALIDATION_FAILED"),
        ("post", "/admin/categories", {"name": "x", "colour": "red"}, 422, "VALIDATION_FAILED"),
        ("post", "/admin/categories", {"name": 12}, 422, "VALIDATION_FAILED"),
        (
            "post",
            "/admin/categories",
            {"name": "停水", "parent": "0102"},
            422,
            "CATEGORY_NAME_TAKEN",
        ),
        ("post", "/admin/categories", {"name": "x", "parent": "010201"}, 422, "CATEGORY_TOO_DEEP"),
        ("post", "/admin/categories", {"name": "x", "code": "99"}, 201, None),
        (
            "post",
            "/admin/categories",
            {"name": "y", "parent": "01", "code": "0201"},
            422,
            "CATEGORY_CODE_INVALID",
        ),
        ("patch", "/admin/categories/0102", {"parent": "010201"}, 422, "CATEGORY_MOVE_INTO_ITSELF"),
        ("patch", "/admin/categories/010201", {"parent": "02"}, 422, "CATEGORY_MOVE_LEVEL"),
        ("patch", "/admin/categories/010201", {"parent": None}, 422, "VALIDATION_FAILED"),
        ("patch", "/admin/categories/0102", {"active": "no"}, 422, "VALIDATION_FAILED"),
        ("patch", "/admin/categories/0102", {"utility": None}, 422, "VALIDATION_FAILED"),
        ("patch", "/admin/categories/0102", {"name": ""}, 422, "VALIDATION_FAILED"),
        ("patch", "/admin/categories/9999", {"name": "x"}, 404, "CATEGORY_NOT_FOUND"),
    ],
)
def test_bad_input_is_refused_with_nothing_changed(api, db, method, path, body, status, code):
    before = {c.code: (c.name, c.active, c.utility) for c in db.scalars(sa.select(Category))}
    client = api("admin")
    if method == "post":
        response = client.post(path, json=body)
    else:
        response = patch(client, path, body)
    if code is None:
        assert response.status_code == status
        return
    assert_error(response, status, code)
    after = {c.code: (c.name, c.active, c.utility) for c in db.scalars(sa.select(Category))}
    assert after == before
    assert audit_count(db) == 0


def test_a_failing_change_of_several_fields_keeps_none_of_them(api, db):
    """Rename (fine) and move under a descendant (refused): one transaction, nothing kept."""
    response = patch(api("admin"), "/admin/categories/0102", {"name": "自来水", "parent": "010201"})
    assert_error(response, 422, "CATEGORY_MOVE_INTO_ITSELF")
    assert cat(db, "0102").name == "供水"
    assert audit_count(db) == 0


def new_ticket(category):
    return {
        "channel": "phone",
        "request_type": "complaint",
        "content": "家里停水两天了，一直没有通知，希望尽快恢复供水。",
        "requester_phone": "13905361234",
        "category": category,
    }


def test_deactivated_category_is_refused_at_intake_with_nothing_written(
    api, db, ticket_count, user, make_ticket
):
    old = make_ticket(user("operator"), category="010201")
    db.flush()
    admin = api("admin")
    assert patch(admin, "/admin/categories/0102", {"active": False}).status_code == 200
    count = ticket_count()
    for code in ("0102", "010201"):
        response = api("operator").post("/tickets", json=new_ticket(code))
        error = assert_error(response, 422, "CATEGORY_INACTIVE")
        assert "已停用" in error["message"]
        assert error["details"]["category"]
    assert ticket_count() == count
    # The old ticket keeps its category and shows it by name.
    shown = api("supervisor").get(f"/tickets/{old.number}").get_json()["data"]
    assert shown["category"] == {"code": "010201", "name": "停水"}
    # Reactivated, the category is accepted again at once.
    assert patch(admin, "/admin/categories/0102", {"active": True}).status_code == 200
    response = api("operator").post("/tickets", json=new_ticket("010201"))
    assert response.status_code == 201, response.get_data(as_text=True)


def test_a_moved_category_is_found_under_its_new_code_at_once(api, db):
    # Looked up once under its old code (cached), then moved.
    response = api("operator").post("/tickets", json=new_ticket("010201"))
    assert response.status_code == 201
    assert patch(api("admin"), "/admin/categories/010201", {"parent": "0103"}).status_code == 200
    stale = api("operator").post("/tickets", json=new_ticket("010201"))
    assert_error(stale, 422, "VALIDATION_FAILED")
    fresh = api("operator").post("/tickets", json=new_ticket("010305"))
    assert fresh.status_code == 201
    assert fresh.get_json()["data"]["category"] == {"code": "010305", "name": "停水"}


def test_reference_list_leaves_out_deactivated_categories(api):
    assert patch(api("admin"), "/admin/categories/0102", {"active": False}).status_code == 200
    codes = {c["code"] for c in api("operator").get("/categories").get_json()["data"]}
    assert "0101" in codes and "0102" not in codes and "010201" not in codes


STREETLIGHT = "小区门口的路灯坏了一个星期，晚上很黑，希望尽快修好。"


def test_the_suggester_stops_suggesting_a_deactivated_category(api):
    first = api("operator").post("/suggest", json={"content": STREETLIGHT})
    top = first.get_json()["data"]["category"]["top"]
    assert top[0]["code"].startswith("0101")
    assert patch(api("admin"), "/admin/categories/0101", {"active": False}).status_code == 200
    again = api("operator").post("/suggest", json={"content": STREETLIGHT})
    category = again.get_json()["data"]["category"]
    assert category["top"] and not any(t["code"].startswith("0101") for t in category["top"])
    assert category["abstain"] is True
