"""Wake-ups between the parts of a running gateway: whoever makes work sets one, whoever does it waits.

Built first by the composition root and handed to producers and consumers alike, so neither needs
the other: the intake sets ``outbox`` when it queued messages and the dispatcher waits on it; a
fan-out sets ``outbox`` after each chunk; the pool sets it when its carriers have room. A consumer
that is busy when a wake-up comes finds it set on its next wait, so none is lost; several wake-ups
before it looks cost one round. Every consumer also wakes on its own after a timeout (polling is
the fallback: another process may have made the work).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any


class Wakeup:
    __slots__ = ("_event", "name", "sets")

    def __init__(self, name: str):
        self.name = name
        self._event = asyncio.Event()
        self.sets = 0  # how many times it was set (metrics, tests)

    def set(self) -> None:
        self.sets += 1
        self._event.set()

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self, timeout: float | None = None) -> bool:
        """Until set or ``timeout`` seconds; clears it and says whether it was set."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        was = self._event.is_set()
        self._event.clear()
        return was


@dataclass(frozen=True, slots=True)
class Signals:
    outbox: Wakeup = field(default_factory=lambda: Wakeup("outbox"))  # messages to claim
    broadcasts: Wakeup = field(default_factory=lambda: Wakeup("broadcasts"))  # a fan-out to run
    callbacks: Wakeup = field(default_factory=lambda: Wakeup("callbacks"))  # CRM callbacks queued


class CommitFeed:
    """Committed status batches, for whoever shows them live (the dashboards' streams)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def committed(self, changes: object = None) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    def next(self) -> Coroutine[Any, Any, bool]:
        """Awaitable for the next commit; bound at call time, so no commit slips between."""
        return self._event.wait()
