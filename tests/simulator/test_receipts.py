"""submit_sm -> submit_sm_resp with a unique id -> delivery receipt, for each outcome and rule."""

from __future__ import annotations

import re
import time

import pytest
import smpplib.consts as c

from smpp_client.constants import Cmd, Status, Tlv
from smpp_client.pdu import make, tlv_cstr
from smpp_client.receipts import parse_receipt

RECEIPT_RE = re.compile(
    r"^id:(?P<id>[0-9a-f]+) sub:001 dlvrd:(?P<dlvrd>\d{3}) submit date:(?P<sd>\d{10}) "
    r"done date:(?P<dd>\d{10}) stat:(?P<stat>[A-Z]{7}) err:(?P<err>\d{3}) text:(?P<text>.*)$"
)


def test_submit_gets_unique_ids_and_a_receipt_each(sim, lib_clients):
    client = lib_clients(sim.port())
    for i in range(5):
        client.submit(text=f"Mensaje numero {i} de prueba larga".encode())
    client.read_until(lambda: len(client.responses) >= 5 and len(client.received) >= 5)
    ids = [r.message_id.decode() for r in client.responses]
    assert all(r.status == 0 for r in client.responses)
    assert len(set(ids)) == 5
    receipts = {}
    for pdu in client.received:
        assert pdu.esm_class == 0x04
        text = pdu.short_message.decode()
        match = RECEIPT_RE.match(text)
        assert match, text
        assert match["stat"] == "DELIVRD" and match["dlvrd"] == "001" and match["err"] == "000"
        assert pdu.receipted_message_id.decode() == match["id"]
        assert pdu.message_state == c.SMPP_MESSAGE_STATE_DELIVERED
        receipts[match["id"]] = match["text"]
    assert set(receipts) == set(ids)
    assert receipts[ids[0]] == "Mensaje numero 0 de "  # first 20 characters
    # the receipt goes back to the sender: source is the handset, destination the short code
    assert client.received[0].source_addr == b"525512345678"
    assert client.received[0].destination_addr == b"30311"


def test_ids_unique_across_carriers(sim, lib_clients):
    a = lib_clients(sim.port("telcel"))
    b = lib_clients(sim.port("movistar"))
    for _ in range(3):
        a.submit(registered_delivery=0)
        b.submit(registered_delivery=0)
    a.wait_responses(3)
    b.wait_responses(3)
    ids = [r.message_id for r in a.responses + b.responses]
    assert len(set(ids)) == 6


def test_decimal_message_ids(make_sim, lib_clients):
    sim = make_sim(telcel={"message_id_format": "decimal"})
    client = lib_clients(sim.port())
    client.submit()
    client.read_until(lambda: client.responses and client.received)
    message_id = client.responses[0].message_id.decode()
    assert message_id.isdigit()
    assert client.received[0].receipted_message_id.decode() == message_id
    assert f"id:{message_id} " in client.received[0].short_message.decode()


OUTCOMES = [
    ("delivered", "DELIVRD", c.SMPP_MESSAGE_STATE_DELIVERED, [0], "001"),
    ("undeliverable", "UNDELIV", c.SMPP_MESSAGE_STATE_UNDELIVERABLE, [34], "000"),
    ("expired", "EXPIRED", c.SMPP_MESSAGE_STATE_EXPIRED, [27], "000"),
    ("rejected", "REJECTD", c.SMPP_MESSAGE_STATE_REJECTED, [11], "000"),
]


@pytest.mark.parametrize(("outcome", "stat", "state", "errs", "dlvrd"), OUTCOMES)
def test_each_outcome(make_sim, lib_clients, outcome, stat, state, errs, dlvrd):
    weights = {"delivered": 0, "undeliverable": 0, "expired": 0, "rejected": 0, outcome: 1}
    sim = make_sim(telcel={"outcomes": weights, "error_codes": {outcome: errs}})
    client = lib_clients(sim.port())
    client.submit(text=b"Su cita es manana")
    client.read_until(lambda: client.responses and client.received)
    receipt = client.received[0]
    match = RECEIPT_RE.match(receipt.short_message.decode())
    assert match["stat"] == stat
    assert match["err"] == f"{errs[0]:03d}"
    assert match["dlvrd"] == dlvrd
    assert receipt.message_state == state
    assert receipt.receipted_message_id == client.responses[0].message_id
    if outcome != "delivered":
        assert receipt.network_error_code == b"\x03" + errs[0].to_bytes(2, "big")
    # smsgw's own parser reads it the same way
    message = sim.get(f"/sim/messages/{client.responses[0].message_id.decode()}")
    assert message["status"] == stat
    assert message["parts"][0]["err"] == errs[0]
    assert message["parts"][0]["receipt"] in ("sent", "acked")


def test_outcome_mix_draws_each_outcome(make_sim, raw_clients):
    sim = make_sim(
        telcel={
            "outcomes": {"delivered": 1, "undeliverable": 1, "expired": 1, "rejected": 1},
            "error_codes": {"undeliverable": [1, 34]},
        }
    )
    raw = raw_clients(sim.port())
    raw.bind()
    for _ in range(120):
        raw.submit(registered_delivery=1)
    stats: dict[str, int] = {}
    receipts = 0
    while receipts < 120:
        pdu = raw.read()
        if pdu.command_id == Cmd.DELIVER_SM:
            raw.ack(pdu)
            receipts += 1
            stat = parse_receipt(pdu).stat
            stats[stat] = stats.get(stat, 0) + 1
    assert set(stats) == {"DELIVRD", "UNDELIV", "EXPIRED", "REJECTD"}


RULES = [
    {"number": "5500000001", "behaviour": "never_delivers"},
    {"number": "+52 55 0000 0002", "behaviour": "switched_off", "err": 27},
    {"number": "5500000003", "behaviour": "reject", "err": 5},
    {"number": "5500000004", "behaviour": "invalid"},
    {"number": "5500000005", "behaviour": "no_receipt"},
]


def test_number_rules(make_sim, raw_clients):
    sim = make_sim(telcel={"numbers": RULES, "expire_delay": 0.3})
    raw = raw_clients(sim.port())
    raw.bind()
    seqs = {}
    for number in (
        "525500000001",
        "525500000002",
        "525500000003",
        "525500000004",
        "525500000005",
        "525599999999",
    ):
        seqs[raw.submit(to=number)] = number
    resps, receipts = {}, {}
    started = time.monotonic()
    expired_at = None
    while len(resps) < 6 or len(receipts) < 4:
        pdu = raw.read()
        if pdu.command_id == Cmd.SUBMIT_SM_RESP:
            resps[seqs[pdu.sequence]] = pdu
        elif pdu.command_id == Cmd.DELIVER_SM:
            raw.ack(pdu)
            receipt = parse_receipt(pdu)
            receipts[pdu.fields["source_addr"]] = receipt
            if receipt.stat == "EXPIRED":
                expired_at = time.monotonic()
    assert resps["525500000004"].status == Status.ESME_RINVDSTADR
    assert all(r.status == 0 for n, r in resps.items() if n != "525500000004")
    assert receipts["525500000001"].stat == "UNDELIV"
    assert receipts["525500000002"].stat == "EXPIRED" and receipts["525500000002"].error == "027"
    assert expired_at - started >= 0.25  # the switched-off phone expires after expire_delay
    assert receipts["525500000003"].stat == "REJECTD" and receipts["525500000003"].error == "005"
    assert receipts["525599999999"].stat == "DELIVRD"
    assert "525500000005" not in receipts  # no receipt, stays ENROUTE
    no_receipt = resps["525500000005"].fields["message_id"]
    assert sim.get(f"/sim/messages/{no_receipt}")["status"] == "ENROUTE"


def test_registered_delivery_zero_and_failure_only(make_sim, raw_clients):
    sim = make_sim(telcel={"numbers": [{"number": "5500000001", "behaviour": "never_delivers"}]})
    raw = raw_clients(sim.port())
    raw.bind()
    raw.submit(to="525511111111", registered_delivery=0)  # none
    raw.submit(to="525511111112", registered_delivery=2)  # failure only, delivered: none
    raw.submit(to="525500000001", registered_delivery=2)  # failure only, fails: receipt
    raw.submit(to="525511111113", registered_delivery=1)  # always
    got = []
    resps = 0
    while resps < 4 or len(got) < 2:
        pdu = raw.read()
        if pdu.command_id == Cmd.SUBMIT_SM_RESP:
            resps += 1
        elif pdu.command_id == Cmd.DELIVER_SM:
            raw.ack(pdu)
            got.append(pdu.fields["source_addr"])
    # nothing else comes
    with pytest.raises(TimeoutError):
        raw.read(timeout=0.3)
    assert sorted(got) == ["525500000001", "525511111113"]


def test_receipt_delay_range(make_sim, raw_clients):
    sim = make_sim(telcel={"receipt_delay": [0.2, 0.4]})
    raw = raw_clients(sim.port())
    raw.bind()
    raw.submit()
    start = time.monotonic()
    raw.read_until(Cmd.SUBMIT_SM_RESP)
    pdu = raw.read_until(Cmd.DELIVER_SM)
    assert 0.15 <= time.monotonic() - start <= 2.0
    raw.ack(pdu)


def test_receipt_resent_when_not_acknowledged(make_sim, raw_clients):
    sim = make_sim(telcel={"deliver_timeout": 0.2, "deliver_max_tries": 3})
    raw = raw_clients(sim.port())
    raw.bind()
    raw.submit()
    raw.read_until(Cmd.SUBMIT_SM_RESP)
    first = raw.read_until(Cmd.DELIVER_SM)  # not answered
    start = time.monotonic()
    second = raw.read_until(Cmd.DELIVER_SM, timeout=3)
    assert time.monotonic() - start >= 0.15
    assert second.sequence != first.sequence
    assert second.tlvs[Tlv.RECEIPTED_MESSAGE_ID] == first.tlvs[Tlv.RECEIPTED_MESSAGE_ID]
    raw.ack(second)
    message_id = tlv_cstr(first.tlvs[Tlv.RECEIPTED_MESSAGE_ID])
    sim.wait_until(lambda: sim.store.part(message_id).receipt == "acked", what="receipt acked")
    stats = sim.get("/sim/stats")["carriers"]["telcel"]
    assert stats["deliver_sm_resent"] == 1 and stats["receipts_acked"] == 1
    # a late answer to the first try changes nothing
    raw.ack(first)
    with pytest.raises(TimeoutError):
        raw.read(timeout=0.4)


def test_receipt_given_up_after_max_tries(make_sim, raw_clients):
    sim = make_sim(telcel={"deliver_timeout": 0.1, "deliver_max_tries": 2})
    raw = raw_clients(sim.port())
    raw.bind()
    raw.submit()
    raw.read_until(Cmd.SUBMIT_SM_RESP)
    raw.read_until(Cmd.DELIVER_SM)
    raw.read_until(Cmd.DELIVER_SM)
    with pytest.raises(TimeoutError):
        raw.read(timeout=0.4)
    assert sim.get("/sim/stats")["carriers"]["telcel"]["deliver_sm_failed"] == 1


def test_temporary_error_in_deliver_sm_resp_is_retried(make_sim, raw_clients):
    sim = make_sim(telcel={"deliver_timeout": 0.1, "deliver_max_tries": 3})
    raw = raw_clients(sim.port())
    raw.bind()
    raw.submit()
    raw.read_until(Cmd.SUBMIT_SM_RESP)
    first = raw.read_until(Cmd.DELIVER_SM)
    raw.ack(first, Status.ESME_RX_T_APPN)
    second = raw.read_until(Cmd.DELIVER_SM, timeout=3)
    assert second.tlvs[Tlv.RECEIPTED_MESSAGE_ID] == first.tlvs[Tlv.RECEIPTED_MESSAGE_ID]
    raw.ack(second)


def test_receipt_for_a_gone_session_goes_to_another_receiver(make_sim, raw_clients):
    sim = make_sim(telcel={"receipt_delay": 0.3})
    sender = raw_clients(sim.port())
    sender.bind()
    receiver = raw_clients(sim.port())
    assert receiver.bind(Cmd.BIND_RECEIVER).status == 0
    sender.submit()
    message_id = sender.read_until(Cmd.SUBMIT_SM_RESP).fields["message_id"]
    sender.close()  # the transceiver that submitted is gone before the receipt is due
    pdu = receiver.read_until(Cmd.DELIVER_SM)
    assert tlv_cstr(pdu.tlvs[Tlv.RECEIPTED_MESSAGE_ID]) == message_id
    receiver.ack(pdu)


@pytest.mark.parametrize("receipt_mode", ["batched", "each"])
def test_receipts_wait_until_a_receiver_binds(make_sim, raw_clients, receipt_mode):
    sim = make_sim(telcel={"receipt_mode": receipt_mode, "deliver_window": 1})
    sender = raw_clients(sim.port())
    assert sender.bind(Cmd.BIND_TRANSMITTER).status == 0
    sender.submit()
    message_id = sender.read_until(Cmd.SUBMIT_SM_RESP).fields["message_id"]
    sim.wait_until(lambda: sim.smsc.carriers["telcel"].info()["deliver_sm_queued"], what="receipt queued")
    receiver = raw_clients(sim.port())
    receiver.bind(Cmd.BIND_RECEIVER)
    pdu = receiver.read_until(Cmd.DELIVER_SM)
    assert tlv_cstr(pdu.tlvs[Tlv.RECEIPTED_MESSAGE_ID]) == message_id
    receiver.ack(pdu)


def test_unacked_receipt_of_a_dropped_link_is_resent_on_the_next_bind(make_sim, raw_clients):
    sim = make_sim(telcel={"deliver_timeout": 30})
    first = raw_clients(sim.port())
    first.bind()
    first.submit()
    first.read_until(Cmd.SUBMIT_SM_RESP)
    receipt = first.read_until(Cmd.DELIVER_SM)
    first.close()  # never answered
    second = raw_clients(sim.port())
    second.bind()
    again = second.read_until(Cmd.DELIVER_SM)
    assert again.tlvs[Tlv.RECEIPTED_MESSAGE_ID] == receipt.tlvs[Tlv.RECEIPTED_MESSAGE_ID]


def test_query_sm(make_sim, raw_clients):
    sim = make_sim(telcel={"receipt_delay": 30})
    raw = raw_clients(sim.port())
    raw.bind()
    raw.submit()
    message_id = raw.read_until(Cmd.SUBMIT_SM_RESP).fields["message_id"]
    raw.request(
        Cmd.QUERY_SM, message_id=message_id, source_addr_ton=6, source_addr_npi=1, source_addr="30311"
    )
    resp = raw.read_until(Cmd.QUERY_SM_RESP)
    assert resp.status == 0
    assert resp.fields["message_id"] == message_id
    assert resp.fields["message_state"] == c.SMPP_MESSAGE_STATE_ENROUTE
    assert resp.fields["final_date"] == ""
    raw.request(Cmd.QUERY_SM, message_id="ffff", source_addr="30311")
    assert raw.read_until(Cmd.QUERY_SM_RESP).status == Status.ESME_RQUERYFAIL


def test_query_sm_with_smpplib_after_delivery(sim, lib_clients):
    client = lib_clients(sim.port())
    client.submit()
    client.read_until(lambda: client.responses and client.received)
    message_id = client.responses[0].message_id.decode()
    client.client.query_message(
        message_id=message_id, source_addr_ton=6, source_addr_npi=1, source_addr="30311"
    )
    client.read_until(lambda: client.queries)
    resp = client.queries[0]
    assert resp.message_state == c.SMPP_MESSAGE_STATE_DELIVERED
    assert re.fullmatch(rb"\d{12}000\+", resp.final_date)


def test_cancel_sm(make_sim, raw_clients):
    sim = make_sim(telcel={"receipt_delay": 0.5})
    raw = raw_clients(sim.port())
    raw.bind()
    raw.submit(to="525512340001")
    raw.submit(to="525512340002")
    ids = [raw.read_until(Cmd.SUBMIT_SM_RESP).fields["message_id"] for _ in range(2)]
    raw.request(Cmd.CANCEL_SM, message_id=ids[0], source_addr="30311", destination_addr="525512340001")
    assert raw.read_until(Cmd.CANCEL_SM_RESP).status == 0
    raw.request(Cmd.CANCEL_SM, message_id="123abc", source_addr="30311", destination_addr="525512340001")
    assert raw.read_until(Cmd.CANCEL_SM_RESP).status == Status.ESME_RCANCELFAIL
    # cancelled again: nothing left to cancel
    raw.request(Cmd.CANCEL_SM, message_id=ids[0], source_addr="30311", destination_addr="525512340001")
    assert raw.read_until(Cmd.CANCEL_SM_RESP).status == Status.ESME_RCANCELFAIL
    # only the other message's receipt arrives
    pdu = raw.read_until(Cmd.DELIVER_SM, timeout=3)
    raw.ack(pdu)
    assert tlv_cstr(pdu.tlvs[Tlv.RECEIPTED_MESSAGE_ID]) == ids[1]
    with pytest.raises(TimeoutError):
        raw.read(timeout=0.7)
    raw.request(Cmd.QUERY_SM, message_id=ids[0], source_addr="30311")
    assert raw.read_until(Cmd.QUERY_SM_RESP).fields["message_state"] == c.SMPP_MESSAGE_STATE_DELETED
    assert sim.get(f"/sim/messages/{ids[0]}")["status"] == "DELETED"
    # a delivered message cannot be cancelled
    raw.request(Cmd.CANCEL_SM, message_id=ids[1], source_addr="30311", destination_addr="525512340002")
    assert raw.read_until(Cmd.CANCEL_SM_RESP).status == Status.ESME_RCANCELFAIL


def test_cancel_all_pending_for_a_destination(make_sim, raw_clients):
    sim = make_sim(telcel={"receipt_delay": 30})
    raw = raw_clients(sim.port())
    raw.bind()
    for _ in range(3):
        raw.submit(to="525512340009")
    for _ in range(3):
        raw.read_until(Cmd.SUBMIT_SM_RESP)
    raw.request(Cmd.CANCEL_SM, message_id="", source_addr="30311", destination_addr="525512340009")
    assert raw.read_until(Cmd.CANCEL_SM_RESP).status == 0
    messages = sim.get("/sim/messages?to=%2B525512340009")["messages"]
    assert [m["status"] for m in messages] == ["DELETED"] * 3


def test_receipt_text_snippet_is_ascii_for_ucs2(sim, raw_clients):
    raw = raw_clients(sim.port())
    raw.bind()
    raw.submit(text="Canción número 1 ¿sí? 😀 más texto".encode("utf-16-be"), data_coding=8)
    pdu = raw.read_until(Cmd.DELIVER_SM)
    raw.ack(pdu)
    text = pdu.fields["short_message"].decode("ascii")
    assert text.endswith("text:Cancion numero 1 si")
    assert pdu.fields["data_coding"] == 0


def test_submit_sm_resp_for_deliver_sm_from_smpplib_client_is_ok(sim, lib_clients):
    # a receiver-only smpplib client gets the receipts of a transmitter's messages
    tx = lib_clients(sim.port(), kind="transmitter")
    rx = lib_clients(sim.port(), kind="receiver")
    tx.submit()
    tx.wait_responses(1)
    rx.wait_received(1)
    assert rx.received[0].receipted_message_id == tx.responses[0].message_id


def test_unknown_tlv_is_ignored(sim, raw_clients):
    raw = raw_clients(sim.port())
    raw.bind()
    raw.send(
        make(
            Cmd.SUBMIT_SM,
            77,
            0,
            {0x1400: b"vendor"},
            destination_addr="525512345678",
            short_message=b"hola",
            registered_delivery=0,
        )
    )
    assert raw.read_until(Cmd.SUBMIT_SM_RESP).status == 0


def test_receipt_comes_back_on_the_submitting_transceiver(sim, raw_clients):
    a, b = raw_clients(sim.port()), raw_clients(sim.port())
    a.bind()
    b.bind()
    for _ in range(3):
        b.submit()
    ids = {b.read_until(Cmd.SUBMIT_SM_RESP).fields["message_id"] for _ in range(3)}
    got = set()
    while len(got) < 3:
        pdu = b.read_until(Cmd.DELIVER_SM)
        b.ack(pdu)
        got.add(tlv_cstr(pdu.tlvs[Tlv.RECEIPTED_MESSAGE_ID]))
    assert got == ids
    with pytest.raises(TimeoutError):
        a.read(timeout=0.2)
