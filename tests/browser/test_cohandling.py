"""协同办理 in Chromium at a desk's 1440 px: the dispatcher splits a call of three matters with
the split form (the third row added with its button) and the children are dispatched; the
operator splits one and the children wait for the dispatcher; an assisting unit finds its
ticket in its inbox, signs and files its part with a photo; the lead sees every assist's
state and gives its reason when finishing without the one that never signed."""

import re
import struct
import zlib

import pytest
import requests

from tests.helpers import PASSWORD

pytestmark = pytest.mark.browser

GRID = "370705001001001"
DONGGUAN, CGJ, WATER = "U-S-370705001", "U-CGJ", "U-WATER"


def _png(size=48, rgb=(46, 125, 50)):
    """A real PNG of one colour (the page shows it as the report's photo)."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    pixels = zlib.compress((b"\x00" + bytes(rgb) * size) * size)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


class Api:
    """The JSON API as one user, as a console does (session cookie and CSRF header)."""

    def __init__(self, base, username):
        self.base = base
        self.http = requests.Session()
        login = self.http.post(
            f"{base}/api/v1/auth/login",
            json={"username": username, "password": PASSWORD},
            timeout=10,
        )
        self.token = login.json()["data"]["csrf_token"]

    def post(self, path, body, status=200):
        response = self.http.post(
            f"{self.base}/api/v1{path}",
            json=body,
            headers={"X-CSRF-Token": self.token},
            timeout=20,
        )
        assert response.status_code == status, response.text
        return response.json()["data"]


def _call(live_server, content):
    return Api(live_server, "operator").post(
        "/tickets",
        {
            "channel": "phone",
            "request_type": "complaint",
            "category": "010103",
            "title": "来电反映多件事",
            "content": content,
            "area": GRID,
            "requester_phone": "13805367777",
        },
        201,
    )["number"]


def _fill_row(form, i, content, unit):
    form.locator(f"textarea[name=content-{i}]").fill(content)
    form.locator(f"[name=category-{i}]").select_option("010103")
    form.locator(f"select[name=unit-{i}]").select_option(unit)


def test_the_dispatcher_splits_a_call_of_three_matters(new_page, live_server, screenshot):
    number = _call(live_server, "来电反映：路灯不亮；井盖缺失；自来水管漏水。")
    page = new_page("dispatcher")
    page.goto(f"/tickets/{number}")
    form = page.locator("form#split-form")
    rows = form.locator("fieldset[data-split-row]")
    assert rows.nth(1).is_visible() and not rows.nth(2).is_visible()
    _fill_row(form, 0, "小区门口路灯不亮", DONGGUAN)
    _fill_row(form, 1, "路边井盖缺失", CGJ)
    form.locator("#split-add").click()
    assert rows.nth(2).is_visible()
    _fill_row(form, 2, "自来水管漏水", WATER)
    form.locator("textarea[name=reason]").fill("一次来电反映三件事")
    form.scroll_into_view_if_needed()
    screenshot(page, "split-form-dispatcher")
    form.locator("button[type=submit]:has-text('拆单')").click()
    page.wait_for_load_state()
    assert f"工单 {number}：已拆分为子工单" in page.locator("body").inner_text()
    assert "已拆单" in page.locator("#summary").inner_text()
    table = page.locator("#split-children")
    assert table.locator("tbody tr").count() == 3
    assert table.locator("tbody").inner_text().count("已派单") == 3
    screenshot(page, "split-parent-children")
    table.locator("tbody tr").nth(1).locator("a").click()
    page.wait_for_load_state()
    notice = page.locator("[data-testid=split-parent]").inner_text()
    assert number in notice and "第 2 项" in notice
    assert "潍坊市城市管理局" in page.locator("#summary").inner_text()
    screenshot(page, "split-child")


def test_the_operator_splits_and_the_dispatcher_gets_the_children(
    new_page, live_server, screenshot
):
    number = _call(live_server, "来电反映：路灯不亮，另外楼下井盖缺失。")
    page = new_page("operator")
    page.goto(f"/tickets/{number}")
    form = page.locator("form#split-form")
    assert "所选单位作为建议的主办单位" in form.inner_text()
    _fill_row(form, 0, "小区门口路灯不亮", DONGGUAN)
    _fill_row(form, 1, "楼下井盖缺失", CGJ)
    screenshot(page, "split-form-operator")
    form.locator("button[type=submit]:has-text('拆单')").click()
    page.wait_for_load_state()
    table = page.locator("#split-children")
    assert table.locator("tbody").inner_text().count("已受理") == 2
    child = re.search(r"WF\d+", table.locator("tbody tr").nth(1).inner_text()).group(0)
    dispatcher = new_page("dispatcher")
    dispatcher.goto(f"/tickets/{child}")
    # The operator's unit is the dispatch form's proposed lead.
    assert dispatcher.locator("form#dispatch select[name=lead_unit]").input_value() == CGJ


def test_an_assist_reports_and_the_lead_sees_it(new_page, live_server, screenshot):
    number = _call(live_server, "小区门口路灯不亮，路边还堆着建筑垃圾。")
    Api(live_server, "dispatcher").post(
        f"/tickets/{number}/dispatch",
        {"lead_unit": DONGGUAN, "assist_units": [CGJ, WATER], "category": "010103"},
    )
    assist = new_page("cgj")
    assist.goto("/inbox")
    assist.click(f"a:has-text('{number}')")
    assist.wait_for_load_state()
    assert assist.locator("[data-testid=assist-U-CGJ]").inner_text().count("未签收") == 1
    assist.locator("form.action:has(h3:text-is('签收')) button[type=submit]").click()
    assist.wait_for_load_state()
    form = assist.locator("form#assist-report")
    form.locator("textarea[name=report]").fill("已清运路边堆放的建筑垃圾，共两车。")
    form.locator("input[name=photos]").set_input_files(
        [{"name": "清运.png", "mimeType": "image/png", "buffer": _png()}]
    )
    form.scroll_into_view_if_needed()
    screenshot(assist, "assist-report-form")
    form.locator("button[type=submit]").click()
    assist.wait_for_load_state()
    row = assist.locator("[data-testid=assist-U-CGJ]")
    assert "已反馈" in row.inner_text() and "共两车" in row.inner_text()
    assert row.locator("img.assist-photo").count() == 1
    assert assist.locator("form#assist-report").count() == 0

    lead_api = Api(live_server, "dongguan")
    lead_api.post(f"/tickets/{number}/sign", {})
    lead_api.post(f"/tickets/{number}/contact", {"note": "已电话联系诉求人"})
    lead = new_page("dongguan")
    lead.goto(f"/tickets/{number}")
    reports = lead.locator("#assist-reports")
    assert "已反馈" in reports.locator("[data-testid=assist-U-CGJ]").inner_text()
    assert "未签收" in reports.locator("[data-testid=assist-U-WATER]").inner_text()
    finish = lead.locator("form.action:has(h3:text-is('办结'))")
    assert "潍坊市自来水有限公司（未签收）" in finish.inner_text()
    finish.locator("textarea[name=result]").fill(
        "路灯已更换灯泡，恢复照明；建筑垃圾已由城管局清运。"
    )
    finish.locator("textarea[name=assists_note]").fill("经核实无需自来水公司到场。")
    screenshot(lead, "assist-lead-view")
    finish.locator("button[type=submit]").click()
    lead.wait_for_load_state()
    assert "已办结" in lead.locator("#summary").inner_text()
