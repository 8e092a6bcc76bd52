"""Real-time ticket events for other processes (boards, notifiers).

Operations queue a message on the session; it is published only after the transaction
commits, so nobody hears of a change that was rolled back. With ``REDIS_URL`` set, messages
go to a Redis channel that every process can subscribe to; in-process listeners (tests, a
single demo process) are called either way.

While Redis is away, events are dropped rather than held up: the change is committed in the
database, where the boards' publisher finds it (``dashboards.publisher``). A request never
waits for Redis more than a second, and after a failure no attempt is made for
``RETRY_SECONDS``; the outage is logged once and the recovery once.
"""

import json
import logging
import time

import redis
from sqlalchemy import event
from sqlalchemy.orm import Session

from hotline.outage import Outage

log = logging.getLogger(__name__)

#: After Redis failed, events are dropped without trying for this many seconds.
RETRY_SECONDS = 0.5


class Publisher:
    def __init__(self, redis_url=None, channel="hotline:events"):
        self.channel = channel
        self.redis = (
            redis.Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=1)
            if redis_url
            else None
        )
        self.listeners = []
        self.outage = Outage(log, "Redis (ticket events)")
        self._retry_at = 0.0

    def publish(self, messages):
        for message in messages:
            for listener in self.listeners:
                listener(message)
        if self.redis is None or not messages:
            return
        if time.monotonic() < self._retry_at:
            self.outage.failed()
            return
        try:
            pipe = self.redis.pipeline(transaction=False)
            for message in messages:
                pipe.publish(self.channel, json.dumps(message, ensure_ascii=False))
            pipe.execute()
        except redis.RedisError as exc:
            self._retry_at = time.monotonic() + RETRY_SECONDS
            self.outage.failed(exc)
            return
        self.outage.succeeded()


def init_app(app):
    app.extensions["hotline.events"] = Publisher(
        app.config["REDIS_URL"], app.config["EVENT_CHANNEL"]
    )


def queue(session, message):
    """Publish ``message`` (a JSON-able dict) once ``session`` commits."""
    session.info.setdefault("pending_events", []).append(message)


@event.listens_for(Session, "after_commit")
def _publish_pending(session):
    messages = session.info.pop("pending_events", None)
    publisher = session.info.get("publisher")
    if messages and publisher is not None:
        publisher.publish(messages)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session, _previous_transaction):
    session.info.pop("pending_events", None)
