import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hotline.db import Base, UTCDateTime, enum_column_type, utcnow
from hotline.enums import AlertLevel
from hotline.models.tickets import Ticket
from hotline.models.units import Unit


class Notification(Base):
    """An item in a unit's in-app inbox (站内消息): warnings, 催办, 督办, callback tasks.

    The inbox is the channel every notification takes; SMS and WeChat senders, when
    configured, deliver a copy (``hotline.notify``).
    """

    __tablename__ = "notifications"
    __table_args__ = (
        sa.Index("ix_notifications_unit_id_id", "unit_id", "id"),
        # The header's bell counts a unit's unread items on every page.
        sa.Index(
            "ix_notifications_unread_unit_id",
            "unit_id",
            postgresql_where=sa.text("read_at IS NULL"),
            sqlite_where=sa.text("read_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    ticket_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tickets.id"), index=True)
    #: What happened: a ``TimerKind`` value for SLA timers.
    kind: Mapped[str] = mapped_column(sa.String(32))
    level: Mapped[AlertLevel] = mapped_column(enum_column_type(AlertLevel))
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.String(1000))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    read_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    unit: Mapped[Unit] = relationship()
    ticket: Mapped[Ticket | None] = relationship()
