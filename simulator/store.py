"""What the simulated SMSC received (submit_sm parts grouped into messages) and the MO it sent.

Bounded: a ring of the last ``size`` messages, indexed by part message id and by phone number
(for the handsets page). The hot path (:meth:`Store.add_part`) does no text decoding: texts are
reassembled and decoded when they are read. Where message ids repeat (a carrier counting from
``message_id_start``), the index by id finds the newest part.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Iterable

from .records import STATE_STAT, Message, MoRecord, PartRecord, iso


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
        parts = self._parts
        for part in old.parts:
            if part is not None and parts.get(part.id) is part:  # ids may repeat (message_id_start)
                del parts[part.id]
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
                            "receipt": message.receipt_progress(),
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
