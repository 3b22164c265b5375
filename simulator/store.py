"""What the simulated SMSC received (submit_sm parts grouped into messages) and the MO it sent.

Bounded: a ring of the last ``size`` messages, indexed by part message id and by phone number
(for the handsets page). The hot path (:meth:`Store.add_part`) does no text decoding: texts are
reassembled and decoded when they are read.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime

from smpp_client.text_encoding import decode_payload

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


def iso(ts: float | None) -> str | None:
    if ts is None or ts == _NEVER:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def mask(number: str | None) -> str:
    """A phone number for the logs: only its last 4 digits."""
    if not number:
        return ""
    return "…" + number[-4:] if len(number) > 4 else "…"


class PhoneBook:
    """Display form of numbers: E.164 with '+' where it can be told, cached (called per message)."""

    __slots__ = ("_cache", "_cc")

    def __init__(self, country_code: str = "52"):
        self._cc = country_code
        self._cache: dict[tuple[str, int], str] = {}

    def normalize(self, addr: str, ton: int = 1) -> str:
        key = (addr, ton)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        digits = "".join(ch for ch in addr if ch.isdigit())
        if not digits or len(digits) < 7 or (ton not in (0, 1, 2) and not addr.startswith("+")):
            value = addr  # short codes, alphanumeric senders
        elif len(digits) == 10 and ton != 1:
            value = "+" + self._cc + digits
        elif ton == 1 or addr.startswith("+") or (len(digits) > 10 and digits.startswith(self._cc)):
            value = "+" + digits
        else:
            value = digits
        if len(self._cache) > 200_000:
            self._cache.clear()
        self._cache[key] = value
        return value


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
        self.receipt = "none"  # none | scheduled | sent | acked | failed | cancelled
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


class _Phone:
    __slots__ = ("carrier", "messages", "mo", "number")

    def __init__(self, number: str, carrier: str | None):
        self.number = number
        self.carrier = carrier
        self.messages: deque[Message] = deque()
        self.mo: deque[MoRecord] = deque()


class Store:
    def __init__(
        self,
        size: int = 100_000,
        mo_size: int = 10_000,
        concat_timeout: float = 600.0,
        country_code: str = "52",
    ):
        self.size = size
        self.mo_size = mo_size
        self.concat_timeout = concat_timeout
        self.phonebook = PhoneBook(country_code)
        self.reset()

    def reset(self) -> None:
        self._messages: deque[Message] = deque()
        self._parts: dict[str, PartRecord] = {}
        self._phones: dict[str, _Phone] = {}  # ordered by last activity (oldest first)
        self._groups: dict[tuple, Message] = {}
        self._mo: deque[MoRecord] = deque()
        self._mo_by_id: dict[str, MoRecord] = {}
        self._index = itertools.count(1)
        self._mo_index = itertools.count(1)

    def __len__(self) -> int:
        return len(self._messages)

    # -- writes (event loop thread only) ---------------------------------------------------------------

    def _touch(self, number: str, carrier: str | None) -> _Phone:
        phones = self._phones
        phone = phones.pop(number, None)
        if phone is None:
            phone = _Phone(number, carrier)
        elif carrier:
            phone.carrier = carrier
        phones[number] = phone
        return phone

    def add_part(
        self,
        message_id: str,
        carrier: str,
        source: str,
        source_ton: int,
        source_npi: int,
        dest: str,
        dest_ton: int,
        dest_npi: int,
        data_coding: int,
        registered_delivery: int,
        user_data: bytes,
        concat: str | None = None,
        reference: int = 0,
        total: int = 1,
        seq: int = 1,
        now: float | None = None,
    ) -> PartRecord:
        now = time.time() if now is None else now
        message = None
        key = None
        if concat is not None:
            key = (carrier, source, dest, concat, reference, total)
            message = self._groups.get(key)
            if message is not None and (
                now - message.submitted > self.concat_timeout or message.parts[seq - 1] is not None
            ):
                del self._groups[key]
                message = None
        if message is None:
            phone = self.phonebook.normalize(dest, dest_ton)
            message = Message(
                next(self._index),
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
                now,
            )
            self._messages.append(message)
            self._touch(phone, carrier).messages.append(message)
            if key is not None:
                message.key = key
                self._groups[key] = message
            if len(self._messages) > self.size:
                self._evict()
        part = PartRecord(message_id, message, seq, user_data, now)
        message.parts[seq - 1] = part
        self._parts[message_id] = part
        if key is not None and message.complete:
            self._groups.pop(key, None)
        return part

    def _evict(self) -> None:
        old = self._messages.popleft()
        for part in old.parts:
            if part is not None:
                self._parts.pop(part.id, None)
        phone = self._phones.get(old.phone)
        if phone is not None:
            if phone.messages and phone.messages[0] is old:
                phone.messages.popleft()
            if not phone.messages and not phone.mo:
                del self._phones[old.phone]
        if old.key is not None and self._groups.get(old.key) is old:
            del self._groups[old.key]

    def add_mo(
        self,
        carrier: str,
        phone: str,
        to: str,
        text: str,
        encoding: str,
        data_coding: int,
        parts: int,
        now: float | None = None,
    ) -> MoRecord:
        record = MoRecord(
            f"mo-{next(self._mo_index)}",
            carrier,
            phone,
            to,
            text,
            encoding,
            data_coding,
            parts,
            time.time() if now is None else now,
        )
        self._mo.append(record)
        self._mo_by_id[record.id] = record
        self._touch(phone, carrier).mo.append(record)
        if len(self._mo) > self.mo_size:
            old = self._mo.popleft()
            self._mo_by_id.pop(old.id, None)
            owner = self._phones.get(old.phone)
            if owner is not None:
                if owner.mo and owner.mo[0] is old:
                    owner.mo.popleft()
                if not owner.messages and not owner.mo:
                    del self._phones[old.phone]
        return record

    def add_phone(self, number: str, carrier: str | None = None) -> str:
        number = self.phonebook.normalize(number, 1 if number.startswith("+") else 0)
        if number not in self._phones:
            self._touch(number, carrier)
        return number

    # -- reads -------------------------------------------------------------------------------------------

    def part(self, message_id: str) -> PartRecord | None:
        return self._parts.get(message_id)

    def carrier_of(self, number: str) -> str | None:
        phone = self._phones.get(number)
        return phone.carrier if phone is not None else None

    def messages(
        self,
        to: str | None = None,
        carrier: str | None = None,
        since: float | None = None,
        limit: int = 100,
        status: str | None = None,
    ) -> list[Message]:
        """The newest ``limit`` messages that match, oldest first."""
        if to is not None:
            phone = self._phones.get(self.phonebook.normalize(to, 1 if to.startswith("+") else 0))
            if phone is None:
                phone = self._phones.get(to)
            source: Iterable[Message] = reversed(phone.messages) if phone is not None else ()
        else:
            source = reversed(self._messages)
        now = time.time()
        out = []
        for message in source:
            if since is not None and message.submitted < since:
                break
            if carrier is not None and message.carrier != carrier:
                continue
            if status is not None and STATE_STAT[message.state(now)] != status:
                continue
            out.append(message)
            if len(out) >= limit:
                break
        out.reverse()
        return out

    def mo(self, phone: str | None = None, limit: int = 100) -> list[MoRecord]:
        if phone is not None:
            owner = self._phones.get(self.phonebook.normalize(phone, 1 if phone.startswith("+") else 0))
            items = list(owner.mo) if owner is not None else []
        else:
            items = list(self._mo)
        return items[-limit:]

    def mo_record(self, mo_id: str) -> MoRecord | None:
        return self._mo_by_id.get(mo_id)

    def phones(self, limit: int = 50, items: int = 30) -> list[dict]:
        """The most recently active phones (newest first) with their conversation, oldest item first."""
        now = time.time()
        out = []
        for number in itertools.islice(reversed(self._phones), limit):
            phone = self._phones[number]
            conversation: list[tuple[float, dict]] = []
            for message in itertools.islice(reversed(phone.messages), items):
                state = message.state(now)
                conversation.append(
                    (
                        message.submitted,
                        {
                            "dir": "in",
                            "id": message.parts[0].id if message.parts[0] else None,
                            "from": message.source,
                            "text": message.text,
                            "status": STATE_STAT[state],
                            "parts": message.total,
                            "complete": message.complete,
                            "encoding": message.encoding(),
                            "at": iso(message.submitted),
                        },
                    )
                )
            for record in itertools.islice(reversed(phone.mo), items):
                conversation.append(
                    (
                        record.created,
                        {
                            "dir": "out",
                            "id": record.id,
                            "to": record.to,
                            "text": record.text,
                            "status": record.status,
                            "parts": record.parts,
                            "encoding": record.encoding,
                            "at": iso(record.created),
                        },
                    )
                )
            conversation.sort(key=lambda item: item[0])
            out.append(
                {
                    "number": number,
                    "carrier": phone.carrier,
                    "messages": len(phone.messages),
                    "items": [item for _, item in conversation[-items:]],
                }
            )
        return out
