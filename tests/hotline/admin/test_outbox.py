"""系统管理 › 通知发送 and 通知模板 (hotline/admin/outbox.py): counts, the failed copies with
their error and 重新发送, filters, masked recipients, the templates with their previews and
the refusal of a bad one; administrators only."""

import datetime as dt

import pytest
import sqlalchemy as sa

from hotline import outbox, settings
from hotline.enums import OutboxState
from hotline.models import AuditLog, OutboxMessage
from hotline.outbox_delivery import deliver_due

NOW = dt.datetime(2026, 12, 5, 2, 0, tzinfo=dt.UTC)


class Down:
    def send(self, copy):
        raise ConnectionError("短信网关无响应")


@pytest.fixture
def admin_client(client, web_login):
    web_login(client, "admin")
    return client


@pytest.fixture
def failed_copy(app, db):
    """A citizen's receipt text that failed every try, and a WeChat Work copy sent."""
    outbox.tell_citizen(
        db,
        kind="citizen_received",
        phone="13912345678",
        fields={"number": "WF2026120500000001", "reply_by": "12月11日 17:00"},
        delivery_key="received:page-test",
        now=NOW,
    )
    outbox.enqueue(
        db,
        [
            {
                "delivery_key": "unit:page-test:wecom",
                "channel": "wecom",
                "audience": "unit",
                "recipient": "U-CGJ",
                "kind": "sign_warning",
                "title": "【签收预警】",
                "body": "请签收",
            }
        ],
        now=NOW,
    )
    db.commit()
    factory = app.extensions["hotline.db"]
    deliver_due(factory, {"sms": Down(), "wecom": _Fine()}, now=NOW, max_attempts=1)
    db.expire_all()
    return db.scalars(sa.select(OutboxMessage).where(OutboxMessage.channel == "sms")).one()


class _Fine:
    def send(self, copy):
        pass


def test_the_page_counts_and_lists_the_failed_copy_with_retry(admin_client, failed_copy):
    assert failed_copy.state == OutboxState.failed
    html = admin_client.get("/admin/outbox/").get_data(as_text=True)
    assert "通知发送" in html
    assert 'data-state="failed"' in html and "发送失败 1" in html and "已发送 1" in html
    assert "受理通知" in html and "签收预警" in html
    assert "139****5678" in html and "13912345678" not in html
    assert "ConnectionError: 短信网关无响应" in html
    assert "重新发送" in html


def test_filters_narrow_the_list(admin_client, failed_copy):
    html = admin_client.get("/admin/outbox/?state=sent").get_data(as_text=True)
    assert 'data-state="sent"' in html and 'tr data-id="' in html
    assert f'data-id="{failed_copy.id}"' not in html
    path = "/admin/outbox/?channel=sms&kind=citizen_received"
    html = admin_client.get(path).get_data(as_text=True)
    assert f'data-id="{failed_copy.id}"' in html
    html = admin_client.get("/admin/outbox/?channel=wechat").get_data(as_text=True)
    assert "没有符合条件的通知" in html
    response = admin_client.get("/admin/outbox/?state=lost&channel=fax")
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "状态须为 pending（待发送）" in text and "渠道须为 sms（短信）" in text


def test_retry_from_the_page_is_audited_and_needs_the_form_token(
    admin_client, failed_copy, db, form_token
):
    token = form_token(admin_client, "/admin/outbox/?state=failed")
    path = f"/admin/outbox/{failed_copy.id}/retry"
    assert admin_client.post(path, data={}).status_code == 400
    response = admin_client.post(
        path, data={"csrf_token": token, "next": "/admin/outbox/?state=failed"}
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/admin/outbox/?state=failed")
    db.expire_all()
    assert db.get(OutboxMessage, failed_copy.id).state == OutboxState.pending
    assert db.scalars(sa.select(AuditLog).where(AuditLog.action == "outbox.retry")).one()
    html = admin_client.get("/admin/outbox/").get_data(as_text=True)
    assert "已重新排入发送队列（短信）" in html
    # Again: it is no longer failed.
    admin_client.post(path, data={"csrf_token": token})
    html = admin_client.get("/admin/outbox/").get_data(as_text=True)
    assert "只有发送失败的通知可以重新发送（这条待发送）" in html


def test_the_home_page_warns_of_failed_copies(admin_client, failed_copy):
    html = admin_client.get("/admin/").get_data(as_text=True)
    assert "1 条通知多次重试后仍发送失败" in html


@pytest.mark.parametrize("path", ["/admin/outbox/", "/admin/templates"])
def test_only_administrators(client, web_login, path):
    web_login(client, "dispatcher")
    assert client.get(path).status_code == 403


def test_the_templates_page_shows_each_with_its_preview(admin_client):
    html = admin_client.get("/admin/templates").get_data(as_text=True)
    for label in ("短信验证码", "受理通知", "办结通知", "再次反映通知"):
        assert label in html
    assert "【12345】您的验证码是482913，5分钟内有效。请勿告诉他人。" in html
    assert "<code>{rating_url}</code> 评价链接" in html


def test_a_template_is_saved_and_a_bad_one_refused(admin_client, db, form_token):
    token = form_token(admin_client, "/admin/templates")
    current = {t.kind: t.text for t in outbox.templates(db)}
    bad = {**current, "csrf_token": token, "citizen_received": "已受理{number}，{deadline}前答复"}
    response = admin_client.post("/admin/templates", data=bad)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "受理通知使用了不存在的占位符 {deadline}" in html
    # What was typed stays in the form.
    assert "已受理{number}，{deadline}前答复</textarea>" in html

    good = {**current, "csrf_token": token, "citizen_received": "已受理{number}"}
    response = admin_client.post("/admin/templates", data=good)
    assert response.status_code == 302
    assert settings.get(db, "notify.template.citizen_received") == "已受理{number}"
    html = admin_client.get("/admin/templates").get_data(as_text=True)
    assert "通知模板已保存" in html and "已受理12345-20261205-0001" in html
