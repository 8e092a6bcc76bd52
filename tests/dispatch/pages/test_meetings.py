"""The pages of 疑难工单 (``/hard-cases``) and 联席会议 (``/meetings``): roles, the list with
its evidence and filter, a supervisor calling a meeting, filling its agenda, holding it and
recording a decision applied through 指定承办, refusals re-rendered with what was typed,
escaping, bad input, the XLSX and the print layout."""

import datetime as dt
import io
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import sqlalchemy as sa

from dispatch import operations as ops
from hotline.enums import MeetingState, ReturnReason, TicketStatus
from hotline.models import JointMeeting, MeetingItem, Unit
from tests.dispatch.common import DONGGUAN, STREETLIGHT
from tests.helpers import FORM_TOKEN

TZ = ZoneInfo("Asia/Shanghai")
CGJ = "U-CGJ"
XSS = '<script>alert("x")</script>'
USERS = ["operator", "dispatcher", "dongguan", "cgj", "supervisor", "leader"]


def local(day, hour=9, minute=0):
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=TZ).astimezone(dt.UTC)


@pytest.fixture
def u(user):
    return SimpleNamespace(**{name: user(name) for name in USERS})


@pytest.fixture
def clock(monkeypatch):
    """The moment page requests run at: ``clock.now = …``."""
    state = SimpleNamespace(now=local(18, 10))
    for where in ("dispatch.operations", "dispatch.meetings", "dispatch.pages.meetings"):
        monkeypatch.setattr(f"{where}.utcnow", lambda: state.now)
    return state


def unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


@pytest.fixture
def disputed(db, u, make_ticket):
    """A ticket 东关街道 and then 城管局 asked to return: returned twice, disputed."""

    def make(title="胜利东街路灯不亮"):
        start = local(16)
        ticket = make_ticket(
            u.operator, category=STREETLIGHT, area="370705001", title=title, now=start
        )
        ops.dispatch(db, u.dispatcher, ticket, lead=unit(db, DONGGUAN), now=start)
        ops.request_return(
            db,
            u.dongguan,
            ticket,
            return_reason=ReturnReason.not_our_duty,
            note="路灯属城管",
            now=local(16, 10),
        )
        ops.decide_return(
            db,
            u.dispatcher,
            ticket,
            approve=True,
            note="改派",
            lead=unit(db, CGJ),
            now=local(16, 11),
        )
        ops.request_return(
            db,
            u.cgj,
            ticket,
            return_reason=ReturnReason.wrong_territory,
            note="属地管理",
            now=local(17, 10),
        )
        db.flush()
        return ticket

    return make


def token(client, path):
    match = FORM_TOKEN.search(client.get(path).get_data(as_text=True))
    assert match, "no form on " + path
    return match.group(1)


def post(client, path, page="/meetings", **form):
    return client.post(path, data={"csrf_token": token(client, page), **form})


def text(response):
    return response.get_data(as_text=True)


def new_meeting(client, title="11月疑难工单联席会议"):
    response = post(
        client,
        "/meetings",
        title=title,
        scheduled_at="2026-11-19T14:30",
        place="热线中心三楼会议室",
        chair="郑国栋",
        attendees="东关街道办事处、潍坊市城市管理局",
    )
    assert response.status_code == 302, text(response)
    return int(response.headers["Location"].rsplit("/", 1)[1])


def test_a_unit_handler_sees_neither(client, web_login):
    web_login(client, "dongguan")
    for path in ("/hard-cases", "/meetings"):
        assert client.get(path).status_code == 403


def test_a_district_leader_reads_hard_cases_not_meetings(client, web_login):
    web_login(client, "kuiwen-leader")
    assert client.get("/hard-cases").status_code == 200
    assert client.get("/meetings").status_code == 403  # the city's meetings


def test_a_city_leader_reads_only(client, web_login, db, u, disputed, clock):
    ticket = disputed()
    meeting = JointMeeting(
        title="联席会议",
        scheduled_at=local(19, 14),
        state=MeetingState.planned,
        created_by_id=u.supervisor.id,
    )
    db.add(meeting)
    db.flush()
    db.add(
        MeetingItem(
            meeting_id=meeting.id, ticket_id=ticket.id, reasons=[], added_by_id=u.supervisor.id
        )
    )
    db.flush()
    web_login(client, "leader")
    page = text(client.get("/hard-cases"))
    assert f'id="case-{ticket.number}"' in page
    assert "列入议程" not in page
    assert "召集联席会议" not in text(client.get("/meetings"))
    shown = text(client.get(f"/meetings/{meeting.id}"))
    assert ticket.number in shown and "记录会议召开" not in shown and "移出议程" not in shown
    assert client.get(f"/meetings/{meeting.id}/meeting.xlsx").status_code == 200
    assert client.post("/meetings", data={"title": "x"}).status_code in (400, 403)


def test_hard_case_list_with_evidence_and_filter(client, web_login, u, disputed, clock):
    ticket = disputed()
    web_login(client, "supervisor")
    page = text(client.get("/hard-cases"))
    row = page.split(f'id="case-{ticket.number}"')[1].split("</tr>")[0]
    assert "多次退单" in row and "退单申请 2 次" in row
    assert "单位间争议" in row and "2 个单位先后申请退单" in row
    assert "先召集联席会议" in row  # no planned meeting yet
    assert 'value="returned" checked' not in page
    assert f'id="case-{ticket.number}"' in text(client.get("/hard-cases?rule=returned"))
    assert f'id="case-{ticket.number}"' not in text(client.get("/hard-cases?rule=reopened"))
    assert client.get("/hard-cases?rule=nonsense").status_code == 422
    assert client.get("/hard-cases?page=abc").status_code == 422


def test_back_to_the_filtered_list_never_to_the_referer(client, web_login, disputed, clock):
    """After 列入议程 the supervisor is back on the list as filtered (the form's address
    carries the filter), whatever Referer the request came with; a bad filter is refused
    before anything is added."""
    ticket = disputed()
    web_login(client, "supervisor")
    meeting_id = new_meeting(client)
    listed = text(client.get("/hard-cases?rule=returned"))
    assert 'action="/hard-cases/agenda?rule=returned&amp;page=1"' in listed
    data = {"csrf_token": token(client, "/hard-cases"), "number": ticket.number}
    bad = client.post("/hard-cases/agenda?rule=nonsense", data={**data, "meeting": meeting_id})
    assert bad.status_code == 422
    response = client.post(
        "/hard-cases/agenda?rule=returned&page=1",
        data={**data, "meeting": meeting_id},
        headers={"Referer": "https://evil.example/phish"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/hard-cases?rule=returned&page=1"


def test_supervisor_builds_an_agenda_and_records_a_decision(
    client, web_login, db, u, disputed, clock
):
    ticket = disputed(title=XSS)
    web_login(client, "supervisor")
    meeting_id = new_meeting(client, title=f"联席会议{XSS}")
    page = f"/meetings/{meeting_id}"
    assert XSS not in text(client.get(page))
    assert "&lt;script&gt;" in text(client.get(page))

    # From the hard-case list, onto the planned meeting's agenda.
    response = post(
        client, "/hard-cases/agenda", "/hard-cases", number=ticket.number, meeting=str(meeting_id)
    )
    assert response.status_code == 302
    item = db.scalars(sa.select(MeetingItem).where(MeetingItem.ticket_id == ticket.id)).one()
    assert [r["rule"] for r in item.reasons] == ["returned", "disputed"]
    # Again: refused with the reason, nothing added.
    again = post(
        client, "/hard-cases/agenda", "/hard-cases", number=ticket.number, meeting=str(meeting_id)
    )
    assert again.status_code == 409 and "已在本次会议议程中" in text(again)

    # Hold it: the minutes are required; refused, the typed time stays.
    refused = post(client, f"{page}/hold", page, held_at="2026-11-18T09:30", minutes="")
    assert refused.status_code == 422 and "请填写会议纪要" in text(refused)
    assert 'value="2026-11-18T09:30"' in text(refused)
    held = post(
        client, f"{page}/hold", page, held_at="2026-11-18T09:30", minutes="议定由东关街道办理"
    )
    assert held.status_code == 302
    meeting = db.get(JointMeeting, meeting_id)
    assert meeting.state == MeetingState.held
    assert meeting.held_at == local(18, 9, 30)

    # A deadline in the past is refused and what was typed stays.
    decision = f"{page}/items/{item.id}/decision"
    refused = post(
        client, decision, page, unit=DONGGUAN, finish_due="2026-11-18T08:00", notes="属地"
    )
    assert refused.status_code == 422
    assert "办结时限须晚于当前时间" in text(refused)
    assert "属地</textarea>" in text(refused)
    assert ticket.lead_unit.code == CGJ

    done = post(
        client, decision, page, unit=DONGGUAN, finish_due="2026-11-20T17:00", notes="属地管理"
    )
    assert done.status_code == 302
    db.expire_all()
    assert ticket.status == TicketStatus.dispatched
    assert ticket.lead_unit.code == DONGGUAN
    assert ticket.finish_due == local(20, 17)
    assert item.event.action == "apply_meeting_decision"
    shown = text(client.get(page))
    assert "东关街道办事处" in shown and "2026-11-20 17:00" in shown
    assert "已按会议决定指定承办" in shown


def test_any_open_ticket_with_a_reason(client, web_login, db, u, make_ticket, clock):
    ticket = make_ticket(u.operator, category=STREETLIGHT, area="370705001", now=local(16))
    ops.dispatch(db, u.dispatcher, ticket, lead=unit(db, DONGGUAN), now=local(16))
    web_login(client, "supervisor")
    meeting_id = new_meeting(client)
    page = f"/meetings/{meeting_id}"
    refused = post(client, f"{page}/items", page, number=ticket.number)
    assert refused.status_code == 422
    assert "不符合疑难工单规则，列入议程须填写提请理由" in text(refused)
    assert f'value="{ticket.number}"' in text(refused)
    assert (
        post(client, f"{page}/items", page, number=ticket.number, reason="市领导批示").status_code
        == 302
    )
    assert "督办提请" in text(client.get(page))
    missing = post(client, f"{page}/items", page, number="WF00000000000000", reason="x")
    assert missing.status_code == 404


def test_bad_addresses_and_input(client, web_login, clock):
    web_login(client, "supervisor")
    assert client.get("/meetings/99999999999999999999").status_code == 404
    assert client.get("/meetings/0").status_code == 404
    refused = post(client, "/meetings", title="会议", scheduled_at="3000-01-01T00:00")
    assert refused.status_code == 422 and "超出范围" in text(refused)
    refused = post(client, "/meetings", title="会\x00议", scheduled_at="2026-11-19T14:30")
    assert refused.status_code == 422
    refused = post(client, "/hard-cases/agenda", "/hard-cases", number="X", meeting="abc")
    assert refused.status_code == 422 and "请选择联席会议" in text(refused)


def test_exports(client, web_login, db, u, disputed, clock):
    ticket = disputed()
    web_login(client, "supervisor")
    meeting_id = new_meeting(client)
    page = f"/meetings/{meeting_id}"
    post(client, f"{page}/items", page, number=ticket.number)
    response = client.get(f"{page}/meeting.xlsx")
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    assert book["议程"]["B4"].value == ticket.number
    assert book["会议纪要"]["B3"].value == "尚未召开"
    printed = text(client.get(f"{page}/print"))
    assert "meeting-print" in printed and "meetings.css" in printed
    assert "一、议程" in printed and ticket.number in printed
