"""callback queue moment, exemption kinds, frozen monthly rankings

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hotline.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "ranking_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("period_start", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_end", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("frozen_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("frozen_by_id", sa.Integer(), nullable=True),
        sa.Column(
            "settings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "totals",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "exemptions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["frozen_by_id"], ["users.id"], name=op.f("fk_ranking_snapshots_frozen_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ranking_snapshots")),
        sa.UniqueConstraint("month", name=op.f("uq_ranking_snapshots_month")),
    )
    op.create_table(
        "ranking_rows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column(
            "ranking_class",
            sa.Enum(
                "district",
                "street",
                "department",
                "utility",
                name="rankingclass",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=False),
        sa.Column("unit_name", sa.String(length=100), nullable=False),
        sa.Column("dispatched", sa.Integer(), nullable=False),
        sa.Column("exempt", sa.Integer(), nullable=False),
        sa.Column("response_pending", sa.Integer(), nullable=False),
        sa.Column("responded", sa.Integer(), nullable=False),
        sa.Column("rated", sa.Integer(), nullable=False),
        sa.Column("solved", sa.Integer(), nullable=False),
        sa.Column("partly", sa.Integer(), nullable=False),
        sa.Column("unsolved", sa.Integer(), nullable=False),
        sa.Column("satisfied", sa.Integer(), nullable=False),
        sa.Column("basically", sa.Integer(), nullable=False),
        sa.Column("dissatisfied", sa.Integer(), nullable=False),
        sa.Column("overdue", sa.Integer(), nullable=False),
        sa.Column("reopened", sa.Integer(), nullable=False),
        sa.Column("repeat", sa.Integer(), nullable=False),
        sa.Column("return_base", sa.Integer(), nullable=False),
        sa.Column("returned", sa.Integer(), nullable=False),
        sa.Column("response_rate", sa.Double(), nullable=True),
        sa.Column("resolution_rate", sa.Double(), nullable=True),
        sa.Column("satisfaction_rate", sa.Double(), nullable=True),
        sa.Column("composite", sa.Double(), nullable=True),
        sa.Column("return_rate", sa.Double(), nullable=True),
        sa.Column("reopen_rate", sa.Double(), nullable=True),
        sa.Column("overdue_rate", sa.Double(), nullable=True),
        sa.Column("repeat_rate", sa.Double(), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("unranked_reason", sa.String(length=200), nullable=True),
        sa.Column(
            "list_mark",
            sa.Enum("red", "black", name="listmark", native_enum=False, length=32),
            nullable=True,
        ),
        sa.Column("prev_rank", sa.Integer(), nullable=True),
        sa.Column("prev_composite", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["ranking_snapshots.id"],
            name=op.f("fk_ranking_rows_snapshot_id_ranking_snapshots"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_ranking_rows_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ranking_rows")),
        sa.UniqueConstraint(
            "snapshot_id",
            "ranking_class",
            "unit_id",
            name=op.f("uq_ranking_rows_snapshot_id_ranking_class_unit_id"),
        ),
    )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("callback_next_at", hotline.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "exempt_kind",
                sa.Enum(
                    "unreasonable",
                    "duplicate",
                    "beyond_policy",
                    "force_majeure",
                    "requester_unreachable",
                    "other",
                    name="exemptionkind",
                    native_enum=False,
                    length=32,
                ),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column("lead_history", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("exempted_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("exempted_at", hotline.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_tickets_exempted_by_id_users"), "users", ["exempted_by_id"], ["id"]
        )
        batch_op.create_index(
            "ix_tickets_exempt_received_at",
            ["received_at"],
            unique=False,
            postgresql_where=sa.text("scoring_exempt"),
            sqlite_where=sa.text("scoring_exempt"),
        )
        batch_op.create_index("ix_tickets_received_at", ["received_at"], unique=False)
        batch_op.create_index(
            "ix_tickets_lead_history_received_at",
            ["received_at"],
            unique=False,
            postgresql_where=sa.text("lead_history"),
            sqlite_where=sa.text("lead_history"),
        )
        batch_op.create_index(
            "ix_tickets_callback_next_at",
            ["callback_next_at"],
            unique=False,
            postgresql_where=sa.text("callback_next_at IS NOT NULL"),
            sqlite_where=sa.text("callback_next_at IS NOT NULL"),
        )
    # Tickets that changed hands or saw a return request before this column existed.
    op.execute(
        "UPDATE tickets SET lead_history = TRUE WHERE id IN ("
        " SELECT ticket_id FROM assignments WHERE role = 'lead' GROUP BY ticket_id"
        " HAVING COUNT(DISTINCT unit_id) > 1 OR COUNT(return_requested_at) > 0)"
    )
    # Who exempted the tickets already exempt, and when: their latest exempt event.
    latest = (
        "(SELECT {column} FROM ticket_events e WHERE e.ticket_id = tickets.id"
        " AND e.action = 'exempt' ORDER BY e.id DESC LIMIT 1)"
    )
    op.execute(
        f"UPDATE tickets SET exempted_by_id = {latest.format(column='actor_id')},"
        f" exempted_at = {latest.format(column='created_at')} WHERE scoring_exempt"
    )
    # Tickets already waiting for their callback join the workbench queue at once.
    op.execute("UPDATE tickets SET callback_next_at = finished_at WHERE status = 'finished'")


def downgrade():
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_tickets_callback_next_at",
            postgresql_where=sa.text("callback_next_at IS NOT NULL"),
            sqlite_where=sa.text("callback_next_at IS NOT NULL"),
        )
        batch_op.drop_index(
            "ix_tickets_lead_history_received_at",
            postgresql_where=sa.text("lead_history"),
            sqlite_where=sa.text("lead_history"),
        )
        batch_op.drop_index("ix_tickets_received_at")
        batch_op.drop_index(
            "ix_tickets_exempt_received_at",
            postgresql_where=sa.text("scoring_exempt"),
            sqlite_where=sa.text("scoring_exempt"),
        )
        batch_op.drop_constraint(batch_op.f("fk_tickets_exempted_by_id_users"), type_="foreignkey")
        batch_op.drop_column("exempted_at")
        batch_op.drop_column("exempted_by_id")
        batch_op.drop_column("lead_history")
        batch_op.drop_column("exempt_kind")
        batch_op.drop_column("callback_next_at")

    op.drop_table("ranking_rows")
    op.drop_table("ranking_snapshots")
