"""Status callbacks to CRM clients: signed POSTs of message status changes and SI / NO answers.

A CRM client with a ``callback_url`` receives, for the messages of its case events, one POST per
status change (``submitted``, ``delivered``, ``undeliverable``, ``rejected``, ``failed``,
``expired``, ``cancelled``), in order: each carries ``sequence`` (1, 2, … per message) and goes
out only after the one before was accepted or given up. Besides: ``appointment.confirmed`` /
``appointment.declined`` and ``broadcast.cancelled``. Each POST is signed like the CRM's own
requests, from the gateway's side, with the client's secret: ``X-Smsgw-Client: smsgw`` and
``X-Smsgw-Signature: t=<unix>,v2=<hex>,v1=<hex>`` where v2 is HMAC-SHA256 of
"<t>.POST.<path with query of the callback URL>.<body>" and v1, for CRMs that verify only v1, of
"<t>.<body>"; ``X-Smsgw-Delivery`` carries the callback's id (the same on every retry, for
de-duplication). Each attempt is signed afresh.

Callbacks are rows of the ``callbacks`` table (durable). A 2xx ends one; a 5xx, 408, 429, a
timeout or a connection error retries it with exponential backoff (``backoff_seconds`` doubling up
to ``max_backoff_seconds``) until ``max_attempts``; any other status (4xx, a redirect) gives up at
once.

Two halves. :class:`CallbackQueue` writes the rows in the transaction that makes the change: the
status writer's (submit and receipt results), expiry's and an opt-out's (messages that will not
go), a citizen's SI / NO, an operator's cancel; so a change and its callback are committed
together. :class:`CallbackSender` POSTs what is due, in whichever process runs it; it never holds
up the status writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import aiohttp
import structlog
from yarl import URL

from gateway import clock
from gateway.domain.dates import iso_utc
from gateway.domain.status import MessageStatus
from gateway.http.signing import CLIENT_HEADER, SIGNATURE_HEADER, sign
from gateway.signals import Wakeup
from gateway.store import callbacks as store
from gateway.store import outbox
from gateway.store.db import Database

log = structlog.get_logger("callbacks")

SENDER_ID = "smsgw"
DELIVERY_HEADER = "X-Smsgw-Delivery"
RETRYABLE_STATUSES = frozenset({408, 429})


def changes_of(changes) -> list[tuple[int, str, datetime]]:
    """(message id, status, at) for each committed change worth a callback."""
    out = []
    for change in changes:
        if not getattr(change, "applied", True):  # overridden meanwhile (e.g. cancelled): no news
            continue
        if isinstance(change, outbox.Submitted):
            out.append((change.message_id, MessageStatus.SUBMITTED.value, change.at))
        elif isinstance(change, outbox.Failed):
            out.append((change.message_id, MessageStatus(change.status).value, change.at))
        elif isinstance(change, outbox.ReceiptUpdate):
            status = getattr(change, "message_status", None)
            message_id = getattr(change, "message_id", None)
            if change.matched and status is not None and message_id is not None:
                out.append((message_id, MessageStatus(status).value, change.at))
    return out


class CallbackQueue:
    """The callbacks a change owes, queued in its transaction; ``targets``: client id -> URL."""

    def __init__(self, targets: Mapping[str, str]):
        self.targets = dict(targets)

    @property
    def enabled(self) -> bool:
        return bool(self.targets)

    def status_changes(self, conn, changes) -> None:
        """The status writer's in-transaction hook: one callback per status a change set."""
        found = changes_of(changes)
        if found:
            store.enqueue_message_status(conn, self.targets, found, found[-1][2])

    def message_status(self, conn, message_ids: list[int], status: MessageStatus, now: datetime) -> None:
        """Changes made by the gateway's own transactions (expiry, an opt-out's cancellations)."""
        store.enqueue_message_status(
            conn, self.targets, [(mid, status.value, now) for mid in message_ids], now
        )

    def appointment_answered(self, conn, appointment: dict) -> None:
        """A citizen's SI / NO, reported to the CRM that scheduled the appointment."""
        url = self.targets.get(appointment["client_id"])
        if url is None:
            return
        kind = f"appointment.{appointment['status']}"
        payload = {
            "type": kind,
            "event_id": appointment["event_key"],
            "folio": appointment["folio"],
            "appointment_at": iso_utc(appointment["at"]),
            "at": iso_utc(appointment["answered_at"]),
        }
        store.enqueue(
            conn, [(appointment["client_id"], url, kind, None, payload)], appointment["answered_at"]
        )

    def broadcast_cancelled(
        self, conn, client_id: str, broadcast_id: int, event_key: str, cancelled: int, now: datetime
    ) -> None:
        url = self.targets.get(client_id)
        if url is None:
            return
        payload = {
            "type": "broadcast.cancelled",
            "broadcast_id": broadcast_id,
            "event_id": event_key,
            "cancelled": cancelled,
            "at": iso_utc(now),
        }
        store.enqueue(conn, [(client_id, url, "broadcast.cancelled", None, payload)], now)


class CallbackSender:
    """POSTs the due callbacks, signed, with retries; woken by ``wakeup`` and every second."""

    def __init__(
        self,
        db: Database,
        secrets: Mapping[str, str],
        wakeup: Wakeup,
        *,
        timeout_seconds: float = 10,
        max_attempts: int = 10,
        backoff_seconds: float = 5,
        max_backoff_seconds: float = 1800,
        concurrency: int = 8,
        batch: int = 100,
        now: Callable[[], datetime] = clock.now,
    ):
        self.db = db
        self.secrets = dict(secrets)
        self.wakeup = wakeup
        self.timeout = timeout_seconds
        self.max_attempts = max_attempts
        self.backoff = backoff_seconds
        self.max_backoff = max_backoff_seconds
        self.concurrency = concurrency
        self.batch = batch
        self.now = now
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task | None = None

    # --- sending ------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="callbacks")

    async def stop(self) -> None:
        """Stop sending; what is queued stays in the table for the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _backoff(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.max_backoff, self.backoff * 2 ** max(0, attempts - 1)))

    async def _post(self, due: store.DueCallback) -> store.Outcome:
        attempts = due.attempts + 1
        body = json.dumps(due.payload, ensure_ascii=False, separators=(",", ":")).encode()
        secret = self.secrets.get(due.client_id)
        if secret is None:
            return store.Outcome(due.id, store.FAILED, attempts, f"no secret for client {due.client_id!r}")
        url = URL(due.url)
        headers = {
            "Content-Type": "application/json",
            CLIENT_HEADER: SENDER_ID,
            SIGNATURE_HEADER: sign(secret, "POST", url.raw_path_qs, body, with_v1=True),
            DELIVERY_HEADER: str(due.id),
        }
        if self._session is None:
            self._session = aiohttp.ClientSession()
        error: str
        try:
            async with self._session.post(
                url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                allow_redirects=False,
            ) as resp:
                if 200 <= resp.status < 300:
                    return store.Outcome(due.id, store.SENT, attempts)
                error = f"HTTP {resp.status}"
                if resp.status < 500 and resp.status not in RETRYABLE_STATUSES:
                    log.warning(
                        "callback refused; giving up", client=due.client_id, id=due.id, status=resp.status
                    )
                    return store.Outcome(due.id, store.FAILED, attempts, error)
        except TimeoutError:
            error = f"timeout after {self.timeout:g} s"
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if attempts >= self.max_attempts:
            log.warning("callback failed too often; giving up", client=due.client_id, id=due.id, error=error)
            return store.Outcome(due.id, store.FAILED, attempts, error)
        return store.Outcome(due.id, store.PENDING, attempts, error, self.now() + self._backoff(attempts))

    async def _limited(self, limit: asyncio.Semaphore, item: store.DueCallback) -> store.Outcome:
        async with limit:
            return await self._post(item)

    async def run_once(self) -> int:
        """Send every callback due now (in batches); returns how many were attempted. A message's
        next status is claimed once the one before is accepted or given up, so a round that ended
        some goes on to their successors."""
        total = 0
        while True:
            now = self.now()
            due = await self.db.run(store.claim_due, self.batch, now, self.timeout * 2 + 30)
            if not due:
                return total
            limit = asyncio.Semaphore(self.concurrency)
            outcomes = await asyncio.gather(*(self._limited(limit, d) for d in due))
            await self.db.run(store.record_outcomes, list(outcomes), self.now())
            total += len(due)
            ended = {o.id for o in outcomes if o.status != store.PENDING}
            if len(due) < self.batch and not any(d.message_id is not None and d.id in ended for d in due):
                return total

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("callback round failed")
            await self.wakeup.wait(1.0)  # retries come due without a wake-up
