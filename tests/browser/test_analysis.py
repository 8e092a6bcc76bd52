"""The quarterly 民情分析 report in a browser (issue 16 §5): a city leader opens a quarter's
report, sees its charts (drawn, and copied to images for print) and the generated summary,
and the print layout drops the menu and forms; a refused publish keeps the typed summary.
Screenshots: the report at 1920×1080, the print media view, the PDF Chromium prints of it, and
the refused publish.

The quarter is the one before last, so the tickets written here never fall in last month
(the ranking's browser test expects last month empty)."""

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from dashboards import analysis
from dispatch import operations as ops
from hotline.db import make_engine
from hotline.enums import (
    CallbackOutcome,
    Channel,
    HotIssueState,
    IntakeOutcome,
    ReportPeriod,
    RequestType,
    Satisfaction,
    Solved,
    Urgency,
)
from hotline.models import Area, Category, HotIssue, HotIssueTicket, Unit, User
from tests.browser.conftest import SCREENSHOTS

pytestmark = pytest.mark.browser
TZ = "Asia/Shanghai"

#: (title, category, area, channel, phone) of the quarter's tickets.
MATTERS = [
    ("丽发新城搅拌站夜间噪音扰民", "020301", "370705001001", Channel.phone, "13905360001"),
    ("丽发新城搅拌站噪音大", "020301", "370705001001", Channel.web, "13905360001"),
    ("搅拌站凌晨施工噪音", "020301", "370705001001", Channel.wechat, "13905360002"),
    ("胜利东街路灯不亮", "010103", "370705001001", Channel.phone, "13905360003"),
    ("曹家巷社区路灯损坏", "010103", "370702001001", Channel.phone, "13905360004"),
    ("小区垃圾清运不及时", "010103", "370702001001", Channel.app, None),
]


def _the_quarter():
    now = dt.datetime.now(dt.UTC)
    return analysis.default_period(ReportPeriod.quarterly, now, TZ).previous()


def _write_tickets(database_url, quarter):
    engine = make_engine(database_url)
    factory = sessionmaker(bind=engine, info={"publisher": None, "notifier": None})
    with factory() as session:
        operator = session.scalars(sa.select(User).where(User.username == "operator")).one()
        dispatcher = session.scalars(sa.select(User).where(User.username == "dispatcher")).one()
        handler = session.scalars(sa.select(User).where(User.username == "dongguan")).one()
        callback = session.scalars(sa.select(User).where(User.username == "callback")).one()
        supervisor = session.scalars(sa.select(User).where(User.username == "supervisor")).one()
        street = session.scalars(sa.select(Unit).where(Unit.code == "U-S-370705001")).one()

        def receive(title, category, area, channel, phone, moment):
            ticket, _ = ops.receive(
                session,
                operator,
                channel=channel,
                request_type=RequestType.complaint,
                urgency=Urgency.normal,
                title=title,
                content=f"{title}，影响居民休息，请尽快处理。",
                requester_name="王先生",
                requester_phone=phone,
                address="奎文区东关街道胜利东街100号",
                category=session.scalars(
                    sa.select(Category).where(Category.code == category)
                ).one(),
                area=session.scalars(sa.select(Area).where(Area.code == area)).one(),
                suggestion=None,
                now=moment,
            )
            session.flush()
            return ticket

        start = quarter.start_at + dt.timedelta(hours=2)
        tickets = []
        for week in range(12):
            for index, matter in enumerate(MATTERS[: 2 + week % 5]):
                moment = start + dt.timedelta(days=7 * week + index, hours=index)
                tickets.append(receive(*matter, moment))
        before = quarter.previous().start_at + dt.timedelta(days=3)
        for index, matter in enumerate(MATTERS[3:]):
            tickets.append(receive(*matter, before + dt.timedelta(days=10 * index)))
        # Some handled to the end, for the rates.
        for index, ticket in enumerate(tickets[:8]):
            moment = ticket.received_at + dt.timedelta(hours=1)
            ops.dispatch(session, dispatcher, ticket, lead=street, now=moment)
            ops.sign(session, handler, ticket, now=moment + dt.timedelta(minutes=30))
            ops.contact(session, handler, ticket, note="已联系", now=moment + dt.timedelta(hours=1))
            ops.finish(session, handler, ticket, result="已处理", now=moment + dt.timedelta(days=1))
            happy = index % 4 != 0
            ops.record_callback(
                session,
                callback,
                ticket,
                outcome=CallbackOutcome.answered,
                solved=Solved.solved if happy else Solved.unsolved,
                satisfaction=Satisfaction.satisfied if happy else Satisfaction.dissatisfied,
                now=moment + dt.timedelta(days=2),
            )
            if not happy:  # accepted by a supervisor: nothing left in any queue
                ops.close(
                    session,
                    supervisor,
                    ticket,
                    reason="诉求超出政策范围，已解释",
                    now=moment + dt.timedelta(days=3),
                )
        # The others answered at intake: none waits in the dispatcher's queue, which other
        # browser tests read.
        for ticket in tickets[8:]:
            ops.resolve_at_intake(
                session,
                operator,
                ticket,
                outcome=IntakeOutcome.answered,
                answer="已解答",
                now=ticket.received_at + dt.timedelta(minutes=5),
            )
        issue = HotIssue(
            title="丽发新城搅拌站噪音扰民",
            place="丽发新城",
            keywords=["搅拌站", "噪音"],
            state=HotIssueState.open,
            first_at=tickets[0].received_at,
            last_at=tickets[-1].received_at,
            size=0,
            callers=2,
            heat=42.5,
        )
        session.add(issue)
        session.flush()
        noisy = [t for t in tickets if "搅拌站" in t.title and t.received_at >= quarter.start_at]
        for ticket in noisy:
            session.add(HotIssueTicket(ticket_id=ticket.id, hot_issue_id=issue.id))
        issue.size = len(noisy)
        session.commit()
    engine.dispose()


def test_leader_reads_the_quarterly_report_and_prints_it(new_page, browser_database, screenshot):
    quarter = _the_quarter()
    _write_tickets(browser_database, quarter)
    page = new_page("leader")
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto("/")
    page.click("header.top nav.menu >> text=民情分析")
    page.wait_for_load_state()
    # The picker: 季报 and the quarter, chosen from Chinese labels.
    page.click("nav.tabs >> text=季报")
    page.wait_for_load_state()
    page.select_option("[data-testid=period-picker]", quarter.key)
    page.click("form.period-picker button[type=submit]")
    page.wait_for_load_state()
    title = page.locator("[data-testid=title]").inner_text()
    assert title == f"全市12345热线民情分析季报（{quarter.label}）"
    summary = page.locator("[data-testid=summary]").inner_text()
    assert summary.startswith(f"{quarter.label}，全市12345热线共受理群众诉求")
    assert "较上季度增加" in summary and "满意率" in summary
    assert "“丽发新城搅拌站噪音扰民”" in summary
    # Six charts drawn, each with its print image.
    page.wait_for_selector("body[data-charts='6']")
    assert page.locator("#chart-trend canvas").count() == 1
    assert page.locator("img.chart-image").count() == 6
    src = page.locator("img.chart-image").first.get_attribute("src")
    assert src.startswith("data:image/png;base64,") and len(src) > 5000
    assert page.locator("[data-testid=repeat-callers]").inner_text().count("139****0001") == 1
    assert page.locator("[data-testid=hot-issues]").inner_text().startswith("热点问题")
    assert page.locator("[data-testid=publish]").is_visible()
    screenshot(page, "analysis-quarterly")

    # Print: no menu, no picker, no publish form; the chart images instead of the charts.
    page.emulate_media(media="print")
    page.evaluate(
        "Promise.all([...document.querySelectorAll('img.chart-image')].map(i => i.decode()))"
    )
    assert not page.locator("header.top").is_visible()
    assert not page.locator("form.period-picker").is_visible()
    assert not page.locator("[data-testid=publish]").is_visible()
    assert not page.locator("#chart-trend").is_visible()
    assert page.locator("img.chart-image").first.is_visible()
    breaks = page.eval_on_selector_all(
        ".report-section", "els => els.map(e => getComputedStyle(e).breakBefore)"
    )
    assert breaks[:2] == ["auto", "auto"] and set(breaks[2:]) == {"page"}
    screenshot(page, "analysis-quarterly-print")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pdf = page.pdf(path=str(SCREENSHOTS / "analysis-quarterly.pdf"), format="A4")
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") >= 6
    assert pdf.count(b"/Subtype /Image") == 6  # every chart, as its picture
    page.emulate_media(media="screen")


def test_district_leader_reads_their_district(new_page, screenshot):
    quarter = _the_quarter()
    page = new_page("kuiwen-leader")
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(f"/reports/analysis?kind=quarterly&key={quarter.key}")
    assert (
        page.locator("[data-testid=title]").inner_text().startswith("奎文区12345热线民情分析季报")
    )
    assert page.locator("[data-testid=scope-picker]").count() == 0
    assert page.locator("[data-testid=publish]").count() == 0
    assert "区县报告为实时数据" in page.locator("[data-testid=status]").inner_text()
    page.wait_for_selector("body[data-charts]")
    screenshot(page, "analysis-district-leader")
    # The XLSX of the same report downloads.
    with page.expect_download() as download:
        page.click("[data-testid=xlsx]")
    assert download.value.suggested_filename.startswith(f"analysis-quarterly-{quarter.key}-370705")


def test_a_refused_publish_keeps_what_the_supervisor_typed(new_page, screenshot):
    """Two people publish the same quarter: the second sees the report again with the Chinese
    message and the summary they typed, to copy (a quarter no other browser test reads)."""
    quarter = _the_quarter().previous()
    url = f"/reports/analysis?kind=quarterly&key={quarter.key}"
    supervisor = new_page("supervisor")
    supervisor.set_viewport_size({"width": 1920, "height": 1080})
    supervisor.goto(url)
    supervisor.fill("[data-testid=summary-editor]", "督办审核员修改后的季度摘要。")
    leader = new_page("leader")
    leader.goto(url)
    leader.click("[data-testid=publish]")
    leader.wait_for_load_state()
    assert leader.locator("[data-testid=publish]").count() == 0
    supervisor.click("[data-testid=publish]")
    supervisor.wait_for_load_state()
    error = supervisor.locator("[data-testid=publish-error]")
    assert error.inner_text() == f"{quarter.label}季报已发布，不能重复发布"
    assert supervisor.locator("[data-testid=summary-typed]").input_value() == (
        "督办审核员修改后的季度摘要。"
    )
    assert supervisor.locator("[data-testid=publish]").count() == 0
    title = supervisor.locator("[data-testid=title]").inner_text()
    assert title == f"全市12345热线民情分析季报（{quarter.label}）"
    supervisor.wait_for_selector("body[data-charts]")
    screenshot(supervisor, "analysis-publish-refused")
