"""What the simulator keeps of each message: its parts (one per submit_sm, each with its own id and
receipt), the message they form as a handset shows it, and the MO a virtual phone sent."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from textcodec.encoding import decode_payload

# message_state values (SMPP 3.4 5.2.28)
ENROUTE, DELIVERED, EXPIRED, DELETED, UNDELIVERABLE, ACCEPTED, UNKNOWN, REJECTED = range(1, 9)
STATE_STAT = {
    ENROUTE: "ENROUTE",
    DELIVERED: "DELIVRD",
    EXPIRED: "EXPIRED",
    DELETED: "DELETED",
    UNDELIVERABLE: "UNDELIV",
    ACCEPTED: "ACCEPTD",
    UNKNOWN: "UNKNOWN",
    REJECTED: "REJECTD",
}
# When parts of one message end differently, the message shows the first of these found.
_STATE_PRIORITY = (ENROUTE, REJECTED, UNDELIVERABLE, EXPIRED, DELETED, UNKNOWN, ACCEPTED, DELIVERED)
_NEVER = float("inf")
# A part's receipt: none (not asked for) | scheduled | sent | acked | failed | cancelled
_RECEIPT_RANK = {"failed": 0, "cancelled": 1, "scheduled": 2, "sent": 3, "acked": 4, "none": 5}


def iso(ts: float | None) -> str | None:
    if ts is None or ts == _NEVER:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def mask(number: str | None) -> str:
    """A phone number for the logs: only its last 4 digits."""
    if not number:
        return ""
    return "…" + number[-4:] if len(number) > 4 else "…"


class PartRecord:
    """One submit_sm: its own message id, its own receipt."""

    __slots__ = (
        "cancelled",
        "done_at",
        "err",
        "final_state",
        "id",
        "message",
        "receipt",
        "receipt_id",
        "receipt_tries",
        "seq",
        "submitted",
        "user_data",
    )

    def __init__(self, message_id: str, message: Message, seq: int, user_data: bytes, submitted: float):
        self.id = message_id
        self.message = message
        self.seq = seq
        self.user_data = user_data
        self.submitted = submitted
        self.done_at = _NEVER  # wall time the final state is reached
        self.final_state = ENROUTE
        self.err = 0
        self.cancelled: float | None = None
        self.receipt = "none"  # see _RECEIPT_RANK
        self.receipt_id: str | None = None  # the id its receipt gives, when not ``id`` (receipt_id_format)
        self.receipt_tries = 0

    def state(self, now: float | None = None) -> int:
        if self.cancelled is not None:
            return DELETED
        if (now if now is not None else time.time()) >= self.done_at:
            return self.final_state
        return ENROUTE

    def final_date(self, now: float | None = None) -> float | None:
        if self.cancelled is not None:
            return self.cancelled
        if (now if now is not None else time.time()) >= self.done_at:
            return self.done_at
        return None

    def as_dict(self, now: float) -> dict:
        state = self.state(now)
        return {
            "id": self.id,
            "seq": self.seq,
            "status": STATE_STAT[state],
            "message_state": state,
            "err": self.err if state not in (ENROUTE, DELETED) else None,
            "receipt": self.receipt,
            "receipt_tries": self.receipt_tries,
            "octets": len(self.user_data),
            "submitted_at": iso(self.submitted),
            "done_at": iso(self.final_date(now)),
        }


class Message:
    """A message as a handset shows it: one or more parts (concatenated via UDH or SAR TLVs)."""

    __slots__ = (
        "_text",
        "carrier",
        "concat",
        "data_coding",
        "dest",
        "dest_npi",
        "dest_ton",
        "index",
        "key",
        "parts",
        "phone",
        "reference",
        "registered_delivery",
        "source",
        "source_npi",
        "source_ton",
        "submitted",
        "total",
    )

    def __init__(
        self,
        index,
        carrier,
        source,
        source_ton,
        source_npi,
        dest,
        dest_ton,
        dest_npi,
        phone,
        data_coding,
        registered_delivery,
        concat,
        reference,
        total,
        submitted,
    ):
        self.index = index
        self.carrier = carrier
        self.source = source
        self.source_ton = source_ton
        self.source_npi = source_npi
        self.dest = dest
        self.dest_ton = dest_ton
        self.dest_npi = dest_npi
        self.phone = phone
        self.data_coding = data_coding
        self.registered_delivery = registered_delivery
        self.concat = concat
        self.reference = reference
        self.total = total
        self.submitted = submitted
        self.parts: list[PartRecord | None] = [None] * total
        self.key = None
        self._text: str | None = None

    @property
    def complete(self) -> bool:
        return all(p is not None for p in self.parts)

    @property
    def text(self) -> str:
        if self._text is not None:
            return self._text
        chunks: list[str] = []
        run = bytearray()
        missing = False
        for part in self.parts:
            if part is None:
                if run:
                    chunks.append(decode_payload(bytes(run), self.data_coding))
                    run.clear()
                chunks.append("[…]")
                missing = True
            else:
                run += part.user_data
        if run:
            chunks.append(decode_payload(bytes(run), self.data_coding))
        text = "".join(chunks)
        if not missing:
            self._text = text
        return text

    def state(self, now: float) -> int:
        states = {p.state(now) for p in self.parts if p is not None}
        if len(states) == 1:
            return states.pop()
        for candidate in _STATE_PRIORITY:
            if candidate in states:
                return candidate
        return UNKNOWN

    def receipt_progress(self) -> str:
        """How far its parts' receipts got: the least advanced of them (a failed one first)."""
        progress = [p.receipt for p in self.parts if p is not None]
        return min(progress, key=_RECEIPT_RANK.__getitem__) if progress else "none"

    def encoding(self) -> str:
        return {0: "gsm7", 8: "ucs2", 1: "ascii", 3: "latin1"}.get(self.data_coding, "binary")

    def as_dict(self, now: float) -> dict:
        present = [p for p in self.parts if p is not None]
        state = self.state(now)
        return {
            "id": present[0].id if present else None,
            "ids": [p.id for p in present],
            "carrier": self.carrier,
            "from": self.source,
            "to": self.phone,
            "destination_addr": self.dest,
            "dest_addr_ton": self.dest_ton,
            "text": self.text,
            "data_coding": self.data_coding,
            "encoding": self.encoding(),
            "concat": self.concat,
            "reference": self.reference,
            "total_parts": self.total,
            "parts_received": len(present),
            "complete": len(present) == self.total,
            "registered_delivery": self.registered_delivery,
            "status": STATE_STAT[state],
            "submitted_at": iso(self.submitted),
            "parts": [p.as_dict(now) for p in present],
        }


class MoRecord:
    """An SMS a virtual phone sent to the gateway (one or more deliver_sm)."""

    __slots__ = (
        "carrier",
        "created",
        "data_coding",
        "encoding",
        "id",
        "parts",
        "parts_acked",
        "parts_failed",
        "phone",
        "text",
        "to",
    )

    def __init__(self, mo_id, carrier, phone, to, text, encoding, data_coding, parts, created):
        self.id = mo_id
        self.carrier = carrier
        self.phone = phone
        self.to = to
        self.text = text
        self.encoding = encoding
        self.data_coding = data_coding
        self.parts = parts
        self.parts_acked = 0
        self.parts_failed = 0
        self.created = created

    @property
    def status(self) -> str:
        if self.parts_failed:
            return "failed"
        if self.parts_acked >= self.parts:
            return "delivered"
        return "queued"

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "carrier": self.carrier,
            "from": self.phone,
            "to": self.to,
            "text": self.text,
            "encoding": self.encoding,
            "data_coding": self.data_coding,
            "parts": self.parts,
            "parts_acked": self.parts_acked,
            "status": self.status,
            "created_at": iso(self.created),
        }
