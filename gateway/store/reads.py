"""What the API and the dashboard read: a message with its parts and history, the filtered list
(keyset pagination), the latest messages, the figures of the stats, the outbox depth, a ping; the
control room's search (folio, number, status, time range), a message's story, the broadcasts with
their progress and their reach by colonia.

A message is selected in one shape everywhere (:func:`message_rows`): its own columns with its
event's key and client (None for a reply to a citizen's SMS, which belongs to no event).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Select, and_, case, func, or_, select, text

from gateway.domain.status import MessageStatus, Priority

from .broadcasts import UNFINISHED
from .models import (
    broadcasts,
    callbacks,
    cases,
    citizens,
    consent_events,
    events,
    message_parts,
    message_status_history,
    messages,
    mobile_messages,
    subscriptions,
    zones,
)

FAILED_STATUSES = (
    MessageStatus.FAILED.value,
    MessageStatus.UNDELIVERABLE.value,
    MessageStatus.REJECTED.value,
    MessageStatus.EXPIRED.value,
)


def ping(conn: Connection) -> None:
    conn.execute(text("SELECT 1"))


def message_rows() -> Select:
    """Every column of ``messages`` with ``event_key`` and ``client_id`` of its event."""
    return select(messages, events.c.event_key, events.c.client_id).select_from(
        messages.outerjoin(events, events.c.id == messages.c.event_id)
    )


def _status_history(conn: Connection, message_id: int) -> list[dict]:
    """A message's statuses with their times and details, oldest first."""
    h = message_status_history.c
    rows = conn.execute(select(h.status, h.at, h.detail).where(h.message_id == message_id).order_by(h.id))
    return [dict(r) for r in rows.mappings()]


def get_message(conn: Connection, message_id: int) -> dict | None:
    """The message with ``parts`` (by seq) and ``history`` (oldest first), or None."""
    row = conn.execute(message_rows().where(messages.c.id == message_id)).mappings().first()
    if row is None:
        return None
    p = message_parts.c
    parts = conn.execute(
        select(p.seq, p.smsc_message_id, p.status, p.error_code, p.submitted_at, p.done_at)
        .where(p.message_id == message_id)
        .order_by(p.seq)
    ).mappings()
    return {**row, "history": _status_history(conn, message_id), "parts": [dict(r) for r in parts]}


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
    """A client's messages, newest first; returns (rows, the cursor of the next page or None)."""
    m = messages.c
    query = message_rows().where(events.c.client_id == f.client_id)
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


def recent_messages(conn: Connection, limit: int = 25) -> list[dict]:
    """The latest messages of every client and the replies to citizens, newest first."""
    query = message_rows().order_by(messages.c.id.desc()).limit(limit)
    return [dict(r) for r in conn.execute(query).mappings()]


def outbox_depth(conn: Connection) -> dict[str, int]:
    """Messages by status."""
    m = messages.c
    return {
        status: count for status, count in conn.execute(select(m.status, func.count()).group_by(m.status))
    }


def stats(conn: Connection, now: datetime) -> dict:
    """Counts by status, what waits by priority, the last hour's counts, broadcasts and callbacks."""
    m = messages.c
    by_status = {s.value: 0 for s in MessageStatus}
    by_status.update(outbox_depth(conn))
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
        select(func.count()).select_from(broadcasts).where(b.status.in_(UNFINISHED))
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


# --- the control room ----------------------------------------------------------------------------


@dataclass(slots=True)
class MessageSearch:
    """The control room's search: every field given narrows it; any client's messages."""

    folio: str | None = None  # a case's folio: the messages of that case's events
    msisdn: str | None = None  # E.164
    statuses: Sequence[str] = ()
    since: datetime | None = None  # created at or after (naive UTC)
    until: datetime | None = None  # created before (naive UTC)
    before_id: int | None = None  # keyset cursor
    limit: int = 50


def _folio(event_payload):
    return event_payload[("case", "folio")].as_string()


def search_messages(conn: Connection, f: MessageSearch) -> tuple[list[dict], int | None]:
    """Messages matching ``f``, newest first, with their case's ``folio`` (None for a broadcast or
    a reply); returns (rows, the cursor of the next page or None)."""
    m = messages.c
    query = select(messages, events.c.event_key, events.c.client_id, _folio(events.c.payload).label("folio"))
    query = query.select_from(messages.outerjoin(events, events.c.id == m.event_id))
    if f.folio is not None:
        # through the case's citizen (indexed: cases.folio, messages.msisdn), then the event's folio
        owner = (
            select(citizens.c.msisdn)
            .join(cases, cases.c.citizen_id == citizens.c.id)
            .where(cases.c.folio == f.folio)
            .scalar_subquery()
        )
        query = query.where(m.msisdn == owner, _folio(events.c.payload) == f.folio)
    if f.msisdn is not None:
        query = query.where(m.msisdn == f.msisdn)
    if f.statuses:
        query = query.where(m.status.in_(list(f.statuses)))
    if f.since is not None:
        query = query.where(m.created_at >= f.since)
    if f.until is not None:
        query = query.where(m.created_at < f.until)
    if f.before_id is not None:
        query = query.where(m.id < f.before_id)
    rows = [dict(r) for r in conn.execute(query.order_by(m.id.desc()).limit(f.limit + 1)).mappings()]
    more = len(rows) > f.limit
    rows = rows[: f.limit]
    return rows, (rows[-1]["id"] if more and rows else None)


def message_story(conn: Connection, message_id: int) -> dict | None:
    """A message with its event's type and folio, its history (oldest first) and its parts with
    their carrier (by submission), or None."""
    row = (
        conn.execute(
            select(
                messages,
                events.c.event_key,
                events.c.client_id,
                events.c.type.label("event_type"),
                _folio(events.c.payload).label("folio"),
            )
            .select_from(messages.outerjoin(events, events.c.id == messages.c.event_id))
            .where(messages.c.id == message_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    p = message_parts.c
    parts = conn.execute(
        select(p.seq, p.carrier, p.smsc_message_id, p.status, p.error_code, p.submitted_at, p.done_at)
        .where(p.message_id == message_id)
        .order_by(p.submitted_at, p.seq)
    ).mappings()
    return {**row, "history": _status_history(conn, message_id), "parts": [dict(r) for r in parts]}


def recent_broadcasts(conn: Connection, limit: int = 10) -> list[dict]:
    """The latest broadcasts, newest first, each with its messages by status and their segments."""
    b = broadcasts.c
    rows = [
        dict(r)
        for r in conn.execute(
            select(broadcasts, events.c.event_key)
            .join(events, events.c.id == b.event_id)
            .order_by(b.id.desc())
            .limit(limit)
        ).mappings()
    ]
    if not rows:
        return []
    m = messages.c
    ids = [r["id"] for r in rows]
    counts: dict[int, dict[str, int]] = {i: {} for i in ids}
    segments = dict.fromkeys(ids, 0)
    for broadcast_id, status, count, parts in conn.execute(
        select(m.broadcast_id, m.status, func.count(), func.sum(m.segments))
        .where(m.broadcast_id.in_(ids))
        .group_by(m.broadcast_id, m.status)
    ):
        counts[broadcast_id][status] = count
        segments[broadcast_id] += int(parts or 0)
    return [{**r, "messages": counts[r["id"]], "segments": segments[r["id"]]} for r in rows]


def broadcast_exists(conn: Connection, broadcast_id: int) -> bool:
    return conn.execute(select(broadcasts.c.id).where(broadcasts.c.id == broadcast_id)).first() is not None


def broadcast_reach(conn: Connection, broadcast_id: int) -> list[tuple[str | None, str, int]]:
    """(colonia, status, messages) of a broadcast, by the zones its recipients subscribed in that
    it targeted (None: a subscription to every zone, or a broadcast to every citizen). A recipient
    subscribed in two of its zones counts in both."""
    b = broadcasts.c
    target = conn.execute(select(b.topic, b.zone_ids, b.scope).where(b.id == broadcast_id)).first()
    if target is None:
        return []
    m = messages.c
    if target.scope == "citizens":
        rows = conn.execute(
            select(m.status, func.count()).where(m.broadcast_id == broadcast_id).group_by(m.status)
        )
        return [(None, status, count) for status, count in rows]
    s = subscriptions.c
    match = [s.citizen_id == m.citizen_id, s.topic == target.topic]
    if target.zone_ids is not None:
        match.append(or_(s.zone_id.in_(list(target.zone_ids)), s.zone_id.is_(None)))
    query = (
        select(zones.c.name, m.status, func.count(func.distinct(m.id)))
        .select_from(messages.join(subscriptions, and_(*match)).outerjoin(zones, zones.c.id == s.zone_id))
        .where(m.broadcast_id == broadcast_id)
        .group_by(zones.c.name, m.status)
    )
    return [(name, status, count) for name, status, count in conn.execute(query)]


# --- the control room: citizens ------------------------------------------------------------------


def recent_inbound(conn: Connection, limit: int = 50) -> list[dict]:
    """The latest citizens' SMS, newest first, with what each was understood as (no text)."""
    mo = mobile_messages.c
    query = select(
        mo.id, mo.msisdn, mo.carrier, mo.received_at, mo.keyword, mo.intent, mo.language, mo.understood,
        mo.outcome, mo.reply_kind,
    ).order_by(mo.id.desc()).limit(limit)  # fmt: skip
    return [dict(r) for r in conn.execute(query).mappings()]


def consent_ledger(conn: Connection, msisdn: str) -> dict | None:
    """One number's citizen, subscriptions (topic, colonia or None: every one) and consent ledger
    (oldest first), or None when the gateway does not know the number."""
    c = citizens.c
    citizen = (
        conn.execute(
            select(c.id, c.msisdn, c.language, c.opted_out, c.opted_out_at, c.created_at).where(
                c.msisdn == msisdn
            )
        )
        .mappings()
        .first()
    )
    if citizen is None:
        return None
    s = subscriptions.c
    subscribed = conn.execute(
        select(s.topic, zones.c.name)
        .select_from(subscriptions.outerjoin(zones, zones.c.id == s.zone_id))
        .where(s.citizen_id == citizen["id"])
        .order_by(s.topic, zones.c.name)
    ).all()
    e = consent_events.c
    ledger = conn.execute(
        select(e.at, e.action, e.channel, e.client_id, e.carrier, e.topics, e.zones, e.raw)
        .where(e.citizen_id == citizen["id"])
        .order_by(e.at, e.id)
    ).mappings()
    return {
        **citizen,
        "subscriptions": [{"topic": topic, "zone": zone} for topic, zone in subscribed],
        "ledger": [dict(r) for r in ledger],
    }


def callbacks_given_up(conn: Connection) -> int:
    """CRM callbacks given up (a 4xx, or retries exhausted)."""
    return conn.execute(
        select(func.count()).select_from(callbacks).where(callbacks.c.status == "failed")
    ).scalar_one()
