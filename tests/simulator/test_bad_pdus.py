"""Malformed PDUs get generic_nack or the right status, never crash the server or disturb another session."""

from __future__ import annotations

import struct

import pytest

from smpp_client.constants import Cmd, Status
from smpp_client.pdu import make


@pytest.fixture
def two_sessions(sim, raw_clients):
    """A bound victim (to send bad PDUs on) and a bound bystander that must keep working."""
    bad = raw_clients(sim.port())
    good = raw_clients(sim.port())
    assert good.bind().status == 0
    return sim, bad, good


def _bystander_works(good) -> None:
    for _ in range(3):
        seq = good.submit(registered_delivery=0)
        resp = good.read_until(Cmd.SUBMIT_SM_RESP)
        assert resp.sequence == seq and resp.status == 0


def _header(length: int, command_id: int, seq: int, status: int = 0) -> bytes:
    return struct.pack(">IIII", length, command_id, status, seq)


@pytest.mark.parametrize("length", [0, 8, 15, 0x7FFFFFFF])
def test_impossible_command_length(two_sessions, length):
    _sim, bad, good = two_sessions
    bad.bind()
    bad.send(_header(length, Cmd.SUBMIT_SM, 41) + b"\x00" * 8)
    nack = bad.read()
    assert nack.command_id == Cmd.GENERIC_NACK
    assert nack.status == Status.ESME_RINVCMDLEN
    assert nack.sequence == 41
    assert bad.closed()
    _bystander_works(good)


def test_valid_pdus_before_a_bad_length_in_the_same_segment_are_answered(two_sessions):
    _sim, bad, _good = two_sessions
    bad.bind()
    frames = make(Cmd.ENQUIRE_LINK, 5) + make(Cmd.ENQUIRE_LINK, 6) + _header(3, Cmd.ENQUIRE_LINK, 7)
    bad.send(frames)
    assert [bad.read().sequence for _ in range(3)] == [5, 6, 7]
    assert bad.closed()


def _submit_body(**overrides) -> bytes:
    return make(Cmd.SUBMIT_SM, 0, destination_addr="525512345678", short_message=b"hola", **overrides)[16:]


def test_missing_c_string_terminator(two_sessions):
    _sim, bad, good = two_sessions
    bad.bind()
    body = b"\x00\x06\x01" + b"3031130311303113031130311"  # source_addr runs past 21 octets, no NUL
    bad.send(_header(16 + len(body), Cmd.SUBMIT_SM, 9) + body)
    resp = bad.read()
    assert resp.command_id == Cmd.SUBMIT_SM_RESP and resp.sequence == 9
    assert resp.status in (Status.ESME_RINVPARLEN, Status.ESME_RINVCMDLEN)
    _bystander_works(good)
    # the session itself survives a bad body
    seq = bad.submit(registered_delivery=0)
    assert bad.read_until(Cmd.SUBMIT_SM_RESP).sequence == seq


def test_c_string_without_terminator_at_end_of_pdu(two_sessions):
    _sim, bad, good = two_sessions
    bad.bind()
    body = b"\x00\x06\x0130311"  # ends inside source_addr
    bad.send(_header(16 + len(body), Cmd.SUBMIT_SM, 10) + body)
    resp = bad.read()
    assert (resp.command_id, resp.sequence, resp.status) == (Cmd.SUBMIT_SM_RESP, 10, Status.ESME_RINVCMDLEN)
    _bystander_works(good)


def test_truncated_body(two_sessions):
    _sim, bad, good = two_sessions
    bad.bind()
    body = _submit_body()
    bad.send(_header(16 + len(body) - 3, Cmd.SUBMIT_SM, 11) + body[:-3])  # short_message cut short
    resp = bad.read()
    assert (resp.command_id, resp.sequence) == (Cmd.SUBMIT_SM_RESP, 11)
    assert resp.status == Status.ESME_RINVMSGLEN
    _bystander_works(good)


def test_truncated_bind(two_sessions):
    _sim, bad, good = two_sessions
    body = b"smsgw\x00smsgw"
    bad.send(_header(16 + len(body), Cmd.BIND_TRANSCEIVER, 3) + body)
    resp = bad.read()
    assert (resp.command_id, resp.sequence, resp.status) == (
        Cmd.BIND_TRANSCEIVER_RESP,
        3,
        Status.ESME_RINVCMDLEN,
    )
    _bystander_works(good)


def test_truncated_tlv(two_sessions):
    _sim, bad, good = two_sessions
    bad.bind()
    body = _submit_body() + b"\x02\x0c\x00"
    bad.send(_header(16 + len(body), Cmd.SUBMIT_SM, 12) + body)
    resp = bad.read()
    assert (resp.sequence, resp.status) == (12, Status.ESME_RINVOPTPARSTREAM)
    _bystander_works(good)


@pytest.mark.parametrize(
    "command_id", [0x00000077, 0x00001234, Cmd.REPLACE_SM, Cmd.DATA_SM, Cmd.SUBMIT_MULTI]
)
def test_unknown_or_unsupported_command(two_sessions, command_id):
    _sim, bad, good = two_sessions
    bad.bind()
    bad.send(_header(20, command_id, 13) + b"\x00" * 4)
    nack = bad.read()
    assert (nack.command_id, nack.sequence, nack.status) == (Cmd.GENERIC_NACK, 13, Status.ESME_RINVCMDID)
    _bystander_works(good)
    seq = bad.submit(registered_delivery=0)
    assert bad.read_until(Cmd.SUBMIT_SM_RESP).sequence == seq


def test_submit_before_bind(two_sessions):
    _sim, bad, good = two_sessions
    seq = bad.submit()
    resp = bad.read()
    assert (resp.command_id, resp.sequence, resp.status) == (Cmd.SUBMIT_SM_RESP, seq, Status.ESME_RINVBNDSTS)
    _bystander_works(good)


def test_submit_on_a_receiver_bind(two_sessions):
    _sim, bad, good = two_sessions
    assert bad.bind(Cmd.BIND_RECEIVER).status == 0
    seq = bad.submit()
    resp = bad.read()
    assert (resp.command_id, resp.sequence, resp.status) == (Cmd.SUBMIT_SM_RESP, seq, Status.ESME_RINVBNDSTS)
    _bystander_works(good)


def test_query_and_cancel_before_bind(two_sessions):
    _sim, bad, _good = two_sessions
    bad.request(Cmd.QUERY_SM, message_id="1", source_addr="30311")
    assert bad.read().status == Status.ESME_RINVBNDSTS
    bad.request(Cmd.CANCEL_SM, message_id="1")
    assert bad.read().status == Status.ESME_RINVBNDSTS


def test_unbind_before_bind(two_sessions):
    _sim, bad, _good = two_sessions
    bad.request(Cmd.UNBIND)
    resp = bad.read()
    assert (resp.command_id, resp.status) == (Cmd.UNBIND_RESP, Status.ESME_RINVBNDSTS)


def test_pdu_split_across_segments(two_sessions):
    _sim, bad, _good = two_sessions
    bad.bind()
    frame = make(Cmd.SUBMIT_SM, 99, destination_addr="525512345678", short_message=b"hola")
    for i in range(len(frame)):
        bad.send(frame[i : i + 1])
    resp = bad.read_until(Cmd.SUBMIT_SM_RESP)
    assert resp.sequence == 99 and resp.status == 0


def test_garbage_stream(two_sessions):
    sim, bad, good = two_sessions
    bad.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    nack = bad.read()
    assert nack.command_id == Cmd.GENERIC_NACK and nack.status == Status.ESME_RINVCMDLEN
    assert bad.closed()
    _bystander_works(good)
    assert sim.get("/sim/stats")["carriers"]["telcel"]["bad_pdus"] >= 1


def test_bad_udh_and_payload_conflict(two_sessions):
    _sim, bad, good = two_sessions
    bad.bind()
    bad.send(
        make(
            Cmd.SUBMIT_SM, 21, destination_addr="525512345678", esm_class=0x40, short_message=b"\x09\x00\x03"
        )
    )
    assert bad.read_until(Cmd.SUBMIT_SM_RESP).status == Status.ESME_RINVESMCLASS
    bad.send(
        make(Cmd.SUBMIT_SM, 22, 0, {0x0424: b"payload"}, destination_addr="525512345678", short_message=b"x")
    )
    assert bad.read_until(Cmd.SUBMIT_SM_RESP).status == Status.ESME_RINVOPTPARAMVAL
    bad.send(make(Cmd.SUBMIT_SM, 23, destination_addr="", short_message=b"x"))
    assert bad.read_until(Cmd.SUBMIT_SM_RESP).status == Status.ESME_RINVDSTADR
    _bystander_works(good)
