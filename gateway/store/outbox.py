"""The outbox: durable queue of messages, leased claims, and status transitions with history.

A claim is a lease (owner, until): a process that dies leaves rows whose lease expires and that
any process may claim again, so after a crash only messages in flight can be sent twice.
On PostgreSQL the claim skips rows other processes hold (FOR UPDATE SKIP LOCKED).
Over 400 lines because a message's every transition is here, beside the claim that starts them:
the status rules live in one module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import (
    Connection,
    and_,
    delete,
    insert,
    or_,
    select,
    update,
)

from gateway.domain.status import FINAL_STATUSES, MessageStatus
from smpp_client.message_ids import Relation, canonical

from . import driver
from .models import events, message_parts, messages


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
    route: str | None = None  # the carrier it was routed to

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


# Nothing is sent to an opted-out citizen but the replies to their own SMS (the opt-out confirmation
# among them). Closes the race of an opt-out committed while a fan-out chunk or an intake batch was
# inserting; such a message waits until it expires.
_NOT_OPTED_OUT = (
    "(m.citizen_id IS NULL"
    " OR NOT EXISTS (SELECT 1 FROM citizens c WHERE c.id = m.citizen_id AND c.opted_out)"
    " OR EXISTS (SELECT 1 FROM mobile_messages mo WHERE mo.reply_message_id = m.id))"
)
_DUE = (
    "SELECT m.id, m.priority, m.not_before FROM messages m WHERE m.status = 'queued' AND m.route {route}"
    " AND m.not_before <= ? AND m.expires_at > ? AND (m.lease_until IS NULL OR m.lease_until < ?)"
    f" AND {_NOT_OPTED_OUT} ORDER BY m.priority, m.not_before, m.id LIMIT ?"
)
_LEASE = (
    "UPDATE messages SET lease_owner = ?, lease_until = ?, attempts = attempts + 1 WHERE {where}"
    " RETURNING id, msisdn, body, priority, segments, attempts, expires_at, attempts_at_retry, route"
)


def claim(
    conn: Connection,
    owner: str,
    limit: int,
    now: datetime,
    lease_seconds: float,
    routes: Sequence[str | None] = (None,),
) -> list[ClaimedMessage]:
    """Lease up to ``limit`` due messages routed to one of ``routes`` (None: not routed yet), most
    urgent first. Each route is read through the claim index in its order, so a claim costs its
    own rows whatever the queue holds for others. On PostgreSQL the rows are read FOR UPDATE SKIP
    LOCKED (other processes' claims are skipped); on SQLite the read is inside the one UPDATE, so
    it holds the write lock: two claimers never share a row."""
    if limit <= 0:
        return []
    to_db, from_db = driver.datetime_to_db(conn), driver.datetime_from_db(conn)
    stamp = to_db(now)
    lease_until = to_db(now + timedelta(seconds=lease_seconds))
    reads = []  # (sql, params) per route
    for route in dict.fromkeys(routes):
        sql = _DUE.format(route="IS NULL" if route is None else "= ?")
        reads.append((sql, (*(() if route is None else (route,)), stamp, stamp, stamp, limit)))
    if conn.dialect.name == "postgresql":
        due = [
            row
            for sql, params in reads
            for row in driver.run(conn, sql + " FOR UPDATE OF m SKIP LOCKED", params)
        ]
        due.sort(key=lambda row: (row[1], row[2], row[0]))
        ids = [row[0] for row in due[:limit]]
        if not ids:
            return []
        where, params = driver.in_list(conn, "id", ids)
        rows = driver.run(conn, _LEASE.format(where=where), (owner, lease_until, *params))
    else:
        union = " UNION ALL ".join(f"SELECT * FROM ({sql})" for sql, _ in reads)
        chosen = f"id IN (SELECT id FROM ({union}) ORDER BY priority, not_before, id LIMIT ?)"
        params = [value for _, read in reads for value in read]
        rows = driver.run(conn, _LEASE.format(where=chosen), (owner, lease_until, *params, limit))
    claimed = [
        ClaimedMessage(mid, msisdn, body, priority, segments, attempts, from_db(expires), at_retry, route)
        for mid, msisdn, body, priority, segments, attempts, expires, at_retry, route in rows
    ]
    claimed.sort(key=lambda m: (m.priority, m.id))
    return claimed


def unrouted(conn: Connection, limit: int) -> list[tuple[int, str]]:
    """(id, number) of queued messages not routed to a carrier yet, oldest first."""
    return driver.run(
        conn,
        "SELECT id, msisdn FROM messages WHERE status = 'queued' AND route IS NULL ORDER BY id LIMIT ?",
        (limit,),
    )


_ROUTE = driver.Batch(
    "UPDATE messages SET route = ? WHERE id = ? AND route IS NULL",
    "UPDATE messages SET route = v.route FROM unnest(?::text[], ?::int[]) AS v(route, id)"
    " WHERE messages.id = v.id AND messages.route IS NULL",
)


def set_routes(conn: Connection, routes: Sequence[tuple[str, int]]) -> None:
    """(carrier, message id): the carrier each message goes to (still queued and unrouted)."""
    driver.run_batch(conn, _ROUTE, routes)


def forget_routes(conn: Connection, known: Sequence[str]) -> int:
    """Queued messages routed to a carrier no longer configured are routed again."""
    where, params = driver.in_list(conn, "route", known)
    sql = f"UPDATE messages SET route = NULL WHERE status = 'queued' AND route IS NOT NULL AND NOT ({where})"
    return len(driver.run(conn, sql + " RETURNING id", params))


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
    # the canonical submit id it names, where the link knew the carrier's hex/decimal relation
    submit_id: str | None = None
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


_SUBMITTED = driver.Batch(
    "UPDATE messages SET status = 'submitted', carrier = ?1, smsc_message_id = ?2, submitted_at = ?3,"
    " updated_at = ?3, encoding = COALESCE(?4, encoding), segments = COALESCE(?5, segments),"
    " lease_owner = NULL, lease_until = NULL, error_code = NULL, error_text = NULL"
    " WHERE id = ?6 AND status = 'queued'",
    "UPDATE messages SET status = 'submitted', carrier = v.carrier, smsc_message_id = v.smsc,"
    " submitted_at = v.at, updated_at = v.at, encoding = COALESCE(v.encoding, messages.encoding),"
    " segments = COALESCE(v.segments, messages.segments), lease_owner = NULL, lease_until = NULL,"
    " error_code = NULL, error_text = NULL"
    " FROM unnest(?::text[], ?::text[], ?::timestamp[], ?::text[], ?::smallint[], ?::int[])"
    " AS v(carrier, smsc, at, encoding, segments, id)"
    " WHERE messages.id = v.id AND messages.status = 'queued'",
)
# a write-back changes only a row this process still holds: another process that took the message
# over (this one's heartbeat went stale, or its lease ended) owns what happens to it now
_OWNED = " AND lease_owner = ?"
_SUBMITTED_OWNED = driver.Batch(
    _SUBMITTED.sqlite + " AND lease_owner = ?7", _SUBMITTED.postgresql + " AND messages.lease_owner = ?"
)
_PART = driver.Batch(
    "INSERT INTO message_parts (message_id, seq, carrier, smsc_message_id, status, submitted_at)"
    " VALUES (?, ?, ?, ?, 'submitted', ?)",
    "INSERT INTO message_parts (message_id, seq, carrier, smsc_message_id, status, submitted_at)"
    " SELECT m, s, c, i, 'submitted', a"
    " FROM unnest(?::int[], ?::smallint[], ?::text[], ?::text[], ?::timestamp[]) AS v(m, s, c, i, a)",
)
_HISTORY = driver.Batch(
    "INSERT INTO message_status_history (message_id, status, at, detail) VALUES (?, ?, ?, ?)",
    "INSERT INTO message_status_history (message_id, status, at, detail)"
    " SELECT * FROM unnest(?::int[], ?::text[], ?::timestamp[], ?::text[])",
)


def apply_submitted(conn: Connection, items: Sequence[Submitted], owner: str | None = None) -> None:
    """Record submit results; with ``owner``, only on rows whose lease is still that owner's."""
    if not items:
        return
    to_db = driver.datetime_to_db(conn)
    stamps = {id(s): to_db(s.at) for s in items}
    rows = [(s.carrier, s.smsc_ids[0], stamps[id(s)], s.encoding, s.segments, s.message_id) for s in items]
    if owner is None:
        changed = driver.run_batch(conn, _SUBMITTED, rows)
    else:
        changed = driver.run_batch(conn, _SUBMITTED_OWNED, rows, owner)
    if changed != len(items):  # some left the queue meanwhile (cancelled, expired): record only the others
        now_submitted = set()
        for chunk in driver.chunks([s.message_id for s in items]):
            where, params = driver.in_list(conn, "id", chunk)
            sql = f"SELECT id, submitted_at FROM messages WHERE {where} AND status = 'submitted'"
            now_submitted.update((mid, at) for mid, at in driver.run(conn, sql, params))
        for s in items:
            s.applied = (s.message_id, stamps[id(s)]) in now_submitted
        items = [s for s in items if s.applied]
        if not items:
            return
    driver.run_batch(
        conn,
        _PART,
        [
            # canonical: what receipts are matched on
            (s.message_id, seq, s.carrier, canonical(smsc_id), stamps[id(s)])
            for s in items
            for seq, smsc_id in enumerate(s.smsc_ids, start=1)
        ],
    )
    driver.run_batch(
        conn,
        _HISTORY,
        [
            (
                s.message_id,
                MessageStatus.SUBMITTED.value,
                stamps[id(s)],
                (f"{s.carrier} id {s.smsc_ids[0]}" + (f"; route {s.detail}" if s.detail else ""))[:255],
            )
            for s in items
        ],
    )


_RETRY = (
    "UPDATE messages SET not_before = ?, lease_owner = NULL, lease_until = NULL, attempts = attempts - ?,"
    " error_code = ?, error_text = ?, updated_at = ? WHERE id = ? AND status = 'queued'"
)


def apply_retries(conn: Connection, items: Sequence[Retry], owner: str | None = None) -> None:
    """Back to the queue; with ``owner``, only rows whose lease is still that owner's."""
    if not items:
        return
    to_db = driver.datetime_to_db(conn)
    extra = () if owner is None else (owner,)
    driver.run_many(
        conn,
        _RETRY if owner is None else _RETRY + _OWNED,
        [
            (
                to_db(r.not_before),
                0 if r.count_attempt else 1,
                r.error_code,
                r.error_text[:255],
                to_db(r.at),
                r.message_id,
                *extra,
            )
            for r in items
        ],
    )


_FAILED = (
    "UPDATE messages SET status = ?, carrier = COALESCE(?, carrier), error_code = ?, error_text = ?,"
    " lease_owner = NULL, lease_until = NULL, updated_at = ?, done_at = ? WHERE id = ?"
)


def apply_failures(conn: Connection, items: Sequence[Failed], owner: str | None = None) -> None:
    """Final failures (the first of a message wins); with ``owner``, only rows whose lease is still
    that owner's."""
    if not items:
        return
    open_ids = set()
    finals = ", ".join(f"'{v}'" for v in _FINAL_VALUES)
    for chunk in driver.chunks([f.message_id for f in items]):
        where, params = driver.in_list(conn, "id", chunk)
        sql = f"SELECT id FROM messages WHERE {where} AND status NOT IN ({finals})"
        if owner is not None:
            sql, params = sql + _OWNED, (*params, owner)
        open_ids.update(mid for (mid,) in driver.run(conn, sql, params))
    todo = []
    for f in items:  # the first failure of a message wins
        f.applied = f.message_id in open_ids
        if f.applied:
            open_ids.discard(f.message_id)
            todo.append(f)
    if not todo:
        return
    to_db = driver.datetime_to_db(conn)
    rows = []
    for f in todo:
        at = to_db(f.at)
        rows.append((f.status.value, f.carrier, f.error_code, f.error_text[:255], at, at, f.message_id))
    driver.run_many(conn, _FAILED, rows)
    _history(conn, [(f.message_id, f.status, f.error_text[:255], f.at) for f in todo])


# after(conn, message ids, new status, now): runs in the transaction that changed them (callbacks)
StatusHook = Callable[[Connection, list[int], MessageStatus, datetime], None]
_WAITING = (MessageStatus.QUEUED.value, MessageStatus.HELD.value)


def expire_overdue(conn: Connection, now: datetime, after: StatusHook | None = None) -> int:
    """Queued or held messages past their validity become expired: never sent late.

    The UPDATE claims its rows (it changes only rows still waiting, and on PostgreSQL a row another
    transaction is changing is read again after it commits), and only the rows it changed get a
    history row and a callback: two processes running it at once expire each message once.
    ``after(conn, ids, status, now)`` sees the ids of the expired messages that were not part of a
    broadcast (for status callbacks), in the same transaction.
    """
    due = and_(
        messages.c.status.in_(_WAITING),
        messages.c.expires_at <= now,
        or_(messages.c.lease_until.is_(None), messages.c.lease_until < now),
    )
    expired = conn.execute(
        update(messages)
        .where(due)
        .values(status=MessageStatus.EXPIRED.value, updated_at=now, done_at=now, error_text="validity ended")
        .returning(messages.c.id, messages.c.broadcast_id)
    ).all()
    _history(
        conn, [(mid, MessageStatus.EXPIRED, "validity ended before submission", now) for mid, _ in expired]
    )
    single = sorted(mid for mid, broadcast in expired if broadcast is None)
    if single and after is not None:
        after(conn, single, MessageStatus.EXPIRED, now)
    return len(expired)


def _history(conn: Connection, rows: list[tuple[int, MessageStatus, str | None, datetime]]) -> None:
    if rows:
        to_db = driver.datetime_to_db(conn)
        driver.run_batch(conn, _HISTORY, [(mid, st.value, to_db(at), detail) for mid, st, detail, at in rows])


# --- quiet hours, operator actions ---------------------------------------------------------------


def release_held(conn: Connection, now: datetime) -> int:
    """Messages held by quiet hours whose time has come become queued (claimed in their order).

    Like the expiry, the UPDATE claims its rows: only those it changed get a history row, so two
    processes releasing at once release each message once."""
    due = and_(messages.c.status == MessageStatus.HELD.value, messages.c.not_before <= now)
    released = conn.execute(
        update(messages)
        .where(due)
        .values(status=MessageStatus.QUEUED.value, updated_at=now)
        .returning(messages.c.id)
    ).scalars()
    rows = [(mid, MessageStatus.QUEUED, "quiet hours ended", now) for mid in released]
    _history(conn, rows)
    return len(rows)


def cancel_broadcast_messages(conn: Connection, broadcast_id: int, now: datetime, detail: str) -> int:
    """A broadcast's messages not yet handed to a link (queued or held) become cancelled (each
    once, with its history row, whatever runs at the same time)."""
    waiting = and_(
        messages.c.broadcast_id == broadcast_id,
        messages.c.status.in_(_WAITING),
        or_(messages.c.lease_until.is_(None), messages.c.lease_until < now),
    )
    cancelled = conn.execute(
        update(messages)
        .where(waiting)
        .values(status=MessageStatus.CANCELLED.value, updated_at=now, done_at=now, error_text=detail[:255])
        .returning(messages.c.id)
    ).scalars()
    rows = [(mid, MessageStatus.CANCELLED, detail[:255], now) for mid in cancelled]
    _history(conn, rows)
    return len(rows)


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
            route=None,
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


class NotCancellable(ValueError):
    pass


def cancel_message(conn: Connection, message_id: int, now: datetime, detail: str) -> dict | None:
    """An operator cancels one message still waiting (queued or held, not leased to a link).

    Returns None when there is no such message; raises NotCancellable when it has left already
    (leased, submitted) or ended."""
    m = messages.c
    waiting = and_(
        m.id == message_id,
        m.status.in_(_WAITING),
        or_(m.lease_until.is_(None), m.lease_until < now),
    )
    row = conn.execute(select(m.status, m.lease_until).where(m.id == message_id)).first()
    if row is None:
        return None
    changed = (
        conn.execute(
            update(messages)
            .where(waiting)
            .values(
                status=MessageStatus.CANCELLED.value, updated_at=now, done_at=now, error_text=detail[:255]
            )
            .returning(messages.c.id)
        )
        .scalars()
        .all()
    )
    _history(conn, [(mid, MessageStatus.CANCELLED, detail[:255], now) for mid in changed])
    if not changed:
        if row.status in _WAITING:
            raise NotCancellable(f"message {message_id} is being handed to a carrier; it cannot be cancelled")
        raise NotCancellable(
            f"message {message_id} is {row.status}; only queued or held messages can be cancelled"
        )
    return {"id": message_id, "status": MessageStatus.CANCELLED.value, "previous_status": row.status}
