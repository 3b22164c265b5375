"""deliver_sm and data_sm from the SMSC become events: receipts parsed (their ids in the submit form
where the carrier's relation is known), messages from handsets reassembled and decoded; each is
answered once the application's awaitable resolves."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from smpp_client.concat import split
from smpp_client.constants import Cmd, MessageState, Status, Tlv
from smpp_client.inbound import Inbound
from smpp_client.message_ids import ReceiptIdRelations, Relation
from smpp_client.pdu import Pdu
from smpp_client.receipts import receipt_text
from textcodec.encoding import Transliteration, encode_text
from textcodec.segments import ConcatMethod

from .link_events import AcknowledgingEvents

SENDER = "525512345678"
AT = datetime(2026, 11, 29, 10, 0, 5)


def inbound(events: AcknowledgingEvents | None = None, **relations: str) -> Inbound:
    return Inbound(events or AcknowledgingEvents(), ReceiptIdRelations(relations), clock=lambda: AT)


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


async def test_single_part_goes_to_the_handler_then_is_acknowledged():
    events, answers = AcknowledgingEvents(hold=True), Answers()
    link = inbound(events)
    link.deliver("telcel", mo(b"ALTA AGUA POLANCO"), answers.respond())
    (message,) = events.messages
    assert (message.carrier, message.sender, message.recipient, message.text) == (
        "telcel",
        "+525512345678",
        "30311",
        "ALTA AGUA POLANCO",
    )
    assert (message.received_at, message.parts) == (AT, 1)
    assert answers.statuses == []  # not before the application took it
    events.pending[0].set_result(None)
    assert await answers.wait(1) == [Status.ESME_ROK]


@pytest.mark.parametrize("method", [ConcatMethod.UDH8, ConcatMethod.UDH16, ConcatMethod.SAR])
async def test_parts_are_acknowledged_as_they_come_and_the_whole_text_is_one_message(method):
    text = "BAJA " + "mensaje largo con acentos ñ ¿¡ € [] " * 12
    pdus, total = parts_of(text, method)
    assert total >= 3
    events, answers = AcknowledgingEvents(), Answers()
    link = inbound(events)
    order = [*pdus[1:], pdus[0]]  # out of order
    for i, p in enumerate(order[:-1], start=1):
        link.deliver("movistar", p, answers.respond())
        assert await answers.wait(i) == [Status.ESME_ROK] * i  # not held while the group is incomplete
    assert events.messages == []
    link.deliver("movistar", order[-1], answers.respond())
    assert await answers.wait(total) == [Status.ESME_ROK] * total
    assert [(m.carrier, m.sender, m.text, m.parts) for m in events.messages] == [
        ("movistar", "+525512345678", text, total)
    ]
    assert len(link.reassembler) == 0 and link.mo_parts == total


async def test_ucs2_surrogate_pair_cut_by_the_sender_is_rejoined():
    payload = "Hola 👍 ok".encode("utf-16-be")
    cut = payload.index("👍".encode("utf-16-be")) + 2  # between the two halves of the pair
    events, answers = AcknowledgingEvents(), Answers()
    link = inbound(events)
    for seq, chunk in ((1, payload[:cut]), (2, payload[cut:])):
        udh = bytes((5, 0, 3, 9, 2, seq))
        link.deliver("telcel", mo(udh + chunk, 0x40, 0x08), answers.respond())
    await answers.wait(2)
    assert events.messages[0].text == "Hola 👍 ok"


async def test_message_payload_tlv():
    events, answers = AcknowledgingEvents(), Answers()
    text = "texto largo " * 30
    p = mo(b"", tlvs={Tlv.MESSAGE_PAYLOAD: encode_text(text, Transliteration.OFF).payload})
    inbound(events).deliver("telcel", p, answers.respond())
    await answers.wait(1)
    assert events.messages[0].text == text


async def test_groups_of_two_senders_with_the_same_reference_stay_apart():
    events, answers = AcknowledgingEvents(), Answers()
    link = inbound(events)
    a, _ = parts_of("A" * 200, ConcatMethod.UDH8, reference=5)
    b, _ = parts_of("B" * 200, ConcatMethod.UDH8, reference=5)
    for p in b:
        p.fields["source_addr"] = "525587654321"
    for p in (a[0], b[0], b[1], a[1]):
        link.deliver("telcel", p, answers.respond())
    await answers.wait(4)
    assert sorted(m.text[0] + m.sender[-4:] for m in events.messages) == ["A5678", "B4321"]


async def test_a_failing_handler_gets_the_last_part_resent_and_the_group_completes_then():
    pdus, total = parts_of("SI confirmo mi cita " * 12, ConcatMethod.UDH8)
    events, answers = AcknowledgingEvents(fail_messages=1), Answers()
    link = inbound(events)
    for p in pdus:
        link.deliver("telcel", p, answers.respond())
    statuses = await answers.wait(total)
    assert statuses[-1] == Status.ESME_RX_T_APPN and statuses[:-1] == [Status.ESME_ROK] * (total - 1)
    link.deliver("telcel", pdus[-1], answers.respond())  # the SMSC sends the last part again
    assert (await answers.wait(total + 1))[-1] == Status.ESME_ROK
    assert [m.text for m in events.messages] == ["SI confirmo mi cita " * 12]


async def test_a_handler_that_raises_at_once_has_the_message_sent_again():
    class Broken(AcknowledgingEvents):
        def mobile_message(self, message):
            raise RuntimeError("no inbox")

    answers = Answers()
    inbound(Broken()).deliver("telcel", mo(b"AYUDA"), answers.respond())
    assert answers.statuses == [Status.ESME_RX_T_APPN]


async def test_malformed_udh_is_taken_as_one_part():
    events, answers = AcknowledgingEvents(), Answers()
    inbound(events).deliver("telcel", mo(b"\x09\x00\x03", 0x40), answers.respond())
    assert await answers.wait(1) == [Status.ESME_ROK]
    assert len(events.messages) == 1


async def test_an_mo_from_an_impossible_sender_is_refused_for_good():
    events, answers = AcknowledgingEvents(), Answers()
    link = inbound(events)
    link.deliver("telcel", mo(b"ALTA", sender="5" * 40), answers.respond())
    assert answers.statuses == [Status.ESME_RINVSRCADR]
    assert events.messages == [] and link.mo_refused == 1


async def test_the_sender_is_given_as_the_pool_was_told():
    events, answers = AcknowledgingEvents(), Answers()
    link = Inbound(events, ReceiptIdRelations(), sender_number=lambda address, ton: f"{ton}:{address}")
    link.deliver("telcel", mo(b"hola"), answers.respond())
    await answers.wait(1)
    assert events.messages[0].sender == "1:525512345678"


def test_the_default_sender_form():
    from smpp_client.inbound import international_number

    assert international_number("525512345678") == "+525512345678"
    assert international_number("5512345678", 2) == "5512345678"
    assert international_number("ALERTA", 5) == "ALERTA"


# --- receipts ---------------------------------------------------------------------------------


def receipt(stat: str, message_id: str = "1a2b", tlvs=None) -> Pdu:
    text = receipt_text(message_id, stat, datetime(2026, 11, 29, 10), datetime(2026, 11, 29, 10, 1), "000")
    return Pdu(Cmd.DELIVER_SM, 3, 0, {"esm_class": 0x04, "short_message": text.encode()}, tlvs or {})


async def test_a_receipt_is_acknowledged_only_once_stored():
    events, answers = AcknowledgingEvents(hold=True), Answers()
    inbound(events).deliver("telcel", receipt("DELIVRD", "00001A2B"), answers.respond())
    (event,) = events.receipts
    assert answers.statuses == []
    assert (event.carrier, event.message_id, event.state, event.error, event.received_at) == (
        "telcel",
        "00001A2B",  # as the carrier wrote it
        MessageState.DELIVERED,
        "000",
        AT,
    )
    assert event.final and event.submit_id is None  # the carrier's relation is not known yet
    events.pending[0].set_result(None)
    assert await answers.wait(1) == [Status.ESME_ROK]


async def test_a_receipt_that_could_not_be_stored_is_sent_again():
    events, answers = AcknowledgingEvents(hold=True), Answers()
    inbound(events).deliver("telcel", receipt("DELIVRD"), answers.respond())
    events.pending[0].set_exception(RuntimeError("database down"))
    assert await answers.wait(1) == [Status.ESME_RX_T_APPN]


@pytest.mark.parametrize(
    ("relation", "written", "submit_id"),
    [
        ("same", "00001A2B", "1a2b"),
        ("submit_decimal_receipt_hex", "1A2B", "6699"),
        ("submit_hex_receipt_decimal", "6699", "1a2b"),
        ("submit_decimal_receipt_hex", "xyz", None),  # not hex: it names no submit id
    ],
)
async def test_where_the_relation_is_known_the_id_comes_in_the_submit_form(relation, written, submit_id):
    events, answers = AcknowledgingEvents(), Answers()
    inbound(events, telcel=relation).deliver("telcel", receipt("DELIVRD", written), answers.respond())
    (event,) = events.receipts
    assert (event.message_id, event.submit_id) == (written, submit_id)


async def test_a_learned_relation_is_used_from_then_on():
    relations = ReceiptIdRelations(learn_after=1)
    events, answers = AcknowledgingEvents(), Answers()
    link = Inbound(events, relations)
    link.deliver("telcel", receipt("DELIVRD", "1a"), answers.respond())
    assert relations.observe("telcel", Relation.SUBMIT_DECIMAL_RECEIPT_HEX)  # the status writer's evidence
    link.deliver("telcel", receipt("DELIVRD", "1a"), answers.respond())
    assert [e.submit_id for e in events.receipts] == [None, "26"]


@pytest.mark.parametrize("stat", ["UNDELIV", "EXPIRED", "REJECTD", "DELETED", "ENROUTE", "ACCEPTD"])
async def test_every_parsed_receipt_is_reported_with_its_state(stat):
    events, answers = AcknowledgingEvents(), Answers()
    inbound(events).deliver("telcel", receipt(stat), answers.respond())
    (event,) = events.receipts
    assert event.final is (stat not in ("ENROUTE", "ACCEPTD"))
    assert await answers.wait(1) == [Status.ESME_ROK]


async def test_an_unparseable_receipt_is_acknowledged_and_counted():
    events, answers = AcknowledgingEvents(), Answers()
    link = inbound(events)
    garbage = Pdu(Cmd.DELIVER_SM, 4, 0, {"esm_class": 0x04, "short_message": b"\xff\xfe nothing"}, {})
    link.deliver("telcel", garbage, answers.respond())
    assert answers.statuses == [Status.ESME_ROK]
    assert events.receipts == [] and link.receipts_unparsed == 1


async def test_receipt_tlvs_win_over_the_text():
    events, answers = AcknowledgingEvents(), Answers()
    p = receipt(
        "DELIVRD",
        "999",
        tlvs={Tlv.RECEIPTED_MESSAGE_ID: b"abc\x00", Tlv.MESSAGE_STATE: b"\x05", 0x1403: b"vendor"},
    )
    inbound(events).deliver("telcel", p, answers.respond())
    (event,) = events.receipts
    assert event.message_id == "abc" and event.state == MessageState.UNDELIVERABLE


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
    events, answers = AcknowledgingEvents(), Answers()
    link = inbound(events, telcel="submit_decimal_receipt_hex")
    link.deliver("telcel", pdu, answers.respond())
    assert answers.statuses == [Status.ESME_ROK]  # never ESME_RX_T_APPN: the SMSC must not resend it
    assert events.receipts == [] and link.receipts_unparsed == 0
    assert link.receipts_unknown == {"telcel": 1}  # an id the gateway never sent


async def test_a_receipt_in_data_sm_by_tlvs():
    events, answers = AcknowledgingEvents(), Answers()
    p = Pdu(
        Cmd.DATA_SM,
        9,
        0,
        {"esm_class": 0x04, "source_addr": SENDER},
        {Tlv.RECEIPTED_MESSAGE_ID: b"3ac1\x00", Tlv.MESSAGE_STATE: b"\x02"},
    )
    inbound(events).deliver("telcel", p, answers.respond())
    (event,) = events.receipts
    assert (event.message_id, event.state) == ("3ac1", MessageState.DELIVERED)
