"""The simulated SMSC: an SMPP 3.4 server per carrier.

One :class:`SmppSession` (an asyncio ``Protocol``) per TCP connection; a :class:`Carrier` shared
by its sessions (credentials, bind count, token bucket, fault switches, counters, the queue of
deliver_sm waiting for a receiver); one :class:`Smsc` that owns the carriers, the message store and
a timer wheel. The wheel fires every ``tick_ms``: due receipts become deliver_sm, delayed
responses go out, unanswered deliver_sm are resent, and each session's writes of the tick leave
in one ``transport.write``.

Choices a client may notice (documented in the simulator's README section of the spec):
- ``window``: when a session has ``window`` requests the SMSC has not answered yet (only possible
  while the ``response_delay`` fault holds responses back), further submit_sm are answered at
  once with ESME_RTHROTTLED (0x58) — the status clients already treat as "slow down".
  PDUs dropped by the ``never_answer_*`` faults are lost, not pending, and do not count.
- A failed bind is answered and the connection closed; a bind on a bound session gets
  ESME_RALYBND and the session stays bound.
- Commands the SMSC does not implement (replace_sm, data_sm, submit_multi, deliver_sm from an
  ESME, outbind, ...) and unknown command ids get generic_nack ESME_RINVCMDID.
- Receipts go to the session that submitted the message if it can receive, else to any bound
  receiver of the carrier; with none bound they wait until one binds.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import struct
import time
import unicodedata
from collections import deque

import structlog

from smpp_client.concat import concat_info_from_tlvs, parse_udh
from smpp_client.constants import Cmd, Status, Tlv
from smpp_client.pdu import MAX_PDU_LEN, Pdu, PduError, decode, encode
from smpp_client.text_encoding import Transliteration, decode_payload, encode_text

from .faults import FaultState
from .settings import OUTCOME_STAT, Behaviour, Outcome, SimCarrierSettings, SimulatorSettings, number_key
from .store import DELETED, DELIVERED, ENROUTE, EXPIRED, REJECTED, UNDELIVERABLE, PartRecord, Store, mask

log = structlog.get_logger("simulator")

_HEADER = struct.Struct(">IIII")
_pack_header = _HEADER.pack
_unpack_body_header = struct.Struct(">III").unpack_from
_unpack_len = struct.Struct(">I").unpack_from

RESP = 0x80000000
SUBMIT_SM = int(Cmd.SUBMIT_SM)
SUBMIT_SM_RESP = int(Cmd.SUBMIT_SM_RESP)
DELIVER_SM = int(Cmd.DELIVER_SM)
DELIVER_SM_RESP = int(Cmd.DELIVER_SM_RESP)
GENERIC_NACK = int(Cmd.GENERIC_NACK)
ENQUIRE_LINK = int(Cmd.ENQUIRE_LINK)
ENQUIRE_LINK_RESP = int(Cmd.ENQUIRE_LINK_RESP)
UNBIND = int(Cmd.UNBIND)
UNBIND_RESP = int(Cmd.UNBIND_RESP)
QUERY_SM = int(Cmd.QUERY_SM)
CANCEL_SM = int(Cmd.CANCEL_SM)
BIND_KINDS = {
    int(Cmd.BIND_TRANSMITTER): (1, "transmitter"),
    int(Cmd.BIND_RECEIVER): (2, "receiver"),
    int(Cmd.BIND_TRANSCEIVER): (3, "transceiver"),
}
TX, RX = 1, 2

ROK = int(Status.ESME_ROK)
# deliver_sm_resp statuses after which the SMSC tries again later
_TEMPORARY = frozenset(
    int(s) for s in (Status.ESME_RX_T_APPN, Status.ESME_RMSGQFUL, Status.ESME_RTHROTTLED, Status.ESME_RSYSERR)
)
_SAR_REF = int(Tlv.SAR_MSG_REF_NUM)
_PAYLOAD = int(Tlv.MESSAGE_PAYLOAD)
_SC_INTERFACE_VERSION = struct.pack(">HHB", Tlv.SC_INTERFACE_VERSION, 1, 0x34)
_MAX_SEQ = 0x7FFFFFFF
_NEVER = float("inf")

# Timer wheel entries: (kind, a, b)
_W_RECEIPT, _W_RESPONSE, _W_REQUEUE = 0, 1, 2


def _resp(command_id: int, status: int, seq: int) -> bytes:
    """A response with an empty body (errors, and the body-less responses)."""
    return _pack_header(16, command_id, status, seq)


class IdGenerator:
    """Message ids unique across carriers and restarts: a random 30-bit prefix per process + a counter."""

    __slots__ = ("_counter", "_prefix")

    def __init__(self) -> None:
        self._prefix = secrets.randbits(30) | (1 << 29)
        self._counter = 0

    def next(self, decimal: bool = False) -> str:
        self._counter += 1
        if self._counter > 0xFFFFFFFF:
            self._prefix = secrets.randbits(30) | (1 << 29)
            self._counter = 1
        value = (self._prefix << 32) | self._counter
        return str(value) if decimal else format(value, "x")


class TokenBucket:
    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float | None, burst: int | None = None):
        self.configure(rate, burst)

    def configure(self, rate: float | None, burst: int | None = None) -> None:
        self.rate = rate
        self.burst = float(burst or max(1, int(rate or 1)))
        self.tokens = self.burst
        self.stamp = time.monotonic()

    def allow(self, now: float) -> bool:
        if self.rate is None:
            return True
        tokens = self.tokens + (now - self.stamp) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        self.stamp = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return True
        self.tokens = tokens
        return False


class Stats:
    FIELDS = (
        "binds_ok",
        "binds_refused",
        "submit_sm",
        "submitted",
        "throttled",
        "window_full",
        "msgqfull",
        "submit_errors",
        "unanswered",
        "invalid_destination",
        "receipts_sent",
        "receipts_acked",
        "deliver_sm_resent",
        "deliver_sm_failed",
        "deliver_sm_nacked",
        "mo_parts_sent",
        "mo_parts_acked",
        "queries",
        "cancels",
        "enquire_links",
        "bad_pdus",
        "generic_nacks_sent",
        "links_dropped",
    )
    RATE_SECONDS = 10

    def __init__(self) -> None:
        for name in self.FIELDS:
            setattr(self, name, 0)
        self._sec = 0
        self._count = 0
        self._history: deque[tuple[int, int]] = deque(maxlen=self.RATE_SECONDS)

    def tick_submit(self, now: float) -> None:
        sec = int(now)
        if sec != self._sec:
            if self._count:
                self._history.append((self._sec, self._count))
            self._sec = sec
            self._count = 0
        self._count += 1

    def rates(self, now: float) -> tuple[float, float]:
        """(submits in the last whole second, average per second over the last 10 seconds)."""
        sec = int(now)
        history = list(self._history)
        if self._sec < sec and self._count:
            history.append((self._sec, self._count))
        last = sum(count for s, count in history if s == sec - 1)
        recent = sum(count for s, count in history if sec - self.RATE_SECONDS <= s < sec)
        return float(last), recent / self.RATE_SECONDS

    def as_dict(self, now: float) -> dict:
        data = {name: getattr(self, name) for name in self.FIELDS}
        last, avg = self.rates(now)
        data["submits_per_second"] = last
        data["submits_per_second_10s"] = avg
        return data


class Deliverable:
    """A deliver_sm the SMSC owes a receiver: a receipt or one part of an MO."""

    __slots__ = ("body", "mo", "part", "prefer", "tries")

    def __init__(
        self, body: bytes, part: PartRecord | None = None, mo=None, prefer: SmppSession | None = None
    ):
        self.body = body
        self.part = part
        self.mo = mo
        self.prefer = prefer
        self.tries = 0


_date_cache: dict[int, str] = {}


def smpp_date(ts: float) -> str:
    """YYMMDDhhmm in local time (the receipt's submit date / done date), cached per minute."""
    minute = int(ts // 60)
    text = _date_cache.get(minute)
    if text is None:
        if len(_date_cache) > 10_000:
            _date_cache.clear()
        text = _date_cache[minute] = time.strftime("%y%m%d%H%M", time.localtime(ts))
    return text


def smpp_absolute(ts: float | None) -> str:
    """SMPP absolute time (YYMMDDhhmmsstnnp) in UTC, '' for none."""
    if ts is None:
        return ""
    return time.strftime("%y%m%d%H%M%S", time.gmtime(ts)) + "000+"


def _receipt_snippet(user_data: bytes, data_coding: int) -> str:
    """The first 20 characters of a part, in ASCII (the receipt itself is sent with data_coding 0)."""
    try:
        text = decode_payload(user_data[:44] if data_coding != 8 else user_data[:40], data_coding)[:20]
    except Exception:  # pragma: no cover - decode_payload never raises, by contract
        text = ""
    if not text.isascii() or not text.isprintable():
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text


def _udh_concat_kind(short_message: bytes) -> str:
    """ "udh16" when the UDH carries a 16-bit-reference concatenation IE, else "udh8"."""
    end = short_message[0] + 1
    pos = 1
    while pos + 1 < end:
        iei, iedl = short_message[pos], short_message[pos + 1]
        if iei == 0x08:
            return "udh16"
        if iei == 0x00:
            return "udh8"
        pos += 2 + iedl
    return "udh8"


# --------------------------------------------------------------------------------------------------


class SmppSession(asyncio.Protocol):
    _ids = 0

    def __init__(self, carrier: Carrier):
        SmppSession._ids += 1
        self.id = SmppSession._ids
        self.carrier = carrier
        self.engine = carrier.engine
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

    # -- asyncio.Protocol --------------------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.carrier.connections.add(self)

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
            length = _unpack_len(data, pos)[0]
            if length < 16 or length > MAX_PDU_LEN:
                seq = _unpack_body_header(data, pos + 4)[2] if n - pos >= 16 else 0
                self._bad_length(length, seq, out)
                return
            if n - pos < length:
                break
            command_id, status, seq = _unpack_body_header(data, pos + 4)
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
                        carrier.submit(self, data[pos:end], seq, out, now)
                    else:
                        carrier.stats.bad_pdus += 1
                        out.append(_resp(SUBMIT_SM_RESP, Status.ESME_RINVBNDSTS, seq))
                elif command_id == DELIVER_SM_RESP:
                    self._deliver_resp(seq, status)
                else:
                    self._other(command_id, status, seq, data, pos, end, out, now)
            except Exception:  # never let one PDU take the server down
                log.exception(
                    "error handling PDU", carrier=carrier.name, session=self.id, command=hex(command_id)
                )
                out.append(_resp(GENERIC_NACK, Status.ESME_RSYSERR, seq))
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
        if carrier.pending and self.bound & RX:
            # acknowledgements freed room in the deliver window: refill it now rather than at the next tick
            carrier.dispatch(now)
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

    def next_seq(self) -> int:
        self._seq = self._seq + 1 if self._seq < _MAX_SEQ else 1
        return self._seq

    def _bad_length(self, length: int, seq: int, out: list[bytes]) -> None:
        self.carrier.stats.bad_pdus += 1
        self.carrier.stats.generic_nacks_sent += 1
        log.warning(
            "impossible command_length, closing", carrier=self.carrier.name, session=self.id, length=length
        )
        out.append(_resp(GENERIC_NACK, Status.ESME_RINVCMDLEN, seq))
        self._write_now(out)
        self.close()

    def respond(self, frame: bytes, out: list[bytes], now: float) -> None:
        """Answer now, or later when the response_delay fault is on."""
        delay = self.carrier.faults.response_delay() if self.carrier.faults.active else 0.0
        if delay > 0:
            self.unanswered += 1
            self.engine.schedule(now + delay, (_W_RESPONSE, self, frame))
        else:
            out.append(frame)

    def send(self, item: Deliverable, now: float) -> None:
        """Send a deliver_sm (in this tick's write)."""
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
        if not self.wbuf:
            self.engine.dirty.append(self)
        self.wbuf.append(_pack_header(16 + len(body), DELIVER_SM, 0, seq) + body)

    def _deliver_resp(self, seq: int, status: int) -> None:
        item = self.outstanding.pop(seq, None)
        if item is None:
            return  # late answer to a deliver_sm already resent elsewhere, or unknown
        self.carrier.delivered(item, status, self)

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
                self.respond(_resp(ENQUIRE_LINK_RESP, ROK, seq), out, now)
            else:
                out.append(_resp(ENQUIRE_LINK_RESP, ROK, seq))
            return
        if command_id == ENQUIRE_LINK_RESP:
            return
        bind = BIND_KINDS.get(command_id)
        if bind is not None:
            self._bind(command_id, bind, seq, data[pos:end], out, now)
            return
        if command_id == UNBIND:
            if not self.bound:
                out.append(_resp(UNBIND_RESP, Status.ESME_RINVBNDSTS, seq))
                return
            out.append(_resp(UNBIND_RESP, ROK, seq))
            log.info("smpp unbind", carrier=carrier.name, session=self.id)
            self._close_after = True
            return
        if command_id == UNBIND_RESP:
            self._close_after = True
            return
        if command_id == GENERIC_NACK:
            item = self.outstanding.pop(seq, None)
            if item is not None:
                carrier.delivered(item, status or Status.ESME_RUNKNOWNERR, self)
            return
        if command_id in (QUERY_SM, CANCEL_SM):
            resp_id = command_id | RESP
            if not self.bound & TX:
                carrier.stats.bad_pdus += 1
                out.append(_resp(resp_id, Status.ESME_RINVBNDSTS, seq))
                return
            try:
                pdu = decode(data[pos:end])
            except PduError as exc:
                carrier.stats.bad_pdus += 1
                out.append(_resp(resp_id, exc.status, seq))
                return
            frame = carrier.query(pdu) if command_id == QUERY_SM else carrier.cancel(pdu)
            self.respond(frame, out, now)
            return
        if command_id & RESP:
            return  # a response to nothing we sent: ignored
        # unknown or unsupported command
        carrier.stats.bad_pdus += 1
        carrier.stats.generic_nacks_sent += 1
        out.append(_resp(GENERIC_NACK, Status.ESME_RINVCMDID, seq))

    def _bind(
        self, command_id: int, bind: tuple[int, str], seq: int, frame: bytes, out: list[bytes], now: float
    ) -> None:
        carrier = self.carrier
        resp_id = command_id | RESP
        try:
            pdu = decode(frame)
        except PduError as exc:
            carrier.stats.bad_pdus += 1
            out.append(_resp(resp_id, exc.status, seq))
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
            out.append(_resp(resp_id, status, seq))
            if not self.bound:
                self._close_after = True
            return
        self.bound, self.bind_kind = bind
        carrier.stats.binds_ok += 1
        carrier.session_bound(self)
        smsc_id = (settings.smsc_system_id or carrier.name)[:15].encode("latin-1", "replace")
        body = smsc_id + b"\x00" + _SC_INTERFACE_VERSION
        out.append(_pack_header(16 + len(body), resp_id, ROK, seq) + body)
        log.info(
            "smpp bound",
            carrier=carrier.name,
            session=self.id,
            bind=bind[1],
            peer=self.peer,
            binds=len(carrier.sessions),
        )


# --------------------------------------------------------------------------------------------------


class Carrier:
    """One simulated carrier: its listening socket, settings, sessions, limits, faults and counters."""

    def __init__(self, engine: Smsc, settings: SimCarrierSettings):
        self.engine = engine
        self.name = settings.name
        self.configured = settings
        self.connections: set[SmppSession] = set()
        self.sessions: list[SmppSession] = []  # bound
        self.receivers: list[SmppSession] = []  # bound with RX
        self.pending: deque[Deliverable] = deque()
        self.stats = Stats()
        self.limiter = TokenBucket(None)
        self.faults = FaultState(settings.faults, engine.rng)
        self.server: asyncio.Server | None = None
        self.port = settings.port
        self._mq_count = 0
        self._rr = 0
        self.apply(settings)

    # -- settings ----------------------------------------------------------------------------------

    def apply(self, settings: SimCarrierSettings) -> None:
        self.settings = settings
        self.limiter.configure(settings.tps, settings.tps_burst)
        self.decimal_ids = settings.message_id_format == "decimal"
        self.rules = {number_key(rule.number): rule for rule in settings.numbers}
        self._mq_cycle = (
            (settings.msgqfull_every + settings.msgqfull_burst)
            if (settings.msgqfull_every and settings.msgqfull_burst)
            else 0
        )
        self._mq_count = 0
        mix = settings.outcomes
        weights = [
            (Outcome.DELIVERED, mix.delivered),
            (Outcome.UNDELIVERABLE, mix.undeliverable),
            (Outcome.EXPIRED, mix.expired),
            (Outcome.REJECTED, mix.rejected),
        ]
        total = sum(w for _, w in weights)
        cumulative, acc = [], 0.0
        for outcome, weight in weights:
            if weight > 0:
                acc += weight / total
                cumulative.append((acc, outcome))
        cumulative[-1] = (1.0, cumulative[-1][1])
        self._mix = cumulative
        self._only = cumulative[0][1] if len(cumulative) == 1 else None
        codes = settings.error_codes
        self._errs = {
            Outcome.DELIVERED: codes.delivered,
            Outcome.UNDELIVERABLE: codes.undeliverable,
            Outcome.EXPIRED: codes.expired,
            Outcome.REJECTED: codes.rejected,
        }

    def update(self, changes: dict) -> SimCarrierSettings:
        forbidden = {"name", "host", "port", "faults"} & set(changes)
        if forbidden:
            raise ValueError(f"cannot change {', '.join(sorted(forbidden))} at run time")
        current = self.settings.model_dump()
        current.update(changes)
        new = SimCarrierSettings.model_validate(current)
        self.apply(new)
        log.info("carrier settings changed", carrier=self.name, keys=sorted(changes))
        return new

    # -- sessions ----------------------------------------------------------------------------------

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
            # deliver_sm not acknowledged on a dead link: another receiver gets them (or the next to bind)
            items = list(session.outstanding.values())
            session.outstanding.clear()
            self.pending.extendleft(reversed(items))
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

    # -- submit_sm ---------------------------------------------------------------------------------

    def submit(self, session: SmppSession, frame: bytes, seq: int, out: list[bytes], now: float) -> None:
        stats = self.stats
        stats.submit_sm += 1
        try:
            pdu = decode(frame)
        except PduError as exc:
            stats.bad_pdus += 1
            out.append(_resp(SUBMIT_SM_RESP, exc.status, seq))
            return
        delay = 0.0
        if self.faults.active:
            faults = self.faults
            if faults.never_answer():
                stats.unanswered += 1
                return
            delay = faults.response_delay()
            status = faults.submit_error()
            if status:
                stats.submit_errors += 1
                session.respond(_resp(SUBMIT_SM_RESP, status, seq), out, now)
                return
        if session.unanswered >= self.settings.window:
            stats.window_full += 1
            out.append(_resp(SUBMIT_SM_RESP, Status.ESME_RTHROTTLED, seq))
            return
        if not self.limiter.allow(now):
            stats.throttled += 1
            self._answer(session, _resp(SUBMIT_SM_RESP, Status.ESME_RTHROTTLED, seq), delay, out, now)
            return
        if self._mq_cycle:
            position = self._mq_count % self._mq_cycle
            self._mq_count += 1
            if position >= self.settings.msgqfull_every:
                stats.msgqfull += 1
                self._answer(session, _resp(SUBMIT_SM_RESP, Status.ESME_RMSGQFUL, seq), delay, out, now)
                return
        status = self._accept(session, pdu, now, delay)
        if isinstance(status, str):
            body = status.encode() + b"\x00"
            self._answer(
                session, _pack_header(16 + len(body), SUBMIT_SM_RESP, ROK, seq) + body, delay, out, now
            )
        else:
            self._answer(session, _resp(SUBMIT_SM_RESP, status, seq), delay, out, now)

    def _answer(self, session: SmppSession, frame: bytes, delay: float, out: list[bytes], now: float) -> None:
        if delay > 0:
            session.unanswered += 1
            self.engine.schedule(now + delay, (_W_RESPONSE, session, frame))
        else:
            out.append(frame)

    def _accept(self, session: SmppSession, pdu: Pdu, now: float, response_delay: float) -> str | int:
        """Store the message and plan its receipt; the message id, or an error status."""
        fields = pdu.fields
        stats = self.stats
        dest = fields["destination_addr"]
        if not dest:
            stats.invalid_destination += 1
            return Status.ESME_RINVDSTADR
        rule = self.rules.get(dest[-10:]) if self.rules else None
        if rule is not None and rule.behaviour is Behaviour.INVALID:
            stats.invalid_destination += 1
            return Status.ESME_RINVDSTADR
        sm = fields["short_message"]
        tlvs = pdu.tlvs
        concat = None
        reference, total, part_seq = 0, 1, 1
        user_data = sm
        if tlvs:
            payload = tlvs.get(_PAYLOAD)
            if payload is not None:
                if sm:
                    return Status.ESME_RINVOPTPARAMVAL  # short_message and message_payload together
                user_data = sm = payload
                concat = None
        esm_class = fields["esm_class"]
        if esm_class & 0x40:
            try:
                info, user_data = parse_udh(sm)
            except ValueError:
                return Status.ESME_RINVESMCLASS
            if info is not None:
                concat = _udh_concat_kind(sm)
                reference, total, part_seq = info.reference, info.total, info.seq
        elif tlvs and _SAR_REF in tlvs:
            try:
                info = concat_info_from_tlvs(tlvs)
            except ValueError:
                return Status.ESME_RINVOPTPARAMVAL
            if info is not None:
                concat = "sar"
                reference, total, part_seq = info.reference, info.total, info.seq
        engine = self.engine
        message_id = engine.ids.next(self.decimal_ids)
        wall = engine.wall
        registered = fields["registered_delivery"]
        part = engine.store.add_part(
            message_id,
            self.name,
            fields["source_addr"],
            fields["source_addr_ton"],
            fields["source_addr_npi"],
            dest,
            fields["dest_addr_ton"],
            fields["dest_addr_npi"],
            fields["data_coding"],
            registered,
            user_data,
            concat,
            reference,
            total,
            part_seq,
            wall,
        )
        # the outcome
        settings = self.settings
        rng = engine.rng
        if rule is not None:
            behaviour = rule.behaviour
            if behaviour is Behaviour.NO_RECEIPT:
                stats.submitted += 1
                stats.tick_submit(now)
                return message_id
            outcome = {
                Behaviour.DELIVER: Outcome.DELIVERED,
                Behaviour.NEVER_DELIVERS: Outcome.UNDELIVERABLE,
                Behaviour.SWITCHED_OFF: Outcome.EXPIRED,
                Behaviour.REJECT: Outcome.REJECTED,
            }[behaviour]
            err = rule.err if rule.err is not None else self._errs[outcome][0]
            span = rule.delay
        else:
            outcome = self._only
            if outcome is None:
                r = rng.random()
                for edge, candidate in self._mix:
                    if r < edge:
                        outcome = candidate
                        break
                else:  # pragma: no cover
                    outcome = self._mix[-1][1]
            errs = self._errs[outcome]
            err = errs[0] if len(errs) == 1 else rng.choice(errs)
            span = None
        if span is None:
            span = settings.expire_delay if outcome is Outcome.EXPIRED else settings.receipt_delay
        low, high = span
        delay = low if low == high else rng.uniform(low, high)
        delay += response_delay
        stat_state = OUTCOME_STAT[outcome][1]
        part.final_state = stat_state
        part.err = err
        part.done_at = wall + delay
        wanted = registered & 3
        if wanted == 1 or (wanted == 2 and stat_state != DELIVERED):
            part.receipt = "scheduled"
            engine.schedule(now + delay, (_W_RECEIPT, part, session))
        stats.submitted += 1
        stats.tick_submit(now)
        return message_id

    # -- receipts and MO ---------------------------------------------------------------------------

    def receipt(self, part: PartRecord, prefer: SmppSession | None = None) -> None:
        """The receipt of ``part`` is due: queue its deliver_sm (preferably to the submitting session)."""
        if part.cancelled is not None:
            return
        message = part.message
        state = part.final_state
        stat = _STATE_STAT[state]
        text = (
            f"id:{part.id} sub:001 dlvrd:{'001' if state == DELIVERED else '000'} "
            f"submit date:{smpp_date(part.submitted)} done date:{smpp_date(part.done_at)} "
            f"stat:{stat} err:{part.err:03d} text:{_receipt_snippet(part.user_data, message.data_coding)}"
        )
        tlvs = {Tlv.RECEIPTED_MESSAGE_ID: part.id.encode() + b"\x00", Tlv.MESSAGE_STATE: bytes((state,))}
        if state != DELIVERED:
            tlvs[Tlv.NETWORK_ERROR_CODE] = b"\x03" + part.err.to_bytes(2, "big")  # 3 = GSM
        body = encode(
            Pdu(
                DELIVER_SM,
                0,
                0,
                {
                    "source_addr_ton": message.dest_ton,
                    "source_addr_npi": message.dest_npi,
                    "source_addr": message.dest,
                    "dest_addr_ton": message.source_ton,
                    "dest_addr_npi": message.source_npi,
                    "destination_addr": message.source,
                    "esm_class": 0x04,
                    "short_message": text.encode("ascii", "replace"),
                },
                tlvs,
            )
        )[16:]
        self.pending.append(Deliverable(body, part=part, prefer=prefer))

    def delivered(self, item: Deliverable, status: int, session: SmppSession | None) -> None:
        """A deliver_sm was answered (or nacked)."""
        stats = self.stats
        if status == ROK:
            if item.part is not None:
                item.part.receipt = "acked"
                stats.receipts_acked += 1
            elif item.mo is not None:
                item.mo.parts_acked += 1
                stats.mo_parts_acked += 1
            return
        stats.deliver_sm_nacked += 1
        if status in _TEMPORARY and item.tries < self.settings.deliver_max_tries:
            self.engine.schedule(
                time.monotonic() + min(self.settings.deliver_timeout, 5.0), (_W_REQUEUE, item, self)
            )
        else:
            self.give_up(item)

    def timed_out(self, item: Deliverable, session: SmppSession) -> None:
        if item.tries >= self.settings.deliver_max_tries:
            self.give_up(item)
            return
        item.prefer = session if not session.closed else None
        self.pending.append(item)

    def give_up(self, item: Deliverable) -> None:
        self.stats.deliver_sm_failed += 1
        if item.part is not None:
            item.part.receipt = "failed"
        elif item.mo is not None:
            item.mo.parts_failed += 1
        log.warning(
            "deliver_sm given up",
            carrier=self.name,
            tries=item.tries,
            kind="receipt" if item.part is not None else "mo",
        )

    def dispatch(self, now: float) -> None:
        """Hand queued deliver_sm to receivers with room in their window."""
        window = self.settings.deliver_window
        rooms = [s for s in self.receivers if len(s.outstanding) < window and not s.closed]
        pending = self.pending
        rr = self._rr
        while pending and rooms:
            item = pending.popleft()
            target = item.prefer
            if target is None or target.closed or not target.bound & RX or len(target.outstanding) >= window:
                rr += 1
                target = rooms[rr % len(rooms)]
            target.send(item, now)
            if len(target.outstanding) >= window and target in rooms:
                rooms.remove(target)
        self._rr = rr

    # -- query_sm / cancel_sm ----------------------------------------------------------------------

    def _find(self, message_id: str) -> PartRecord | None:
        part = self.engine.store.part(message_id)
        if part is None or part.message.carrier != self.name:
            return None
        return part

    def query(self, pdu: Pdu) -> bytes:
        self.stats.queries += 1
        message_id = pdu.fields.get("message_id", "")
        part = self._find(message_id)
        if part is None:
            return _resp(int(Cmd.QUERY_SM_RESP), Status.ESME_RQUERYFAIL, pdu.sequence)
        now = time.time()
        state = part.state(now)
        return encode(
            Pdu(
                int(Cmd.QUERY_SM_RESP),
                pdu.sequence,
                0,
                {
                    "message_id": message_id,
                    "final_date": smpp_absolute(part.final_date(now)),
                    "message_state": state,
                    "error_code": part.err & 0xFF if state not in (ENROUTE, DELETED) else 0,
                },
            )
        )

    def cancel(self, pdu: Pdu) -> bytes:
        self.stats.cancels += 1
        fields = pdu.fields
        now = time.time()
        message_id = fields.get("message_id", "")
        if message_id:
            part = self._find(message_id)
            candidates = [part] if part is not None else []
        else:  # every pending message from source_addr to destination_addr
            dest = fields.get("destination_addr", "")
            source = fields.get("source_addr", "")
            candidates = [
                p
                for m in self.engine.store.messages(to=dest, carrier=self.name, limit=10_000)
                if m.dest == dest and (not source or m.source == source)
                for p in m.parts
                if p is not None
            ]
        cancelled = 0
        for part in candidates:
            if part.state(now) == ENROUTE and part.receipt in ("none", "scheduled"):
                part.cancelled = now
                part.receipt = "cancelled" if part.receipt == "scheduled" else part.receipt
                cancelled += 1
        status = ROK if cancelled else Status.ESME_RCANCELFAIL
        return _resp(int(Cmd.CANCEL_SM_RESP), status, pdu.sequence)

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
            "deliver_sm_queued": len(self.pending),
            "deliver_sm_outstanding": sum(len(s.outstanding) for s in self.sessions),
            "faults_on": self.faults.any_on(now),
        }
        data.update(self.stats.as_dict(now))
        return data


_STATE_STAT = {
    DELIVERED: "DELIVRD",
    UNDELIVERABLE: "UNDELIV",
    EXPIRED: "EXPIRED",
    REJECTED: "REJECTD",
    DELETED: "DELETED",
    ENROUTE: "ENROUTE",
}


# --------------------------------------------------------------------------------------------------


class Smsc:
    """All carriers, the store and the timer wheel."""

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
        self.ids = IdGenerator()
        self.wall = time.time()
        self.carriers: dict[str, Carrier] = {}
        for carrier_settings in settings.carriers:
            self.carriers[carrier_settings.name] = Carrier(self, carrier_settings)
        self.dirty: list[SmppSession] = []
        self._tick = settings.tick_ms / 1000.0
        self._wheel: dict[int, list] = {}
        self._last_slot = int(time.monotonic() / self._tick)
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next_housekeeping = 0.0
        self._mo_refs: dict[str, int] = {}
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
                )
        except BaseException:
            await self.stop()
            raise
        self._last_slot = int(time.monotonic() / self._tick)
        self._arm()

    async def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        for carrier in self.carriers.values():
            if carrier.server is not None:
                carrier.server.close()
            for session in list(carrier.connections):
                if session.bound and session.transport is not None and not session.transport.is_closing():
                    session.transport.write(_pack_header(16, UNBIND, 0, session.next_seq()))
                session.close()
        for carrier in self.carriers.values():
            if carrier.server is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(carrier.server.wait_closed(), 1.0)
                carrier.server = None
        await asyncio.sleep(0)

    # -- timer wheel -------------------------------------------------------------------------------

    def schedule(self, due: float, entry: tuple) -> None:
        slot = int(due / self._tick) + 1
        bucket = self._wheel.get(slot)
        if bucket is None:
            self._wheel[slot] = [entry]
        else:
            bucket.append(entry)

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
        wheel = self._wheel
        now_slot = int(now / self._tick)
        if wheel:
            if now_slot - self._last_slot > 64:
                slots = sorted(s for s in wheel if s <= now_slot)
            else:
                slots = [s for s in range(self._last_slot + 1, now_slot + 1) if s in wheel]
            for slot in slots:
                for kind, a, b in wheel.pop(slot):
                    if kind == _W_RECEIPT:
                        b.carrier.receipt(a, b)
                    elif kind == _W_RESPONSE:
                        a.unanswered -= 1
                        if not a.closed:
                            if not a.wbuf:
                                self.dirty.append(a)
                            a.wbuf.append(b)
                    else:  # _W_REQUEUE
                        b.pending.append(a)
        self._last_slot = now_slot
        for carrier in self.carriers.values():
            faults = carrier.faults
            if faults.next_drop is not None and faults.drop_all_due(now):
                carrier.drop_all("drop_every_seconds")
            for session in carrier.receivers:
                timeouts = session.timeouts
                while timeouts and timeouts[0][0] <= now:
                    _, seq = timeouts.popleft()
                    item = session.outstanding.pop(seq, None)
                    if item is not None:
                        carrier.timed_out(item, session)
            if carrier.pending and carrier.receivers:
                carrier.dispatch(now)
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
                    if not session.wbuf:
                        self.dirty.append(session)
                    session.wbuf.append(_pack_header(16, ENQUIRE_LINK, 0, session.next_seq()))

    # -- MO ----------------------------------------------------------------------------------------

    def route_mo(self, phone: str, carrier: str | None = None) -> Carrier:
        if carrier is not None:
            return self.carriers[carrier]
        known = self.store.carrier_of(phone)
        if known in self.carriers:
            return self.carriers[known]
        digits = "".join(ch for ch in phone if ch.isdigit())
        best, best_len = None, -1
        for candidate in self.carriers.values():
            for prefix in candidate.settings.mo_prefixes:
                if digits.startswith(prefix) and len(prefix) > best_len:
                    best, best_len = candidate, len(prefix)
        return best or next(iter(self.carriers.values()))

    def send_mo(self, carrier: Carrier, phone: str, text: str, to: str):
        """Queue a citizen's SMS as deliver_sm (several parts with UDH when long); returns the MO record."""
        from smpp_client.concat import ConcatMethod, split

        encoded = encode_text(text, Transliteration.OFF, ConcatMethod.UDH8)
        digits = "".join(ch for ch in phone if ch.isdigit())
        reference = self._mo_refs.get(digits, self.rng.randrange(256))
        self._mo_refs[digits] = (reference + 1) % 256
        if len(self._mo_refs) > 100_000:
            self._mo_refs.clear()
        parts = split(encoded, ConcatMethod.UDH8, reference)
        record = self.store.add_mo(
            carrier.name, phone, to, text, encoded.encoding, encoded.data_coding, len(parts)
        )
        to_digits = "".join(ch for ch in to if ch.isdigit()) or to
        short = len(to_digits) <= 8
        for part in parts:
            body = encode(
                Pdu(
                    DELIVER_SM,
                    0,
                    0,
                    {
                        "source_addr_ton": 1,
                        "source_addr_npi": 1,
                        "source_addr": digits,
                        "dest_addr_ton": 6 if short else 1,
                        "dest_addr_npi": 1,
                        "destination_addr": to_digits,
                        "esm_class": part.esm_class,
                        "data_coding": encoded.data_coding,
                        "short_message": part.short_message,
                    },
                    dict(part.tlvs),
                )
            )[16:]
            carrier.pending.append(Deliverable(body, mo=record))
        log.info(
            "mo queued", carrier=carrier.name, phone=mask(phone), parts=len(parts), encoding=encoded.encoding
        )
        return record

    # -- reset / stats -----------------------------------------------------------------------------

    def reset(self, drop_sessions: bool = False) -> None:
        """Forget messages, MO, counters, queued deliver_sm; settings and faults as configured."""
        self.store.reset()
        for slot, entries in list(self._wheel.items()):
            kept = [e for e in entries if e[0] == _W_RESPONSE]
            if kept:
                self._wheel[slot] = kept
            else:
                del self._wheel[slot]
        for carrier in self.carriers.values():
            carrier.pending.clear()
            for session in carrier.connections:
                session.outstanding.clear()
                session.timeouts.clear()
            carrier.stats = Stats()
            carrier.apply(carrier.configured)
            carrier.faults.set(carrier.configured.faults)
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
