"""ticket_events is append-only: the database refuses UPDATE and DELETE

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

MESSAGE = "ticket_events is append-only"


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION ticket_events_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '{MESSAGE}';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            """
            CREATE TRIGGER ticket_events_append_only
            BEFORE UPDATE OR DELETE ON ticket_events
            FOR EACH ROW EXECUTE FUNCTION ticket_events_append_only()
            """
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"""
                CREATE TRIGGER ticket_events_no_{action.lower()}
                BEFORE {action} ON ticket_events
                BEGIN
                    SELECT RAISE(ABORT, '{MESSAGE}');
                END
                """
            )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER ticket_events_append_only ON ticket_events")
        op.execute("DROP FUNCTION ticket_events_append_only()")
    else:
        op.execute("DROP TRIGGER ticket_events_no_update")
        op.execute("DROP TRIGGER ticket_events_no_delete")
