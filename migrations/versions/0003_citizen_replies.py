"""citizens' replies: the MO log and the consent ledger

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mobile_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("msisdn", sa.String(length=32), nullable=False, comment="sender, E.164"),
        sa.Column("citizen_id", sa.Integer(), nullable=True),
        sa.Column("carrier", sa.String(length=32), nullable=True),
        sa.Column("text", sa.Text(), nullable=False, comment="personal data: erased by forget"),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("keyword", sa.String(length=16), nullable=True),
        sa.Column("intent", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=5), nullable=True),
        sa.Column("understood", sa.JSON(), nullable=True, comment="topic, zones, folio, choices…"),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("reply_message_id", sa.Integer(), nullable=True),
        sa.Column("reply_kind", sa.String(length=40), nullable=True, comment="the reply's template"),
        sa.ForeignKeyConstraint(
            ["citizen_id"], ["citizens.id"], name=op.f("fk_mobile_messages_citizen_id_citizens")
        ),
        sa.ForeignKeyConstraint(
            ["reply_message_id"], ["messages.id"], name=op.f("fk_mobile_messages_reply_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mobile_messages")),
    )
    with op.batch_alter_table("mobile_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mobile_messages_msisdn_received_at", ["msisdn", "received_at"], unique=False
        )
        batch_op.create_index("ix_mobile_messages_citizen_id", ["citizen_id"], unique=False)
        batch_op.create_index(
            "ix_mobile_messages_reply_message_id",
            ["reply_message_id"],
            unique=False,
            sqlite_where=sa.text("reply_message_id IS NOT NULL"),
            postgresql_where=sa.text("reply_message_id IS NOT NULL"),
        )

    op.create_table(
        "consent_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column(
            "action",
            sa.String(length=16),
            nullable=False,
            comment="opt_in, opt_out, subscribe, unsubscribe, …",
        ),
        sa.Column("channel", sa.String(length=8), nullable=False, comment="sms, api, import, cli"),
        sa.Column("client_id", sa.String(length=64), nullable=True, comment="the CRM client (api)"),
        sa.Column("carrier", sa.String(length=32), nullable=True, comment="the carrier (sms)"),
        sa.Column("topics", sa.JSON(), nullable=True),
        sa.Column("zones", sa.JSON(), nullable=True, comment="zone names; null: every zone"),
        sa.Column("raw", sa.Text(), nullable=True, comment="the SMS, request or CSV row; erased by forget"),
        sa.Column("mobile_message_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["citizen_id"], ["citizens.id"], name=op.f("fk_consent_events_citizen_id_citizens")
        ),
        sa.ForeignKeyConstraint(
            ["mobile_message_id"],
            ["mobile_messages.id"],
            name=op.f("fk_consent_events_mobile_message_id_mobile_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_events")),
    )
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.create_index("ix_consent_events_citizen_id_at", ["citizen_id", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_events_citizen_id_at")
    op.drop_table("consent_events")
    with op.batch_alter_table("mobile_messages", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_mobile_messages_reply_message_id",
            sqlite_where=sa.text("reply_message_id IS NOT NULL"),
            postgresql_where=sa.text("reply_message_id IS NOT NULL"),
        )
        batch_op.drop_index("ix_mobile_messages_citizen_id")
        batch_op.drop_index("ix_mobile_messages_msisdn_received_at")
    op.drop_table("mobile_messages")
