"""Bind outcomes, driven by smpplib's own client (and the raw codec client where smpplib cannot)."""

from __future__ import annotations

import socket
import struct
import time

import pytest
import smpplib.consts as c
import smpplib.exceptions

from smpp_client.constants import Cmd, Status
from smpp_client.pdu import make

from .conftest import LibClient


@pytest.mark.parametrize("kind", ["transmitter", "receiver", "transceiver"])
def test_bind_ok_each_kind(sim, lib_clients, kind):
    client = lib_clients(sim.port(), kind=kind)
    assert client.client.state in (
        c.SMPP_CLIENT_STATE_BOUND_TX,
        c.SMPP_CLIENT_STATE_BOUND_RX,
        c.SMPP_CLIENT_STATE_BOUND_TRX,
    )
    info = sim.get("/sim/carriers")["carriers"][0]
    assert info["name"] == "telcel"
    assert info["binds"][kind] == 1
    client.close()
    sim.wait_until(lambda: not sim.smsc.carriers["telcel"].sessions, what="session gone after unbind")


def _bind_error(port, **kwargs) -> int:
    with pytest.raises(smpplib.exceptions.PDUError) as err:
        LibClient(port, **kwargs)
    return err.value.args[1]


def test_wrong_system_id(sim):
    assert _bind_error(sim.port(), system_id="intruder") == c.SMPP_ESME_RINVSYSID


def test_wrong_password(sim):
    assert _bind_error(sim.port(), password="nope") == c.SMPP_ESME_RINVPASWD


def test_bind_over_max_binds(make_sim, lib_clients):
    sim = make_sim(telcel={"max_binds": 2})
    lib_clients(sim.port(), kind="transmitter")
    lib_clients(sim.port(), kind="receiver")
    assert _bind_error(sim.port()) == c.SMPP_ESME_RBINDFAIL
    stats = sim.get("/sim/stats")["carriers"]["telcel"]
    assert stats["binds_ok"] == 2 and stats["binds_refused"] == 1


def test_carriers_have_their_own_credentials(make_sim, lib_clients):
    sim = make_sim(movistar={"system_id": "mov", "password": "secret1"})
    assert _bind_error(sim.port("movistar")) == c.SMPP_ESME_RINVSYSID
    client = lib_clients(sim.port("movistar"), system_id="mov", password="secret1")
    assert client.client.state == c.SMPP_CLIENT_STATE_BOUND_TRX
    lib_clients(sim.port("telcel"))  # telcel still takes the defaults


def test_refuse_binds_fault_from_config_then_cleared_at_run_time(make_sim, lib_clients):
    sim = make_sim(telcel={"faults": {"refuse_binds_for": 60}})
    assert _bind_error(sim.port()) == c.SMPP_ESME_RBINDFAIL
    faults = sim.get("/sim/carriers/telcel/faults")
    assert 0 < faults["refuse_binds_remaining"] <= 60
    status, body, _ = sim.http("PUT", "/sim/carriers/telcel/faults", {"refuse_binds_for": 0})
    assert status == 200 and body["refuse_binds_remaining"] == 0
    lib_clients(sim.port())


def test_refuse_binds_for_a_while_set_at_run_time(sim, lib_clients):
    status, _, _ = sim.http("PUT", "/sim/carriers/telcel/faults", {"refuse_binds_for": 0.3})
    assert status == 200
    assert _bind_error(sim.port()) == c.SMPP_ESME_RBINDFAIL
    # the fault lapses by itself
    faults = sim.smsc.carriers["telcel"].faults
    sim.wait_until(lambda: not faults.refuse_bind(time.monotonic()), what="the refusal to lapse")
    lib_clients(sim.port())


def test_bind_when_already_bound_gets_ralybnd(sim, raw_clients):
    raw = raw_clients(sim.port())
    assert raw.bind().status == 0
    again = raw.bind(Cmd.BIND_TRANSMITTER)
    assert again.command_id == Cmd.BIND_TRANSMITTER_RESP
    assert again.status == Status.ESME_RALYBND
    # still bound and working
    raw.submit()
    assert raw.read_until(Cmd.SUBMIT_SM_RESP).status == 0


def test_bind_resp_carries_system_id_and_interface_version(sim, raw_clients):
    resp = raw_clients(sim.port()).bind()
    assert resp.command_id == Cmd.BIND_TRANSCEIVER_RESP
    assert resp.fields["system_id"] == "telcel"
    assert resp.tlvs[0x0210] == b"\x34"


def test_unbind_is_answered_and_closes(sim, raw_clients):
    raw = raw_clients(sim.port())
    raw.bind()
    raw.request(Cmd.UNBIND)
    resp = raw.read()
    assert resp.command_id == Cmd.UNBIND_RESP and resp.status == 0
    assert raw.closed()


def test_enquire_link_before_and_after_bind(sim, raw_clients):
    raw = raw_clients(sim.port())
    seq = raw.request(Cmd.ENQUIRE_LINK)
    resp = raw.read()
    assert (resp.command_id, resp.sequence, resp.status) == (Cmd.ENQUIRE_LINK_RESP, seq, 0)
    raw.bind()
    seq = raw.request(Cmd.ENQUIRE_LINK)
    assert raw.read().sequence == seq


def test_failed_bind_closes_the_connection(sim, raw_clients):
    raw = raw_clients(sim.port())
    assert raw.bind(password="bad").status == Status.ESME_RINVPASWD
    assert raw.closed()


def test_smsc_sends_enquire_link_when_idle(make_sim, raw_clients):
    sim = make_sim(telcel={"enquire_link_interval": 0.2})
    raw = raw_clients(sim.port())
    raw.bind()
    pdu = raw.read_until(Cmd.ENQUIRE_LINK, timeout=3)
    raw.send(make(Cmd.ENQUIRE_LINK_RESP, pdu.sequence))
    seq = raw.submit()
    assert raw.read_until(Cmd.SUBMIT_SM_RESP).sequence == seq


def test_stop_unbinds_every_session(make_sim, raw_clients):
    sim = make_sim()
    raw = raw_clients(sim.port())
    raw.bind()
    sim.stop()
    assert raw.read().command_id == Cmd.UNBIND
    assert raw.closed()


def test_a_client_reset_mid_pdu_disturbs_nobody(sim, raw_clients):
    victim = raw_clients(sim.port())
    victim.bind()
    frame = make(Cmd.SUBMIT_SM, 5, destination_addr="525512345678", short_message=b"hola")
    victim.send(frame[:20])
    victim.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    victim.close()  # RST
    other = raw_clients(sim.port())
    assert other.bind().status == 0
    seq = other.submit(registered_delivery=0)
    assert other.read_until(Cmd.SUBMIT_SM_RESP).sequence == seq
    sim.wait_until(lambda: len(sim.smsc.carriers["telcel"].sessions) == 1, what="the reset session to go")
