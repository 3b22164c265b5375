"""Fuzzing properties, declared once: the CI tests (tests/fuzz/test_*.py) run each with a small
budget, bench/fuzz.py runs the same ones with 100,000 cases in all.

A :class:`Property` is a check over one drawn value: it raises (an assertion, or an exception
other than the documented error types) when the code under test misbehaves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# bounded for CI: a few hundred cases each, no per-case deadline (the machine is shared)
CI = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass
class Property:
    name: str
    strategy: st.SearchStrategy
    check: Callable[[object], None]
    cases: int = 0  # cases run so far, in this process
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _counted(self, value: object) -> None:
        with self._lock:
            self.cases += 1
        self.check(value)

    def run(self, budget: settings = CI) -> None:
        """Runs the property under ``budget``; raises the (shrunk) failure, if any."""
        settings(budget)(given(self.strategy)(self._counted))()
