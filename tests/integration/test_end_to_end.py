"""A signed CRM event becomes a delivered SMS: real gateway, real simulator, real sockets.

Each test runs on SQLite and on the PostgreSQL server (the ``db_url`` fixture).
"""

from __future__ import annotations

import time

from sqlalchemy import func, select

from gateway.roles import build
from gateway.store.models import events, messages
from simulator.app import Simulator

from .conftest import Api, carrier_ports, case_received, gateway_settings, simulator_settings


async def test_posted_event_ends_delivered(gateway, api, simulator):
    status, body = await api.post_event(case_received())
    assert status == 202
    assert body["event_id"] == "cesac-000123" and body["recipients"] == 1
    (message_id,) = body["message_ids"]

    message = await api.wait_status(gateway, message_id, "delivered")
    assert message["to"] == "+52******5678"
    assert message["carrier"] == "telcel"
    assert message["encoding"] == "gsm7" and message["segments"] == 1
    assert [h["status"] for h in message["history"]] == ["queued", "submitted", "delivered"]

    received = simulator.store.messages(to="+525512345678")
    assert len(received) == 1
    seen = received[0].as_dict(time.time())
    assert seen["id"] == message["smsc_message_id"]
    assert seen["text"] == message["text"]
    assert seen["status"] == "DELIVRD"
    assert "MH-2026-004512" in message["text"] and "ESTADO MH-2026-004512" in message["text"]


async def test_duplicate_post_queues_nothing(gateway, api):
    first = await api.post_event(case_received())
    second = await api.post_event(case_received())
    assert first == second
    with gateway.db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 1


async def test_bad_signature_writes_nothing(gateway, api):
    headers = api.headers("POST", f"{api.base_url}/api/v1/events", b"something else")
    status, problem = await api.post_event(case_received(), headers=headers)
    assert status == 401
    assert problem["title"] == "Unauthorized"
    with gateway.db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == 0


async def test_message_survives_simulator_restart(db_url):
    """The SMSC goes away; the message waits queued; the client reconnects and delivers it."""
    sim = Simulator(simulator_settings())
    await sim.start()
    ports = carrier_ports(sim)
    runtime = build(gateway_settings(db_url, ports))
    await runtime.start()
    api = Api(runtime.url)
    try:
        assert await runtime.pool.wait_bound(5)
        await sim.stop()
        status, body = await api.post_event(case_received("restart-1"))
        assert status == 202
        (message_id,) = body["message_ids"]
        assert (await api.message(message_id))["status"] == "queued"

        sim = Simulator(simulator_settings(ports))
        await sim.start()
        message = await api.wait_status(runtime, message_id, "delivered", timeout=15)
        assert message["smsc_message_id"]
        assert len(sim.store.messages(to="+525512345678")) == 1
    finally:
        await api.close()
        await runtime.stop()
        await sim.stop()
