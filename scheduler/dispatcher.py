"""Claims due messages from the outbox and hands them to the SMPP links.

A message is routed once, to the carrier the router chooses for its number (``messages.route``):
each round sets the routes the previous round chose for the queued messages it found unrouted. Then
each carrier claims its own messages, only what it can take now (about a second of traffic, at most
a window more, once half of it is free: :meth:`CarrierPool.rooms`), so a busy or throttled carrier
never holds back another, leases stay short and a backlog stays in the database, where priorities
and cancellations still apply. A carrier an operator paused (``carrier_pauses``, read in each
round's transaction, so every process sees it) claims nothing, no other carrier claims its messages
and the pool hands it no job: they wait. A claimed message becomes a
:class:`~smpp_client.jobs.Job` ranked by its priority (an emergency overtakes what waits in a
carrier's queue) with a deadline: the end of its validity, or most of its lease, whichever comes
first. Its outcome comes back through a callback and is turned into an outbox change for the
:class:`StatusWriter`:

- submitted: ``Submitted`` (carrier, SMSC ids, encoding and segments as sent, the route taken);
- retry (temporary error, link lost twice, an unusable message id from every carrier that could
  take it): back to the queue with exponential backoff and jitter, a counted attempt; past
  ``max_attempts`` (counted since an operator's last retry, if any) it fails, past its validity
  it expires;
- release (never sent: no bound carrier, shutdown): back to the queue at once, the attempt given
  back; throttling never reaches the outbox (the carrier resends from memory);
- deadline (still unsent at its deadline): expired when its validity ends before it could be
  claimed again, else released like the above (only its lease was ending);
- failed (permanent, e.g. ESME_RINVDSTADR): failed with the SMPP code and name.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import datetime, timedelta

import structlog

from gateway import clock
from gateway.domain.phone import mask_msisdn
from gateway.domain.status import MessageStatus
from gateway.store import carrier_pauses, outbox
from gateway.store.db import Database
from gateway.store.status_writer import StatusWriter
from smpp_client.errors import error_name
from smpp_client.jobs import DEADLINE, FAILED, RELEASE, RETRY, SUBMITTED, Job, SendOutcome
from smpp_client.pool import CarrierPool

log = structlog.get_logger("scheduler")

RELEASE_DELAY_SECONDS = 1.0  # a message handed back unsent is claimable again after this
LEASE_MARGIN = 0.75  # a job unsent after this share of its lease goes back to the outbox
EXPIRED = "expired"  # what a deadline outcome is counted as when the validity ended


class Dispatcher:
    def __init__(
        self,
        db: Database,
        pool: CarrierPool,
        writer: StatusWriter,
        owner: str,
        batch_size: int = 500,
        lease_seconds: float = 120,
        max_attempts: int = 10,
        route_batch: int = 5000,
    ):
        self.db = db
        self.pool = pool
        self.writer = writer
        self.owner = owner
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self._handed = 0  # claimed and without an outcome yet
        self._claiming = 0  # claims running in the database
        self._closed = False  # draining: no new claims
        self._settled: asyncio.Event | None = None
        self.more = False  # the last round filled a room or found unrouted messages: run the next at once
        self.route_batch = route_batch
        self._routes: list[tuple[str, int]] = []  # (carrier, message id) chosen, set by the next round
        # numbers for /metrics
        self.claimed = 0
        self.routed = 0
        self.outcomes: dict[str, int] = {}

    @property
    def in_flight(self) -> int:
        return self._handed

    async def dispatch_once(self) -> int:
        """One round: route what the last one found unrouted, claim for every carrier with room,
        find what is still unrouted; returns how many messages were handed to the links."""
        self.more = False
        if self._closed:
            return 0
        rooms = {
            name: (routes, min(self.batch_size, room)) for name, (routes, room) in self.pool.rooms().items()
        }
        routes, self._routes = self._routes, []
        if not rooms and not routes:
            return 0
        now = clock.utcnow()
        self._claiming += 1
        try:
            claims, unrouted, paused = await self.db.run(self._round, routes, rooms, now)
        finally:
            self._claiming -= 1
            self._maybe_settled()
        self.pool.set_paused(paused)
        router = self.pool.router
        self._routes = [(router.first_choice(msisdn), mid) for mid, msisdn in unrouted]
        self.routed += len(self._routes)
        claimed = [message for batch in claims.values() for message in batch]
        self.more = bool(self._routes) or any(
            len(claims.get(name, ())) == room for name, (_, room) in rooms.items()
        )
        if not claimed:
            return 0
        self.claimed += len(claimed)
        mono = time.monotonic()
        lease_deadline = mono + self.lease_seconds * LEASE_MARGIN
        pool = self.pool
        done = self._done
        for message in claimed:
            self._handed += 1
            remaining = (message.expires_at - now).total_seconds()
            pool.submit(
                Job(
                    message.msisdn,
                    message.body,
                    done,
                    deadline=min(lease_deadline, mono + remaining),
                    rank=message.priority,
                    ctx=message,
                    first_choice=message.route,
                )
            )
        return len(claimed)

    def _round(
        self, conn, routes: list[tuple[str, int]], rooms: dict[str, tuple[list[str], int]], now: datetime
    ) -> tuple[dict[str, list[outbox.ClaimedMessage]], list[tuple[int, str]], frozenset[str]]:
        """One transaction: set the routes chosen, claim per carrier but for the paused ones (whose
        messages no carrier claims: they wait), read the next unrouted."""
        outbox.set_routes(conn, routes)
        paused = carrier_pauses.paused(conn)
        claims = {
            name: outbox.claim(
                conn,
                self.owner,
                room,
                now,
                self.lease_seconds,
                [r for r in carrier_routes if r not in paused],
            )
            for name, (carrier_routes, room) in rooms.items()
            if name not in paused
        }
        return claims, outbox.unrouted(conn, self.route_batch), paused

    async def drain(self) -> None:
        """Claim no more; wait for a claim in progress and for every handed message's outcome
        to be posted to the status writer (shutdown: the pool is stopping, so what is not sent
        comes back at once)."""
        self._closed = True
        while self._handed or self._claiming:
            self._settled = asyncio.Event()
            await self._settled.wait()
        self._settled = None

    def _maybe_settled(self) -> None:
        if self._settled is not None and not self._handed and not self._claiming:
            self._settled.set()

    def _done(self, job: Job[outbox.ClaimedMessage], outcome: SendOutcome) -> None:
        self._handed -= 1
        change = self._change_for(job.ctx, outcome, clock.utcnow())
        kind = outcome.kind
        if kind == DEADLINE:
            kind = EXPIRED if isinstance(change, outbox.Failed) else RELEASE
        self.outcomes[kind] = self.outcomes.get(kind, 0) + 1
        self.writer.post(change)
        self._maybe_settled()

    def _change_for(self, message: outbox.ClaimedMessage, outcome: SendOutcome, now: datetime):
        kind = outcome.kind
        code = outcome.status if outcome.status is not None and outcome.status >= 0 else None
        text = outcome.error or (error_name(outcome.status) if outcome.status is not None else kind)
        if kind == SUBMITTED:
            return outbox.Submitted(
                message.id,
                outcome.carrier,
                outcome.smsc_ids,
                now,
                outcome.encoding,
                outcome.segments,
                outcome.route if outcome.route and (" " in outcome.route) else None,
            )
        if kind == DEADLINE:
            # given back unsent: expired if it could not be claimed again within its validity
            if now + timedelta(seconds=RELEASE_DELAY_SECONDS) >= message.expires_at:
                return outbox.Failed(
                    message.id, MessageStatus.EXPIRED, None, "validity ended before submission", now
                )
            kind, text = RELEASE, "lease ending before submission"
        if kind == RELEASE:
            return outbox.Retry(
                message.id,
                now + timedelta(seconds=RELEASE_DELAY_SECONDS),
                code,
                text,
                now,
                count_attempt=False,
            )
        if kind == RETRY and now >= message.expires_at:
            return outbox.Failed(
                message.id, MessageStatus.EXPIRED, code, f"validity ended before submission ({text})", now
            )
        if kind == RETRY:
            tried = message.attempts_since_retry  # an operator's retry gives a fresh budget
            if tried >= self.max_attempts:
                log.warning(
                    "message failed after its last attempt",
                    message_id=message.id,
                    attempts=message.attempts,
                    error=text,
                )
                return outbox.Failed(
                    message.id,
                    MessageStatus.FAILED,
                    code,
                    f"{text} ({message.attempts} attempts)",
                    now,
                    outcome.carrier,
                )
            delay = min(300.0, 2.0 ** min(tried, 8)) * random.uniform(0.5, 1.0)
            not_before = now + timedelta(seconds=delay)
            if not_before >= message.expires_at:
                return outbox.Failed(
                    message.id,
                    MessageStatus.EXPIRED,
                    code,
                    f"validity ends before the next try ({text})",
                    now,
                )
            log.info(
                "temporary failure; will retry",
                message_id=message.id,
                to=mask_msisdn(message.msisdn),
                error=text,
                retry_in=round(delay, 1),
            )
            return outbox.Retry(message.id, not_before, code, text, now)
        assert kind == FAILED, kind
        log.warning("message failed", message_id=message.id, error=text, carrier=outcome.carrier)
        return outbox.Failed(message.id, MessageStatus.FAILED, code, text, now, outcome.carrier)
