import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hotline.db import Base, UTCDateTime, utcnow
from hotline.models.tickets import Ticket
from hotline.models.users import User


class IncomingCall(Base):
    """A call the phone system (呼叫中心交换机) announced to an agent: the caller's number, the
    switch's call id and the recording, kept until a ticket is made from it."""

    __tablename__ = "incoming_calls"
    __table_args__ = (sa.Index("ix_incoming_calls_agent_id_id", "agent_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The switch's id of the call (unique: the switch may announce a call twice).
    call_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    caller_phone: Mapped[str | None] = mapped_column(sa.String(20))
    #: The agent the switch named (its 工号 or login name), as sent …
    agent: Mapped[str] = mapped_column(sa.String(64))
    #: … and the user it names, when there is one.
    agent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    recording_ref: Mapped[str | None] = mapped_column(sa.String(300))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The ticket made from the call (None until the operator receives one).
    #: Indexed: the retention job finds a ticket's calls by it.
    ticket_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tickets.id"), index=True)

    agent_user: Mapped[User | None] = relationship()
    ticket: Mapped[Ticket | None] = relationship()
