"""Seen signatures: a signed request is accepted once, by every process sharing the database.

Each accepted signature is inserted into ``seen_signatures`` (key: its timestamp ``t``, the
client id and the digest of what it covers, which includes ``t``); an insert that conflicts is a
replay. :func:`register_new` does it inside any transaction: the events intake registers its
requests' signatures in the transaction that accepts them (one commit for both); other requests
go through :class:`SeenSignatures`, which registers concurrent ones together (group commit, like
the intake's).

A row is needed only while its timestamp is within the tolerance: older rows are deleted by a
purge that signed requests start at most every ``purge_every_seconds``, a bounded chunk per
transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy import Connection, delete, select, tuple_

from gateway import clock

from .db import Database, insert_ignoring_conflicts
from .models import seen_signatures

log = structlog.get_logger("store")

PURGE_CHUNK = 5000

Key = tuple[str, bytes]  # (client id, digest): the digest covers t


@dataclass(frozen=True, slots=True)
class Seen:
    """An accepted signature, to be registered."""

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


def register_new(conn: Connection, items: Sequence[Seen]) -> list[bool]:
    """For each item, in order: True if its signature is seen here for the first time (the first
    of repeats within ``items`` included), False for a replay."""
    first: dict[Key, Seen] = {}
    for seen in items:
        first.setdefault(seen.key, seen)
    inserted = register(conn, list(first.values())) if first else set()
    return [first[s.key] is s and s.key in inserted for s in items]


def purge(conn: Connection, before: int, limit: int = PURGE_CHUNK) -> int:
    """Delete up to ``limit`` rows of signatures made before ``before`` (unix seconds)."""
    c = seen_signatures.c
    expired = select(c.t, c.client_id, c.digest).where(c.t < before).limit(limit)
    key = tuple_(c.t, c.client_id, c.digest)
    return conn.execute(delete(seen_signatures).where(key.in_(expired))).rowcount


class SeenSignatures:
    """Registers signatures in batches on the database thread (group commit), and purges.

    :meth:`register` returns True for a signature seen for the first time, False for a replay,
    once the batch holding it has committed. :meth:`purge_when_due` is cheap enough to call on
    every signed request.
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
        self._next_purge = 0.0  # unix seconds
        self._purging: asyncio.Task | None = None
        self._pending: list[tuple[Seen, asyncio.Future]] = []
        self._task: asyncio.Task | None = None

    async def register(self, seen: Seen) -> bool:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((seen, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="seen-signatures")
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            try:
                fresh = await self.db.run(register_new, [seen for seen, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), new in zip(batch, fresh, strict=True):
                if not future.done():
                    future.set_result(new)

    # --- purge ----------------------------------------------------------------------------------

    def purge_when_due(self) -> asyncio.Task | None:
        """Start a purge if the last one is ``purge_every_seconds`` old and none is running."""
        now = self.now().replace(tzinfo=UTC).timestamp()
        if now < self._next_purge or (self._purging is not None and not self._purging.done()):
            return None
        self._next_purge = now + self.purge_every
        self._purging = asyncio.get_running_loop().create_task(
            self._purge_logged(), name="seen-signatures-purge"
        )
        return self._purging

    async def purge_now(self) -> int:
        """Delete every row whose signature is refused as stale by now, a chunk per transaction;
        returns how many."""
        # a signature made before now - tolerance is refused as stale: its row is not needed
        before = unix_seconds(self.now()) - self.tolerance
        total = 0
        while True:
            deleted = await self.db.run(purge, before, self.purge_chunk)
            total += deleted
            if deleted < self.purge_chunk:
                return total

    async def _purge_logged(self) -> None:
        try:
            await self.purge_now()
        except Exception:  # the next signed request tries again after the interval
            log.exception("could not purge seen signatures")

    async def close(self) -> None:
        """Let a running purge finish (the application's cleanup)."""
        if self._purging is not None:
            with contextlib.suppress(Exception):
                await self._purging
