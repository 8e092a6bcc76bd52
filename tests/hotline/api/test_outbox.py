"""The outbox and the citizens' templates in the JSON API (/api/v1/outbox,
/api/v1/notify-templates): administrators only, recipients masked, retry audited, templates
checked."""

import datetime as dt

import sqlalchemy as sa

from hotline import outbox, settings
from hotline.models import AuditLog, OutboxMessage
from hotline.outbox_delivery import deliver_due
from tests.helpers import assert_error

NOW = dt.datetime(2026, 12, 5, 2, 0, tzinfo=dt.UTC)


class Down:
    def send(self, copy):
        raise ConnectionError("down")


def _failed(app, db):
    outbox.tell_citizen(
        db,
        kind="citizen_reopened",
        phone="13912345678",
        fields={"number": "12345-20261205-0001"},
        delivery_key="reopened:api-test",
        now=NOW,
    )
    db.commit()
    deliver_due(app.extensions["hotline.db"], {"sms": Down()}, now=NOW, max_attempts=1)
    db.expire_all()
    return db.scalars(sa.select(OutboxMessage)).one()


def test_list_counts_and_filters(api, app, db):
    copy = _failed(app, db)
    response = api("admin").get("/outbox?state=failed")
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data["counts"] == {"pending": 0, "sent": 0, "failed": 1}
    assert data["total"] == 1 and data["page"] == 1
    (item,) = data["items"]
    assert item["id"] == copy.id
    assert item["recipient"] == "139****5678"
    assert (item["channel"], item["channel_label"]) == ("sms", "短信")
    assert (item["kind"], item["kind_label"]) == ("citizen_reopened", "再次反映通知")
    assert (item["state"], item["state_label"], item["attempts"]) == ("failed", "发送失败", 1)
    assert item["last_error"] == "ConnectionError: down"
    assert api("admin").get("/outbox?state=sent").get_json()["data"]["items"] == []
    error = assert_error(
        api("admin").get("/outbox?channel=fax&per_page=500"), 422, "VALIDATION_FAILED"
    )
    assert set(error["details"]) == {"channel", "per_page"}


def test_retry(api, app, db):
    copy = _failed(app, db)
    response = api("admin").post(f"/outbox/{copy.id}/retry")
    assert response.status_code == 200
    assert response.get_json()["data"]["state"] == "pending"
    assert db.scalars(sa.select(AuditLog).where(AuditLog.action == "outbox.retry")).one()
    assert_error(api("admin").post(f"/outbox/{copy.id}/retry"), 409, "OUTBOX_NOT_FAILED")
    assert_error(api("admin").post("/outbox/999999/retry"), 404, "OUTBOX_NOT_FOUND")


def test_templates_get_and_put(api, db):
    items = api("admin").get("/notify-templates").get_json()["data"]["items"]
    assert [i["kind"] for i in items] == list(outbox.TEMPLATES)
    code = items[0]
    assert code["label"] == "短信验证码"
    assert code["placeholders"] == [
        {"name": "code", "label": "验证码"},
        {"name": "minutes", "label": "有效分钟数"},
    ]
    assert code["preview"] == "【12345】您的验证码是482913，5分钟内有效。请勿告诉他人。"

    error = assert_error(
        api("admin").put("/notify-templates", json={"citizen_code": "码{code}{phone}"}),
        422,
        "TEMPLATE_INVALID",
    )
    assert "使用了不存在的占位符 {phone}" in error["details"]["citizen_code"]
    response = api("admin").put("/notify-templates", json={"citizen_code": "码{code}"})
    assert response.status_code == 200
    assert response.get_json()["data"]["changed"] == ["notify.template.citizen_code"]
    assert settings.get(db, "notify.template.citizen_code") == "码{code}"


def test_administrators_only(api):
    for call in (
        api("dispatcher").get("/outbox"),
        api("dispatcher").post("/outbox/1/retry"),
        api("dispatcher").get("/notify-templates"),
        api("dispatcher").put("/notify-templates", json={}),
    ):
        assert_error(call, 403, "ROLE_NOT_ALLOWED")
