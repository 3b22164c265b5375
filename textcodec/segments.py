"""How many segments a text takes, and where a long text is cut into them.

A single message carries 160 GSM-7 septets or 70 UTF-16 code units; a concatenated one loses a
User Data Header to each part: 153 / 67 with the 8-bit reference, 152 / 66 with the 16-bit one.
SAR TLVs and message_payload count like the 8-bit UDH (the SMSC adds that header itself). Cuts
never fall between ESC and its code nor inside a surrogate pair, so the segment count of a text is
``len(split_payload(...))``: the composer's count is what the link sends.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

Encoding = Literal["gsm7", "ucs2"]

MAX_PARTS = 255  # the concatenation information element counts parts in one octet
# Units (septets or UTF-16 code units) that fit a single, unconcatenated message.
SINGLE_UNITS: dict[str, int] = {"gsm7": 160, "ucs2": 70}
_UNIT_WIDTH: dict[str, int] = {"gsm7": 1, "ucs2": 2}


class ConcatMethod(StrEnum):
    """How a carrier takes long messages; the segment count depends on it."""

    UDH8 = "udh8"
    UDH16 = "udh16"
    SAR = "sar"
    PAYLOAD = "payload"


def part_units(encoding: str, method: str = ConcatMethod.UDH8) -> int:
    """Units per part of a concatenated message (SAR and message_payload count as 8-bit UDH)."""
    udh16 = ConcatMethod(method) is ConcatMethod.UDH16
    if encoding == "gsm7":
        return 152 if udh16 else 153
    return 66 if udh16 else 67


def split_payload(payload: bytes, encoding: str, method: str = ConcatMethod.UDH8) -> list[bytes]:
    """Cut an unpacked GSM or UTF-16-BE payload into per-segment chunks.

    Never cuts between ESC and its code nor inside a UTF-16 surrogate pair.
    """
    width = _UNIT_WIDTH[encoding]
    if len(payload) <= SINGLE_UNITS[encoding] * width:
        return [payload]
    step = part_units(encoding, method) * width
    n = len(payload)
    chunks = []
    pos = 0
    while pos < n:
        end = pos + step
        if end < n:
            if encoding == "gsm7":
                # An odd run of ESC octets at the end means the last one opens a pair.
                run = 0
                while end - run - 1 >= pos and payload[end - run - 1] == 0x1B:
                    run += 1
                if run % 2:
                    end -= 1
            elif 0xD8 <= payload[end - 2] <= 0xDB:  # high surrogate: keep the pair together
                end -= 2
        else:
            end = n
        chunks.append(payload[pos:end])
        pos = end
    return chunks
