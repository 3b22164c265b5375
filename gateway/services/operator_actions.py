"""What an operator may do to messages, broadcasts and carriers, the same whether a CRM asks or the
control room.

A CRM acts only on its own events' messages and broadcasts (``client_id``); the control room
(``client_id=None``) on any. Both answer the same outcomes: ``None`` for no such thing (or not
yours), :class:`NotAllowed` when its state does not allow it (409 over HTTP), else what changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import Connection

from gateway import clock
from gateway.domain.notices import NoticePolicy
from gateway.domain.status import MessageStatus, Priority
from gateway.signals import Signals
from gateway.store import broadcasts, carrier_pauses, outbox
from gateway.store.db import Database

if TYPE_CHECKING:
    from crm_adapters.callbacks import CallbackQueue

log = structlog.get_logger("operators")


class NotAllowed(ValueError):
    """The action does not apply in the current state (a finished broadcast, a delivered message)."""


class UnknownCarrier(LookupError):
    pass


class OperatorActions:
    def __init__(
        self,
        db: Database,
        policy: NoticePolicy,
        signals: Signals,
        callbacks: CallbackQueue,
        now: Callable[[], datetime] = clock.now,
        carriers: Iterable[str] = (),
        on_change: Callable[[], object] = lambda: None,
    ):
        """``carriers``: the configured carriers' names (the ones that can be paused);
        ``on_change``: called after an action changed something (the dashboards' streams)."""
        self.db = db
        self.carriers = tuple(carriers)
        self.on_change = on_change
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
            self.on_change()
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
            self.on_change()
            log.info("message retried", by=by, message_id=message_id, was=result["previous_status"])
        return result

    @staticmethod
    def _retry(conn: Connection, message_id: int, client_id: str | None, plan, now: datetime) -> dict | None:
        if client_id is not None and outbox.client_of(conn, message_id) != client_id:
            return None
        return outbox.retry_message(conn, message_id, plan, now)

    async def cancel_message(self, message_id: int, *, client_id: str | None, by: str) -> dict | None:
        """A queued or held message not yet handed to a carrier becomes cancelled; its CRM is told."""
        try:
            result = await self.db.run(self._cancel_message, message_id, client_id, self.now())
        except outbox.NotCancellable as exc:
            raise NotAllowed(str(exc)) from None
        if result is not None:
            self.signals.callbacks.announce()
            self.on_change()
            log.info("message cancelled", by=by, message_id=message_id, was=result["previous_status"])
        return result

    def _cancel_message(
        self, conn: Connection, message_id: int, client_id: str | None, now: datetime
    ) -> dict | None:
        owner = outbox.client_of(conn, message_id)
        if client_id is not None and owner != client_id:
            return None
        result = outbox.cancel_message(conn, message_id, now, "cancelled by an operator")
        if result is not None and owner is not None and self.callbacks.enabled:
            self.callbacks.message_status(conn, [message_id], MessageStatus.CANCELLED, now)
        return result

    def _known(self, carrier: str) -> None:
        if carrier not in self.carriers:
            raise UnknownCarrier(f"no carrier {carrier!r}; known: {', '.join(self.carriers)}")

    async def pause_carrier(self, carrier: str, *, by: str) -> bool:
        """Its messages wait in the outbox until it is resumed (every process's dispatcher reads the
        pause); False when it was paused already. Raises UnknownCarrier."""
        self._known(carrier)
        changed = await self.db.run(carrier_pauses.pause, carrier, by, self.now())
        if changed:
            self.on_change()
            log.warning("carrier paused", by=by, carrier=carrier)
        return changed

    async def resume_carrier(self, carrier: str, *, by: str) -> bool:
        """False when it was not paused. Raises UnknownCarrier."""
        self._known(carrier)
        changed = await self.db.run(carrier_pauses.resume, carrier)
        if changed:
            self.signals.outbox.announce()  # its messages are claimable again, in every process
            self.on_change()
            log.warning("carrier resumed", by=by, carrier=carrier)
        return changed
