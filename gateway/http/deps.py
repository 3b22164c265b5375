"""What the HTTP handlers need from the running gateway."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from aiohttp import web

from gateway import clock
from gateway.domain.composer import Composer
from gateway.domain.notices import NoticePolicy
from gateway.store.db import Database
from gateway.store.intake import IntakeBatcher, ReminderOp
from gateway.store.signatures import SeenSignatures

if TYPE_CHECKING:
    from crm_adapters.mapping import CrmInbound


@dataclass
class ApiContext:
    db: Database
    composer: Composer
    secrets: dict[str, str]
    validity: timedelta
    max_body_bytes: int = 65536
    signature_tolerance_seconds: int = 300
    on_queued: Callable[[], None] = lambda: None
    is_ready: Callable[[], bool] = lambda: True
    # more /readyz checks: name -> what is wrong now, or None (e.g. a status writer that keeps failing)
    readiness_checks: dict[str, Callable[[], str | None]] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    # notices (issue 5); defaults: no quiet hours, no enrolment line, the built-in zone catalogue
    policy: NoticePolicy | None = None
    intake: IntakeBatcher | None = None
    on_broadcast: Callable[[int], None] = lambda broadcast_id: None  # wakes the fan-out
    on_reminders: Callable[[list[ReminderOp]], object] = lambda ops: None  # may return an awaitable
    callback_targets: dict[str, str] = field(default_factory=dict)  # client id -> callback URL
    crm_inbound: CrmInbound | None = None  # POST /api/v1/crm/{client}/events: mappings and intake
    signatures: SeenSignatures | None = None  # replay check; default: in this database

    def __post_init__(self) -> None:
        if self.policy is None:
            self.policy = NoticePolicy.simple(self.composer, self.validity)
        if self.intake is None:
            self.intake = IntakeBatcher(self.db, self.policy, lambda: clock.utcnow())
        if self.signatures is None:
            self.signatures = SeenSignatures(self.db, self.signature_tolerance_seconds)


CONTEXT = web.AppKey("context", ApiContext)
