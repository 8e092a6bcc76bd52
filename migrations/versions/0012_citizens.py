"""citizens' own channels: one-time codes, citizen sessions, the notification outbox,
Open311 keys, the callback's channel (phone or online rating), a ticket's channel client

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

import hotline.db

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "citizen_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("created_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("client_ip", sa.String(length=45), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_citizen_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_citizen_sessions_token_hash")),
    )
    with op.batch_alter_table("citizen_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_citizen_sessions_phone"), ["phone"], unique=False)

    op.create_table(
        "verification_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("used_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("client_ip", sa.String(length=45), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_codes")),
    )
    with op.batch_alter_table("verification_codes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_verification_codes_client_ip_created_at", ["client_ip", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_verification_codes_phone_created_at", ["phone", "created_at"], unique=False
        )

    op.create_table(
        "open311_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("key_prefix", sa.String(length=12), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("created_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("revoked_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_open311_keys_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_open311_keys_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_open311_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_open311_keys_key_hash")),
        sa.UniqueConstraint("name", name=op.f("uq_open311_keys_name")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_key", sa.String(length=160), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=500), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("notification_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.String(length=2000), nullable=False),
        sa.Column("payload", hotline.db.JSONType, nullable=False),
        sa.Column(
            "state",
            sa.Enum("pending", "sent", "failed", name="outboxstate", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("created_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_outbox_notification_id_notifications"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_outbox_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("delivery_key", name=op.f("uq_outbox_delivery_key")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_pending_next_attempt_at",
            ["next_attempt_at"],
            unique=False,
            postgresql_where=sa.text("state = 'pending'"),
            sqlite_where=sa.text("state = 'pending'"),
        )
        batch_op.create_index("ix_outbox_state_created_at", ["state", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_ticket_id"), ["ticket_id"], unique=False)

    with op.batch_alter_table("callback_attempts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "channel",
                sa.Enum("phone", "online", name="callbackchannel", native_enum=False, length=32),
                server_default="phone",
                nullable=False,
            )
        )

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel_client", sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("channel_client")

    with op.batch_alter_table("callback_attempts", schema=None) as batch_op:
        batch_op.drop_column("channel")

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_ticket_id"))
        batch_op.drop_index("ix_outbox_state_created_at")
        batch_op.drop_index(
            "ix_outbox_pending_next_attempt_at",
            postgresql_where=sa.text("state = 'pending'"),
            sqlite_where=sa.text("state = 'pending'"),
        )

    op.drop_table("outbox")
    op.drop_table("open311_keys")
    with op.batch_alter_table("verification_codes", schema=None) as batch_op:
        batch_op.drop_index("ix_verification_codes_phone_created_at")
        batch_op.drop_index("ix_verification_codes_client_ip_created_at")

    op.drop_table("verification_codes")
    with op.batch_alter_table("citizen_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_citizen_sessions_phone"))

    op.drop_table("citizen_sessions")
