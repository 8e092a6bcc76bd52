"""supervision: reply review rules, summonses, joint meetings, referrals, inspections, split tickets

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 11:50:48.867395
"""

import sqlalchemy as sa
from alembic import op

import hotline.db

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        # An event keeps the operation's whole text (a reply of up to 5,000 characters);
        # SQLite never enforced the old length, so only PostgreSQL needs the change.
        op.alter_column(
            "ticket_events", "reason", type_=sa.Text(), existing_type=sa.String(length=1000)
        )
    op.create_table(
        "joint_meetings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("scheduled_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("place", sa.String(length=200), nullable=True),
        sa.Column("chair", sa.String(length=100), nullable=True),
        sa.Column("attendees", sa.Text(), nullable=True),
        sa.Column(
            "state",
            sa.Enum("planned", "held", name="meetingstate", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("minutes", sa.Text(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("held_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("held_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_joint_meetings_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["held_by_id"], ["users.id"], name=op.f("fk_joint_meetings_held_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_joint_meetings")),
    )
    with op.batch_alter_table("joint_meetings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_joint_meetings_scheduled_at"), ["scheduled_at"], unique=False
        )

    op.create_table(
        "referrals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("shirking", "falsification", name="referralkind", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("evidence", hotline.db.JSONType, nullable=False),
        sa.Column("ticket_ids", hotline.db.JSONType, nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("referred_by_id", sa.Integer(), nullable=False),
        sa.Column("referred_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["referred_by_id"], ["users.id"], name=op.f("fk_referrals_referred_by_id_users")
        ),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_referrals_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
        sa.UniqueConstraint(
            "month", "unit_id", "kind", name=op.f("uq_referrals_month_unit_id_kind")
        ),
    )
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referrals_month"), ["month"], unique=False)

    op.create_table(
        "review_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column(
            "mode",
            sa.Enum(
                "all", "sample", "flagged", "none", name="reviewmode", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("sample_percent", sa.Integer(), nullable=True),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"], ["categories.id"], name=op.f("fk_review_rules_category_id_categories")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"], ["users.id"], name=op.f("fk_review_rules_updated_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_rules")),
        sa.UniqueConstraint("category_id", name=op.f("uq_review_rules_category_id")),
    )
    op.create_table(
        "inspections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sampled_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "state",
            sa.Enum("pending", "done", name="inspectionstate", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("inspector_id", sa.Integer(), nullable=True),
        sa.Column("inspected_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("checks", hotline.db.JSONType, nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["inspector_id"], ["users.id"], name=op.f("fk_inspections_inspector_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["operator_id"], ["users.id"], name=op.f("fk_inspections_operator_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_inspections_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspections")),
        sa.UniqueConstraint("ticket_id", name=op.f("uq_inspections_ticket_id")),
    )
    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.create_index("ix_inspections_operator_day", ["operator_id", "day"], unique=False)
        batch_op.create_index(batch_op.f("ix_inspections_state"), ["state"], unique=False)

    op.create_table(
        "summonses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("summoning_unit_id", sa.Integer(), nullable=False),
        sa.Column("summoned_by_id", sa.Integer(), nullable=False),
        sa.Column("summoned_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("report_due", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reported_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reported_by_id", sa.Integer(), nullable=True),
        sa.Column("opinion_due", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("opinion_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("opinion_by_id", sa.Integer(), nullable=True),
        sa.Column("opinion", sa.Text(), nullable=True),
        sa.Column("cancelled_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.String(length=500), nullable=True),
        sa.Column("next_due_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("timers_checked_until", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("escalation_level", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(
            ["opinion_by_id"], ["users.id"], name=op.f("fk_summonses_opinion_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["reported_by_id"], ["users.id"], name=op.f("fk_summonses_reported_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["summoned_by_id"], ["users.id"], name=op.f("fk_summonses_summoned_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["summoning_unit_id"], ["units.id"], name=op.f("fk_summonses_summoning_unit_id_units")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_summonses_ticket_id_tickets")
        ),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_summonses_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_summonses")),
    )
    with op.batch_alter_table("summonses", schema=None) as batch_op:
        batch_op.create_index(
            "ix_summonses_next_due_at",
            ["next_due_at"],
            unique=False,
            postgresql_where=sa.text("next_due_at IS NOT NULL"),
            sqlite_where=sa.text("next_due_at IS NOT NULL"),
        )
        batch_op.create_index(batch_op.f("ix_summonses_ticket_id"), ["ticket_id"], unique=False)
        batch_op.create_index(
            "ix_summonses_unit_summoned_at", ["unit_id", "summoned_at"], unique=False
        )
        batch_op.create_index(
            "uq_summonses_open",
            ["ticket_id", "unit_id"],
            unique=True,
            postgresql_where=sa.text("opinion_at IS NULL AND cancelled_at IS NULL"),
            sqlite_where=sa.text("opinion_at IS NULL AND cancelled_at IS NULL"),
        )

    op.create_table(
        "meeting_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("reasons", hotline.db.JSONType, nullable=False),
        sa.Column("added_by_id", sa.Integer(), nullable=False),
        sa.Column("added_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decision_unit_id", sa.Integer(), nullable=True),
        sa.Column("decision_due", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_notes", sa.Text(), nullable=True),
        sa.Column("decided_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["added_by_id"], ["users.id"], name=op.f("fk_meeting_items_added_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name=op.f("fk_meeting_items_decided_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["decision_unit_id"], ["units.id"], name=op.f("fk_meeting_items_decision_unit_id_units")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["ticket_events.id"], name=op.f("fk_meeting_items_event_id_ticket_events")
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["joint_meetings.id"],
            name=op.f("fk_meeting_items_meeting_id_joint_meetings"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_meeting_items_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_items")),
        sa.UniqueConstraint(
            "meeting_id", "ticket_id", name=op.f("uq_meeting_items_meeting_id_ticket_id")
        ),
    )
    with op.batch_alter_table("meeting_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_meeting_items_ticket_id"), ["ticket_id"], unique=False)

    op.create_table(
        "summons_firings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("summons_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "sign_warning",
                "sign_overdue",
                "contact_warning",
                "contact_overdue",
                "finish_warning",
                "finish_overdue",
                "reminder",
                "escalation",
                "callback_task",
                "callback_overdue",
                name="timerkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("due_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("fired_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lateness_seconds", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["summons_id"], ["summonses.id"], name=op.f("fk_summons_firings_summons_id_summonses")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_summons_firings")),
        sa.UniqueConstraint(
            "summons_id", "kind", "due_at", name=op.f("uq_summons_firings_summons_id_kind_due_at")
        ),
    )
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("report", sa.Text(), nullable=True))

    with op.batch_alter_table("ranking_rows", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("review_returned", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(
            sa.Column("summoned", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(
            sa.Column("summons_on_time", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(sa.Column("review_return_rate", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("summons_on_time_rate", sa.Double(), nullable=True))

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_tickets_parent_id"), ["parent_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_tickets_parent_id_tickets"), "tickets", ["parent_id"], ["id"]
        )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "ticket_events",
            "reason",
            type_=sa.String(length=1000),
            existing_type=sa.Text(),
            postgresql_using="left(reason, 1000)",
        )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_tickets_parent_id_tickets"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_tickets_parent_id"))
        batch_op.drop_column("parent_id")

    with op.batch_alter_table("ranking_rows", schema=None) as batch_op:
        batch_op.drop_column("summons_on_time_rate")
        batch_op.drop_column("review_return_rate")
        batch_op.drop_column("summons_on_time")
        batch_op.drop_column("summoned")
        batch_op.drop_column("review_returned")

    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_column("report")

    op.drop_table("summons_firings")
    with op.batch_alter_table("meeting_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_items_ticket_id"))

    op.drop_table("meeting_items")
    with op.batch_alter_table("summonses", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_summonses_open",
            postgresql_where=sa.text("opinion_at IS NULL AND cancelled_at IS NULL"),
            sqlite_where=sa.text("opinion_at IS NULL AND cancelled_at IS NULL"),
        )
        batch_op.drop_index("ix_summonses_unit_summoned_at")
        batch_op.drop_index(batch_op.f("ix_summonses_ticket_id"))
        batch_op.drop_index(
            "ix_summonses_next_due_at",
            postgresql_where=sa.text("next_due_at IS NOT NULL"),
            sqlite_where=sa.text("next_due_at IS NOT NULL"),
        )

    op.drop_table("summonses")
    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inspections_state"))
        batch_op.drop_index("ix_inspections_operator_day")

    op.drop_table("inspections")
    op.drop_table("review_rules")
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referrals_month"))

    op.drop_table("referrals")
    with op.batch_alter_table("joint_meetings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_joint_meetings_scheduled_at"))

    op.drop_table("joint_meetings")
