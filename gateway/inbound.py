"""What arrives from the SMSCs as deliver_sm or data_sm: delivery receipts and citizens' messages (MO).

- A receipt (esm_class 0x04) is parsed (TLVs first, the standard text otherwise) and handed to the
  :class:`StatusWriter` with its id as the carrier wrote it (the writer matches it to a part); its
  response goes out once the status is committed. A receipt that cannot be parsed or used (an id
  over 64 characters, say), an intermediate one (ENROUTE, ACCEPTD) or one for an unknown id is
  counted and acknowledged, never an error, so the SMSC does not send it again for ever.
- Anything else is a citizen's message. Parts of a long one (UDH 8/16-bit reference, or the
  sar_* TLVs) are collected by a :class:`~smpp_client.concat.Reassembler` and each part is
  acknowledged as it comes (an SMSC must not be held with an incomplete group); the whole text,
  decoded (GSM 03.38, UCS-2, …), goes to :meth:`InboundHandler.on_citizen_message`, the hook the
  keywords issue builds on. If that hook fails, the last part is answered ESME_RX_T_APPN so the
  SMSC sends it again, and the other parts are kept to complete the group then. A sender address
  longer than SMPP's 20 characters (data_sm allows 64) is refused with ESME_RINVSRCADR: no citizen
  has such a number, and the SMSC does not resend a permanent refusal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime

import structlog

from gateway import clock
from gateway.domain.phone import InvalidNumber, from_smpp_address, mask_msisdn
from gateway.domain.status import MessageStatus
from gateway.store.outbox import ReceiptUpdate
from gateway.store.status_writer import StatusWriter
from smpp_client.concat import ConcatInfo, Reassembler, concat_info_from_tlvs, parse_udh
from smpp_client.constants import ESM_UDHI, MessageState, Status, Tlv
from smpp_client.pdu import Pdu
from smpp_client.receipts import is_receipt, parse_receipt
from smpp_client.text_encoding import decode_payload

log = structlog.get_logger("inbound")

RECEIPT_STATUS = {
    MessageState.DELIVERED: MessageStatus.DELIVERED,
    MessageState.EXPIRED: MessageStatus.EXPIRED,
    MessageState.DELETED: MessageStatus.UNDELIVERABLE,
    MessageState.UNDELIVERABLE: MessageStatus.UNDELIVERABLE,
    MessageState.REJECTED: MessageStatus.REJECTED,
}

Respond = Callable[[int], None]
MAX_SENDER_LENGTH = 20  # deliver_sm's source_addr: 21 octets with the NUL


def msisdn_e164(address: str, ton: int = 1) -> str:
    """A sender's address as E.164 (+52… for Mexican numbers); other forms kept as digits."""
    try:
        return from_smpp_address(address)
    except (InvalidNumber, ValueError):
        digits = "".join(ch for ch in address if ch.isdigit())
        if ton == 1 and digits:
            return "+" + digits
        return digits or address


class InboundHandler:
    def __init__(self, writer: StatusWriter, citizen_inbox=None, reassembly_seconds: float = 600.0):
        self.writer = writer
        self.citizen_inbox = citizen_inbox
        self.reassembler = Reassembler(timeout_seconds=reassembly_seconds)
        self._next_expiry = 0.0
        self._tasks: set[asyncio.Task] = set()
        # numbers for /metrics
        self.receipts: dict[str, int] = {}
        self.receipts_unparsed = 0
        self.receipts_intermediate = 0
        self.mo_parts = 0
        self.mo_messages: dict[str, int] = {}
        self.mo_failed = 0
        self.mo_refused = 0

    # --- the SMPP side ------------------------------------------------------------------------

    def on_deliver(self, carrier: str, pdu: Pdu, respond: Respond) -> None:
        """A deliver_sm from ``carrier``; ``respond(status)`` sends its deliver_sm_resp."""
        if is_receipt(pdu):
            self._receipt(carrier, pdu, respond)
        else:
            self._mobile_originated(carrier, pdu, respond)

    def _receipt(self, carrier: str, pdu: Pdu, respond: Respond) -> None:
        receipt = parse_receipt(pdu)
        if receipt is None:
            self.receipts_unparsed += 1
            if self.receipts_unparsed == 1 or self.receipts_unparsed % 1000 == 0:
                log.warning(
                    "unusable delivery receipt acknowledged", carrier=carrier, so_far=self.receipts_unparsed
                )
            respond(Status.ESME_ROK)
            return
        status = RECEIPT_STATUS.get(receipt.state)
        if status is None:  # intermediate (ENROUTE, ACCEPTED, UNKNOWN): nothing final to record
            self.receipts_intermediate += 1
            respond(Status.ESME_ROK)
            return
        self.receipts[carrier] = self.receipts.get(carrier, 0) + 1
        self.writer.post(
            ReceiptUpdate(carrier, receipt.message_id, status, receipt.error, clock.utcnow()),
            lambda: respond(Status.ESME_ROK),
        )

    def _mobile_originated(self, carrier: str, pdu: Pdu, respond: Respond) -> None:
        self.mo_parts += 1
        fields = pdu.fields
        data_coding = fields.get("data_coding", 0)
        sender = fields.get("source_addr", "")
        if len(sender) > MAX_SENDER_LENGTH:
            self.mo_refused += 1
            log.warning("MO with an impossible sender refused", carrier=carrier, sender_length=len(sender))
            respond(Status.ESME_RINVSRCADR)
            return
        payload = pdu.tlvs.get(Tlv.MESSAGE_PAYLOAD) or fields.get("short_message", b"")
        info: ConcatInfo | None = None
        try:
            if fields.get("esm_class", 0) & ESM_UDHI:
                info, payload = parse_udh(payload)
            elif Tlv.SAR_MSG_REF_NUM in pdu.tlvs:
                info = concat_info_from_tlvs(pdu.tlvs)
        except ValueError as exc:
            log.warning("malformed MO concatenation; taken as one part", carrier=carrier, error=str(exc))
            info = None
        if info is None or info.total == 1:
            self._complete(carrier, sender, fields, [payload], data_coding, respond, None)
            return
        key = (carrier, sender, fields.get("destination_addr", ""))
        now = time.monotonic()
        if now >= self._next_expiry:
            self._next_expiry = now + 30.0
            for stale in self.reassembler.expire(now):
                log.warning("incomplete MO dropped", carrier=stale[0], sender=mask_msisdn(stale[1]))
        chunks = self.reassembler.add(key, info, payload, now)
        if chunks is None:
            respond(Status.ESME_ROK)  # a part: acknowledged now, the group completes later
            return
        self._complete(carrier, sender, fields, chunks, data_coding, respond, (key, info, now))

    def _complete(self, carrier, sender, fields, chunks, data_coding, respond, group) -> None:
        text = decode_payload(b"".join(chunks), data_coding)
        msisdn = msisdn_e164(sender, fields.get("source_addr_ton", 1))
        received_at = clock.utcnow()

        async def deliver() -> None:
            try:
                await self.on_citizen_message(carrier, msisdn, text, received_at)
            except Exception:
                self.mo_failed += 1
                log.exception("citizen message handler failed; the SMSC will resend", carrier=carrier)
                if group is not None:  # keep the other parts so the resent last one completes it
                    key, info, now = group
                    for seq, chunk in enumerate(chunks, start=1):
                        if seq != info.seq:
                            self.reassembler.add(key, ConcatInfo(info.reference, info.total, seq), chunk, now)
                respond(Status.ESME_RX_T_APPN)
                return
            self.mo_messages[carrier] = self.mo_messages.get(carrier, 0) + 1
            respond(Status.ESME_ROK)

        task = asyncio.get_running_loop().create_task(deliver())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the gateway side ---------------------------------------------------------------------

    async def on_citizen_message(
        self, carrier: str, msisdn_e164: str, text: str, received_at: datetime
    ) -> None:
        """A citizen's whole SMS (reassembled, decoded). Keywords (ALTA, BAJA, AYUDA, ESTADO,
        SI/NO) plug in here: issue #6. Raising makes the SMSC send it again."""
        log.info(
            "citizen message received", carrier=carrier, sender=mask_msisdn(msisdn_e164), length=len(text)
        )
        if self.citizen_inbox is not None:
            await self.citizen_inbox.handle(carrier, msisdn_e164, text, received_at)
