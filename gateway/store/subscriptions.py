"""Who wants which alerts where: (citizen, topic, zone) rows; a NULL zone means every zone.

The store API the SMS keywords (ALTA / BAJA), the subscriptions endpoints and the CSV import use.
Topics are AGUA, VIAL, EMERGENCIA and AVISOS (docs/keywords.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, delete, func, select

from gateway.domain.catalog import TOPICS

from .bulk import BulkWriter
from .citizens import upsert_citizen
from .db import insert_ignoring_conflicts
from .models import citizens, subscriptions, zones

DEMO_SUBSCRIBERS = (
    # msisdn, language, topic, zones (colonia names or postal codes; none = every zone)
    ("+525512345678", "es", "AGUA", ("Polanco",)),
    ("+525512345678", "es", "EMERGENCIA", ()),
    ("+525523456789", "es", "AGUA", ("Anzures", "11590")),
    ("+525523456789", "es", "VIAL", ("Anzures",)),
    ("+525534567890", "en", "AGUA", ("Polanco V Sección",)),
    ("+525534567890", "en", "AVISOS", ("11560",)),
    ("+525545678901", "es", "EMERGENCIA", ("Tacubaya",)),
    ("+525545678901", "es", "VIAL", ("Tacubaya", "Escandón")),
)


def _insert(conn: Connection):
    return insert_ignoring_conflicts(conn, subscriptions)  # either unique index: already there


def _check_topic(topic: str) -> str:
    topic = topic.upper()
    if topic not in TOPICS:
        raise ValueError(f"unknown topic {topic!r}: expected one of {', '.join(TOPICS)}")
    return topic


def subscribe(
    conn: Connection, citizen_id: int, topic: str, zone_ids: Sequence[int] | None, now: datetime
) -> int:
    """Add (topic, zone) for every zone id, or for every zone when ``zone_ids`` is None or empty.
    Existing rows are kept; returns how many were added."""
    topic = _check_topic(topic)
    targets = list(dict.fromkeys(zone_ids)) if zone_ids else [None]
    before = _count(conn, citizen_id)
    conn.execute(
        _insert(conn),
        [{"citizen_id": citizen_id, "topic": topic, "zone_id": z, "created_at": now} for z in targets],
    )
    return _count(conn, citizen_id) - before  # (executemany rowcounts differ between drivers)


def _count(conn: Connection, citizen_id: int) -> int:
    return conn.execute(
        select(func.count()).select_from(subscriptions).where(subscriptions.c.citizen_id == citizen_id)
    ).scalar_one()


def unsubscribe(
    conn: Connection, citizen_id: int, topic: str | None = None, zone_ids: Sequence[int] | None = None
) -> int:
    """Remove a topic (in the given zones, or in all of them), or every subscription of the citizen."""
    stmt = delete(subscriptions).where(subscriptions.c.citizen_id == citizen_id)
    if topic is not None:
        stmt = stmt.where(subscriptions.c.topic == _check_topic(topic))
    if zone_ids:
        stmt = stmt.where(subscriptions.c.zone_id.in_(list(zone_ids)))
    return conn.execute(stmt).rowcount


def subscriptions_of(conn: Connection, citizen_id: int) -> list[dict]:
    rows = conn.execute(
        select(subscriptions.c.topic, subscriptions.c.zone_id, zones.c.name, zones.c.cp)
        .select_from(subscriptions.outerjoin(zones, zones.c.id == subscriptions.c.zone_id))
        .where(subscriptions.c.citizen_id == citizen_id)
        .order_by(subscriptions.c.topic, zones.c.cp, zones.c.name)
    ).mappings()
    return [{"topic": r["topic"], "zone_id": r["zone_id"], "zone": r["name"], "cp": r["cp"]} for r in rows]


def has_subscriptions(conn: Connection, citizen_id: int) -> bool:
    found = conn.execute(
        select(subscriptions.c.id).where(subscriptions.c.citizen_id == citizen_id).limit(1)
    ).first()
    return found is not None


def held_by(writer: BulkWriter, citizen_ids: Sequence[int]) -> set[tuple[int, str, int | None]]:
    """Every (citizen id, topic, zone id) these citizens are subscribed to."""
    columns = ("citizen_id", "topic", "zone_id")
    return {tuple(row) for row in writer.select_in(subscriptions, columns, "citizen_id", citizen_ids)}


def add_many(writer: BulkWriter, rows: list[tuple[int, str, int | None]]) -> None:
    """(citizen id, topic, zone id) rows; those already there are kept."""
    now = writer.now
    writer.insert(
        subscriptions,
        ("citizen_id", "topic", "zone_id", "created_at"),
        [(cid, topic, zone_id, now) for cid, topic, zone_id in rows],
    )


def seed_demo(conn: Connection, directory, now: datetime) -> int:
    """The demo's few subscribers in demo zones; idempotent."""
    from .zones import ids_of

    added = 0
    for msisdn, language, topic, names in DEMO_SUBSCRIBERS:
        citizen_id, _, _ = upsert_citizen(conn, msisdn, language, None, now)
        wanted = [z for name in names for z in directory.match(name, partial=False)]
        added += subscribe(conn, citizen_id, topic, ids_of(conn, wanted) if wanted else None, now)
    return added


def citizen_id_of(conn: Connection, msisdn: str) -> int | None:
    return conn.execute(select(citizens.c.id).where(citizens.c.msisdn == msisdn)).scalar()
