"""GSM 03.38 (3GPP TS 23.038) default alphabet and extension table.

``encode``/``decode`` work on the unpacked form (one septet per octet, as SMPP data_coding 0
carries it); ``pack``/``unpack`` convert to and from the packed 7-bit form used over the air.
"""

from __future__ import annotations

import codecs
import re

ESC = 0x1B

# Index = septet value; "\x1b" at 0x1B is the escape to the extension table.
BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
EXTENSION: dict[str, int] = {
    "\x0c": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}

_ENCODE_MAP: dict[int, int | bytes] = {ord(ch): code for code, ch in enumerate(BASIC) if code != ESC}
_ENCODE_MAP.update({ord(ch): bytes((ESC, code)) for ch, code in EXTENSION.items()})
CHARSET = frozenset(map(chr, _ENCODE_MAP))

# Octets >= 0x80 are not septets; they decode as U+FFFD instead of failing.
_DECODE_TABLE = BASIC + "\ufffd" * 128
# Escape handling after the table decode: the character following ESC is the basic-table
# decoding of the extension code. Unknown codes show the basic character (23.038 6.2.1.1),
# ESC ESC (reserved for a further table) and a trailing lone ESC show a space.
_ESCAPED = {BASIC[code]: ch for ch, code in EXTENSION.items()}
_ESCAPED["\x1b"] = " "
_ESCAPED[""] = " "
_ESCAPE_RE = re.compile("\x1b(.|\\Z)", re.DOTALL)


def _unescape(match: re.Match[str]) -> str:
    follower = match.group(1)
    return _ESCAPED.get(follower, follower)


def can_encode(text: str) -> bool:
    return CHARSET.issuperset(text)


def encode(text: str) -> bytes:
    """Text to unpacked septets; extension characters become ESC + code."""
    try:
        return codecs.charmap_encode(text, "strict", _ENCODE_MAP)[0]
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        raise ValueError(
            f"character {bad!r} (U+{ord(bad):04X}) at position {exc.start} is not in GSM 03.38"
        ) from None


def decode(data: bytes) -> str:
    """Unpacked septets to text."""
    text = codecs.charmap_decode(data, "strict", _DECODE_TABLE)[0]
    if "\x1b" in text:
        text = _ESCAPE_RE.sub(_unescape, text)
    return text


def septet_count(text: str) -> int:
    """Septets the text takes (extension characters count 2); ValueError if not GSM 03.38."""
    return len(encode(text))


def pack(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack septets 8-in-7, LSB first, after ``fill_bits`` zero bits (0-6, used after a UDH)."""
    if not 0 <= fill_bits <= 6:
        raise ValueError("fill_bits must be 0..6")
    if septets and max(septets) > 0x7F:
        raise ValueError("septet value above 0x7F")
    value = 0
    for i, septet in enumerate(septets):
        value |= septet << (7 * i)
    bits = 7 * len(septets) + fill_bits
    return (value << fill_bits).to_bytes((bits + 7) // 8, "little")


def unpack(data: bytes, count: int, fill_bits: int = 0) -> bytes:
    """Inverse of :func:`pack`: the first ``count`` septets after ``fill_bits`` bits of ``data``."""
    if not 0 <= fill_bits <= 6:
        raise ValueError("fill_bits must be 0..6")
    if 7 * count + fill_bits > 8 * len(data):
        raise ValueError(f"{len(data)} octets cannot hold {count} septets")
    value = int.from_bytes(data, "little") >> fill_bits
    return bytes((value >> (7 * i)) & 0x7F for i in range(count))
