import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from hotline.db import Base, UTCDateTime, utcnow


class CalendarDay(Base):
    """An administrator's entry for one day: a holiday, or a weekend made a workday (调休).

    Entries override ``chinese-calendar`` for the years it knows and, together with
    ``CalendarYear``, define the years it does not know.
    """

    __tablename__ = "calendar_days"

    day: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)
    workday: Mapped[bool]
    #: e.g. 春节, 国庆节调休上班
    name: Mapped[str | None] = mapped_column(sa.String(50))
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CalendarYear(Base):
    """A year whose holiday arrangement an administrator has entered in full.

    A working-day deadline in a year neither ``chinese-calendar`` nor this table knows is a
    Monday–Friday guess and is flagged as such.
    """

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    #: Where the arrangement comes from, e.g. 国办发明电〔2026〕号.
    note: Mapped[str | None] = mapped_column(sa.String(200))
    defined_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    defined_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
