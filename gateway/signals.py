"""Wake-ups between the parts of a running gateway: whoever makes work sets one, whoever does it waits.

Built first by the composition root and handed to producers and consumers alike, so neither needs
the other: the intake sets ``outbox`` when it queued messages and the dispatcher waits on it; a
fan-out sets ``outbox`` after each chunk; the pool sets it when its carriers have room. A consumer
that is busy when a wake-up comes finds it set on its next wait, so none is lost; several wake-ups
before it looks cost one round. Every consumer also wakes on its own after a timeout (polling is
the fallback: another process may have made the work).

A producer of new work calls :meth:`Wakeup.announce`: it sets the wake-up here and publishes it to
the other processes (on PostgreSQL, LISTEN / NOTIFY: gateway/store/notifications.py), whose
consumers may hold the carrier the work goes to. Local happenings (a carrier with room, a bind up)
only :meth:`Wakeup.set`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

Publish = Callable[[str], None]


def _local_only(_name: str) -> None:
    pass


class Wakeup:
    __slots__ = ("_event", "_publish", "name", "sets")

    def __init__(self, name: str, publish: Publish = _local_only):
        self.name = name
        self._event = asyncio.Event()
        self._publish = publish
        self.sets = 0  # how many times it was set (metrics, tests)

    def set(self) -> None:
        self.sets += 1
        self._event.set()

    def announce(self) -> None:
        """New work: set here and in the other processes."""
        self.set()
        self._publish(self.name)

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


class Signals:
    NAMES = ("outbox", "broadcasts", "callbacks")

    def __init__(self, publish: Publish = _local_only):
        """``publish(name)`` tells the other processes of an :meth:`Wakeup.announce`."""
        self.outbox = Wakeup("outbox", publish)  # messages to claim
        self.broadcasts = Wakeup("broadcasts", publish)  # a fan-out to run
        self.callbacks = Wakeup("callbacks", publish)  # CRM callbacks queued

    def wake(self, name: str) -> None:
        """Another process announced ``name``: set it here (not published again)."""
        wakeup = getattr(self, name, None) if name in self.NAMES else None
        if wakeup is not None:
            wakeup.set()


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
