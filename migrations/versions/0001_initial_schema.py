"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-29 07:44:12.545335
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "citizens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("msisdn", sa.String(length=16), nullable=False, comment="E.164"),
        sa.Column("language", sa.String(length=5), server_default="es", nullable=False),
        sa.Column("name", sa.String(length=120), nullable=True),
        sa.Column("opted_out", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
        sa.Column("opted_out_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_citizens")),
        sa.UniqueConstraint("msisdn", name=op.f("uq_citizens_msisdn")),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("event_key", sa.String(length=128), nullable=False, comment="the CRM's own event id"),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column(
            "response",
            sa.JSON(),
            nullable=True,
            comment="what the first POST answered; repeated to duplicates",
        ),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("client_id", "event_key", name=op.f("uq_events_client_id_event_key")),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("folio", sa.String(length=64), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=120), nullable=True),
        sa.Column("status", sa.String(length=120), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizens.id"], name=op.f("fk_cases_citizen_id_citizens")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("folio", name=op.f("uq_cases_folio")),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cases_citizen_id"), ["citizen_id"], unique=False)

    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("citizen_id", sa.Integer(), nullable=True),
        sa.Column("msisdn", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("encoding", sa.String(length=8), nullable=False),
        sa.Column("segments", sa.SmallInteger(), nullable=False),
        sa.Column(
            "priority", sa.SmallInteger(), nullable=False, comment="0 emergency, 1 high, 2 normal, 3 low"
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("carrier", sa.String(length=32), nullable=True),
        sa.Column("not_before", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column(
            "smsc_message_id", sa.String(length=65), nullable=True, comment="first part's id at the SMSC"
        ),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error_text", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(), nullable=True),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["citizen_id"], ["citizens.id"], name=op.f("fk_messages_citizen_id_citizens")
        ),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_messages_event_id_events")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messages_claim",
            ["priority", "not_before", "id"],
            unique=False,
            sqlite_where=sa.text("status = 'queued'"),
            postgresql_where=sa.text("status = 'queued'"),
        )
        batch_op.create_index(batch_op.f("ix_messages_event_id"), ["event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_messages_msisdn"), ["msisdn"], unique=False)

    op.create_table(
        "message_parts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.SmallInteger(), nullable=False),
        sa.Column("carrier", sa.String(length=32), nullable=False),
        sa.Column("smsc_message_id", sa.String(length=65), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=8), nullable=True),
        sa.Column("submitted_at", sa.DateTime(), nullable=False),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_message_parts_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_parts")),
        sa.UniqueConstraint("message_id", "seq", name=op.f("uq_message_parts_message_id_seq")),
    )
    with op.batch_alter_table("message_parts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_message_parts_smsc_message_id"), ["smsc_message_id"], unique=False
        )

    op.create_table(
        "message_status_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("detail", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_message_status_history_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_status_history")),
    )
    with op.batch_alter_table("message_status_history", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_message_status_history_message_id"), ["message_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("message_status_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_status_history_message_id"))

    op.drop_table("message_status_history")
    with op.batch_alter_table("message_parts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_parts_smsc_message_id"))

    op.drop_table("message_parts")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_msisdn"))
        batch_op.drop_index(batch_op.f("ix_messages_event_id"))
        batch_op.drop_index(
            "ix_messages_claim",
            sqlite_where=sa.text("status = 'queued'"),
            postgresql_where=sa.text("status = 'queued'"),
        )

    op.drop_table("messages")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_citizen_id"))

    op.drop_table("cases")
    op.drop_table("events")
    op.drop_table("citizens")
