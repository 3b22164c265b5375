"""CRM adapters: their positions, the requests they follow, a phone directory

Revision ID: 0007_crm_adapters
Revises: 0003
Create Date: 2026-12-08 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_crm_adapters"
down_revision = "0006_callback_order"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crm_adapter_state",
        sa.Column("adapter", sa.String(length=64), nullable=False, comment="the adapter's name"),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column(
            "cursor", sa.JSON(), nullable=False, comment="the adapter's position, e.g. created_through"
        ),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column(
            "failures", sa.Integer(), server_default="0", nullable=False, comment="cycles failed in a row"
        ),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.Column("last_success_at", sa.DateTime(), nullable=True),
        sa.Column(
            "clock_offset_seconds",
            sa.Float(),
            nullable=True,
            comment="the CRM's clock minus ours (its Date header)",
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("adapter", name=op.f("pk_crm_adapter_state")),
    )
    op.create_table(
        "crm_tracked_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("adapter", sa.String(length=64), nullable=False),
        sa.Column(
            "request_id",
            sa.String(length=128),
            nullable=False,
            comment="the CRM's id (Open311 service_request_id)",
        ),
        sa.Column("folio", sa.String(length=64), nullable=False),
        sa.Column("phase", sa.String(length=8), nullable=False, comment="open, resolved or closed"),
        sa.Column("state", sa.String(length=64), nullable=False, comment="the CRM's status word, lower case"),
        sa.Column("status_notes", sa.Text(), nullable=True),
        sa.Column("agency", sa.String(length=200), nullable=True),
        sa.Column("expected", sa.String(length=32), nullable=True, comment="expected_datetime, UTC ISO"),
        sa.Column("updated", sa.String(length=32), nullable=True, comment="updated_datetime, UTC ISO"),
        sa.Column("service_name", sa.String(length=120), nullable=True),
        sa.Column("requested_at", sa.DateTime(), nullable=True),
        sa.Column(
            "announced",
            sa.Boolean(),
            server_default=sa.text("false"),
            nullable=False,
            comment="case.received sent",
        ),
        sa.Column("seen_at", sa.DateTime(), nullable=False, comment="last fetched from the CRM"),
        sa.Column(
            "finished_at", sa.DateTime(), nullable=True, comment="when it was first seen resolved or closed"
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_tracked_requests")),
        sa.UniqueConstraint("adapter", "request_id", name=op.f("uq_crm_tracked_requests_adapter_request_id")),
    )
    with op.batch_alter_table("crm_tracked_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_crm_tracked_requests_folio"), ["folio"], unique=False)
        batch_op.create_index(
            "ix_crm_tracked_requests_adapter_phase", ["adapter", "phase", "request_id"], unique=False
        )
    op.create_table(
        "crm_phone_numbers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("msisdn", sa.String(length=16), nullable=False, comment="E.164"),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_phone_numbers")),
        sa.UniqueConstraint("client_id", "key", name=op.f("uq_crm_phone_numbers_client_id_key")),
    )
    with op.batch_alter_table("crm_phone_numbers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_crm_phone_numbers_msisdn"), ["msisdn"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("crm_phone_numbers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_crm_phone_numbers_msisdn"))
    op.drop_table("crm_phone_numbers")
    with op.batch_alter_table("crm_tracked_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_crm_tracked_requests_adapter_phase")
        batch_op.drop_index(batch_op.f("ix_crm_tracked_requests_folio"))
    op.drop_table("crm_tracked_requests")
    op.drop_table("crm_adapter_state")
