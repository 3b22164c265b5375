"""The durable queue of status callbacks to CRM clients (rows of ``callbacks``).

Rows are written in the transaction that makes the change where the gateway owns it (expiry,
cancellation, appointment answers) or, for submit and receipt results, in one batch right after
the status writer commits them. crm_adapters/callbacks.py POSTs them, signed, with retries.
Messages of a broadcast get no callback each (a 100,000-recipient notice would flood the CRM);
a cancelled broadcast gets one ``broadcast.cancelled``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, bindparam, func, insert, not_, or_, select, update

from gateway.domain.dates import iso_utc
from gateway.domain.phone import mask_msisdn

from .models import callbacks, events, messages

PENDING, SENT, FAILED = "pending", "sent", "failed"
_CHUNK = 2000


def _next_sequences(conn: Connection, message_ids: Iterable[int]) -> dict[int, int]:
    """The sequence number the next callback of each message gets (1 for its first)."""
    ids = sorted(set(message_ids))
    found: dict[int, int] = dict.fromkeys(ids, 1)
    c = callbacks.c
    for i in range(0, len(ids), _CHUNK):
        rows = conn.execute(
            select(c.message_id, func.max(c.sequence))
            .where(c.message_id.in_(ids[i : i + _CHUNK]))
            .group_by(c.message_id)
        )
        found.update((mid, (top or 0) + 1) for mid, top in rows)
    return found


def enqueue(
    conn: Connection,
    rows: Sequence[tuple[str, str, str, int | None, dict]],
    now: datetime,
) -> int:
    """Queue (client_id, url, kind, message_id, payload) callbacks, due at once.

    The callbacks of one message are numbered 1, 2, … in the order they are queued (here, then
    the row order): the number is the payload's ``sequence``, and a callback is sent only once
    every earlier one of its message has been accepted or given up (:func:`claim_due`)."""
    if not rows:
        return 0
    sequences = _next_sequences(conn, (mid for _, _, _, mid, _ in rows if mid is not None))
    values = []
    for client_id, url, kind, message_id, payload in rows:
        sequence = None
        if message_id is not None:
            sequence = sequences[message_id]
            sequences[message_id] += 1
            payload = {**payload, "sequence": sequence}
        values.append(
            {
                "client_id": client_id,
                "url": url,
                "kind": kind,
                "message_id": message_id,
                "sequence": sequence,
                "payload": payload,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
        )
    conn.execute(insert(callbacks), values)
    return len(rows)


def enqueue_message_status(
    conn: Connection,
    targets: Mapping[str, str],
    changes: Iterable[tuple[int, str, datetime]],
    now: datetime,
) -> int:
    """One ``message.status`` callback per (message id, status, at) whose CRM client has a
    callback URL; messages of broadcasts are skipped."""
    changes = list(changes)
    if not targets or not changes:
        return 0
    ids = sorted({mid for mid, _, _ in changes})
    info: dict[int, Mapping] = {}
    m = messages.c
    for i in range(0, len(ids), _CHUNK):
        rows = conn.execute(
            select(
                m.id, m.msisdn, m.error_code, m.error_text, m.carrier, events.c.client_id, events.c.event_key
            )
            .join(events, events.c.id == m.event_id)
            .where(
                m.id.in_(ids[i : i + _CHUNK]), m.broadcast_id.is_(None), events.c.client_id.in_(list(targets))
            )
        ).mappings()
        info.update((r["id"], r) for r in rows)
    out = []
    for mid, status, at in changes:
        row = info.get(mid)
        if row is None:
            continue
        failed = status not in ("submitted", "delivered", "queued", "held")
        error = None
        if failed and (row["error_code"] is not None or row["error_text"]):
            error = {"code": row["error_code"], "text": row["error_text"]}
        payload = {
            "type": "message.status",
            "message_id": mid,
            "event_id": row["event_key"],
            "status": str(status),
            "at": iso_utc(at),
            "to": mask_msisdn(row["msisdn"]),
            "carrier": row["carrier"],
            "error": error,
        }
        out.append((row["client_id"], targets[row["client_id"]], "message.status", mid, payload))
    return enqueue(conn, out, now)


@dataclass(slots=True)
class DueCallback:
    id: int
    client_id: str
    url: str
    kind: str
    payload: dict
    attempts: int
    message_id: int | None = None


def claim_due(conn: Connection, limit: int, now: datetime, lease_seconds: float = 60) -> list[DueCallback]:
    """Lease up to ``limit`` callbacks that are due, oldest first.

    A callback of a message is due only when no earlier one of the same message is still pending
    (waiting for its retry, or in flight): one message's statuses reach the CRM in order, each
    after the one before was accepted (2xx) or given up."""
    c = callbacks.c
    earlier = callbacks.alias("earlier")
    e = earlier.c
    waiting_before = (
        select(e.id)
        .where(
            e.message_id == c.message_id,
            e.status == PENDING,
            or_(e.sequence < c.sequence, and_(e.sequence == c.sequence, e.id < c.id)),
        )
        .exists()
    )
    due = (
        select(c.id)
        .where(
            c.status == PENDING,
            c.next_attempt_at <= now,
            or_(c.lease_until.is_(None), c.lease_until < now),
            or_(c.message_id.is_(None), not_(waiting_before)),
        )
        .order_by(c.next_attempt_at, c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    rows = conn.execute(
        update(callbacks)
        .where(c.id.in_(due.scalar_subquery()))
        .values(lease_until=now + timedelta(seconds=lease_seconds))
        .returning(c.id, c.client_id, c.url, c.kind, c.payload, c.attempts, c.message_id)
    )
    found = [DueCallback(*row) for row in rows]
    found.sort(key=lambda d: d.id)
    return found


@dataclass(slots=True)
class Outcome:
    id: int
    status: str  # sent, failed (given up) or pending (retry at next_attempt_at)
    attempts: int
    error: str | None = None
    next_attempt_at: datetime | None = None


def record_outcomes(conn: Connection, outcomes: Sequence[Outcome], now: datetime) -> None:
    """Store each attempt's outcome. A callback retried later holds its message's later ones back
    until then too (they could not go before it anyway), so the claim does not walk past them."""
    if not outcomes:
        return
    retried = [o for o in outcomes if o.status == PENDING and o.next_attempt_at is not None]
    if retried:
        c, head = callbacks.c, callbacks.alias("head")
        message_of_head = select(head.c.message_id).where(head.c.id == bindparam("cid")).scalar_subquery()
        conn.execute(
            update(callbacks)
            .where(
                c.message_id == message_of_head,
                c.status == PENDING,
                c.id != bindparam("cid"),
                c.next_attempt_at < bindparam("next_at"),
            )
            .values(next_attempt_at=bindparam("next_at"), updated_at=now),
            [{"cid": o.id, "next_at": o.next_attempt_at} for o in retried],
        )
    conn.execute(
        update(callbacks)
        .where(callbacks.c.id == bindparam("cid"))
        .values(
            status=bindparam("st"),
            attempts=bindparam("n"),
            last_error=bindparam("err"),
            next_attempt_at=bindparam("next_at"),
            sent_at=bindparam("sent_at"),
            lease_until=None,
            updated_at=now,
        ),
        [
            {
                "cid": o.id,
                "st": o.status,
                "n": o.attempts,
                "err": o.error[:255] if o.error else None,
                "next_at": o.next_attempt_at or now,
                "sent_at": now if o.status == SENT else None,
            }
            for o in outcomes
        ],
    )


def pending_count(conn: Connection) -> int:
    return conn.execute(
        select(func.count()).select_from(callbacks).where(callbacks.c.status == PENDING)
    ).scalar_one()
