"""The outbox: durable queue of messages, leased claims, and status transitions with history.

A claim is a lease (owner, until): a process that dies leaves rows whose lease expires and that
any process may claim again, so after a crash only messages in flight can be sent twice.
On PostgreSQL the claim skips rows other processes hold (FOR UPDATE SKIP LOCKED).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, bindparam, insert, or_, select, update

from gateway.domain.status import FINAL_STATUSES, MessageStatus

from .models import events, message_parts, message_status_history, messages


@dataclass(slots=True)
class ClaimedMessage:
    id: int
    msisdn: str
    body: str
    priority: int
    segments: int
    attempts: int
    expires_at: datetime


def enqueue(conn: Connection, rows: Sequence[dict], now: datetime) -> list[int]:
    """Insert queued messages; each row has msisdn, body, encoding, segments, priority, expires_at…"""
    if not rows:
        return []
    values = [
        {
            "status": MessageStatus.QUEUED.value,
            "not_before": now,
            "created_at": now,
            "updated_at": now,
            "attempts": 0,
            **row,
        }
        for row in rows
    ]
    ids = [
        r[0]
        for r in conn.execute(insert(messages).returning(messages.c.id, sort_by_parameter_order=True), values)
    ]
    _history(conn, [(mid, MessageStatus.QUEUED, None, now) for mid in ids])
    return ids


def claim(
    conn: Connection, owner: str, limit: int, now: datetime, lease_seconds: float
) -> list[ClaimedMessage]:
    """Lease up to ``limit`` due messages, most urgent first."""
    if limit <= 0:
        return []
    due = (
        select(messages.c.id)
        .where(
            messages.c.status == MessageStatus.QUEUED.value,
            messages.c.not_before <= now,
            messages.c.expires_at > now,
            or_(messages.c.lease_until.is_(None), messages.c.lease_until < now),
        )
        .order_by(messages.c.priority, messages.c.not_before, messages.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    stmt = (
        update(messages)
        .where(messages.c.id.in_(due.scalar_subquery()))
        .values(
            lease_owner=owner,
            lease_until=now + timedelta(seconds=lease_seconds),
            attempts=messages.c.attempts + 1,
        )
        .returning(
            messages.c.id,
            messages.c.msisdn,
            messages.c.body,
            messages.c.priority,
            messages.c.segments,
            messages.c.attempts,
            messages.c.expires_at,
        )
    )
    claimed = [ClaimedMessage(*row) for row in conn.execute(stmt)]
    claimed.sort(key=lambda m: (m.priority, m.id))
    return claimed


# --- status transitions, applied in batches by the status writer ---------------------------------


@dataclass(slots=True)
class Submitted:
    message_id: int
    carrier: str
    smsc_ids: list[str]
    at: datetime


@dataclass(slots=True)
class Retry:
    """A temporary failure: back to the queue, not before ``not_before``."""

    message_id: int
    not_before: datetime
    error_code: int | None
    error_text: str
    at: datetime


@dataclass(slots=True)
class Failed:
    message_id: int
    status: MessageStatus
    error_code: int | None
    error_text: str
    at: datetime


@dataclass(slots=True)
class ReceiptUpdate:
    carrier: str
    smsc_id_keys: tuple[str, ...]
    part_status: MessageStatus
    error_code: str | None
    at: datetime
    matched: bool = field(default=False)


def apply_submitted(conn: Connection, items: Sequence[Submitted]) -> None:
    if not items:
        return
    conn.execute(
        update(messages)
        .where(messages.c.id == bindparam("mid"), messages.c.status == MessageStatus.QUEUED.value)
        .values(
            status=MessageStatus.SUBMITTED.value,
            carrier=bindparam("carrier"),
            smsc_message_id=bindparam("smsc_id"),
            submitted_at=bindparam("at"),
            updated_at=bindparam("at"),
            lease_owner=None,
            lease_until=None,
            error_code=None,
            error_text=None,
        ),
        [{"mid": s.message_id, "carrier": s.carrier, "smsc_id": s.smsc_ids[0], "at": s.at} for s in items],
    )
    conn.execute(
        insert(message_parts),
        [
            {
                "message_id": s.message_id,
                "seq": seq,
                "carrier": s.carrier,
                "smsc_message_id": smsc_id,
                "status": MessageStatus.SUBMITTED.value,
                "submitted_at": s.at,
            }
            for s in items
            for seq, smsc_id in enumerate(s.smsc_ids, start=1)
        ],
    )
    _history(
        conn,
        [(s.message_id, MessageStatus.SUBMITTED, f"{s.carrier} id {s.smsc_ids[0]}", s.at) for s in items],
    )


def apply_retries(conn: Connection, items: Sequence[Retry]) -> None:
    if not items:
        return
    conn.execute(
        update(messages)
        .where(messages.c.id == bindparam("mid"), messages.c.status == MessageStatus.QUEUED.value)
        .values(
            not_before=bindparam("nb"),
            lease_owner=None,
            lease_until=None,
            error_code=bindparam("code"),
            error_text=bindparam("text"),
            updated_at=bindparam("at"),
        ),
        [
            {
                "mid": r.message_id,
                "nb": r.not_before,
                "code": r.error_code,
                "text": r.error_text[:255],
                "at": r.at,
            }
            for r in items
        ],
    )


def apply_failures(conn: Connection, items: Sequence[Failed]) -> None:
    for f in items:
        changed = conn.execute(
            update(messages)
            .where(messages.c.id == f.message_id, messages.c.status.notin_([s.value for s in FINAL_STATUSES]))
            .values(
                status=f.status.value,
                error_code=f.error_code,
                error_text=f.error_text[:255],
                lease_owner=None,
                lease_until=None,
                updated_at=f.at,
                done_at=f.at,
            )
        ).rowcount
        if changed:
            _history(conn, [(f.message_id, f.status, f.error_text[:255], f.at)])


def apply_receipts(conn: Connection, items: Iterable[ReceiptUpdate]) -> list[ReceiptUpdate]:
    """Record part receipts and roll them up to their message; returns those with no known part."""
    unmatched = []
    for r in items:
        part = conn.execute(
            select(message_parts.c.id, message_parts.c.message_id)
            .where(message_parts.c.carrier == r.carrier, message_parts.c.smsc_message_id.in_(r.smsc_id_keys))
            .limit(1)
        ).first()
        if part is None:
            unmatched.append(r)
            continue
        r.matched = True
        conn.execute(
            update(message_parts)
            .where(message_parts.c.id == part.id)
            .values(status=r.part_status.value, error_code=r.error_code, done_at=r.at)
        )
        _roll_up(conn, part.message_id, r)
    return unmatched


def _roll_up(conn: Connection, message_id: int, receipt: ReceiptUpdate) -> None:
    """One status per message: delivered when every part is; failed as soon as one part is."""
    current = conn.execute(select(messages.c.status).where(messages.c.id == message_id)).scalar_one()
    if current in FINAL_STATUSES:
        return
    if receipt.part_status == MessageStatus.DELIVERED:
        statuses = conn.execute(
            select(message_parts.c.status).where(message_parts.c.message_id == message_id)
        ).scalars()
        if any(s != MessageStatus.DELIVERED for s in statuses):
            return
    error = None if receipt.part_status == MessageStatus.DELIVERED else f"receipt err:{receipt.error_code}"
    conn.execute(
        update(messages)
        .where(messages.c.id == message_id)
        .values(status=receipt.part_status.value, updated_at=receipt.at, done_at=receipt.at, error_text=error)
    )
    _history(conn, [(message_id, receipt.part_status, error, receipt.at)])


def expire_overdue(conn: Connection, now: datetime) -> int:
    """Queued messages past their validity become expired: never sent late."""
    ids = [
        r[0]
        for r in conn.execute(
            select(messages.c.id).where(
                messages.c.status == MessageStatus.QUEUED.value,
                messages.c.expires_at <= now,
                or_(messages.c.lease_until.is_(None), messages.c.lease_until < now),
            )
        )
    ]
    if not ids:
        return 0
    conn.execute(
        update(messages)
        .where(and_(messages.c.id.in_(ids), messages.c.status == MessageStatus.QUEUED.value))
        .values(status=MessageStatus.EXPIRED.value, updated_at=now, done_at=now, error_text="validity ended")
    )
    _history(conn, [(mid, MessageStatus.EXPIRED, "validity ended before submission", now) for mid in ids])
    return len(ids)


def _history(conn: Connection, rows: list[tuple[int, MessageStatus, str | None, datetime]]) -> None:
    if rows:
        conn.execute(
            insert(message_status_history),
            [
                {"message_id": mid, "status": st.value, "at": at, "detail": detail}
                for mid, st, detail, at in rows
            ],
        )


def get_message(conn: Connection, message_id: int) -> dict | None:
    client = select(events.c.client_id).where(events.c.id == messages.c.event_id).scalar_subquery()
    row = (
        conn.execute(select(messages, client.label("client_id")).where(messages.c.id == message_id))
        .mappings()
        .first()
    )
    if row is None:
        return None
    history = conn.execute(
        select(message_status_history.c.status, message_status_history.c.at, message_status_history.c.detail)
        .where(message_status_history.c.message_id == message_id)
        .order_by(message_status_history.c.id)
    ).mappings()
    parts = conn.execute(
        select(
            message_parts.c.seq,
            message_parts.c.smsc_message_id,
            message_parts.c.status,
            message_parts.c.error_code,
            message_parts.c.submitted_at,
            message_parts.c.done_at,
        )
        .where(message_parts.c.message_id == message_id)
        .order_by(message_parts.c.seq)
    ).mappings()
    return {**row, "history": [dict(h) for h in history], "parts": [dict(p) for p in parts]}
