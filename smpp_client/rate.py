"""A token bucket counted in SMS segments, shared by all binds of one carrier."""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    def __init__(self, rate: float, burst: float | None = None):
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 10)
        self._tokens = self.burst
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self, tokens: float = 1.0) -> None:
        """Wait until ``tokens`` may be spent; callers are served in arrival order."""
        async with self._lock:
            self._refill()
            while self._tokens < tokens:
                await asyncio.sleep((tokens - self._tokens) / self.rate)
                self._refill()
            self._tokens -= tokens
