"""Admin-tunable rules: the routing catalogue and the SLA policy table."""

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hotline.db import Base, UTCDateTime, enum_column_type
from hotline.enums import LimitUnit, RequestType, Urgency
from hotline.models.areas import Area
from hotline.models.categories import Category
from hotline.models.units import Unit


class RoutingRule(Base):
    """One line of the dispatch catalogue (派单目录): category × area → unit, valid from one
    local date to another (both inclusive; empty: open-ended).

    A rule on a category covers its descendants; a rule with no area covers the whole city.
    The most specific category wins, then the most specific area. Two rules of the same
    category and area whose periods overlap conflict (``dispatch.catalogue`` refuses and flags
    them); should two such rules both be in force on a day, the one that started later decides
    (then the newer row), everywhere the catalogue is read (``precedence``).
    """

    __tablename__ = "routing_rules"
    __table_args__ = (sa.Index("ix_routing_rules_category_id_area_id", "category_id", "area_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    category_id: Mapped[int] = mapped_column(sa.ForeignKey("categories.id"))
    area_id: Mapped[int | None] = mapped_column(sa.ForeignKey("areas.id"))
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    valid_from: Mapped[dt.date | None]
    valid_to: Mapped[dt.date | None]
    #: Why the rule exists (the decision or document behind it).
    note: Mapped[str | None] = mapped_column(sa.String(300))
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    category: Mapped[Category] = relationship()
    area: Mapped[Area | None] = relationship()
    unit: Mapped[Unit] = relationship()

    @classmethod
    def in_force_on(cls, day):
        """SQL condition: the rule applies on the local date ``day``."""
        return sa.and_(
            sa.or_(cls.valid_from.is_(None), cls.valid_from <= day),
            sa.or_(cls.valid_to.is_(None), cls.valid_to >= day),
        )

    def applies_on(self, day):
        """Whether the rule applies on the local date ``day`` (both ends inclusive)."""
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )


def precedence(valid_from, rule_id):
    """Sort key among rules of one category and area in force on the same day: the higher
    decides (the later start, then the newer row)."""
    return (valid_from or dt.date.min, rule_id or 0)


class SlaPolicy(Base):
    """Time limits for tickets matching category / request type / urgency (DOMAIN.md §4).

    Empty match columns match anything; the most specific matching row applies.
    """

    __tablename__ = "sla_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    category_id: Mapped[int | None] = mapped_column(sa.ForeignKey("categories.id"))
    request_type: Mapped[RequestType | None] = mapped_column(enum_column_type(RequestType))
    urgency: Mapped[Urgency | None] = mapped_column(enum_column_type(Urgency))
    sign_amount: Mapped[int]
    sign_unit: Mapped[LimitUnit] = mapped_column(enum_column_type(LimitUnit))
    contact_amount: Mapped[int]
    contact_unit: Mapped[LimitUnit] = mapped_column(enum_column_type(LimitUnit))
    finish_amount: Mapped[int]
    finish_unit: Mapped[LimitUnit] = mapped_column(enum_column_type(LimitUnit))
    callback_amount: Mapped[int]
    callback_unit: Mapped[LimitUnit] = mapped_column(enum_column_type(LimitUnit))
    active: Mapped[bool] = mapped_column(default=True)

    category: Mapped[Category | None] = relationship()
