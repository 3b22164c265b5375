"""Appointment reminders: due times on the appointment rows, sent by whichever process claims them.

``appointment.scheduled`` writes the 24 h and 2 h reminders' due times on the appointment (moved
out of quiet hours: to the window's end when that is still 30 minutes ahead of the appointment,
else to just before the window starts) in the transaction that accepts the event;
``appointment.cancelled`` cancels the appointment, and with it what is not sent yet. Every few
seconds :meth:`ReminderService.run_once` claims the due reminders of appointments still pending or
confirmed and still ahead, and queues them in the same transaction: a reminder is sent once,
whatever process or how many run the job, and one that fell due while no process was running is
sent when one starts, if the appointment is still ahead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

import structlog

from gateway import clock
from gateway.domain.notices import NoticePolicy
from gateway.domain.status import Priority
from gateway.store import appointments, outbox
from gateway.store.db import Database

log = structlog.get_logger("scheduler")


def send_due(conn, policy: NoticePolicy, now: datetime) -> list[int]:
    """Claim the due reminders and queue their messages; returns the message ids."""
    rows = []
    for _label, row in appointments.claim_due(conn, now):
        text = policy.reminder_text(row["folio"], row["at"], row["place"], row["language"])
        timing = policy.timing(now, Priority.HIGH, "appointment.reminder", row["at"])
        rows.append(
            {
                "event_id": row["event_id"],
                "citizen_id": row["citizen_id"],
                "msisdn": row["msisdn"],
                "language": row["language"],
                "body": text.body,
                "encoding": text.encoding,
                "segments": text.segments,
                "priority": int(Priority.HIGH),
                "status": timing.status.value,
                "not_before": timing.not_before,
                "expires_at": timing.expires_at,
            }
        )
    return outbox.enqueue(conn, rows, now)


class ReminderService:
    def __init__(
        self,
        db: Database,
        policy: NoticePolicy,
        on_queued: Callable[[], None],
        *,
        interval_seconds: float = 5.0,
        now: Callable[[], datetime] = clock.now,
    ):
        self.db = db
        self.policy = policy
        self.on_queued = on_queued
        self.interval = interval_seconds
        self.now = now
        self._task: asyncio.Task | None = None

    async def run_once(self) -> int:
        """Send what is due now; returns how many reminders were queued."""
        ids = await self.db.run(send_due, self.policy, self.now())
        if ids:
            log.info("appointment reminders queued", count=len(ids))
            self.on_queued()
        return len(ids)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="reminders")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reminder round failed; retrying")
            await asyncio.sleep(self.interval)
