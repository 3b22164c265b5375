"""Batches status changes (submit results, receipts) into few transactions, in arrival order.

:meth:`StatusWriter.post` queues a change with an optional callback run once it is committed (a
receipt's deliver_sm_resp goes out then: a receipt is acknowledged to the SMSC only after it is
stored); :meth:`StatusWriter.put` awaits the commit. While one batch is being written the next
accumulates, so the batch size follows the load with no timer.

A receipt whose submit_sm_resp has not been recorded yet (SMSCs may send the receipt first; a
multi-part message is recorded once its last part is answered) is kept in memory as an *orphan*:
it is tried again after every following batch, and at least every 0.2 s, for ``orphan_seconds``
before it is logged as a receipt for an unknown message. Its acknowledgement waits until it is
stored, or ``orphan_ack_seconds`` at most (an SMSC resends an unanswered deliver_sm), so a crash
loses no receipt that the missing submit result was about to match.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import structlog

from smpp_client.metrics import Histogram

from . import outbox
from .db import Database

log = structlog.get_logger("store")

Change = outbox.Submitted | outbox.Retry | outbox.Failed | outbox.ReceiptUpdate
Callback = Callable[[], None]

_ORPHAN_RETRY_SECONDS = 0.2


@dataclass(slots=True)
class _Orphan:
    receipt: outbox.ReceiptUpdate
    give_up_at: float
    ack: Callback | None = None  # the held acknowledgement
    ack_at: float = 0.0

    def acknowledge(self) -> None:
        ack, self.ack = self.ack, None
        if ack is not None:
            _run_callback(ack)


def _run_callback(callback: Callback) -> None:
    try:
        callback()
    except Exception:
        log.exception("status commit callback failed")


def _apply(conn, changes: list[Change]) -> list[outbox.ReceiptUpdate]:
    """Apply in order, grouping consecutive changes of one kind into one statement batch."""
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
                unmatched += outbox.apply_receipts(conn, run)
            else:
                appliers[kind](conn, run)
            run = []
        if change is not None:
            run.append(change)
    return unmatched


class StatusWriter:
    def __init__(
        self,
        db: Database,
        max_batch: int = 5000,
        orphan_seconds: float = 30.0,
        orphan_ack_seconds: float = 5.0,
    ):
        self.db = db
        self.max_batch = max_batch
        self.orphan_seconds = orphan_seconds
        self.orphan_ack_seconds = orphan_ack_seconds
        self._queue: list[tuple[Change, Callback | None]] = []
        self._wakeup = asyncio.Event()
        self._orphans: list[_Orphan] = []
        self._task: asyncio.Task | None = None
        self.on_change: Callable[[list[Change]], None] | None = None  # after each commit
        self._committed = asyncio.Event()
        self._stopping = False
        # numbers for /metrics
        self.batches = 0
        self.changes_written = 0
        self.receipts_matched: dict[str, int] = {}
        self.receipts_unknown: dict[str, int] = {}
        self.orphans_retried = 0
        self.receipt_latency: dict[str, Histogram] = {}
        self.failures = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="status-writer")

    async def stop(self) -> None:
        """Write everything queued (a batch being written is finished, never cancelled), then end."""
        if self._task is None:
            return
        self._stopping = True
        self._wakeup.set()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None

    @property
    def backlog(self) -> int:
        return len(self._queue)

    @property
    def orphans(self) -> int:
        return len(self._orphans)

    def post(self, change: Change, callback: Callback | None = None) -> None:
        """Queue a change; ``callback()`` runs once it is committed."""
        self._queue.append((change, callback))
        self._wakeup.set()

    async def put(self, change: Change) -> None:
        """Queue a change and wait until it is committed."""
        future = asyncio.get_running_loop().create_future()

        def done() -> None:
            if not future.done():
                future.set_result(None)

        self.post(change, done)
        await future

    async def flush(self) -> None:
        while self._queue:
            await self._flush_once()

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._stopping:
                    if self._orphans:  # a last try; what is still unmatched is reported as unknown
                        for orphan in self._orphans:
                            orphan.give_up_at = 0.0
                        with contextlib.suppress(Exception):
                            await self._flush_once()
                    return
                self._wakeup.clear()
                if self._orphans:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), _ORPHAN_RETRY_SECONDS)
                else:
                    await self._wakeup.wait()
            try:
                await self._flush_once()
            except Exception:
                self.failures += 1
                log.exception("status batch failed; retrying")
                await asyncio.sleep(0.5)

    async def _flush_once(self) -> None:
        batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        orphans, self._orphans = self._orphans, []
        # orphans after the new changes: the submit results they wait for may be among them
        changes = [c for c, _ in batch] + [o.receipt for o in orphans]
        if not changes:
            return
        try:
            unmatched = await self.db.run(_apply, changes)
        except BaseException:
            self._queue[:0] = batch
            self._orphans[:0] = orphans
            raise
        self.batches += 1
        self.changes_written += len(batch)
        self.orphans_retried += len(orphans)
        now = time.monotonic()
        previous = {id(o.receipt): o for o in orphans}
        held = {id(change): callback for change, callback in batch if type(change) is outbox.ReceiptUpdate}
        still = set()
        for receipt in unmatched:
            still.add(id(receipt))
            orphan = previous.get(id(receipt))
            if orphan is None:  # new: hold its acknowledgement for a while
                orphan = _Orphan(
                    receipt, now + self.orphan_seconds, held.get(id(receipt)), now + self.orphan_ack_seconds
                )
            if now < orphan.give_up_at:
                if now >= orphan.ack_at:
                    orphan.acknowledge()
                self._orphans.append(orphan)
            else:
                if not self._stopping:  # at shutdown the SMSC resends it to the next run
                    orphan.acknowledge()
                self.receipts_unknown[receipt.carrier] = self.receipts_unknown.get(receipt.carrier, 0) + 1
                log.warning(
                    "receipt for unknown message id", carrier=receipt.carrier, smsc_id=receipt.smsc_id_keys[0]
                )
        for change in changes:
            if type(change) is outbox.ReceiptUpdate and change.matched and change.latency is not None:
                carrier = change.carrier
                hist = self.receipt_latency.get(carrier)
                if hist is None:
                    hist = self.receipt_latency[carrier] = Histogram()
                hist.observe(change.latency)
                self.receipts_matched[carrier] = self.receipts_matched.get(carrier, 0) + 1
                change.latency = None  # counted once, even if the change is seen again
        for orphan in orphans:
            if id(orphan.receipt) not in still:  # matched (stored) at last
                orphan.acknowledge()
        for change, callback in batch:
            if callback is not None and id(change) not in still:
                _run_callback(callback)
        if self.on_change is not None:
            self.on_change(changes)
        self._committed.set()
        self._committed = asyncio.Event()

    def next_commit(self) -> Coroutine[Any, Any, bool]:
        """Awaitable for the next committed batch; bound at call time, so no commit slips between."""
        return self._committed.wait()
