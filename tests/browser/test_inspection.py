"""质检 in the browser: an inspector finds an operator's sampled ticket in 待质检, reads it as
it was taken and scores it on the checklist; the month's scores show it; the operator opens
我的质检 from their menu and reads their own result with its comments.

Each test makes an operator of its own (the browser database is shared: other files' tickets
are sampled with them, and nothing here assumes the queue holds only these)."""

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from dispatch import inspection
from dispatch import operations as ops
from hotline.db import local_today, make_engine
from hotline.enums import Channel, IntakeOutcome, RequestType, Role, Urgency
from hotline.models import Area, Category, Inspection, User
from tests.helpers import PASSWORD

pytestmark = pytest.mark.browser
TIMEZONE = "Asia/Shanghai"


@pytest.fixture
def sample(browser_database):
    """A new operator, their ticket of today answered at intake, and today's sample:
    (operator's username and name, the Inspection's id, the ticket's number)."""
    engine = make_engine(browser_database)
    try:
        with sessionmaker(bind=engine)() as session:
            hotline_centre = session.scalar(
                sa.select(User.unit_id).where(User.username == "operator")
            )
            username = f"qc-{uuid.uuid4().hex[:8]}"
            operator = User(
                username=username,
                name=f"质检测试员{username[-4:]}",
                role=Role.operator,
                unit_id=hotline_centre,
            )
            operator.set_password(PASSWORD)
            session.add(operator)
            session.flush()
            ticket, _ = ops.receive(
                session,
                operator,
                channel=Channel.phone,
                request_type=RequestType.consult,
                urgency=Urgency.normal,
                title="咨询居民医保缴费时间",
                content="市民来电咨询今年城乡居民医保的缴费截止时间和缴费渠道。",
                requester_name="李女士",
                requester_phone="13805368888",
                address="奎文区东关街道",
                category=session.scalars(
                    sa.select(Category).where(Category.code == "010103")
                ).one(),
                area=session.scalars(sa.select(Area).where(Area.code == "370705001")).one(),
                suggestion=None,
            )
            ops.resolve_at_intake(
                session,
                operator,
                ticket,
                outcome=IntakeOutcome.answered,
                answer="已告知缴费截止时间和线上缴费渠道",
            )
            today = local_today(TIMEZONE)
            inspection.sample_day(session, today, TIMEZONE)
            row_id = session.scalar(
                sa.select(Inspection.id).where(Inspection.ticket_id == ticket.id)
            )
            session.commit()
            return username, operator.name, row_id, ticket.number
    finally:
        engine.dispose()


def test_an_inspector_scores_a_sampled_ticket(new_page, sample, screenshot):
    username, name, row_id, number = sample
    page = new_page("inspector")
    assert page.url.endswith("/inspection")
    page.select_option("select[name=operator]", username)
    page.click("form.filters button[type=submit]")
    row = page.locator(f"#i-{row_id}")
    assert name in row.inner_text() and number in row.inner_text()
    screenshot(page, "inspection-queue-filtered")

    assert "未领取" in row.inner_text()
    row.get_by_role("link", name="领取评分").click()
    assert "咨询居民医保缴费时间" in page.inner_text("#intake")
    # The form is the holder's: claimed first, so no other inspector types the same scores.
    assert page.locator("[data-testid=inspection-form]").count() == 0
    page.get_by_role("button", name="领取并评分").click()
    assert "已由您领取" in page.inner_text("[data-testid=inspection-claim]")
    assert "直接办结（首问即答）" in page.inner_text("[data-testid=intake-decision]")
    assert "138****8888" in page.inner_text("#intake")
    # A deduction without its comment is refused, and what was typed stays.
    page.fill("input[name=courtesy_points]", "10")
    page.fill("textarea[name=comment]", "答复准确，结束语欠规范")
    page.click("[data-testid=inspection-form] button[type=submit]")
    assert "“服务规范”扣了 5 分，请填写扣分说明" in page.inner_text(
        "[data-testid=inspection-error]"
    )
    assert page.input_value("input[name=courtesy_points]") == "10"
    page.fill("textarea[name=courtesy_comment]", "未使用“请问还有其他可以帮您”的规范结束语")
    screenshot(page, "inspection-form")
    page.click("[data-testid=inspection-form] button[type=submit]")
    assert page.locator("[role=status]", has_text=f"工单 {number} 已质检评分：95 分").is_visible()

    page.get_by_role("link", name="质检成绩").click()
    scores = page.locator("[data-testid=inspection-scores]")
    line = scores.locator("tr", has_text=name).inner_text()
    assert "95.0" in line and "服务规范" in line
    screenshot(page, "inspection-scores")


def test_an_operator_reads_their_own_results(new_page, sample, browser_database, screenshot):
    username, name, row_id, number = sample
    engine = make_engine(browser_database)
    try:
        with sessionmaker(bind=engine)() as session:
            inspector = session.scalars(sa.select(User).where(User.username == "inspector")).one()
            row = session.get(Inspection, row_id)
            checks = {i.key: {"points": i.maximum} for i in inspection.CHECKLIST}
            checks["address"] = {"points": 12, "comment": "只记到街道，未问清小区和楼号"}
            inspection.inspect(session, inspector, row, checks=checks, comment="地址要问清")
            session.commit()
    finally:
        engine.dispose()

    page = new_page(username)
    assert page.url.endswith("/console")
    page.get_by_role("link", name="我的质检").click()
    summary = page.inner_text("[data-testid=my-summary]")
    assert "本月已质检 1 件，平均 92.0 分；待改进：地址准确" in summary
    result = page.locator(f"#i-{row_id}")
    assert number in result.inner_text()
    assert "只记到街道，未问清小区和楼号" in result.inner_text()
    assert "地址要问清" in result.inner_text()
    screenshot(page, "inspection-mine")
    # Other operators' pages are not theirs to open.
    assert page.goto("/inspection/scores").status == 403
    assert page.goto(f"/inspection/{row_id}").status == 403
