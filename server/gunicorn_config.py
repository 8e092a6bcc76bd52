"""gunicorn's settings for the web processes: logs and metrics across its workers.

    PROMETHEUS_MULTIPROC_DIR=/run/hotline/metrics gunicorn -c python:server.gunicorn_config \\
        --workers 4 --worker-class gthread --threads 4 --bind 127.0.0.1:8000 \\
        'server.app:create_app()'

- Logs: every line in ``HOTLINE_LOG_FORMAT`` (``hotline.logs``): gunicorn's own (the
  master's and the workers' start, stop, timeouts, kills) through ``logconfig_dict``, the
  application's through ``hotline.logs.configure`` once a worker has loaded it (the instance
  file's ``LOG_FORMAT`` included). gunicorn's access log stays off: the application writes
  one access line per request with more in it (endpoint, user id, request id, duration), so a
  request is never logged twice.
- Metrics: with ``PROMETHEUS_MULTIPROC_DIR`` set (the variable must be in the environment
  gunicorn starts with, because prometheus_client reads it on import), the folder is emptied
  when gunicorn starts (values of a previous run would otherwise be added to this one's)
  and a worker that exits is taken out of the live gauges; ``/metrics`` then sums every
  worker (``hotline.metrics``).

Settings given on the command line win over these.
"""

import glob
import logging
import os

from hotline import logs
from hotline.config import DEFAULTS

# prometheus_client (``hotline.metrics``) opens its files in PROMETHEUS_MULTIPROC_DIR as soon
# as it is imported (by a worker, or by the master with --preload): the folder must exist.
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _metrics_dir:
    os.makedirs(_metrics_dir, exist_ok=True)

_format = os.environ.get("HOTLINE_LOG_FORMAT", DEFAULTS["LOG_FORMAT"])
_level = os.environ.get("HOTLINE_LOG_LEVEL", DEFAULTS["LOG_LEVEL"]).upper()
logs.formatter(_format)  # an unknown format stops gunicorn at start, with the setting's name

accesslog = None
loglevel = _level.lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    # The application's records get their handler in each worker (post_worker_init).
    "root": {"level": _level, "handlers": []},
    "loggers": {
        "gunicorn.error": {"level": _level, "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "hotline",
            "stream": "ext://sys.stderr",
        }
    },
    "formatters": {
        "hotline": {"()": logs.JsonFormatter if _format == "json" else logs.TextFormatter}
    },
}


def on_starting(server):
    if _metrics_dir:
        for path in glob.glob(os.path.join(_metrics_dir, "*.db")):
            os.remove(path)


def post_worker_init(worker):
    config = getattr(worker.wsgi, "config", None)
    if config is None:  # the application failed to load: gunicorn answers with its error
        return
    logs.configure(config)
    formatter = logs.formatter(config["LOG_FORMAT"])
    for handler in logging.getLogger("gunicorn.error").handlers:
        handler.setFormatter(formatter)


def child_exit(server, worker):
    """A dead worker's live gauges (Socket.IO clients) leave the sums; its counters stay."""
    if _metrics_dir:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, _metrics_dir)
