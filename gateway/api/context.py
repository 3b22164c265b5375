"""What the HTTP handlers need from the running gateway."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from aiohttp import web

from gateway.domain.composer import Composer
from gateway.store.db import Database


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
    extra: dict = field(default_factory=dict)


CONTEXT = web.AppKey("context", ApiContext)
