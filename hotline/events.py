"""Real-time ticket events for other processes (boards, notifiers).

Operations queue a message on the session; it is published only after the transaction
commits, so nobody hears of a change that was rolled back. With ``REDIS_URL`` set, messages
go to a Redis channel that every process can subscribe to; in-process listeners (tests, a
single demo process) are called either way.
"""

import json
import logging

import redis
from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


class Publisher:
    def __init__(self, redis_url=None, channel="hotline:events"):
        self.channel = channel
        self.redis = redis.Redis.from_url(redis_url) if redis_url else None
        self.listeners = []

    def publish(self, messages):
        for message in messages:
            for listener in self.listeners:
                listener(message)
        if self.redis is None or not messages:
            return
        try:
            pipe = self.redis.pipeline(transaction=False)
            for message in messages:
                pipe.publish(self.channel, json.dumps(message, ensure_ascii=False))
            pipe.execute()
        except redis.RedisError:
            # The change is committed and audited in the database; a board that misses the
            # push catches up on its next full refresh.
            log.exception("could not publish %d ticket event(s) to Redis", len(messages))


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
