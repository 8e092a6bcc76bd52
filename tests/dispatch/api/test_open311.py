"""Open311 GeoReport v2 at /open311/v2: every endpoint in JSON and XML with the standard's
field names, errors in its format, no personal data in public reads, idempotent POSTs with
tokens, keys (revoked, rate-limited), the CLI and the administration's page."""

import datetime as dt
import uuid
import xml.etree.ElementTree as ET

import pytest
import sqlalchemy as sa

from classifier import geo
from dispatch import open311
from dispatch import operations as ops
from hotline import limits
from hotline.enums import Channel, RequestType, Role
from hotline.models import AuditLog, Open311Key, Ticket, TicketEvent
from server.cli import main
from tests.dispatch.common import DONGGUAN, PHONE, STREETLIGHT, TUE_0900
from tests.dispatch.conftest import unit
from tests.helpers import has_chinese

BASE = "/open311/v2"
#: 潍坊市人民政府 as a phone's GPS reports it (WGS-84).
WGS = (119.161755, 36.706774)
#: Field names of a service request (GeoReport v2, GET Service Requests).
REQUEST_FIELDS = [
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
]
SERVICE_FIELDS = [
    "service_code",
    "service_name",
    "description",
    "metadata",
    "type",
    "keywords",
    "group",
]


@pytest.fixture
def key(db, user):
    """(row, plaintext) of a fresh key of the client 城市管理平台."""
    return open311.create_key(db, user("admin"), "城市管理平台", "测试")


def form(api_key, **overrides):
    values = {
        "api_key": api_key,
        "service_code": STREETLIGHT,
        "lat": str(WGS[1]),
        "long": str(WGS[0]),
        "address_string": "奎文区东关街道胜利东街100号",
        "description": "胜利东街100号门口路灯不亮，请尽快维修。联系我 13805369999",
        "first_name": "小明",
        "last_name": "李",
        "phone": "13805369999",
        "email": "li@example.com",
        "media_url": "https://img.example.com/lamp.jpg",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def xml_of(response):
    assert response.mimetype == "text/xml", response.get_data(as_text=True)
    text = response.get_data(as_text=True)
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>')
    return ET.fromstring(text.split("\n", 1)[1])


def spec_errors(response, status, fmt="json"):
    """The standard's error list: [{"code", "description"}] with the HTTP status as code."""
    assert response.status_code == status, response.get_data(as_text=True)
    if fmt == "json":
        assert response.mimetype == "application/json"
        body = response.get_json()
        assert isinstance(body, list) and body
        for error in body:
            assert set(error) == {"code", "description"}
            assert error["code"] == status
            assert has_chinese(error["description"])
        return body
    root = xml_of(response)
    assert root.tag == "errors"
    errors = root.findall("error")
    assert errors and all(e.findtext("code") == str(status) for e in errors)
    return [
        {"code": int(e.findtext("code")), "description": e.findtext("description")} for e in errors
    ]


# -- discovery and services ---------------------------------------------------------------------


def test_discovery_in_json_and_xml(client):
    body = client.get(f"{BASE}/discovery.json").get_json()
    assert set(body) == {"changeset", "contact", "key_service", "endpoints"}
    (endpoint,) = body["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2")
    assert endpoint["formats"] == ["application/json", "text/xml"]
    root = xml_of(client.get(f"{BASE}/discovery.xml"))
    assert root.tag == "discovery"
    formats = [f.text for f in root.find("endpoints/endpoint/formats").findall("format")]
    assert formats == ["application/json", "text/xml"]


def test_services_are_the_leaf_categories(client):
    body = client.get(f"{BASE}/services.json").get_json()
    by_code = {s["service_code"]: s for s in body}
    lamp = by_code[STREETLIGHT]
    assert list(lamp) == SERVICE_FIELDS
    assert lamp["service_name"] == "路灯故障"
    assert lamp["group"] == "城乡建设"
    assert lamp["description"] == "城乡建设 / 市政设施 / 路灯故障"
    assert lamp["metadata"] is False and lamp["type"] == "realtime"
    assert "01" not in by_code and "0101" not in by_code  # groups are not services

    root = xml_of(client.get(f"{BASE}/services.xml"))
    assert root.tag == "services"
    service = next(s for s in root.findall("service") if s.findtext("service_code") == STREETLIGHT)
    assert [child.tag for child in service] == SERVICE_FIELDS
    assert service.findtext("metadata") == "false"
    assert service.findtext("group") == "城乡建设"


def test_service_definition_and_unknown_code(client):
    body = client.get(f"{BASE}/services/{STREETLIGHT}.json").get_json()
    assert body == {"service_code": STREETLIGHT, "attributes": []}
    root = xml_of(client.get(f"{BASE}/services/{STREETLIGHT}.xml"))
    assert root.tag == "service_definition"
    assert root.findtext("service_code") == STREETLIGHT
    assert root.find("attributes") is not None and len(root.find("attributes")) == 0
    spec_errors(client.get(f"{BASE}/services/0101.json"), 404)
    spec_errors(client.get(f"{BASE}/services/999999.xml"), 404, "xml")


def test_unknown_paths_and_formats_answer_in_the_standard_format(client):
    spec_errors(client.get(f"{BASE}/services.html"), 404, "xml")
    spec_errors(client.get(f"{BASE}/nothing.json"), 404)
    spec_errors(client.delete(f"{BASE}/services.json"), 405)


# -- POST requests ------------------------------------------------------------------------------


def test_post_request_receives_a_ticket_through_receive(client, db, key):
    row, plaintext = key
    response = client.post(f"{BASE}/requests.json", data=form(plaintext))
    assert response.status_code == 201, response.get_data(as_text=True)
    (receipt,) = response.get_json()
    assert set(receipt) == {"service_request_id", "token", "service_notice", "account_id"}
    ticket = db.scalars(
        sa.select(Ticket).where(Ticket.number == receipt["service_request_id"])
    ).one()
    assert ticket.channel == Channel.open311 and ticket.channel_client == "城市管理平台"
    assert ticket.created_by_id == row.user_id and row.user.role == Role.portal
    assert ticket.request_type == RequestType.complaint
    assert ticket.category.code == STREETLIGHT
    assert ticket.requester_name == "李小明" and ticket.requester_phone == "13805369999"
    assert ticket.idempotency_key == receipt["token"]
    # Stored in the map's GCJ-02; the public read gives the client's WGS-84 back.
    assert (ticket.lng, ticket.lat) == geo.wgs84_to_gcj02(*WGS)
    assert "图片链接：https://img.example.com/lamp.jpg" in ticket.content
    event = db.scalars(
        sa.select(TicketEvent).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.action == "receive"
        )
    ).one()
    assert event.payload["open311"] == {
        "media_url": "https://img.example.com/lamp.jpg",
        "email": "li@example.com",
    }
    assert response.headers["Location"].endswith(f"/requests/{ticket.number}.json")
    db.refresh(row)
    assert row.last_used_at is not None


def test_post_request_in_xml_with_an_address_only(client, key):
    _, plaintext = key
    data = form(plaintext, lat=None, long=None)
    root = xml_of(client.post(f"{BASE}/requests.xml", data=data))
    assert root.tag == "service_requests"
    request = root.find("request")
    assert request.findtext("service_request_id").startswith("WF")
    assert request.findtext("token")


def test_a_category_of_consultations_makes_a_consultation(client, db, key):
    _, plaintext = key
    code = next(s["service_code"] for s in open311.services(db) if "咨询" in s["description"])
    response = client.post(f"{BASE}/requests.json", data=form(plaintext, service_code=code))
    number = response.get_json()[0]["service_request_id"]
    ticket = db.scalars(sa.select(Ticket).where(Ticket.number == number)).one()
    assert ticket.request_type == RequestType.consult


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"service_code": "999999"}, "service_code"),
        ({"service_code": None}, "service_code"),
        ({"service_code": "0101"}, "service_code"),  # a group, not a service
        ({"description": None}, "description"),
        ({"lat": None, "long": None, "address_string": None}, "address_string"),
        ({"lat": "abc"}, "lat"),
        ({"long": None}, "lat"),
        ({"lat": "51.5", "long": "-0.12"}, "lat"),  # London: not in China
        ({"phone": "12345"}, "phone"),
        ({"email": "not-an-email"}, "email"),
        ({"media_url": "javascript:alert(1)"}, "media_url"),
    ],
)
def test_bad_requests_are_400_in_the_standard_format_and_leave_nothing(
    client, key, ticket_count, overrides, field
):
    _, plaintext = key
    before = ticket_count()
    response = client.post(f"{BASE}/requests.json", data=form(plaintext, **overrides))
    errors = spec_errors(response, 400)
    assert any(e["description"].startswith(field) for e in errors), errors
    assert response.headers["X-Error-Code"] == "VALIDATION_FAILED"
    assert ticket_count() == before


def test_keys_missing_wrong_or_revoked_are_refused_with_403(client, db, user, key, ticket_count):
    row, plaintext = key
    before = ticket_count()
    response = client.post(f"{BASE}/requests.json", data=form(None))
    spec_errors(response, 403)
    assert response.headers["X-Error-Code"] == "OPEN311_KEY_MISSING"
    response = client.post(f"{BASE}/requests.xml", data=form(plaintext + "x"))
    spec_errors(response, 403, "xml")
    assert response.headers["X-Error-Code"] == "OPEN311_KEY_INVALID"
    open311.revoke_key(db, user("admin"), row)
    db.flush()
    response = client.post(f"{BASE}/requests.json", data=form(plaintext))
    spec_errors(response, 403)
    assert response.headers["X-Error-Code"] == "OPEN311_KEY_REVOKED"
    assert ticket_count() == before


def test_a_retried_post_with_the_same_idempotency_key_creates_nothing_new(
    client, key, ticket_count
):
    _, plaintext = key
    headers = {"Idempotency-Key": "client-req-42"}
    first = client.post(f"{BASE}/requests.json", data=form(plaintext), headers=headers)
    assert first.status_code == 201
    count = ticket_count()
    again = client.post(f"{BASE}/requests.json", data=form(plaintext), headers=headers)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()[0]["service_request_id"] == first.get_json()[0]["service_request_id"]
    assert again.get_json()[0]["token"] == "client-req-42"
    assert ticket_count() == count
    # The same key with another request is refused, not taken for a retry.
    other = client.post(
        f"{BASE}/requests.json",
        data=form(plaintext, description="另一件事：井盖丢失"),
        headers=headers,
    )
    assert spec_errors(other, 400) and other.headers["X-Error-Code"] == "IDEMPOTENCY_KEY_REUSED"
    assert ticket_count() == count


def test_tokens_find_the_request_filed_under_them(client, key):
    _, plaintext = key
    receipt = client.post(f"{BASE}/requests.json", data=form(plaintext)).get_json()[0]
    token = receipt["token"]
    body = client.get(f"{BASE}/tokens/{token}.json").get_json()
    assert body == [{"service_request_id": receipt["service_request_id"], "token": token}]
    root = xml_of(client.get(f"{BASE}/tokens/{token}.xml?api_key={plaintext}"))
    assert root.find("request").findtext("service_request_id") == receipt["service_request_id"]
    spec_errors(client.get(f"{BASE}/tokens/no-such-token.json"), 404)


def test_tokens_without_a_key_do_not_reveal_a_reports_number(client, db, key):
    _, plaintext = key
    headers = {"Idempotency-Key": "report-7"}
    receipt = client.post(f"{BASE}/requests.json", data=form(plaintext), headers=headers)
    number = receipt.get_json()[0]["service_request_id"]
    ticket = db.scalars(sa.select(Ticket).where(Ticket.number == number)).one()
    ticket.request_type = RequestType.report  # as if its category named 举报
    db.flush()
    missing = client.get(f"{BASE}/tokens/report-7.json")
    spec_errors(missing, 404)
    assert number not in missing.get_data(as_text=True)
    spec_errors(client.get(f"{BASE}/tokens/report-7.xml"), 404, "xml")
    # The client that filed it still finds its own report.
    own = client.get(f"{BASE}/tokens/report-7.json?api_key={plaintext}").get_json()
    assert own == [{"service_request_id": number, "token": "report-7"}]


@pytest.fixture
def two_per_minute(app, monkeypatch):
    """Rate limits on (the suite runs without them), at 2 calls a minute."""
    monkeypatch.setitem(app.config, "LIMIT_OPEN311", "2 per minute")
    config = {**app.config, "LIMITS_ENABLED": True, "RATELIMIT_KEY_PREFIX": uuid.uuid4().hex}
    monkeypatch.setitem(app.extensions, "hotline.limits", limits.Limits(config))


def test_the_rate_limit_per_key(client, db, user, key, two_per_minute):
    _, plaintext = key
    for _ in range(2):
        assert (
            client.get(f"{BASE}/services/{STREETLIGHT}.json?api_key={plaintext}").status_code == 200
        )
    response = client.post(f"{BASE}/requests.json", data=form(plaintext))
    spec_errors(response, 429)
    assert response.headers["X-Error-Code"] == "RATE_LIMITED"
    assert 1 <= int(response.headers["Retry-After"]) <= 61
    # Another key has its own allowance, and so do reads without a key (per address).
    _, other = open311.create_key(db, user("admin"), "另一平台")
    assert client.post(f"{BASE}/requests.json", data=form(other)).status_code == 201
    assert client.get(f"{BASE}/services.json").status_code == 200


def test_reads_without_a_key_are_limited_per_address(client, two_per_minute):
    for _ in range(2):
        assert client.get(f"{BASE}/requests.json").status_code == 200
    spec_errors(client.get(f"{BASE}/requests.xml"), 429, "xml")
    elsewhere = client.get(f"{BASE}/requests.json", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert elsewhere.status_code == 200


def test_refused_keys_are_counted_per_address(make_app):
    app = make_app(
        LIMITS_ENABLED=True,
        RATELIMIT_KEY_PREFIX=f"hotline-limits:test:{uuid.uuid4().hex}",
        LIMIT_OPEN311="3 per minute",
    )
    client = app.test_client()
    for guess in ("guess-1", "guess-2", "guess-3"):
        refused = client.get(f"{BASE}/services.json?api_key={guess}")
        assert refused.headers["X-Error-Code"] == "OPEN311_KEY_INVALID"
    response = client.post(f"{BASE}/requests.json", data=form("guess-4"))
    spec_errors(response, 429)
    assert response.headers["X-Error-Code"] == "RATE_LIMITED"
    assert response.headers["Retry-After"]
    # The same address without a key is over too (one allowance); another address is not.
    spec_errors(client.get(f"{BASE}/services.json"), 429)
    elsewhere = client.get(
        f"{BASE}/services.json?api_key=guess-5", environ_base={"REMOTE_ADDR": "10.1.2.3"}
    )
    assert elsewhere.headers["X-Error-Code"] == "OPEN311_KEY_INVALID"


# -- public reads -------------------------------------------------------------------------------


def test_get_request_in_json_and_xml_shows_no_personal_data(client, db, key):
    _, plaintext = key
    number = client.post(f"{BASE}/requests.json", data=form(plaintext)).get_json()[0][
        "service_request_id"
    ]
    response = client.get(f"{BASE}/requests/{number}.json")
    (item,) = response.get_json()
    assert list(item) == REQUEST_FIELDS
    assert item["status"] == "open" and item["status_notes"] is None
    assert item["service_code"] == STREETLIGHT and item["service_name"] == "路灯故障"
    assert item["media_url"] == "https://img.example.com/lamp.jpg"
    # Read without the filing client's key: the client's address, coordinates to ~100 m.
    assert item["address"] == "奎文区东关街道胜利东街100号"
    assert (item["long"], item["lat"]) == (round(WGS[0], 3), round(WGS[1], 3))
    assert dt.datetime.fromisoformat(item["requested_datetime"]).utcoffset() == dt.timedelta(
        hours=8
    )
    assert item["requested_datetime"].endswith("+08:00")
    text = response.get_data(as_text=True)
    for personal in ("13805369999", "李小明", "小明", "li@example.com"):
        assert personal not in text
    assert item["description"] == "胜利东街100号门口路灯不亮，请尽快维修。联系我 〔电话已隐去〕"

    root = xml_of(client.get(f"{BASE}/requests/{number}.xml"))
    request = root.find("request")
    assert [child.tag for child in request] == REQUEST_FIELDS
    assert request.findtext("status") == "open"
    assert "13805369999" not in ET.tostring(root, encoding="unicode")
    spec_errors(client.get(f"{BASE}/requests/WF000.json"), 404)
    spec_errors(client.get(f"{BASE}/requests/WF000.xml"), 404, "xml")


def test_the_exact_place_is_only_for_the_client_that_filed_it(client, db, user, key, make_ticket):
    _, plaintext = key
    number = client.post(f"{BASE}/requests.json", data=form(plaintext)).get_json()[0][
        "service_request_id"
    ]
    (own,) = client.get(f"{BASE}/requests/{number}.json?api_key={plaintext}").get_json()
    assert own["address"] == "奎文区东关街道胜利东街100号"
    assert abs(own["long"] - WGS[0]) < 1e-5 and abs(own["lat"] - WGS[1]) < 1e-5
    assert (own["long"], own["lat"]) != (round(WGS[0], 3), round(WGS[1], 3))
    _, other = open311.create_key(db, user("admin"), "另一平台")
    (theirs,) = client.get(f"{BASE}/requests/{number}.json?api_key={other}").get_json()
    assert theirs["address"] == "奎文区东关街道胜利东街100号"
    assert (theirs["long"], theirs["lat"]) == (round(WGS[0], 3), round(WGS[1], 3))

    # A citizen's call: its address is never public, its place only to ~100 m, key or not.
    lng, lat = geo.wgs84_to_gcj02(*WGS)
    called = make_ticket(user("operator"), category=STREETLIGHT, lng=lng, lat=lat)
    for query in ("", f"?api_key={plaintext}"):
        response = client.get(f"{BASE}/requests/{called.number}.json{query}")
        (item,) = response.get_json()
        assert item["address"] is None
        assert (item["long"], item["lat"]) == (round(WGS[0], 3), round(WGS[1], 3))
        assert "胜利东街100号" not in response.get_data(as_text=True).replace(
            item["description"], ""
        )
        listed = client.get(
            f"{BASE}/requests.json?service_request_id={called.number}{query.replace('?', '&')}"
        )
        assert listed.get_json() == [item]
    root = xml_of(client.get(f"{BASE}/requests/{called.number}.xml"))
    assert root.find("request").findtext("address") == ""  # an empty element
    assert root.find("request").findtext("lat") == str(round(WGS[1], 3))


def test_a_finished_request_is_closed_with_the_units_reply(client, db, finished):
    ticket = finished(requester_name="王先生", content="路灯坏了，电话 0536-8234567")
    response = client.get(f"{BASE}/requests/{ticket.number}.json")
    (item,) = response.get_json()
    assert item["status"] == "closed"
    assert item["status_notes"] == "路灯已修复"
    assert item["agency_responsible"] == unit(db, DONGGUAN).name
    assert item["expected_datetime"] is not None
    text = response.get_data(as_text=True)
    assert "王先生" not in text and PHONE not in text and "8234567" not in text


def test_reports_are_never_public(client, user, make_ticket):
    ticket = make_ticket(user("operator"), request_type=RequestType.report, content="举报某单位")
    spec_errors(client.get(f"{BASE}/requests/{ticket.number}.json"), 404)
    listed = client.get(f"{BASE}/requests.json?service_request_id={ticket.number}").get_json()
    assert listed == []


def test_get_requests_filters(client, db, user, make_ticket, finished):
    open_one = make_ticket(user("operator"), category=STREETLIGHT)
    # Finished four months ago: outside the default window of 90 days.
    closed_one = finished(at=TUE_0900 - dt.timedelta(weeks=16))
    other = make_ticket(user("operator"), category="010101")
    numbers = lambda r: {i["service_request_id"] for i in r.get_json()}  # noqa: E731

    listed = client.get(f"{BASE}/requests.json?service_code={STREETLIGHT}")
    assert {open_one.number} <= numbers(listed)
    assert other.number not in numbers(listed)
    both = f"{open_one.number},{closed_one.number},{other.number}"
    by_id = client.get(f"{BASE}/requests.json?service_request_id={both}&status=closed")
    # With ids the other filters are ignored (as the standard says).
    assert numbers(by_id) == {open_one.number, closed_one.number, other.number}
    opened = client.get(f"{BASE}/requests.json?status=open")
    assert open_one.number in numbers(opened) and closed_one.number not in numbers(opened)
    closed = client.get(f"{BASE}/requests.json?status=closed&start_date=2000-01-01T00:00:00Z")
    assert closed_one.number in numbers(closed) and open_one.number not in numbers(closed)
    # The default window is the last 90 days.
    assert closed_one.number not in numbers(client.get(f"{BASE}/requests.json"))
    future = client.get(f"{BASE}/requests.json?start_date=2099-01-01")
    assert future.get_json() == []
    root = xml_of(client.get(f"{BASE}/requests.xml?service_code={STREETLIGHT}"))
    assert root.tag == "service_requests"
    assert open_one.number in {r.findtext("service_request_id") for r in root.findall("request")}
    one = client.get(f"{BASE}/requests.json?page_size=1&page=1")
    assert len(one.get_json()) == 1


@pytest.mark.parametrize(
    "query",
    [
        "start_date=yesterday",
        "end_date=2026-13-01",
        "start_date=2026-02-01&end_date=2026-01-01",
        "status=pending",
        "page_size=100000",
        "page=0",
        "service_request_id=,",
    ],
)
def test_bad_list_queries_are_400(client, query):
    spec_errors(client.get(f"{BASE}/requests.json?{query}"), 400)
    spec_errors(client.get(f"{BASE}/requests.xml?{query}"), 400, "xml")


def test_merged_and_transferred_requests_say_what_became_of_them(client, db, user, make_ticket):
    first = make_ticket(user("operator"), category=STREETLIGHT)
    second = make_ticket(user("operator"), category=STREETLIGHT)
    ops.merge(db, user("dispatcher"), second, into=first, reason="同一路灯")
    db.flush()
    (item,) = client.get(f"{BASE}/requests/{second.number}.json").get_json()
    assert item["status"] == "closed" and "合并" in item["status_notes"]


# -- keys: operations, CLI, page ----------------------------------------------------------------


def test_keys_are_stored_hashed_and_audited(db, user, key):
    row, plaintext = key
    assert row.key_hash == open311.key_hash(plaintext) and plaintext not in row.key_hash
    assert plaintext.startswith(row.key_prefix) and len(plaintext) >= 40
    with pytest.raises(open311.Conflict):
        open311.create_key(db, user("admin"), "城市管理平台")
    assert open311.revoke_key(db, user("admin"), row) is True
    assert open311.revoke_key(db, user("admin"), row) is False
    actions = db.scalars(
        sa.select(AuditLog.action).where(AuditLog.target == "城市管理平台").order_by(AuditLog.id)
    ).all()
    assert actions == ["open311_key.create", "open311_key.revoke"]


def test_cli_creates_lists_and_revokes_keys(app, db, client):
    runner = app.test_cli_runner()
    created = runner.invoke(main, ["open311-key", "create", "gov-app", "--note", "政务 App"])
    assert created.exit_code == 0, created.output
    plaintext = created.output.strip().splitlines()[-1]
    assert " " not in plaintext and len(plaintext) >= 40
    row = db.scalars(sa.select(Open311Key).where(Open311Key.name == "gov-app")).one()
    assert row.key_hash == open311.key_hash(plaintext)
    assert row.user.username == "open311-gov-app"
    assert client.post(f"{BASE}/requests.json", data=form(plaintext)).status_code == 201

    listed = runner.invoke(main, ["open311-key", "list"])
    assert listed.exit_code == 0 and "gov-app" in listed.output and row.key_prefix in listed.output
    again = runner.invoke(main, ["open311-key", "create", "gov-app"])
    assert again.exit_code != 0 and "已被使用" in again.output
    revoked = runner.invoke(main, ["open311-key", "revoke", "gov-app"])
    assert revoked.exit_code == 0 and "已吊销" in revoked.output
    assert client.post(f"{BASE}/requests.json", data=form(plaintext)).status_code == 403
    missing = runner.invoke(main, ["open311-key", "revoke", "nobody"])
    assert missing.exit_code != 0 and "不存在" in missing.output


def test_admin_page_creates_shows_once_and_revokes(client, db, web_login, form_token):
    assert web_login(client, "admin").status_code == 302
    page = client.get("/admin/open311/")
    assert page.status_code == 200 and "开放接口密钥" in page.get_data(as_text=True)
    token = form_token(client, "/admin/open311/")
    created = client.post(
        "/admin/open311/", data={"csrf_token": token, "name": "网格平台", "note": "张工"}
    )
    assert created.status_code == 200
    assert created.headers["Cache-Control"] == "no-store"
    html = created.get_data(as_text=True)
    row = db.scalars(sa.select(Open311Key).where(Open311Key.name == "网格平台")).one()
    start = html.index('id="new-key">') + len('id="new-key">')
    plaintext = html[start : html.index("</code>", start)]
    assert open311.key_hash(plaintext) == row.key_hash
    # Shown once: the list does not show it again.
    assert plaintext not in client.get("/admin/open311/").get_data(as_text=True)

    # A taken name: a Chinese message, nothing new.
    again = client.post("/admin/open311/", data={"csrf_token": token, "name": "网格平台"})
    assert again.status_code == 422 and "已被使用" in again.get_data(as_text=True)
    # Without CSRF: refused.
    assert client.post("/admin/open311/", data={"name": "x"}).status_code == 400

    unconfirmed = client.post(f"/admin/open311/{row.id}/revoke", data={"csrf_token": token})
    assert unconfirmed.status_code == 422 and row.revoked_at is None
    revoked = client.post(
        f"/admin/open311/{row.id}/revoke", data={"csrf_token": token, "confirm": "yes"}
    )
    assert revoked.status_code == 302
    db.refresh(row)
    assert row.revoked_at is not None
    assert "已吊销" in client.get("/admin/open311/").get_data(as_text=True)
    actions = db.scalars(sa.select(AuditLog.action).where(AuditLog.target == "网格平台")).all()
    assert actions == ["open311_key.create", "open311_key.revoke"]


@pytest.mark.parametrize("username", ["dispatcher", "operator", "supervisor"])
def test_admin_page_is_for_administrators_only(client, web_login, username):
    web_login(client, username)
    assert client.get("/admin/open311/").status_code == 403
