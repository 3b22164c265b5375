"""What an operator may do to messages and broadcasts, the same whether a CRM asks or the control room.

A CRM acts only on its own events' messages and broadcasts (``client_id``); the control room
(``client_id=None``) on any. Both answer the same outcomes: ``None`` for no such thing (or not
yours), :class:`NotAllowed` when its state does not allow it (409 over HTTP), else what changed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import Connection

from gateway import clock
from gateway.domain.notices import NoticePolicy
from gateway.domain.status import Priority
from gateway.signals import Signals
from gateway.store import broadcasts, outbox
from gateway.store.db import Database

if TYPE_CHECKING:
    from crm_adapters.callbacks import CallbackQueue

log = structlog.get_logger("operators")


class NotAllowed(ValueError):
    """The action does not apply in the current state (a finished broadcast, a delivered message)."""


class OperatorActions:
    def __init__(
        self,
        db: Database,
        policy: NoticePolicy,
        signals: Signals,
        callbacks: CallbackQueue,
        now: Callable[[], datetime] = clock.now,
    ):
        self.db = db
        self.policy = policy
        self.signals = signals
        self.callbacks = callbacks
        self.now = now

    async def cancel_broadcast(self, broadcast_id: int, *, client_id: str | None, by: str) -> dict | None:
        """Stop its fan-out; its queued and held messages become cancelled; its CRM is told."""
        try:
            result = await self.db.run(self._cancel, broadcast_id, client_id, self.now())
        except broadcasts.NotCancellable as exc:
            raise NotAllowed(str(exc)) from None
        if result is not None:
            self.signals.callbacks.announce()
            log.info("broadcast cancelled", by=by, broadcast_id=broadcast_id, messages=result["cancelled"])
        return result

    def _cancel(
        self, conn: Connection, broadcast_id: int, client_id: str | None, now: datetime
    ) -> dict | None:
        row = broadcasts.get(conn, broadcast_id)
        if row is None or (client_id is not None and row["client_id"] != client_id):
            return None
        result = broadcasts.cancel(conn, broadcast_id, now)
        self.callbacks.broadcast_cancelled(
            conn, row["client_id"], broadcast_id, row["event_key"], result["cancelled"], now
        )
        return result

    async def retry_message(self, message_id: int, *, client_id: str | None, by: str) -> dict | None:
        """A failed, expired, undeliverable or rejected message is queued again, fresh validity."""
        now = self.now()

        def plan(priority: int):
            timing = self.policy.timing(now, Priority(priority), None)
            return timing.status, timing.not_before, timing.expires_at

        try:
            result = await self.db.run(self._retry, message_id, client_id, plan, now)
        except outbox.NotRetryable as exc:
            raise NotAllowed(str(exc)) from None
        if result is not None:
            self.signals.outbox.announce()
            log.info("message retried", by=by, message_id=message_id, was=result["previous_status"])
        return result

    @staticmethod
    def _retry(conn: Connection, message_id: int, client_id: str | None, plan, now: datetime) -> dict | None:
        if client_id is not None and outbox.client_of(conn, message_id) != client_id:
            return None
        return outbox.retry_message(conn, message_id, plan, now)
