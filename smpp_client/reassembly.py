"""Collecting the parts of long messages that arrive from an SMSC, until each group is whole."""

from __future__ import annotations

from dataclasses import dataclass

from .concat import ConcatInfo, valid


@dataclass
class _Group:
    started: float
    parts: dict[int, bytes]


class Reassembler:
    """Collects parts of concatenated messages.

    ``key`` identifies the sender/recipient pair (e.g. ``(source_addr, destination_addr)``);
    parts are grouped by key, reference and total. A group is dropped ``timeout_seconds``
    after its first part, or when more than ``max_groups`` are pending (oldest first).
    """

    def __init__(self, timeout_seconds: float = 300.0, max_groups: int = 100_000):
        self.timeout_seconds = timeout_seconds
        self.max_groups = max_groups
        self._groups: dict[tuple, _Group] = {}

    def __len__(self) -> int:
        return len(self._groups)

    def add(self, key: tuple, info: ConcatInfo, payload: bytes, now: float) -> list[bytes] | None:
        """The part payloads in order once all have arrived, else None (duplicates are ignored)."""
        if valid(info) is None:
            raise ValueError(f"invalid concatenation info {info}")
        group_key = (key, info.reference, info.total)
        group = self._groups.get(group_key)
        if group is None or now - group.started >= self.timeout_seconds:
            self._groups.pop(group_key, None)
            group = self._groups[group_key] = _Group(now, {})
            while len(self._groups) > self.max_groups:
                del self._groups[next(iter(self._groups))]
        group.parts.setdefault(info.seq, payload)
        if len(group.parts) < info.total:
            return None
        del self._groups[group_key]
        return [group.parts[seq] for seq in range(1, info.total + 1)]

    def put_back(self, key: tuple, info: ConcatInfo, chunks: list[bytes], now: float) -> None:
        """Keep a completed group's parts but ``info.seq``'s, so that part sent again completes it."""
        for seq, chunk in enumerate(chunks, start=1):
            if seq != info.seq:
                self.add(key, ConcatInfo(info.reference, info.total, seq), chunk, now)

    def expire(self, now: float) -> list[tuple]:
        """Drop incomplete groups older than the timeout; returns their keys."""
        stale = [gk for gk, g in self._groups.items() if now - g.started >= self.timeout_seconds]
        for gk in stale:
            del self._groups[gk]
        return [gk[0] for gk in stale]
