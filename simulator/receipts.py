"""The body of a delivery receipt's deliver_sm: the SMPP 3.4 appendix B text and its TLVs."""

from __future__ import annotations

import time
import unicodedata

from smpp_client.constants import Tlv
from smpp_client.pdu import Pdu, encode
from textcodec.encoding import decode_payload

from .records import DELIVERED, STATE_STAT, PartRecord
from .wire import DELIVER_SM

_date_cache: dict[int, str] = {}


def smpp_date(ts: float) -> str:
    """YYMMDDhhmm in local time (the receipt's submit date / done date), cached per minute."""
    minute = int(ts // 60)
    text = _date_cache.get(minute)
    if text is None:
        if len(_date_cache) > 10_000:
            _date_cache.clear()
        text = _date_cache[minute] = time.strftime("%y%m%d%H%M", time.localtime(ts))
    return text


def receipt_snippet(user_data: bytes, data_coding: int) -> str:
    """The first 20 characters of a part, in ASCII (the receipt itself is sent with data_coding 0)."""
    try:
        text = decode_payload(user_data[:44] if data_coding != 8 else user_data[:40], data_coding)[:20]
    except Exception:  # pragma: no cover - decode_payload never raises, by contract
        text = ""
    if not text.isascii() or not text.isprintable():
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text


def receipt_body(part: PartRecord, receipt_id: str) -> bytes:
    """The deliver_sm body (no header) reporting ``part``'s final state under ``receipt_id``."""
    message = part.message
    state = part.final_state
    text = (
        f"id:{receipt_id} sub:001 dlvrd:{'001' if state == DELIVERED else '000'} "
        f"submit date:{smpp_date(part.submitted)} done date:{smpp_date(part.done_at)} "
        f"stat:{STATE_STAT[state]} err:{part.err:03d} "
        f"text:{receipt_snippet(part.user_data, message.data_coding)}"
    )
    tlvs = {Tlv.RECEIPTED_MESSAGE_ID: receipt_id.encode() + b"\x00", Tlv.MESSAGE_STATE: bytes((state,))}
    if state != DELIVERED:
        tlvs[Tlv.NETWORK_ERROR_CODE] = b"\x03" + part.err.to_bytes(2, "big")  # 3 = GSM
    return encode(
        Pdu(
            DELIVER_SM,
            0,
            0,
            {
                "source_addr_ton": message.dest_ton,
                "source_addr_npi": message.dest_npi,
                "source_addr": message.dest,
                "dest_addr_ton": message.source_ton,
                "dest_addr_npi": message.source_npi,
                "destination_addr": message.source,
                "esm_class": 0x04,
                "short_message": text.encode("ascii", "replace"),
            },
            tlvs,
        )
    )[16:]
