"""What the carrier links report, taken in by the application (the link's ``LinkEvents`` handler).

- A delivery receipt becomes a status change for the :class:`StatusWriter` (matched there to its
  part, rolled up to its message). The future returned resolves once that change is committed, so
  the SMSC is answered only for a stored receipt. An intermediate receipt (ENROUTE, ACCEPTD,
  UNKNOWN) records nothing and is answered at once.
- A citizen's message (reassembled and decoded by the link) goes to the citizens' inbox (keywords,
  replies: ``gateway/services/citizen_sms.py``); the returned task fails if the inbox does, and the SMSC then
  sends the message again.
- A bind that came up or went down goes to ``on_bind`` (the dispatcher's wake-up: a bind up is
  room to claim).

The counters here are what /metrics shows of the application's side; the link counts its own
(``CarrierPool.inbound``: unparsable receipts, MO parts, refused senders).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import structlog

from gateway.domain.phone import InvalidNumber, from_smpp_address, mask_msisdn
from gateway.domain.status import MessageStatus
from gateway.store.outbox import ReceiptUpdate
from gateway.store.status_writer import StatusWriter
from smpp_client.constants import TON_INTERNATIONAL, MessageState
from smpp_client.events import BindChanged, DeliveryReceipt, MobileMessage
from smpp_client.inbound import international_number

log = structlog.get_logger("inbound")

RECEIPT_STATUS = {
    MessageState.DELIVERED: MessageStatus.DELIVERED,
    MessageState.EXPIRED: MessageStatus.EXPIRED,
    MessageState.DELETED: MessageStatus.UNDELIVERABLE,
    MessageState.UNDELIVERABLE: MessageStatus.UNDELIVERABLE,
    MessageState.REJECTED: MessageStatus.REJECTED,
}


class CitizenInbox(Protocol):
    async def handle(self, carrier: str | None, msisdn: str, text: str, received_at: datetime) -> object: ...


def msisdn_e164(address: str, ton: int = TON_INTERNATIONAL) -> str:
    """A sender's address as E.164 (+52… for Mexican numbers); other forms kept as digits."""
    try:
        return from_smpp_address(address)
    except (InvalidNumber, ValueError):
        return international_number(address, ton)


def _ignore(change: BindChanged) -> None:
    pass


class LinkEventHandler:
    def __init__(
        self,
        writer: StatusWriter,
        inbox: CitizenInbox,
        on_bind: Callable[[BindChanged], None] = _ignore,
    ):
        self.writer = writer
        self.inbox = inbox
        self.on_bind = on_bind
        # numbers for /metrics
        self.receipts: dict[str, int] = {}  # final receipts handed to the writer, by carrier
        self.receipts_intermediate = 0
        self.mo_messages: dict[str, int] = {}  # citizens' messages the inbox took, by carrier
        self.mo_failed = 0  # ... and those it could not (the SMSC resends them)

    def receipt(self, receipt: DeliveryReceipt) -> asyncio.Future[None]:
        stored = asyncio.get_running_loop().create_future()
        status = RECEIPT_STATUS.get(receipt.state)
        if status is None:  # intermediate: nothing final to record
            self.receipts_intermediate += 1
            stored.set_result(None)
            return stored
        carrier = receipt.carrier
        self.receipts[carrier] = self.receipts.get(carrier, 0) + 1
        change = ReceiptUpdate(
            carrier,
            receipt.message_id,
            status,
            receipt.error,
            receipt.received_at,
            submit_id=receipt.submit_id,
        )
        self.writer.post(change, stored, urgent=not receipt.patient)
        return stored

    def mobile_message(self, message: MobileMessage) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(self._to_inbox(message))

    def bind_changed(self, change: BindChanged) -> None:
        self.on_bind(change)

    async def _to_inbox(self, message: MobileMessage) -> None:
        carrier = message.carrier
        log.info(
            "citizen message received",
            carrier=carrier,
            sender=mask_msisdn(message.sender),
            length=len(message.text),
        )
        try:
            await self.inbox.handle(carrier, message.sender, message.text, message.received_at)
        except Exception:
            self.mo_failed += 1
            log.exception("citizen message handler failed; the SMSC will resend", carrier=carrier)
            raise
        self.mo_messages[carrier] = self.mo_messages.get(carrier, 0) + 1
