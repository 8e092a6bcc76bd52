"""Log lines and request ids: one JSON object per line in production, readable text in a
terminal (``LOG_FORMAT``: ``json`` or ``text``).

Every line names its time (UTC, ISO 8601), level, logger and message; a line written while
a request is served also names the request's id (``X-Request-Id``), and the access line of
each request (logger ``hotline.access``, written by ``hotline.observability``) adds the
method, the path without its query string (a list may be filtered by a requester's phone),
the status, the duration, the endpoint and the user's id when known. Only the fields of
``FIELDS`` are taken from a record besides its message, so nothing a caller happens to pass
along (a name, a phone) reaches the log by accident.

A request id is taken from the incoming ``X-Request-Id`` when it is short and made of safe
characters (``REQUEST_ID``: a proxy or a client that sets one can follow its request through
the logs), else made here; the response returns it, and the ticket events and audit rows the
request writes keep it (``ticket_events.request_id``, ``audit_log.request_id``).
"""

import datetime as dt
import json
import logging
import re
import sys
import uuid

from flask import g, has_request_context

#: The header a request id comes in and goes back out with.
REQUEST_ID_HEADER = "X-Request-Id"
#: What an incoming request id may be: 1–64 letters, digits and ``._:-`` (it is stored in a
#: 64-character column and written in logs; anything else is replaced by a new id).
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
#: The values of ``LOG_FORMAT``.
FORMATS = ("text", "json")
#: Record attributes a JSON line carries besides time, level, logger, message and request id
#: (``logger.info(…, extra={"status": 200})``).
FIELDS = (
    "method",
    "path",
    "status",
    "duration_ms",
    "endpoint",
    "user_id",
    "remote_addr",
    "lag_seconds",
)


def new_request_id():
    return uuid.uuid4().hex


def valid_request_id(value):
    """``value`` if it may be used as a request id as it is, else None."""
    if value and REQUEST_ID.fullmatch(value):
        return value
    return None


def current_request_id():
    """The id of the request being served, or None (the scheduler, a command)."""
    if has_request_context():
        return g.get("request_id")
    return None


class JsonFormatter(logging.Formatter):
    """One JSON object per line (no line breaks inside: a traceback is one string)."""

    def format(self, record):
        line = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            line["request_id"] = request_id
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        line["pid"] = record.process
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger message [request id]``: for a person at a terminal (the demo)."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record):
        text = super().format(record)
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            first, nl, rest = text.partition("\n")
            text = f"{first} [{request_id}]{nl}{rest}"
        return text


def formatter(log_format):
    if log_format not in FORMATS:
        raise ValueError(f"配置项 LOG_FORMAT 须为 text 或 json（现为 {log_format!r}）")
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure(config, stream=None):
    """Send every log record of this process (the web server's, the scheduler's, the board
    publisher's, gunicorn's own) to stderr in ``LOG_FORMAT`` at ``LOG_LEVEL``. Called by the
    process entry points (``server.cli``, ``server.gunicorn_config``), never by
    ``create_app``: tests and embedding programs keep their own logging. Calling it again
    replaces the handler it installed."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(config["LOG_FORMAT"]))
    handler._hotline = True
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_hotline", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(config["LOG_LEVEL"].upper())
    # Werkzeug's own request line would repeat the application's access line (and, in JSON,
    # break the one-object-per-line format with its text): the access line is the app's.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # APScheduler says "Running job …" and "… executed successfully" for every run of every
    # job (several a second in all); its errors are still logged. The jobs log what they did.
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
    return handler
