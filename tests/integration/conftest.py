"""A real gateway against the real bundled simulator, over real sockets, on ephemeral ports."""

from __future__ import annotations

import asyncio
import json
import shutil

import aiohttp
import pytest

from gateway.http.signing import Signer
from gateway.roles import Gateway, build
from simulator.app import Simulator
from simulator.settings import load_settings as load_simulator_settings
from tests.conftest import _truncate_postgres, make_settings

SECRET = "test-secret"
CLIENT = "cesac"


def simulator_settings(ports: dict[str, int] | None = None, **carrier_overrides):
    ports = ports or {}
    return load_simulator_settings(
        {
            "http_listen": "127.0.0.1:0",
            "carriers": [
                {
                    "name": "telcel",
                    "port": ports.get("telcel", 0),
                    "receipt_delay": 0.05,
                    **carrier_overrides,
                },
                {"name": "movistar", "port": ports.get("movistar", 0), "receipt_delay": 0.05},
            ],
        }
    )


def gateway_settings(db_url: str, ports: dict[str, int], **dispatch):
    carriers = [
        {
            "name": name,
            "host": "127.0.0.1",
            "port": port,
            "system_id": "smsgw",
            "password_env": "SMSGW_TEST_SMSC_PASSWORD",
            "reconnect_min_seconds": 0.05,
            "reconnect_max_seconds": 0.2,
            "enquire_link_seconds": 5,
            "response_timeout_seconds": 5,
        }
        for name, port in ports.items()
    ]
    return make_settings(
        {
            "gateway": {"listen": "127.0.0.1:0", "log_format": "console"},
            "database": {"url": db_url},
            "carriers": carriers,
            "crm_clients": [{"id": CLIENT, "secret_env": "SMSGW_TEST_SECRET"}],
            "dispatch": {"interval_seconds": 0.2, **dispatch},
            # quiet hours follow the wall clock; tests of them control the clock (tests/notices)
            "quiet_hours": {"enabled": False},
        }
    )


@pytest.fixture
async def simulator():
    sim = Simulator(simulator_settings())
    await sim.start()
    yield sim
    await sim.stop()


def carrier_ports(sim: Simulator) -> dict[str, int]:
    return {name: sim.carrier_port(name) for name in ("telcel", "movistar")}


@pytest.fixture
async def gateway(db_url, simulator):
    runtime = build(gateway_settings(db_url, carrier_ports(simulator)))
    await runtime.start()
    assert await runtime.pool.wait_bound(5)
    yield runtime
    await runtime.stop()


class Api:
    """A CRM client that signs its requests."""

    def __init__(
        self, base_url: str, client: str = CLIENT, secret: str = SECRET, signer: Signer | None = None
    ):
        self.base_url = base_url
        self.client = client
        self.secret = secret
        self.signer = signer or Signer(client, secret)
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    def headers(self, method: str, url: str, body: bytes = b"") -> dict[str, str]:
        """Signed afresh on every call (a signature is accepted once)."""
        return {"Content-Type": "application/json", **self.signer.headers(method, url, body)}

    async def post_event(self, event: dict, headers: dict | None = None) -> tuple[int, dict]:
        body = json.dumps(event).encode()
        url = f"{self.base_url}/api/v1/events"
        headers = headers or self.headers("POST", url, body)
        async with self.session.post(url, data=body, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)

    async def message(self, message_id: int) -> dict:
        url = f"{self.base_url}/api/v1/messages/{message_id}"
        async with self.session.get(url, headers=self.headers("GET", url)) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    async def wait_status(self, runtime: Gateway, message_id: int, status: str, timeout: float = 10) -> dict:
        """Re-read the message after each committed status batch until it reaches ``status``."""

        async def watch() -> dict:
            while True:
                commit = asyncio.ensure_future(runtime.writer.next_commit())
                message = await self.message(message_id)
                if message["status"] == status:
                    commit.cancel()
                    return message
                await commit

        return await asyncio.wait_for(watch(), timeout)

    async def close(self) -> None:
        await self.session.close()


@pytest.fixture
async def api(gateway):
    client = Api(gateway.url)
    yield client
    await client.close()


def case_received(
    event_id: str = "cesac-000123", msisdn: str = "55 1234 5678", folio: str = "MH-2026-004512"
) -> dict:
    return {
        "id": event_id,
        "type": "case.received",
        "occurred_at": "2026-11-29T10:00:00-06:00",
        "case": {"folio": folio, "category": "Fuga de agua"},
        "citizen": {"msisdn": msisdn, "name": "Ana", "language": "es"},
    }


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template):
    path = tmp_path / "smsgw.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def both_url(request, tmp_path, sqlite_template):
    """For tests that run on both databases but need their own SQLite file."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    url = request.getfixturevalue("postgres_url")
    _truncate_postgres(url)
    return url
