"""notices: zones, subscriptions, broadcasts, appointments, status callbacks, reminder job store

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 08:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "zones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False, comment="postal code and normalised name"),
        sa.Column("cp", sa.String(length=5), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_zones")),
        sa.UniqueConstraint("key", name=op.f("uq_zones_key")),
    )
    with op.batch_alter_table("zones", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_zones_cp"), ["cp"], unique=False)

    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=16), nullable=False),
        sa.Column("zone_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["citizen_id"], ["citizens.id"], name=op.f("fk_subscriptions_citizen_id_citizens")
        ),
        sa.ForeignKeyConstraint(["zone_id"], ["zones.id"], name=op.f("fk_subscriptions_zone_id_zones")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint(
            "citizen_id", "topic", "zone_id", name=op.f("uq_subscriptions_citizen_id_topic_zone_id")
        ),
    )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.create_index("ix_subscriptions_fanout", ["topic", "citizen_id", "zone_id"], unique=False)
        batch_op.create_index(
            "uq_subscriptions_every_zone",
            ["citizen_id", "topic"],
            unique=True,
            sqlite_where=sa.text("zone_id IS NULL"),
            postgresql_where=sa.text("zone_id IS NULL"),
        )

    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=16), nullable=False),
        sa.Column("zone_ids", sa.JSON(), nullable=True, comment="zones targeted; null: every zone"),
        sa.Column("scope", sa.String(length=16), nullable=False, comment="subscribers or citizens"),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("texts", sa.JSON(), nullable=False, comment="{language: {body, encoding, segments}}"),
        sa.Column(
            "message_status", sa.String(length=16), nullable=False, comment="queued, or held by quiet hours"
        ),
        sa.Column("not_before", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column(
            "status", sa.String(length=16), nullable=False, comment="pending, running, done, cancelled"
        ),
        sa.Column(
            "last_citizen_id", sa.Integer(), server_default="0", nullable=False, comment="fan-out progress"
        ),
        sa.Column(
            "recipients", sa.Integer(), server_default="0", nullable=False, comment="counted when accepted"
        ),
        sa.Column(
            "queued", sa.Integer(), server_default="0", nullable=False, comment="messages inserted so far"
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_broadcasts_event_id_events")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
        sa.UniqueConstraint("event_id", name=op.f("uq_broadcasts_event_id")),
    )

    op.create_table(
        "appointments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("folio", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("place", sa.String(length=200), nullable=True),
        sa.Column(
            "status",
            sa.String(length=16),
            nullable=False,
            comment="pending, confirmed, declined, cancelled",
        ),
        sa.Column("event_id", sa.Integer(), nullable=False, comment="the scheduling event"),
        sa.Column("event_key", sa.String(length=128), nullable=False, comment="the CRM's id of that event"),
        sa.Column("reminded_24h_at", sa.DateTime(), nullable=True),
        sa.Column("reminded_2h_at", sa.DateTime(), nullable=True),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_appointments_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["citizen_id"], ["citizens.id"], name=op.f("fk_appointments_citizen_id_citizens")
        ),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_appointments_event_id_events")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointments")),
        sa.UniqueConstraint("case_id", name=op.f("uq_appointments_case_id")),
    )
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.create_index("ix_appointments_citizen_id_status", ["citizen_id", "status"], unique=False)

    op.create_table(
        "callbacks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column(
            "kind", sa.String(length=40), nullable=False, comment="message.status, appointment.confirmed, …"
        ),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False, comment="pending, sent, failed"),
        sa.Column("attempts", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callbacks")),
    )
    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_callbacks_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )

    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(length=191), nullable=False),
        sa.Column("next_run_time", sa.Float(precision=25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apscheduler_jobs")),
    )
    with op.batch_alter_table("apscheduler_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_apscheduler_jobs_next_run_time"), ["next_run_time"], unique=False
        )

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("progress", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("resolved_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(), nullable=True))

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "broadcast_id", sa.Integer(), nullable=True, comment="the broadcast that queued it (fan-out)"
            )
        )
        batch_op.create_index(
            "uq_messages_broadcast_id_citizen_id", ["broadcast_id", "citizen_id"], unique=True
        )
        batch_op.create_index(
            "ix_messages_held",
            ["not_before"],
            unique=False,
            sqlite_where=sa.text("status = 'held'"),
            postgresql_where=sa.text("status = 'held'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_messages_held",
            sqlite_where=sa.text("status = 'held'"),
            postgresql_where=sa.text("status = 'held'"),
        )
        batch_op.drop_index("uq_messages_broadcast_id_citizen_id")
        batch_op.drop_column("broadcast_id")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("closed_at")
        batch_op.drop_column("resolved_on")
        batch_op.drop_column("progress")
    with op.batch_alter_table("apscheduler_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_apscheduler_jobs_next_run_time"))
    op.drop_table("apscheduler_jobs")
    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.drop_index("ix_callbacks_status_next_attempt_at")
    op.drop_table("callbacks")
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.drop_index("ix_appointments_citizen_id_status")
    op.drop_table("appointments")
    op.drop_table("broadcasts")
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_subscriptions_every_zone",
            sqlite_where=sa.text("zone_id IS NULL"),
            postgresql_where=sa.text("zone_id IS NULL"),
        )
        batch_op.drop_index("ix_subscriptions_fanout")
    op.drop_table("subscriptions")
    with op.batch_alter_table("zones", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_zones_cp"))
    op.drop_table("zones")
