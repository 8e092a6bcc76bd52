"""learning: retraining runs of the classifier and their promotion decisions

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 18:55:00
"""

import sqlalchemy as sa
from alembic import op

import hotline.db

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "model_retrains",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("requested_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("started_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("candidate_version", sa.String(length=64), nullable=True),
        sa.Column("active_version", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("figures", hotline.db.JSONType, nullable=False),
        sa.ForeignKeyConstraint(
            ["candidate_version"],
            ["model_versions.version"],
            name=op.f("fk_model_retrains_candidate_version_model_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"], ["users.id"], name=op.f("fk_model_retrains_requested_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_retrains")),
    )
    op.create_index(op.f("ix_model_retrains_status"), "model_retrains", ["status"], unique=False)
    op.create_index(
        op.f("ix_model_retrains_finished_at"), "model_retrains", ["finished_at"], unique=False
    )
    op.create_index(
        op.f("ix_model_retrains_candidate_version"),
        "model_retrains",
        ["candidate_version"],
        unique=False,
    )


def downgrade():
    op.drop_index(op.f("ix_model_retrains_candidate_version"), table_name="model_retrains")
    op.drop_index(op.f("ix_model_retrains_finished_at"), table_name="model_retrains")
    op.drop_index(op.f("ix_model_retrains_status"), table_name="model_retrains")
    op.drop_table("model_retrains")
