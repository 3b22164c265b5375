"""The parts of citizens' long messages, in the database until the last one arrives.

An SMSC spreads the parts of one long MO over the binds of the carrier, and several dispatch
processes may hold them: each part is stored (and only then acknowledged), and the process whose
part completes the group hands the whole message on. On PostgreSQL the group is locked (a
transaction advisory lock on its key) while a part is added, so two parts arriving at once in two
processes cannot both see the group incomplete. The group's rows are deleted once the message was
handled; a failure keeps them, so the part the SMSC sends again completes it again. Parts older than
the reassembly timeout are purged as new parts come.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, delete, func, select, text

from gateway import clock
from smpp_client.concat import ConcatInfo
from smpp_client.reassembly import GroupKey

from .db import Database, insert_ignoring_conflicts
from .models import mo_parts


def _group(key: GroupKey, info: ConcatInfo):
    carrier, sender, destination = key
    c = mo_parts.c
    return and_(
        c.carrier == carrier[:32],
        c.sender == sender[:32],
        c.destination == destination[:32],
        c.reference == info.reference,
        c.total == info.total,
    )


def add_part(
    conn: Connection, key: GroupKey, info: ConcatInfo, payload: bytes, now: datetime, timeout: timedelta
) -> list[bytes] | None:
    """Store a part; the group's payloads in order when it is whole (its rows kept until
    :func:`forget`), else None. A part already stored is not stored again."""
    carrier, sender, destination = key
    if conn.dialect.name == "postgresql":
        lock = f"{carrier}\x1f{sender}\x1f{destination}\x1f{info.reference}\x1f{info.total}"
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": lock})
    conn.execute(delete(mo_parts).where(mo_parts.c.received_at < now - timeout))
    conn.execute(
        insert_ignoring_conflicts(conn, mo_parts).values(
            carrier=carrier[:32],
            sender=sender[:32],
            destination=destination[:32],
            reference=info.reference,
            total=info.total,
            seq=info.seq,
            payload=payload,
            received_at=now,
        )
    )
    rows = conn.execute(
        select(mo_parts.c.seq, mo_parts.c.payload).where(_group(key, info)).order_by(mo_parts.c.seq)
    ).all()
    if len(rows) < info.total:
        return None
    return [bytes(payload) for _, payload in rows]


def forget(conn: Connection, key: GroupKey, info: ConcatInfo) -> int:
    return conn.execute(delete(mo_parts).where(_group(key, info))).rowcount


def waiting(conn: Connection) -> int:
    """Parts waiting for the rest of their message (metrics, tests)."""
    return conn.execute(select(func.count()).select_from(mo_parts)).scalar_one()


class DatabasePartStore:
    """:class:`smpp_client.reassembly.PartStore` in the database, shared by every process."""

    def __init__(
        self, db: Database, timeout_seconds: float = 600.0, now: Callable[[], datetime] = clock.utcnow
    ):
        self.db = db
        self.timeout = timedelta(seconds=timeout_seconds)
        self.now = now

    async def add(self, key: GroupKey, info: ConcatInfo, payload: bytes) -> list[bytes] | None:
        return await self.db.run(add_part, key, info, payload, self.now(), self.timeout)

    async def done(self, key: GroupKey, info: ConcatInfo) -> None:
        await self.db.run(forget, key, info)
