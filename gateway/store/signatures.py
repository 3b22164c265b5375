"""Seen signatures: a signed request is accepted once, by every process sharing the database.

Each accepted signature is inserted into ``seen_signatures`` (key: its timestamp ``t``, the
client id and the digest of what it covers, which includes ``t``); an insert that conflicts is a
replay. A row is needed only
while its timestamp is within the tolerance, so older rows are deleted, a bounded chunk at a time,
by the registrations themselves (at most every ``purge_every_seconds``, in the same transaction).

Requests arriving together are registered together (:class:`SeenSignatures`, group commit like
the intake's): one INSERT … ON CONFLICT DO NOTHING … RETURNING and one commit per batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, delete, select, tuple_

from gateway import clock

from .db import Database, insert_ignoring_conflicts
from .models import seen_signatures

PURGE_CHUNK = 5000

Key = tuple[str, bytes]  # (client id, digest): the digest covers t


@dataclass(frozen=True, slots=True)
class Seen:
    t: int  # the signature's timestamp, unix seconds
    client_id: str
    digest: bytes

    @property
    def key(self) -> Key:
        return self.client_id, self.digest


def unix_seconds(moment: datetime) -> int:
    """A naive UTC time (the gateway's clock) as unix seconds."""
    return int(moment.replace(tzinfo=UTC).timestamp())


def register(conn: Connection, items: list[Seen]) -> set[Key]:
    """Insert the signatures not seen before; returns the keys inserted (the others are replays).
    ``items`` must not repeat a key. Inserted in key order, so two processes registering the same
    signatures cannot deadlock on PostgreSQL."""
    rows = conn.execute(
        insert_ignoring_conflicts(conn, seen_signatures, ["t", "client_id", "digest"]).returning(
            seen_signatures.c.client_id, seen_signatures.c.digest
        ),
        [
            {"t": s.t, "client_id": s.client_id, "digest": s.digest}
            for s in sorted(items, key=lambda s: (s.t, s.client_id, s.digest))
        ],
    )
    return {(r[0], bytes(r[1])) for r in rows}


def purge(conn: Connection, before: int, limit: int = PURGE_CHUNK) -> int:
    """Delete up to ``limit`` rows of signatures made before ``before`` (unix seconds)."""
    c = seen_signatures.c
    expired = select(c.t, c.client_id, c.digest).where(c.t < before).limit(limit)
    key = tuple_(c.t, c.client_id, c.digest)
    return conn.execute(delete(seen_signatures).where(key.in_(expired))).rowcount


def _register_and_purge(
    conn: Connection, items: list[Seen], before: int | None, limit: int
) -> tuple[set[Key], int]:
    inserted = register(conn, items)
    return inserted, purge(conn, before, limit) if before is not None else 0


class SeenSignatures:
    """Registers accepted signatures in batches on the database thread (group commit).

    :meth:`register` returns True for a signature seen for the first time, False for a replay,
    once the batch holding it has committed.
    """

    def __init__(
        self,
        db: Database,
        tolerance_seconds: int,
        now: Callable[[], datetime] | None = None,
        max_batch: int = 500,
        purge_every_seconds: float = 1.0,
        purge_chunk: int = PURGE_CHUNK,
    ):
        self.db = db
        self.tolerance = tolerance_seconds
        self.now = now or (lambda: clock.utcnow())
        self.max_batch = max_batch
        self.purge_every = purge_every_seconds
        self.purge_chunk = purge_chunk
        self._next_purge: float | None = None  # unix seconds
        self._pending: list[tuple[Seen, asyncio.Future]] = []
        self._task: asyncio.Task | None = None

    async def register(self, client_id: str, digest: bytes, timestamp: int) -> bool:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((Seen(timestamp, client_id, digest), future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="seen-signatures")
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            first: dict[Key, Seen] = {}
            for seen, _ in batch:
                first.setdefault(seen.key, seen)
            now = unix_seconds(self.now())
            purging = self._next_purge is None or now >= self._next_purge
            # a signature older than now - tolerance is refused as stale: its row is not needed
            before = now - self.tolerance if purging else None
            try:
                inserted, purged = await self.db.run(
                    _register_and_purge, list(first.values()), before, self.purge_chunk
                )
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            if purging:  # a full chunk: more are due, purge again with the next batch
                self._next_purge = None if purged >= self.purge_chunk else now + self.purge_every
            for seen, future in batch:
                fresh = first[seen.key] is seen and seen.key in inserted
                if not future.done():
                    future.set_result(fresh)
