import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hotline.db import Base, UTCDateTime, utcnow
from hotline.models.categories import Category


class KnowledgeArticle(Base):
    """A knowledge-base entry (知识库条目): the answer an operator reads to the caller to close a
    request at intake (首问即答), with the policy it rests on."""

    __tablename__ = "knowledge_articles"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    #: The subject the answer belongs to (None: general).
    category_id: Mapped[int | None] = mapped_column(sa.ForeignKey("categories.id"), index=True)
    #: Words and phrases callers use for the matter, separated by spaces (search boosts them).
    keywords: Mapped[str] = mapped_column(sa.String(500), default="")
    answer: Mapped[str] = mapped_column(sa.Text)
    #: Where the answer comes from (文件、政策依据), read out on request.
    source: Mapped[str | None] = mapped_column(sa.String(300))
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    category: Mapped[Category | None] = relationship()
