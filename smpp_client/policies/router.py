"""Which carrier a message goes to, and which ones next if it cannot.

Rules, first match wins:

1. the ported-numbers table (a CSV ``msisdn,carrier``; Mexico ports a number in 24 h, so a
   number's series says little about its carrier), reloaded when the file changes;
2. the longest configured number prefix (E.164 digits without '+': ``5255`` = +52 55…);
3. weights: the carriers with a weight share the rest of the traffic in proportion (smooth
   weighted round robin: deterministic, evenly interleaved);
4. without weights, the carriers in configured order: the first takes everything.

The chosen carrier comes first; the other carriers follow (configured order) for failover, when
failover is on. That is :class:`RuleRouter`, the default :class:`Router` of the pool.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import structlog

log = structlog.get_logger("smpp_client")


class RoutingError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class PrefixRule:
    prefix: str
    carrier: str


def _digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


def _number_key(number: str) -> str:
    """The lookup key of a number in the ported table: its last ten digits (the national number)."""
    return _digits(number)[-10:]


def load_ported(path: str | Path, carriers: Iterable[str]) -> dict[str, str]:
    """Read ``msisdn,carrier`` rows (a header row and ``#`` comments are skipped).

    A row naming an unknown carrier or with fewer than ten digits is reported and skipped.
    """
    known = set(carriers)
    table: dict[str, str] = {}
    bad = 0
    with open(path, newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
                continue
            if len(row) < 2:
                bad += 1
                continue
            number, carrier = row[0].strip(), row[1].strip()
            if line_no == 1 and not _digits(number):
                continue  # header
            if len(_digits(number)) < 10 or carrier not in known:
                bad += 1
                if bad <= 5:
                    log.warning("ported numbers: bad row skipped", line=line_no, carrier=carrier)
                continue
            table[_number_key(number)] = carrier
    if bad:
        log.warning("ported numbers: rows skipped", count=bad, path=str(path))
    return table


class Router(Protocol):
    # seconds between calls of refresh() while the pool runs; None: never
    refresh_seconds: float | None
    failover: bool  # whether other carriers may take a message its first choice cannot

    def first_choice(self, msisdn: str) -> str:
        """The carrier a message to ``msisdn`` goes to (when it can take it)."""
        ...

    def candidates(self, msisdn: str, first: str | None = None) -> Sequence[str]:
        """Carriers to try for ``msisdn``, in order (the first that can take it gets it); ``first``:
        the carrier it was routed to already."""
        ...

    def refresh(self) -> bool:
        """Re-read what may have changed outside (a file); True when something did."""
        ...


class RuleRouter:
    def __init__(
        self,
        carrier_names: list[str],
        prefixes: Iterable[PrefixRule | tuple[str, str]] = (),
        weights: Mapping[str, float] | None = None,
        ported_path: str | Path | None = None,
        failover: bool = True,
        ported_reload_seconds: float = 60.0,
    ):
        self.carrier_names = list(carrier_names)
        known = self._known = frozenset(self.carrier_names)
        rules = [r if isinstance(r, PrefixRule) else PrefixRule(*r) for r in prefixes]
        for rule in rules:
            if rule.carrier not in known:
                raise RoutingError(f"prefix {rule.prefix}: unknown carrier {rule.carrier!r}")
        self.prefixes = {_digits(r.prefix): r.carrier for r in rules}
        self._prefix_lengths = sorted({len(p) for p in self.prefixes}, reverse=True)
        weights = {name: float(w) for name, w in (weights or {}).items() if w > 0}
        for name in weights:
            if name not in known:
                raise RoutingError(f"weights: unknown carrier {name!r}")
        self.weights = weights
        self._current = dict.fromkeys(weights, 0.0)
        self._total_weight = sum(weights.values())
        self.failover = failover
        self.ported_path = Path(ported_path) if ported_path else None
        self.refresh_seconds = ported_reload_seconds if self.ported_path is not None else None
        self.ported: dict[str, str] = {}
        self._ported_mtime: float | None = None
        if self.ported_path is not None:
            self.reload_ported()
        self._order_cache: dict[str, list[str]] = {}

    # --- the ported-numbers table ----------------------------------------------------------------

    def reload_ported(self) -> int:
        """(Re)read the ported-numbers file; returns its number of entries."""
        if self.ported_path is None:
            return 0
        self.ported = load_ported(self.ported_path, self.carrier_names)
        self._ported_mtime = os.stat(self.ported_path).st_mtime
        log.info("ported numbers loaded", entries=len(self.ported), path=str(self.ported_path))
        return len(self.ported)

    def refresh(self) -> bool:
        """Reload when the file's modification time changed; a missing file keeps the old table."""
        if self.ported_path is None:
            return False
        try:
            mtime = os.stat(self.ported_path).st_mtime
        except OSError as exc:
            log.warning("ported numbers file unreadable; keeping the loaded table", error=str(exc))
            return False
        if mtime == self._ported_mtime:
            return False
        try:
            self.reload_ported()
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            log.warning("ported numbers reload failed; keeping the loaded table", error=str(exc))
            return False
        return True

    # --- choosing --------------------------------------------------------------------------------

    def primary(self, msisdn: str) -> tuple[str, str]:
        """(carrier, the rule that chose it: "ported", "prefix", "weight" or "order")."""
        if self.ported:
            carrier = self.ported.get(_number_key(msisdn))
            if carrier is not None:
                return carrier, "ported"
        if self.prefixes:
            digits = _digits(msisdn)
            for length in self._prefix_lengths:
                carrier = self.prefixes.get(digits[:length])
                if carrier is not None:
                    return carrier, "prefix"
        if self.weights:
            return self._weighted(), "weight"
        return self.carrier_names[0], "order"

    def _weighted(self) -> str:
        current = self._current
        best = None
        for name, weight in self.weights.items():
            current[name] += weight
            if best is None or current[name] > current[best]:
                best = name
        current[best] -= self._total_weight
        return best

    def first_choice(self, msisdn: str) -> str:
        return self.primary(msisdn)[0]

    def candidates(self, msisdn: str, first: str | None = None) -> list[str]:
        """Carriers to try, in order: the chosen one, then the others if failover is on."""
        if first is None or first not in self._known:
            first, _ = self.primary(msisdn)
        if not self.failover:
            return [first]
        order = self._order_cache.get(first)
        if order is None:
            order = self._order_cache[first] = [first] + [c for c in self.carrier_names if c != first]
        return order
