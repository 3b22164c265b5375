"""``ESTADO <folio>`` for a case followed from Open311: the request is read again first when the
gateway's copy is older than ``refresh_status_after_seconds``, so the answer is the CRM's status
now, not the last poll's. A refresh that fails or takes longer than ``refresh_timeout_seconds``
is logged and the citizen gets the copy the gateway has.

:class:`FreshStatusInbox` wraps the citizens' inbox (gateway/services/citizen_sms.py) for the SMPP side; it
changes nothing else about how an SMS is handled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from gateway import clock
from gateway.domain.keywords import Intent, parse
from gateway.store.db import Database

from . import tracking
from .poller import Open311Poller

log = structlog.get_logger("open311")


class CitizenInbox(Protocol):
    async def handle(self, carrier: str | None, msisdn: str, text: str, received_at: datetime) -> object: ...


class FreshStatusInbox:
    def __init__(
        self,
        inbox: CitizenInbox,
        db: Database,
        pollers: Mapping[str, Open311Poller],
        now: Callable[[], datetime] = clock.utcnow,
    ):
        self.inbox = inbox
        self.db = db
        self.pollers = dict(pollers)
        self.now = now
        self.refreshed = 0

    async def handle(self, carrier: str | None, msisdn: str, text: str, received_at: datetime) -> object:
        request = parse(text)
        if request.intent is Intent.STATUS and request.folio:
            await self._refresh(request.folio)
        return await self.inbox.handle(carrier, msisdn, text, received_at)

    async def _refresh(self, folio: str) -> None:
        candidates = {folio, folio.upper(), folio.lower()}
        found = []
        for name in sorted(candidates):
            found += await self.db.run(tracking.by_folio, name)
        now = self.now()
        for copy in found:
            poller = self.pollers.get(copy.adapter)
            if poller is None or poller.s.refresh_status_after_seconds <= 0:
                continue
            if now - poller.fresh_as_of(copy) < timedelta(seconds=poller.s.refresh_status_after_seconds):
                continue
            try:
                await poller.refresh(copy.request_id)
                self.refreshed += 1
            except Exception as exc:  # the citizen still gets the copy the gateway has
                log.warning(
                    "open311 status refresh failed",
                    adapter=copy.adapter,
                    error=f"{type(exc).__name__}: {exc}",
                )
