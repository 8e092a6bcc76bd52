"""A call whose place the system cannot tell waits as 待定位, and the dispatcher places it:
the console hands its suggestion back on submit, the queue marks the ticket, and the dispatch
form (at a desk's 1440 px) takes a suggested unit in one click, assisting units by ticking and
the area from the picker."""

import re

CONTENT = "来电人反映路边的路灯好几天不亮了，晚上走路看不清，希望尽快修好。"
GRID = "370705001001001"


def test_an_unplaced_call_is_placed_at_dispatch(new_page, screenshot):
    console = new_page("operator")
    console.fill("#requester_phone", "13805368888")
    console.fill("#content", CONTENT)
    console.wait_for_selector("#suggestion-panel li", timeout=10_000)
    # The suggestion the page received goes back with the form, sealed by the server.
    console.wait_for_function(
        "document.getElementById('suggestion').value.indexOf('\"seal\"') > 0", timeout=10_000
    )
    console.click("#submit-receive")
    console.wait_for_load_state()
    number = re.search(
        r"WF\d+", console.locator("div.notice[role=status]").first.inner_text()
    ).group(0)

    dispatcher = new_page("dispatcher")
    dispatcher.goto("/dispatch")
    # The whole queue may hold more than a page (the browser database is shared by the
    # session's tests): the 待定位 tab lists the tickets to place.
    dispatcher.click("nav.tabs >> text=待定位")
    dispatcher.wait_for_load_state()
    row = dispatcher.locator(f"#queue tr:has-text('{number}')")
    assert row.locator(".badge-unlocated").inner_text() == "待定位"
    screenshot(dispatcher, "dispatch-queue-unlocated")

    dispatcher.click(f"#queue a:has-text('{number}')")
    dispatcher.wait_for_load_state()
    form = dispatcher.locator("form#dispatch")
    assert form.locator(".badge-unlocated").is_visible()
    # Each control on its own row, none squeezed beside another.
    rows = form.locator(".form-row")
    tops = [rows.nth(i).bounding_box()["y"] for i in range(rows.count())]
    assert tops == sorted(tops) and len(set(tops)) == len(tops)
    lead = form.locator("select[name=lead_unit]")
    picks = form.locator("button[data-pick=lead_unit]")
    if picks.count() > 1:
        second = picks.nth(1)
        second.click()
        assert lead.input_value() == second.get_attribute("data-value")
        assert second.get_attribute("aria-pressed") == "true"
    lead.select_option("U-S-370705001")
    form.locator("summary:has-text('选择协办单位')").click()
    form.locator("input[name=assist_units][value='U-CGJ']").check()
    form.locator("select[name=area]").select_option(GRID)
    if form.locator("[name=category]").input_value() == "":
        form.locator("[name=category]").select_option("010103")
    screenshot(dispatcher, "dispatch-form-unlocated")
    form.locator("button[type=submit]").click()
    dispatcher.wait_for_load_state()
    assert f"工单 {number}：“派单”已完成" in dispatcher.locator("body").inner_text()

    dispatcher.goto(f"/tickets/{number}")
    summary = dispatcher.locator("#summary").inner_text()
    assert "中学街社区第1网格" in summary
    # The grid's worker now has it waiting.
    worker = new_page("grid", phone=True)
    worker.goto("/grid")
    assert number in worker.locator("#waiting").inner_text()
