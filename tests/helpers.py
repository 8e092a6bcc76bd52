"""Constants and pure assertion helpers shared by the test modules (factories are fixtures:
see the conftest.py files)."""

import os
import re

#: Each pytest-xdist worker (gw0, gw1 …) runs on a PostgreSQL database of its own, named after
#: the one given: ``<name>_gw0`` … (``tests/conftest.py`` creates it).
WORKER = os.environ.get("PYTEST_XDIST_WORKER")
BASE_POSTGRES_URL = os.environ.get("HOTLINE_TEST_DATABASE_URL")


def _worker_url(url):
    if not url or not WORKER:
        return url
    from sqlalchemy.engine import make_url

    base = make_url(url)
    return base.set(database=f"{base.database}_{WORKER}").render_as_string(hide_password=False)


POSTGRES_URL = _worker_url(BASE_POSTGRES_URL)
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


def texted_code(session, phone):
    """The latest code texted to ``phone``, read from the outbox as a test's own SMS gateway
    would (tests deliver nothing, so the text is still there)."""
    import sqlalchemy as sa

    from hotline.models import OutboxMessage

    body = session.scalars(
        sa.select(OutboxMessage.body)
        .where(OutboxMessage.recipient == phone, OutboxMessage.kind == "citizen_code")
        .order_by(OutboxMessage.id.desc())
    ).first()
    return re.search(r"验证码是(\d{6})", body).group(1)
