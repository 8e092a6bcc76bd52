"""吹哨报到 in Chromium at a desk's 1440 px: the street's handler blows the whistle on a
ticket it leads, the summoned department finds it in its inbox under 吹哨报到, reports and
gives its opinion with a photo, and the supervisors' list shows it. Screenshots of each."""

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

DONGGUAN = "U-S-370705001"


def _signed_ticket(browser_database):
    """A ticket of the test's own, led by 东关街道 and signed by it (through the operations,
    on the browser database)."""
    from dispatch import operations
    from hotline.db import make_engine
    from hotline.enums import Channel, RequestType, Urgency
    from hotline.models import Area, Category, Unit, User

    engine = make_engine(browser_database)
    try:
        with sessionmaker(bind=engine)() as db:

            def user(name):
                return db.scalars(sa.select(User).where(User.username == name)).one()

            ticket, _ = operations.receive(
                db,
                user("operator"),
                channel=Channel.phone,
                request_type=RequestType.complaint,
                urgency=Urgency.normal,
                title="胜利东街商铺占道经营",
                content="胜利东街多家商铺长期占道经营，堵塞消防通道，街道多次劝导无效。",
                requester_name="李女士",
                requester_phone="13805361234",
                address="奎文区东关街道胜利东街120号",
                area=db.scalars(sa.select(Area).where(Area.code == "370705001")).one(),
                category=db.scalars(sa.select(Category).where(Category.code == "010103")).one(),
            )
            lead = db.scalars(sa.select(Unit).where(Unit.code == DONGGUAN)).one()
            operations.dispatch(db, user("dispatcher"), ticket, lead=lead)
            operations.sign(db, user("dongguan"), ticket)
            db.commit()
            return ticket.number
    finally:
        engine.dispose()


def test_street_blows_the_whistle_department_reports_and_answers(
    new_page, browser_database, png, screenshot
):
    number = _signed_ticket(browser_database)

    street = new_page("dongguan")
    street.goto(f"/tickets/{number}")
    form = street.locator("#whistle form:has(button:text-is('吹哨'))")
    form.locator("input[name=units][value='U-CGJ']").check()
    form.locator("input[name=units][value='U-WATER']").check()
    form.locator("textarea[name=reason]").fill("商铺占道经营堵塞消防通道，需城管执法到场")
    screenshot(street, "whistle-street-form")
    form.locator("button[type=submit]").click()
    street.wait_for_load_state()
    assert f"工单 {number}：“吹哨”已完成" in street.locator("body").inner_text()
    table = street.locator("#whistle table")
    assert "潍坊市城市管理局" in table.inner_text()
    assert table.locator("tr[data-unit='U-CGJ']").inner_text().count("待报到") == 1
    assert table.locator("tr[data-unit='U-CGJ'] .dl-ok").count() == 2  # 报到, 反馈 on time
    screenshot(street, "whistle-street-summoned")

    department = new_page("cgj")
    department.goto("/inbox")
    group = department.locator("section#whistle")
    assert number in group.inner_text()
    screenshot(department, "whistle-department-inbox")
    group.locator(f"a:has-text('{number}')").click()
    department.wait_for_load_state()
    department.locator("#whistle form:has(h3:text-is('报到')) button[type=submit]").click()
    department.wait_for_load_state()
    assert "“报到”已完成" in department.locator("body").inner_text()
    opinion = department.locator("#whistle form:has(h3:text-is('反馈处理意见'))")
    opinion.locator("textarea[name=opinion]").fill("执法中队已到场，责令商铺当日清理占道物品")
    opinion.locator("input[name=photos]").set_input_files(
        {"name": "site.png", "mimeType": "image/png", "buffer": png()}
    )
    screenshot(department, "whistle-department-opinion-form")
    opinion.locator("button[type=submit]").click()
    department.wait_for_load_state()
    row = department.locator("#whistle tr[data-unit='U-CGJ']").inner_text()
    assert "已反馈" in row and "执法中队已到场" in row
    screenshot(department, "whistle-department-answered")

    # Another department, not summoned, cannot open the ticket.
    other = new_page("sthj")
    response = other.goto(f"/tickets/{number}")
    assert response.status == 403

    supervisor = new_page("supervisor")
    supervisor.goto("/whistle?which=all")
    assert number in supervisor.locator("table").inner_text()
    screenshot(supervisor, "whistle-supervisors-list")
