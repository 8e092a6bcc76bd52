"""administration: settings, reference versions, users who must change their password, unit
duty phones, dated routing rules, the knowledge base's review workflow

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

import hotline.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ARTICLE_STATES = ("draft", "in_review", "published", "expired")


def upgrade():
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", hotline.db.JSONType, nullable=False),
        sa.Column("updated_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by_id"], ["users.id"], name=op.f("fk_settings_updated_by_id_users")
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings")),
    )
    op.create_table(
        "reference_versions",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_reference_versions")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch_op.add_column(sa.Column("phone", sa.String(length=20), nullable=True))

    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("phones", hotline.db.JSONType, nullable=False, server_default="[]")
        )

    with op.batch_alter_table("routing_rules", schema=None) as batch_op:
        batch_op.drop_constraint("uq_routing_rules_category_id_area_id", type_="unique")
        batch_op.add_column(sa.Column("valid_from", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("valid_to", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("note", sa.String(length=300), nullable=True))
        batch_op.add_column(
            sa.Column("updated_at", hotline.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index("ix_routing_rules_category_id_area_id", ["category_id", "area_id"])

    with op.batch_alter_table("knowledge_articles", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "state",
                sa.Enum(*ARTICLE_STATES, name="articlestate", native_enum=False, length=32),
                nullable=False,
                server_default="published",
            )
        )
        batch_op.add_column(sa.Column("valid_until", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("proposed_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("source_ticket_number", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("reviewed_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("reviewed_at", hotline.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("hit_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("review_reminded_at", hotline.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_knowledge_articles_proposed_by_id_users"),
            "users",
            ["proposed_by_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_knowledge_articles_reviewed_by_id_users"),
            "users",
            ["reviewed_by_id"],
            ["id"],
        )
        batch_op.create_index(batch_op.f("ix_knowledge_articles_state"), ["state"])
    op.execute("UPDATE knowledge_articles SET state = 'expired' WHERE NOT active")
    with op.batch_alter_table("knowledge_articles", schema=None) as batch_op:
        batch_op.drop_column("active")

    # The audit page filters by who acted.
    op.create_index("ix_audit_log_actor_id_created_at", "audit_log", ["actor_id", "created_at"])


def downgrade():
    op.drop_index("ix_audit_log_actor_id_created_at", table_name="audit_log")
    with op.batch_alter_table("knowledge_articles", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    op.execute("UPDATE knowledge_articles SET active = (state = 'published')")
    with op.batch_alter_table("knowledge_articles", schema=None) as batch_op:
        batch_op.alter_column("active", server_default=None)
        batch_op.drop_index(batch_op.f("ix_knowledge_articles_state"))
        batch_op.drop_constraint(
            batch_op.f("fk_knowledge_articles_reviewed_by_id_users"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_knowledge_articles_proposed_by_id_users"), type_="foreignkey"
        )
        for column in (
            "review_reminded_at",
            "hit_count",
            "reviewed_at",
            "reviewed_by_id",
            "source_ticket_number",
            "proposed_by_id",
            "valid_until",
            "state",
        ):
            batch_op.drop_column(column)

    # Dated rules cannot go back under a one-rule-per-pair constraint: keep each pair's
    # newest rule.
    op.execute(
        "DELETE FROM routing_rules WHERE id NOT IN "
        "(SELECT max(id) FROM routing_rules GROUP BY category_id, area_id)"
    )
    with op.batch_alter_table("routing_rules", schema=None) as batch_op:
        batch_op.drop_index("ix_routing_rules_category_id_area_id")
        for column in ("updated_at", "note", "valid_to", "valid_from"):
            batch_op.drop_column(column)
        batch_op.create_unique_constraint(
            "uq_routing_rules_category_id_area_id", ["category_id", "area_id"]
        )

    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.drop_column("phones")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("phone")
        batch_op.drop_column("must_change_password")
    op.drop_table("reference_versions")
    op.drop_table("settings")
