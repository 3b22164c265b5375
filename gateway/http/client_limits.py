"""Per CRM client, in this process: a request rate (a token bucket with a burst) and a cap on the
requests in progress.

Applied by the authentication middleware once a request's signature is verified, so only
authenticated clients are counted (a request that fails authentication is a 401 and counts for
nobody) and a refused request costs no database work. A refusal is a 429 problem with
``Retry-After``. Each gateway process counts on its own: behind a load balancer over N processes a
client may get up to N times its limits.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from .problems import Problem


@dataclass(frozen=True, slots=True)
class ClientLimit:
    requests_per_second: float
    burst: int  # requests accepted at once after a quiet spell
    max_concurrent: int  # requests in progress at a time


class _Bucket:
    __slots__ = ("concurrent", "limit", "tokens", "updated")

    def __init__(self, limit: ClientLimit, now: float):
        self.limit = limit
        self.tokens = float(limit.burst)
        self.updated = now
        self.concurrent = 0

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.limit.burst), self.tokens + elapsed * self.limit.requests_per_second)
        self.updated = now


def too_many(detail: str, retry_after: int) -> Problem:
    return Problem(
        429, "Too many requests", detail, slug="too-many-requests", headers={"Retry-After": str(retry_after)}
    )


class ClientLimits:
    def __init__(self, limits: Mapping[str, ClientLimit], clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        now = clock()
        self._buckets = {client: _Bucket(limit, now) for client, limit in limits.items()}
        self.refused: dict[tuple[str, str], int] = {}  # (client, "rate" | "concurrency") -> count

    def in_progress(self, client_id: str) -> int:
        bucket = self._buckets.get(client_id)
        return bucket.concurrent if bucket else 0

    @contextmanager
    def admit(self, client_id: str) -> Iterator[None]:
        """Holds one of the client's places while the block runs, or raises its 429 first."""
        bucket = self._buckets.get(client_id)
        if bucket is None:  # a client without limits (none configured for it)
            yield
            return
        limit = bucket.limit
        if bucket.concurrent >= limit.max_concurrent:
            self._refuse(client_id, "concurrency")
            detail = f"this client's requests in progress reached max_concurrent ({limit.max_concurrent})"
            raise too_many(detail, 1)
        bucket.refill(self.clock())
        if bucket.tokens < 1.0:
            self._refuse(client_id, "rate")
            wait = math.ceil((1.0 - bucket.tokens) / limit.requests_per_second)
            raise too_many(
                f"this client sent more than requests_per_second ({limit.requests_per_second:g}) "
                f"after its burst ({limit.burst})",
                max(1, wait),
            )
        bucket.tokens -= 1.0
        bucket.concurrent += 1
        try:
            yield
        finally:
            bucket.concurrent -= 1

    def _refuse(self, client_id: str, reason: str) -> None:
        key = (client_id, reason)
        self.refused[key] = self.refused.get(key, 0) + 1
