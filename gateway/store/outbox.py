"""The outbox: durable queue of messages, leased claims, and status transitions with history.

A claim is a lease (owner, until): a process that dies leaves rows whose lease expires and that
any process may claim again, so after a crash only messages in flight can be sent twice.
On PostgreSQL the claim skips rows other processes hold (FOR UPDATE SKIP LOCKED).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import (
    Connection,
    DateTime,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from gateway.domain.status import FINAL_STATUSES, MessageStatus
from smpp_client.message_ids import Relation, canonical

from .models import events, message_parts, message_status_history, messages


@dataclass(slots=True)
class ClaimedMessage:
    id: int
    msisdn: str
    body: str
    priority: int
    segments: int
    attempts: int  # every submission over the message's life, this one included
    expires_at: datetime
    attempts_at_retry: int = 0  # attempts when an operator last retried it: the budget counts from there

    @property
    def attempts_since_retry(self) -> int:
        return self.attempts - self.attempts_at_retry


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
    _history(
        conn,
        [
            (mid, MessageStatus(v["status"]), _HELD_DETAIL if v["status"] == "held" else None, now)
            for mid, v in zip(ids, values, strict=True)
        ],
    )
    return ids


_HELD_DETAIL = "quiet hours: released when they end"


def _not_opted_out():
    """Issue 6: nothing is sent to an opted-out citizen but the replies to their own SMS (the
    opt-out confirmation among them). Closes the race of an opt-out committed while a fan-out chunk
    or an intake batch was inserting; such a message waits until it expires."""
    from sqlalchemy import exists, not_

    from .models import citizens, mobile_messages

    return or_(
        messages.c.citizen_id.is_(None),
        not_(exists().where(citizens.c.id == messages.c.citizen_id, citizens.c.opted_out)),
        exists().where(mobile_messages.c.reply_message_id == messages.c.id),
    )


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
            _not_opted_out(),
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
            messages.c.attempts_at_retry,
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
    encoding: str | None = None  # as sent (the carrier's concatenation may change the segments)
    segments: int | None = None
    detail: str | None = None  # how the carrier was chosen (failovers), for the history
    applied: bool = True  # False when the message had left the queue (cancelled, expired) meanwhile


@dataclass(slots=True)
class Retry:
    """A temporary failure: back to the queue, not before ``not_before``.

    ``count_attempt=False`` (throttled, never sent, lease or shutdown) gives back the attempt the
    claim counted: only real failures count against ``max_attempts``.
    """

    message_id: int
    not_before: datetime
    error_code: int | None
    error_text: str
    at: datetime
    count_attempt: bool = True


@dataclass(slots=True)
class Failed:
    message_id: int
    status: MessageStatus
    error_code: int | None
    error_text: str
    at: datetime
    carrier: str | None = None
    applied: bool = True  # False when the message was already final (another failure won)


@dataclass(slots=True)
class ReceiptUpdate:
    """A final receipt for one part; matched by :func:`gateway.store.receipt_matching.apply_receipts`."""

    carrier: str
    smsc_id: str  # the id as the carrier wrote it in the receipt (usable: smpp_client.message_ids)
    part_status: MessageStatus
    error_code: str | None
    at: datetime
    matched: bool = field(default=False)
    # set by apply_receipts when matched:
    message_id: int | None = None
    message_status: MessageStatus | None = None  # the message's new status, when this receipt changed it
    latency: float | None = None  # seconds from the part's submission to this receipt
    evidence: Relation | None = None  # the id relation this match showed, while the carrier's was unknown
    # set by apply_receipts when not matched:
    ambiguous: bool = False  # open parts in more than one form: waits until the carrier's relation is known
    final_only: bool = False  # on its last try: only parts already final have this id
    last_try: bool = False  # set by the status writer before a held receipt's last try


_FINAL_VALUES = tuple(s.value for s in FINAL_STATUSES)
_CHUNK = 2000  # ids per IN (...) list


def _chunks(items: Sequence, size: int = _CHUNK):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def apply_submitted(conn: Connection, items: Sequence[Submitted]) -> None:
    if not items:
        return
    changed = conn.execute(
        update(messages)
        .where(messages.c.id == bindparam("mid"), messages.c.status == MessageStatus.QUEUED.value)
        .values(
            status=MessageStatus.SUBMITTED.value,
            carrier=bindparam("carrier"),
            smsc_message_id=bindparam("smsc_id"),
            submitted_at=bindparam("at"),
            updated_at=bindparam("at"),
            encoding=func.coalesce(bindparam("enc", type_=messages.c.encoding.type), messages.c.encoding),
            segments=func.coalesce(bindparam("seg", type_=messages.c.segments.type), messages.c.segments),
            lease_owner=None,
            lease_until=None,
            error_code=None,
            error_text=None,
        ),
        [
            {
                "mid": s.message_id,
                "carrier": s.carrier,
                "smsc_id": s.smsc_ids[0],
                "at": s.at,
                "enc": s.encoding,
                "seg": s.segments,
            }
            for s in items
        ],
    ).rowcount
    if changed != len(items):  # some left the queue meanwhile (cancelled, expired): record only the others
        ids = [s.message_id for s in items]
        now_submitted = {
            (mid, at)
            for chunk in _chunks(ids)
            for mid, at in conn.execute(
                select(messages.c.id, messages.c.submitted_at).where(
                    messages.c.id.in_(chunk), messages.c.status == MessageStatus.SUBMITTED.value
                )
            )
        }
        for s in items:
            s.applied = (s.message_id, s.at) in now_submitted
        items = [s for s in items if s.applied]
        if not items:
            return
    conn.execute(
        insert(message_parts),
        [
            {
                "message_id": s.message_id,
                "seq": seq,
                "carrier": s.carrier,
                "smsc_message_id": canonical(smsc_id),  # what receipts are matched on
                "status": MessageStatus.SUBMITTED.value,
                "submitted_at": s.at,
            }
            for s in items
            for seq, smsc_id in enumerate(s.smsc_ids, start=1)
        ],
    )
    _history(
        conn,
        [
            (
                s.message_id,
                MessageStatus.SUBMITTED,
                (f"{s.carrier} id {s.smsc_ids[0]}" + (f"; route {s.detail}" if s.detail else ""))[:255],
                s.at,
            )
            for s in items
        ],
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
            attempts=messages.c.attempts - bindparam("undo", type_=messages.c.attempts.type),
            error_code=bindparam("code"),
            error_text=bindparam("text"),
            updated_at=bindparam("at"),
        ),
        [
            {
                "mid": r.message_id,
                "nb": r.not_before,
                "undo": 0 if r.count_attempt else 1,
                "code": r.error_code,
                "text": r.error_text[:255],
                "at": r.at,
            }
            for r in items
        ],
    )


def apply_failures(conn: Connection, items: Sequence[Failed]) -> None:
    if not items:
        return
    ids = [f.message_id for f in items]
    open_ids = {
        mid
        for chunk in _chunks(ids)
        for (mid,) in conn.execute(
            select(messages.c.id).where(messages.c.id.in_(chunk), messages.c.status.notin_(_FINAL_VALUES))
        )
    }
    todo = []
    for f in items:  # the first failure of a message wins
        f.applied = f.message_id in open_ids
        if f.applied:
            open_ids.discard(f.message_id)
            todo.append(f)
    if not todo:
        return
    conn.execute(
        update(messages)
        .where(messages.c.id == bindparam("mid"))
        .values(
            status=bindparam("st"),
            carrier=func.coalesce(bindparam("carrier", type_=messages.c.carrier.type), messages.c.carrier),
            error_code=bindparam("code"),
            error_text=bindparam("text"),
            lease_owner=None,
            lease_until=None,
            updated_at=bindparam("at"),
            done_at=bindparam("at"),
        ),
        [
            {
                "mid": f.message_id,
                "st": f.status.value,
                "carrier": f.carrier,
                "code": f.error_code,
                "text": f.error_text[:255],
                "at": f.at,
            }
            for f in todo
        ],
    )
    _history(conn, [(f.message_id, f.status, f.error_text[:255], f.at) for f in todo])


# after(conn, message ids, new status, now): runs in the transaction that changed them (callbacks)
StatusHook = Callable[[Connection, list[int], MessageStatus, datetime], None]
_WAITING = (MessageStatus.QUEUED.value, MessageStatus.HELD.value)


def expire_overdue(conn: Connection, now: datetime, after: StatusHook | None = None) -> int:
    """Queued or held messages past their validity become expired: never sent late.

    Set-based (a night's backlog of broadcast messages may expire at once). ``after(conn, ids,
    status, now)`` sees the ids of the expired messages that were not part of a broadcast (for
    status callbacks), in the same transaction.
    """
    due = and_(
        messages.c.status.in_(_WAITING),
        messages.c.expires_at <= now,
        or_(messages.c.lease_until.is_(None), messages.c.lease_until < now),
    )
    single = []
    if after is not None:
        singles = select(messages.c.id).where(due, messages.c.broadcast_id.is_(None))
        single = list(conn.execute(singles).scalars())
    conn.execute(
        insert(message_status_history).from_select(
            ["message_id", "status", "at", "detail"],
            select(
                messages.c.id,
                literal(MessageStatus.EXPIRED.value),
                literal(now, DateTime),
                literal("validity ended before submission"),
            ).where(due),
        )
    )
    count = conn.execute(
        update(messages)
        .where(due)
        .values(status=MessageStatus.EXPIRED.value, updated_at=now, done_at=now, error_text="validity ended")
    ).rowcount
    if single and after is not None:
        after(conn, single, MessageStatus.EXPIRED, now)
    return count


def _history(conn: Connection, rows: list[tuple[int, MessageStatus, str | None, datetime]]) -> None:
    if rows:
        conn.execute(
            insert(message_status_history),
            [
                {"message_id": mid, "status": st.value, "at": at, "detail": detail}
                for mid, st, detail, at in rows
            ],
        )


# --- quiet hours, operator actions ---------------------------------------------------------------


def _history_from(conn: Connection, where, status: MessageStatus, now: datetime, detail: str | None) -> None:
    """One history row per message matching ``where``, set-based (no ids through Python)."""
    rows = select(messages.c.id, literal(status.value), literal(now, DateTime), literal(detail))
    columns = ["message_id", "status", "at", "detail"]
    conn.execute(insert(message_status_history).from_select(columns, rows.where(where)))


def release_held(conn: Connection, now: datetime) -> int:
    """Messages held by quiet hours whose time has come become queued (claimed in their order)."""
    due = and_(messages.c.status == MessageStatus.HELD.value, messages.c.not_before <= now)
    _history_from(conn, due, MessageStatus.QUEUED, now, "quiet hours ended")
    return conn.execute(
        update(messages).where(due).values(status=MessageStatus.QUEUED.value, updated_at=now)
    ).rowcount


def cancel_broadcast_messages(conn: Connection, broadcast_id: int, now: datetime, detail: str) -> int:
    """A broadcast's messages not yet handed to a link (queued or held) become cancelled."""
    waiting = and_(
        messages.c.broadcast_id == broadcast_id,
        messages.c.status.in_(_WAITING),
        or_(messages.c.lease_until.is_(None), messages.c.lease_until < now),
    )
    _history_from(conn, waiting, MessageStatus.CANCELLED, now, detail[:255])
    return conn.execute(
        update(messages)
        .where(waiting)
        .values(status=MessageStatus.CANCELLED.value, updated_at=now, done_at=now, error_text=detail[:255])
    ).rowcount


def client_of(conn: Connection, message_id: int) -> str | None:
    """The CRM client whose event queued the message (None: no such message, or a reply)."""
    return conn.execute(
        select(events.c.client_id)
        .join(messages, messages.c.event_id == events.c.id)
        .where(messages.c.id == message_id)
    ).scalar()


RETRYABLE = frozenset(
    {MessageStatus.FAILED, MessageStatus.EXPIRED, MessageStatus.UNDELIVERABLE, MessageStatus.REJECTED}
)


class NotRetryable(ValueError):
    pass


def retry_message(
    conn: Connection, message_id: int, plan: Callable[[int], tuple], now: datetime
) -> dict | None:
    """An operator sends a failed, expired, undeliverable or rejected message again.

    ``plan(priority) -> (status, not_before, expires_at)`` gives its new timing (quiet hours and a
    fresh validity). Its SMPP parts are forgotten (their SMSC ids stay in the history) so the new
    submission numbers its parts from 1. ``attempts`` keeps counting every submission; the retry
    budget (``max_attempts``) starts afresh from ``attempts_at_retry``. Returns None when there is
    no such message; raises NotRetryable when its status does not allow it or its citizen has
    opted out.
    """
    from .models import citizens

    row = conn.execute(
        select(
            messages.c.id,
            messages.c.status,
            messages.c.priority,
            messages.c.smsc_message_id,
            citizens.c.opted_out,
        )
        .select_from(messages.outerjoin(citizens, citizens.c.id == messages.c.citizen_id))
        .where(messages.c.id == message_id)
    ).first()
    if row is None:
        return None
    if row.status not in RETRYABLE:
        allowed = ", ".join(sorted(RETRYABLE))
        raise NotRetryable(f"message {message_id} is {row.status}; only {allowed} messages can be retried")
    if row.opted_out:
        raise NotRetryable(f"message {message_id}: its recipient has opted out")
    status, not_before, expires_at = plan(row.priority)
    conn.execute(delete(message_parts).where(message_parts.c.message_id == message_id))
    conn.execute(
        update(messages)
        .where(messages.c.id == message_id)
        .values(
            status=MessageStatus(status).value,
            not_before=not_before,
            expires_at=expires_at,
            attempts_at_retry=messages.c.attempts,
            carrier=None,
            smsc_message_id=None,
            lease_owner=None,
            lease_until=None,
            error_code=None,
            error_text=None,
            submitted_at=None,
            done_at=None,
            updated_at=now,
        )
    )
    detail = "retried by an operator"
    if row.smsc_message_id:
        detail += f" (was {row.status}, SMSC id {row.smsc_message_id})"
    _history(conn, [(message_id, MessageStatus(status), detail[:255], now)])
    return {"id": message_id, "status": MessageStatus(status).value, "previous_status": row.status}
