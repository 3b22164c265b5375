"""What arrives from the SMSCs as deliver_sm: delivery receipts and citizens' messages (MO)."""

from __future__ import annotations

import structlog

from gateway import clock
from gateway.domain.phone import mask_msisdn
from gateway.domain.status import MessageStatus
from gateway.store.outbox import ReceiptUpdate
from gateway.store.status_writer import StatusWriter
from smpp_client.constants import MessageState, Status
from smpp_client.pdu import Pdu
from smpp_client.receipts import is_receipt, message_id_keys, parse_receipt

log = structlog.get_logger("inbound")

RECEIPT_STATUS = {
    MessageState.DELIVERED: MessageStatus.DELIVERED,
    MessageState.EXPIRED: MessageStatus.EXPIRED,
    MessageState.DELETED: MessageStatus.UNDELIVERABLE,
    MessageState.UNDELIVERABLE: MessageStatus.UNDELIVERABLE,
    MessageState.REJECTED: MessageStatus.REJECTED,
}


class InboundHandler:
    def __init__(self, writer: StatusWriter):
        self.writer = writer

    async def on_deliver(self, carrier: str, pdu: Pdu) -> int:
        """Returns the deliver_sm_resp status; answered only once the receipt is stored."""
        if is_receipt(pdu):
            receipt = parse_receipt(pdu)
            if receipt is None:
                log.warning("unparseable delivery receipt acknowledged", carrier=carrier)
                return Status.ESME_ROK
            status = RECEIPT_STATUS.get(receipt.state)
            if status is None:  # intermediate (ENROUTE, ACCEPTED, UNKNOWN): nothing final to record
                return Status.ESME_ROK
            await self.writer.put(
                ReceiptUpdate(
                    carrier, message_id_keys(receipt.message_id), status, receipt.error, clock.utcnow()
                )
            )
            return Status.ESME_ROK
        return await self.on_mobile_originated(carrier, pdu)

    async def on_mobile_originated(self, carrier: str, pdu: Pdu) -> int:
        # Keywords (ALTA, BAJA, AYUDA, ESTADO, SI/NO) plug in here: issue #6.
        log.info("citizen message received", carrier=carrier, sender=mask_msisdn(pdu.get("source_addr", "")))
        return Status.ESME_ROK
