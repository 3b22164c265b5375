"""One SMPP session of the simulated SMSC (an asyncio ``Protocol`` per TCP connection).

A read is decoded as a batch of frames; their answers leave in one ``transport.write``. What the
session sends on its own (delayed responses, enquire_link, batched deliver_sm) waits in ``wbuf``
for the SMSC's next tick. Choices a client may notice:

- a connection beyond the carrier's ``max_connections`` is closed at once; one that has not bound
  within ``bind_timeout`` seconds is closed;
- a failed bind is answered and the connection closed; a bind on a bound session gets
  ESME_RALYBND and the session stays bound;
- commands the SMSC does not implement (replace_sm, data_sm, submit_multi, deliver_sm from an
  ESME, outbind, ...) and unknown command ids get generic_nack ESME_RINVCMDID.

Just over 400 lines: one session's frame handling, kept whole.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING

import structlog

from smpp_client.constants import Status
from smpp_client.pdu import MAX_PDU_LEN, PduError, decode

from .timer_wheel import BIND_DEADLINE, RESPONSE
from .wire import (
    BIND_KINDS,
    CANCEL_SM,
    DELIVER_SM,
    DELIVER_SM_RESP,
    ENQUIRE_LINK,
    ENQUIRE_LINK_RESP,
    GENERIC_NACK,
    MAX_SEQ,
    QUERY_SM,
    RESP,
    ROK,
    RX,
    SC_INTERFACE_VERSION,
    SUBMIT_SM,
    SUBMIT_SM_RESP,
    TX,
    UNBIND,
    UNBIND_RESP,
    empty_resp,
    pack_header,
    unpack_body_header,
    unpack_length,
)

if TYPE_CHECKING:
    from .carrier import Carrier
    from .deliveries import Deliverable

log = structlog.get_logger("simulator")


class SmppSession(asyncio.Protocol):
    _ids = 0

    def __init__(self, carrier: Carrier):
        SmppSession._ids += 1
        self.id = SmppSession._ids
        self.carrier = carrier
        self.engine = carrier.engine
        self.deliveries = carrier.deliveries
        self._submit = carrier.submits.submit
        self.transport: asyncio.Transport | None = None
        self.bound = 0  # 0 open, TX, RX or TX|RX
        self.bind_kind = ""
        self.closed = False
        self.peer = ""
        self.connected_at = time.time()
        self.last_rx = time.monotonic()
        self.unanswered = 0  # requests whose (delayed) response has not gone yet
        self.outstanding: dict[int, Deliverable] = {}
        self.timeouts: deque[tuple[float, int]] = deque()
        self.wbuf: list[bytes] = []
        self._buf = b""
        self._seq = 0
        self._gen = -1
        self._pdus = 0
        self._close_after = False

    # -- asyncio.Protocol --------------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        if not self.carrier.admit(self):
            self.closed = True
            transport.close()
            return
        self.engine.schedule(
            time.monotonic() + self.carrier.settings.bind_timeout, (BIND_DEADLINE, self, None)
        )

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.carrier.session_gone(self)
        if self.bound:
            log.info(
                "smpp session closed",
                carrier=self.carrier.name,
                session=self.id,
                bind=self.bind_kind,
                reason=str(exc) if exc else "closed",
            )

    def pause_writing(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if self._buf:
            data = self._buf + data
            self._buf = b""
        n = len(data)
        pos = 0
        out: list[bytes] = []
        carrier = self.carrier
        engine = self.engine
        now = time.monotonic()
        engine.wall = time.time()
        self.last_rx = now
        faults = carrier.faults
        while n - pos >= 4:
            length = unpack_length(data, pos)[0]
            if length < 16 or length > MAX_PDU_LEN:
                seq = unpack_body_header(data, pos + 4)[2] if n - pos >= 16 else 0
                self._bad_length(length, seq, out)
                return
            if n - pos < length:
                break
            command_id, status, seq = unpack_body_header(data, pos + 4)
            end = pos + length
            drop = False
            if faults.settings.drop_after_pdus:
                if self._gen != faults.generation:
                    self._gen = faults.generation
                    self._pdus = 0
                self._pdus += 1
                drop = faults.drop_now(self._pdus)
            try:
                if command_id == SUBMIT_SM:
                    if self.bound & TX:
                        self._submit(self, data[pos:end], seq, out, now)
                    else:
                        carrier.stats.bad_pdus += 1
                        out.append(empty_resp(SUBMIT_SM_RESP, Status.ESME_RINVBNDSTS, seq))
                elif command_id == DELIVER_SM_RESP:
                    self._deliver_resp(seq, status)
                else:
                    self._other(command_id, status, seq, data, pos, end, out, now)
            except Exception:  # never let one PDU take the server down
                log.exception(
                    "error handling PDU", carrier=carrier.name, session=self.id, command=hex(command_id)
                )
                out.append(empty_resp(GENERIC_NACK, Status.ESME_RSYSERR, seq))
            pos = end
            if drop or self._close_after:
                if drop:
                    carrier.stats.links_dropped += 1
                    log.info(
                        "fault: dropping link after PDUs",
                        carrier=carrier.name,
                        session=self.id,
                        pdus=self._pdus,
                    )
                self._write_now(out)
                self.close()
                return
        if pos < n:
            self._buf = data[pos:]
        deliveries = self.deliveries
        if deliveries.pending and self.bound & RX:
            # acknowledgements freed room in the deliver window: refill it now rather than at the next tick
            if deliveries.each:
                if out:
                    self.transport.write(b"".join(out))
                    out = []
                deliveries.dispatch(now)  # each deliver_sm in a write of its own
            else:
                deliveries.dispatch(now)
                if self.wbuf:
                    out.extend(self.wbuf)
                    self.wbuf.clear()
        if out:
            self.transport.write(b"".join(out))

    # -- helpers -----------------------------------------------------------------------------------

    def _write_now(self, out: list[bytes]) -> None:
        if out and self.transport is not None and not self.closed:
            self.transport.write(b"".join(out))

    def close(self) -> None:
        """Close the connection (after what was written), no unbind."""
        if self.transport is not None and not self.transport.is_closing():
            if self.wbuf:
                self.transport.write(b"".join(self.wbuf))
                self.wbuf.clear()
            self.transport.close()
        self.carrier.session_gone(self)

    def bind_deadline(self) -> None:
        """Close the connection if it has not bound by now."""
        if self.bound or self.closed:
            return
        self.carrier.stats.bind_timeouts += 1
        log.info(
            "smpp connection never bound, closing", carrier=self.carrier.name, session=self.id, peer=self.peer
        )
        self.close()

    def queue(self, frame: bytes) -> None:
        """Send ``frame`` with the SMSC's next tick."""
        if not self.wbuf:
            self.engine.dirty.append(self)
        self.wbuf.append(frame)

    def next_seq(self) -> int:
        self._seq = self._seq + 1 if self._seq < MAX_SEQ else 1
        return self._seq

    def _bad_length(self, length: int, seq: int, out: list[bytes]) -> None:
        self.carrier.stats.bad_pdus += 1
        self.carrier.stats.generic_nacks_sent += 1
        log.warning(
            "impossible command_length, closing", carrier=self.carrier.name, session=self.id, length=length
        )
        out.append(empty_resp(GENERIC_NACK, Status.ESME_RINVCMDLEN, seq))
        self._write_now(out)
        self.close()

    def respond(self, frame: bytes, out: list[bytes], now: float) -> None:
        """Answer now, or later when the response_delay fault is on."""
        delay = self.carrier.faults.response_delay() if self.carrier.faults.active else 0.0
        if delay > 0:
            self.unanswered += 1
            self.engine.schedule(now + delay, (RESPONSE, self, frame))
        else:
            out.append(frame)

    def send(self, item: Deliverable, now: float) -> None:
        """Send a deliver_sm: in a write of its own (receipt_mode "each"), else with the tick's writes."""
        seq = self.next_seq()
        self.outstanding[seq] = item
        self.timeouts.append((now + self.carrier.settings.deliver_timeout, seq))
        item.tries += 1
        stats = self.carrier.stats
        if item.tries > 1:
            stats.deliver_sm_resent += 1
        if item.part is not None:
            item.part.receipt = "sent"
            item.part.receipt_tries = item.tries
            if item.tries == 1:
                stats.receipts_sent += 1
        elif item.tries == 1:
            stats.mo_parts_sent += 1
        body = item.body
        frame = pack_header(16 + len(body), DELIVER_SM, 0, seq) + body
        if self.deliveries.each:
            self.transport.write(frame)
        else:
            if not self.wbuf:
                self.engine.dirty.append(self)
            self.wbuf.append(frame)

    def _deliver_resp(self, seq: int, status: int) -> None:
        item = self.outstanding.pop(seq, None)
        if item is None:
            return  # late answer to a deliver_sm already resent elsewhere, or unknown
        self.deliveries.delivered(item, status)

    # -- everything but submit_sm / deliver_sm_resp ------------------------------------------------

    def _other(
        self,
        command_id: int,
        status: int,
        seq: int,
        data: bytes,
        pos: int,
        end: int,
        out: list[bytes],
        now: float,
    ) -> None:
        carrier = self.carrier
        if command_id == ENQUIRE_LINK:
            carrier.stats.enquire_links += 1
            if self.bound:
                self.respond(empty_resp(ENQUIRE_LINK_RESP, ROK, seq), out, now)
            else:
                out.append(empty_resp(ENQUIRE_LINK_RESP, ROK, seq))
            return
        if command_id == ENQUIRE_LINK_RESP:
            return
        bind = BIND_KINDS.get(command_id)
        if bind is not None:
            self._bind(command_id, bind, seq, data[pos:end], out, now)
            return
        if command_id == UNBIND:
            if not self.bound:
                out.append(empty_resp(UNBIND_RESP, Status.ESME_RINVBNDSTS, seq))
                return
            out.append(empty_resp(UNBIND_RESP, ROK, seq))
            log.info("smpp unbind", carrier=carrier.name, session=self.id)
            self._close_after = True
            return
        if command_id == UNBIND_RESP:
            self._close_after = True
            return
        if command_id == GENERIC_NACK:
            item = self.outstanding.pop(seq, None)
            if item is not None:
                self.deliveries.delivered(item, status or Status.ESME_RUNKNOWNERR)
            return
        if command_id in (QUERY_SM, CANCEL_SM):
            resp_id = command_id | RESP
            if not self.bound & TX:
                carrier.stats.bad_pdus += 1
                out.append(empty_resp(resp_id, Status.ESME_RINVBNDSTS, seq))
                return
            try:
                pdu = decode(data[pos:end])
            except PduError as exc:
                carrier.stats.bad_pdus += 1
                out.append(empty_resp(resp_id, exc.status, seq))
                return
            submits = carrier.submits
            self.respond(submits.query(pdu) if command_id == QUERY_SM else submits.cancel(pdu), out, now)
            return
        if command_id & RESP:
            return  # a response to nothing we sent: ignored
        # unknown or unsupported command
        carrier.stats.bad_pdus += 1
        carrier.stats.generic_nacks_sent += 1
        out.append(empty_resp(GENERIC_NACK, Status.ESME_RINVCMDID, seq))

    def _bind(
        self, command_id: int, bind: tuple[int, str], seq: int, frame: bytes, out: list[bytes], now: float
    ) -> None:
        carrier = self.carrier
        resp_id = command_id | RESP
        try:
            pdu = decode(frame)
        except PduError as exc:
            carrier.stats.bad_pdus += 1
            out.append(empty_resp(resp_id, exc.status, seq))
            return
        settings = carrier.settings
        system_id = pdu.fields.get("system_id", "")
        if self.bound:
            status = Status.ESME_RALYBND
        elif carrier.faults.refuse_bind(now):
            status = Status.ESME_RBINDFAIL
        elif system_id != settings.system_id:
            status = Status.ESME_RINVSYSID
        elif pdu.fields.get("password", "") != settings.password:
            status = Status.ESME_RINVPASWD
        elif len(carrier.sessions) >= settings.max_binds:
            status = Status.ESME_RBINDFAIL
        else:
            status = ROK
        if status != ROK:
            carrier.stats.binds_refused += 1
            log.info(
                "smpp bind refused",
                carrier=carrier.name,
                session=self.id,
                bind=bind[1],
                peer=self.peer,
                status=Status(status).name,
            )
            out.append(empty_resp(resp_id, status, seq))
            if not self.bound:
                self._close_after = True
            return
        self.bound, self.bind_kind = bind
        carrier.stats.binds_ok += 1
        carrier.session_bound(self)
        smsc_id = (settings.smsc_system_id or carrier.name)[:15].encode("latin-1", "replace")
        body = smsc_id + b"\x00" + SC_INTERFACE_VERSION
        out.append(pack_header(16 + len(body), resp_id, ROK, seq) + body)
        log.info(
            "smpp bound",
            carrier=carrier.name,
            session=self.id,
            bind=bind[1],
            peer=self.peer,
            binds=len(carrier.sessions),
        )
