"""The simulated SMSC: its carriers (an SMPP 3.4 server each), the message store and the clock.

:class:`Smsc` starts and stops the carriers' listening sockets and runs a tick every ``tick_ms``:
what falls due on the timer wheel (batched receipts, delayed responses, resends, bind deadlines)
is handled, unanswered deliver_sm are resent, queued ones handed to receivers, and each session's
writes of the tick leave in one ``transport.write``. Once a second it does its housekeeping
(enquire_link to idle sessions). Receipts sent one by one (``receipt_mode = "each"``) run on
timers of their own instead (see :mod:`simulator.deliveries`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable

import structlog

from .carrier import Carrier
from .ids import UniqueIds
from .mo import MoComposer, route_mo
from .records import MoRecord, mask
from .session import SmppSession
from .settings import SimulatorSettings
from .store import Store
from .timer_wheel import BIND_DEADLINE, RECEIPT, RECEIPT_AFTER_RESPONSE, RESPONSE, TimerWheel
from .wire import ENQUIRE_LINK, UNBIND, pack_header

log = structlog.get_logger("simulator")

_KEPT_BY_RESET = frozenset({RESPONSE, BIND_DEADLINE})  # what a reset leaves on the wheel


class Smsc:
    def __init__(
        self, settings: SimulatorSettings, store: Store | None = None, rng: random.Random | None = None
    ):
        self.settings = settings
        self.rng = rng or random.Random()
        self.store = store or Store(
            settings.store_size,
            settings.mo_store_size,
            settings.concat_timeout,
            settings.default_country_code,
        )
        self.ids = UniqueIds()
        self.wall = time.time()
        self.generation = 0  # counts resets: timers planned before one are void
        self._tick = settings.tick_ms / 1000.0
        self._wheel = TimerWheel(self._tick, time.monotonic())
        # schedule(due, entry): put entry on the timer wheel, due at monotonic time ``due``
        self.schedule = self._wheel.schedule
        self.dirty: list[SmppSession] = []  # sessions with writes waiting for the tick
        self.carriers: dict[str, Carrier] = {}
        for carrier_settings in settings.carriers:
            self.carriers[carrier_settings.name] = Carrier(self, carrier_settings)
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next_housekeeping = 0.0
        self._mo = MoComposer(self.rng)
        self.started_at = time.time()

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            for carrier in self.carriers.values():
                settings = carrier.settings
                carrier.server = await self._loop.create_server(
                    lambda c=carrier: SmppSession(c),
                    settings.host,
                    settings.port,
                    reuse_address=True,
                    backlog=256,
                )
                carrier.port = carrier.server.sockets[0].getsockname()[1]
                carrier.faults.set(carrier.faults.settings)  # timers start now
                log.info(
                    "smpp carrier listening",
                    carrier=carrier.name,
                    host=settings.host,
                    port=carrier.port,
                    tps=settings.tps,
                    window=settings.window,
                    receipt_mode=settings.receipt_mode,
                )
        except BaseException:
            await self.stop()
            raise
        self._wheel.restart(time.monotonic())
        self._arm()

    async def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.generation += 1  # receipts still on their own timers are void
        for carrier in self.carriers.values():
            if carrier.server is not None:
                carrier.server.close()
            for session in list(carrier.connections):
                if session.bound and session.transport is not None and not session.transport.is_closing():
                    session.transport.write(pack_header(16, UNBIND, 0, session.next_seq()))
                session.close()
        for carrier in self.carriers.values():
            if carrier.server is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(carrier.server.wait_closed(), 1.0)
                carrier.server = None
        await asyncio.sleep(0)

    # -- timers ------------------------------------------------------------------------------------

    def call_later(self, delay: float, callback: Callable[..., None], *args) -> None:
        """Run ``callback(*args)`` on a timer of its own in ``delay`` s (0: after the running callback)."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("simulator not started")
        if delay <= 0:
            loop.call_soon(callback, *args)
        else:
            loop.call_later(delay, callback, *args)

    def _arm(self) -> None:
        if self._loop is not None:
            self._handle = self._loop.call_later(self._tick, self._on_tick)

    def _on_tick(self) -> None:
        try:
            self.run_tick(time.monotonic())
        except Exception:
            log.exception("simulator tick failed")
        finally:
            self._arm()

    def run_tick(self, now: float) -> None:
        self.wall = time.time()
        for bucket in self._wheel.pop_due(now):
            for kind, a, b in bucket:
                if kind == RECEIPT:
                    b.deliveries.receipt_due(a, b)
                elif kind == RESPONSE:
                    a.unanswered -= 1
                    if not a.closed:
                        a.queue(b)
                elif kind == RECEIPT_AFTER_RESPONSE:
                    session, delay = b
                    session.deliveries.start_receipt_timer(a, session, delay)
                elif kind == BIND_DEADLINE:
                    a.bind_deadline()
                else:  # REQUEUE
                    b.pending.append(a)
        for carrier in self.carriers.values():
            faults = carrier.faults
            if faults.next_drop is not None and faults.drop_all_due(now):
                carrier.drop_all("drop_every_seconds")
            carrier.deliveries.on_tick(now)
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + 1.0
            self._housekeeping(now)
        if self.dirty:
            for session in self.dirty:
                if session.wbuf:
                    if not session.closed and session.transport is not None:
                        session.transport.write(b"".join(session.wbuf))
                    session.wbuf.clear()
            self.dirty.clear()

    def _housekeeping(self, now: float) -> None:
        for carrier in self.carriers.values():
            interval = carrier.settings.enquire_link_interval
            if not interval:
                continue
            for session in carrier.sessions:
                if now - session.last_rx >= interval and not session.closed:
                    session.last_rx = now  # one enquire_link per idle interval
                    session.queue(pack_header(16, ENQUIRE_LINK, 0, session.next_seq()))

    # -- MO ----------------------------------------------------------------------------------------

    def route_mo(self, phone: str, carrier: str | None = None) -> Carrier:
        return route_mo(self.carriers, self.store, phone, carrier)

    def send_mo(self, carrier: Carrier, phone: str, text: str, to: str) -> MoRecord:
        """Queue a citizen's SMS as deliver_sm (several parts with UDH when long); returns the MO record."""
        encoded, bodies = self._mo.compose(phone, text, to)
        record = self.store.add_mo(
            carrier.name, phone, to, text, encoded.encoding, encoded.data_coding, len(bodies)
        )
        deliveries = carrier.deliveries
        for body in bodies:
            deliveries.add_mo_part(body, record)
        if deliveries.each and carrier.receivers:
            deliveries.dispatch(time.monotonic())
        log.info(
            "mo queued", carrier=carrier.name, phone=mask(phone), parts=len(bodies), encoding=encoded.encoding
        )
        return record

    # -- reset / stats -----------------------------------------------------------------------------

    def reset(self, drop_sessions: bool = False) -> None:
        """Forget messages, MO, counters, queued deliver_sm; settings, faults, id counters as configured."""
        self.store.reset()
        self.generation += 1
        self._wheel.keep_only(_KEPT_BY_RESET)
        for carrier in self.carriers.values():
            carrier.reset()
            if drop_sessions:
                for session in list(carrier.connections):
                    session.close()
        log.info("simulator reset", drop_sessions=drop_sessions)

    def stats(self) -> dict:
        now = time.monotonic()
        return {
            "uptime_seconds": round(time.time() - self.started_at, 3),
            "messages_stored": len(self.store),
            "carriers": {name: carrier.info(now) for name, carrier in self.carriers.items()},
        }
