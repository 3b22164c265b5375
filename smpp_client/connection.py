"""One TCP connection of a bind: bytes to frames, what each PDU from the SMSC gets, batched writes.

An asyncio ``Protocol``: bytes are handled as they arrive (no task per read), and writes made in
one turn of the event loop leave in one ``transport.write``. Nothing a peer sends can raise out of
the read path, and every PDU an SMSC may send is served or refused cleanly:

- a response is taken only by the request of its own kind and sequence number in the bind's
  window (:mod:`smpp_client.window`); any other is a stray, counted and dropped. A submit_sm_resp
  is read on a fast path (status and message id only); an id that cannot be used
  (:mod:`smpp_client.message_ids`) fails that submit as INVALID_MESSAGE_ID and is never handed on;
- deliver_sm and data_sm go to the session's handler (receipts, MO) and are answered with their
  own response when the handler says so, on this connection only (never on a later one);
- enquire_link and unbind are answered; a bind request gets ESME_RALYBND; submit_sm,
  submit_multi, query_sm, replace_sm and cancel_sm (an ESME serves none) get their response with
  ESME_RINVCMDID; outbind, which has no response, gets generic_nack with ESME_RINVBNDSTS (it only
  means something on a connection the SMSC opens to an unbound ESME); alert_notification is
  counted and dropped; an unknown command gets generic_nack;
- unknown TLVs are kept; an impossible command_length or garbage closes the connection cleanly
  (generic_nack first). The first PDU of each unexpected kind is logged per session; the rest
  are counted (``unexpected``).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import structlog

from . import pdu as codec
from .constants import BIND_COMMANDS, RESPONSE_BIT, Cmd, Status, status_name
from .errors import INVALID_MESSAGE_ID
from .message_ids import usable_bytes
from .window import guarded

if TYPE_CHECKING:
    from .session import SmppSession

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


PATIENCE_PROBE = 32


class Connection(asyncio.Protocol):
    def __init__(self, session: SmppSession):
        self.session = session
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()  # why it ended
        self.last_rx = time.monotonic()
        self._frames = codec.FrameBuffer()
        self._out: list[bytes] = []
        self._flush_handle: asyncio.Handle | None = None
        self._bind_seq = -1
        self._bind_response = -1
        self._bind_answer: asyncio.Future[codec.Pdu] | None = None
        self.unanswered = 0  # deliver_sm not answered yet
        self.most_unanswered = 0  # the most seen at once: its window on the SMSC's side is at least this
        self.delivered = 0

    @property
    def patient(self) -> bool:
        """Whether the SMSC can send more deliver_sm before it waits for answers, so answering may
        wait a little (the status writer lingers for a batch). While the first ``PATIENCE_PROBE``
        deliveries are seen, yes: an SMSC that waits for each answer shows it then. After that, only
        below the most deliveries it has ever left unanswered at once (its window is at least that):
        at that mark it may be waiting for us, whether its window is 1 or 100."""
        if self.delivered <= PATIENCE_PROBE:
            return True
        return self.unanswered < self.most_unanswered

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.last_rx = time.monotonic()

    def connection_lost(self, exc) -> None:
        self.transport = None
        self.closed = True
        if not self.lost.done():
            self.lost.set_result(str(exc) if exc else "connection closed by SMSC")

    def data_received(self, data: bytes) -> None:
        self.last_rx = time.monotonic()
        try:
            frames = self._frames.feed(data)
        except codec.PduError as exc:
            self.session.bad_pdus += 1
            log.warning("smpp stream corrupt; resetting the link", session=self.session.label, error=str(exc))
            self.write(codec.generic_nack(0, exc.status))
            self.close(f"stream corrupt: {exc}")
            return
        for frame in frames:
            try:
                self._handle_frame(frame)
            except Exception:  # never let one PDU end the session
                self.session.bad_pdus += 1
                log.exception("smpp frame handling failed", session=self.session.label)
            if self.closed:
                break

    # --- writing and closing ------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        self._out.append(data)
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._flush_handle = None
        out = self._out
        if not out:
            return
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()

    def close(self, reason: str = "closed") -> None:
        """Write what is queued, close, and end :attr:`lost` with ``reason``."""
        if not self.closed:
            self.flush()
            self.closed = True
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._out.clear()
        if self.transport is not None:
            self.transport.close()
        if not self.lost.done():
            self.lost.set_result(reason)
        if self._bind_answer is not None and not self._bind_answer.done():
            self._bind_answer.cancel()

    def expect_bind(self, seq: int, response_id: int) -> asyncio.Future[codec.Pdu]:
        """The future the bind response of sequence number ``seq`` resolves (a generic_nack too)."""
        self._bind_seq, self._bind_response = seq, response_id
        self._bind_answer = asyncio.get_running_loop().create_future()
        return self._bind_answer

    # --- reading ------------------------------------------------------------------------------

    def _handle_frame(self, frame: bytes) -> None:
        _, cid, status, seq = _unpack_header(frame)
        session = self.session
        if cid == _SUBMIT_SM_RESP:  # the hot path: read only the status and the message id
            entries = session.window.entries
            entry = entries.get(seq)
            if entry is None or entry.command != _SUBMIT_SM:
                self._unexpected(cid, "dropped (no submit_sm of that sequence number in the window)")
                return
            del entries[seq]
            session.responses += 1
            session.consecutive_timeouts = 0
            message_id = ""
            if status == 0:
                end = frame.find(b"\x00", 16)
                raw = frame[16 : end if end >= 0 else len(frame)]  # a missing NUL is forgiven
                if usable_bytes(raw):
                    message_id = raw.decode("ascii")
                else:
                    session.bad_message_ids += 1
                    status = INVALID_MESSAGE_ID
                    guarded(session.label, session.listener.unusable_message_id, session, raw)
            guarded(session.label, entry.resolve, status, message_id, None)
            session.window_freed()
            return
        if cid & _RESP:
            self._response(frame, cid, status, seq)
        elif cid == _DELIVER_SM or cid == _DATA_SM:
            try:
                p = codec.decode(frame)
            except codec.PduError as exc:
                session.bad_pdus += 1
                log.warning("smpp bad pdu from smsc", session=session.label, error=str(exc))
                self.write(_HEADER.pack(16, cid | _RESP, exc.status, seq))
                return
            if cid == _DELIVER_SM:
                session.deliver_sm += 1
            else:
                session.data_sm += 1
            self._deliver(p)
        elif cid == _ENQUIRE_LINK:
            self.write(_HEADER.pack(16, _ENQUIRE_LINK_RESP, 0, seq))
        elif cid == _UNBIND:
            self.write(_HEADER.pack(16, _UNBIND | _RESP, 0, seq))
            log.info("smpp unbound by smsc", session=session.label)
            self.close("unbound by SMSC")
        elif cid in _REFUSED:
            self._unexpected(cid, "refused: ESME_RINVCMDID")
            self.write(_HEADER.pack(16, cid | _RESP, Status.ESME_RINVCMDID, seq))
        elif cid in _BINDS:
            self._unexpected(cid, "refused: ESME_RALYBND")
            self.write(_HEADER.pack(16, cid | _RESP, Status.ESME_RALYBND, seq))
        elif cid == Cmd.OUTBIND:
            self._unexpected(cid, "refused: generic_nack ESME_RINVBNDSTS")
            self.write(codec.generic_nack(seq, Status.ESME_RINVBNDSTS))
        elif cid == Cmd.ALERT_NOTIFICATION:
            self._unexpected(cid, "dropped (it has no response)")
        else:
            session.bad_pdus += 1
            self._unexpected(cid, "refused: generic_nack ESME_RINVCMDID")
            self.write(codec.generic_nack(seq, Status.ESME_RINVCMDID))

    def _response(self, frame: bytes, cid: int, status: int, seq: int) -> None:
        session = self.session
        bind = self._bind_answer
        if seq == self._bind_seq and bind is not None and cid in (self._bind_response, _GENERIC_NACK):
            if not bind.done():
                try:
                    p = codec.decode(frame)
                except codec.PduError:  # the status decides; an unreadable system_id does not matter
                    p = codec.Pdu(cid, seq, status)
                bind.set_result(p)
            return
        entry = session.window.take(seq, cid)
        if entry is None:
            if cid == _ENQUIRE_LINK_RESP:
                return  # our keep-alive probe's answer: anything received counts
            if cid == _GENERIC_NACK and seq not in session.window.entries:
                self._unexpected(cid, f"dropped ({status_name(status)}, sequence {seq} not in the window)")
            else:
                self._unexpected(cid, "dropped (no request of that kind and sequence number)")
            return
        session.responses += 1
        session.consecutive_timeouts = 0
        try:
            p: codec.Pdu | None = codec.decode(frame)
        except codec.PduError as exc:  # an answer we cannot read still answers its request
            session.bad_pdus += 1
            log.warning("smpp bad pdu from smsc", session=session.label, error=str(exc))
            p = None
            status = status or Status.ESME_RSYSERR
        if cid == _GENERIC_NACK and not status:
            status = Status.ESME_RSYSERR  # a nack must carry an error
        message_id = p.fields.get("message_id", "") if p is not None else ""
        guarded(session.label, entry.resolve, status, message_id, p)
        session.window_freed()

    def _unexpected(self, cid: int, action: str) -> None:
        name = command_name(cid)
        unexpected = self.session.unexpected
        unexpected[name] += 1
        if unexpected[name] == 1:  # once per kind and session; /metrics counts the rest
            log.warning(
                "smpp unexpected pdu from smsc", session=self.session.label, command=name, action=action
            )

    def _deliver(self, p: codec.Pdu) -> None:
        seq = p.sequence
        response = p.command_id | _RESP  # deliver_sm_resp or data_sm_resp: an empty message_id
        answered = False
        self.unanswered += 1
        self.delivered += 1
        if self.unanswered > self.most_unanswered:
            self.most_unanswered = self.unanswered

        def respond(status: int) -> None:
            nonlocal answered
            if answered:
                return
            answered = True
            self.unanswered -= 1
            self.write(_HEADER.pack(17, response, status, seq) + b"\x00")

        session = self.session
        try:
            session.on_deliver(session, p, respond, self.patient)
        except Exception:
            log.exception("deliver_sm handler failed", session=session.label)
            respond(Status.ESME_RX_T_APPN)  # temporary: the SMSC will resend it
