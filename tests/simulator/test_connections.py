"""Connections that never bind are closed after bind_timeout; beyond max_connections a carrier
closes new connections at once. Raw sockets, as a hostile client would use them."""

from __future__ import annotations

import socket

from smpp_client.constants import Cmd

from .conftest import TIMEOUT


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)


def _closed_by_peer(sock: socket.socket) -> bool:
    sock.settimeout(TIMEOUT)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_connection_that_never_binds_is_closed(make_sim, raw_clients):
    sim = make_sim(telcel={"bind_timeout": 0.2})
    bound = raw_clients(sim.port())
    assert bound.bind().status == 0
    idle = _connect(sim.port())  # connected after the bound one: its deadline comes later
    try:
        assert _closed_by_peer(idle)
    finally:
        idle.close()
    stats = sim.get("/sim/stats")["carriers"]["telcel"]
    assert stats["bind_timeouts"] == 1 and stats["connections"] == 1
    bound.request(Cmd.ENQUIRE_LINK)  # the bound session outlived its own deadline
    assert bound.read_until(Cmd.ENQUIRE_LINK_RESP).status == 0


def test_an_open_connection_may_bind_before_its_deadline(make_sim, raw_clients):
    sim = make_sim(telcel={"bind_timeout": 30})
    raw = raw_clients(sim.port())
    raw.request(Cmd.ENQUIRE_LINK)  # allowed before a bind; the deadline still holds
    assert raw.read_until(Cmd.ENQUIRE_LINK_RESP).status == 0
    assert raw.bind().status == 0
    assert sim.get("/sim/stats")["carriers"]["telcel"]["bind_timeouts"] == 0


def test_connections_beyond_the_limit_are_closed_at_once(make_sim, raw_clients):
    sim = make_sim(telcel={"max_connections": 2, "max_binds": 2})
    first = raw_clients(sim.port())
    second = raw_clients(sim.port())
    assert first.bind().status == 0
    sim.wait_until(lambda: len(sim.smsc.carriers["telcel"].connections) == 2, what="two connections")
    third = _connect(sim.port())
    try:
        assert _closed_by_peer(third)
    finally:
        third.close()
    stats = sim.get("/sim/stats")["carriers"]["telcel"]
    assert stats["connections_refused"] == 1 and stats["connections"] == 2
    assert second.bind().status == 0  # those already in are unaffected
    second.close()
    sim.wait_until(lambda: len(sim.smsc.carriers["telcel"].connections) == 1, what="room again")
    fourth = raw_clients(sim.port())
    assert fourth.bind().status == 0
    assert sim.get("/sim/stats")["carriers"]["telcel"]["connections_refused"] == 1


def test_a_flood_of_idle_connections_is_bounded_and_cleared(make_sim, raw_clients):
    sim = make_sim(telcel={"max_connections": 10, "bind_timeout": 0.3})
    flood = [_connect(sim.port()) for _ in range(30)]
    try:
        closed = [_closed_by_peer(sock) for sock in flood]  # refused at once, or at their deadline
    finally:
        for sock in flood:
            sock.close()
    assert all(closed)
    stats = sim.get("/sim/stats")["carriers"]["telcel"]
    assert stats["connections_refused"] + stats["bind_timeouts"] == 30
    assert stats["bind_timeouts"] >= 10 and stats["connections"] == 0
    assert sim.get("/sim/stats")["carriers"]["movistar"]["connections_refused"] == 0
    raw = raw_clients(sim.port())  # the carrier still serves
    assert raw.bind().status == 0
