"""The intake service: what accepting one case event means, whichever way it came in.

Every way in (the signed webhook, a CRM's own JSON through its mapping, an Open311 poller, an event
file) hands :meth:`IntakeService.accept` the decoded body in the webhook's shape. The service
validates it (``parse_event``), runs the checks that need no database (``NoticePolicy.prepare``),
submits it to the group-commit batcher and, once the transaction has committed, wakes whoever has
new work: the dispatcher (messages queued) and the fan-out (a broadcast with recipients). The
appointment reminders are rows written in that transaction; nothing else is left to do after it.

A repeated event id answers as the first did, even if the event would no longer pass (time moved
on), so retries and re-imports are harmless; another body under the same id is a ``conflict`` and
changes nothing. A signed request's signature is registered in the accepting transaction, or before
any other answer: a replay is refused whatever it carries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import structlog

from gateway import clock
from gateway.domain.catalog import REQUIRED_FIELDS
from gateway.domain.events import EventInvalid, parse_event
from gateway.domain.notices import NoticePolicy
from gateway.signals import Signals
from gateway.store.db import Database
from gateway.store.intake import IntakeBatcher, same_payload, stored_event
from gateway.store.signatures import Seen, SeenSignatures

log = structlog.get_logger("intake")

Status = Literal["accepted", "duplicate", "invalid", "conflict", "replay"]
CONFLICT = "idempotency key reused with a different body"


@dataclass(frozen=True, slots=True)
class IntakeResult:
    status: Status
    response: dict | None  # the 202 body (accepted / duplicate)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (dotted field, reason)

    @property
    def ok(self) -> bool:
        return self.status in ("accepted", "duplicate")


class IntakeService:
    def __init__(
        self,
        db: Database,
        policy: NoticePolicy,
        batcher: IntakeBatcher,
        signals: Signals,
        signatures: SeenSignatures,
        *,
        required: dict[str, tuple[str, ...]] = REQUIRED_FIELDS,
        now: Callable[[], datetime] = clock.now,
    ):
        self.db = db
        self.policy = policy
        self.batcher = batcher
        self.signals = signals
        self.signatures = signatures
        self.required = required
        self.now = now

    async def accept(
        self, client_id: str, payload: object, *, source: str, signature: Seen | None = None
    ) -> IntakeResult:
        """Accept one event of ``client_id``; ``source`` names the way in, for the logs."""
        try:
            event = parse_event(payload, self.required)
        except EventInvalid as exc:
            return await self._refused(signature) or IntakeResult("invalid", None, exc.errors)
        try:
            prepared = self.policy.prepare(client_id, event, payload, self.now())
        except EventInvalid as exc:
            if replay := await self._refused(signature):
                return replay
            stored = await self.db.run(stored_event, client_id, event.id)
            if stored is None:
                return IntakeResult("invalid", None, exc.errors)
            stored_payload, response = stored
            return self._repeat(
                client_id, event.id, not same_payload(stored_payload, payload), response, source
            )
        result = await self.batcher.submit(prepared, signature)
        if result.replay:
            return IntakeResult("replay", None)
        response = result.response
        if not result.created:
            return self._repeat(client_id, event.id, result.conflict, response, source)
        if response["message_ids"]:
            self.signals.outbox.announce()
        if result.broadcast_id is not None and response.get("recipients"):
            self.signals.broadcasts.announce()
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

    async def _refused(self, signature: Seen | None) -> IntakeResult | None:
        """Register a request's signature before a refusal: a replay answers as a replay."""
        if signature is not None and not await self.signatures.register(signature):
            return IntakeResult("replay", None)
        return None

    def _repeat(
        self, client_id: str, event_id: str, conflict: bool, response: dict | None, source: str
    ) -> IntakeResult:
        """A second event with an id already used: the first answer, or a conflict."""
        if conflict:
            log.info(
                "event id reused with a different body", source=source, client=client_id, event_id=event_id
            )
            return IntakeResult("conflict", None, [("id", CONFLICT)])
        log.info("duplicate event answered as before", source=source, client=client_id, event_id=event_id)
        return IntakeResult("duplicate", response)
