"""办结审核 pages: the reviewers' queue (``/reviews``) with its approve / return forms, the
ticket page's part (the returned reason for the unit, the finish form's live check, the
reviewer's forms), the unit's inbox and 系统管理 › 办结审核设置."""

import pytest
import sqlalchemy as sa

from dispatch import operations as ops
from hotline import settings
from hotline.enums import ReviewMode, TicketStatus
from hotline.models import AuditLog, ReviewRule, Unit
from tests.dispatch.common import DONGGUAN, STREETLIGHT
from tests.helpers import FORM_TOKEN

S = TicketStatus
XSS = '<script>alert("x")</script>'
POOR = "您反映的问题已收悉。"


@pytest.fixture(autouse=True)
def _shipped_default(shipped_review_default):
    """The review default the product ships (``flagged``)."""


@pytest.fixture
def in_review(db, user, make_ticket):
    def make(result=POOR, **overrides):
        ticket = make_ticket(user("operator"), category=STREETLIGHT, area="370705001", **overrides)
        lead = db.scalars(sa.select(Unit).where(Unit.code == DONGGUAN)).one()
        ops.dispatch(db, user("dispatcher"), ticket, lead=lead)
        ops.sign(db, user("dongguan"), ticket)
        ops.contact(db, user("dongguan"), ticket, note="已联系")
        ops.finish(db, user("dongguan"), ticket, result=result)
        db.flush()
        assert ticket.status == S.reviewing
        return ticket

    return make


def token(client, path):
    match = FORM_TOKEN.search(client.get(path).get_data(as_text=True))
    assert match, "no form on " + path
    return match.group(1)


def text(response):
    return response.get_data(as_text=True)


def test_the_queue_shows_request_reply_and_reasons_escaped(db, client, web_login, in_review):
    ticket = in_review(result=POOR + XSS, content="路灯不亮" + XSS)
    web_login(client, "supervisor")
    page = client.get("/reviews")
    assert page.status_code == 200
    html = text(page)
    assert f'id="review-{ticket.number}"' in html
    assert XSS not in html and "&lt;script&gt;" in html
    assert "疑似不合格" in html
    assert "送审原因：自动检查疑似不合格" in html
    assert f"/tickets/{ticket.number}#photos" in html
    assert "办结时限" in html and "东关街道" in html
    # Filters by name pickers (codes only as values).
    assert 'data-picker="category"' in html and 'data-picker="unit"' in html
    filtered = text(client.get("/reviews", query_string={"unit": "U-CGJ"}))
    assert f'id="review-{ticket.number}"' not in filtered


def test_roles_without_review_get_403(db, client, web_login):
    web_login(client, "dongguan")
    assert client.get("/reviews").status_code == 403


def test_approve_and_return_on_the_queue(db, client, web_login, in_review):
    approved, returned = in_review(), in_review()
    web_login(client, "supervisor")
    response = client.post(
        f"/reviews/{approved.number}/approve-reply",
        data={"csrf_token": token(client, "/reviews"), "version": approved.version, "note": ""},
    )
    assert response.status_code == 302
    db.refresh(approved)
    assert approved.status == S.finished

    refused = client.post(
        f"/reviews/{returned.number}/return-reply",
        data={"csrf_token": token(client, "/reviews"), "version": returned.version, "reason": ""},
    )
    assert refused.status_code == 422
    assert "请填写退回理由" in text(refused)
    db.refresh(returned)
    assert returned.status == S.reviewing

    stale = client.post(
        f"/reviews/{returned.number}/return-reply",
        data={
            "csrf_token": token(client, "/reviews"),
            "version": returned.version - 1,
            "reason": "请补充",
        },
    )
    assert stale.status_code == 409
    assert "请补充" in text(stale)  # what was typed stays

    done = client.post(
        f"/reviews/{returned.number}/return-reply",
        data={
            "csrf_token": token(client, "/reviews"),
            "version": returned.version,
            "reason": "答复未说明路灯是否修好",
        },
    )
    assert done.status_code == 302
    db.refresh(returned)
    assert returned.status == S.contacted
    # Without the form's token nothing happens.
    assert client.post(f"/reviews/{approved.number}/approve-reply", data={}).status_code == 400


def test_the_unit_sees_the_reason_and_mends_its_reply(db, client, web_login, user, in_review):
    ticket = in_review()
    ops.return_reply(db, user("supervisor"), ticket, reason="答复未说明路灯是否修好" + XSS)
    db.flush()
    web_login(client, "dongguan")
    html = text(client.get(f"/tickets/{ticket.number}"))
    assert 'data-testid="reply-returned"' in html
    assert "答复未说明路灯是否修好&lt;script&gt;" in html
    # The finish form holds the kept reply and checks it live.
    assert f'data-reply-check="/api/v1/tickets/{ticket.number}/reply-check"' in html
    assert f">{POOR}</textarea>" in html
    assert "reply_check.js" in html


def test_the_ticket_page_offers_the_reviewer_both_forms(db, client, web_login, in_review):
    ticket = in_review()
    web_login(client, "supervisor")
    html = text(client.get(f"/tickets/{ticket.number}"))
    assert "办理结果审核中" in html and "疑似不合格" in html
    assert f"/tickets/{ticket.number}/approve-reply" in html
    assert f"/tickets/{ticket.number}/return-reply" in html
    response = client.post(
        f"/tickets/{ticket.number}/approve-reply",
        data={"csrf_token": token(client, f"/tickets/{ticket.number}"), "version": ticket.version},
    )
    assert response.status_code == 302
    db.refresh(ticket)
    assert ticket.status == S.finished


def test_the_approve_form_shows_why_earlier_replies_were_returned(
    db, client, web_login, user, in_review
):
    ticket = in_review()
    ops.return_reply(db, user("supervisor"), ticket, reason="未说明路灯是否修好" + XSS)
    ops.finish(db, user("dongguan"), ticket, result="已更换灯具，路灯恢复照明。")
    ops.return_reply(db, user("supervisor"), ticket, reason="请写明维修日期")
    ops.finish(db, user("dongguan"), ticket, result="11月17日已更换灯具，路灯恢复照明。")
    db.flush()
    web_login(client, "supervisor")
    html = text(client.get(f"/tickets/{ticket.number}"))
    assert 'data-testid="earlier-returns"' in html
    assert "此前的审核退回（2 次）" in html
    assert "未说明路灯是否修好&lt;script&gt;" in html
    assert html.index("未说明路灯是否修好") < html.index("请写明维修日期")
    # A reply reviewed for the first time has no such list.
    first = in_review()
    assert 'data-testid="earlier-returns"' not in text(client.get(f"/tickets/{first.number}"))


def test_the_units_inbox_lists_a_reply_in_review(db, client, web_login, in_review):
    ticket = in_review()
    web_login(client, "dongguan")
    html = text(client.get("/inbox"))
    review = html.split("待审核", 1)[1]
    assert ticket.number in review


def test_settings_page_defaults_and_rules(db, client, web_login):
    web_login(client, "admin")
    page = client.get("/admin/review-settings")
    assert page.status_code == 200
    assert "办结审核设置" in text(page) and 'data-picker="category"' in text(page)

    bad = client.post(
        "/admin/review-settings",
        data={
            "csrf_token": token(client, "/admin/review-settings"),
            "default_mode": "often",
            "sample_percent": "20",
        },
    )
    assert bad.status_code == 422
    assert settings.get(db, "review.default_mode") == "flagged"
    ok = client.post(
        "/admin/review-settings",
        data={
            "csrf_token": token(client, "/admin/review-settings"),
            "default_mode": "sample",
            "sample_percent": "25",
            "limit_days": "2",
        },
    )
    assert ok.status_code == 302
    assert settings.get(db, "review.default_mode") == "sample"
    assert settings.get(db, "review.limit_days") == 2  # 审核时限

    refused = client.post(
        "/admin/review-settings/rules",
        data={
            "csrf_token": token(client, "/admin/review-settings"),
            "category": STREETLIGHT,
            "mode": "sample",
        },
    )
    assert refused.status_code == 422
    assert "抽样比例" in text(refused)
    saved = client.post(
        "/admin/review-settings/rules",
        data={
            "csrf_token": token(client, "/admin/review-settings"),
            "category": STREETLIGHT,
            "mode": "all",
        },
    )
    assert saved.status_code == 302
    rule = db.scalars(sa.select(ReviewRule)).one()
    assert rule.mode == ReviewMode.all
    html = text(client.get("/admin/review-settings"))
    assert "全部审核" in html and "路灯" in html
    assert db.scalar(sa.select(sa.func.count()).where(AuditLog.action == "review_rule.update")) == 1


def test_supervisors_open_the_settings_and_handlers_do_not(db, client, web_login):
    web_login(client, "supervisor")
    assert client.get("/admin/review-settings").status_code == 200
    client.post("/logout", data={"csrf_token": token(client, "/reviews")})
    web_login(client, "dongguan")
    assert client.get("/admin/review-settings").status_code == 403
