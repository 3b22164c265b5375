"""deliver_sm from the SMSC: receipts to the status writer, citizens' messages reassembled to the hook."""

from __future__ import annotations

import asyncio

import pytest

from gateway.domain.status import MessageStatus
from gateway.inbound import InboundHandler, msisdn_e164
from gateway.store.outbox import ReceiptUpdate
from smpp_client.concat import ConcatMethod, split
from smpp_client.constants import Cmd, Status, Tlv
from smpp_client.pdu import Pdu
from smpp_client.receipts import receipt_text
from smpp_client.text_encoding import Transliteration, encode_text

SENDER = "525512345678"


class FakeWriter:
    def __init__(self):
        self.posted: list[tuple[ReceiptUpdate, object]] = []

    def post(self, change, callback=None):
        self.posted.append((change, callback))


class Handler(InboundHandler):
    def __init__(self, fail_times: int = 0):
        super().__init__(FakeWriter())
        self.messages: list[tuple] = []
        self.fail_times = fail_times
        self.arrived = asyncio.Event()

    async def on_citizen_message(self, carrier, msisdn, text, received_at):
        if self.fail_times:
            self.fail_times -= 1
            raise RuntimeError("keywords down")
        self.messages.append((carrier, msisdn, text))
        self.arrived.set()


class Answers:
    def __init__(self):
        self.statuses: list[int] = []
        self.changed = asyncio.Event()

    def respond(self):
        def respond(status):
            self.statuses.append(status)
            self.changed.set()

        return respond

    async def wait(self, count: int) -> list[int]:
        async def until():
            while len(self.statuses) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(until(), 5)
        return self.statuses


def mo(short_message: bytes, esm_class: int = 0, data_coding: int = 0, tlvs=None, sender=SENDER) -> Pdu:
    return Pdu(
        Cmd.DELIVER_SM,
        1,
        0,
        {
            "source_addr_ton": 1,
            "source_addr": sender,
            "destination_addr": "30311",
            "esm_class": esm_class,
            "data_coding": data_coding,
            "short_message": short_message,
        },
        tlvs or {},
    )


def parts_of(text: str, method: ConcatMethod, reference: int = 7) -> tuple[list[Pdu], int]:
    encoded = encode_text(text, Transliteration.OFF, method)
    parts = split(encoded, method, reference)
    return [mo(p.short_message, p.esm_class, encoded.data_coding, dict(p.tlvs)) for p in parts], len(parts)


async def test_single_part_goes_to_the_hook_then_is_acknowledged():
    handler, answers = Handler(), Answers()
    handler.on_deliver("telcel", mo(b"ALTA AGUA POLANCO"), answers.respond())
    assert await answers.wait(1) == [Status.ESME_ROK]
    assert handler.messages == [("telcel", "+525512345678", "ALTA AGUA POLANCO")]


@pytest.mark.parametrize("method", [ConcatMethod.UDH8, ConcatMethod.UDH16, ConcatMethod.SAR])
async def test_parts_are_acknowledged_as_they_come_and_the_whole_text_goes_to_the_hook(method):
    text = "BAJA " + "mensaje largo con acentos ñ ¿¡ € [] " * 12
    pdus, total = parts_of(text, method)
    assert total >= 3
    handler, answers = Handler(), Answers()
    order = [*pdus[1:], pdus[0]]  # out of order
    for i, p in enumerate(order[:-1], start=1):
        handler.on_deliver("movistar", p, answers.respond())
        assert await answers.wait(i) == [Status.ESME_ROK] * i  # not held while the group is incomplete
    assert handler.messages == []
    handler.on_deliver("movistar", order[-1], answers.respond())
    await asyncio.wait_for(handler.arrived.wait(), 5)
    assert await answers.wait(total) == [Status.ESME_ROK] * total
    assert handler.messages == [("movistar", "+525512345678", text)]
    assert len(handler.reassembler) == 0


async def test_ucs2_surrogate_pair_cut_by_the_sender_is_rejoined():
    payload = "Hola 👍 ok".encode("utf-16-be")
    cut = payload.index("👍".encode("utf-16-be")) + 2  # between the two halves of the pair
    handler, answers = Handler(), Answers()
    for seq, chunk in ((1, payload[:cut]), (2, payload[cut:])):
        udh = bytes((5, 0, 3, 9, 2, seq))
        handler.on_deliver("telcel", mo(udh + chunk, 0x40, 0x08), answers.respond())
    await asyncio.wait_for(handler.arrived.wait(), 5)
    assert handler.messages[0][2] == "Hola 👍 ok"


async def test_message_payload_tlv():
    handler, answers = Handler(), Answers()
    text = "texto largo " * 30
    p = mo(b"", tlvs={Tlv.MESSAGE_PAYLOAD: encode_text(text, Transliteration.OFF).payload})
    handler.on_deliver("telcel", p, answers.respond())
    await asyncio.wait_for(handler.arrived.wait(), 5)
    assert handler.messages[0][2] == text


async def test_groups_of_two_senders_with_the_same_reference_stay_apart():
    handler, answers = Handler(), Answers()
    a, _ = parts_of("A" * 200, ConcatMethod.UDH8, reference=5)
    b, _ = parts_of("B" * 200, ConcatMethod.UDH8, reference=5)
    for p in b:
        p.fields["source_addr"] = "525587654321"
    for p in (a[0], b[0], b[1], a[1]):
        handler.on_deliver("telcel", p, answers.respond())
    await answers.wait(4)
    assert sorted(m[2][0] + m[1][-4:] for m in handler.messages) == ["A5678", "B4321"]


async def test_a_failing_hook_gets_the_last_part_resent_and_the_group_completes_then():
    pdus, total = parts_of("SI confirmo mi cita " * 12, ConcatMethod.UDH8)
    handler, answers = Handler(fail_times=1), Answers()
    for p in pdus:
        handler.on_deliver("telcel", p, answers.respond())
    statuses = await answers.wait(total)
    assert statuses[-1] == Status.ESME_RX_T_APPN and statuses[:-1] == [Status.ESME_ROK] * (total - 1)
    handler.on_deliver("telcel", pdus[-1], answers.respond())  # the SMSC sends the last part again
    await asyncio.wait_for(handler.arrived.wait(), 5)
    assert (await answers.wait(total + 1))[-1] == Status.ESME_ROK
    assert handler.messages[0][2] == "SI confirmo mi cita " * 12


async def test_malformed_udh_is_taken_as_one_part():
    handler, answers = Handler(), Answers()
    handler.on_deliver("telcel", mo(b"\x09\x00\x03", 0x40), answers.respond())
    assert await answers.wait(1) == [Status.ESME_ROK]


def test_sender_forms():
    assert msisdn_e164("525512345678") == "+525512345678"
    assert msisdn_e164("5512345678", 2) == "+525512345678"
    assert msisdn_e164("14155550100", 1) == "+14155550100"
    assert msisdn_e164("ALERTA", 5) == "ALERTA"


def receipt(stat: str, message_id: str = "1a2b", tlvs=None) -> Pdu:
    from datetime import datetime

    text = receipt_text(message_id, stat, datetime(2026, 11, 29, 10), datetime(2026, 11, 29, 10, 1), "000")
    return Pdu(Cmd.DELIVER_SM, 3, 0, {"esm_class": 0x04, "short_message": text.encode()}, tlvs or {})


async def test_a_final_receipt_is_acknowledged_only_once_committed():
    handler, answers = Handler(), Answers()
    handler.on_deliver("telcel", receipt("DELIVRD", "00001A2B"), answers.respond())
    ((change, callback),) = handler.writer.posted
    assert answers.statuses == []
    assert change.part_status == MessageStatus.DELIVERED and change.carrier == "telcel"
    # the id as the carrier wrote it: the status writer matches it to a part
    assert change.smsc_id == "00001A2B"
    callback()
    assert answers.statuses == [Status.ESME_ROK]


@pytest.mark.parametrize(
    ("stat", "status"),
    [
        ("UNDELIV", MessageStatus.UNDELIVERABLE),
        ("EXPIRED", MessageStatus.EXPIRED),
        ("REJECTD", MessageStatus.REJECTED),
        ("DELETED", MessageStatus.UNDELIVERABLE),
    ],
)
async def test_failure_receipts(stat, status):
    handler, answers = Handler(), Answers()
    handler.on_deliver("telcel", receipt(stat), answers.respond())
    assert handler.writer.posted[0][0].part_status == status


async def test_intermediate_and_unparseable_receipts_are_acknowledged_and_not_recorded():
    handler, answers = Handler(), Answers()
    handler.on_deliver("telcel", receipt("ENROUTE"), answers.respond())
    handler.on_deliver("telcel", receipt("ACCEPTD"), answers.respond())
    garbage = Pdu(Cmd.DELIVER_SM, 4, 0, {"esm_class": 0x04, "short_message": b"\xff\xfe nothing"}, {})
    handler.on_deliver("telcel", garbage, answers.respond())
    assert answers.statuses == [Status.ESME_ROK] * 3
    assert handler.writer.posted == []
    assert handler.receipts_intermediate == 2 and handler.receipts_unparsed == 1


async def test_receipt_tlvs_win_over_the_text():
    handler, answers = Handler(), Answers()
    p = receipt(
        "DELIVRD",
        "999",
        tlvs={Tlv.RECEIPTED_MESSAGE_ID: b"abc\x00", Tlv.MESSAGE_STATE: b"\x05", 0x1403: b"vendor"},
    )
    handler.on_deliver("telcel", p, answers.respond())
    change = handler.writer.posted[0][0]
    assert change.smsc_id == "abc" and change.part_status == MessageStatus.UNDELIVERABLE


@pytest.mark.parametrize(
    "pdu",
    [
        receipt("DELIVRD", "9" * 4300),  # int() of it would raise
        receipt("DELIVRD", "9" * 5000),
        receipt("DELIVRD", "a" * 65),
        receipt("DELIVRD", "1", tlvs={Tlv.RECEIPTED_MESSAGE_ID: b"x" * 300 + b"\x00"}),
        receipt("DELIVRD", "1", tlvs={Tlv.RECEIPTED_MESSAGE_ID: b"caf\xe9\x00"}),
    ],
    ids=["4300-digits", "5000-digits", "65-chars", "300-octet-tlv", "latin1-tlv"],
)
async def test_a_receipt_with_an_unusable_id_is_acknowledged_and_counted(pdu):
    if len(pdu.fields["short_message"]) > 254:  # as a long SMSC would send it
        pdu.tlvs[Tlv.MESSAGE_PAYLOAD] = pdu.fields.pop("short_message")
    handler, answers = Handler(), Answers()
    handler.on_deliver("telcel", pdu, answers.respond())
    assert answers.statuses == [Status.ESME_ROK]  # never ESME_RX_T_APPN: the SMSC must not resend it
    assert handler.writer.posted == [] and handler.receipts_unparsed == 1


async def test_a_receipt_in_data_sm_by_tlvs():
    handler, answers = Handler(), Answers()
    p = Pdu(
        Cmd.DATA_SM,
        9,
        0,
        {"esm_class": 0x04, "source_addr": SENDER},
        {Tlv.RECEIPTED_MESSAGE_ID: b"3ac1\x00", Tlv.MESSAGE_STATE: b"\x02"},
    )
    handler.on_deliver("telcel", p, answers.respond())
    ((change, _),) = handler.writer.posted
    assert (change.smsc_id, change.part_status) == ("3ac1", MessageStatus.DELIVERED)


async def test_an_mo_from_an_impossible_sender_is_refused_for_good():
    handler, answers = Handler(), Answers()
    handler.on_deliver("telcel", mo(b"ALTA", sender="5" * 40), answers.respond())
    assert answers.statuses == [Status.ESME_RINVSRCADR]
    assert handler.messages == [] and handler.mo_refused == 1
