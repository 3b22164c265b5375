"""The database schema (SQLAlchemy Core). Alembic migrations under migrations/ create it.

Times are naive UTC everywhere in the database; the API and templates convert at the edges.
One module for every table (over 400 lines) so the schema reads in one place, as the migrations
build it.
"""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
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
    Column("progress", SmallInteger),
    Column("resolved_on", Date),
    Column("closed_at", DateTime),
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
    Column(
        "attempts_at_retry",
        SmallInteger,
        nullable=False,
        server_default="0",
        comment="attempts when an operator last retried it: max_attempts counts from there",
    ),
    Column("lease_owner", String(64)),
    Column("lease_until", DateTime),
    Column("smsc_message_id", String(65), comment="first part's id at the SMSC"),
    Column("error_code", Integer),
    Column("error_text", String(255)),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("submitted_at", DateTime),
    Column("done_at", DateTime),
    Column("broadcast_id", Integer, comment="the broadcast that queued it (fan-out)"),
    Column("route", String(32), comment="the carrier it is routed to; null until the dispatcher routes it"),
    Index("uq_messages_broadcast_id_citizen_id", "broadcast_id", "citizen_id", unique=True),
    Index(
        "ix_messages_held",
        "not_before",
        sqlite_where=text("status = 'held'"),
        postgresql_where=text("status = 'held'"),
    ),
    Index(
        "ix_messages_claim",
        "route",
        "priority",
        "not_before",
        "id",
        sqlite_where=text("status = 'queued'"),
        postgresql_where=text("status = 'queued'"),
    ),
    Index(
        "ix_messages_unrouted",
        "id",
        sqlite_where=text("status = 'queued' AND route IS NULL"),
        postgresql_where=text("status = 'queued' AND route IS NULL"),
    ),
)

# One row per SMPP part; receipts are matched here by carrier and SMSC id, among the open parts
# (status 'submitted': the partial index) first.
message_parts = Table(
    "message_parts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("message_id", Integer, ForeignKey("messages.id"), nullable=False),
    Column("seq", SmallInteger, nullable=False),
    Column("carrier", String(32), nullable=False),
    Column("smsc_message_id", String(65), nullable=False),
    Column("status", String(16), nullable=False),
    Column("error_code", String(8)),
    Column("submitted_at", DateTime, nullable=False),
    Column("done_at", DateTime),
    UniqueConstraint("message_id", "seq"),
    Index("ix_message_parts_smsc_message_id_carrier", "smsc_message_id", "carrier"),
    Index(
        "ix_message_parts_open",
        "smsc_message_id",
        "carrier",
        sqlite_where=text("status = 'submitted'"),
        postgresql_where=text("status = 'submitted'"),
    ),
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


# --- notices (migration 0002) --------------------------------------------------------------------

# The zone catalogue (config/zones/*.csv), synced at start-up so broadcasts can join in SQL.
zones = Table(
    "zones",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(160), nullable=False, unique=True, comment="postal code and normalised name"),
    Column("cp", String(5), nullable=False, index=True),
    Column("name", String(120), nullable=False),
    Column("type", String(32), nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("updated_at", DateTime, nullable=False),
)

# A citizen's topics by zone; zone_id NULL means every zone.
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("citizen_id", Integer, ForeignKey("citizens.id"), nullable=False),
    Column("topic", String(16), nullable=False),
    Column("zone_id", Integer, ForeignKey("zones.id")),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("citizen_id", "topic", "zone_id"),
    Index(
        "uq_subscriptions_every_zone",
        "citizen_id",
        "topic",
        unique=True,
        sqlite_where=text("zone_id IS NULL"),
        postgresql_where=text("zone_id IS NULL"),
    ),
    Index("ix_subscriptions_fanout", "topic", "citizen_id", "zone_id"),
)

# One per broadcast event: what to send and how far the fan-out got (it resumes after last_citizen_id).
broadcasts = Table(
    "broadcasts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", Integer, ForeignKey("events.id"), nullable=False, unique=True),
    Column("client_id", String(64), nullable=False),
    Column("type", String(64), nullable=False),
    Column("topic", String(16), nullable=False),
    Column("zone_ids", JSON, comment="zones targeted; null: every zone"),
    Column("scope", String(16), nullable=False, comment="subscribers or citizens"),
    Column("priority", SmallInteger, nullable=False),
    Column("texts", JSON, nullable=False, comment="{language: {body, encoding, segments}}"),
    Column("message_status", String(16), nullable=False, comment="queued, or held by quiet hours"),
    Column("not_before", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("status", String(16), nullable=False, comment="pending, running, done, cancelled"),
    Column("last_citizen_id", Integer, nullable=False, server_default="0", comment="fan-out progress"),
    Column("recipients", Integer, nullable=False, server_default="0", comment="counted when accepted"),
    Column("queued", Integer, nullable=False, server_default="0", comment="messages inserted so far"),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
)

# One per case: the appointment, the citizen's SI / NO, the reminders sent.
appointments = Table(
    "appointments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("case_id", Integer, ForeignKey("cases.id"), nullable=False, unique=True),
    Column("citizen_id", Integer, ForeignKey("citizens.id"), nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("folio", String(64), nullable=False),
    Column("at", DateTime, nullable=False),
    Column("place", String(200)),
    Column("status", String(16), nullable=False, comment="pending, confirmed, declined, cancelled"),
    Column("event_id", Integer, ForeignKey("events.id"), nullable=False, comment="the scheduling event"),
    Column("event_key", String(128), nullable=False, comment="the CRM's id of that event"),
    Column("remind_24h_at", DateTime, comment="due; null: none"),
    Column("remind_2h_at", DateTime, comment="due; null: none"),
    Column("reminded_24h_at", DateTime),
    Column("reminded_2h_at", DateTime),
    Column("answered_at", DateTime),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Index("ix_appointments_citizen_id_status", "citizen_id", "status"),
    Index("ix_appointments_remind_24h_at", "remind_24h_at"),
    Index("ix_appointments_remind_2h_at", "remind_2h_at"),
)

# Signed status POSTs to CRM clients' callback URLs, retried with backoff.
callbacks = Table(
    "callbacks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("url", String(500), nullable=False),
    Column("kind", String(40), nullable=False, comment="message.status, appointment.confirmed, …"),
    Column("message_id", Integer),
    Column(
        "sequence",
        Integer,
        comment="1, 2, … per message, in the order its changes happened; null without a message",
    ),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False, comment="pending, sent, failed"),
    Column("attempts", SmallInteger, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime, nullable=False),
    Column("lease_until", DateTime),
    Column("last_error", String(255)),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("sent_at", DateTime),
    Index("ix_callbacks_status_next_attempt_at_id", "status", "next_attempt_at", "id"),
    Index("ix_callbacks_message_id_sequence_status", "message_id", "sequence", "status"),
)

# --- citizens' replies (migration 0003) ----------------------------------------------------------

# Every citizen's SMS (MO) and what it was understood as; the text is personal data (erased by forget).
mobile_messages = Table(
    "mobile_messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("msisdn", String(32), nullable=False, comment="sender, E.164"),
    Column("citizen_id", Integer, ForeignKey("citizens.id")),
    Column("carrier", String(32)),
    Column("text", Text, nullable=False, comment="personal data: erased by forget"),
    Column("received_at", DateTime, nullable=False),
    Column("keyword", String(16)),
    Column("intent", String(16), nullable=False),
    Column("language", String(5)),
    Column("understood", JSON, comment="topic, zones, folio, choices…"),
    Column("outcome", String(32), nullable=False),
    Column("reply_message_id", Integer, ForeignKey("messages.id")),
    Column("reply_kind", String(40), comment="the reply's template"),
    Index("ix_mobile_messages_msisdn_received_at", "msisdn", "received_at"),
    Index("ix_mobile_messages_citizen_id", "citizen_id"),
    Index(
        "ix_mobile_messages_reply_message_id",
        "reply_message_id",
        sqlite_where=text("reply_message_id IS NOT NULL"),
        postgresql_where=text("reply_message_id IS NOT NULL"),
    ),
)

# The consent ledger: every opt-in, opt-out, subscribe and unsubscribe, by SMS, API or import.
consent_events = Table(
    "consent_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("citizen_id", Integer, ForeignKey("citizens.id"), nullable=False),
    Column("action", String(16), nullable=False, comment="opt_in, opt_out, subscribe, unsubscribe, …"),
    Column("channel", String(8), nullable=False, comment="sms, api, import, cli"),
    Column("client_id", String(64), comment="the CRM client (api)"),
    Column("carrier", String(32), comment="the carrier (sms)"),
    Column("topics", JSON),
    Column("zones", JSON, comment="zone names; null: every zone"),
    Column("raw", Text, comment="the SMS, request or CSV row; erased by forget"),
    Column("mobile_message_id", Integer, ForeignKey("mobile_messages.id")),
    Column("at", DateTime, nullable=False),
    Index("ix_consent_events_citizen_id_at", "citizen_id", "at"),
)


# --- operators (migration 0008) --------------------------------------------------------------------

# People who use the dashboard. Accounts are disabled, never deleted: the audit log names them.
operators = Table(
    "operators",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False, unique=True, comment="lower case"),
    Column("role", String(16), nullable=False, comment="viewer, operator, admin"),
    Column("password_hash", String(255), nullable=False, comment="argon2id, PHC string"),
    Column("disabled_at", DateTime),
    Column("last_login_at", DateTime),
    Column("password_changed_at", DateTime, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

# Server-side sessions: the cookie holds a random token, the database only its SHA-256.
operator_sessions = Table(
    "operator_sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True, comment="hex SHA-256 of the cookie"),
    Column("operator_id", Integer, ForeignKey("operators.id"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False, comment="sent back with every state change"),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False, comment="absolute end, whatever the activity"),
    Column("last_seen_at", DateTime, nullable=False, comment="idle timeout counts from here"),
    Column("address", String(64)),
    Column("user_agent", String(255)),
    Index("ix_operator_sessions_expires_at", "expires_at"),
)

# Failed logins in the current window, per account name as typed and per client address.
login_throttle = Table(
    "login_throttle",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("scope", String(8), nullable=False, comment="account or address"),
    Column("key", String(128), nullable=False),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("window_started_at", DateTime, nullable=False),
    Column("locked_until", DateTime),
    UniqueConstraint("scope", "key"),
)

# Who did what, when, to what, from where: logins, account changes, views of full numbers, actions.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime, nullable=False, index=True),
    Column("operator_id", Integer, ForeignKey("operators.id")),
    Column("actor", String(64), nullable=False, comment="username (as typed, for failed logins) or cli"),
    Column("action", String(40), nullable=False, comment="login, login.failed, logout, …"),
    Column("target", String(200)),
    Column("detail", JSON),
    Column("address", String(64), comment="client address; null from the command line"),
    Index("ix_audit_log_operator_id_at", "operator_id", "at"),
)


# --- CRM adapters (migration 0007) ----------------------------------------------------------------

# One row per configured adapter: how far it got (its cursor), who polls it now, how it fares.
crm_adapter_state = Table(
    "crm_adapter_state",
    metadata,
    Column("adapter", String(64), primary_key=True, comment="the adapter's name"),
    Column("kind", String(16), nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("cursor", JSON, nullable=False, comment="the adapter's position, e.g. created_through"),
    Column("lease_owner", String(64)),
    Column("lease_until", DateTime),
    Column("failures", Integer, nullable=False, server_default="0", comment="cycles failed in a row"),
    Column("last_error", String(255)),
    Column("last_success_at", DateTime),
    Column("clock_offset_seconds", Float, comment="the CRM's clock minus ours (its Date header)"),
    Column("updated_at", DateTime, nullable=False),
)

# The CRM's requests an adapter follows, as last seen; a change against this copy is an event.
crm_tracked_requests = Table(
    "crm_tracked_requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("adapter", String(64), nullable=False),
    Column("request_id", String(128), nullable=False, comment="the CRM's id (Open311 service_request_id)"),
    Column("folio", String(64), nullable=False, index=True),
    Column("phase", String(8), nullable=False, comment="open, resolved or closed"),
    Column("state", String(64), nullable=False, comment="the CRM's status word, lower case"),
    Column("status_notes", Text),
    Column("agency", String(200)),
    Column("expected", String(32), comment="expected_datetime, UTC ISO"),
    Column("updated", String(32), comment="updated_datetime, UTC ISO"),
    Column("service_name", String(120)),
    Column("requested_at", DateTime),
    Column("announced", Boolean, nullable=False, server_default=text("false"), comment="case.received sent"),
    Column("seen_at", DateTime, nullable=False, comment="last fetched from the CRM"),
    Column("finished_at", DateTime, comment="when it was first seen resolved or closed"),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("adapter", "request_id"),
    Index("ix_crm_tracked_requests_adapter_phase", "adapter", "phase", "request_id"),
)

# A CRM client's phone directory: the value of a request's field (an account, a request id) -> the
# citizen's number, for CRMs that do not publish phones (Open311). Personal data: erased by forget.
crm_phone_numbers = Table(
    "crm_phone_numbers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("key", String(128), nullable=False),
    Column("msisdn", String(16), nullable=False, index=True, comment="E.164"),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("client_id", "key"),
)


# Signatures accepted in the last tolerance window: a signature is accepted once, by any process.
# The digest (SHA-256 of what the signature covers) includes the signature's timestamp, so the key
# (t, client_id, digest) is unique on (client id, digest); leading with the time keeps the inserts
# and the purge of rows past the tolerance at the two ends of one B-tree. ``t`` is the header's
# value as it is (unix seconds), not a DateTime: the cheapest key to bind and compare on this path.
seen_signatures = Table(
    "seen_signatures",
    metadata,
    Column("t", BigInteger, primary_key=True, autoincrement=False, comment="the signature's t, unix seconds"),
    Column("client_id", String(64), primary_key=True),
    Column("digest", LargeBinary(32), primary_key=True, comment="SHA-256 of the signed request"),
    sqlite_with_rowid=False,
)


# --- the control room (migration 0012) -------------------------------------------------------------

# A carrier an operator paused: while its row exists its messages wait in the outbox (no process
# claims or hands them to it); resuming deletes the row.
carrier_pauses = Table(
    "carrier_pauses",
    metadata,
    Column("carrier", String(32), primary_key=True),
    Column("paused_at", DateTime, nullable=False),
    Column("paused_by", String(64), nullable=False, comment="the operator's username"),
)


# --- several dispatch processes (migration 0013) ---------------------------------------------------

# Running dispatch processes (gateway/store/processes.py): each renews its heartbeat; one whose
# heartbeat is stale is dead, and a live one takes over its leased messages and bind slots.
processes = Table(
    "processes",
    metadata,
    Column("id", String(64), primary_key=True, comment="the lease token of its messages"),
    Column("role", String(16), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("heartbeat_at", DateTime, nullable=False),
)

# A carrier's binds as slots 0..binds-1, each held by at most one process: the binds open at an
# SMSC never exceed the carrier's configuration, and its speed limit is shared in the same ratio.
bind_slots = Table(
    "bind_slots",
    metadata,
    Column("carrier", String(32), primary_key=True),
    Column("slot", Integer, primary_key=True, autoincrement=False),
    Column("owner", String(64), comment="processes.id; null: free"),
    Column("since", DateTime),
)

# Parts of citizens' long messages until the last arrives (gateway/store/mo_parts.py): an SMSC
# spreads one message's parts over its binds, which several processes may hold. Personal data for
# minutes at most: a group is deleted once handled, or after the reassembly timeout.
mo_parts = Table(
    "mo_parts",
    metadata,
    Column("carrier", String(32), primary_key=True),
    Column("sender", String(32), primary_key=True),
    Column("destination", String(32), primary_key=True),
    Column("reference", Integer, primary_key=True, autoincrement=False),
    Column("total", SmallInteger, primary_key=True, autoincrement=False),
    Column("seq", SmallInteger, primary_key=True, autoincrement=False),
    Column("payload", LargeBinary, nullable=False),
    Column("received_at", DateTime, nullable=False, index=True),
)
