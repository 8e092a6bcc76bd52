"""operations: shared blobs, model versions, retention runs, request ids

The blobs and model tables let several web hosts serve the same photos and follow the same
classifier model. ticket_events stays append-only, except that the retention job
(个人信息保护法) may redact an event's texts inside the transaction of a retention run that
is under way: on PostgreSQL a run row of the current transaction, unfinished and not a dry
run; on SQLite (one writer at a time) such a row visible to the writer.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 15:02:41.106559
"""

import sqlalchemy as sa
from alembic import op

import hotline.db

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

MESSAGE = "ticket_events is append-only"


def upgrade():
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_blobs")),
    )
    op.create_table(
        "model_versions",
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("meta", hotline.db.JSONType, nullable=False),
        sa.Column("created_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_model_versions_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["sha256"], ["blobs.sha256"], name=op.f("fk_model_versions_sha256_blobs")
        ),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_model_versions")),
    )
    op.create_table(
        "heartbeats",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("beat_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lag_seconds", sa.Float(), nullable=False),
        sa.Column("detail", hotline.db.JSONType, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_heartbeats")),
    )
    op.create_table(
        "retention_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("cutoff", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("tickets", sa.Integer(), nullable=False),
        sa.Column("counts", hotline.db.JSONType, nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_retention_runs_actor_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_runs")),
    )
    op.create_table(
        "model_activations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("previous", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("activated_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("activated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["activated_by_id"],
            ["users.id"],
            name=op.f("fk_model_activations_activated_by_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["version"],
            ["model_versions.version"],
            name=op.f("fk_model_activations_version_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_activations")),
    )
    with op.batch_alter_table("model_activations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_model_activations_version"), ["version"], unique=False)

    with op.batch_alter_table("incoming_calls", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_incoming_calls_ticket_id"), ["ticket_id"], unique=False
        )

    op.add_column("audit_log", sa.Column("request_id", sa.String(length=64), nullable=True))

    op.add_column("ticket_events", sa.Column("request_id", sa.String(length=64), nullable=True))

    op.add_column(
        "tickets", sa.Column("redacted_at", hotline.db.UTCDateTime(timezone=True), nullable=True)
    )

    _append_only(redaction=True)


def _append_only(*, redaction):
    """(Re)create ticket_events' triggers: refuse UPDATE and DELETE, with or without the
    retention run's exception for UPDATE."""
    if op.get_bind().dialect.name == "postgresql":
        allow = (
            """
                IF TG_OP = 'UPDATE' AND EXISTS (
                    SELECT 1 FROM retention_runs
                    WHERE finished_at IS NULL AND NOT dry_run
                      AND xmin::text::bigint = pg_current_xact_id()::text::bigint % 4294967296
                ) THEN
                    RETURN NEW;
                END IF;"""
            if redaction
            else ""
        )
        op.execute(
            f"""
            CREATE OR REPLACE FUNCTION ticket_events_append_only() RETURNS trigger AS $$
            BEGIN{allow}
                RAISE EXCEPTION '{MESSAGE}';
            END;
            $$ LANGUAGE plpgsql
            """
        )
    else:
        # Both, from scratch: a batch operation on ticket_events (the downgrade's column
        # drop) recreates the table without its triggers.
        op.execute("DROP TRIGGER IF EXISTS ticket_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS ticket_events_no_delete")
        op.execute(
            f"""
            CREATE TRIGGER ticket_events_no_delete
            BEFORE DELETE ON ticket_events
            BEGIN
                SELECT RAISE(ABORT, '{MESSAGE}');
            END
            """
        )
        when = (
            "WHEN NOT EXISTS (SELECT 1 FROM retention_runs "
            "WHERE finished_at IS NULL AND NOT dry_run)"
            if redaction
            else ""
        )
        op.execute(
            f"""
            CREATE TRIGGER ticket_events_no_update
            BEFORE UPDATE ON ticket_events {when}
            BEGIN
                SELECT RAISE(ABORT, '{MESSAGE}');
            END
            """
        )


def downgrade():
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("redacted_at")

    with op.batch_alter_table("ticket_events", schema=None) as batch_op:
        batch_op.drop_column("request_id")

    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_column("request_id")

    with op.batch_alter_table("incoming_calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incoming_calls_ticket_id"))

    with op.batch_alter_table("model_activations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_activations_version"))

    op.drop_table("model_activations")
    op.drop_table("retention_runs")
    op.drop_table("heartbeats")
    op.drop_table("model_versions")
    op.drop_table("blobs")
    _append_only(redaction=False)
