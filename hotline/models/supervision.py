"""Supervision beyond the clock (督办, 质检): reply review rules, 吹哨报到 summonses and their
timers, joint meetings on hard cases, referrals to discipline inspection, and intake quality
inspections. The tables live here with every other; ``dispatch`` runs them."""

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hotline.db import Base, JSONType, UTCDateTime, enum_column_type, utcnow
from hotline.enums import (
    InspectionState,
    MeetingState,
    ReferralKind,
    ReviewMode,
    TimerKind,
)
from hotline.models.categories import Category
from hotline.models.tickets import Ticket, TicketEvent
from hotline.models.units import Unit
from hotline.models.users import User


class ReviewRule(Base):
    """How one category's finished replies are reviewed (办结审核); categories without a
    row follow the city's default (settings ``review.*``)."""

    __tablename__ = "review_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    category_id: Mapped[int] = mapped_column(sa.ForeignKey("categories.id"), unique=True)
    mode: Mapped[ReviewMode] = mapped_column(enum_column_type(ReviewMode))
    #: Share of replies reviewed in ``sample`` mode, in percent.
    sample_percent: Mapped[int | None]
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    category: Mapped[Category] = relationship()
    updated_by: Mapped[User | None] = relationship()


class Summons(Base):
    """吹哨报到: a department summoned to a ticket by the street office (or district
    government) leading it. The department reports (报到) by ``report_due`` and gives its
    opinion or action (反馈) by ``opinion_due``; each deadline has its own timers, stored as
    one next moment like a ticket's clock."""

    __tablename__ = "summonses"
    __table_args__ = (
        sa.Index("ix_summonses_unit_summoned_at", "unit_id", "summoned_at"),
        sa.Index(
            "ix_summonses_next_due_at",
            "next_due_at",
            postgresql_where=sa.text("next_due_at IS NOT NULL"),
            sqlite_where=sa.text("next_due_at IS NOT NULL"),
        ),
        # One open summons per department and ticket.
        sa.Index(
            "uq_summonses_open",
            "ticket_id",
            "unit_id",
            unique=True,
            postgresql_where=sa.text("opinion_at IS NULL AND cancelled_at IS NULL"),
            sqlite_where=sa.text("opinion_at IS NULL AND cancelled_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("tickets.id"), index=True)
    #: The summoned department.
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    #: The unit that blew the whistle (the ticket's lead when it did).
    summoning_unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    summoned_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    summoned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(sa.String(1000))
    report_due: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    reported_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reported_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    opinion_due: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    opinion_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    opinion_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    opinion: Mapped[str | None] = mapped_column(sa.Text)
    #: Ended without an opinion (the ticket left handling, or the lead withdrew it).
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(500))
    #: Earliest timer still to fire, timers fired up to, and the 督办 level reached.
    next_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    timers_checked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    escalation_level: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))

    ticket: Mapped[Ticket] = relationship()
    unit: Mapped[Unit] = relationship(foreign_keys=[unit_id])
    summoning_unit: Mapped[Unit] = relationship(foreign_keys=[summoning_unit_id])
    summoned_by: Mapped[User] = relationship(foreign_keys=[summoned_by_id])

    @hybrid_property
    def is_open(self):
        """Still waiting for the department: no opinion yet and not ended (the one rule of an
        open summons, in Python and, as ``Summons.is_open``, in SQL; ``uq_summonses_open``
        above allows one such summons per department and ticket)."""
        return self.opinion_at is None and self.cancelled_at is None

    @is_open.inplace.expression
    @classmethod
    def _is_open_expression(cls):
        return sa.and_(cls.opinion_at.is_(None), cls.cancelled_at.is_(None))


class SummonsFiring(Base):
    """One timer of a summons that fired; the unique key makes firing idempotent."""

    __tablename__ = "summons_firings"
    __table_args__ = (sa.UniqueConstraint("summons_id", "kind", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    summons_id: Mapped[int] = mapped_column(sa.ForeignKey("summonses.id"))
    kind: Mapped[TimerKind] = mapped_column(enum_column_type(TimerKind))
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    fired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    lateness_seconds: Mapped[int]
    level: Mapped[int | None]


class JointMeeting(Base):
    """A joint meeting (联席会议) on hard cases: agenda, attendees, minutes."""

    __tablename__ = "joint_meetings"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    scheduled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    place: Mapped[str | None] = mapped_column(sa.String(200))
    #: Who chairs it and which units attend (names as written in the minutes).
    chair: Mapped[str | None] = mapped_column(sa.String(100))
    attendees: Mapped[str | None] = mapped_column(sa.Text)
    state: Mapped[MeetingState] = mapped_column(
        enum_column_type(MeetingState), default=MeetingState.planned
    )
    minutes: Mapped[str | None] = mapped_column(sa.Text)
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    held_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    held_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id])
    items: Mapped[list["MeetingItem"]] = relationship(
        back_populates="meeting", order_by="MeetingItem.id"
    )


class MeetingItem(Base):
    """One hard case on a meeting's agenda, and the meeting's decision on it (the
    responsible unit, a deadline, notes), applied through 指定承办 (``event_id``)."""

    __tablename__ = "meeting_items"
    __table_args__ = (sa.UniqueConstraint("meeting_id", "ticket_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(sa.ForeignKey("joint_meetings.id"))
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("tickets.id"), index=True)
    #: Why the ticket is a hard case (the rules it met when put on the agenda).
    reasons: Mapped[list] = mapped_column(JSONType, default=list)
    added_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    decision_unit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("units.id"))
    decision_due: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decision_notes: Mapped[str | None] = mapped_column(sa.Text)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    #: The 指定承办 event that applied the decision.
    event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ticket_events.id"))

    meeting: Mapped[JointMeeting] = relationship(back_populates="items")
    ticket: Mapped[Ticket] = relationship()
    decision_unit: Mapped[Unit | None] = relationship()
    event: Mapped[TicketEvent | None] = relationship()


class Referral(Base):
    """A unit referred to discipline inspection (移送纪检监察) for a month's 推诿扯皮 or
    弄虚作假, with the evidence the detector listed and the supervisor's reason."""

    __tablename__ = "referrals"
    __table_args__ = (sa.UniqueConstraint("month", "unit_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The month of the behaviour (YYYY-MM, local).
    month: Mapped[str] = mapped_column(sa.String(7), index=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    kind: Mapped[ReferralKind] = mapped_column(enum_column_type(ReferralKind))
    #: The detector's findings as they were when referred (rule, tickets, figures).
    evidence: Mapped[list] = mapped_column(JSONType, default=list)
    ticket_ids: Mapped[list] = mapped_column(JSONType, default=list)
    reason: Mapped[str] = mapped_column(sa.String(2000))
    referred_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    referred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    unit: Mapped[Unit] = relationship()
    referred_by: Mapped[User] = relationship()


class Inspection(Base):
    """One intake ticket sampled for quality inspection (质检) and its scores on the
    checklist (category, address, content, courtesy, transfer) with the inspector's
    comments."""

    __tablename__ = "inspections"
    __table_args__ = (sa.Index("ix_inspections_operator_day", "operator_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("tickets.id"), unique=True)
    #: The operator who took the ticket, and the local day it was sampled for.
    operator_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    day: Mapped[dt.date] = mapped_column(sa.Date)
    sampled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    state: Mapped[InspectionState] = mapped_column(
        enum_column_type(InspectionState), default=InspectionState.pending, index=True
    )
    #: While pending, who claimed it (领取, ``dispatch.inspection.claim``); then who scored it.
    inspector_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    inspected_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Checklist item → {"points", "comment"} given (the checklist and its maxima live in
    #: ``dispatch.inspection.CHECKLIST``).
    checks: Mapped[dict] = mapped_column(JSONType, default=dict)
    #: Total points (0–100).
    score: Mapped[int | None]
    comment: Mapped[str | None] = mapped_column(sa.Text)

    ticket: Mapped[Ticket] = relationship()
    operator: Mapped[User] = relationship(foreign_keys=[operator_id])
    inspector: Mapped[User | None] = relationship(foreign_keys=[inspector_id])
