"""What the citizens' own channels keep: one-time codes sent to phones, the sessions of
citizens who proved their phone, the notification outbox, and Open311 clients' keys."""

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hotline.db import Base, JSONType, UTCDateTime, enum_column_type, utcnow
from hotline.enums import OutboxState
from hotline.models.tickets import Ticket
from hotline.models.users import User


class VerificationCode(Base):
    """A 6-digit code texted to a phone (短信验证码). Only its keyed hash is kept; it is
    valid for a few minutes, for a few tries, once."""

    __tablename__ = "verification_codes"
    __table_args__ = (
        # The per-phone and per-address daily limits count the codes sent since midnight.
        sa.Index("ix_verification_codes_phone_created_at", "phone", "created_at"),
        sa.Index("ix_verification_codes_client_ip_created_at", "client_ip", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(sa.String(20))
    #: What the code is for: "submit" (a new request), "track" (我的诉求, one lookup).
    purpose: Mapped[str] = mapped_column(sa.String(16))
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    tries: Mapped[int] = mapped_column(default=0)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    client_ip: Mapped[str | None] = mapped_column(sa.String(45))


class CitizenSession(Base):
    """A citizen who proved a phone by code: they see that phone's tickets until the session
    expires or is revoked (退出, or by an administrator). Only the token's SHA-256 is kept."""

    __tablename__ = "citizen_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    phone: Mapped[str] = mapped_column(sa.String(20), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    client_ip: Mapped[str | None] = mapped_column(sa.String(45))


class OutboxMessage(Base):
    """One copy of a notification to deliver outside the system (an SMS, a WeChat Work robot
    post, a WeChat template message), written in the same transaction as the change that
    caused it and delivered afterwards by ``hotline.outbox``: a process that dies after the
    commit loses nothing, and the unique ``delivery_key`` stops a copy being made twice."""

    __tablename__ = "outbox"
    __table_args__ = (
        # The sender's scan: copies still to deliver, next due first.
        sa.Index(
            "ix_outbox_pending_next_attempt_at",
            "next_attempt_at",
            postgresql_where=sa.text("state = 'pending'"),
            sqlite_where=sa.text("state = 'pending'"),
        ),
        sa.Index("ix_outbox_state_created_at", "state", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_key: Mapped[str] = mapped_column(sa.String(160), unique=True)
    #: The sender that delivers it (``sms``, ``wecom``, ``wechat``, ``logging`` …).
    channel: Mapped[str] = mapped_column(sa.String(32))
    #: Who reads it: "unit" (staff notifications) or "citizen".
    audience: Mapped[str] = mapped_column(sa.String(16))
    #: Where it goes, as the sender needs it (phones, an openid, a unit code).
    recipient: Mapped[str | None] = mapped_column(sa.String(500))
    #: What it is about (a ``TimerKind`` value, ``citizen_received`` …) and its ticket.
    kind: Mapped[str] = mapped_column(sa.String(32))
    ticket_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tickets.id"), index=True)
    notification_id: Mapped[int | None] = mapped_column(sa.ForeignKey("notifications.id"))
    title: Mapped[str] = mapped_column(sa.String(200), default="")
    body: Mapped[str] = mapped_column(sa.String(2000), default="")
    #: Anything else the sender needs (a template's fields, a link).
    payload: Mapped[dict] = mapped_column(JSONType, default=dict)
    state: Mapped[OutboxState] = mapped_column(
        enum_column_type(OutboxState), default=OutboxState.pending
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.String(500))

    ticket: Mapped[Ticket | None] = relationship()


class Open311Key(Base):
    """An API key of another system that files requests through Open311 GeoReport v2. Only
    the key's SHA-256 is kept (the key is shown once); requests it files are received by its
    service account (``Role.portal``) with the key's name as the channel's client."""

    __tablename__ = "open311_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    #: The key's first characters, to tell keys apart on the page.
    key_prefix: Mapped[str] = mapped_column(sa.String(12))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(foreign_keys=[user_id])
