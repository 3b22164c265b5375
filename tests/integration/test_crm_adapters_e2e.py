"""A city's CRM connected without the webhook, end to end: an Open311 request (GeoReport server on
loopback) and a SUAC-style body through its mapping each become an SMS the real simulator delivers.

Each test runs on SQLite and on the PostgreSQL server (the ``db_url`` fixture).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from config.crm_adapters import MappedJsonAdapterSettings
from config.settings import CONFIG_DIR
from gateway.roles import build
from gateway.store.models import events
from tests.crm_adapters.conftest import adapter_settings
from tests.crm_adapters.georeport import GeoReportServer

from .conftest import Api, carrier_ports, gateway_settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def crm():
    server = GeoReportServer(now=lambda: datetime.now(UTC))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def connected(db_url, simulator, crm):
    settings = gateway_settings(db_url, carrier_ports(simulator))
    adapters = [
        adapter_settings(crm.url, every_seconds=3600, updates="auto", backfill_hours=1),
        MappedJsonAdapterSettings(
            kind="mapped_json", client="cesac", mapping=str(CONFIG_DIR / "crm_mappings" / "suac.toml")
        ),
    ]
    runtime = build(settings.model_copy(update={"crm_adapters": adapters}))
    await runtime.start()
    assert await runtime.pool.wait_bound(5)
    api = Api(runtime.url)
    yield runtime, api
    await api.close()
    await runtime.stop()


def message_of(runtime, event_key_prefix: str) -> int:
    with runtime.db.engine.connect() as conn:
        response = conn.execute(
            select(events.c.response).where(events.c.event_key.startswith(event_key_prefix))
        ).scalar_one()
    (message_id,) = response["message_ids"]
    return message_id


async def test_an_open311_request_becomes_a_delivered_sms(connected, crm, simulator):
    runtime, api = connected
    poller = runtime.crm.pollers["open311-cesac"]
    if poller.last_report is None:  # the first scheduled cycle reads the server's clock
        await poller.next_cycle(10)
    assert poller.last_report.ok, poller.last_report.error
    # a few seconds ago: windows end a second before the CRM's clock, read to half a second
    crm.add(
        "4512", datetime.now(UTC) - timedelta(seconds=3), phone="55 1234 5678", service_name="Fuga de agua"
    )
    report = await poller.poll_once()
    assert report.ok and report.accepted == 1, report
    message = await api.wait_status(runtime, message_of(runtime, "open311-4512-received-"), "delivered")
    assert "4512" in message["text"] and "ESTADO 4512" in message["text"]
    (received,) = simulator.store.messages(to="+525512345678")
    assert received.as_dict(0)["text"] == message["text"]


async def test_a_crms_own_json_becomes_a_delivered_sms(connected, simulator):
    runtime, api = connected
    body = {
        "solicitud": {"folio": "MH-2026-004512", "tema": "Fuga de agua"},
        "movimiento": {"consecutivo": 1, "estatus": "RECIBIDA", "fecha": "29/11/2026 10:00"},
        "ciudadano": {"nombre": "Ana", "celular": "55 8765 4321"},
    }
    raw = json.dumps(body).encode()
    async with api.session.post(
        f"{runtime.url}/api/v1/crm/cesac/events",
        data=raw,
        headers=api.headers("POST", f"{runtime.url}/api/v1/crm/cesac/events", raw),
    ) as response:
        assert response.status == 202, await response.text()
        answer = await response.json()
    (message_id,) = answer["message_ids"]
    message = await api.wait_status(runtime, message_id, "delivered")
    assert "MH-2026-004512" in message["text"]
    assert len(simulator.store.messages(to="+525587654321")) == 1
