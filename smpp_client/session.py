"""One SMPP 3.4 bind to one SMSC over asyncio: window, correlation, keep-alive, reconnection.

The session owns its socket and never blocks the event loop. ``submit`` waits for a free slot in
the window, sends submit_sm and resolves with the submit_sm_resp matched by sequence number.
When the link drops, every request in flight fails with :class:`LinkDown` so the caller can put
its message back in the queue; the session reconnects with exponential backoff and jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from . import pdu as codec
from .constants import BIND_COMMANDS, RESPONSE_BIT, Cmd, Status, status_name

log = structlog.get_logger("smpp_client")


class SessionError(Exception):
    pass


class LinkDown(SessionError):
    """The link closed before the SMSC answered; the request may or may not have arrived."""


class ResponseTimeout(SessionError):
    pass


class NotBound(SessionError):
    pass


@dataclass(slots=True)
class SessionConfig:
    carrier: str
    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    window: int = 10
    enquire_link_seconds: float = 30.0
    response_timeout_seconds: float = 30.0
    reconnect_min_seconds: float = 1.0
    reconnect_max_seconds: float = 60.0
    connect_timeout_seconds: float = 10.0


DeliverHandler = Callable[["SmppSession", codec.Pdu], Awaitable[int]]


class SmppSession:
    def __init__(self, config: SessionConfig, on_deliver: DeliverHandler, index: int = 0):
        self.config = config
        self.on_deliver = on_deliver
        self.label = f"{config.carrier}#{index}"
        self.state = "idle"
        self.bound = asyncio.Event()
        self._window = asyncio.Semaphore(config.window)
        self._pending: dict[int, tuple[asyncio.Future, float]] = {}
        self._seq = 0
        self._writer: asyncio.StreamWriter | None = None
        self._stopping = False
        self._closed = asyncio.Event()
        self._drained = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._last_rx = 0.0
        self.binds = 0
        self.last_error: str | None = None
        self.bound_callback: Callable[[], None] | None = None

    # --- public -------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    @property
    def free_window(self) -> int:
        return self.config.window - len(self._pending) if self.bound.is_set() else 0

    async def submit(self, **fields) -> codec.Pdu:
        """Send submit_sm (fields as in pdu.SCHEMAS, plus ``tlvs``); returns the submit_sm_resp."""
        tlvs = fields.pop("tlvs", None)
        return await self.request(Cmd.SUBMIT_SM, tlvs=tlvs, **fields)

    async def request(self, command_id: int, tlvs: dict | None = None, **fields) -> codec.Pdu:
        if self._stopping or not self.bound.is_set():
            raise NotBound(f"{self.label} is not bound")
        async with self._window:
            writer = self._writer
            if writer is None or not self.bound.is_set():
                raise NotBound(f"{self.label} is not bound")
            seq = self._next_seq()
            future = asyncio.get_running_loop().create_future()
            self._pending[seq] = (future, time.monotonic() + self.config.response_timeout_seconds)
            try:
                writer.write(codec.make(command_id, seq, tlvs=tlvs, **fields))
                if writer.transport.get_write_buffer_size() > 256 * 1024:
                    await writer.drain()
                return await future
            finally:
                self._pending.pop(seq, None)
                if not self._pending:
                    self._drained.set()

    async def run(self) -> None:
        """Keep the bind up until :meth:`stop`."""
        delay = self.config.reconnect_min_seconds
        while not self._stopping:
            try:
                await self._connect_and_serve()
                delay = self.config.reconnect_min_seconds
            except (TimeoutError, OSError, SessionError) as exc:
                self.last_error = str(exc) or type(exc).__name__
                if not self._stopping:
                    log.warning("smpp link failed", session=self.label, error=self.last_error)
            finally:
                self._link_lost()
            if self._stopping:
                break
            sleep = delay * random.uniform(0.5, 1.0)
            self.state = "reconnecting"
            log.info("smpp reconnecting", session=self.label, in_seconds=round(sleep, 2))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._closed.wait(), sleep)
            delay = min(delay * 2, self.config.reconnect_max_seconds)
        self.state = "closed"

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop submitting, wait for the responses in flight, unbind, close."""
        self._stopping = True
        deadline = time.monotonic() + timeout
        if self._pending:
            self._drained.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._drained.wait(), timeout)
        writer = self._writer
        if writer is not None and self.bound.is_set():
            self.bound.clear()
            seq = self._next_seq()
            future = asyncio.get_running_loop().create_future()
            self._pending[seq] = (future, time.monotonic() + 2)
            with contextlib.suppress(Exception):
                writer.write(codec.make(Cmd.UNBIND, seq))
                await asyncio.wait_for(future, max(0.1, min(2.0, deadline - time.monotonic())))
        self._closed.set()
        self._close_writer()

    # --- internals ----------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = self._seq + 1 if self._seq < 0x7FFFFFFF else 1
        return self._seq

    async def _connect_and_serve(self) -> None:
        cfg = self.config
        self.state = "connecting"
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(cfg.host, cfg.port), cfg.connect_timeout_seconds
        )
        self._writer = writer
        self._last_rx = time.monotonic()
        frames = codec.FrameBuffer()
        self.state = "binding"
        seq = self._next_seq()
        writer.write(
            codec.make(
                Cmd.BIND_TRANSCEIVER,
                seq,
                system_id=cfg.system_id,
                password=cfg.password,
                system_type=cfg.system_type,
                interface_version=0x34,
            )
        )
        resp = await asyncio.wait_for(self._read_bind_resp(reader, frames, seq), cfg.response_timeout_seconds)
        if resp.status != Status.ESME_ROK:
            raise SessionError(f"bind refused: {status_name(resp.status)}")
        self.binds += 1
        self.state = "bound"
        self.last_error = None
        self.bound.set()
        log.info("smpp bound", session=self.label, smsc=resp.get("system_id", ""))
        if self.bound_callback is not None:
            self.bound_callback()
        keepalive = asyncio.create_task(self._keepalive())
        try:
            await self._read_loop(reader, frames)
        finally:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive

    async def _read_bind_resp(self, reader, frames: codec.FrameBuffer, seq: int) -> codec.Pdu:
        while True:
            data = await reader.read(65536)
            if not data:
                raise LinkDown("connection closed during bind")
            for frame in frames.feed(data):
                p = codec.decode(frame)
                if p.sequence == seq and p.command_id in (Cmd.BIND_TRANSCEIVER_RESP, Cmd.GENERIC_NACK):
                    return p

    async def _read_loop(self, reader: asyncio.StreamReader, frames: codec.FrameBuffer) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                raise LinkDown("connection closed by SMSC")
            self._last_rx = time.monotonic()
            try:
                batch = frames.feed(data)
            except codec.PduError as exc:
                self._send(codec.generic_nack(0, exc.status))
                raise LinkDown(f"stream corrupt: {exc}") from exc
            for frame in batch:
                if self._handle_frame(frame) is False:
                    return

    def _handle_frame(self, frame: bytes) -> bool | None:
        try:
            p = codec.decode(frame)
        except codec.PduError as exc:
            log.warning("smpp bad pdu from smsc", session=self.label, error=str(exc))
            cid = exc.command_id
            if cid is None or cid & RESPONSE_BIT or cid not in codec.SCHEMAS:
                self._send(codec.generic_nack(exc.sequence, exc.status))
            else:
                self._send(codec.make(cid | RESPONSE_BIT, exc.sequence, exc.status))
            return None
        cid = p.command_id
        if cid & RESPONSE_BIT:
            entry = self._pending.get(p.sequence)
            if entry is not None and not entry[0].done():
                entry[0].set_result(p)
            elif cid == Cmd.GENERIC_NACK:
                log.warning("smpp generic_nack", session=self.label, status=status_name(p.status))
            return None
        if cid == Cmd.DELIVER_SM:
            task = asyncio.create_task(self._deliver(p))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif cid == Cmd.ENQUIRE_LINK:
            self._send(codec.make(Cmd.ENQUIRE_LINK_RESP, p.sequence))
        elif cid == Cmd.UNBIND:
            self._send(codec.make(Cmd.UNBIND_RESP, p.sequence))
            log.info("smpp unbound by smsc", session=self.label)
            return False
        elif cid == Cmd.ALERT_NOTIFICATION:
            pass
        elif cid in BIND_COMMANDS or cid == Cmd.OUTBIND:
            self._send(codec.make(cid | RESPONSE_BIT, p.sequence, Status.ESME_RALYBND))
        else:
            self._send(codec.generic_nack(p.sequence, Status.ESME_RINVCMDID))
        return None

    async def _deliver(self, p: codec.Pdu) -> None:
        try:
            status = await self.on_deliver(self, p)
        except Exception:
            log.exception("deliver_sm handler failed", session=self.label)
            status = Status.ESME_RX_T_APPN  # temporary: the SMSC will retry
        self._send(codec.make(Cmd.DELIVER_SM_RESP, p.sequence, status, message_id=""))

    async def _keepalive(self) -> None:
        cfg = self.config
        interval = cfg.enquire_link_seconds
        tick = min(1.0, interval / 2)
        last_probe = 0.0
        probe: tuple[int, float] | None = None
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for seq, (future, deadline) in list(self._pending.items()):
                if now > deadline and not future.done():
                    future.set_exception(ResponseTimeout(f"no response to sequence {seq}"))
            if probe is not None:
                seq, sent = probe
                if self._last_rx > sent:
                    probe = None
                elif now - sent > cfg.response_timeout_seconds:
                    log.warning("smpp enquire_link unanswered; dropping link", session=self.label)
                    self._close_writer()
                    return
            if probe is None and now - max(self._last_rx, last_probe) >= interval:
                seq = self._next_seq()
                self._send(codec.make(Cmd.ENQUIRE_LINK, seq))
                probe = (seq, now)
                last_probe = now

    def _send(self, data: bytes) -> None:
        writer = self._writer
        if writer is not None and not writer.is_closing():
            writer.write(data)

    def _close_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    def _link_lost(self) -> None:
        self.bound.clear()
        self._close_writer()
        for seq, (future, _) in list(self._pending.items()):
            if not future.done():
                future.set_exception(LinkDown(f"{self.label} link lost with sequence {seq} unanswered"))
        if self.state != "closed":
            self.state = "down"
