"""Versions of the reference data, so every process follows an administrator's change within
seconds without a restart.

Every change to areas, categories, units, the routing catalogue, the knowledge base, the
settings or the hot issues' memberships (``dashboards.hotspots``) raises its kind's counter
(``bump``, in the same transaction as the change). A process that derived something from
those rows (the gazetteer and grid locator of the suggester, cached rows, settings, the hot
issues' grouping index) asks ``changed(name)``: at most every ``CHECK_SECONDS`` it reads the
counters (one small query) and compares them with what it last saw.

A stamp is each counter with the moment it was raised: a bump rolled back (a refused change,
a test's transaction) and the next one committed reach the same number, but not the same
moment, so nothing derived from the rolled-back rows is taken for the committed ones.
"""

import threading
import time

import sqlalchemy as sa

from hotline.db import utcnow
from hotline.models import ReferenceVersion

AREAS = "areas"
CATEGORIES = "categories"
UNITS = "units"
ROUTING = "routing"
KNOWLEDGE = "knowledge"
SETTINGS = "settings"
#: A person's decision about hot issues (merge, split, …) or a rebuild: the grouper of
#: ``dashboards.hotspots`` replays its index so it agrees with the stored memberships.
HOTSPOTS = "hotspots"
KINDS = (AREAS, CATEGORIES, UNITS, ROUTING, KNOWLEDGE, SETTINGS, HOTSPOTS)

#: How often a process looks at the counters, in seconds.
CHECK_SECONDS = 2.0


def bump(session, *names):
    """Raise the counters of ``names`` (the caller commits with its change)."""
    now = utcnow()
    for name in names:
        if name not in KINDS:
            raise ValueError(f"unknown reference kind {name!r}")
        updated = session.execute(
            sa.update(ReferenceVersion)
            .where(ReferenceVersion.name == name)
            .values(version=ReferenceVersion.version + 1, changed_at=now)
        ).rowcount
        if not updated:
            session.add(ReferenceVersion(name=name, version=1, changed_at=now))
            session.flush()
    _watcher.forget()
    # Another thread of this process may read the counters before this change commits (a
    # board refresh, another request): it would keep the old ones for CHECK_SECONDS and a
    # cache rebuilt meanwhile from the old rows would look current. Read them afresh again
    # once the change is committed.
    sa.event.listen(session, "after_commit", _forget_after_commit, once=True)


def _forget_after_commit(_session):
    _watcher.forget()


def versions(session):
    """``{name: version}`` as the database has them now."""
    return {name: mark[0] for name, mark in _marks(session).items()}


def _marks(session):
    """``{name: (version, changed_at)}`` as the database has them now."""
    rows = session.execute(
        sa.select(ReferenceVersion.name, ReferenceVersion.version, ReferenceVersion.changed_at)
    ).all()
    found = {name: (version, changed_at) for name, version, changed_at in rows}
    return {name: found.get(name, (0, None)) for name in KINDS}


class Watcher:
    """This process's view of the counters, read at most every ``CHECK_SECONDS``."""

    def __init__(self):
        self._lock = threading.Lock()
        self._seen = None
        self._read_at = 0.0

    def current(self, session):
        """The counters, from the database when the last read is older than the check
        interval (or was forgotten)."""
        if self._seen is None or time.monotonic() - self._read_at > CHECK_SECONDS:
            seen = _marks(session)
            with self._lock:
                self._seen, self._read_at = seen, time.monotonic()
        return self._seen

    def stamp(self, session, *names):
        """A value that changes whenever one of ``names`` changes: what a cache keeps beside
        what it derived, to know when to derive it again."""
        current = self.current(session)
        return tuple(current[name] for name in names)

    def forget(self):
        """Read the counters afresh next time (this process just changed one)."""
        self._read_at = 0.0


_watcher = Watcher()


def stamp(session, *names):
    return _watcher.stamp(session, *names)


def forget():
    """Read the counters afresh on the next ``stamp`` (tests, after rolling back a bump)."""
    _watcher.forget()
