"""The outbox on SQLite and PostgreSQL: ordering, leases, transitions, receipts, expiry."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from sqlalchemy import select

from gateway.domain.status import MessageStatus, Priority
from gateway.store import outbox, reads, receipt_matching
from gateway.store.models import message_status_history, messages

NOW = datetime(2026, 11, 29, 16, 0, 0)


def _row(msisdn: str = "+525512345678", priority: Priority = Priority.NORMAL, **extra) -> dict:
    return {
        "msisdn": msisdn,
        "language": "es",
        "body": "hola",
        "encoding": "gsm7",
        "segments": 1,
        "priority": int(priority),
        "expires_at": NOW + timedelta(hours=1),
        **extra,
    }


def _status(db, message_id: int) -> str:
    with db.engine.connect() as conn:
        return conn.execute(select(messages.c.status).where(messages.c.id == message_id)).scalar_one()


def _history(db, message_id: int) -> list[str]:
    with db.engine.connect() as conn:
        return list(
            conn.execute(
                select(message_status_history.c.status)
                .where(message_status_history.c.message_id == message_id)
                .order_by(message_status_history.c.id)
            ).scalars()
        )


def test_claim_takes_the_most_urgent_first(db):
    _low, normal, emergency = db.transaction(
        outbox.enqueue, [_row(priority=Priority.LOW), _row(), _row(priority=Priority.EMERGENCY)], NOW
    )
    claimed = db.transaction(outbox.claim, "a", 2, NOW, 60)
    assert [m.id for m in claimed] == [emergency, normal]
    assert all(m.attempts == 1 for m in claimed)


def test_a_lease_hides_claimed_rows_until_it_expires(db):
    (mid,) = db.transaction(outbox.enqueue, [_row()], NOW)
    assert [m.id for m in db.transaction(outbox.claim, "a", 10, NOW, 60)] == [mid]
    assert db.transaction(outbox.claim, "b", 10, NOW + timedelta(seconds=30), 60) == []
    # process "a" died: its lease runs out and another process takes the message
    again = db.transaction(outbox.claim, "b", 10, NOW + timedelta(seconds=61), 60)
    assert [(m.id, m.attempts) for m in again] == [(mid, 2)]


def test_not_before_and_expiry_are_respected(db):
    later, expired = db.transaction(
        outbox.enqueue,
        [_row(not_before=NOW + timedelta(minutes=5)), _row(expires_at=NOW - timedelta(seconds=1))],
        NOW - timedelta(minutes=1),
    )
    assert db.transaction(outbox.claim, "a", 10, NOW, 60) == []
    assert db.transaction(outbox.expire_overdue, NOW) == 1
    assert _status(db, expired) == MessageStatus.EXPIRED
    assert _status(db, later) == MessageStatus.QUEUED


def test_concurrent_claims_never_share_a_message(db):
    ids = db.transaction(outbox.enqueue, [_row() for _ in range(200)], NOW)
    with ThreadPoolExecutor(4) as pool:
        batches = list(pool.map(lambda owner: db.transaction(outbox.claim, owner, 60, NOW, 60), "abcd"))
    claimed = [m.id for batch in batches for m in batch]
    assert len(claimed) == len(set(claimed)) == 200
    assert sorted(claimed) == ids


def test_submit_then_receipts_roll_up_per_message(db):
    single, multi, failing = db.transaction(outbox.enqueue, [_row(), _row(segments=2), _row(segments=2)], NOW)
    db.transaction(
        outbox.apply_submitted,
        [
            outbox.Submitted(single, "telcel", ["a1"], NOW),
            outbox.Submitted(multi, "telcel", ["b1", "b2"], NOW),
            outbox.Submitted(failing, "movistar", ["c1", "c2"], NOW),
        ],
    )
    assert _status(db, multi) == MessageStatus.SUBMITTED

    def receipt(carrier, smsc_id, status):
        return outbox.ReceiptUpdate(carrier, smsc_id, status, "000", NOW)

    unmatched = db.transaction(
        receipt_matching.apply_receipts,
        [
            receipt("telcel", "a1", MessageStatus.DELIVERED),
            receipt("telcel", "b1", MessageStatus.DELIVERED),
            receipt("movistar", "c2", MessageStatus.UNDELIVERABLE),
            receipt("telcel", "zz", MessageStatus.DELIVERED),
            receipt("movistar", "a1", MessageStatus.DELIVERED),  # right id, wrong carrier
        ],
    )
    assert [u.smsc_id for u in unmatched] == ["zz", "a1"]
    assert _status(db, single) == MessageStatus.DELIVERED
    assert _status(db, multi) == MessageStatus.SUBMITTED  # one part still out
    assert _status(db, failing) == MessageStatus.UNDELIVERABLE  # one part failed: the message failed
    db.transaction(receipt_matching.apply_receipts, [receipt("telcel", "b2", MessageStatus.DELIVERED)])
    assert _status(db, multi) == MessageStatus.DELIVERED
    assert _history(db, multi) == ["queued", "submitted", "delivered"]
    detail = db.transaction(reads.get_message, multi)
    assert [(p["seq"], p["smsc_message_id"], p["status"]) for p in detail["parts"]] == [
        (1, "b1", "delivered"),
        (2, "b2", "delivered"),
    ]


def test_retry_returns_the_message_to_the_queue_and_failure_is_final(db):
    retry, fail = db.transaction(outbox.enqueue, [_row(), _row()], NOW)
    db.transaction(outbox.claim, "a", 10, NOW, 60)
    db.transaction(
        outbox.apply_retries, [outbox.Retry(retry, NOW + timedelta(seconds=5), 0x58, "throttled", NOW)]
    )
    db.transaction(
        outbox.apply_failures, [outbox.Failed(fail, MessageStatus.FAILED, 0x0B, "ESME_RINVDSTADR", NOW)]
    )
    assert db.transaction(outbox.claim, "a", 10, NOW + timedelta(seconds=1), 60) == []
    assert [m.id for m in db.transaction(outbox.claim, "a", 10, NOW + timedelta(seconds=6), 60)] == [retry]
    detail = db.transaction(reads.get_message, fail)
    assert (detail["status"], detail["error_code"], detail["error_text"]) == (
        "failed",
        0x0B,
        "ESME_RINVDSTADR",
    )
    assert _history(db, fail) == ["queued", "failed"]


def test_a_submit_result_for_a_message_cancelled_meanwhile_is_not_news(db):
    from sqlalchemy import update

    from crm_adapters.callbacks import changes_of

    kept, cancelled = db.transaction(outbox.enqueue, [_row(), _row()], NOW)
    with db.engine.begin() as conn:
        conn.execute(update(messages).where(messages.c.id == cancelled).values(status="cancelled"))
    results = [
        outbox.Submitted(kept, "telcel", ["k1"], NOW),
        outbox.Submitted(cancelled, "telcel", ["c1"], NOW),
    ]
    db.transaction(outbox.apply_submitted, results)
    assert [r.applied for r in results] == [True, False]
    assert _status(db, cancelled) == MessageStatus.CANCELLED
    assert [(mid, status) for mid, status, _ in changes_of(results)] == [(kept, "submitted")]
    failures = [
        outbox.Failed(kept, MessageStatus.FAILED, 8, "first", NOW),
        outbox.Failed(kept, MessageStatus.FAILED, 8, "second", NOW),
    ]
    db.transaction(outbox.apply_failures, failures)
    assert [f.applied for f in failures] == [True, False]
    assert len(changes_of(failures)) == 1


def test_an_operators_retry_keeps_counting_attempts_and_restarts_the_budget(db):
    (mid,) = db.transaction(outbox.enqueue, [_row()], NOW)
    (first,) = db.transaction(outbox.claim, "a", 10, NOW, 60)
    assert (first.attempts, first.attempts_since_retry) == (1, 1)
    db.transaction(outbox.apply_failures, [outbox.Failed(mid, MessageStatus.FAILED, 8, "ESME_RSYSERR", NOW)])

    def plan(priority):
        return MessageStatus.QUEUED, NOW, NOW + timedelta(hours=1)

    later = NOW + timedelta(minutes=5)
    db.transaction(outbox.retry_message, mid, plan, later)
    (again,) = db.transaction(outbox.claim, "a", 10, later, 60)
    assert (again.attempts, again.attempts_at_retry, again.attempts_since_retry) == (2, 1, 1)
    detail = db.transaction(reads.get_message, mid)
    assert detail["attempts"] == 2 and detail["attempts_at_retry"] == 1
