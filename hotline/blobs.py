"""Bytes kept in the database by their SHA-256 (``blobs``): photos and classifier model files,
shared by every web host. Written once, never changed."""

import hashlib

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from hotline.models import Blob


def digest(data):
    return hashlib.sha256(data).hexdigest()


def put(session, data, sha256=None):
    """Add ``data`` to ``session``'s transaction unless the same bytes are there (a retry, or
    another transaction storing them meanwhile: it waits for that one, then does nothing).
    Returns the SHA-256."""
    sha256 = sha256 or digest(data)
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(Blob.__table__)
        .values(sha256=sha256, size=len(data), data=data)
        .on_conflict_do_nothing(index_elements=["sha256"])
    )
    return sha256


def get(session, sha256):
    """The bytes stored under ``sha256``, or None."""
    return session.scalar(sa.select(Blob.data).where(Blob.sha256 == sha256))


def present(session, shas):
    """Which of ``shas`` are stored."""
    if not shas:
        return set()
    return set(session.scalars(sa.select(Blob.sha256).where(Blob.sha256.in_(list(shas)))))
