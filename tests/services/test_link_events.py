"""The application's side of the link: receipts to the status writer (answered once committed),
citizens' messages to the inbox (a failure makes the SMSC resend), binds to the wake-up."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from gateway.domain.status import MessageStatus, Priority
from gateway.services.link_events import LinkEventHandler, msisdn_e164
from gateway.store import outbox, reads
from gateway.store.status_writer import StatusWriter
from smpp_client.constants import MessageState
from smpp_client.events import BindChanged, DeliveryReceipt, MobileMessage

NOW = datetime(2026, 11, 29, 16, 0, 0)


class Inbox:
    def __init__(self, fail: bool = False):
        self.fail = fail
        self.got: list[tuple] = []

    async def handle(self, carrier, msisdn, text, received_at):
        if self.fail:
            raise RuntimeError("keywords down")
        self.got.append((carrier, msisdn, text, received_at))


def submitted(db, smsc_id: str) -> int:
    row = {
        "msisdn": "+525512345678",
        "language": "es",
        "body": "hola",
        "encoding": "gsm7",
        "segments": 1,
        "priority": int(Priority.NORMAL),
        "expires_at": NOW + timedelta(hours=1),
    }
    (mid,) = db.transaction(outbox.enqueue, [row], NOW)
    db.transaction(outbox.apply_submitted, [outbox.Submitted(mid, "telcel", [smsc_id], NOW)])
    return mid


def receipt(state: MessageState, written: str = "1A2B", submit_id: str | None = None) -> DeliveryReceipt:
    return DeliveryReceipt("telcel", written, submit_id, state, "000", NOW + timedelta(seconds=4))


def status(db, mid: int) -> str:
    return db.transaction(reads.get_message, mid)["status"]


@pytest.mark.parametrize(
    ("state", "final"),
    [
        (MessageState.DELIVERED, MessageStatus.DELIVERED),
        (MessageState.UNDELIVERABLE, MessageStatus.UNDELIVERABLE),
        (MessageState.EXPIRED, MessageStatus.EXPIRED),
        (MessageState.REJECTED, MessageStatus.REJECTED),
        (MessageState.DELETED, MessageStatus.UNDELIVERABLE),
    ],
)
async def test_a_final_receipt_is_stored_before_its_future_resolves(db, state, final):
    mid = submitted(db, "6699")
    writer = StatusWriter(db)
    handler = LinkEventHandler(writer, Inbox())
    writer.start()
    try:
        stored = handler.receipt(receipt(state, "1A2B", submit_id="6699"))  # hex, submit id decimal
        assert not stored.done()
        await asyncio.wait_for(stored, 5)
        assert status(db, mid) == final.value
    finally:
        await writer.stop(5)
    assert handler.receipts == {"telcel": 1} and writer.receipts_matched == {"telcel": 1}


@pytest.mark.parametrize("state", [MessageState.ENROUTE, MessageState.ACCEPTED, MessageState.UNKNOWN])
async def test_an_intermediate_receipt_records_nothing_and_is_answered_at_once(db, state):
    writer = StatusWriter(db)  # not started: nothing may wait for it
    handler = LinkEventHandler(writer, Inbox())
    stored = handler.receipt(receipt(state))
    assert stored.done() and stored.exception() is None
    assert handler.receipts_intermediate == 1 and writer.backlog == 0


async def test_a_citizens_message_goes_to_the_inbox(db):
    inbox = Inbox()
    handler = LinkEventHandler(StatusWriter(db), inbox)
    message = MobileMessage("telcel", "+525512345678", "30311", "ALTA AGUA POLANCO", NOW, 1)
    await asyncio.wait_for(handler.mobile_message(message), 5)
    assert inbox.got == [("telcel", "+525512345678", "ALTA AGUA POLANCO", NOW)]
    assert handler.mo_messages == {"telcel": 1} and handler.mo_failed == 0


async def test_a_message_the_inbox_could_not_take_fails_its_task(db):
    handler = LinkEventHandler(StatusWriter(db), Inbox(fail=True))
    task = handler.mobile_message(MobileMessage("telcel", "+525512345678", "30311", "BAJA", NOW))
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(task, 5)
    assert handler.mo_failed == 1 and handler.mo_messages == {}


async def test_bind_changes_go_to_the_callable(db):
    seen = []
    handler = LinkEventHandler(StatusWriter(db), Inbox(), on_bind=seen.append)
    change = BindChanged("telcel", "telcel#0", "bound", True)
    handler.bind_changed(change)
    assert seen == [change]


def test_sender_forms():
    assert msisdn_e164("525512345678") == "+525512345678"
    assert msisdn_e164("5512345678", 2) == "+525512345678"
    assert msisdn_e164("14155550100", 1) == "+14155550100"
    assert msisdn_e164("ALERTA", 5) == "ALERTA"
