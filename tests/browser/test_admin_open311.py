"""开放接口密钥 in the administration, at 1920×1080: the administrator makes a key for another
system (shown once), the system files a request with it through Open311, the list shows when
the key was last used, and the administrator revokes it."""

import uuid

import pytest
import requests

pytestmark = pytest.mark.browser
FULL_HD = {"width": 1920, "height": 1080}


def post_request(base, key):
    return requests.post(
        f"{base}/open311/v2/requests.json",
        data={
            "api_key": key,
            "service_code": "010103",
            "lat": "36.706774",
            "long": "119.161755",
            "address_string": "奎文区胜利东街100号",
            "description": "胜利东街100号门口路灯不亮",
        },
        timeout=30,
    )


def test_admin_creates_a_key_that_works_once_shown_and_revokes_it(
    new_page, live_server, screenshot
):
    name = f"城市管理平台-{uuid.uuid4().hex[:4]}"
    page = new_page("admin")
    page.set_viewport_size(FULL_HD)
    page.goto("/admin/open311/")
    assert page.locator("nav.admin-nav a[aria-current=page]").inner_text() == "开放接口密钥"

    form = page.locator("form.open311-form")
    form.locator("input[name=name]").fill(name)
    form.locator("input[name=note]").fill("对接联系人：王工")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    notice = page.locator(".open311-new-key").inner_text()
    assert name in notice and "无法再次查看" in notice
    key = page.locator("#new-key").inner_text().strip()
    assert len(key) >= 40
    screenshot(page, "admin-open311-new-key")

    filed = post_request(live_server, key)
    assert filed.status_code == 201, filed.text
    number = filed.json()[0]["service_request_id"]

    page.goto("/admin/open311/")
    row = page.locator(f"tr[data-name='{name}']")
    assert key[:8] in row.inner_text() and "有效" in row.inner_text()
    assert "未使用" not in row.inner_text()  # last used: just now
    assert key not in page.content()  # shown once
    screenshot(page, "admin-open311")

    row.locator("input[name=confirm]").check()
    row.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert f"已吊销密钥“{name}”" in page.locator("div.notice[role=status]").first.inner_text()
    assert "已吊销" in page.locator(f"tr[data-name='{name}']").inner_text()
    refused = post_request(live_server, key)
    assert refused.status_code == 403
    assert refused.json()[0]["code"] == 403

    # The request it filed is public without personal data, and its channel is the key's.
    public = requests.get(f"{live_server}/open311/v2/requests/{number}.json", timeout=10)
    assert public.status_code == 200 and public.json()[0]["service_code"] == "010103"
