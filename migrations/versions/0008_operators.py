"""operators: accounts, server-side sessions, login throttling and the audit log

Revision ID: 0008_operators
Revises: 0003
Create Date: 2026-12-08 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_operators"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False, comment="lower case"),
        sa.Column("role", sa.String(length=16), nullable=False, comment="viewer, operator, admin"),
        sa.Column("password_hash", sa.String(length=255), nullable=False, comment="argon2id, PHC string"),
        sa.Column("disabled_at", sa.DateTime(), nullable=True),
        sa.Column("last_login_at", sa.DateTime(), nullable=True),
        sa.Column("password_changed_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operators")),
        sa.UniqueConstraint("username", name=op.f("uq_operators_username")),
    )
    op.create_table(
        "operator_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False, comment="hex SHA-256 of the cookie"),
        sa.Column("operator_id", sa.Integer(), nullable=False),
        sa.Column(
            "csrf_token", sa.String(length=64), nullable=False, comment="sent back with every state change"
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False, comment="absolute end, whatever the activity"),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False, comment="idle timeout counts from here"),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["operator_id"], ["operators.id"], name=op.f("fk_operator_sessions_operator_id_operators")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_operator_sessions_token_hash")),
    )
    with op.batch_alter_table("operator_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_operator_sessions_operator_id", ["operator_id"], unique=False)
        batch_op.create_index("ix_operator_sessions_expires_at", ["expires_at"], unique=False)

    op.create_table(
        "login_throttle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False, comment="account or address"),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("window_started_at", sa.DateTime(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_throttle")),
        sa.UniqueConstraint("scope", "key", name=op.f("uq_login_throttle_scope_key")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=True),
        sa.Column(
            "actor",
            sa.String(length=64),
            nullable=False,
            comment="username (as typed, for failed logins) or cli",
        ),
        sa.Column("action", sa.String(length=40), nullable=False, comment="login, login.failed, logout, …"),
        sa.Column("target", sa.String(length=200), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column(
            "address",
            sa.String(length=64),
            nullable=True,
            comment="client address; null from the command line",
        ),
        sa.ForeignKeyConstraint(
            ["operator_id"], ["operators.id"], name=op.f("fk_audit_log_operator_id_operators")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_at", ["at"], unique=False)
        batch_op.create_index("ix_audit_log_operator_id_at", ["operator_id", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_operator_id_at")
        batch_op.drop_index("ix_audit_log_at")
    op.drop_table("audit_log")
    op.drop_table("login_throttle")
    with op.batch_alter_table("operator_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_operator_sessions_expires_at")
        batch_op.drop_index("ix_operator_sessions_operator_id")
    op.drop_table("operator_sessions")
    op.drop_table("operators")
