"""What a carrier does with the transmitter's requests: submit_sm, query_sm and cancel_sm.

submit_sm goes through the faults, the session's window, the token bucket and the queue-full
bursts, then is stored with an id and a planned outcome; its receipt is handed to the carrier's
:class:`~simulator.deliveries.DeliveryQueue`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from smpp_client.concat import concat_info_from_tlvs, parse_udh
from smpp_client.constants import Status
from smpp_client.pdu import Pdu, PduError, decode, encode

from .ids import CountingIds, UniqueIds, rewrite_id
from .outcomes import OutcomePlan
from .records import DELETED, DELIVERED, ENROUTE, PartRecord
from .settings import Behaviour, SimCarrierSettings
from .timer_wheel import RESPONSE
from .wire import (
    CANCEL_SM_RESP,
    MESSAGE_PAYLOAD,
    QUERY_SM_RESP,
    ROK,
    SAR_MSG_REF_NUM,
    SUBMIT_SM_RESP,
    empty_resp,
    pack_header,
)

if TYPE_CHECKING:
    from .carrier import Carrier
    from .session import SmppSession


def smpp_absolute(ts: float | None) -> str:
    """SMPP absolute time (YYMMDDhhmmsstnnp) in UTC, '' for none."""
    if ts is None:
        return ""
    return time.strftime("%y%m%d%H%M%S", time.gmtime(ts)) + "000+"


def udh_concat_kind(short_message: bytes) -> str:
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


class SubmitHandler:
    __slots__ = (
        "_counting_ids",
        "_mq_count",
        "_mq_cycle",
        "_receipt_decimal",
        "carrier",
        "decimal_ids",
        "engine",
        "ids",
        "outcomes",
    )

    def __init__(self, carrier: Carrier, unique_ids: UniqueIds):
        self.carrier = carrier
        self.engine = carrier.engine
        self.ids: UniqueIds | CountingIds = unique_ids
        self._counting_ids: CountingIds | None = None
        self._mq_count = 0

    def configure(self, settings: SimCarrierSettings, restart_ids: bool) -> None:
        """Take the carrier's settings; ``restart_ids``: a counting carrier starts again at its first id."""
        self.outcomes = OutcomePlan(settings, self.engine.rng)
        self.decimal_ids = settings.message_id_format == "decimal"
        if settings.receipt_id_format == "same":
            self._receipt_decimal = None
        else:
            self._receipt_decimal = settings.receipt_id_format == "decimal"
        start = settings.message_id_start
        if start is None:
            self.ids = self.engine.ids
            self._counting_ids = None
        elif restart_ids or self._counting_ids is None:
            self._counting_ids = CountingIds(start)
            self.ids = self._counting_ids
        self._mq_cycle = (
            (settings.msgqfull_every + settings.msgqfull_burst)
            if (settings.msgqfull_every and settings.msgqfull_burst)
            else 0
        )
        self._mq_count = 0

    # -- submit_sm ---------------------------------------------------------------------------------

    def submit(self, session: SmppSession, frame: bytes, seq: int, out: list[bytes], now: float) -> None:
        carrier = self.carrier
        stats = carrier.stats
        stats.submit_sm += 1
        try:
            pdu = decode(frame)
        except PduError as exc:
            stats.bad_pdus += 1
            out.append(empty_resp(SUBMIT_SM_RESP, exc.status, seq))
            return
        delay = 0.0
        faults = carrier.faults
        if faults.active:
            if faults.never_answer():
                stats.unanswered += 1
                return
            delay = faults.response_delay()
            status = faults.submit_error()
            if status:
                stats.submit_errors += 1
                session.respond(empty_resp(SUBMIT_SM_RESP, status, seq), out, now)
                return
        if session.unanswered >= carrier.settings.window:
            stats.window_full += 1
            out.append(empty_resp(SUBMIT_SM_RESP, Status.ESME_RTHROTTLED, seq))
            return
        if not carrier.limiter.allow(now):
            stats.throttled += 1
            self._answer(session, empty_resp(SUBMIT_SM_RESP, Status.ESME_RTHROTTLED, seq), delay, out, now)
            return
        if self._mq_cycle:
            position = self._mq_count % self._mq_cycle
            self._mq_count += 1
            if position >= carrier.settings.msgqfull_every:
                stats.msgqfull += 1
                self._answer(session, empty_resp(SUBMIT_SM_RESP, Status.ESME_RMSGQFUL, seq), delay, out, now)
                return
        status = self._accept(session, pdu, now, delay)
        if isinstance(status, str):
            body = status.encode() + b"\x00"
            self._answer(
                session, pack_header(16 + len(body), SUBMIT_SM_RESP, ROK, seq) + body, delay, out, now
            )
        else:
            self._answer(session, empty_resp(SUBMIT_SM_RESP, status, seq), delay, out, now)

    def _answer(self, session: SmppSession, frame: bytes, delay: float, out: list[bytes], now: float) -> None:
        if delay > 0:
            session.unanswered += 1
            self.engine.schedule(now + delay, (RESPONSE, session, frame))
        else:
            out.append(frame)

    def _accept(self, session: SmppSession, pdu: Pdu, now: float, response_delay: float) -> str | int:
        """Store the message and plan its receipt; the message id, or an error status."""
        fields = pdu.fields
        carrier = self.carrier
        stats = carrier.stats
        dest = fields["destination_addr"]
        if not dest:
            stats.invalid_destination += 1
            return Status.ESME_RINVDSTADR
        outcomes = self.outcomes
        rules = outcomes.rules
        rule = rules.get(dest[-10:]) if rules else None
        if rule is not None and rule.behaviour is Behaviour.INVALID:
            stats.invalid_destination += 1
            return Status.ESME_RINVDSTADR
        sm = fields["short_message"]
        tlvs = pdu.tlvs
        concat = None
        reference, total, part_seq = 0, 1, 1
        user_data = sm
        if tlvs:
            payload = tlvs.get(MESSAGE_PAYLOAD)
            if payload is not None:
                if sm:
                    return Status.ESME_RINVOPTPARAMVAL  # short_message and message_payload together
                user_data = sm = payload
        esm_class = fields["esm_class"]
        if esm_class & 0x40:
            try:
                info, user_data = parse_udh(sm)
            except ValueError:
                return Status.ESME_RINVESMCLASS
            if info is not None:
                concat = udh_concat_kind(sm)
                reference, total, part_seq = info.reference, info.total, info.seq
        elif tlvs and SAR_MSG_REF_NUM in tlvs:
            try:
                info = concat_info_from_tlvs(tlvs)
            except ValueError:
                return Status.ESME_RINVOPTPARAMVAL
            if info is not None:
                concat = "sar"
                reference, total, part_seq = info.reference, info.total, info.seq
        engine = self.engine
        decimal = self.decimal_ids
        message_id = self.ids.next(decimal)
        wall = engine.wall
        registered = fields["registered_delivery"]
        part = engine.store.add_part(
            message_id,
            carrier.name,
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
        stats.submitted += 1
        stats.tick_submit(now)
        outcome = outcomes.fixed if rule is None else None
        if outcome is None:
            outcome = outcomes.draw(rule)
            if outcome is None:
                return message_id  # stays ENROUTE, no receipt ever
        state, err, delay = outcome
        part.final_state = state
        part.err = err
        part.done_at = wall + response_delay + delay
        wanted = registered & 3
        if wanted == 1 or (wanted == 2 and state != DELIVERED):
            if self._receipt_decimal is not None:
                part.receipt_id = rewrite_id(message_id, decimal, self._receipt_decimal)
            part.receipt = "scheduled"
            carrier.deliveries.schedule_receipt(part, session, now, delay, response_delay)
        return message_id

    # -- query_sm / cancel_sm ----------------------------------------------------------------------

    def _find(self, message_id: str) -> PartRecord | None:
        part = self.engine.store.part(message_id)
        if part is None or part.message.carrier != self.carrier.name:
            return None
        return part

    def query(self, pdu: Pdu) -> bytes:
        self.carrier.stats.queries += 1
        message_id = pdu.fields.get("message_id", "")
        part = self._find(message_id)
        if part is None:
            return empty_resp(QUERY_SM_RESP, Status.ESME_RQUERYFAIL, pdu.sequence)
        now = time.time()
        state = part.state(now)
        return encode(
            Pdu(
                QUERY_SM_RESP,
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
        self.carrier.stats.cancels += 1
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
                for m in self.engine.store.messages(to=dest, carrier=self.carrier.name, limit=10_000)
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
        return empty_resp(CANCEL_SM_RESP, status, pdu.sequence)
