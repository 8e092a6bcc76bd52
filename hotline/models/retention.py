import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from hotline.db import Base, JSONType, UTCDateTime, utcnow


class RetentionRun(Base):
    """One run of the personal-data retention job (个人信息保护法): what it redacted, or in a
    dry run what it would have. A run that redacts writes its row with ``finished_at`` empty
    first and fills it in before its commit: while such a row is visible (only to the run's
    own transaction) the database lets that transaction redact ``ticket_events``, which
    otherwise refuses every UPDATE (migration 0015)."""

    __tablename__ = "retention_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    dry_run: Mapped[bool] = mapped_column(default=False)
    #: Closed before this moment: the tickets the run redacted (or would have).
    cutoff: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    tickets: Mapped[int] = mapped_column(default=0)
    #: What was (or would be) redacted, by kind: {"requester_name": n, "event_texts": n …}.
    counts: Mapped[dict] = mapped_column(JSONType, default=dict)
