"""What the link tells the application: messages, not PDUs.

The pool is given one :class:`LinkEvents` handler at construction. Receipts and mobile-originated
messages are acknowledged to the SMSC only once the awaitable the handler returns has resolved:
ESME_ROK when it resolved, ESME_RX_T_APPN (the SMSC sends it again) when it raised or was
cancelled; one that never resolves is never answered, so the SMSC resends it too. The handler is
called on the event loop and must not block: it hands the work on (a queue, a task) and returns.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol

from .constants import MessageState
from .receipts import FINAL_STATES


class DeliveryReceipt(NamedTuple):
    """A delivery receipt, parsed (TLVs first, the standard text otherwise). A named tuple: one is
    made per receipt, and it builds three times faster than a frozen dataclass."""

    carrier: str
    message_id: str  # as the carrier wrote it (usable: smpp_client.message_ids)
    # the canonical form its part's submit id was stored in, where the carrier's hex/decimal
    # relation is known; None while it is being learned (or the id does not read in that base)
    submit_id: str | None
    state: MessageState
    error: str | None  # the receipt's err, at most 8 characters
    received_at: datetime  # naive UTC
    # the SMSC does not wait for this answer to send more (seen with several unanswered): storing
    # it may wait for others to share a transaction; otherwise it is stored at once
    patient: bool = False

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


@dataclass(frozen=True, slots=True)
class MobileMessage:
    """A message a handset sent, whole (its parts reassembled) and decoded."""

    carrier: str
    sender: str  # as the pool's sender_number gives it (E.164 for Mexican numbers in the gateway)
    recipient: str  # the destination address as the SMSC wrote it (our short code)
    text: str
    received_at: datetime  # naive UTC, when its last part arrived
    parts: int = 1


@dataclass(frozen=True, slots=True)
class BindChanged:
    """One bind of a carrier came up or went down."""

    carrier: str
    bind: str  # the session's label: "telcel#0", "telcel#1/tr"
    state: str  # "bound", "down", "closed"
    bound: bool


class LinkEvents(Protocol):
    def receipt(self, receipt: DeliveryReceipt) -> Awaitable[object]:
        """Store it; resolve when stored (the deliver_sm_resp goes out then)."""
        ...

    def mobile_message(self, message: MobileMessage) -> Awaitable[object]:
        """Take it; resolve when it is safe (stored or acted on), raise to have it sent again."""
        ...

    def bind_changed(self, change: BindChanged) -> None: ...
