"""SMSC message ids: unique ones by default, or a plain counter that starts again like a real SMSC's."""

from __future__ import annotations

import secrets


class UniqueIds:
    """Ids unique across carriers and restarts: a random 30-bit prefix per process + a counter."""

    __slots__ = ("_counter", "_prefix")

    def __init__(self) -> None:
        self._prefix = secrets.randbits(30) | (1 << 29)
        self._counter = 0

    def next(self, decimal: bool = False) -> str:
        self._counter += 1
        if self._counter > 0xFFFFFFFF:
            self._prefix = secrets.randbits(30) | (1 << 29)
            self._counter = 1
        value = (self._prefix << 32) | self._counter
        return str(value) if decimal else format(value, "x")


class CountingIds:
    """One carrier's ids ``start``, ``start + 1``, ...: they repeat after :meth:`restart`."""

    __slots__ = ("_next", "start")

    def __init__(self, start: int) -> None:
        self.start = start
        self._next = start

    def restart(self) -> None:
        self._next = self.start

    def next(self, decimal: bool = False) -> str:
        value = self._next
        self._next = value + 1
        return str(value) if decimal else format(value, "x")


def rewrite_id(message_id: str, from_decimal: bool, to_decimal: bool) -> str:
    """The same id written in the other base (``to_decimal``), as a carrier's receipts may do."""
    if from_decimal == to_decimal:
        return message_id
    value = int(message_id, 10 if from_decimal else 16)
    return str(value) if to_decimal else format(value, "x")
