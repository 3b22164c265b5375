"""seen signatures: a signed request is accepted once

Revision ID: 0004_seen_signatures
Revises: 0003
Create Date: 2026-12-02 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_seen_signatures"
down_revision = "0007_crm_adapters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seen_signatures",
        sa.Column(
            "t",
            sa.BigInteger(),
            autoincrement=False,
            nullable=False,
            comment="the signature's t, unix seconds",
        ),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column(
            "digest", sa.LargeBinary(length=32), nullable=False, comment="SHA-256 of the signed request"
        ),
        sa.PrimaryKeyConstraint("t", "client_id", "digest", name=op.f("pk_seen_signatures")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("seen_signatures")
