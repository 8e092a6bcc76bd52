import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from hotline.db import Base, JSONType, UTCDateTime, utcnow


class Blob(Base):
    """Bytes kept in the database by their SHA-256: photos (``attachments``) and classifier
    model files (``model_versions``), so that every web host behind the proxy reads the same
    ones. Written once, never changed; a retried upload of the same bytes stores nothing."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ModelVersion(Base):
    """A trained classifier version (``classifier.artefact``'s bundle and meta), shared by
    every host through the database; each process caches the file locally."""

    __tablename__ = "model_versions"

    version: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    #: The ``model.joblib`` file's bytes, in ``blobs``.
    sha256: Mapped[str] = mapped_column(sa.ForeignKey("blobs.sha256"))
    meta: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))


class ModelActivation(Base):
    """Which version is active: the newest row. Every switch (activation, rollback) is a row,
    so the history of what served when is kept."""

    __tablename__ = "model_activations"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(sa.ForeignKey("model_versions.version"), index=True)
    previous: Mapped[str | None] = mapped_column(sa.String(64))
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    activated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))


class Heartbeat(Base):
    """The last sign of life of a background process (the scheduler's tick, the board
    publisher's catch-up), read by ``/readyz`` and the metrics: how old the last tick is,
    and how far behind the process runs."""

    __tablename__ = "heartbeats"

    #: The process kind: ``scheduler``, ``board-publisher``.
    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    host: Mapped[str] = mapped_column(sa.String(255))
    pid: Mapped[int]
    beat_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: How far behind the work it just did was (seconds): a tick's oldest due timer, the
    #: publisher's oldest unpublished event.
    lag_seconds: Mapped[float] = mapped_column(sa.Float, default=0.0)
    detail: Mapped[dict] = mapped_column(JSONType, default=dict)
