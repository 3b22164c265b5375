"""Releasing what quiet hours held: at the window's end, held messages become queued.

Messages other than emergencies accepted inside the window are stored ``held`` with
``not_before`` = the end of the window (gateway/domain/timing.py). This job turns the due ones
into ``queued`` (with a history row) every few seconds and wakes the dispatcher; the claim's order
(priority, then not_before, then id) sends them in their order.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog
from apscheduler.schedulers.base import BaseScheduler

from gateway import clock
from gateway.store import outbox
from gateway.store.db import Database

log = structlog.get_logger("scheduler")

RELEASE_JOB = "quiet-hours-release"


class QuietHoursRelease:
    def __init__(
        self,
        db: Database,
        on_released: Callable[[], None] = lambda: None,
        now: Callable[[], datetime] | None = None,
        interval_seconds: float = 15,
    ):
        self.db = db
        self.on_released = on_released
        self.now = now or (lambda: clock.utcnow())
        self.interval = interval_seconds

    def install(self, scheduler: BaseScheduler) -> None:
        scheduler.add_job(
            self.run_once,
            "interval",
            seconds=self.interval,
            id=RELEASE_JOB,
            max_instances=1,
            coalesce=True,
            replace_existing=True,
        )

    async def run_once(self) -> int:
        try:
            count = await self.db.run(outbox.release_held, self.now())
        except Exception:
            log.exception("quiet-hours release failed")
            return 0
        if count:
            log.info("quiet hours ended: held messages released", count=count)
            self.on_released()
        return count
