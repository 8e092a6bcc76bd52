"""吹哨报到 through the JSON API (dispatch/api/whistle.py): the street blows the whistle, the
summoned department sees the ticket, reports and gives its opinion, the lead withdraws; bad
input and wrong roles are refused in the error envelope; the supervisors' list."""

import sqlalchemy as sa

from dispatch import operations
from hotline.models import Summons, TicketEvent, Unit
from tests.helpers import assert_error

DONGGUAN = "U-S-370705001"


def signed(db, user, make_ticket):
    ticket = make_ticket(user("operator"), category="010103", area="370705001")
    lead = db.scalars(sa.select(Unit).where(Unit.code == DONGGUAN)).one()
    operations.dispatch(db, user("dispatcher"), ticket, lead=lead)
    operations.sign(db, user("dongguan"), ticket)
    db.flush()
    return ticket


def post(api, username, ticket, slug, body):
    return api(username).post(f"/tickets/{ticket.number}/{slug}", json=body)


def test_whistle_report_opinion_withdraw(api, db, user, make_ticket):
    ticket = signed(db, user, make_ticket)
    assert_error(api("cgj").get(f"/tickets/{ticket.number}"), 403, "TICKET_FORBIDDEN")

    response = post(
        api,
        "dongguan",
        ticket,
        "whistle",
        {
            "units": ["U-CGJ", "U-WATER"],
            "reason": "占道经营堵塞消防通道",
            "version": ticket.version,
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()["data"]
    assert [s["unit"]["code"] for s in data["summonses"]] == ["U-CGJ", "U-WATER"]
    first = data["summonses"][0]
    assert first["unit"]["name"] == "潍坊市城市管理局"
    assert first["state"] == "待报到"
    assert first["report_late"] is False and first["reported_at"] is None
    version = data["version"]

    # The summoned department now sees the ticket; one not summoned still does not.
    assert api("cgj").get(f"/tickets/{ticket.number}").status_code == 200
    assert_error(api("sthj").get(f"/tickets/{ticket.number}"), 403, "TICKET_FORBIDDEN")

    response = post(api, "cgj", ticket, "summons-report", {"version": version})
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()["data"]
    assert data["summonses"][0]["state"] == "已报到，待反馈"
    response = post(
        api,
        "cgj",
        ticket,
        "summons-opinion",
        {"opinion": "已安排执法中队清理", "version": data["version"]},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()["data"]
    assert data["summonses"][0]["opinion"] == "已安排执法中队清理"
    assert data["summonses"][0]["state"] == "已反馈"

    response = post(
        api,
        "dongguan",
        ticket,
        "summons-withdrawal",
        {"unit": "U-WATER", "reason": "无需供水配合", "version": data["version"]},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    water = response.get_json()["data"]["summonses"][1]
    assert water["cancel_reason"] == "无需供水配合"
    assert water["state"] == "已结束"

    listed = api("cgj").get(f"/tickets/{ticket.number}/summonses").get_json()["data"]["items"]
    assert len(listed) == 2


def test_refusals_change_nothing(api, db, user, make_ticket):
    ticket = signed(db, user, make_ticket)
    v = ticket.version
    cases = [
        ("operator", {"units": ["U-CGJ"], "reason": "x", "version": v}, 403, "ROLE_NOT_ALLOWED"),
        ("dongguan", {"units": "U-CGJ", "reason": "x", "version": v}, 422, "VALIDATION_FAILED"),
        ("dongguan", {"units": ["U-NOPE"], "reason": "x", "version": v}, 422, "VALIDATION_FAILED"),
        ("dongguan", {"units": ["U-CGJ"], "reason": "a\x00b", "version": v}, 422, None),
        ("dongguan", {"units": ["U-CGJ"], "reason": "x" * 1001, "version": v}, 422, None),
        ("dongguan", {"units": ["U-CGJ"], "reason": "x", "version": 10**12}, 409, None),
        ("dongguan", {"units": ["U-CGJ"], "reason": "x", "version": v - 1}, 409, None),
        ("cgj", {"units": ["U-WATER"], "reason": "x", "version": v}, 403, "TICKET_FORBIDDEN"),
    ]
    for username, body, status, code in cases:
        response = post(api, username, ticket, "whistle", body)
        assert response.status_code == status, (body, response.get_data(as_text=True))
        if code:
            assert_error(response, status, code)
    assert_error(
        post(api, "cgj", ticket, "summons-report", {"version": v}), 403, "TICKET_FORBIDDEN"
    )
    assert db.scalar(sa.select(sa.func.count()).select_from(Summons)) == 0


def test_supervisors_list(api, db, user, make_ticket):
    ticket = signed(db, user, make_ticket)
    post(
        api,
        "dongguan",
        ticket,
        "whistle",
        {"units": ["U-CGJ"], "reason": "需执法", "version": ticket.version},
    )
    items = api("supervisor").get("/summonses?which=open").get_json()["data"]["items"]
    assert ticket.number in [i["ticket"] for i in items]
    assert api("supervisor").get("/summonses?which=late").status_code == 200
    assert_error(api("supervisor").get("/summonses?which=x"), 422, "VALIDATION_FAILED")
    assert_error(api("dongguan").get("/summonses"), 403, "ROLE_NOT_ALLOWED")


def test_leaders_list_is_their_districts(api, db, user, make_ticket):
    mine = signed(db, user, make_ticket)
    elsewhere = make_ticket(user("operator"), category="010103", area="370702001")
    lead = db.scalars(sa.select(Unit).where(Unit.code == DONGGUAN)).one()
    operations.dispatch(db, user("dispatcher"), elsewhere, lead=lead)
    operations.sign(db, user("dongguan"), elsewhere)
    db.flush()
    for ticket in (mine, elsewhere):
        body = {"units": ["U-CGJ"], "reason": "需执法", "version": ticket.version}
        assert post(api, "dongguan", ticket, "whistle", body).status_code == 200
    items = api("kuiwen-leader").get("/summonses?which=all").get_json()["data"]["items"]
    shown = {i["ticket"] for i in items}
    assert mine.number in shown and elsewhere.number not in shown


def test_an_opinion_of_5000_characters_is_kept_whole(api, db, user, make_ticket):
    """The event's reason column is TEXT on PostgreSQL (migration 0014): an opinion as long as
    the form allows is stored whole in the summons and in its event; one longer is refused."""
    ticket = signed(db, user, make_ticket)
    body = {"units": ["U-CGJ"], "reason": "需执法", "version": ticket.version}
    version = post(api, "dongguan", ticket, "whistle", body).get_json()["data"]["version"]
    response = post(api, "cgj", ticket, "summons-report", {"version": version})
    version = response.get_json()["data"]["version"]
    too_long = {"opinion": "查" * 5001, "version": version}
    assert_error(post(api, "cgj", ticket, "summons-opinion", too_long), 422, "VALIDATION_FAILED")
    opinion = "经现场核查，" + "执法中队已到场清理占道摊点并约谈经营户。" * 250
    opinion = opinion[:5000]
    response = post(api, "cgj", ticket, "summons-opinion", {"opinion": opinion, "version": version})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    db.expire_all()
    summons = db.scalars(sa.select(Summons).where(Summons.ticket_id == ticket.id)).one()
    event = db.scalars(
        sa.select(TicketEvent).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.action == "give_opinion"
        )
    ).one()
    assert len(opinion) == 5000
    assert summons.opinion == opinion and event.reason == opinion
