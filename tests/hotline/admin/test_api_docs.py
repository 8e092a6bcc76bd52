"""The 接口文档 page (hotline/admin/api_docs.py): the description rendered for people."""

import pytest


@pytest.fixture
def admin(client, web_login):
    web_login(client, "admin")
    return client


def test_lists_every_group_with_fields_labels_and_limits(admin):
    response = admin.get("/admin/api-docs/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "接口文档" in page and "/api/v1/openapi.json" in page
    # The new ticket's body, from dispatch.schemas.intake_values.
    assert "/api/v1/tickets/{number}/dispatch" in page
    assert "受理渠道" in page and "phone（电话）" in page
    assert "最多 100 字" in page  # the title
    # A field of two types (an area's aliases: a list or one text).
    assert "列表（文本） 或 文本" in page
    # A body not derived says so.
    assert "字段未导出" in page


def test_administrators_only(client, web_login):
    web_login(client, "operator")
    assert client.get("/admin/api-docs/").status_code == 403
