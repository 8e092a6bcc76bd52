"""The security headers of every response (hotline/headers.py), and templates that satisfy
the Content-Security-Policy (the browser tests also fail on any violation a page causes)."""

import re
from pathlib import Path

import pytest

from hotline.headers import HSTS

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted(ROOT.glob("*/templates/*.html")) + sorted(ROOT.glob("*/*/templates/*.html"))

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def directives(response):
    policy = response.headers["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in policy.split(";"))


def assert_secured(response):
    assert response.headers["Content-Security-Policy"] == POLICY
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "path, status, mimetype",
    [
        ("/login", 200, "text/html"),  # a page
        ("/api/v1/me", 401, "application/json"),  # the API's error envelope
        ("/api/v1/categories", 401, "application/json"),
        ("/static/base.css", 200, "text/css"),  # the application's static files
        ("/console/static/console.css", 200, "text/css"),  # a blueprint's
        ("/boards/static/board.css", 200, "text/css"),
        ("/no-such-page", 404, "text/html"),  # an error page
        ("/tickets/WF0", 302, "text/html"),  # a redirect to the login page
    ],
)
def test_every_response_carries_the_security_headers(client, path, status, mimetype):
    response = client.get(path)
    assert response.status_code == status
    assert response.mimetype == mimetype
    assert_secured(response)
    assert "Strict-Transport-Security" not in response.headers


def test_pages_and_json_of_a_logged_in_user_carry_them_too(client, db, web_login):
    web_login(client, "operator")
    for path, status in [("/console", 200), ("/api/v1/me", 200), ("/dispatch", 403)]:
        response = client.get(path)
        assert response.status_code == status, path
        assert_secured(response)
    response = client.post("/api/v1/suggest", json={"content": "路灯不亮"})  # no CSRF token
    assert response.status_code == 403 and response.mimetype == "application/json"
    assert_secured(response)


def test_a_page_cannot_be_framed(client, db, web_login):
    web_login(client, "operator")
    response = client.get("/console")
    assert response.status_code == 200
    assert directives(response)["frame-ancestors"] == "'none'"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_scripts_and_styles_only_from_this_site(client):
    policy = directives(client.get("/login"))
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    # No wildcard: the board's WebSocket is same-origin, which 'self' covers (CSP Level 3).
    assert policy["connect-src"] == "'self'"
    assert "unsafe" not in client.get("/login").headers["Content-Security-Policy"]


def test_hsts_only_over_https(client):
    assert "Strict-Transport-Security" not in client.get("/login").headers
    secure = client.get("/login", base_url="https://localhost")
    assert secure.status_code == 200
    assert secure.headers["Strict-Transport-Security"] == HSTS
    assert HSTS == "max-age=31536000; includeSubDomains"
    assert_secured(secure)
    api = client.get("/api/v1/me", base_url="https://localhost")
    assert api.headers["Strict-Transport-Security"] == HSTS


def test_a_proxy_header_alone_does_not_turn_on_hsts(client):
    """Without ProxyFix configured, X-Forwarded-Proto is not believed (see the README)."""
    response = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in response.headers


#: What the policy refuses in a page: an inline script (a data block is not run), a
#: ``<style>`` element, a ``style`` attribute, an ``on…`` handler, a ``javascript:`` URL.
INLINE = [
    re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I),
    re.compile(r"<style\b", re.I),
    re.compile(r"\sstyle\s*=", re.I),
    re.compile(r"\son[a-z]+\s*=", re.I),
    re.compile(r"javascript:", re.I),
]


def test_templates_have_no_inline_script_or_style():
    assert len(TEMPLATES) > 20
    found = [
        f"{path.relative_to(ROOT)}: {match.group(0).strip()}"
        for path in TEMPLATES
        for rule in INLINE
        for match in rule.finditer(path.read_text())
    ]
    assert found == []
