"""One simulated carrier: its listening socket, settings, connections and binds, limits, faults, counters.

Its submit_sm path is a :class:`~simulator.submit.SubmitHandler`, its deliver_sm a
:class:`~simulator.deliveries.DeliveryQueue`; this class holds what they share.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import structlog

from .deliveries import DeliveryQueue
from .faults import FaultState
from .settings import SimCarrierSettings
from .stats import Stats
from .submit import SubmitHandler
from .token_bucket import TokenBucket
from .wire import RX

if TYPE_CHECKING:
    from .session import SmppSession
    from .smsc import Smsc

log = structlog.get_logger("simulator")

_REFUSED_LOG_EVERY = 10.0  # seconds between two log lines about refused connections


class Carrier:
    def __init__(self, engine: Smsc, settings: SimCarrierSettings):
        self.engine = engine
        self.name = settings.name
        self.configured = settings
        self.connections: set[SmppSession] = set()
        self.sessions: list[SmppSession] = []  # bound
        self.receivers: list[SmppSession] = []  # bound with RX
        self.stats = Stats()
        self.limiter = TokenBucket(None)
        self.faults = FaultState(settings.faults, engine.rng)
        self.deliveries = DeliveryQueue(self)
        self.submits = SubmitHandler(self, engine.ids)
        self.server: asyncio.Server | None = None
        self.port = settings.port
        self._refused_logged = -_REFUSED_LOG_EVERY
        self.apply(settings, restart_ids=True)

    # -- settings ----------------------------------------------------------------------------------

    def apply(self, settings: SimCarrierSettings, restart_ids: bool = False) -> None:
        self.settings = settings
        self.limiter.configure(settings.tps, settings.tps_burst)
        self.submits.configure(settings, restart_ids)
        self.deliveries.configure(settings)

    def update(self, changes: dict) -> SimCarrierSettings:
        """Change settings at run time (validated); setting ``message_id_start`` restarts the id counter."""
        forbidden = {"name", "host", "port", "faults"} & set(changes)
        if forbidden:
            raise ValueError(f"cannot change {', '.join(sorted(forbidden))} at run time")
        current = self.settings.model_dump()
        current.update(changes)
        new = SimCarrierSettings.model_validate(current)
        self.apply(new, restart_ids="message_id_start" in changes)
        log.info("carrier settings changed", carrier=self.name, keys=sorted(changes))
        return new

    def reset(self) -> None:
        """Counters, queued deliver_sm, settings, faults and the id counter as configured."""
        self.deliveries.clear()
        for session in self.connections:
            session.outstanding.clear()
            session.timeouts.clear()
        self.stats = Stats()
        self.apply(self.configured, restart_ids=True)
        self.faults.set(self.configured.faults)

    # -- connections and sessions ------------------------------------------------------------------

    def admit(self, session: SmppSession) -> bool:
        """Take a new connection, or refuse it (False) when the carrier has ``max_connections``."""
        if len(self.connections) >= self.settings.max_connections:
            self.stats.connections_refused += 1
            now = time.monotonic()
            if now - self._refused_logged >= _REFUSED_LOG_EVERY:
                self._refused_logged = now
                log.warning(
                    "connection refused: too many connections",
                    carrier=self.name,
                    max_connections=self.settings.max_connections,
                    refused=self.stats.connections_refused,
                )
            return False
        self.connections.add(session)
        return True

    def session_bound(self, session: SmppSession) -> None:
        self.sessions.append(session)
        if session.bound & RX:
            self.receivers.append(session)

    def session_gone(self, session: SmppSession) -> None:
        self.connections.discard(session)
        if session in self.sessions:
            self.sessions.remove(session)
        if session in self.receivers:
            self.receivers.remove(session)
        if session.outstanding:
            items = list(session.outstanding.values())
            session.outstanding.clear()
            self.deliveries.take_back(items)
        session.timeouts.clear()
        session.closed = True

    def drop_all(self, reason: str) -> int:
        dropped = 0
        for session in list(self.connections):
            session.close()
            dropped += 1
        if dropped:
            self.stats.links_dropped += dropped
            log.info("fault: dropping links", carrier=self.name, reason=reason, links=dropped)
        return dropped

    # -- introspection -----------------------------------------------------------------------------

    def info(self, now: float | None = None) -> dict:
        now = time.monotonic() if now is None else now
        binds = {"transmitter": 0, "receiver": 0, "transceiver": 0}
        for session in self.sessions:
            binds[session.bind_kind] += 1
        data = {
            "name": self.name,
            "port": self.port,
            "binds": binds,
            "bound": len(self.sessions),
            "connections": len(self.connections),
            "deliver_sm_queued": len(self.deliveries.pending),
            "deliver_sm_outstanding": sum(len(s.outstanding) for s in self.sessions),
            "faults_on": self.faults.any_on(now),
        }
        data.update(self.stats.as_dict(now))
        return data
