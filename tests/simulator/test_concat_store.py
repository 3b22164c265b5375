"""Concatenated messages reassembled (UDH 8/16-bit, SAR TLVs, message_payload) and decoded (GSM 03.38
with the extension table, UCS-2), as GET /sim/messages shows them; the store's bounds and filters."""

from __future__ import annotations

import time
import urllib.parse

import pytest
import smpplib.consts
import smpplib.gsm

from simulator.store import Store
from smpp_client.concat import split
from smpp_client.constants import Cmd
from textcodec.encoding import Transliteration, encode_text
from textcodec.segments import ConcatMethod

GSM_TEXT = (
    "Aviso CDMX: corte de agua en Polanco [zona 11560] el 3/12 de 10:00 a 14:00. Costo de pipa 0€; "
    "{dudas} al 311 | ~ ^ \\ ¿Preguntas? ¡Gracias! ñandu Ñ ü é. " * 2
).strip()
UCS2_TEXT = (
    "Atención: su cita en el Módulo Tacuba está confirmada para mañana 10:30 😀. Responda SÍ o NO. " * 2
)


def _send_parts(raw, text: str, method: str, reference: int, to: str = "525512345678") -> list[str]:
    encoded = encode_text(text, Transliteration.OFF, method)
    parts = split(encoded, method, reference)
    assert len(parts) > 1
    # send them out of order: the SMSC must still put them together
    order = list(range(len(parts)))[::-1]
    ids = {}
    for index in order:
        part = parts[index]
        seq = raw.submit(
            to=to,
            text=part.short_message,
            esm_class=part.esm_class,
            data_coding=encoded.data_coding,
            tlvs=dict(part.tlvs),
            registered_delivery=0,
        )
        ids[seq] = index
    got = {}
    while len(got) < len(parts):
        resp = raw.read_until(Cmd.SUBMIT_SM_RESP)
        assert resp.status == 0
        got[ids[resp.sequence]] = resp.fields["message_id"]
    return [got[i] for i in range(len(parts))]


@pytest.mark.parametrize("method", [ConcatMethod.UDH8, ConcatMethod.UDH16, ConcatMethod.SAR])
@pytest.mark.parametrize("text", [GSM_TEXT, UCS2_TEXT], ids=["gsm", "ucs2"])
def test_reassembled_and_decoded(sim, raw_clients, method, text):
    raw = raw_clients(sim.port())
    raw.bind()
    ids = _send_parts(raw, text, method, reference=300 if method != ConcatMethod.UDH8 else 77)
    messages = sim.get("/sim/messages?to=%2B525512345678")["messages"]
    assert len(messages) == 1
    message = messages[0]
    assert message["text"] == text
    assert message["complete"] is True
    assert message["concat"] == str(method)
    assert message["data_coding"] == (0 if text is GSM_TEXT else 8)
    assert message["encoding"] == ("gsm7" if text is GSM_TEXT else "ucs2")
    assert message["total_parts"] == len(ids)
    assert [p["id"] for p in message["parts"]] == ids
    assert [p["seq"] for p in message["parts"]] == list(range(1, len(ids) + 1))
    assert sim.get(f"/sim/messages/{ids[-1]}")["id"] == ids[0]


def test_message_payload_tlv(sim, raw_clients):
    raw = raw_clients(sim.port())
    raw.bind()
    encoded = encode_text(GSM_TEXT, Transliteration.OFF)
    raw.submit(text=b"", tlvs={0x0424: encoded.payload}, registered_delivery=0)
    assert raw.read_until(Cmd.SUBMIT_SM_RESP).status == 0
    message = sim.get("/sim/messages")["messages"][0]
    assert message["text"] == GSM_TEXT and message["total_parts"] == 1


def test_smpplib_make_parts_udh(sim, lib_clients):
    # a foreign client's own splitting (8-bit reference UDH, UCS-2)
    client = lib_clients(sim.port())
    text = "Canción larga " * 12
    parts, coding, esm_class = smpplib.gsm.make_parts(text)
    assert len(parts) > 1 and coding == smpplib.consts.SMPP_ENCODING_ISO10646
    for part in parts:
        client.submit(text=part, esm_class=esm_class, data_coding=coding, registered_delivery=0)
    client.wait_responses(len(parts))
    message = sim.get("/sim/messages")["messages"][0]
    assert message["text"] == text and message["concat"] == "udh8"


def test_incomplete_message_shows_what_arrived(sim, raw_clients):
    raw = raw_clients(sim.port())
    raw.bind()
    encoded = encode_text(GSM_TEXT, Transliteration.OFF)
    parts = split(encoded, ConcatMethod.UDH8, 5)
    first = parts[0]
    raw.submit(text=first.short_message, esm_class=first.esm_class, registered_delivery=0)
    raw.read_until(Cmd.SUBMIT_SM_RESP)
    message = sim.get("/sim/messages")["messages"][0]
    assert message["complete"] is False and message["parts_received"] == 1
    assert message["text"].startswith(GSM_TEXT[:100]) and message["text"].endswith("[…]")


def test_two_long_messages_to_one_phone_with_different_references(sim, raw_clients):
    raw = raw_clients(sim.port())
    raw.bind()
    _send_parts(raw, GSM_TEXT, ConcatMethod.UDH8, 1)
    _send_parts(raw, UCS2_TEXT, ConcatMethod.UDH8, 2)
    texts = [m["text"] for m in sim.get("/sim/messages?to=5512345678")["messages"]]
    assert texts == [GSM_TEXT, UCS2_TEXT]


def test_filters(sim, raw_clients):
    a = raw_clients(sim.port("telcel"))
    a.bind()
    b = raw_clients(sim.port("movistar"))
    b.bind()
    a.submit(to="525511110001", text=b"uno", registered_delivery=0)
    a.read_until(Cmd.SUBMIT_SM_RESP)
    mark = time.time()
    time.sleep(0.01)
    a.submit(to="525511110002", text=b"dos", registered_delivery=0)
    a.read_until(Cmd.SUBMIT_SM_RESP)
    b.submit(to="525511110001", text=b"tres", registered_delivery=0)
    b.read_until(Cmd.SUBMIT_SM_RESP)

    def texts(query: str) -> list[str]:
        return [m["text"] for m in sim.get(f"/sim/messages?{query}")["messages"]]

    assert texts("") == ["uno", "dos", "tres"]
    assert texts("carrier=telcel") == ["uno", "dos"]
    assert texts("carrier=movistar") == ["tres"]
    assert texts("to=%2B525511110001") == ["uno", "tres"]
    assert texts("to=5511110001&carrier=movistar") == ["tres"]
    assert texts(f"since={mark}") == ["dos", "tres"]
    iso = urllib.parse.quote(
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(mark)) + f".{int(mark % 1 * 1e6):06d}Z"
    )
    assert texts(f"since={iso}") == ["dos", "tres"]
    assert texts("limit=2") == ["dos", "tres"]
    assert texts("status=ENROUTE") == []
    assert texts("status=delivrd") == ["uno", "dos", "tres"]
    status, body, ctype = sim.http("GET", "/sim/messages?limit=0")
    assert status == 400 and ctype.startswith("application/problem+json")
    status, body, _ = sim.http("GET", "/sim/messages?since=yesterday")
    assert status == 400 and body["field"] == "since"
    status, body, _ = sim.http("GET", "/sim/messages?carrier=att")
    assert status == 400
    status, body, _ = sim.http("GET", "/sim/messages/doesnotexist")
    assert status == 404


def test_store_is_a_bounded_ring():
    store = Store(size=10)
    for i in range(25):
        store.add_part(f"id{i}", "telcel", "30311", 6, 1, f"52551111{i % 3:04d}", 1, 1, 0, 1, b"x")
    assert len(store) == 10
    assert store.part("id14") is None and store.part("id15") is not None
    assert sum(len(store.messages(to=f"+52551111{i:04d}", limit=100)) for i in range(3)) == 10
    assert len(store.phones()) == 3


def test_store_ring_drops_phones_and_pending_groups():
    store = Store(size=3)
    store.add_part(
        "a1",
        "telcel",
        "30311",
        6,
        1,
        "525500000001",
        1,
        1,
        0,
        1,
        b"\x05\x00\x03\x01\x02\x01x",
        concat="udh8",
        reference=1,
        total=2,
        seq=1,
    )
    for i in range(3):
        store.add_part(f"b{i}", "telcel", "30311", 6, 1, "525500000002", 1, 1, 0, 1, b"y")
    assert store.part("a1") is None
    assert [p["number"] for p in store.phones()] == ["+525500000002"]
    # the second half of the evicted message starts a new, incomplete one
    part = store.add_part(
        "a2",
        "telcel",
        "30311",
        6,
        1,
        "525500000001",
        1,
        1,
        0,
        1,
        b"z",
        concat="udh8",
        reference=1,
        total=2,
        seq=2,
    )
    assert part.message.complete is False
