"""Batches status changes (submit results, receipts) into few transactions, in arrival order.

Callers await :meth:`StatusWriter.put`, which returns once the change is durable, so a receipt is
acknowledged to the SMSC only after it is stored. A receipt whose submit_sm_resp has not been
recorded yet (SMSCs may send the receipt first) is retried for ``orphan_seconds`` before it is
logged as unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import structlog

from . import outbox
from .db import Database

log = structlog.get_logger("store")

Change = outbox.Submitted | outbox.Retry | outbox.Failed | outbox.ReceiptUpdate


@dataclass(slots=True)
class _Orphan:
    receipt: outbox.ReceiptUpdate
    give_up_at: float


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
    def __init__(self, db: Database, max_batch: int = 1000, orphan_seconds: float = 30.0):
        self.db = db
        self.max_batch = max_batch
        self.orphan_seconds = orphan_seconds
        self._queue: list[tuple[Change, asyncio.Future | None]] = []
        self._wakeup = asyncio.Event()
        self._orphans: list[_Orphan] = []
        self._task: asyncio.Task | None = None
        self.on_change = None  # optional callback(list[Change]) after each commit
        self._committed = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="status-writer")

    async def stop(self) -> None:
        if self._task is not None:
            await self.flush()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def post(self, change: Change) -> None:
        """Queue a change without waiting for it."""
        self._queue.append((change, None))
        self._wakeup.set()

    async def put(self, change: Change) -> None:
        """Queue a change and wait until it is committed."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((change, future))
        self._wakeup.set()
        await future

    async def flush(self) -> None:
        while self._queue:
            await self._flush_once()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            try:
                await self._flush_once()
            except Exception:
                log.exception("status batch failed; retrying")
                await asyncio.sleep(0.5)
            if self._queue:
                self._wakeup.set()
            elif self._orphans:
                await asyncio.sleep(0.2)
                self._wakeup.set()

    async def _flush_once(self) -> None:
        batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        now = time.monotonic()
        orphans, self._orphans = self._orphans, []
        changes = [o.receipt for o in orphans] + [c for c, _ in batch]
        if not changes:
            return
        try:
            unmatched = await self.db.run(_apply, changes)
        except BaseException:
            self._queue[:0] = batch
            self._orphans[:0] = orphans
            raise
        give_up = {id(o.receipt): o.give_up_at for o in orphans}
        for receipt in unmatched:
            deadline = give_up.get(id(receipt), now + self.orphan_seconds)
            if now < deadline:
                self._orphans.append(_Orphan(receipt, deadline))
            else:
                log.warning(
                    "receipt for unknown message id", carrier=receipt.carrier, smsc_id=receipt.smsc_id_keys[0]
                )
        for _, future in batch:
            if future is not None and not future.done():
                future.set_result(None)
        if self.on_change is not None:
            self.on_change(changes)
        self._committed.set()
        self._committed = asyncio.Event()

    def next_commit(self) -> Coroutine[Any, Any, bool]:
        """Awaitable for the next committed batch; bound at call time, so no commit slips between."""
        return self._committed.wait()
