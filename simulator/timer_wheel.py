"""The SMSC's timer wheel: entries due in slots of ``tick`` seconds, popped once per tick.

An entry is ``(kind, a, b)``:

- ``RECEIPT, part, session``: a receipt falls due (batched receipts);
- ``RESPONSE, session, frame``: a response the ``response_delay`` fault held back;
- ``REQUEUE, deliverable, queue``: a deliver_sm answered with a temporary error, tried again;
- ``RECEIPT_AFTER_RESPONSE, part, (session, delay)``: a receipt sent on its own, whose timer starts
  once its held-back response has gone;
- ``BIND_DEADLINE, session, None``: a connection that has not bound by now is closed.
"""

from __future__ import annotations

RECEIPT, RESPONSE, REQUEUE, RECEIPT_AFTER_RESPONSE, BIND_DEADLINE = range(5)


class TimerWheel:
    __slots__ = ("_last_slot", "_slots", "tick")

    def __init__(self, tick: float, now: float):
        self.tick = tick
        self._slots: dict[int, list[tuple]] = {}
        self._last_slot = int(now / tick)

    def restart(self, now: float) -> None:
        """Continue from ``now`` (slots before it are popped at the next :meth:`pop_due`)."""
        self._last_slot = int(now / self.tick)

    def schedule(self, due: float, entry: tuple) -> None:
        slot = int(due / self.tick) + 1
        bucket = self._slots.get(slot)
        if bucket is None:
            self._slots[slot] = [entry]
        else:
            bucket.append(entry)

    def pop_due(self, now: float) -> list[list[tuple]]:
        """The buckets of entries due by ``now``, oldest first."""
        now_slot = int(now / self.tick)
        wheel = self._slots
        buckets = []
        if wheel:
            if now_slot - self._last_slot > 64:
                slots = sorted(s for s in wheel if s <= now_slot)
            else:
                slots = [s for s in range(self._last_slot + 1, now_slot + 1) if s in wheel]
            buckets = [wheel.pop(slot) for slot in slots]
        self._last_slot = now_slot
        return buckets

    def keep_only(self, kinds: frozenset[int]) -> None:
        """Forget every entry whose kind is not in ``kinds``."""
        for slot, entries in list(self._slots.items()):
            kept = [e for e in entries if e[0] in kinds]
            if kept:
                self._slots[slot] = kept
            else:
                del self._slots[slot]
