"""Batches status changes (submit results, receipts) into few transactions, in arrival order.

:meth:`StatusWriter.post` queues a change with an optional future resolved once it is committed (a
receipt's deliver_sm_resp goes out then: a receipt is acknowledged to the SMSC only after it is
stored); :meth:`StatusWriter.put` awaits the commit. While one batch is being written the next
accumulates, so under load the batch size follows the load. A trickle (a carrier at its speed
limit, receipts coming one by one) lingers up to ``linger_seconds`` until ``linger_batch`` changes
wait, so it is written in batches too; a change marked urgent (a receipt whose SMSC may be waiting
for answers: it has as many deliveries unanswered as it ever had) ends the linger at once.

A receipt that matches no open part yet (SMSCs may send the receipt before the submit_sm_resp is
recorded; a multi-part message is recorded once its last part is answered; while a carrier's id
relation is being learned a receipt may be ambiguous) is kept in memory as an *orphan*: it is
tried again after every following batch, and at least every 0.2 s, for ``orphan_seconds``, then
given up: counted and logged as an unknown id, a duplicate (only final parts have it) or ambiguous.
Its acknowledgement waits until it is stored, or ``orphan_ack_seconds`` at most (an SMSC resends
an unanswered deliver_sm), so a crash loses no receipt that the missing submit result was about
to match. At most ``max_orphans`` are held (each is tried again with every batch): beyond them
the oldest are given up at once, so an SMSC sending receipts for ids never sent cannot make
every batch heavier.

What cannot be stored never stops the writer:

- A batch the database refuses for one of its rows (a data or integrity error, or an error
  building a statement from a change) is split in halves, recursively, until the bad change is
  alone; it is set aside with its reason (logged, counted by kind in ``set_aside``; a receipt is
  acknowledged, so the SMSC does not resend it for ever) and the rest is stored. A set-aside
  submit result leaves its message leased and queued: it is sent again when the lease ends.
- Any other failure (the database down or locked, a broken schema) is the database's, not a
  row's: the batch goes back to the front of the queue and is retried with backoff (0.5 s doubling
  to 5 s). After ``unhealthy_after`` such batches in a row :meth:`problem` names it (``/readyz``).
- :meth:`stop` writes what it can within its timeout, then ends whatever the database does and
  logs the counts of what was left unwritten. Unwritten submit results leave their rows leased and
  queued, so those messages are sent again later (possibly twice, never lost).

Over 400 lines: batching, orphans and bisection are one loop's states and stay together.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc

from smpp_client.message_ids import ReceiptIdRelations, Relation
from smpp_client.metrics import Histogram

from . import outbox
from .db import Database
from .receipt_matching import apply_receipts

log = structlog.get_logger("store")

Change = outbox.Submitted | outbox.Retry | outbox.Failed | outbox.ReceiptUpdate
Stored = asyncio.Future  # resolved (None) once its change is committed, or set aside

_ORPHAN_RETRY_SECONDS = 0.2
_BACKOFF_MIN, _BACKOFF_MAX = 0.5, 5.0
_KIND = {
    outbox.Submitted: "submitted",
    outbox.Retry: "retry",
    outbox.Failed: "failed",
    outbox.ReceiptUpdate: "receipt",
}
_GIVE_UP_REASONS = {
    "unknown": "receipts for no known message id",
    "final_only": "receipts naming only parts already final (duplicates)",
    "ambiguous": "receipts ambiguous between hex and decimal ids (set the carrier's receipt_ids)",
}


@dataclass(slots=True)
class _Orphan:
    receipt: outbox.ReceiptUpdate
    give_up_at: float
    ack: Stored | None = None  # the held acknowledgement
    ack_at: float = 0.0

    def acknowledge(self) -> None:
        ack, self.ack = self.ack, None
        if ack is not None:
            _resolve(ack)


@dataclass(slots=True)
class _Item:
    """One change of a batch: a new one with its future, or an orphan tried again."""

    change: Change
    stored: Stored | None = None
    orphan: _Orphan | None = None


class _Unavailable(Exception):
    """The database refused a batch for a reason that is not one of its rows."""

    def __init__(self, cause: BaseException):
        super().__init__(str(cause))
        self.cause = cause


def _resolve(stored: Stored) -> None:
    if not stored.done():
        stored.set_result(None)


def _row_fault(exc: BaseException) -> bool:
    """True when ``exc`` blames the rows written, not the database: worth splitting the batch."""
    if isinstance(exc, (sa_exc.DataError, sa_exc.IntegrityError)):
        return True
    if isinstance(exc, sa_exc.DBAPIError):  # operational, programming, internal…: the database's
        return False
    if isinstance(exc, sa_exc.StatementError):  # a value that could not be bound
        return True
    return not isinstance(exc, sa_exc.SQLAlchemyError)  # our own code failed on this change


def _reason(exc: BaseException) -> str:
    """A short, value-free account of an error (a driver's first line, never the parameters)."""
    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first}"[:200]


# in the batch's transaction, after its changes: what else they owe (the CRMs' callbacks)
InTransaction = Callable[[Connection, list[Change]], None]
# after the commit: who wants to know (wake-ups, dashboards)
AfterCommit = Callable[[list[Change]], None]


def _apply(
    conn,
    changes: list[Change],
    relations: dict[str, Relation],
    hooks: Sequence[InTransaction],
    owner: str | None,
) -> list[outbox.ReceiptUpdate]:
    """Apply in order, grouping consecutive changes of one kind into one statement batch; submit
    results, retries and failures only where ``owner`` still holds the lease (when given)."""
    unmatched: list[outbox.ReceiptUpdate] = []
    appliers = {
        outbox.Submitted: outbox.apply_submitted,
        outbox.Retry: outbox.apply_retries,
        outbox.Failed: outbox.apply_failures,
    }
    run: list[Change] = []
    for change in [*changes, None]:
        if run and (change is None or type(change) is not type(run[0])):
            kind = type(run[0])
            if kind is outbox.ReceiptUpdate:
                unmatched += apply_receipts(conn, run, relations)
            else:
                appliers[kind](conn, run, owner)
            run = []
        if change is not None:
            run.append(change)
    for hook in hooks:
        hook(conn, changes)
    return unmatched


class StatusWriter:
    def __init__(
        self,
        db: Database,
        max_batch: int = 5000,
        orphan_seconds: float = 30.0,
        orphan_ack_seconds: float = 5.0,
        receipt_ids: ReceiptIdRelations | None = None,
        unhealthy_after: int = 3,
        *,
        max_orphans: int = 10_000,
        in_transaction: Sequence[InTransaction] = (),
        after_commit: Sequence[AfterCommit] = (),
        linger_seconds: float = 0.1,
        linger_batch: int = 200,
        owner: str | None = None,
    ):
        """``owner``: the lease token of this process's claims; a submit result, retry or failure
        changes a message only while its lease is still this owner's (None: not checked)."""
        self.db = db
        self.owner = owner
        self.max_batch = max_batch
        self.orphan_seconds = orphan_seconds
        self.orphan_ack_seconds = orphan_ack_seconds
        self.max_orphans = max_orphans
        self.receipt_ids = receipt_ids or ReceiptIdRelations()
        self.unhealthy_after = unhealthy_after
        self.in_transaction = tuple(in_transaction)
        self.after_commit = tuple(after_commit)
        self.linger_seconds = linger_seconds
        self.linger_batch = linger_batch
        self._queue: list[tuple[Change, Stored | None]] = []
        self._wakeup = asyncio.Event()
        self._urgent = False  # a change whose sender waits for its commit to send more
        self._enough = asyncio.Event()  # while lingering: urgent, or a batch worth writing
        self._stop_requested = asyncio.Event()
        self._orphans: list[_Orphan] = []
        self._task: asyncio.Task | None = None
        self._committed_event = asyncio.Event()
        self._attempted_event = asyncio.Event()
        self._one_batch = asyncio.Lock()  # batches are written one after the other, in order
        self._stopping = False
        # numbers for /metrics
        self.batches = 0
        self.changes_written = 0
        self.receipts_matched: dict[str, int] = {}
        self.receipts_unknown: dict[str, int] = {}
        self.receipts_final_only: dict[str, int] = {}
        self.receipts_ambiguous: dict[str, int] = {}
        self.orphans_retried = 0
        self.receipt_latency: dict[str, Histogram] = {}
        self.failures = 0  # batches the database refused as a whole
        self.failing_batches = 0  # of those, in a row (0 after any commit)
        self.last_failure: str | None = None
        self.set_aside: Counter[str] = Counter()  # changes that could not be stored, by kind

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="status-writer")

    async def stop(self, timeout: float | None = None) -> bool:
        """Write everything queued, then end; True when nothing was left unwritten.

        With a ``timeout``, the writer ends when it runs out even if the database never answers
        (a batch in the database thread then finishes or fails there, unobserved), and what is
        left is logged as counts.
        """
        if self._task is None:
            return not self._queue
        self._stopping = True
        self._stop_requested.set()
        self._enough.set()
        self._wakeup.set()
        task, self._task = self._task, None
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        except asyncio.CancelledError:
            if not task.done():
                raise
        left = self.unwritten()
        if left:
            log.error("status changes not written at shutdown", **left)
        return not left

    def unwritten(self) -> dict[str, int]:
        """What is queued or held, by kind (for the shutdown report)."""
        counts = Counter(_KIND[type(change)] for change, _ in self._queue)
        if self._orphans:
            counts["held_receipts"] = len(self._orphans)
        return dict(counts)

    @property
    def backlog(self) -> int:
        return len(self._queue)

    @property
    def orphans(self) -> int:
        return len(self._orphans)

    def problem(self) -> str | None:
        """Why the writer is not healthy (batches failing in a row), or None."""
        if self.failing_batches < self.unhealthy_after:
            return None
        return f"{self.failing_batches} batches in a row could not be written ({self.last_failure})"

    def post(self, change: Change, stored: Stored | None = None, urgent: bool = False) -> None:
        """Queue a change; ``stored`` is resolved once it is committed (or set aside). ``urgent``:
        someone waits for this commit before sending more (a receipt from an SMSC that waits for
        each answer): it is written at once, not after the linger."""
        queue = self._queue
        queue.append((change, stored))
        self._wakeup.set()
        if urgent:
            self._urgent = True
            self._enough.set()
        elif len(queue) >= self.linger_batch:
            self._enough.set()

    async def put(self, change: Change) -> None:
        """Queue a change and wait until it is committed."""
        stored = asyncio.get_running_loop().create_future()
        self.post(change, stored)
        await stored

    async def flush(self) -> None:
        """Write what is queued now, here (one batch at a time with the running writer)."""
        while self._queue:
            async with self._one_batch:
                await self._flush_once()

    def next_commit(self) -> Coroutine[Any, Any, bool]:
        """Awaitable for the next committed batch; bound at call time, so no commit slips between."""
        return self._committed_event.wait()

    def next_attempt(self) -> Coroutine[Any, Any, bool]:
        """Awaitable for the end of the next write attempt, committed or refused."""
        return self._attempted_event.wait()

    def _attempted(self) -> None:
        self._attempted_event.set()
        self._attempted_event = asyncio.Event()

    # --- the loop -----------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = _BACKOFF_MIN
        while True:
            if not self._queue:
                if self._stopping:
                    await self._last_try_of_orphans()
                    return
                self._wakeup.clear()
                if self._orphans:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), _ORPHAN_RETRY_SECONDS)
                else:
                    await self._wakeup.wait()
            await self._linger()
            try:
                async with self._one_batch:
                    await self._flush_once()
            except _Unavailable as exc:
                self._failed(exc.cause, backoff)
                self._attempted()
                if self._stopping:
                    return  # stop() reports what is left
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop_requested.wait(), backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            except Exception:  # a bug: never end the writer
                log.exception("status writer error")
            self._attempted()
            backoff = _BACKOFF_MIN

    async def _linger(self) -> None:
        """A few changes only, none urgent: wait a little for more, so a trickle (a carrier at its
        speed limit, receipts sent one by one) is written in batches, not a transaction each."""
        if self._urgent or self._stopping or not self.linger_seconds or len(self._queue) >= self.linger_batch:
            self._urgent = False
            return
        self._enough.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._enough.wait(), self.linger_seconds)
        self._urgent = False

    async def _last_try_of_orphans(self) -> None:
        """At shutdown: one more try for the held receipts; the rest are reported, not acknowledged
        (the SMSC sends them again to the next run)."""
        if not self._orphans:
            return
        for orphan in self._orphans:
            orphan.give_up_at = 0.0
        with contextlib.suppress(Exception):
            async with self._one_batch:
                await self._flush_once()

    def _failed(self, cause: BaseException, backoff: float) -> None:
        self.failures += 1
        self.failing_batches += 1
        self.last_failure = _reason(cause)
        if self.failing_batches == 1:
            log.error("status batch could not be written; retrying", error=self.last_failure, exc_info=cause)
        else:
            log.warning(
                "status batch could not be written again",
                error=self.last_failure,
                in_a_row=self.failing_batches,
                backlog=self.backlog,
                retry_in=backoff,
            )

    async def _flush_once(self) -> None:
        batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        orphans, self._orphans = self._orphans, []
        now = time.monotonic()
        excess = len(orphans) - self.max_orphans
        if excess > 0:  # the oldest are given up now
            for orphan in sorted(orphans, key=lambda o: o.give_up_at)[:excess]:
                orphan.give_up_at = now
        # orphans after the new changes: the submit results they wait for may be among them
        items = [_Item(change, stored) for change, stored in batch]
        for orphan in orphans:
            orphan.receipt.last_try = now >= orphan.give_up_at
            items.append(_Item(orphan.receipt, None, orphan))
        if items:
            await self._store(items)

    async def _store(self, items: list[_Item]) -> None:
        """Write ``items`` in order; a batch refused for a row is split until that row is alone."""
        relations = self.receipt_ids.snapshot()
        todo: deque[list[_Item]] = deque([items])
        while todo:
            chunk = todo.popleft()
            try:
                changes = [item.change for item in chunk]
                unmatched = await self.db.run(_apply, changes, relations, self.in_transaction, self.owner)
            except asyncio.CancelledError:
                self._put_back([*chunk, *(item for rest in todo for item in rest)])
                raise
            except Exception as exc:
                if not _row_fault(exc):
                    self._put_back([*chunk, *(item for rest in todo for item in rest)])
                    raise _Unavailable(exc) from exc
                if len(chunk) > 1:
                    half = len(chunk) // 2
                    todo.extendleft((chunk[half:], chunk[:half]))  # the first half first
                    continue
                self._set_aside(chunk[0], exc)
                continue
            try:
                self._committed(chunk, unmatched)
            except Exception:  # a bug in the bookkeeping must not lose the rest of the batch
                log.exception("status writer error after a commit")

    def _put_back(self, items: list[_Item]) -> None:
        self._queue[:0] = [(item.change, item.stored) for item in items if item.orphan is None]
        self._orphans[:0] = [item.orphan for item in items if item.orphan is not None]

    def _set_aside(self, item: _Item, exc: BaseException) -> None:
        change = item.change
        kind = _KIND[type(change)]
        self.set_aside[kind] += 1
        if isinstance(change, outbox.ReceiptUpdate):
            change.matched = False
            change.message_status = None
            where = {"carrier": change.carrier, "smsc_id": change.smsc_id}
        else:
            if isinstance(change, (outbox.Submitted, outbox.Failed)):
                change.applied = False
            where = {"message_id": change.message_id}
        log.error("status change set aside: it cannot be stored", kind=kind, reason=_reason(exc), **where)
        if item.orphan is not None:
            item.orphan.acknowledge()
        elif item.stored is not None:
            _resolve(item.stored)  # a receipt is acknowledged: the SMSC must not resend it

    # --- after a commit -----------------------------------------------------------------------

    def _committed(self, chunk: list[_Item], unmatched: list[outbox.ReceiptUpdate]) -> None:
        self.batches += 1
        self.failing_batches = 0
        now = time.monotonic()
        held = {id(r) for r in unmatched}
        given_up: dict[tuple[str, str], list[str]] = {}
        for item in chunk:
            change = item.change
            if item.orphan is None:
                self.changes_written += 1
            else:
                self.orphans_retried += 1
            if type(change) is not outbox.ReceiptUpdate:
                if item.stored is not None:
                    _resolve(item.stored)
                continue
            if id(change) in held:
                self._hold(item, now, given_up)
                continue
            if change.matched:
                self._count_match(change)
            if item.orphan is not None:
                item.orphan.acknowledge()
            elif item.stored is not None:
                _resolve(item.stored)
        for (carrier, reason), ids in given_up.items():
            log.warning(_GIVE_UP_REASONS[reason], carrier=carrier, count=len(ids), first_smsc_id=ids[0])
        changes = [item.change for item in chunk]
        for listener in self.after_commit:
            try:
                listener(changes)
            except Exception:
                log.exception("status commit listener failed")
        self._committed_event.set()
        self._committed_event = asyncio.Event()

    def _hold(self, item: _Item, now: float, given_up: dict[tuple[str, str], list[str]]) -> None:
        receipt = item.change
        orphan = item.orphan
        if orphan is None:  # new: hold its acknowledgement for a while
            orphan = _Orphan(receipt, now + self.orphan_seconds, item.stored, now + self.orphan_ack_seconds)
        if not receipt.last_try:
            if now >= orphan.ack_at:
                orphan.acknowledge()
            self._orphans.append(orphan)
            return
        if not self._stopping:  # at shutdown the SMSC resends it to the next run
            orphan.acknowledge()
        reason = "ambiguous" if receipt.ambiguous else "final_only" if receipt.final_only else "unknown"
        counts = {
            "unknown": self.receipts_unknown,
            "final_only": self.receipts_final_only,
            "ambiguous": self.receipts_ambiguous,
        }[reason]
        counts[receipt.carrier] = counts.get(receipt.carrier, 0) + 1
        given_up.setdefault((receipt.carrier, reason), []).append(receipt.smsc_id)

    def _count_match(self, receipt: outbox.ReceiptUpdate) -> None:
        carrier = receipt.carrier
        if receipt.latency is not None:
            hist = self.receipt_latency.get(carrier)
            if hist is None:
                hist = self.receipt_latency[carrier] = Histogram()
            hist.observe(receipt.latency)
            receipt.latency = None  # counted once, even if the change is seen again
        self.receipts_matched[carrier] = self.receipts_matched.get(carrier, 0) + 1
        if receipt.evidence is not None:
            learned = self.receipt_ids.observe(carrier, receipt.evidence)
            if learned is not None:
                log.info(
                    "carrier's receipt id form learned; set receipt_ids to pin it",
                    carrier=carrier,
                    receipt_ids=learned.value,
                )
