"""dispatch processes register and renew a heartbeat; carriers' bind slots are leased to them

``processes``: one row per running dispatch process (its lease token), renewed every second or so;
a row whose heartbeat is stale is a dead process: a live one takes over its leased messages and
its bind slots. ``bind_slots``: one row per carrier bind (``slot`` from 0 to binds - 1), held by at
most one process, so the binds open at an SMSC never exceed the carrier's ``binds``.
``mo_parts``: the parts of citizens' long messages until the last one arrives, whichever process's
bind each came on.

Revision ID: 0013_processes
Revises: 0012_carrier_pauses
Create Date: 2026-12-02 01:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_processes"
down_revision = "0012_carrier_pauses"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "processes",
        sa.Column("id", sa.String(length=64), nullable=False, comment="the lease token of its messages"),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processes")),
    )
    op.create_table(
        "bind_slots",
        sa.Column("carrier", sa.String(length=32), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True, comment="processes.id; null: free"),
        sa.Column("since", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("carrier", "slot", name=op.f("pk_bind_slots")),
    )


    op.create_table(
        "mo_parts",
        sa.Column("carrier", sa.String(length=32), nullable=False),
        sa.Column("sender", sa.String(length=32), nullable=False),
        sa.Column("destination", sa.String(length=32), nullable=False),
        sa.Column("reference", sa.Integer(), nullable=False),
        sa.Column("total", sa.SmallInteger(), nullable=False),
        sa.Column("seq", sa.SmallInteger(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "carrier", "sender", "destination", "reference", "total", "seq", name=op.f("pk_mo_parts")
        ),
    )
    with op.batch_alter_table("mo_parts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mo_parts_received_at"), ["received_at"], unique=False)


def downgrade() -> None:
    op.drop_table("mo_parts")
    op.drop_table("bind_slots")
    op.drop_table("processes")
