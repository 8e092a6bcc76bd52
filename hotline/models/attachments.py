import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hotline.db import Base, UTCDateTime, utcnow
from hotline.models.users import User


class Attachment(Base):
    """A photo kept with a ticket: a unit's evidence of its result, a grid worker's on-site
    check or a patrol report (主动发现). The file lives under the instance's attachment folder
    by its SHA-256; only the checked type and size are stored here."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("tickets.id"), index=True)
    #: The ticket event the photo was taken for (finish, check-in, report).
    event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ticket_events.id"), index=True)
    uploaded_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    #: result (办结佐证), site (现场核查), report (主动发现), opinion (报到反馈, 吹哨报到)
    purpose: Mapped[str] = mapped_column(sa.String(16))
    #: The uploader's file name, shown only (never used as a path).
    filename: Mapped[str] = mapped_column(sa.String(200))
    #: Detected from the file's bytes: image/jpeg, image/png or image/webp.
    content_type: Mapped[str] = mapped_column(sa.String(32))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket: Mapped["Ticket"] = relationship()  # noqa: F821 (tickets.py imports this module's users)
    uploaded_by: Mapped[User] = relationship()
