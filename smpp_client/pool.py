"""The carriers of the gateway: routing, failover, capacity, and what comes back from them.

:class:`CarrierPool` is built with every carrier's :class:`~smpp_client.config.CarrierConfig`,
the one :class:`~smpp_client.events.LinkEvents` handler that hears receipts, messages from handsets
and binds coming and going (:mod:`smpp_client.inbound`), and a room-changed callable it calls
when it could take more jobs (the dispatcher claims then). :meth:`CarrierPool.submit` routes a
:class:`~smpp_client.jobs.Job`: the router's first carrier that can take it gets it; a carrier
that passes it on (a routing error, an unusable message id, every link down) hands it to the next
one; when none can, the job ends here (``release`` if it was never sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from datetime import datetime

import structlog

from .carrier import Carrier
from .config import CarrierConfig
from .errors import LINK_LOST, NO_ROUTE, ErrorClass, classify, error_name
from .events import BindChanged, LinkEvents
from .inbound import Inbound, SenderNumber, international_number, utc_now
from .jobs import FAILED, RELEASE, RETRY, Job, SendOutcome
from .message_ids import ReceiptIdRelations
from .policies.router import Router, RuleRouter
from .reassembly import PartStore

log = structlog.get_logger("smpp_client")


def _nothing() -> None:
    pass


class CarrierPool:
    def __init__(
        self,
        carriers: Sequence[CarrierConfig],
        events: LinkEvents,
        *,
        on_room: Callable[[], None] = _nothing,
        router: Router | None = None,
        receipt_ids: ReceiptIdRelations | None = None,
        sender_number: SenderNumber = international_number,
        clock: Callable[[], datetime] = utc_now,
        mo_parts: PartStore | None = None,
    ):
        """``on_room`` is called (soon, coalesced) when the pool can take a worthwhile batch more;
        ``receipt_ids`` is shared with whatever learns the carriers' id relations (the status
        store); ``sender_number`` turns an MO's source address and TON into the sender;
        ``clock`` stamps receipts and messages (naive UTC); ``mo_parts``: where long messages'
        parts wait for each other (None: in memory; a store shared by the processes holding a
        carrier's binds, since the SMSC spreads one message's parts over them)."""
        self.events = events
        self.on_room = on_room
        if receipt_ids is None:
            receipt_ids = ReceiptIdRelations({c.name: c.receipt_ids for c in carriers})
        self.receipt_ids = receipt_ids
        self.inbound = Inbound(
            events, self.receipt_ids, sender_number=sender_number, clock=clock, parts=mo_parts
        )
        self.carriers = {c.name: Carrier(c, self.inbound.deliver, owner=self) for c in carriers}
        self.router: Router = router or RuleRouter(list(self.carriers))
        self._room_handle: asyncio.Handle | None = None
        self._refresh_task: asyncio.Task | None = None
        self.paused: frozenset[str] = frozenset()  # carriers an operator paused: they take no job

    def start(self, binds: bool = True) -> None:
        """Start; ``binds=False``: open no bind (whoever shares the binds opens the slots)."""
        if binds:
            for carrier in self.carriers.values():
                carrier.start()
        if self.router.refresh_seconds is not None:
            self._refresh_task = asyncio.create_task(self._refresh_router(), name="router-refresh")

    async def stop(self, timeout: float = 5.0) -> None:
        if self._refresh_task is not None:
            self._refresh_task.cancel()
        await asyncio.gather(*(c.stop(timeout) for c in self.carriers.values()))

    async def _refresh_router(self) -> None:
        while True:
            await asyncio.sleep(self.router.refresh_seconds)
            try:
                self.router.refresh()
            except Exception:
                log.exception("router refresh failed")

    @property
    def any_bound(self) -> bool:
        return any(c.is_bound for c in self.carriers.values())

    @property
    def in_memory(self) -> int:
        return sum(c.load for c in self.carriers.values())

    def rooms(self) -> dict[str, tuple[list[str], int]]:
        """What each carrier is worth claiming now: {carrier: (the routes it takes, room)}.

        Per carrier, so a busy, slow or throttled carrier never holds back another; only once its
        room is half its target (or it holds nothing), so claims come in batches, not one message
        at a time. A carrier takes the messages routed to it and, with failover, those of the
        carriers that cannot take traffic now: down while this process holds binds of them (a
        carrier whose binds other processes hold is theirs to send, not down).
        """
        carriers = self.carriers.items()
        down = [n for n, c in carriers if c.slots and not c.accepting] if self.router.failover else []
        out = {}
        for name, carrier in self.carriers.items():
            if not carrier.accepting:
                continue
            room = carrier.room()
            if room and (room * 2 >= carrier.target() or carrier.load == 0):
                out[name] = ([name, *down], room)
        return out

    async def wait_bound(self, timeout: float) -> bool:
        waiters = [asyncio.ensure_future(s.bound.wait()) for c in self.carriers.values() for s in c.sessions]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        return self.any_bound

    def status(self) -> list[dict]:
        """A snapshot of every carrier and bind (for /metrics and the dashboard)."""
        now = time.monotonic()
        return [c.snapshot(now) for c in self.carriers.values()]

    # --- jobs ---------------------------------------------------------------------------------

    def set_paused(self, names: frozenset[str]) -> None:
        """The carriers that take no job (failover skips them) until set again without them."""
        self.paused = names

    def submit(self, job: Job) -> None:
        """Route a job to its carrier (the outcome comes through ``job.done``)."""
        job.tried = []
        job.route = []
        self._route(job, None)

    def _route(self, job: Job, last_status: int | None) -> None:
        tried = {name for name, _ in job.tried}
        for name in self.router.candidates(job.msisdn, job.first_choice):
            if name in tried or name in self.paused:
                continue
            carrier = self.carriers[name]
            if carrier.accepting:
                carrier.enqueue(job)
                return
        status = last_status if last_status is not None else NO_ROUTE
        if any(classify(s) is ErrorClass.CARRIER for _, s in job.tried):
            kind = RETRY  # a carrier took it but answered an unusable id: a real attempt, later again
        elif last_status is not None and last_status not in (LINK_LOST, NO_ROUTE):
            kind = FAILED  # every carrier answered a routing error
        elif job.link_tries:
            kind = RETRY  # it was on a link that died: a real attempt (the SMSC may have it)
        else:
            kind = RELEASE  # never sent: back to the outbox, no attempt counted
        outcome = SendOutcome(
            kind,
            job.tried[-1][0] if job.tried else None,
            [],
            status,
            error_name(status) if kind != RELEASE else "no carrier with a bound link",
            job.encoding or None,
            job.segments or None,
            job.route_text() or None,
        )
        try:
            job.done(job, outcome)
        except Exception:
            log.exception("outcome handler failed")
        self.room_changed()

    # --- what the carriers ask (CarrierOwner) -------------------------------------------------

    def hand_on(self, job: Job, status: int) -> None:
        self._route(job, status)

    def others_accepting(self, carrier: Carrier) -> bool:
        return any(c.accepting for c in self.carriers.values() if c is not carrier)

    def room_changed(self) -> None:
        if self._room_handle is None:
            with contextlib.suppress(RuntimeError):
                self._room_handle = asyncio.get_running_loop().call_soon(self._maybe_room)

    def bind_changed(self, change: BindChanged) -> None:
        try:
            self.events.bind_changed(change)
        except Exception:
            log.exception("bind change handler failed", bind=change.bind)

    def _maybe_room(self) -> None:
        self._room_handle = None
        if self.rooms():
            self.on_room()
