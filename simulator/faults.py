"""Fault switches of one carrier: what they are set to and the decisions they make.

Set from the configuration (``faults = {...}`` in a carrier's table) and replaced or changed at run
time (``PUT /sim/carriers/{name}/faults``). Each change starts a new *generation*: counters such
as "drop after N PDUs" and "every Nth submit_sm" count from the change, and "refuse binds for T s"
and "drop every T s" are timed from it.
"""

from __future__ import annotations

import random
import time

from .settings import Faults


class FaultState:
    __slots__ = (
        "_error_count",
        "_never_count",
        "_rng",
        "active",
        "generation",
        "next_drop",
        "refuse_until",
        "settings",
    )

    def __init__(self, settings: Faults | None = None, rng: random.Random | None = None):
        self._rng = rng or random.Random()
        self.generation = 0
        self.set(settings or Faults())

    def set(self, settings: Faults, now: float | None = None, keep: frozenset[str] = frozenset()) -> None:
        """Switch to ``settings``; the timers named in ``keep`` go on as they were."""
        now = time.monotonic() if now is None else now
        self.settings = settings
        self.generation += 1
        self._never_count = 0
        self._error_count = 0
        if "refuse_binds_for" not in keep:
            self.refuse_until = now + settings.refuse_binds_for if settings.refuse_binds_for else 0.0
        if "drop_every_seconds" not in keep:
            self.next_drop = now + settings.drop_every_seconds if settings.drop_every_seconds else None
        # faults that act on each submit_sm / response (checked on the hot path)
        self.active = bool(
            settings.response_delay[1]
            or settings.never_answer_fraction
            or settings.never_answer_every
            or settings.submit_error_status
        )

    def update(self, changes: dict, now: float | None = None) -> Faults:
        """Merge ``changes`` into the current switches (validated); returns the new switches."""
        merged = {**self.settings.model_dump(), **changes}
        new = Faults.model_validate(merged)
        keep = frozenset(k for k in ("refuse_binds_for", "drop_every_seconds") if k not in changes)
        self.set(new, now, keep)
        return new

    def any_on(self, now: float) -> bool:
        s = self.settings
        return bool(self.active or s.drop_after_pdus or s.drop_every_seconds or now < self.refuse_until)

    def refuse_bind(self, now: float) -> bool:
        return now < self.refuse_until

    def drop_now(self, pdus_in_generation: int) -> bool:
        limit = self.settings.drop_after_pdus
        return limit is not None and pdus_in_generation >= limit

    def drop_all_due(self, now: float) -> bool:
        if self.next_drop is None or now < self.next_drop:
            return False
        period = self.settings.drop_every_seconds or 1.0
        self.next_drop = max(self.next_drop + period, now + period / 2)
        return True

    def never_answer(self) -> bool:
        s = self.settings
        if s.never_answer_every:
            self._never_count += 1
            if self._never_count % s.never_answer_every == 0:
                return True
        return bool(s.never_answer_fraction) and self._rng.random() < s.never_answer_fraction

    def submit_error(self) -> int | None:
        s = self.settings
        if not s.submit_error_status:
            return None
        if s.submit_error_every:
            self._error_count += 1
            return s.submit_error_status if self._error_count % s.submit_error_every == 0 else None
        return s.submit_error_status

    def response_delay(self) -> float:
        low, high = self.settings.response_delay
        if high <= 0:
            return 0.0
        return low if low == high else self._rng.uniform(low, high)

    def as_dict(self, now: float | None = None) -> dict:
        now = time.monotonic() if now is None else now
        data = self.settings.model_dump()
        data["response_delay"] = list(data["response_delay"])
        data["refuse_binds_remaining"] = round(max(0.0, self.refuse_until - now), 3)
        data["generation"] = self.generation
        data["any_on"] = self.any_on(now)
        return data
