"""Long messages in SMPP: the submit_sm parts of an encoded text (8/16-bit UDH, SAR TLVs or
message_payload), their references, and reading the concatenation of a received part.

Where a text is cut and how many segments it takes is :mod:`textcodec.segments`.
"""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from textcodec.encoding import EncodedText
from textcodec.segments import MAX_PARTS, ConcatMethod, split_payload

from .constants import ESM_UDHI, Tlv

_UDH8_LEN = 6  # also what the SMSC adds to a SAR part


@dataclass(frozen=True)
class Part:
    short_message: bytes
    esm_class: int
    tlvs: dict[int, bytes]
    seq: int
    total: int


def split(encoded: EncodedText, method: str = ConcatMethod.UDH8, reference: int = 0) -> list[Part]:
    """The submit_sm parts of an encoded text; a single-segment text gives one plain Part.

    With ``PAYLOAD`` a long text is one Part whose whole payload is in message_payload
    (the SMSC segments it), so ``len(split(...))`` is 1 while ``encoded.segments`` is not.
    """
    method = method if type(method) is ConcatMethod else ConcatMethod(method)
    chunks = split_payload(encoded.payload, encoded.encoding, method)
    total = len(chunks)
    if total > MAX_PARTS:
        raise ValueError(f"text needs {total} parts, more than {MAX_PARTS}")
    if total == 1:
        return [Part(encoded.payload, 0, {}, 1, 1)]
    if method is ConcatMethod.PAYLOAD:
        return [Part(b"", 0, {Tlv.MESSAGE_PAYLOAD: encoded.payload}, 1, 1)]
    limit = 0xFF if method is ConcatMethod.UDH8 else 0xFFFF
    if not 0 <= reference <= limit:
        raise ValueError(f"reference {reference} out of range for {method}")
    parts = []
    for seq, chunk in enumerate(chunks, start=1):
        if method is ConcatMethod.UDH8:
            udh = bytes((0x05, 0x00, 0x03, reference, total, seq))
            parts.append(Part(udh + chunk, ESM_UDHI, {}, seq, total))
        elif method is ConcatMethod.UDH16:
            udh = bytes((0x06, 0x08, 0x04, reference >> 8, reference & 0xFF, total, seq))
            parts.append(Part(udh + chunk, ESM_UDHI, {}, seq, total))
        else:
            tlvs = {
                Tlv.SAR_MSG_REF_NUM: reference.to_bytes(2, "big"),
                Tlv.SAR_TOTAL_SEGMENTS: bytes((total,)),
                Tlv.SAR_SEGMENT_SEQNUM: bytes((seq,)),
            }
            parts.append(Part(chunk, 0, tlvs, seq, total))
    return parts


def on_air_octets(part: Part, data_coding: int) -> int:
    """Octets of TP-User-Data the part occupies over the air (UDH included, GSM packed with fill bits).

    A SAR part counts the 6-octet UDH the SMSC will add. A message_payload part counts its
    whole payload without a UDH: above 140 it means the SMSC has to segment it.
    """
    sm = part.short_message
    if Tlv.MESSAGE_PAYLOAD in part.tlvs:
        sm = part.tlvs[Tlv.MESSAGE_PAYLOAD]
    if part.esm_class & ESM_UDHI:
        if not sm or sm[0] + 1 > len(sm):
            raise ValueError("UDHI set but no valid UDH")
        udh_len = sm[0] + 1
        user_len = len(sm) - udh_len
    else:
        udh_len = _UDH8_LEN if Tlv.SAR_MSG_REF_NUM in part.tlvs else 0
        user_len = len(sm)
    if data_coding == 0:
        septets = -(-udh_len * 8 // 7) + user_len  # UDH rounded up to a septet boundary (fill bits)
        return -(-septets * 7 // 8)
    return udh_len + user_len


class ReferenceCounter:
    """Concatenation references, incrementing per destination (a handset confuses two
    long messages only if they share a reference). Remembers the most recent
    ``max_destinations``; a forgotten destination restarts at an offset derived from its number."""

    def __init__(self, bits: int = 8, max_destinations: int = 100_000):
        if bits not in (8, 16):
            raise ValueError("bits must be 8 or 16")
        self._modulus = 1 << bits
        self._max = max_destinations
        self._last: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def next(self, destination: str) -> int:
        with self._lock:
            last = self._last.pop(destination, None)
            if last is None:
                value = zlib.crc32(destination.encode()) % self._modulus
            else:
                value = (last + 1) % self._modulus
            self._last[destination] = value
            if len(self._last) > self._max:
                self._last.popitem(last=False)
            return value


@dataclass(frozen=True)
class ConcatInfo:
    reference: int
    total: int
    seq: int


def valid(info: ConcatInfo) -> ConcatInfo | None:
    # 3GPP TS 23.040 9.2.3.24.1: a zero total, or a seq of zero or above total, voids the IE.
    return info if 1 <= info.seq <= info.total else None


def parse_udh(short_message: bytes) -> tuple[ConcatInfo | None, bytes]:
    """Split a UDHI short_message into its concatenation IE (if any) and the user data after the UDH."""
    if not short_message:
        raise ValueError("empty short_message with UDHI")
    end = short_message[0] + 1
    if end > len(short_message):
        raise ValueError(f"UDH length {end - 1} exceeds short_message")
    info = None
    pos = 1
    while pos < end:
        if pos + 2 > end:
            raise ValueError("truncated information element in UDH")
        iei, iedl = short_message[pos], short_message[pos + 1]
        data = short_message[pos + 2 : pos + 2 + iedl]
        pos += 2 + iedl
        if pos > end:
            raise ValueError(f"information element 0x{iei:02x} overruns the UDH")
        if iei == 0x00:
            if iedl != 3:
                raise ValueError("8-bit concatenation IE must be 3 octets")
            info = valid(ConcatInfo(data[0], data[1], data[2]))
        elif iei == 0x08:
            if iedl != 4:
                raise ValueError("16-bit concatenation IE must be 4 octets")
            info = valid(ConcatInfo(int.from_bytes(data[:2], "big"), data[2], data[3]))
    return info, short_message[end:]


def concat_info_from_tlvs(tlvs: Mapping[int, bytes]) -> ConcatInfo | None:
    """Concatenation from the SAR TLVs, None unless all three are present."""
    ref = tlvs.get(Tlv.SAR_MSG_REF_NUM)
    total = tlvs.get(Tlv.SAR_TOTAL_SEGMENTS)
    seq = tlvs.get(Tlv.SAR_SEGMENT_SEQNUM)
    if ref is None or total is None or seq is None:
        return None
    if len(ref) != 2 or len(total) != 1 or len(seq) != 1:
        raise ValueError("malformed SAR TLVs")
    return valid(ConcatInfo(int.from_bytes(ref, "big"), total[0], seq[0]))
