"""Several dispatch processes on one database: membership, takeover, and the carriers' binds shared.

Every ``heartbeat_seconds`` a round, in one transaction: this process renews its heartbeat; takes
over any process whose heartbeat is older than ``stale_seconds`` (its leased messages queued again
at once without counting an attempt, its bind slots freed: :mod:`gateway.store.processes`); reads
the live processes; and for each carrier computes this process's share of the binds (``binds``
split evenly in the live processes' order, the remainder spread from a different process for each
carrier) and takes free slots up to it. After the round it opens the binds of the slots it took and
gives up those over its share: the bind first, then the slot, so two processes never hold one
bind at once and a joining process waits the second or two the others take to let go. Each
carrier sends at ``tps * held / binds``: the rate is lowered before a slot is given up and raised
after one is taken, so the sum over the processes never exceeds the carrier's limit.

A process that finds its row gone (it was taken for dead: a long pause, the database away) closes
the binds it no longer holds at once; its late write-backs are refused by the lease owner check.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from gateway import clock
from gateway.store import processes
from gateway.store.db import Database
from smpp_client.pool import CarrierPool

log = structlog.get_logger("scheduler")


def share(binds: int, members: int, rank: int) -> int:
    """The binds of a carrier the process at ``rank`` (0..members-1) holds."""
    if members <= 0:
        return 0
    return binds // members + (1 if rank < binds % members else 0)


@dataclass(slots=True)
class _Plan:
    alive: bool  # False: this process had been taken for dead
    members: int
    targets: dict[str, int]  # carrier -> slots this process should hold
    held: dict[str, set[int]]  # carrier -> slots held in the database after the round
    release: dict[str, list[int]] = field(default_factory=dict)  # carrier -> slots over the share
    taken_over: processes.TakenOver | None = None


class Membership:
    def __init__(
        self,
        db: Database,
        pool: CarrierPool,
        member_id: str,
        role: str,
        *,
        heartbeat_seconds: float = 1.0,
        stale_seconds: float = 5.0,
        on_taken_over: Callable[[], None] = lambda: None,
        now: Callable[[], datetime] = clock.utcnow,
        alone: bool = False,
    ):
        """``alone``: the only dispatch process the database allows (SQLite): any other registered
        is a predecessor that died, taken over at start without waiting for its staleness."""
        self.db = db
        self.pool = pool
        self.member = processes.Member(member_id, role, socket.gethostname()[:255], os.getpid())
        self.heartbeat_seconds = heartbeat_seconds
        self.stale_seconds = stale_seconds
        # a bind given up waits this long for its answers in flight: well inside the staleness
        self.close_seconds = max(0.2, min(2.0, stale_seconds / 4))
        self.on_taken_over = on_taken_over
        self.now = now
        self.alone = alone
        self._binds = {name: c.config.binds for name, c in pool.carriers.items()}
        self._targets: dict[str, int] = {}
        self._task: asyncio.Task | None = None
        self._stopping = asyncio.Event()
        self._rounds = 0
        self._failing = 0
        self.members = 0  # live dispatch processes at the last round
        self.taken_over = 0  # dead processes this one took over

    @property
    def id(self) -> str:
        return self.member.id

    async def start(self) -> None:
        """Register and hold this process's share of the binds before anything is dispatched."""
        try:
            await self.round()
        except Exception:
            log.exception("cluster round failed; retrying")
        self._task = asyncio.create_task(self._run(), name="cluster")

    async def stop(self) -> None:
        """No more rounds (the one running ends first: its database work is never left behind)."""
        self._stopping.set()
        if self._task is not None:
            task, self._task = self._task, None
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                task.cancel()
                raise

    async def leave(self) -> None:
        """At shutdown, after the binds closed and the status writer stopped: the row and slots go,
        and what this process still has leased is queued again at once."""
        given_back = await self.db.run(processes.leave, self.member.id)
        if given_back:
            log.info("leased messages given back at shutdown", count=given_back)

    def problem(self) -> str | None:
        """Why this process does not hold its binds (for /readyz), or None."""
        if not self._rounds:
            return "has not joined the cluster yet"
        if self._failing >= 3:
            return f"{self._failing} cluster rounds in a row failed"
        missing = []
        for name, carrier in self.pool.carriers.items():
            target = self._targets.get(name, 0)
            if len(carrier.slots) < target:
                missing.append(f"{name}: {len(carrier.slots)} of {target} binds held")
                continue
            for slot in carrier.slots:
                first = slot * (len(carrier.sessions) // max(1, carrier.config.binds))
                if not carrier.sessions[first].is_bound:
                    missing.append(f"{name}: bind {slot} not bound")
        if not any(self._targets.values()):
            return f"holds no bind: {self.members} processes share the carriers' binds"
        return "; ".join(missing) or None

    async def _run(self) -> None:
        renewed = time.monotonic()
        fenced = False
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.heartbeat_seconds)
            if self._stopping.is_set():
                return
            try:
                await self.round()
                self._failing, renewed, fenced = 0, time.monotonic(), False
            except asyncio.CancelledError:
                raise
            except Exception:
                self._failing += 1
                if self._failing == 1:
                    log.exception("cluster round failed; retrying")
                if not self.alone and not fenced and time.monotonic() - renewed >= self.stale_seconds * 0.8:
                    fenced = True  # the others are about to take this process for dead
                    await self._fence()

    async def _fence(self) -> None:
        """No heartbeat renewed for most of the staleness: close every bind before the others take
        the slots over, so the SMSC never sees more binds than configured. The next round that
        reaches the database opens again what this process still holds."""
        log.warning("heartbeat not renewed: binds closed until the database answers")
        for carrier in self.pool.carriers.values():
            for slot in sorted(carrier.slots):
                await carrier.close_slot(slot, self.close_seconds)

    async def round(self) -> None:
        """One heartbeat: renew, take over the dead, take or give up bind slots to the share."""
        now = self.now()
        plan = await self.db.run(self._plan, now, now - timedelta(seconds=self.stale_seconds))
        self._rounds += 1
        self.members = plan.members
        if plan.taken_over is not None and plan.taken_over.processes:
            self.taken_over += len(plan.taken_over.processes)
            log.warning(
                "dead processes taken over",
                processes=plan.taken_over.processes,
                messages=plan.taken_over.messages,
            )
            self.on_taken_over()
        if not plan.alive and self._rounds > 1:
            log.warning("this process had been taken for dead; its binds are shared again")
        self._targets = plan.targets
        for name, carrier in self.pool.carriers.items():
            binds = self._binds[name]
            held = plan.held.get(name, set())
            for slot in sorted(carrier.slots - held):  # not ours any more (taken for dead)
                await carrier.close_slot(slot, self.close_seconds)
            over = plan.release.get(name, [])
            kept = held - set(over)
            if kept:
                carrier.share_rate(len(kept) / binds)  # raised after taking, lowered before giving up
            for slot in sorted(kept - carrier.slots):
                carrier.open_slot(slot)
                log.info("bind slot taken", carrier=name, slot=slot, members=plan.members)
            for slot in over:
                await carrier.close_slot(slot, self.close_seconds)
            if over:
                await self.db.run(processes.release_slots, self.member.id, name, over)
                log.info("bind slots given up to another process", carrier=name, slots=over)

    def _plan(self, conn, now: datetime, stale_before: datetime) -> _Plan:
        alive = processes.beat(conn, self.member, now)
        if self.alone and not self._rounds:
            stale_before = now + timedelta(days=1)  # everyone but this process
        taken = processes.take_over_dead(conn, stale_before, keep=self.member.id)
        processes.free_orphans(conn)
        members = processes.members(conn, now - timedelta(seconds=self.stale_seconds))
        rank = members.index(self.member.id) if self.member.id in members else 0
        held = processes.held(conn, self.member.id)
        targets: dict[str, int] = {}
        release: dict[str, list[int]] = {}
        for k, (name, binds) in enumerate(self._binds.items()):
            processes.ensure_slots(conn, name, binds)
            target = share(binds, len(members), (rank - k) % max(1, len(members)))
            targets[name] = target
            mine = {slot for slot in held.get(name, set()) if slot < binds}
            if len(mine) > target:
                release[name] = sorted(mine)[target:]
            elif len(mine) < target:
                mine.update(processes.claim_slots(conn, self.member.id, name, binds, target - len(mine), now))
            held[name] = mine
        return _Plan(alive, len(members), targets, held, release, taken)
