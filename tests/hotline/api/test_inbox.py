"""Unit inboxes (hotline/api/inbox.py): who reads which inbox, filters, paging, mark-read.

Inbox items are made the way production makes them: a ticket dispatched at a fixed moment
and the SLA timers ticked three hours later (sign warning and sign overdue for the lead unit),
plus ``notify.deliver`` for units that timers reach only after days (督办).
"""

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from dispatch import operations as ops
from dispatch import timers
from hotline.models import Area, Notification, Unit, User
from hotline.notify import Message, deliver
from tests.helpers import assert_error

TZ = ZoneInfo("Asia/Shanghai")
DONGGUAN = "U-S-370705001"
STREETLIGHT = "010103"
REQUESTER = {
    "requester_name": "欧阳娜娜",
    "requester_phone": "13912345678",
    "address": "奎文区东关街道胜利东街188号3单元",
}
#: 2026-11-16 09:00 Asia/Shanghai, a Monday.
DISPATCHED_AT = dt.datetime(2026, 11, 16, 9, tzinfo=TZ).astimezone(dt.UTC)
TICKED_AT = DISPATCHED_AT + dt.timedelta(hours=3)
ITEM_KEYS = {
    "id",
    "kind",
    "level",
    "badge",
    "title",
    "body",
    "ticket",
    "created_at",
    "created_local",
    "read_at",
}


def get_user(db, username):
    return db.scalars(sa.select(User).where(User.username == username)).one()


def get_unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


@pytest.fixture
def dispatched(db, make_ticket):
    def make(lead):
        operator = get_user(db, "operator")
        ticket = make_ticket(operator, category=STREETLIGHT, now=DISPATCHED_AT, **REQUESTER)
        ops.dispatch(
            db, get_user(db, "dispatcher"), ticket, lead=get_unit(db, lead), now=DISPATCHED_AT
        )
        db.flush()
        return ticket

    return make


def note(db, code, title, level="info", kind="escalation", ticket=None):
    unit = get_unit(db, code)
    return Message(
        unit_id=unit.id,
        unit_code=code,
        kind=kind,
        level=level,
        title=title,
        body="请尽快办理。",
        ticket_id=ticket.id if ticket else None,
        ticket_number=ticket.number if ticket else None,
    )


@pytest.fixture
def inbox(db, dispatched):
    """Two sign timers for 东关街道 and 城管局, and one item each for the hotline centre,
    奎文区政府 and the mayor's office."""
    street = dispatched(DONGGUAN)
    cgj = dispatched("U-CGJ")
    result = timers.tick(db, TICKED_AT, timers.Settings())
    assert result.fired == 4
    deliver(
        db,
        [
            note(db, "U-HOTLINE", "【回访任务】热线中心", ticket=street),
            note(db, "U-D-370705", "【督办·区级】奎文区", level="red", ticket=street),
            note(db, "U-SZFB", "【督办·市级】市政府办公室", level="red", ticket=street),
        ],
        TICKED_AT,
    )
    db.flush()
    return {"street": street, "cgj": cgj}


def items_of(db, code):
    return db.scalars(
        sa.select(Notification)
        .where(Notification.unit_id == get_unit(db, code).id)
        .order_by(Notification.id.desc())
    ).all()


def data(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["success"] is True
    return body["data"]


def kinds(payload):
    return [(i["kind"], i["level"]["value"]) for i in payload["items"]]


# --- whose inbox -------------------------------------------------------------------------


def test_unit_handler_reads_only_its_own_units_inbox(api, db, inbox):
    street = inbox["street"]
    payload = data(api("dongguan").get("/inbox"))

    assert payload["unit"] == {"code": DONGGUAN, "name": get_unit(db, DONGGUAN).name}
    assert payload["unread"] == 2
    assert kinds(payload) == [("sign_overdue", "red"), ("sign_warning", "yellow")]
    overdue, warning = payload["items"]
    assert set(overdue) == ITEM_KEYS
    assert overdue["id"] > warning["id"]
    assert overdue["level"] == {"value": "red", "label": "红色超时"}
    assert warning["level"] == {"value": "yellow", "label": "黄色预警"}
    assert overdue["ticket"] == warning["ticket"] == street.number
    assert overdue["title"] == f"【签收超时】工单 {street.number}"
    assert "2026-11-16 11:00" in overdue["body"]
    assert overdue["created_at"] == TICKED_AT.isoformat() == "2026-11-16T04:00:00+00:00"
    assert overdue["read_at"] is None
    # Nothing of 城管局's ticket, nor of the other units.
    assert {i["id"] for i in payload["items"]} == {n.id for n in items_of(db, DONGGUAN)}

    # The street's grid worker shares the street's inbox.
    assert data(api("grid").get("/inbox")) == payload
    assert data(api("dongguan").get(f"/inbox?unit={DONGGUAN}")) == payload

    cgj = data(api("cgj").get("/inbox"))
    assert cgj["unit"]["code"] == "U-CGJ"
    assert kinds(cgj) == [("sign_overdue", "red"), ("sign_warning", "yellow")]
    assert {i["ticket"] for i in cgj["items"]} == {inbox["cgj"].number}

    kuiwen = data(api("kuiwen").get("/inbox"))
    assert kuiwen["unit"]["code"] == "U-D-370705"
    assert [i["title"] for i in kuiwen["items"]] == ["【督办·区级】奎文区"]


def test_unit_handler_cannot_open_another_units_inbox(api, inbox):
    error = assert_error(api("dongguan").get("/inbox?unit=U-CGJ"), 403, "INBOX_NOT_YOURS")
    assert error["details"] == {}
    assert_error(api("cgj").get(f"/inbox?unit={DONGGUAN}"), 403, "INBOX_NOT_YOURS")
    assert_error(api("operator").get("/inbox?unit=U-SZFB"), 403, "INBOX_NOT_YOURS")
    error = assert_error(api("dongguan").get("/inbox?unit=U-NOPE"), 404, "UNIT_NOT_FOUND")
    assert "U-NOPE" in error["message"]


@pytest.mark.parametrize("username", ["operator", "dispatcher", "callback", "supervisor"])
def test_hotline_staff_share_the_hotline_centres_inbox(api, inbox, username):
    payload = data(api(username).get("/inbox"))
    assert payload["unit"]["code"] == "U-HOTLINE"
    assert [i["title"] for i in payload["items"]] == ["【回访任务】热线中心"]
    assert payload["unread"] == 1


@pytest.mark.parametrize("username", ["supervisor", "admin"])
def test_overseers_open_any_units_inbox(api, inbox, username):
    payload = data(api(username).get("/inbox?unit=U-CGJ"))
    assert payload["unit"]["code"] == "U-CGJ"
    assert {i["ticket"] for i in payload["items"]} == {inbox["cgj"].number}
    assert payload["unread"] == 2
    assert data(api(username).get("/inbox?unit=U-SZFB"))["unit"]["code"] == "U-SZFB"
    assert_error(api(username).get("/inbox?unit=U-NOPE"), 404, "UNIT_NOT_FOUND")


def test_leader_reads_the_mayors_office_inbox(api, inbox):
    payload = data(api("leader").get("/inbox"))
    assert payload["unit"] == {"code": "U-SZFB", "name": "潍坊市人民政府办公室"}
    assert [i["title"] for i in payload["items"]] == ["【督办·市级】市政府办公室"]
    # Naming their own inbox is the same thing; naming another is refused.
    assert data(api("leader").get("/inbox?unit=U-SZFB")) == payload
    assert_error(api("leader").get("/inbox?unit=U-CGJ"), 403, "INBOX_NOT_YOURS")


def test_district_leader_reads_the_district_governments_inbox(api, db, inbox):
    leader = get_user(db, "leader")
    leader.district_id = db.scalars(sa.select(Area.id).where(Area.code == "370705")).one()
    db.flush()
    payload = data(api("leader").get("/inbox"))
    assert payload["unit"]["code"] == "U-D-370705"
    assert [i["title"] for i in payload["items"]] == ["【督办·区级】奎文区"]
    assert_error(api("leader").get("/inbox?unit=U-SZFB"), 403, "INBOX_NOT_YOURS")


def test_admin_must_name_a_unit(api, inbox):
    error = assert_error(api("admin").get("/inbox"), 422, "VALIDATION_FAILED")
    assert error["details"] == {"unit": "必填"}
    assert "unit" in error["message"]


def test_anonymous_is_refused(client, inbox):
    item = inbox["street"].id  # any id: authentication comes first
    for response in (
        client.get("/api/v1/inbox"),
        client.get("/api/v1/inbox?unit=U-CGJ"),
        client.post(f"/api/v1/inbox/{item}/read"),
    ):
        assert_error(response, 401, "AUTH_REQUIRED")
    bad_token = client.get("/api/v1/inbox", headers={"Authorization": "Bearer nope"})
    assert_error(bad_token, 401, "AUTH_INVALID")


def test_items_carry_no_personal_data(api, db, dispatched):
    street = dispatched(DONGGUAN)
    assert (street.requester_name, street.requester_phone) == ("欧阳娜娜", "13912345678")
    timers.tick(db, TICKED_AT, timers.Settings())
    db.flush()
    payload = data(api("dongguan").get("/inbox"))
    assert payload["items"]
    text = json.dumps(payload, ensure_ascii=False)
    for value in REQUESTER.values():
        assert value not in text
    assert "胜利东街" not in text
    # Nor who the handling staff are.
    assert get_user(db, "dongguan").name not in text


# --- filters and paging ------------------------------------------------------------------


def test_unread_and_level_filters(api, db, inbox):
    dongguan = api("dongguan")
    warning = items_of(db, DONGGUAN)[1]
    data(dongguan.post(f"/inbox/{warning.id}/read"))

    everything = data(dongguan.get("/inbox"))
    assert kinds(everything) == [("sign_overdue", "red"), ("sign_warning", "yellow")]
    assert everything["unread"] == 1

    unread = data(dongguan.get("/inbox?unread=1"))
    assert kinds(unread) == [("sign_overdue", "red")]
    assert kinds(data(dongguan.get("/inbox?unread=0"))) == kinds(everything)

    assert kinds(data(dongguan.get("/inbox?level=red"))) == [("sign_overdue", "red")]
    yellow = data(dongguan.get("/inbox?level=yellow"))
    assert kinds(yellow) == [("sign_warning", "yellow")]
    # The count is the inbox's, whatever the filter shows.
    assert yellow["unread"] == 1
    assert data(dongguan.get("/inbox?level=info"))["items"] == []
    assert data(dongguan.get("/inbox?level=yellow&unread=1"))["items"] == []
    assert kinds(data(dongguan.get("/inbox?level="))) == kinds(everything)


@pytest.mark.parametrize(
    "query, field",
    [
        ("level=purple", "level"),
        ("level=RED", "level"),
        ("level=红色超时", "level"),
        ("before=abc", "before"),
        ("before=-1", "before"),
        ("before=1.5", "before"),
        ("before=%EF%BC%91%EF%BC%92", "before"),  # full-width １２
        ("before=%C2%B2", "before"),  # superscript two: isdigit() but not a number
        ("before=" + "9" * 10, "before"),  # beyond the INTEGER ids: refused, not a 500
        ("before=" + "9" * 30, "before"),
    ],
)
def test_filter_validation(api, inbox, query, field):
    error = assert_error(api("dongguan").get(f"/inbox?{query}"), 422, "VALIDATION_FAILED")
    assert set(error["details"]) == {field}
    assert error["message"].startswith("查询条件有误：")
    assert error["details"][field] in error["message"]


def test_every_bad_filter_is_reported(api, inbox):
    error = assert_error(
        api("dongguan").get("/inbox?level=purple&before=x"), 422, "VALIDATION_FAILED"
    )
    assert error["details"] == {"level": "级别应为 red、yellow 或 info", "before": "须为消息编号"}


def test_paging_with_before(api, app, db):
    deliver(db, [note(db, "U-CGJ", f"消息 {n:02d}") for n in range(1, 26)], TICKED_AT)
    db.flush()
    page_size = app.config["DEFAULT_PAGE_SIZE"]
    assert page_size == 20
    cgj = api("cgj")

    first = data(cgj.get("/inbox"))
    assert [i["title"] for i in first["items"]] == [f"消息 {n:02d}" for n in range(25, 5, -1)]
    assert first["unread"] == 25
    assert all(i["ticket"] is None for i in first["items"])

    second = data(cgj.get(f"/inbox?before={first['items'][-1]['id']}"))
    assert [i["title"] for i in second["items"]] == [f"消息 {n:02d}" for n in range(5, 0, -1)]
    assert second["unread"] == 25

    last = second["items"][-1]["id"]
    assert data(cgj.get(f"/inbox?before={last}"))["items"] == []
    assert data(cgj.get("/inbox?before=0"))["items"] == []
    # Paging and filters combine; a large id is simply "from the newest".
    middle = first["items"][9]["id"]
    paged = data(cgj.get(f"/inbox?before={middle}&unread=1&level=info"))
    assert [i["title"] for i in paged["items"]] == [f"消息 {n:02d}" for n in range(15, 0, -1)]
    assert data(cgj.get("/inbox?before=999999999")) == first


def test_empty_inbox(api, db):
    payload = data(api("kuiwen").get("/inbox"))
    assert payload == {
        "unit": {"code": "U-D-370705", "name": get_unit(db, "U-D-370705").name},
        "unread": 0,
        "items": [],
    }


# --- mark read ---------------------------------------------------------------------------


def test_mark_own_item_read_keeps_the_first_reader(api, db, inbox):
    overdue = items_of(db, DONGGUAN)[0]
    first = data(api("dongguan").post(f"/inbox/{overdue.id}/read"))

    assert set(first) == ITEM_KEYS
    assert first["id"] == overdue.id
    assert first["kind"] == "sign_overdue"
    assert first["ticket"] == inbox["street"].number
    assert first["read_at"] is not None
    read_at = dt.datetime.fromisoformat(first["read_at"])
    assert abs(read_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    db.expire_all()
    stored = db.get(Notification, overdue.id)
    assert stored.read_at == read_at
    assert stored.read_by_id == get_user(db, "dongguan").id
    assert data(api("dongguan").get("/inbox"))["unread"] == 1

    # Again, and by a colleague of the same unit: fine, and the first reader is kept.
    again = data(api("dongguan").post(f"/inbox/{overdue.id}/read"))
    colleague = data(api("grid").post(f"/inbox/{overdue.id}/read"))
    assert again == colleague == first
    db.expire_all()
    stored = db.get(Notification, overdue.id)
    assert (stored.read_at, stored.read_by_id) == (read_at, get_user(db, "dongguan").id)
    assert data(api("grid").get("/inbox"))["unread"] == 1


def test_cannot_mark_another_units_item(api, db, inbox):
    overdue = items_of(db, DONGGUAN)[0]
    assert_error(api("cgj").post(f"/inbox/{overdue.id}/read"), 403, "INBOX_NOT_YOURS")
    # Overseers may look into the inbox but not mark it read for the unit.
    for overseer in ("supervisor", "admin", "leader"):
        assert_error(api(overseer).post(f"/inbox/{overdue.id}/read"), 403, "INBOX_NOT_YOURS")
    db.expire_all()
    stored = db.get(Notification, overdue.id)
    assert (stored.read_at, stored.read_by_id) == (None, None)
    assert data(api("supervisor").get(f"/inbox?unit={DONGGUAN}"))["unread"] == 2


def test_mark_unknown_item(api, db, inbox):
    missing = max(n.id for n in db.scalars(sa.select(Notification))) + 1000
    error = assert_error(
        api("dongguan").post(f"/inbox/{missing}/read"), 404, "NOTIFICATION_NOT_FOUND"
    )
    assert error["details"] == {}
    for too_large in (2**31, 2**40, 10**30):  # beyond the INTEGER ids: not found, not a 500
        # Refused by the route's id converter before any query.
        assert api("dongguan").post(f"/inbox/{too_large}/read").status_code == 404
    assert api("dongguan").post("/inbox/abc/read").status_code == 404


def test_leader_and_hotline_staff_mark_their_own_inbox(api, db, inbox):
    mayor = items_of(db, "U-SZFB")[0]
    assert data(api("leader").post(f"/inbox/{mayor.id}/read"))["read_at"] is not None
    assert data(api("leader").get("/inbox"))["unread"] == 0

    hotline = items_of(db, "U-HOTLINE")[0]
    assert data(api("callback").post(f"/inbox/{hotline.id}/read"))["read_at"] is not None
    # Shared inbox: read for every hotline colleague.
    assert data(api("operator").get("/inbox?unread=1"))["items"] == []
    db.expire_all()
    assert db.get(Notification, hotline.id).read_by_id == get_user(db, "callback").id

    # The administrator has no inbox of their own to mark.
    street = items_of(db, DONGGUAN)[0]
    assert_error(api("admin").post(f"/inbox/{street.id}/read"), 403, "INBOX_NOT_YOURS")


# --- the header's message centre: summary and mark all read --------------------------------


def test_summary_is_the_callers_own_inbox_newest_first(api, db, inbox):
    payload = data(api("dongguan").get("/inbox/summary"))
    assert payload["unit"] == {"code": DONGGUAN, "name": get_unit(db, DONGGUAN).name}
    assert payload["unread"] == 2
    assert kinds(payload) == [("sign_overdue", "red"), ("sign_warning", "yellow")]
    assert payload["items"][0]["created_local"] == "2026-11-16 12:00"
    # The leader's centre is the mayor's office's inbox, with its name.
    leader = data(api("leader").get("/inbox/summary"))
    assert leader["unit"] == {"code": "U-SZFB", "name": "潍坊市人民政府办公室"}
    assert [i["title"] for i in leader["items"]] == ["【督办·市级】市政府办公室"]
    # Overseers' ``unit`` argument is not read here: the centre is always one's own.
    assert data(api("supervisor").get("/inbox/summary?unit=U-CGJ"))["unit"]["code"] == "U-HOTLINE"


def test_summary_lists_at_most_eight_items_and_counts_them_all(api, db, inbox):
    deliver(db, [note(db, DONGGUAN, f"【提示】第 {i} 条") for i in range(10)], TICKED_AT)
    db.flush()
    payload = data(api("dongguan").get("/inbox/summary"))
    assert payload["unread"] == 12
    assert [i["title"] for i in payload["items"]] == [f"【提示】第 {i} 条" for i in range(9, 1, -1)]


def test_summary_refuses_those_without_an_inbox(api, client, inbox):
    assert_error(api("admin").get("/inbox/summary"), 403, "INBOX_NOT_YOURS")
    assert_error(client.get("/api/v1/inbox/summary"), 401, "AUTH_REQUIRED")


def test_mark_all_read_marks_only_the_callers_unit_up_to_the_newest_shown(api, db, inbox):
    dongguan = api("dongguan")
    shown = data(dongguan.get("/inbox/summary"))
    newest = shown["items"][0]["id"]
    # One arrives after the reader looked: it stays unread.
    deliver(db, [note(db, DONGGUAN, "【催办】新到")], TICKED_AT)
    db.flush()

    answer = data(dongguan.post("/inbox/read-all", json={"up_to": newest}))
    assert answer == {"marked": 2, "unread": 1}
    db.expire_all()
    street = items_of(db, DONGGUAN)
    assert [n.read_at is None for n in street] == [True, False, False]
    reader = get_user(db, "dongguan")
    assert {n.read_by_id for n in street[1:]} == {reader.id}
    # Other units' inboxes are untouched.
    assert all(n.read_at is None for n in items_of(db, "U-CGJ"))
    assert all(n.read_at is None for n in items_of(db, "U-HOTLINE"))

    # Again, without a limit: the rest; then nothing left (the first reader is kept).
    first_read = street[1].read_at
    assert data(dongguan.post("/inbox/read-all")) == {"marked": 1, "unread": 0}
    assert data(dongguan.post("/inbox/read-all", json={})) == {"marked": 0, "unread": 0}
    db.expire_all()
    assert items_of(db, DONGGUAN)[1].read_at == first_read


def test_mark_all_read_checks_its_body_and_who_asks(api, inbox):
    error = assert_error(
        api("dongguan").post("/inbox/read-all", json={"up_to": "x"}), 422, "VALIDATION_FAILED"
    )
    assert "up_to" in error["details"]
    error = assert_error(
        api("dongguan").post("/inbox/read-all", json={"everything": True}), 422, "VALIDATION_FAILED"
    )
    assert "everything" in error["details"]
    assert_error(api("admin").post("/inbox/read-all"), 403, "INBOX_NOT_YOURS")


def test_mark_all_read_with_a_session_needs_the_csrf_header(client, db, inbox, web_login):
    web_login(client, "dongguan")
    missing = client.post("/api/v1/inbox/read-all", json={})
    assert_error(missing, 403, "CSRF_FAILED")
    assert all(n.read_at is None for n in items_of(db, DONGGUAN))
    with client.session_transaction() as session:
        token = session["csrf_token"]
    answer = client.post("/api/v1/inbox/read-all", json={}, headers={"X-CSRF-Token": token})
    assert data(answer) == {"marked": 2, "unread": 0}
