import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hotline.db import Base, JSONType, UTCDateTime, enum_column_type, utcnow
from hotline.enums import ListMark, RankingClass
from hotline.models.units import Unit
from hotline.models.users import User


class RankingSnapshot(Base):
    """A published monthly ranking, frozen: later callbacks and exemptions do not move it.

    ``settings`` holds the weights and thresholds it was computed with, ``exemptions`` the
    exempted tickets it left out, so the publication explains itself years later.
    """

    __tablename__ = "ranking_snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The month ranked, ``YYYY-MM``.
    month: Mapped[str] = mapped_column(sa.String(7), unique=True)
    #: Tickets received in [period_start, period_end) were counted (local month, in UTC).
    period_start: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    frozen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    frozen_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    settings: Mapped[dict] = mapped_column(JSONType, default=dict)
    #: Totals over the whole city (same keys as a row's counts).
    totals: Mapped[dict] = mapped_column(JSONType, default=dict)
    exemptions: Mapped[list] = mapped_column(JSONType, default=list)

    frozen_by: Mapped[User | None] = relationship()
    rows: Mapped[list["RankingRow"]] = relationship(
        back_populates="snapshot", order_by="RankingRow.id", cascade="all, delete-orphan"
    )


class RankingRow(Base):
    """One unit's line in a frozen ranking: every numerator and denominator, the rates and
    score computed from them, and its place."""

    __tablename__ = "ranking_rows"
    __table_args__ = (sa.UniqueConstraint("snapshot_id", "ranking_class", "unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(
        sa.ForeignKey("ranking_snapshots.id", ondelete="CASCADE")
    )
    ranking_class: Mapped[RankingClass] = mapped_column(enum_column_type(RankingClass))
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    #: The unit's code and name as published (a later rename does not rewrite history).
    unit_code: Mapped[str] = mapped_column(sa.String(32))
    unit_name: Mapped[str] = mapped_column(sa.String(100))

    # Counts (see dashboards.ranking for the definitions).
    dispatched: Mapped[int]
    exempt: Mapped[int]
    response_pending: Mapped[int]
    responded: Mapped[int]
    rated: Mapped[int]
    solved: Mapped[int]
    partly: Mapped[int]
    unsolved: Mapped[int]
    satisfied: Mapped[int]
    basically: Mapped[int]
    dissatisfied: Mapped[int]
    overdue: Mapped[int]
    reopened: Mapped[int]
    repeat: Mapped[int]
    return_base: Mapped[int]
    returned: Mapped[int]
    review_returned: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))
    summoned: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))
    summons_on_time: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))

    # Rates in [0, 1] (None when the denominator is 0) and the 0–100 composite score.
    response_rate: Mapped[float | None]
    resolution_rate: Mapped[float | None]
    satisfaction_rate: Mapped[float | None]
    composite: Mapped[float | None]
    return_rate: Mapped[float | None]
    reopen_rate: Mapped[float | None]
    overdue_rate: Mapped[float | None]
    repeat_rate: Mapped[float | None]
    review_return_rate: Mapped[float | None]
    summons_on_time_rate: Mapped[float | None]

    #: Place in its class (ties share a place); None when not ranked.
    rank: Mapped[int | None]
    unranked_reason: Mapped[str | None] = mapped_column(sa.String(200))
    list_mark: Mapped[ListMark | None] = mapped_column(enum_column_type(ListMark))
    #: Last month's place and score, for the month-over-month change.
    prev_rank: Mapped[int | None]
    prev_composite: Mapped[float | None]

    snapshot: Mapped[RankingSnapshot] = relationship(back_populates="rows")
    unit: Mapped[Unit] = relationship()
