"""A gateway's CRM API over real HTTP, built by the composition root as production builds it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator

import aiohttp

from config.settings import Settings
from gateway.roles import Gateway, Role, build
from tests.conftest import make_settings

SECRETS = {"cesac": "s3cret", "other": "other-secret", "demo": "demo-secret"}


def api_settings(
    db_url: str,
    callbacks: dict[str, str] | None = None,
    clients: dict[str, dict] | None = None,
    **sections,
) -> Settings:
    """The CRM clients of SECRETS (``callbacks``: client id -> callback URL; ``clients``: client id
    -> more of its settings); quiet hours and the enrolment line off unless ``sections`` say
    otherwise (they follow the wall clock / change texts)."""
    callbacks = callbacks or {}
    more = clients or {}
    clients = [
        {
            "id": cid,
            "secret_env": f"SMSGW_TEST_{cid.upper()}_SECRET",
            **({"callback_url": callbacks[cid]} if cid in callbacks else {}),
            **more.get(cid, {}),
        }
        for cid in SECRETS
    ]
    raw = {
        "gateway": {"listen": "127.0.0.1:0", "log_format": "console"},
        "database": {"url": db_url},
        "crm_clients": clients,
        "quiet_hours": {"enabled": False},
        "notices": {"enrolment": False},
    }
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values} if isinstance(values, dict) else values
    env = {f"SMSGW_TEST_{cid.upper()}_SECRET": secret for cid, secret in SECRETS.items()}
    return make_settings(raw, env)


@contextlib.asynccontextmanager
async def running(
    settings: Settings, role: Role = Role.API
) -> AsyncIterator[tuple[Gateway, aiohttp.ClientSession]]:
    """The gateway started on an ephemeral port, and an HTTP client whose paths are relative to it."""
    gateway = build(settings, role)
    await gateway.start()
    http = aiohttp.ClientSession(base_url=gateway.url, timeout=aiohttp.ClientTimeout(total=30))
    try:
        yield gateway, http
    finally:
        await http.close()
        await gateway.stop()


@contextlib.contextmanager
def serving_in_thread(settings: Settings, role: Role = Role.API) -> Iterator[Gateway]:
    """The gateway started on an ephemeral port in a thread of its own (its own event loop), for
    blocking clients (requests, schemathesis); stopped on exit."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    box: dict[str, object] = {}

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            gateway = build(settings, role)
            loop.run_until_complete(gateway.start())
            box["gateway"] = gateway
        except BaseException as exc:
            box["error"] = exc
            return
        finally:
            started.set()
        loop.run_forever()
        loop.run_until_complete(gateway.stop())
        loop.close()

    thread = threading.Thread(target=serve, name="gateway", daemon=True)
    thread.start()
    if not started.wait(30):
        raise TimeoutError("the gateway did not start within 30 s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    try:
        yield box["gateway"]  # type: ignore[misc]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
