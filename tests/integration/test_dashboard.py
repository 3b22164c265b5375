"""The operators' dashboard on a real gateway: sign in, a JSON snapshot with masked numbers, a live
SSE stream that ends with its session."""

from __future__ import annotations

import asyncio
import json
import re

import aiohttp
import pytest

from gateway.domain.operators import Role
from tests.operators.helpers import add_operator, hidden_field, sign_in

from .conftest import Api, case_received

PASSWORD = "s3cret-dash"


@pytest.fixture
async def runtime(gateway):
    add_operator(gateway.db, "ana", PASSWORD, Role.VIEWER)
    return gateway


async def deliver_one(runtime) -> None:
    """A CRM posts a case; its message reaches the simulator and its receipt comes back."""
    api = Api(runtime.url)
    try:
        status, body = await api.post_event(case_received())
        assert status == 202
        await api.wait_status(runtime, body["message_ids"][0], "delivered")
    finally:
        await api.close()


def http_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=10), cookie_jar=aiohttp.CookieJar(unsafe=True)
    )


async def test_dashboard_needs_an_operator_s_session(runtime):
    async with http_session() as http:
        async with http.get(f"{runtime.url}/dashboard/", allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"].startswith("/dashboard/login")
        async with http.get(f"{runtime.url}/dashboard/data") as resp:
            assert resp.status == 401
        assert (await sign_in(http, runtime.url, "ana", "wrong")).status == 401
        assert (await sign_in(http, runtime.url, "ana", PASSWORD)).status == 303
        async with http.get(f"{runtime.url}/dashboard/") as resp:
            assert resp.status == 200
            page = await resp.text()
            assert "centro de control" in page
            assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # offline: no external assets


async def test_snapshot_and_live_stream_show_delivery_with_masked_numbers(runtime):
    await deliver_one(runtime)
    async with http_session() as http:
        await sign_in(http, runtime.url, "ana", PASSWORD)
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


async def test_the_live_stream_ends_when_its_session_does(runtime):
    async with http_session() as http:
        await sign_in(http, runtime.url, "ana", PASSWORD)
        async with http.get(f"{runtime.url}/dashboard/") as resp:
            token = hidden_field(await resp.text(), "csrf_token")
        async with http.get(f"{runtime.url}/dashboard/events") as stream:
            await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 5)
            async with http.post(f"{runtime.url}/dashboard/logout", data={"csrf_token": token}) as resp:
                assert resp.status == 200  # followed to the login page
            await deliver_one(runtime)  # a status change wakes the stream, which finds its session gone
            rest = await asyncio.wait_for(stream.content.read(), 20)  # the server closed the stream
        assert rest.count(b"event: snapshot") <= 3
        async with http.get(f"{runtime.url}/dashboard/events") as resp:
            assert resp.status == 401
