"""The APScheduler jobs that move the outbox: dispatch (claim and send) and expiry."""

from __future__ import annotations

import asyncio
from datetime import datetime

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from gateway import clock
from gateway.store import outbox
from gateway.store.db import Database

from .dispatcher import Dispatcher

log = structlog.get_logger("scheduler")

DISPATCH_JOB = "dispatch"
EXPIRE_JOB = "expire"


class OutboxJobs:
    """Owns the scheduler. ``wake()`` runs the dispatch job now instead of at its next tick."""

    def __init__(self, db: Database, dispatcher: Dispatcher, interval_seconds: float = 0.5):
        self.db = db
        self.dispatcher = dispatcher
        self.interval = interval_seconds
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.expire_hook = None  # outbox.StatusHook for the expired messages (status callbacks)
        self._running = False
        self._again = False
        dispatcher.wake = self.wake

    def start(self) -> None:
        self.scheduler.add_job(
            self._dispatch,
            "interval",
            seconds=self.interval,
            id=DISPATCH_JOB,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now().astimezone(),
        )
        self.scheduler.add_job(
            self._expire, "interval", seconds=30, id=EXPIRE_JOB, max_instances=1, coalesce=True
        )
        self.scheduler.start()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def wake(self) -> None:
        """Run the dispatch rounds now (the interval job is the periodic safety net)."""
        if self._running:
            self._again = True
            return
        if self.scheduler.running:
            self._start_rounds()

    async def _dispatch(self) -> None:
        if self._running:
            self._again = True
            return
        self._start_rounds()

    def _start_rounds(self) -> None:
        # The rounds run in a task of their own, so under sustained load an APScheduler run ends at
        # once instead of overlapping the next tick (which APScheduler skips with a warning each time).
        self._running = True
        self._rounds = asyncio.get_running_loop().create_task(self._dispatch_rounds(), name="dispatch")

    async def _dispatch_rounds(self) -> None:
        try:
            while True:
                self._again = False
                await self.dispatcher.dispatch_once()
                if not self._again:
                    break
        except Exception:
            log.exception("dispatch round failed")
        finally:
            self._running = False

    async def _expire(self) -> None:
        try:
            count = await self.db.run(outbox.expire_overdue, clock.utcnow(), self.expire_hook)
            if count:
                log.info("messages expired before submission", count=count)
        except Exception:
            log.exception("expiry round failed")
