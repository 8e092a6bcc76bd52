"""疑难工单 and 联席会议 in a browser (issue 17 §4): a supervisor calls a meeting, finds a hard
case by its rule, puts it on the agenda, records the meeting held and its decision (the
responsible unit picked by name, a deadline), which designates the unit; then the print
layout of the agenda and minutes. Screenshots: the hard-case list, the meeting with its
decision, the print media view and the PDF Chromium prints of it.

The tickets are received now (this month), in the shared browser database."""

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import sessionmaker

from dispatch import operations as ops
from hotline.db import make_engine
from hotline.enums import Channel, HotIssueState, RequestType, ReturnReason, TicketStatus, Urgency
from hotline.models import Area, Category, HotIssue, HotIssueTicket, Ticket, Unit, User
from tests.browser.conftest import SCREENSHOTS

pytestmark = pytest.mark.browser
TZ = ZoneInfo("Asia/Shanghai")


def _hard_case(database_url):
    """A ticket 东关街道 and 城管局 each asked to return, on a hot issue whose other ticket
    大虞街道 leads: 多次退单, 单位间争议 and 跨单位热点. Returns both numbers."""
    engine = make_engine(database_url)
    factory = sessionmaker(bind=engine, info={"publisher": None, "notifier": None})
    with factory() as session:

        def one(model, **by):
            return session.scalars(sa.select(model).filter_by(**by)).one()

        operator, dispatcher = one(User, username="operator"), one(User, username="dispatcher")
        dongguan, cgj = one(User, username="dongguan"), one(User, username="cgj")
        street, city = one(Unit, code="U-S-370705001"), one(Unit, code="U-CGJ")

        def receive(title):
            ticket, _ = ops.receive(
                session,
                operator,
                channel=Channel.phone,
                request_type=RequestType.complaint,
                urgency=Urgency.normal,
                title=title,
                content=f"{title}，晚上出行不便，请尽快维修。",
                requester_name="王先生",
                requester_phone="13905369001",
                address="奎文区东关街道胜利东街100号",
                category=one(Category, code="010103"),
                area=one(Area, code="370705001"),
                suggestion=None,
            )
            session.flush()
            return ticket

        ticket = receive("胜利东街北段路灯成片不亮")
        ops.dispatch(session, dispatcher, ticket, lead=street)
        ops.request_return(
            session,
            dongguan,
            ticket,
            return_reason=ReturnReason.not_our_duty,
            note="路灯由城管部门维护",
        )
        ops.decide_return(session, dispatcher, ticket, approve=True, note="改派城管", lead=city)
        ops.request_return(
            session,
            cgj,
            ticket,
            return_reason=ReturnReason.wrong_territory,
            note="背街小巷路灯属街道管理",
        )
        other = receive("胜利东街南段路灯不亮")
        ops.dispatch(session, dispatcher, other, lead=one(Unit, code="U-S-370705002"))
        now = dt.datetime.now(dt.UTC)
        issue = HotIssue(
            title="胜利东街路灯成片不亮",
            state=HotIssueState.open,
            first_at=now,
            last_at=now,
            size=2,
            callers=1,
        )
        session.add(issue)
        session.flush()
        for t in (ticket, other):
            session.add(HotIssueTicket(ticket_id=t.id, hot_issue_id=issue.id))
        session.commit()
        numbers = ticket.number, other.number
    engine.dispose()
    return numbers


def _ticket(database_url, number):
    engine = make_engine(database_url)
    with sessionmaker(bind=engine)() as session:
        ticket = session.scalars(sa.select(Ticket).where(Ticket.number == number)).one()
        values = (ticket.status, ticket.lead_unit.code, ticket.finish_due)
    engine.dispose()
    return values


def test_supervisor_builds_an_agenda_records_a_decision_and_prints(
    new_page, browser_database, screenshot
):
    number, other = _hard_case(browser_database)
    page = new_page("supervisor")

    # Call the meeting.
    page.goto("/")
    page.click("header.top nav.menu >> text=联席会议")
    page.fill("input[name=title]", "胜利东街路灯联席会议")
    start = (dt.datetime.now(TZ) + dt.timedelta(days=1)).replace(hour=14, minute=30)
    page.fill("input[name=scheduled_at]", start.strftime("%Y-%m-%dT%H:%M"))
    page.fill("input[name=place]", "热线中心三楼会议室")
    page.fill("input[name=chair]", "郑国栋")
    page.fill("textarea[name=attendees]", "东关街道办事处、潍坊市城市管理局")
    page.click("text=创建会议")
    page.wait_for_url(re.compile(r"/meetings/\d+$"))
    meeting_url = page.url
    expect(page.locator(".notice")).to_contain_text("已创建")

    # Find the hard case by its rule and put it on the agenda.
    page.click("header.top nav.menu >> text=疑难工单")
    page.check("input[name=rule][value=returned]")
    page.click("form.rule-filter button[type=submit]")
    page.wait_for_url(re.compile(r"rule=returned"))
    row = page.locator(f"#case-{number}")
    expect(row).to_contain_text("退单申请 2 次")
    expect(row).to_contain_text("2 个单位先后申请退单")
    expect(row).to_contain_text("跨单位热点")
    # The hot issue's other ticket meets no 多次退单: filtered out.
    expect(page.locator(f"#case-{other}")).to_have_count(0)
    row.locator("select[name=meeting]").select_option(value=meeting_url.rsplit("/", 1)[1])
    screenshot(page, "hard-cases")
    row.locator("text=列入议程").click()
    expect(page.locator(".notice")).to_contain_text(f"工单 {number} 已列入")

    # Hold the meeting and record the decision.
    page.goto(meeting_url)
    agenda = page.locator(f"tr[data-ticket='{number}']")
    expect(agenda).to_contain_text("多次退单")
    page.fill("textarea[name=minutes]", "经会商，胜利东街背街路灯属街道管理，由东关街道负责维修。")
    page.click("text=记录会议召开")
    expect(page.locator("[data-testid=meeting-state]")).to_contain_text("已召开")
    search = agenda.locator("[id$=-search]")
    search.click()
    search.press_sequentially("东关街道")
    page.keyboard.press("Enter")
    expect(agenda.locator("select[name=unit]")).to_have_value("U-S-370705001")
    due = (dt.datetime.now(TZ) + dt.timedelta(days=3)).replace(
        hour=17, minute=0, second=0, microsecond=0
    )
    agenda.locator("input[name=finish_due]").fill(due.strftime("%Y-%m-%dT%H:%M"))
    agenda.locator("textarea[name=notes]").fill("属地管理，三日内修复")
    agenda.locator("text=记录决定并指定承办").click()
    expect(page.locator(".notice")).to_contain_text("已按会议决定指定“东关街道办事处”承办")
    expect(page.locator(f"tr[data-ticket='{number}'] [data-testid=decision]")).to_contain_text(
        due.strftime("%Y-%m-%d %H:%M")
    )
    screenshot(page, "meeting-decided")
    status, lead, finish_due = _ticket(browser_database, number)
    assert (status, lead) == (TicketStatus.dispatched, "U-S-370705001")
    assert finish_due == due.astimezone(dt.UTC)

    # The print layout: no menu or forms, agenda and minutes on A4.
    page.click("text=打印版")
    page.wait_for_url(re.compile(r"/print$"))
    page.emulate_media(media="print")
    expect(page.locator("header.top")).to_be_hidden()
    expect(page.locator("[data-testid=print]")).to_be_hidden()
    expect(page.locator("#print-agenda")).to_contain_text(number)
    expect(page.locator("#print-minutes")).to_contain_text("属地管理，三日内修复")
    screenshot(page, "meeting-print")
    pdf = page.pdf(path=str(SCREENSHOTS / "meeting-print.pdf"), format="A4")
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") >= 2
