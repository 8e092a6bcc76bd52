import datetime as dt

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from hotline.db import Base, UTCDateTime, enum_column_type, utcnow
from hotline.enums import Role
from hotline.models.areas import Area
from hotline.models.units import Unit

user_grids = sa.Table(
    "user_grids",
    Base.metadata,
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("area_id", sa.ForeignKey("areas.id", ondelete="CASCADE"), primary_key=True),
)


class User(UserMixin, Base):
    __tablename__ = "users"
    __table_args__ = (
        sa.CheckConstraint(
            "role <> 'unit_handler' OR unit_id IS NOT NULL", name="unit_handler_has_unit"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[Role] = mapped_column(enum_column_type(Role))
    #: The unit a unit handler works for.
    unit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("units.id"), index=True)
    #: Limits a leader to one district; None means the whole city.
    district_id: Mapped[int | None] = mapped_column(sa.ForeignKey("areas.id"))
    active: Mapped[bool] = mapped_column(default=True)
    #: Set when an administrator resets the password: the user must choose a new one at
    #: their next login before any other page opens.
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    #: A phone number for notifications and colleagues (shown to administrators only).
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    unit: Mapped[Unit | None] = relationship()
    district: Mapped[Area | None] = relationship()
    #: Grids a grid worker is responsible for.
    grids: Mapped[list[Area]] = relationship(secondary=user_grids)

    @property
    def is_active(self):
        # Flask-Login: a deactivated account's session no longer logs anyone in.
        return self.active

    def set_password(self, password):
        self.password_hash = generate_password_hash(password)

    def check_password(self, password):
        return check_password_hash(self.password_hash, password)

    def __repr__(self):
        return f"<User {self.username} {self.role}>"


class ApiToken(Base):
    """A bearer token for programs. Only its SHA-256 is stored; the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    label: Mapped[str] = mapped_column(sa.String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class UserSession(Base):
    """A login (web page or API session cookie), so that it can be ended on the server: the
    cookie carries a random key, only its SHA-256 is stored, and a request is someone's only
    while the row has not ended (logout, password change, deactivation)."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Where the login came from (client address, browser), for the user's list of sessions.
    remote_addr: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent: Mapped[str | None] = mapped_column(sa.String(200))
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: logout / password_changed / deactivated
    end_reason: Mapped[str | None] = mapped_column(sa.String(32))
