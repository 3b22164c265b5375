"""Broadcasts: a notice to every subscriber of a topic in some zones, fanned out inside the database.

Accepting a broadcast event writes one ``broadcasts`` row (the text rendered once per language,
its timing, the zones) and counts its recipients; no message yet. The fan-out then inserts the
messages chunk by chunk with ``INSERT … SELECT`` over citizens in id order (keyset), so the
subscribers never pass through Python. Each chunk commits its messages, their history and the
broadcast's ``last_citizen_id`` together: after a crash the fan-out resumes after the last
committed chunk, and the unique index on (broadcast_id, citizen_id) makes a duplicate impossible.
A citizen matching several zones is selected once (``EXISTS``), opted-out citizens never.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Connection,
    DateTime,
    Integer,
    SmallInteger,
    String,
    Text,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    update,
)

from gateway.domain.status import MessageStatus

from . import outbox
from .models import broadcasts, citizens, events, message_status_history, messages, subscriptions, zones

PENDING, RUNNING, DONE, CANCELLED, EXPIRED = "pending", "running", "done", "cancelled", "expired"
UNFINISHED = (PENDING, RUNNING)
_WAITING = (MessageStatus.QUEUED.value, MessageStatus.HELD.value)  # messages not handed to a link yet


def _audience(topic: str, zone_ids: Sequence[int] | None, scope: str):
    """The WHERE clause on citizens for a broadcast's recipients."""
    c = citizens.c
    conditions = [not_(c.opted_out)]
    if scope != "citizens":
        s = subscriptions.c
        match = [s.citizen_id == c.id, s.topic == topic]
        if zone_ids is not None:
            match.append(or_(s.zone_id.in_(list(zone_ids)), s.zone_id.is_(None)))
        conditions.append(exists().where(*match))
    return and_(*conditions)


def count_recipients(conn: Connection, topic: str, zone_ids: Sequence[int] | None, scope: str) -> int:
    return conn.execute(
        select(func.count()).select_from(citizens).where(_audience(topic, zone_ids, scope))
    ).scalar_one()


def create(
    conn: Connection,
    *,
    event_id: int,
    client_id: str,
    event_type: str,
    topic: str,
    zone_ids: Sequence[int] | None,
    scope: str,
    priority: int,
    texts: dict[str, dict],
    message_status: str,
    not_before: datetime,
    expires_at: datetime,
    now: datetime,
) -> tuple[int, int]:
    """Record a broadcast to fan out; returns (its id, the recipients counted now)."""
    recipients = count_recipients(conn, topic, zone_ids, scope)
    broadcast_id = conn.execute(
        insert(broadcasts)
        .values(
            event_id=event_id,
            client_id=client_id,
            type=event_type,
            topic=topic,
            zone_ids=list(zone_ids) if zone_ids is not None else None,
            scope=scope,
            priority=priority,
            texts=texts,
            message_status=message_status,
            not_before=not_before,
            expires_at=expires_at,
            status=PENDING if recipients else DONE,
            last_citizen_id=0,
            recipients=recipients,
            queued=0,
            created_at=now,
            updated_at=now,
            finished_at=None if recipients else now,
        )
        .returning(broadcasts.c.id)
    ).scalar_one()
    return broadcast_id, recipients


@dataclass(slots=True)
class ChunkResult:
    broadcast_id: int
    inserted: int
    status: str  # the broadcast's status after the chunk
    priority: int

    @property
    def finished(self) -> bool:
        return self.status not in UNFINISHED


def _per_language(texts: dict[str, dict], key: str, type_):
    """CASE citizens.language WHEN 'en' THEN … ELSE <Spanish> END, for one field of the texts."""
    fallback = texts.get("es") or next(iter(texts.values()))
    whens = {lang: literal(t[key], type_) for lang, t in texts.items() if t is not fallback}
    default = literal(fallback[key], type_)
    if not whens:
        return default
    return case(whens, value=citizens.c.language, else_=default)


def fanout_chunk(conn: Connection, broadcast_id: int, chunk: int, now: datetime) -> ChunkResult:
    """Queue the next ``chunk`` recipients of a broadcast, in one transaction."""
    b = broadcasts.c
    query = select(broadcasts).where(b.id == broadcast_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()  # one fan-out per broadcast at a time, cancel waits for it
    row = conn.execute(query).mappings().first()
    if row is None:
        return ChunkResult(broadcast_id, 0, DONE, 0)
    if row["status"] not in UNFINISHED:
        return ChunkResult(broadcast_id, 0, row["status"], row["priority"])
    if row["expires_at"] <= now:
        conn.execute(
            update(broadcasts)
            .where(b.id == broadcast_id)
            .values(status=EXPIRED, updated_at=now, finished_at=now)
        )
        return ChunkResult(broadcast_id, 0, EXPIRED, row["priority"])
    lo = row["last_citizen_id"]
    audience = _audience(row["topic"], row["zone_ids"], row["scope"])
    if row["scope"] == "citizens":
        boundary = select(citizens.c.id).where(citizens.c.id > lo).order_by(citizens.c.id)
    else:
        s = subscriptions.c
        match = [s.topic == row["topic"], s.citizen_id > lo]
        if row["zone_ids"] is not None:
            match.append(or_(s.zone_id.in_(list(row["zone_ids"])), s.zone_id.is_(None)))
        boundary = select(s.citizen_id).where(*match).order_by(s.citizen_id)
    hi = conn.execute(boundary.offset(chunk - 1).limit(1)).scalar()
    in_range = citizens.c.id > lo if hi is None else and_(citizens.c.id > lo, citizens.c.id <= hi)
    texts = row["texts"]
    status = MessageStatus(row["message_status"])
    source = select(
        literal(row["event_id"], Integer),
        literal(broadcast_id, Integer),
        citizens.c.id,
        citizens.c.msisdn,
        _per_language({lang: {"language": lang} for lang in texts}, "language", String),
        _per_language(texts, "body", Text),
        _per_language(texts, "encoding", String),
        _per_language(texts, "segments", SmallInteger),
        literal(row["priority"], SmallInteger),
        literal(status.value, String),
        literal(row["not_before"], DateTime),
        literal(row["expires_at"], DateTime),
        literal(0, SmallInteger),
        literal(now, DateTime),
        literal(now, DateTime),
    ).where(in_range, audience)
    columns = [
        "event_id", "broadcast_id", "citizen_id", "msisdn", "language", "body", "encoding", "segments",
        "priority", "status", "not_before", "expires_at", "attempts", "created_at", "updated_at",
    ]  # fmt: skip
    conn.execute(insert(messages).from_select(columns, source))
    m = messages.c
    mine = and_(m.broadcast_id == broadcast_id, m.citizen_id > lo)
    if hi is not None:
        mine = and_(mine, m.citizen_id <= hi)
    # (rowcount of INSERT … SELECT is not reported by every driver: count the chunk's range)
    inserted = conn.execute(select(func.count()).select_from(messages).where(mine)).scalar_one()
    if inserted:
        detail = "quiet hours: released when they end" if status == MessageStatus.HELD else None
        conn.execute(
            insert(message_status_history).from_select(
                ["message_id", "status", "at", "detail"],
                select(
                    m.id, literal(status.value, String), literal(now, DateTime), literal(detail, String)
                ).where(mine),
            )
        )
    finished = hi is None
    values = {"queued": b.queued + inserted, "updated_at": now, "status": DONE if finished else RUNNING}
    if finished:
        values["finished_at"] = now
    else:
        values["last_citizen_id"] = hi
    conn.execute(update(broadcasts).where(b.id == broadcast_id).values(**values))
    return ChunkResult(broadcast_id, inserted, values["status"], row["priority"])


def unfinished(conn: Connection) -> list[tuple[int, int]]:
    """(id, priority) of broadcasts still to fan out, most urgent first."""
    b = broadcasts.c
    return [
        (r.id, r.priority)
        for r in conn.execute(
            select(b.id, b.priority).where(b.status.in_(UNFINISHED)).order_by(b.priority, b.id)
        )
    ]


def get(conn: Connection, broadcast_id: int) -> dict | None:
    b = broadcasts.c
    row = (
        conn.execute(
            select(broadcasts, events.c.event_key)
            .join(events, events.c.id == b.event_id)
            .where(b.id == broadcast_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    counts = dict(
        conn.execute(
            select(messages.c.status, func.count())
            .where(messages.c.broadcast_id == broadcast_id)
            .group_by(messages.c.status)
        ).all()
    )
    names = []
    if row["zone_ids"]:
        names = list(
            conn.execute(
                select(zones.c.name).where(zones.c.id.in_(row["zone_ids"])).order_by(zones.c.id)
            ).scalars()
        )
    return {**row, "messages": counts, "zone_names": names}


class NotCancellable(ValueError):
    """The broadcast is finished (or already cancelled): a cancel would change nothing."""


def cancel(conn: Connection, broadcast_id: int, now: datetime) -> dict | None:
    """Stop the fan-out and cancel every message not yet handed to a link; returns the counts.

    Only an unfinished broadcast can be cancelled: one still fanning out (pending, running) or
    with messages still waiting (queued, held). One whose messages have all left or ended, or that
    was cancelled already, raises NotCancellable and nothing changes."""
    b = broadcasts.c
    query = select(b.id, b.status, b.client_id, b.event_id).where(b.id == broadcast_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()  # waits for a fan-out chunk in progress
    row = conn.execute(query).first()
    if row is None:
        return None
    if row.status == CANCELLED:
        raise NotCancellable(f"broadcast {broadcast_id} is already cancelled")
    if row.status not in UNFINISHED:
        m = messages.c
        waiting = conn.execute(
            select(m.id).where(m.broadcast_id == broadcast_id, m.status.in_(_WAITING)).limit(1)
        ).first()
        if waiting is None:
            raise NotCancellable(
                f"broadcast {broadcast_id} is finished ({row.status}): every message was already "
                "handed to a carrier or ended; nothing is left to cancel"
            )
    conn.execute(
        update(broadcasts)
        .where(b.id == broadcast_id)
        .values(status=CANCELLED, updated_at=now, finished_at=func.coalesce(b.finished_at, now))
    )
    cancelled = outbox.cancel_broadcast_messages(
        conn, broadcast_id, now, "broadcast cancelled by an operator"
    )
    return {
        "id": broadcast_id,
        "previous_status": row.status,
        "cancelled": cancelled,
        "client_id": row.client_id,
    }
