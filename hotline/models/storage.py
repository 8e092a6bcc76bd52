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


class ModelRetrain(Base):
    """One retraining of the classifier from the centre's own decisions
    (``dispatch.learning``) and its promotion gate: asked for (by the weekly schedule, a
    command or an administrator's button), claimed by one scheduler, and decided. The
    decision keeps both models' figures on the held-out recent weeks, so the page can show
    why a candidate was promoted or kept back.

    ``status``: ``pending`` (asked for, not yet started), ``running``, then ``promoted``
    (the candidate became the active version), ``kept`` (the gate refused it: a candidate
    with the reason), ``skipped`` (too few confirmed tickets to learn from or to judge) or
    ``failed`` (an error; ``reason`` says which)."""

    __tablename__ = "model_retrains"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(16), index=True)
    #: ``schedule``, ``command`` or ``page``.
    trigger: Mapped[str] = mapped_column(sa.String(16))
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    requested_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    #: The version trained (registered even when kept back), and the version active when the
    #: gate compared them.
    candidate_version: Mapped[str | None] = mapped_column(
        sa.ForeignKey("model_versions.version"), index=True
    )
    active_version: Mapped[str | None] = mapped_column(sa.String(64))
    #: Why it was promoted, kept, skipped or failed, in Chinese, for the page.
    reason: Mapped[str | None] = mapped_column(sa.Text)
    #: {"candidate": {figure: value}, "active": {…}, "tolerance": …, "holdout": {"from",
    #: "to", "tickets"}, "training": {"tickets", "seed_rows", …}, "checks": […]}.
    figures: Mapped[dict] = mapped_column(JSONType, default=dict)
