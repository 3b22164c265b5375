"""The broadcast fan-out: queues a broadcast's messages chunk by chunk, inside the database.

One task per process. Each round takes the most urgent unfinished broadcast and runs one chunk
(``gateway.store.broadcasts.fanout_chunk``: one transaction, one ``INSERT … SELECT``), so an
emergency accepted during a 100,000-message water notice is fanned out before the notice's next
chunk, and the dispatcher is woken after every chunk. Unfinished broadcasts (a crash, a restart)
are picked up at start.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

import structlog

from gateway import clock
from gateway.signals import Wakeup
from gateway.store import broadcasts
from gateway.store.db import Database

log = structlog.get_logger("scheduler")


class FanoutService:
    def __init__(
        self,
        db: Database,
        wakeup: Wakeup,
        on_queued: Callable[[], None],
        *,
        chunk: int = 5000,
        now: Callable[[], datetime] = clock.now,
        idle_poll_seconds: float = 30.0,
    ):
        self.db = db
        self.wakeup = wakeup  # a broadcast was accepted
        self.on_queued = on_queued  # a chunk was queued
        self.chunk = chunk
        self.now = now
        self.idle_poll_seconds = idle_poll_seconds
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="fanout")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self) -> broadcasts.ChunkResult | None:
        """One chunk of the most urgent unfinished broadcast; None when there is none."""
        todo = await self.db.run(broadcasts.unfinished)
        if not todo:
            return None
        broadcast_id, _ = todo[0]
        result = await self.db.run(broadcasts.fanout_chunk, broadcast_id, self.chunk, self.now())
        if result.inserted:
            self.on_queued()
        if result.finished:
            log.info("broadcast fanned out", broadcast_id=broadcast_id, status=result.status)
        return result

    async def run_until_idle(self) -> int:
        """Fan out everything pending now; returns the messages queued."""
        total = 0
        while (result := await self.run_once()) is not None:
            total += result.inserted
        return total

    async def _run(self) -> None:
        busy = True  # at start: unfinished broadcasts (a crash, a restart) resume
        while True:
            if not busy:
                # woken by this process's intake; the timeout finds broadcasts another process
                # wrote (``smsgw events import``, a second gateway on the same database)
                await self.wakeup.wait(self.idle_poll_seconds)
            try:
                busy = await self.run_once() is not None  # the next chunk after a turn of the loop
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("fan-out round failed; retrying")
                await asyncio.sleep(1.0)
            await asyncio.sleep(0)
