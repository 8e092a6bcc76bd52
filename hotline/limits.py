"""Rate limits on what the public can call: the 市民端's codes, submissions and lookups, the
live suggestion it shows, and Open311 clients (per API key).

The ``limits`` library counts (a moving window per rule). Its counters are kept in Redis
when ``REDIS_URL`` is set, so every process and host shares them, and in memory otherwise
(the demo's one process). If Redis is away the counting falls back to this process's memory
rather than refusing the public or failing the request.

A view takes a rule with ``@limits.limited("LIMIT_CITIZEN_SUBMIT")``, the configuration key
of its rule (``hotline.config``), read on each request; a breach is refused with
``TooManyRequests``: the wait in Chinese and ``Retry-After``.
"""

import functools
import logging
import math
import time

from flask import current_app, request
from limits import parse_many
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from hotline.errors import TooManyRequests

log = logging.getLogger(__name__)

#: Seconds to wait for Redis before counting in memory, and before asking it again.
REDIS_TIMEOUT = 0.5
REDIS_RETRY_SECONDS = 10


def client_address():
    """Who a rule counts by default: the client's address (behind the city's proxy, as
    ``ProxyFix`` gives it)."""
    return request.remote_addr or "unknown"


class Limits:
    """One application's counters."""

    def __init__(self, config):
        self.enabled = config["LIMITS_ENABLED"]
        self.prefix = config.get("RATELIMIT_KEY_PREFIX") or "hotline-limits"
        self.fallback = MovingWindowRateLimiter(MemoryStorage())
        if config["REDIS_URL"]:
            storage = storage_from_string(
                config["REDIS_URL"],
                key_prefix=self.prefix,
                socket_connect_timeout=REDIS_TIMEOUT,
                socket_timeout=REDIS_TIMEOUT,
            )
            self.shared = MovingWindowRateLimiter(storage)
        else:
            self.shared = None
        #: Until when (monotonic) Redis is taken for away after a failure.
        self.shared_down_until = 0.0

    @functools.lru_cache(maxsize=32)  # noqa: B019 (one Limits per application)
    def _rules(self, text):
        return tuple(parse_many(text))

    def hit(self, name, text, identity):
        """Count one call of rule ``name`` (``text``: its rules) for ``identity``; refuse it
        when a rule is exceeded."""
        if not self.enabled:
            return
        for item in self._rules(text):
            limiter = self.shared
            if limiter is None or time.monotonic() < self.shared_down_until:
                limiter = self.fallback
            try:
                allowed = limiter.hit(item, name, identity)
            except Exception:  # Redis away: count here meanwhile, try it again in a while
                log.warning("rate-limit storage unavailable; counting in memory", exc_info=True)
                self.shared_down_until = time.monotonic() + REDIS_RETRY_SECONDS
                limiter = self.fallback
                allowed = limiter.hit(item, name, identity)
            if not allowed:
                try:
                    reset = limiter.get_window_stats(item, name, identity).reset_time
                except Exception:
                    reset = time.time() + item.get_expiry()
                raise refusal(reset - time.time())


def refusal(seconds):
    """The refusal of a call over its limit, ``seconds`` before another is allowed."""
    seconds = max(1, math.ceil(seconds))
    wait = f"{math.ceil(seconds / 60)} 分钟" if seconds >= 120 else f"{seconds} 秒"
    return TooManyRequests(
        f"操作过于频繁，请 {wait}后再试", code="RATE_LIMITED", retry_after=seconds
    )


def check(config_key, identity=None):
    """Count a call under the rule ``config_key`` for ``identity`` (default: the client's
    address); raises ``TooManyRequests`` when over. For calls a decorator cannot wrap."""
    app = current_app
    app.extensions["hotline.limits"].hit(
        config_key, app.config[config_key], identity or client_address()
    )


def limited(config_key, *, key=None):
    """Decorate a view with the rule named by ``config_key``; ``key()`` returns what to
    count by instead of the address (e.g. an API key's name)."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            check(config_key, key() if key else None)
            return view(*args, **kwargs)

        return wrapper

    return decorate


def init_app(app):
    app.extensions["hotline.limits"] = Limits(app.config)
