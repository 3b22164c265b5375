"""The seen-signatures table on SQLite and PostgreSQL: a signature is registered once, concurrent
registrations share one transaction, two registries on one database agree, old rows are purged."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta

from sqlalchemy import func, select

from gateway.store.db import Database
from gateway.store.models import seen_signatures
from gateway.store.signatures import Seen, SeenSignatures, register_new, unix_seconds

T0 = 1_790_000_000


def _seen(n: int, t: int = T0, client: str = "cesac") -> Seen:
    return Seen(t, client, hashlib.sha256(f"{t}.{n}".encode()).digest())


def _at(t: int) -> datetime:
    """The gateway's clock (naive UTC) at unix time ``t``."""
    return datetime(1970, 1, 1) + timedelta(seconds=t)


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _rows(db: Database) -> int:
    with db.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(seen_signatures)).scalar_one()


def _kept(db: Database) -> list[int]:
    """Seconds after T0 of the signatures kept."""
    with db.engine.connect() as conn:
        kept = conn.execute(select(seen_signatures.c.t).order_by(seen_signatures.c.t)).scalars()
        return [t - T0 for t in kept]


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
    assert await seen.register(_seen(1)) is True
    assert await seen.register(_seen(1)) is False
    assert await seen.register(_seen(1, client="other")) is True  # per client
    assert await seen.register(_seen(2)) is True
    assert _rows(db) == 3


def test_register_new_answers_in_order_and_the_first_of_repeats_wins(db):
    items = [_seen(1), _seen(2), _seen(1), _seen(3)]
    assert db.transaction(register_new, items) == [True, True, False, True]
    assert db.transaction(register_new, [_seen(3), _seen(4)]) == [False, True]
    assert db.transaction(register_new, []) == []


async def test_concurrent_registrations_share_one_transaction(db, monkeypatch):
    seen = SeenSignatures(db, 300, Clock(_at(T0)))
    calls = _counting(db, monkeypatch)
    results = await asyncio.gather(*(seen.register(_seen(n)) for n in range(50)))
    assert results == [True] * 50
    assert calls == [50]


async def test_the_same_signature_twice_in_one_batch_is_accepted_for_the_first_only(db):
    seen = SeenSignatures(db, 300, Clock(_at(T0)))
    results = await asyncio.gather(*(seen.register(_seen(n % 2)) for n in range(6)))
    assert results == [True, True, False, False, False, False]


async def test_two_registries_on_one_database_accept_a_signature_once(db_url, db):
    other_db = Database(db_url)
    try:
        first = SeenSignatures(db, 300, Clock(_at(T0)))
        second = SeenSignatures(other_db, 300, Clock(_at(T0)))
        for n in range(20):
            results = await asyncio.gather(first.register(_seen(n)), second.register(_seen(n)))
            assert sorted(results) == [False, True], n
    finally:
        other_db.close()
    assert _rows(db) == 20


async def test_a_purge_deletes_what_is_refused_as_stale_and_keeps_the_rest(db):
    clock = Clock(_at(T0))
    seen = SeenSignatures(db, 300, clock)
    for n in range(5):
        assert await seen.register(_seen(n, T0 + n * 100))  # t0 … t0+400
    clock.now = _at(T0 + 650)  # signed before t0+350: refused as stale by now
    assert await seen.purge_now() == 4
    assert _kept(db) == [400]
    assert await seen.purge_now() == 0


async def test_a_purge_goes_a_chunk_per_transaction(db, monkeypatch):
    clock = Clock(_at(T0))
    seen = SeenSignatures(db, 300, clock, purge_chunk=3)
    await asyncio.gather(*(seen.register(_seen(n)) for n in range(7)))
    clock.now = _at(T0 + 1000)
    calls = []
    run = db.run

    async def counted(fn, *args):
        calls.append(fn.__name__)
        return await run(fn, *args)

    monkeypatch.setattr(db, "run", counted)
    assert await seen.purge_now() == 7
    assert calls == ["purge"] * 3 and _rows(db) == 0


async def test_signed_requests_start_a_purge_at_most_every_interval(db):
    clock = Clock(_at(T0))
    seen = SeenSignatures(db, 300, clock, purge_every_seconds=10)
    await seen.register(_seen(1))
    first = seen.purge_when_due()
    assert first is not None
    assert seen.purge_when_due() is None  # one is running
    await first
    clock.now = _at(T0 + 9)
    assert seen.purge_when_due() is None  # not due yet
    clock.now = _at(T0 + 400)
    purge = seen.purge_when_due()
    await purge
    assert _rows(db) == 0
    await seen.close()


def test_the_clock_is_read_as_unix_seconds():
    assert unix_seconds(datetime(2026, 9, 21, 14, 13, 20, 999_999)) == T0
    assert unix_seconds(datetime(2026, 9, 21, 14, 13, 20) + timedelta(minutes=1)) == T0 + 60
