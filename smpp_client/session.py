"""One SMPP 3.4 bind to one SMSC over asyncio: window, correlation, keep-alive, reconnection.

One module on purpose (longer than most): the read path, the window and the timers share the
session's state, and the hot path stays free of calls across modules.

The session owns its socket (an asyncio ``Protocol``: bytes are handled as they arrive, no task
per read) and never blocks the event loop.

- Window: at most ``window`` requests unanswered. :meth:`SmppSession.send` registers a
  :class:`Pending` entry under a fresh sequence number and queues the PDU; the response matched by
  sequence number resolves the entry (a callback: no future nor task per message). Writes made
  in one turn of the event loop leave in one ``transport.write``.
- Response timeout: an entry unanswered after ``response_timeout_seconds`` fails with
  RESPONSE_TIMEOUT (its message goes back to the queue, it is not lost); after
  ``max_consecutive_timeouts`` in a row with no answer in between the link is reset.
- Keep-alive: enquire_link when nothing was received for ``enquire_link_seconds``; a probe left
  unanswered for ``response_timeout_seconds`` drops the link.
- Link loss: every entry in the window fails with LINK_LOST; the session reconnects with
  exponential backoff and jitter (a refused bind backs off the same way: it is usually a
  configuration error, never a hot loop).
- Hostile input: nothing a peer sends can raise out of the read path, and every PDU an SMSC may
  send is served or refused cleanly. deliver_sm and data_sm go to the handler (receipts, MO) and
  are answered with their own response; enquire_link and unbind are answered; a bind request gets
  ESME_RALYBND; submit_sm, submit_multi, query_sm, replace_sm and cancel_sm (an ESME serves none)
  get their response with ESME_RINVCMDID; outbind, which has no response, gets generic_nack with
  ESME_RINVBNDSTS (it only means something on a connection the SMSC opens to an unbound ESME, and
  a nack tells the SMSC it was not acted on); alert_notification, which has none either, is
  counted and dropped; an unknown command gets generic_nack. A response is taken only by the
  request of its own kind and sequence number; any other is a stray, counted and dropped. A
  submit_sm_resp id that cannot be used (:mod:`smpp_client.message_ids`) fails that submit as
  INVALID_MESSAGE_ID; the id is never handed on. Unknown TLVs are kept. An impossible
  command_length or garbage closes the link cleanly (generic_nack first), and the window's
  messages go back to the queue. The first PDU of each unexpected kind is logged per session;
  the rest are counted (``unexpected``).
- Shutdown (:meth:`stop`): stop taking submits, wait for the responses in flight, unbind, close.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from . import pdu as codec
from .constants import BIND_COMMANDS, RESPONSE_BIT, Cmd, Status, status_name
from .errors import INVALID_MESSAGE_ID, LINK_LOST, RESPONSE_TIMEOUT
from .message_ids import usable_bytes

log = structlog.get_logger("smpp_client")

_HEADER = codec.HEADER
_unpack_header = _HEADER.unpack_from
_SUBMIT_SM = int(Cmd.SUBMIT_SM)
_SUBMIT_SM_RESP = int(Cmd.SUBMIT_SM_RESP)
_DELIVER_SM = int(Cmd.DELIVER_SM)
_DATA_SM = int(Cmd.DATA_SM)
_ENQUIRE_LINK = int(Cmd.ENQUIRE_LINK)
_ENQUIRE_LINK_RESP = int(Cmd.ENQUIRE_LINK_RESP)
_GENERIC_NACK = int(Cmd.GENERIC_NACK)
_UNBIND = int(Cmd.UNBIND)
_RESP = RESPONSE_BIT
_MAX_SEQ = 0x7FFFFFFF
# requests only an SMSC serves: answered with their own response and ESME_RINVCMDID
_REFUSED = frozenset(
    int(c) for c in (Cmd.SUBMIT_SM, Cmd.SUBMIT_MULTI, Cmd.QUERY_SM, Cmd.REPLACE_SM, Cmd.CANCEL_SM)
)
_BINDS = frozenset(int(c) for c in BIND_COMMANDS)


def command_name(command_id: int) -> str:
    try:
        return Cmd(command_id).name.lower()
    except ValueError:
        return f"0x{command_id:08x}"

BIND_KINDS = {
    "transceiver": Cmd.BIND_TRANSCEIVER,
    "transmitter": Cmd.BIND_TRANSMITTER,
    "receiver": Cmd.BIND_RECEIVER,
}


class SessionError(Exception):
    pass


class LinkDown(SessionError):
    """The link closed before the SMSC answered; the request may or may not have arrived."""


class ResponseTimeout(SessionError):
    pass


class NotBound(SessionError):
    pass


class BindRefused(SessionError):
    def __init__(self, status: int):
        super().__init__(f"bind refused: {status_name(status)}")
        self.status = status


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
    max_consecutive_timeouts: int = 3
    bind_kind: str = "transceiver"


class Pending:
    """A request in the window. Subclasses say what an answer or a failure means.

    ``command`` (set by the session) is the request's command_id: only a response of that kind
    (or a generic_nack) resolves it."""

    __slots__ = ("command", "deadline")

    def resolve(self, status: int, message_id: str, pdu: codec.Pdu | None) -> None:
        raise NotImplementedError

    def fail(self, code: int) -> None:
        raise NotImplementedError


class _FutureEntry(Pending):
    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future):
        self.future = future

    def resolve(self, status: int, message_id: str, pdu: codec.Pdu | None) -> None:
        if not self.future.done():
            if pdu is None:  # the fast path read only the status and message id of a submit_sm_resp
                pdu = codec.Pdu(self.command | RESPONSE_BIT, 0, status, {"message_id": message_id})
            self.future.set_result(pdu)

    def fail(self, code: int) -> None:
        if not self.future.done():
            if code == RESPONSE_TIMEOUT:
                self.future.set_exception(ResponseTimeout("no response in time"))
            else:
                self.future.set_exception(LinkDown("link lost before the response"))


# on_deliver(session, deliver_sm, respond): the handler calls respond(status) exactly once,
# now or later (e.g. after the receipt is committed); the deliver_sm_resp goes out then.
DeliverHandler = Callable[["SmppSession", codec.Pdu, Callable[[int], None]], Any]


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


class _Link(asyncio.Protocol):
    __slots__ = ("session",)

    def __init__(self, session: SmppSession):
        self.session = session

    def connection_made(self, transport) -> None:
        self.session._connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.session._data_received(data)

    def connection_lost(self, exc) -> None:
        self.session._connection_lost(exc)


class SmppSession:
    def __init__(
        self,
        config: SessionConfig,
        on_deliver: DeliverHandler,
        index: int = 0,
        listener: SessionListener | None = None,
    ):
        self.config = config
        self.on_deliver = on_deliver
        self.index = index
        self.kind = config.bind_kind
        if self.kind not in BIND_KINDS:
            raise ValueError(f"unknown bind kind {self.kind!r}")
        self.label = f"{config.carrier}#{index}" + ("" if self.kind == "transceiver" else f"/{self.kind[:2]}")
        self.listener = listener or SessionListener()
        self.state = "idle"
        self.bound = asyncio.Event()
        self.window = config.window
        self._pending: dict[int, Pending] = {}
        self._seq = 0
        self._transport: asyncio.Transport | None = None
        self._frames = codec.FrameBuffer()
        self._out: list[bytes] = []
        self._flush_handle: asyncio.Handle | None = None
        self._conn_id = 0  # bumped per connection: late deliver_sm answers never reach a new link
        self._lost: asyncio.Future | None = None
        self._bind_seq = -1
        self._bind_future: asyncio.Future | None = None
        self._stopping = False
        self._closed = asyncio.Event()
        self._drained: asyncio.Event | None = None
        self._last_rx = 0.0
        self._probe: tuple[int, float] | None = None
        self._consecutive_timeouts = 0
        self.bound_callback: Callable[[], None] | None = None
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
        return (
            self.kind != "receiver"
            and not self._stopping
            and self._transport is not None
            and (self.state == "bound")
        )

    @property
    def is_bound(self) -> bool:
        return self.state == "bound"

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    @property
    def free_window(self) -> int:
        return self.window - len(self._pending) if self.can_submit else 0

    def send(self, command_id: int, entry: Pending, tlvs: dict | None = None, **fields) -> int:
        """Queue a request whose answer resolves ``entry``; the caller checked ``free_window``."""
        if not self.can_submit:
            raise NotBound(f"{self.label} is not bound")
        seq = self._next_seq()
        frame = codec.make(command_id, seq, tlvs=tlvs, **fields)
        entry.command = command_id
        entry.deadline = time.monotonic() + self.config.response_timeout_seconds
        self._pending[seq] = entry
        self.submits += 1
        self._write(frame)
        return seq

    def send_body(self, command_id: int, body: bytes, entry: Pending, now: float) -> int:
        """:meth:`send` for a body encoded once (``pdu.encode_body``), the hot path."""
        if not self.can_submit:
            raise NotBound(f"{self.label} is not bound")
        seq = self._next_seq()
        entry.command = command_id
        entry.deadline = now + self.config.response_timeout_seconds
        self._pending[seq] = entry
        self.submits += 1
        self._out.append(_HEADER.pack(16 + len(body), command_id, 0, seq) + body)
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)
        return seq

    async def submit(self, **fields) -> codec.Pdu:
        """Send submit_sm and wait for its submit_sm_resp (a convenience for tools and tests)."""
        tlvs = fields.pop("tlvs", None)
        return await self.request(Cmd.SUBMIT_SM, tlvs=tlvs, **fields)

    async def request(self, command_id: int, tlvs: dict | None = None, **fields) -> codec.Pdu:
        if self._transport is None or self.state != "bound":
            raise NotBound(f"{self.label} is not bound")
        future = asyncio.get_running_loop().create_future()
        entry = _FutureEntry(future)
        seq = self._next_seq()
        entry.command = command_id
        entry.deadline = time.monotonic() + self.config.response_timeout_seconds
        self._pending[seq] = entry
        self._write(codec.make(command_id, seq, tlvs=tlvs, **fields))
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
        if self._pending and self._transport is not None:
            self._drained = asyncio.Event()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._drained.wait(), timeout)
            self._drained = None
        if self._transport is not None and self.state == "bound":
            future = asyncio.get_running_loop().create_future()
            entry = _FutureEntry(future)
            seq = self._next_seq()
            entry.command = _UNBIND
            entry.deadline = time.monotonic() + 2.0
            self._pending[seq] = entry
            self._write(codec.make(Cmd.UNBIND, seq))
            self.state = "unbinding"
            with contextlib.suppress(Exception):
                await asyncio.wait_for(future, max(0.1, min(2.0, deadline - time.monotonic())))
        self._closed.set()
        self._close_transport()

    # --- connection ---------------------------------------------------------------------------

    def _next_seq(self) -> int:
        seq = self._seq + 1 if self._seq < _MAX_SEQ else 1
        while seq in self._pending:  # only after 2**31 requests with one still unanswered
            seq = seq + 1 if seq < _MAX_SEQ else 1
        self._seq = seq
        return seq

    async def _connect_and_serve(self) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        self.state = "connecting"
        self._frames = codec.FrameBuffer()
        self._lost = loop.create_future()
        await asyncio.wait_for(
            loop.create_connection(lambda: _Link(self), cfg.host, cfg.port), cfg.connect_timeout_seconds
        )
        self.state = "binding"
        self._bind_seq = self._next_seq()
        self._bind_future = loop.create_future()
        self._write(
            codec.make(
                BIND_KINDS[self.kind],
                self._bind_seq,
                system_id=cfg.system_id,
                password=cfg.password,
                system_type=cfg.system_type,
                interface_version=0x34,
            )
        )
        done, _ = await asyncio.wait(
            {self._bind_future, self._lost},
            timeout=cfg.response_timeout_seconds,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if self._bind_future not in done:
            raise LinkDown("connection closed during bind") if done else TimeoutError("no bind response")
        resp: codec.Pdu = self._bind_future.result()
        if resp.status != Status.ESME_ROK:
            raise BindRefused(resp.status)
        self.binds += 1
        self.state = "bound"
        self.last_error = None
        self.bound_since = time.monotonic()
        self._consecutive_timeouts = 0
        self.bound.set()
        log.info("smpp bound", session=self.label, smsc=resp.get("system_id", ""), bind=self.kind)
        self.listener.session_bound(self)
        if self.bound_callback is not None:
            self.bound_callback()
        keepalive = asyncio.create_task(self._keepalive(), name=f"{self.label}-keepalive")
        try:
            reason = await self._lost
        finally:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive
        if not self._stopping:
            raise LinkDown(reason)

    def _connection_made(self, transport) -> None:
        self._transport = transport
        self._conn_id += 1
        self._last_rx = time.monotonic()
        self._probe = None

    def _connection_lost(self, exc) -> None:
        self._transport = None
        lost = self._lost
        if lost is not None and not lost.done():
            lost.set_result(self.last_error or (str(exc) if exc else "connection closed by SMSC"))

    def _close_transport(self, reason: str | None = None) -> None:
        if reason is not None:
            self.last_error = reason
        self._flush()
        transport = self._transport
        if transport is not None:
            transport.close()
        lost = self._lost
        if lost is not None and not lost.done():
            lost.set_result(reason or "closed")

    def _link_lost(self, reason: str) -> None:
        """The connection is gone: fail everything in the window (back to the queue)."""
        was_bound = self.state in ("bound", "unbinding")
        self.bound.clear()
        self.bound_since = None
        self._close_transport()
        self._transport = None
        self._out.clear()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        pending, self._pending = self._pending, {}
        if was_bound:
            self.links_lost += 1
            if not self._stopping:
                log.warning("smpp link lost", session=self.label, reason=reason, in_flight=len(pending))
        if self._bind_future is not None and not self._bind_future.done():
            self._bind_future.cancel()
        for entry in pending.values():
            self._call(entry.fail, LINK_LOST)
        if self._drained is not None:
            self._drained.set()
        if self.state != "closed":
            self.state = "down"
        if was_bound:
            self.listener.session_down(self)

    # --- writing ------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        self._out.append(data)
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        out = self._out
        if not out:
            return
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()

    # --- reading ------------------------------------------------------------------------------

    def _data_received(self, data: bytes) -> None:
        self._last_rx = time.monotonic()
        try:
            frames = self._frames.feed(data)
        except codec.PduError as exc:
            self.bad_pdus += 1
            log.warning("smpp stream corrupt; resetting the link", session=self.label, error=str(exc))
            self._write(codec.generic_nack(0, exc.status))
            self._close_transport(f"stream corrupt: {exc}")
            return
        for frame in frames:
            try:
                self._handle_frame(frame)
            except Exception:  # never let one PDU end the session
                self.bad_pdus += 1
                log.exception("smpp frame handling failed", session=self.label)
            if self._transport is None:
                break

    def _handle_frame(self, frame: bytes) -> None:
        _, cid, status, seq = _unpack_header(frame)
        if cid == _SUBMIT_SM_RESP:  # the hot path: read only the status and the message id
            pending = self._pending
            entry = pending.get(seq)
            if entry is None or entry.command != _SUBMIT_SM:
                self._unexpected(cid, "dropped (no submit_sm of that sequence number in the window)")
                return
            del pending[seq]
            self.responses += 1
            self._consecutive_timeouts = 0
            message_id = ""
            if status == 0:
                end = frame.find(b"\x00", 16)
                raw = frame[16 : end if end >= 0 else len(frame)]  # a missing NUL is forgiven
                if usable_bytes(raw):
                    message_id = raw.decode("ascii")
                else:
                    self.bad_message_ids += 1
                    status = INVALID_MESSAGE_ID
                    self._call(self.listener.unusable_message_id, self, raw)
            self._call(entry.resolve, status, message_id, None)
            self._window_freed()
            return
        if cid & _RESP:
            self._response(frame, cid, status, seq)
        elif cid == _DELIVER_SM or cid == _DATA_SM:
            try:
                p = codec.decode(frame)
            except codec.PduError as exc:
                self.bad_pdus += 1
                log.warning("smpp bad pdu from smsc", session=self.label, error=str(exc))
                self._write(_HEADER.pack(16, cid | _RESP, exc.status, seq))
                return
            if cid == _DELIVER_SM:
                self.deliver_sm += 1
            else:
                self.data_sm += 1
            self._deliver(p)
        elif cid == _ENQUIRE_LINK:
            self._write(_HEADER.pack(16, _ENQUIRE_LINK_RESP, 0, seq))
        elif cid == _UNBIND:
            self._write(_HEADER.pack(16, _UNBIND | _RESP, 0, seq))
            log.info("smpp unbound by smsc", session=self.label)
            self._close_transport("unbound by SMSC")
        elif cid in _REFUSED:
            self._unexpected(cid, "refused: ESME_RINVCMDID")
            self._write(_HEADER.pack(16, cid | _RESP, Status.ESME_RINVCMDID, seq))
        elif cid in _BINDS:
            self._unexpected(cid, "refused: ESME_RALYBND")
            self._write(_HEADER.pack(16, cid | _RESP, Status.ESME_RALYBND, seq))
        elif cid == Cmd.OUTBIND:
            self._unexpected(cid, "refused: generic_nack ESME_RINVBNDSTS")
            self._write(codec.generic_nack(seq, Status.ESME_RINVBNDSTS))
        elif cid == Cmd.ALERT_NOTIFICATION:
            self._unexpected(cid, "dropped (it has no response)")
        else:
            self.bad_pdus += 1
            self._unexpected(cid, "refused: generic_nack ESME_RINVCMDID")
            self._write(codec.generic_nack(seq, Status.ESME_RINVCMDID))

    def _response(self, frame: bytes, cid: int, status: int, seq: int) -> None:
        bind = self._bind_future
        if seq == self._bind_seq and bind is not None and cid in (self._bind_cid_resp(), _GENERIC_NACK):
            if not bind.done():
                try:
                    p = codec.decode(frame)
                except codec.PduError:  # the status decides; an unreadable system_id does not matter
                    p = codec.Pdu(cid, seq, status)
                bind.set_result(p)
            return
        entry = self._pending.get(seq)
        if entry is None or (cid != entry.command | _RESP and cid != _GENERIC_NACK):
            if cid == _ENQUIRE_LINK_RESP:
                return  # our keep-alive probe's answer: anything received counts
            if cid == _GENERIC_NACK and entry is None:
                self._unexpected(cid, f"dropped ({status_name(status)}, sequence {seq} not in the window)")
            else:
                self._unexpected(cid, "dropped (no request of that kind and sequence number)")
            return
        del self._pending[seq]
        self.responses += 1
        self._consecutive_timeouts = 0
        try:
            p: codec.Pdu | None = codec.decode(frame)
        except codec.PduError as exc:  # an answer we cannot read still answers its request
            self.bad_pdus += 1
            log.warning("smpp bad pdu from smsc", session=self.label, error=str(exc))
            p = None
            status = status or Status.ESME_RSYSERR
        if cid == _GENERIC_NACK and not status:
            status = Status.ESME_RSYSERR  # a nack must carry an error
        self._call(entry.resolve, status, p.fields.get("message_id", "") if p is not None else "", p)
        self._window_freed()

    def _unexpected(self, cid: int, action: str) -> None:
        name = command_name(cid)
        self.unexpected[name] += 1
        if self.unexpected[name] == 1:  # once per kind and session; /metrics counts the rest
            log.warning("smpp unexpected pdu from smsc", session=self.label, command=name, action=action)

    def _bind_cid_resp(self) -> int:
        return int(BIND_KINDS[self.kind]) | _RESP

    def _deliver(self, p: codec.Pdu) -> None:
        conn_id = self._conn_id
        seq = p.sequence
        response = p.command_id | _RESP  # deliver_sm_resp or data_sm_resp: an empty message_id
        answered = False

        def respond(status: int) -> None:
            nonlocal answered
            if answered:
                return
            answered = True
            if self._conn_id == conn_id and self._transport is not None:
                self._write(_HEADER.pack(17, response, status, seq) + b"\x00")

        try:
            self.on_deliver(self, p, respond)
        except Exception:
            log.exception("deliver_sm handler failed", session=self.label)
            respond(Status.ESME_RX_T_APPN)  # temporary: the SMSC will resend it

    def _window_freed(self) -> None:
        if self._drained is not None and not self._pending:
            self._drained.set()
        self.listener.window_freed(self)

    def _call(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("smpp response handler failed", session=self.label)

    # --- timers -------------------------------------------------------------------------------

    async def _keepalive(self) -> None:
        cfg = self.config
        interval = cfg.enquire_link_seconds
        tick = max(0.02, min(1.0, interval / 2, cfg.response_timeout_seconds / 4))
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            self._expire(now)
            if self._transport is None:
                return
            probe = self._probe
            if probe is not None:
                seq, sent = probe
                if self._last_rx > sent:
                    self._probe = None
                elif now - sent > cfg.response_timeout_seconds:
                    log.warning("smpp enquire_link unanswered; dropping link", session=self.label)
                    self._close_transport("enquire_link unanswered")
                    return
            elif now - self._last_rx >= interval:
                seq = self._next_seq()
                self._write(_HEADER.pack(16, _ENQUIRE_LINK, 0, seq))
                self._probe = (seq, now)

    def _expire(self, now: float) -> None:
        pending = self._pending
        if not pending:
            return
        expired = []
        for seq, entry in pending.items():
            if entry.deadline > now:
                break
            expired.append(seq)
        if not expired:
            return
        for seq in expired:
            entry = pending.pop(seq)
            self.timeouts += 1
            self._consecutive_timeouts += 1
            self._call(entry.fail, RESPONSE_TIMEOUT)
        log.warning("smpp responses timed out", session=self.label, count=len(expired))
        self._window_freed()
        limit = self.config.max_consecutive_timeouts
        if limit and self._consecutive_timeouts >= limit and self._transport is not None:
            log.warning(
                "smpp responses keep timing out; resetting the link",
                session=self.label,
                in_a_row=self._consecutive_timeouts,
            )
            self._close_transport(f"{self._consecutive_timeouts} responses timed out in a row")
