"""The dispatch catalogue in the JSON API: ``/routing/rules`` (list, create, change, delete),
``/routing/rules/issues`` and ``/routing/preview``. Dispatchers and supervisors read, only
administrators write; every refused write leaves the catalogue and the audit log as they were.
"""

import datetime as dt

import pytest
import sqlalchemy as sa

from dispatch import routing
from hotline.models import AuditLog, RoutingRule
from tests.helpers import assert_error, has_chinese

TODAY = routing.today()
TOMORROW = TODAY + dt.timedelta(days=1)
RULE = {"category": "010103", "area": "370705001", "unit": "U-GAJ"}


def send(api, username, method, path, json=None):
    caller = api(username)
    return caller.client.open(
        "/api/v1" + path, method=method.upper(), json=json, headers=caller.headers
    )


def data(response, status=200):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["success"] is True
    return body["data"]


def snapshot(db):
    db.expire_all()
    rules = db.execute(
        sa.select(
            RoutingRule.id,
            RoutingRule.category_id,
            RoutingRule.area_id,
            RoutingRule.unit_id,
            RoutingRule.valid_from,
            RoutingRule.valid_to,
            RoutingRule.note,
        ).order_by(RoutingRule.id)
    ).all()
    audits = db.scalar(sa.select(sa.func.count()).select_from(AuditLog))
    return rules, audits


def test_create_list_change_delete(api, db):
    created = data(
        send(api, "admin", "post", "/routing/rules", {**RULE, "valid_from": str(TOMORROW)}), 201
    )
    assert created["unit"] == {"code": "U-GAJ", "name": created["unit"]["name"]}
    assert created["state"]["value"] == "future" and created["flags"] == []
    rule_id = created["id"]

    listed = data(api("dispatcher").get("/routing/rules?state=future"))
    assert [r["id"] for r in listed["items"]] == [rule_id]
    assert listed["total"] == 1
    everything = data(api("supervisor").get("/routing/rules?per_page=500"))
    assert everything["total"] == db.scalar(sa.select(sa.func.count()).select_from(RoutingRule))

    changed = data(
        send(api, "admin", "patch", f"/routing/rules/{rule_id}", {"valid_to": "2099-12-31"})
    )
    assert changed["valid_to"] == "2099-12-31" and changed["unit"]["code"] == "U-GAJ"
    whole_city = data(send(api, "admin", "patch", f"/routing/rules/{rule_id}", {"area": None}))
    assert whole_city["area"] is None

    deleted = data(send(api, "admin", "delete", f"/routing/rules/{rule_id}"))
    assert deleted["deleted"]["unit"] == "U-GAJ"
    assert db.get(RoutingRule, rule_id) is None
    actions = db.scalars(
        sa.select(AuditLog.action)
        .where(AuditLog.target == str(rule_id), AuditLog.action.like("routing_rule.%"))
        .order_by(AuditLog.id)
    ).all()
    assert actions == [
        "routing_rule.create",
        "routing_rule.update",
        "routing_rule.update",
        "routing_rule.delete",
    ]


@pytest.mark.parametrize("username", ["dispatcher", "supervisor", "operator", "cgj", "leader"])
def test_other_roles_may_not_write(api, db, username):
    before = snapshot(db)
    rule_id = before[0][0][0]
    for method, path, body in [
        ("post", "/routing/rules", RULE),
        ("patch", f"/routing/rules/{rule_id}", {"unit": "U-GAJ"}),
        ("delete", f"/routing/rules/{rule_id}", None),
    ]:
        response = send(api, username, method, path, body)
        assert_error(response, 403, "ROLE_NOT_ALLOWED")
    assert snapshot(db) == before


@pytest.mark.parametrize("username", ["operator", "cgj", "leader", "callback"])
def test_other_roles_may_not_read(api, username):
    for path in ["/routing/rules", "/routing/rules/issues", "/routing/preview?category=0101"]:
        assert_error(api(username).get(path), 403, "ROLE_NOT_ALLOWED")


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"unit": "U-GAJ"}, 422, "VALIDATION_FAILED", "category"),
        ({**RULE, "category": "999999"}, 422, "VALIDATION_FAILED", "category"),
        ({**RULE, "unit": "U-NOPE"}, 422, "VALIDATION_FAILED", "unit"),
        ({**RULE, "area": "1"}, 422, "VALIDATION_FAILED", "area"),
        ({**RULE, "valid_from": "2026-02-30"}, 422, "VALIDATION_FAILED", "valid_from"),
        ({**RULE, "valid_from": "2030-01-02", "valid_to": "2030-01-01"}, 422, None, "valid_to"),
        ({**RULE, "note": "x" * 301}, 422, "VALIDATION_FAILED", "note"),
        ({**RULE, "colour": "red"}, 422, "VALIDATION_FAILED", "colour"),
        ({"category": "0101", "unit": "U-ZJJ"}, 409, "ROUTING_RULE_EXISTS", None),
        (
            {"category": "0101", "unit": "U-ZJJ", "valid_from": str(TOMORROW)},
            409,
            "ROUTING_CONFLICT",
            None,
        ),
    ],
)
def test_bad_input_is_refused_and_nothing_changes(api, db, body, status, code, field):
    before = snapshot(db)
    response = send(api, "admin", "post", "/routing/rules", body)
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    if code:
        assert error["code"] == code
    if field:
        assert field in error["details"]
    assert has_chinese(error["message"])
    assert snapshot(db) == before


def test_a_refused_change_leaves_the_rule_as_it_was(api, db):
    created = data(send(api, "admin", "post", "/routing/rules", RULE), 201)
    before = snapshot(db)
    response = send(
        api,
        "admin",
        "patch",
        f"/routing/rules/{created['id']}",
        {"valid_from": "2099-01-01", "valid_to": "2098-01-01"},
    )
    assert_error(response, 422, "VALIDATION_FAILED")
    assert snapshot(db) == before
    assert_error(
        send(api, "admin", "delete", "/routing/rules/999999"), 404, "ROUTING_RULE_NOT_FOUND"
    )


def test_issues_and_flags(api):
    data(send(api, "admin", "post", "/routing/rules", {"category": "01", "unit": "U-ZJJ"}), 201)
    issues = data(api("dispatcher").get("/routing/rules/issues"))
    assert issues["counts"]["shadowed"] == 1
    (item,) = issues["items"]
    assert item["category"]["code"] == "01"
    assert item["flags"][0]["kind"] == "shadowed" and item["flags"][0]["label"] == "被覆盖"
    assert has_chinese(item["flags"][0]["message"])
    flagged = data(api("admin").get("/routing/rules?issue=shadowed"))
    assert [r["id"] for r in flagged["items"]] == [item["id"]]
    assert_error(api("admin").get("/routing/rules?issue=nonsense"), 422, "VALIDATION_FAILED")
    assert_error(api("admin").get("/routing/rules?state=soon"), 422, "VALIDATION_FAILED")


def test_preview(api):
    data(send(api, "admin", "post", "/routing/rules", {**RULE, "valid_from": str(TOMORROW)}), 201)
    today = data(api("dispatcher").get("/routing/preview?category=010103&area=370705001"))
    assert today["unit"]["code"] == "U-CGJ"
    assert today["rule"]["category"]["code"] == "0101" and today["beaten"] == []
    assert today["date"] == str(TODAY)
    tomorrow = data(
        api("admin").get(f"/routing/preview?category=010103&area=370705001&date={TOMORROW}")
    )
    assert tomorrow["unit"]["code"] == "U-GAJ"
    assert [r["category"]["code"] for r in tomorrow["beaten"]] == ["0101"]
    assert has_chinese(tomorrow["beaten"][0]["why"]) and has_chinese(tomorrow["explanation"])
    assert "learned" in tomorrow
    by_address = data(
        api("admin").get("/routing/preview?category=010103&address=奎文区东关街道胜利东街100号")
    )
    assert by_address["located"]["code"].startswith("370705001")
    assert by_address["area"]["code"].startswith("370705001")
    assert_error(api("admin").get("/routing/preview"), 422, "VALIDATION_FAILED")
    assert_error(
        api("admin").get("/routing/preview?category=0101&date=tomorrow"), 422, "VALIDATION_FAILED"
    )
    assert_error(api("admin").get("/routing/preview?category=999999"), 404, "REFERENCE_NOT_FOUND")


def test_the_dispatch_suggestion_still_answers(api):
    answer = data(api("dispatcher").get("/routing/suggest?category=010103&area=370705001"))
    assert answer["unit"]["code"] == "U-CGJ"


@pytest.mark.parametrize("field", ["category", "unit"])
@pytest.mark.parametrize("value", [None, ""])
def test_an_edit_cannot_clear_the_category_or_the_unit(api, db, field, value):
    """Found by schemathesis (bench/apicheck.py): ``{"category": null}`` in a PATCH left the
    rule without a category and answered 500."""
    rule_id = data(send(api, "admin", "post", "/routing/rules", RULE), 201)["id"]
    before = snapshot(db)
    response = send(api, "admin", "patch", f"/routing/rules/{rule_id}", {field: value})
    assert_error(response, 422, "VALIDATION_FAILED")
    assert field in response.get_json()["error"]["details"]
    assert snapshot(db) == before
