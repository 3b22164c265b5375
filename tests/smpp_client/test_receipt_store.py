"""Receipts in the database (SQLite and PostgreSQL): id forms and carriers' relations, open parts only,
early and ambiguous receipts, multi-part status rules, batched transitions."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from gateway.domain.status import MessageStatus, Priority
from gateway.store import outbox, reads
from gateway.store.models import message_parts, message_status_history, messages
from gateway.store.receipt_matching import apply_receipts
from gateway.store.status_writer import StatusWriter
from smpp_client.message_ids import Relation

NOW = datetime(2026, 11, 29, 16, 0, 0)
D, U, E = MessageStatus.DELIVERED, MessageStatus.UNDELIVERABLE, MessageStatus.EXPIRED


def _row(segments: int = 1) -> dict:
    return {
        "msisdn": "+525512345678",
        "language": "es",
        "body": "hola",
        "encoding": "gsm7",
        "segments": segments,
        "priority": int(Priority.NORMAL),
        "expires_at": NOW + timedelta(hours=1),
    }


def _message(db, mid: int) -> dict:
    return db.transaction(reads.get_message, mid)


def _history(db, mid: int) -> list[str]:
    with db.engine.connect() as conn:
        return list(
            conn.execute(
                select(message_status_history.c.status)
                .where(message_status_history.c.message_id == mid)
                .order_by(message_status_history.c.id)
            ).scalars()
        )


def receipt(smsc_id: str, status=D, carrier="telcel", at=NOW + timedelta(seconds=5)):
    return outbox.ReceiptUpdate(carrier, smsc_id, status, "000" if status == D else "001", at)


def submitted(db, *ids: str, carrier: str = "telcel", at: datetime = NOW) -> list[int]:
    """One single-part message per SMSC id, recorded as submitted with it."""
    mids = db.transaction(outbox.enqueue, [_row() for _ in ids], at)
    changes = [outbox.Submitted(m, carrier, [i], at) for m, i in zip(mids, ids, strict=True)]
    db.transaction(outbox.apply_submitted, changes)
    return mids


@pytest.mark.parametrize(
    ("submitted_id", "receipt_id"),
    [("1a2b", "6699"), ("6699", "1a2b"), ("00001A2B", "1a2b"), ("12345", "0000012345"), ("abc-1", "abc-1")],
)
def test_ids_match_across_hex_and_decimal(db, submitted_id, receipt_id):
    (mid,) = db.transaction(outbox.enqueue, [_row()], NOW)
    db.transaction(outbox.apply_submitted, [outbox.Submitted(mid, "telcel", [submitted_id], NOW)])
    r = receipt(receipt_id)
    assert db.transaction(apply_receipts, [r]) == []
    assert (r.matched, r.message_id, r.message_status, r.latency) == (True, mid, D, 5.0)
    assert _message(db, mid)["status"] == "delivered"


def test_multi_part_status_rules(db):
    ok, failing, expiring, late = db.transaction(outbox.enqueue, [_row(3)] * 4, NOW)
    db.transaction(
        outbox.apply_submitted,
        [
            outbox.Submitted(ok, "telcel", ["a1", "a2", "a3"], NOW),
            outbox.Submitted(failing, "telcel", ["b1", "b2", "b3"], NOW),
            outbox.Submitted(expiring, "telcel", ["c1", "c2", "c3"], NOW),
            outbox.Submitted(late, "telcel", ["d1", "d2", "d3"], NOW),
        ],
    )
    # one batch: delivered parts, a failing part before the others answer, an expired one
    db.transaction(
        apply_receipts,
        [receipt("a1"), receipt("a2"), receipt("b2", U), receipt("c1"), receipt("c3", E), receipt("d1")],
    )
    assert [_message(db, m)["status"] for m in (ok, failing, expiring, late)] == [
        "submitted",  # one part still out
        "undeliverable",  # failed as soon as one part is
        "expired",
        "submitted",
    ]
    # later receipts: the failed message keeps its status, its parts' receipts are kept
    db.transaction(apply_receipts, [receipt("a3"), receipt("b1"), receipt("b3"), receipt("d2")])
    db.transaction(apply_receipts, [receipt("d3")])
    assert _message(db, ok)["status"] == "delivered"
    assert _message(db, late)["status"] == "delivered"
    failed = _message(db, failing)
    assert failed["status"] == "undeliverable" and failed["error_text"] == "receipt err:001"
    assert [p["status"] for p in failed["parts"]] == ["delivered", "undeliverable", "delivered"]
    assert _history(db, failing) == ["queued", "submitted", "undeliverable"]
    assert _history(db, ok) == ["queued", "submitted", "delivered"]


def test_duplicate_and_unknown_receipts(db):
    (mid,) = db.transaction(outbox.enqueue, [_row()], NOW)
    db.transaction(outbox.apply_submitted, [outbox.Submitted(mid, "telcel", ["x1"], NOW)])
    rs = [receipt("x1"), receipt("x1"), receipt("zz"), receipt("x1", carrier="movistar")]
    unmatched = db.transaction(apply_receipts, rs)
    # the second x1 finds its part final already: it changes nothing
    assert [(u.smsc_id, u.carrier) for u in unmatched] == [
        ("x1", "telcel"),
        ("zz", "telcel"),
        ("x1", "movistar"),
    ]
    assert _history(db, mid) == ["queued", "submitted", "delivered"]  # once
    # on their last try, a duplicate is told apart from an unknown id
    for u in unmatched:
        u.last_try = True
    again = db.transaction(apply_receipts, unmatched)
    assert [u.final_only for u in again] == [True, False, False]
    assert _message(db, mid)["parts"][0]["status"] == "delivered"


def test_an_id_is_matched_as_written_unless_the_carrier_writes_it_in_another_base(db):
    # decimal ids at the SMSC: "16" and "22" are two messages; a hex receipt "16" means 22
    as_16, as_22 = submitted(db, "16", "22")
    r = receipt("16")
    (unmatched,) = db.transaction(apply_receipts, [r])  # carrier's relation unknown: ambiguous
    assert unmatched.ambiguous and not unmatched.matched
    assert {_message(db, m)["status"] for m in (as_16, as_22)} == {"submitted"}
    relations = {"telcel": Relation.SUBMIT_DECIMAL_RECEIPT_HEX}
    assert db.transaction(apply_receipts, [r], relations) == []
    assert (r.message_id, _message(db, as_22)["status"], _message(db, as_16)["status"]) == (
        as_22,
        "delivered",
        "submitted",
    )
    r = receipt("16")
    assert db.transaction(apply_receipts, [r], {"telcel": Relation.SAME}) == []
    assert r.message_id == as_16
    # a relation that cannot read the id: nothing is guessed
    hex_receipt = receipt("1f")
    assert db.transaction(apply_receipts, [hex_receipt], {"telcel": Relation.SUBMIT_HEX_RECEIPT_DECIMAL}) == [
        hex_receipt
    ]


def test_a_match_in_one_form_only_is_evidence_of_the_carriers_relation(db):
    decimal, other = submitted(db, "26", "abc-1")
    r, plain = receipt("1a"), receipt("abc-1")  # "1a" can only be hex for 26
    assert db.transaction(apply_receipts, [r, plain]) == []
    assert (r.message_id, r.evidence) == (decimal, Relation.SUBMIT_DECIMAL_RECEIPT_HEX)
    assert (plain.message_id, plain.evidence) == (other, None)  # no other form: no evidence


def test_only_open_parts_are_candidates_the_most_recently_submitted_first(db):
    # an SMSC that restarted its counter: id 7 named a message delivered long ago
    (old,) = submitted(db, "7", at=NOW - timedelta(days=1))
    db.transaction(apply_receipts, [receipt("7", at=NOW - timedelta(hours=23))])
    (older,) = submitted(db, "7", at=NOW)
    (newer,) = submitted(db, "7", at=NOW + timedelta(seconds=1))
    (other_carrier,) = submitted(db, "7", carrier="movistar", at=NOW + timedelta(seconds=2))
    first, second, third = receipt("7"), receipt("7"), receipt("7")
    assert db.transaction(apply_receipts, [first]) == []
    assert first.message_id == newer
    assert db.transaction(apply_receipts, [second, third]) == [third]
    assert second.message_id == older
    assert _history(db, old) == ["queued", "submitted", "delivered"]  # untouched
    with db.engine.connect() as conn:
        done_at = conn.execute(select(message_parts.c.done_at).where(message_parts.c.message_id == old))
        assert done_at.scalar_one() == NOW - timedelta(hours=23)
    assert _message(db, other_carrier)["status"] == "submitted"


def test_ids_on_two_parts_of_one_message_may_repeat(db):
    (mid,) = db.transaction(outbox.enqueue, [_row(2)], NOW)
    db.transaction(outbox.apply_submitted, [outbox.Submitted(mid, "telcel", ["same", "same"], NOW)])
    assert db.transaction(apply_receipts, [receipt("same"), receipt("same")]) == []
    assert _message(db, mid)["status"] == "delivered"


def test_submitted_records_encoding_segments_and_route(db):
    (mid,) = db.transaction(outbox.enqueue, [_row(2)], NOW)
    db.transaction(
        outbox.apply_submitted,
        [
            outbox.Submitted(
                mid, "movistar", ["m1", "m2", "m3"], NOW, "ucs2", 3, "telcel > movistar (after x)"
            )
        ],
    )
    message = _message(db, mid)
    assert (message["encoding"], message["segments"], message["carrier"]) == ("ucs2", 3, "movistar")
    assert "route telcel > movistar" in message["history"][-1]["detail"]


def test_a_message_that_left_the_queue_is_not_recorded_submitted(db):
    gone, kept = db.transaction(outbox.enqueue, [_row(), _row()], NOW)
    with db.engine.begin() as conn:
        conn.execute(update(messages).where(messages.c.id == gone).values(status="cancelled"))
    db.transaction(
        outbox.apply_submitted,
        [outbox.Submitted(gone, "telcel", ["g"], NOW), outbox.Submitted(kept, "telcel", ["k"], NOW)],
    )
    assert _message(db, gone)["parts"] == [] and _history(db, gone) == ["queued"]
    assert _message(db, kept)["status"] == "submitted"


def test_retries_give_back_the_attempt_unless_it_counts(db):
    counted, given_back = db.transaction(outbox.enqueue, [_row(), _row()], NOW)
    db.transaction(outbox.claim, "a", 10, NOW, 60)
    db.transaction(
        outbox.apply_retries,
        [
            outbox.Retry(counted, NOW + timedelta(seconds=2), 8, "ESME_RSYSERR", NOW),
            outbox.Retry(
                given_back, NOW + timedelta(seconds=1), None, "lease ending", NOW, count_attempt=False
            ),
        ],
    )
    assert _message(db, counted)["attempts"] == 1
    assert _message(db, given_back)["attempts"] == 0
    assert _message(db, counted)["lease_owner"] is None


def test_failures_first_one_wins_and_final_messages_stay(db):
    a, b = db.transaction(outbox.enqueue, [_row(), _row()], NOW)
    db.transaction(outbox.apply_submitted, [outbox.Submitted(b, "telcel", ["b"], NOW)])
    db.transaction(apply_receipts, [receipt("b")])
    db.transaction(
        outbox.apply_failures,
        [
            outbox.Failed(a, MessageStatus.FAILED, 0x0B, "ESME_RINVDSTADR", NOW, "telcel"),
            outbox.Failed(a, MessageStatus.EXPIRED, None, "later", NOW),
            outbox.Failed(b, MessageStatus.FAILED, 0x0B, "ESME_RINVDSTADR", NOW),
        ],
    )
    failed = _message(db, a)
    assert (failed["status"], failed["error_code"], failed["error_text"], failed["carrier"]) == (
        "failed",
        0x0B,
        "ESME_RINVDSTADR",
        "telcel",
    )
    assert _history(db, a) == ["queued", "failed"]
    assert _message(db, b)["status"] == "delivered"


async def test_a_receipt_before_its_submit_result_is_matched_once_that_is_recorded(db):
    (mid,) = db.transaction(outbox.enqueue, [_row()], NOW)
    writer = StatusWriter(db, orphan_seconds=5)
    writer.start()
    try:
        acked = asyncio.get_running_loop().create_future()
        committed = writer.next_commit()
        writer.post(receipt("early"), acked)
        await asyncio.wait_for(committed, 5)
        assert writer.orphans == 1
        assert not acked.done()  # not stored yet: its acknowledgement waits
        await writer.put(outbox.Submitted(mid, "telcel", ["early"], NOW))
        # the orphan is applied right after the batch that recorded the submission, then acknowledged
        assert _message(db, mid)["status"] == "delivered"
        assert acked.done()
        assert writer.orphans == 0 and writer.receipts_matched == {"telcel": 1}
        assert writer.receipt_latency["telcel"].count == 1
    finally:
        await writer.stop()


async def test_an_unmatched_receipt_is_acknowledged_after_a_bound_and_still_retried(db):
    writer = StatusWriter(db, orphan_seconds=5, orphan_ack_seconds=0.05)
    writer.start()
    try:
        acked = asyncio.get_running_loop().create_future()
        writer.post(receipt("late"), acked)
        await asyncio.wait_for(acked, 5)  # the SMSC is not kept waiting past the bound
        assert writer.orphans == 1
    finally:
        await writer.stop()


async def test_a_receipt_for_an_unknown_id_is_given_up_after_a_while(db):
    writer = StatusWriter(db, orphan_seconds=0.3)
    writer.start()
    try:
        acked = asyncio.get_running_loop().create_future()
        writer.post(receipt("nobody"), acked)
        await asyncio.wait_for(acked, 5)

        async def gone():
            while writer.orphans:
                await writer.next_commit()

        await asyncio.wait_for(gone(), 5)
        assert writer.receipts_unknown == {"telcel": 1}
    finally:
        await writer.stop()


def test_a_big_batch_costs_a_few_statements(db):
    ids = db.transaction(outbox.enqueue, [_row()] * 300 + [_row(2)] * 100, NOW)
    subs = [outbox.Submitted(m, "telcel", [f"s{m}"], NOW) for m in ids[:300]]
    subs += [outbox.Submitted(m, "telcel", [f"s{m}a", f"s{m}b"], NOW) for m in ids[300:]]
    db.transaction(outbox.apply_submitted, subs)
    statements = []
    from sqlalchemy import event

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement.split()[0])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        rs = [receipt(f"s{m}") for m in ids[:300]]
        rs += [receipt(f"s{m}{x}") for m in ids[300:] for x in "ab"]
        assert db.transaction(apply_receipts, rs) == []
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert len(statements) <= 6, statements
    with db.engine.connect() as conn:
        statuses = conn.execute(select(messages.c.status).where(messages.c.id.in_(ids))).scalars().all()
    assert set(statuses) == {"delivered"}
