"""A carrier's counters (``GET /sim/stats``) and its submit rate over the last seconds."""

from __future__ import annotations

from collections import deque


class Stats:
    FIELDS = (
        "binds_ok",
        "binds_refused",
        "bind_timeouts",
        "connections_refused",
        "submit_sm",
        "submitted",
        "throttled",
        "window_full",
        "msgqfull",
        "submit_errors",
        "unanswered",
        "invalid_destination",
        "receipts_sent",
        "receipts_acked",
        "deliver_sm_resent",
        "deliver_sm_failed",
        "deliver_sm_nacked",
        "mo_parts_sent",
        "mo_parts_acked",
        "queries",
        "cancels",
        "enquire_links",
        "bad_pdus",
        "generic_nacks_sent",
        "links_dropped",
    )
    RATE_SECONDS = 10

    def __init__(self) -> None:
        for name in self.FIELDS:
            setattr(self, name, 0)
        self._sec = 0
        self._count = 0
        self._history: deque[tuple[int, int]] = deque(maxlen=self.RATE_SECONDS)

    def tick_submit(self, now: float) -> None:
        sec = int(now)
        if sec != self._sec:
            if self._count:
                self._history.append((self._sec, self._count))
            self._sec = sec
            self._count = 0
        self._count += 1

    def rates(self, now: float) -> tuple[float, float]:
        """(submits in the last whole second, average per second over the last 10 seconds)."""
        sec = int(now)
        history = list(self._history)
        if self._sec < sec and self._count:
            history.append((self._sec, self._count))
        last = sum(count for s, count in history if s == sec - 1)
        recent = sum(count for s, count in history if sec - self.RATE_SECONDS <= s < sec)
        return float(last), recent / self.RATE_SECONDS

    def as_dict(self, now: float) -> dict:
        data = {name: getattr(self, name) for name in self.FIELDS}
        last, avg = self.rates(now)
        data["submits_per_second"] = last
        data["submits_per_second_10s"] = avg
        return data
