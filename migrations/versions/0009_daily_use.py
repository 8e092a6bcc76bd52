"""daily use: where a ticket's area came from, the article that answered it, calls announced
by the phone system

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

import hotline.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("area_source", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("answer_article_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("call_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("recording_ref", sa.String(length=300), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_tickets_answer_article_id_knowledge_articles"),
            "knowledge_articles",
            ["answer_article_id"],
            ["id"],
        )
        batch_op.create_index(batch_op.f("ix_tickets_answer_article_id"), ["answer_article_id"])
        batch_op.create_index(batch_op.f("ix_tickets_call_id"), ["call_id"])
    # Areas chosen before this revision were all typed by staff.
    op.execute("UPDATE tickets SET area_source = 'typed' WHERE area_id IS NOT NULL")

    op.create_table(
        "incoming_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=False),
        sa.Column("caller_phone", sa.String(length=20), nullable=True),
        sa.Column("agent", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("recording_ref", sa.String(length=300), nullable=True),
        sa.Column("received_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["users.id"], name=op.f("fk_incoming_calls_agent_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_incoming_calls_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incoming_calls")),
        sa.UniqueConstraint("call_id", name=op.f("uq_incoming_calls_call_id")),
    )
    op.create_index("ix_incoming_calls_agent_id_id", "incoming_calls", ["agent_id", "id"])


def downgrade():
    op.drop_index("ix_incoming_calls_agent_id_id", table_name="incoming_calls")
    op.drop_table("incoming_calls")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tickets_call_id"))
        batch_op.drop_index(batch_op.f("ix_tickets_answer_article_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_tickets_answer_article_id_knowledge_articles"), type_="foreignkey"
        )
        batch_op.drop_column("recording_ref")
        batch_op.drop_column("call_id")
        batch_op.drop_column("answer_article_id")
        batch_op.drop_column("area_source")
