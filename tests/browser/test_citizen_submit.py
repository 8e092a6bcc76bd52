"""我要反映 in a phone-sized browser (390×844): with a photo, the device's position and the SMS
code; anonymous; an emergency wording. The code is read from the server's outbox, as the
city's SMS gateway would deliver it."""

import re
import zlib

import pytest
import sqlalchemy as sa

from classifier import geo
from hotline.db import make_engine
from hotline.models import Attachment, OutboxMessage, Ticket, TicketEvent
from tests.browser.sms import code_sent_to

FIRE = "家里着火了，冒出很多浓烟，快来人"
CONTENT = "胜利东街100号门口的路灯一周都不亮了，晚上出行很不方便，请尽快维修。"
LNG, LAT = 119.1618, 36.7069


def png():
    """A real 1×1 PNG."""

    def chunk(kind, data):
        return (
            len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
        )

    header = (1).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    pixels = zlib.compress(b"\x00\xb7\x1c\x1c")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@pytest.fixture
def database(browser_database):
    engine = make_engine(browser_database)
    yield engine
    engine.dispose()


def ticket_of(engine, number):
    with engine.connect() as conn:
        ticket = conn.execute(sa.select(Ticket.__table__).where(Ticket.number == number)).one()
        photos = conn.execute(
            sa.select(sa.func.count()).where(Attachment.ticket_id == ticket.id)
        ).scalar()
        event = conn.execute(
            sa.select(TicketEvent.payload).where(
                TicketEvent.ticket_id == ticket.id, TicketEvent.action == "receive"
            )
        ).scalar()
        texts = conn.execute(
            sa.select(OutboxMessage.body).where(
                OutboxMessage.ticket_id == ticket.id, OutboxMessage.kind == "citizen_received"
            )
        ).all()
    return ticket, photos, event, texts


def phone_page(new_page, live_server):
    page = new_page(phone=True)
    page.context.grant_permissions(["geolocation"], origin=live_server)
    page.context.set_geolocation({"latitude": LAT, "longitude": LNG, "accuracy": 20})
    return page


def choose(page, label):
    page.locator(".c-choices label", has_text=label).click()


def test_submit_with_a_photo_a_position_and_the_code(new_page, live_server, screenshot, database):
    page = phone_page(new_page, live_server)
    page.goto("/citizen/")
    assert page.locator(".c-top").inner_text().startswith("12345")
    screenshot(page, "citizen-home")
    page.get_by_role("link", name="我要反映").first.click()
    page.wait_for_url(re.compile(r"/citizen/submit$"))

    choose(page, "投诉")
    page.fill("#content", CONTENT)
    page.fill("#address", "奎文区胜利东街100号")
    page.click("#locate")
    page.wait_for_selector("#position-status:has-text('已获取您的位置')")
    page.set_input_files(
        "#photos", files=[{"name": "路灯.png", "mimeType": "image/png", "buffer": png()}]
    )
    page.fill("#name", "李女士")
    phone = "13912340001"
    page.fill("#phone", phone)
    page.click("#get-code")
    page.wait_for_selector("#code-status:has-text('验证码已发送')")
    assert "秒后重新获取" in page.inner_text("#get-code")
    assert page.locator("#get-code").is_disabled()
    assert page.locator("[data-testid=demo-note]").is_visible()
    code = code_sent_to(phone)
    assert code not in page.content()
    page.fill("#code", code)
    # The page's width holds at 390 px: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "citizen-submit")

    page.click("#submit")
    page.wait_for_url(re.compile(r"/citizen/receipt/"))
    number = page.inner_text("[data-testid=ticket-number]").strip()
    assert "已向您的手机 139****0001 发送短信" in page.inner_text("[data-testid=receipt]")
    assert re.search(r"\d+月\d+日 \d\d:\d\d 前答复", page.inner_text("[data-testid=reply-by]"))
    screenshot(page, "citizen-receipt")

    ticket, photos, _, texts = ticket_of(database, number)
    assert ticket.channel == "web" and ticket.requester_phone == phone
    assert (ticket.lng, ticket.lat) == pytest.approx(geo.wgs84_to_gcj02(LNG, LAT), abs=1e-5)
    assert photos == 1 and len(texts) == 1 and number in texts[0][0]
    # A refresh shows the receipt again and files nothing.
    page.reload()
    assert page.inner_text("[data-testid=ticket-number]").strip() == number


def test_anonymous_submit(new_page, live_server, database):
    page = phone_page(new_page, live_server)
    page.goto("/citizen/submit")
    choose(page, "建议")
    page.fill("#content", "建议在人民广场东侧增设几处公共自行车停放点，方便周边居民。")
    choose(page, "匿名反映")
    assert not page.locator("#phone").is_visible()
    assert "匿名反映无法回访，也无法在线查询办理进度" in page.inner_text(
        "[data-testid=anonymous-notice]"
    )
    page.click("#submit")
    page.wait_for_url(re.compile(r"/citizen/receipt/"))
    assert "无法在线查询办理进度" in page.inner_text("[data-testid=anonymous]")
    number = page.inner_text("[data-testid=ticket-number]").strip()
    ticket, _, _, texts = ticket_of(database, number)
    assert ticket.requester_phone is None and texts == []


def test_an_emergency_wording_shows_the_line_and_may_still_be_submitted(
    new_page, live_server, screenshot, database
):
    page = phone_page(new_page, live_server)
    page.goto("/citizen/submit")
    choose(page, "求助")
    page.fill("#content", FIRE)
    page.wait_for_selector("[data-testid=emergency]:has-text('请立即拨打 119')")
    assert page.get_attribute("#emergency-call", "href") == "tel:119"
    choose(page, "匿名反映")
    page.locator("[data-testid=emergency]").scroll_into_view_if_needed()
    screenshot(page, "citizen-emergency")
    page.click("#submit")
    page.wait_for_url(re.compile(r"/citizen/receipt/"))
    number = page.inner_text("[data-testid=ticket-number]").strip()
    _, _, event, _ = ticket_of(database, number)
    assert event["urgency_warning"]["citizen_saw_warning"] is True
    assert event["urgency_warning"]["transfer_to"] == "119"
