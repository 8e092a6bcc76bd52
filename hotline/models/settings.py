import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from hotline.db import Base, JSONType, UTCDateTime, utcnow


class Setting(Base):
    """One administrator-set value (``hotline.settings`` defines the keys, their types and
    code defaults); a key without a row has its default."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[dict] = mapped_column(JSONType)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))


class ReferenceVersion(Base):
    """A counter per kind of reference data (areas, categories, units, routing, knowledge,
    settings), raised by every change, so that each process rebuilds what it derived from
    them (the gazetteer, the grid locator, cached rows) within seconds, without a restart."""

    __tablename__ = "reference_versions"

    name: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    version: Mapped[int] = mapped_column(default=0)
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
