"""Receipt parsing bounds what a carrier writes: ids, error codes, the message_state TLV."""

from __future__ import annotations

from datetime import datetime

from smpp_client.constants import Cmd, MessageState, Tlv
from smpp_client.pdu import Pdu
from smpp_client.receipts import parse_receipt, receipt_text

AT = datetime(2026, 12, 1, 10, 0)


def pdu(text: str, tlvs: dict | None = None) -> Pdu:
    return Pdu(Cmd.DELIVER_SM, 1, 0, {"esm_class": 0x04, "short_message": text.encode()}, tlvs or {})


def test_the_standard_text():
    r = parse_receipt(pdu(receipt_text("1A2B", "UNDELIV", AT, AT, "012", "hola")))
    assert (r.message_id, r.state, r.error, r.text) == ("1A2B", MessageState.UNDELIVERABLE, "012", "hola")


def test_an_error_longer_than_a_part_can_hold_is_dropped():
    text = receipt_text("1", "UNDELIV", AT, AT).replace("err:000", "err:ABCDEFGHIJ")
    assert parse_receipt(pdu(text)).error is None
    text = receipt_text("1", "UNDELIV", AT, AT).replace("err:000", "err:1234")
    assert parse_receipt(pdu(text)).error == "1234"  # some vendors send four


def test_ids_are_bounded_before_anything_reads_them():
    assert parse_receipt(pdu(receipt_text("9" * 64, "DELIVRD", AT, AT))).message_id == "9" * 64
    assert parse_receipt(pdu(receipt_text("9" * 65, "DELIVRD", AT, AT))) is None
    huge = f"id:{'7' * 50_000} stat:DELIVRD".encode()
    long = Pdu(Cmd.DELIVER_SM, 1, 0, {"esm_class": 4}, {Tlv.MESSAGE_PAYLOAD: huge})
    assert parse_receipt(long) is None


def test_a_message_state_tlv_of_the_wrong_size_is_ignored():
    text = receipt_text("1", "DELIVRD", AT, AT)
    assert parse_receipt(pdu(text, {Tlv.MESSAGE_STATE: b"\x00\x05"})).state == MessageState.DELIVERED
    assert parse_receipt(pdu(text, {Tlv.MESSAGE_STATE: b"\x05"})).state == MessageState.UNDELIVERABLE
    assert parse_receipt(pdu(text, {Tlv.MESSAGE_STATE: b"\x63"})).state == MessageState.UNKNOWN
