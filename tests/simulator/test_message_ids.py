"""Message ids as carriers write them: receipts in another base than submit_sm_resp, and a decimal
counter that starts again (message_id_start)."""

from __future__ import annotations

import pytest

from smpp_client.constants import Cmd, Tlv
from smpp_client.pdu import tlv_cstr


def _submit_and_receipt(raw, text: bytes = b"Hola") -> tuple[str, str, str]:
    """(the submit_sm_resp id, the receipt's id: text, its receipted_message_id TLV)."""
    raw.submit(text=text)
    message_id, receipt = None, None
    while message_id is None or receipt is None:
        pdu = raw.read()
        if pdu.command_id == Cmd.SUBMIT_SM_RESP:
            message_id = pdu.fields["message_id"]
        elif pdu.command_id == Cmd.DELIVER_SM:
            raw.ack(pdu)
            receipt = pdu
    text_id = receipt.fields["short_message"].decode().split(" ", 1)[0].removeprefix("id:")
    return message_id, text_id, tlv_cstr(receipt.tlvs[Tlv.RECEIPTED_MESSAGE_ID])


@pytest.mark.parametrize(
    ("message_id_format", "receipt_id_format", "submit_base", "receipt_base"),
    [
        ("decimal", "hex", 10, 16),
        ("hex", "decimal", 16, 10),
        ("decimal", "same", 10, 10),
        ("hex", "same", 16, 16),
    ],
)
def test_receipts_write_the_id_in_their_own_base(
    make_sim, raw_clients, message_id_format, receipt_id_format, submit_base, receipt_base
):
    sim = make_sim(telcel={"message_id_format": message_id_format, "receipt_id_format": receipt_id_format})
    raw = raw_clients(sim.port())
    raw.bind()
    message_id, text_id, tlv_id = _submit_and_receipt(raw)
    assert text_id == tlv_id
    assert int(text_id, receipt_base) == int(message_id, submit_base)
    if submit_base != receipt_base:
        assert text_id != message_id
        assert text_id == (format(int(message_id), "x") if receipt_base == 16 else str(int(message_id, 16)))
    else:
        assert text_id == message_id
    # the simulator itself knows the message by the id its submit_sm_resp gave
    assert sim.get(f"/sim/messages/{message_id}")["ids"] == [message_id]


def test_a_counting_carrier_starts_again_on_reset(make_sim, raw_clients):
    sim = make_sim(telcel={"message_id_format": "decimal", "message_id_start": 1})
    raw = raw_clients(sim.port())
    raw.bind()
    first = [_submit_and_receipt(raw)[0] for _ in range(3)]
    assert first == ["1", "2", "3"]
    status, _, _ = sim.http("POST", "/sim/reset", {})
    assert status == 200
    message_id, text_id, _ = _submit_and_receipt(raw, b"otra vez")
    assert message_id == text_id == "1"


def test_setting_message_id_start_at_run_time_restarts_the_counter(make_sim, raw_clients):
    sim = make_sim(telcel={"message_id_format": "decimal", "message_id_start": 500})
    raw = raw_clients(sim.port())
    raw.bind()
    assert [_submit_and_receipt(raw, b"primero")[0] for _ in range(2)] == ["500", "501"]
    status, body, _ = sim.http("PATCH", "/sim/carriers/telcel/settings", {"tps": 1000})
    assert status == 200 and body["message_id_start"] == 500
    assert _submit_and_receipt(raw)[0] == "502"  # other changes leave the counter alone
    status, _, _ = sim.http("PATCH", "/sim/carriers/telcel/settings", {"message_id_start": 500})
    assert status == 200
    message_id, text_id, _ = _submit_and_receipt(raw, b"repetido")
    assert message_id == text_id == "500"
    # the id now names two messages: lookups find the newest
    assert sim.get("/sim/messages/500")["text"] == "repetido"
    assert len(sim.get("/sim/messages?limit=10")["messages"]) == 4


def test_counting_hex_ids_and_carriers_count_apart(make_sim, raw_clients):
    sim = make_sim(telcel={"message_id_start": 10}, movistar={"message_id_start": 10})
    telcel = raw_clients(sim.port("telcel"))
    telcel.bind()
    movistar = raw_clients(sim.port("movistar"))
    movistar.bind()
    assert [_submit_and_receipt(telcel)[0] for _ in range(2)] == ["a", "b"]
    assert _submit_and_receipt(movistar)[0] == "a"


def test_unique_ids_are_the_default(make_sim, raw_clients):
    sim = make_sim()
    raw = raw_clients(sim.port())
    raw.bind()
    ids = [_submit_and_receipt(raw)[0] for _ in range(3)]
    sim.http("POST", "/sim/reset", {})
    ids += [_submit_and_receipt(raw)[0] for _ in range(3)]
    assert len(set(ids)) == 6 and all(len(i) == 16 for i in ids)
