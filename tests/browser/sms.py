"""The browser tests' own SMS gateway: the live server's SMS sender (``NOTIFY_SMS_SENDER``)
appends each text to a file, and a test reads the code a citizen was sent from there — as a
phone would, after delivery (the outbox keeps no code once it is sent)."""

import json
import os
import re
import time
from pathlib import Path

#: The file the live server's texts go to (set by the ``live_server`` fixture).
ENV = "HOTLINE_TEST_SMS_FILE"


class FileSender:
    def __init__(self, config):
        self.path = Path(os.environ[ENV])

    def send(self, copy):
        line = json.dumps({"to": copy.recipient, "text": copy.text}, ensure_ascii=False)
        with self.path.open("a", encoding="utf-8") as texts:
            texts.write(line + "\n")


def code_sent_to(phone, timeout=15):
    """The latest code texted to ``phone`` (waiting for the delivery thread)."""
    path = Path(os.environ[ENV])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        codes = []
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                text = json.loads(line)
                found = re.search(r"验证码是(\d{6})", text["text"])
                if text["to"] == phone and found:
                    codes.append(found.group(1))
        if codes:
            return codes[-1]
        time.sleep(0.1)
    raise AssertionError(f"no code was texted to {phone} within {timeout} s")
