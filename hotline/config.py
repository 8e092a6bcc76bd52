"""Configuration: one defaults mapping, overridden by an instance file and the environment.

Order of precedence (last wins): ``DEFAULTS`` → ``instance/hotline.cfg`` (Python syntax, UPPER
names) → ``HOTLINE_*`` environment variables → the mapping passed to ``create_app``.
"""

import os

DEFAULTS = {
    #: SQLAlchemy URL. SQLite under instance/ for the demo; PostgreSQL in production.
    "DATABASE_URL": None,
    #: Redis URL. When set, ticket events are published there for other processes.
    "REDIS_URL": None,
    #: Signs session cookies. Must be set in production (the demo generates one per instance).
    "SECRET_KEY": None,
    #: Local time zone of the city: working days and ticket numbers follow it.
    "TIMEZONE": "Asia/Shanghai",
    #: Prefix of ticket numbers (the city's code letter).
    "TICKET_NUMBER_PREFIX": "WF",
    #: Largest accepted request body in bytes (attachments come through another route).
    "MAX_CONTENT_LENGTH": 256 * 1024,
    #: Longest complaint text accepted, in characters.
    "MAX_TICKET_CONTENT_CHARS": 10_000,
    #: Page size limits of list endpoints.
    "DEFAULT_PAGE_SIZE": 20,
    "MAX_PAGE_SIZE": 200,
    #: Callback attempts before a requester counts as unreachable (DOMAIN.md §5).
    "CALLBACK_MAX_ATTEMPTS": 3,
    #: Unanswered callback attempts must be at least this many hours apart, so the allowed
    #: attempts spread over days (default: 3 tries over 2 days).
    "CALLBACK_RETRY_HOURS": 24,
    #: Monthly ranking (DOMAIN.md §5): weights of the composite score (response, resolution,
    #: satisfaction), how much 部分解决 and 基本满意 count (percent of a full one), the
    #: fewest scored tickets before a unit is ranked, and the size of the red and black lists.
    "RANKING_WEIGHT_RESPONSE": 10,
    "RANKING_WEIGHT_RESOLUTION": 45,
    "RANKING_WEIGHT_SATISFACTION": 45,
    "RANKING_PARTLY_SOLVED_PERCENT": 50,
    "RANKING_BASICALLY_SATISFIED_PERCENT": 80,
    "RANKING_MIN_SAMPLE": 10,
    "RANKING_LIST_SIZE": 5,
    #: Login throttling: failed logins allowed per user name (since its last success) and
    #: per client address within the window, in minutes, before logins are refused.
    "LOGIN_MAX_FAILURES": 5,
    "LOGIN_MAX_FAILURES_PER_ADDRESS": 20,
    "LOGIN_THROTTLE_MINUTES": 15,
    #: A form's CSRF token lasts as long as the login (None): an operator's console stays
    #: open for a whole shift.
    "WTF_CSRF_TIME_LIMIT": None,
    #: Photo attachments: largest photo in bytes, most photos per action, and where they are
    #: kept (default ``instance/attachments``).
    "ATTACHMENT_MAX_BYTES": 5 * 1024 * 1024,
    "ATTACHMENT_MAX_FILES": 5,
    "ATTACHMENT_DIR": None,
    #: Redis channel ticket events are published on.
    "EVENT_CHANNEL": "hotline:events",
    #: SQLAlchemy engine pool size per process (PostgreSQL).
    "DATABASE_POOL_SIZE": 5,
    #: Where versioned classifier models live (``ACTIVE`` names the one in use); default
    #: ``instance/models``.
    "CLASSIFIER_MODELS_DIR": None,
    #: 并单: the intake console offers tickets received within this many days as possible
    #: duplicates of a new call (same phone, or same place with similar text).
    "DUPLICATE_WINDOW_DAYS": 30,
    #: Compute suggestions at intake (off: tickets are received without them).
    "CLASSIFIER_ENABLED": True,
    #: Load the active model when a worker starts rather than on its first request.
    "CLASSIFIER_PRELOAD": True,
    #: SLA timers (DOMAIN.md §4): seconds between scheduler ticks, tickets per batch.
    "SCHEDULER_INTERVAL_SECONDS": 10,
    "SCHEDULER_BATCH": 1000,
    #: Share of a clock's time after which the yellow warning (预警) fires, in percent.
    "SLA_WARNING_PERCENT": 80,
    #: Local hour of the 催办 reminder on the first working day after a missed deadline.
    "REMINDER_HOUR": 9,
    #: 督办 goes up one level (hotline centre → district/department leader → mayor's office)
    #: every this many working days a ticket stays overdue.
    "ESCALATE_EVERY_WORKING_DAYS": 5,
    #: The unit that receives level-3 督办 (the mayor's office).
    "MAYORS_OFFICE_UNIT": "U-SZFB",
    #: Where notifications go besides the in-app inbox (``hotline.notify``).
    "NOTIFY_SENDERS": "logging",
    "NOTIFY_WECOM_URL": None,
    "NOTIFY_SMS_URL": None,
    "NOTIFY_SMS_RECIPIENTS": None,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
}

#: Keys whose environment value is parsed as an integer.
_INT_KEYS = {k for k, v in DEFAULTS.items() if isinstance(v, int) and not isinstance(v, bool)}
_BOOL_KEYS = {k for k, v in DEFAULTS.items() if isinstance(v, bool)}


def _parse(key, raw):
    if key in _INT_KEYS:
        return int(raw)
    if key in _BOOL_KEYS:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    return raw


def load_config(instance_path, overrides=None):
    """Return the effective configuration mapping."""
    config = dict(DEFAULTS)
    instance_file = os.path.join(instance_path, "hotline.cfg")
    if os.path.exists(instance_file):
        namespace = {}
        with open(instance_file, encoding="utf-8") as f:
            exec(compile(f.read(), instance_file, "exec"), namespace)
        config.update({k: v for k, v in namespace.items() if k.isupper()})
    for key in DEFAULTS:
        raw = os.environ.get(f"HOTLINE_{key}")
        if raw is not None:
            config[key] = _parse(key, raw)
    if overrides:
        config.update(overrides)
    if not config["ATTACHMENT_DIR"]:
        config["ATTACHMENT_DIR"] = os.path.join(instance_path, "attachments")
    if not config["CLASSIFIER_MODELS_DIR"]:
        config["CLASSIFIER_MODELS_DIR"] = os.path.join(instance_path, "models")
    if not config["DATABASE_URL"]:
        config["DATABASE_URL"] = "sqlite:///" + os.path.join(instance_path, "hotline.sqlite")
    return config
