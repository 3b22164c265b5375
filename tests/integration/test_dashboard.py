"""The operators' dashboard: HTTP Basic, a JSON snapshot with masked numbers, a live SSE stream."""

from __future__ import annotations

import asyncio
import base64
import json
import re

import aiohttp
import pytest

from gateway.runtime import GatewayRuntime

from .conftest import Api, carrier_ports, case_received, gateway_settings


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


AUTH = basic("operator", "s3cret-dash")


@pytest.fixture
async def runtime(db_url, simulator):
    settings = gateway_settings(db_url, carrier_ports(simulator))
    settings.dashboard.password = "s3cret-dash"
    gateway = GatewayRuntime(settings)
    await gateway.start()
    assert await gateway.pool.wait_bound(5)
    yield gateway
    await gateway.stop()


async def test_dashboard_needs_the_operator_password(runtime):
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        async with http.get(f"{runtime.url}/dashboard/") as resp:
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"].startswith("Basic")
        async with http.get(f"{runtime.url}/dashboard/", headers=basic("operator", "wrong")) as resp:
            assert resp.status == 401
        async with http.get(f"{runtime.url}/dashboard/", headers=AUTH) as resp:
            assert resp.status == 200
            page = await resp.text()
            assert "entregas en vivo" in page
            assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # offline: no external assets


async def test_snapshot_and_live_stream_show_delivery_with_masked_numbers(runtime):
    api = Api(runtime.url)
    try:
        status, body = await api.post_event(case_received())
        assert status == 202
        await api.wait_status(runtime, body["message_ids"][0], "delivered")
    finally:
        await api.close()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10), headers=AUTH) as http:
        async with http.get(f"{runtime.url}/dashboard/data") as resp:
            data = await resp.json()
        assert data["stats"]["messages"]["by_status"]["delivered"] == 1
        assert {link["carrier"] for link in data["links"] if link["bound"]} == {"telcel", "movistar"}
        (recent,) = data["recent"]
        assert recent["to"] == "+52******5678" and recent["status"] == "delivered"
        assert "5512345678" not in json.dumps(data)
        async with http.get(f"{runtime.url}/dashboard/events") as resp:
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            first = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5)
        event, payload = first.decode().split("\n", 1)
        assert event == "event: snapshot"
        assert json.loads(payload.removeprefix("data: "))["stats"]["messages"]["total"] == 1


async def test_dashboard_is_off_without_a_password(gateway):
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        async with http.get(f"{gateway.url}/dashboard/", headers=AUTH) as resp:
            assert resp.status == 404
