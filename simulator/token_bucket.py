"""The token bucket a carrier's binds share (its submit_sm per second)."""

from __future__ import annotations

import time


class TokenBucket:
    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float | None, burst: int | None = None):
        self.configure(rate, burst)

    def configure(self, rate: float | None, burst: int | None = None) -> None:
        """``rate`` None: no limit; ``burst`` defaults to ``max(1, rate)``."""
        self.rate = rate
        self.burst = float(burst or max(1, int(rate or 1)))
        self.tokens = self.burst
        self.stamp = time.monotonic()

    def allow(self, now: float) -> bool:
        if self.rate is None:
            return True
        tokens = self.tokens + (now - self.stamp) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        self.stamp = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return True
        self.tokens = tokens
        return False
