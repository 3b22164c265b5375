"""The seen-signatures table on SQLite and PostgreSQL: a signature is registered once, concurrent
registrations share one transaction, two registries on one database agree, old rows are purged."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta

from sqlalchemy import func, select

from gateway.store.db import Database
from gateway.store.models import seen_signatures
from gateway.store.signatures import SeenSignatures, unix_seconds

T0 = 1_790_000_000


def _digest(n: int) -> bytes:
    return hashlib.sha256(str(n).encode()).digest()


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _at(t: int) -> datetime:
    """The gateway's clock (naive UTC) at unix time ``t``."""
    return datetime(1970, 1, 1) + timedelta(seconds=t)


def _rows(db: Database) -> int:
    with db.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(seen_signatures)).scalar_one()


def _counting(db: Database, monkeypatch) -> list[int]:
    calls: list[int] = []
    run = db.run

    async def counted(fn, *args):
        calls.append(len(args[0]))
        return await run(fn, *args)

    monkeypatch.setattr(db, "run", counted)
    return calls


async def test_a_signature_is_accepted_once(db):
    seen = SeenSignatures(db, 300, Clock(_at(T0)))
    assert await seen.register("cesac", _digest(1), T0) is True
    assert await seen.register("cesac", _digest(1), T0) is False
    assert await seen.register("other", _digest(1), T0) is True  # per client
    assert await seen.register("cesac", _digest(2), T0) is True
    assert _rows(db) == 3


async def test_concurrent_registrations_share_one_transaction(db, monkeypatch):
    seen = SeenSignatures(db, 300, Clock(_at(T0)))
    calls = _counting(db, monkeypatch)
    results = await asyncio.gather(*(seen.register("cesac", _digest(n), T0) for n in range(50)))
    assert results == [True] * 50
    assert calls == [50]


async def test_the_same_signature_twice_in_one_batch_is_accepted_for_the_first_only(db, monkeypatch):
    seen = SeenSignatures(db, 300, Clock(_at(T0)))
    calls = _counting(db, monkeypatch)
    results = await asyncio.gather(*(seen.register("cesac", _digest(n % 2), T0) for n in range(6)))
    assert results == [True, True, False, False, False, False]
    assert calls == [2]


async def test_two_registries_on_one_database_accept_a_signature_once(db_url, db):
    other_db = Database(db_url)
    try:
        first = SeenSignatures(db, 300, Clock(_at(T0)))
        second = SeenSignatures(other_db, 300, Clock(_at(T0)))
        for n in range(20):
            results = await asyncio.gather(
                first.register("cesac", _digest(n), T0), second.register("cesac", _digest(n), T0)
            )
            assert sorted(results) == [False, True], n
    finally:
        other_db.close()
    assert _rows(db) == 20


def _kept(db: Database) -> list[int]:
    """Seconds after T0 of the signatures kept."""
    with db.engine.connect() as conn:
        kept = conn.execute(select(seen_signatures.c.t).order_by(seen_signatures.c.t)).scalars()
        return [t - T0 for t in kept]


async def test_rows_past_the_tolerance_are_purged_at_most_every_interval(db):
    clock = Clock(_at(T0))
    seen = SeenSignatures(db, 300, clock, purge_every_seconds=100)
    for n in range(5):  # the first one purges (nothing yet); the next purge is due at t0+100
        assert await seen.register("cesac", _digest(n), T0 + n * 100)
    assert _kept(db) == [0, 100, 200, 300, 400]
    clock.now = _at(T0 + 650)  # signed before t0+350: refused as stale by now, so deleted
    assert await seen.register("cesac", _digest(99), T0 + 650)
    assert _kept(db) == [400, 650]
    clock.now = _at(T0 + 720)  # t0+400 is stale, but the next purge is due at t0+750
    assert await seen.register("cesac", _digest(100), T0 + 720)
    assert _kept(db) == [400, 650, 720]
    clock.now = _at(T0 + 750)
    assert await seen.register("cesac", _digest(101), T0 + 750)
    assert _kept(db) == [650, 720, 750]


async def test_purges_go_a_chunk_at_a_time_until_nothing_old_is_left(db):
    clock = Clock(_at(T0))
    seen = SeenSignatures(db, 300, clock, purge_every_seconds=3600, purge_chunk=3)
    await asyncio.gather(*(seen.register("cesac", _digest(n), T0) for n in range(7)))
    clock.now = _at(T0 + 4000)
    old_left = []
    for n in range(4):
        await seen.register("cesac", _digest(100 + n), T0 + 4000)
        old_left.append(_kept(db).count(0))
    assert old_left == [4, 1, 0, 0]  # a full chunk purges again with the next batch


def test_the_clock_is_read_as_unix_seconds():
    assert unix_seconds(datetime(2026, 9, 21, 14, 13, 20, 999_999)) == T0
    assert unix_seconds(datetime(2026, 9, 21, 14, 13, 20) + timedelta(minutes=1)) == T0 + 60
