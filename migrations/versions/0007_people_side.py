"""knowledge base, attachments, grid worker acceptance, dispatch confidence, login throttle indexes

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

import json

import sqlalchemy as sa
from alembic import op

import hotline.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "knowledge_articles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("keywords", sa.String(length=500), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_knowledge_articles_category_id_categories"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_articles")),
        sa.UniqueConstraint("code", name=op.f("uq_knowledge_articles_code")),
    )
    with op.batch_alter_table("knowledge_articles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_knowledge_articles_category_id"), ["category_id"], unique=False
        )

    op.create_table(
        "attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["ticket_events.id"], name=op.f("fk_attachments_event_id_ticket_events")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_attachments_ticket_id_tickets")
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"], ["users.id"], name=op.f("fk_attachments_uploaded_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
    )
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attachments_event_id"), ["event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_attachments_ticket_id"), ["ticket_id"], unique=False)

    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("remote_addr", sa.String(length=45), nullable=True))
        batch_op.create_index(
            "ix_audit_log_action_remote_addr_created_at",
            ["action", "remote_addr", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_audit_log_action_target_created_at",
            ["action", "target", "created_at"],
            unique=False,
        )

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dispatch_confidence", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("grid_worker_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_tickets_grid_worker_id_users"), "users", ["grid_worker_id"], ["id"]
        )
        batch_op.create_index(
            "ix_tickets_dispatch_queue",
            ["dispatch_confidence", "received_at"],
            unique=False,
            postgresql_where=sa.text("status = 'received'"),
            sqlite_where=sa.text("status = 'received'"),
        )
    _backfill_dispatch_confidence()


def downgrade():
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_tickets_dispatch_queue",
            postgresql_where=sa.text("status = 'received'"),
            sqlite_where=sa.text("status = 'received'"),
        )
        batch_op.drop_constraint(batch_op.f("fk_tickets_grid_worker_id_users"), type_="foreignkey")
        batch_op.drop_column("grid_worker_id")
        batch_op.drop_column("dispatch_confidence")

    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_action_target_created_at")
        batch_op.drop_index("ix_audit_log_action_remote_addr_created_at")
        batch_op.drop_column("remote_addr")

    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attachments_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_attachments_event_id"))

    op.drop_table("attachments")
    with op.batch_alter_table("knowledge_articles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_knowledge_articles_category_id"))

    op.drop_table("knowledge_articles")


def _backfill_dispatch_confidence():
    """Tickets waiting for dispatch get the confidence their stored suggestion implies (the
    rule of ``hotline.suggestions.dispatch_confidence`` as of this revision)."""
    bind = op.get_bind()
    tickets = sa.table(
        "tickets",
        sa.column("id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("suggestion", sa.JSON),
        sa.column("dispatch_confidence", sa.Double),
    )
    rows = bind.execute(
        sa.select(tickets.c.id, tickets.c.suggestion).where(
            tickets.c.status == "received", tickets.c.suggestion.is_not(None)
        )
    ).all()
    for ticket_id, suggestion in rows:
        if isinstance(suggestion, str):
            suggestion = json.loads(suggestion)
        if not suggestion:
            continue
        category = suggestion.get("category") or {}
        top = category.get("top") or []
        area = suggestion.get("area") or {}
        units = suggestion.get("units") or []
        confidence = min(
            0.0 if category.get("abstain") or not top else top[0]["probability"],
            area.get("confidence", 0.0) if area.get("code") else 0.0,
            units[0]["confidence"] if units else 0.0,
        )
        bind.execute(
            tickets.update().where(tickets.c.id == ticket_id).values(dispatch_confidence=confidence)
        )
