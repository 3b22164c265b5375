"""What every CRM adapter is: something that turns a CRM's records into case events for the
intake service, on a schedule, keeping its own position in the database.

A :class:`PollingAdapter` runs :meth:`~PollingAdapter.cycle` every ``every_seconds`` (an
APScheduler interval job; one cycle at a time). A cycle holds the adapter's lease
(crm_adapter_state), so one process polls a CRM however many share the database; a failed cycle
spaces the next ones out (doubling, up to ``max_backoff_seconds``). Events are derived with
deterministic ids, so whatever a cycle repeats after a crash or a restart is a duplicate the
intake answers as before: nothing is missed (the position only moves once the events before it
were accepted) and nothing reaches a citizen twice.

Status callbacks to CRMs (the other direction) are in :mod:`crm_adapters.callbacks`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import structlog
from apscheduler.schedulers.base import BaseScheduler

from gateway import clock
from gateway.services.intake import IntakeResult
from gateway.store.db import Database

from . import state as store

log = structlog.get_logger("crm_adapters")

LEASE_SECONDS = 300.0  # renewed at every unit of work; a crashed holder's lease runs out
SUBMIT_CHUNK = 400  # requests whose events are submitted together (one group commit or a few)


class EventSink(Protocol):
    """The intake service (gateway.services.intake.IntakeService)."""

    async def accept(self, client_id: str, payload: dict, *, source: str) -> IntakeResult: ...


@dataclass(slots=True)
class CycleReport:
    """What one cycle did (logs, tests, the benchmark)."""

    adapter: str
    started_at: datetime
    seconds: float = 0.0
    skipped: str | None = None  # why the cycle did not run (lease held elsewhere)
    error: str | None = None
    queries: int = 0
    records: int = 0  # records read from the CRM
    new: int = 0  # requests seen for the first time
    changed: int = 0  # requests that changed
    accepted: int = 0  # events accepted by the intake
    duplicates: int = 0  # events it had already (a repeat: harmless)
    invalid: int = 0  # events it refused (logged with the field at fault)
    without_id: int = 0  # records without an id yet (ignored until they have one)
    unusable: int = 0  # records that cannot be followed (an id that cannot be a folio, bad dates)
    without_phone: int = 0  # requests whose citizen's number is not known
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and self.skipped is None


async def submit_chains(
    sink: EventSink,
    client_id: str,
    chains: Sequence[list[dict]],
    source: str,
    report: CycleReport,
) -> None:
    """Submit events: each chain (one request's events) in order, the chains together, so the
    intake's group commit takes them in few transactions. An event the intake refuses is logged
    and counted (it would be refused again); an exception (the database) propagates."""

    async def chain(events: list[dict]) -> None:
        for payload in events:
            result = await sink.accept(client_id, payload, source=source)
            if result.status == "accepted":
                report.accepted += 1
            elif result.status == "duplicate":
                report.duplicates += 1
            else:
                report.invalid += 1
                log.warning(
                    "CRM event refused by the intake",
                    source=source,
                    event_id=payload.get("id"),
                    status=result.status,
                    errors=[f"{f}: {reason}" for f, reason in result.errors],
                )

    for i in range(0, len(chains), SUBMIT_CHUNK):
        await asyncio.gather(*(chain(c) for c in chains[i : i + SUBMIT_CHUNK] if c))


class PollingAdapter(ABC):
    kind: str = ""

    def __init__(
        self,
        name: str,
        client_id: str,
        db: Database,
        sink: EventSink,
        *,
        every_seconds: float,
        max_backoff_seconds: float,
        owner: str,
        now: Callable[[], datetime] = clock.now,
    ):
        self.name = name
        self.client_id = client_id
        self.db = db
        self.sink = sink
        self.every_seconds = every_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.owner = owner
        self.now = now
        self.failures = 0
        self.not_before: datetime | None = None
        self.last_report: CycleReport | None = None
        self._task: asyncio.Task | None = None
        self._closed = False
        self._waiters: list[asyncio.Future] = []

    @property
    def job_id(self) -> str:
        return f"crm-adapter-{self.name}"

    def install(self, scheduler: BaseScheduler, first_run: datetime | None = None) -> None:
        """An interval job every ``every_seconds``; the first run at ``first_run`` (default now)."""
        scheduler.add_job(
            self.run_scheduled,
            "interval",
            seconds=self.every_seconds,
            id=self.job_id,
            max_instances=1,
            coalesce=True,
            next_run_time=first_run or datetime.now().astimezone(),
            replace_existing=True,
        )

    async def run_scheduled(self) -> None:
        if self.not_before is not None and self.now() < self.not_before:
            return  # backing off after failures
        await self.poll_once()

    async def poll_once(self) -> CycleReport:
        """One cycle now (the job's body; tests call it directly)."""
        if self._closed:
            return CycleReport(self.name, self.now(), skipped="stopped")
        if self._task is not None and not self._task.done():
            return await asyncio.shield(self._task)
        self._task = asyncio.create_task(self._cycle_task(), name=self.job_id)
        return await asyncio.shield(self._task)

    async def next_cycle(self, timeout: float) -> CycleReport:
        """The report of the next cycle to finish (tests)."""
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        return await asyncio.wait_for(future, timeout)

    async def close(self) -> None:
        self._closed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _cycle_task(self) -> CycleReport:
        started, now = time.perf_counter(), self.now()
        report = CycleReport(self.name, now)
        held = await self.db.run(
            store.claim,
            self.name,
            self.kind,
            self.client_id,
            self.owner,
            LEASE_SECONDS,
            now,
            self.initial_cursor(now),
        )
        if held is None:
            report.skipped = "another process holds this adapter's lease"
            return self._done(report, started)
        try:
            await self.cycle(held, report)
        except asyncio.CancelledError:  # stopping: the next process starts where this one got to
            with contextlib.suppress(Exception):
                await asyncio.shield(self.db.run(store.release, self.name, self.owner))
            raise
        except Exception as exc:
            report.error = f"{type(exc).__name__}: {exc}"
            log.warning("CRM adapter cycle failed", adapter=self.name, error=report.error)
        self.failures = await self.db.run(
            store.finish, self.name, self.owner, report.error, self.clock_offset(), self.now()
        )
        if self.failures:
            delay = min(self.every_seconds * 2 ** (self.failures - 1), self.max_backoff_seconds)
            self.not_before = self.now() + timedelta(seconds=delay)
        else:
            self.not_before = None
        return self._done(report, started)

    def _done(self, report: CycleReport, started: float) -> CycleReport:
        report.seconds = time.perf_counter() - started
        self.last_report = report
        if report.accepted or report.invalid or report.error:
            log.info(
                "CRM adapter cycle",
                adapter=self.name,
                seconds=round(report.seconds, 3),
                records=report.records,
                new=report.new,
                changed=report.changed,
                accepted=report.accepted,
                invalid=report.invalid,
                without_phone=report.without_phone,
                error=report.error,
            )
        waiters, self._waiters = self._waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(report)
        return report

    async def save_cursor(self, cursor: dict) -> None:
        """Write the position reached (and renew the lease)."""
        until = self.now() + timedelta(seconds=LEASE_SECONDS)
        await self.db.run(store.save_cursor, self.name, self.owner, dict(cursor), self.clock_offset(), until)

    # --- what each kind defines ----------------------------------------------------------------

    @abstractmethod
    def initial_cursor(self, now: datetime) -> dict:
        """The position of an adapter that never ran."""

    @abstractmethod
    async def cycle(self, held: store.AdapterState, report: CycleReport) -> None:
        """Read the CRM from ``held.cursor``, submit the events, save the cursor as it moves."""

    def clock_offset(self) -> float | None:
        """The CRM's clock minus ours, when known."""
        return None
