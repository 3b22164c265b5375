"""The zone catalogue in the database, so subscriptions and broadcasts can join on zone ids."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Connection, select, update

from gateway.domain.zones import Zone, ZoneDirectory

from .db import insert_ignoring_conflicts
from .models import zones


def sync_zones(conn: Connection, directory: ZoneDirectory, now: datetime) -> dict[str, int]:
    """Upsert the catalogue by key (ids stay stable across restarts); zones no longer listed are
    kept, inactive, because subscriptions may still name them. Returns {key: id}."""
    stored = {
        row.key: row
        for row in conn.execute(
            select(zones.c.id, zones.c.key, zones.c.name, zones.c.cp, zones.c.type, zones.c.active)
        )
    }
    new = [z for z in directory.zones if z.key not in stored]
    if new:
        conn.execute(
            insert_ignoring_conflicts(conn, zones, ["key"]),
            [
                {"key": z.key, "cp": z.cp, "name": z.name, "type": z.type, "active": True, "updated_at": now}
                for z in new
            ],
        )
    listed = {z.key: z for z in directory.zones}
    for key, row in stored.items():
        zone = listed.get(key)
        wanted = (zone.name, zone.cp, zone.type, True) if zone else (row.name, row.cp, row.type, False)
        if (row.name, row.cp, row.type, bool(row.active)) != wanted:
            conn.execute(
                update(zones)
                .where(zones.c.id == row.id)
                .values(name=wanted[0], cp=wanted[1], type=wanted[2], active=wanted[3], updated_at=now)
            )
    return zone_ids(conn)


def zone_ids(conn: Connection) -> dict[str, int]:
    return {row.key: row.id for row in conn.execute(select(zones.c.key, zones.c.id))}


def ids_of(conn: Connection, wanted: Iterable[Zone]) -> list[int]:
    return ids_of_keys(conn, [z.key for z in wanted])


def ids_for(conn: Connection, directory: ZoneDirectory, keys: Sequence[str], now: datetime) -> list[int]:
    """Database ids of catalogue zones by key, in order; the catalogue is synced first when it
    never was into this database (start-up syncs it; tools and tests may not have)."""
    try:
        return ids_of_keys(conn, keys)
    except LookupError:
        sync_zones(conn, directory, now)
        return ids_of_keys(conn, keys)


def ids_of_keys(conn: Connection, keys: Sequence[str]) -> list[int]:
    keys = list(keys)
    if not keys:
        return []
    found = dict(conn.execute(select(zones.c.key, zones.c.id).where(zones.c.key.in_(keys))).all())
    missing = [k for k in keys if k not in found]
    if missing:
        raise LookupError(f"zones not in the database (sync the catalogue first): {', '.join(missing)}")
    return [found[k] for k in keys]
