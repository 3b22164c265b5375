"""A hostile SMSC beside a carrier that keeps delivering: nothing it sends loses a message or stops
the status writer, on SQLite and on the PostgreSQL server.

The gateway (Gateway) routes half its traffic to :class:`HostileSmsc` and half to the real
bundled simulator, with failover: every message ends delivered or failed with a reason, unusable
ids never reach the database, and the writer never fails a batch.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp
import pytest
from sqlalchemy import select

from gateway.domain.status import FINAL_STATUSES
from gateway.roles import Gateway, build
from gateway.store import reads
from gateway.store.models import message_parts, messages
from simulator.app import Simulator
from smpp_client.message_ids import usable
from tests.conftest import make_settings
from tests.integration.smscs import HostileSmsc, RandomFramesSmsc
from tests.integration.test_faults import queue, settle, sim_settings

FINAL = {s.value for s in FINAL_STATUSES}
COUNT = 120


def settings(db_url: str, hostile_port: int, telcel_port: int):
    common = {
        "system_id": "smsgw",
        "password_env": "SMSGW_TEST_SMSC_PASSWORD",
        "reconnect_min_seconds": 0.05,
        "reconnect_max_seconds": 0.2,
        "response_timeout_seconds": 2,
        "tps": 1000,
        "window": 20,
    }
    return make_settings(
        {
            "gateway": {"listen": "127.0.0.1:0", "log_format": "console"},
            "database": {"url": db_url},
            "carriers": [
                {"name": "hostile", "port": hostile_port, **common},
                {"name": "telcel", "port": telcel_port, **common},
            ],
            "routing": {"weights": {"hostile": 1, "telcel": 1}},
            "crm_clients": [{"id": "cesac", "secret_env": "SMSGW_TEST_SECRET"}],
            "dispatch": {"interval_seconds": 0.2},
            "quiet_hours": {"enabled": False},
        }
    )


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.text()


async def test_a_hostile_smsc_loses_no_message_and_never_stops_the_writer(db_url):
    sim = Simulator(sim_settings({"telcel": {}}))
    await sim.start()
    hostile = HostileSmsc()
    try:
        async with hostile:
            runtime = build(settings(db_url, hostile.port, sim.carrier_port("telcel")))
            await runtime.start()
            try:
                binds = [s.bound.wait() for c in runtime.pool.carriers.values() for s in c.sessions]
                await asyncio.wait_for(asyncio.gather(*binds), 5)  # both, so both get traffic
                ids = queue(runtime, COUNT // 2)
                final = await settle(runtime, ids, timeout=60)
                await hostile.wait_until(lambda: len(hostile.links) == 2)  # it reset the link once
                await asyncio.wait_for(runtime.pool.carriers["hostile"].sessions[0].bound.wait(), 5)
                hostile.unbind_next()
                ids = queue(runtime, COUNT // 2, start=COUNT // 2)
                final.update(await settle(runtime, ids, timeout=60))
                # every PDU it sent was answered (a receipt for an unknown id after a bound wait), and
                # the MO it sent in a data_sm was handled (acknowledged once committed) and answered
                await hostile.wait_until(lambda: set(hostile.answers) == set(hostile.EXPECTED))
                with runtime.db.engine.connect() as conn:
                    everything = list(conn.execute(select(messages.c.id)).scalars())
                assert len(everything) > COUNT  # the reply to that MO
                final.update(await settle(runtime, everything, timeout=60))
                await check(runtime, hostile, final)
            finally:
                assert await runtime.stop()
    finally:
        await sim.stop()


@pytest.mark.parametrize("seed", [1, 2])
async def test_random_frames_from_an_smsc_lose_nothing_and_the_other_carrier_keeps_delivering(db_url, seed):
    """A fuzzer's frames on a live link, beside the simulator: every message ends final, those that
    went through the random SMSC with its ids, the writer never stuck, the gateway ready."""
    sim = Simulator(sim_settings({"telcel": {}}))
    await sim.start()
    smsc = RandomFramesSmsc(seed)
    try:
        async with smsc:
            runtime = build(settings(db_url, smsc.port, sim.carrier_port("telcel")))
            await runtime.start()
            try:
                binds = [s.bound.wait() for c in runtime.pool.carriers.values() for s in c.sessions]
                await asyncio.wait_for(asyncio.gather(*binds), 5)
                ids = queue(runtime, COUNT)
                final = await settle(runtime, ids, timeout=90)
                assert sum(smsc.sent.values()) >= smsc.frames_per_submit  # it did send its frames
                assert all(r["status"] in FINAL for r in final.values())
                for r in final.values():
                    assert r["status"] == "delivered", r  # both SMSCs deliver what they accept
                    if r["carrier"] == "hostile":
                        assert r["smsc_message_id"] in smsc.good
                carriers = Counter(r["carrier"] for r in final.values())
                assert carriers["telcel"] and carriers["hostile"], carriers  # both carried traffic
                assert smsc.sent["random"] and smsc.sent["flipped"], smsc.sent
                writer = runtime.writer
                assert (writer.failures, writer.failing_batches, dict(writer.set_aside)) == (0, 0, {})
                status, ready = await get(f"{runtime.url}/readyz")
                assert status == 200, ready
            finally:
                assert await runtime.stop()
    finally:
        await sim.stop()


async def check(runtime: Gateway, hostile: HostileSmsc, final: dict[int, dict]) -> None:
    # every message accepted ends delivered or failed with a reason; nothing is lost
    assert all(r["status"] in FINAL for r in final.values())
    for r in final.values():
        if r["status"] == "delivered":
            assert r["carrier"] in ("hostile", "telcel") and usable(r["smsc_message_id"])
            if r["carrier"] == "hostile":
                assert r["smsc_message_id"] in hostile.good
        else:
            assert r["error_text"], r
    statuses = {r["status"] for r in final.values()}
    assert statuses <= {"delivered", "undeliverable"}  # undeliverable: the SMSC's UNDELIV receipts
    with runtime.db.engine.connect() as conn:
        stored_ids = conn.execute(select(message_parts.c.smsc_message_id)).scalars().all()
    assert stored_ids and all(usable(i) for i in stored_ids)  # 1 to 64 visible ASCII characters
    # the unusable ids failed over to the carrier that keeps delivering
    carrier = runtime.pool.carriers["hostile"]
    assert 0 < carrier.bad_message_ids <= hostile.bad_answers
    rerouted = [
        h["detail"]
        for mid in final
        for h in runtime.db.transaction(reads.get_message, mid)["history"]
        if h["status"] == "submitted" and "unusable message id" in (h["detail"] or "")
    ]
    assert len(rerouted) >= carrier.bad_message_ids - 5  # the rest went back to the outbox once
    assert all("hostile > telcel" in d for d in rerouted)
    # every PDU it sent was answered as SMPP says, and the link came back after a reset and an unbind
    assert hostile.answers == {label: {answer} for label, answer in hostile.EXPECTED.items()}
    assert len(hostile.links) == 3  # and unbound once
    session = carrier.sessions[0]
    assert session.unexpected["outbind"] and session.unexpected["alert_notification"]
    assert session.unexpected["query_sm"] and session.unexpected["submit_sm_resp"]  # strays
    # the status writer was never stuck: no batch refused, nothing set aside, nothing left
    writer = runtime.writer
    assert (writer.failures, writer.failing_batches, dict(writer.set_aside)) == (0, 0, {})
    assert writer.backlog == 0 and writer.problem() is None
    # the 5,000-digit and the 300-octet ids: answered ESME_ROK (EXPECTED) and counted as unknown
    unknown = runtime.pool.inbound.receipts_unknown["hostile"]
    assert unknown >= 2
    assert runtime.pool.inbound.mo_refused >= 1
    status, ready = await get(f"{runtime.url}/readyz")
    assert status == 200, ready
    status, body = await get(f"{runtime.url}/metrics")
    lines = body.splitlines()
    bad = f'smsgw_smpp_bad_message_ids_total{{carrier="hostile"}} {carrier.bad_message_ids}'
    assert bad in lines
    unknown += writer.receipts_unknown.get("hostile", 0)
    assert f'smsgw_receipts_unknown_total{{carrier="hostile"}} {unknown}' in lines
    assert "smsgw_status_writer_failing_batches 0" in lines
    assert "smsgw_status_writer_failures_total 0" in lines
    assert any(line.startswith("smsgw_smpp_unexpected_pdus_total{") and "outbind" in line for line in lines)
