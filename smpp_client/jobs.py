"""A message in the link's memory (:class:`Job`) and what became of it (:class:`SendOutcome`).

The link knows two things about a job besides its number and text: a ``deadline`` (monotonic
seconds) after which, still unsent, it is handed back with the outcome ``deadline``, and a
``rank`` it does not interpret: lower goes first in a carrier's queue (the application passes its
priority, so an emergency overtakes what waits there). ``ctx`` is the caller's own, given back
untouched with the outcome.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from .errors import ErrorClass, error_name

if TYPE_CHECKING:
    from .submit_parts import EncodedParts

SUBMITTED = "submitted"  # every part accepted
RETRY = "retry"  # temporary failure: worth another attempt later (a real attempt)
FAILED = "failed"  # permanent failure
RELEASE = "release"  # not sent (no bound carrier, shutdown): given back, no attempt made
DEADLINE = "deadline"  # not sent by its deadline: given back, no attempt made

Context = TypeVar("Context")


@dataclass(slots=True)
class SendOutcome:
    kind: str
    carrier: str | None
    smsc_ids: list[str] = field(default_factory=list)
    status: int | None = None  # SMPP command_status (or a negative pseudo status) of the failure
    error: str | None = None
    encoding: str | None = None
    segments: int | None = None
    route: str | None = None  # how the carrier was chosen, failovers included

    @property
    def ok(self) -> bool:
        return self.kind == SUBMITTED


class Job(Generic[Context]):
    """One message in memory, from claim to outcome."""

    __slots__ = (
        "accepted",
        "bodies",
        "costs",
        "ctx",
        "deadline",
        "done",
        "encoding",
        "failure",
        "first_choice",
        "link_tries",
        "msisdn",
        "outstanding",
        "partial_tries",
        "queued",
        "rank",
        "route",
        "segments",
        "smsc_ids",
        "text",
        "tried",
        "unsent",
    )

    def __init__(
        self,
        msisdn: str,
        text: str,
        done: Callable[[Job[Context], SendOutcome], None],
        *,
        deadline: float = math.inf,
        rank: int = 0,
        ctx: Context = None,
        first_choice: str | None = None,
    ):
        self.msisdn = msisdn
        self.first_choice = first_choice  # the carrier it was routed to (the router's otherwise)
        self.text = text
        self.done = done
        self.deadline = deadline
        self.rank = rank
        self.ctx = ctx
        self.route: list[str] = []  # the carriers that took it, in order
        self.tried: list[tuple[str, int]] = []  # (carrier, status) of each carrier that passed it on
        # until a carrier takes it: no parts (take_parts sets the rest)
        self.bodies: list[bytes] = []
        self.encoding = ""
        self.segments = 0
        self.outstanding = self.accepted = self.link_tries = 0

    def take_parts(self, parts: EncodedParts) -> None:
        """Start over with ``parts`` (a carrier's encoding of the text), nothing sent yet."""
        self.bodies = parts.bodies
        self.costs = parts.costs
        self.encoding = parts.encoding
        self.segments = parts.segments
        self.smsc_ids: list[str | None] = [None] * len(self.bodies)
        self.unsent: list[int] = list(range(len(self.bodies)))
        self.outstanding = 0
        self.accepted = 0
        self.failure: tuple[int, ErrorClass] | None = None
        self.link_tries = 0
        self.partial_tries = 0
        self.queued = False

    @property
    def total(self) -> int:
        return len(self.bodies)

    @property
    def untouched(self) -> bool:
        """Nothing of it is at the SMSC nor on the way: it can go elsewhere."""
        return self.accepted == 0 and self.outstanding == 0

    def route_text(self) -> str:
        """The carriers that took it and why each passed it on: "a > b (after a: ESME_RINVDSTADR)"."""
        route = " > ".join(self.route)
        if self.tried:
            route += " (after " + ", ".join(f"{c}: {error_name(s)}" for c, s in self.tried) + ")"
        return route
