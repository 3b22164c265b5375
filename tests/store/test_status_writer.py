"""The status writer against the real databases: a poisoned change is set aside and the rest stored,
a database that refuses every batch is reported and waited out, a stop is bounded, a carrier's
receipt id relation is learned while ambiguous receipts wait."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from sqlalchemy import select, text

from gateway.domain.status import MessageStatus, Priority
from gateway.http.api.metrics import MetricsSources, render
from gateway.store import outbox, reads
from gateway.store.models import messages
from gateway.store.status_writer import StatusWriter
from smpp_client.message_ids import ReceiptIdRelations, Relation

NOW = datetime(2026, 11, 29, 16, 0, 0)


def _rows(n: int, segments: int = 1) -> list[dict]:
    return [
        {
            "msisdn": "+525512345678",
            "language": "es",
            "body": "hola",
            "encoding": "gsm7",
            "segments": segments,
            "priority": int(Priority.NORMAL),
            "expires_at": NOW + timedelta(hours=1),
        }
    ] * n


def _status(db, mid: int) -> str:
    with db.engine.connect() as conn:
        return conn.execute(select(messages.c.status).where(messages.c.id == mid)).scalar_one()


@contextlib.asynccontextmanager
async def running(writer: StatusWriter):
    writer.start()
    try:
        yield writer
    finally:
        await writer.stop(5)


def receipt(smsc_id: str, carrier: str = "telcel", at: datetime | None = NOW + timedelta(seconds=3)):
    return outbox.ReceiptUpdate(carrier, smsc_id, MessageStatus.DELIVERED, "000", at)


async def test_a_poisoned_change_is_set_aside_and_the_rest_of_its_batch_is_stored(db):
    ids = db.transaction(outbox.enqueue, _rows(40), NOW)
    writer = StatusWriter(db)
    acked: dict[int, asyncio.Future] = {}
    changes = [outbox.Submitted(mid, "telcel", [f"s{mid}"], NOW) for mid in ids]
    poisoned = outbox.Submitted(ids[17], None, ["p"], NOW)  # a part without carrier: NOT NULL
    changes[17] = poisoned
    bad_receipt = receipt(f"s{ids[3]}", at=None)  # matches a part, but has no time
    async with running(writer):
        committed = writer.next_commit()
        for change in changes:
            writer.post(change)
        for mid in ids[:10]:
            change = receipt(f"s{mid}") if mid != ids[3] else bad_receipt
            acked[mid] = asyncio.get_running_loop().create_future()
            writer.post(change, acked[mid])
        await writer.flush()
        await asyncio.wait_for(committed, 5)
    assert writer.set_aside == {"submitted": 1, "receipt": 1}
    assert not poisoned.applied and not bad_receipt.matched
    assert sorted(m for m, f in acked.items() if f.done()) == sorted(ids[:10])  # the set-aside one too
    assert [_status(db, m) for m in ids[:10]] == ["delivered"] * 3 + ["submitted"] + ["delivered"] * 6
    assert _status(db, ids[17]) == "queued"  # left as it was: sent again once its lease ends
    assert {_status(db, m) for m in ids[10:] if m != ids[17]} == {"submitted"}
    assert writer.failing_batches == 0 and writer.problem() is None


async def test_a_value_the_database_cannot_hold_is_set_aside(db):
    (mid, other) = db.transaction(outbox.enqueue, _rows(2), NOW)
    writer = StatusWriter(db)
    long_error = outbox.ReceiptUpdate("telcel", "x", MessageStatus.UNDELIVERABLE, "E" * 40, NOW)
    async with running(writer):
        await writer.put(outbox.Submitted(mid, "telcel", ["x"], NOW))
        await writer.put(outbox.Submitted(other, "telcel", ["y"], NOW))
        writer.post(long_error)
        await writer.put(receipt("y"))
    assert _status(db, other) == "delivered"
    if db.is_sqlite:  # SQLite keeps any length
        assert _status(db, mid) == "undeliverable" and writer.set_aside == {}
    else:  # error_code is varchar(8): refused for this row only
        assert _status(db, mid) == "submitted" and writer.set_aside == {"receipt": 1}


async def test_a_database_that_refuses_every_batch_makes_the_writer_unhealthy_until_it_recovers(db):
    ids = db.transaction(outbox.enqueue, _rows(3), NOW)
    writer = StatusWriter(db, unhealthy_after=2)
    with db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE message_parts RENAME TO message_parts_away"))
    try:
        async with running(writer):
            for mid in ids:
                writer.post(outbox.Submitted(mid, "telcel", [f"s{mid}"], NOW))
            while writer.problem() is None:
                await asyncio.wait_for(writer.next_attempt(), 10)
            assert "2 batches in a row" in writer.problem()
            assert writer.backlog == 3 and writer.set_aside == {}  # kept in order, nothing dropped
            assert {_status(db, m) for m in ids} == {"queued"}
            committed = writer.next_commit()
            with db.engine.begin() as conn:
                conn.execute(text("ALTER TABLE message_parts_away RENAME TO message_parts"))
            await asyncio.wait_for(committed, 10)
            assert writer.problem() is None and writer.failing_batches == 0
    finally:
        with db.engine.begin() as conn, contextlib.suppress(Exception):
            conn.execute(text("ALTER TABLE message_parts_away RENAME TO message_parts"))
    assert {_status(db, m) for m in ids} == {"submitted"}
    assert writer.failures >= 2


async def test_stop_is_bounded_when_the_database_never_answers(db):
    (mid,) = db.transaction(outbox.enqueue, _rows(1), NOW)
    writer = StatusWriter(db)
    writer.start()
    lock = db.engine.connect()
    try:
        if db.is_sqlite:
            lock.exec_driver_sql("BEGIN IMMEDIATE")  # writers wait for it (busy_timeout)
        else:
            lock.exec_driver_sql("BEGIN")
            lock.exec_driver_sql("LOCK TABLE messages IN EXCLUSIVE MODE")  # writers wait, without end
        writer.post(outbox.Submitted(mid, "telcel", ["s"], NOW))
        writer.post(receipt("s"))
        assert await asyncio.wait_for(writer.stop(0.5), 5) is False
        assert writer.unwritten() == {"submitted": 1, "receipt": 1}
        assert db.busy
    finally:
        lock.rollback()
        lock.close()


async def test_ambiguous_receipts_wait_until_the_carriers_relation_is_learned(db):
    # decimal ids 10..27 at the SMSC, receipts in hex: "10".."1b" are also decimal ids of others
    smsc_ids = [str(n) for n in range(10, 28)]
    ids = db.transaction(outbox.enqueue, _rows(len(smsc_ids)), NOW)
    relations = ReceiptIdRelations(learn_after=3)
    writer = StatusWriter(db, receipt_ids=relations, orphan_seconds=30)
    async with running(writer):
        for mid, smsc_id in zip(ids, smsc_ids, strict=True):
            writer.post(outbox.Submitted(mid, "telcel", [smsc_id], NOW))
        # first the receipts that could mean two parts, then those with letters
        ambiguous = [format(n, "x") for n in range(16, 28)]  # "10".."1b"
        for hex_id in [h for h in ambiguous if h.isdigit()] + ["a", "b", "c", "d", "e", "f"]:
            writer.post(receipt(hex_id))
        for hex_id in [h for h in ambiguous if not h.isdigit()]:
            writer.post(receipt(hex_id))
        while writer.orphans or writer.backlog:
            await asyncio.wait_for(writer.next_commit(), 10)
    assert relations.relation("telcel") is Relation.SUBMIT_DECIMAL_RECEIPT_HEX
    statuses = [_status(db, m) for m in ids]
    assert statuses == ["delivered"] * len(ids)  # each on its own message
    assert writer.receipts_matched == {"telcel": len(ids)}
    assert writer.receipts_ambiguous == {} and writer.receipts_unknown == {}
    for mid in ids:
        assert [h["status"] for h in db.transaction(reads.get_message, mid)["history"]] == [
            "queued",
            "submitted",
            "delivered",
        ]


async def test_an_ambiguous_receipt_is_given_up_after_its_time(db):
    a, b = db.transaction(outbox.enqueue, _rows(2), NOW)
    writer = StatusWriter(db, orphan_seconds=0.2, orphan_ack_seconds=0.05)
    acked = asyncio.get_running_loop().create_future()
    async with running(writer):
        await writer.put(outbox.Submitted(a, "telcel", ["16"], NOW))
        await writer.put(outbox.Submitted(b, "telcel", ["22"], NOW))
        writer.post(receipt("16"), acked)
        await asyncio.wait_for(acked, 5)  # not kept waiting past the bound
        while writer.orphans:
            await asyncio.wait_for(writer.next_commit(), 5)
    assert writer.receipts_ambiguous == {"telcel": 1}
    assert {_status(db, m) for m in (a, b)} == {"submitted"}


async def test_a_trickle_of_changes_is_written_in_one_batch_after_the_linger(db):
    ids = db.transaction(outbox.enqueue, _rows(5), NOW)
    writer = StatusWriter(db, linger_seconds=0.3, linger_batch=50)
    async with running(writer):
        commit = asyncio.ensure_future(writer.next_commit())
        for mid in ids:  # one by one, as a carrier at its speed limit answers
            writer.post(outbox.Submitted(mid, "telcel", [f"s{mid}"], NOW))
            await asyncio.sleep(0)
        await asyncio.wait_for(commit, 5)
        assert writer.batches == 1 and writer.changes_written == 5
    assert {_status(db, mid) for mid in ids} == {"submitted"}


async def test_an_urgent_change_ends_the_linger_and_a_full_batch_does_too(db):
    ids = db.transaction(outbox.enqueue, _rows(60), NOW)
    writer = StatusWriter(db, linger_seconds=60, linger_batch=50)  # a linger no test would wait out
    async with running(writer):
        stored = asyncio.get_running_loop().create_future()
        writer.post(outbox.Submitted(ids[0], "telcel", ["u"], NOW), stored, urgent=True)
        await asyncio.wait_for(stored, 5)  # a receipt from an SMSC that waits for each answer
        commit = asyncio.ensure_future(writer.next_commit())
        for mid in ids[1:51]:  # fifty: worth a batch of its own
            writer.post(outbox.Submitted(mid, "telcel", [f"s{mid}"], NOW))
        await asyncio.wait_for(commit, 5)
        assert writer.changes_written == 51


async def test_a_receipt_for_an_id_never_sent_is_acknowledged_then_counted_as_unknown(db):
    writer = StatusWriter(db, orphan_seconds=0.3, orphan_ack_seconds=0.05)
    acked = asyncio.get_running_loop().create_future()
    async with running(writer):
        writer.post(receipt("never-sent"), acked)
        await asyncio.wait_for(acked, 5)  # answered ESME_ROK after the bound: not resent for ever
        while writer.orphans:
            await asyncio.wait_for(writer.next_commit(), 5)
    assert writer.receipts_unknown == {"telcel": 1}
    assert acked.result() is None  # resolved, not failed: the link answers ESME_ROK
    body = render(MetricsSources(writer=writer))
    assert 'smsgw_receipts_unknown_total{carrier="telcel"} 1' in body.splitlines()


async def test_beyond_max_orphans_the_oldest_receipts_are_given_up_at_once(db):
    (mid,) = db.transaction(outbox.enqueue, _rows(1), NOW)
    writer = StatusWriter(db, orphan_seconds=60, orphan_ack_seconds=60, max_orphans=5)
    acks = [asyncio.get_running_loop().create_future() for _ in range(8)]
    async with running(writer):
        for n, ack in enumerate(acks[:3]):
            writer.post(receipt(f"flood-{n}"), ack)
        await asyncio.wait_for(writer.next_commit(), 5)
        for n, ack in enumerate(acks[3:], start=3):
            writer.post(receipt(f"flood-{n}"), ack)
        await asyncio.wait_for(writer.next_commit(), 5)
        await asyncio.wait_for(writer.next_commit(), 5)  # the retry that finds them over the cap
        assert writer.orphans == 5 and writer.receipts_unknown == {"telcel": 3}
        assert [ack.done() for ack in acks] == [True] * 3 + [False] * 5  # the oldest three
        # a held receipt still finds its submit result when it comes
        await writer.put(outbox.Submitted(mid, "telcel", ["flood-7"], NOW))
        await asyncio.wait_for(acks[7], 5)
    assert _status(db, mid) == "delivered"
