"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 15:21:31.851933
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hotline.db

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "areas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=15), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "level",
            sa.Enum(
                "district",
                "street",
                "community",
                "grid",
                name="arealevel",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("is_town", sa.Boolean(), nullable=False),
        sa.Column(
            "aliases",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("center_lng", sa.Double(), nullable=True),
        sa.Column("center_lat", sa.Double(), nullable=True),
        sa.Column(
            "polygon",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(["parent_id"], ["areas.id"], name=op.f("fk_areas_parent_id_areas")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_areas")),
        sa.UniqueConstraint("code", name=op.f("uq_areas_code")),
    )
    with op.batch_alter_table("areas", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_areas_parent_id"), ["parent_id"], unique=False)

    op.create_table(
        "categories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("utility", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["categories.id"], name=op.f("fk_categories_parent_id_categories")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_categories")),
        sa.UniqueConstraint("code", name=op.f("uq_categories_code")),
    )
    with op.batch_alter_table("categories", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_categories_parent_id"), ["parent_id"], unique=False)

    op.create_table(
        "units",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "hotline_centre",
                "city_department",
                "district_government",
                "street_office",
                "utility",
                name="unitkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("always_on", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_units")),
        sa.UniqueConstraint("code", name=op.f("uq_units_code")),
    )
    op.create_table(
        "routing_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=True),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["area_id"], ["areas.id"], name=op.f("fk_routing_rules_area_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["category_id"], ["categories.id"], name=op.f("fk_routing_rules_category_id_categories")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_routing_rules_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_rules")),
        sa.UniqueConstraint(
            "category_id", "area_id", name=op.f("uq_routing_rules_category_id_area_id")
        ),
    )
    op.create_table(
        "sla_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column(
            "request_type",
            sa.Enum(
                "consult",
                "help",
                "complaint",
                "report",
                "suggestion",
                "praise",
                name="requesttype",
                native_enum=False,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column(
            "urgency",
            sa.Enum("emergency", "urgent", "normal", name="urgency", native_enum=False, length=32),
            nullable=True,
        ),
        sa.Column("sign_amount", sa.Integer(), nullable=False),
        sa.Column(
            "sign_unit",
            sa.Enum(
                "minutes", "hours", "working_days", name="limitunit", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("contact_amount", sa.Integer(), nullable=False),
        sa.Column(
            "contact_unit",
            sa.Enum(
                "minutes", "hours", "working_days", name="limitunit", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("finish_amount", sa.Integer(), nullable=False),
        sa.Column(
            "finish_unit",
            sa.Enum(
                "minutes", "hours", "working_days", name="limitunit", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("callback_amount", sa.Integer(), nullable=False),
        sa.Column(
            "callback_unit",
            sa.Enum(
                "minutes", "hours", "working_days", name="limitunit", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"], ["categories.id"], name=op.f("fk_sla_policies_category_id_categories")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_policies")),
    )
    op.create_table(
        "unit_areas",
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["area_id"], ["areas.id"], name=op.f("fk_unit_areas_area_id_areas"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_unit_areas_unit_id_units"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("unit_id", "area_id", name=op.f("pk_unit_areas")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "operator",
                "dispatcher",
                "unit_handler",
                "grid_worker",
                "callback_agent",
                "supervisor",
                "leader",
                "admin",
                name="role",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("district_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role <> 'unit_handler' OR unit_id IS NOT NULL",
            name=op.f("ck_users_unit_handler_has_unit"),
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["areas.id"], name=op.f("fk_users_district_id_areas")
        ),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_users_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("created_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=100), nullable=True),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_audit_log_actor_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_created_at"), ["created_at"], unique=False)

    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=True),
        sa.Column(
            "channel",
            sa.Enum(
                "phone",
                "web",
                "wechat",
                "app",
                "mailbox",
                "grid",
                name="channel",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "request_type",
            sa.Enum(
                "consult",
                "help",
                "complaint",
                "report",
                "suggestion",
                "praise",
                name="requesttype",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column(
            "urgency",
            sa.Enum("emergency", "urgent", "normal", name="urgency", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("requester_name", sa.String(length=64), nullable=True),
        sa.Column("requester_phone", sa.String(length=20), nullable=True),
        sa.Column("address", sa.String(length=300), nullable=True),
        sa.Column("area_id", sa.Integer(), nullable=True),
        sa.Column("lng", sa.Double(), nullable=True),
        sa.Column("lat", sa.Double(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "received",
                "resolved_at_intake",
                "transferred",
                "merged",
                "dispatched",
                "signed",
                "contacted",
                "return_requested",
                "termination_requested",
                "finished",
                "called_back",
                "reopened",
                "terminated",
                "closed",
                name="ticketstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("lead_unit_id", sa.Integer(), nullable=True),
        sa.Column("received_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("clock_started_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sign_due", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("contact_due", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finish_due", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("callback_due", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sla_policy_id", sa.Integer(), nullable=True),
        sa.Column("signed_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("contacted_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column(
            "intake_outcome",
            sa.Enum(
                "answered",
                "already_handled",
                "secret_or_privacy",
                "no_competent_unit",
                "unlawful_request",
                name="intakeoutcome",
                native_enum=False,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column(
            "transfer_target",
            sa.Enum(
                "110",
                "119",
                "120",
                "122",
                "litigation",
                "arbitration",
                "discipline",
                "administrative_review",
                "disclosure",
                "petition",
                name="transfertarget",
                native_enum=False,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("merged_into_id", sa.Integer(), nullable=True),
        sa.Column(
            "callback_solved",
            sa.Enum("solved", "partly", "unsolved", name="solved", native_enum=False, length=32),
            nullable=True,
        ),
        sa.Column(
            "callback_satisfaction",
            sa.Enum(
                "satisfied",
                "basically",
                "dissatisfied",
                name="satisfaction",
                native_enum=False,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("callback_comment", sa.Text(), nullable=True),
        sa.Column("callback_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reopen_count", sa.Integer(), nullable=False),
        sa.Column("scoring_exempt", sa.Boolean(), nullable=False),
        sa.Column("exempt_reason", sa.String(length=500), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=100), nullable=True),
        sa.Column("request_digest", sa.String(length=64), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["area_id"], ["areas.id"], name=op.f("fk_tickets_area_id_areas")),
        sa.ForeignKeyConstraint(
            ["category_id"], ["categories.id"], name=op.f("fk_tickets_category_id_categories")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_tickets_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["lead_unit_id"], ["units.id"], name=op.f("fk_tickets_lead_unit_id_units")
        ),
        sa.ForeignKeyConstraint(
            ["merged_into_id"], ["tickets.id"], name=op.f("fk_tickets_merged_into_id_tickets")
        ),
        sa.ForeignKeyConstraint(
            ["sla_policy_id"],
            ["sla_policies.id"],
            name=op.f("fk_tickets_sla_policy_id_sla_policies"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
        sa.UniqueConstraint(
            "created_by_id",
            "idempotency_key",
            name=op.f("uq_tickets_created_by_id_idempotency_key"),
        ),
        sa.UniqueConstraint("number", name=op.f("uq_tickets_number")),
    )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tickets_area_id"), ["area_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tickets_category_id"), ["category_id"], unique=False)
        batch_op.create_index(
            "ix_tickets_lead_unit_status", ["lead_unit_id", "status"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_tickets_merged_into_id"), ["merged_into_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_tickets_requester_phone"), ["requester_phone"], unique=False
        )
        batch_op.create_index(
            "ix_tickets_status_received_at", ["status", "received_at"], unique=False
        )

    op.create_table(
        "user_grids",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["area_id"], ["areas.id"], name=op.f("fk_user_grids_area_id_areas"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_grids_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "area_id", name=op.f("pk_user_grids")),
    )
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column(
            "role",
            sa.Enum("lead", "assist", "copy", name="assignmentrole", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("designated", sa.Boolean(), nullable=False),
        sa.Column("dispatched_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("dispatched_by_id", sa.Integer(), nullable=False),
        sa.Column("signed_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("signed_by_id", sa.Integer(), nullable=True),
        sa.Column("contacted_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "return_reason",
            sa.Enum(
                "wrong_territory",
                "ownership_unclear",
                "overlapping_duties",
                "not_our_duty",
                name="returnreason",
                native_enum=False,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("return_note", sa.String(length=1000), nullable=True),
        sa.Column("return_requested_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "return_status",
            sa.Enum(
                "pending",
                "approved",
                "rejected",
                name="decisionstatus",
                native_enum=False,
                length=32,
            ),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["dispatched_by_id"], ["users.id"], name=op.f("fk_assignments_dispatched_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["signed_by_id"], ["users.id"], name=op.f("fk_assignments_signed_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_assignments_ticket_id_tickets")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_assignments_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
    )
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assignments_ticket_id"), ["ticket_id"], unique=False)
        batch_op.create_index("ix_assignments_unit_active", ["unit_id", "active"], unique=False)

    op.create_table(
        "callback_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("attempted_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum(
                "answered",
                "no_answer",
                "refused",
                "wrong_number",
                name="callbackoutcome",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "solved",
            sa.Enum("solved", "partly", "unsolved", name="solved", native_enum=False, length=32),
            nullable=True,
        ),
        sa.Column(
            "satisfaction",
            sa.Enum(
                "satisfied",
                "basically",
                "dissatisfied",
                name="satisfaction",
                native_enum=False,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("comment", sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["users.id"], name=op.f("fk_callback_attempts_agent_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_callback_attempts_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_attempts")),
    )
    with op.batch_alter_table("callback_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_callback_attempts_ticket_id"), ["ticket_id"], unique=False
        )

    op.create_table(
        "extensions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=False),
        sa.Column("requested_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "approved",
                "rejected",
                name="decisionstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(length=1000), nullable=True),
        sa.Column("old_finish_due", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("new_finish_due", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name=op.f("fk_extensions_decided_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"], ["users.id"], name=op.f("fk_extensions_requested_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_extensions_ticket_id_tickets")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_extensions_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_extensions")),
    )
    with op.batch_alter_table("extensions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_extensions_ticket_id"), ["ticket_id"], unique=False)

    op.create_table(
        "ticket_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_role", sa.String(length=32), nullable=True),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("from_status", sa.String(length=32), nullable=True),
        sa.Column("to_status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=True),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_ticket_events_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_events_ticket_id_tickets")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_ticket_events_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_events")),
    )
    with op.batch_alter_table("ticket_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ticket_events_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_ticket_events_ticket_id"), ["ticket_id"], unique=False)


def downgrade():
    with op.batch_alter_table("ticket_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_events_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_ticket_events_created_at"))

    op.drop_table("ticket_events")
    with op.batch_alter_table("extensions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_extensions_ticket_id"))

    op.drop_table("extensions")
    with op.batch_alter_table("callback_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_callback_attempts_ticket_id"))

    op.drop_table("callback_attempts")
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_assignments_unit_active")
        batch_op.drop_index(batch_op.f("ix_assignments_ticket_id"))

    op.drop_table("assignments")
    op.drop_table("user_grids")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_status_received_at")
        batch_op.drop_index(batch_op.f("ix_tickets_requester_phone"))
        batch_op.drop_index(batch_op.f("ix_tickets_merged_into_id"))
        batch_op.drop_index("ix_tickets_lead_unit_status")
        batch_op.drop_index(batch_op.f("ix_tickets_category_id"))
        batch_op.drop_index(batch_op.f("ix_tickets_area_id"))

    op.drop_table("tickets")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_created_at"))

    op.drop_table("audit_log")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_user_id"))

    op.drop_table("api_tokens")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_unit_id"))

    op.drop_table("users")
    op.drop_table("unit_areas")
    op.drop_table("sla_policies")
    op.drop_table("routing_rules")
    op.drop_table("units")
    with op.batch_alter_table("categories", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_categories_parent_id"))

    op.drop_table("categories")
    with op.batch_alter_table("areas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_areas_parent_id"))

    op.drop_table("areas")
