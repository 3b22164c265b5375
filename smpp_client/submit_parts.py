"""A text to one number, as the submit_sm bodies one carrier takes.

The text is encoded as it is (the composer already chose and transliterated it), split the way the
carrier takes long messages (8/16-bit UDH with a reference from that carrier's per-destination
counter, SAR TLVs, or one message_payload), and each part's body is encoded once: a part sent
again goes out as the same bytes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from textcodec.encoding import EncodedText, Transliteration, encode_text
from textcodec.segments import ConcatMethod

from . import pdu as codec
from .concat import ReferenceCounter, split
from .config import CarrierConfig
from .constants import Cmd

_SUBMIT_SM = int(Cmd.SUBMIT_SM)


@functools.lru_cache(maxsize=4096)
def _encoded(body: str, concat: str) -> EncodedText:
    return encode_text(body, Transliteration.OFF, concat)


@dataclass(slots=True)
class EncodedParts:
    bodies: list[bytes]  # submit_sm bodies without their header, one per part
    costs: list[int]  # segments each part spends of the carrier's speed limit
    encoding: str  # "gsm7" or "ucs2"
    segments: int  # on the air (a message_payload part is segmented by the SMSC)


class PartEncoder:
    def __init__(self, config: CarrierConfig):
        self.concat = config.concat
        self.references = ReferenceCounter(bits=16 if self.concat is ConcatMethod.UDH16 else 8)
        self._fields = {
            "source_addr_ton": config.source_addr_ton,
            "source_addr_npi": config.source_addr_npi,
            "source_addr": config.source_addr,
            "dest_addr_ton": config.dest_addr_ton,
            "dest_addr_npi": config.dest_addr_npi,
            "registered_delivery": 1,
        }

    def encode(self, msisdn: str, text: str) -> EncodedParts:
        encoded = _encoded(text, self.concat)
        destination = msisdn.lstrip("+")
        if encoded.segments > 1 and self.concat is not ConcatMethod.PAYLOAD:
            parts = split(encoded, self.concat, self.references.next(destination))
        else:
            parts = split(encoded, self.concat, 0)
        fields = self._fields
        data_coding = encoded.data_coding
        bodies = [
            codec.encode_body(
                _SUBMIT_SM,
                {
                    **fields,
                    "destination_addr": destination,
                    "esm_class": part.esm_class,
                    "data_coding": data_coding,
                    "short_message": part.short_message,
                },
                part.tlvs or None,
            )
            for part in parts
        ]
        costs = [1] * len(parts) if len(parts) > 1 else [encoded.segments]
        return EncodedParts(bodies, costs, encoded.encoding, encoded.segments)
