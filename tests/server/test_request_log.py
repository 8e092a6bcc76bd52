"""``hotline serve``'s access log names the path, never the query string: a list's filters
may carry a requester's phone number (issue 12 §9: personal data out of every log line)."""

import logging
import threading

import requests
from werkzeug.serving import make_server

from server.cli import RequestLog

PHONE = "13905361234"


def test_the_access_log_leaves_out_query_strings(app, caplog):
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=RequestLog)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            url = f"http://127.0.0.1:{server.server_port}/api/v1/tickets?phone={PHONE}"
            assert requests.get(url, timeout=10).status_code == 401
    finally:
        server.shutdown()
        thread.join(5)
    lines = [record.getMessage() for record in caplog.records if record.name == "werkzeug"]
    assert any("GET /api/v1/tickets HTTP/1.1" in line and " 401 " in line for line in lines)
    assert not any(PHONE in line for line in lines)
