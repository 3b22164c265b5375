"""What each event type needs, who it goes to and how urgent it is (spec section 3's table)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .status import Priority


@dataclass(frozen=True, slots=True)
class EventKind:
    type: str
    required: tuple[str, ...]
    priority: Priority
    audience: Literal["case_citizen", "subscribers"]
    topic: str | None = None


EVENT_KINDS: dict[str, EventKind] = {
    kind.type: kind
    for kind in (
        EventKind("case.received", ("case.folio", "citizen.msisdn"), Priority.NORMAL, "case_citizen"),
    )
}

REQUIRED_FIELDS = {kind.type: kind.required for kind in EVENT_KINDS.values()}
