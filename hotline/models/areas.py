import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hotline.db import Base, JSONType, enum_column_type
from hotline.enums import AreaLevel

#: Length of the official code at each level: 6 district + 3 street + 3 community + 3 grid.
CODE_LENGTH = {
    AreaLevel.district: 6,
    AreaLevel.street: 9,
    AreaLevel.community: 12,
    AreaLevel.grid: 15,
}


class Area(Base):
    """One node of the area tree 区县 → 街道乡镇 → 社区村 → 网格.

    The code is hierarchical, so every ancestor's code is a prefix of it.
    """

    __tablename__ = "areas"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Official division code (NBS); grids: community code + 3-digit sequence (15 digits).
    code: Mapped[str] = mapped_column(sa.String(15), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    level: Mapped[AreaLevel] = mapped_column(enum_column_type(AreaLevel))
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("areas.id"), index=True)
    #: True for a town (镇/乡) rather than an urban street (街道); streets level only.
    is_town: Mapped[bool] = mapped_column(default=False)
    #: Other names people use for this area (奎文 for 奎文区).
    aliases: Mapped[list] = mapped_column(JSONType, default=list)
    center_lng: Mapped[float | None]
    center_lat: Mapped[float | None]
    #: GeoJSON geometry (Polygon or MultiPolygon), when known.
    polygon: Mapped[dict | None] = mapped_column(JSONType)

    parent: Mapped["Area | None"] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list["Area"]] = relationship(back_populates="parent")

    def ancestor_codes(self):
        """Codes of this area and its ancestors, most specific first."""
        lengths = [n for n in CODE_LENGTH.values() if n <= len(self.code)]
        return [self.code[:n] for n in sorted(lengths, reverse=True)]

    def __repr__(self):
        return f"<Area {self.code} {self.name}>"
