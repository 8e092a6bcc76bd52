"""hot issues, early warnings, published analysis reports, likes of a message

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

import hotline.db

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "analysis_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "period",
            sa.Enum(
                "daily",
                "weekly",
                "monthly",
                "quarterly",
                name="reportperiod",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("period_key", sa.String(length=16), nullable=False),
        sa.Column("period_start", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_end", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("data", hotline.db.JSONType, nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("published_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["published_by_id"],
            ["users.id"],
            name=op.f("fk_analysis_reports_published_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analysis_reports")),
        sa.UniqueConstraint(
            "period", "period_key", name=op.f("uq_analysis_reports_period_period_key")
        ),
    )
    op.create_table(
        "hot_issues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("title_fixed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("place", sa.String(length=100), nullable=True),
        sa.Column("keywords", hotline.db.JSONType, nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("district_id", sa.Integer(), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "open", "handled", "merged", name="hotissuestate", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("merged_into_id", sa.Integer(), nullable=True),
        sa.Column("first_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("callers", sa.Integer(), nullable=False),
        sa.Column("heat", sa.Double(), nullable=False),
        sa.Column("heat_parts", hotline.db.JSONType, nullable=False),
        sa.Column("handled_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("handled_by_id", sa.Integer(), nullable=True),
        sa.Column("handled_note", sa.String(length=1000), nullable=True),
        sa.Column("created_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"], ["categories.id"], name=op.f("fk_hot_issues_category_id_categories")
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["areas.id"], name=op.f("fk_hot_issues_district_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["handled_by_id"], ["users.id"], name=op.f("fk_hot_issues_handled_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["merged_into_id"],
            ["hot_issues.id"],
            name=op.f("fk_hot_issues_merged_into_id_hot_issues"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hot_issues")),
    )
    with op.batch_alter_table("hot_issues", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_hot_issues_category_id"), ["category_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_hot_issues_district_id"), ["district_id"], unique=False
        )
        batch_op.create_index("ix_hot_issues_last_at", ["last_at"], unique=False)
        batch_op.create_index("ix_hot_issues_state_heat", ["state", "heat"], unique=False)

    op.create_table(
        "early_warnings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("surge", "sudden", name="warningkind", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("dedup_key", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.String(length=1000), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("area_id", sa.Integer(), nullable=True),
        sa.Column("district_id", sa.Integer(), nullable=True),
        sa.Column("place", sa.String(length=100), nullable=True),
        sa.Column("hot_issue_id", sa.Integer(), nullable=True),
        sa.Column("window_start", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("window_end", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("observed", sa.Integer(), nullable=False),
        sa.Column("expected", sa.Double(), nullable=True),
        sa.Column("score", sa.Double(), nullable=True),
        sa.Column("ticket_ids", hotline.db.JSONType, nullable=False),
        sa.Column(
            "state",
            sa.Enum("open", "acknowledged", name="warningstate", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("created_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by_id", sa.Integer(), nullable=True),
        sa.Column("acknowledged_note", sa.String(length=1000), nullable=True),
        sa.ForeignKeyConstraint(
            ["acknowledged_by_id"],
            ["users.id"],
            name=op.f("fk_early_warnings_acknowledged_by_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["area_id"], ["areas.id"], name=op.f("fk_early_warnings_area_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_early_warnings_category_id_categories"),
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["areas.id"], name=op.f("fk_early_warnings_district_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["hot_issue_id"],
            ["hot_issues.id"],
            name=op.f("fk_early_warnings_hot_issue_id_hot_issues"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_early_warnings")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_early_warnings_dedup_key")),
    )
    with op.batch_alter_table("early_warnings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_early_warnings_state_created_at", ["state", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_early_warnings_subject"), ["subject"], unique=False)

    op.create_table(
        "hot_issue_tickets",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("hot_issue_id", sa.Integer(), nullable=False),
        sa.Column("pinned", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("added_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["hot_issue_id"],
            ["hot_issues.id"],
            name=op.f("fk_hot_issue_tickets_hot_issue_id_hot_issues"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_hot_issue_tickets_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_hot_issue_tickets")),
    )
    with op.batch_alter_table("hot_issue_tickets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_hot_issue_tickets_hot_issue_id"), ["hot_issue_id"], unique=False
        )

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("likes", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )


def downgrade():
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("likes")

    with op.batch_alter_table("hot_issue_tickets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hot_issue_tickets_hot_issue_id"))

    op.drop_table("hot_issue_tickets")
    with op.batch_alter_table("early_warnings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_early_warnings_subject"))
        batch_op.drop_index("ix_early_warnings_state_created_at")

    op.drop_table("early_warnings")
    with op.batch_alter_table("hot_issues", schema=None) as batch_op:
        batch_op.drop_index("ix_hot_issues_state_heat")
        batch_op.drop_index("ix_hot_issues_last_at")
        batch_op.drop_index(batch_op.f("ix_hot_issues_district_id"))
        batch_op.drop_index(batch_op.f("ix_hot_issues_category_id"))

    op.drop_table("hot_issues")
    op.drop_table("analysis_reports")
