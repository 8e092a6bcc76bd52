"""A dependency that went away (the database, Redis) is logged once when it goes and once when
it comes back, however many requests or messages fail meanwhile: a log must show an outage,
not drown in it."""

import logging
import threading
import time


class Outage:
    def __init__(self, logger, what):
        self.log = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
        self.what = what
        self._lock = threading.Lock()
        self._since = None
        self._failures = 0

    @property
    def down(self):
        return self._since is not None

    def failed(self, exc=None):
        """Note one failure; the first of an outage is logged (without a traceback: the
        cause is the dependency, not the code)."""
        with self._lock:
            self._failures += 1
            if self._since is not None:
                return
            self._since = time.monotonic()
        cause = f"{type(exc).__name__}: {_first_line(exc)}" if exc is not None else "unknown"
        self.log.warning(
            "%s unavailable (%s); failures are not logged again until it is back", self.what, cause
        )

    def succeeded(self):
        """Note a success; the first after an outage is logged with its length."""
        if self._since is None:
            return
        with self._lock:
            if self._since is None:
                return
            seconds, failures = time.monotonic() - self._since, self._failures
            self._since, self._failures = None, 0
        self.log.warning(
            "%s available again after %.1f s (%d failure(s) meanwhile)",
            self.what,
            seconds,
            failures,
        )


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""
