"""ticket numbers take their serial from a sequence on PostgreSQL

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    # SQLite has no sequences; there the serial is the ticket id (see dispatch.operations).
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE ticket_number_seq")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE ticket_number_seq")
