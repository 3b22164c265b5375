"""Speed limit, window, ESME_RMSGQFUL bursts, and every fault switch (from config and at run time)."""

from __future__ import annotations

import time

import pytest

from smpp_client.constants import Cmd, Status


def _collect_resps(raw, count: int, timeout: float = 5.0) -> list:
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        pdu = raw.read(max(0.01, deadline - time.monotonic()))
        if pdu.command_id == Cmd.SUBMIT_SM_RESP:
            out.append(pdu)
        elif pdu.command_id == Cmd.DELIVER_SM:
            raw.ack(pdu)
    return out


def test_throttled_above_tps(make_sim, raw_clients):
    sim = make_sim(telcel={"tps": 5})
    raw = raw_clients(sim.port())
    raw.bind()
    for _ in range(20):
        raw.submit(registered_delivery=0)
    statuses = [p.status for p in _collect_resps(raw, 20)]
    ok = statuses.count(0)
    assert 5 <= ok <= 6  # a bucket of 5, plus what trickles in meanwhile
    assert statuses.count(Status.ESME_RTHROTTLED) == 20 - ok
    stats = sim.get("/sim/stats")["carriers"]["telcel"]
    assert stats["throttled"] == 20 - ok and stats["submitted"] == ok


def test_tps_shared_by_the_binds_of_a_carrier(make_sim, raw_clients):
    sim = make_sim(telcel={"tps": 4})
    a, b = raw_clients(sim.port()), raw_clients(sim.port())
    a.bind()
    b.bind()
    for _ in range(4):
        a.submit(registered_delivery=0)
    assert [p.status for p in _collect_resps(a, 4)].count(0) == 4
    for _ in range(3):
        b.submit(registered_delivery=0)
    assert [p.status for p in _collect_resps(b, 3)].count(Status.ESME_RTHROTTLED) >= 2


def test_tps_changed_at_run_time(sim, raw_clients):
    raw = raw_clients(sim.port())
    raw.bind()
    status, body, _ = sim.http("PUT", "/sim/carriers/telcel/settings", {"tps": 2})
    assert status == 200 and body["tps"] == 2
    for _ in range(6):
        raw.submit(registered_delivery=0)
    assert [p.status for p in _collect_resps(raw, 6)].count(Status.ESME_RTHROTTLED) >= 3
    sim.http("PUT", "/sim/carriers/telcel/settings", {"tps": None})
    for _ in range(6):
        raw.submit(registered_delivery=0)
    assert all(p.status == 0 for p in _collect_resps(raw, 6))


def test_msgqfull_bursts(make_sim, raw_clients):
    sim = make_sim(telcel={"msgqfull_every": 5, "msgqfull_burst": 2})
    raw = raw_clients(sim.port())
    raw.bind()
    for _ in range(14):
        raw.submit(registered_delivery=0)
    statuses = [p.status for p in _collect_resps(raw, 14)]
    Q = Status.ESME_RMSGQFUL
    assert statuses == [0] * 5 + [Q, Q] + [0] * 5 + [Q, Q]
    assert sim.get("/sim/stats")["carriers"]["telcel"]["msgqfull"] == 4


def test_window_of_unanswered_requests(make_sim, raw_clients):
    sim = make_sim(telcel={"window": 2, "faults": {"response_delay": 0.4}})
    raw = raw_clients(sim.port())
    raw.bind()
    seqs = [raw.submit(registered_delivery=0) for _ in range(4)]
    resps = {p.sequence: p for p in _collect_resps(raw, 4)}
    # the third and fourth find two unanswered requests ahead: refused at once
    assert resps[seqs[2]].status == Status.ESME_RTHROTTLED
    assert resps[seqs[3]].status == Status.ESME_RTHROTTLED
    assert resps[seqs[0]].status == 0 and resps[seqs[1]].status == 0
    assert sim.get("/sim/stats")["carriers"]["telcel"]["window_full"] == 2


def test_delayed_responses(make_sim, raw_clients):
    sim = make_sim(telcel={"faults": {"response_delay": [0.3, 0.3]}})
    raw = raw_clients(sim.port())
    raw.bind()
    start = time.monotonic()
    raw.submit()
    resp = raw.read_until(Cmd.SUBMIT_SM_RESP)
    assert resp.status == 0
    assert time.monotonic() - start >= 0.25
    # the receipt does not overtake its submit_sm_resp
    raw.ack(raw.read_until(Cmd.DELIVER_SM))
    # turned off at run time: immediate again
    status, body, _ = sim.http("PUT", "/sim/carriers/telcel/faults", {"response_delay": 0})
    assert status == 200 and body["response_delay"] == [0, 0]
    start = time.monotonic()
    raw.submit(registered_delivery=0)
    raw.read_until(Cmd.SUBMIT_SM_RESP)
    assert time.monotonic() - start < 0.2


def test_never_answer_every_nth(make_sim, raw_clients):
    sim = make_sim(telcel={"faults": {"never_answer_every": 3}})
    raw = raw_clients(sim.port())
    raw.bind()
    seqs = [raw.submit(registered_delivery=0) for _ in range(6)]
    got = {p.sequence for p in _collect_resps(raw, 4)}
    assert got == {seqs[0], seqs[1], seqs[3], seqs[4]}
    with pytest.raises(TimeoutError):
        raw.read(timeout=0.3)
    assert sim.get("/sim/stats")["carriers"]["telcel"]["unanswered"] == 2
    # the unanswered ones were lost: not stored
    assert len(sim.get("/sim/messages")["messages"]) == 4


def test_never_answer_a_fraction_switched_on_mid_run(sim, raw_clients):
    raw = raw_clients(sim.port())
    raw.bind()
    raw.submit(registered_delivery=0)
    assert raw.read_until(Cmd.SUBMIT_SM_RESP).status == 0
    status, _, _ = sim.http("PUT", "/sim/carriers/telcel/faults", {"never_answer_fraction": 1.0})
    assert status == 200
    raw.submit(registered_delivery=0)
    with pytest.raises(TimeoutError):
        raw.read(timeout=0.3)
    status, _, _ = sim.http("DELETE", "/sim/carriers/telcel/faults")
    assert status == 200
    seq = raw.submit(registered_delivery=0)
    assert raw.read_until(Cmd.SUBMIT_SM_RESP).sequence == seq


def test_drop_after_n_pdus(make_sim, raw_clients, lib_clients):
    sim = make_sim(telcel={"faults": {"drop_after_pdus": 3}})
    raw = raw_clients(sim.port())
    raw.bind()  # 1
    raw.submit(registered_delivery=0)  # 2
    raw.submit(registered_delivery=0)  # 3: answered, then the link drops
    raw.submit(registered_delivery=0)  # never read
    assert len(_collect_resps(raw, 2)) == 2
    assert raw.closed()
    assert sim.get("/sim/stats")["carriers"]["telcel"]["links_dropped"] == 1
    # movistar is not affected
    other = raw_clients(sim.port("movistar"))
    other.bind()
    for _ in range(5):
        other.submit(registered_delivery=0)
    assert len(_collect_resps(other, 5)) == 5


def test_drop_after_n_pdus_set_mid_run_counts_from_then(sim, raw_clients):
    raw = raw_clients(sim.port())
    raw.bind()
    for _ in range(10):
        raw.submit(registered_delivery=0)
    _collect_resps(raw, 10)
    sim.http("PUT", "/sim/carriers/telcel/faults", {"drop_after_pdus": 2})
    raw.submit(registered_delivery=0)
    assert raw.read_until(Cmd.SUBMIT_SM_RESP).status == 0  # the first after the change survives
    raw.submit(registered_delivery=0)
    raw.read_until(Cmd.SUBMIT_SM_RESP)
    assert raw.closed()


def test_drop_every_t_seconds(make_sim, raw_clients):
    sim = make_sim(telcel={"faults": {"drop_every_seconds": 0.3}})
    first = raw_clients(sim.port())
    first.bind()
    start = time.monotonic()
    assert first.closed(timeout=3)
    assert 0.05 <= time.monotonic() - start <= 2
    second = raw_clients(sim.port())
    assert second.bind().status == 0
    assert second.closed(timeout=3)
    assert sim.get("/sim/stats")["carriers"]["telcel"]["links_dropped"] >= 2


def test_submit_error_fault(sim, raw_clients):
    raw = raw_clients(sim.port())
    raw.bind()
    sim.http("PATCH", "/sim/carriers/telcel/faults", {"submit_error_status": 8, "submit_error_every": 2})
    statuses = []
    for _ in range(4):
        raw.submit(registered_delivery=0)
    statuses = [p.status for p in _collect_resps(raw, 4)]
    assert statuses == [0, Status.ESME_RSYSERR, 0, Status.ESME_RSYSERR]


def test_faults_validation_is_problem_json(sim):
    status, body, ctype = sim.http("PUT", "/sim/carriers/telcel/faults", {"drop_after_pdus": 0})
    assert status == 400 and ctype.startswith("application/problem+json")
    assert body["errors"][0]["field"] == "faults.drop_after_pdus"
    status, body, _ = sim.http("PUT", "/sim/carriers/telcel/faults", {"explode": True})
    assert status == 400 and "explode" in body["detail"]
    status, body, _ = sim.http("GET", "/sim/carriers/nokia/faults")
    assert status == 404


def test_reset_restores_configured_faults_and_settings(make_sim):
    sim = make_sim(telcel={"tps": 10, "faults": {"drop_after_pdus": 100}})
    sim.http("PUT", "/sim/carriers/telcel/settings", {"tps": 1})
    sim.http("PUT", "/sim/carriers/telcel/faults", {"drop_after_pdus": 1, "never_answer_every": 2})
    status, _, _ = sim.http("POST", "/sim/reset", {})
    assert status == 200
    assert sim.get("/sim/carriers/telcel/settings")["tps"] == 10
    faults = sim.get("/sim/carriers/telcel/faults")
    assert faults["drop_after_pdus"] == 100 and faults["never_answer_every"] is None
