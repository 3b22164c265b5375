"""carriers an operator paused, shared by every gateway process

Revision ID: 0012_carrier_pauses
Revises: 0011_routes
Create Date: 2026-12-02 01:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_carrier_pauses"
down_revision = "0011_routes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "carrier_pauses",
        sa.Column("carrier", sa.String(length=32), nullable=False),
        sa.Column("paused_at", sa.DateTime(), nullable=False),
        sa.Column("paused_by", sa.String(length=64), nullable=False, comment="the operator's username"),
        sa.PrimaryKeyConstraint("carrier", name=op.f("pk_carrier_pauses")),
    )


def downgrade() -> None:
    op.drop_table("carrier_pauses")
