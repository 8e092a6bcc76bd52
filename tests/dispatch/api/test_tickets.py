"""Ticket endpoints of the JSON API: create (with Idempotency-Key), list, read, routing hint.

Every refused request must answer with the error envelope, a stable code, a Chinese message,
and leave the database exactly as it was.
"""

import datetime as dt
import json
import re
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from dispatch import operations
from dispatch.schemas import JSON_TRANSITIONS
from dispatch.states import TRANSITIONS
from hotline.enums import Channel, RequestType, Role, Urgency
from hotline.models import Ticket, TicketEvent, Unit
from tests.helpers import assert_error

SHANGHAI = ZoneInfo("Asia/Shanghai")
BODY = {"channel": "phone", "request_type": "complaint", "content": "胜利东街路灯连续一周不亮"}
NUMBER = re.compile(r"^WF(\d{8})(\d{8})$")
PHONE_FORMAT = "联系电话格式不正确（手机号 11 位，或带区号的固定电话）"


# -- helpers ----------------------------------------------------------------------------------


def created(response):
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["success"] is True
    return response.get_json()["data"]


def stored(db, number):
    """The ticket as the database has it now (not as some session remembers it)."""
    db.expire_all()
    return db.scalars(sa.select(Ticket).where(Ticket.number == number)).one()


def post_raw(api, raw, content_type="application/json", headers=None):
    return api("operator").post("/tickets", data=raw, content_type=content_type, headers=headers)


def dispatch_to(db, user, ticket, unit_code):
    unit = db.scalars(sa.select(Unit).where(Unit.code == unit_code)).one()
    operations.dispatch(db, user("dispatcher"), ticket, lead=unit)
    db.flush()


def listed(api, mine, **params):
    """Numbers of ``mine`` (tickets this test made) that the list returns, in order."""
    response = api("operator").get("/tickets", query_string={"per_page": 200, **params})
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()["data"]
    assert data["total"] <= 200
    return [item["number"] for item in data["items"] if item["number"] in mine]


# -- create -----------------------------------------------------------------------------------


def test_ticket_numbers_are_serial(api):
    serials = []
    for n in range(3):
        response = api("operator").post(
            "/tickets", json={"channel": "phone", "request_type": "consult", "content": f"咨询{n}"}
        )
        serials.append(int(NUMBER.match(created(response)["number"]).group(2)))
    assert serials == sorted(set(serials))
    assert serials[2] - serials[0] == 2


def test_create_returns_201_number_location_and_round_trips_fields(api, db, ticket_count):
    before = ticket_count()
    body = {
        "channel": "wechat",
        "request_type": "help",
        "urgency": "urgent",
        "category": "010103",
        "area": "370705001001",
        "title": "中学街社区路灯不亮",
        "content": "中学街社区3号楼前路灯不亮。\n已经一周了，晚上老人出行不便。",
        "requester_name": "王先生",
        "requester_phone": "13805360001",
        "address": "奎文区东关街道中学街3号楼",
        "lng": 119.125,
        "lat": 36.708,
    }
    response = api("operator").post("/tickets", json=body)
    data = created(response)

    match = NUMBER.match(data["number"])
    assert match, data["number"]
    ticket = stored(db, data["number"])
    received_local = dt.datetime.fromisoformat(data["received_at"]).astimezone(SHANGHAI)
    assert match.group(1) == received_local.strftime("%Y%m%d")
    assert match.group(1) == ticket.received_at.astimezone(SHANGHAI).strftime("%Y%m%d")
    assert int(match.group(2)) > 0  # the serial: id on SQLite, a sequence on PostgreSQL
    assert response.headers["Location"] == f"/api/v1/tickets/{data['number']}"
    assert "Idempotent-Replayed" not in response.headers
    assert ticket_count() == before + 1

    assert data["status"] == {"value": "received", "label": "已受理"}
    assert data["channel"] == {"value": "wechat", "label": "微信"}
    assert data["request_type"] == {"value": "help", "label": "求助"}
    assert data["urgency"] == {"value": "urgent", "label": "加急"}
    assert data["category"] == {"code": "010103", "name": "路灯故障"}
    assert data["area"] == {"code": "370705001001", "name": "中学街社区"}
    for name in ("title", "content", "requester_name", "requester_phone", "address"):
        assert data[name] == body[name]
    assert (data["lng"], data["lat"]) == (119.125, 36.708)
    assert data["lead_unit"] is None

    assert ticket.title == body["title"]
    assert ticket.content == body["content"]
    assert ticket.requester_phone == "13805360001"
    assert ticket.category.code == "010103"
    assert ticket.area.code == "370705001001"
    assert ticket.created_by.username == "operator"
    assert ticket.status.value == "received"
    assert data["version"] == ticket.version


def test_create_defaults_urgency_and_derives_title_from_first_line(api, db):
    data = created(
        api("operator").post("/tickets", json={**BODY, "content": "  路灯坏了😡\n第二行说明  "})
    )
    assert data["title"] == "路灯坏了😡"
    assert data["content"] == "路灯坏了😡\n第二行说明"  # surrounding blanks trimmed
    assert data["urgency"] == {"value": "normal", "label": "一般"}
    assert stored(db, data["number"]).title == "路灯坏了😡"


def test_derived_title_is_cut_at_30_characters(api, db):
    first_line = "东关街道胜利东街与新华路交叉口往东一百米路灯连续一周不亮影响出行"
    assert len(first_line) > 30
    data = created(api("operator").post("/tickets", json={**BODY, "content": first_line}))
    assert data["title"] == first_line[:30] + "…"


def test_blank_title_counts_as_missing(api):
    data = created(api("operator").post("/tickets", json={**BODY, "title": "  \u3000 "}))
    assert data["title"] == BODY["content"]


def test_get_returns_detail_with_one_receive_event(api, db):
    number = created(api("operator").post("/tickets", json=BODY))["number"]
    response = api("operator").get(f"/tickets/{number}")
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data["number"] == number
    assert data["content"] == BODY["content"]
    assert data["assignments"] == []
    assert data["extensions"] == []
    assert data["callback_attempts"] == []
    assert len(data["events"]) == 1
    event = data["events"][0]
    assert event["action"] == "receive"
    assert event["actor"] == "operator"
    assert event["actor_role"] == "operator"
    assert event["from_status"] is None
    assert event["to_status"] == "received"
    assert event["payload"] == {"channel": "phone", "request_type": "complaint"}
    ticket = stored(db, number)
    assert db.scalar(sa.select(sa.func.count()).where(TicketEvent.ticket_id == ticket.id)) == 1


def test_create_without_key_twice_makes_two_tickets(api, db, ticket_count):
    before = ticket_count()
    first = created(api("operator").post("/tickets", json=BODY))["number"]
    second = created(api("operator").post("/tickets", json=BODY))["number"]
    assert first != second
    assert ticket_count() == before + 2


# -- Idempotency-Key --------------------------------------------------------------------------


def test_retry_with_same_key_and_body_replays_the_first_ticket(api, db, ticket_count):
    before = ticket_count()
    key = {"Idempotency-Key": "call-20261121-0001"}
    first = api("operator").post("/tickets", json=BODY, headers=key)
    number = created(first)["number"]
    assert "Idempotent-Replayed" not in first.headers

    # The same request, serialised differently (key order, spacing), is still the same request.
    same = json.dumps(dict(reversed(list(BODY.items()))), ensure_ascii=False, indent=2)
    retry = post_raw(api, same.encode(), headers=key)
    assert retry.status_code == 200, retry.get_data(as_text=True)
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.headers["Location"] == f"/api/v1/tickets/{number}"
    assert retry.get_json()["data"]["number"] == number
    assert retry.get_json()["data"] == first.get_json()["data"]
    assert ticket_count() == before + 1
    ticket = stored(db, number)
    assert ticket.idempotency_key == "call-20261121-0001"
    events = db.scalar(sa.select(sa.func.count()).where(TicketEvent.ticket_id == ticket.id))
    assert events == 1


def test_same_key_with_different_body_is_refused_and_stores_nothing(api, db, ticket_count):
    key = {"Idempotency-Key": "call-20261121-0002"}
    number = created(api("operator").post("/tickets", json=BODY, headers=key))["number"]
    before = ticket_count()
    other = {**BODY, "content": "另一件事：小区门口井盖缺失"}
    response = api("operator").post("/tickets", json=other, headers=key)
    error = assert_error(response, 422, "IDEMPOTENCY_KEY_REUSED")
    assert error["details"] == {"idempotency_key": "call-20261121-0002"}
    assert "Idempotent-Replayed" not in response.headers
    assert ticket_count() == before
    assert stored(db, number).content == BODY["content"]


def test_two_users_may_use_the_same_key_independently(api, db, ticket_count):
    before = ticket_count()
    key = {"Idempotency-Key": "shared-key-1"}
    first = created(api("operator").post("/tickets", json=BODY, headers=key))
    second = created(api("operator2").post("/tickets", json=BODY, headers=key))
    assert first["number"] != second["number"]
    assert stored(db, second["number"]).created_by.username == "operator2"
    # And operator2's key does not block a different body from operator.
    other = {**BODY, "content": "不同的诉求"}
    third = api("operator").post("/tickets", json=other, headers=key)
    assert_error(third, 422, "IDEMPOTENCY_KEY_REUSED")
    assert ticket_count() == before + 2


def test_a_refused_request_does_not_use_up_its_key(api, db):
    key = {"Idempotency-Key": "retry-after-fix"}
    bad = api("operator").post("/tickets", json={**BODY, "content": " "}, headers=key)
    assert_error(bad, 422, "VALIDATION_FAILED")
    created(api("operator").post("/tickets", json=BODY, headers=key))


@pytest.mark.parametrize(
    "key",
    ["k" * 101, "键-0001", "clé", "with\ttab", ""],
    ids=["too-long", "chinese", "latin1", "control", "empty"],
)
def test_invalid_idempotency_key_is_refused(api, db, key, ticket_count):
    before = ticket_count()
    response = api("operator").post("/tickets", json=BODY, headers={"Idempotency-Key": key})
    error = assert_error(response, 422, "IDEMPOTENCY_KEY_INVALID")
    assert "Idempotency-Key" in error["message"]
    assert ticket_count() == before


def test_idempotency_key_of_100_characters_is_accepted(api, db):
    key = "k" * 100
    number = created(api("operator").post("/tickets", json=BODY, headers={"Idempotency-Key": key}))[
        "number"
    ]
    assert stored(db, number).idempotency_key == key


# -- bad input: refused, nothing stored -------------------------------------------------------


URGENCY_CHOICES = "紧急程度取值无效，可选：emergency（紧急）、urgent（加急）、normal（一般）"
CHANNEL_CHOICES = "受理渠道取值无效，可选：phone（电话）、web（网站）、wechat（微信）、app（App）"


@pytest.mark.parametrize(
    "body, details",
    [
        (
            {},
            {
                "channel": "请填写受理渠道",
                "request_type": "请填写诉求类型",
                "content": "请填写诉求内容",
            },
        ),
        ({"channel": "phone", "request_type": "complaint"}, {"content": "请填写诉求内容"}),
        ({"request_type": "complaint", "content": "路灯"}, {"channel": "请填写受理渠道"}),
        ({"channel": "phone", "content": "路灯"}, {"request_type": "请填写诉求类型"}),
        ({**BODY, "content": ""}, {"content": "请填写诉求内容"}),
        ({**BODY, "content": " \n\t\u3000 "}, {"content": "请填写诉求内容"}),
        ({**BODY, "content": None}, {"content": "请填写诉求内容"}),
        ({**BODY, "content": 12345}, {"content": "诉求内容须为文本"}),
        ({**BODY, "content": ["路灯"]}, {"content": "诉求内容须为文本"}),
        (
            {**BODY, "lng": "119.1", "lat": 36.7},
            {"lng": "经度须为数字", "lat": "经度和纬度须同时提供"},
        ),
        (
            {**BODY, "lng": True, "lat": 36.7},
            {"lng": "经度须为数字", "lat": "经度和纬度须同时提供"},
        ),
        (
            {**BODY, "lng": 200, "lat": 36.7},
            {"lng": "经度须在 73.0–136.0 之间", "lat": "经度和纬度须同时提供"},
        ),
        ({**BODY, "lng": 119.1}, {"lat": "经度和纬度须同时提供"}),
        ({**BODY, "lat": 36.7}, {"lat": "经度和纬度须同时提供"}),
        ({**BODY, "channel": ["phone"]}, {"channel": CHANNEL_CHOICES}),
        ({**BODY, "channel": "fax"}, {"channel": CHANNEL_CHOICES}),
        ({**BODY, "channel": "PHONE"}, {"channel": CHANNEL_CHOICES}),
        (
            {**BODY, "urgency": "super"},
            {"urgency": URGENCY_CHOICES},
        ),
        ({**BODY, "urgency": 1}, {"urgency": "紧急程度取值无效"}),
        ({**BODY, "foo": 1}, {"foo": "未知字段“foo”"}),
        ({**BODY, "status": "finished"}, {"status": "未知字段“status”"}),
        ({**BODY, "number": "WF2026010100000001"}, {"number": "未知字段“number”"}),
        ({**BODY, "Content": "大写"}, {"Content": "未知字段“Content”"}),
        ({**BODY, "category": "9999"}, {"category": "事项分类不存在：9999"}),
        ({**BODY, "category": "01 01"}, {"category": "事项分类编码格式不正确"}),
        ({**BODY, "category": 101}, {"category": "事项分类编码格式不正确"}),
        ({**BODY, "area": "370799"}, {"area": "区域不存在：370799"}),
        (
            {**BODY, "category": "9999", "area": "370799001"},
            {"category": "事项分类不存在：9999", "area": "区域不存在：370799001"},
        ),
        ({**BODY, "title": "第一行\n第二行"}, {"title": "标题不能换行"}),
        ({**BODY, "title": "标" * 101}, {"title": "标题不能超过 100 字（现为 101 字）"}),
        ({**BODY, "requester_name": "名" * 51}, {"requester_name": "诉求人姓名不能超过 50 字"}),
        ({**BODY, "address": "址" * 201}, {"address": "地址不能超过 200 字"}),
        (
            {**BODY, "content": "诉" * 10_001},
            {"content": "诉求内容不能超过 10000 字（现为 10001 字）"},
        ),
        ({**BODY, "channel": "grid"}, {"channel": "“网格主动发现”渠道只供网格员使用"}),
    ],
    ids=[
        "empty-object",
        "no-content",
        "no-channel",
        "no-request-type",
        "empty-content",
        "whitespace-content",
        "null-content",
        "content-number",
        "content-list",
        "lng-string",
        "lng-bool",
        "lng-out-of-range",
        "lng-without-lat",
        "lat-without-lng",
        "channel-list",
        "channel-unknown",
        "channel-upper-case",
        "urgency-unknown",
        "urgency-number",
        "unknown-field",
        "status-field",
        "number-field",
        "field-name-case",
        "unknown-category",
        "malformed-category",
        "category-number",
        "unknown-area",
        "unknown-category-and-area",
        "newline-in-title",
        "title-too-long",
        "name-too-long",
        "address-too-long",
        "content-10001",
        "grid-channel-by-operator",
    ],
)
def test_invalid_fields_are_refused_with_details(api, db, body, details, ticket_count):
    before = ticket_count()
    response = api("operator").post("/tickets", json=body)
    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert set(error["details"]) == set(details)
    for name, message in details.items():
        assert error["details"][name].startswith(message), (name, error["details"][name])
    # The message names one of the problems (JSON objects have no order to call "first").
    assert any(message in error["message"] for message in error["details"].values())
    assert ticket_count() == before


@pytest.mark.parametrize(
    "phone",
    [
        "12345",
        "1380536000",
        "138053600011",
        "12805360001",
        "abc",
        "138😀05360001",
        "13805360001😀",
        "１３８０５３６０００１",
        "138０５３６０００１",
        "+44 20 7946 0958",
        "138 0536 0001 转 8",
        "\u0000",
    ],
    ids=[
        "five-digits",
        "ten-digit-mobile",
        "twelve-digit-mobile",
        "bad-mobile-prefix",
        "letters",
        "emoji-inside",
        "emoji-after",
        "fullwidth-digits",
        "mixed-fullwidth-digits",
        "foreign",
        "extension-text",
        "nul",
    ],
)
def test_invalid_phone_is_refused(api, db, phone, ticket_count):
    before = ticket_count()
    response = api("operator").post("/tickets", json={**BODY, "requester_phone": phone})
    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert error["details"] == {"requester_phone": PHONE_FORMAT}
    assert ticket_count() == before


def test_phone_as_number_is_refused(api, db, ticket_count):
    before = ticket_count()
    response = api("operator").post("/tickets", json={**BODY, "requester_phone": 13805360001})
    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert error["details"] == {"requester_phone": "联系电话须为文本"}
    assert ticket_count() == before


@pytest.mark.parametrize(
    "phone, kept",
    [
        ("13805360001", "13805360001"),
        ("138-0536-0001", "13805360001"),
        ("+86 138 0536 0001", "13805360001"),
        ("0536-8888888", "05368888888"),
        ("8888888", "8888888"),
        ("95598", "95598"),
        ("", None),
    ],
)
def test_valid_phone_is_normalised(api, db, phone, kept):
    data = created(api("operator").post("/tickets", json={**BODY, "requester_phone": phone}))
    assert data["requester_phone"] == kept
    assert stored(db, data["number"]).requester_phone == kept


@pytest.mark.parametrize(
    "char", ["\u0000", "\u0007", "\u001b", "\u007f", "\u0085", "\u000b"], ids=repr
)
def test_control_characters_in_content_are_refused(api, db, char, ticket_count):
    before = ticket_count()
    body = {**BODY, "content": f"路灯{char}不亮"}
    error = assert_error(api("operator").post("/tickets", json=body), 422, "VALIDATION_FAILED")
    assert error["details"] == {"content": f"诉求内容包含不可见控制字符（U+{ord(char):04X}）"}
    assert ticket_count() == before


def test_nul_in_title_and_name_is_refused(api, db, ticket_count):
    before = ticket_count()
    body = {**BODY, "title": "标题\u0000", "requester_name": "王\u0000先生"}
    error = assert_error(api("operator").post("/tickets", json=body), 422, "VALIDATION_FAILED")
    assert error["details"] == {
        "title": "标题包含不可见控制字符（U+0000）",
        "requester_name": "诉求人姓名包含不可见控制字符（U+0000）",
    }
    assert ticket_count() == before


@pytest.mark.parametrize("field", ["content", "title", "address"])
def test_lone_surrogate_is_refused(api, db, field, ticket_count):
    before = ticket_count()
    body = dict(BODY)
    body[field] = "PLACEHOLDER"
    raw = json.dumps(body, ensure_ascii=False).replace("PLACEHOLDER", "路灯\\ud800不亮")
    response = post_raw(api, raw.encode())
    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert set(error["details"]) == {field}
    assert error["details"][field].endswith("包含无效字符（不成对的代理字符）")
    assert ticket_count() == before


def test_lone_low_surrogate_is_refused(api, db, ticket_count):
    before = ticket_count()
    raw = b'{"channel": "phone", "request_type": "complaint", "content": "\\udc00"}'
    error = assert_error(post_raw(api, raw), 422, "VALIDATION_FAILED")
    assert error["details"] == {"content": "诉求内容包含无效字符（不成对的代理字符）"}
    assert ticket_count() == before


def test_escaped_surrogate_pair_is_an_ordinary_emoji(api, db):
    raw = b'{"channel": "phone", "request_type": "complaint", "content": "\\ud83d\\ude21"}'
    data = created(post_raw(api, raw))
    assert data["content"] == "😡"
    assert stored(db, data["number"]).content == "😡"


def test_content_of_100000_characters_is_refused_with_its_length(api, db, ticket_count):
    before = ticket_count()
    body = {**BODY, "content": "a" * 100_000}  # ~100 KB: under the body limit
    error = assert_error(api("operator").post("/tickets", json=body), 422, "VALIDATION_FAILED")
    assert "100000" in error["message"]
    assert error["details"] == {"content": "诉求内容不能超过 10000 字（现为 100000 字）"}
    assert ticket_count() == before


def test_content_of_exactly_10000_characters_is_accepted(api, db):
    content = "诉" * 10_000
    data = created(api("operator").post("/tickets", json={**BODY, "content": content}))
    assert stored(db, data["number"]).content == content


def test_body_over_256_kib_is_refused_with_413(api, db, ticket_count):
    before = ticket_count()
    raw = json.dumps({**BODY, "content": "a" * (256 * 1024)}).encode()
    assert len(raw) > 256 * 1024
    error = assert_error(post_raw(api, raw), 413, "PAYLOAD_TOO_LARGE")
    assert error["message"] == "请求内容过大"
    assert ticket_count() == before


@pytest.mark.parametrize(
    "raw, content_type",
    [
        (b"", None),
        (b"channel=phone&request_type=complaint&content=x", "application/x-www-form-urlencoded"),
        (json.dumps(BODY).encode(), "text/plain"),
        (json.dumps(BODY).encode(), "multipart/form-data; boundary=x"),
    ],
    ids=["no-content-type", "form", "text-plain", "multipart"],
)
def test_non_json_content_type_is_refused(api, db, raw, content_type, ticket_count):
    before = ticket_count()
    response = post_raw(api, raw, content_type=content_type)
    error = assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "application/json" in error["message"]
    assert ticket_count() == before


def test_empty_json_body_is_an_empty_object(api, db, ticket_count):
    before = ticket_count()
    error = assert_error(post_raw(api, b""), 422, "VALIDATION_FAILED")
    assert set(error["details"]) == {"channel", "request_type", "content"}
    assert ticket_count() == before


@pytest.mark.parametrize(
    "raw, message",
    [
        (b'{"channel": "phone",', "请求体不是有效的 JSON：第 1 行"),
        (b"{'channel': 'phone'}", "请求体不是有效的 JSON：第 1 行"),
        (b'{"channel": "phone"} trailing', "请求体不是有效的 JSON：第 1 行"),
        (b'{"content": "\n"}', "请求体不是有效的 JSON"),
        (b"[]", "请求体须为 JSON 对象"),
        (json.dumps([BODY]).encode(), "请求体须为 JSON 对象"),
        (b'"text"', "请求体须为 JSON 对象"),
        (b"null", "请求体须为 JSON 对象"),
        (b"42", "请求体须为 JSON 对象"),
        (b'{"lng": ' + b"1" * 5000 + b"}", "请求体不是有效的 JSON"),
        (b"[" * 100_000, "请求体不是有效的 JSON"),
    ],
    ids=[
        "truncated",
        "single-quotes",
        "trailing-garbage",
        "raw-newline-in-string",
        "empty-array",
        "array-of-object",
        "string",
        "null",
        "number",
        "5000-digit-number",
        "deep-nesting",
    ],
)
def test_malformed_json_is_refused(api, db, raw, message, ticket_count):
    before = ticket_count()
    error = assert_error(post_raw(api, raw), 400, "INVALID_JSON")
    assert error["message"].startswith(message), error["message"]
    assert ticket_count() == before


@pytest.mark.parametrize(
    "raw",
    [
        b'{"channel": "phone", "request_type": "complaint", "content": "\xff\xfe"}',
        json.dumps({**BODY, "content": "路灯不亮"}, ensure_ascii=False).encode("gbk"),
        b'{"channel": "phone", "request_type": "complaint", "content": "\xed\xa0\x80"}',
        b'{"channel": "phone", "request_type": "complaint", "content": "\xe8\xb7"}',
    ],
    ids=["ff-fe", "gbk", "encoded-surrogate", "truncated-sequence"],
)
def test_invalid_utf8_is_refused(api, db, raw, ticket_count):
    before = ticket_count()
    error = assert_error(post_raw(api, raw), 400, "INVALID_ENCODING")
    position = None
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        position = exc.start
    assert error["message"] == f"请求体不是有效的 UTF-8 编码（第 {position} 字节）"
    assert ticket_count() == before


# -- valid but nasty: accepted and stored verbatim --------------------------------------------


def test_emoji_html_and_fullwidth_text_are_stored_verbatim(api, db):
    body = {
        "channel": "web",
        "request_type": "complaint",
        "title": "<script>alert(1)</script>",
        "content": (
            "路灯坏了😡🔥 一家人👨‍👩‍👧晚上看不见路。<script>alert(1)</script>\n"
            "第二行：“全角引号”，（括号）！？；：、。ＡＢＣ１２３　全角空格 & <b>粗体</b> ' \""
        ),
        "requester_name": "欧阳·娜娜",
        "address": "奎文区东关街道胜利东街１００号（东门）",
    }
    response = api("operator").post("/tickets", json=body)
    data = created(response)
    assert response.mimetype == "application/json"
    for name, value in body.items():
        if name not in ("channel", "request_type"):
            assert data[name] == value, name

    ticket = stored(db, data["number"])
    assert ticket.title == "<script>alert(1)</script>"
    assert ticket.content == body["content"]
    assert "👨\u200d👩\u200d👧" in ticket.content  # the ZWJ sequence survived whole
    assert ticket.requester_name == "欧阳·娜娜"
    assert ticket.address == body["address"]

    detail = api("operator").get(f"/tickets/{data['number']}")
    assert detail.status_code == 200
    assert detail.mimetype == "application/json"
    assert detail.get_json()["data"]["title"] == "<script>alert(1)</script>"
    assert detail.get_json()["data"]["content"] == body["content"]

    found = api("operator").get("/tickets", query_string={"q": "👨‍👩‍👧"})
    assert [t["number"] for t in found.get_json()["data"]["items"]] == [data["number"]]


def test_tab_and_newlines_in_content_are_kept(api, db):
    content = "第一行\t制表符\r\n第二行\n第三行"
    data = created(api("operator").post("/tickets", json={**BODY, "content": content}))
    assert stored(db, data["number"]).content == content


# -- list -------------------------------------------------------------------------------------


@pytest.fixture
def corpus(db, user, make_ticket):
    """Tickets of known kinds, received at known moments (UTC)."""
    op = user("operator")
    utc = dt.UTC

    def make(name, when, **values):
        ticket = make_ticket(op, now=dt.datetime(*when, tzinfo=utc), **values)
        return name, ticket

    tickets = dict(
        [
            # 2025-03-01 23:30 in Shanghai
            make(
                "lamp",
                (2025, 3, 1, 15, 30),
                category="010103",
                area="370705001001001",
                content="胜利东街路灯不亮，已坏100%了",
                requester_phone="13805360001",
            ),
            # 2025-03-02 00:30 in Shanghai
            make(
                "water",
                (2025, 3, 1, 16, 30),
                channel=Channel.web,
                category="010201",
                area="370705002",
                content="大虞街道停水1000分钟",
                requester_phone="13805360002",
            ),
            make(
                "noise",
                (2025, 3, 3, 2, 0),
                channel=Channel.wechat,
                request_type=RequestType.report,
                urgency=Urgency.urgent,
                category="020302",
                area="370702001",
                title="夜间噪声a_b",
                content="广场舞噪声扰民",
            ),
            make(
                "path",
                (2025, 3, 4, 2, 0),
                category="010101",
                area="370705001",
                content="路面破损 C:\\路径\\文件 axb",
                address="奎文区东关街道鸢飞路88号",
            ),
        ]
    )
    dispatch_to(db, user, tickets["lamp"], "U-S-370705001")
    dispatch_to(db, user, tickets["water"], "U-WATER")
    return {name: t.number for name, t in tickets.items()}


def test_list_without_filters_is_newest_first(api, corpus):
    mine = set(corpus.values())
    assert listed(api, mine) == [corpus["path"], corpus["noise"], corpus["water"], corpus["lamp"]]


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"status": "received"}, {"noise", "path"}),
        ({"status": "dispatched"}, {"lamp", "water"}),
        ({"status": "received,dispatched"}, {"lamp", "water", "noise", "path"}),
        ({"status": "closed"}, set()),
        ({"channel": "phone"}, {"lamp", "path"}),
        ({"channel": "web"}, {"water"}),
        ({"request_type": "report"}, {"noise"}),
        ({"urgency": "urgent"}, {"noise"}),
        ({"urgency": "normal"}, {"lamp", "water", "path"}),
        ({"category": "01"}, {"lamp", "water", "path"}),
        ({"category": "0101"}, {"lamp", "path"}),
        ({"category": "010103"}, {"lamp"}),
        ({"category": "02"}, {"noise"}),
        ({"category": "0_"}, set()),
        ({"category": "%"}, set()),
        ({"area": "370705"}, {"lamp", "water", "path"}),
        ({"area": "370705001"}, {"lamp", "path"}),
        ({"area": "370705001001001"}, {"lamp"}),
        ({"area": "370702"}, {"noise"}),
        ({"area": "3707_5"}, set()),
        ({"unit": "U-S-370705001"}, {"lamp"}),
        ({"unit": "U-WATER"}, {"water"}),
        ({"unit": "U-CGJ"}, set()),
        ({"phone": "13805360002"}, {"water"}),
        ({"q": "路灯"}, {"lamp", "water", "path"}),  # title 小区门口路灯不亮 counts too
        # Words are looked for in the address too (the other three keep the default one).
        ({"q": "胜利东街"}, {"lamp", "water", "noise"}),
        ({"q": "鸢飞路"}, {"path"}),
        # Every word must appear, each in any of title, content or address.
        ({"q": "鸢飞路 破损"}, {"path"}),
        ({"q": "鸢飞路　路灯"}, {"path"}),  # a full-width space separates words too
        ({"q": "鸢飞路 噪声"}, set()),
        ({"q": "AXB"}, {"path"}),  # case ignored
        ({"q": "噪声"}, {"noise"}),
        ({"q": "100%"}, {"lamp"}),
        ({"q": "100"}, {"lamp", "water", "noise"}),  # 胜利东街100号 too
        ({"q": "%"}, {"lamp"}),
        ({"q": "a_b"}, {"noise"}),
        ({"q": "_"}, {"noise"}),
        ({"q": "C:\\路径"}, {"path"}),
        ({"q": "\\"}, {"path"}),
        ({"received_from": "2025-03-02"}, {"water", "noise", "path"}),
        # A date is the whole local day, both ends included (water: 03-02 00:30 local).
        ({"received_to": "2025-03-01"}, {"lamp"}),
        ({"received_to": "2025-03-02"}, {"lamp", "water"}),
        ({"received_from": "2025-03-02", "received_to": "2025-03-02"}, {"water"}),
        ({"received_from": "2025-03-02", "received_to": "2025-03-04"}, {"water", "noise", "path"}),
        ({"received_from": "2025-03-02", "received_to": "2025-03-03"}, {"water", "noise"}),
        # A moment as upper bound stays excluded; one without a zone is local time.
        ({"received_to": "2025-03-02T00:30:00"}, {"lamp"}),
        ({"received_to": "2025-03-02T00:31:00"}, {"lamp", "water"}),
        ({"received_from": "2025-03-01T16:00:00+00:00"}, {"water", "noise", "path"}),
        ({"received_to": "2025-03-01T15:30:00Z"}, set()),
        ({"received_from": "2025-03-01T15:30:00Z"}, {"lamp", "water", "noise", "path"}),
        ({"category": "01", "area": "370705001", "status": "received"}, {"path"}),
    ],
    ids=lambda v: json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else None,
)
def test_list_filters(api, corpus, params, expected):
    mine = set(corpus.values())
    assert set(listed(api, mine, **params)) == {corpus[name] for name in expected}


def test_list_pagination(api, db, user, make_ticket):
    op = user("operator")
    numbers = [
        make_ticket(
            op,
            content=f"分页测试工单 {i}",
            now=dt.datetime(2025, 5, 1, 8, i, tzinfo=dt.UTC),
        ).number
        for i in range(5)
    ]
    newest_first = numbers[::-1]
    pages = []
    for page in (1, 2, 3, 4):
        response = api("operator").get(
            "/tickets", query_string={"q": "分页测试工单", "per_page": 2, "page": page}
        )
        assert response.status_code == 200
        data = response.get_json()["data"]
        assert (data["page"], data["per_page"], data["total"]) == (page, 2, 5)
        pages.append([item["number"] for item in data["items"]])
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:5], []]

    default = api("operator").get("/tickets", query_string={"q": "分页测试工单"})
    data = default.get_json()["data"]
    assert (data["page"], data["per_page"], data["total"]) == (1, 20, 5)
    assert [item["number"] for item in data["items"]] == newest_first

    at_limit = api("operator").get("/tickets", query_string={"q": "分页测试工单", "per_page": 200})
    assert at_limit.status_code == 200
    assert at_limit.get_json()["data"]["per_page"] == 200


@pytest.mark.parametrize(
    "params, details",
    [
        ({"per_page": "201"}, {"per_page": "每页最多 200 条"}),
        ({"per_page": "0"}, {"per_page": "须为正整数"}),
        ({"per_page": "-5"}, {"per_page": "须为正整数"}),
        ({"page": "0"}, {"page": "须为正整数"}),
        ({"page": "000"}, {"page": "须为正整数"}),
        ({"page": "abc"}, {"page": "须为正整数"}),
        ({"page": "1.5"}, {"page": "须为正整数"}),
        ({"page": ""}, {"page": "须为正整数"}),
        ({"page": "²"}, {"page": "须为正整数"}),
        ({"page": "１"}, {"page": "须为正整数"}),
        ({"page": "9" * 30}, {"page": "不能超过 999999999"}),
        ({"per_page": "9" * 5000}, {"per_page": "不能超过 999999999"}),
        ({"status": "bogus"}, {"status": "状态取值无效"}),
        ({"status": "received,"}, {"status": "状态取值无效"}),
        ({"channel": "fax"}, {"channel": "取值无效"}),
        ({"request_type": "complain"}, {"request_type": "取值无效"}),
        ({"urgency": "NORMAL"}, {"urgency": "取值无效"}),
        (
            {"received_from": "yesterday"},
            {"received_from": "日期格式应为 ISO 8601，如 2026-11-01 或 2026-11-01T08:00:00+08:00"},
        ),
        (
            {"received_to": "2025-13-01"},
            {"received_to": "日期格式应为 ISO 8601，如 2026-11-01 或 2026-11-01T08:00:00+08:00"},
        ),
        ({"received_from": "0001-01-01"}, {"received_from": "日期超出范围"}),
        ({"received_to": "9999-12-31T23:00:00-05:00"}, {"received_to": "日期超出范围"}),
        ({"q": "路灯\u0000"}, {"q": "包含不可见控制字符（U+0000）"}),
        ({"phone": "\u0000"}, {"phone": "包含不可见控制字符（U+0000）"}),
        ({"category": "01\u0000"}, {"category": "包含不可见控制字符（U+0000）"}),
        ({"area": "\u0000"}, {"area": "包含不可见控制字符（U+0000）"}),
        ({"unit": "\u0000"}, {"unit": "包含不可见控制字符（U+0000）"}),
        (
            {"status": "nope", "channel": "fax", "page": "x", "received_to": "soon"},
            {
                "status": "状态取值无效",
                "channel": "取值无效",
                "page": "须为正整数",
                "received_to": "日期格式应为 ISO 8601，如 2026-11-01 或 2026-11-01T08:00:00+08:00",
            },
        ),
    ],
    ids=lambda v: json.dumps(v, ensure_ascii=True)[:60] if isinstance(v, dict) else None,
)
def test_list_refuses_invalid_filters(api, params, details):
    response = api("operator").get("/tickets", query_string=params)
    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert error["details"] == details
    assert any(message in error["message"] for message in details.values())


# -- not found, wrong method ------------------------------------------------------------------


def test_unknown_ticket_number_is_404(api):
    error = assert_error(
        api("operator").get("/tickets/WF2099010199999999"), 404, "TICKET_NOT_FOUND"
    )
    assert "WF2099010199999999" in error["message"]


def test_nul_in_ticket_number_is_refused(api):
    error = assert_error(api("operator").get("/tickets/WF%00"), 422, "VALIDATION_FAILED")
    assert set(error["details"]) == {"number"}


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/tickets/WF1/nope", "/api/v1/"])
def test_unknown_api_path_is_a_json_404(api, client, path):
    for headers in (api("operator").headers, {}):
        error = assert_error(client.get(path, headers=headers), 404, "NOT_FOUND")
        assert error["message"] == "请求的地址不存在"


@pytest.mark.parametrize(
    "method, path",
    [
        ("delete", "/api/v1/tickets"),
        ("put", "/api/v1/tickets"),
        ("post", "/api/v1/tickets/WF2099010199999999"),
        ("get", "/api/v1/tickets/WF2099010199999999/dispatch"),
        ("get", "/api/v1/auth/login"),
    ],
)
def test_wrong_method_is_a_json_405(api, client, db, method, path, ticket_count):
    before = ticket_count()
    response = getattr(client, method)(path, headers=api("operator").headers, json=BODY)
    error = assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert error["message"] == "不支持该请求方法"
    assert ticket_count() == before


# -- routing suggestion -----------------------------------------------------------------------

ZJJ = {"code": "U-ZJJ", "name": "潍坊市住房和城乡建设局"}
DONGGUAN = {"code": "U-S-370705001", "name": "东关街道办事处"}


@pytest.mark.parametrize(
    "params, unit",
    [
        # 0106 物业管理: city-wide rule U-ZJJ, street rules for each street office.
        ({"category": "010601", "area": "370705001"}, DONGGUAN),
        ({"category": "0106", "area": "370705001"}, DONGGUAN),
        ({"category": "010601", "area": "370705001001"}, DONGGUAN),
        ({"category": "010601", "area": "370705001001002"}, DONGGUAN),
        ({"category": "010601", "area": "370705002"}, {"code": "U-S-370705002"}),
        ({"category": "010601", "area": "370705"}, ZJJ),
        ({"category": "010601"}, ZJJ),
        # 0101 市政设施 has only the city-wide rule.
        ({"category": "010103", "area": "370705001"}, {"code": "U-CGJ"}),
        # A more specific category beats the broader one: 020102 → U-CGJ, 0201 → U-STHJ.
        ({"category": "020102", "area": "370705001"}, {"code": "U-CGJ"}),
        ({"category": "020101", "area": "370705001"}, {"code": "U-STHJ"}),
        # A first-level category has no rule of its own.
        ({"category": "01"}, None),
        # 1103 热线服务: the catalogue names the hotline centre, which takes calls but handles
        # none; the place's street office (else district government) gets it, never the centre.
        ({"category": "110302", "area": "370705001001002"}, DONGGUAN),
        ({"category": "110302", "area": "370705"}, {"code": "U-D-370705"}),
        ({"category": "110302"}, None),
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else None,
)
def test_routing_suggestion(api, params, unit):
    response = api("dispatcher").get("/routing/suggest", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    got = response.get_json()["data"]["unit"]
    if unit is None:
        assert got is None
    else:
        assert {k: got[k] for k in unit} == unit


@pytest.mark.parametrize(
    "params, message",
    [
        ({"category": "9999"}, "事项分类不存在：9999"),
        ({"category": "0106", "area": "370799"}, "区域不存在：370799"),
    ],
)
def test_routing_suggestion_unknown_codes(api, params, message):
    response = api("dispatcher").get("/routing/suggest", query_string=params)
    assert assert_error(response, 404, "REFERENCE_NOT_FOUND")["message"] == message


def test_routing_suggestion_needs_a_category(api):
    response = api("dispatcher").get("/routing/suggest", query_string={"area": "370705001"})
    assert response.status_code == 422
    assert response.get_json()["error"]["details"] == {"category": "请提供事项分类"}


# -- no query per row -----------------------------------------------------------------------------


def test_ticket_list_queries_do_not_grow_with_rows(api, db, varied_tickets, count_queries):
    """The list loads each relation of its rows in one query (``TICKET_OPTIONS``), whatever
    the number of rows and of different categories, areas and units among them."""
    dispatcher = api("dispatcher")
    first = varied_tickets(3)
    assert dispatcher.get("/tickets").status_code == 200  # caches warmed
    db.expunge_all()
    with count_queries() as few:
        response = dispatcher.get("/tickets")
    assert {t.number for t in first} <= {i["number"] for i in response.get_json()["data"]["items"]}
    more = varied_tickets(9)
    db.expunge_all()
    with count_queries() as many:
        response = dispatcher.get("/tickets")
    numbers = {t.number for t in first + more}
    ours = [i for i in response.get_json()["data"]["items"] if i["number"] in numbers]
    assert len(ours) == 12
    assert len({i["lead_unit"]["code"] for i in ours}) == 12
    assert many.count == few.count, many


# -- a refused role gets 403 before its body is read ---------------------------------------
# A role without the right to an operation gets 403 before anything it sent is read: not
# 422 for a body it had no business sending (the security probe, issue 12 §9).


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
    Role.inspector: "inspector",
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


def test_list_by_number_whole_or_part(api, corpus):
    mine = set(corpus.values())
    lamp = corpus["lamp"]
    assert listed(api, mine, number=lamp) == [lamp]
    assert listed(api, mine, number=lamp.lower()) == [lamp]
    assert listed(api, mine, number=f" {lamp[-8:]} ") == [lamp]
    assert set(listed(api, mine, number=lamp[:10])) == {corpus["lamp"]}  # WF20250301
    assert listed(api, mine, number="%") == []


def test_list_by_phone_as_people_write_it(api, corpus):
    mine = set(corpus.values())
    for written in ("13805360002", "138 0536 0002", "138-0536-0002", "+86 13805360002"):
        assert listed(api, mine, phone=written) == [corpus["water"]], written


@pytest.mark.parametrize("username", ["leader", "admin"])
def test_roles_seeing_masked_phones_may_not_search_by_phone(api, username):
    response = api(username).get("/tickets", query_string={"phone": "13805360002"})
    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert error["details"] == {"phone": f"{Role(username).label}不能按联系电话查询"}


@pytest.mark.parametrize(
    "params, details",
    [
        ({"phone": "12345"}, {"phone": PHONE_FORMAT}),
        ({"number": "W" * 33}, {"number": "工单编号不能超过 32 个字符"}),
        ({"q": "路" * 101}, {"q": "关键词不能超过 100 字"}),
        ({"q": "一 二 三 四 五 六"}, {"q": "关键词最多 5 个（以空格分隔）"}),
        (
            {"received_from": "2025-03-04", "received_to": "2025-03-03"},
            {"received_to": "结束日期不能早于开始日期"},
        ),
        ({"received_to": "9999-12-31"}, {"received_to": "日期超出范围"}),
    ],
    ids=lambda v: json.dumps(v, ensure_ascii=True)[:60] if isinstance(v, dict) else None,
)
def test_list_refuses_bad_search_terms(api, params, details):
    response = api("operator").get("/tickets", query_string=params)
    assert assert_error(response, 422, "VALIDATION_FAILED")["details"] == details


@pytest.mark.parametrize(
    "username, expected",
    [
        ("operator", {"lamp", "water", "noise", "path"}),
        ("supervisor", {"lamp", "water", "noise", "path"}),
        ("leader", {"lamp", "water", "noise", "path"}),
        ("kuiwen-leader", {"lamp", "water", "path"}),  # 奎文区 (370705) only
        ("dongguan", {"lamp"}),  # 东关街道办事处's tickets only
        ("water", {"water"}),
        ("cgj", set()),
    ],
)
def test_list_is_scoped_by_role(api, corpus, username, expected):
    response = api(username).get("/tickets", query_string={"per_page": 200})
    assert response.status_code == 200
    numbers = {item["number"] for item in response.get_json()["data"]["items"]}
    assert numbers & set(corpus.values()) == {corpus[name] for name in expected}
    # The filters narrow within the scope, never beyond it.
    response = api(username).get("/tickets", query_string={"area": "370702", "per_page": 200})
    numbers = {item["number"] for item in response.get_json()["data"]["items"]}
    assert numbers & set(corpus.values()) == ({corpus["noise"]} & {corpus[n] for n in expected})
