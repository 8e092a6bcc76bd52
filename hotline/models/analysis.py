"""What the city learns from its tickets (民情分析): hot issues, early warnings, published
reports. The tables live here with every other; ``dashboards`` computes and shows them."""

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hotline.db import Base, JSONType, UTCDateTime, enum_column_type, utcnow
from hotline.enums import HotIssueState, ReportPeriod, WarningKind, WarningState
from hotline.models.areas import Area
from hotline.models.categories import Category
from hotline.models.tickets import Ticket
from hotline.models.users import User


class HotIssue(Base):
    """A hot issue (热点问题): tickets about one matter — one place or object and one problem —
    grouped as they arrive (``dashboards.hotspots``)."""

    __tablename__ = "hot_issues"
    __table_args__ = (
        sa.Index("ix_hot_issues_state_heat", "state", "heat"),
        sa.Index("ix_hot_issues_last_at", "last_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Place + problem, generated (丽发新城搅拌站噪音扰民) unless a supervisor named it.
    title: Mapped[str] = mapped_column(sa.String(200))
    #: True once a supervisor renamed it: rebuilds keep the name.
    title_fixed: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    #: The place or object the tickets share (an estate, a site, a road, a community …).
    place: Mapped[str | None] = mapped_column(sa.String(100))
    #: The words that say what the problem is, most telling first.
    keywords: Mapped[list] = mapped_column(JSONType, default=list)
    #: The most frequent category and district among its tickets (for filters).
    category_id: Mapped[int | None] = mapped_column(sa.ForeignKey("categories.id"), index=True)
    district_id: Mapped[int | None] = mapped_column(sa.ForeignKey("areas.id"), index=True)
    state: Mapped[HotIssueState] = mapped_column(
        enum_column_type(HotIssueState), default=HotIssueState.open
    )
    #: The hot issue a supervisor merged this one into (state ``merged``).
    merged_into_id: Mapped[int | None] = mapped_column(sa.ForeignKey("hot_issues.id"))
    first_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    #: Tickets, distinct callers, and the heat score with its parts (why it is hot).
    size: Mapped[int] = mapped_column(default=0)
    callers: Mapped[int] = mapped_column(default=0)
    heat: Mapped[float] = mapped_column(default=0.0)
    heat_parts: Mapped[dict] = mapped_column(JSONType, default=dict)
    handled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    handled_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    handled_note: Mapped[str | None] = mapped_column(sa.String(1000))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    category: Mapped[Category | None] = relationship()
    district: Mapped[Area | None] = relationship()
    handled_by: Mapped[User | None] = relationship()
    merged_into: Mapped["HotIssue | None"] = relationship(remote_side=[id])


class HotIssueTicket(Base):
    """A ticket's place in a hot issue (a ticket is in at most one)."""

    __tablename__ = "hot_issue_tickets"

    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("tickets.id"), primary_key=True)
    hot_issue_id: Mapped[int] = mapped_column(sa.ForeignKey("hot_issues.id"), index=True)
    #: Put here by a person (merge, split): rebuilds keep it here.
    pinned: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket: Mapped[Ticket] = relationship()
    hot_issue: Mapped[HotIssue] = relationship()


class EarlyWarning(Base):
    """An early warning (预警): a surge of one category in one area, or a sudden event at one
    place, with the tickets that are its evidence; a person acknowledges it."""

    __tablename__ = "early_warnings"
    __table_args__ = (sa.Index("ix_early_warnings_state_created_at", "state", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[WarningKind] = mapped_column(enum_column_type(WarningKind))
    #: What it is about, one key per subject (``surge:<category>:<area>``,
    #: ``sudden:<place>``), and the episode: one warning per subject and episode.
    dedup_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    subject: Mapped[str] = mapped_column(sa.String(200), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.String(1000))
    category_id: Mapped[int | None] = mapped_column(sa.ForeignKey("categories.id"))
    area_id: Mapped[int | None] = mapped_column(sa.ForeignKey("areas.id"))
    #: The district it concerns (its leaders are told; district leaders see their own).
    district_id: Mapped[int | None] = mapped_column(sa.ForeignKey("areas.id"))
    place: Mapped[str | None] = mapped_column(sa.String(100))
    hot_issue_id: Mapped[int | None] = mapped_column(sa.ForeignKey("hot_issues.id"))
    #: The counted window, what was counted in it, what was expected, how unlikely that is.
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    observed: Mapped[int]
    expected: Mapped[float | None]
    score: Mapped[float | None]
    #: The evidence: ids of the tickets counted.
    ticket_ids: Mapped[list] = mapped_column(JSONType, default=list)
    state: Mapped[WarningState] = mapped_column(
        enum_column_type(WarningState), default=WarningState.open
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Last time evidence was added (more tickets in the same episode).
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    acknowledged_note: Mapped[str | None] = mapped_column(sa.String(1000))

    category: Mapped[Category | None] = relationship()
    area: Mapped[Area | None] = relationship(foreign_keys=[area_id])
    district: Mapped[Area | None] = relationship(foreign_keys=[district_id])
    acknowledged_by: Mapped[User | None] = relationship()


class AnalysisReport(Base):
    """A published 民情分析 report, frozen: later tickets and callbacks do not move it."""

    __tablename__ = "analysis_reports"
    __table_args__ = (sa.UniqueConstraint("period", "period_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[ReportPeriod] = mapped_column(enum_column_type(ReportPeriod))
    #: ``2026-12-04``, ``2026-W49``, ``2026-12``, ``2026-Q4``.
    period_key: Mapped[str] = mapped_column(sa.String(16))
    #: Tickets received in [period_start, period_end) (local period, in UTC).
    period_start: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    #: Every figure of the report as computed when published.
    data: Mapped[dict] = mapped_column(JSONType, default=dict)
    #: The generated summary paragraph (as published; the publisher may have edited it).
    summary: Mapped[str] = mapped_column(sa.Text, default="")
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    published_by: Mapped[User | None] = relationship()
