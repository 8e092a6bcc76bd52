"""The classifier's emergency is a warning the operator answers, never the ticket's urgency by
itself: keep as 紧急, dismiss, or transfer — in the server-rendered form (no JavaScript) and
the JSON intake; the receive event records whether the warning was shown and the answer."""

import re

import pytest
import sqlalchemy as sa

from hotline import knowledge
from hotline.enums import TicketStatus, Urgency
from hotline.models import Ticket, TicketEvent

KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
FIRE = "家里着火了，冒出很多浓烟，快来人"


@pytest.fixture(autouse=True)
def fresh_index():
    knowledge.clear()
    yield
    knowledge.clear()


@pytest.fixture
def operator_page(client, web_login):
    web_login(client, "operator")
    return client


def form_of(client):
    page = client.get("/console").get_data(as_text=True)
    return {"csrf_token": TOKEN.search(page).group(1), "idempotency_key": KEY.search(page).group(1)}


def call(**overrides):
    values = {
        "requester_phone": "13905361234",
        "requester_name": "赵女士",
        "content": FIRE,
        "address": "奎文区东关街道胜利东街100号",
        "category": "",
        "request_type": "help",
        "urgency": "normal",
        "channel": "phone",
        "area": "",
        "emergency_decision": "",
    }
    values.update(overrides)
    return values


def the_ticket(db):
    (ticket,) = db.scalars(sa.select(Ticket).where(Ticket.requester_name == "赵女士")).all()
    return ticket


def warning_of(db, ticket):
    event = db.scalars(
        sa.select(TicketEvent).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.action == "receive"
        )
    ).one()
    return event.payload.get("urgency_warning")


def test_the_warning_offers_transfer_keep_and_dismiss(operator_page, db):
    data = {**form_of(operator_page), **call(), "action": "lookup"}
    page = operator_page.post("/console", data=data).get_data(as_text=True)
    assert 'role="alert"' in page and "紧急情况预警" in page
    assert 'value="transfer:119" class="suggested"' in page
    assert 'value="emergency:keep"' in page and 'value="emergency:dismiss"' in page
    # The suggestion did not choose the urgency: the select still says 一般.
    assert '<option value="normal" selected>一般</option>' in page


def test_unanswered_warning_leaves_the_operators_urgency(operator_page, db):
    data = {**form_of(operator_page), **call(), "action": "receive"}
    assert operator_page.post("/console", data=data).status_code == 302
    ticket = the_ticket(db)
    assert ticket.urgency == Urgency.normal
    assert ticket.status == TicketStatus.received
    warning = warning_of(db, ticket)
    assert warning["shown"] is True and warning["transfer_to"] == "119"
    assert warning["decision"] == "unanswered" and warning["urgency"] == "normal"


def test_keep_without_javascript(operator_page, db):
    data = {**form_of(operator_page), **call()}
    page = operator_page.post("/console", data={**data, "action": "emergency:keep"}).get_data(
        as_text=True
    )
    assert '<option value="emergency" selected>紧急</option>' in page
    assert 'name="emergency_decision" id="emergency_decision" value="kept"' in page
    assert "已确认为紧急" in page
    assert db.scalars(sa.select(Ticket).where(Ticket.requester_name == "赵女士")).all() == []
    data.update(urgency="emergency", emergency_decision="kept")
    assert operator_page.post("/console", data={**data, "action": "receive"}).status_code == 302
    ticket = the_ticket(db)
    assert ticket.urgency == Urgency.emergency
    assert warning_of(db, ticket)["decision"] == "kept"


def test_dismiss_without_javascript(operator_page, db):
    data = {**form_of(operator_page), **call()}
    page = operator_page.post("/console", data={**data, "action": "emergency:dismiss"}).get_data(
        as_text=True
    )
    assert "已忽略紧急情况预警" in page and 'class="emergency" role="alert"' not in page
    assert 'value="emergency:show"' in page
    assert '<option value="normal" selected>一般</option>' in page
    data.update(emergency_decision="dismissed")
    assert operator_page.post("/console", data={**data, "action": "receive"}).status_code == 302
    ticket = the_ticket(db)
    assert ticket.urgency == Urgency.normal
    assert warning_of(db, ticket) == {
        "shown": True,
        "transfer_to": "119",
        "evidence": warning_of(db, ticket)["evidence"],
        "decision": "dismissed",
        "urgency": "normal",
    }


def test_show_again_after_dismissing(operator_page, db):
    data = {**form_of(operator_page), **call(emergency_decision="dismissed")}
    page = operator_page.post("/console", data={**data, "action": "emergency:show"}).get_data(
        as_text=True
    )
    assert 'role="alert"' in page and 'value="emergency:keep"' in page


def test_transfer_is_recorded_as_the_answer(operator_page, db):
    data = {**form_of(operator_page), **call(), "action": "transfer:119"}
    assert operator_page.post("/console", data=data).status_code == 302
    ticket = the_ticket(db)
    assert ticket.status == TicketStatus.transferred
    assert warning_of(db, ticket)["decision"] == "transferred"


def test_an_ordinary_call_records_no_warning(operator_page, db):
    data = {
        **form_of(operator_page),
        **call(content="小区门口路灯坏了一个星期，晚上很黑"),
        "action": "receive",
    }
    assert operator_page.post("/console", data=data).status_code == 302
    assert warning_of(db, the_ticket(db)) is None


# -- the JSON intake --------------------------------------------------------------------------

BODY = {"channel": "phone", "request_type": "help", "content": FIRE, "requester_name": "赵女士"}


def test_api_takes_no_urgency_from_the_suggestion(api, db):
    response = api("operator").post("/tickets", json=BODY)
    assert response.status_code == 201, response.get_data(as_text=True)
    data = response.get_json()["data"]
    assert data["urgency"]["value"] == "normal"
    assert data["suggestion"]["urgency"]["tier"] == "emergency"
    assert warning_of(db, the_ticket(db))["decision"] == "unanswered"


def test_api_records_the_operators_answer(api, db):
    body = {**BODY, "urgency": "emergency", "emergency_decision": "kept"}
    response = api("operator").post("/tickets", json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert warning_of(db, the_ticket(db))["decision"] == "kept"


def test_api_refuses_keep_with_another_urgency(api, db):
    body = {**BODY, "urgency": "normal", "emergency_decision": "kept"}
    response = api("operator").post("/tickets", json=body)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["details"]["urgency"] == "已确认紧急情况，紧急程度须为“紧急”"
    bad = api("operator").post("/tickets", json={**BODY, "emergency_decision": "maybe"})
    assert "紧急预警处理取值无效" in bad.get_json()["error"]["details"]["emergency_decision"]
