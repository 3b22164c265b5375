"""Each carrier claims its own messages (the real gateway and simulator over sockets): two carriers
drain at the same time, a congested one does not hold back the other, a carrier without links has
its messages taken by the others (failover), every message is routed once."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from sqlalchemy import func, select

from gateway import clock
from gateway.domain.status import Priority
from gateway.roles import build
from gateway.store import outbox
from gateway.store.models import messages
from simulator.app import Simulator
from textcodec.encoding import encode_text

from .test_faults import gateway_settings, settle, sim_settings


def queue_to(runtime, numbers: list[str]) -> list[int]:
    now = clock.utcnow()
    text = encode_text("Aviso: corte de agua manana en su colonia")
    rows = [
        {
            "msisdn": msisdn,
            "language": "es",
            "body": text.text,
            "encoding": text.encoding,
            "segments": text.segments,
            "priority": int(Priority.NORMAL),
            "expires_at": now + timedelta(hours=1),
        }
        for msisdn in numbers
    ]
    ids = runtime.db.transaction(outbox.enqueue, rows, now)
    runtime.signals.outbox.set()
    return ids


def telcel_numbers(n: int) -> list[str]:
    return [f"+5255{10000000 + i}" for i in range(n)]


def movistar_numbers(n: int) -> list[str]:
    return [f"+5256{10000000 + i}" for i in range(n)]


ROUTING = {"prefixes": [{"prefix": "5255", "carrier": "telcel"}, {"prefix": "5256", "carrier": "movistar"}]}


def settings(db_url, sim, carriers, routing=ROUTING):
    s = gateway_settings(db_url, sim, carriers)
    return s.model_copy(update={"routing": s.routing.model_validate(routing)})


def submit_times(sim: Simulator, carrier: str) -> list[float]:
    return sorted(m.submitted for m in sim.store.messages(carrier=carrier, limit=10_000))


async def test_two_carriers_drain_at_once_each_at_its_limit(sqlite_url):
    sim = Simulator(sim_settings({"telcel": {}, "movistar": {}}))
    await sim.start()
    runtime = build(settings(sqlite_url, sim, {"telcel": {"tps": 40}, "movistar": {"tps": 40}}))
    try:
        await runtime.start()
        assert await runtime.pool.wait_bound(5)
        # telcel's messages first in the outbox: one claim over the whole queue would send them all
        # before the first of movistar's
        ids = queue_to(runtime, telcel_numbers(60) + movistar_numbers(60))
        final = await settle(runtime, ids, timeout=30)
        assert {r["status"] for r in final.values()} == {"delivered"}
        assert {r["route"]: r["carrier"] for r in final.values()} == {
            "telcel": "telcel",
            "movistar": "movistar",
        }
        telcel, movistar = submit_times(sim, "telcel"), submit_times(sim, "movistar")
        assert len(telcel) == len(movistar) == 60
        # movistar started long before telcel was done (each takes 1.5 s at 40/s)
        assert movistar[0] < telcel[len(telcel) // 2]
    finally:
        await runtime.stop()
        await sim.stop()


async def test_a_congested_carrier_does_not_hold_back_another(sqlite_url):
    sim = Simulator(sim_settings({"telcel": {"faults": {"response_delay": 0.5}}, "movistar": {}}))
    await sim.start()
    runtime = build(settings(sqlite_url, sim, {"telcel": {"window": 2}, "movistar": {}}))
    try:
        await runtime.start()
        assert await runtime.pool.wait_bound(5)
        slow = queue_to(runtime, telcel_numbers(20))  # 2 answers every half second: about 5 s
        fast = queue_to(runtime, movistar_numbers(200))
        started = time.monotonic()
        done = await settle(runtime, fast, timeout=20)
        assert {r["status"] for r in done.values()} == {"delivered"}
        assert time.monotonic() - started < 4  # not behind the slow carrier
        with runtime.db.engine.connect() as conn:
            waiting = conn.execute(
                select(func.count())
                .select_from(messages)
                .where(messages.c.id.in_(slow), messages.c.status != "delivered")
            ).scalar_one()
        assert waiting > 0  # the congested carrier was still at it
        final = await settle(runtime, slow, timeout=30)
        assert {r["status"] for r in final.values()} == {"delivered"}
    finally:
        await runtime.stop()
        await sim.stop()


async def test_a_carrier_without_links_has_its_messages_taken_by_another(sqlite_url, unused_tcp_port):
    sim = Simulator(sim_settings({"movistar": {}}))
    await sim.start()
    s = gateway_settings(sqlite_url, sim, {"movistar": {}})
    down = s.carriers[0].model_copy(update={"name": "telcel", "port": unused_tcp_port})  # never bound
    s = s.model_copy(update={"carriers": [down, *s.carriers]})
    s = s.model_copy(update={"routing": s.routing.model_validate(ROUTING)})
    runtime = build(s)
    try:
        await runtime.start()
        assert await runtime.pool.wait_bound(5)
        ids = queue_to(runtime, telcel_numbers(30))
        final = await settle(runtime, ids, timeout=20)
        assert {(r["status"], r["route"], r["carrier"]) for r in final.values()} == {
            ("delivered", "telcel", "movistar")
        }
    finally:
        await runtime.stop()
        await sim.stop()


async def test_every_message_is_routed_once_even_a_large_queue(sqlite_url):
    sim = Simulator(sim_settings({"telcel": {}, "movistar": {}}))
    await sim.start()
    runtime = build(settings(sqlite_url, sim, {"telcel": {}, "movistar": {}}))
    try:
        await runtime.start()
        assert await runtime.pool.wait_bound(5)
        ids = queue_to(runtime, telcel_numbers(3000) + movistar_numbers(3000))
        await asyncio.wait_for(_routed(runtime, len(ids)), 20)
        final = await settle(runtime, ids, timeout=60)
        assert {r["status"] for r in final.values()} == {"delivered"}
        assert runtime.links.dispatcher.routed == len(ids)
    finally:
        await runtime.stop()
        await sim.stop()


async def _routed(runtime, count: int) -> None:
    while True:
        with runtime.db.engine.connect() as conn:
            routed = conn.execute(
                select(func.count()).select_from(messages).where(messages.c.route.is_not(None))
            ).scalar_one()
        if routed >= count:
            return
        await runtime.writer.next_commit()
