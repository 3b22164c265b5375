"""appointment reminders are due times on the appointment row, not APScheduler jobs

Any gateway process can fire a reminder: the due time is a column, claimed once by an UPDATE.
Jobs still in APScheduler's table (ids ``appointment-<id>-<24h|2h>``) become those due times.

Revision ID: 0009_reminder_rows
Revises: 0005_receipt_matching
Create Date: 2026-12-01 23:00:00
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0009_reminder_rows"
down_revision = "0005_receipt_matching"
branch_labels = None
depends_on = None

_LABELS = ("24h", "2h")


def upgrade() -> None:
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        for label in _LABELS:
            batch_op.add_column(
                sa.Column(f"remind_{label}_at", sa.DateTime(), nullable=True, comment="due; null: none")
            )
            batch_op.create_index(f"ix_appointments_remind_{label}_at", [f"remind_{label}_at"], unique=False)
    conn = op.get_bind()
    jobs = conn.execute(sa.text("SELECT id, next_run_time FROM apscheduler_jobs")).all()
    for job_id, next_run_time in jobs:
        parts = job_id.split("-")
        if len(parts) != 3 or parts[0] != "appointment" or parts[2] not in _LABELS or next_run_time is None:
            continue
        due = datetime.fromtimestamp(next_run_time, UTC).replace(tzinfo=None)
        conn.execute(
            sa.text(f"UPDATE appointments SET remind_{parts[2]}_at = :due WHERE id = :id"),
            {"due": due, "id": int(parts[1])},
        )
    with op.batch_alter_table("apscheduler_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_apscheduler_jobs_next_run_time"))
    op.drop_table("apscheduler_jobs")


def downgrade() -> None:
    # the due times are not turned back into jobs: reminders not yet sent are lost on a downgrade
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
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        for label in _LABELS:
            batch_op.drop_index(f"ix_appointments_remind_{label}_at")
            batch_op.drop_column(f"remind_{label}_at")
