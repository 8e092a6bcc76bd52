"""A local HTTP server standing in for the SMS gateway, the WeChat Work robot and WeChat's
template message API: it records every request (path, headers, exact JSON) and answers with
the status and body a test sets. Import the ``gateway`` fixture into a test module."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Gateway:
    """What the local HTTP server received, and the status it answers with."""

    def __init__(self):
        self.requests = []
        self.status = 200
        self.reply = {"errcode": 0, "errmsg": "ok"}
        self.url = None

    @property
    def bodies(self):
        return [r["json"] for r in self.requests]


@pytest.fixture
def gateway(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)
    state = Gateway()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                state.requests.append(
                    {
                        "path": self.path,
                        "content_type": self.headers["Content-Type"],
                        "delivery_key": self.headers.get("X-Delivery-Key"),
                        "raw": raw,
                        "json": json.loads(raw),
                    }
                )
            payload = json.dumps(state.reply).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port_url(path="/send"):
    """A URL nothing listens on: the connection is refused at once."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{server.server_port}{path}"
    server.server_close()
    return url
