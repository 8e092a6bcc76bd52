import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hotline.db import Base, JSONType, enum_column_type
from hotline.enums import UnitKind
from hotline.models.areas import Area

unit_areas = sa.Table(
    "unit_areas",
    Base.metadata,
    sa.Column("unit_id", sa.ForeignKey("units.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("area_id", sa.ForeignKey("areas.id", ondelete="CASCADE"), primary_key=True),
)


class Unit(Base):
    """A handling unit (承办单位): city department, street office, district government, utility
    or the hotline centre itself."""

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    kind: Mapped[UnitKind] = mapped_column(enum_column_type(UnitKind))
    #: Works 24×7 (utilities): its clocks run in calendar hours, not working days.
    always_on: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    #: Duty phones that notifications (SMS) go to, most important first.
    phones: Mapped[list] = mapped_column(JSONType, default=list, server_default="[]")

    #: Areas the unit is responsible for; empty for city-wide units.
    areas: Mapped[list[Area]] = relationship(secondary=unit_areas)

    def __repr__(self):
        return f"<Unit {self.code} {self.name}>"
