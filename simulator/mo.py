"""A virtual phone's SMS to the gateway (MO): which carrier carries it, and its deliver_sm bodies."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from smpp_client.concat import split
from smpp_client.pdu import Pdu, encode
from textcodec.encoding import EncodedText, Transliteration, encode_text
from textcodec.segments import ConcatMethod

from .store import Store
from .wire import DELIVER_SM

if TYPE_CHECKING:
    from .carrier import Carrier


def route_mo(carriers: dict[str, Carrier], store: Store, phone: str, carrier: str | None = None) -> Carrier:
    """The carrier given, else the one that last carried a message to the phone, else the longest
    ``mo_prefixes`` match, else the first carrier."""
    if carrier is not None:
        return carriers[carrier]
    known = store.carrier_of(phone)
    if known in carriers:
        return carriers[known]
    digits = "".join(ch for ch in phone if ch.isdigit())
    best, best_len = None, -1
    for candidate in carriers.values():
        for prefix in candidate.settings.mo_prefixes:
            if digits.startswith(prefix) and len(prefix) > best_len:
                best, best_len = candidate, len(prefix)
    return best or next(iter(carriers.values()))


class MoComposer:
    """GSM 03.38 when the text fits, else UCS-2; long texts split with 8-bit-reference UDH, the
    reference counting up per phone."""

    __slots__ = ("_refs", "_rng")

    def __init__(self, rng: random.Random):
        self._rng = rng
        self._refs: dict[str, int] = {}

    def compose(self, phone: str, text: str, to: str) -> tuple[EncodedText, list[bytes]]:
        """The encoded text and one deliver_sm body per part (from the phone, TON 1, to the short
        code, TON 6). Raises ValueError for a text that cannot be sent (over 255 parts)."""
        encoded = encode_text(text, Transliteration.OFF, ConcatMethod.UDH8)
        digits = "".join(ch for ch in phone if ch.isdigit())
        reference = self._refs.get(digits, self._rng.randrange(256))
        self._refs[digits] = (reference + 1) % 256
        if len(self._refs) > 100_000:
            self._refs.clear()
        parts = split(encoded, ConcatMethod.UDH8, reference)
        to_digits = "".join(ch for ch in to if ch.isdigit()) or to
        short = len(to_digits) <= 8
        bodies = [
            encode(
                Pdu(
                    DELIVER_SM,
                    0,
                    0,
                    {
                        "source_addr_ton": 1,
                        "source_addr_npi": 1,
                        "source_addr": digits,
                        "dest_addr_ton": 6 if short else 1,
                        "dest_addr_npi": 1,
                        "destination_addr": to_digits,
                        "esm_class": part.esm_class,
                        "data_coding": encoded.data_coding,
                        "short_message": part.short_message,
                    },
                    dict(part.tlvs),
                )
            )[16:]
            for part in parts
        ]
        return encoded, bodies
