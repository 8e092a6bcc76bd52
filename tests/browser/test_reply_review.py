"""办结审核 in a real browser: the handler's finish form checks the reply live as it is typed
(the reasons in Chinese; a flagged reply may still be submitted and then waits for review),
and a supervisor at 1920 px works the review queue: filters by unit, sends one reply back with
a reason (the unit sees it on its ticket) and approves another, and sets a category's rule by name.
Screenshots: finish-reply-check, review-queue, reply-returned, admin-review-settings."""

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from dispatch import operations as ops
from hotline.enums import Channel, RequestType, TicketStatus, Urgency
from hotline.models import Area, Category, Ticket, Unit, User
from server.app import create_app

S = TicketStatus
DONGGUAN = "U-S-370705001"
POOR = "您反映的问题已收悉。"
GOOD = (
    "经现场核查，小区门口路灯因线路老化损坏，我街道已组织维修人员更换线路和灯具，"
    "路灯已恢复照明，并已电话告知诉求人。"
)


@pytest.fixture(autouse=True)
def _shipped_default(shipped_review_default):
    """Tickets made here are finished with the review default the product ships."""


@pytest.fixture
def app(browser_database, models_dir):
    return create_app(
        {
            "DATABASE_URL": browser_database,
            "SECRET_KEY": "browser-tests",
            "CLASSIFIER_MODELS_DIR": models_dir,
            "CLASSIFIER_PRELOAD": False,
            "CLASSIFIER_ENABLED": False,
            "LIMITS_ENABLED": False,
        }
    )


def _one(session, model, **where):
    return session.scalars(sa.select(model).filter_by(**where)).one()


def _tickets(app, n, *, finish_with=None):
    """``n`` streetlight tickets of 东关街道, contacted (and finished with ``finish_with``)."""
    numbers = []
    with app.app_context():
        session = app.extensions["hotline.db"]()
        user = {
            name: _one(session, User, username=name)
            for name in ("operator", "dispatcher", "dongguan")
        }
        for i in range(n):
            ticket, _ = ops.receive(
                session,
                user["operator"],
                channel=Channel.phone,
                request_type=RequestType.complaint,
                urgency=Urgency.normal,
                title=f"小区门口路灯不亮（{i + 1}）",
                content="小区门口路灯连续一周不亮，晚上出行不便，希望尽快维修。",
                requester_name="赵先生",
                requester_phone="13805369999",
                address="奎文区东关街道胜利东街100号",
                category=_one(session, Category, code="010103"),
                area=_one(session, Area, code="370705001"),
                suggestion=None,
            )
            ops.dispatch(
                session, user["dispatcher"], ticket, lead=_one(session, Unit, code=DONGGUAN)
            )
            ops.sign(session, user["dongguan"], ticket)
            ops.contact(session, user["dongguan"], ticket, note="已电话联系")
            if finish_with:
                ops.finish(session, user["dongguan"], ticket, result=finish_with)
            numbers.append(ticket.number)
        session.commit()
        session.close()
    return numbers


def _status(app, number):
    with app.app_context():
        session = app.extensions["hotline.db"]()
        status = session.scalars(sa.select(Ticket.status).where(Ticket.number == number)).one()
        session.close()
    return status


def test_the_finish_form_checks_the_reply_as_the_handler_types(app, new_page, screenshot):
    (number,) = _tickets(app, 1)
    page = new_page("dongguan")
    page.goto(f"/tickets/{number}")
    check = page.get_by_test_id("reply-check")
    expect(check).to_be_hidden()

    page.fill("#finish-result", POOR)
    expect(check).to_be_visible()
    expect(check).to_contain_text("疑似不合格")
    expect(check.locator("li").first).to_contain_text("收悉")
    page.locator("#finish-form").scroll_into_view_if_needed()
    screenshot(page, "finish-reply-check")

    page.fill("#finish-result", GOOD)
    expect(check).to_contain_text("未发现问题")
    expect(check.locator("li")).to_have_count(0)

    # A flagged reply may still be submitted: it waits for the hotline's review.
    page.fill("#finish-result", POOR)
    expect(check).to_contain_text("疑似不合格")
    page.locator("#finish-form button[type=submit]").click()
    page.wait_for_load_state()
    expect(page.locator("#summary")).to_contain_text("待审核")
    assert _status(app, number) == S.reviewing


def test_a_supervisor_works_the_review_queue_at_1920(app, new_page, screenshot):
    returned, approved = _tickets(app, 2, finish_with=POOR)
    page = new_page("supervisor")
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto("/reviews")
    expect(page.locator("h1")).to_have_text("办结审核")
    # Filter by the lead unit, chosen by name in the picker.
    search = page.locator("#filter-unit-search")
    search.click()
    search.press_sequentially("东关街道")
    expect(page.locator("#filter-unit-list .active .picker-code")).to_have_text(DONGGUAN)
    page.keyboard.press("Enter")
    assert page.locator("#filter-unit").input_value() == DONGGUAN
    page.locator("form.review-filters button[type=submit]").click()
    page.wait_for_load_state()
    assert "unit=" + DONGGUAN in page.url
    row = page.locator(f"#review-{returned}")
    expect(row).to_contain_text("疑似不合格")
    expect(row).to_contain_text(POOR)
    expect(row).to_contain_text("送审原因：自动检查疑似不合格")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1920
    screenshot(page, "review-queue")

    row.locator("form[action*='/return-reply'] textarea[name=reason]").fill(
        "答复未说明路灯是否修好，请补充现场核查和维修情况"
    )
    row.locator("form[action*='/return-reply'] button[type=submit]").click()
    page.wait_for_load_state()
    expect(page.locator("div.notice[role=status]").first).to_contain_text("已退回承办单位修改")
    assert page.locator(f"#review-{returned}").count() == 0
    assert "unit=" + DONGGUAN in page.url  # the filter stays

    page.locator(f"#review-{approved} form[action*='/approve-reply'] button").click()
    page.wait_for_load_state()
    expect(page.locator("div.notice[role=status]").first).to_contain_text("审核通过")
    assert _status(app, approved) == S.finished
    assert _status(app, returned) == S.contacted

    # The unit sees why, on its ticket, with its reply kept to mend.
    unit_page = new_page("dongguan")
    unit_page.goto(f"/tickets/{returned}")
    notice = unit_page.get_by_test_id("reply-returned")
    expect(notice).to_contain_text("答复未说明路灯是否修好")
    expect(unit_page.locator("#finish-result")).to_have_value(re.compile("已收悉"))
    screenshot(unit_page, "reply-returned")


def test_a_supervisor_sets_a_categorys_review_by_name(new_page, screenshot):
    """系统管理 › 办结审核设置: a category chosen by name in the picker gets its own rule (a
    category no other browser test finishes; the rule is removed again at the end)."""
    page = new_page("supervisor")
    page.goto("/admin/review-settings")
    expect(page.locator("h1")).to_have_text("办结审核设置")
    search = page.locator("#rule-category-search")
    search.click()
    search.press_sequentially("快递延误")
    expect(page.locator("#rule-category-list .active .picker-name")).to_have_text("快递延误丢失")
    page.keyboard.press("Enter")
    assert page.locator("#rule-category").input_value() == "030701"
    page.select_option("#rule-mode", "sample")
    page.fill("#review-rule input[name=sample_percent]", "30")
    page.locator("#review-rule button[type=submit]").click()
    page.wait_for_load_state()
    expect(page.locator("div.notice[role=status]").first).to_contain_text("抽样审核")
    rules = page.get_by_role("table", name="各类事项的审核方式")
    expect(rules).to_contain_text("快递延误丢失")
    expect(rules).to_contain_text("30%")
    expect(page.get_by_role("table", name="修改记录")).to_contain_text("快递延误丢失")
    screenshot(page, "admin-review-settings")

    search = page.locator("#rule-category-search")
    search.click()
    search.press_sequentially("快递延误")
    page.keyboard.press("Enter")
    page.select_option("#rule-mode", "default")
    page.locator("#review-rule button[type=submit]").click()
    page.wait_for_load_state()
    expect(page.locator("div.notice[role=status]").first).to_contain_text("按上级分类或默认")
    expect(page.get_by_role("table", name="各类事项的审核方式")).not_to_contain_text("快递延误丢失")


def test_a_grid_worker_mends_a_returned_reply_on_a_phone(app, new_page, screenshot):
    """At 390 px: the reviewer's reason, the kept reply checked live, and the reason to finish
    without the assisting unit's report (协办反馈) on the worker's finish form."""
    from tests.dispatch.common import PHOTOS

    grid_code = "370705001001001"
    with app.app_context():
        session = app.extensions["hotline.db"]()
        user = {
            name: _one(session, User, username=name)
            for name in ("operator", "dispatcher", "grid", "supervisor")
        }
        area = _one(session, Area, code=grid_code)
        ticket, _ = ops.receive(
            session,
            user["operator"],
            channel=Channel.phone,
            request_type=RequestType.help,
            urgency=Urgency.normal,
            title="人行道井盖缺失",
            content="中学街社区第1网格内人行道井盖缺失，夜间行人容易踩空，请尽快处理。",
            requester_name="钱女士",
            requester_phone=None,
            address="奎文区东关街道中学街20号",
            category=_one(session, Category, code="010102"),
            area=area,
            suggestion=None,
        )
        ops.dispatch(
            session,
            user["dispatcher"],
            ticket,
            lead=_one(session, Unit, code=DONGGUAN),
            assists=[_one(session, Unit, code="U-CGJ")],
        )
        ops.accept(session, user["grid"], ticket)
        ops.check_in(
            session,
            user["grid"],
            ticket,
            lng=area.center_lng,
            lat=area.center_lat,
            photos=PHOTOS,
        )
        ops.finish(session, user["grid"], ticket, result=POOR, assists_note="城管局尚未反馈")
        ops.return_reply(
            session, user["supervisor"], ticket, reason="请说明井盖是否已补装、何时补装"
        )
        number = ticket.number
        session.commit()
        session.close()

    phone = new_page("grid", phone=True)
    phone.goto(f"/grid/tickets/{number}")
    expect(phone.get_by_test_id("reply-returned")).to_contain_text("请说明井盖是否已补装")
    finish = phone.locator("form[action$='/finish']")
    expect(finish.locator("#finish-result")).to_have_value(POOR)
    check = phone.get_by_test_id("reply-check")
    expect(check).to_contain_text("疑似不合格")  # the kept reply is checked on opening
    expect(phone.get_by_test_id("assists-missing")).to_contain_text("城市管理局")
    finish.locator("#finish-result").fill(
        "已协调市政于当日补装井盖，现场恢复通行，并设置了警示标志。"
    )
    expect(check).to_contain_text("未发现问题")
    finish.locator("textarea[name=assists_note]").fill("城管局尚未反馈，井盖已补装完毕")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    finish.scroll_into_view_if_needed()
    screenshot(phone, "grid-reply-returned")
    finish.locator("button[type=submit]").click()
    phone.wait_for_load_state()
    expect(phone.locator("div.notice[role=status]").first).to_contain_text("待热线审核")
    assert _status(app, number) == S.reviewing
