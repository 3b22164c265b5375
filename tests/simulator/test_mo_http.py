"""MO (POST /sim/mo) received by smpplib's client; the HTTP control API and the handsets page."""

from __future__ import annotations

import re
import time

import pytest
import smpplib.consts as c

from smpp_client.concat import parse_udh
from smpp_client.constants import Cmd
from textcodec.encoding import decode_payload


def _mo_text(pdus) -> str:
    """Reassemble deliver_sm parts as a handset application would (UDH 8-bit)."""
    chunks = {}
    coding = pdus[0].data_coding
    for pdu in pdus:
        if pdu.esm_class & c.SMPP_GSMFEAT_UDHI:
            info, data = parse_udh(pdu.short_message)
            chunks[info.seq] = data
        else:
            chunks[1] = pdu.short_message
    return decode_payload(b"".join(chunks[k] for k in sorted(chunks)), coding)


def test_short_mo(sim, lib_clients):
    client = lib_clients(sim.port())
    status, body, _ = sim.http("POST", "/sim/mo", {"from": "+525512345678", "text": "ALTA AGUA POLANCO"})
    assert status == 202, body
    assert body["carrier"] == "telcel" and body["parts"] == 1 and body["to"] == "30311"
    pdu = client.wait_received(1)[0]
    assert pdu.source_addr == b"525512345678" and pdu.source_addr_ton == 1
    assert pdu.destination_addr == b"30311"
    assert pdu.esm_class == 0 and pdu.data_coding == 0
    assert pdu.short_message == b"ALTA AGUA POLANCO"
    sim.wait_until(lambda: sim.store.mo_record(body["id"]).status == "delivered", what="MO acked")
    assert sim.get(f"/sim/mo/{body['id']}")["status"] == "delivered"


@pytest.mark.parametrize(
    ("text", "coding"),
    [
        (
            "Quiero reportar una fuga de agua en la calle Lago Alberto [esquina] con Marina Nacional, "
            "colonia Anáhuac; lleva 3 días y el costo € del agua se pierde. " * 2,
            c.SMPP_ENCODING_ISO10646,
        ),
        ("ESTADO MH-2026-004512 {urgente} [fuga] precio 10€ ~ ^ | \\ " * 6, c.SMPP_ENCODING_DEFAULT),
    ],
    ids=["ucs2", "gsm-extension"],
)
def test_long_mo_is_split_with_udh(sim, lib_clients, text, coding):
    client = lib_clients(sim.port())
    status, body, _ = sim.http("POST", "/sim/mo", {"from": "+525512345678", "text": text, "to": "30311"})
    assert status == 202
    parts = body["parts"]
    assert parts > 1
    pdus = client.wait_received(parts)
    assert all(p.esm_class & c.SMPP_GSMFEAT_UDHI for p in pdus)
    assert all(p.data_coding == coding for p in pdus)
    # on air each part fits 140 octets: UCS-2 134 + UDH, GSM 153 septets (sent unpacked) + UDH
    assert all(len(p.short_message) <= (140 if coding else 6 + 153) for p in pdus)
    refs = {parse_udh(p.short_message)[0].reference for p in pdus}
    assert len(refs) == 1
    assert _mo_text(pdus) == text


def test_mo_goes_to_the_carrier_of_the_number(sim, lib_clients, raw_clients):
    telcel = lib_clients(sim.port("telcel"))
    movistar = lib_clients(sim.port("movistar"))
    # the gateway sent to this number through movistar: its replies come from movistar
    sender = raw_clients(sim.port("movistar"))
    sender.bind(Cmd.BIND_TRANSMITTER)
    sender.submit(to="525587654321", registered_delivery=0)
    sender.read_until(Cmd.SUBMIT_SM_RESP)
    status, body, _ = sim.http("POST", "/sim/mo", {"from": "+525587654321", "text": "SI"})
    assert status == 202 and body["carrier"] == "movistar"
    assert movistar.wait_received(1)[0].short_message == b"SI"
    # an explicit carrier wins
    status, body, _ = sim.http(
        "POST", "/sim/mo", {"from": "+525587654321", "text": "NO", "carrier": "telcel"}
    )
    assert status == 202
    assert telcel.wait_received(1)[0].short_message == b"NO"


def test_mo_with_mo_prefixes(make_sim, lib_clients):
    sim = make_sim(movistar={"mo_prefixes": ["+5233"]})
    movistar = lib_clients(sim.port("movistar"))
    status, body, _ = sim.http("POST", "/sim/mo", {"from": "+523312345678", "text": "AYUDA"})
    assert status == 202 and body["carrier"] == "movistar"
    movistar.wait_received(1)


def test_mo_without_a_receiver_is_409(sim, lib_clients):
    lib_clients(sim.port(), kind="transmitter")  # bound, but cannot receive
    status, body, ctype = sim.http("POST", "/sim/mo", {"from": "+525512345678", "text": "hola"})
    assert status == 409 and ctype.startswith("application/problem+json")
    assert body["carrier"] == "telcel"


def test_mo_validation(sim):
    for bad in (
        {"text": "x"},
        {"from": "123", "text": "x"},
        {"from": "+525512345678"},
        {"from": "+525512345678", "text": ""},
        {"from": "+525512345678", "text": "x", "carrier": "att"},
    ):
        status, body, ctype = sim.http("POST", "/sim/mo", bad)
        assert status == 400 and ctype.startswith("application/problem+json"), bad
        assert body["field"] in ("from", "text", "carrier")
    status, body, _ = sim.http("POST", "/sim/mo", ["not", "an", "object"])
    assert status == 400


def test_mo_resent_until_acknowledged(make_sim, lib_clients):
    sim = make_sim(telcel={"deliver_timeout": 0.2})
    client = lib_clients(sim.port(), ack=False)  # answers deliver_sm with ESME_RX_T_APPN
    status, body, _ = sim.http("POST", "/sim/mo", {"from": "+525512345678", "text": "BAJA"})
    assert status == 202
    client.wait_received(2)
    assert [p.short_message for p in client.received[:2]] == [b"BAJA", b"BAJA"]
    client.ack_status = None
    client.wait_received(3)
    sim.wait_until(lambda: sim.store.mo_record(body["id"]).status == "delivered", what="MO acked")
    assert sim.get("/sim/stats")["carriers"]["telcel"]["deliver_sm_resent"] >= 1


def test_reset(sim, raw_clients, lib_clients):
    raw = raw_clients(sim.port())
    raw.bind()
    raw.submit(registered_delivery=0)
    raw.read_until(Cmd.SUBMIT_SM_RESP)
    assert sim.get("/sim/messages")["count"] == 1
    status, _body, _ = sim.http("POST", "/sim/reset")
    assert status == 200
    assert sim.get("/sim/messages")["count"] == 0
    assert sim.get("/sim/stats")["carriers"]["telcel"]["submitted"] == 0
    # sessions survive a plain reset ...
    seq = raw.submit(registered_delivery=0)
    assert raw.read_until(Cmd.SUBMIT_SM_RESP).sequence == seq
    # ... and can be dropped too
    status, _, _ = sim.http("POST", "/sim/reset", {"drop_sessions": True})
    assert status == 200
    assert raw.closed()


def test_stats(sim, raw_clients):
    raw = raw_clients(sim.port())
    raw.bind()
    for _ in range(10):
        raw.submit()
    receipts = 0
    while receipts < 10:
        pdu = raw.read()
        if pdu.command_id == Cmd.DELIVER_SM:
            raw.ack(pdu)
            receipts += 1
    sim.wait_until(lambda: sim.smsc.carriers["telcel"].stats.receipts_acked == 10, what="receipts acked")
    stats = sim.get("/sim/stats")
    telcel = stats["carriers"]["telcel"]
    assert telcel["binds"]["transceiver"] == 1
    assert telcel["submit_sm"] == 10 and telcel["submitted"] == 10
    assert telcel["receipts_sent"] == 10 and telcel["receipts_acked"] == 10
    assert telcel["throttled"] == 0 and telcel["deliver_sm_resent"] == 0
    assert "submits_per_second" in telcel and "submits_per_second_10s" in telcel
    assert stats["messages_stored"] == 10
    assert stats["carriers"]["movistar"]["submitted"] == 0


def test_submits_per_second():
    from simulator.stats import Stats

    stats = Stats()
    for i in range(30):
        stats.tick_submit(100.0 + i * 0.05)  # 20 in second 100, 10 in second 101
    assert stats.rates(102.2) == (10.0, 3.0)
    assert stats.rates(101.5)[0] == 20.0


def test_runtime_settings(sim, lib_clients):
    settings = sim.get("/sim/carriers/telcel/settings")
    assert settings["name"] == "telcel" and "password" not in settings and settings["port"] == sim.port()
    status, body, _ = sim.http(
        "PUT",
        "/sim/carriers/telcel/settings",
        {
            "receipt_delay": [0.01, 0.02],
            "outcomes": {"delivered": 0, "rejected": 1},
            "error_codes": {"rejected": [9]},
        },
    )
    assert status == 200, body
    assert body["receipt_delay"] == [0.01, 0.02] and body["outcomes"]["rejected"] == 1
    client = lib_clients(sim.port())
    client.submit()
    receipt = client.wait_received(1)[0]
    assert b"stat:REJECTD err:009" in receipt.short_message
    for bad in ({"port": 1}, {"tps": -1}, {"receipt_delay": [3, 1]}, {"outcomes": {"delivered": 0}}):
        status, body, ctype = sim.http("PUT", "/sim/carriers/telcel/settings", bad)
        assert status == 400 and ctype.startswith("application/problem+json"), bad
    status, _, _ = sim.http("PUT", "/sim/carriers/nokia/settings", {"tps": 1})
    assert status == 404


def test_handsets_page_is_served_and_self_contained(sim):
    status, html, ctype = sim.http("GET", "/")
    assert status == 200 and ctype.startswith("text/html")
    assert 'lang="es"' in html and "Teléfonos virtuales" in html
    assert "/sim/handsets" in html and "/sim/mo" in html and "/sim/phones" in html
    # works offline: no external URL, script, stylesheet or font
    assert not re.search(r"https?://", html)
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", html)


def test_handsets_api(sim, raw_clients, lib_clients):
    lib_clients(sim.port())
    raw = raw_clients(sim.port("movistar"))
    raw.bind(Cmd.BIND_TRANSMITTER)
    raw.submit(
        to="525512345678",
        text="Hola Ana, su folio MH-1 está en proceso".encode("utf-16-be"),
        data_coding=8,
        registered_delivery=0,
    )
    raw.read_until(Cmd.SUBMIT_SM_RESP)
    status, body, _ = sim.http("POST", "/sim/phones", {"number": "55 8765 4321"})
    assert status == 201 and body["number"] == "+525587654321"
    status, _, _ = sim.http("POST", "/sim/mo", {"from": "+525587654321", "text": "AYUDA"})
    assert status == 202
    handsets = sim.get("/sim/handsets")
    assert handsets["short_code"] == "30311"
    assert {c["name"] for c in handsets["carriers"]} == {"telcel", "movistar"}
    phones = {p["number"]: p for p in handsets["phones"]}
    assert next(p["number"] for p in handsets["phones"]) == "+525587654321"  # most recent activity first
    inbox = phones["+525512345678"]["items"]
    assert inbox[0]["dir"] == "in" and inbox[0]["text"] == "Hola Ana, su folio MH-1 está en proceso"
    assert phones["+525512345678"]["carrier"] == "movistar"
    assert phones["+525587654321"]["items"][0]["dir"] == "out"
    assert phones["+525587654321"]["items"][0]["text"] == "AYUDA"
    status, _, _ = sim.http("POST", "/sim/phones", {"number": "12"})
    assert status == 400


def test_mo_list(sim, lib_clients):
    lib_clients(sim.port())
    for text in ("uno", "dos"):
        sim.http("POST", "/sim/mo", {"from": "+525512345678", "text": text})
    sim.http("POST", "/sim/mo", {"from": "+525599999999", "text": "tres"})
    assert [m["text"] for m in sim.get("/sim/mo")["mo"]] == ["uno", "dos", "tres"]
    assert [m["text"] for m in sim.get("/sim/mo?from=%2B525512345678")["mo"]] == ["uno", "dos"]
    status, _, _ = sim.http("GET", "/sim/mo/mo-999")
    assert status == 404


def test_messages_since_respects_time(sim, raw_clients):
    raw = raw_clients(sim.port())
    raw.bind()
    raw.submit(registered_delivery=0)
    raw.read_until(Cmd.SUBMIT_SM_RESP)
    assert sim.get(f"/sim/messages?since={time.time() + 60}")["count"] == 0
