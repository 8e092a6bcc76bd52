"""Browser tests: Playwright driving Debian's Chromium against a real server process.

The server (``hotline serve`` with the board publisher) runs on a database of its own,
migrated and seeded like the suite's: a SQLite file, or with ``HOTLINE_TEST_DATABASE_URL`` a
PostgreSQL database beside the suite's (``<name>_browser``); with ``HOTLINE_REDIS_URL`` its
Socket.IO messages go through Redis as in production. Screenshots of every main page go to
``ci-artifacts/screenshots`` (or ``HOTLINE_SCREENSHOT_DIR``), which CI keeps.
"""

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.request import urlopen

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from hotline import migrate, seed
from hotline.db import make_engine
from tests.browser import sms
from tests.helpers import PASSWORD, POSTGRES_URL, REDIS_URL

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("HOTLINE_SCREENSHOT_DIR", ROOT / "ci-artifacts" / "screenshots"))


def pytest_collection_modifyitems(items):
    """Every test under tests/browser is a browser test (``-m "not browser"`` leaves them out;
    a ``pytestmark`` in a conftest marks nothing)."""
    for item in items:
        if "tests/browser/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.browser)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _browser_database(tmp_path_factory):
    if POSTGRES_URL:
        base = make_url(POSTGRES_URL)
        name = f"{base.database}_browser"
        admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = base.set(database=name).render_as_string(hide_password=False)
    else:
        url = "sqlite:///" + str(tmp_path_factory.mktemp("browser") / "hotline.sqlite")
    migrate.upgrade(url)
    engine = make_engine(url)
    with sessionmaker(bind=engine)() as session:
        seed.load_all(session)
        session.commit()
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def browser_database(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM} (.ci/run installs it)")
    return _browser_database(tmp_path_factory)


@pytest.fixture(scope="session")
def live_server(browser_database, models_dir, tmp_path_factory):
    """The base URL of a real server process (Socket.IO included) on the browser database."""
    port = _free_port()
    env = {
        **os.environ,
        "HOTLINE_DATABASE_URL": browser_database,
        "HOTLINE_SECRET_KEY": "browser-tests",
        "HOTLINE_CLASSIFIER_MODELS_DIR": models_dir,
        "HOTLINE_ATTACHMENT_DIR": str(tmp_path_factory.mktemp("browser-attachments")),
        # A channel of this run's own: parallel runs on one Redis never cross.
        "HOTLINE_EVENT_CHANNEL": f"hotline:events:browser:{uuid.uuid4().hex}",
        "HOTLINE_RATELIMIT_KEY_PREFIX": f"hotline-limits:browser:{uuid.uuid4().hex}",
        # Texts go to the tests' own gateway (tests/browser/sms.py); the 市民端 still shows
        # the demo's note on where codes are read.
        "HOTLINE_NOTIFY_SMS_SENDER": "tests.browser.sms:FileSender",
        "HOTLINE_CITIZEN_DEMO_NOTE": "true",
    }
    os.environ[sms.ENV] = str(tmp_path_factory.mktemp("browser-sms") / "texts.jsonl")
    env[sms.ENV] = os.environ[sms.ENV]
    env.pop("HOTLINE_REDIS_URL", None)
    if REDIS_URL:
        env["HOTLINE_REDIS_URL"] = REDIS_URL
    log = open(tmp_path_factory.mktemp("browser-log") / "server.log", "w+")
    command = [
        str(Path(sys.executable).with_name("hotline")),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--with-publisher",
    ]
    server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urlopen(base + "/login", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            pytest.fail("the server did not start:\n" + log.read()[-3000:])
        time.sleep(0.2)
    yield base
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


#: Runs in every document before its own scripts: reports each Content-Security-Policy
#: violation to the test (through a binding, so none is lost when the page navigates on).
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolation([e.violatedDirective, e.blockedURI, e.sourceFile + ":" + e.lineNumber,
                         e.sample].join(" "));
});
"""


def _csp_message(message):
    text = message.text
    return "Content Security Policy" in text or "Content-Security-Policy" in text


@pytest.fixture
def new_page(browser, live_server):
    """``new_page(username, phone=False)`` → a logged-in page in a browser context of its own
    (its own cookies), at a desktop or phone-sized viewport.

    Any JavaScript dialog fails the test (an XSS payload that ran would open one), and so does
    any Content-Security-Policy violation on any page the test opens (an inline script or
    style, a blocked connection: hotline/headers.py), reported by the browser's console or a
    ``securitypolicyviolation`` event, and any page of the server sent without the policy."""
    contexts = []
    dialogs = []
    violations = []
    unprotected = []

    def document_loaded(response):
        if response.request.resource_type == "document" and response.url.startswith(live_server):
            if "frame-ancestors 'none'" not in response.headers.get("content-security-policy", ""):
                unprotected.append(response.url)

    def make(username=None, phone=False):
        viewport = {"width": 390, "height": 844} if phone else {"width": 1440, "height": 900}
        context = browser.new_context(
            base_url=live_server, viewport=viewport, locale="zh-CN", timezone_id="Asia/Shanghai"
        )
        contexts.append(context)
        context.expose_binding(
            "__cspViolation",
            lambda source, text: violations.append(f"{source['page'].url}: {text}"),
        )
        context.add_init_script(CSP_LISTENER)
        page = context.new_page()
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.on(
            "console",
            lambda message: (
                _csp_message(message) and violations.append(f"{page.url}: {message.text}")
            ),
        )
        page.on("response", document_loaded)
        if username:
            log_in(page, username)
        return page

    yield make
    for context in contexts:
        context.close()
    assert dialogs == [], f"a script ran and opened a dialog: {dialogs}"
    assert violations == [], "Content-Security-Policy violations:\n" + "\n".join(violations)
    assert unprotected == [], f"pages sent without the Content-Security-Policy: {unprotected}"


@pytest.fixture(name="log_in")
def log_in_fixture():
    """``log_in(page, username, password=…)``: through the login form, as a person does."""
    return log_in


def log_in(page, username, password=PASSWORD):
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


@pytest.fixture
def screenshot():
    """``screenshot(page, name)`` saves a full-page screenshot to SCREENSHOTS."""

    def take(page, name):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    return take
