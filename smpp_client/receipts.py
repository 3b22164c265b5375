"""Delivery receipts (SMPP 3.4 Appendix B): build the standard text, parse what carriers send.

What a carrier writes is bounded here: a receipt whose id is not a usable message id (over 64
characters, say, or control bytes in the receipted_message_id TLV) names no message the gateway
sent (:func:`read_receipt` answers :class:`UnusableId`, :func:`parse_receipt` None), and an
``err`` longer than 8 characters is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from .constants import ESM_DELIVERY_RECEIPT, ESM_TYPE_MASK, MessageState, Tlv
from .message_ids import usable
from .pdu import Pdu, tlv_cstr

MAX_ERROR_LENGTH = 8  # what a part's error_code holds; SMPP's err is 3 digits, some vendors send 4

STAT_TO_STATE = {
    "DELIVRD": MessageState.DELIVERED,
    "EXPIRED": MessageState.EXPIRED,
    "DELETED": MessageState.DELETED,
    "UNDELIV": MessageState.UNDELIVERABLE,
    "ACCEPTD": MessageState.ACCEPTED,
    "UNKNOWN": MessageState.UNKNOWN,
    "REJECTD": MessageState.REJECTED,
    "ENROUTE": MessageState.ENROUTE,
}
STATE_TO_STAT = {state: stat for stat, state in STAT_TO_STATE.items()}
FINAL_STATES = frozenset(
    {
        MessageState.DELIVERED,
        MessageState.EXPIRED,
        MessageState.DELETED,
        MessageState.UNDELIVERABLE,
        MessageState.REJECTED,
    }
)

_FIELD_RES = {
    "id": re.compile(r"\bid:\s*([0-9A-Za-z_\-]+)"),
    "sub": re.compile(r"\bsub:\s*(\d+)"),
    "dlvrd": re.compile(r"\bdlvrd:\s*(\d+)"),
    "submit_date": re.compile(r"\bsubmit date:\s*(\d+)"),
    "done_date": re.compile(r"\bdone date:\s*(\d+)"),
    "stat": re.compile(r"\bstat:\s*([A-Za-z]+)"),
    "err": re.compile(r"\berr:\s*([0-9A-Za-z]+)"),
    "text": re.compile(r"\b[tT]ext:(.*)", re.S),
}


_STANDARD = re.compile(
    r"id:\s*(?P<id>[0-9A-Za-z_\-]+) sub:\s*(?P<sub>\d+) dlvrd:\s*(?P<dlvrd>\d+) "
    r"submit date:\s*(?P<submit_date>\d+) done date:\s*(?P<done_date>\d+) "
    r"stat:\s*(?P<stat>[A-Za-z]+) err:\s*(?P<err>[0-9A-Za-z]+)(?: [tT]ext:(?P<text>.*))?",
    re.S,
)


@dataclass(frozen=True, slots=True)
class Receipt:
    message_id: str
    state: MessageState
    stat: str
    error: str | None = None
    submit_date: str | None = None
    done_date: str | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class UnusableId:
    """A receipt whose id cannot be one the gateway sent: not 1 to 64 visible ASCII characters."""

    length: int  # octets, for a log line (the id itself is never kept)


def is_receipt(pdu: Pdu) -> bool:
    return (pdu.fields.get("esm_class", 0) & ESM_TYPE_MASK) == ESM_DELIVERY_RECEIPT


def smpp_date(moment: datetime) -> str:
    return moment.strftime("%y%m%d%H%M")


def receipt_text(
    message_id: str,
    stat: str,
    submitted: datetime,
    done: datetime,
    err: str = "000",
    text: str = "",
    sub: int = 1,
) -> str:
    dlvrd = 1 if stat == "DELIVRD" else 0
    return (
        f"id:{message_id} sub:{sub:03d} dlvrd:{dlvrd:03d} submit date:{smpp_date(submitted)} "
        f"done date:{smpp_date(done)} stat:{stat} err:{err} text:{text[:20]}"
    )


def parse_receipt(pdu: Pdu) -> Receipt | None:
    """The receipt, or None when it cannot be read or its id is unusable."""
    read = read_receipt(pdu)
    return read if isinstance(read, Receipt) else None


def read_receipt(pdu: Pdu) -> Receipt | UnusableId | None:
    """Prefer the receipted_message_id / message_state TLVs; fall back to the text form. None: no
    id or no state to be read at all."""
    raw = pdu.fields.get("short_message") or pdu.tlvs.get(Tlv.MESSAGE_PAYLOAD) or b""
    text = raw.decode("latin-1")
    m = _STANDARD.match(text)
    if m is not None:  # the usual layout: one match instead of a search per field
        found = {k: v for k, v in m.groupdict().items() if v is not None}
    else:
        found = {key: m.group(1) for key, rx in _FIELD_RES.items() if (m := rx.search(text))}
    message_id = tlv_cstr(pdu.tlvs.get(Tlv.RECEIPTED_MESSAGE_ID)) or found.get("id")
    state_tlv = pdu.tlvs.get(Tlv.MESSAGE_STATE)
    stat = found.get("stat", "").upper()
    if state_tlv is not None and len(state_tlv) == 1:
        try:
            state = MessageState(state_tlv[0])
        except ValueError:
            state = MessageState.UNKNOWN
    elif stat in STAT_TO_STATE:
        state = STAT_TO_STATE[stat]
    else:
        return None
    if not message_id:
        return None
    if not usable(message_id):
        return UnusableId(len(message_id))
    error = found.get("err")
    if error is not None and len(error) > MAX_ERROR_LENGTH:
        error = None
    return Receipt(
        message_id=message_id,
        state=state,
        stat=stat or STATE_TO_STAT.get(state, "UNKNOWN"),
        error=error,
        submit_date=found.get("submit_date"),
        done_date=found.get("done_date"),
        text=found.get("text"),
    )
