"""Carriers and their binds: turns one outbox message into submit_sm PDUs on the right link."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from .concat import ConcatMethod, ReferenceCounter, split
from .constants import TEMPORARY_STATUSES, Status, status_name
from .pdu import Pdu
from .rate import TokenBucket
from .router import Router
from .session import SessionConfig, SessionError, SmppSession
from .text_encoding import Transliteration, encode_text

log = structlog.get_logger("smpp_client")

# (carrier name, deliver_sm) -> command_status for the deliver_sm_resp
DeliverCallback = Callable[[str, Pdu], Awaitable[int]]

LINK_ERROR = -1  # not an SMPP status: the link failed before an answer came


@dataclass(slots=True)
class SendOutcome:
    carrier: str | None
    smsc_ids: list[str] = field(default_factory=list)
    status: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == Status.ESME_ROK and not self.error

    @property
    def temporary(self) -> bool:
        return self.status == LINK_ERROR or self.status in TEMPORARY_STATUSES


class Carrier:
    def __init__(self, settings, source_addr: str, on_deliver: DeliverCallback):
        self.settings = settings
        self.name = settings.name
        self.source_addr = source_addr
        self.bucket = TokenBucket(settings.tps)
        self.concat = ConcatMethod(settings.concat)
        self.references = ReferenceCounter(bits=16 if self.concat == ConcatMethod.UDH16 else 8)
        config = SessionConfig(
            carrier=settings.name,
            host=settings.host,
            port=settings.port,
            system_id=settings.system_id,
            password=settings.password,
            system_type=settings.system_type,
            window=settings.window,
            enquire_link_seconds=settings.enquire_link_seconds,
            response_timeout_seconds=settings.response_timeout_seconds,
            reconnect_min_seconds=settings.reconnect_min_seconds,
            reconnect_max_seconds=settings.reconnect_max_seconds,
        )

        async def deliver(session: SmppSession, pdu: Pdu) -> int:
            return await on_deliver(self.name, pdu)

        self.sessions = [SmppSession(config, deliver, index=i) for i in range(settings.binds)]
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(s.run(), name=s.label) for s in self.sessions]

    async def stop(self, timeout: float = 5.0) -> None:
        await asyncio.gather(*(s.stop(timeout) for s in self.sessions), return_exceptions=True)
        for task in self._tasks:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, 2)

    @property
    def is_bound(self) -> bool:
        return any(s.bound.is_set() for s in self.sessions)

    @property
    def free_window(self) -> int:
        return sum(s.free_window for s in self.sessions)

    def _session(self) -> SmppSession | None:
        bound = [s for s in self.sessions if s.bound.is_set()]
        return max(bound, key=lambda s: s.free_window) if bound else None

    async def send(self, msisdn: str, body: str) -> SendOutcome:
        encoded = encode_text(body, Transliteration.OFF)
        destination = msisdn.lstrip("+")
        parts = split(encoded, self.concat, self.references.next(destination))
        session = self._session()
        if session is None:
            return SendOutcome(self.name, status=LINK_ERROR, error=f"{self.name}: no bound link")
        await self.bucket.acquire(len(parts))
        s = self.settings
        try:
            responses = await asyncio.gather(
                *(
                    session.submit(
                        source_addr_ton=s.source_addr_ton,
                        source_addr_npi=s.source_addr_npi,
                        source_addr=self.source_addr,
                        dest_addr_ton=s.dest_addr_ton,
                        dest_addr_npi=s.dest_addr_npi,
                        destination_addr=destination,
                        esm_class=part.esm_class,
                        registered_delivery=1,
                        data_coding=encoded.data_coding,
                        short_message=part.short_message,
                        tlvs=part.tlvs or None,
                    )
                    for part in parts
                )
            )
        except SessionError as exc:
            return SendOutcome(self.name, status=LINK_ERROR, error=str(exc))
        for resp in responses:
            if resp.status != Status.ESME_ROK:
                return SendOutcome(self.name, status=resp.status, error=status_name(resp.status))
        return SendOutcome(self.name, [resp.get("message_id", "") for resp in responses])


class CarrierPool:
    def __init__(self, carrier_settings: list, source_addr: str, on_deliver: DeliverCallback):
        self.carriers = {c.name: Carrier(c, source_addr, on_deliver) for c in carrier_settings}
        self.router = Router(list(self.carriers))

    def start(self) -> None:
        for carrier in self.carriers.values():
            carrier.start()

    async def stop(self, timeout: float = 5.0) -> None:
        await asyncio.gather(*(c.stop(timeout) for c in self.carriers.values()))

    @property
    def any_bound(self) -> bool:
        return any(c.is_bound for c in self.carriers.values())

    def capacity(self) -> int:
        """Messages the links could take now (free window slots across bound binds)."""
        return sum(c.free_window for c in self.carriers.values())

    async def send(self, msisdn: str, body: str) -> SendOutcome:
        last = SendOutcome(None, status=LINK_ERROR, error="no carrier has a bound link")
        for name in self.router.candidates(msisdn):
            carrier = self.carriers[name]
            if not carrier.is_bound:
                continue
            last = await carrier.send(msisdn, body)
            if last.status != LINK_ERROR:
                return last
        return last

    async def wait_bound(self, timeout: float) -> bool:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(
                asyncio.wait(
                    [
                        asyncio.ensure_future(s.bound.wait())
                        for c in self.carriers.values()
                        for s in c.sessions
                    ],
                    return_when=asyncio.FIRST_COMPLETED,
                ),
                timeout,
            )
        return self.any_bound
