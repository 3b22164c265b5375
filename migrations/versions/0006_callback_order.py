"""status callbacks of one message go out in order: a sequence number per message

Revision ID: 0006_callback_order
Revises: 0003
Create Date: 2026-12-02 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_callback_order"
down_revision = "0008_operators"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "sequence",
                sa.Integer(),
                nullable=True,
                comment="1, 2, … per message, in the order its changes happened; null without a message",
            )
        )
        # the next number of a message, and "an earlier one still pending?" for the claim
        batch_op.create_index(
            "ix_callbacks_message_id_sequence_status", ["message_id", "sequence", "status"], unique=False
        )
        # the claim walks the pending ones in its order and stops at its limit
        batch_op.drop_index("ix_callbacks_status_next_attempt_at")
        batch_op.create_index(
            "ix_callbacks_status_next_attempt_at_id", ["status", "next_attempt_at", "id"], unique=False
        )
    # the callbacks already queued, numbered in the order they were written
    op.execute(
        "UPDATE callbacks SET sequence = (SELECT count(*) FROM callbacks AS earlier "
        "WHERE earlier.message_id = callbacks.message_id AND earlier.id <= callbacks.id) "
        "WHERE message_id IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.drop_index("ix_callbacks_status_next_attempt_at_id")
        batch_op.create_index(
            "ix_callbacks_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )
        batch_op.drop_index("ix_callbacks_message_id_sequence_status")
        batch_op.drop_column("sequence")
