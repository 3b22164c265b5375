"""One SMPP 3.4 bind to one SMSC over asyncio: connect, bind, keep alive, reconnect, stop.

- Window: at most ``window`` requests unanswered (:mod:`smpp_client.window`). :meth:`send` and
  :meth:`send_body` register an entry under a fresh sequence number and queue the PDU on the
  current :class:`~smpp_client.connection.Connection`, which matches the response to it.
- Response timeout: an entry unanswered after ``response_timeout_seconds`` fails with
  RESPONSE_TIMEOUT (its message goes back to the queue, it is not lost); after
  ``max_consecutive_timeouts`` in a row with no answer in between the link is reset.
- Keep-alive: enquire_link when nothing was received for ``enquire_link_seconds``; a probe left
  unanswered for ``response_timeout_seconds`` drops the link.
- Link loss: every entry in the window fails with LINK_LOST; the session reconnects with
  exponential backoff and jitter (a refused bind backs off the same way: it is usually a
  configuration error, never a hot loop).
- Shutdown (:meth:`stop`): stop taking submits, wait for the responses in flight, unbind, close.

What the owner hears (bound, down, a window slot freed, an unusable message id) goes to a
:class:`SessionListener`; deliver_sm and data_sm go to the ``on_deliver`` handler, which answers
through ``respond(status)`` exactly once, now or later.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import structlog

from . import pdu as codec
from .config import SessionConfig
from .connection import Connection
from .constants import RESPONSE_BIT, Cmd, Status
from .errors import LINK_LOST, RESPONSE_TIMEOUT, BindRefused, LinkDown, NotBound, SessionError
from .window import FutureEntry, Pending, RequestWindow, guarded

log = structlog.get_logger("smpp_client")

_HEADER = codec.HEADER
_ENQUIRE_LINK = int(Cmd.ENQUIRE_LINK)
_UNBIND = int(Cmd.UNBIND)

BIND_KINDS = {
    "transceiver": Cmd.BIND_TRANSCEIVER,
    "transmitter": Cmd.BIND_TRANSMITTER,
    "receiver": Cmd.BIND_RECEIVER,
}

# on_deliver(session, deliver_sm, respond, patient): the handler calls respond(status) exactly once,
# now or later (e.g. after the receipt is stored); the deliver_sm_resp goes out then. ``patient``:
# the SMSC was seen with several deliver_sm unanswered on this connection, so it does not wait for
# each answer before sending the next (answering a little later costs it nothing).
DeliverHandler = Callable[["SmppSession", codec.Pdu, Callable[[int], None], bool], Any]


class SessionListener:
    """What the owner of a session hears (a Carrier); every method is optional to override."""

    def session_bound(self, session: SmppSession) -> None:
        pass

    def session_down(self, session: SmppSession) -> None:
        pass

    def window_freed(self, session: SmppSession) -> None:
        pass

    def unusable_message_id(self, session: SmppSession, raw: bytes) -> None:
        """An ESME_ROK whose message id cannot be used (the submit fails as INVALID_MESSAGE_ID)."""


class SmppSession:
    def __init__(
        self, config: SessionConfig, on_deliver: DeliverHandler, listener: SessionListener | None = None
    ):
        if config.bind_kind not in BIND_KINDS:
            raise ValueError(f"unknown bind kind {config.bind_kind!r}")
        self.config = config
        self.on_deliver = on_deliver
        self.kind = config.bind_kind
        self.label = config.label
        self.listener = listener or SessionListener()
        self.state = "idle"
        self.bound = asyncio.Event()
        self.window_size = config.window
        self.window = RequestWindow()
        self._connection: Connection | None = None
        self._stopping = False
        self._closed = asyncio.Event()
        self._drained: asyncio.Event | None = None
        self._probe: tuple[int, float] | None = None
        self.consecutive_timeouts = 0
        # counters (metrics)
        self.binds = 0
        self.bind_failures = 0
        self.submits = 0
        self.responses = 0
        self.timeouts = 0
        self.links_lost = 0
        self.bad_pdus = 0
        self.deliver_sm = 0
        self.data_sm = 0
        self.bad_message_ids = 0
        self.unexpected: Counter[str] = Counter()  # PDUs refused or dropped, by command name
        self.last_error: str | None = None
        self.bound_since: float | None = None

    # --- public -------------------------------------------------------------------------------

    @property
    def can_submit(self) -> bool:
        connection = self._connection
        return (
            self.state == "bound"
            and not self._stopping
            and self.kind != "receiver"
            and connection is not None
            and connection.transport is not None
        )

    @property
    def is_bound(self) -> bool:
        return self.state == "bound"

    @property
    def in_flight(self) -> int:
        return len(self.window.entries)

    @property
    def free_window(self) -> int:
        return self.window_size - len(self.window.entries) if self.can_submit else 0

    @property
    def _open(self) -> bool:
        connection = self._connection
        return connection is not None and connection.transport is not None

    def send(self, command_id: int, entry: Pending, tlvs: dict | None = None, **fields) -> int:
        """Queue a request whose answer resolves ``entry``; the caller checked ``free_window``."""
        if not self.can_submit:
            raise NotBound(f"{self.label} is not bound")
        seq = self.window.add(command_id, entry, time.monotonic() + self.config.response_timeout_seconds)
        self.submits += 1
        self._connection.write(codec.make(command_id, seq, tlvs=tlvs, **fields))
        return seq

    def send_body(self, command_id: int, body: bytes, entry: Pending, now: float) -> int:
        """:meth:`send` for a body encoded once (``pdu.encode_body``), the hot path."""
        if not self.can_submit:
            raise NotBound(f"{self.label} is not bound")
        seq = self.window.add(command_id, entry, now + self.config.response_timeout_seconds)
        self.submits += 1
        self._connection.write(_HEADER.pack(16 + len(body), command_id, 0, seq) + body)
        return seq

    async def submit(self, **fields) -> codec.Pdu:
        """Send submit_sm and wait for its submit_sm_resp (a convenience for tools and tests)."""
        tlvs = fields.pop("tlvs", None)
        return await self.request(Cmd.SUBMIT_SM, tlvs=tlvs, **fields)

    async def request(self, command_id: int, tlvs: dict | None = None, **fields) -> codec.Pdu:
        if not self._open or self.state != "bound":
            raise NotBound(f"{self.label} is not bound")
        future = asyncio.get_running_loop().create_future()
        seq = self.window.add(
            command_id, FutureEntry(future), time.monotonic() + self.config.response_timeout_seconds
        )
        self._connection.write(codec.make(command_id, seq, tlvs=tlvs, **fields))
        return await future

    async def run(self) -> None:
        """Keep the bind up until :meth:`stop`."""
        cfg = self.config
        delay = cfg.reconnect_min_seconds
        while not self._stopping:
            try:
                await self._connect_and_serve()
            except (TimeoutError, OSError, SessionError, codec.PduError) as exc:
                self.last_error = str(exc) or type(exc).__name__
                if isinstance(exc, BindRefused):
                    self.bind_failures += 1
                if not self._stopping:
                    log.warning("smpp link failed", session=self.label, error=self.last_error)
            except asyncio.CancelledError:
                self._link_lost("cancelled")
                raise
            except Exception:  # a bug must not end the bind for good
                self.last_error = "internal error"
                log.exception("smpp session error", session=self.label)
            was_bound = self.bound_since is not None
            bound_for = time.monotonic() - self.bound_since if was_bound else 0.0
            self._link_lost(self.last_error or "closed")
            if self._stopping:
                break
            if bound_for >= max(5.0, cfg.reconnect_min_seconds * 4):
                delay = cfg.reconnect_min_seconds  # it was a working link: come back fast
            sleep = delay * random.uniform(0.5, 1.0)
            self.state = "reconnecting"
            log.info("smpp reconnecting", session=self.label, in_seconds=round(sleep, 3))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._closed.wait(), sleep)
            delay = min(delay * 2, cfg.reconnect_max_seconds)
        self.state = "closed"

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop submitting, wait for the responses in flight, unbind, close."""
        self._stopping = True
        deadline = time.monotonic() + timeout
        if self.window.entries and self._open:
            self._drained = asyncio.Event()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._drained.wait(), timeout)
            self._drained = None
        connection = self._connection
        if connection is not None and self._open and self.state == "bound":
            future = asyncio.get_running_loop().create_future()
            seq = self.window.add(_UNBIND, FutureEntry(future), time.monotonic() + 2.0)
            connection.write(codec.make(Cmd.UNBIND, seq))
            self.state = "unbinding"
            with contextlib.suppress(Exception):
                await asyncio.wait_for(future, max(0.1, min(2.0, deadline - time.monotonic())))
        self._closed.set()
        if self._connection is not None:
            self._connection.close()

    def snapshot(self) -> dict:
        """This bind's state and counters (for /metrics and the dashboard)."""
        return {
            "bind": self.label,
            "kind": self.kind,
            "state": self.state,
            "bound": self.is_bound,
            "window": self.window_size,
            "in_flight": self.in_flight,
            "submits": self.submits,
            "responses": self.responses,
            "timeouts": self.timeouts,
            "binds": self.binds,
            "bind_failures": self.bind_failures,
            "links_lost": self.links_lost,
            "bad_pdus": self.bad_pdus,
            "deliver_sm": self.deliver_sm,
            "data_sm": self.data_sm,
            "unexpected": dict(self.unexpected),
        }

    # --- what the connection reports ----------------------------------------------------------

    def window_freed(self) -> None:
        if self._drained is not None and not self.window.entries:
            self._drained.set()
        self.listener.window_freed(self)

    # --- connecting and binding ---------------------------------------------------------------

    async def _connect_and_serve(self) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        self.state = "connecting"
        connection = self._connection = Connection(self)
        self._probe = None
        await asyncio.wait_for(
            loop.create_connection(lambda: connection, cfg.host, cfg.port), cfg.connect_timeout_seconds
        )
        self.state = "binding"
        seq = self.window.next_seq()
        command = BIND_KINDS[self.kind]
        answer = connection.expect_bind(seq, int(command) | RESPONSE_BIT)
        connection.write(
            codec.make(
                command,
                seq,
                system_id=cfg.system_id,
                password=cfg.password,
                system_type=cfg.system_type,
                interface_version=0x34,
            )
        )
        done, _ = await asyncio.wait(
            {answer, connection.lost},
            timeout=cfg.response_timeout_seconds,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if answer not in done or answer.cancelled():
            raise LinkDown("connection closed during bind") if done else TimeoutError("no bind response")
        resp: codec.Pdu = answer.result()
        if resp.status != Status.ESME_ROK:
            raise BindRefused(resp.status)
        self.binds += 1
        self.state = "bound"
        self.last_error = None
        self.bound_since = time.monotonic()
        self.consecutive_timeouts = 0
        self.bound.set()
        log.info("smpp bound", session=self.label, smsc=resp.get("system_id", ""), bind=self.kind)
        self.listener.session_bound(self)
        keepalive = asyncio.create_task(self._keepalive(connection), name=f"{self.label}-keepalive")
        try:
            reason = await connection.lost
        finally:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive
        if not self._stopping:
            raise LinkDown(reason)

    def _link_lost(self, reason: str) -> None:
        """The connection is gone: fail everything in the window (back to the queue)."""
        was_bound = self.state in ("bound", "unbinding")
        self.bound.clear()
        self.bound_since = None
        if self._connection is not None:
            self._connection.close(reason)
            self._connection = None
        pending = self.window.clear()
        if was_bound:
            self.links_lost += 1
            if not self._stopping:
                log.warning("smpp link lost", session=self.label, reason=reason, in_flight=len(pending))
        for entry in pending:
            guarded(self.label, entry.fail, LINK_LOST)
        if self._drained is not None:
            self._drained.set()
        if self.state != "closed":
            self.state = "down"
        if was_bound:
            self.listener.session_down(self)

    # --- timers -------------------------------------------------------------------------------

    async def _keepalive(self, connection: Connection) -> None:
        cfg = self.config
        interval = cfg.enquire_link_seconds
        tick = max(0.02, min(1.0, interval / 2, cfg.response_timeout_seconds / 4))
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            self._expire(now)
            if connection.closed:
                return
            probe = self._probe
            if probe is not None:
                seq, sent = probe
                if connection.last_rx > sent:
                    self._probe = None
                elif now - sent > cfg.response_timeout_seconds:
                    log.warning("smpp enquire_link unanswered; dropping link", session=self.label)
                    connection.close("enquire_link unanswered")
                    return
            elif now - connection.last_rx >= interval:
                seq = self.window.next_seq()
                connection.write(_HEADER.pack(16, _ENQUIRE_LINK, 0, seq))
                self._probe = (seq, now)

    def _expire(self, now: float) -> None:
        if not self.window.entries:
            return
        expired = self.window.expired(now)
        if not expired:
            return
        for entry in expired:
            self.timeouts += 1
            self.consecutive_timeouts += 1
            guarded(self.label, entry.fail, RESPONSE_TIMEOUT)
        log.warning("smpp responses timed out", session=self.label, count=len(expired))
        self.window_freed()
        limit = self.config.max_consecutive_timeouts
        connection = self._connection
        if limit and self.consecutive_timeouts >= limit and connection is not None and not connection.closed:
            log.warning(
                "smpp responses keep timing out; resetting the link",
                session=self.label,
                in_a_row=self.consecutive_timeouts,
            )
            connection.close(f"{self.consecutive_timeouts} responses timed out in a row")
