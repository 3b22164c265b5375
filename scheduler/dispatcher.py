"""Claims due messages from the outbox and hands them to the SMPP links.

It claims only what the links can take now (free window slots), so leases stay short-lived and
a backlog stays in the database, where priorities and cancellations still apply.
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta

import structlog

from gateway import clock
from gateway.domain.phone import mask_msisdn
from gateway.domain.status import MessageStatus
from gateway.store import outbox
from gateway.store.db import Database
from gateway.store.status_writer import StatusWriter
from smpp_client.constants import Status
from smpp_client.pool import CarrierPool, SendOutcome

log = structlog.get_logger("scheduler")


class Dispatcher:
    def __init__(
        self,
        db: Database,
        pool: CarrierPool,
        writer: StatusWriter,
        owner: str,
        batch_size: int = 500,
        lease_seconds: float = 120,
        max_attempts: int = 10,
    ):
        self.db = db
        self.pool = pool
        self.writer = writer
        self.owner = owner
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self._handed = 0  # claimed and not yet answered by the SMSC
        self._tasks: set[asyncio.Task] = set()
        self.wake = lambda: None  # replaced by the scheduler job's trigger

    @property
    def in_flight(self) -> int:
        return self._handed

    async def dispatch_once(self) -> int:
        """One claim round; returns how many messages were handed to the links."""
        room = min(self.batch_size, self.pool.capacity() - self._handed)
        if room <= 0:
            return 0
        claimed = await self.db.run(outbox.claim, self.owner, room, clock.utcnow(), self.lease_seconds)
        for message in claimed:
            self._handed += 1
            task = asyncio.create_task(self._send(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if len(claimed) == room:
            self.wake()
        return len(claimed)

    async def drain(self) -> None:
        """Wait for every handed message to get its outcome recorded."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _send(self, message: outbox.ClaimedMessage) -> None:
        try:
            outcome = await self.pool.send(message.msisdn, message.body)
        except Exception as exc:  # a bug must not strand the message: it goes back to the queue
            log.exception("send failed", message_id=message.id)
            outcome = SendOutcome(None, status=Status.ESME_RSYSERR, error=f"internal error: {exc}")
        finally:
            self._handed -= 1
        self.writer.post(self._change_for(message, outcome, clock.utcnow()))
        self.wake()

    def _change_for(self, message: outbox.ClaimedMessage, outcome: SendOutcome, now: datetime):
        if outcome.ok:
            log.debug(
                "submitted", message_id=message.id, carrier=outcome.carrier, smsc_id=outcome.smsc_ids[0]
            )
            return outbox.Submitted(message.id, outcome.carrier, outcome.smsc_ids, now)
        code = outcome.status if outcome.status >= 0 else None
        if outcome.temporary and message.attempts < self.max_attempts:
            delay = min(300.0, 2.0 ** min(message.attempts, 8)) * random.uniform(0.5, 1.0)
            log.info(
                "temporary failure; will retry",
                message_id=message.id,
                to=mask_msisdn(message.msisdn),
                error=outcome.error,
                retry_in=round(delay, 1),
            )
            return outbox.Retry(message.id, now + timedelta(seconds=delay), code, outcome.error or "", now)
        log.warning("message failed", message_id=message.id, error=outcome.error, carrier=outcome.carrier)
        return outbox.Failed(message.id, MessageStatus.FAILED, code, outcome.error or "failed", now)
