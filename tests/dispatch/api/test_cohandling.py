"""The JSON API of 协同办理 (dispatch/api/cohandling.py): an assist's report, the lead's finish
with and without the assists, splitting a call (idempotent, all-or-nothing) and the overview
of a ticket's assists and children."""

import io

import pytest
import sqlalchemy as sa

from dispatch import cohandling
from hotline.enums import TicketStatus
from hotline.models import Attachment, Ticket
from tests.dispatch.common import DONGGUAN, STREETLIGHT
from tests.dispatch.pages.test_desk import PNG

S = TicketStatus
CGJ, WATER = "U-CGJ", "U-WATER"


def _ok(response, status=200):
    assert response.status_code == status, response.json
    assert response.json["success"] is True
    return response.json["data"]


def _error(response, status, code):
    assert response.status_code == status, response.json
    assert response.json["success"] is False
    assert response.json["error"]["code"] == code, response.json
    return response.json["error"]


def _version(api, number, who="dispatcher"):
    return api(who).get(f"/tickets/{number}").json["data"]["version"]


@pytest.fixture
def assisted(dispatched):
    return lambda: dispatched(assists=(CGJ, WATER))


def test_an_assist_reports_through_the_api(api, assisted):
    ticket = assisted()
    n = ticket.number
    _ok(api("cgj").post(f"/tickets/{n}/sign", json={}))
    data = _ok(api("cgj").post(f"/tickets/{n}/assist-report", json={"report": "已清运垃圾"}))
    assert data["event"]["action"] == "report_assist"
    assert data["event"]["unit"] == CGJ
    assists = _ok(api("dongguan").get(f"/tickets/{n}/cohandling"))["assists"]
    assert [(a["unit"]["code"], a["state"], a["report"]) for a in assists] == [
        (CGJ, "已反馈", "已清运垃圾"),
        (WATER, "未签收", None),
    ]
    again = api("cgj").post(f"/tickets/{n}/assist-report", json={"report": "再报一次"})
    _error(again, 409, "ASSIST_ALREADY_REPORTED")


def test_an_assist_reports_with_photos_through_the_api(db, api, assisted):
    ticket = assisted()
    n = ticket.number
    _ok(api("cgj").post(f"/tickets/{n}/sign", json={}))
    data = _ok(
        api("cgj").post(
            f"/tickets/{n}/assist-report",
            data={"report": "已清运垃圾", "version": str(_version(api, n, "cgj")), **photos()},
            content_type="multipart/form-data",
        )
    )
    assert data["event"]["payload"]["photos"] == 1
    (photo,) = db.scalars(sa.select(Attachment).where(Attachment.ticket_id == ticket.id)).all()
    assert (photo.purpose, photo.filename) == ("assist", "现场.png")
    assist = _ok(api("dongguan").get(f"/tickets/{n}/cohandling"))["assists"][0]
    assert (assist["report"], assist["photos"]) == ("已清运垃圾", [photo.id])


def photos():
    return {"photos": [(io.BytesIO(PNG), "现场.png")]}


@pytest.mark.parametrize(
    "who,body,status,code",
    [
        ("dongguan", {"report": "主办单位"}, 403, "NOT_AN_ASSIST"),
        ("water", {"report": "未签收"}, 409, "ASSIST_NOT_SIGNED"),
        ("dispatcher", {"report": "派单员"}, 403, "ROLE_NOT_ALLOWED"),
        ("cgj", {"report": 12}, 422, "VALIDATION_FAILED"),
        ("cgj", {"report": "含\u0000字符"}, 422, "VALIDATION_FAILED"),
        ("cgj", {"report": "好", "photos": ["x"]}, 422, "VALIDATION_FAILED"),
        ("sthj", {"report": "无关单位"}, 403, "TICKET_FORBIDDEN"),
    ],
)
def test_bad_reports_are_refused(api, assisted, who, body, status, code):
    ticket = assisted()
    _ok(api("cgj").post(f"/tickets/{ticket.number}/sign", json={}))
    version = _version(api, ticket.number)
    _error(api(who).post(f"/tickets/{ticket.number}/assist-report", json=body), status, code)
    assert _version(api, ticket.number) == version


def test_the_lead_finishes_with_a_reason_for_the_missing_assists(api, assisted):
    ticket = assisted()
    n = ticket.number
    for step, body in (("sign", {}), ("contact", {"note": "已联系"})):
        _ok(api("dongguan").post(f"/tickets/{n}/{step}", json=body))
    error = _error(
        api("dongguan").post(f"/tickets/{n}/finish", json={"result": "已修复"}),
        409,
        "ASSISTS_NOT_REPORTED",
    )
    assert error["details"]["missing_units"] == [CGJ, WATER]
    assert "潍坊市城市管理局（未签收）" in error["message"]
    data = _ok(
        api("dongguan").post(
            f"/tickets/{n}/finish", json={"result": "已修复", "assists_note": "协办单位无需到场"}
        )
    )
    assert data["status"]["value"] == "finished"
    assert data["event"]["payload"]["assists_missing"] == [CGJ, WATER]
    assert data["event"]["payload"]["assists_note"] == "协办单位无需到场"


def _split_body(*units, area="370705001"):
    texts = ["小区门口路灯不亮", "路边井盖缺失", "河道有异味"]
    return {
        "children": [
            {"content": texts[i], "category": STREETLIGHT, "unit": code}
            | ({"area": area} if i == 0 else {})
            for i, code in enumerate(units)
        ],
        "reason": "一次来电反映多件事",
    }


def test_a_dispatcher_splits_through_the_api_once(db, api, user, make_ticket, ticket_count):
    parent = make_ticket(user("operator"))
    body = _split_body(DONGGUAN, CGJ)
    headers = {"Idempotency-Key": "split-1"}
    response = api("dispatcher").post(f"/tickets/{parent.number}/split", json=body, headers=headers)
    data = _ok(response, 201)
    assert data["status"]["value"] == "split"
    assert [(c["status"]["value"], c["lead_unit"]["code"]) for c in data["children"]] == [
        ("dispatched", DONGGUAN),
        ("dispatched", CGJ),
    ]
    count = ticket_count()
    replay = api("dispatcher").post(f"/tickets/{parent.number}/split", json=body, headers=headers)
    assert _ok(replay, 200)["event"]["id"] == data["event"]["id"]
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert ticket_count() == count
    other = _split_body(DONGGUAN, WATER)
    reused = api("dispatcher").post(f"/tickets/{parent.number}/split", json=other, headers=headers)
    _error(reused, 422, "IDEMPOTENCY_KEY_REUSED")
    overview = _ok(api("dispatcher").get(f"/tickets/{parent.number}/cohandling"))
    assert [c["number"] for c in overview["children"]] == [c["number"] for c in data["children"]]
    child = _ok(api("dongguan").get(f"/tickets/{data['children'][0]['number']}/cohandling"))
    assert child["parent"] == parent.number


def test_an_operator_splits_and_the_children_are_received(api, user, make_ticket):
    parent = make_ticket(user("operator"))
    data = _ok(
        api("operator").post(f"/tickets/{parent.number}/split", json=_split_body(DONGGUAN, CGJ)),
        201,
    )
    assert [c["status"]["value"] for c in data["children"]] == ["received", "received"]
    assert [c["lead_unit"] for c in data["children"]] == [None, None]


@pytest.mark.parametrize(
    "who,body,status,code,field",
    [
        ("dispatcher", _split_body(DONGGUAN), 422, "SPLIT_CHILDREN_COUNT", "children"),
        (
            "dispatcher",
            _split_body(DONGGUAN, "U-NOPE"),
            422,
            "VALIDATION_FAILED",
            "children.2.unit",
        ),
        (
            "dispatcher",
            _split_body(DONGGUAN, CGJ) | {"children": "两件"},
            422,
            "VALIDATION_FAILED",
            "children",
        ),
        (
            "dispatcher",
            {"children": [{"content": "路灯", "category": STREETLIGHT}, {"content": 1}]},
            422,
            "VALIDATION_FAILED",
            "children.1.unit",
        ),
        (
            "dispatcher",
            {
                "children": [
                    _split_body(DONGGUAN)["children"][0],
                    {"content": "x\u0000", "unit": CGJ},
                ]
            },
            422,
            "VALIDATION_FAILED",
            "children.2.content",
        ),
        (
            "dispatcher",
            _split_body(DONGGUAN, CGJ) | {"extra": 1},
            422,
            "VALIDATION_FAILED",
            "extra",
        ),
        (
            "dispatcher",
            _split_body(DONGGUAN, "U-HOTLINE"),
            422,
            "SPLIT_CHILD_INVALID",
            "children.2",
        ),
        ("dongguan", _split_body(DONGGUAN, CGJ), 403, "ROLE_NOT_ALLOWED", None),
        ("supervisor", _split_body(DONGGUAN, CGJ), 403, "ROLE_NOT_ALLOWED", None),
    ],
    ids=[
        "one-child",
        "unknown-unit",
        "children-not-a-list",
        "child-missing-fields",
        "nul-in-content",
        "unknown-field",
        "hotline-centre",
        "unit-handler",
        "supervisor",
    ],
)
def test_a_bad_split_writes_nothing(
    db, api, user, make_ticket, ticket_count, who, body, status, code, field
):
    parent = make_ticket(user("operator"))
    count = ticket_count()
    error = _error(api(who).post(f"/tickets/{parent.number}/split", json=body), status, code)
    if field:
        assert field in error["details"], error
    db.expire_all()
    assert ticket_count() == count
    assert db.get(Ticket, parent.id).status == S.received
    assert cohandling.children_of(db, parent) == []


def test_a_split_of_a_dispatched_ticket_is_a_state_conflict(api, dispatched):
    ticket = dispatched()
    response = api("dispatcher").post(
        f"/tickets/{ticket.number}/split", json=_split_body(DONGGUAN, CGJ)
    )
    error = _error(response, 409, "TICKET_STATE_CONFLICT")
    assert error["message"] == "工单当前状态为“已派单”，不能执行“拆单”"


def test_a_bad_idempotency_key_is_refused(api, user, make_ticket):
    parent = make_ticket(user("operator"))
    response = api("dispatcher").post(
        f"/tickets/{parent.number}/split",
        json=_split_body(DONGGUAN, CGJ),
        headers={"Idempotency-Key": "键"},
    )
    _error(response, 422, "IDEMPOTENCY_KEY_INVALID")
    assert sa.inspect(parent).persistent
