"""The consent ledger and the acts it records: opt-in, opt-out, subscribe, unsubscribe.

Every change of what a citizen agreed to receive is a ``consent_events`` row with its time, its
channel (``sms`` keyword, CRM ``api``, ``import``, ``cli`` for forget), the CRM client or the
carrier, the topics and zones, and the raw SMS / request / CSV row (personal data, erased by
``smsgw citizens forget``). Mexican data-protection law gives citizens the right to see this
(``smsgw citizens export``) and to cancel it.

An opt-out takes effect in the transaction that records it: the citizen is marked ``opted_out``,
their subscriptions are removed and every message still waiting for them (``queued`` or ``held``,
not leased by a dispatcher) becomes ``cancelled`` with the history detail "opted out". The fan-out,
the case-event intake, reminders and the outbox claim all skip opted-out citizens; only the
replies to the citizen's own SMS (the opt-out confirmation among them) go out anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, DateTime, and_, delete, insert, literal, or_, select, update

from gateway.domain.status import MessageStatus

from .bulk import BulkWriter
from .db import insert_ignoring_conflicts
from .models import citizens, consent_events, message_status_history, messages, subscriptions

OPT_IN, OPT_OUT, SUBSCRIBE, UNSUBSCRIBE, FORGOTTEN = (
    "opt_in",
    "opt_out",
    "subscribe",
    "unsubscribe",
    "forgotten",
)
SMS, API, IMPORT, CLI = "sms", "api", "import", "cli"
OPTED_OUT_DETAIL = "opted out"

# after(conn, message ids, status, now): the status callbacks of cancelled CRM messages
StatusHook = Callable[[Connection, list[int], MessageStatus, datetime], None]


@dataclass(slots=True)
class Citizen:
    id: int
    msisdn: str
    opted_out: bool
    language: str
    name: str | None
    created: bool
    opted_out_at: datetime | None = None


def lock_citizen(conn: Connection, msisdn: str, language: str, now: datetime) -> Citizen:
    """The citizen with this number, created (with ``language``) when new, and locked on
    PostgreSQL for the rest of the transaction so one number's messages are handled one at a time
    (counters, opt-out) even by several processes. SQLite has a single writer anyway."""
    created = conn.execute(
        insert_ignoring_conflicts(conn, citizens, ["msisdn"])
        .values(msisdn=msisdn, language=language, created_at=now, updated_at=now)
        .returning(citizens.c.id)
    ).first()
    query = _CITIZEN.where(citizens.c.msisdn == msisdn)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return _citizen(conn.execute(query).one(), created is not None)


def find_citizen(conn: Connection, msisdn: str) -> Citizen | None:
    row = conn.execute(_CITIZEN.where(citizens.c.msisdn == msisdn)).first()
    return None if row is None else _citizen(row, False)


_CITIZEN = select(
    citizens.c.id,
    citizens.c.msisdn,
    citizens.c.opted_out,
    citizens.c.language,
    citizens.c.name,
    citizens.c.opted_out_at,
)


def _citizen(row, created: bool) -> Citizen:
    return Citizen(row.id, row.msisdn, bool(row.opted_out), row.language, row.name, created, row.opted_out_at)


def record(
    conn: Connection,
    citizen_id: int,
    action: str,
    channel: str,
    now: datetime,
    *,
    client_id: str | None = None,
    carrier: str | None = None,
    topics: Sequence[str] | None = None,
    zones: Sequence[str] | None = None,
    raw: str | None = None,
    mobile_message_id: int | None = None,
) -> None:
    record_many(
        conn,
        [
            {
                "citizen_id": citizen_id,
                "action": action,
                "channel": channel,
                "client_id": client_id,
                "carrier": carrier,
                "topics": list(topics) if topics is not None else None,
                "zones": list(zones) if zones is not None else None,
                "raw": raw,
                "mobile_message_id": mobile_message_id,
                "at": now,
            }
        ],
    )


_EVENT_KEYS = ("client_id", "carrier", "topics", "zones", "raw", "mobile_message_id")


def record_many(conn: Connection, rows: Sequence[dict]) -> None:
    """Ledger rows (citizen_id, action, channel, at and any of client_id, carrier, topics, zones,
    raw, mobile_message_id), in one executemany."""
    if rows:
        conn.execute(insert(consent_events), [{**dict.fromkeys(_EVENT_KEYS), **row} for row in rows])


def record_bulk(writer: BulkWriter, rows: list[tuple[int, str, str, object, object, str]]) -> None:
    """Ledger rows (citizen_id, action, channel, topics, zones, raw) at ``writer.now``; topics and
    zones as :meth:`BulkWriter.json` encodes them."""
    now = writer.now
    writer.insert(
        consent_events,
        ("citizen_id", "action", "channel", "topics", "zones", "raw", "at"),
        [(*row, now) for row in rows],
        ignore_conflicts=False,
    )


def opt_in(conn: Connection, citizen_id: int, now: datetime) -> bool:
    """The citizen consents again after an opt-out; returns whether they were opted out."""
    return bool(
        conn.execute(
            update(citizens)
            .where(citizens.c.id == citizen_id, citizens.c.opted_out)
            .values(opted_out=False, opted_out_at=None, updated_at=now)
        ).rowcount
    )


@dataclass(slots=True)
class OptOut:
    was_opted_out: bool
    topics_removed: list[str]
    subscriptions_removed: int
    cancelled: list[int]  # ids of the messages that will not be sent


def opt_out(
    conn: Connection,
    citizen: Citizen,
    now: datetime,
    status_hook: StatusHook | None = None,
) -> OptOut:
    """Nothing more is sent to this citizen but replies to their own SMS: opted_out, every
    subscription removed, every waiting message cancelled (same transaction)."""
    was = bool(conn.execute(select(citizens.c.opted_out).where(citizens.c.id == citizen.id)).scalar_one())
    if not was:
        conn.execute(
            update(citizens)
            .where(citizens.c.id == citizen.id)
            .values(opted_out=True, opted_out_at=now, updated_at=now)
        )
    topics = sorted(
        set(
            conn.execute(
                select(subscriptions.c.topic).where(subscriptions.c.citizen_id == citizen.id)
            ).scalars()
        )
    )
    removed = conn.execute(delete(subscriptions).where(subscriptions.c.citizen_id == citizen.id)).rowcount
    cancelled = cancel_waiting(conn, citizen.msisdn, now, OPTED_OUT_DETAIL, status_hook)
    citizen.opted_out = True
    return OptOut(was, topics, removed, cancelled)


def cancel_waiting(
    conn: Connection,
    msisdn: str,
    now: datetime,
    detail: str,
    status_hook: StatusHook | None = None,
) -> list[int]:
    """Messages to this number not yet handed to a link (queued or held, no live lease) become
    cancelled; returns their ids. A leased message is being submitted right now and cannot be
    called back; if it comes back to the queue, the claim skips it (opted out)."""
    m = messages.c
    waiting = and_(
        m.msisdn == msisdn,  # indexed; every message to a citizen carries their number
        m.status.in_((MessageStatus.QUEUED.value, MessageStatus.HELD.value)),
        or_(m.lease_until.is_(None), m.lease_until < now),
    )
    ids = list(conn.execute(select(m.id).where(waiting).order_by(m.id)).scalars())
    if not ids:
        return []
    conn.execute(
        insert(message_status_history).from_select(
            ["message_id", "status", "at", "detail"],
            select(
                m.id, literal(MessageStatus.CANCELLED.value), literal(now, DateTime), literal(detail)
            ).where(waiting),
        )
    )
    conn.execute(
        update(messages)
        .where(waiting)
        .values(status=MessageStatus.CANCELLED.value, updated_at=now, done_at=now, error_text=detail)
    )
    if status_hook is not None:
        status_hook(conn, ids, MessageStatus.CANCELLED, now)
    return ids


def events_of(conn: Connection, citizen_id: int) -> list[dict]:
    rows = conn.execute(
        select(consent_events)
        .where(consent_events.c.citizen_id == citizen_id)
        .order_by(consent_events.c.at, consent_events.c.id)
    ).mappings()
    return [dict(r) for r in rows]
