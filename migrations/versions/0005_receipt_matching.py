"""receipts matched per carrier among open parts; attempts kept across an operator's retry

Revision ID: 0005_receipt_matching
Revises: 0003
Create Date: 2026-12-08 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_receipt_matching"
down_revision = "0004_seen_signatures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message_parts", schema=None) as batch_op:
        batch_op.drop_index("ix_message_parts_smsc_message_id")
        batch_op.create_index(
            "ix_message_parts_smsc_message_id_carrier", ["smsc_message_id", "carrier"], unique=False
        )
        batch_op.create_index(
            "ix_message_parts_open",
            ["smsc_message_id", "carrier"],
            unique=False,
            sqlite_where=sa.text("status = 'submitted'"),
            postgresql_where=sa.text("status = 'submitted'"),
        )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "attempts_at_retry",
                sa.SmallInteger(),
                nullable=False,
                server_default="0",
                comment="attempts when an operator last retried it: max_attempts counts from there",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("attempts_at_retry")
    with op.batch_alter_table("message_parts", schema=None) as batch_op:
        batch_op.drop_index("ix_message_parts_open")
        batch_op.drop_index("ix_message_parts_smsc_message_id_carrier")
        batch_op.create_index("ix_message_parts_smsc_message_id", ["smsc_message_id"], unique=False)
