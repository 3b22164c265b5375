"""What moves the outbox: the dispatch loop (claim and send) and the periodic jobs (APScheduler).

The dispatch loop runs a claim round whenever the ``outbox`` wake-up is set (messages queued,
carriers with room, a bind up) and at least every ``interval_seconds`` (messages another process
queued, retries coming due). Rounds follow each other while the last one filled the room it had.
The periodic jobs (expiry, the quiet-hours release, the CRM pollers) are APScheduler interval jobs
on one scheduler, added by the composition root.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from gateway import clock
from gateway.signals import Wakeup
from gateway.store import outbox
from gateway.store.db import Database

from .dispatcher import Dispatcher

log = structlog.get_logger("scheduler")

EXPIRE_JOB = "expire"


class DispatchLoop:
    def __init__(self, dispatcher: Dispatcher, wakeup: Wakeup, interval_seconds: float = 0.5):
        self.dispatcher = dispatcher
        self.wakeup = wakeup
        self.interval = interval_seconds
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="dispatch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.dispatcher.dispatch_once()
                while self.dispatcher.more:  # a room filled or messages to route: at once again
                    await self.dispatcher.dispatch_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dispatch round failed")
            await self.wakeup.wait(self.interval)


class Expiry:
    """Queued or held messages past their validity become expired (and tell their CRM)."""

    def __init__(
        self,
        db: Database,
        after: outbox.StatusHook | None = None,
        now: Callable[[], datetime] = clock.now,
    ):
        self.db = db
        self.after = after
        self.now = now

    async def run_once(self) -> int:
        try:
            count = await self.db.run(outbox.expire_overdue, self.now(), self.after)
        except Exception:
            log.exception("expiry round failed")
            return 0
        if count:
            log.info("messages expired before submission", count=count)
        return count


def interval_job(
    scheduler: AsyncIOScheduler, job_id: str, seconds: float, run: Callable[[], Awaitable[object]]
) -> None:
    """One periodic job: never two runs of it at once, a missed run not repeated."""
    scheduler.add_job(
        run, "interval", seconds=seconds, id=job_id, max_instances=1, coalesce=True, replace_existing=True
    )
