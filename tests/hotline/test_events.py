"""Ticket events reach other processes only after their transaction commits."""

import json
import time

import pytest
import redis

from tests.helpers import REDIS_URL

BODY = {
    "channel": "phone",
    "request_type": "complaint",
    "category": "0101",
    "content": "小区路灯不亮。",
    "requester_phone": "13805360009",
    "area": "370705001001001",
}


@pytest.fixture
def heard(app):
    messages = []
    publisher = app.extensions["hotline.events"]
    publisher.listeners.append(messages.append)
    yield messages
    publisher.listeners.remove(messages.append)


def test_committed_change_is_published(api, heard):
    number = api("operator").post("/tickets", json=BODY).get_json()["data"]["number"]
    assert [m["type"] for m in heard] == ["ticket.receive"]
    message = heard[0]
    assert message["ticket"] == number
    assert message["status"] == "received"
    assert message["area"] == "370705001001001"
    # No personal data leaves through the event stream.
    assert "13805360009" not in json.dumps(message)


def test_refused_change_is_not_published(api, heard):
    number = api("operator").post("/tickets", json=BODY).get_json()["data"]["number"]
    heard.clear()
    refused = api("operator").post(f"/tickets/{number}/dispatch", json={"lead_unit": "U-CGJ"})
    assert refused.status_code == 403
    invalid = api("dispatcher").post(f"/tickets/{number}/dispatch", json={"lead_unit": "U-NONE"})
    assert invalid.status_code == 422
    assert heard == []


@pytest.mark.skipif(not REDIS_URL, reason="Redis not configured: set HOTLINE_REDIS_URL")
def test_events_go_through_redis(app, api):
    client = redis.Redis.from_url(REDIS_URL)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(app.config["EVENT_CHANNEL"])
    pubsub.get_message(timeout=1)  # the subscription confirmation
    try:
        number = api("operator").post("/tickets", json=BODY).get_json()["data"]["number"]
        deadline = time.monotonic() + 5
        received = []
        while time.monotonic() < deadline and not received:
            message = pubsub.get_message(timeout=0.5)
            if message and json.loads(message["data"])["ticket"] == number:
                received.append(json.loads(message["data"]))
        assert received and received[0]["type"] == "ticket.receive"
    finally:
        pubsub.close()
        client.close()
