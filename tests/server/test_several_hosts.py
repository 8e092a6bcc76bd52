"""Several hosts behind a real nginx (issue 18: running it for real).

Two web hosts — gunicorn, each with an instance folder of its own (its attachment and model
folders), the same PostgreSQL database, the same Redis — behind Debian's nginx running the
production site file ``deploy/nginx/hotline.conf`` (its hosts, ports and certificate replaced
for the test), with a board publisher beside them:

- a photo uploaded through one host is served by the other, which never had it on disk;
- a model version activated through one host is followed by the other within seconds, its
  file copied from the database into the other's model folder;
- a board client connected through nginx (WebSocket, TLS) stays connected throughout and
  receives the update of a ticket received through nginx.

Several hosts need PostgreSQL (SQLite is one file on one host): skipped on SQLite, and when
nginx is missing (``scripts/ensure-nginx`` installs it).
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from classifier import artefact
from hotline import migrate, model_versions, seed
from hotline.auth import token_hash
from hotline.db import make_engine
from hotline.models import ApiToken, Attachment, Ticket, User, UserSession
from tests.helpers import BASE_POSTGRES_URL, FORM_TOKEN, PASSWORD, POSTGRES_URL, REDIS_URL

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "deploy" / "nginx" / "hotline.conf"
NGINX = "/usr/sbin/nginx"
BIN = Path(sys.executable).parent
STREETLIGHT = "奎文区东关街道中学街社区的路灯坏了一个星期，晚上出门黑漆漆的，希望尽快维修。"
#: How long a host may take to follow an activation (it looks every
#: ``hotline.suggestions.MODEL_CHECK_SECONDS``, then loads the version).
FOLLOW_SECONDS = 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png(size=4000):
    import struct
    import zlib

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    image = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )
    return image + os.urandom(size - len(image))


def render_site(site, hosts, http_port, https_port, cert, key):
    """The production site file with the test's hosts, ports and certificate."""
    text = re.sub(r"^\s*server \d+\.\d+\.\d+\.\d+:\d+.*;\n", "", site, flags=re.MULTILINE)
    servers = "".join(
        f"    server 127.0.0.1:{port} max_fails=3 fail_timeout=10s;\n" for port in hosts
    )
    text = re.sub(r"(upstream \w+ \{\n(?:    ip_hash;\n)?)", lambda m: m.group(1) + servers, text)
    text = re.sub(r"^\s*listen \[::\].*\n", "", text, flags=re.MULTILINE)
    text = text.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    text = text.replace("listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl")
    text = re.sub(r"ssl_certificate\s+\S+;", f"ssl_certificate {cert};", text)
    text = re.sub(r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {key};", text)
    text = text.replace("/var/log/nginx/", f"{os.path.dirname(cert)}/")
    assert text.count("server 127.0.0.1:") == 2 * len(hosts), text
    return text


def nginx_conf(prefix, site_path):
    """A main nginx.conf for an ordinary user: its own pid, logs and temporary folders."""
    temp = "\n".join(
        f"    {kind}_temp_path {prefix}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    access_log {prefix}/access.log;
{temp}
    include {site_path};
}}
"""


def wait_for(url, processes, verify=True, seconds=120):
    http = requests.Session()
    http.trust_env = False
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            if http.get(url, timeout=2, verify=verify).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer")


def stop(processes):
    for process in processes:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class Hosts:
    """The running set-up: ``url(i)`` of host i directly, ``proxy`` (nginx, HTTPS)."""

    def __init__(self, database_url, ports, proxy, cert, instances, tokens, second_version):
        self.database_url = database_url
        self.cert = str(cert)
        self.ports = ports
        self.proxy = proxy
        self.instances = instances
        self.tokens = tokens
        self.second_version = second_version
        self.engine = make_engine(database_url)

    def url(self, index):
        return f"http://127.0.0.1:{self.ports[index]}"

    def http(self):
        """A client that trusts the test's certificate (and nothing from the environment)."""
        session = requests.Session()
        session.trust_env = False
        session.verify = self.cert
        return session

    def api(self, base, username):
        session = self.http()
        session.headers["Authorization"] = f"Bearer {self.tokens[username]}"
        return lambda method, path, **kw: session.request(method, f"{base}/api/v1{path}", **kw)

    def login(self, base, username, headers=None):
        """A browser's session logged in through ``base``."""
        session = self.http()
        session.headers.update(headers or {})
        token = FORM_TOKEN.search(session.get(f"{base}/login", timeout=10).text).group(1)
        response = session.post(
            f"{base}/login",
            data={"csrf_token": token, "username": username, "password": PASSWORD},
            headers={"Referer": f"{base}/login"},  # as a browser sends (checked over HTTPS)
            allow_redirects=False,
            timeout=10,
        )
        assert response.status_code == 302, response.text
        return session

    def read(self, statement):
        with self.engine.connect() as conn:
            return conn.execute(statement).all()


def fresh_database():
    """A database of this module's own, beside the suite's (its commits and model
    activations stay out of the other tests)."""
    url = make_url(POSTGRES_URL)
    url = url.set(database=f"{url.database}_hosts")
    admin = sa.create_engine(
        make_url(BASE_POSTGRES_URL).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def hosts(models_dir, tmp_path_factory):
    if not POSTGRES_URL:
        pytest.skip("several hosts need PostgreSQL: set HOTLINE_TEST_DATABASE_URL")
    if not REDIS_URL:
        pytest.skip("several hosts need Redis: set HOTLINE_REDIS_URL")
    if not os.access(NGINX, os.X_OK):
        pytest.skip("nginx is not installed: run scripts/ensure-nginx")
    tmp = tmp_path_factory.mktemp("hosts")
    url = fresh_database()
    migrate.upgrade(url)
    engine = make_engine(url)
    tokens = {}
    with sessionmaker(bind=engine)() as session:
        seed.load_all(session)
        model_versions.import_folder(session, None, models_dir)
        # A second version only the database has: no host has its file.
        bundle, meta = artefact.load(models_dir, artefact.active_version(models_dir))
        elsewhere = tmp / "trained-elsewhere"
        second = artefact.save(bundle, elsewhere, {**meta, "training_sha256": "5" * 64})
        model_versions.register(session, None, elsewhere, second)
        for username in ("operator", "admin", "dispatcher", "dongguan"):
            user = session.scalars(sa.select(User).where(User.username == username)).one()
            tokens[username] = "hosts_" + uuid.uuid4().hex
            session.add(ApiToken(user_id=user.id, token_hash=token_hash(tokens[username])))
        session.commit()
    engine.dispose()
    shutil.rmtree(elsewhere)

    ports = [free_port(), free_port()]
    http_port, https_port = free_port(), free_port()
    instances = [tmp / "instance-a", tmp / "instance-b"]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HOTLINE_DATABASE_URL": url,
        "HOTLINE_REDIS_URL": REDIS_URL,
        "HOTLINE_SECRET_KEY": uuid.uuid4().hex,
        "HOTLINE_EVENT_CHANNEL": f"hotline:test-hosts:{uuid.uuid4().hex}",
        "HOTLINE_RATELIMIT_KEY_PREFIX": f"hotline-limits:test-hosts:{uuid.uuid4().hex}",
        "HOTLINE_PROXY_HOPS": "1",
        "HOTLINE_LOG_LEVEL": "WARNING",
    }
    env.pop("HOTLINE_ATTACHMENT_DIR", None)
    env.pop("HOTLINE_CLASSIFIER_MODELS_DIR", None)
    logs = open(tmp / "processes.log", "wb")  # noqa: SIM115 — closed at teardown
    processes = []
    try:
        for port, instance in zip(ports, instances, strict=True):
            processes.append(
                subprocess.Popen(
                    [
                        str(BIN / "gunicorn"),
                        "--workers",
                        "1",
                        "--worker-class",
                        "gthread",
                        "--threads",
                        "8",
                        "--bind",
                        f"127.0.0.1:{port}",
                        "--log-level",
                        "warning",
                        "server.app:create_app()",
                    ],
                    env={**env, "HOTLINE_INSTANCE_PATH": str(instance)},
                    cwd=ROOT,
                    start_new_session=True,
                    stdout=logs,
                    stderr=logs,
                )
            )
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", "from server.cli import main; main()", "board-publisher"],
                env={**env, "HOTLINE_INSTANCE_PATH": str(tmp / "instance-publisher")},
                cwd=ROOT,
                start_new_session=True,
                stdout=logs,
                stderr=logs,
            )
        )
        prefix = tmp / "nginx"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (prefix / kind).mkdir(parents=True)
        cert, key = prefix / "cert.pem", prefix / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
            + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
            + ["-keyout", str(key), "-out", str(cert)],
            check=True,
            capture_output=True,
        )
        site = prefix / "hotline.conf"
        site.write_text(render_site(SITE.read_text(), ports, http_port, https_port, cert, key))
        (prefix / "nginx.conf").write_text(nginx_conf(prefix, site))
        checked = subprocess.run(
            [NGINX, "-t", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", "stderr"],
            capture_output=True,
            text=True,
        )
        assert checked.returncode == 0, checked.stderr
        processes.append(
            subprocess.Popen(
                [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", "stderr"],
                start_new_session=True,
                stdout=logs,
                stderr=logs,
            )
        )
        for port in ports:
            wait_for(f"http://127.0.0.1:{port}/login", processes)
        proxy = f"https://127.0.0.1:{https_port}"
        wait_for(f"{proxy}/login", processes, verify=str(cert))
        yield Hosts(url, ports, proxy, cert, instances, tokens, second)
    finally:
        stop(processes)
        logs.close()
        log = (tmp / "processes.log").read_text(errors="replace")
        if "Traceback" in log:
            print(log[-5000:])


def test_plain_http_is_sent_to_https(hosts):
    http_port = int(re.search(r"listen 127\.0\.0\.1:(\d+);", _site(hosts)).group(1))
    response = hosts.http().get(f"http://127.0.0.1:{http_port}/login", allow_redirects=False)
    assert response.status_code == 301
    assert response.headers["Location"] == "https://127.0.0.1/login"


def _site(hosts):
    return (hosts.instances[0].parent / "nginx" / "hotline.conf").read_text()


def test_the_proxy_passes_the_scheme_and_the_clients_address(hosts):
    """PROXY_HOPS=1 believes nginx's X-Forwarded-Proto (HSTS only over HTTPS) and only the
    last X-Forwarded-For address (the one nginx appends), never what a client wrote there."""
    through_proxy = hosts.http().get(f"{hosts.proxy}/login")
    assert through_proxy.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "Strict-Transport-Security" not in hosts.http().get(f"{hosts.url(0)}/login").headers

    def login_address(base, forwarded_for):
        hosts.login(base, "supervisor", headers={"X-Forwarded-For": forwarded_for})
        return hosts.read(
            sa.select(UserSession.remote_addr).order_by(UserSession.id.desc()).limit(1)
        )[0][0]

    # Straight to a host, the one hop it trusts is the client: this is what it believes.
    assert login_address(hosts.url(0), "198.51.100.7") == "198.51.100.7"
    # Through nginx a forged address stays in front of the one nginx saw.
    assert login_address(hosts.proxy, "198.51.100.7") == "127.0.0.1"


def _signed_ticket(hosts):
    """A ticket received, dispatched to 东关街道 and signed, through host A's API."""
    base = hosts.url(0)
    body = {"channel": "phone", "request_type": "complaint", "content": STREETLIGHT}
    created = hosts.api(base, "operator")("POST", "/tickets", json=body, timeout=30)
    assert created.status_code == 201, created.text
    ticket = created.json()["data"]
    dispatched = hosts.api(base, "dispatcher")(
        "POST",
        f"/tickets/{ticket['number']}/dispatch",
        json={"lead_unit": "U-S-370705001", "category": "010103", "version": ticket["version"]},
        timeout=30,
    )
    assert dispatched.status_code == 200, dispatched.text
    signed = hosts.api(base, "dongguan")(
        "POST",
        f"/tickets/{ticket['number']}/sign",
        json={"version": dispatched.json()["data"]["version"]},
        timeout=30,
    )
    assert signed.status_code == 200, signed.text
    return ticket["number"], signed.json()["data"]["version"]


def test_a_photo_uploaded_through_one_host_is_served_by_the_other(hosts):
    number, version = _signed_ticket(hosts)
    handler_a = hosts.login(hosts.url(0), "dongguan")
    page = handler_a.get(f"{hosts.url(0)}/tickets/{number}", timeout=30).text
    token = FORM_TOKEN.search(page).group(1)
    photo = png(60_000)
    finished = handler_a.post(
        f"{hosts.url(0)}/tickets/{number}/finish",
        data={"csrf_token": token, "version": str(version), "result": "已更换路灯灯头"},
        headers={"Referer": f"{hosts.url(0)}/tickets/{number}"},
        files={"photos": ("现场.png", photo, "image/png")},
        allow_redirects=False,
        timeout=30,
    )
    assert finished.status_code == 302, finished.text
    ((attachment_id, sha256),) = hosts.read(
        sa.select(Attachment.id, Attachment.sha256)
        .join(Ticket, Attachment.ticket_id == Ticket.id)
        .where(Ticket.number == number)
    )
    # Host B has never seen the photo: nothing of it in its instance folder.
    assert not (hosts.instances[1] / "attachments").exists()
    handler_b = hosts.login(hosts.url(1), "dongguan")
    served = handler_b.get(f"{hosts.url(1)}/attachments/{attachment_id}", timeout=30)
    assert served.status_code == 200
    assert served.content == photo and served.headers["Content-Type"] == "image/png"
    # and through the proxy, whichever host answers
    handler = hosts.login(hosts.proxy, "dongguan")
    for _ in range(4):
        assert handler.get(f"{hosts.proxy}/attachments/{attachment_id}").content == photo
    assert not any((instance / "attachments").exists() for instance in hosts.instances)
    assert hosts.read(sa.text(f"SELECT size FROM blobs WHERE sha256 = '{sha256}'")) == [
        (len(photo),)
    ]


def _suggested_version(hosts, index):
    operator = hosts.api(hosts.url(index), "operator")
    response = operator("POST", "/suggest", json={"content": STREETLIGHT}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["data"]["model_version"]


def test_a_model_activated_through_one_host_is_followed_by_the_other(hosts):
    first = hosts.read(sa.text("SELECT version FROM model_activations ORDER BY id DESC LIMIT 1"))[
        0
    ][0]
    second = hosts.second_version
    assert _suggested_version(hosts, 0) == first
    assert _suggested_version(hosts, 1) == first
    assert not (hosts.instances[1] / "models" / second).exists()

    admin = hosts.api(hosts.url(0), "admin")
    switched = admin(
        "POST", f"/classifier/models/{second}/activate", json={"reason": "多主机测试"}, timeout=30
    )
    assert switched.status_code == 200, switched.text
    assert switched.json()["data"] == {"active": second, "previous": first}
    assert _suggested_version(hosts, 0) == second  # the host that switched: at once

    started = time.monotonic()
    while _suggested_version(hosts, 1) != second:
        assert time.monotonic() - started < FOLLOW_SECONDS, "host B did not follow"
        time.sleep(0.5)
    # its own copy, written from the database
    assert (hosts.instances[1] / "models" / second / "model.joblib").is_file()

    # a rollback through host B: host A follows back
    back = hosts.api(hosts.url(1), "admin")(
        "POST", f"/classifier/models/{first}/activate", json={"reason": "回退"}, timeout=30
    )
    assert back.status_code == 200, back.text
    started = time.monotonic()
    while _suggested_version(hosts, 0) != first:
        assert time.monotonic() - started < FOLLOW_SECONDS, "host A did not follow back"
        time.sleep(0.5)


def test_a_board_stays_connected_through_nginx(hosts):
    import socketio

    cookie = "; ".join(
        f"{k}={v}" for k, v in hosts.login(hosts.proxy, "leader").cookies.get_dict().items()
    )
    connects, snapshots, feed = [], [], []
    got_ticket = threading.Event()
    wanted = {}
    client = socketio.Client(reconnection=True, http_session=hosts.http())
    client.on("connect", lambda: connects.append(time.monotonic()), namespace="/board")
    client.on("snapshot", snapshots.append, namespace="/board")

    def on_update(data):
        feed.extend(item["number"] for item in data["feed"])
        if wanted.get("number") in feed:
            got_ticket.set()

    client.on("update", on_update, namespace="/board")
    client.connect(
        hosts.proxy,
        namespaces=["/board"],
        transports=["websocket"],
        headers={"Cookie": cookie},
        auth={"room": "city"},
        wait_timeout=30,
    )
    try:
        assert client.transport() == "websocket"
        deadline = time.monotonic() + 15
        while not snapshots and time.monotonic() < deadline:
            time.sleep(0.1)
        assert snapshots, "no snapshot through nginx"
        # longer than nginx's default 60 s read timeout would allow is not waited for here;
        # the pings keep the line busy. Ten seconds idle, then a ticket through the proxy.
        time.sleep(10)
        operator = hosts.api(hosts.proxy, "operator")
        body = {"channel": "phone", "request_type": "complaint", "content": STREETLIGHT}
        created = operator("POST", "/tickets", json=body, timeout=30)
        assert created.status_code == 201, created.text
        wanted["number"] = created.json()["data"]["number"]
        assert got_ticket.wait(15), f"the board did not get {wanted['number']}: {feed}"
        assert client.connected and len(connects) == 1  # never dropped
    finally:
        client.disconnect()
