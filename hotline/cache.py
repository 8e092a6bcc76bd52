"""A short-lived per-process cache of rarely changing rows (reference data, token owners).

Rows are copied when first loaded, kept detached, and re-attached to each request's
session with ``session.merge(row, load=False)``, which costs no SQL (the SQLAlchemy caching
recipe). Entries live ``ttl`` seconds, so a change made by an administrator, a deactivated user
or a revoked token takes effect in every process within that time; ``clear()`` makes it
immediate in this process.
"""

import threading
import time

from sqlalchemy.orm import make_transient_to_detached


class RowCache:
    def __init__(self, ttl):
        self.ttl = ttl
        self._rows = {}
        self._values = {}
        self._lock = threading.Lock()

    def get(self, session, key, load):
        """The row for ``key`` attached to ``session``. On a miss ``load(session)`` fetches it
        (None is not cached, so a row created later is found at once)."""
        entry = self._rows.get(key)
        if entry is not None and entry[0] > time.monotonic():
            return session.merge(entry[1], load=False)
        row = load(session)
        if row is not None:
            with self._lock:
                self._rows[key] = (time.monotonic() + self.ttl, _detached_copy(row))
        return row

    def value(self, key, load):
        """Plain data derived from rows (e.g. a community's grids), kept like the rows for
        ``ttl`` seconds; on a miss ``load()`` computes it."""
        entry = self._values.get(key)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        value = load()
        with self._lock:
            self._values[key] = (time.monotonic() + self.ttl, value)
        return value

    def clear(self):
        with self._lock:
            self._rows.clear()
            self._values.clear()


#: Areas, categories and units by code (admin edits show within a minute).
reference_rows = RowCache(ttl=60)
#: Users by API-token hash (a revoked token or deactivated user is refused within 10 s).
token_users = RowCache(ttl=10)


def _detached_copy(row):
    """A detached twin of ``row`` holding its column values (relationships load on demand)."""
    mapper = row.__mapper__
    copy = mapper.class_(**{attr.key: getattr(row, attr.key) for attr in mapper.column_attrs})
    make_transient_to_detached(copy)
    return copy
