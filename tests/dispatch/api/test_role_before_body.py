"""A role without the right to an operation gets 403 before anything it sent is read: not
422 for a body it had no business sending (the security probe, issue 12 §9)."""

import pytest

from dispatch.schemas import JSON_TRANSITIONS
from dispatch.states import TRANSITIONS
from hotline.enums import Role
from tests.conftest import assert_error

#: A seeded user of each role.
USERS = {
    Role.operator: "operator",
    Role.dispatcher: "dispatcher",
    Role.unit_handler: "dongguan",
    Role.grid_worker: "grid",
    Role.callback_agent: "callback",
    Role.supervisor: "supervisor",
    Role.leader: "leader",
    Role.admin: "admin",
}
#: A body no transition accepts: a bad version and an unknown field.
BAD_BODY = {"version": "seven", "no_such_field": 1}


def refused_roles(name):
    return [role for role in Role if role not in TRANSITIONS[name].roles]


@pytest.mark.parametrize(
    ("slug", "role"),
    [(form.slug, role) for form in JSON_TRANSITIONS for role in refused_roles(form.name)[:2]],
)
def test_a_refused_role_gets_403_whatever_the_body(api, db, slug, role):
    response = api(USERS[role]).post(f"/tickets/WF-ANY/{slug}", json=BAD_BODY)
    error = assert_error(response, 403, "ROLE_NOT_ALLOWED")
    assert error["details"]["role"] == role.value


@pytest.mark.parametrize("body", [BAD_BODY, {}])
def test_creating_without_the_receive_right_is_403_before_the_body(api, db, body):
    assert_error(api("dongguan").post("/tickets", json=body), 403, "ROLE_NOT_ALLOWED")


def test_a_refused_role_gets_403_even_without_json(api, db):
    response = api("leader").post("/tickets/WF-ANY/dispatch", data="x", content_type="text/plain")
    assert_error(response, 403, "ROLE_NOT_ALLOWED")


def test_an_allowed_role_still_gets_its_field_errors(api, db):
    response = api("dispatcher").post("/tickets/WF-NONE/dispatch", json=BAD_BODY)
    assert_error(response, 404, "TICKET_NOT_FOUND")
