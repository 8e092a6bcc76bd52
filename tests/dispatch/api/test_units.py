"""承办单位管理 in the JSON API: administrators only, every refusal precise and leaving
everything as it was, deactivation moving open tickets in one transaction."""

import pytest
import sqlalchemy as sa

from dispatch import operations as ops
from hotline.models import AuditLog, TicketEvent, Unit
from tests.dispatch.common import DONGGUAN, STREETLIGHT
from tests.helpers import assert_error

NEIGHBOUR = "U-S-370705002"
OTHER_ROLES = ["dispatcher", "supervisor", "operator", "cgj", "leader"]
NEW = {
    "code": "U-TEST",
    "name": "潍坊市测试局",
    "kind": "city_department",
    "areas": ["370705"],
    "always_on": False,
    "phones": ["13805360000"],
}


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


def state(db):
    """Everything a unit change could touch, to prove a refusal changed nothing."""
    db.expire_all()
    return {
        "units": db.execute(sa.select(Unit.__table__).order_by(Unit.id)).all(),
        "audit": db.scalar(sa.select(sa.func.count()).select_from(AuditLog)),
        "events": db.scalar(sa.select(sa.func.count()).select_from(TicketEvent)),
    }


@pytest.fixture
def open_ticket(db, user, make_ticket):
    """A ticket 东关街道 leads (signed)."""
    ticket = make_ticket(user("operator"), category=STREETLIGHT, area="370705001")
    street = db.scalars(sa.select(Unit).where(Unit.code == DONGGUAN)).one()
    ops.dispatch(db, user("dispatcher"), ticket, lead=street)
    ops.sign(db, user("dongguan"), ticket)
    db.flush()
    return ticket


def test_list_filters_and_counts_open_tickets(api, open_ticket):
    rows = data(api("admin").get("/admin/units"))
    by_code = {r["code"]: r for r in rows}
    assert by_code[DONGGUAN]["open_tickets"] == 1
    assert by_code["U-CGJ"]["open_tickets"] == 0
    assert by_code[DONGGUAN]["kind"] == {"value": "street_office", "label": "街道乡镇"}
    assert by_code[DONGGUAN]["areas"][0]["code"] == "370705001"

    found = data(api("admin").get("/admin/units?q=东关"))
    assert [r["code"] for r in found] == [DONGGUAN]
    # Codes match whatever their case; % and _ are plain characters.
    assert [r["code"] for r in data(api("admin").get("/admin/units?q=u-cgj"))] == ["U-CGJ"]
    assert data(api("admin").get("/admin/units?q=%25")) == []
    utilities = data(api("admin").get("/admin/units?kind=utility&active=true"))
    assert utilities and {r["kind"]["value"] for r in utilities} == {"utility"}
    assert_error(api("admin").get("/admin/units?kind=ministry"), 422, "VALIDATION_FAILED")
    assert_error(api("admin").get("/admin/units?active=maybe"), 422, "VALIDATION_FAILED")
    # The public list of active units is untouched.
    assert data(api("dispatcher").get("/units"))


@pytest.mark.parametrize("username", OTHER_ROLES)
def test_other_roles_are_refused_everything(api, db, username, open_ticket):
    before = state(db)
    calls = [
        ("get", "/admin/units", None),
        ("get", f"/admin/units/{DONGGUAN}", None),
        ("post", "/admin/units", NEW),
        ("patch", "/admin/units/U-CGJ", {"name": "改名"}),
        ("post", f"/admin/units/{DONGGUAN}/deactivate", {"move_to": NEIGHBOUR, "reason": "调整"}),
        ("post", "/admin/units/U-CGJ/reactivate", None),
    ]
    for method, path, body in calls:
        error = assert_error(send(api, username, method, path, body), 403, "ROLE_NOT_ALLOWED")
        assert "无权管理承办单位" in error["message"]
    assert state(db) == before


def test_create_then_edit_is_audited(api, db):
    created = data(api("admin").post("/admin/units", json=NEW), 201)
    assert created["phones"] == ["13805360000"]
    assert created["areas"] == [{"code": "370705", "name": "奎文区", "level": "district"}]

    edited = data(
        send(
            api,
            "admin",
            "patch",
            "/admin/units/U-TEST",
            {"name": "潍坊市测试管理局", "areas": [], "phones": ["0536-8234567"]},
        )
    )
    assert edited["changes"] == {
        "areas": [["370705"], []],
        "name": ["潍坊市测试局", "潍坊市测试管理局"],
        "phones": [["13805360000"], ["05368234567"]],
    }
    actions = db.scalars(
        sa.select(AuditLog.action).where(AuditLog.target == "U-TEST").order_by(AuditLog.id)
    ).all()
    assert actions == ["unit.create", "unit.update"]


@pytest.mark.parametrize(
    "body, status, code, field",
    [
        ({**NEW, "phones": ["110"]}, 422, "VALIDATION_FAILED", "phones"),
        ({**NEW, "areas": ["000000"]}, 422, "VALIDATION_FAILED", "areas"),
        ({**NEW, "kind": "大队"}, 422, "VALIDATION_FAILED", "kind"),
        ({**NEW, "name": " "}, 422, "VALIDATION_FAILED", "name"),
        ({**NEW, "always_on": "yes"}, 422, "VALIDATION_FAILED", "always_on"),
        ({**NEW, "extra": 1}, 422, "VALIDATION_FAILED", "extra"),
        ({**NEW, "code": "U-CGJ"}, 409, "UNIT_CODE_TAKEN", "code"),
        ({**NEW, "kind": "street_office"}, 422, "VALIDATION_FAILED", "areas"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_made(api, db, body, status, code, field):
    before = state(db)
    error = assert_error(api("admin").post("/admin/units", json=body), status, code)
    assert field in error["details"]
    assert state(db) == before


def test_edits_that_cannot_be_made(api, db):
    before = state(db)
    for body, field in [({"code": "U-NEW"}, "code"), ({"active": False}, "active")]:
        error = assert_error(
            send(api, "admin", "patch", "/admin/units/U-CGJ", body), 422, "VALIDATION_FAILED"
        )
        assert field in error["details"]
    assert_error(
        send(api, "admin", "patch", "/admin/units/U-NONE", {"name": "x"}), 404, "UNIT_NOT_FOUND"
    )
    assert state(db) == before


def test_deactivate_refuses_open_tickets_then_moves_them(api, db, open_ticket):
    before = state(db)
    path = f"/admin/units/{DONGGUAN}/deactivate"
    error = assert_error(api("admin").post(path, json={}), 409, "UNIT_HAS_OPEN_TICKETS")
    assert error["details"]["open_tickets"] == 1
    for body, code in [
        ({"move_to": "U-NONE", "reason": "调整"}, "VALIDATION_FAILED"),
        ({"move_to": DONGGUAN, "reason": "调整"}, "UNIT_MOVE_TARGET_INVALID"),
        ({"move_to": "U-HOTLINE", "reason": "调整"}, "UNIT_MOVE_TARGET_INVALID"),
        ({"move_to": NEIGHBOUR}, "VALIDATION_FAILED"),
    ]:
        error = assert_error(api("admin").post(path, json=body), 422, code)
        assert error["details"]
    assert state(db) == before

    done = data(api("admin").post(path, json={"move_to": NEIGHBOUR, "reason": "街道合并"}))
    assert done["moved_tickets"] == 1
    assert done["tickets"] == [open_ticket.number]
    assert done["moved_to"]["code"] == NEIGHBOUR
    assert done["unit"]["active"] is False
    assert done["routing_rules"]["count"] >= 0
    db.expire_all()
    assert open_ticket.lead_unit.code == NEIGHBOUR
    assert_error(api("admin").post(path, json={}), 409, "UNIT_ALREADY_INACTIVE")

    inactive = data(api("admin").get("/admin/units?active=false"))
    assert DONGGUAN in [r["code"] for r in inactive]
    again = data(api("admin").post(f"/admin/units/{DONGGUAN}/reactivate"))
    assert again["active"] is True and again["open_tickets"] == 0


def test_a_failed_move_leaves_nothing_moved(api, db, user, make_ticket, open_ticket, monkeypatch):
    second = make_ticket(user("operator"), category=STREETLIGHT, area="370705001")
    street = db.scalars(sa.select(Unit).where(Unit.code == DONGGUAN)).one()
    ops.dispatch(db, user("dispatcher"), second, lead=street)
    db.flush()
    real, calls = ops.reassign, []

    def fails_second(session, actor, ticket, **kwargs):
        calls.append(ticket.number)
        if len(calls) == 2:
            raise ops.Conflict("工单已被他人更新，请刷新后重试", code="TICKET_VERSION_CONFLICT")
        return real(session, actor, ticket, **kwargs)

    monkeypatch.setattr(ops, "reassign", fails_second)
    before = state(db)
    response = api("admin").post(
        f"/admin/units/{DONGGUAN}/deactivate", json={"move_to": NEIGHBOUR, "reason": "合并"}
    )
    assert_error(response, 409, "TICKET_VERSION_CONFLICT")
    assert len(calls) == 2
    assert state(db) == before
    assert open_ticket.lead_unit.code == DONGGUAN


def test_detail_names_routing_rules_and_open_roles(api, open_ticket):
    detail = data(api("admin").get(f"/admin/units/{DONGGUAN}"))
    assert detail["open_by_role"] == {"lead": 1, "assist": 0, "copy": 0}
    assert detail["routing_rules"]["count"] == len(detail["routing_rules"]["rules"])
    assert_error(api("admin").get("/admin/units/U-NONE"), 404, "UNIT_NOT_FOUND")
