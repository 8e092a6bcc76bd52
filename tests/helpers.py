"""Constants and pure assertion helpers shared by the test modules (factories are fixtures:
see the conftest.py files)."""

import os
import re

POSTGRES_URL = os.environ.get("HOTLINE_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("HOTLINE_REDIS_URL")
PASSWORD = "demo-12345"

#: The CSRF token of a server-rendered form.
FORM_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def is_postgres(url):
    return url.startswith("postgresql")


def has_chinese(text):
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def assert_error(response, status, code):
    """The API's error envelope with ``status`` and ``code``; returns its ``error`` object."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["success"] is False
    assert set(body) == {"success", "error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert has_chinese(body["error"]["message"]), body["error"]["message"]
    return body["error"]
