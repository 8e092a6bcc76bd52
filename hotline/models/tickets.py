import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hotline.db import Base, JSONType, NullableJSONType, UTCDateTime, enum_column_type, utcnow
from hotline.enums import (
    AssignmentRole,
    CallbackChannel,
    CallbackOutcome,
    Channel,
    DecisionStatus,
    ExemptionKind,
    IntakeOutcome,
    RequestType,
    ReturnReason,
    Satisfaction,
    Solved,
    TicketStatus,
    TimerKind,
    TransferTarget,
    Urgency,
)
from hotline.models.areas import Area
from hotline.models.categories import Category
from hotline.models.units import Unit
from hotline.models.users import User


class Ticket(Base):
    """A work order (工单): one citizen request from intake to archive."""

    __tablename__ = "tickets"
    __table_args__ = (
        sa.UniqueConstraint("created_by_id", "idempotency_key"),
        sa.Index("ix_tickets_status_received_at", "status", "received_at"),
        sa.Index("ix_tickets_lead_unit_status", "lead_unit_id", "status"),
        # Reports and rankings select a period of intake; the ranking's return rate reads
        # the few tickets that changed hands.
        sa.Index("ix_tickets_received_at", "received_at"),
        sa.Index(
            "ix_tickets_exempt_received_at",
            "received_at",
            postgresql_where=sa.text("scoring_exempt"),
            sqlite_where=sa.text("scoring_exempt"),
        ),
        sa.Index(
            "ix_tickets_lead_history_received_at",
            "received_at",
            postgresql_where=sa.text("lead_history"),
            sqlite_where=sa.text("lead_history"),
        ),
        # Only open tickets have a next due moment; the scheduler's scan reads this index.
        sa.Index(
            "ix_tickets_next_due_at",
            "next_due_at",
            postgresql_where=sa.text("next_due_at IS NOT NULL"),
            sqlite_where=sa.text("next_due_at IS NOT NULL"),
        ),
        # The dispatcher's queue: tickets waiting for dispatch, least sure suggestion first.
        sa.Index(
            "ix_tickets_dispatch_queue",
            "dispatch_confidence",
            "received_at",
            postgresql_where=sa.text("status = 'received'"),
            sqlite_where=sa.text("status = 'received'"),
        ),
        # The callback queue reads tickets waiting for a call in due order.
        sa.Index(
            "ix_tickets_callback_next_at",
            "callback_next_at",
            postgresql_where=sa.text("callback_next_at IS NOT NULL"),
            sqlite_where=sa.text("callback_next_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Public ticket number (工单编号): prefix + local date + id.
    number: Mapped[str | None] = mapped_column(sa.String(32), unique=True)
    channel: Mapped[Channel] = mapped_column(enum_column_type(Channel))
    #: Which client of the channel filed it: an Open311 key's name (开放接口·城管通).
    channel_client: Mapped[str | None] = mapped_column(sa.String(64))
    request_type: Mapped[RequestType] = mapped_column(enum_column_type(RequestType))
    category_id: Mapped[int | None] = mapped_column(sa.ForeignKey("categories.id"), index=True)
    urgency: Mapped[Urgency] = mapped_column(enum_column_type(Urgency))
    title: Mapped[str] = mapped_column(sa.String(200))
    content: Mapped[str] = mapped_column(sa.Text)
    requester_name: Mapped[str | None] = mapped_column(sa.String(64))
    requester_phone: Mapped[str | None] = mapped_column(sa.String(20), index=True)
    address: Mapped[str | None] = mapped_column(sa.String(300))
    #: Other citizens' likes (点赞) of a message published on the city's message board: a
    #: sign of how many share the matter (hot issues' heat).
    likes: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))
    #: Most specific resolved area (grid, community, street or district).
    area_id: Mapped[int | None] = mapped_column(sa.ForeignKey("areas.id"), index=True)
    #: Where ``area_id`` came from: ``typed`` (chosen by staff or the citizen) or
    #: ``suggested`` (a confident place suggestion filled a blank area at intake).
    area_source: Mapped[str | None] = mapped_column(sa.String(16))
    lng: Mapped[float | None]
    lat: Mapped[float | None]
    status: Mapped[TicketStatus] = mapped_column(enum_column_type(TicketStatus))
    lead_unit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("units.id"))
    #: True once another unit led the ticket before its lead, or a lead asked to return it:
    #: only these tickets' lead assignments can change a unit's return rate, so the monthly
    #: ranking reads assignments for them alone.
    lead_history: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When the current clock started (dispatch, redispatch or reopen).
    clock_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    sign_due: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    contact_due: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finish_due: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    callback_due: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: The SLA policy row the deadlines were computed from.
    sla_policy_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sla_policies.id"))
    #: Years whose holidays nobody had published when a deadline was computed in them
    #: (comma-separated): those deadlines are Monday–Friday guesses and are flagged.
    calendar_guessed_years: Mapped[str | None] = mapped_column(sa.String(40))
    #: Earliest moment a timer of the current clock is due (None: nothing left to watch).
    next_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Every timer of the current clock due up to this moment has fired.
    timers_checked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: 督办 level reached in the current clock: 0 none, 1 hotline centre, 2 district or
    #: department leader, 3 mayor's office.
    escalation_level: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))

    signed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    contacted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Result reported by the lead unit (办理结果), or the answer given at intake.
    result: Mapped[str | None] = mapped_column(sa.Text)

    intake_outcome: Mapped[IntakeOutcome | None] = mapped_column(enum_column_type(IntakeOutcome))
    #: The knowledge article whose answer closed the ticket at intake (首问即答).
    answer_article_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("knowledge_articles.id"), index=True
    )
    #: The phone system's id of the call the ticket came from, and its recording.
    call_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    recording_ref: Mapped[str | None] = mapped_column(sa.String(300))
    transfer_target: Mapped[TransferTarget | None] = mapped_column(enum_column_type(TransferTarget))
    merged_into_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tickets.id"), index=True)
    #: The call this ticket was split from (拆单): one matter of several in one request.
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tickets.id"), index=True)

    callback_solved: Mapped[Solved | None] = mapped_column(enum_column_type(Solved))
    callback_satisfaction: Mapped[Satisfaction | None] = mapped_column(
        enum_column_type(Satisfaction)
    )
    callback_comment: Mapped[str | None] = mapped_column(sa.Text)
    callback_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: When the callback workbench should (next) call the requester: the callback clock's
    #: start at finishing, then the retry moment after each unanswered attempt; None when
    #: no callback is waiting.
    callback_next_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Times the ticket went back to its unit after callback (重办).
    reopen_count: Mapped[int] = mapped_column(default=0)

    #: Reviewer's decision to leave the ticket out of scoring (考核豁免).
    scoring_exempt: Mapped[bool] = mapped_column(default=False)
    exempt_kind: Mapped[ExemptionKind | None] = mapped_column(enum_column_type(ExemptionKind))
    exempt_reason: Mapped[str | None] = mapped_column(sa.String(500))
    #: Who exempted it and when (the monthly report lists every exemption).
    exempted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    exempted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    #: What the classifier suggested at intake (category, type, urgency, place, units) and
    #: the model version, kept beside the values finally chosen to measure acceptance.
    suggestion: Mapped[dict | None] = mapped_column(NullableJSONType)
    #: How sure that suggestion was of where the ticket goes: the lowest of its category,
    #: place and unit confidences (None: no suggestion). The dispatcher's queue shows the
    #: least sure first.
    dispatch_confidence: Mapped[float | None]
    #: The grid worker who accepted the ticket (接单) in their grid and works it on site.
    grid_worker_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    #: Client-chosen key making create idempotent, with a digest of the request it came with.
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(100))
    request_digest: Mapped[str | None] = mapped_column(sa.String(64))
    #: Optimistic-concurrency counter, bumped by every change.
    version: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When the retention job removed the requester's personal data (``hotline.retention``).
    redacted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __mapper_args__ = {"version_id_col": version, "eager_defaults": True}

    category: Mapped[Category | None] = relationship()
    area: Mapped[Area | None] = relationship()
    lead_unit: Mapped[Unit | None] = relationship()
    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id])
    grid_worker: Mapped[User | None] = relationship(foreign_keys=[grid_worker_id])
    merged_into: Mapped["Ticket | None"] = relationship(
        remote_side=[id], foreign_keys=[merged_into_id]
    )
    parent: Mapped["Ticket | None"] = relationship(remote_side=[id], foreign_keys=[parent_id])
    assignments: Mapped[list["Assignment"]] = relationship(
        back_populates="ticket", order_by="Assignment.id"
    )

    def active_assignment(self, unit_id, role=None):
        for a in self.assignments:
            if a.active and a.unit_id == unit_id and (role is None or a.role == role):
                return a
        return None

    @property
    def lead_assignment(self):
        for a in self.assignments:
            if a.active and a.role == AssignmentRole.lead:
                return a
        return None

    def __repr__(self):
        return f"<Ticket {self.number} {self.status}>"


class Assignment(Base):
    """One unit's part in a ticket (主办 / 协办 / 抄送), from dispatch until replaced."""

    __tablename__ = "assignments"
    __table_args__ = (sa.Index("ix_assignments_unit_active", "unit_id", "active"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("tickets.id"), index=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    role: Mapped[AssignmentRole] = mapped_column(enum_column_type(AssignmentRole))
    #: False once the unit no longer holds the ticket (return upheld, redispatch).
    active: Mapped[bool] = mapped_column(default=True)
    #: Designated by the hotline (指定): the unit may not return the ticket.
    designated: Mapped[bool] = mapped_column(default=False)
    dispatched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    dispatched_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    signed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    signed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    contacted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    return_reason: Mapped[ReturnReason | None] = mapped_column(enum_column_type(ReturnReason))
    return_note: Mapped[str | None] = mapped_column(sa.String(1000))
    return_requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    return_status: Mapped[DecisionStatus | None] = mapped_column(enum_column_type(DecisionStatus))
    #: An assisting unit's part of the work (协办反馈), filed into the lead's ticket; its
    #: moment is ``finished_at``.
    report: Mapped[str | None] = mapped_column(sa.Text)

    ticket: Mapped[Ticket] = relationship(back_populates="assignments")
    unit: Mapped[Unit] = relationship()


class TicketEvent(Base):
    """Append-only history of a ticket: one row per transition (database triggers refuse
    UPDATE and DELETE)."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("tickets.id"), index=True)
    #: Name of the operation (receive, dispatch, sign …).
    action: Mapped[str] = mapped_column(sa.String(32))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    actor_role: Mapped[str | None] = mapped_column(sa.String(32))
    #: The unit on whose behalf the actor acted, if any.
    unit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("units.id"))
    from_status: Mapped[str | None] = mapped_column(sa.String(32))
    to_status: Mapped[str] = mapped_column(sa.String(32))
    #: The operation's text: a reason, or a reply (办理结果, 反馈意见 …) of up to 5,000
    #: characters. TEXT on PostgreSQL (migration 0014); SQLite never enforces the length.
    reason: Mapped[str | None] = mapped_column(
        sa.String(1000).with_variant(sa.Text(), "postgresql")
    )
    payload: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    #: The HTTP request that made it (its ``X-Request-Id``, also in every log line of that
    #: request); None for the scheduler and the command line.
    request_id: Mapped[str | None] = mapped_column(sa.String(64))

    ticket: Mapped[Ticket] = relationship()
    actor: Mapped[User | None] = relationship()
    unit: Mapped[Unit | None] = relationship()


class Extension(Base):
    """An extension request (延期申请) and the hotline's decision."""

    __tablename__ = "extensions"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("tickets.id"), index=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    requested_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str] = mapped_column(sa.String(1000))
    #: Extra working days asked for.
    days: Mapped[int]
    status: Mapped[DecisionStatus] = mapped_column(enum_column_type(DecisionStatus))
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(sa.String(1000))
    old_finish_due: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    new_finish_due: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class CallbackAttempt(Base):
    """One callback call (回访) to the requester."""

    __tablename__ = "callback_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("tickets.id"), index=True)
    agent_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    attempted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[CallbackOutcome] = mapped_column(enum_column_type(CallbackOutcome))
    #: A call by the callback staff, or the citizen's own rating online (一事一评).
    channel: Mapped[CallbackChannel] = mapped_column(
        enum_column_type(CallbackChannel),
        default=CallbackChannel.phone,
        server_default=CallbackChannel.phone.value,
    )
    solved: Mapped[Solved | None] = mapped_column(enum_column_type(Solved))
    satisfaction: Mapped[Satisfaction | None] = mapped_column(enum_column_type(Satisfaction))
    comment: Mapped[str | None] = mapped_column(sa.String(2000))


class TimerFiring(Base):
    """One SLA timer that fired (预警, 超时, 催办, 督办, 回访任务). The unique key makes firing
    idempotent: a second scheduler, or a retried tick, cannot fire the same timer twice."""

    __tablename__ = "timer_firings"
    __table_args__ = (sa.UniqueConstraint("ticket_id", "kind", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("tickets.id"))
    kind: Mapped[TimerKind] = mapped_column(enum_column_type(TimerKind))
    #: When the timer was due.
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    fired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    #: fired_at − due_at in whole seconds: a tick's interval, or downtime caught up on.
    lateness_seconds: Mapped[int]
    #: 督办 level (escalations only).
    level: Mapped[int | None]
