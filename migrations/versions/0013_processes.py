"""dispatch processes register and renew a heartbeat; carriers' bind slots are leased to them

``processes``: one row per running dispatch process (its lease token), renewed every second or so;
a row whose heartbeat is stale is a dead process: a live one takes over its leased messages and
its bind slots. ``bind_slots``: one row per carrier bind (``slot`` from 0 to binds - 1), held by at
most one process, so the binds open at an SMSC never exceed the carrier's ``binds``.

Revision ID: 0013_processes
Revises: 0011_routes
Create Date: 2026-12-02 01:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_processes"
down_revision = "0011_routes"
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


def downgrade() -> None:
    op.drop_table("bind_slots")
    op.drop_table("processes")
