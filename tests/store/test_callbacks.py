"""Status callbacks to CRM clients (aioresponses): signed, retried with backoff on 5xx and timeouts,
given up on 4xx; queued in the transactions of the status writer, expiry and SI / NO answers."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from aiohttp import ClientResponse
from aioresponses import CallbackResult
from aioresponses import aioresponses as _aioresponses
from sqlalchemy import select
from yarl import URL as Url

from crm_adapters.callbacks import CallbackQueue, CallbackSender
from gateway.domain.status import MessageStatus
from gateway.http.problems import Problem
from gateway.http.signing import verify
from gateway.signals import Wakeup
from gateway.store import appointments, outbox
from gateway.store import callbacks as store
from gateway.store.models import callbacks, events
from gateway.store.status_writer import StatusWriter


class _Response(ClientResponse):
    """aioresponses 0.7.9 builds responses without the ``stream_writer`` aiohttp 3.14 requires
    (pnuckowski/aioresponses#289, fix pending in #288); aiohttp only reads its output_size."""

    def __init__(self, method, url, **kwargs):
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


class aioresponses(_aioresponses):
    def add(self, url, method="GET", *args, **kwargs):
        kwargs.setdefault("response_class", _Response)
        return super().add(url, method, *args, **kwargs)


URL = "http://crm.test/smsgw-status"
SECRET = "crm-secret"
NOW = datetime(2026, 11, 30, 16, 0)


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock_():
    return Clock(NOW)


@pytest.fixture
def queue() -> CallbackQueue:
    return CallbackQueue({"cesac": URL})


@pytest.fixture
async def sender(db, clock_):
    service = CallbackSender(
        db,
        {"cesac": SECRET},
        Wakeup("callbacks"),
        backoff_seconds=5,
        max_attempts=4,
        timeout_seconds=2,
        now=clock_,
    )
    yield service
    await service.stop()


def _message(db, client: str = "cesac", event_key: str = "e-1") -> int:
    def work(conn):
        event_id = conn.execute(
            events.insert()
            .values(client_id=client, event_key=event_key, type="case.received", payload={}, received_at=NOW)
            .returning(events.c.id)
        ).scalar_one()
        row = {
            "event_id": event_id,
            "msisdn": "+525512345678",
            "language": "es",
            "body": "hola",
            "encoding": "gsm7",
            "segments": 1,
            "priority": 2,
            "expires_at": NOW + timedelta(hours=1),
        }
        return outbox.enqueue(conn, [row], NOW)[0]

    return db.transaction(work)


def _rows(db) -> list[dict]:
    with db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(callbacks).order_by(callbacks.c.id)).mappings()]


def _verify(headers, body: bytes, url: str = URL) -> None:
    """v2 as the CRM's API is verified (POST, the callback URL's path and query), and v1 for CRMs
    that verify only v1."""
    assert headers["X-Smsgw-Client"] == "smsgw"
    target = Url(url).raw_path_qs
    assert verify(headers, "POST", target, body, {"smsgw": SECRET}).client_id == "smsgw"
    parts = dict(item.split("=", 1) for item in headers["X-Smsgw-Signature"].split(","))
    assert set(parts) == {"t", "v2", "v1"}
    signed = f"{parts['t']}.POST.{target}.".encode() + body
    assert parts["v2"] == hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    expected = hmac.new(SECRET.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    assert parts["v1"] == expected


async def test_status_changes_from_the_writer_become_signed_posts(db, queue, sender):
    mid = _message(db)
    changes = [
        outbox.Submitted(mid, "telcel", ["abc"], NOW),
        outbox.Retry(mid, NOW, None, "throttled", NOW),  # not reported
    ]
    db.transaction(queue.status_changes, changes)
    assert len(_rows(db)) == 1
    seen = []

    def record(url, **kwargs):
        _verify(kwargs["headers"], kwargs["data"])
        seen.append(json.loads(kwargs["data"]))
        return CallbackResult(status=204, response_class=_Response)

    with aioresponses() as mock:
        mock.post(URL, callback=record)
        assert await sender.run_once() == 1
    assert seen == [
        {
            "type": "message.status",
            "message_id": mid,
            "event_id": "e-1",
            "status": "submitted",
            "at": "2026-11-30T16:00:00Z",
            "to": "+52******5678",
            "carrier": None,
            "error": None,
            "sequence": 1,
        }
    ]
    (row,) = _rows(db)
    assert (row["status"], row["attempts"], row["sent_at"]) == ("sent", 1, NOW)


async def test_the_signature_covers_the_path_and_query_of_the_callback_url(db, clock_):
    url = "http://crm.test/hooks/smsgw?tenant=miguel%20hidalgo&token=a%2Fb"
    service = CallbackSender(db, {"cesac": SECRET}, Wakeup("callbacks"), now=clock_)
    mid = _message(db)
    db.transaction(store.enqueue_message_status, {"cesac": url}, [(mid, "delivered", NOW)], NOW)
    headers = []

    def record(called, **kwargs):
        _verify(kwargs["headers"], kwargs["data"], url)
        headers.append((kwargs["headers"], kwargs["data"]))
        return CallbackResult(status=204, response_class=_Response)

    try:
        with aioresponses() as mock:
            mock.post(url, callback=record)
            assert await service.run_once() == 1
    finally:
        await service.stop()
    ((sent, body),) = headers
    with pytest.raises(Problem):  # the same signature on another path of the CRM is refused
        verify(sent, "POST", "/hooks/smsgw?tenant=other", body, {"smsgw": SECRET})
    assert _rows(db)[0]["status"] == "sent"


async def test_server_errors_and_timeouts_are_retried_with_backoff(db, sender, clock_):
    mid = _message(db)
    db.transaction(store.enqueue_message_status, {"cesac": URL}, [(mid, "delivered", NOW)], NOW)
    with aioresponses() as mock:
        mock.post(URL, status=503)
        assert await sender.run_once() == 1
        (row,) = _rows(db)
        assert (row["status"], row["attempts"], row["last_error"]) == ("pending", 1, "HTTP 503")
        assert row["next_attempt_at"] == NOW + timedelta(seconds=5)
        assert await sender.run_once() == 0  # not due yet

        clock_.now = NOW + timedelta(seconds=5)
        mock.post(URL, exception=TimeoutError())
        assert await sender.run_once() == 1
        (row,) = _rows(db)
        assert (row["attempts"], row["next_attempt_at"]) == (2, clock_.now + timedelta(seconds=10))
        assert row["last_error"].startswith("timeout")

        clock_.now += timedelta(seconds=10)
        mock.post(URL, status=200)
        assert await sender.run_once() == 1
    (row,) = _rows(db)
    assert (row["status"], row["attempts"]) == ("sent", 3)


async def test_client_errors_are_given_up_at_once(db, sender):
    mid = _message(db)
    db.transaction(store.enqueue_message_status, {"cesac": URL}, [(mid, "delivered", NOW)], NOW)
    with aioresponses() as mock:
        mock.post(URL, status=400)
        assert await sender.run_once() == 1
        assert await sender.run_once() == 0
    (row,) = _rows(db)
    assert (row["status"], row["attempts"], row["last_error"]) == ("failed", 1, "HTTP 400")


async def test_too_many_failures_give_up(db, sender, clock_):
    mid = _message(db)
    db.transaction(store.enqueue_message_status, {"cesac": URL}, [(mid, "failed", NOW)], NOW)
    with aioresponses() as mock:
        for _ in range(4):
            mock.post(URL, status=500)
            assert await sender.run_once() == 1
            clock_.now += timedelta(hours=1)
    (row,) = _rows(db)
    assert (row["status"], row["attempts"]) == ("failed", 4)


async def test_receipts_expiry_and_clients_without_url(db, queue):
    mine, theirs = _message(db), _message(db, client="other", event_key="x-1")
    receipt = outbox.ReceiptUpdate("telcel", ("abc",), MessageStatus.DELIVERED, "000", NOW, matched=True)
    receipt.message_id, receipt.message_status = mine, MessageStatus.DELIVERED
    partial = outbox.ReceiptUpdate("telcel", ("abd",), MessageStatus.DELIVERED, "000", NOW, matched=True)
    partial.message_id = mine  # a part of a longer message: the message did not change
    db.transaction(
        queue.status_changes, [receipt, partial, outbox.Failed(theirs, MessageStatus.FAILED, 11, "bad", NOW)]
    )
    assert [(r["message_id"], r["payload"]["status"]) for r in _rows(db)] == [(mine, "delivered")]
    # expiry (the gateway's own transaction) reports through the hook, in that transaction
    later = NOW + timedelta(hours=2)
    assert db.transaction(outbox.expire_overdue, later, queue.message_status) == 2
    expired = [(r["message_id"], r["payload"]["status"]) for r in _rows(db)][1:]
    assert expired == [(mine, "expired")]  # the other client has no callback URL


async def test_an_appointment_answer_is_reported_to_the_crm(db, queue):
    def setup(conn):
        from gateway.store.citizens import upsert_case, upsert_citizen

        citizen_id, _, _ = upsert_citizen(conn, "+525512345678", "es", None, NOW)
        case_id = upsert_case(conn, "MH-1", citizen_id, None, None, NOW)
        event_id = conn.execute(
            events.insert()
            .values(
                client_id="cesac",
                event_key="apt-1",
                type="appointment.scheduled",
                payload={},
                received_at=NOW,
            )
            .returning(events.c.id)
        ).scalar_one()
        appointments.schedule(
            conn,
            case_id=case_id,
            citizen_id=citizen_id,
            client_id="cesac",
            folio="MH-1",
            at=NOW + timedelta(days=2),
            place=None,
            event_id=event_id,
            event_key="apt-1",
            now=NOW,
        )
        return citizen_id

    citizen_id = db.transaction(setup)
    answered = db.transaction(appointments.record_answer, citizen_id, False, NOW, queue.appointment_answered)
    assert answered["status"] == "declined"
    assert (
        db.transaction(appointments.record_answer, citizen_id, True, NOW, queue.appointment_answered) is None
    )
    (row,) = _rows(db)
    assert row["kind"] == "appointment.declined"
    assert row["payload"] == {
        "type": "appointment.declined",
        "event_id": "apt-1",
        "folio": "MH-1",
        "appointment_at": "2026-12-02T16:00:00Z",
        "at": "2026-11-30T16:00:00Z",
    }


async def test_the_writer_queues_them_in_its_own_transactions(db, queue):
    writer = StatusWriter(db, in_transaction=[queue.status_changes])
    writer.start()
    try:
        ids = [_message(db, event_key=f"e-{n}") for n in range(5)]
        for mid in ids:
            writer.post(outbox.Submitted(mid, "telcel", [f"id-{mid}"], NOW))
        await writer.flush()
    finally:
        await writer.stop()
    assert sorted(r["message_id"] for r in _rows(db)) == ids


async def test_a_message_s_statuses_reach_the_crm_in_order_after_errors(db, sender, clock_):
    """The CRM answers 500 to the first three POSTs, then 200: every message's ``submitted`` is
    accepted before its ``delivered``, which is held back while ``submitted`` waits to be retried."""
    ids = [_message(db, event_key=f"e-{n}") for n in range(3)]
    writer_changes = [(mid, "submitted", NOW) for mid in ids] + [(mid, "delivered", NOW) for mid in ids]
    db.transaction(store.enqueue_message_status, {"cesac": URL}, writer_changes, NOW)
    calls, accepted = [], []

    def crm(url, **kwargs):
        payload = json.loads(kwargs["data"])
        calls.append(payload)
        if len(calls) <= 3:
            return CallbackResult(status=500, response_class=_Response)
        accepted.append((payload["message_id"], payload["status"], payload["sequence"]))
        return CallbackResult(status=200, response_class=_Response)

    with aioresponses() as mock:
        mock.post(URL, callback=crm, repeat=True)
        assert await sender.run_once() == 3  # the three submitted; every delivered waits
        assert {p["status"] for p in calls} == {"submitted"} and accepted == []
        waiting = {r["payload"]["status"]: r["next_attempt_at"] for r in _rows(db)}
        assert waiting == {"submitted": NOW + timedelta(seconds=5), "delivered": NOW + timedelta(seconds=5)}
        clock_.now = NOW + timedelta(seconds=5)
        assert await sender.run_once() == 6  # submitted again (accepted), then delivered
    for mid in ids:
        assert [(s, n) for m, s, n in accepted if m == mid] == [("submitted", 1), ("delivered", 2)]
    assert {r["status"] for r in _rows(db)} == {"sent"}


def test_a_later_status_is_due_once_the_earlier_is_accepted_or_given_up(db):
    first, second = _message(db), _message(db, event_key="e-2")
    changes = [(first, "submitted", NOW), (first, "delivered", NOW), (second, "submitted", NOW)]
    db.transaction(store.enqueue_message_status, {"cesac": URL}, changes, NOW)
    rows = _rows(db)
    assert [(r["message_id"], r["sequence"], r["payload"]["sequence"]) for r in rows] == [
        (first, 1, 1),
        (first, 2, 2),
        (second, 1, 1),
    ]

    def claim(now):
        return [(d.message_id, d.payload["status"]) for d in db.transaction(store.claim_due, 10, now, 60)]

    assert claim(NOW) == [(first, "submitted"), (second, "submitted")]
    later = NOW + timedelta(minutes=5)  # the leases ran out: claimable again, still in order
    assert claim(later) == [(first, "submitted"), (second, "submitted")]
    outcomes = [store.Outcome(rows[0]["id"], store.FAILED, 10, "HTTP 500")]  # given up
    db.transaction(store.record_outcomes, outcomes, later)
    assert claim(later + timedelta(minutes=5)) == [(first, "delivered"), (second, "submitted")]
    db.transaction(store.enqueue_message_status, {"cesac": URL}, [(first, "expired", NOW)], NOW)
    assert _rows(db)[-1]["payload"]["sequence"] == 3  # numbering goes on after sent and failed ones
