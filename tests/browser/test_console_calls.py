"""The operator console in Chromium: a call the phone switch announces (``scripts/phone-switch``
run as the switch would) rings at the agent's open console with the caller's history and
becomes a ticket that keeps the call id; a knowledge answer closes a call only once opened
and confirmed."""

import subprocess
import sys
import uuid

import sqlalchemy as sa

from hotline.auth import token_hash
from hotline.db import make_engine
from hotline.models import ApiToken, Ticket, User
from tests.browser.conftest import ROOT


def _switch_token(database_url):
    """An API token of the operator account kept for the switch (here ``operator2``)."""
    token = "switch_" + uuid.uuid4().hex
    engine = make_engine(database_url)
    with engine.begin() as conn:
        user_id = conn.scalar(sa.select(User.id).where(User.username == "operator2"))
        conn.execute(
            sa.insert(ApiToken).values(
                user_id=user_id, token_hash=token_hash(token), label="交换机"
            )
        )
    engine.dispose()
    return token


def test_a_call_from_the_switch_rings_at_the_agents_console(
    new_page, live_server, browser_database, screenshot
):
    page = new_page("operator")
    page.fill("#content", "上次反映的路灯又不亮了")
    call_id = f"SW-{uuid.uuid4().hex[:12]}"
    switch = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "phone-switch"),
            "--url",
            live_server,
            "--token",
            _switch_token(browser_database),
            "--caller",
            "13905369999",
            "--agent",
            "operator",
            "--call-id",
            call_id,
            "--recording",
            "rec/2026/12/05/call.wav",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert switch.returncode == 0, switch.stdout + switch.stderr
    # The open console picks the call up by itself (it asks every few seconds).
    ringing = page.locator("#caller-panel .ringing")
    ringing.wait_for(timeout=10_000)
    assert "13905369999" in ringing.inner_text()
    assert page.input_value("#requester_phone") == "13905369999"
    assert "此前没有工单" in page.locator("#caller-panel").inner_text()
    screenshot(page, "console-incoming-call")
    page.select_option("#request_type", "complaint")
    page.click("#submit-receive")
    page.wait_for_load_state()
    engine = make_engine(browser_database)
    with engine.connect() as conn:
        ticket = conn.execute(
            sa.select(Ticket.number, Ticket.recording_ref).where(Ticket.call_id == call_id)
        ).one()
    engine.dispose()
    assert ticket.recording_ref == "rec/2026/12/05/call.wav"
    # The next call from the same number shows this ticket at once, as a link.
    page.fill("#requester_phone", "13905369999")
    page.locator(f"#caller-panel a:has-text('{ticket.number}')").wait_for(timeout=10_000)


def test_a_knowledge_answer_closes_a_call_only_once_opened_and_confirmed(new_page, screenshot):
    page = new_page("operator")
    page.fill("#requester_phone", "13905368888")
    page.fill("#content", "我的社保卡丢了，想问问怎么补办")
    article = page.locator("#knowledge-panel details.article").first
    article.wait_for(timeout=10_000)
    assert "社保卡丢失补办" in article.inner_text()
    button = article.locator("button.resolve")
    article.locator("summary").click()
    assert button.is_disabled()
    article.locator("input[name=confirm_article]").check()
    assert button.is_enabled()
    screenshot(page, "console-knowledge-confirm")
    page.select_option("#request_type", "consult")
    button.click()
    page.wait_for_load_state()
    assert "已直接办结（首问即答：社保卡丢失补办）" in page.inner_text("body")
