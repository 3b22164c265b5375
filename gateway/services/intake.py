"""The intake service: what accepting one case event means, whichever way it came in.

Every way in (the signed webhook, an Open311 poller, a CRM's own JSON through its mapping, an
event file) hands :meth:`IntakeService.accept` the decoded body in the webhook's shape. The
service validates it (``parse_event``), runs the checks that need no database
(``NoticePolicy.prepare``), submits it to the group-commit batcher and, once the transaction has
committed, wakes whoever has new work: the dispatcher (messages queued), the fan-out (a broadcast
with recipients) and the reminder scheduler. A repeated event id answers as the first did, even if
the event would no longer pass (time moved on), so retries and re-imports are harmless.

``conflict``: the client already used this event id with a different body; nothing is written and
the first event stands.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import structlog
from sqlalchemy import Connection, select

from gateway import clock
from gateway.domain.catalog import REQUIRED_FIELDS
from gateway.domain.events import EventInvalid, parse_event
from gateway.domain.notices import NoticePolicy
from gateway.store.db import Database
from gateway.store.intake import IntakeBatcher, ReminderOp, same_payload
from gateway.store.models import events

log = structlog.get_logger("intake")

Status = Literal["accepted", "duplicate", "invalid", "conflict"]


@dataclass(frozen=True, slots=True)
class IntakeResult:
    status: Status
    response: dict | None  # the 202 body (accepted / duplicate)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (dotted field, reason)

    @property
    def ok(self) -> bool:
        return self.status in ("accepted", "duplicate")


def _stored(conn: Connection, client_id: str, event_id: str) -> tuple[str, dict, dict | None] | None:
    row = conn.execute(
        select(events.c.type, events.c.payload, events.c.response).where(
            events.c.client_id == client_id, events.c.event_key == event_id
        )
    ).first()
    return (row.type, row.payload, row.response) if row is not None else None


def _noop() -> None:
    return None


class IntakeService:
    def __init__(
        self,
        db: Database,
        policy: NoticePolicy,
        batcher: IntakeBatcher,
        *,
        on_queued: Callable[[], None] = _noop,
        on_broadcast: Callable[[int], None] = lambda broadcast_id: None,
        on_reminders: Callable[[list[ReminderOp]], Awaitable[None] | None] = lambda ops: None,
        required: dict[str, tuple[str, ...]] = REQUIRED_FIELDS,
        now: Callable[[], datetime] = clock.utcnow,
    ):
        self.db = db
        self.policy = policy
        self.batcher = batcher
        self.on_queued = on_queued
        self.on_broadcast = on_broadcast
        self.on_reminders = on_reminders
        self.required = required
        self.now = now

    async def accept(self, client_id: str, payload: dict, *, source: str) -> IntakeResult:
        """Accept one event of ``client_id``; ``source`` names the way in, for the logs."""
        try:
            event = parse_event(payload, self.required)
        except EventInvalid as exc:
            return IntakeResult("invalid", None, exc.errors)
        try:
            prepared = self.policy.prepare(client_id, event, payload, self.now())
        except EventInvalid as exc:
            stored = await self.db.run(_stored, client_id, event.id)
            if stored is None:
                return IntakeResult("invalid", None, exc.errors)
            _, stored_payload, response = stored
            conflict = not same_payload(stored_payload, payload)
            return self._repeat(client_id, event.id, conflict, response, source)
        result = await self.batcher.submit(prepared)
        response = result.response
        if not result.created:
            return self._repeat(client_id, event.id, result.conflict, response, source)
        if response["message_ids"]:
            self.on_queued()
        if result.broadcast_id is not None and response.get("recipients"):
            self.on_broadcast(result.broadcast_id)
        if result.reminders:
            pending = self.on_reminders(result.reminders)
            if inspect.isawaitable(pending):
                await pending
        # one line per accepted event only at debug level (thousands a second; the events table
        # is the record)
        log.debug(
            "event accepted",
            source=source,
            client=client_id,
            event_id=event.id,
            type=event.type,
            messages=len(response["message_ids"]),
            broadcast=result.broadcast_id,
        )
        return IntakeResult("accepted", response)

    def _repeat(
        self, client_id: str, event_id: str, conflict: bool, response: dict | None, source: str
    ) -> IntakeResult:
        """A second event with an id already used: the first answer, or a conflict."""
        if conflict:
            log.info(
                "event id reused with a different body", source=source, client=client_id, event_id=event_id
            )
            reason = "idempotency key reused with a different body"
            return IntakeResult("conflict", None, [("id", reason)])
        log.info("duplicate event answered as before", source=source, client=client_id, event_id=event_id)
        return IntakeResult("duplicate", response)
