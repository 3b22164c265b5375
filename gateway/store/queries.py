"""Read models for the API: the filtered message list (keyset pagination) and the dashboard stats."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, case, func, select

from gateway.domain.status import MessageStatus, Priority

from .models import broadcasts, callbacks, events, messages

FAILED_STATUSES = (
    MessageStatus.FAILED.value,
    MessageStatus.UNDELIVERABLE.value,
    MessageStatus.REJECTED.value,
    MessageStatus.EXPIRED.value,
)


@dataclass(slots=True)
class MessageFilter:
    client_id: str
    statuses: Sequence[str] = ()
    event_key: str | None = None
    msisdn: str | None = None
    since: datetime | None = None  # created at or after (naive UTC)
    broadcast_id: int | None = None
    before_id: int | None = None  # keyset cursor: ids below this one
    limit: int = 50


def list_messages(conn: Connection, f: MessageFilter) -> tuple[list[dict], int | None]:
    """Newest first; returns (rows, the cursor for the next page or None)."""
    m = messages.c
    query = (
        select(messages, events.c.event_key)
        .join(events, events.c.id == m.event_id)
        .where(events.c.client_id == f.client_id)
    )
    if f.statuses:
        query = query.where(m.status.in_(list(f.statuses)))
    if f.event_key is not None:
        query = query.where(events.c.event_key == f.event_key)
    if f.msisdn is not None:
        query = query.where(m.msisdn == f.msisdn)
    if f.since is not None:
        query = query.where(m.created_at >= f.since)
    if f.broadcast_id is not None:
        query = query.where(m.broadcast_id == f.broadcast_id)
    if f.before_id is not None:
        query = query.where(m.id < f.before_id)
    rows = [dict(r) for r in conn.execute(query.order_by(m.id.desc()).limit(f.limit + 1)).mappings()]
    more = len(rows) > f.limit
    rows = rows[: f.limit]
    return rows, (rows[-1]["id"] if more and rows else None)


def stats(conn: Connection, now: datetime) -> dict:
    m = messages.c
    by_status = {s.value: 0 for s in MessageStatus}
    by_status.update(
        dict(conn.execute(select(m.status, func.count()).group_by(m.status)).all())  # type: ignore[arg-type]
    )
    depth = {p.name.lower(): {"queued": 0, "held": 0} for p in Priority}
    waiting = conn.execute(
        select(m.priority, m.status, func.count())
        .where(m.status.in_([MessageStatus.QUEUED.value, MessageStatus.HELD.value]))
        .group_by(m.priority, m.status)
    )
    for priority, status, count in waiting:
        depth[Priority(priority).name.lower()][status] = count
    hour_ago = now - timedelta(hours=1)

    def since(column, *extra):
        return func.coalesce(func.sum(case((and_(column >= hour_ago, *extra), 1), else_=0)), 0)

    last_hour = (
        conn.execute(
            select(
                since(m.created_at).label("queued"),
                since(m.submitted_at).label("submitted"),
                since(m.done_at, m.status == MessageStatus.DELIVERED.value).label("delivered"),
                since(m.done_at, m.status.in_(FAILED_STATUSES)).label("failed"),
            ).where(m.updated_at >= hour_ago)
        )
        .mappings()
        .one()
    )
    b = broadcasts.c
    running = conn.execute(
        select(func.count()).select_from(broadcasts).where(b.status.in_(("pending", "running")))
    ).scalar_one()
    pending_callbacks = conn.execute(
        select(func.count()).select_from(callbacks).where(callbacks.c.status == "pending")
    ).scalar_one()
    hour = {k: int(v) for k, v in last_hour.items()}
    return {
        "messages": {"total": sum(by_status.values()), "by_status": by_status},
        "queue": {
            "depth": sum(v["queued"] for v in depth.values()),
            "held": sum(v["held"] for v in depth.values()),
            "by_priority": depth,
        },
        "last_hour": {**hour, "per_minute": {k: round(v / 60, 2) for k, v in hour.items()}},
        "broadcasts_in_progress": running,
        "callbacks_pending": pending_callbacks,
    }
