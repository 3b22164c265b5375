"""Every fault the simulator can inject ends with every message accounted for.

A real gateway (Gateway: outbox, dispatcher, SMPP client, status writer) against the real
bundled simulator over sockets. Each message goes to its own number, so what the simulator received
can be compared with the outbox: every message ends delivered, or failed with a reason; none is
lost; none is sent twice except those in flight on a dropped link.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta

import aiohttp
from sqlalchemy import select

from gateway import clock
from gateway.domain.status import FINAL_STATUSES, Priority
from gateway.http.api.schemas import Message
from gateway.roles import Gateway, build
from gateway.store import outbox, reads
from gateway.store.models import messages, mobile_messages
from simulator.app import Simulator
from simulator.settings import load_settings as load_simulator_settings
from tests.conftest import make_settings
from textcodec.encoding import encode_text

FINAL = {s.value for s in FINAL_STATUSES}
FIRST_NUMBER = 5510000000


def sim_settings(carriers: dict[str, dict]):
    return load_simulator_settings(
        {
            "http_listen": "127.0.0.1:0",
            "carriers": [
                {"name": name, "port": 0, "receipt_delay": 0.02, "max_binds": 8, **extra}
                for name, extra in carriers.items()
            ],
        }
    )


def gateway_settings(db_url: str, sim: Simulator, carriers: dict[str, dict], **dispatch):
    return make_settings(
        {
            "gateway": {"listen": "127.0.0.1:0", "log_format": "console"},
            "database": {"url": db_url},
            "carriers": [
                {
                    "name": name,
                    "port": sim.carrier_port(name),
                    "system_id": "smsgw",
                    "password_env": "SMSGW_TEST_SMSC_PASSWORD",
                    "reconnect_min_seconds": 0.05,
                    "reconnect_max_seconds": 0.2,
                    "enquire_link_seconds": 5,
                    "response_timeout_seconds": 2,
                    "throttle_pause_seconds": 0.2,
                    "tps": 1000,
                    "window": 20,
                    **extra,
                }
                for name, extra in carriers.items()
            ],
            "crm_clients": [{"id": "cesac", "secret_env": "SMSGW_TEST_SECRET"}],
            "dispatch": {"interval_seconds": 0.2, **dispatch},
        }
    )


@contextlib.asynccontextmanager
async def system(
    db_url: str, sim_carriers: dict[str, dict], gw_carriers: dict[str, dict] | None = None, **dispatch
):
    sim = Simulator(sim_settings(sim_carriers))
    await sim.start()
    gw_carriers = gw_carriers if gw_carriers is not None else {name: {} for name in sim_carriers}
    runtime = build(gateway_settings(db_url, sim, gw_carriers, **dispatch))
    try:
        await runtime.start()
        assert await runtime.pool.wait_bound(5)
        yield sim, runtime
    finally:
        await runtime.stop()
        await sim.stop()


async def eventually(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    for _ in range(100_000):
        if predicate():
            return
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def number(i: int) -> str:
    return f"+52{FIRST_NUMBER + i}"


def queue(runtime: Gateway, count: int, text: str = "Aviso {i}: su reporte fue recibido", start: int = 0):
    now = clock.utcnow()
    rows = []
    for i in range(start, start + count):
        encoded = encode_text(text.format(i=i))
        rows.append(
            {
                "msisdn": number(i),
                "language": "es",
                "body": encoded.text,
                "encoding": encoded.encoding,
                "segments": encoded.segments,
                "priority": int(Priority.NORMAL),
                "expires_at": now + timedelta(hours=1),
            }
        )
    ids = runtime.db.transaction(outbox.enqueue, rows, now)
    runtime.signals.outbox.set()
    return ids


def rows(runtime: Gateway, ids: list[int]) -> dict[int, dict]:
    with runtime.db.engine.connect() as conn:
        result = conn.execute(select(messages).where(messages.c.id.in_(ids))).mappings()
        return {r["id"]: dict(r) for r in result}


async def settle(runtime: Gateway, ids: list[int], timeout: float = 30) -> dict[int, dict]:
    """Wait (commit by commit) until every message has a final status."""

    async def until():
        while True:
            commit = asyncio.ensure_future(runtime.writer.next_commit())
            current = rows(runtime, ids)
            if all(r["status"] in FINAL for r in current.values()):
                commit.cancel()
                return current
            await commit

    return await asyncio.wait_for(until(), timeout)


def accounted(sim: Simulator, final: dict[int, dict], max_duplicates: int = 0) -> dict:
    """Check the outbox against what the simulator received; returns counts."""
    received = {}
    for r in final.values():
        received[r["id"]] = sim.store.messages(to=r["msisdn"], limit=100)
    duplicates = 0
    for mid, r in final.items():
        got = received[mid]
        assert r["status"] in FINAL, r
        if r["status"] == "delivered":
            assert got, f"message {mid} delivered but the SMSC never received it"
            assert r["smsc_message_id"] in [m.parts[0].id for m in got if m.parts[0]]
        else:
            assert r["error_text"], f"message {mid} {r['status']} without a reason"
        duplicates += max(0, len(got) - 1)
    assert duplicates <= max_duplicates, f"{duplicates} messages sent twice (allowed {max_duplicates})"
    statuses = {}
    for r in final.values():
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    return {"statuses": statuses, "duplicates": duplicates}


# --- faults ---------------------------------------------------------------------------------------


async def test_link_dropped_with_a_full_window(both_url):
    db_url = both_url
    async with system(db_url, {"telcel": {"faults": {"drop_after_pdus": 30}}}) as (sim, runtime):
        ids = queue(runtime, 200)
        final = await settle(runtime, ids)
        drops = sim.smsc.carriers["telcel"].stats.links_dropped
        result = accounted(sim, final, max_duplicates=drops * 20)  # at most a window per drop
        assert result["statuses"] == {"delivered": 200}
        assert drops >= 5
        carrier = runtime.pool.carriers["telcel"]
        assert sum(s.links_lost for s in carrier.sessions) >= 5


async def test_responses_that_never_come(sqlite_url):
    async with system(
        sqlite_url,
        {"telcel": {"faults": {"never_answer_every": 7}}},
        {"telcel": {"response_timeout_seconds": 0.3}},
    ) as (sim, runtime):
        ids = queue(runtime, 150)
        final = await settle(runtime, ids)
        # unanswered submits were never stored by the SMSC: resending them is no duplicate
        assert accounted(sim, final)["statuses"] == {"delivered": 150}
        assert sim.smsc.carriers["telcel"].stats.unanswered >= 20
        # unanswered submits time out (how many before repeated timeouts reset the link, failing the
        # others with it, depends on the machine's load)
        sessions = runtime.pool.carriers["telcel"].sessions
        assert sum(s.timeouts for s in sessions) >= 1


async def test_no_answer_at_all_resets_the_link_and_nothing_is_lost(sqlite_url):
    async with system(
        sqlite_url,
        {"telcel": {"faults": {"never_answer_fraction": 1.0}}},
        {"telcel": {"response_timeout_seconds": 0.3, "max_consecutive_timeouts": 3}},
    ) as (sim, runtime):
        ids = queue(runtime, 40)
        carrier = runtime.pool.carriers["telcel"]
        session = carrier.sessions[0]

        async def links_reset():
            while session.links_lost < 2:
                await runtime.writer.next_commit()

        await asyncio.wait_for(links_reset(), 10)
        sim.smsc.carriers["telcel"].faults.update({"never_answer_fraction": 0.0})
        final = await settle(runtime, ids, timeout=60)
        result = accounted(sim, final)
        # back through the outbox with backoff, never lost
        assert result["statuses"] == {"delivered": 40}
        assert max(r["attempts"] for r in final.values()) >= 2


async def test_throttling_storm(both_url):
    db_url = both_url
    async with system(db_url, {"telcel": {"tps": 60}}, {"telcel": {"tps": 500}}) as (sim, runtime):
        ids = queue(runtime, 200)
        final = await settle(runtime, ids, timeout=30)
        result = accounted(sim, final)  # a throttled submit is not stored by the SMSC
        assert result["statuses"] == {"delivered": 200}
        assert sim.smsc.carriers["telcel"].stats.throttled > 0
        (carrier,) = runtime.pool.status()
        assert carrier["throttles"] > 0 and carrier["rate_decreases"] >= 1
        # throttling never counts as a failed attempt
        assert {r["attempts"] for r in final.values()} == {1}


async def test_msgqfull_bursts(sqlite_url):
    # every 30 accepted, 3 refused: the client slows down (as for ESME_RTHROTTLED) and resends
    async with system(sqlite_url, {"telcel": {"msgqfull_every": 30, "msgqfull_burst": 3}}) as (sim, runtime):
        ids = queue(runtime, 100)
        final = await settle(runtime, ids)
        assert accounted(sim, final)["statuses"] == {"delivered": 100}
        assert sim.smsc.carriers["telcel"].stats.msgqfull >= 9
        assert {r["attempts"] for r in final.values()} == {1}


async def test_refused_binds(sqlite_url):
    async with system(sqlite_url, {"telcel": {}}) as (sim, runtime):
        smsc_carrier = sim.smsc.carriers["telcel"]
        smsc_carrier.faults.update({"refuse_binds_for": 1.0})
        smsc_carrier.drop_all("test")
        ids = queue(runtime, 50)
        final = await settle(runtime, ids, timeout=20)
        assert accounted(sim, final)["statuses"] == {"delivered": 50}
        session = runtime.pool.carriers["telcel"].sessions[0]
        assert session.bind_failures >= 1 and smsc_carrier.stats.binds_refused >= 1


async def test_slow_responses_and_a_small_smsc_window(sqlite_url):
    async with system(
        sqlite_url,
        {"telcel": {"window": 5, "faults": {"response_delay": [0.02, 0.1]}}},
        {"telcel": {"window": 20}},
    ) as (sim, runtime):
        ids = queue(runtime, 80)
        final = await settle(runtime, ids)
        assert accounted(sim, final)["statuses"] == {"delivered": 80}
        # the SMSC answered ESME_RTHROTTLED when its window was full: slowed down, never failed
        assert sim.smsc.carriers["telcel"].stats.window_full > 0


async def test_links_dropped_every_so_often_with_two_binds_and_two_carriers(sqlite_url):
    async with system(
        sqlite_url,
        {"telcel": {"faults": {"drop_every_seconds": 0.3}}, "movistar": {}},
        {"telcel": {"binds": 2}, "movistar": {}},
    ) as (sim, runtime):
        ids = queue(runtime, 400)
        final = await settle(runtime, ids)
        drops = sim.smsc.carriers["telcel"].stats.links_dropped
        result = accounted(sim, final, max_duplicates=drops * 20)
        assert result["statuses"] == {"delivered": 400}


# --- errors, routing ------------------------------------------------------------------------------


async def test_invalid_destination_fails_at_once_with_its_code_and_name(sqlite_url):
    bad = str(FIRST_NUMBER + 1)
    async with system(sqlite_url, {"telcel": {"numbers": [{"number": bad, "behaviour": "invalid"}]}}) as (
        sim,
        runtime,
    ):
        ids = queue(runtime, 3)
        final = await settle(runtime, ids)
        result = accounted(sim, final)
        assert result["statuses"] == {"delivered": 2, "failed": 1}
        failed = final[ids[1]]
        assert (failed["status"], failed["error_code"], failed["attempts"]) == ("failed", 11, 1)
        # what GET /api/v1/messages/{id} shows (these rows have no CRM event, so no client owns them)
        message = Message.from_row(runtime.db.transaction(reads.get_message, ids[1])).model_dump()
        assert message["error"]["code"] == 11 and message["error"]["name"] == "ESME_RINVDSTADR"
        assert [h["status"] for h in message["history"]] == ["queued", "failed"]


async def test_routing_error_fails_over_and_records_the_carrier_that_took_it(sqlite_url):
    bad = str(FIRST_NUMBER)
    async with system(
        sqlite_url,
        {"telcel": {"numbers": [{"number": bad, "behaviour": "invalid"}]}, "movistar": {}},
        {"telcel": {"failover_on": ["ESME_RINVDSTADR"]}, "movistar": {}},
    ) as (sim, runtime):
        ids = queue(runtime, 2)
        final = await settle(runtime, ids)
        assert accounted(sim, final)["statuses"] == {"delivered": 2}
        assert final[ids[0]]["carrier"] == "movistar" and final[ids[1]]["carrier"] == "telcel"
        detail = runtime.db.transaction(reads.get_message, ids[0])["history"][1]["detail"]
        assert "telcel > movistar" in detail and "ESME_RINVDSTADR" in detail


async def test_prefix_and_weights_route_messages(sqlite_url, tmp_path):
    ported = tmp_path / "ported.csv"
    ported.write_text(f"msisdn,carrier\n{FIRST_NUMBER + 5},telcel\n")
    sim = Simulator(sim_settings({"telcel": {}, "movistar": {}}))
    await sim.start()
    raw = gateway_settings(sqlite_url, sim, {"telcel": {}, "movistar": {}}).model_dump()
    settings = make_settings(
        {
            **{
                k: v
                for k, v in raw.items()
                if k not in ("source_path", "simulator", "carriers", "crm_clients")
            },
            "carriers": [{**c, "password_env": "SMSGW_TEST_SMSC_PASSWORD"} for c in raw["carriers"]],
            "crm_clients": [{"id": "cesac", "secret_env": "SMSGW_TEST_SECRET"}],
            "routing": {
                "prefixes": [{"prefix": f"52{str(FIRST_NUMBER)[:4]}", "carrier": "movistar"}],
                "ported_numbers": str(ported),
            },
        }
    )
    runtime = build(settings)
    try:
        await runtime.start()
        assert await runtime.pool.wait_bound(5)
        ids = queue(runtime, 10)
        final = await settle(runtime, ids)
        carriers = [final[i]["carrier"] for i in ids]
        assert carriers == ["movistar"] * 5 + ["telcel"] + ["movistar"] * 4
    finally:
        await runtime.stop()
        await sim.stop()


# --- long texts, receipts, MO --------------------------------------------------------------------


async def test_long_messages_and_decimal_receipt_ids(sqlite_url):
    long_gsm = "Corte de agua {i}: " + "el suministro se restablece a las 18:00 h [zona €] " * 6
    long_ucs2 = "Aviso {i} 👍 " + "servicio de recolección " * 8
    async with system(sqlite_url, {"telcel": {"message_id_format": "decimal"}}) as (sim, runtime):
        ids = queue(runtime, 5, long_gsm) + queue(runtime, 5, long_ucs2, start=5)
        final = await settle(runtime, ids)
        assert accounted(sim, final)["statuses"] == {"delivered": 10}
        for mid in ids:
            detail = runtime.db.transaction(reads.get_message, mid)
            assert len(detail["parts"]) == detail["segments"] >= 3
            assert {p["status"] for p in detail["parts"]} == {"delivered"}
            (seen,) = sim.store.messages(to=detail["msisdn"])
            assert seen.complete and seen.text == detail["body"]
            assert seen.encoding() == detail["encoding"]


async def test_one_undeliverable_number_of_a_long_message(sqlite_url):
    bad = str(FIRST_NUMBER)
    text = "Recordatorio de cita {i}: " + "presente su identificacion oficial " * 8
    async with system(
        sqlite_url, {"telcel": {"numbers": [{"number": bad, "behaviour": "never_delivers"}]}}
    ) as (sim, runtime):
        ids = queue(runtime, 2, text)
        final = await settle(runtime, ids)
        assert accounted(sim, final)["statuses"] == {"undeliverable": 1, "delivered": 1}
        assert final[ids[0]]["error_text"].startswith("receipt err:")


async def test_citizens_long_sms_reaches_the_inbox_reassembled(sqlite_url):
    async with system(sqlite_url, {"telcel": {"mo_prefixes": ["52"]}}) as (sim, runtime):
        text = "ALTA AGUA POLANCO " + "quiero recibir avisos de cortes de agua en mi colonia " * 8
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{sim.http_url}/sim/mo", json={"from": "+525512345678", "text": text}
            ) as resp:
                assert resp.status == 202, await resp.text()
                record = await resp.json()
        assert record["parts"] >= 3
        await eventually(lambda: runtime.link_events.mo_messages == {"telcel": 1})
        with runtime.db.engine.connect() as conn:
            logged = conn.execute(
                select(mobile_messages.c.carrier, mobile_messages.c.msisdn, mobile_messages.c.text)
            ).all()
        assert [tuple(row) for row in logged] == [("telcel", "+525512345678", text)]

        # every part acknowledged (the simulator has no event for it: poll, bounded)
        await eventually(lambda: sim.store.mo_record(record["id"]).parts_acked == record["parts"])


# --- shutdown, metrics ---------------------------------------------------------------------------


async def test_shutdown_under_load_loses_nothing(sqlite_url):
    sim = Simulator(sim_settings({"telcel": {"faults": {"response_delay": [0.05, 0.1]}}}))
    await sim.start()
    settings = gateway_settings(sqlite_url, sim, {"telcel": {"tps": 300, "window": 20}})
    runtime = build(settings)
    await runtime.start()
    try:
        assert await runtime.pool.wait_bound(5)
        ids = queue(runtime, 400)

        async def some_submitted():
            while sim.smsc.carriers["telcel"].stats.submitted < 100:
                await runtime.writer.next_commit()

        await asyncio.wait_for(some_submitted(), 10)
        started = time.monotonic()
        await runtime.stop()
        assert time.monotonic() - started < 5
        after_stop = rows(runtime, ids)
        # nothing stays leased: a message is submitted (or further), or back in the queue
        assert all(r["lease_owner"] is None for r in after_stop.values())
        assert {r["status"] for r in after_stop.values()} <= {"queued", "submitted", "delivered"}
        submitted_at_stop = sim.smsc.carriers["telcel"].stats.submitted
        assert sum(r["status"] != "queued" for r in after_stop.values()) == submitted_at_stop
        # a new process finishes the work: nothing lost, nothing sent twice
        runtime = build(settings)
        await runtime.start()
        final = await settle(runtime, ids, timeout=30)
        assert accounted(sim, final)["statuses"] == {"delivered": 400}
    finally:
        await runtime.stop()
        await sim.stop()


async def test_metrics(sqlite_url):
    async with system(sqlite_url, {"telcel": {}}) as (_sim, runtime):
        ids = queue(runtime, 20)
        await settle(runtime, ids)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{runtime.url}/metrics") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                body = await resp.text()
    lines = body.splitlines()
    assert 'smsgw_smpp_bind_up{carrier="telcel",bind="telcel#0",kind="transceiver"} 1' in lines
    assert 'smsgw_smpp_parts_accepted_total{carrier="telcel"} 20' in lines
    assert 'smsgw_smpp_window_size{carrier="telcel",bind="telcel#0",kind="transceiver"} 20' in lines
    assert any(line.startswith('smsgw_receipt_latency_seconds_count{carrier="telcel"} 20') for line in lines)
    assert 'smsgw_receipt_latency_seconds_bucket{carrier="telcel",le="+Inf"} 20' in lines
    assert 'smsgw_outbox_messages{status="delivered"} 20' in lines
    assert "# TYPE smsgw_smpp_throttles_total counter" in lines
    assert 'smsgw_smpp_rate_limit{carrier="telcel"} 1000' in lines
