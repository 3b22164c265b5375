"""Small Prometheus text-format helpers (no dependency): a histogram and line rendering."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


class Histogram:
    __slots__ = ("buckets", "count", "counts", "sum")

    def __init__(self, buckets: Iterable[float] = LATENCY_BUCKETS):
        self.buckets = tuple(sorted(buckets))
        self.counts = [0] * (len(self.buckets) + 1)  # the last one is +Inf
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        if value != value:  # NaN
            return
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.count += 1
        self.sum += value

    def quantile(self, q: float) -> float:
        """An estimate (upper bound of the bucket holding the q-quantile)."""
        if not self.count:
            return math.nan
        rank = q * self.count
        seen = 0
        for bound, n in zip((*self.buckets, math.inf), self.counts, strict=True):
            seen += n
            if seen >= rank:
                return bound
        return math.inf

    def lines(self, name: str, labels: Mapping[str, str]) -> list[str]:
        out = []
        cumulative = 0
        for bound, n in zip((*self.buckets, math.inf), self.counts, strict=True):
            cumulative += n
            le = "+Inf" if bound == math.inf else _num(bound)
            out.append(sample(f"{name}_bucket", {**labels, "le": le}, cumulative))
        out.append(sample(f"{name}_sum", labels, self.sum))
        out.append(sample(f"{name}_count", labels, self.count))
        return out


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float | int | bool) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(round(value, 6))


def sample(name: str, labels: Mapping[str, str] | None, value: float | int | bool) -> str:
    if labels:
        inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        return f"{name}{{{inner}}} {_num(value)}"
    return f"{name} {_num(value)}"


class Exposition:
    """Collects metric families: one HELP/TYPE header per name, samples in order."""

    def __init__(self) -> None:
        self._families: dict[str, tuple[str, str, list[str]]] = {}

    def add(
        self, name: str, kind: str, help_text: str, value: float | int | bool, labels: Mapping | None = None
    ) -> None:
        self._family(name, kind, help_text).append(sample(name, labels, value))

    def histogram(self, name: str, help_text: str, hist: Histogram, labels: Mapping) -> None:
        self._family(name, "histogram", help_text).extend(hist.lines(name, labels))

    def _family(self, name: str, kind: str, help_text: str) -> list[str]:
        family = self._families.get(name)
        if family is None:
            family = self._families[name] = (kind, help_text, [])
        return family[2]

    def render(self) -> str:
        out = []
        for name, (kind, help_text, samples) in self._families.items():
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(samples)
        return "\n".join(out) + "\n"
