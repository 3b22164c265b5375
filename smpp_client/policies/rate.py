"""Spending a carrier's speed limit: a token bucket counted in SMS segments, shared by its binds.

A :class:`RateLimiter` answers, for the next part to send, 0 (go: its segments are spent) or how
many seconds to wait before asking again, so the carrier's sender sleeps exactly as long as needed
and no lock or task per message is needed. It never blocks.

The default, :class:`TokenBucket`, refills at the rate its
:class:`~smpp_client.policies.throttle.ThrottlePolicy` allows (the configured tps until the SMSC
throttles). It holds at most a tenth of a second of traffic, so the rate over any second never
exceeds the limit by more than that. A message of more segments than the bucket holds may borrow
(the bucket goes negative) so it is never stuck. When the policy lowers the rate (a new
``epoch``) the bucket empties: nothing saved up goes out during or right after the pause.
"""

from __future__ import annotations

import time
from typing import Protocol

from .throttle import AimdPolicy, ThrottlePolicy


class RateLimiter(Protocol):
    def take(self, tokens: float, now: float) -> float:
        """Spend ``tokens`` (segments) now and return 0.0, or return the seconds to wait first."""
        ...


class TokenBucket:
    __slots__ = ("_epoch", "_stamp", "_tokens", "burst_seconds", "policy")

    def __init__(self, policy: ThrottlePolicy | float, burst_seconds: float = 0.1, now: float | None = None):
        self.policy: ThrottlePolicy = AimdPolicy(policy) if isinstance(policy, (int, float)) else policy
        self.burst_seconds = burst_seconds
        self._stamp = time.monotonic() if now is None else now
        self._tokens = self._burst(self.policy.rate(self._stamp))
        self._epoch = self.policy.epoch

    def _burst(self, rate: float) -> float:
        return max(1.0, rate * self.burst_seconds)

    def take(self, tokens: float, now: float) -> float:
        policy = self.policy
        if policy.epoch != self._epoch:  # the rate was lowered: empty, and nothing during the pause
            self._epoch = policy.epoch
            self._tokens = 0.0
            self._stamp = policy.paused_until
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
