import datetime as dt

import sqlalchemy as sa
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hotline.db import Base, UTCDateTime, enum_column_type, utcnow
from hotline.enums import ArticleState
from hotline.models.categories import Category


class KnowledgeArticle(Base):
    """A knowledge-base entry (知识库条目): the answer an operator reads to the caller to close a
    request at intake (首问即答), with the policy it rests on.

    Only a published article is offered at intake; drafts and articles in review are the
    editors', expired ones stay for the tickets they answered."""

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
    state: Mapped[ArticleState] = mapped_column(
        enum_column_type(ArticleState),
        default=ArticleState.published,
        server_default=ArticleState.published.value,
        index=True,
    )
    #: Last local day the answer holds (a policy's end); None: until withdrawn.
    valid_until: Mapped[dt.date | None]
    #: Who wrote it (a unit handler proposing from a finished consultation, or an editor),
    #: and the number of the ticket it was proposed from (a number, not a key: tickets
    #: already point at the article that answered them).
    proposed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    source_ticket_number: Mapped[str | None] = mapped_column(sa.String(32))
    reviewed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Times the article was shown to an operator as an answer (a hit).
    hit_count: Mapped[int] = mapped_column(default=0, server_default="0")
    #: When the review-due reminder was sent (once per valid-until date).
    review_reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    category: Mapped[Category | None] = relationship()

    @hybrid_property
    def published(self):
        """Offered at intake."""
        return self.state == ArticleState.published
