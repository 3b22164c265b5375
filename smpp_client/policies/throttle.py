"""How fast a carrier may be sent to: AIMD around the SMSC's answers, with a short pause.

The configured ``max_rate`` (segments per second, all binds of the carrier together) is the most we
ever send. On ESME_RTHROTTLED or ESME_RMSGQFUL the rate is multiplied by ``decrease`` (0.5: halved,
never below ``min_rate``) and sending pauses for ``pause_seconds`` (Kannel waits its 60 s resend
period; a second is enough for an SMSC's token bucket to refill). Then the rate recovers, additively,
in three phases:

1. fast: back to 90 % of the rate at which the SMSC throttled (the ``ceiling``) within
   ``fast_seconds``; below it the SMSC accepted everything a moment ago;
2. probing: ``recovery_per_second`` more each second, looking for the SMSC's real limit;
3. after ``probe_seconds`` of probing without a throttle the old ceiling no longer holds (the
   carrier raised its limit): the rate grows by ``growth`` (50 %) a second up to ``max_rate``.

The defaults (fast 1 s, probe 3 s, growth 50 %) were chosen on a simulated SMSC token bucket (see
``bench/rate_accuracy.py`` for the measured figures): under an SMSC limit of half the configured
rate the accepted rate settles at ~98 % of that limit, and after a storm the full rate is back in
~8 s.

Only one decrease per episode: a throttle answering a submit sent before the last decrease took
effect (an older ``epoch``) is ignored, so a full window of throttles halves the rate once, not
fifty times. Pure and clock-free: every method takes ``now`` (monotonic seconds).
"""

from __future__ import annotations

import math
from typing import Protocol


class ThrottlePolicy(Protocol):
    """The speed a carrier may be sent to, and how an SMSC's throttling answers change it."""

    epoch: int  # changes at each decrease; a submit carries the epoch it was sent in
    paused_until: float  # monotonic: nothing is sent before this
    decreases: int  # decreases applied so far (for /metrics)

    def rate(self, now: float) -> float:
        """Segments per second allowed at ``now``."""
        ...

    def on_throttle(self, now: float, epoch: int | None = None) -> bool:
        """A throttling answer to a submit sent in ``epoch``; True when the rate was lowered."""
        ...

    def set_max_rate(self, max_rate: float) -> None:
        """The most ever sent from now on (the share of the carrier's limit this process holds)."""
        ...


class AimdPolicy:
    """The default :class:`ThrottlePolicy`: additive increase, multiplicative decrease."""

    __slots__ = (
        "_base",
        "_ceiling",
        "_t0",
        "decrease",
        "decreases",
        "epoch",
        "fast_seconds",
        "growth",
        "max_rate",
        "min_rate",
        "pause_seconds",
        "paused_until",
        "probe_seconds",
        "recovery_per_second",
        "throttles",
    )

    def __init__(
        self,
        max_rate: float,
        *,
        min_rate: float = 1.0,
        decrease: float = 0.5,
        pause_seconds: float = 1.0,
        recovery_per_second: float | None = None,
        fast_seconds: float = 1.0,
        probe_seconds: float = 3.0,
        growth: float = 0.5,
    ):
        if max_rate <= 0:
            raise ValueError("max_rate must be positive")
        if not 0 < decrease < 1:
            raise ValueError("decrease must be between 0 and 1")
        self.max_rate = float(max_rate)
        self.min_rate = min(float(min_rate), self.max_rate)
        self.decrease = decrease
        self.pause_seconds = pause_seconds
        self.recovery_per_second = (
            recovery_per_second if recovery_per_second is not None else max(1.0, self.max_rate * 0.02)
        )
        self.fast_seconds = fast_seconds
        self.probe_seconds = probe_seconds
        self.growth = growth
        self.epoch = 0  # bumped at each decrease; submits carry the epoch they were sent in
        self.paused_until = 0.0
        self.throttles = 0  # throttling answers seen
        self.decreases = 0  # episodes (decreases applied)
        self._base = self.max_rate
        self._ceiling = self.max_rate
        self._t0 = -math.inf  # start of recovery; -inf: at max_rate

    def rate(self, now: float) -> float:
        """The rate allowed at ``now`` (segments per second)."""
        if self._base >= self.max_rate:
            return self.max_rate
        dt = now - self._t0
        if dt <= 0:
            return self._base
        target = min(self._ceiling * 0.9, self.max_rate)
        rate = self._base
        if rate < target:
            slope = max(self.recovery_per_second, (target - rate) / self.fast_seconds)
            fast = (target - rate) / slope
            if dt <= fast:
                return rate + slope * dt
            rate, dt = target, dt - fast
        if dt <= self.probe_seconds:
            rate += self.recovery_per_second * dt
        else:
            rate += self.recovery_per_second * self.probe_seconds
            rate *= (1.0 + self.growth) ** (dt - self.probe_seconds)
        if rate >= self.max_rate:
            self._base = self.max_rate  # fully recovered: forget the episode
            return self.max_rate
        return rate

    def paused(self, now: float) -> bool:
        return now < self.paused_until

    def on_throttle(self, now: float, epoch: int | None = None) -> bool:
        """A throttling answer to a submit sent in ``epoch``; True when the rate was lowered."""
        self.throttles += 1
        if epoch is not None and epoch < self.epoch:
            return False  # sent before the last decrease: same episode
        current = self.rate(now)
        self._ceiling = current
        self._base = max(self.min_rate, current * self.decrease)
        self._t0 = now + self.pause_seconds
        self.paused_until = now + self.pause_seconds
        self.epoch += 1
        self.decreases += 1
        return True

    def set_max_rate(self, max_rate: float) -> None:
        self.max_rate = float(max_rate)
        self.min_rate = min(self.min_rate, self.max_rate)
        self._base = min(self._base, self.max_rate)
