"""receipt_mode: "batched" (the receipts of a tick leave in one write) or "each" (one deliver_sm per
write, as it falls due), both within deliver_window unacknowledged deliver_sm per session.

The write-level tests drive one SmppSession through the asyncio Protocol interface with a
transport that records each ``write`` call; the others use real sockets."""

from __future__ import annotations

import asyncio
import struct

from simulator.session import SmppSession
from simulator.settings import SimulatorSettings
from simulator.smsc import Smsc
from smpp_client.constants import Cmd, Tlv
from smpp_client.pdu import decode, make, tlv_cstr

DELIVER_SM = int(Cmd.DELIVER_SM)


class RecordingTransport(asyncio.Transport):
    """A transport that keeps each ``write`` as it was made."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.written = asyncio.Event()
        self._closing = False

    def write(self, data) -> None:
        self.writes.append(bytes(data))
        self.written.set()

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 40000) if name == "peername" else default

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def pdus_per_write(self) -> list[list]:
        out = []
        for chunk in self.writes:
            pdus, pos = [], 0
            while pos < len(chunk):
                length = struct.unpack_from(">I", chunk, pos)[0]
                pdus.append(decode(chunk[pos : pos + length]))
                pos += length
            out.append(pdus)
        return out

    def deliver_sms(self) -> list:
        return [p for pdus in self.pdus_per_write() for p in pdus if p.command_id == DELIVER_SM]

    async def wait_deliver_sms(self, count: int) -> list:
        async def enough():
            while len(self.deliver_sms()) < count:
                self.written.clear()
                await self.written.wait()

        await asyncio.wait_for(enough(), 5)
        return self.deliver_sms()


def _settings(**carrier) -> SimulatorSettings:
    return SimulatorSettings.model_validate(
        {
            "http_listen": "127.0.0.1:0",
            "tick_ms": 2,
            "carriers": [{"name": "telcel", "port": 0, "receipt_delay": 0, **carrier}],
        }
    )


def _submits(count: int, first_seq: int = 2) -> bytes:
    return b"".join(
        make(
            Cmd.SUBMIT_SM,
            first_seq + i,
            source_addr_ton=6,
            source_addr_npi=1,
            source_addr="30311",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr="525512345678",
            short_message=f"Aviso {i}".encode(),
            registered_delivery=1,
        )
        for i in range(count)
    )


async def _bound_session(smsc: Smsc) -> tuple[SmppSession, RecordingTransport]:
    session = SmppSession(smsc.carriers["telcel"])
    transport = RecordingTransport()
    session.connection_made(transport)
    session.data_received(
        make(Cmd.BIND_TRANSCEIVER, 1, system_id="smsgw", password="smsgw", interface_version=0x34)
    )
    assert decode(transport.writes[-1]).command_id == Cmd.BIND_TRANSCEIVER_RESP
    return session, transport


async def test_each_mode_one_deliver_sm_per_write_within_the_window():
    smsc = Smsc(_settings(receipt_mode="each", deliver_window=3))
    await smsc.start()
    try:
        session, transport = await _bound_session(smsc)
        session.data_received(_submits(10))  # ten submit_sm in one read
        responses = transport.pdus_per_write()[1]
        assert [p.command_id for p in responses] == [Cmd.SUBMIT_SM_RESP] * 10  # answered in one write
        ids = [p.fields["message_id"] for p in responses]
        sent = await transport.wait_deliver_sms(3)
        assert smsc.carriers["telcel"].info()["deliver_sm_queued"] == 7  # the others wait for room
        acked = 0
        while acked < 10:
            assert len(sent) - acked <= 3  # never more than deliver_window unacknowledged
            session.data_received(make(Cmd.DELIVER_SM_RESP, sent[acked].sequence, message_id=""))
            acked += 1
            sent = await transport.wait_deliver_sms(min(10, acked + 3))
        assert len(sent) == 10
        assert [tlv_cstr(p.tlvs[Tlv.RECEIPTED_MESSAGE_ID]) for p in sent] == ids
        for pdus in transport.pdus_per_write():
            if any(p.command_id == DELIVER_SM for p in pdus):
                assert len(pdus) == 1  # a deliver_sm never shares its write
        info = smsc.carriers["telcel"].info()
        assert info["receipts_acked"] == 10 and info["deliver_sm_queued"] == 0
    finally:
        await smsc.stop()


async def test_each_mode_sends_the_parts_of_an_mo_one_per_write():
    smsc = Smsc(_settings(receipt_mode="each"))
    await smsc.start()
    try:
        _, transport = await _bound_session(smsc)
        carrier = smsc.carriers["telcel"]
        record = smsc.send_mo(carrier, "+525512345678", "ALTA AGUA POLANCO " * 20, "30311")
        assert record.parts == 3
        parts = await transport.wait_deliver_sms(3)
        assert [p.fields["short_message"][5] for p in parts] == [1, 2, 3]  # UDH part numbers, in order
        assert all(len(pdus) == 1 for pdus in transport.pdus_per_write()[1:])
    finally:
        await smsc.stop()


async def test_batched_mode_sends_the_receipts_of_a_tick_in_one_write():
    smsc = Smsc(_settings(receipt_mode="batched"))
    await smsc.start()
    try:
        session, transport = await _bound_session(smsc)
        session.data_received(_submits(10))
        await transport.wait_deliver_sms(10)
        writes_with_receipts = [
            pdus for pdus in transport.pdus_per_write() if any(p.command_id == DELIVER_SM for p in pdus)
        ]
        assert len(writes_with_receipts) == 1 and len(writes_with_receipts[0]) == 10
    finally:
        await smsc.stop()


async def test_each_mode_receipt_follows_a_held_back_response():
    smsc = Smsc(_settings(receipt_mode="each", faults={"response_delay": 0.02}))
    await smsc.start()
    try:
        session, transport = await _bound_session(smsc)
        session.data_received(_submits(3))
        await transport.wait_deliver_sms(3)
        answered = set()
        for pdus in transport.pdus_per_write()[1:]:
            for pdu in pdus:
                if pdu.command_id == Cmd.SUBMIT_SM_RESP:
                    answered.add(pdu.fields["message_id"])
                else:
                    assert tlv_cstr(pdu.tlvs[Tlv.RECEIPTED_MESSAGE_ID]) in answered  # after its response
        assert len(answered) == 3
    finally:
        await smsc.stop()


def test_each_mode_window_of_one_over_a_socket(make_sim, raw_clients):
    sim = make_sim(telcel={"receipt_mode": "each", "deliver_window": 1})
    raw = raw_clients(sim.port())
    raw.bind()
    for _ in range(5):
        raw.submit()
    ids, receipts = [], []
    while len(ids) < 5:  # the first receipt may come before the last responses
        pdu = raw.read()
        if pdu.command_id == Cmd.SUBMIT_SM_RESP:
            ids.append(pdu.fields["message_id"])
        elif pdu.command_id == Cmd.DELIVER_SM:
            receipts.append(pdu)
    assert len(receipts) <= 1
    if not receipts:
        receipts.append(raw.read_until(Cmd.DELIVER_SM))
    telcel = sim.smsc.carriers["telcel"]
    while True:
        waiting = 5 - len(receipts)
        sim.wait_until(
            lambda w=waiting: telcel.info()["deliver_sm_queued"] == w, what="the others to wait for room"
        )
        assert sim.call(telcel.info)["deliver_sm_outstanding"] == 1  # the one just read, not yet acked
        raw.ack(receipts[-1])
        if len(receipts) == 5:
            break
        receipts.append(raw.read_until(Cmd.DELIVER_SM))
    sim.wait_until(lambda: telcel.stats.receipts_acked == 5, what="every receipt acknowledged")
    assert [tlv_cstr(p.tlvs[Tlv.RECEIPTED_MESSAGE_ID]) for p in receipts] == ids


def test_each_mode_reset_voids_receipts_not_yet_due(make_sim, raw_clients):
    sim = make_sim(telcel={"receipt_mode": "each", "receipt_delay": 0.3})
    raw = raw_clients(sim.port())
    raw.bind()
    raw.submit()
    raw.read_until(Cmd.SUBMIT_SM_RESP)
    sim.http("POST", "/sim/reset", {})
    raw.submit(text=b"after the reset")
    message_id = raw.read_until(Cmd.SUBMIT_SM_RESP).fields["message_id"]
    pdu = raw.read_until(Cmd.DELIVER_SM)
    assert tlv_cstr(pdu.tlvs[Tlv.RECEIPTED_MESSAGE_ID]) == message_id  # the first one never comes
    raw.ack(pdu)
    telcel = sim.smsc.carriers["telcel"]
    sim.wait_until(lambda: telcel.stats.receipts_acked == 1, what="the receipt acknowledged")
    assert telcel.stats.receipts_sent == 1
