"""SMSC message ids: which ones are usable, the form parts are matched on, and hex vs decimal.

SMPP 3.4 caps ``message_id`` at 65 octets with its NUL terminator. An id is *usable* when it is
1 to 64 visible ASCII characters (0x21-0x7E): anything else (longer, empty, spaces, control or
non-ASCII bytes) cannot be stored, shown or matched reliably, and is refused where it enters.

Carriers disagree on bases: some answer submit_sm with a decimal id and write the receipt's id in
hex, others the reverse (Kannel's ``msg-id-type``, Jasmin's ``dlr_msg_id_bases``). A
:class:`Relation` says how one carrier writes them; :func:`submitted_form` turns a receipt's id
into the form its part's submit id was stored in (:func:`canonical`). Conversions work on at most
64 characters, so ``int()`` never sees unbounded text.

:class:`ReceiptIdRelations` holds each carrier's relation: configured, or learned from the
receipts that matched one part in one way only.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from enum import StrEnum

MAX_LENGTH = 64  # octets, without the NUL

_USABLE_BYTES = re.compile(rb"[\x21-\x7e]{1,64}").fullmatch
_USABLE_TEXT = re.compile(r"[\x21-\x7e]{1,64}").fullmatch
_DECIMAL = re.compile(r"[0-9]{1,64}").fullmatch
_HEX = re.compile(r"[0-9A-Fa-f]{1,64}").fullmatch


def usable_bytes(raw: bytes) -> bool:
    return _USABLE_BYTES(raw) is not None


def usable(message_id: str) -> bool:
    return _USABLE_TEXT(message_id) is not None


def describe(raw: bytes) -> str:
    """A bounded, printable account of an unusable id, for a log line."""
    return f"{len(raw)} octets: {raw[:24]!r}" + ("…" if len(raw) > 24 else "")


def canonical(message_id: str) -> str:
    """The form a part's SMSC id is stored and matched in: lower case, no leading zeros."""
    return message_id.lower().lstrip("0") or "0"


class Relation(StrEnum):
    """How a carrier writes a receipt's id compared with its submit_sm_resp id."""

    AUTO = "auto"  # not known yet: learned from the first unambiguous receipts
    SAME = "same"
    SUBMIT_DECIMAL_RECEIPT_HEX = "submit_decimal_receipt_hex"
    SUBMIT_HEX_RECEIPT_DECIMAL = "submit_hex_receipt_decimal"


KNOWN = (Relation.SAME, Relation.SUBMIT_DECIMAL_RECEIPT_HEX, Relation.SUBMIT_HEX_RECEIPT_DECIMAL)


def submitted_form(receipt_id: str, relation: Relation) -> str | None:
    """The canonical submit id a receipt id stands for under ``relation`` (None: it cannot)."""
    if relation is Relation.SAME:
        return canonical(receipt_id)
    if relation is Relation.SUBMIT_DECIMAL_RECEIPT_HEX:
        if _HEX(receipt_id) is None:
            return None
        form = str(int(receipt_id, 16))
    elif relation is Relation.SUBMIT_HEX_RECEIPT_DECIMAL:
        if _DECIMAL(receipt_id) is None:
            return None
        form = format(int(receipt_id), "x")
    else:
        raise ValueError(f"no single form under {relation}")
    return form if len(form) <= MAX_LENGTH else None


def candidate_forms(receipt_id: str) -> dict[Relation, str]:
    """Every form a receipt id may stand for, by the relation that would give it."""
    forms = {}
    for relation in KNOWN:
        form = submitted_form(receipt_id, relation)
        if form is not None:
            forms[relation] = form
    return forms


class ReceiptIdRelations:
    """Each carrier's :class:`Relation`: configured, else learned.

    A receipt that matched an open part in one form only, while another form was possible, is
    evidence for the relation that gave that form (:meth:`observe`). A relation is learned once
    it has ``learn_after`` pieces of evidence and at least four times as many as the others
    together, so an early receipt that happened to match another message after conversion does
    not decide it alone. Until then :meth:`relation` answers AUTO and ambiguous receipts wait.
    """

    def __init__(self, configured: Mapping[str, Relation | str] | None = None, learn_after: int = 3):
        self.configured = {name: Relation(value) for name, value in (configured or {}).items()}
        self.learn_after = learn_after
        self.learned: dict[str, Relation] = {}
        self.evidence: dict[str, Counter[Relation]] = {}

    def relation(self, carrier: str) -> Relation:
        configured = self.configured.get(carrier, Relation.AUTO)
        if configured is not Relation.AUTO:
            return configured
        return self.learned.get(carrier, Relation.AUTO)

    def snapshot(self) -> dict[str, Relation]:
        names = set(self.configured) | set(self.learned)
        return {name: self.relation(name) for name in names}

    def observe(self, carrier: str, relation: Relation) -> Relation | None:
        """Count one piece of evidence; returns the relation when this learned it."""
        if self.relation(carrier) is not Relation.AUTO:
            return None
        counts = self.evidence.setdefault(carrier, Counter())
        counts[relation] += 1
        best, votes = counts.most_common(1)[0]
        others = sum(counts.values()) - votes
        if votes >= self.learn_after and votes >= 4 * others:
            self.learned[carrier] = best
            return best
        return None
