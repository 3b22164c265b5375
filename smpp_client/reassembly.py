"""Collecting the parts of long messages that arrive from an SMSC, until each group is whole.

:class:`Reassembler` keeps them in memory (one process holding every bind). A :class:`PartStore`
keeps them where every process sharing a carrier's binds sees them (the application's database):
an SMSC spreads one message's parts over its binds, so with several processes each may get some.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .concat import ConcatInfo, valid

# (carrier, sender, destination): whose parts belong together, with a part's reference and total
GroupKey = tuple[str, str, str]


class PartStore(Protocol):
    """Durable parts of long messages, shared by the processes holding a carrier's binds."""

    async def add(self, key: GroupKey, info: ConcatInfo, payload: bytes) -> list[bytes] | None:
        """Store a part; the group's payloads in order once every part is there, else None.
        The part is acknowledged to the SMSC only after this returns (raises: it is resent)."""
        ...

    async def done(self, key: GroupKey, info: ConcatInfo) -> None:
        """The whole message was handled: its parts are forgotten."""
        ...


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
