"""Per-process caches of rarely changing rows (reference data, token owners) and of what is
derived from them.

``RowCache``: rows are copied when first loaded, kept detached, and re-attached to each
request's session with ``session.merge(row, load=False)``, which costs no SQL (the SQLAlchemy
caching recipe). Entries live ``ttl`` seconds; a cache that ``follows`` kinds of reference
data (``hotline.reference``) also empties itself when one of them changes, so an
administrator's edit takes effect in every process within seconds. ``clear()`` makes it
immediate in this process.

``Stamped``: one value derived from reference rows (the pickers' area tree, the boards'
outlines), rebuilt when the stamp of the kinds it follows changes.
"""

import threading
import time

from sqlalchemy.orm import make_transient_to_detached

from hotline import reference

#: Every cache of this process, so tests can empty them all after rolling back.
_ALL = []


class RowCache:
    def __init__(self, ttl, *, follows=()):
        self.ttl = ttl
        #: Kinds of reference data whose change empties the cache.
        self.follows = tuple(follows)
        self._rows = {}
        self._values = {}
        self._stamp = None
        self._lock = threading.Lock()
        _ALL.append(self)

    def _follow(self, session):
        if not self.follows:
            return
        stamp = reference.stamp(session, *self.follows)
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    self._rows.clear()
                    self._values.clear()
                    self._stamp = stamp

    def get(self, session, key, load):
        """The row for ``key`` attached to ``session``. On a miss ``load(session)`` fetches it
        (None is not cached, so a row created later is found at once)."""
        self._follow(session)
        entry = self._rows.get(key)
        if entry is not None and entry[0] > time.monotonic():
            return session.merge(entry[1], load=False)
        row = load(session)
        if row is not None:
            with self._lock:
                self._rows[key] = (time.monotonic() + self.ttl, _detached_copy(row))
        return row

    def value(self, session, key, load):
        """Plain data derived from rows (e.g. a community's grids), kept like the rows for
        ``ttl`` seconds; on a miss ``load()`` computes it."""
        self._follow(session)
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
            self._stamp = None


class Stamped:
    """One value per database derived from the reference data ``follows``: ``get(session,
    build)`` returns what ``build()`` made last time while the stamp of those kinds is the
    same (and, with ``ttl``, it is younger than that many seconds), else builds it again."""

    def __init__(self, *follows, ttl=None):
        self.follows = follows
        self.ttl = ttl
        self._entries = {}
        self._lock = threading.Lock()
        _ALL.append(self)

    def get(self, session, build):
        key = str(session.get_bind().engine.url)
        stamp = reference.stamp(session, *self.follows)
        entry = self._entries.get(key)
        if (
            entry is not None
            and entry[0] == stamp
            and (self.ttl is None or time.monotonic() - entry[1] < self.ttl)
        ):
            return entry[2]
        value = build()
        with self._lock:
            self._entries[key] = (stamp, time.monotonic(), value)
        return value

    def clear(self):
        with self._lock:
            self._entries.clear()


def clear_all():
    """Empty every cache of this process and read the reference counters afresh (tests, after
    rolling back what was cached)."""
    for cache in _ALL:
        cache.clear()
    reference.forget()


#: Areas, categories and units by code: emptied when any of them changes, and kept at most a
#: minute in any case.
reference_rows = RowCache(ttl=60, follows=(reference.AREAS, reference.CATEGORIES, reference.UNITS))
#: Users by API-token hash (a revoked token or deactivated user is refused within 10 s).
token_users = RowCache(ttl=10)


def _detached_copy(row):
    """A detached twin of ``row`` holding its column values (relationships load on demand)."""
    mapper = row.__mapper__
    copy = mapper.class_(**{attr.key: getattr(row, attr.key) for attr in mapper.column_attrs})
    make_transient_to_detached(copy)
    return copy
