"""Configuration: one defaults mapping, overridden by an instance file and the environment.

Order of precedence (last wins): ``DEFAULTS`` → ``instance/hotline.cfg`` (Python syntax, UPPER
names; Flask's ``from_pyfile``) → ``HOTLINE_*`` environment variables (Flask's
``from_prefixed_env``: a value that reads as JSON — a number, ``true``/``false`` — is taken
as that; text settings are taken as written) → the mapping passed to ``create_app``.

A value of the wrong type (text where a number or ``true``/``false`` is expected) stops the
application at start with the setting's name, rather than misbehaving later.
"""

import os

DEFAULTS = {
    #: SQLAlchemy URL. SQLite under instance/ for the demo; PostgreSQL in production.
    "DATABASE_URL": "",
    #: Redis URL. When set, ticket events are published there for other processes.
    "REDIS_URL": "",
    #: Signs session cookies. Must be set in production (the demo generates one per instance).
    "SECRET_KEY": "",
    #: Where the public reaches this site (``https://12345.example.gov.cn``, no trailing
    #: slash): the start of the links in citizens' texts (the rating link of 办结通知).
    #: Empty: the host of the request that finishes the ticket, else a path without host
    #: (a ticket finished by the scheduler or a script).
    "PUBLIC_BASE_URL": "",
    #: Local time zone of the city: working days and ticket numbers follow it.
    "TIMEZONE": "Asia/Shanghai",
    #: Prefix of ticket numbers (the city's code letter) until an administrator sets the
    #: setting city.ticket_prefix (工单编号前缀, hotline/city.py), which then wins.
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
    #: Login throttling: failed logins allowed per user name (since its last success) and
    #: per client address within the window, in minutes, before logins are refused.
    "LOGIN_MAX_FAILURES": 5,
    "LOGIN_MAX_FAILURES_PER_ADDRESS": 20,
    "LOGIN_THROTTLE_MINUTES": 15,
    #: Addresses or ranges (comma-separated, e.g. ``10.8.0.0/16,192.168.1.20``) whose logins
    #: are throttled per user name only: a call centre's seats share one NAT address, and one
    #: seat's typos must not lock out the rest. 0 in ``LOGIN_MAX_FAILURES_PER_ADDRESS`` turns
    #: the per-address rule off everywhere.
    "LOGIN_TRUSTED_NETWORKS": "",
    #: Open311 GeoReport v2 (``/open311/v2``): the most service requests one
    #: ``GET requests`` answers (a page; ``page`` for more).
    "OPEN311_PAGE_SIZE": 200,
    #: A form's CSRF token lasts as long as the login (None): an operator's console stays
    #: open for a whole shift.
    "WTF_CSRF_TIME_LIMIT": None,
    #: Photo attachments: largest photo in bytes, most photos per action, and where they are
    #: kept (``hotline.attachments``): ``database`` (every web host reads the same ones) or
    #: ``files`` under ``ATTACHMENT_DIR`` (default ``instance/attachments``; with the database
    #: store, photos stored there before are still read from it).
    "ATTACHMENT_MAX_BYTES": 5 * 1024 * 1024,
    "ATTACHMENT_MAX_FILES": 5,
    "ATTACHMENT_STORE": "database",
    "ATTACHMENT_DIR": "",
    #: Log level of the scheduler and board-publisher processes (DEBUG, INFO, WARNING …).
    "LOG_LEVEL": "INFO",
    #: Redis channel ticket events are published on.
    "EVENT_CHANNEL": "hotline:events",
    #: SQLAlchemy engine pool size per process (PostgreSQL).
    "DATABASE_POOL_SIZE": 5,
    #: This process's copy of the classifier model versions (the versions and which one is
    #: active live in the database, ``hotline.model_versions``); default ``instance/models``.
    #: A folder of an older release (``ACTIVE`` naming the version in use) is imported into
    #: the database on first use.
    "CLASSIFIER_MODELS_DIR": "",
    #: 并单: the intake console offers tickets received within this many days as possible
    #: duplicates of a new call (same phone, or same place with similar text).
    "DUPLICATE_WINDOW_DAYS": 30,
    #: Compute suggestions at intake (off: tickets are received without them).
    "CLASSIFIER_ENABLED": True,
    #: Load the active model when a worker starts rather than on its first request.
    "CLASSIFIER_PRELOAD": True,
    #: A ticket received without an area takes the suggested place when the place's
    #: confidence is at least this (and it is not ambiguous); below it the ticket waits in
    #: the dispatcher's queue as 待定位. Measured with ``bench/classify_gazetteer.py``
    #: (``fill`` rows): at 0.75 every one of 2,718 filled 潍坊 addresses was right (0.71 of
    #: all addresses filled) and 4 of 4,326 texts about another city were filled (0.7 would
    #: fill 40 of them): precision 0.9985 on both sets together.
    "AREA_FILL_MIN_CONFIDENCE": 0.75,
    #: How long the suggestion a console (or client) got from ``POST /api/v1/suggest`` may
    #: be handed back at receive instead of being computed again, in seconds.
    "SUGGESTION_REUSE_SECONDS": 3600,
    #: SLA timers (DOMAIN.md §4): seconds between scheduler ticks, tickets per batch.
    "SCHEDULER_INTERVAL_SECONDS": 10,
    "SCHEDULER_BATCH": 1000,
    #: 热点问题: seconds between the grouper's runs (new tickets join their hot issue within
    #: about this time; ``dashboards.hotspots``).
    "HOTSPOT_INTERVAL_SECONDS": 5,
    #: Early warnings (预警, ``dashboards.warnings``): seconds between the scheduler's scans.
    "WARNING_INTERVAL_SECONDS": 60,
    #: Share of a clock's time after which the yellow warning (预警) fires, in percent.
    "SLA_WARNING_PERCENT": 80,
    #: Local hour of the 催办 reminder on the first working day after a missed deadline.
    "REMINDER_HOUR": 9,
    #: 督办 goes up one level (hotline centre → district/department leader → mayor's office)
    #: every this many working days a ticket stays overdue.
    "ESCALATE_EVERY_WORKING_DAYS": 5,
    #: The unit that receives level-3 督办 (the mayor's office).
    "MAYORS_OFFICE_UNIT": "U-SZFB",
    #: Which copies units get besides their in-app inbox (``hotline.notify``): logging,
    #: wecom, sms (comma-separated).
    "NOTIFY_SENDERS": "logging",
    #: The gateways of the outbox's channels (``hotline.outbox_delivery``) and what delivers
    #: each: logging, http or package.module:Class (empty: http when the URL is set).
    "NOTIFY_WECOM_URL": "",
    "NOTIFY_SMS_URL": "",
    #: Rate limits on what the public calls (``hotline.limits``), per network address, in
    #: Flask-Limiter's notation ("N per minute", several joined by ";"). Generous per address
    #: because many phones share one carrier address (CGNAT); the per-phone rules of
    #: ``hotline.citizens`` are the tight ones. The counters live in Redis when ``REDIS_URL``
    #: is set (shared by every process), else in each process's memory (the demo).
    "LIMIT_CITIZEN_CODES": "10 per minute;100 per hour",
    "LIMIT_CITIZEN_SUBMIT": "20 per minute;300 per hour",
    "LIMIT_CITIZEN_LOOKUP": "60 per minute;600 per hour",
    "LIMIT_CITIZEN_SUGGEST": "60 per minute",
    "LIMIT_OPEN311": "120 per minute",
    #: Proxies in front of the application that set ``X-Forwarded-For``/``-Proto`` (0: none,
    #: the headers are ignored). Behind the city's proxy set it, or every citizen has the
    #: proxy's address and the per-address limits become one limit for the whole city.
    "PROXY_HOPS": 0,
    #: Off: no rate limit is applied (tests of other things, a benchmark that says so).
    "LIMITS_ENABLED": True,
    #: Where the counters' keys start in Redis (runs sharing one Redis keep apart).
    "RATELIMIT_KEY_PREFIX": "hotline-limits",
    "NOTIFY_WECHAT_URL": "",
    "NOTIFY_SMS_SENDER": "",
    "NOTIFY_WECOM_SENDER": "",
    "NOTIFY_WECHAT_SENDER": "",
    #: WeChat template ids by message kind: "citizen_received=ID,citizen_finished=ID,…".
    "NOTIFY_WECHAT_TEMPLATES": "",
    #: The secret the city's WeChat gateway sends (X-WeChat-Gateway-Token) with a citizen's
    #: openid (X-WeChat-OpenID); empty: no openid is taken from a request.
    "NOTIFY_WECHAT_GATEWAY_TOKEN": "",
    #: The outbox: tries before a copy is marked failed, copies per delivery batch, seconds
    #: between the scheduler's sweeps, and delivery by a thread right after a commit.
    #: OUTBOX_LEASE_SECONDS: how long claimed copies stay with their process before another
    #: may send them (the copies of a process killed mid-send go again after it); 0: long
    #: enough for every copy of a batch to time out (``outbox_delivery.lease_seconds``).
    "OUTBOX_MAX_ATTEMPTS": 8,
    "OUTBOX_LEASE_SECONDS": 0,
    "OUTBOX_BATCH": 100,
    "OUTBOX_SWEEP_SECONDS": 15,
    "OUTBOX_DELIVER_AFTER_COMMIT": True,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    #: Log lines (``hotline.logs``): ``text`` for a person at a terminal (the demo), ``json``
    #: (one object per line) for production's log collector.
    "LOG_FORMAT": "text",
    #: Who may read ``/metrics`` (``hotline.observability``): addresses or ranges,
    #: comma-separated; this host by default. Behind a proxy set ``PROXY_HOPS``, or every
    #: request comes from the proxy's address.
    "METRICS_ALLOWED_NETWORKS": "127.0.0.1,::1",
    #: A secret a scraper may send as ``Authorization: Bearer …`` from anywhere (empty: none).
    "METRICS_TOKEN": "",
    #: Seconds the database's metrics (open tickets by state, overdue) are kept between
    #: scrapes: in each process, and for all of them in the ``metrics`` heartbeat, so the
    #: tickets are counted once per this period in the whole deployment.
    "METRICS_CACHE_SECONDS": 30,
    #: ``/readyz`` warns (200 "degraded") when the scheduler's or the board publisher's last
    #: beat is older than this many of its intervals.
    "READY_STALE_INTERVALS": 6,
}

#: Text settings (empty: unset): their environment value is the text given.
_TEXT_KEYS = {k for k, v in DEFAULTS.items() if isinstance(v, str)}
ENV_PREFIX = "HOTLINE"


def load(app, overrides=None):
    """Fill ``app.config`` from every source, in order of precedence."""
    config = app.config
    config.from_mapping(DEFAULTS)
    config.from_pyfile("hotline.cfg", silent=True)
    config.from_prefixed_env(ENV_PREFIX)
    for key in _TEXT_KEYS:
        raw = os.environ.get(f"{ENV_PREFIX}_{key}")
        if raw is not None:
            config[key] = raw
    if overrides:
        config.from_mapping(overrides)
    instance = app.instance_path
    if not config["ATTACHMENT_DIR"]:
        config["ATTACHMENT_DIR"] = os.path.join(instance, "attachments")
    if not config["CLASSIFIER_MODELS_DIR"]:
        config["CLASSIFIER_MODELS_DIR"] = os.path.join(instance, "models")
    if not config["DATABASE_URL"]:
        config["DATABASE_URL"] = "sqlite:///" + os.path.join(instance, "hotline.sqlite")
    check(config)
    return config


#: Settings that take one of a few words.
CHOICES = {"ATTACHMENT_STORE": ("database", "files")}


def check(config):
    """Refuse a setting whose type differs from its default's, or a word not among its
    choices."""
    for key, choices in CHOICES.items():
        if config[key] not in choices:
            raise ValueError(f"配置项 {key} 须为 {' 或 '.join(choices)}（现为 {config[key]!r}）")
    for key, default in DEFAULTS.items():
        value = config[key]
        if isinstance(default, str):
            if value is None:
                config[key] = ""
            elif not isinstance(value, str):
                raise ValueError(f"配置项 {key} 须为文本（现为 {value!r}）")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValueError(f"配置项 {key} 须为 true 或 false（现为 {value!r}）")
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"配置项 {key} 须为整数（现为 {value!r}）")
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"配置项 {key} 须为数字（现为 {value!r}）")
            config[key] = float(value)
