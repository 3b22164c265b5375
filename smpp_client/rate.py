"""The speed limit of one carrier: a token bucket counted in SMS segments, shared by its binds.

The refill rate follows the carrier's :class:`~smpp_client.throttle.AimdPolicy` (the configured
tps until the SMSC throttles). The bucket holds at most a tenth of a second of traffic, so the
rate over any second never exceeds the limit by more than that. A message of more segments than
the bucket holds may borrow (the bucket goes negative) so it is never stuck.

``take`` never blocks: it answers 0 (spent) or how many seconds to wait before asking again, so the
carrier's sender loop sleeps exactly as long as needed and no lock or task per message is needed.
"""

from __future__ import annotations

import time

from .throttle import AimdPolicy


class RateLimiter:
    __slots__ = ("_stamp", "_tokens", "burst_seconds", "policy")

    def __init__(self, policy: AimdPolicy | float, burst_seconds: float = 0.1, now: float | None = None):
        self.policy = policy if isinstance(policy, AimdPolicy) else AimdPolicy(policy)
        self.burst_seconds = burst_seconds
        self._stamp = time.monotonic() if now is None else now
        self._tokens = self._burst(self.policy.rate(self._stamp))

    def _burst(self, rate: float) -> float:
        return max(1.0, rate * self.burst_seconds)

    @property
    def rate(self) -> float:
        return self.policy.rate(time.monotonic())

    def take(self, tokens: float, now: float) -> float:
        """Spend ``tokens`` now and return 0.0, or return the seconds to wait first."""
        policy = self.policy
        if now < policy.paused_until:
            self._stamp = policy.paused_until  # nothing accumulates during a pause
            return policy.paused_until - now
        rate = policy.rate(now)
        burst = self._burst(rate)
        available = self._tokens + (now - self._stamp) * rate
        if available > burst:
            available = burst
        self._stamp = now
        if available + 1e-9 >= tokens or (available + 1e-9 >= burst and available > 0):
            self._tokens = available - tokens
            return 0.0
        self._tokens = available
        need = min(tokens, burst) - available
        return need / rate

    def on_throttle(self, now: float, epoch: int | None = None) -> bool:
        """Lower the rate (AIMD) and empty the bucket: nothing goes out during the pause."""
        if self.policy.on_throttle(now, epoch):
            self._tokens = 0.0
            self._stamp = self.policy.paused_until
            return True
        return False

    @property
    def epoch(self) -> int:
        return self.policy.epoch
