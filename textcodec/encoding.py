"""Choosing GSM-7 or UCS-2 for a text (with optional transliteration), counting its segments, and
reading a received payload back as text.

``data_coding`` is SMPP's (3.4, 5.2.19): 0 the GSM 03.38 default alphabet, 8 UCS-2; 1 (IA5), 2 and 4
(binary) and 3 (Latin-1) are only read.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from itertools import chain

from . import gsm0338
from .segments import ConcatMethod, Encoding, split_payload

DC_DEFAULT = 0x00
DC_IA5 = 0x01
DC_BINARY = 0x02
DC_LATIN1 = 0x03
DC_BINARY_8 = 0x04
DC_UCS2 = 0x08


class Transliteration(StrEnum):
    OFF = "off"
    ACCENTS = "accents"  # only á í ó ú Á Í Ó Ú, the Spanish letters missing from GSM 03.38
    FULL = "full"  # any accent, typographic punctuation and Unicode spaces (like Twilio Smart Encoding)


_ACCENTS_TABLE = str.maketrans("áíóúÁÍÓÚ", "aiouAIOU")

_LOOKALIKES = {
    '"': "«»“”„‟″‶❝❞〝〞〟＂",
    "'": "‘’‚‛‹›′‵ʹʻʼʽˈˊˋ´`❛❜＇",
    "-": "‐‑‒–—―⁃−﹘﹣－",
    "/": "⁄∕",
    "...": "…",
    " ": "\t\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000",
    "\n": "\u2028\u2029",
    "": "\u00ad\u200b\u200c\u200d\u2060\ufeff",
}
_LETTERS = {
    "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "ħ": "h", "Ħ": "H", "ı": "i",
    "ŧ": "t", "Ŧ": "T", "œ": "oe", "Œ": "OE", "þ": "th", "Þ": "Th",
}  # fmt: skip


def _build_full_table() -> dict[int, str]:
    table = {ord(ch): rep for rep, chars in _LOOKALIKES.items() for ch in chars}
    table.update({ord(ch): rep for ch, rep in _LETTERS.items()})
    # Latin-1 Supplement, Latin Extended-A/B and Additional, general punctuation, super/subscripts,
    # letterlike symbols, ligatures, fullwidth ASCII: the compatibility form if it is GSM, else
    # that form without its combining marks if that is GSM.
    ranges = (
        range(0xA0, 0x250),
        range(0x1E00, 0x1F00),
        range(0x2000, 0x20A0),
        range(0x2100, 0x2150),
        range(0xFB00, 0xFB07),
        range(0xFF01, 0xFF5F),
    )
    for cp in chain(*ranges):
        if cp in table:
            continue
        composed = unicodedata.normalize("NFKC", chr(cp))  # e.g. the Angstrom sign to GSM's Å
        stripped = "".join(c for c in unicodedata.normalize("NFKD", composed) if not unicodedata.combining(c))
        for candidate in (composed.translate(table), stripped.translate(table)):
            if candidate.strip() and gsm0338.can_encode(candidate):
                table[cp] = candidate
                break
    table.update(dict.fromkeys(range(0x300, 0x370), ""))  # combining marks left after NFC
    return {cp: rep for cp, rep in table.items() if chr(cp) not in gsm0338.CHARSET}


_FULL_TABLE = _build_full_table()
_TABLES = {Transliteration.ACCENTS: _ACCENTS_TABLE, Transliteration.FULL: _FULL_TABLE}


@dataclass(frozen=True)
class EncodedText:
    text: str  # what will be sent, after transliteration
    encoding: Encoding
    data_coding: int
    payload: bytes  # unpacked GSM septets or UTF-16-BE
    units: int  # septets or UTF-16 code units
    segments: int


def transliterate(text: str, transliteration: str = Transliteration.ACCENTS) -> str:
    """The text to send as GSM-7 (NFC-normalized, then mapped), or the original text if even
    after transliteration it is not GSM."""
    if transliteration == Transliteration.OFF or gsm0338.can_encode(text):
        return text
    mode = Transliteration(transliteration)
    candidate = unicodedata.normalize("NFC", text).translate(_TABLES[mode])
    return candidate if gsm0338.can_encode(candidate) else text


def _encode_as(text: str, encoding: Encoding, concat: str) -> EncodedText:
    if encoding == "gsm7":
        payload = gsm0338.encode(text)
        data_coding, units = DC_DEFAULT, len(payload)
    else:
        payload = text.encode("utf-16-be")
        data_coding, units = DC_UCS2, len(payload) // 2
    segments = len(split_payload(payload, encoding, concat))
    return EncodedText(text, encoding, data_coding, payload, units, segments)


def encode_text(
    text: str, transliteration: str = Transliteration.ACCENTS, concat: str = ConcatMethod.UDH8
) -> EncodedText:
    """Encode as GSM-7 where the (transliterated) text fits it, else the original text as UCS-2.

    A transliteration that would cost more segments than UCS-2 (FULL expands "…" to "...")
    is not used. Raises ValueError (UnicodeEncodeError) for a text with an unpaired surrogate.
    """
    sent = transliterate(text, transliteration)
    if not gsm0338.can_encode(sent):
        return _encode_as(text, "ucs2", concat)
    gsm = _encode_as(sent, "gsm7", concat)
    if sent == text:
        return gsm
    ucs2 = _encode_as(text, "ucs2", concat)
    return gsm if gsm.segments <= ucs2.segments else ucs2


def decode_payload(data: bytes, data_coding: int) -> str:
    """Text of a short_message / message_payload (UDH already removed); never raises."""
    if data_coding == DC_DEFAULT:
        return gsm0338.decode(data)
    if data_coding == DC_IA5:
        return data.decode("ascii", "replace")
    if data_coding == DC_UCS2:
        return data[: len(data) & ~1].decode("utf-16-be", "replace")
    if data_coding in (DC_BINARY, DC_BINARY_8):
        return data.hex()
    return data.decode("latin-1")
