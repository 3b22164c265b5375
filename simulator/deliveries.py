"""The deliver_sm a carrier owes its receivers (receipts and parts of MO): queued, in flight, retried.

Two ways to send them (``receipt_mode``):

- ``batched``: a receipt falls due on the SMSC's timer wheel (granularity ``tick_ms``); what falls
  due in one tick is handed to the receivers and leaves with the tick's other writes, several
  deliver_sm in one ``transport.write``. Fast, and what the benchmarks quote.
- ``each``: a receipt falls due on a timer of its own, at its own moment in the ``receipt_delay``
  range (a delay of 0: just after the submit_sm_resp), and every deliver_sm leaves in a write of
  its own, as carriers send them.

Either way at most ``deliver_window`` deliver_sm per session wait for their deliver_sm_resp; the
rest wait here, in order, and go as acknowledgements free room.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

import structlog

from .receipts import receipt_body
from .records import MoRecord, PartRecord
from .settings import SimCarrierSettings
from .timer_wheel import RECEIPT, RECEIPT_AFTER_RESPONSE, REQUEUE
from .wire import ROK, RX, TEMPORARY

if TYPE_CHECKING:
    from .carrier import Carrier
    from .session import SmppSession

log = structlog.get_logger("simulator")


class Deliverable:
    """A deliver_sm the SMSC owes a receiver: a receipt or one part of an MO."""

    __slots__ = ("body", "mo", "part", "prefer", "tries")

    def __init__(
        self,
        body: bytes,
        part: PartRecord | None = None,
        mo: MoRecord | None = None,
        prefer: SmppSession | None = None,
    ):
        self.body = body
        self.part = part
        self.mo = mo
        self.prefer = prefer
        self.tries = 0


class DeliveryQueue:
    __slots__ = ("_rr", "carrier", "each", "engine", "pending", "window")

    def __init__(self, carrier: Carrier):
        self.carrier = carrier
        self.engine = carrier.engine
        self.pending: deque[Deliverable] = deque()
        self._rr = 0
        self.each = False
        self.window = 1

    def configure(self, settings: SimCarrierSettings) -> None:
        self.each = settings.receipt_mode == "each"
        self.window = settings.deliver_window

    def clear(self) -> None:
        self.pending.clear()

    # -- receipts falling due -----------------------------------------------------------------------

    def schedule_receipt(
        self, part: PartRecord, session: SmppSession, now: float, delay: float, response_delay: float
    ) -> None:
        """Plan ``part``'s receipt ``delay`` s after its submit_sm_resp (due in ``response_delay`` s)."""
        engine = self.engine
        if not self.each:
            engine.schedule(now + response_delay + delay, (RECEIPT, part, session))
        elif response_delay > 0:  # its own timer starts once the response has gone
            engine.schedule(now + response_delay, (RECEIPT_AFTER_RESPONSE, part, (session, delay)))
        else:
            engine.call_later(delay, self._receipt_timer, part, session, engine.generation)

    def start_receipt_timer(self, part: PartRecord, session: SmppSession, delay: float) -> None:
        self.engine.call_later(delay, self._receipt_timer, part, session, self.engine.generation)

    def _receipt_timer(self, part: PartRecord, session: SmppSession, generation: int) -> None:
        if generation != self.engine.generation:
            return  # planned before a reset
        self.receipt_due(part, session)
        if self.carrier.receivers:
            self.dispatch(time.monotonic())

    def receipt_due(self, part: PartRecord, prefer: SmppSession | None = None) -> None:
        """Queue ``part``'s receipt, preferably for the session that submitted it."""
        if part.cancelled is not None:
            return
        self.pending.append(
            Deliverable(receipt_body(part, part.receipt_id or part.id), part=part, prefer=prefer)
        )

    def add_mo_part(self, body: bytes, record: MoRecord) -> None:
        self.pending.append(Deliverable(body, mo=record))

    # -- sending ------------------------------------------------------------------------------------

    def dispatch(self, now: float) -> None:
        """Hand queued deliver_sm to receivers with room in their window."""
        window = self.window
        rooms = [s for s in self.carrier.receivers if len(s.outstanding) < window and not s.closed]
        pending = self.pending
        rr = self._rr
        while pending and rooms:
            item = pending.popleft()
            target = item.prefer
            if target is None or target.closed or not target.bound & RX or len(target.outstanding) >= window:
                rr += 1
                target = rooms[rr % len(rooms)]
            target.send(item, now)
            if len(target.outstanding) >= window and target in rooms:
                rooms.remove(target)
        self._rr = rr

    def on_tick(self, now: float) -> None:
        """Resend what was not answered in time, then send what waits."""
        carrier = self.carrier
        for session in carrier.receivers:
            timeouts = session.timeouts
            while timeouts and timeouts[0][0] <= now:
                _, seq = timeouts.popleft()
                item = session.outstanding.pop(seq, None)
                if item is not None:
                    self._timed_out(item, session)
        if self.pending and carrier.receivers:
            self.dispatch(now)

    def take_back(self, items: list[Deliverable]) -> None:
        """Unacknowledged deliver_sm of a dead link: first in line for another receiver (or the next bind)."""
        self.pending.extendleft(reversed(items))

    # -- answers ------------------------------------------------------------------------------------

    def delivered(self, item: Deliverable, status: int) -> None:
        """A deliver_sm was answered (or nacked)."""
        carrier = self.carrier
        stats = carrier.stats
        if status == ROK:
            if item.part is not None:
                item.part.receipt = "acked"
                stats.receipts_acked += 1
            elif item.mo is not None:
                item.mo.parts_acked += 1
                stats.mo_parts_acked += 1
            return
        stats.deliver_sm_nacked += 1
        settings = carrier.settings
        if status in TEMPORARY and item.tries < settings.deliver_max_tries:
            self.engine.schedule(time.monotonic() + min(settings.deliver_timeout, 5.0), (REQUEUE, item, self))
        else:
            self._give_up(item)

    def _timed_out(self, item: Deliverable, session: SmppSession) -> None:
        if item.tries >= self.carrier.settings.deliver_max_tries:
            self._give_up(item)
            return
        item.prefer = session if not session.closed else None
        self.pending.append(item)

    def _give_up(self, item: Deliverable) -> None:
        self.carrier.stats.deliver_sm_failed += 1
        if item.part is not None:
            item.part.receipt = "failed"
        elif item.mo is not None:
            item.mo.parts_failed += 1
        log.warning(
            "deliver_sm given up",
            carrier=self.carrier.name,
            tries=item.tries,
            kind="receipt" if item.part is not None else "mo",
        )
