"""messages carry the carrier they are routed to, so each carrier claims its own

Revision ID: 0011_routes
Revises: 0009_reminder_rows
Create Date: 2026-12-02 00:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_routes"
down_revision = "0009_reminder_rows"
branch_labels = None
depends_on = None

_QUEUED = sa.text("status = 'queued'")
_UNROUTED = sa.text("status = 'queued' AND route IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "route",
                sa.String(length=32),
                nullable=True,
                comment="the carrier it is routed to; null until the dispatcher routes it",
            )
        )
        batch_op.drop_index("ix_messages_claim")
        batch_op.create_index(
            "ix_messages_claim",
            ["route", "priority", "not_before", "id"],
            unique=False,
            sqlite_where=_QUEUED,
            postgresql_where=_QUEUED,
        )
        batch_op.create_index(
            "ix_messages_unrouted", ["id"], unique=False, sqlite_where=_UNROUTED, postgresql_where=_UNROUTED
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_unrouted")
        batch_op.drop_index("ix_messages_claim")
        batch_op.create_index(
            "ix_messages_claim",
            ["priority", "not_before", "id"],
            unique=False,
            sqlite_where=_QUEUED,
            postgresql_where=_QUEUED,
        )
        batch_op.drop_column("route")
