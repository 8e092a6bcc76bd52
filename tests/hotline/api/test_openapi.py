"""The API's description (``hotline.openapi``, ``GET /api/v1/openapi.json``): every route of
``/api/v1`` is in it, and the request bodies come from the parsers the views call, through
``hotline.schemas.DescribedBody``: change a parser and the description changes with it."""

import re

import pytest
import schemathesis

from dispatch import schemas as ticket_schemas
from hotline import openapi
from hotline.schemas import DescribedArgs, DescribedBody, Fields, Page
from tests.helpers import assert_error


@pytest.fixture
def description(api):
    response = api("operator").get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def test_every_api_route_and_method_is_described(app, description):
    expected = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = re.sub(r"<(?:[^:>]+:)?(\w+)>", r"{\1}", rule.rule)
            expected |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    described = {(path, m) for path, item in description["paths"].items() for m in item}
    assert described == expected
    assert len(expected) > 150


def test_it_is_a_valid_openapi_31_document(description):
    assert description["openapi"] == "3.1.0"
    schema = schemathesis.openapi.from_dict(description)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(item) for item in description["paths"].values())


def test_a_new_ticket_is_described_from_intake_values(app, description):
    body = description["paths"]["/api/v1/tickets"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert body["x-derived"] is True
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"channel", "request_type", "content"}
    fields = schema["properties"]
    assert fields["channel"]["title"] == "受理渠道"
    assert fields["channel"]["x-enum-labels"]["phone"] == "电话"
    assert fields["urgency"]["default"] == "normal"
    assert fields["content"]["maxLength"] == app.config["MAX_TICKET_CONTENT_CHARS"]
    assert fields["title"]["maxLength"] == 100
    assert fields["lng"]["type"] == "number"
    assert {"category", "area", "call_id", "suggestion"} <= set(fields)


def test_each_transition_is_described_from_its_parser(description):
    for form in ticket_schemas.JSON_TRANSITIONS:
        post = description["paths"][f"/api/v1/tickets/{{number}}/{form.slug}"]["post"]
        schema = post["requestBody"]["content"]["application/json"]["schema"]
        assert schema["properties"]["version"]["type"] == "integer", form.slug
        assert post["parameters"][0] == {
            "name": "number",
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
        }
    dispatch = description["paths"]["/api/v1/tickets/{number}/dispatch"]["post"]
    schema = dispatch["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["lead_unit"]
    assert schema["properties"]["assist_units"]["maxItems"] == 10


def test_a_partial_update_requires_nothing_and_lists_come_with_their_query(description):
    patch = description["paths"]["/api/v1/users/{username}"]["patch"]
    schema = patch["requestBody"]["content"]["application/json"]["schema"]
    assert "required" not in schema
    assert {"name", "role", "unit", "grids", "phone"} <= set(schema["properties"])
    create = description["paths"]["/api/v1/users"]["post"]["requestBody"]
    assert create["content"]["application/json"]["schema"]["required"] == [
        "username",
        "name",
        "role",
    ]
    listing = {p["name"]: p for p in description["paths"]["/api/v1/users"]["get"]["parameters"]}
    assert listing["per_page"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 200}
    assert {"q", "role", "unit", "active", "page"} <= set(listing)


def test_security_envelope_and_statuses(description):
    login = description["paths"]["/api/v1/auth/login"]["post"]
    assert login["security"] == []
    create = description["paths"]["/api/v1/tickets"]["post"]
    assert create["security"] == [{"bearer": []}, {"session": [], "csrf": []}]
    assert {"200", "201", "401", "403", "409", "415", "422", "503"} <= set(create["responses"])
    listing = description["paths"]["/api/v1/tickets"]["get"]
    assert listing["security"] == [{"bearer": []}, {"session": []}]
    assert "409" not in listing["responses"]
    error = description["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["required"] == ["code", "message", "details"]
    assert description["components"]["securitySchemes"]["csrf"]["name"] == "X-CSRF-Token"


def test_a_write_without_a_named_parser_says_so(description):
    body = description["paths"]["/api/v1/tickets/{number}/split"]["post"]["requestBody"]
    assert body["x-derived"] is False
    assert body["content"]["application/json"]["schema"] == {"type": "object"}


def test_the_recorder_reads_the_same_methods_that_check():
    def parse(data):
        fields = Fields(data)
        fields.text("a", "甲", required=True, max_len=5)
        fields.integer("b", "乙", minimum=1, maximum=9)
        fields.raw("c")
        fields.check()

    assert openapi.describe_body(parse) == {
        "type": "object",
        "properties": {
            "a": {
                "title": "甲",
                "type": "string",
                "maxLength": 5,
                "minLength": 1,
                "pattern": "\\S",
            },
            "b": {"title": "乙", "type": "integer", "minimum": 1, "maximum": 9},
            "c": {"description": "类型未声明（解析器直接读取）"},
        },
        "additionalProperties": False,
        "required": ["a"],
    }
    # Outside describe mode nothing is recorded and the body is read as always.
    with pytest.raises(Exception, match="甲"):
        parse({"a": "toolong"})
    args = DescribedArgs()
    Page.from_args(args, size=10, size_arg="per_page", max_size=50)
    assert args.parameters["per_page"]["maximum"] == 50
    assert isinstance(DescribedBody(), dict)


def test_needs_a_caller(client):
    assert_error(client.get("/api/v1/openapi.json"), 401, "AUTH_REQUIRED")


def test_spreadsheet_downloads_are_described_as_files(description):
    """Found by schemathesis (bench/apicheck.py): the export answered XLSX where the
    description said JSON."""
    for path in ("/api/v1/tickets/export.xlsx", "/api/v1/analysis/{kind}/{key}/report.xlsx"):
        answer = description["paths"][path]["get"]["responses"]["200"]["content"]
        assert answer == {
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                "schema": {"type": "string", "format": "binary"}
            }
        }


def test_a_new_ticket_links_to_what_acts_on_it(description):
    """The links schemathesis's stateful phase follows: receive, then act on that ticket."""
    links = description["paths"]["/api/v1/tickets"]["post"]["responses"]["201"]["links"]
    assert links["post_tickets.dispatch"] == {
        "operationId": "post_tickets.dispatch",
        "parameters": {"number": "$response.body#/data/number"},
    }
    assert "get_tickets.get_ticket" in links
    assert "links" not in description["paths"]["/api/v1/tickets"]["post"]["responses"]["200"]
