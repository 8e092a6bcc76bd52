import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hotline.db import Base


class Category(Base):
    """A node of the three-level subject tree (事项分类 一级/二级/三级).

    Codes are hierarchical (01 → 0101 → 010101), so ancestors are code prefixes.
    """

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(16), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    level: Mapped[int] = mapped_column(sa.SmallInteger)
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("categories.id"), index=True)
    #: Water, power, gas or heating (水电气热): 24-hour clocks by default.
    utility: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)

    parent: Mapped["Category | None"] = relationship(remote_side=[id])

    def ancestor_codes(self):
        """Codes of this category and its ancestors, most specific first."""
        return [self.code[:n] for n in range(len(self.code), 0, -2)]

    def __repr__(self):
        return f"<Category {self.code} {self.name}>"
