"""What the SMSCs send as deliver_sm or data_sm, turned into events for the application.

- A receipt (esm_class 0x04) is parsed (TLVs first, the standard text otherwise) and becomes a
  :class:`~smpp_client.events.DeliveryReceipt`. Where the carrier's hex/decimal relation is known
  (configured, or learned: :class:`~smpp_client.message_ids.ReceiptIdRelations`), its id is
  brought to the form its part's submit id was stored in. A receipt that cannot be parsed is
  counted as unparsed; one whose id is unusable (over 64 characters, say: no id the gateway
  stores) is counted per carrier as an unknown id. Both are acknowledged (ESME_ROK), never an
  error, so the SMSC does not send them again for ever.
- Anything else is a message from a handset. Parts of a long one (UDH 8/16-bit reference, or the
  sar_* TLVs) are collected, and each part is acknowledged as it comes (an SMSC must not be held
  with an incomplete group); the whole text, decoded (GSM 03.38, UCS-2, …), becomes one
  :class:`~smpp_client.events.MobileMessage`. A sender address longer than SMPP's 20 characters
  (data_sm allows 64) is refused with ESME_RINVSRCADR: no handset has such a number, and the
  SMSC does not resend a permanent refusal.
- The handler's awaitable decides the answer: ESME_ROK once it resolved, ESME_RX_T_APPN if it
  failed, so the SMSC sends it again; the other parts of a long message are then kept, so the
  resent last part completes the group. A future costs no task: the answer goes out from its
  done-callback.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import structlog

from textcodec.encoding import decode_payload

from .concat import ConcatInfo, concat_info_from_tlvs, parse_udh
from .constants import ESM_UDHI, TON_INTERNATIONAL, Status, Tlv
from .events import DeliveryReceipt, LinkEvents, MobileMessage
from .message_ids import ReceiptIdRelations, Relation, submitted_form
from .pdu import Pdu
from .reassembly import PartStore, Reassembler
from .receipts import UnusableId, is_receipt, read_receipt

log = structlog.get_logger("smpp_client")

Respond = Callable[[int], None]
# (source_addr, source_addr_ton) -> the sender as the application wants it
SenderNumber = Callable[[str, int], str]
MAX_SENDER_LENGTH = 20  # deliver_sm's source_addr: 21 octets with the NUL
_EXPIRE_EVERY = 30.0  # seconds between sweeps of incomplete long messages


def international_number(address: str, ton: int = TON_INTERNATIONAL) -> str:
    """``+`` and the digits of an international address; other forms as written."""
    digits = "".join(ch for ch in address if ch.isdigit())
    if ton == TON_INTERNATIONAL and digits:
        return "+" + digits
    return digits or address


def utc_now() -> datetime:
    """Naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


class Inbound:
    def __init__(
        self,
        events: LinkEvents,
        receipt_ids: ReceiptIdRelations,
        *,
        sender_number: SenderNumber = international_number,
        clock: Callable[[], datetime] = utc_now,
        reassembly_seconds: float = 600.0,
        parts: PartStore | None = None,
    ):
        """``parts``: where long messages' parts wait for each other (None: this process's memory)."""
        self.events = events
        self.parts = parts
        self._storing: set[asyncio.Task] = set()  # parts being stored
        self.receipt_ids = receipt_ids
        self.sender_number = sender_number
        self.clock = clock
        self.reassembler = Reassembler(timeout_seconds=reassembly_seconds)
        self._next_expiry = 0.0
        # numbers for /metrics
        self.receipts_unparsed = 0
        self.receipts_unknown: dict[str, int] = {}  # carrier -> receipts with an unusable id
        self.mo_parts = 0
        self.mo_refused = 0
        self.mo_incomplete = 0  # long messages dropped before their last part came

    def deliver(self, carrier: str, pdu: Pdu, respond: Respond, patient: bool = False) -> None:
        """A deliver_sm or data_sm from ``carrier``; ``respond(status)`` sends its response."""
        if is_receipt(pdu):
            self._receipt(carrier, pdu, respond, patient)
        else:
            self._mobile(carrier, pdu, respond)

    # --- receipts -----------------------------------------------------------------------------

    def _receipt(self, carrier: str, pdu: Pdu, respond: Respond, patient: bool) -> None:
        parsed = read_receipt(pdu)
        if isinstance(parsed, UnusableId):
            count = self.receipts_unknown[carrier] = self.receipts_unknown.get(carrier, 0) + 1
            if count == 1 or count % 1000 == 0:
                log.warning(
                    "receipt for an unusable message id acknowledged",
                    carrier=carrier,
                    id_length=parsed.length,
                    so_far=count,
                )
            respond(Status.ESME_ROK)
            return
        if parsed is None:
            self.receipts_unparsed += 1
            if self.receipts_unparsed == 1 or self.receipts_unparsed % 1000 == 0:
                log.warning(
                    "unreadable delivery receipt acknowledged", carrier=carrier, so_far=self.receipts_unparsed
                )
            respond(Status.ESME_ROK)
            return
        relation = self.receipt_ids.relation(carrier)
        submit_id = submitted_form(parsed.message_id, relation) if relation is not Relation.AUTO else None
        receipt = DeliveryReceipt(
            carrier, parsed.message_id, submit_id, parsed.state, parsed.error, self.clock(), patient
        )
        try:
            stored = self.events.receipt(receipt)
        except Exception:
            log.exception("receipt handler failed; the SMSC will resend", carrier=carrier)
            respond(Status.ESME_RX_T_APPN)
            return
        self._answer_when(stored, respond)

    # --- messages from handsets ---------------------------------------------------------------

    def _mobile(self, carrier: str, pdu: Pdu, respond: Respond) -> None:
        self.mo_parts += 1
        fields = pdu.fields
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
            self._complete(carrier, pdu, [payload], respond, None)
            return
        key = (carrier, sender, fields.get("destination_addr", ""))
        if self.parts is not None:
            task = asyncio.ensure_future(self._stored_part(carrier, pdu, key, info, payload, respond))
            self._storing.add(task)
            task.add_done_callback(self._storing.discard)
            return
        now = time.monotonic()
        if now >= self._next_expiry:
            self._next_expiry = now + _EXPIRE_EVERY
            dropped = self.reassembler.expire(now)
            if dropped:
                self.mo_incomplete += len(dropped)
                log.warning(
                    "incomplete MO dropped", carriers=sorted({key[0] for key in dropped}), count=len(dropped)
                )
        chunks = self.reassembler.add(key, info, payload, now)
        if chunks is None:
            respond(Status.ESME_ROK)  # a part: acknowledged now, the group completes later
            return
        self._complete(carrier, pdu, chunks, respond, (key, info, now))

    async def _stored_part(
        self, carrier: str, pdu: Pdu, key: tuple, info: ConcatInfo, payload: bytes, respond: Respond
    ) -> None:
        """A part kept in the part store: acknowledged once stored; the one that completes its
        group is answered when the whole message is handled, and the group forgotten then (a
        failure keeps it, so the part sent again completes it again)."""
        parts = self.parts
        assert parts is not None
        try:
            chunks = await parts.add(key, info, payload)
        except Exception:
            log.exception("MO part not stored; the SMSC will resend", carrier=carrier)
            respond(Status.ESME_RX_T_APPN)
            return
        if chunks is None:
            respond(Status.ESME_ROK)
            return

        def forget() -> None:
            task = asyncio.ensure_future(parts.done(key, info))
            self._storing.add(task)
            task.add_done_callback(self._forgotten)

        self._complete(carrier, pdu, chunks, respond, None, on_success=forget)

    def _forgotten(self, task: asyncio.Task) -> None:
        self._storing.discard(task)
        if not task.cancelled() and task.exception() is not None:  # its next part would complete it anew
            log.warning("handled MO parts not forgotten", error=type(task.exception()).__name__)

    def _complete(
        self,
        carrier: str,
        pdu: Pdu,
        chunks: list[bytes],
        respond: Respond,
        group: tuple[tuple, ConcatInfo, float] | None,
        on_success: Callable[[], None] | None = None,
    ) -> None:
        fields = pdu.fields
        message = MobileMessage(
            carrier,
            self.sender_number(
                fields.get("source_addr", ""), fields.get("source_addr_ton", TON_INTERNATIONAL)
            ),
            fields.get("destination_addr", ""),
            decode_payload(b"".join(chunks), fields.get("data_coding", 0)),
            self.clock(),
            len(chunks),
        )

        def keep_the_other_parts() -> None:  # so the resent last part completes the group
            if group is not None:
                key, info, now = group
                self.reassembler.put_back(key, info, chunks, now)

        try:
            stored = self.events.mobile_message(message)
        except Exception:
            log.exception("MO handler failed; the SMSC will resend", carrier=carrier)
            keep_the_other_parts()
            respond(Status.ESME_RX_T_APPN)
            return
        self._answer_when(stored, respond, keep_the_other_parts, on_success)

    # --- answering ----------------------------------------------------------------------------

    def _answer_when(
        self,
        stored: Awaitable[object],
        respond: Respond,
        on_failure: Callable[[], None] | None = None,
        on_success: Callable[[], None] | None = None,
    ) -> None:
        future = stored if isinstance(stored, asyncio.Future) else asyncio.ensure_future(stored)
        if future.done():
            _answer(respond, on_failure, on_success, future)
        else:
            future.add_done_callback(functools.partial(_answer, respond, on_failure, on_success))


def _answer(
    respond: Respond,
    on_failure: Callable[[], None] | None,
    on_success: Callable[[], None] | None,
    stored: asyncio.Future,
) -> None:
    if stored.cancelled() or stored.exception() is not None:
        if on_failure is not None:
            on_failure()
        respond(Status.ESME_RX_T_APPN)  # temporary: the SMSC sends it again
    else:
        if on_success is not None:
            on_success()
        respond(Status.ESME_ROK)
