"""The database schema (SQLAlchemy Core). Alembic migrations under migrations/ create it.

Times are naive UTC everywhere in the database; the API and templates convert at the edges.
"""

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("event_key", String(128), nullable=False, comment="the CRM's own event id"),
    Column("type", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("response", JSON, comment="what the first POST answered; repeated to duplicates"),
    Column("received_at", DateTime, nullable=False),
    UniqueConstraint("client_id", "event_key"),
)

citizens = Table(
    "citizens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("msisdn", String(16), nullable=False, unique=True, comment="E.164"),
    Column("language", String(5), nullable=False, server_default="es"),
    Column("name", String(120)),
    Column("opted_out", Boolean, nullable=False, server_default=text("false")),
    Column("opted_out_at", DateTime),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

cases = Table(
    "cases",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("folio", String(64), nullable=False, unique=True),
    Column("citizen_id", Integer, ForeignKey("citizens.id"), nullable=False, index=True),
    Column("category", String(120)),
    Column("status", String(120)),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

# The outbox. A row is claimable when status='queued', not_before has passed and no live lease holds it.
messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", Integer, ForeignKey("events.id"), index=True),
    Column("citizen_id", Integer, ForeignKey("citizens.id")),
    Column("msisdn", String(16), nullable=False, index=True),
    Column("language", String(5), nullable=False),
    Column("body", Text, nullable=False),
    Column("encoding", String(8), nullable=False),
    Column("segments", SmallInteger, nullable=False),
    Column("priority", SmallInteger, nullable=False, comment="0 emergency, 1 high, 2 normal, 3 low"),
    Column("status", String(16), nullable=False),
    Column("carrier", String(32)),
    Column("not_before", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("attempts", SmallInteger, nullable=False, server_default="0"),
    Column("lease_owner", String(64)),
    Column("lease_until", DateTime),
    Column("smsc_message_id", String(65), comment="first part's id at the SMSC"),
    Column("error_code", Integer),
    Column("error_text", String(255)),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("submitted_at", DateTime),
    Column("done_at", DateTime),
    Index(
        "ix_messages_claim",
        "priority",
        "not_before",
        "id",
        sqlite_where=text("status = 'queued'"),
        postgresql_where=text("status = 'queued'"),
    ),
)

# One row per SMPP part; receipts are matched here by the SMSC's id.
message_parts = Table(
    "message_parts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("message_id", Integer, ForeignKey("messages.id"), nullable=False),
    Column("seq", SmallInteger, nullable=False),
    Column("carrier", String(32), nullable=False),
    Column("smsc_message_id", String(65), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("error_code", String(8)),
    Column("submitted_at", DateTime, nullable=False),
    Column("done_at", DateTime),
    UniqueConstraint("message_id", "seq"),
)

message_status_history = Table(
    "message_status_history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("message_id", Integer, ForeignKey("messages.id"), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("at", DateTime, nullable=False),
    Column("detail", String(255)),
)
