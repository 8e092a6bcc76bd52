"""监察问责 in Chromium: 城管局 reported contacting a requester who left no phone (this
month, through the real operations on the shared browser database); a supervisor opens the
month's cases at 1920×1080, expands the evidence, refers the case to discipline inspection
with a reason and finds it in the month's referral list; a leader reads the same case with
no form; an administrator changes a threshold on 监察问责设置 and puts it back."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import sessionmaker

from dispatch import operations as ops
from hotline.db import make_engine
from hotline.enums import Channel, RequestType, Role, Urgency
from hotline.models import Area, Category, Unit, User

pytestmark = pytest.mark.browser

SCREEN = {"width": 1920, "height": 1080}


def _one(session, model, **where):
    return session.scalars(sa.select(model).filter_by(**where)).first()


@pytest.fixture(scope="module")
def case(live_server, browser_database):
    """A ticket with no phone, dispatched to 城管局 and "contacted by phone" just now."""
    engine = make_engine(browser_database)
    try:
        with sessionmaker(bind=engine)() as db:
            operator = _one(db, User, username="operator")
            dispatcher = _one(db, User, username="dispatcher")
            handler = _one(db, User, username="cgj")
            assert handler.role == Role.unit_handler
            ticket, _ = ops.receive(
                db,
                operator,
                channel=Channel.web,
                request_type=RequestType.complaint,
                urgency=Urgency.normal,
                title="人行道井盖破损",
                content="市民网上反映：人行道井盖破损，行人容易绊倒，请尽快更换。<b>未留电话</b>",
                requester_name="匿名",
                requester_phone=None,
                address="奎文区东关街道胜利东街",
                category=_one(db, Category, code="010103"),
                area=_one(db, Area, code="370705001"),
                suggestion=None,
            )
            ops.dispatch(db, dispatcher, ticket, lead=_one(db, Unit, code="U-CGJ"))
            ops.sign(db, handler, ticket)
            ops.contact(db, handler, ticket, note="已电话联系诉求人，说明处理安排")
            db.commit()
            return ticket.number
    finally:
        engine.dispose()


def this_month():
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    return f"{today.year}-{today.month:02d}", f"{today.year}年{today.month}月"


def test_a_supervisor_refers_a_case_with_its_evidence(new_page, case, screenshot):
    month, label = this_month()
    page = new_page("supervisor")
    page.set_viewport_size(SCREEN)
    page.goto("/")
    page.get_by_role("link", name="监察问责").first.click()
    page.locator("[data-testid=month-picker]").select_option(month)
    page.click("form.month-picker button[type=submit]")
    expect(page.locator("h1")).to_have_text(f"{label} 四位一体督办 · 监察问责")
    section = page.locator("[data-testid=case][data-unit=U-CGJ][data-kind=falsification]")
    expect(section).to_contain_text("无联系电话却报已联系")
    evidence = section.locator("details[data-testid=evidence]").first
    evidence.locator("summary").click()
    expect(evidence.get_by_role("link", name=case)).to_be_visible()
    expect(evidence).to_contain_text("诉求人未留电话，报称已联系：已电话联系诉求人，说明处理安排")
    form = section.locator("[data-testid=refer-form]")
    screenshot(page, "accountability-cases")

    # Without a reason the browser keeps the form back; with one the case is referred.
    form.get_by_role("button", name="移送纪检监察").click()
    assert form.locator("textarea").evaluate("e => e.validity.valueMissing")
    form.locator("textarea").fill("多次报称电话联系未留电话的诉求人，涉嫌弄虚作假<script>")
    form.get_by_role("button", name="移送纪检监察").click()
    expect(page.locator("div.notice[role=status]")).to_contain_text(
        "已将潍坊市城市管理局的弄虚作假问题移送纪检监察"
    )
    expect(page.locator("h1")).to_have_text(f"{label} 移送纪检监察清单")
    table = page.locator("[data-testid=referrals]")
    expect(table).to_contain_text("潍坊市城市管理局")
    expect(table).to_contain_text("涉嫌弄虚作假<script>")  # shown as text
    expect(table.get_by_role("link", name=case)).to_be_visible()
    screenshot(page, "accountability-referrals")

    # Back on the cases, the case says it was referred and offers no second referral.
    page.goto(f"/reports/accountability?month={month}")
    expect(section.locator("[data-testid=referred]")).to_contain_text("移送纪检监察")
    expect(section.locator("[data-testid=refer-form]")).to_have_count(0)


def test_a_leader_reads_the_cases_without_referring(new_page, case, screenshot):
    month, _ = this_month()
    page = new_page("leader")
    page.set_viewport_size(SCREEN)
    page.goto(f"/reports/accountability?month={month}")
    section = page.locator("[data-testid=case][data-unit=U-CGJ][data-kind=falsification]")
    expect(section).to_contain_text("无联系电话却报已联系")
    expect(page.locator("[data-testid=refer-form]")).to_have_count(0)
    screenshot(page, "accountability-leader")


def test_admin_changes_an_accountability_threshold(new_page, screenshot):
    page = new_page("admin")
    page.set_viewport_size(SCREEN)
    page.goto("/admin/")
    page.locator(".admin-nav").get_by_role("link", name="监察问责设置").click()
    field = page.locator('input[name="accountability.rejected_returns"]')
    expect(field).to_have_value("3")
    field.fill("4")
    page.get_by_role("button", name="保存设置").click()
    expect(page.locator("div.notice[role=status]")).to_contain_text("监察问责设置已保存")
    expect(page.locator("table.settings-history")).to_contain_text("退单被驳回件数：3 → 4")
    screenshot(page, "admin-accountability-settings")
    field.fill("3")
    page.get_by_role("button", name="保存设置").click()
    expect(field).to_have_value("3")
