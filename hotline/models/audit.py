import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from hotline.db import Base, JSONType, UTCDateTime, utcnow


class AuditLog(Base):
    """Append-only log of state changes outside tickets (users, tokens, rules, logins)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        # Login throttling counts recent failures per user name and per address.
        sa.Index("ix_audit_log_action_target_created_at", "action", "target", "created_at"),
        sa.Index(
            "ix_audit_log_action_remote_addr_created_at", "action", "remote_addr", "created_at"
        ),
        # The audit page filters by who acted.
        sa.Index("ix_audit_log_actor_id_created_at", "actor_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    #: e.g. user.create, token.create, seed.load
    action: Mapped[str] = mapped_column(sa.String(64))
    target: Mapped[str | None] = mapped_column(sa.String(100))
    payload: Mapped[dict] = mapped_column(JSONType, default=dict)
    #: The client's address for actions taken over HTTP (logins are throttled by it).
    remote_addr: Mapped[str | None] = mapped_column(sa.String(45))
    #: The HTTP request that made it (``X-Request-Id``, as in the logs).
    request_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
